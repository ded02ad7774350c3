use std::time::Duration;

use serde_json::json;
use tokio_util::sync::CancellationToken;

use crate::harness::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_restarted_empty_loses_no_answered_request_and_posting_resumes() {
    let scene = Scene::new().await;
    let mut redis = RedisServer::start().await;
    let proxy = PgProxy::start("127.0.0.1:5432").await;
    let t = scene.tenant("100").await;
    let gw = Gateway::start(&scene.env(&scene.database_url(proxy.port), &redis.url())).await;
    let body = chat_body(json!({"prompt_tokens": 10, "completion_tokens": 10}), false);
    let stop = CancellationToken::new();
    let traffic = tokio::spawn(load(
        gw.base.clone(),
        t.key.clone(),
        4,
        body.clone(),
        stop.clone(),
    ));

    // Redis killed under load and restarted empty; the gateway keeps running.
    tokio::time::sleep(Duration::from_secs(2)).await;
    redis.restart_empty().await;
    tokio::time::sleep(Duration::from_secs(4)).await;

    // Then with settlements held only in Redis: Postgres away (the journal fills), Redis
    // restarted empty again, Postgres back. What Redis lost is still posted, from the
    // instance's own copy.
    proxy.cut();
    tokio::time::sleep(Duration::from_secs(3)).await;
    redis.restart_empty().await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    proxy.restore();
    tokio::time::sleep(Duration::from_secs(3)).await;
    stop.cancel();
    let seen = traffic.await.unwrap();

    let all = answered(&seen);
    assert!(all.len() > 50, "{} answered", all.len());
    assert!(
        gw.log_text().contains("Redis lost its data"),
        "the gateway noticed the loss"
    );
    let waited = std::time::Instant::now();
    let missing = scene.wait_logged(&all, Duration::from_secs(30)).await;
    println!(
        "{} answered across two Redis losses; {} refused while Redis was away; all in Postgres {:?} after the load stopped",
        all.len(),
        seen.iter().filter(|s| s.status == 503 || s.status == 0).count(),
        waited.elapsed()
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
    // Posting resumed without a restart: new traffic is posted within seconds.
    let client = reqwest::Client::new();
    let s = send(&client, &gw.base, &t.key, &body).await;
    assert_eq!(s.status, 200);
    let missing = scene
        .wait_logged(&[s.id.unwrap()], Duration::from_secs(5))
        .await;
    assert!(missing.is_empty(), "posting resumed");
    let (ok, report) = scene.verify(&redis.url()).await;
    assert!(ok, "ledger verify:\n{report}");
}
