use serde_json::{json, Value};

use crate::helpers::*;

async fn lots(
    app: &TestApp,
    account: uuid::Uuid,
) -> Vec<(rust_decimal::Decimal, rust_decimal::Decimal)> {
    sqlx::query_as(
        "SELECT amount, remaining FROM credit_lots WHERE account_id = $1 ORDER BY created_at, id",
    )
    .bind(account)
    .fetch_all(&app.pg)
    .await
    .unwrap()
}

#[tokio::test]
async fn usage_consumes_oldest_lots_and_expiry_takes_the_rest() {
    let app = spawn_app().await;
    let t = app.tenant("0.0005").await; // lot A
    infron_billing::grants::grant(
        &app.pg,
        &app.hot,
        t.account,
        "3".parse().unwrap(),
        "second",
        "grant:b".into(),
    )
    .await
    .unwrap();
    // 0.0003 then 0.0003: the first lot is used up, the second pays the rest.
    for _ in 0..2 {
        let body = chat_body(
            "test/chat",
            Some(json!({"prompt_tokens": 100, "completion_tokens": 100})),
        );
        let mut body = body;
        body["max_tokens"] = json!(10);
        assert_eq!(app.post_chat(&t.key, &body).await.status(), 200);
        app.settled().await;
    }
    app.settled().await;
    assert_eq!(
        lots(&app, t.account).await,
        vec![(dec("0.0005"), dec("0")), (dec("3"), dec("2.9999"))]
    );

    // The credits endpoint shows what expires when.
    let v: Value = app
        .client
        .get(format!("{}/api/v1/credits", app.base))
        .bearer_auth(&t.key)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(v["data"]["total_credits"].to_string(), "3.0005");
    assert_eq!(v["data"]["total_usage"].to_string(), "0.0006");
    assert_eq!(v["data"]["balance"].to_string(), "2.9999");
    assert_eq!(v["data"]["expiring"][0]["amount"].to_string(), "2.9999");
    assert!(v["data"]["expiring"][0]["expires_at"].is_string());

    // Expire lot B: everything left goes to expired_credits in one balanced transaction.
    sqlx::query(
        "UPDATE credit_lots SET expires_at = now() - interval '1 second' WHERE account_id = $1",
    )
    .bind(t.account)
    .execute(&app.pg)
    .await
    .unwrap();
    let expired = infron_billing::expiry::expire_due(&app.pg, &app.hot, chrono::Utc::now())
        .await
        .unwrap();
    assert_eq!(expired.decimal(), dec("2.9999"));
    assert_eq!(app.balance(t.account).await, dec("0"));
    let again = infron_billing::expiry::expire_due(&app.pg, &app.hot, chrono::Utc::now())
        .await
        .unwrap();
    assert!(again.is_zero(), "expiry is not applied twice");
    app.ledger_clean().await;
    app.hot_matches_ledger(t.account).await;
    let v: Value = app
        .client
        .get(format!("{}/api/v1/credits", app.base))
        .bearer_auth(&t.key)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(v["data"]["total_expired"].to_string(), "2.9999");
    assert_eq!(
        app.post_chat(&t.key, &chat_body("test/chat", None))
            .await
            .status(),
        402
    );
}

#[tokio::test]
async fn expiry_leaves_reserved_credits_to_the_request_holding_them() {
    let app = spawn_app().await;
    let t = app.tenant("1").await;
    let reservations =
        infron_billing::reservation::Reservations::new(app.pg.clone(), app.hot.clone());
    let request = uuid::Uuid::now_v7();
    let hold = reservations
        .reserve(
            t.account,
            request,
            None,
            "0.4".parse().unwrap(),
            chrono::Utc::now() + chrono::Duration::minutes(5),
        )
        .await
        .unwrap();
    sqlx::query(
        "UPDATE credit_lots SET expires_at = now() - interval '1 second' WHERE account_id = $1",
    )
    .bind(t.account)
    .execute(&app.pg)
    .await
    .unwrap();
    let expired = infron_billing::expiry::expire_due(&app.pg, &app.hot, chrono::Utc::now())
        .await
        .unwrap();
    assert_eq!(
        expired.decimal(),
        dec("0.6"),
        "only what is not reserved expires"
    );
    // The request settles, spending 0.1 of its hold; the rest of the lot expires on the next run.
    let settler = infron_billing::settlement::Settler::new(app.pg.clone(), app.hot.clone());
    let mut row = sample_log(t.account, request);
    row.cost = dec("0.1");
    settler.settle(Some(&hold), row).await.unwrap();
    app.settled().await;
    let expired = infron_billing::expiry::expire_due(&app.pg, &app.hot, chrono::Utc::now())
        .await
        .unwrap();
    assert_eq!(expired.decimal(), dec("0.3"));
    assert_eq!(app.balance(t.account).await, dec("0"));
    app.ledger_clean().await;
    app.hot_matches_ledger(t.account).await;
}

pub fn sample_log(
    account: uuid::Uuid,
    id: uuid::Uuid,
) -> infron_store::request_logs::RequestLogRow {
    let now = chrono::Utc::now();
    infron_store::request_logs::RequestLogRow {
        id,
        created_at: now,
        account_id: account,
        api_key_id: None,
        requested_model: "test/chat".into(),
        model: Some("test/chat".into()),
        provider: Some("mock-a".into()),
        upstream_model: Some("up-a".into()),
        endpoint_kind: "chat".into(),
        prompt_tokens: 0,
        completion_tokens: 0,
        cached_tokens: 0,
        cache_write_tokens: 0,
        reasoning_tokens: 0,
        cost: rust_decimal::Decimal::ZERO,
        cost_details: None,
        prices: None,
        usage_source: Some("provider".into()),
        status: 200,
        error_class: None,
        finish_reason: Some("stop".into()),
        streamed: false,
        cancelled: false,
        cache_hit: false,
        attempts: json!([]),
        latency_ms: Some(1),
        first_token_ms: None,
        completed_at: now,
    }
}
