//! The ledger writer alone, fed from a prepared backlog: settles RECORDS requests of ACCOUNTS
//! accounts through the real hot-state operations (reserve, then settle, which queues each in
//! the journal) with the writer stopped, then starts WRITERS writers and times how long they
//! take to post the whole backlog into Postgres. Prints settlements/s and the CPU that Postgres,
//! Redis and this process spent draining. Run by bench/writer/run.sh.

#![allow(clippy::print_stdout, clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use infron_billing::writer::{LedgerWriter, WriterStats};
use infron_billing::{HotLedger, HotLedgerConfig, SettlementRecord, Usd};
use infron_store::hot::journal::Journal;
use infron_store::hot::HotKeys;
use infron_store::redis_conn::{RedisConn, RedisTarget};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

fn arg(name: &str, default: usize) -> usize {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// utime + stime (seconds) of every process with this name.
fn cpu_of(name: &str) -> f64 {
    let mut total = 0u64;
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let path = entry.path();
        let Ok(comm) = std::fs::read_to_string(path.join("comm")) else {
            continue;
        };
        if comm.trim() != name {
            continue;
        }
        let Ok(stat) = std::fs::read_to_string(path.join("stat")) else {
            continue;
        };
        let fields: Vec<&str> = stat
            .rsplit_once(')')
            .unwrap()
            .1
            .split_whitespace()
            .collect();
        total += fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap();
    }
    total as f64 / 100.0
}

fn own_cpu() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap();
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .unwrap()
        .1
        .split_whitespace()
        .collect();
    (fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap()) as f64 / 100.0
}

#[tokio::main]
async fn main() {
    let records = arg("--records", 200_000);
    let accounts_n = arg("--accounts", 100);
    let writers = arg("--writers", 1);
    let admin = "postgres://postgres@127.0.0.1:5432/postgres";
    let db = format!("infron_writerbench_{}", chrono::Utc::now().timestamp());
    let pool = infron_store::connect_postgres(admin, 1).await.unwrap();
    sqlx::query(&format!("CREATE DATABASE \"{db}\""))
        .execute(&pool)
        .await
        .unwrap();
    let pg =
        infron_store::connect_postgres(&format!("postgres://postgres@127.0.0.1:5432/{db}"), 10)
            .await
            .unwrap();
    infron_store::migrate(&pg).await.unwrap();
    let target = RedisTarget::Single("redis://127.0.0.1:6379".into());
    let keys = HotKeys::new(format!("wbench-{db}"), 8);
    let ledger = HotLedger::connect(
        pg.clone(),
        &target,
        keys.clone(),
        HotLedgerConfig::default(),
    )
    .await
    .unwrap();

    let mut accounts = Vec::new();
    for i in 0..accounts_n {
        let a = infron_store::accounts::create(&pg, Uuid::now_v7(), &format!("bench {i}"))
            .await
            .unwrap()
            .id;
        infron_billing::grants::grant(
            &pg,
            ledger.state(),
            a,
            "1000000".parse().unwrap(),
            "bench",
            format!("grant:{a}"),
        )
        .await
        .unwrap();
        accounts.push(a);
    }

    println!("preparing {records} settlements of {accounts_n} accounts (writer stopped)");
    let started = Instant::now();
    let accounts = Arc::new(accounts);
    let mut tasks = Vec::new();
    let per_task = records.div_ceil(64);
    for t in 0..64 {
        let (ledger, accounts) = (ledger.clone(), accounts.clone());
        tasks.push(tokio::spawn(async move {
            for i in (t * per_task)..((t + 1) * per_task).min(records) {
                let account = accounts[i % accounts.len()];
                let request = Uuid::now_v7();
                let hold = ledger
                    .reserve(account, request, None, "0.001".parse().unwrap(), &[])
                    .await
                    .unwrap();
                let now = chrono::Utc::now();
                let record = SettlementRecord {
                    id: request,
                    created_at: now,
                    completed_at: now,
                    account_id: account,
                    api_key_id: None,
                    key_period: None,
                    requested_model: "bench/model".into(),
                    model: Some("bench/model".into()),
                    provider: Some("upstream".into()),
                    upstream_model: Some("model".into()),
                    endpoint_kind: "chat".into(),
                    prompt_tokens: 13,
                    completion_tokens: 9,
                    cached_tokens: 0,
                    cache_write_tokens: 0,
                    reasoning_tokens: 0,
                    list_cost: "0.00000735".parse::<Usd>().unwrap(),
                    prices: Some(
                        serde_json::from_str(r#"{"prompt":"0.00000015","completion":"0.0000006"}"#)
                            .unwrap(),
                    ),
                    usage_source: Some("provider".into()),
                    status: 200,
                    error_class: None,
                    finish_reason: Some("stop".into()),
                    streamed: false,
                    cancelled: false,
                    cache_hit: false,
                    failed_attempts: Vec::new(),
                    latency_ms: Some(1),
                    first_token_ms: None,
                };
                ledger.settle(Some(&hold), &record).await.unwrap();
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let journal = Journal::new(RedisConn::connect(&target).await.unwrap(), keys.clone());
    println!(
        "prepared in {:.1} s; journal holds {}",
        started.elapsed().as_secs_f64(),
        journal.backlog().await.unwrap()
    );

    let (pg_before, redis_before, own_before) =
        (cpu_of("postgres"), cpu_of("redis-server"), own_cpu());
    let stop = CancellationToken::new();
    let started = Instant::now();
    let mut handles = Vec::new();
    for w in 0..writers {
        let writer = LedgerWriter::new(
            pg.clone(),
            ledger.state().clone(),
            Journal::new(
                RedisConn::connect_blocking(&target, Duration::from_millis(250))
                    .await
                    .unwrap(),
                keys.clone(),
            ),
            format!("bench-writer-{w}"),
            Arc::new(WriterStats::default()),
        );
        handles.push(tokio::spawn(writer.run(stop.clone())));
    }
    loop {
        if journal.backlog().await.unwrap() == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let elapsed = started.elapsed().as_secs_f64();
    let (pg_cpu, redis_cpu, own) = (
        cpu_of("postgres") - pg_before,
        cpu_of("redis-server") - redis_before,
        own_cpu() - own_before,
    );
    stop.cancel();
    for h in handles {
        let _ = h.await;
    }
    let logged: i64 = sqlx::query_scalar("SELECT count(*) FROM request_logs")
        .fetch_one(&pg)
        .await
        .unwrap();
    let check = infron_store::ledger::verify(&pg).await.unwrap();
    let per = |cpu: f64| cpu / records as f64 * 1e6;
    println!("posted {logged} settlements in {elapsed:.2} s: {:.0} settlements/s with {writers} writer(s)", records as f64 / elapsed);
    println!(
        "CPU per settlement while draining: Postgres {:.1} µs, Redis {:.1} µs, writer process {:.1} µs",
        per(pg_cpu),
        per(redis_cpu),
        per(own)
    );
    println!(
        "ledger verify: {}",
        if check.is_clean() {
            "clean"
        } else {
            "VIOLATIONS"
        }
    );
    assert_eq!(logged as usize, records, "every settlement posted");
    assert!(check.is_clean(), "{check:?}");
    pg.close().await;
    let _ = sqlx::query(&format!("DROP DATABASE IF EXISTS \"{db}\" WITH (FORCE)"))
        .execute(&pool)
        .await;
}
