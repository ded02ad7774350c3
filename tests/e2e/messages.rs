//! Anthropic's Messages API on the gateway: requests as the official `anthropic` SDKs send them
//! (`x-api-key`, `anthropic-version`), answers and streams in Anthropic's shapes, Anthropic's
//! error shape, and the same routing and billing as chat completions, whatever the upstream
//! wire.

use serde_json::{json, Value};

use crate::helpers::*;

fn body(model: &str, directive: Value) -> Value {
    json!({
        "model": model,
        "max_tokens": 200,
        "system": "You are terse.",
        "messages": [{"role": "user", "content": [{"type": "text", "text": format!("Say hello [[mock:{directive}]]")}]}],
    })
}

async fn post(app: &TestApp, key: &str, path: &str, body: &Value) -> reqwest::Response {
    app.client
        .post(format!("{}{path}", app.base))
        .header("x-api-key", key)
        .header("anthropic-version", "2023-06-01")
        .json(body)
        .send()
        .await
        .unwrap()
}

/// (event name, data) of an Anthropic SSE body.
fn events(text: &str) -> Vec<(String, Value)> {
    text.split("\n\n")
        .filter_map(|e| {
            let name = e.lines().find_map(|l| l.strip_prefix("event: "))?;
            let data = e.lines().find_map(|l| l.strip_prefix("data: "))?;
            Some((name.to_string(), serde_json::from_str(data).unwrap()))
        })
        .collect()
}

#[tokio::test]
async fn messages_are_answered_and_billed_on_every_upstream_wire() {
    let app = spawn_app().await;
    let t = app.tenant("5").await;
    for model in ["test/chat", "conf/anthropic", "conf/gemini", "conf/bedrock"] {
        let before = app.balance(t.account).await;
        let res = post(
            &app,
            &t.key,
            "/v1/messages",
            &body(
                model,
                json!({"reply": "Hi there", "prompt_tokens": 30, "completion_tokens": 5}),
            ),
        )
        .await;
        assert_eq!(res.status(), 200, "{model}");
        let id = res.headers()["x-request-id"].to_str().unwrap().to_string();
        assert_eq!(res.headers()["request-id"].to_str().unwrap(), id);
        let v: Value = res.json().await.unwrap();
        assert_eq!(v["type"], "message", "{model}: {v}");
        assert_eq!(v["id"], id.as_str());
        assert_eq!(v["role"], "assistant");
        assert_eq!(v["model"], model);
        assert_eq!(
            v["content"],
            json!([{"type": "text", "text": "Hi there"}]),
            "{model}"
        );
        assert_eq!(v["stop_reason"], "end_turn");
        assert!(v["stop_sequence"].is_null());
        assert_eq!(v["usage"]["input_tokens"], 30, "{model}: {v}");
        assert_eq!(v["usage"]["output_tokens"], 5);
        let row = app.log_row(&id).await;
        assert_eq!(row.endpoint_kind, "messages");
        app.settled().await;
        assert!(app.balance(t.account).await < before, "{model} was charged");
    }
    app.ledger_clean().await;
}

