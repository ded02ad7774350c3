//! The gateway on a real 3-master Redis Cluster (`REDIS_URL=redis+cluster://…`): every script
//! and pipeline stays within one hash slot, requests are reserved, charged and posted exactly
//! once, rate limits hold, sessions work, and `infron ledger verify` (on the cluster too) is
//! clean.

use std::process::Stdio;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use tokio::net::TcpStream;
use tokio::process::{Child, Command};
use uuid::Uuid;

use crate::harness::*;

/// Three `redis-server --cluster-enabled yes` on free ports, joined with
/// `redis-cli --cluster create` (no replicas). Killed when dropped.
struct RedisCluster {
    ports: Vec<u16>,
    _children: Vec<Child>,
    dir: std::path::PathBuf,
}

impl RedisCluster {
    async fn start() -> RedisCluster {
        let dir = std::env::temp_dir().join(format!("infron-cluster-{}", Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).unwrap();
        let ports: Vec<u16> = (0..3).map(|_| free_port()).collect();
        let mut children = Vec::new();
        for p in &ports {
            let child = Command::new("redis-server")
                .args([
                    "--port",
                    &p.to_string(),
                    "--bind",
                    "127.0.0.1",
                    "--cluster-enabled",
                    "yes",
                    "--cluster-config-file",
                    &format!("nodes-{p}.conf"),
                    "--cluster-node-timeout",
                    "2000",
                    "--save",
                    "",
                    "--appendonly",
                    "no",
                ])
                .current_dir(&dir)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .kill_on_drop(true)
                .spawn()
                .expect("redis-server runs");
            children.push(child);
        }
        for p in &ports {
            let deadline = Instant::now() + Duration::from_secs(10);
            while TcpStream::connect(("127.0.0.1", *p)).await.is_err() {
                assert!(Instant::now() < deadline, "redis-server did not start");
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
        let nodes: Vec<String> = ports.iter().map(|p| format!("127.0.0.1:{p}")).collect();
        let out = Command::new("redis-cli")
            .args(["--cluster", "create"])
            .args(&nodes)
            .args(["--cluster-replicas", "0", "--cluster-yes"])
            .output()
            .await
            .expect("redis-cli runs");
        assert!(
            out.status.success(),
            "cluster create: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        let cluster = RedisCluster {
            ports,
            _children: children,
            dir,
        };
        // Every node must see all slots assigned before clients connect.
        let deadline = Instant::now() + Duration::from_secs(20);
        for p in &cluster.ports {
            loop {
                let info = cluster.cli(*p, &["cluster", "info"]).await;
                if info.contains("cluster_state:ok") {
                    break;
                }
                assert!(Instant::now() < deadline, "cluster never became ok: {info}");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
        cluster
    }

    async fn cli(&self, port: u16, args: &[&str]) -> String {
        let out = Command::new("redis-cli")
            .args(["-p", &port.to_string()])
            .args(args)
            .output()
            .await
            .expect("redis-cli runs");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// The URL the gateway gets: two of the three nodes, the third is discovered.
    fn url(&self) -> String {
        format!(
            "redis+cluster://127.0.0.1:{},127.0.0.1:{}",
            self.ports[0], self.ports[1]
        )
    }
}

impl Drop for RedisCluster {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_gateway_runs_on_a_three_master_redis_cluster() {
    let cluster = RedisCluster::start().await;
    let scene = Scene::new().await;
    let tenants = {
        let mut v = Vec::new();
        for _ in 0..6 {
            v.push(scene.tenant("10").await);
        }
        v
    };
    // One key with a rate limit: its GCRA cell lives in the account's shard.
    infron_store::keys::set_rate_limit(&scene.pg, tenants[0].key_id, Some(5), None)
        .await
        .unwrap();
    let gw = Gateway::start(&scene.env(&scene.database_url(5432), &cluster.url())).await;
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap();

    // Plain and streamed requests from every tenant, concurrently.
    let usage = json!({"prompt_tokens": 10, "completion_tokens": 10});
    let mut calls = Vec::new();
    for t in &tenants[1..] {
        for stream in [false, true, false, true] {
            let (client, base, key, body) = (
                client.clone(),
                gw.base.clone(),
                t.key.clone(),
                chat_body(usage.clone(), stream),
            );
            calls.push(tokio::spawn(async move {
                send(&client, &base, &key, &body).await
            }));
        }
    }
    let mut seen = Vec::new();
    for c in calls {
        seen.push(c.await.unwrap());
    }
    assert!(
        seen.iter()
            .all(|s| s.status == 200 && (!s.stream || s.done)),
        "{:?}\n{}",
        seen.iter().map(|s| s.status).collect::<Vec<_>>(),
        gw.log_text()
    );

    // The rate-limited key: 5 of 8 pass.
    let body = chat_body(usage.clone(), false);
    let mut limited = Vec::new();
    for _ in 0..8 {
        limited.push(send(&client, &gw.base, &tenants[0].key, &body).await);
    }
    assert_eq!(limited.iter().filter(|s| s.status == 200).count(), 5);
    assert_eq!(limited.iter().filter(|s| s.status == 429).count(), 3);

    // Sessions on the cluster: sign in, use the session, end every session.
    let email = format!("c{}@example.com", Uuid::new_v4().simple());
    let password = "cluster sessions are atomic";
    let hash = infron_accounts::password::hash(
        &infron_accounts::Password::parse("password", password).unwrap(),
    )
    .await
    .unwrap();
    let mut tx = scene.pg.begin().await.unwrap();
    let user = infron_store::users::insert_user(&mut tx, Uuid::now_v7(), &email, &hash)
        .await
        .unwrap()
        .unwrap();
    infron_store::members::insert(&mut tx, tenants[1].account, user.id, "owner")
        .await
        .unwrap();
    tx.commit().await.unwrap();
    infron_store::users::mark_verified(&scene.pg, user.id)
        .await
        .unwrap();
    let browser = reqwest::Client::builder()
        .cookie_store(true)
        .build()
        .unwrap();
    let res = browser
        .post(format!("{}/api/v1/auth/signin", gw.base))
        .header("origin", &gw.base)
        .json(&json!({ "email": email, "password": password }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200, "{}", gw.log_text());
    let csrf = res.json::<Value>().await.unwrap()["data"]["csrf_token"]
        .as_str()
        .unwrap()
        .to_string();
    let me = |c: &reqwest::Client| c.get(format!("{}/api/v1/me", gw.base)).send();
    assert_eq!(me(&browser).await.unwrap().status(), 200);
    let res = browser
        .post(format!("{}/api/v1/auth/signout-all", gw.base))
        .header("origin", &gw.base)
        .header("x-csrf-token", &csrf)
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert!(res.status().is_success(), "{}", res.status());
    assert_eq!(me(&browser).await.unwrap().status(), 401);

    // Everything answered is posted once, and the hot state lives on every master.
    let ids: Vec<Uuid> = answered(&seen)
        .into_iter()
        .chain(answered(&limited))
        .collect();
    assert_eq!(ids.len(), 20 + 5);
    let missing = scene.wait_logged(&ids, Duration::from_secs(20)).await;
    assert!(missing.is_empty(), "not posted: {missing:?}");
    assert_eq!(scene.duplicates().await, 0);
    for t in &tenants {
        assert_eq!(
            scene.balance(t.account).await,
            scene.expected_balance(t.account, "10").await
        );
    }
    for p in &cluster.ports {
        let n: i64 = cluster
            .cli(*p, &["dbsize"])
            .await
            .trim()
            .parse()
            .unwrap_or(0);
        assert!(n > 0, "master {p} holds no keys: the shards did not spread");
    }
    let (ok, out) = scene.verify(&cluster.url()).await;
    assert!(ok, "{out}");
}
