//! Helpers shared by the integration tests.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use infron_mock_provider::{MockConfig, MockProvider};
use serde_json::Value;

pub async fn start() -> MockProvider {
    MockProvider::start("127.0.0.1:0").await.unwrap()
}

pub async fn start_with_key(key: &str) -> MockProvider {
    MockProvider::start_with(
        "127.0.0.1:0",
        MockConfig {
            expected_api_key: Some(key.to_string()),
            ..MockConfig::default()
        },
    )
    .await
    .unwrap()
}

pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(20))
        .build()
        .unwrap()
}

/// POST JSON with the OpenAI auth header.
pub async fn openai(mock: &MockProvider, path: &str, body: Value) -> reqwest::Response {
    client()
        .post(format!("{}{path}", mock.base_url()))
        .bearer_auth("sk-test")
        .json(&body)
        .send()
        .await
        .unwrap()
}

/// POST JSON with the Anthropic headers.
pub async fn anthropic(mock: &MockProvider, body: Value) -> reqwest::Response {
    client()
        .post(format!("{}/v1/messages", mock.base_url()))
        .header("x-api-key", "sk-ant-test")
        .header("anthropic-version", "2023-06-01")
        .json(&body)
        .send()
        .await
        .unwrap()
}

/// POST JSON to a Gemini method (`path` like `gemini-2.5-flash:generateContent`).
pub async fn gemini(mock: &MockProvider, path: &str, body: Value) -> reqwest::Response {
    client()
        .post(format!("{}/v1beta/models/{path}", mock.base_url()))
        .header("x-goog-api-key", "AIza-test")
        .json(&body)
        .send()
        .await
        .unwrap()
}

/// One SSE event: optional `event:` name and the `data:` payload.
#[derive(Debug, Clone, PartialEq)]
pub struct Sse {
    pub event: Option<String>,
    pub data: String,
}

impl Sse {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.data)
            .unwrap_or_else(|e| panic!("bad JSON in SSE data {:?}: {e}", self.data))
    }
}

/// Splits an SSE body on `separator` (`"\n\n"` or `"\r\n\r\n"`), asserting
/// that the body ends with a complete frame.
pub fn parse_sse(body: &str, separator: &str) -> Vec<Sse> {
    assert!(
        body.ends_with(separator),
        "stream must end with {separator:?}: {body:?}"
    );
    let line_end = if separator == "\r\n\r\n" {
        "\r\n"
    } else {
        "\n"
    };
    body[..body.len() - separator.len()]
        .split(separator)
        .map(|frame| {
            let mut event = None;
            let mut data = None;
            for line in frame.split(line_end) {
                if let Some(v) = line.strip_prefix("event: ") {
                    event = Some(v.to_string());
                } else if let Some(v) = line.strip_prefix("data: ") {
                    data = Some(v.to_string());
                } else {
                    panic!("unexpected SSE line {line:?} in {frame:?}");
                }
            }
            Sse {
                event,
                data: data.expect("frame without data"),
            }
        })
        .collect()
}

/// Every key of `doc` (recursively; arrays compared element-wise on the first
/// element) is present in `ours` with the same JSON type.
pub fn assert_documented_keys(doc: &Value, ours: &Value, path: &str) {
    match (doc, ours) {
        (Value::Object(d), Value::Object(o)) => {
            for (k, dv) in d {
                let ov = o
                    .get(k)
                    .unwrap_or_else(|| panic!("missing documented key {path}.{k} in {ours}"));
                assert_documented_keys(dv, ov, &format!("{path}.{k}"));
            }
        }
        (Value::Array(d), Value::Array(o)) => {
            if let (Some(d0), Some(o0)) = (d.first(), o.first()) {
                assert_documented_keys(d0, o0, &format!("{path}[0]"));
            }
        }
        (Value::Null, _) | (_, Value::Null) => {}
        (d, o) => assert_eq!(
            std::mem::discriminant(d),
            std::mem::discriminant(o),
            "type mismatch at {path}: documented {d}, mock {o}"
        ),
    }
}

pub fn fixture(name: &str) -> String {
    let path = format!("{}/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

pub fn fixture_json(name: &str) -> Value {
    serde_json::from_str(&fixture(name)).unwrap()
}

/// Directive text for a behaviour JSON.
pub fn directive(v: Value) -> String {
    format!("[[mock:{v}]]")
}
