//! A provider reporting more usage than the hold covered: the tenant pays at most the hold, the
//! rest is booked to the platform's provider_overage book; neither a balance nor a key limit is
//! ever overrun. And Postgres enforces the same when the hot state was wrong.

use rust_decimal::Decimal;
use serde_json::{json, Value};

use crate::helpers::*;

#[tokio::test]
async fn usage_beyond_the_hold_is_booked_to_the_platform_not_the_tenant() {
    let app = spawn_app().await;
    let t = app.tenant("0.01").await;
    let (key, key_id) = app.new_key(t.account).await;
    infron_store::keys::set_limit(&app.pg, key_id, Some(dec("0.002")), None, None)
        .await
        .unwrap();
    // max_tokens 10 holds little; the provider then reports 5x that and a prompt far larger
    // than the prompt bound.
    let mut body = chat_body(
        "test/chat",
        Some(json!({"prompt_tokens": 300, "completion_tokens": 50})),
    );
    body["max_tokens"] = json!(10);
    body["usage"] = json!({"include": true});
    let mut answered = 0;
    let mut refused = 0;
    for _ in 0..25 {
        let res = app.post_chat(&key, &body).await;
        match res.status().as_u16() {
            200 => {
                answered += 1;
                let v: Value = res.json().await.unwrap();
                let row = app.log_row(v["id"].as_str().unwrap()).await;
                // 300 x 0.000001 + 50 x 0.000002 at mock-a: what the usage is worth.
                assert_eq!(row.cost + row.overage, dec("0.0004"));
                assert!(row.overage > Decimal::ZERO, "{row:?}");
                assert_eq!(
                    v["usage"]["cost"].to_string(),
                    row.cost.normalize().to_string(),
                    "the client is told what it was charged"
                );
            }
            402 => refused += 1,
            s => panic!("unexpected {s}"),
        }
    }
    assert!(
        answered > 0 && refused > 0,
        "{answered} answered, {refused} refused"
    );
    app.settled().await;

    let (used, _) = infron_store::keys::period_usage(&app.pg, key_id, chrono::DateTime::UNIX_EPOCH)
        .await
        .unwrap();
    assert!(used <= dec("0.002"), "the key limit held: used {used}");
    let balance = app.balance(t.account).await;
    assert!(balance >= Decimal::ZERO);
    assert_eq!(balance, dec("0.01") - used);
    let (charged, overage): (Decimal, Decimal) =
        sqlx::query_as("SELECT sum(cost), sum(overage) FROM request_logs WHERE account_id = $1")
            .bind(t.account)
            .fetch_one(&app.pg)
            .await
            .unwrap();
    assert_eq!(charged, used);
    let book: Decimal = sqlx::query_scalar(
        "SELECT balance FROM ledger_accounts WHERE code = 'platform:provider_overage'",
    )
    .fetch_one(&app.pg)
    .await
    .unwrap();
    assert_eq!(book, overage, "the overage is booked");
    let listed: i64 = sqlx::query_scalar("SELECT count(*) FROM finance.provider_overages")
        .fetch_one(&app.pg)
        .await
        .unwrap();
    assert_eq!(listed, answered);
    let revenue: Decimal =
        sqlx::query_scalar("SELECT sum(usage_revenue) FROM finance.daily_revenue")
            .fetch_one(&app.pg)
            .await
            .unwrap();
    assert_eq!(
        revenue,
        charged + overage,
        "usage revenue is the usage at list price"
    );
    app.ledger_clean().await;
    app.hot_matches_ledger(t.account).await;
}

#[tokio::test]
async fn postgres_caps_charges_a_wrong_hot_state_let_through() {
    let app = spawn_app().await;
    let t = app.tenant("0.001").await;
    // Three settlements the hot state charged in full although together they exceed the
    // balance (as after Redis lost its data with requests in flight).
    let entries: Vec<_> = (0..3)
        .map(|_| {
            let mut r = sample_record(t.account, uuid::Uuid::now_v7());
            r.list_cost = "0.0004".parse().unwrap();
            infron_store::hot::journal::JournalEntry {
                shard: 0,
                id: String::new(),
                payload: r.encode().unwrap(),
                charged_pico: 400_000_000,
                epoch: String::new(),
                key_epoch: String::new(),
            }
        })
        .collect();
    let outcome = infron_billing::writer::post(&app.pg, &entries)
        .await
        .unwrap();
    assert_eq!(outcome.charged.len(), 3);
    assert_eq!(
        app.balance(t.account).await,
        Decimal::ZERO,
        "never below zero"
    );
    let (charged, overage): (Decimal, Decimal) =
        sqlx::query_as("SELECT sum(cost), sum(overage) FROM request_logs WHERE account_id = $1")
            .bind(t.account)
            .fetch_one(&app.pg)
            .await
            .unwrap();
    assert_eq!(charged, dec("0.001"));
    assert_eq!(overage, dec("0.0002"));
    // Posting them again changes nothing.
    let again = infron_billing::writer::post(&app.pg, &entries)
        .await
        .unwrap();
    assert_eq!(again.replays, 3);
    assert_eq!(app.balance(t.account).await, Decimal::ZERO);
    app.ledger_clean().await;
}
