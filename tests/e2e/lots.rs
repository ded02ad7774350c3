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
    let request = uuid::Uuid::now_v7();
    let hold = app
        .ledger
        .reserve(t.account, request, None, "0.4".parse().unwrap(), &[])
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
    let mut record = sample_record(t.account, request);
    record.list_cost = "0.1".parse().unwrap();
    app.ledger.settle(Some(&hold), &record).await.unwrap();
    app.settled().await;
    let expired = infron_billing::expiry::expire_due(&app.pg, &app.hot, chrono::Utc::now())
        .await
        .unwrap();
    assert_eq!(expired.decimal(), dec("0.3"));
    assert_eq!(app.balance(t.account).await, dec("0"));
    app.ledger_clean().await;
    app.hot_matches_ledger(t.account).await;
}
