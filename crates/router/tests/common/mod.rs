//! Shared helpers for the adapter tests: endpoints from a small catalog, fixtures, requests.
#![allow(dead_code)]

use std::sync::Arc;

use infron_router::providers::{ProviderError, StreamEvent};
use infron_router::types::{ChatChunk, ChatRequest};
use infron_router::{Catalog, Endpoint};
use serde_json::Value;

const CATALOG: &str = r#"
[[providers]]
name = "claude"
wire = "anthropic"
base_url = "https://api.anthropic.com"
api_key_env = "K"
[[providers]]
name = "google"
wire = "gemini"
base_url = "https://generativelanguage.googleapis.com"
api_key_env = "K"
[[models]]
id = "t/claude"
name = "Claude"
context_length = 200000
max_output_tokens = 8000
[[models.endpoints]]
provider = "claude"
upstream_model = "claude-sonnet-4-5"
pricing = { prompt = "0.000003", completion = "0.000015" }
[[models]]
id = "t/gemini"
name = "Gemini"
context_length = 1000000
max_output_tokens = 8000
[[models.endpoints]]
provider = "google"
upstream_model = "gemini-2.5-flash"
pricing = { prompt = "0.0000003", completion = "0.0000025" }
"#;

pub fn endpoint(model: &str) -> Arc<Endpoint> {
    let catalog = Catalog::parse(CATALOG, "test.toml", &|_| Some("key".into())).unwrap();
    catalog.model(model).unwrap().endpoints[0].clone()
}

pub fn fixture(path: &str) -> String {
    let full = format!("{}/tests/fixtures/{path}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&full).unwrap_or_else(|e| panic!("{full}: {e}"))
}

pub fn fixture_json(path: &str) -> Value {
    serde_json::from_str(&fixture(path)).unwrap()
}

pub fn request(v: Value) -> ChatRequest {
    serde_json::from_value(v).unwrap()
}

/// The chunks of a translated stream (panics on an error) and the usage, if any.
pub fn split(
    events: Vec<Result<StreamEvent, ProviderError>>,
) -> (Vec<ChatChunk>, Option<infron_billing::Usage>) {
    let mut chunks = Vec::new();
    let mut usage = None;
    for e in events {
        match e.unwrap() {
            StreamEvent::Chunk(c) => chunks.push(c),
            StreamEvent::Usage(u) => usage = Some(u),
        }
    }
    (chunks, usage)
}

/// Content, reasoning and finish reason accumulated over chunks.
pub fn accumulate(chunks: &[ChatChunk]) -> (String, String, Option<String>) {
    let mut content = String::new();
    let mut reasoning = String::new();
    let mut finish = None;
    for c in chunks {
        for choice in &c.choices {
            content.push_str(choice.delta.content.as_deref().unwrap_or_default());
            reasoning.push_str(choice.delta.reasoning.as_deref().unwrap_or_default());
            if choice.finish_reason.is_some() {
                finish = choice.finish_reason.clone();
            }
        }
    }
    (content, reasoning, finish)
}

/// Tool calls rebuilt the way an OpenAI client does: by index, name and id once, arguments
/// concatenated.
pub fn tool_calls(chunks: &[ChatChunk]) -> Vec<(String, String, String)> {
    let mut calls: Vec<(String, String, String)> = Vec::new();
    for c in chunks {
        for choice in &c.choices {
            for call in choice.delta.tool_calls.iter().flatten() {
                let i = call["index"].as_u64().unwrap() as usize;
                if calls.len() <= i {
                    calls.resize(i + 1, Default::default());
                }
                if let Some(id) = call["id"].as_str() {
                    calls[i].0 = id.to_string();
                }
                if let Some(n) = call.pointer("/function/name").and_then(Value::as_str) {
                    calls[i].1 = n.to_string();
                }
                if let Some(a) = call.pointer("/function/arguments").and_then(Value::as_str) {
                    calls[i].2.push_str(a);
                }
            }
        }
    }
    calls
}
