//! Gemini wire format.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use serde_json::{json, Value};

fn body(text: &str) -> Value {
    json!({
        "systemInstruction": {"parts": [{"text": "Be brief."}]},
        "contents": [
            {"role": "user", "parts": [{"text": "first question"}]},
            {"role": "model", "parts": [{"text": "first answer"}]},
            {"role": "user", "parts": [{"text": text}]}
        ]
    })
}

#[tokio::test]
async fn generate_content_shape_and_default_usage() {
    let mock = start().await;
    let resp = gemini(
        &mock,
        "gemini-2.5-flash:generateContent",
        body("hello there"),
    )
    .await;
    assert_eq!(resp.status(), 200);
    let text = resp.text().await.unwrap();
    assert!(
        text.starts_with(r#"{"candidates":[{"content":{"parts":"#),
        "{text}"
    );
    let v: Value = serde_json::from_str(&text).unwrap();
    let c = &v["candidates"][0];
    assert_eq!(c["content"]["role"], "model");
    assert_eq!(
        c["content"]["parts"],
        json!([{"text": "Hello! This is the mock provider."}])
    );
    assert_eq!(c["finishReason"], "STOP");
    let u = &v["usageMetadata"];
    assert_eq!(u["promptTokenCount"], 16 + 8);
    assert_eq!(u["candidatesTokenCount"], 6);
    assert_eq!(u["totalTokenCount"], 30);
    assert!(u.get("cachedContentTokenCount").is_none());
    assert!(u.get("thoughtsTokenCount").is_none());
    assert_eq!(v["modelVersion"], "gemini-2.5-flash");
}

#[tokio::test]
async fn usage_mapping_thoughts_and_cache() {
    let mock = start().await;
    let d = directive(json!({
        "prompt_tokens": 100, "completion_tokens": 40, "cached_tokens": 30,
        "reasoning_tokens": 25, "reasoning": "pondering", "reply": "done"
    }));
    let v: Value = gemini(&mock, "g:generateContent", body(&d))
        .await
        .json()
        .await
        .unwrap();
    let u = &v["usageMetadata"];
    assert_eq!(u["promptTokenCount"], 100);
    assert_eq!(u["cachedContentTokenCount"], 30);
    assert_eq!(u["candidatesTokenCount"], 15);
    assert_eq!(u["thoughtsTokenCount"], 25);
    assert_eq!(u["totalTokenCount"], 140);
    let parts = &v["candidates"][0]["content"]["parts"];
    assert_eq!(parts[0], json!({"text": "pondering", "thought": true}));
    assert_eq!(parts[1], json!({"text": "done"}));
}

#[tokio::test]
async fn function_call_parts() {
    let mock = start().await;
    let d = directive(
        json!({"tool_calls": [{"name": "find_movies", "arguments": {"location": "Mountain View, CA"}}]}),
    );
    let v: Value = gemini(&mock, "g:generateContent", body(&d))
        .await
        .json()
        .await
        .unwrap();
    let c = &v["candidates"][0];
    assert_eq!(
        c["content"]["parts"][0],
        json!({"functionCall": {"name": "find_movies", "args": {"location": "Mountain View, CA"}}})
    );
    assert_eq!(c["finishReason"], "STOP");

    let d = directive(json!({"finish_reason": "length"}));
    let v: Value = gemini(&mock, "g:generateContent", body(&d))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(v["candidates"][0]["finishReason"], "MAX_TOKENS");
}

#[tokio::test]
async fn stream_sse_framing_and_running_usage() {
    let mock = start().await;
    let d = directive(
        json!({"reply": "a b c", "reasoning": "x y", "reasoning_tokens": 4, "prompt_tokens": 10}),
    );
    let resp = gemini(&mock, "g:streamGenerateContent?alt=sse", body(&d)).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["content-type"], "text/event-stream");
    let text = resp.text().await.unwrap();
    assert!(!text.contains("[DONE]"));
    let events = parse_sse(&text, "\r\n\r\n");
    assert_eq!(events.len(), 2 + 3 + 1);
    let chunks: Vec<Value> = events.iter().map(Sse::json).collect();
    assert_eq!(
        chunks[0]["candidates"][0]["content"]["parts"][0],
        json!({"text": "x", "thought": true})
    );
    let visible: String = chunks[2..5]
        .iter()
        .map(|c| {
            c["candidates"][0]["content"]["parts"][0]["text"]
                .as_str()
                .unwrap()
        })
        .collect();
    assert_eq!(visible, "a b c");
    for c in &chunks[..5] {
        assert!(c["candidates"][0].get("finishReason").is_none());
    }
    let last = chunks.last().unwrap();
    assert_eq!(last["candidates"][0]["finishReason"], "STOP");
    let u = &last["usageMetadata"];
    assert_eq!(u["promptTokenCount"], 10);
    assert_eq!(u["candidatesTokenCount"], 3);
    assert_eq!(u["thoughtsTokenCount"], 4);
    assert_eq!(u["totalTokenCount"], 17);
    // running counts never exceed the final ones
    for c in &chunks {
        assert!(c["usageMetadata"]["totalTokenCount"].as_u64().unwrap() <= 17);
    }
    let id = &chunks[0]["responseId"];
    assert!(chunks.iter().all(|c| &c["responseId"] == id));
}

