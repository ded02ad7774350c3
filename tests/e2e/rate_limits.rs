//! Per-minute rate limits, per key and per account, enforced across instances in the same
//! atomic step as the reservation; 429 with `Retry-After` and `X-RateLimit-*` headers; and a
//! request whose every provider rate-limited it answered 429, not 502.

use futures_util::future::join_all;
use serde_json::{json, Value};

use crate::helpers::*;
use crate::tenant_helpers::*;

async fn fire(app: &TestApp, bases: &[String], key: &str, n: usize) -> Vec<reqwest::Response> {
    let body = chat_body("test/chat", None);
    let calls = (0..n).map(|i| {
        app.client
            .post(format!("{}/v1/chat/completions", bases[i % bases.len()]))
            .bearer_auth(key)
            .json(&body)
            .send()
    });
    join_all(calls)
        .await
        .into_iter()
        .map(|r| r.expect("request sent"))
        .collect()
}

fn header(r: &reqwest::Response, name: &str) -> Option<String> {
    r.headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
}

#[tokio::test]
async fn a_key_limit_holds_across_two_instances_and_refusals_change_nothing() {
    let app = spawn_app().await;
    let replica = spawn_replica(&app, &[]).await;
    let t = app.tenant("5").await;
    let (key, key_id) = app.new_key(t.account).await;
    infron_store::keys::set_rate_limit(&app.pg, key_id, Some(12), None)
        .await
        .unwrap();

    let started = std::time::Instant::now();
    let responses = fire(&app, &[app.base.clone(), replica], &key, 60).await;
    let mut ok = 0;
    let mut refused = 0;
    for r in responses {
        match r.status().as_u16() {
            200 => {
                ok += 1;
                assert_eq!(
                    header(&r, "x-ratelimit-limit-requests").as_deref(),
                    Some("12")
                );
                let remaining: i64 = header(&r, "x-ratelimit-remaining-requests")
                    .unwrap()
                    .parse()
                    .unwrap();
                assert!((0..12).contains(&remaining), "{remaining}");
            }
            429 => {
                refused += 1;
                let retry: u64 = header(&r, "retry-after").unwrap().parse().unwrap();
                assert!((1..=6).contains(&retry), "one request per 5 s: {retry}");
                assert_eq!(
                    header(&r, "x-ratelimit-remaining-requests").as_deref(),
                    Some("0")
                );
                assert!(header(&r, "x-ratelimit-reset-requests").is_some());
                let v: Value = r.json().await.unwrap();
                assert_eq!(v["error"]["type"], "rate_limit_error", "{v}");
                assert_eq!(v["error"]["code"], 429);
                assert!(
                    v["error"]["message"]
                        .as_str()
                        .unwrap()
                        .contains("this key's limit of 12 requests per minute"),
                    "{v}"
                );
            }
            s => panic!("unexpected status {s}"),
        }
    }
    // 12 at once, then one every 5 s: the burst took well under 5 s.
    assert!(started.elapsed().as_secs() < 5);
    assert_eq!(
        ok, 12,
        "two instances together let through exactly the limit"
    );
    assert_eq!(refused, 48);

    // Refused requests held and charged nothing: the balance is the credit less exactly the
    // answered requests' cost, and every log row of a refusal has no cost.
    app.settled().await;
    let (answered, cost): (i64, rust_decimal::Decimal) = sqlx::query_as(
        "SELECT count(*), coalesce(sum(cost), 0) FROM request_logs WHERE account_id = $1 AND status = 200",
    )
    .bind(t.account)
    .fetch_one(&app.pg)
    .await
    .unwrap();
    assert_eq!(answered, 12);
    let refused_cost: Option<rust_decimal::Decimal> = sqlx::query_scalar(
        "SELECT sum(cost) FROM request_logs WHERE account_id = $1 AND status = 429",
    )
    .bind(t.account)
    .fetch_one(&app.pg)
    .await
    .unwrap();
    assert!(refused_cost.unwrap_or_default().is_zero());
    assert_eq!(app.balance(t.account).await, dec("5") - cost);
    app.hot_matches_ledger(t.account).await;
    app.ledger_clean().await;
}

#[tokio::test]
async fn an_account_limit_counts_all_of_its_keys_and_key_defaults_apply() {
    let app = spawn_app().await;
    let t = app.tenant("5").await;
    let (k1, _) = app.new_key(t.account).await;
    let (k2, _) = app.new_key(t.account).await;
    infron_store::accounts::set_rate_limits(
        &app.pg,
        t.account,
        infron_store::accounts::AccountRateLimits {
            rpm: Some(5),
            tpm: None,
            default_key_rpm: Some(3),
            default_key_tpm: None,
        },
    )
    .await
    .unwrap();
    let bases = [app.base.clone()];
    let first: Vec<u16> = fire(&app, &bases, &k1, 6)
        .await
        .iter()
        .map(|r| r.status().as_u16())
        .collect();
    assert_eq!(
        first.iter().filter(|s| **s == 200).count(),
        3,
        "the default key limit: {first:?}"
    );
    let second = fire(&app, &bases, &k2, 6).await;
    let codes: Vec<u16> = second.iter().map(|r| r.status().as_u16()).collect();
    assert_eq!(
        codes.iter().filter(|s| **s == 200).count(),
        2,
        "the account's 5 per minute over both keys: {codes:?}"
    );
    // The headers describe whichever limit has less left.
    let refused = second.into_iter().find(|r| r.status() == 429).unwrap();
    assert_eq!(
        header(&refused, "x-ratelimit-remaining-requests").as_deref(),
        Some("0")
    );
    let v: Value = refused.json().await.unwrap();
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("the account's limit of 5 requests per minute"),
        "{v}"
    );
}

