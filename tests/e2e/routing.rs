//! Routing and resilience: fallback triggers, timeouts, the `provider` object, model variants
//! and `models`, shared health and circuits, the endpoints page, and catalog reload.

use std::time::Duration;

use infron_mock_provider::{Behaviour, Fault};
use infron_router::types::ChatRequest;
use serde_json::{json, Value};
use uuid::Uuid;

use crate::helpers::*;

/// A body whose text is unique, so the response cache never answers it.
fn unique(model: &str) -> Value {
    json!({
        "model": model,
        "messages": [{"role": "user", "content": format!("Say hello {}", Uuid::new_v4())}],
        "max_tokens": 100,
    })
}

/// A unique streaming body with mock-a tried first whatever its recent failures.
fn pinned_stream(model: &str) -> Value {
    let body = with(unique(model), "stream", json!(true));
    with(body, "provider", json!({"order": ["mock-a"]}))
}

fn with(mut body: Value, field: &str, value: Value) -> Value {
    body[field] = value;
    body
}

async fn post(app: &TestApp, base: &str, key: &str, body: &Value) -> reqwest::Response {
    app.client
        .post(format!("{base}/v1/chat/completions"))
        .bearer_auth(key)
        .json(body)
        .send()
        .await
        .unwrap()
}

/// The provider that answered, and the request id.
async fn answered_by(res: reqwest::Response) -> (String, String) {
    let status = res.status();
    let id = res
        .headers()
        .get("x-request-id")
        .map(|h| h.to_str().unwrap().to_string())
        .unwrap_or_default();
    let streamed = res
        .headers()
        .get("content-type")
        .is_some_and(|c| c.to_str().unwrap().starts_with("text/event-stream"));
    let text = res.text().await.unwrap();
    assert_eq!(status, 200, "{text}");
    let first: Value = if streamed {
        assert!(text.ends_with("data: [DONE]\n\n"), "{text}");
        serde_json::from_str(&sse_data(&text)[0]).unwrap()
    } else {
        serde_json::from_str(&text).unwrap()
    };
    (first["provider"].as_str().unwrap().to_string(), id)
}

async fn provider_of(app: &TestApp, key: &str, body: Value) -> String {
    answered_by(app.post_chat(key, &body).await).await.0
}

async fn error_body(res: reqwest::Response, status: u16) -> Value {
    assert_eq!(res.status().as_u16(), status);
    res.json().await.unwrap()
}

