use std::time::{Duration, Instant};

use serde_json::json;
use tokio::process::Command;

use crate::harness::*;

/// Polls both gateways until the key is refused by both; returns how long that took.
async fn until_refused(bases: &[&str], key: &str, within: Duration) -> Duration {
    let client = reqwest::Client::new();
    let started = Instant::now();
    let body = chat_body(json!({}), false);
    loop {
        let mut refused = 0;
        for base in bases {
            if send(&client, base, key, &body).await.status == 401 {
                refused += 1;
            }
        }
        if refused == bases.len() {
            return started.elapsed();
        }
        assert!(
            started.elapsed() < within,
            "still accepted after {within:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_disabled_from_the_cli_is_refused_by_every_instance_within_a_second() {
    let scene = Scene::new().await;
    let redis = RedisServer::start().await;
    let env = scene.env(&scene.database_url(5432), &redis.url());
    let a = Gateway::start(&env).await;
    let b = Gateway::start(&env).await;
    let t = scene.tenant("10").await;
    let client = reqwest::Client::new();
    let body = chat_body(json!({}), false);
    // Both instances have the key cached (the cache TTL is 30 s).
    for base in [&a.base, &b.base] {
        assert_eq!(send(&client, base, &t.key, &body).await.status, 200);
    }

    let cli = Command::new(env!("CARGO_BIN_EXE_infron"))
        .args(["keys", "disable", &t.key_id.to_string()])
        .env_clear()
        .envs(env.iter().cloned())
        .output()
        .await
        .unwrap();
    assert!(
        cli.status.success(),
        "{}",
        String::from_utf8_lossy(&cli.stderr)
    );
    let took = until_refused(&[&a.base, &b.base], &t.key, Duration::from_secs(1)).await;
    println!("disabled key refused by both instances after {took:?}");

    // An expiry set through the CLI applies at its time on both, cache or not.
    let t2 = scene.tenant("10").await;
    for base in [&a.base, &b.base] {
        assert_eq!(send(&client, base, &t2.key, &body).await.status, 200);
    }
    let at = (chrono::Utc::now() + chrono::Duration::seconds(2)).to_rfc3339();
    let cli = Command::new(env!("CARGO_BIN_EXE_infron"))
        .args([
            "keys",
            "set-limit",
            &t2.key_id.to_string(),
            "--limit",
            "none",
            "--expires-at",
            &at,
        ])
        .env_clear()
        .envs(env.iter().cloned())
        .output()
        .await
        .unwrap();
    assert!(
        cli.status.success(),
        "{}",
        String::from_utf8_lossy(&cli.stderr)
    );
    tokio::time::sleep(Duration::from_millis(2000)).await;
    until_refused(&[&a.base, &b.base], &t2.key, Duration::from_secs(1)).await;

    // Deleting the account's key row, or any change an operator makes in SQL, reaches both too.
    let t3 = scene.tenant("10").await;
    for base in [&a.base, &b.base] {
        assert_eq!(send(&client, base, &t3.key, &body).await.status, 200);
    }
    sqlx::query("UPDATE api_keys SET disabled = true WHERE id = $1")
        .bind(t3.key_id)
        .execute(&scene.pg)
        .await
        .unwrap();
    until_refused(&[&a.base, &b.base], &t3.key, Duration::from_secs(1)).await;
}
