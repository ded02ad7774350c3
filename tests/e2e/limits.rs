use rust_decimal::Decimal;
use serde_json::{json, Value};

use crate::helpers::*;

async fn limit_key(
    app: &TestApp,
    account: uuid::Uuid,
    limit: &str,
    reset: Option<&str>,
) -> (String, uuid::Uuid) {
    let (key, id) = app.new_key(account).await;
    infron_store::keys::set_limit(&app.pg, id, Some(dec(limit)), reset, None)
        .await
        .unwrap();
    (key, id)
}

#[tokio::test]
async fn concurrent_requests_never_exceed_a_key_limit() {
    let app = spawn_app().await;
    let t = app.tenant("10").await;
    let (key, key_id) = limit_key(&app, t.account, "0.003", None).await;
    // Each costs 0.0003 at mock-a's prices; the hold is larger, so some are refused while others run.
    let body = chat_body(
        "test/chat",
        Some(json!({"prompt_tokens": 100, "completion_tokens": 100, "latency_ms": 30})),
    );
    let mut tasks = Vec::new();
    for _ in 0..30 {
        let (client, url, key, body) = (
            app.client.clone(),
            format!("{}/v1/chat/completions", app.base),
            key.clone(),
            body.clone(),
        );
        tasks.push(tokio::spawn(async move {
            let res = client
                .post(url)
                .bearer_auth(key)
                .json(&body)
                .send()
                .await
                .unwrap();
            (res.status().as_u16(), res.json::<Value>().await.unwrap())
        }));
    }
    let mut ok = 0i64;
    let mut refused = 0;
    for t in tasks {
        let (status, body) = t.await.unwrap();
        match status {
            200 => ok += 1,
            402 => {
                refused += 1;
                assert!(
                    body["error"]["message"]
                        .as_str()
                        .unwrap()
                        .contains("spending limit"),
                    "{body}"
                );
                assert!(body["error"]["metadata"]["limit_remaining"].is_string());
            }
            s => panic!("unexpected {s}: {body}"),
        }
    }
    assert!(ok > 0 && refused > 0, "{ok} ok, {refused} refused");
    app.settled().await;
    let spent = dec("0.0003") * Decimal::from(ok);
    assert!(spent <= dec("0.003"));
    let (used, _) = infron_store::keys::period_usage(&app.pg, key_id, chrono::DateTime::UNIX_EPOCH)
        .await
        .unwrap();
    assert_eq!(used, spent);
    assert_eq!(app.balance(t.account).await, dec("10") - spent);
    // The key's hot copy agrees with Postgres and holds nothing.
    let scope = infron_store::hot::KeyScope {
        key_id,
        period_start: 0,
    };
    let snap = app
        .hot
        .key_snapshot(t.account, &scope)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(snap.open_holds, 0);
    assert_eq!(snap.unposted_pico, 0);
    assert_eq!(
        infron_billing::Usd::from_pico(snap.avail_pico).decimal(),
        dec("0.003") - spent
    );
    app.ledger_clean().await;
    app.hot_matches_ledger(t.account).await;

    // Another key of the same account is not limited by it.
    assert_eq!(
        app.post_chat(&t.key, &chat_body("test/chat", None))
            .await
            .status(),
        200
    );
}

#[tokio::test]
async fn key_endpoint_reports_limit_and_usage() {
    let app = spawn_app().await;
    let t = app.tenant("1").await;
    let (key, _) = limit_key(&app, t.account, "0.5", Some("daily")).await;
    let res = app
        .post_chat(
            &key,
            &chat_body(
                "test/chat",
                Some(json!({"prompt_tokens": 100, "completion_tokens": 100})),
            ),
        )
        .await;
    let id = res.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    app.log_row(&id).await;
    app.settled().await;
    let v: Value = app
        .client
        .get(format!("{}/api/v1/key", app.base))
        .bearer_auth(&key)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let d = &v["data"];
    assert_eq!(d["limit"].to_string(), "0.5");
    assert_eq!(d["limit_reset"], "daily");
    assert_eq!(d["usage"].to_string(), "0.0003");
    assert_eq!(d["usage_daily"].to_string(), "0.0003");
    assert_eq!(d["usage_monthly"].to_string(), "0.0003");
    assert_eq!(d["limit_remaining"].to_string(), "0.4997");
    // An unlimited key says so.
    let v: Value = app
        .client
        .get(format!("{}/api/v1/key", app.base))
        .bearer_auth(&t.key)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(v["data"]["limit"].is_null() && v["data"]["limit_remaining"].is_null());
}

#[tokio::test]
async fn expired_keys_are_refused() {
    let app = spawn_app().await;
    let t = app.tenant("1").await;
    let (key, id) = app.new_key(t.account).await;
    infron_store::keys::set_limit(
        &app.pg,
        id,
        None,
        None,
        Some(chrono::Utc::now() - chrono::Duration::seconds(1)),
    )
    .await
    .unwrap();
    let res = app.post_chat(&key, &chat_body("test/chat", None)).await;
    assert_eq!(res.status(), 401);
    assert!(res.text().await.unwrap().contains("expired"));
}
