//! Provider conformance: one table of cases, run through the real gateway against each wire
//! format the mock speaks (OpenAI, Anthropic Messages, Gemini generateContent, Bedrock
//! Converse, Vertex AI with both publishers, Azure OpenAI). A case checks what the client sees,
//! what reached the provider, and what was charged.

use infron_mock_provider::{Behaviour, Fault, RecordedRequest};
use rust_decimal::Decimal;
use serde_json::{json, Value};

use crate::helpers::*;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Format {
    OpenAi,
    Anthropic,
    Gemini,
    Bedrock,
    VertexAnthropic,
    VertexGemini,
    Azure,
}

/// The request body's shape: Vertex carries Anthropic's and Gemini's, Azure OpenAI's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Family {
    OpenAi,
    Anthropic,
    Gemini,
    Bedrock,
}

impl Format {
    fn family(self) -> Family {
        match self {
            Format::OpenAi | Format::Azure => Family::OpenAi,
            Format::Anthropic | Format::VertexAnthropic => Family::Anthropic,
            Format::Gemini | Format::VertexGemini => Family::Gemini,
            Format::Bedrock => Family::Bedrock,
        }
    }
}

struct Wire {
    format: Format,
    model: &'static str,
    upstream: &'static str,
    provider: &'static str,
    /// A secret of this wire a provider might echo in an error message (its key, or for
    /// Vertex an access-token-shaped word).
    secret: &'static str,
}

const OPENAI: Wire = Wire {
    format: Format::OpenAi,
    model: "conf/openai",
    upstream: "conf-openai",
    provider: "mock-a",
    secret: PROVIDER_KEY,
};
const ANTHROPIC: Wire = Wire {
    format: Format::Anthropic,
    model: "conf/anthropic",
    upstream: "conf-claude",
    provider: "mock-anthropic",
    secret: PROVIDER_KEY,
};
const GEMINI: Wire = Wire {
    format: Format::Gemini,
    model: "conf/gemini",
    upstream: "conf-gemini",
    provider: "mock-gemini",
    secret: PROVIDER_KEY,
};
const BEDROCK: Wire = Wire {
    format: Format::Bedrock,
    model: "conf/bedrock",
    upstream: "anthropic.conf-claude-v1:0",
    provider: "mock-bedrock",
    secret: AWS_SECRET_ACCESS_KEY,
};
const VERTEX_ANTHROPIC: Wire = Wire {
    format: Format::VertexAnthropic,
    model: "conf/vertex-anthropic",
    upstream: "claude-conf@20240620",
    provider: "mock-vertex",
    secret: "ya29.a0-leaked-access-token",
};
const VERTEX_GEMINI: Wire = Wire {
    format: Format::VertexGemini,
    model: "conf/vertex-gemini",
    upstream: "gemini-conf",
    provider: "mock-vertex",
    secret: "ya29.a0-leaked-access-token",
};
const AZURE: Wire = Wire {
    format: Format::Azure,
    model: "conf/azure",
    upstream: "conf-azure",
    provider: "mock-azure",
    secret: PROVIDER_KEY,
};

/// The table: every wire must pass every case.
#[derive(Debug, Clone, Copy)]
enum Case {
    PlainText,
    StreamingText,
    ToolCall,
    ToolCallStreaming,
    MultiTurnToolResults,
    ImageInput,
    JsonSchema,
    Reasoning,
    ErrorMapping,
    StreamAnsweredWithJson,
}

const CASES: [Case; 10] = [
    Case::PlainText,
    Case::StreamingText,
    Case::ToolCall,
    Case::ToolCallStreaming,
    Case::MultiTurnToolResults,
    Case::ImageInput,
    Case::JsonSchema,
    Case::Reasoning,
    Case::ErrorMapping,
    Case::StreamAnsweredWithJson,
];

async fn run(case: Case, app: &TestApp, w: &Wire) {
    match case {
        Case::PlainText => plain_text(app, w).await,
        Case::StreamingText => streaming_text(app, w).await,
        Case::ToolCall => tool_call(app, w, false).await,
        Case::ToolCallStreaming => tool_call(app, w, true).await,
        Case::MultiTurnToolResults => multi_turn_tool_results(app, w).await,
        Case::ImageInput => image_input(app, w).await,
        Case::JsonSchema => json_schema(app, w).await,
        Case::Reasoning => reasoning(app, w).await,
        Case::ErrorMapping => error_mapping(app, w).await,
        Case::StreamAnsweredWithJson => stream_answered_with_json(app, w).await,
    }
}

async fn conformance(w: Wire) {
    let app = spawn_app().await;
    for case in CASES {
        eprintln!("conformance {:?}: {case:?}", w.format);
        run(case, &app, &w).await;
    }
    app.settled().await;
    app.ledger_clean().await;
}

#[tokio::test]
async fn openai_wire() {
    conformance(OPENAI).await;
}

#[tokio::test]
async fn anthropic_wire() {
    conformance(ANTHROPIC).await;
}

#[tokio::test]
async fn gemini_wire() {
    conformance(GEMINI).await;
}

#[tokio::test]
async fn bedrock_wire() {
    conformance(BEDROCK).await;
}