#[tokio::test]
async fn tool_use_and_thinking_round_trip() {
    let app = spawn_app().await;
    let t = app.tenant("5").await;
    let directive = json!({"reasoning": "Let me think", "tool_calls": [{"name": "get_weather", "arguments": {"city": "Paris"}, "id": "toolu_1"}]});
    let mut req = body("conf/anthropic", directive);
    req["tools"] = json!([{"name": "get_weather", "description": "Weather", "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}}}]);
    req["thinking"] = json!({"type": "enabled", "budget_tokens": 1024});
    req["max_tokens"] = json!(2000);
    let res = post(&app, &t.key, "/v1/messages", &req).await;
    assert_eq!(res.status(), 200);
    let v: Value = res.json().await.unwrap();
    assert_eq!(v["stop_reason"], "tool_use", "{v}");
    let blocks = v["content"].as_array().unwrap();
    assert_eq!(blocks[0]["type"], "thinking", "{v}");
    assert_eq!(blocks[0]["thinking"], "Let me think");
    assert!(!blocks[0]["signature"].as_str().unwrap().is_empty(), "{v}");
    let tool = blocks.iter().find(|b| b["type"] == "tool_use").unwrap();
    assert_eq!(tool["id"], "toolu_1");
    assert_eq!(tool["name"], "get_weather");
    assert_eq!(tool["input"], json!({"city": "Paris"}));

    // The next turn sends the thinking (with its signature), the call and its result back.
    let mut next = req.clone();
    next["messages"] = json!([
        req["messages"][0],
        {"role": "assistant", "content": blocks},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_1", "content": "sunny"}]},
    ]);
    let res = post(&app, &t.key, "/v1/messages", &next).await;
    assert_eq!(res.status(), 200);
    let sent = app
        .mock
        .requests()
        .into_iter()
        .rfind(|r| r.path.ends_with("/v1/messages"))
        .unwrap();
    let upstream = sent.body.clone();
    let turns = upstream["messages"].as_array().unwrap();
    assert_eq!(turns[1]["content"][0]["type"], "thinking", "{upstream}");
    assert_eq!(turns[1]["content"][0]["signature"], blocks[0]["signature"]);
    assert_eq!(turns[2]["content"][0]["type"], "tool_result");
    assert_eq!(turns[2]["content"][0]["tool_use_id"], "toolu_1");
}

#[tokio::test]
async fn streams_follow_anthropics_event_sequence() {
    let app = spawn_app().await;
    let t = app.tenant("5").await;
    for model in ["test/chat", "conf/anthropic"] {
        let mut req = body(
            model,
            json!({"reply": "one two three", "completion_tokens": 3}),
        );
        req["stream"] = json!(true);
        let res = post(&app, &t.key, "/v1/messages", &req).await;
        assert_eq!(res.status(), 200);
        assert!(res.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/event-stream"));
        let id = res.headers()["x-request-id"].to_str().unwrap().to_string();
        let ev = events(&res.text().await.unwrap());
        let names: Vec<&str> = ev.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(
            names[..3],
            ["message_start", "ping", "content_block_start"],
            "{names:?}"
        );
        assert_eq!(
            names[names.len() - 3..],
            ["content_block_stop", "message_delta", "message_stop"]
        );
        for (n, d) in &ev {
            assert_eq!(d["type"], n.as_str(), "data.type names the event");
        }
        assert_eq!(ev[0].1["message"]["id"], id.as_str());
        assert_eq!(ev[0].1["message"]["model"], model);
        let text: String = ev
            .iter()
            .filter(|(n, d)| n == "content_block_delta" && d["delta"]["type"] == "text_delta")
            .map(|(_, d)| d["delta"]["text"].as_str().unwrap().to_string())
            .collect();
        assert_eq!(text, "one two three", "{model}");
        let delta = &ev[ev.len() - 2].1;
        assert_eq!(delta["delta"]["stop_reason"], "end_turn");
        assert_eq!(delta["usage"]["output_tokens"], 3, "{model}: {delta}");
        assert_eq!(app.log_row(&id).await.endpoint_kind, "messages");
    }
}

#[tokio::test]
async fn errors_come_in_anthropics_shape() {
    let app = spawn_app().await;
    let t = app.tenant("5").await;
    let broke = app.tenant("0").await;
    let check = |status: u16, kind: &'static str| {
        move |(s, v): (u16, Value)| {
            assert_eq!(s, status, "{v}");
            assert_eq!(v["type"], "error", "{v}");
            assert_eq!(v["error"]["type"], kind, "{v}");
            assert!(v["error"]["message"]
                .as_str()
                .is_some_and(|m| !m.is_empty()));
            assert!(v["request_id"].as_str().unwrap().starts_with("gen-"));
        }
    };
    async fn send(app: &TestApp, key: &str, b: &Value) -> (u16, Value) {
        let res = post(app, key, "/v1/messages", b).await;
        (res.status().as_u16(), res.json().await.unwrap())
    }
    let mut no_max = body("test/chat", json!({}));
    no_max.as_object_mut().unwrap().remove("max_tokens");
    check(400, "invalid_request_error")(send(&app, &t.key, &no_max).await);
    check(401, "authentication_error")(
        send(&app, "sk-inf-v1-nope", &body("test/chat", json!({}))).await,
    );
    check(404, "not_found_error")(send(&app, &t.key, &body("test/nope", json!({}))).await);
    check(402, "billing_error")(send(&app, &broke.key, &body("test/chat", json!({}))).await);
    check(400, "invalid_request_error")(
        send(
            &app,
            &t.key,
            &body("test/chat", json!({"status": 400, "error_message": "bad"})),
        )
        .await,
    );
    let mut huge = body("test/chat", json!({}));
    huge["messages"][0]["content"][0]["text"] = json!("x".repeat(300 * 1024));
    check(413, "request_too_large")(send(&app, &t.key, &huge).await);
    // A rate limit: 429 rate_limit_error with the standard Retry-After and rate-limit headers.
    let (limited, limited_id) = app.new_key(t.account).await;
    infron_store::keys::set_rate_limit(&app.pg, limited_id, Some(1), None)
        .await
        .unwrap();
    assert_eq!(
        send(&app, &limited, &body("test/chat", json!({}))).await.0,
        200
    );
    let res = post(
        &app,
        &limited,
        "/v1/messages",
        &body("test/chat", json!({})),
    )
    .await;
    assert!(res.headers().contains_key("retry-after"));
    assert!(res.headers().contains_key("x-ratelimit-limit-requests"));
    assert_eq!(res.headers()["content-type"], "application/json");
    let request_id = res.headers()["request-id"].to_str().unwrap().to_string();
    let (s, v) = (res.status().as_u16(), res.json::<Value>().await.unwrap());
    assert_eq!(v["request_id"], request_id.as_str());
    check(429, "rate_limit_error")((s, v));
    // Bearer works as well as x-api-key.
    let res = app
        .client
        .post(format!("{}/api/v1/messages", app.base))
        .bearer_auth(&t.key)
        .json(&body("test/chat", json!({})))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
}

#[tokio::test]
async fn count_tokens_estimates_the_prompt() {
    let app = spawn_app().await;
    let t = app.tenant("1").await;
    let short = json!({"model": "test/chat", "messages": [{"role": "user", "content": "hi"}]});
    let long = json!({"model": "test/chat", "messages": [{"role": "user", "content": "word ".repeat(400)}]});
    let n = |v: Value| v["input_tokens"].as_u64().unwrap();
    let res = post(&app, &t.key, "/v1/messages/count_tokens", &short).await;
    assert_eq!(res.status(), 200);
    let a = n(res.json().await.unwrap());
    let res = post(&app, &t.key, "/v1/messages/count_tokens", &long).await;
    let b = n(res.json().await.unwrap());
    assert!(a > 0 && b > a + 300, "{a} {b}");
    let res = post(
        &app,
        &t.key,
        "/v1/messages/count_tokens",
        &json!({"model": "test/nope", "messages": []}),
    )
    .await;
    assert_eq!(res.status(), 404);
    let v: Value = res.json().await.unwrap();
    assert_eq!(v["error"]["type"], "not_found_error");
}
