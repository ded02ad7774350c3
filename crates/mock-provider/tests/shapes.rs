//! The mock's output against the documented examples in `fixtures/`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use serde_json::{json, Value};

#[tokio::test]
async fn openai_chat_completion_matches_documented_object() {
    let mock = start().await;
    let ours: Value = openai(
        &mock,
        "/v1/chat/completions",
        json!({"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "Hello!"}]}),
    )
    .await
    .json()
    .await
    .unwrap();
    assert_documented_keys(&fixture_json("openai_chat_completion.json"), &ours, "$");
}

#[tokio::test]
async fn openai_chat_stream_matches_documented_chunks() {
    let mock = start().await;
    let text = openai(
        &mock,
        "/v1/chat/completions",
        json!({
            "model": "gpt-4o-mini", "stream": true, "stream_options": {"include_usage": true},
            "messages": [{"role": "user", "content": "[[mock:{\"reply\":\"Hello\"}]]"}]
        }),
    )
    .await
    .text()
    .await
    .unwrap();
    let doc = parse_sse(&fixture("openai_chat_stream.sse"), "\n\n");
    let ours = parse_sse(&text, "\n\n");
    assert_eq!(doc.len(), ours.len());
    for (d, o) in doc.iter().zip(&ours) {
        if d.data == "[DONE]" {
            assert_eq!(o.data, "[DONE]");
        } else {
            assert_documented_keys(&d.json(), &o.json(), "$");
        }
    }
}

#[tokio::test]
async fn openai_other_documented_objects() {
    let mock = start().await;
    let ours: Value = openai(
        &mock,
        "/v1/completions",
        json!({"model": "gpt-3.5-turbo-instruct", "prompt": "Say this is a test"}),
    )
    .await
    .json()
    .await
    .unwrap();
    assert_documented_keys(&fixture_json("openai_completion.json"), &ours, "$");
    let ours: Value = openai(
        &mock,
        "/v1/embeddings",
        json!({"model": "text-embedding-ada-002", "input": "The food was delicious"}),
    )
    .await
    .json()
    .await
    .unwrap();
    assert_documented_keys(&fixture_json("openai_embeddings.json"), &ours, "$");
    let ours: Value = openai(
        &mock,
        "/v1/chat/completions",
        json!({"model": "m", "messages": [{"role": "user", "content": "[[mock:{\"status\":401}]]"}]}),
    )
    .await
    .json()
    .await
    .unwrap();
    assert_documented_keys(&fixture_json("openai_error.json"), &ours, "$");
}

#[tokio::test]
async fn anthropic_matches_documented_examples() {
    let mock = start().await;
    let ours: Value = anthropic(
        &mock,
        json!({"model": "claude-sonnet-4-5", "max_tokens": 1024, "messages": [{"role": "user", "content": "Hello, Claude"}]}),
    )
    .await
    .json()
    .await
    .unwrap();
    assert_documented_keys(&fixture_json("anthropic_message.json"), &ours, "$");

    let text = anthropic(
        &mock,
        json!({
            "model": "claude-sonnet-4-5", "max_tokens": 1024, "stream": true,
            "messages": [{"role": "user", "content": "[[mock:{\"reply\":\"Hello!\",\"chunks\":2}]]"}]
        }),
    )
    .await
    .text()
    .await
    .unwrap();
    let doc = parse_sse(&fixture("anthropic_stream.sse"), "\n\n");
    let ours = parse_sse(&text, "\n\n");
    let doc_names: Vec<_> = doc.iter().map(|e| e.event.clone()).collect();
    let our_names: Vec<_> = ours.iter().map(|e| e.event.clone()).collect();
    assert_eq!(doc_names, our_names);
    for (d, o) in doc.iter().zip(&ours) {
        assert_documented_keys(&d.json(), &o.json(), "$");
    }

    let ours: Value = anthropic(
        &mock,
        json!({"model": "c", "max_tokens": 5, "messages": [{"role": "user", "content": "[[mock:{\"status\":404}]]"}]}),
    )
    .await
    .json()
    .await
    .unwrap();
    assert_documented_keys(&fixture_json("anthropic_error.json"), &ours, "$");
}

#[tokio::test]
async fn gemini_matches_documented_examples() {
    let mock = start().await;
    let req = json!({"contents": [{"parts": [{"text": "Explain how AI works in a few words"}]}]});
    let ours: Value = gemini(&mock, "gemini-2.5-flash:generateContent", req)
        .await
        .json()
        .await
        .unwrap();
    assert_documented_keys(&fixture_json("gemini_generate_content.json"), &ours, "$");

    let req = json!({"contents": [{"parts": [{"text": "[[mock:{\"reply\":\"Four.\"}]]"}]}]});
    let text = gemini(&mock, "gemini-2.5-flash:streamGenerateContent?alt=sse", req)
        .await
        .text()
        .await
        .unwrap();
    let doc = parse_sse(&fixture("gemini_stream.sse"), "\r\n\r\n");
    let ours = parse_sse(&text, "\r\n\r\n");
    assert_eq!(doc.len(), ours.len());
    for (d, o) in doc.iter().zip(&ours) {
        assert_documented_keys(&d.json(), &o.json(), "$");
    }

    let ours: Value = gemini(
        &mock,
        "gemini-embedding-001:embedContent",
        json!({"content": {"parts": [{"text": "What is the meaning of life?"}]}}),
    )
    .await
    .json()
    .await
    .unwrap();
    assert_documented_keys(&fixture_json("gemini_embed_content.json"), &ours, "$");
    let ours: Value = gemini(
        &mock,
        "gemini-embedding-001:batchEmbedContents",
        json!({"requests": [
            {"content": {"parts": [{"text": "a"}]}},
            {"content": {"parts": [{"text": "b"}]}}
        ]}),
    )
    .await
    .json()
    .await
    .unwrap();
    assert_documented_keys(
        &fixture_json("gemini_batch_embed_contents.json"),
        &ours,
        "$",
    );
    let ours: Value = gemini(
        &mock,
        "g:generateContent",
        json!({"contents": [{"parts": [{"text": "[[mock:{\"status\":429}]]"}]}]}),
    )
    .await
    .json()
    .await
    .unwrap();
    assert_documented_keys(&fixture_json("gemini_error.json"), &ours, "$");
}
