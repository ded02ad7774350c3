//! Anthropic Messages wire format.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use serde_json::{json, Value};

fn body(text: &str) -> Value {
    json!({
        "model": "claude-sonnet-4-5",
        "max_tokens": 1024,
        "system": "Be brief.",
        "messages": [
            {"role": "user", "content": "first question"},
            {"role": "assistant", "content": [{"type": "text", "text": "first answer"}]},
            {"role": "user", "content": [{"type": "text", "text": text}]}
        ]
    })
}

fn names(events: &[Sse]) -> Vec<&str> {
    events.iter().map(|e| e.event.as_deref().unwrap()).collect()
}

#[tokio::test]
async fn message_non_stream_shape_and_default_usage() {
    let mock = start().await;
    let resp = anthropic(&mock, body("hello there")).await;
    assert_eq!(resp.status(), 200);
    assert!(resp.headers().contains_key("request-id"));
    let text = resp.text().await.unwrap();
    assert!(text.starts_with(r#"{"id":"msg_"#), "{text}");
    let v: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(v["type"], "message");
    assert_eq!(v["role"], "assistant");
    assert_eq!(v["model"], "claude-sonnet-4-5");
    assert_eq!(
        v["content"],
        json!([{"type": "text", "text": "Hello! This is the mock provider."}])
    );
    assert_eq!(v["stop_reason"], "end_turn");
    assert_eq!(v["stop_sequence"], Value::Null);
    // system + 3 messages = 4 * 4, words 2 + 2 + 2 + 2
    assert_eq!(v["usage"]["input_tokens"], 16 + 8);
    assert_eq!(v["usage"]["output_tokens"], 6);
    assert_eq!(v["usage"]["cache_read_input_tokens"], 0);
    assert_eq!(v["usage"]["cache_creation_input_tokens"], 0);
}

#[tokio::test]
async fn usage_mapping_excludes_cache_from_input_tokens() {
    let mock = start().await;
    let d = directive(json!({
        "prompt_tokens": 100, "completion_tokens": 40, "cached_tokens": 30,
        "cache_write_tokens": 5, "reasoning_tokens": 25, "reasoning": "hmm"
    }));
    let v: Value = anthropic(&mock, body(&d)).await.json().await.unwrap();
    let u = &v["usage"];
    assert_eq!(u["input_tokens"], 65);
    assert_eq!(u["cache_read_input_tokens"], 30);
    assert_eq!(u["cache_creation_input_tokens"], 5);
    assert_eq!(u["output_tokens"], 40);
    assert_eq!(v["content"][0]["type"], "thinking");
    assert_eq!(v["content"][0]["thinking"], "hmm");
    assert!(!v["content"][0]["signature"].as_str().unwrap().is_empty());
    assert_eq!(v["content"][1]["type"], "text");
}

#[tokio::test]
async fn stream_event_sequence_and_framing() {
    let mock = start().await;
    let mut b = body(&directive(
        json!({"reply": "Hello !", "prompt_tokens": 25, "completion_tokens": 15}),
    ));
    b["stream"] = json!(true);
    let resp = anthropic(&mock, b).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(
        resp.headers()["content-type"],
        "text/event-stream; charset=utf-8"
    );
    let text = resp.text().await.unwrap();
    let events = parse_sse(&text, "\n\n");
    assert_eq!(
        names(&events),
        vec![
            "message_start",
            "content_block_start",
            "ping",
            "content_block_delta",
            "content_block_delta",
            "content_block_stop",
            "message_delta",
            "message_stop"
        ]
    );
    for e in &events {
        // the event: name always matches the JSON type
        assert_eq!(e.json()["type"], e.event.as_deref().unwrap());
    }
    let start = events[0].json();
    assert_eq!(start["message"]["content"], json!([]));
    assert_eq!(start["message"]["stop_reason"], Value::Null);
    assert_eq!(start["message"]["usage"]["input_tokens"], 25);
    assert_eq!(
        events[3].json()["delta"],
        json!({"type": "text_delta", "text": "Hello"})
    );
    assert_eq!(
        events[4].json()["delta"],
        json!({"type": "text_delta", "text": " !"})
    );
    let delta = events[6].json();
    assert_eq!(delta["delta"]["stop_reason"], "end_turn");
    assert_eq!(delta["usage"]["output_tokens"], 15);
    assert_eq!(events[7].data, r#"{"type":"message_stop"}"#);
}

#[tokio::test]
async fn stream_thinking_and_tool_use() {
    let mock = start().await;
    let mut b = body(&directive(json!({
        "reasoning": "think about it",
        "tool_calls": [{"name": "get_weather", "arguments": {"location": "San Francisco, CA"}}]
    })));
    b["stream"] = json!(true);
    let text = anthropic(&mock, b).await.text().await.unwrap();
    let events = parse_sse(&text, "\n\n");
    let n = names(&events);
    assert_eq!(n[0], "message_start");
    assert_eq!(n[2], "ping");
    assert_eq!(
        events[1].json()["content_block"],
        json!({"type": "thinking", "thinking": "", "signature": ""})
    );
    let deltas: Vec<Value> = events
        .iter()
        .filter(|e| e.event.as_deref() == Some("content_block_delta"))
        .map(|e| e.json())
        .collect();
    let thinking: String = deltas
        .iter()
        .filter(|d| d["delta"]["type"] == "thinking_delta")
        .map(|d| d["delta"]["thinking"].as_str().unwrap())
        .collect();
    assert_eq!(thinking, "think about it");
    let sig_pos = deltas
        .iter()
        .position(|d| d["delta"]["type"] == "signature_delta")
        .unwrap();
    assert_eq!(deltas[sig_pos]["index"], 0);
    let tool_start = events
        .iter()
        .map(Sse::json)
        .find(|v| v["type"] == "content_block_start" && v["content_block"]["type"] == "tool_use")
        .unwrap();
    assert_eq!(tool_start["index"], 1);
    assert_eq!(tool_start["content_block"]["name"], "get_weather");
    assert!(tool_start["content_block"]["id"]
        .as_str()
        .unwrap()
        .starts_with("toolu_"));
    assert_eq!(tool_start["content_block"]["input"], json!({}));
    let partial: Vec<&str> = deltas
        .iter()
        .filter(|d| d["delta"]["type"] == "input_json_delta")
        .map(|d| d["delta"]["partial_json"].as_str().unwrap())
        .collect();
    assert!(partial.len() >= 2);
    let input: Value = serde_json::from_str(&partial.concat()).unwrap();
    assert_eq!(input, json!({"location": "San Francisco, CA"}));
    let md = events
        .iter()
        .find(|e| e.event.as_deref() == Some("message_delta"))
        .unwrap()
        .json();
    assert_eq!(md["delta"]["stop_reason"], "tool_use");
}

#[tokio::test]
async fn finish_reason_mapping() {
    let mock = start().await;
    for (ours, theirs) in [
        ("length", "max_tokens"),
        ("stop", "end_turn"),
        ("tool_calls", "tool_use"),
        ("stop_sequence", "stop_sequence"),
    ] {
        let d = directive(json!({"finish_reason": ours}));
        let v: Value = anthropic(&mock, body(&d)).await.json().await.unwrap();
        assert_eq!(v["stop_reason"], theirs);
    }
}

#[tokio::test]
async fn required_header_and_fields() {
    let mock = start().await;
    let resp = client()
        .post(format!("{}/v1/messages", mock.base_url()))
        .header("x-api-key", "k")
        .json(&body("hi"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    let v: Value = resp.json().await.unwrap();
    assert_eq!(v["type"], "error");
    assert_eq!(v["error"]["type"], "invalid_request_error");
    assert!(v["error"]["message"]
        .as_str()
        .unwrap()
        .contains("anthropic-version"));

    let mut b = body("hi");
    b.as_object_mut().unwrap().remove("max_tokens");
    let resp = anthropic(&mock, b).await;
    assert_eq!(resp.status(), 400);
    let v: Value = resp.json().await.unwrap();
    assert!(v["error"]["message"]
        .as_str()
        .unwrap()
        .contains("max_tokens"));
}

#[tokio::test]
async fn overloaded_529_error_shape() {
    let mock = start().await;
    let d = directive(json!({"status": 529, "error_message": "Overloaded"}));
    let mut b = body(&d);
    b["stream"] = json!(true);
    let resp = anthropic(&mock, b).await;
    assert_eq!(resp.status(), 529);
    assert!(resp.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("application/json"));
    let v: Value = resp.json().await.unwrap();
    assert_eq!(v["type"], "error");
    assert_eq!(
        v["error"],
        json!({"type": "overloaded_error", "message": "Overloaded"})
    );
    assert!(v["request_id"].as_str().unwrap().starts_with("req_"));
    for (status, kind) in [
        (400, "invalid_request_error"),
        (401, "authentication_error"),
        (403, "permission_error"),
        (404, "not_found_error"),
        (413, "request_too_large"),
        (429, "rate_limit_error"),
        (500, "api_error"),
    ] {
        let d = directive(json!({"status": status}));
        let resp = anthropic(&mock, body(&d)).await;
        assert_eq!(resp.status().as_u16(), status);
        let v: Value = resp.json().await.unwrap();
        assert_eq!(v["error"]["type"], kind);
    }
}

#[tokio::test]
async fn count_tokens_and_models() {
    let mock = start().await;
    let v: Value = client()
        .post(format!("{}/v1/messages/count_tokens", mock.base_url()))
        .header("anthropic-version", "2023-06-01")
        .json(&json!({"model": "claude", "messages": [{"role": "user", "content": "one two"}]}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(v, json!({"input_tokens": 6}));
    let v: Value = client()
        .get(format!("{}/v1/models", mock.base_url()))
        .header("anthropic-version", "2023-06-01")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(v["data"][0]["type"], "model");
    assert_eq!(v["has_more"], false);
}
