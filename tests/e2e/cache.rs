//! The response cache: hits without a provider call (JSON and SSE), isolation between accounts,
//! the per-request bypass, billing of hits, and what is never stored.

use infron_mock_provider::Behaviour;
use serde_json::{json, Value};
use uuid::Uuid;

use crate::helpers::*;

fn body(text: &str) -> Value {
    json!({
        "model": "test/chat",
        "messages": [{"role": "user", "content": text}],
        "max_tokens": 100,
        "provider": {"sort": "price"},
        "usage": {"include": true},
    })
}

fn provider_calls(app: &TestApp) -> usize {
    app.mock
        .requests()
        .iter()
        .filter(|r| r.path.ends_with("/chat/completions"))
        .count()
}

async fn send(
    app: &TestApp,
    key: &str,
    body: &Value,
    header: Option<&str>,
) -> (String, Value, String) {
    let mut req = app
        .client
        .post(format!("{}/v1/chat/completions", app.base))
        .bearer_auth(key)
        .json(body);
    if let Some(h) = header {
        req = req.header("x-infron-cache", h);
    }
    let res = req.send().await.unwrap();
    assert_eq!(res.status(), 200);
    let cache = res
        .headers()
        .get("x-infron-cache")
        .map(|h| h.to_str().unwrap().to_string())
        .unwrap_or_default();
    let id = res.headers()["x-request-id"].to_str().unwrap().to_string();
    let v = res.json().await.unwrap();
    (cache, v, id)
}