#[tokio::test]
async fn token_limits_take_the_estimate_and_settle_to_what_was_used() {
    let app = spawn_app().await;
    let t = app.tenant("5").await;
    let (key, key_id) = app.new_key(t.account).await;
    infron_store::keys::set_rate_limit(&app.pg, key_id, None, Some(300))
        .await
        .unwrap();
    // ~100 output tokens asked + the prompt's estimate each; the provider reports 10 used.
    let body = chat_body(
        "test/chat",
        Some(json!({"prompt_tokens": 5, "completion_tokens": 5})),
    );
    let send = || app.post_chat(&key, &body);
    let a = send().await;
    assert_eq!(a.status(), 200);
    assert_eq!(
        header(&a, "x-ratelimit-limit-tokens").as_deref(),
        Some("300")
    );
    let after_one: i64 = header(&a, "x-ratelimit-remaining-tokens")
        .unwrap()
        .parse()
        .unwrap();
    assert!(after_one < 200, "the estimate was taken: {after_one}");
    // Settled: the second request sees the first corrected to the 10 tokens it used.
    let b = send().await;
    assert_eq!(b.status(), 200);
    let after_two: i64 = header(&b, "x-ratelimit-remaining-tokens")
        .unwrap()
        .parse()
        .unwrap();
    assert!(
        after_two > after_one - (300 - after_one),
        "corrected at settlement: {after_one} then {after_two}"
    );
    // Asking for more output than the whole minute allows can never pass: 429, no Retry-After.
    let mut big = body.clone();
    big["max_tokens"] = json!(400);
    let r = app.post_chat(&key, &big).await;
    assert_eq!(r.status(), 429);
    assert!(header(&r, "retry-after").is_none());
    let v: Value = r.json().await.unwrap();
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("this request alone is over this key's limit of 300 tokens per minute"),
        "{v}"
    );
}

#[tokio::test]
async fn every_provider_rate_limiting_is_a_429_with_the_shortest_retry_after() {
    let app = spawn_app().await;
    let t = app.tenant("5").await;
    let (key, _) = app.new_key(t.account).await;
    // Both endpoints of test/chat (mock-a, mock-b) answer 429 with Retry-After: 7.
    let body = chat_body("test/chat", Some(json!({"status": 429, "retry_after": 7})));
    let r = app.post_chat(&key, &body).await;
    assert_eq!(r.status(), 429);
    assert_eq!(header(&r, "retry-after").as_deref(), Some("7"));
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["error"]["type"], "rate_limit_error", "{v}");
    assert_eq!(
        v["error"]["metadata"]["provider_errors"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
    // One provider failing otherwise keeps it a 502.
    let other = chat_body("test/chat", Some(json!({"status": 503})));
    assert_eq!(app.post_chat(&key, &other).await.status(), 502);
}

#[tokio::test]
async fn rate_limits_are_set_through_the_management_api_and_shown_on_the_key() {
    let t = spawn_tenant_app(&[]).await;
    let app = &t.app;
    let (_, _, owner) = member(app, None).await;
    let (hash, secret) = api_key(&owner, json!({ "name": "limited" })).await;
    let (s, v) = status_of(owner.patch(
        &format!("/api/v1/keys/{hash}"),
        &json!({ "rate_limit": { "requests": 30, "tokens": 40000 } }),
    ))
    .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["data"]["rate_limit"]["requests"], 30);
    assert_eq!(v["data"]["rate_limit"]["tokens"], 40000);
    let (s, v) = status_of(owner.patch(
        &format!("/api/v1/keys/{hash}"),
        &json!({ "rate_limit": { "requests": 0 } }),
    ))
    .await;
    assert_eq!(s, 400);
    assert_eq!(v["error"]["param"], "rate_limit", "{v}");
    let (s, v) = status_of(owner.patch(
        "/api/v1/account",
        &json!({ "rate_limit": { "requests": 100 }, "default_key_rate_limit": { "tokens": 9000 } }),
    ))
    .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["data"]["rate_limit"]["requests"], 100);
    assert_eq!(v["data"]["default_key_rate_limit"]["tokens"], 9000);

    // The key itself sees what it is held to (within a second: the change is announced).
    let mut seen = Value::Null;
    for _ in 0..40 {
        let (s, v) = status_of(
            app.client
                .get(format!("{}/api/v1/key", app.base))
                .bearer_auth(&secret),
        )
        .await;
        assert_eq!(s, 200);
        seen = v["data"]["rate_limit"].clone();
        if seen["account"]["requests"] == 100 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(seen["requests"], 30, "{seen}");
    assert_eq!(seen["tokens"], 40000, "{seen}");
    assert_eq!(seen["interval"], "1m");
    assert_eq!(seen["account"]["requests"], 100, "{seen}");
    assert_eq!(seen["account"]["tokens"], -1, "{seen}");
}