#[tokio::test]
async fn vertex_anthropic_wire() {
    conformance(VERTEX_ANTHROPIC).await;
}

#[tokio::test]
async fn vertex_gemini_wire() {
    conformance(VERTEX_GEMINI).await;
}

#[tokio::test]
async fn azure_wire() {
    conformance(AZURE).await;
}

// ---- helpers ----

fn user_with(text: &str, directive: Option<Value>) -> String {
    match directive {
        Some(d) => format!("{text} [[mock:{d}]]"),
        None => text.to_string(),
    }
}

fn weather_tool() -> Value {
    json!([{"type": "function", "function": {"name": "get_weather", "description": "Weather for a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"],
            "additionalProperties": false}}}])
}

/// Catalog prices of every conformance model: prompt, completion, cache read, cache write.
fn cost(prompt: u64, completion: u64, cached: u64, cache_write: u64) -> Decimal {
    let n = Decimal::from;
    n(prompt - cached - cache_write) * dec("0.000001")
        + n(completion) * dec("0.000002")
        + n(cached) * dec("0.0000005")
        + n(cache_write) * dec("0.00000125")
}

/// The latest request this wire's upstream model received.
fn sent(app: &TestApp, w: &Wire) -> RecordedRequest {
    app.mock
        .requests()
        .into_iter()
        .rev()
        .find(|r| match w.format {
            Format::Gemini | Format::VertexGemini | Format::VertexAnthropic => {
                r.path.contains(&format!("/models/{}:", w.upstream))
            }
            Format::Bedrock => r
                .path
                .starts_with(&format!("/model/{}/", w.upstream.replace(':', "%3A"))),
            Format::Azure => r
                .path
                .starts_with(&format!("/openai/deployments/{}/", w.upstream)),
            _ => r.body["model"] == w.upstream,
        })
        .expect("the provider received the request")
}

/// A request that must succeed: also resets the endpoint's consecutive-failure count between
/// error checks, so the circuit breaker never opens mid-table.
async fn succeed(app: &TestApp, key: &str, w: &Wire, tag: &str) {
    let body = json!({"model": w.model, "max_tokens": 20,
        "messages": [{"role": "user", "content": format!("ping {tag}")}]});
    let res = app.post_chat(key, &body).await;
    assert_eq!(
        res.status(),
        200,
        "{}",
        res.text().await.unwrap_or_default()
    );
}

async fn json_of(res: reqwest::Response, status: u16) -> Value {
    assert_eq!(res.status().as_u16(), status);
    res.json().await.unwrap()
}

/// Chunks of an SSE answer (without `[DONE]`, which must end it).
async fn chunks_of(res: reqwest::Response) -> (String, Vec<Value>) {
    assert_eq!(res.status(), 200);
    let id = res.headers()["x-request-id"].to_str().unwrap().to_string();
    let text = res.text().await.unwrap();
    let data = sse_data(&text);
    assert_eq!(data.last().map(String::as_str), Some("[DONE]"), "{text}");
    let chunks = data[..data.len() - 1]
        .iter()
        .map(|d| serde_json::from_str(d).unwrap())
        .collect();
    (id, chunks)
}

fn delta_text(chunks: &[Value], field: &str) -> String {
    chunks
        .iter()
        .filter_map(|c| c["choices"][0]["delta"][field].as_str())
        .collect()
}

fn finish_of(chunks: &[Value]) -> Option<String> {
    chunks
        .iter()
        .filter_map(|c| c["choices"][0]["finish_reason"].as_str())
        .next_back()
        .map(str::to_string)
}

/// Tool calls rebuilt from deltas the way OpenAI clients do: id and name once, arguments joined.
fn streamed_calls(chunks: &[Value]) -> Vec<(String, String, String)> {
    let mut calls: Vec<(String, String, String)> = Vec::new();
    for c in chunks {
        for call in c["choices"][0]["delta"]["tool_calls"]
            .as_array()
            .into_iter()
            .flatten()
        {
            let i = call["index"].as_u64().unwrap() as usize;
            if calls.len() <= i {
                calls.resize(i + 1, Default::default());
            }
            if let Some(id) = call["id"].as_str() {
                calls[i].0 = id.into();
            }
            if let Some(n) = call["function"]["name"].as_str() {
                calls[i].1 = n.into();
            }
            calls[i].2 += call["function"]["arguments"].as_str().unwrap_or_default();
        }
    }
    calls
}

// ---- cases ----

