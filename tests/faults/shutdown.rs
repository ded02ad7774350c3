use std::time::{Duration, Instant};

use serde_json::json;

use crate::harness::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_ends_streams_longer_than_the_drain_period_and_charges_them() {
    let scene = Scene::new().await;
    let redis = RedisServer::start().await;
    let mut env = scene.env(&scene.database_url(5432), &redis.url());
    env.push(("INFRON_DRAIN_SECS".into(), "2".into()));
    let mut gw = Gateway::start(&env).await;
    let t = scene.tenant("100").await;
    let client = reqwest::Client::new();

    let words = |n| vec!["word"; n].join(" ");
    let long = chat_body(json!({"reply": words(80), "chunk_delay_ms": 150}), true);
    let short = chat_body(json!({"reply": words(8), "chunk_delay_ms": 100}), true);
    let (c, base, key) = (client.clone(), gw.base.clone(), t.key.clone());
    let long_task = tokio::spawn(async move { send(&c, &base, &key, &long).await });
    tokio::time::sleep(Duration::from_millis(800)).await;
    let (c, base, key) = (client.clone(), gw.base.clone(), t.key.clone());
    let short_task = tokio::spawn(async move { send(&c, &base, &key, &short).await });
    tokio::time::sleep(Duration::from_millis(100)).await;

    gw.sigterm().await;
    let signalled = Instant::now();
    let long = long_task.await.unwrap();
    let long_ended = signalled.elapsed();
    let short = short_task.await.unwrap();
    let status = gw.wait_exit(Duration::from_secs(20)).await;
    assert!(
        status.success(),
        "exit 0 after draining: {status:?}\n{}",
        gw.log_text()
    );

    // The short stream finished inside the drain period, untouched.
    assert!(
        short.done && !short.error_chunk && short.chunks == 8,
        "{short:?}"
    );
    // The long one was ended at the deadline with an error chunk and [DONE].
    assert!(long.chunks > 0 && long.chunks < 80, "{long:?}");
    assert!(long.error_chunk && long.done, "{long:?}");
    assert!(
        long_ended >= Duration::from_millis(1800) && long_ended < Duration::from_secs(6),
        "ended at the drain deadline: {long_ended:?}"
    );
    // Nothing new is accepted once it is gone.
    assert_eq!(
        send(&client, &gw.base, &t.key, &chat_body(json!({}), false))
            .await
            .status,
        0
    );

    // Both were settled before the process exited: logged and charged, no hold left.
    let ids = [long.id.unwrap(), short.id.unwrap()];
    let missing = scene.wait_logged(&ids, Duration::from_secs(1)).await;
    assert!(missing.is_empty(), "settled before exit: {missing:?}");
    let (cost, class): (rust_decimal::Decimal, Option<String>) =
        sqlx::query_as("SELECT cost, error_class FROM request_logs WHERE id = $1")
            .bind(ids[0])
            .fetch_one(&scene.pg)
            .await
            .unwrap();
    assert!(cost > rust_decimal::Decimal::ZERO);
    assert_eq!(class.as_deref(), Some("shutdown"));
    assert_eq!(
        scene.balance(t.account).await,
        scene.expected_balance(t.account, "100").await
    );
    let (ok, report) = scene.verify(&redis.url()).await;
    assert!(ok, "ledger verify:\n{report}");
}