/// Polls the endpoints page until `check` holds for the endpoint of `provider`.
async fn wait_for_endpoint(
    app: &TestApp,
    base: &str,
    model: &str,
    provider: &str,
    check: impl Fn(&Value) -> bool,
) -> Value {
    let mut last = Value::Null;
    for _ in 0..100 {
        let page: Value = app
            .client
            .get(format!("{base}/api/v1/models/{model}/endpoints"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        last = page["data"]["endpoints"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["tag"] == provider)
            .cloned()
            .unwrap();
        if check(&last) {
            return last;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("endpoint {provider} of {model} never matched: {last}");
}

#[tokio::test]
async fn every_retryable_failure_falls_back_to_the_next_endpoint() {
    let app = spawn_app_with(&[
        ("INFRON_FIRST_BYTE_TIMEOUT_SECS", "1".into()),
        ("INFRON_STREAM_IDLE_TIMEOUT_SECS", "1".into()),
        // Many failures in a row here; keep mock-a's circuit closed so `order` keeps it first.
        ("INFRON_CIRCUIT_FAILURE_THRESHOLD", "1000".into()),
    ])
    .await;
    let t = app.tenant("5").await;
    let json_b = |v: Value| Behaviour::from_json(v).unwrap();
    let cases: Vec<(&str, Behaviour, bool, &str)> = vec![
        (
            "reset before headers",
            Behaviour::fault(Fault::ResetBeforeHeaders, None),
            false,
            "connect",
        ),
        (
            "no headers before the first-byte timeout",
            Behaviour::fault(Fault::StallBeforeHeaders, None),
            false,
            "timeout",
        ),
        ("408", Behaviour::error(408, "timeout"), false, "timeout"),
        (
            "429",
            json_b(json!({"status": 429, "retry_after": 7})),
            false,
            "rate_limited",
        ),
        ("500", Behaviour::error(500, "boom"), false, "unavailable"),
        (
            "502",
            Behaviour::error(502, "bad gateway"),
            false,
            "unavailable",
        ),
        (
            "503",
            Behaviour::error(503, "overloaded"),
            false,
            "unavailable",
        ),
        (
            "stream: 503 before the stream",
            Behaviour::error(503, "overloaded"),
            true,
            "unavailable",
        ),
        (
            "stream: reset before content",
            Behaviour::fault(Fault::ResetAfterChunks, Some(0)),
            true,
            "stream_broken",
        ),
        (
            "stream: stall before content",
            Behaviour::fault(Fault::StallAfterChunks, Some(0)),
            true,
            "timeout",
        ),
        (
            "stream: error event before content",
            Behaviour::fault(Fault::ErrorAfterChunks, Some(0)),
            true,
            "stream_broken",
        ),
        (
            "stream: no headers",
            Behaviour::fault(Fault::StallBeforeHeaders, None),
            true,
            "timeout",
        ),
    ];
    for (name, behaviour, stream, kind) in cases {
        app.mock.push_behaviour("up-a", behaviour);
        let body = with(
            with(
                unique("test/chat"),
                "provider",
                json!({"order": ["mock-a", "mock-b"]}),
            ),
            "stream",
            json!(stream),
        );
        let (provider, id) = answered_by(app.post_chat(&t.key, &body).await).await;
        assert_eq!(provider, "mock-b", "{name}");
        let row = app.log_row(&id).await;
        let attempts = row.attempts.expect("the failed attempt is logged");
        let attempts = attempts.as_array().unwrap();
        assert_eq!(attempts.len(), 1, "{name}: {attempts:?}");
        assert_eq!(attempts[0]["provider"], "mock-a", "{name}");
        assert_eq!(attempts[0]["class"], kind, "{name}: {attempts:?}");
        assert_eq!(row.provider.as_deref(), Some("mock-b"));
    }

    // A connection refused (nothing listens on mock-down's port).
    let (provider, id) = answered_by(app.post_chat(&t.key, &unique("test/flaky")).await).await;
    assert_eq!(provider, "mock-a");
    let row = app.log_row(&id).await;
    let attempts = row.attempts.unwrap();
    assert_eq!(attempts[0]["provider"], "mock-down");
    assert_eq!(attempts[0]["class"], "connect");

    // A client error is not a reason to try elsewhere.
    app.mock
        .push_behaviour("up-a", Behaviour::error(400, "Invalid 'temperature'"));
    let body = with(
        unique("test/chat"),
        "provider",
        json!({"order": ["mock-a", "mock-b"]}),
    );
    let v = error_body(app.post_chat(&t.key, &body).await, 400).await;
    assert_eq!(v["error"]["metadata"]["provider_name"], "mock-a");

    app.settled().await;
    app.ledger_clean().await;
    app.hot_matches_ledger(t.account).await;
}

/// Fills a listener's accept queue so that further connections hang in SYN-SENT.
fn unreachable_port() -> (tokio::net::TcpListener, Vec<std::net::TcpStream>, u16) {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let listener = socket.listen(0).unwrap();
    let addr = listener.local_addr().unwrap();
    let mut fillers = Vec::new();
    for _ in 0..8 {
        match std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(300)) {
            Ok(s) => fillers.push(s),
            Err(_) => break,
        }
    }
    (listener, fillers, addr.port())
}

#[tokio::test]
async fn connect_timeout_is_applied_and_falls_back() {
    let (_listener, _fillers, port) = unreachable_port();
    let extra_catalog = format!(
        r#"
[[providers]]
name = "mock-hang"
wire = "openai"
base_url = "http://127.0.0.1:{port}/v1"
api_key_env = "MOCK_KEY"
[[models]]
id = "test/hang"
name = "Hangs on connect"
context_length = 8000
max_output_tokens = 1000
[[models.endpoints]]
provider = "mock-hang"
upstream_model = "hang"
pricing = {{ prompt = "0.0000001", completion = "0.0000001" }}
[[models.endpoints]]
provider = "mock-a"
upstream_model = "hang-a"
pricing = {{ prompt = "0.000001", completion = "0.000001" }}
"#
    );
    let app = spawn_app_with_catalog(
        &[
            ("INFRON_CONNECT_TIMEOUT_SECS", "1".into()),
            ("INFRON_FIRST_BYTE_TIMEOUT_SECS", "30".into()),
        ],
        &extra_catalog,
    )
    .await;
    let t = app.tenant("1").await;
    let (provider, id) = answered_by(app.post_chat(&t.key, &unique("test/hang")).await).await;
    assert_eq!(provider, "mock-a");
    let row = app.log_row(&id).await;
    let attempts = row.attempts.unwrap();
    let error = &attempts[0];
    assert_eq!(error["class"], "timeout", "{error}");
    assert!(error.get("status").is_none(), "no response at all: {error}");
    assert!(
        row.latency_ms.unwrap() < 20_000,
        "the 30 s first-byte timeout did not decide"
    );
}

#[tokio::test]
async fn after_first_content_there_is_no_fallback_and_only_delivered_text_is_charged() {
    let app = spawn_app_with(&[("INFRON_STREAM_IDLE_TIMEOUT_SECS", "1".into())]).await;
    let t = app.tenant("1").await;
    for (fault, error_class) in [
        (Fault::ResetAfterChunks, "stream_broken"),
        (Fault::StallAfterChunks, "stream_broken"),
    ] {
        app.mock.clear_requests();
        app.mock.push_behaviour(
            "up-a",
            Behaviour::from_json(json!({
                "reply": "one two three four five", "fault": fault, "after_chunks": 2,
                "omit_usage": true,
            }))
            .unwrap(),
        );
        // Pinned: mock-a failed in the previous round, which would otherwise demote it.
        let body = with(
            pinned_stream("test/chat"),
            "provider",
            json!({"order": ["mock-a", "mock-b"]}),
        );
        let res = app.post_chat(&t.key, &body).await;
        assert_eq!(res.status(), 200);
        let id = res.headers()["x-request-id"].to_str().unwrap().to_string();
        let text = res.text().await.unwrap();
        let data = sse_data(&text);
        assert_eq!(data.last().map(String::as_str), Some("[DONE]"), "{text}");
        let chunks: Vec<Value> = data[..data.len() - 1]
            .iter()
            .map(|d| serde_json::from_str(d).unwrap())
            .collect();
        let content: String = chunks
            .iter()
            .filter_map(|c| c["choices"][0]["delta"]["content"].as_str())
            .collect();
        assert_eq!(content, "one two");
        assert!(chunks.iter().all(|c| c["provider"] == "mock-a"));
        let last = chunks.last().unwrap();
        assert_eq!(last["choices"][0]["finish_reason"], "error");
        assert!(last["error"]["message"].is_string(), "{last}");
        assert!(
            app.mock
                .requests()
                .iter()
                .all(|r| r.body["model"] != "up-b"),
            "no fallback once content was sent"
        );

        let row = app.log_row(&id).await;
        assert_eq!(row.error_class.as_deref(), Some(error_class));
        assert_eq!(row.finish_reason.as_deref(), Some("error"));
        assert_eq!(row.usage_source.as_deref(), Some("estimated"));
        let request: ChatRequest = serde_json::from_value(body).unwrap();
        let prompt = request.prompt_token_estimate();
        // "one two" is 7 bytes: 2 tokens at about four bytes each.
        assert_eq!(row.completion_tokens, 2);
        assert_eq!(row.prompt_tokens, prompt as i64);
        let expected =
            dec("0.000001") * rust_decimal::Decimal::from(prompt) + dec("0.000002") * dec("2");
        assert_eq!(row.cost, expected);
    }
    app.settled().await;
    app.ledger_clean().await;
    app.hot_matches_ledger(t.account).await;
}

#[tokio::test]
async fn timeouts_idle_and_overall_end_the_request() {
    let app = spawn_app_with(&[
        ("INFRON_REQUEST_TIMEOUT_SECS", "2".into()),
        ("INFRON_STREAM_IDLE_TIMEOUT_SECS", "1".into()),
    ])
    .await;
    let t = app.tenant("1").await;

    // Idle: content arrived, then silence longer than the idle timeout.
    app.mock.push_behaviour(
        "up-a",
        Behaviour::from_json(
            json!({"reply": "a b c d", "fault": "stall_after_chunks", "after_chunks": 1}),
        )
        .unwrap(),
    );
    let text = app
        .post_chat(&t.key, &pinned_stream("test/chat"))
        .await
        .text()
        .await
        .unwrap();
    let data = sse_data(&text);
    let err: Value = serde_json::from_str(&data[data.len() - 2]).unwrap();
    assert_eq!(err["error"]["code"], 502, "{text}");
    assert!(
        err["error"]["message"].as_str().unwrap().contains("idle"),
        "{err}"
    );

    // Overall deadline, non-streaming: the provider is slower than the whole request may take.
    app.mock.push_behaviour(
        "up-a",
        Behaviour::from_json(json!({"latency_ms": 4000})).unwrap(),
    );
    let body = with(
        unique("test/chat"),
        "provider",
        json!({"order": ["mock-a"]}),
    );
    let v = error_body(app.post_chat(&t.key, &body).await, 408).await;
    assert_eq!(v["error"]["type"], "timeout_error");

    // Overall deadline, streaming: the stream is cut with an error chunk.
    app.mock.push_behaviour(
        "up-a",
        Behaviour::from_json(
            json!({"reply": "w1 w2 w3 w4 w5 w6 w7 w8 w9 w10", "chunk_delay_ms": 400}),
        )
        .unwrap(),
    );
    let text = app
        .post_chat(&t.key, &pinned_stream("test/chat"))
        .await
        .text()
        .await
        .unwrap();
    let data = sse_data(&text);
    assert_eq!(data.last().map(String::as_str), Some("[DONE]"));
    let err: Value = serde_json::from_str(&data[data.len() - 2]).unwrap();
    assert_eq!(err["error"]["code"], 408, "{text}");
    assert_eq!(err["choices"][0]["finish_reason"], "error");
    app.settled().await;
    app.ledger_clean().await;
    app.hot_matches_ledger(t.account).await;
}

#[tokio::test]
async fn models_list_is_tried_when_every_endpoint_fails() {
    let app = spawn_app().await;
    let t = app.tenant("1").await;
    app.mock
        .push_behaviour("up-a", Behaviour::error(500, "down"));
    app.mock
        .push_behaviour("up-b", Behaviour::error(503, "down"));
    app.mock.set_model_behaviour(
        "up-backup",
        Behaviour::from_json(json!({"prompt_tokens": 10, "completion_tokens": 10})).unwrap(),
    );
    for field in ["models", "fallback_models"] {
        let mut body = with(unique("test/chat"), field, json!(["test/backup"]));
        body["usage"] = json!({"include": true});
        let res = app.post_chat(&t.key, &body).await;
        let v: Value = res.json().await.unwrap();
        assert_eq!(v["model"], "test/backup", "{v}");
        assert_eq!(v["provider"], "mock-a");
        // Charged at what answered: test/backup's 0.000003 per token.
        assert_eq!(v["usage"]["cost"].to_string(), "0.00006");
        let row = app.log_row(v["id"].as_str().unwrap()).await;
        assert_eq!(row.model.as_deref(), Some("test/backup"));
        // Both endpoints of test/chat fail again in the second round.
        app.mock
            .push_behaviour("up-a", Behaviour::error(500, "down"));
        app.mock
            .push_behaviour("up-b", Behaviour::error(503, "down"));
    }

    // A context-length error skips the model's other endpoints.
    let app = spawn_app().await;
    let t = app.tenant("1").await;
    app.mock.push_behaviour(
        "up-a",
        Behaviour::error(400, "This model's maximum context length is 8000 tokens"),
    );
    let body = with(unique("test/chat"), "models", json!(["test/backup"]));
    let v: Value = app.post_chat(&t.key, &body).await.json().await.unwrap();
    assert_eq!(v["model"], "test/backup");
    let row = app.log_row(v["id"].as_str().unwrap()).await;
    let attempts = row.attempts.unwrap();
    let attempts = attempts.as_array().unwrap();
    assert_eq!(attempts.len(), 1, "{attempts:?}");
    assert_eq!(attempts[0]["class"], "context_length");
    assert!(app
        .mock
        .requests()
        .iter()
        .all(|r| r.body["model"] != "up-b"));
}

#[tokio::test]
async fn default_order_prefers_the_cheaper_endpoint_at_random() {
    let app = spawn_app_with(&product_defaults()).await;
    let t = app.tenant("5").await;
    let mut counts = std::collections::HashMap::<String, u32>::new();
    for _ in 0..60 {
        let (provider, _) = answered_by(app.post_chat(&t.key, &unique("test/chat")).await).await;
        *counts.entry(provider).or_default() += 1;
    }
    // Weights 1/3² (mock-a) and 1/6² (mock-b): mock-a is drawn 80% of the time.
    let (a, b) = (counts["mock-a"], counts.get("mock-b").copied().unwrap_or(0));
    assert!(a > b && b > 0, "{counts:?}");
}

#[tokio::test]
async fn provider_order_only_ignore_and_allow_fallbacks() {
    let app = spawn_app_with(&product_defaults()).await;
    let t = app.tenant("5").await;
    for provider in [
        json!({"order": ["mock-b"]}),
        json!({"order": ["Mock-B", "mock-a"]}),
        json!({"only": ["mock-b"]}),
        json!({"ignore": ["mock-a"]}),
    ] {
        for _ in 0..5 {
            let body = with(unique("test/chat"), "provider", provider.clone());
            assert_eq!(
                answered_by(app.post_chat(&t.key, &body).await).await.0,
                "mock-b",
                "{provider}"
            );
        }
    }
    // `order` with fallbacks: the listed provider fails, the rest are tried.
    app.mock
        .push_behaviour("up-b", Behaviour::error(500, "down"));
    let body = with(
        unique("test/chat"),
        "provider",
        json!({"order": ["mock-b"]}),
    );
    assert_eq!(
        answered_by(app.post_chat(&t.key, &body).await).await.0,
        "mock-a"
    );

    // Without fallbacks: only the listed providers.
    app.mock
        .push_behaviour("up-b", Behaviour::error(500, "down"));
    let body = with(
        unique("test/chat"),
        "provider",
        json!({"order": ["mock-b"], "allow_fallbacks": false}),
    );
    let v = error_body(app.post_chat(&t.key, &body).await, 502).await;
    let errors = v["error"]["metadata"]["provider_errors"]
        .as_array()
        .unwrap();
    assert_eq!(errors.len(), 1, "{v}");
    assert_eq!(errors[0]["provider"], "mock-b");

    // Without fallbacks and without order: the one endpoint chosen first.
    app.mock
        .push_behaviour("up-a", Behaviour::error(500, "down"));
    let body = with(
        unique("test/chat"),
        "provider",
        json!({"sort": "price", "allow_fallbacks": false}),
    );
    let v = error_body(app.post_chat(&t.key, &body).await, 502).await;
    assert_eq!(
        v["error"]["metadata"]["provider_errors"]
            .as_array()
            .unwrap()
            .len(),
        1
    );

    // Nothing left after only/ignore.
    let body = with(
        unique("test/chat"),
        "provider",
        json!({"only": ["mock-b"], "ignore": ["mock-b"]}),
    );
    let v = error_body(app.post_chat(&t.key, &body).await, 404).await;
    assert_eq!(v["error"]["metadata"]["availability"], "no_endpoints");
}

#[tokio::test]
async fn sort_and_variants_use_price_and_measured_speed() {
    let app = spawn_app_with(&product_defaults()).await;
    let t = app.tenant("5").await;
    // mock-a is cheaper but slow; mock-b is dearer and fast.
    app.mock.set_model_behaviour(
        "up-a",
        Behaviour::from_json(json!({"latency_ms": 400})).unwrap(),
    );
    app.mock.set_model_behaviour(
        "up-b",
        Behaviour::from_json(json!({"latency_ms": 20})).unwrap(),
    );
    for provider in ["mock-a", "mock-b"] {
        for _ in 0..2 {
            let body = with(unique("test/chat"), "provider", json!({"only": [provider]}));
            answered_by(app.post_chat(&t.key, &body).await).await;
        }
    }
    for provider in ["mock-a", "mock-b"] {
        wait_for_endpoint(&app, &app.base, "test/chat", provider, |e| {
            e["requests_last_30m"] == 2 && !e["throughput_last_30m"].is_null()
        })
        .await;
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    let first = |body: Value| provider_of(&app, &t.key, body);
    for _ in 0..5 {
        let sorted = |sort: &str| with(unique("test/chat"), "provider", json!({"sort": sort}));
        assert_eq!(first(sorted("price")).await, "mock-a");
        assert_eq!(first(sorted("latency")).await, "mock-b");
        assert_eq!(first(sorted("throughput")).await, "mock-b");
        assert_eq!(first(unique("test/chat:floor")).await, "mock-a");
        assert_eq!(first(unique("test/chat:nitro")).await, "mock-b");
    }
    let v: Value = app
        .post_chat(&t.key, &unique("chat-alias:floor"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        v["model"], "test/chat",
        "variants apply to aliases and are not part of the id"
    );
}

#[tokio::test]
async fn capabilities_privacy_parameters_and_price_limits_filter_endpoints() {
    let app = spawn_app_with(&product_defaults()).await;
    let t = app.tenant("5").await;
    let cheapest = |extra: Vec<(&str, Value)>, provider: Value| {
        let mut body = with(unique("test/routing"), "provider", provider);
        for (k, v) in extra {
            body[k] = v;
        }
        body
    };
    let price = json!({"sort": "price"});
    let ask = |body: Value| provider_of(&app, &t.key, body);

    // Plain text goes to the cheapest, mock-c.
    assert_eq!(ask(cheapest(vec![], price.clone())).await, "mock-c");
    // Tools, images, JSON schema and reasoning need an endpoint that supports them.
    let tools = json!([{"type": "function", "function": {"name": "f", "parameters": {}}}]);
    assert_eq!(
        ask(cheapest(vec![("tools", tools.clone())], price.clone())).await,
        "mock-a"
    );
    let image = json!([{"role": "user", "content": [
        {"type": "text", "text": format!("what is this {}", Uuid::new_v4())},
        {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}}]}]);
    assert_eq!(
        ask(cheapest(vec![("messages", image)], price.clone())).await,
        "mock-a"
    );
    let schema =
        json!({"type": "json_schema", "json_schema": {"name": "x", "schema": {"type": "object"}}});
    let order = json!({"order": ["mock-b", "mock-c", "mock-a"]});
    assert_eq!(
        ask(cheapest(vec![("response_format", schema)], order)).await,
        "mock-a"
    );
    assert_eq!(
        ask(cheapest(
            vec![("reasoning", json!({"effort": "low"}))],
            price.clone()
        ))
        .await,
        "mock-a"
    );
    let v = error_body(
        app.post_chat(
            &t.key,
            &cheapest(vec![("tools", tools)], json!({"only": ["mock-c"]})),
        )
        .await,
        404,
    )
    .await;
    assert_eq!(v["error"]["metadata"]["availability"], "capability_missing");

    // require_parameters: a JSON-object response_format is only a hard need when asked.
    let object = json!({"type": "json_object"});
    assert_eq!(
        ask(cheapest(
            vec![("response_format", object.clone())],
            price.clone()
        ))
        .await,
        "mock-c"
    );
    assert_eq!(
        ask(cheapest(
            vec![("response_format", object)],
            json!({"sort": "price", "require_parameters": true})
        ))
        .await,
        "mock-a"
    );

    // data_collection: deny (and zdr) leave out providers that retain prompts.
    assert_eq!(
        ask(cheapest(
            vec![],
            json!({"sort": "price", "data_collection": "deny"})
        ))
        .await,
        "mock-a"
    );
    assert_eq!(
        ask(cheapest(vec![], json!({"sort": "price", "zdr": true}))).await,
        "mock-a"
    );
    assert_eq!(
        ask(cheapest(
            vec![],
            json!({"sort": "price", "data_collection": "allow"})
        ))
        .await,
        "mock-c"
    );
    let v = error_body(
        app.post_chat(
            &t.key,
            &cheapest(
                vec![],
                json!({"only": ["mock-c"], "data_collection": "deny"}),
            ),
        )
        .await,
        404,
    )
    .await;
    assert_eq!(v["error"]["metadata"]["availability"], "privacy_restricted");

    // max_price, USD per million tokens: mock-a charges 1 + 2, mock-b 2 + 4.
    let body = with(
        unique("test/chat"),
        "provider",
        json!({"order": ["mock-b"], "max_price": {"prompt": 1.5, "completion": "3"}}),
    );
    assert_eq!(ask(body).await, "mock-a");
    let body = with(
        unique("test/chat"),
        "provider",
        json!({"max_price": {"prompt": 0.5}}),
    );
    let v = error_body(app.post_chat(&t.key, &body).await, 404).await;
    assert_eq!(v["error"]["metadata"]["availability"], "price_exceeded");
    assert_eq!(v["error"]["code"], 404);
}

#[tokio::test]
async fn invalid_provider_objects_and_variants_are_400_naming_the_field() {
    let app = spawn_app().await;
    let t = app.tenant("1").await;
    for (provider, param) in [
        (json!("cheapest"), "provider"),
        (json!({"sort": "cheapest"}), "provider.sort"),
        (json!({"order": ["nobody"]}), "provider.order[0]"),
        (json!({"only": ["mock-a", 3]}), "provider.only[1]"),
        (
            json!({"allow_fallbacks": "yes"}),
            "provider.allow_fallbacks",
        ),
        (
            json!({"data_collection": "sometimes"}),
            "provider.data_collection",
        ),
        (
            json!({"max_price": {"prompt": -1}}),
            "provider.max_price.prompt",
        ),
        (
            json!({"max_price": {"tokens": 1}}),
            "provider.max_price.tokens",
        ),
        (json!({"quantizations": ["fp8"]}), "provider.quantizations"),
    ] {
        let body = with(unique("test/chat"), "provider", provider.clone());
        let v = error_body(app.post_chat(&t.key, &body).await, 400).await;
        assert_eq!(v["error"]["param"], param, "{provider}: {v}");
        assert!(
            v["error"]["message"].as_str().unwrap().contains(param),
            "{v}"
        );
    }
    let v = error_body(app.post_chat(&t.key, &unique("test/chat:free")).await, 400).await;
    assert_eq!(v["error"]["param"], "model");
    assert!(app.mock.requests().is_empty());
    app.settled().await;
    assert_eq!(app.balance(t.account).await, dec("1"));
}

#[tokio::test]
async fn two_instances_share_circuit_state_through_redis() {
    let settings = [
        ("INFRON_CIRCUIT_FAILURE_THRESHOLD", "2".to_string()),
        ("INFRON_CIRCUIT_COOLDOWN_SECS", "3".to_string()),
        ("INFRON_HEALTH_REFRESH_MS", "100".to_string()),
    ];
    let app = spawn_app_with(&settings).await;
    let replica = spawn_replica(&app, &settings).await;
    let t = app.tenant("5").await;

    // Instance one sees mock-a fail twice in a row: its circuit opens.
    app.mock
        .set_model_behaviour("up-a", Behaviour::error(500, "down"));
    let pinned = json!({"order": ["mock-a"], "allow_fallbacks": false});
    for _ in 0..2 {
        let body = with(unique("test/chat"), "provider", pinned.clone());
        error_body(post(&app, &app.base, &t.key, &body).await, 502).await;
    }
    let endpoint = wait_for_endpoint(&app, &replica, "test/chat", "mock-a", |e| {
        e["status_name"] == "open" && e["status"] == -2
    })
    .await;
    assert_eq!(endpoint["circuit"]["consecutive_failures"], 2);
    tokio::time::sleep(Duration::from_millis(400)).await;

    // Instance two never tried mock-a, yet skips it: mock-b answers and mock-a gets no call.
    app.mock.clear_requests();
    for _ in 0..3 {
        let (provider, _) =
            answered_by(post(&app, &replica, &t.key, &unique("test/chat")).await).await;
        assert_eq!(provider, "mock-b");
    }
    assert!(app
        .mock
        .requests()
        .iter()
        .all(|r| r.body["model"] != "up-a"));

    // After the cool-down one probe goes through; its success closes the circuit for both.
    app.mock.set_model_behaviour("up-a", Behaviour::default());
    tokio::time::sleep(Duration::from_millis(3_200)).await;
    let (provider, _) = answered_by(post(&app, &replica, &t.key, &unique("test/chat")).await).await;
    assert_eq!(provider, "mock-a", "the half-open probe");
    let endpoint = wait_for_endpoint(&app, &app.base, "test/chat", "mock-a", |e| {
        e["status_name"] != "open"
    })
    .await;
    assert_eq!(endpoint["circuit"]["consecutive_failures"], 0);
    app.settled().await;
    app.ledger_clean().await;
}

#[tokio::test]
async fn endpoints_page_shows_prices_status_latency_and_uptime() {
    let app = spawn_app().await;
    let t = app.tenant("1").await;
    let pinned = json!({"order": ["mock-a"], "allow_fallbacks": false});
    app.mock.set_model_behaviour(
        "up-a",
        Behaviour::from_json(json!({"latency_ms": 30})).unwrap(),
    );
    for _ in 0..3 {
        let body = with(unique("test/chat"), "provider", pinned.clone());
        answered_by(app.post_chat(&t.key, &body).await).await;
    }
    app.mock
        .push_behaviour("up-a", Behaviour::error(503, "down"));
    let body = with(unique("test/chat"), "provider", pinned.clone());
    error_body(app.post_chat(&t.key, &body).await, 502).await;

    let a = wait_for_endpoint(&app, &app.base, "test/chat", "mock-a", |e| {
        e["requests_last_30m"] == 4
    })
    .await;
    assert_eq!(a["provider_name"], "mock-a");
    assert_eq!(a["upstream_model"], "up-a");
    assert_eq!(a["context_length"], 8000);
    assert_eq!(a["max_completion_tokens"], 1000);
    assert_eq!(a["pricing"]["prompt"], "0.000001");
    assert_eq!(a["pricing"]["completion"], "0.000002");
    assert_eq!(a["pricing"]["discount"], 0);
    assert_eq!(a["status_name"], "degraded", "failed within the last 30 s");
    assert_eq!(a["status"], -1);
    assert_eq!(a["uptime_last_30m"], 75.0);
    let p50 = a["latency_last_30m"]["p50"].as_f64().unwrap();
    let p90 = a["latency_last_30m"]["p90"].as_f64().unwrap();
    assert!(p50 >= 0.0 && p90 >= p50, "{a}");
    assert!(
        a["throughput_last_30m"]["p50"].as_f64().unwrap() > 0.0,
        "{a}"
    );

    let page: Value = app
        .client
        .get(format!("{}/api/v1/models/test/chat/endpoints", app.base))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(page["data"]["id"], "test/chat");
    assert_eq!(page["data"]["name"], "Test Chat");
    let endpoints = page["data"]["endpoints"].as_array().unwrap();
    assert_eq!(endpoints.len(), 2);
    let b = endpoints.iter().find(|e| e["tag"] == "mock-b").unwrap();
    assert_eq!(b["status"], 0);
    assert!(
        b["uptime_last_30m"].is_null(),
        "no traffic, no uptime figure"
    );
    assert_eq!(b["pricing"]["prompt"], "0.000002");

    let res = app
        .client
        .get(format!("{}/v1/models/nobody/nothing/endpoints", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 404);
}

#[tokio::test]
async fn catalog_reload_keeps_serving_when_the_new_file_is_bad() {
    let path = std::env::temp_dir().join(format!("infron-catalog-{}.toml", Uuid::new_v4()));
    let token = format!("admin-{}", Uuid::new_v4().simple());
    let app = spawn_app_with(&[
        ("INFRON_CATALOG", path.display().to_string()),
        ("INFRON_ADMIN_TOKEN", token.clone()),
    ])
    .await;
    let t = app.tenant("1").await;
    let reload = |bearer: Option<String>| {
        let mut req = app
            .client
            .post(format!("{}/api/v1/admin/catalog/reload", app.base));
        if let Some(b) = bearer {
            req = req.bearer_auth(b);
        }
        req.send()
    };
    assert_eq!(reload(None).await.unwrap().status(), 401);
    assert_eq!(
        reload(Some("wrong-token-wrong-token".into()))
            .await
            .unwrap()
            .status(),
        403
    );

    // The file is missing: an operator problem, 500, nothing changes.
    let v = error_body(reload(Some(token.clone())).await.unwrap(), 500).await;
    assert_eq!(v["error"]["metadata"]["entry"], "file");

    // A bad file: 400 naming the entry and reason; the old catalog keeps serving.
    let good = catalog_toml(&app.mock.base_url());
    let bad = good.replace(
        "provider = \"mock-b\"\nupstream_model = \"up-b\"",
        "provider = \"nobody\"\nupstream_model = \"up-b\"",
    );
    assert_ne!(bad, good);
    std::fs::write(&path, &bad).unwrap();
    let v = error_body(reload(Some(token.clone())).await.unwrap(), 400).await;
    assert!(
        v["error"]["metadata"]["entry"]
            .as_str()
            .unwrap()
            .contains("test/chat"),
        "{v}"
    );
    assert!(
        v["error"]["metadata"]["reason"]
            .as_str()
            .unwrap()
            .contains("nobody"),
        "{v}"
    );
    let (provider, _) = answered_by(app.post_chat(&t.key, &unique("test/chat")).await).await;
    assert_eq!(provider, "mock-a");
    let body = with(unique("test/chat"), "provider", json!({"only": ["mock-b"]}));
    assert_eq!(
        answered_by(app.post_chat(&t.key, &body).await).await.0,
        "mock-b"
    );

    // A good file with a new model and a new price takes effect without a restart.
    let newer = good.replace(
        "prompt = \"0.000003\", completion = \"0.000003\"",
        "prompt = \"0.000005\", completion = \"0.000005\"",
    ) + r#"
[[models]]
id = "test/new"
name = "Added by reload"
context_length = 4000
max_output_tokens = 100
[[models.endpoints]]
provider = "mock-b"
upstream_model = "up-new"
pricing = { prompt = "0.000001", completion = "0.000001" }
"#;
    std::fs::write(&path, &newer).unwrap();
    let res = reload(Some(token.clone())).await.unwrap();
    assert_eq!(res.status(), 200);
    let v: Value = res.json().await.unwrap();
    assert_eq!(v["data"]["reloaded"], true);
    let (provider, id) = answered_by(app.post_chat(&t.key, &unique("test/new")).await).await;
    assert_eq!(provider, "mock-b");
    assert_eq!(app.log_row(&id).await.model.as_deref(), Some("test/new"));
    // The new price applies from now on and is snapshotted on the log.
    app.mock.set_model_behaviour(
        "up-backup",
        Behaviour::from_json(json!({"prompt_tokens": 10, "completion_tokens": 10})).unwrap(),
    );
    let (_, id) = answered_by(app.post_chat(&t.key, &unique("test/backup")).await).await;
    let row = app.log_row(&id).await;
    assert_eq!(row.cost, dec("0.0001"));
    let prices = infron_store::request_logs::price_snapshot(&app.pg, row.price_id.unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(prices["prompt"], "0.000005");
    let _ = std::fs::remove_file(&path);

    // Without INFRON_ADMIN_TOKEN the route does not exist.
    let plain = spawn_app().await;
    let res = plain
        .client
        .post(format!("{}/api/v1/admin/catalog/reload", plain.base))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 404);
}
