//! Embeddings translation against the documented OpenAI and Gemini responses.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use infron_router::providers::embeddings::{self, EmbeddingRequest, EmbeddingResponse, Vector};
use serde_json::json;

fn embed_request(v: serde_json::Value) -> EmbeddingRequest {
    serde_json::from_value(v).unwrap()
}

#[test]
fn documented_openai_response_round_trips() {
    let doc = fixture_json("openai/embeddings.json");
    let parsed: EmbeddingResponse = serde_json::from_value(doc.clone()).unwrap();
    assert_eq!(parsed.usage.prompt_tokens, 8);
    assert_eq!(serde_json::to_value(&parsed).unwrap(), doc);
}

#[test]
fn gemini_batch_request_and_documented_response() {
    let r = embed_request(
        json!({"model": "t/gemini", "input": ["hello world", "abcdefghi"], "dimensions": 3}),
    );
    let body = embeddings::gemini_body(&endpoint("t/gemini"), &r).unwrap();
    assert_eq!(
        body,
        json!({"requests": [
            {"model": "models/gemini-2.5-flash", "content": {"parts": [{"text": "hello world"}]}, "outputDimensionality": 3},
            {"model": "models/gemini-2.5-flash", "content": {"parts": [{"text": "abcdefghi"}]}, "outputDimensionality": 3}
        ]})
    );
    let (resp, usage) =
        embeddings::parse_gemini(&fixture_json("gemini/batch_embed_contents.json"), &r, "m")
            .unwrap();
    let v = serde_json::to_value(&resp).unwrap();
    assert_eq!(v["object"], "list");
    assert_eq!(v["data"][1]["object"], "embedding");
    assert_eq!(v["data"][1]["index"], 1);
    assert_eq!(
        v["data"][0]["embedding"],
        json!([0.013168517, -0.00871193, -0.046782672])
    );
    // No usageMetadata in the documented response: ceil(11/4) + ceil(9/4) = 3 + 3
    assert_eq!(usage.prompt_tokens, 6);
    assert_eq!(v["usage"], json!({"prompt_tokens": 6, "total_tokens": 6}));
    // Reported counts win over the estimate.
    let mut doc = fixture_json("gemini/batch_embed_contents.json");
    doc["usageMetadata"] = json!({"promptTokenCount": 4});
    assert_eq!(
        embeddings::parse_gemini(&doc, &r, "m")
            .unwrap()
            .1
            .prompt_tokens,
        4
    );
}

#[test]
fn base64_and_token_inputs() {
    let r = embed_request(json!({"model": "m", "input": "x", "encoding_format": "base64"}));
    let doc = json!({"embeddings": [{"values": [1.0, 0.0]}]});
    let (resp, _) = embeddings::parse_gemini(&doc, &r, "m").unwrap();
    assert_eq!(
        resp.data[0].embedding,
        Vector::Base64("AACAPwAAAAA=".into())
    );
    let tokens = embed_request(json!({"model": "m", "input": [1, 2, 3]}));
    let err = embeddings::gemini_body(&endpoint("t/gemini"), &tokens).unwrap_err();
    assert!(err.starts_with("input"), "{err}");
    assert_eq!(tokens.prompt_token_bound(), 3);
}
