//! `infron ledger verify` sees what a single failure can leave behind in the hot state:
//! settlements not posted in time, settlements a writer took and left, holds of dead instances,
//! hot balances that differ from Postgres. Each is planted by hand (no gateway runs to repair
//! it), must fail verify, and verify passes again once it is gone.

use crate::harness::*;

async fn redis(url: &str) -> redis::aio::MultiplexedConnection {
    redis::Client::open(url)
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap()
}

fn line<'a>(report: &'a str, what: &str) -> &'a str {
    report
        .lines()
        .find(|l| l.starts_with(what))
        .unwrap_or_else(|| panic!("no '{what}' line in:\n{report}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_fails_on_each_kind_of_stranded_money_state() {
    let scene = Scene::new().await;
    let server = RedisServer::start().await;
    let t = scene.tenant("10").await;
    let keys = infron_store::hot::HotKeys::new(scene.prefix.clone(), 8);
    let mut r = redis(&server.url()).await;

    let (ok, report) = scene.verify(&server.url()).await;
    assert!(ok, "clean to start with:\n{report}");

    // A settlement accepted long ago and never posted (no writer reads the journal).
    let journal = keys.journal(3);
    let _: String = redis::cmd("XADD")
        .arg(&journal)
        .arg("1000-0")
        .arg("p")
        .arg("{}")
        .query_async(&mut r)
        .await
        .unwrap();
    let (ok, report) = scene.verify(&server.url()).await;
    assert!(!ok);
    assert!(line(&report, "settlements not posted in time").contains("VIOLATION (1)"));
    let _: i64 = redis::cmd("DEL")
        .arg(&journal)
        .query_async(&mut r)
        .await
        .unwrap();

    // A settlement a writer took and never acknowledged (its instance died, nobody took over).
    let _: () = redis::cmd("XGROUP")
        .arg("CREATE")
        .arg(&journal)
        .arg("ledger-writer")
        .arg("0")
        .arg("MKSTREAM")
        .query_async(&mut r)
        .await
        .unwrap();
    let _: String = redis::cmd("XADD")
        .arg(&journal)
        .arg("*")
        .arg("p")
        .arg("{}")
        .query_async(&mut r)
        .await
        .unwrap();
    let _: redis::Value = redis::cmd("XREADGROUP")
        .arg("GROUP")
        .arg("ledger-writer")
        .arg("dead-writer")
        .arg("STREAMS")
        .arg(&journal)
        .arg(">")
        .query_async(&mut r)
        .await
        .unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_infron"))
        .args(["ledger", "verify", "--max-lag-secs", "1"])
        .env_clear()
        .envs(scene.env(&scene.database_url(5432), &server.url()))
        .output()
        .await
        .unwrap();
    let report = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(!out.status.success());
    assert!(line(&report, "settlements left unposted by a writer").contains("VIOLATION (1)"));
    let _: i64 = redis::cmd("DEL")
        .arg(&journal)
        .query_async(&mut r)
        .await
        .unwrap();

    // A hold whose lease ran out long ago (its instance died and no instance swept it).
    let holds = keys.holds(keys.shard_of(t.account));
    let _: i64 = redis::cmd("ZADD")
        .arg(&holds)
        .arg(1000)
        .arg(format!("{}:{}", t.account, uuid::Uuid::now_v7()))
        .query_async(&mut r)
        .await
        .unwrap();
    let (ok, report) = scene.verify(&server.url()).await;
    assert!(!ok);
    assert!(line(&report, "holds of dead instances").contains("VIOLATION (1)"));
    let _: i64 = redis::cmd("DEL")
        .arg(&holds)
        .query_async(&mut r)
        .await
        .unwrap();

    // A hot balance that says more than Postgres (a posting never reconciled).
    let hash = keys.account(t.account);
    let _: () = redis::cmd("HSET")
        .arg(&hash)
        .arg("avail")
        .arg("10000000000001")
        .arg("ver")
        .arg(1)
        .arg("ep")
        .arg("x")
        .arg("unp")
        .arg(0)
        .arg("top")
        .arg(1)
        .query_async(&mut r)
        .await
        .unwrap();
    let (ok, report) = scene.verify(&server.url()).await;
    assert!(!ok);
    assert!(line(&report, "hot balances differing from Postgres").contains("VIOLATION (1)"));
    let _: i64 = redis::cmd("HSET")
        .arg(&hash)
        .arg("avail")
        .arg("10000000000000")
        .query_async(&mut r)
        .await
        .unwrap();

    let (ok, report) = scene.verify(&server.url()).await;
    assert!(ok, "clean again:\n{report}");
}
