use std::time::Duration;

use serde_json::json;
use tokio_util::sync::CancellationToken;

use crate::harness::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_cut_off_under_load_loses_no_answered_request() {
    let scene = Scene::new().await;
    let redis = RedisServer::start().await;
    let proxy = PgProxy::start("127.0.0.1:5432").await;
    let t = scene.tenant("100").await;
    let gw = Gateway::start(&scene.env(&scene.database_url(proxy.port), &redis.url())).await;
    let body = chat_body(json!({"prompt_tokens": 10, "completion_tokens": 10}), false);
    let phase = |secs: u64| {
        let stop = CancellationToken::new();
        let task = tokio::spawn(load(
            gw.base.clone(),
            t.key.clone(),
            4,
            body.clone(),
            stop.clone(),
        ));
        async move {
            tokio::time::sleep(Duration::from_secs(secs)).await;
            stop.cancel();
            task.await.unwrap()
        }
    };

    let before = phase(2).await;
    proxy.cut();
    let during = phase(8).await;
    proxy.restore();
    let after = phase(2).await;

    let answered_during = answered(&during);
    assert!(
        answered_during.len() > 20,
        "requests are still answered while Postgres is away: {}",
        answered_during.len()
    );
    assert!(
        gw.log_text().contains("ledger writer batch failed"),
        "the outage reached the writer"
    );
    let all: Vec<_> = [&before, &during, &after]
        .iter()
        .flat_map(|s| answered(s))
        .collect();
    let restored = std::time::Instant::now();
    let missing = scene.wait_logged(&all, Duration::from_secs(30)).await;
    println!(
        "answered: {} before, {} during an 8 s cut, {} after; all in Postgres {:?} after the load stopped",
        answered(&before).len(),
        answered_during.len(),
        answered(&after).len(),
        restored.elapsed()
    );
    assert!(
        missing.is_empty(),
        "{} of {} answered requests never reached Postgres",
        missing.len(),
        all.len()
    );
    assert_eq!(scene.duplicates().await, 0);
    assert_eq!(
        scene.balance(t.account).await,
        scene.expected_balance(t.account, "100").await
    );
    let charged: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM request_logs WHERE id = ANY($1) AND cost > 0 AND usage_txn_id IS NOT NULL",
    )
    .bind(&all)
    .fetch_one(&scene.pg)
    .await
    .unwrap();
    assert_eq!(charged as usize, all.len(), "every answer is charged once");
    let (ok, report) = scene.verify(&redis.url()).await;
    assert!(ok, "ledger verify:\n{report}");
}