async fn plain_text(app: &TestApp, w: &Wire) {
    let t = app.tenant("1").await;
    let directive = json!({"reply": "Hello there friend", "prompt_tokens": 120, "completion_tokens": 30,
        "cached_tokens": 20, "cache_write_tokens": 10});
    let body = json!({"model": w.model, "max_tokens": 100, "temperature": 0.5, "usage": {"include": true},
        "messages": [{"role": "system", "content": "Be brief."},
            {"role": "user", "content": user_with("Say hello", Some(directive))}]});
    let res = app.post_chat(&t.key, &body).await;
    let id = res.headers()["x-request-id"].to_str().unwrap().to_string();
    let v = json_of(res, 200).await;
    assert_eq!(v["model"], w.model);
    assert_eq!(v["provider"], w.provider);
    assert_eq!(v["choices"][0]["message"]["content"], "Hello there friend");
    assert_eq!(v["choices"][0]["finish_reason"], "stop");
    // Gemini has no cache writes: its prompt count includes them at the prompt price.
    let write = if w.format.family() == Family::Gemini {
        0
    } else {
        10
    };
    let u = &v["usage"];
    assert_eq!(
        (
            &u["prompt_tokens"],
            &u["completion_tokens"],
            &u["total_tokens"]
        ),
        (&json!(120), &json!(30), &json!(150))
    );
    assert_eq!(u["prompt_tokens_details"]["cached_tokens"], 20);
    assert_eq!(u["prompt_tokens_details"]["cache_write_tokens"], write);
    let expected = cost(120, 30, 20, write);
    assert_eq!(dec(&u["cost"].to_string()), expected, "{u}");

    let row = app.log_row(&id).await;
    app.settled().await;
    assert_eq!(row.cost, expected);
    assert_eq!(
        (
            row.prompt_tokens,
            row.completion_tokens,
            row.cached_tokens,
            row.cache_write_tokens
        ),
        (120, 30, 20, write as i64)
    );
    assert_eq!(row.provider.as_deref(), Some(w.provider));
    assert_eq!(row.usage_source.as_deref(), Some("provider"));
    assert_eq!(app.balance(t.account).await, dec("1") - expected);
    app.hot_matches_ledger(t.account).await;

    // What reached the provider: its own credentials in its own header, never the client's key,
    // never a key in the URL; the system prompt and output limit in the wire's own fields.
    let s = sent(app, w);
    assert!(!format!("{:?}", s.headers).contains(&t.key));
    assert!(
        !s.path.contains(PROVIDER_KEY) && !s.path.contains("key="),
        "{}",
        s.path
    );
    match w.format {
        Format::OpenAi => {
            assert_eq!(s.headers["authorization"], format!("Bearer {PROVIDER_KEY}"));
            assert_eq!(s.body["messages"][0]["role"], "system");
            assert_eq!(s.body["max_tokens"], 100);
        }
        Format::Anthropic => {
            assert_eq!(s.path, "/v1/messages");
            assert_eq!(s.headers["x-api-key"], PROVIDER_KEY);
            assert_eq!(s.headers["anthropic-version"], "2023-06-01");
            assert!(!s.headers.contains_key("authorization"));
            assert_eq!(s.body["system"][0]["text"], "Be brief.");
            assert_eq!(s.body["max_tokens"], 100);
            assert_eq!(s.body["temperature"], 0.5);
        }
        Format::Gemini => {
            assert_eq!(s.path, "/v1beta/models/conf-gemini:generateContent");
            assert_eq!(s.headers["x-goog-api-key"], PROVIDER_KEY);
            assert_eq!(s.body["systemInstruction"]["parts"][0]["text"], "Be brief.");
            assert_eq!(s.body["generationConfig"]["maxOutputTokens"], 100);
            assert_eq!(s.body["contents"][0]["role"], "user");
        }
        Format::Bedrock => {
            assert_eq!(s.path, "/model/anthropic.conf-claude-v1%3A0/converse");
            let auth = &s.headers["authorization"];
            assert!(
                auth.starts_with(&format!("AWS4-HMAC-SHA256 Credential={AWS_ACCESS_KEY_ID}/")),
                "{auth}"
            );
            assert!(auth.contains("/us-east-1/bedrock/aws4_request"), "{auth}");
            assert!(!format!("{:?}", s.headers).contains(AWS_SECRET_ACCESS_KEY));
            assert!(s.headers.contains_key("x-amz-date"));
            assert_eq!(s.body["system"][0]["text"], "Be brief.");
            assert_eq!(s.body["inferenceConfig"]["maxTokens"], 100);
            assert_eq!(s.body["inferenceConfig"]["temperature"], 0.5);
            assert_eq!(
                s.body["messages"][0]["content"][0]["text"]
                    .as_str()
                    .map(|t| t.starts_with("Say hello")),
                Some(true)
            );
        }
        Format::VertexAnthropic | Format::VertexGemini => {
            let (publisher, method) = if w.format == Format::VertexAnthropic {
                ("anthropic", "rawPredict")
            } else {
                ("google", "generateContent")
            };
            assert_eq!(
                s.path,
                format!("/v1/projects/{VERTEX_PROJECT}/locations/us-east5/publishers/{publisher}/models/{}:{method}", w.upstream)
            );
            assert!(s.headers["authorization"].starts_with("Bearer ya29.mock-"));
            if w.format == Format::VertexAnthropic {
                assert_eq!(s.body["anthropic_version"], "vertex-2023-10-16");
                assert!(s.body.get("model").is_none());
                assert_eq!(s.body["system"][0]["text"], "Be brief.");
                assert_eq!(s.body["max_tokens"], 100);
            } else {
                assert_eq!(s.body["systemInstruction"]["parts"][0]["text"], "Be brief.");
                assert_eq!(s.body["generationConfig"]["maxOutputTokens"], 100);
            }
            // The token came from the service-account exchange at the key's token_uri.
            assert!(app.mock.requests().iter().any(|r| r.path == "/token"));
        }
        Format::Azure => {
            assert_eq!(
                s.path,
                "/openai/deployments/conf-azure/chat/completions?api-version=2024-10-21"
            );
            assert_eq!(s.headers["api-key"], PROVIDER_KEY);
            assert!(!s.headers.contains_key("authorization"));
            assert_eq!(s.body["messages"][0]["role"], "system");
            assert_eq!(s.body["max_tokens"], 100);
        }
    }
}