#[tokio::test]
async fn stream_without_alt_sse_is_a_json_array() {
    let mock = start().await;
    let d = directive(json!({"reply": "a b"}));
    let resp = gemini(&mock, "g:streamGenerateContent", body(&d)).await;
    assert!(resp.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("application/json"));
    let v: Value = resp.json().await.unwrap();
    let arr = v.as_array().unwrap();
    assert_eq!(arr.len(), 3);
    assert_eq!(arr[2]["candidates"][0]["finishReason"], "STOP");
}

#[tokio::test]
async fn stream_omit_usage() {
    let mock = start().await;
    let d = directive(json!({"omit_usage": true}));
    let text = gemini(&mock, "g:streamGenerateContent?alt=sse", body(&d))
        .await
        .text()
        .await
        .unwrap();
    assert!(!text.contains("usageMetadata"));
    assert!(text.contains("\"finishReason\":\"STOP\""));
}

#[tokio::test]
async fn embed_and_batch_embed() {
    let mock = start().await;
    let v: Value = gemini(
        &mock,
        "gemini-embedding-001:embedContent",
        json!({"content": {"parts": [{"text": "What is the meaning of life?"}]}}),
    )
    .await
    .json()
    .await
    .unwrap();
    assert_eq!(v["embedding"]["values"].as_array().unwrap().len(), 8);
    assert_eq!(v["usageMetadata"]["promptTokenCount"], 6);

    let v2: Value = gemini(
        &mock,
        "gemini-embedding-001:batchEmbedContents",
        json!({"requests": [
            {"model": "models/gemini-embedding-001", "content": {"parts": [{"text": "What is the meaning of life?"}]}},
            {"model": "models/gemini-embedding-001", "content": {"parts": [{"text": "hi"}]}, "outputDimensionality": 3}
        ]}),
    )
    .await
    .json()
    .await
    .unwrap();
    let embeddings = v2["embeddings"].as_array().unwrap();
    assert_eq!(embeddings.len(), 2);
    assert_eq!(embeddings[0]["values"], v["embedding"]["values"]);
    assert_eq!(embeddings[1]["values"].as_array().unwrap().len(), 3);
}

#[tokio::test]
async fn error_shape_with_retry_info() {
    let mock = start().await;
    let d = directive(json!({"status": 429, "error_message": "quota", "retry_after": 7}));
    let resp = gemini(&mock, "g:streamGenerateContent?alt=sse", body(&d)).await;
    assert_eq!(resp.status(), 429);
    assert_eq!(resp.headers()["retry-after"], "7");
    let v: Value = resp.json().await.unwrap();
    assert_eq!(v["error"]["code"], 429);
    assert_eq!(v["error"]["message"], "quota");
    assert_eq!(v["error"]["status"], "RESOURCE_EXHAUSTED");
    assert_eq!(v["error"]["details"][0]["retryDelay"], "7s");

    let resp = gemini(&mock, "g:unknownMethod", body("x")).await;
    assert_eq!(resp.status(), 404);
    let v: Value = resp.json().await.unwrap();
    assert_eq!(v["error"]["status"], "NOT_FOUND");
}