#[tokio::test]
async fn identical_request_is_answered_from_the_cache_and_charged_like_a_miss() {
    let app = spawn_app_with(&product_defaults()).await;
    let t = app.tenant("1").await;
    app.mock.set_model_behaviour(
        "up-a",
        Behaviour::from_json(
            json!({"reply": "cached words", "prompt_tokens": 10, "completion_tokens": 5}),
        )
        .unwrap(),
    );
    let b = body(&format!("Say hello {}", Uuid::new_v4()));
    let (first, miss, miss_id) = send(&app, &t.key, &b, None).await;
    assert_eq!(first, "miss");
    let mut hit = None;
    let mut misses = 1;
    // The entry is written in the background; the next identical request finds it.
    for _ in 0..150 {
        let (h, v, id) = send(&app, &t.key, &b, None).await;
        if h == "hit" {
            hit = Some((v, id));
            break;
        }
        assert_eq!(h, "miss");
        misses += 1;
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let (hit, hit_id) = hit.expect("a hit");
    let miss_row = app.log_row(&miss_id).await;
    assert_eq!(
        provider_calls(&app),
        misses,
        "every miss called the provider, the hit did not"
    );
    assert_eq!(hit["choices"][0]["message"]["content"], "cached words");
    assert_eq!(hit["model"], "test/chat");
    assert_eq!(hit["provider"], "mock-a");
    assert_ne!(hit["id"], miss["id"], "a hit is a request of its own");
    assert_eq!(hit["usage"]["prompt_tokens"], 10);
    assert_eq!(hit["usage"]["completion_tokens"], 5);
    // 10 x 0.000001 + 5 x 0.000002, like the miss.
    assert_eq!(hit["usage"]["cost"], miss["usage"]["cost"]);
    assert_eq!(hit["usage"]["cost"].to_string(), "0.00002");

    let row = app.log_row(&hit_id).await;
    assert!(row.cache_hit);
    assert!(!miss_row.cache_hit);
    assert_eq!(row.cost, dec("0.00002"));
    assert_eq!(row.usage_source.as_deref(), Some("cache"));
    assert_eq!(row.provider.as_deref(), Some("mock-a"));
    assert!(row.price_id.is_some());
    assert!(row.attempts.is_none(), "no provider was called");
    app.settled().await;
    let charged: i64 =
        sqlx::query_scalar("SELECT count(*) FROM request_logs WHERE account_id = $1 AND cost > 0")
            .bind(t.account)
            .fetch_one(&app.pg)
            .await
            .unwrap();
    assert_eq!(
        app.balance(t.account).await,
        dec("1") - dec("0.00002") * rust_decimal::Decimal::from(charged)
    );
    app.ledger_clean().await;
    app.hot_matches_ledger(t.account).await;
}

/// Sends `b` until the cache answers it, returning the response.
async fn until_hit(app: &TestApp, key: &str, b: &Value) -> reqwest::Response {
    for _ in 0..150 {
        let res = app
            .client
            .post(format!("{}/v1/chat/completions", app.base))
            .bearer_auth(key)
            .json(b)
            .send()
            .await
            .unwrap();
        if res
            .headers()
            .get("x-infron-cache")
            .is_some_and(|h| h == "hit")
        {
            return res;
        }
        let _ = res.bytes().await;
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    panic!("never a cache hit");
}

#[tokio::test]
async fn streams_are_stored_and_replayed_as_sse() {
    let app = spawn_app_with(&product_defaults()).await;
    let t = app.tenant("1").await;
    app.mock.set_model_behaviour(
        "up-a",
        Behaviour::from_json(
            json!({"reply": "streamed and stored", "prompt_tokens": 8, "completion_tokens": 3}),
        )
        .unwrap(),
    );
    let mut b = body(&format!("Stream please {}", Uuid::new_v4()));
    b["stream"] = json!(true);
    let res = app.post_chat(&t.key, &b).await;
    assert_eq!(res.headers()["x-infron-cache"], "miss");
    let original = res.text().await.unwrap();
    assert!(original.ends_with("data: [DONE]\n\n"));

    let res = until_hit(&app, &t.key, &b).await;
    assert!(res.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/event-stream"));
    let id = res.headers()["x-request-id"].to_str().unwrap().to_string();
    let text = res.text().await.unwrap();
    let data = sse_data(&text);
    assert_eq!(data.last().map(String::as_str), Some("[DONE]"));
    let chunks: Vec<Value> = data[..data.len() - 1]
        .iter()
        .map(|d| serde_json::from_str(d).unwrap())
        .collect();
    let content: String = chunks
        .iter()
        .filter_map(|c| c["choices"][0]["delta"]["content"].as_str())
        .collect();
    assert_eq!(content, "streamed and stored");
    for c in &chunks {
        assert_eq!(c["id"], id);
        assert_eq!(c["object"], "chat.completion.chunk");
        assert_eq!(c["model"], "test/chat");
        assert_eq!(c["provider"], "mock-a");
    }
    assert!(chunks
        .iter()
        .any(|c| c["choices"][0]["finish_reason"] == "stop"));
    let last = chunks.last().unwrap();
    assert_eq!(last["usage"]["prompt_tokens"], 8);
    assert_eq!(last["usage"]["completion_tokens"], 3);
    let row = app.log_row(&id).await;
    assert!(row.cache_hit && row.streamed);
    assert_eq!(row.cost, dec("0.000014"));

    // The same request without streaming is the same entry.
    b["stream"] = json!(false);
    let v: Value = until_hit(&app, &t.key, &b).await.json().await.unwrap();
    assert_eq!(v["choices"][0]["message"]["content"], "streamed and stored");
    app.settled().await;
    app.ledger_clean().await;
    app.hot_matches_ledger(t.account).await;
}

#[tokio::test]
async fn accounts_never_share_entries() {
    let app = spawn_app_with(&product_defaults()).await;
    let a = app.tenant("1").await;
    let b = app.tenant("1").await;
    let same = body(&format!("Shared words {}", Uuid::new_v4()));
    let (h, _, _) = send(&app, &a.key, &same, None).await;
    assert_eq!(h, "miss");
    until_hit(&app, &a.key, &same).await;
    let before = provider_calls(&app);
    let (h, _, _) = send(&app, &b.key, &same, None).await;
    assert_eq!(h, "miss", "another account's entry is not visible");
    assert_eq!(provider_calls(&app), before + 1);
    // Another key of the same account does share it.
    let (key2, _) = app.new_key(a.account).await;
    let (h, _, _) = send(&app, &key2, &same, None).await;
    assert_eq!(h, "hit");
}

#[tokio::test]
async fn the_bypass_header_skips_the_lookup() {
    let app = spawn_app_with(&product_defaults()).await;
    let t = app.tenant("1").await;
    let b = body(&format!("Bypass {}", Uuid::new_v4()));
    send(&app, &t.key, &b, None).await;
    until_hit(&app, &t.key, &b).await;

    let before = provider_calls(&app);
    let (h, _, id) = send(&app, &t.key, &b, Some("no-cache")).await;
    assert_eq!(h, "bypass");
    assert_eq!(
        provider_calls(&app),
        before + 1,
        "no-cache asks the provider"
    );
    assert!(!app.log_row(&id).await.cache_hit);

    // no-store neither reads nor writes.
    let fresh = body(&format!("Never stored {}", Uuid::new_v4()));
    let (h, _, _) = send(&app, &t.key, &fresh, Some("no-store")).await;
    assert_eq!(h, "bypass");
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    let (h, _, _) = send(&app, &t.key, &fresh, None).await;
    assert_eq!(h, "miss");

    let res = app
        .client
        .post(format!("{}/v1/chat/completions", app.base))
        .bearer_auth(&t.key)
        .header("x-infron-cache", "maybe")
        .json(&b)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
    let v: Value = res.json().await.unwrap();
    assert_eq!(v["error"]["param"], "x-infron-cache");
}

#[tokio::test]
async fn free_hits_cost_nothing_when_the_operator_says_so() {
    let mut settings = product_defaults();
    settings.push(("INFRON_CACHE_HIT_BILLING", "free".into()));
    let app = spawn_app_with(&settings).await;
    let t = app.tenant("1").await;
    app.mock.set_model_behaviour(
        "up-a",
        Behaviour::from_json(json!({"prompt_tokens": 10, "completion_tokens": 5})).unwrap(),
    );
    let b = body(&format!("Free {}", Uuid::new_v4()));
    let (_, _, miss_id) = send(&app, &t.key, &b, None).await;
    let v: Value = until_hit(&app, &t.key, &b).await.json().await.unwrap();
    assert_eq!(v["usage"]["cost"].to_string(), "0");
    assert_eq!(v["usage"]["completion_tokens"], 5);
    let row = app.log_row(v["id"].as_str().unwrap()).await;
    assert!(row.cache_hit);
    assert_eq!(row.cost, rust_decimal::Decimal::ZERO);
    assert_eq!(row.completion_tokens, 5);
    app.log_row(&miss_id).await;
    app.settled().await;
    // Only provider answers were charged.
    let misses: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM request_logs WHERE account_id = $1 AND NOT cache_hit",
    )
    .bind(t.account)
    .fetch_one(&app.pg)
    .await
    .unwrap();
    assert_eq!(
        app.balance(t.account).await,
        dec("1") - dec("0.00002") * rust_decimal::Decimal::from(misses)
    );
    app.ledger_clean().await;
    app.hot_matches_ledger(t.account).await;
}

#[tokio::test]
async fn errors_tool_calls_and_broken_streams_are_never_stored() {
    let app = spawn_app_with(&product_defaults()).await;
    let t = app.tenant("1").await;

    // An error is not stored: the same request later reaches the provider and succeeds.
    let b = body(&format!("Errors {}", Uuid::new_v4()));
    app.mock
        .push_behaviour("up-a", Behaviour::error(500, "down"));
    app.mock
        .push_behaviour("up-b", Behaviour::error(500, "down"));
    let res = app.post_chat(&t.key, &b).await;
    assert_eq!(res.status(), 502);
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    let (h, v, _) = send(&app, &t.key, &b, None).await;
    assert_eq!(h, "miss");
    assert!(v["choices"][0]["message"]["content"].is_string());

    // A tool call is not stored.
    let mut tools = body(&format!("Call a tool {}", Uuid::new_v4()));
    tools["tools"] =
        json!([{"type": "function", "function": {"name": "lookup", "parameters": {}}}]);
    app.mock.set_model_behaviour(
        "up-a",
        Behaviour::from_json(json!({"tool_calls": [{"name": "lookup", "arguments": {"q": 1}}]}))
            .unwrap(),
    );
    app.mock.set_model_behaviour(
        "up-b",
        Behaviour::from_json(json!({"tool_calls": [{"name": "lookup", "arguments": {"q": 1}}]}))
            .unwrap(),
    );
    for _ in 0..2 {
        let (h, v, _) = send(&app, &t.key, &tools, None).await;
        assert_eq!(h, "miss");
        assert_eq!(v["choices"][0]["finish_reason"], "tool_calls");
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }

    // A stream that broke after content is not stored.
    app.mock.set_model_behaviour("up-a", Behaviour::default());
    app.mock.set_model_behaviour("up-b", Behaviour::default());
    let mut broken = body(&format!("Break {}", Uuid::new_v4()));
    broken["stream"] = json!(true);
    broken["provider"] = json!({"order": ["mock-a"]});
    app.mock.push_behaviour(
        "up-a",
        Behaviour::from_json(
            json!({"reply": "one two three", "fault": "reset_after_chunks", "after_chunks": 1}),
        )
        .unwrap(),
    );
    let text = app.post_chat(&t.key, &broken).await.text().await.unwrap();
    assert!(text.contains("\"finish_reason\":\"error\""), "{text}");
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    let res = app.post_chat(&t.key, &broken).await;
    assert_eq!(res.headers()["x-infron-cache"], "miss");
    let text = res.text().await.unwrap();
    assert!(!text.contains("\"finish_reason\":\"error\""), "{text}");
}

#[tokio::test]
async fn an_operator_can_turn_the_cache_off() {
    let app = spawn_app_with(&[("INFRON_RESPONSE_CACHE", "off".into())]).await;
    let t = app.tenant("1").await;
    let b = body(&format!("Off {}", Uuid::new_v4()));
    for _ in 0..3 {
        let (h, _, _) = send(&app, &t.key, &b, None).await;
        assert_eq!(h, "", "no cache header when the cache is off");
    }
    assert_eq!(provider_calls(&app), 3);
}