async fn streaming_text(app: &TestApp, w: &Wire) {
    let t = app.tenant("1").await;
    let directive = json!({"reply": "one two three four", "prompt_tokens": 50, "completion_tokens": 10, "cached_tokens": 5});
    let body = json!({"model": w.model, "max_tokens": 100, "stream": true,
        "stream_options": {"include_usage": true}, "usage": {"include": true},
        "messages": [{"role": "user", "content": user_with("Count", Some(directive))}]});
    let (id, chunks) = chunks_of(app.post_chat(&t.key, &body).await).await;
    for c in &chunks {
        assert_eq!(c["id"], id);
        assert_eq!(c["object"], "chat.completion.chunk");
        assert_eq!(c["model"], w.model);
        assert_eq!(c["provider"], w.provider);
    }
    assert_eq!(delta_text(&chunks, "content"), "one two three four");
    assert_eq!(finish_of(&chunks).as_deref(), Some("stop"));
    let last = chunks.last().unwrap();
    assert_eq!(last["choices"], json!([]));
    assert_eq!(last["usage"]["prompt_tokens"], 50);
    assert_eq!(last["usage"]["completion_tokens"], 10);
    assert_eq!(last["usage"]["prompt_tokens_details"]["cached_tokens"], 5);
    let expected = cost(50, 10, 5, 0);
    assert_eq!(dec(&last["usage"]["cost"].to_string()), expected);
    let row = app.log_row(&id).await;
    app.settled().await;
    assert!(row.streamed);
    assert_eq!(row.cost, expected);
    assert_eq!(row.usage_source.as_deref(), Some("provider"));
    assert!(row.first_token_ms.is_some());
    assert_eq!(app.balance(t.account).await, dec("1") - expected);
    let s = sent(app, w);
    match w.format {
        Format::OpenAi => assert_eq!(s.body["stream_options"]["include_usage"], true),
        Format::Anthropic => assert_eq!(s.body["stream"], true),
        Format::Gemini => assert_eq!(
            s.path,
            "/v1beta/models/conf-gemini:streamGenerateContent?alt=sse"
        ),
        Format::Bedrock => assert_eq!(
            s.path,
            "/model/anthropic.conf-claude-v1%3A0/converse-stream"
        ),
        Format::VertexAnthropic => {
            assert!(
                s.path.ends_with(
                    "/publishers/anthropic/models/claude-conf@20240620:streamRawPredict"
                ),
                "{}",
                s.path
            );
            assert_eq!(s.body["stream"], true);
        }
        Format::VertexGemini => assert!(
            s.path
                .ends_with("/publishers/google/models/gemini-conf:streamGenerateContent?alt=sse"),
            "{}",
            s.path
        ),
        Format::Azure => assert_eq!(s.body["stream_options"]["include_usage"], true),
    }
}

