use std::time::{Duration, Instant};

use serde_json::json;

use crate::harness::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_instance_is_charged_for_what_it_delivered_and_its_holds_released() {
    let scene = Scene::new().await;
    let redis = RedisServer::start().await;
    let mut env = scene.env(&scene.database_url(5432), &redis.url());
    env.push(("INFRON_HOLD_LEASE_SECS".into(), "4".into()));
    let mut a = Gateway::start(&env).await;
    let t = scene.tenant("100").await;
    let client = reqwest::Client::new();

    // Answers that completed before the crash.
    let quick = chat_body(json!({"prompt_tokens": 10, "completion_tokens": 10}), false);
    let mut complete = Vec::new();
    for _ in 0..10 {
        let s = send(&client, &a.base, &t.key, &quick).await;
        assert_eq!(s.status, 200);
        complete.push(s.id.unwrap());
    }

    // In flight at the crash: streams that have delivered content, and slow plain requests.
    let words = vec!["word"; 60].join(" ");
    let long_stream = chat_body(json!({"reply": words, "chunk_delay_ms": 200}), true);
    let slow = chat_body(json!({"latency_ms": 8000}), false);
    let mut streams = Vec::new();
    let mut plain = Vec::new();
    for _ in 0..6 {
        let (c, base, key, body) = (
            client.clone(),
            a.base.clone(),
            t.key.clone(),
            long_stream.clone(),
        );
        streams.push(tokio::spawn(
            async move { send(&c, &base, &key, &body).await },
        ));
        let (c, base, key, body) = (client.clone(), a.base.clone(), t.key.clone(), slow.clone());
        plain.push(tokio::spawn(
            async move { send(&c, &base, &key, &body).await },
        ));
    }
    tokio::time::sleep(Duration::from_millis(3000)).await;
    a.kill().await;
    let killed_at = Instant::now();
    let mut streamed = Vec::new();
    for s in streams {
        streamed.push(s.await.unwrap());
    }
    for p in plain {
        let p = p.await.unwrap();
        assert_ne!(p.status, 200, "the slow requests never got an answer");
    }
    let delivered: Vec<_> = streamed
        .iter()
        .filter(|s| s.chunks > 0)
        .filter_map(|s| s.id)
        .collect();
    assert_eq!(
        delivered.len(),
        6,
        "every stream delivered content before the crash"
    );
    assert!(streamed.iter().all(|s| !s.done));

    // Another instance takes over: it charges the streams what they delivered and releases the
    // rest of the dead instance's holds.
    let _b = Gateway::start(&env).await;
    let mut all = complete.clone();
    all.extend(&delivered);
    let missing = scene.wait_logged(&all, Duration::from_secs(30)).await;
    assert!(missing.is_empty(), "not charged: {missing:?}");
    let hot = infron_store::hot::HotState::new(
        infron_store::redis_conn::RedisConn::connect(
            &infron_store::redis_conn::RedisTarget::Single(redis.url()),
        )
        .await
        .unwrap(),
        infron_store::hot::HotKeys::new(scene.prefix.clone(), 8),
    );
    loop {
        let snap = hot.snapshot(t.account).await.unwrap().unwrap();
        if snap.open_holds == 0 {
            break;
        }
        assert!(
            killed_at.elapsed() < Duration::from_secs(30),
            "holds of the dead instance still open after 30 s: {snap:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    println!("holds released {:?} after the kill", killed_at.elapsed());

    let rows: Vec<(
        uuid::Uuid,
        rust_decimal::Decimal,
        Option<String>,
        Option<String>,
    )> = sqlx::query_as(
        "SELECT id, cost, error_class, usage_source FROM request_logs WHERE id = ANY($1)",
    )
    .bind(&delivered)
    .fetch_all(&scene.pg)
    .await
    .unwrap();
    for (id, cost, class, source) in rows {
        assert!(
            cost > rust_decimal::Decimal::ZERO,
            "{id} delivered content and is charged"
        );
        assert_eq!(class.as_deref(), Some("instance_lost"));
        assert_eq!(source.as_deref(), Some("progress"));
    }
    let complete_charged: i64 =
        sqlx::query_scalar("SELECT count(*) FROM request_logs WHERE id = ANY($1) AND cost > 0")
            .bind(&complete)
            .fetch_one(&scene.pg)
            .await
            .unwrap();
    assert_eq!(complete_charged, 10);
    assert_eq!(scene.duplicates().await, 0);
    assert_eq!(
        scene.balance(t.account).await,
        scene.expected_balance(t.account, "100").await
    );
    let (ok, report) = scene.verify(&redis.url()).await;
    assert!(ok, "ledger verify:\n{report}");
}
