//! OpenAI wire format: chat completions, legacy completions, embeddings, models.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use infron_mock_provider::Behaviour;
use serde_json::{json, Value};

fn chat_body(text: &str) -> Value {
    json!({
        "model": "gpt-4o",
        "messages": [
            {"role": "system", "content": "You are terse."},
            {"role": "user", "content": text}
        ]
    })
}

#[tokio::test]
async fn chat_non_stream_default_shape_and_usage() {
    let mock = start().await;
    let resp = openai(&mock, "/v1/chat/completions", chat_body("Say hello")).await;
    assert_eq!(resp.status(), 200);
    assert!(resp.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("application/json"));
    assert!(resp.headers().contains_key("x-request-id"));
    let text = resp.text().await.unwrap();
    // documented key order
    assert!(text.starts_with(r#"{"id":"chatcmpl-"#), "{text}");
    let v: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(v["object"], "chat.completion");
    assert_eq!(v["model"], "gpt-4o");
    assert_eq!(v["choices"][0]["message"]["role"], "assistant");
    assert_eq!(
        v["choices"][0]["message"]["content"],
        "Hello! This is the mock provider."
    );
    assert_eq!(v["choices"][0]["finish_reason"], "stop");
    // 2 messages * 4 + 3 + 2 words
    assert_eq!(v["usage"]["prompt_tokens"], 13);
    assert_eq!(v["usage"]["completion_tokens"], 6);
    assert_eq!(v["usage"]["total_tokens"], 19);
    assert_eq!(v["usage"]["prompt_tokens_details"]["cached_tokens"], 0);
    assert_eq!(
        v["usage"]["completion_tokens_details"]["reasoning_tokens"],
        0
    );
}

#[tokio::test]
async fn chat_usage_mapping_and_reasoning() {
    let mock = start().await;
    let d = directive(json!({
        "reply": "four word reply here",
        "reasoning": "let me think",
        "prompt_tokens": 100, "completion_tokens": 40, "cached_tokens": 30,
        "cache_write_tokens": 5, "reasoning_tokens": 25
    }));
    let v: Value = openai(&mock, "/v1/chat/completions", chat_body(&d))
        .await
        .json()
        .await
        .unwrap();
    let u = &v["usage"];
    assert_eq!(u["prompt_tokens"], 100);
    assert_eq!(u["completion_tokens"], 40);
    assert_eq!(u["total_tokens"], 140);
    assert_eq!(u["prompt_tokens_details"]["cached_tokens"], 30);
    assert_eq!(u["prompt_tokens_details"]["cache_write_tokens"], 5);
    assert_eq!(u["completion_tokens_details"]["reasoning_tokens"], 25);
    let msg = &v["choices"][0]["message"];
    assert_eq!(msg["content"], "four word reply here");
    assert_eq!(msg["reasoning_content"], "let me think");
}

#[tokio::test]
async fn chat_stream_framing_with_usage_chunk() {
    let mock = start().await;
    let mut body = chat_body(&directive(json!({"reply": "Hello big world"})));
    body["stream"] = json!(true);
    body["stream_options"] = json!({"include_usage": true});
    let resp = openai(&mock, "/v1/chat/completions", body).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(
        resp.headers()["content-type"],
        "text/event-stream; charset=utf-8"
    );
    let text = resp.text().await.unwrap();
    let events = parse_sse(&text, "\n\n");
    assert!(events.iter().all(|e| e.event.is_none()));
    assert_eq!(events.last().unwrap().data, "[DONE]");
    let chunks: Vec<Value> = events[..events.len() - 1].iter().map(Sse::json).collect();
    // role chunk, 3 words, finish chunk, usage chunk
    assert_eq!(chunks.len(), 6);
    let id = chunks[0]["id"].clone();
    for c in &chunks {
        assert_eq!(c["id"], id);
        assert_eq!(c["object"], "chat.completion.chunk");
        assert_eq!(c["created"], chunks[0]["created"]);
        assert_eq!(c["model"], "gpt-4o");
        assert!(c.as_object().unwrap().contains_key("usage"));
    }
    assert_eq!(
        chunks[0]["choices"][0]["delta"],
        json!({"role": "assistant", "content": "", "refusal": null})
    );
    let content: String = chunks[1..4]
        .iter()
        .map(|c| c["choices"][0]["delta"]["content"].as_str().unwrap())
        .collect();
    assert_eq!(content, "Hello big world");
    assert_eq!(chunks[1]["usage"], Value::Null);
    assert_eq!(chunks[4]["choices"][0]["delta"], json!({}));
    assert_eq!(chunks[4]["choices"][0]["finish_reason"], "stop");
    assert_eq!(chunks[5]["choices"], json!([]));
    assert_eq!(chunks[5]["usage"]["completion_tokens"], 3);
    assert!(chunks[5]["usage"]["prompt_tokens"].as_u64().unwrap() > 0);
}

#[tokio::test]
async fn chat_stream_without_include_usage_has_no_usage() {
    let mock = start().await;
    let mut body = chat_body("hi");
    body["stream"] = json!(true);
    let text = openai(&mock, "/v1/chat/completions", body)
        .await
        .text()
        .await
        .unwrap();
    assert!(!text.contains("usage"), "{text}");
    assert!(text.ends_with("data: [DONE]\n\n"));
}

#[tokio::test]
async fn chat_stream_omit_usage_even_when_requested() {
    let mock = start().await;
    mock.set_model_behaviour(
        "gpt-4o",
        Behaviour {
            omit_usage: Some(true),
            ..Default::default()
        },
    );
    let mut body = chat_body("hi");
    body["stream"] = json!(true);
    body["stream_options"] = json!({"include_usage": true});
    let text = openai(&mock, "/v1/chat/completions", body)
        .await
        .text()
        .await
        .unwrap();
    let events = parse_sse(&text, "\n\n");
    assert!(events[..events.len() - 1]
        .iter()
        .all(|e| e.json()["usage"].is_null()));
    assert!(text.contains("\"finish_reason\":\"stop\""));
    assert!(text.ends_with("data: [DONE]\n\n"));
}

#[tokio::test]
async fn chat_tool_calls_non_stream_and_stream() {
    let mock = start().await;
    let d = directive(json!({"tool_calls": [
        {"name": "get_weather", "arguments": {"location": "Paris, France", "unit": "celsius"}},
        {"name": "noop", "arguments": "{}"}
    ]}));
    let v: Value = openai(&mock, "/v1/chat/completions", chat_body(&d))
        .await
        .json()
        .await
        .unwrap();
    let choice = &v["choices"][0];
    assert_eq!(choice["finish_reason"], "tool_calls");
    assert_eq!(choice["message"]["content"], Value::Null);
    let calls = choice["message"]["tool_calls"].as_array().unwrap();
    assert_eq!(calls.len(), 2);
    assert!(calls[0]["id"].as_str().unwrap().starts_with("call_"));
    assert_eq!(calls[0]["type"], "function");
    assert_eq!(calls[0]["function"]["name"], "get_weather");
    let args: Value =
        serde_json::from_str(calls[0]["function"]["arguments"].as_str().unwrap()).unwrap();
    assert_eq!(args["location"], "Paris, France");
    assert_eq!(calls[1]["function"]["arguments"], "{}");

    let mut body = chat_body(&d);
    body["stream"] = json!(true);
    let text = openai(&mock, "/v1/chat/completions", body)
        .await
        .text()
        .await
        .unwrap();
    let events = parse_sse(&text, "\n\n");
    let deltas: Vec<Value> = events[..events.len() - 1]
        .iter()
        .map(|e| e.json()["choices"][0]["delta"].clone())
        .collect();
    let tool_deltas: Vec<&Value> = deltas
        .iter()
        .filter_map(|d| d.get("tool_calls"))
        .map(|t| &t[0])
        .collect();
    // first delta per call carries id + type + name, then arguments in 2+ pieces
    let first = tool_deltas[0];
    assert_eq!(first["index"], 0);
    assert!(first["id"].as_str().unwrap().starts_with("call_"));
    assert_eq!(first["function"]["name"], "get_weather");
    assert_eq!(first["function"]["arguments"], "");
    let pieces: Vec<&str> = tool_deltas
        .iter()
        .skip(1)
        .take_while(|d| d["index"] == 0)
        .map(|d| {
            assert!(d.get("id").is_none());
            d["function"]["arguments"].as_str().unwrap()
        })
        .collect();
    assert!(pieces.len() >= 2, "{pieces:?}");
    let args: Value = serde_json::from_str(&pieces.concat()).unwrap();
    assert_eq!(args["unit"], "celsius");
    assert!(tool_deltas
        .iter()
        .any(|d| d["index"] == 1 && d["function"]["name"] == "noop"));
    let finish = events[events.len() - 2].json();
    assert_eq!(finish["choices"][0]["finish_reason"], "tool_calls");
}

#[tokio::test]
async fn chat_stream_reasoning_content_deltas_and_chunks() {
    let mock = start().await;
    let d = directive(json!({"reply": "one two three four", "reasoning": "a b", "chunks": 2}));
    let mut body = chat_body(&d);
    body["stream"] = json!(true);
    let text = openai(&mock, "/v1/chat/completions", body)
        .await
        .text()
        .await
        .unwrap();
    let events = parse_sse(&text, "\n\n");
    let deltas: Vec<Value> = events[1..events.len() - 2]
        .iter()
        .map(|e| e.json()["choices"][0]["delta"].clone())
        .collect();
    assert_eq!(
        deltas,
        vec![
            json!({"reasoning_content": "a"}),
            json!({"reasoning_content": " b"}),
            json!({"content": "one two"}),
            json!({"content": " three four"}),
        ]
    );
}

#[tokio::test]
async fn finish_reason_override() {
    let mock = start().await;
    let d = directive(json!({"finish_reason": "length"}));
    let v: Value = openai(&mock, "/v1/chat/completions", chat_body(&d))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(v["choices"][0]["finish_reason"], "length");
}

#[tokio::test]
async fn legacy_completions_non_stream_and_stream() {
    let mock = start().await;
    let body = json!({"model": "gpt-3.5-turbo-instruct", "prompt": "Say this is a test"});
    let v: Value = openai(&mock, "/v1/completions", body.clone())
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(v["object"], "text_completion");
    assert!(v["id"].as_str().unwrap().starts_with("cmpl-"));
    assert_eq!(v["choices"][0]["text"], "Hello! This is the mock provider.");
    assert_eq!(v["choices"][0]["finish_reason"], "stop");
    assert_eq!(v["usage"]["prompt_tokens"], 4 + 5);
    assert_eq!(v["usage"]["completion_tokens"], 6);
    assert_eq!(v["usage"]["total_tokens"], 15);

    let mut body = body;
    body["prompt"] = json!(format!("x {}", directive(json!({"reply": "a b"}))));
    body["stream"] = json!(true);
    body["stream_options"] = json!({"include_usage": true});
    let text = openai(&mock, "/v1/completions", body)
        .await
        .text()
        .await
        .unwrap();
    let events = parse_sse(&text, "\n\n");
    assert_eq!(events.last().unwrap().data, "[DONE]");
    let chunks: Vec<Value> = events[..events.len() - 1].iter().map(Sse::json).collect();
    assert_eq!(chunks.len(), 4);
    assert!(chunks.iter().all(|c| c["object"] == "text_completion"));
    assert_eq!(chunks[0]["choices"][0]["text"], "a");
    assert_eq!(chunks[1]["choices"][0]["text"], " b");
    assert_eq!(chunks[2]["choices"][0]["finish_reason"], "stop");
    assert_eq!(chunks[3]["choices"], json!([]));
    assert_eq!(chunks[3]["usage"]["completion_tokens"], 2);
}

#[tokio::test]
async fn embeddings_deterministic_dims_and_usage() {
    let mock = start().await;
    let body = json!({"model": "text-embedding-3-small", "input": ["hello world", "foo"]});
    let v: Value = openai(&mock, "/v1/embeddings", body.clone())
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(v["object"], "list");
    assert_eq!(v["model"], "text-embedding-3-small");
    let data = v["data"].as_array().unwrap();
    assert_eq!(data.len(), 2);
    assert_eq!(data[1]["index"], 1);
    assert_eq!(data[0]["object"], "embedding");
    assert_eq!(data[0]["embedding"].as_array().unwrap().len(), 8);
    assert_eq!(v["usage"]["prompt_tokens"], 3);
    assert_eq!(v["usage"]["total_tokens"], 3);
    let again: Value = openai(&mock, "/v1/embeddings", body)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(again["data"], v["data"]);

    let v: Value = openai(
        &mock,
        "/v1/embeddings",
        json!({"model": "m", "input": "hi", "dimensions": 4, "encoding_format": "base64"}),
    )
    .await
    .json()
    .await
    .unwrap();
    // 4 floats * 4 bytes = 16 bytes -> 24 base64 chars
    assert_eq!(v["data"][0]["embedding"].as_str().unwrap().len(), 24);

    mock.set_model_behaviour(
        "m",
        Behaviour {
            embedding_dims: Some(3),
            ..Default::default()
        },
    );
    let v: Value = openai(
        &mock,
        "/v1/embeddings",
        json!({"model": "m", "input": "hi"}),
    )
    .await
    .json()
    .await
    .unwrap();
    assert_eq!(v["data"][0]["embedding"].as_array().unwrap().len(), 3);
}

#[tokio::test]
async fn models_list() {
    let mock = start().await;
    mock.set_model_behaviour("gpt-x", Behaviour::default());
    let v: Value = client()
        .get(format!("{}/v1/models", mock.base_url()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(v["object"], "list");
    let ids: Vec<&str> = v["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_str().unwrap())
        .collect();
    assert!(ids.contains(&"gpt-x"));
}

#[tokio::test]
async fn bad_requests() {
    let mock = start().await;
    let resp = openai(&mock, "/v1/chat/completions", json!({"messages": []})).await;
    assert_eq!(resp.status(), 400);
    let v: Value = resp.json().await.unwrap();
    assert_eq!(v["error"]["type"], "invalid_request_error");
    let resp = client()
        .post(format!("{}/v1/chat/completions", mock.base_url()))
        .body("not json")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    let resp = client()
        .post(format!("{}/v1/nope", mock.base_url()))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 404);
    let v: Value = resp.json().await.unwrap();
    assert!(v["error"]["message"].is_string());
}