/// An upstream that answers `stream: true` with a whole JSON body (`application/json`) is
/// relayed to the client as a stream: the message, the finish reason, the usage, `[DONE]`.
async fn stream_answered_with_json(app: &TestApp, w: &Wire) {
    let t = app.tenant("1").await;
    let directive = json!({"json_for_stream": true, "reply": "relayed in one piece",
        "prompt_tokens": 30, "completion_tokens": 6});
    let body = json!({"model": w.model, "max_tokens": 100, "stream": true,
        "stream_options": {"include_usage": true}, "usage": {"include": true},
        "messages": [{"role": "user", "content": user_with("Say it", Some(directive))}]});
    let res = app.post_chat(&t.key, &body).await;
    assert_eq!(res.status(), 200);
    assert!(res.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/event-stream"));
    let text = res.text().await.unwrap();
    assert!(text.trim_end().ends_with("data: [DONE]"), "{text}");
    assert!(!text.contains("stream_broken"), "{text}");
    let chunks: Vec<Value> = sse_data(&text)
        .into_iter()
        .filter(|d| d != "[DONE]")
        .map(|d| serde_json::from_str(&d).unwrap())
        .collect();
    let id = chunks[0]["id"].as_str().unwrap().to_string();
    for c in &chunks {
        assert_eq!(c["object"], "chat.completion.chunk", "{c}");
        assert_eq!(c["model"], w.model);
    }
    assert_eq!(delta_text(&chunks, "content"), "relayed in one piece");
    assert_eq!(finish_of(&chunks).as_deref(), Some("stop"));
    let last = chunks.last().unwrap();
    assert_eq!(last["usage"]["prompt_tokens"], 30);
    assert_eq!(last["usage"]["completion_tokens"], 6);
    let expected = cost(30, 6, 0, 0);
    let row = app.log_row(&id).await;
    app.settled().await;
    assert_eq!(row.status, 200);
    assert!(row.streamed);
    assert_eq!(row.cost, expected);
    assert_eq!(app.balance(t.account).await, dec("1") - expected);

    // Tool calls come through as stream deltas with their index.
    let directive = json!({"json_for_stream": true,
        "tool_calls": [{"name": "get_weather", "arguments": {"city": "Oslo"}}],
        "prompt_tokens": 20, "completion_tokens": 5});
    let body = json!({"model": w.model, "max_tokens": 100, "stream": true, "tools": weather_tool(),
        "stream_options": {"include_usage": true},
        "messages": [{"role": "user", "content": user_with("Weather in Oslo?", Some(directive))}]});
    let (_, chunks) = chunks_of(app.post_chat(&t.key, &body).await).await;
    let calls = streamed_calls(&chunks);
    assert_eq!(calls.len(), 1, "{calls:?}");
    assert_eq!(calls[0].1, "get_weather");
    assert_eq!(
        serde_json::from_str::<Value>(&calls[0].2).unwrap(),
        json!({"city": "Oslo"})
    );
    assert_eq!(finish_of(&chunks).as_deref(), Some("tool_calls"));
    assert_eq!(chunks.last().unwrap()["usage"]["completion_tokens"], 5);
}

async fn tool_call(app: &TestApp, w: &Wire, stream: bool) {
    let t = app.tenant("1").await;
    let directive = json!({"tool_calls": [{"name": "get_weather", "arguments": {"city": "Paris"}}],
        "prompt_tokens": 40, "completion_tokens": 12});
    let body = json!({"model": w.model, "max_tokens": 100, "stream": stream, "tools": weather_tool(),
        "tool_choice": "auto", "stream_options": {"include_usage": true},
        "messages": [{"role": "user", "content": user_with("Weather in Paris?", Some(directive))}]});
    let res = app.post_chat(&t.key, &body).await;
    let (id, name, args, finish) = if stream {
        let (_, chunks) = chunks_of(res).await;
        // The first delta of a call carries its id, type and name.
        let first = chunks
            .iter()
            .find_map(|c| {
                c["choices"][0]["delta"]["tool_calls"][0]
                    .as_object()
                    .cloned()
            })
            .unwrap();
        assert_eq!(first["index"], 0);
        assert_eq!(first["type"], "function");
        let calls = streamed_calls(&chunks);
        assert_eq!(calls.len(), 1, "{calls:?}");
        let (id, name, args) = calls[0].clone();
        assert_eq!(chunks.last().unwrap()["usage"]["completion_tokens"], 12);
        (id, name, args, finish_of(&chunks))
    } else {
        let v = json_of(res, 200).await;
        let m = &v["choices"][0]["message"];
        assert!(m["content"].is_null() || m["content"] == "", "{m}");
        let call = &m["tool_calls"][0];
        assert_eq!(call["type"], "function");
        assert_eq!(m["tool_calls"].as_array().unwrap().len(), 1);
        assert_eq!(v["usage"]["completion_tokens"], 12);
        (
            call["id"].as_str().unwrap().to_string(),
            call["function"]["name"].as_str().unwrap().to_string(),
            call["function"]["arguments"].as_str().unwrap().to_string(),
            v["choices"][0]["finish_reason"]
                .as_str()
                .map(str::to_string),
        )
    };
    assert!(!id.is_empty());
    assert_eq!(name, "get_weather");
    assert_eq!(
        serde_json::from_str::<Value>(&args).unwrap(),
        json!({"city": "Paris"})
    );
    assert_eq!(finish.as_deref(), Some("tool_calls"));
    let s = sent(app, w);
    match w.format.family() {
        Family::OpenAi => assert_eq!(s.body["tools"][0]["function"]["name"], "get_weather"),
        Family::Bedrock => {
            let spec = &s.body["toolConfig"]["tools"][0]["toolSpec"];
            assert_eq!(spec["name"], "get_weather");
            assert_eq!(spec["inputSchema"]["json"]["required"], json!(["city"]));
            assert!(
                s.body["toolConfig"].get("toolChoice").is_none(),
                "auto is the default"
            );
        }
        Family::Anthropic => {
            assert_eq!(s.body["tools"][0]["name"], "get_weather");
            assert_eq!(
                s.body["tools"][0]["input_schema"]["required"],
                json!(["city"])
            );
            assert_eq!(s.body["tool_choice"], json!({"type": "auto"}));
        }
        Family::Gemini => {
            let decl = &s.body["tools"][0]["functionDeclarations"][0];
            assert_eq!(decl["name"], "get_weather");
            assert!(
                decl["parameters"].get("additionalProperties").is_none(),
                "Gemini rejects additionalProperties"
            );
            assert_eq!(
                s.body["toolConfig"]["functionCallingConfig"]["mode"],
                "AUTO"
            );
        }
    }
}

async fn multi_turn_tool_results(app: &TestApp, w: &Wire) {
    let t = app.tenant("1").await;
    // The last user turn holds only tool results, so the answer is queued rather than directed.
    app.mock
        .push_behaviour(w.upstream, Behaviour::reply("It is sunny in Paris"));
    let body = json!({"model": w.model, "max_tokens": 100, "tools": weather_tool(), "messages": [
        {"role": "user", "content": "What's the weather in Paris and Rome?"},
        {"role": "assistant", "content": null, "tool_calls": [
            {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": "{\"city\":\"Paris\"}"}},
            {"id": "call_2", "type": "function", "function": {"name": "get_weather", "arguments": "{\"city\":\"Rome\"}"}}]},
        {"role": "tool", "tool_call_id": "call_1", "content": "{\"temp\": 21}"},
        {"role": "tool", "tool_call_id": "call_2", "content": "rainy"}
    ]});
    let v = json_of(app.post_chat(&t.key, &body).await, 200).await;
    assert_eq!(
        v["choices"][0]["message"]["content"],
        "It is sunny in Paris"
    );
    assert_eq!(v["choices"][0]["finish_reason"], "stop");
    let b = sent(app, w).body;
    match w.format.family() {
        Family::Bedrock => {
            assert_eq!(
                b["messages"][1]["content"][1],
                json!({"toolUse": {"toolUseId": "call_2", "name": "get_weather", "input": {"city": "Rome"}}})
            );
            assert_eq!(b["messages"].as_array().unwrap().len(), 3);
            assert_eq!(
                b["messages"][2],
                json!({"role": "user", "content": [
                    {"toolResult": {"toolUseId": "call_1", "content": [{"json": {"temp": 21}}], "status": "success"}},
                    {"toolResult": {"toolUseId": "call_2", "content": [{"text": "rainy"}], "status": "success"}}]})
            );
        }
        Family::OpenAi => {
            assert_eq!(b["messages"][2]["role"], "tool");
            assert_eq!(b["messages"][3]["tool_call_id"], "call_2");
        }
        Family::Anthropic => {
            assert_eq!(
                b["messages"][1]["content"][1],
                json!({"type": "tool_use", "id": "call_2", "name": "get_weather", "input": {"city": "Rome"}})
            );
            assert_eq!(
                b["messages"].as_array().unwrap().len(),
                3,
                "tool results merge into one turn"
            );
            assert_eq!(
                b["messages"][2],
                json!({"role": "user", "content": [
                    {"type": "tool_result", "tool_use_id": "call_1", "content": "{\"temp\": 21}"},
                    {"type": "tool_result", "tool_use_id": "call_2", "content": "rainy"}]})
            );
        }
        Family::Gemini => {
            assert_eq!(b["contents"][1]["role"], "model");
            assert_eq!(
                b["contents"][1]["parts"][1]["functionCall"],
                json!({"name": "get_weather", "args": {"city": "Rome"}})
            );
            assert_eq!(
                b["contents"][2]["parts"],
                json!([{"functionResponse": {"name": "get_weather", "response": {"temp": 21}}},
                    {"functionResponse": {"name": "get_weather", "response": {"result": "rainy"}}}])
            );
        }
    }
}

async fn image_input(app: &TestApp, w: &Wire) {
    let t = app.tenant("1").await;
    let text = user_with(
        "What is in these images?",
        Some(json!({"reply": "Two cats"})),
    );
    let mut parts = vec![
        json!({"type": "text", "text": text}),
        json!({"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}}),
        json!({"type": "image_url", "image_url": {"url": "https://example.com/cat.jpg"}}),
    ];
    if w.format == Format::Bedrock {
        // Converse takes image bytes (or S3), never a URL: such a request is a 400 naming the
        // part, and the inline image goes through.
        let body = json!({"model": w.model, "max_tokens": 50,
            "messages": [{"role": "user", "content": parts.clone()}]});
        let v = json_of(app.post_chat(&t.key, &body).await, 400).await;
        assert!(
            v["error"]["message"]
                .as_str()
                .unwrap()
                .contains("messages[0].content[2]"),
            "{v}"
        );
        parts.pop();
    }
    let body = json!({"model": w.model, "max_tokens": 50,
        "messages": [{"role": "user", "content": parts}]});
    let v = json_of(app.post_chat(&t.key, &body).await, 200).await;
    assert_eq!(v["choices"][0]["message"]["content"], "Two cats");
    let b = sent(app, w).body;
    match w.format.family() {
        Family::Bedrock => assert_eq!(
            b["messages"][0]["content"][1],
            json!({"image": {"format": "png", "source": {"bytes": "iVBORw0KGgo="}}})
        ),
        Family::OpenAi => assert_eq!(
            b["messages"][0]["content"][2]["image_url"]["url"],
            "https://example.com/cat.jpg"
        ),
        Family::Anthropic => {
            let c = &b["messages"][0]["content"];
            assert_eq!(
                c[1]["source"],
                json!({"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo="})
            );
            assert_eq!(
                c[2]["source"],
                json!({"type": "url", "url": "https://example.com/cat.jpg"})
            );
        }
        Family::Gemini => {
            let p = &b["contents"][0]["parts"];
            assert_eq!(
                p[1]["inlineData"],
                json!({"mimeType": "image/png", "data": "iVBORw0KGgo="})
            );
            assert_eq!(
                p[2]["fileData"],
                json!({"mimeType": "image/jpeg", "fileUri": "https://example.com/cat.jpg"})
            );
        }
    }
}

async fn json_schema(app: &TestApp, w: &Wire) {
    let t = app.tenant("1").await;
    // Anthropic is held to a schema through a forced tool: the mock answers with that tool.
    let directive = match w.format.family() {
        Family::Anthropic | Family::Bedrock => {
            json!({"tool_calls": [{"name": "weather", "arguments": {"temp": 21}}]})
        }
        _ => json!({"reply": "{\"temp\":21}"}),
    };
    let schema = json!({"type": "object", "properties": {"temp": {"type": "number"}},
        "required": ["temp"], "additionalProperties": false});
    let body = json!({"model": w.model, "max_tokens": 100,
        "response_format": {"type": "json_schema", "json_schema": {"name": "weather", "strict": true, "schema": schema}},
        "messages": [{"role": "user", "content": user_with("Weather as JSON", Some(directive))}]});
    let v = json_of(app.post_chat(&t.key, &body).await, 200).await;
    let m = &v["choices"][0]["message"];
    let content: Value = serde_json::from_str(m["content"].as_str().unwrap()).unwrap();
    assert_eq!(content, json!({"temp": 21}));
    assert!(m.get("tool_calls").is_none_or(Value::is_null), "{m}");
    assert_eq!(v["choices"][0]["finish_reason"], "stop");
    let b = sent(app, w).body;
    match w.format.family() {
        Family::OpenAi => assert_eq!(b["response_format"]["json_schema"]["name"], "weather"),
        Family::Bedrock => {
            assert_eq!(
                b["toolConfig"]["toolChoice"],
                json!({"tool": {"name": "weather"}})
            );
            assert_eq!(
                b["toolConfig"]["tools"][0]["toolSpec"]["inputSchema"]["json"]["required"],
                json!(["temp"])
            );
        }
        Family::Anthropic => {
            assert_eq!(b["tool_choice"], json!({"type": "tool", "name": "weather"}));
            assert_eq!(b["tools"][0]["input_schema"]["required"], json!(["temp"]));
        }
        Family::Gemini => {
            let g = &b["generationConfig"];
            assert_eq!(g["responseMimeType"], "application/json");
            assert_eq!(
                g["responseSchema"],
                json!({"type": "object", "properties": {"temp": {"type": "number"}}, "required": ["temp"]})
            );
        }
    }
}

async fn reasoning(app: &TestApp, w: &Wire) {
    let t = app.tenant("1").await;
    let directive = json!({"reply": "Done.", "reasoning": "Let me think.", "reasoning_tokens": 7,
        "prompt_tokens": 20, "completion_tokens": 12});
    // Anthropic reports thinking inside output tokens only, never apart.
    let reasoning_tokens = match w.format.family() {
        Family::Anthropic | Family::Bedrock => 0,
        _ => 7,
    };
    for stream in [false, true] {
        let body = json!({"model": w.model, "max_tokens": 2000, "stream": stream,
            "reasoning": {"effort": "low"}, "usage": {"include": true},
            "stream_options": {"include_usage": true},
            "messages": [{"role": "user", "content": user_with("Think", Some(directive.clone()))}]});
        let res = app.post_chat(&t.key, &body).await;
        let usage = if stream {
            let (_, chunks) = chunks_of(res).await;
            assert_eq!(delta_text(&chunks, "reasoning"), "Let me think.");
            assert_eq!(delta_text(&chunks, "content"), "Done.");
            chunks.last().unwrap()["usage"].clone()
        } else {
            let v = json_of(res, 200).await;
            let m = &v["choices"][0]["message"];
            assert_eq!(m["reasoning"], "Let me think.");
            assert_eq!(m["content"], "Done.");
            if matches!(w.format.family(), Family::Anthropic | Family::Bedrock) {
                let d = &m["reasoning_details"][0];
                assert_eq!(d["type"], "reasoning.text");
                assert!(
                    d["signature"].as_str().is_some_and(|s| !s.is_empty()),
                    "{m}"
                );
            }
            v["usage"].clone()
        };
        assert_eq!(usage["completion_tokens"], 12);
        assert_eq!(
            usage["completion_tokens_details"]["reasoning_tokens"],
            reasoning_tokens
        );
        // Reasoning is priced as completion: the total is exact either way.
        assert_eq!(dec(&usage["cost"].to_string()), cost(20, 12, 0, 0));
        let b = sent(app, w).body;
        match w.format.family() {
            Family::OpenAi => assert_eq!(b["reasoning"]["effort"], "low"),
            Family::Bedrock => assert_eq!(
                b["additionalModelRequestFields"]["thinking"],
                json!({"type": "enabled", "budget_tokens": 1024})
            ),
            // low = 0.2 x 2000 = 400, raised to Anthropic's 1024 minimum
            Family::Anthropic => assert_eq!(
                b["thinking"],
                json!({"type": "enabled", "budget_tokens": 1024})
            ),
            Family::Gemini => assert_eq!(
                b["generationConfig"]["thinkingConfig"],
                json!({"thinkingBudget": 400, "includeThoughts": true})
            ),
        }
    }
    app.settled().await;
    assert_eq!(
        app.balance(t.account).await,
        dec("1") - cost(20, 12, 0, 0) * Decimal::from(2)
    );
}

async fn error_mapping(app: &TestApp, w: &Wire) {
    let t = app.tenant("1").await;
    let base = app.mock.base_url();
    let chat = |directive: Option<Value>, extra: Value| {
        let mut body = json!({"model": w.model, "max_tokens": 50,
            "messages": [{"role": "user", "content": user_with("Hi", directive)}]});
        for (k, v) in extra.as_object().unwrap() {
            body[k] = v.clone();
        }
        body
    };

    // A 400 stays a 400, with the provider's message, minus our key and addresses.
    let message = format!(
        "messages: invalid field 'foo' (see {base}/v1/docs; key {})",
        w.secret
    );
    let body = chat(
        Some(json!({"status": 400, "error_message": message})),
        json!({}),
    );
    let v = json_of(app.post_chat(&t.key, &body).await, 400).await;
    let shown = v["error"]["message"].as_str().unwrap();
    assert!(shown.contains("invalid field 'foo'"), "{v}");
    let raw = v.to_string();
    assert!(!raw.contains(w.secret) && !raw.contains(&base), "{raw}");
    assert_eq!(v["error"]["metadata"]["provider_name"], w.provider);

    // The operator's provider key rejected: a 502 that does not blame the client's key.
    let mut auth_cases = vec![
        json!({"status": 401, "error_message": "invalid x-api-key"}),
        json!({"status": 403, "error_message": "permission denied"}),
    ];
    if w.format == Format::Gemini {
        // Gemini answers a bad key with 400 INVALID_ARGUMENT.
        auth_cases.push(json!({"status": 400, "error_message": "API key not valid. Please pass a valid API key."}));
    }
    for (i, d) in auth_cases.into_iter().enumerate() {
        let v = json_of(app.post_chat(&t.key, &chat(Some(d), json!({}))).await, 502).await;
        assert_eq!(v["error"]["type"], "upstream_error");
        let e = &v["error"]["metadata"]["provider_errors"][0];
        assert_eq!(e["kind"], "provider_auth", "{v}");
        assert_eq!(e["provider"], w.provider);
        assert!(!v.to_string().contains("invalid x-api-key"), "{v}");
        succeed(app, &t.key, w, &format!("auth {i}")).await;
    }

    // 5xx (and Anthropic's 529): retryable; alone they are a 502, with a fallback it answers.
    let mut statuses = vec![500, 503];
    if w.format.family() == Family::Anthropic {
        statuses.push(529);
    }
    for status in statuses {
        app.mock
            .push_behaviour(w.upstream, Behaviour::error(status, "upstream broke"));
        let v = json_of(app.post_chat(&t.key, &chat(None, json!({}))).await, 502).await;
        let e = &v["error"]["metadata"]["provider_errors"][0];
        assert_eq!(e["kind"], "unavailable", "{status}: {v}");
        assert_eq!(e["status"], status);
        app.mock
            .push_behaviour(w.upstream, Behaviour::error(status, "upstream broke"));
        let v = json_of(
            app.post_chat(&t.key, &chat(None, json!({"models": ["test/backup"]})))
                .await,
            200,
        )
        .await;
        assert_eq!(v["model"], "test/backup", "{status}");
    }

    // 429 falls back to the next model, and the attempt is recorded as rate limited.
    app.mock.push_behaviour(
        w.upstream,
        Behaviour {
            retry_after: Some(3),
            ..Behaviour::error(429, "slow down")
        },
    );
    let res = app
        .post_chat(&t.key, &chat(None, json!({"models": ["test/backup"]})))
        .await;
    let v = json_of(res, 200).await;
    assert_eq!(v["model"], "test/backup");
    let row = app.log_row(v["id"].as_str().unwrap()).await;
    let attempts = row.attempts.expect("a failed attempt is logged");
    let attempts = attempts.as_array().unwrap();
    assert_eq!(attempts.len(), 1, "only the failed attempt: {attempts:?}");
    assert_eq!(attempts[0]["class"], "rate_limited");
    assert_eq!(attempts[0]["status"], 429);
    assert_eq!(attempts[0]["provider"], w.provider);
    succeed(app, &t.key, w, "after 429").await;

    // A stream that fails before any content falls back too.
    app.mock.push_behaviour(
        w.upstream,
        Behaviour::fault(Fault::ErrorAfterChunks, Some(0)),
    );
    let body = chat(None, json!({"stream": true, "models": ["test/backup"]}));
    let (_, chunks) = chunks_of(app.post_chat(&t.key, &body).await).await;
    assert_eq!(chunks[0]["model"], "test/backup");
    assert_eq!(chunks[0]["provider"], "mock-a");
    succeed(app, &t.key, w, "after stream fallback").await;

    // After content has reached the client there is no fallback: an error chunk ends it.
    app.mock.push_behaviour(
        w.upstream,
        Behaviour {
            reply: Some("one two three four five".into()),
            ..Behaviour::fault(Fault::ErrorAfterChunks, Some(2))
        },
    );
    let body = chat(None, json!({"stream": true, "models": ["test/backup"]}));
    let (_, chunks) = chunks_of(app.post_chat(&t.key, &body).await).await;
    assert!(chunks.iter().all(|c| c["model"] == w.model));
    assert_eq!(delta_text(&chunks, "content"), "one two");
    assert_eq!(finish_of(&chunks).as_deref(), Some("error"));
    succeed(app, &t.key, w, "after broken stream").await;

    app.settled().await;
    app.hot_matches_ledger(t.account).await;
}
