use crate::helpers::*;

#[tokio::test]
async fn grants_are_idempotent_balanced_and_reach_the_hot_balance() {
    let app = spawn_app().await;
    let t = app.tenant("0").await;
    let amount: infron_billing::Usd = "2.50".parse().unwrap();
    // Load the hot copy first, so the grant has to update it.
    assert_eq!(
        app.ledger.available(t.account).await.unwrap(),
        infron_billing::Usd::ZERO
    );
    for _ in 0..2 {
        infron_billing::grants::grant(
            &app.pg,
            &app.hot,
            t.account,
            amount,
            "promo",
            "grant:promo-1".into(),
        )
        .await
        .unwrap();
    }
    assert_eq!(app.balance(t.account).await, dec("2.5"));
    assert_eq!(app.ledger.available(t.account).await.unwrap(), amount);
    app.ledger_clean().await;
    app.hot_matches_ledger(t.account).await;
}

#[tokio::test]
async fn a_lost_hot_copy_is_rebuilt_from_postgres() {
    let app = spawn_app().await;
    let t = app.tenant("1").await;
    let ok = app
        .post_chat(
            &t.key,
            &chat_body(
                "test/chat",
                Some(serde_json::json!({"prompt_tokens": 10, "completion_tokens": 10})),
            ),
        )
        .await;
    assert_eq!(ok.status(), 200);
    app.settled().await;
    let _: i64 = redis::cmd("DEL")
        .arg(app.hot.keys().account(t.account))
        .query_async(&mut app.hot.conn())
        .await
        .unwrap();
    assert_eq!(
        app.post_chat(&t.key, &chat_body("test/chat", None))
            .await
            .status(),
        200
    );
    app.settled().await;
    app.hot_matches_ledger(t.account).await;
    app.ledger_clean().await;
}
