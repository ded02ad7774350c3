//! What the fault tests run against: the real `infron` binary as a child process, a Redis
//! server of their own on a free port (so it can be killed and restarted empty), a TCP proxy
//! in front of the shared Postgres (so Postgres can be cut off and restored), the mock provider
//! in this process, and a load generator that remembers every answer the clients received.

use std::collections::HashSet;
use std::net::TcpListener as StdListener;
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use infron_api::api_keys::ApiKey;
use infron_billing::Usd;
use infron_mock_provider::{MockConfig, MockProvider};
use rust_decimal::Decimal;
use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::process::{Child, Command};
use uuid::Uuid;

pub const PROVIDER_KEY: &str = "fault-test-provider-key";

pub fn free_port() -> u16 {
    StdListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// A redis-server of the test's own, without persistence: killing it loses everything.
pub struct RedisServer {
    pub port: u16,
    child: Option<Child>,
}

impl RedisServer {
    pub async fn start() -> RedisServer {
        let mut r = RedisServer {
            port: free_port(),
            child: None,
        };
        r.spawn().await;
        r
    }

    async fn spawn(&mut self) {
        let child = Command::new("redis-server")
            .args([
                "--port",
                &self.port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("redis-server runs (install redis-server)");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(("127.0.0.1", self.port)).await.is_err() {
            assert!(Instant::now() < deadline, "redis-server did not start");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// kill -9: Redis and everything it held are gone.
    pub async fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill().await;
        }
    }

    /// A new, empty server on the same port.
    pub async fn restart_empty(&mut self) {
        self.kill().await;
        self.spawn().await;
    }
}

/// A TCP proxy in front of Postgres that the test can cut (every connection dropped, new ones
/// refused) and restore.
pub struct PgProxy {
    pub port: u16,
    cut: Arc<AtomicBool>,
    generation: Arc<tokio::sync::watch::Sender<u64>>,
}

impl PgProxy {
    pub async fn start(upstream: &str) -> PgProxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let cut = Arc::new(AtomicBool::new(false));
        let (tx, _) = tokio::sync::watch::channel(0u64);
        let generation = Arc::new(tx);
        let upstream = upstream.to_string();
        let (c, g) = (cut.clone(), generation.clone());
        tokio::spawn(async move {
            loop {
                let Ok((client, _)) = listener.accept().await else {
                    return;
                };
                if c.load(Ordering::SeqCst) {
                    drop(client);
                    continue;
                }
                let upstream = upstream.clone();
                let mut cut_seen = g.subscribe();
                tokio::spawn(async move {
                    let Ok(server) = TcpStream::connect(&upstream).await else {
                        return;
                    };
                    let (mut cr, mut cw) = client.into_split();
                    let (mut sr, mut sw) = server.into_split();
                    tokio::select! {
                        _ = tokio::io::copy(&mut cr, &mut sw) => {}
                        _ = tokio::io::copy(&mut sr, &mut cw) => {}
                        _ = cut_seen.changed() => {}
                    }
                });
            }
        });
        PgProxy {
            port,
            cut,
            generation,
        }
    }

    pub fn cut(&self) {
        self.cut.store(true, Ordering::SeqCst);
        self.generation.send_modify(|g| *g += 1);
    }

    pub fn restore(&self) {
        self.cut.store(false, Ordering::SeqCst);
    }
}

/// A fresh database for one test, on the shared Postgres.
pub async fn fresh_database() -> (String, sqlx::PgPool) {
    let admin = "postgres://postgres@127.0.0.1:5432/postgres";
    let pool = infron_store::connect_postgres(admin, 2).await.unwrap();
    let name = format!(
        "infron_test_{}_{}",
        chrono::Utc::now().timestamp(),
        Uuid::new_v4().simple()
    );
    sqlx::query(&format!("CREATE DATABASE \"{name}\""))
        .execute(&pool)
        .await
        .unwrap();
    pool.close().await;
    let url = format!("postgres://postgres@127.0.0.1:5432/{name}");
    let pg = infron_store::connect_postgres(&url, 5).await.unwrap();
    infron_store::migrate(&pg).await.unwrap();
    (name, pg)
}

/// Everything a gateway process needs, shared by the instances of one test.
pub struct Scene {
    /// Kept alive for the scene: dropping it stops the mock provider.
    pub _mock: MockProvider,
    pub db_name: String,
    pub pg: sqlx::PgPool,
    pub key_secret: String,
    pub prefix: String,
    pub catalog: tempfile_path::TempPath,
}

pub mod tempfile_path {
    /// A file removed when dropped.
    pub struct TempPath(pub std::path::PathBuf);
    impl Drop for TempPath {
        fn drop(&mut self) {
            let _ = std::fs::remove_file(&self.0);
        }
    }
}

pub struct Tenant {
    pub account: Uuid,
    pub key: String,
    pub key_id: Uuid,
}

impl Scene {
    pub async fn new() -> Scene {
        let mock = MockProvider::start_with(
            "127.0.0.1:0",
            MockConfig {
                expected_api_key: Some(PROVIDER_KEY.into()),
                ..Default::default()
            },
        )
        .await
        .unwrap();
        let (db_name, pg) = fresh_database().await;
        let path = std::env::temp_dir().join(format!("infron-faults-{}.toml", Uuid::new_v4()));
        std::fs::write(
            &path,
            format!(
                r#"
[[providers]]
name = "mock"
wire = "openai"
base_url = "{}/v1"
api_key_env = "FAULT_MOCK_KEY"

[[models]]
id = "test/chat"
name = "Test chat"
context_length = 8000
max_output_tokens = 1000
[[models.endpoints]]
provider = "mock"
upstream_model = "up-chat"
pricing = {{ prompt = "0.000001", completion = "0.000002" }}
"#,
                mock.base_url()
            ),
        )
        .unwrap();
        Scene {
            _mock: mock,
            db_name,
            pg,
            key_secret: format!("fault-test-secret-{}", Uuid::new_v4().simple()),
            prefix: format!("f{}", Uuid::new_v4().simple()),
            catalog: tempfile_path::TempPath(path),
        }
    }

    pub fn database_url(&self, port: u16) -> String {
        format!("postgres://postgres@127.0.0.1:{port}/{}", self.db_name)
    }

    pub async fn tenant(&self, credits: &str) -> Tenant {
        let account = infron_store::accounts::create(&self.pg, Uuid::now_v7(), "fault tenant")
            .await
            .unwrap()
            .id;
        let key = ApiKey::generate();
        let hash = key.hash(&secrecy::SecretString::from(self.key_secret.clone()));
        let row = infron_store::keys::insert(
            &self.pg,
            infron_store::keys::NewApiKey {
                id: Uuid::now_v7(),
                account_id: account,
                name: "fault",
                key_hash: &hash,
                key_hint: &key.hint(),
            },
        )
        .await
        .unwrap();
        let amount: Usd = credits.parse().unwrap();
        let book = infron_store::ledger::credits_book(&self.pg, account)
            .await
            .unwrap()
            .unwrap();
        infron_store::ledger::post_one(
            &self.pg,
            infron_store::ledger::NewTransaction {
                id: Uuid::now_v7(),
                external_id: format!("grant:{}", Uuid::new_v4()),
                kind: "grant",
                account_id: Some(account),
                description: "fault test".into(),
                metadata: json!({}),
                effective_at: chrono::Utc::now(),
                entries: vec![
                    (infron_store::ledger::platform::GRANTS, amount.decimal()),
                    (book, -amount.decimal()),
                ],
            },
        )
        .await
        .unwrap();
        Tenant {
            account,
            key: key.expose().to_string(),
            key_id: row.id,
        }
    }

    /// The environment of an `infron` process of this scene.
    pub fn env(&self, database_url: &str, redis_url: &str) -> Vec<(String, String)> {
        [
            ("DATABASE_URL", database_url.to_string()),
            ("REDIS_URL", redis_url.to_string()),
            ("INFRON_KEY_SECRET", self.key_secret.clone()),
            ("INFRON_REDIS_PREFIX", self.prefix.clone()),
            ("INFRON_CATALOG", self.catalog.0.display().to_string()),
            ("FAULT_MOCK_KEY", PROVIDER_KEY.to_string()),
            ("INFRON_BIND", "127.0.0.1:0".to_string()),
            ("INFRON_WORKERS", "2".to_string()),
            ("INFRON_LOG_FORMAT", "json".to_string()),
            ("INFRON_RESPONSE_CACHE", "off".to_string()),
            ("INFRON_DB_MAX_CONNECTIONS", "5".to_string()),
            ("RUST_LOG", "info".to_string()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect()
    }

    /// Runs `infron ledger verify` against this scene; returns (success, output).
    pub async fn verify(&self, redis_url: &str) -> (bool, String) {
        let out = Command::new(env!("CARGO_BIN_EXE_infron"))
            .args(["ledger", "verify"])
            .env_clear()
            .envs(self.env(&self.database_url(5432), redis_url))
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .output()
            .await
            .unwrap();
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        (out.status.success(), text)
    }

    pub async fn balance(&self, account: Uuid) -> Decimal {
        infron_store::ledger::tenant_balance(&self.pg, account)
            .await
            .unwrap()
            .unwrap()
            .0
    }

    /// Waits until every id is in request_logs; returns what is still missing at the deadline.
    pub async fn wait_logged(&self, ids: &[Uuid], within: Duration) -> Vec<Uuid> {
        let deadline = Instant::now() + within;
        loop {
            let found: Vec<Uuid> =
                sqlx::query_scalar("SELECT id FROM request_logs WHERE id = ANY($1)")
                    .bind(ids)
                    .fetch_all(&self.pg)
                    .await
                    .unwrap();
            let found: HashSet<Uuid> = found.into_iter().collect();
            let missing: Vec<Uuid> = ids.iter().filter(|i| !found.contains(i)).copied().collect();
            if missing.is_empty() || Instant::now() > deadline {
                return missing;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Request ids logged more than once (must be none).
    pub async fn duplicates(&self) -> i64 {
        sqlx::query_scalar(
            "SELECT count(*) FROM (SELECT id FROM request_logs GROUP BY id HAVING count(*) > 1) d",
        )
        .fetch_one(&self.pg)
        .await
        .unwrap()
    }

    /// Grants minus the sum of logged charges: what the balance must be.
    pub async fn expected_balance(&self, account: Uuid, granted: &str) -> Decimal {
        let spent: Decimal = sqlx::query_scalar(
            "SELECT coalesce(sum(cost), 0) FROM request_logs WHERE account_id = $1",
        )
        .bind(account)
        .fetch_one(&self.pg)
        .await
        .unwrap();
        granted.parse::<Decimal>().unwrap() - spent
    }
}

/// A running `infron serve`.
pub struct Gateway {
    child: Child,
    pub base: String,
    pub logs: Arc<Mutex<Vec<String>>>,
}

impl Gateway {
    pub async fn start(env: &[(String, String)]) -> Gateway {
        let mut child = Command::new(env!("CARGO_BIN_EXE_infron"))
            .arg("serve")
            .env_clear()
            .envs(env.iter().cloned())
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("infron binary runs");
        let stderr = child.stderr.take().unwrap();
        let logs = Arc::new(Mutex::new(Vec::new()));
        let (port_tx, mut port_rx) = tokio::sync::mpsc::channel::<u16>(1);
        let sink = logs.clone();
        tokio::spawn(async move {
            let mut lines = BufReader::new(stderr).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                if let Ok(v) = serde_json::from_str::<Value>(&line) {
                    if v["fields"]["message"] == "infron is serving" {
                        if let Some(p) = v["fields"]["port"].as_u64() {
                            let _ = port_tx.send(p as u16).await;
                        }
                    }
                }
                sink.lock().unwrap().push(line);
            }
        });
        let port = tokio::time::timeout(Duration::from_secs(30), port_rx.recv())
            .await
            .unwrap_or_else(|_| panic!("gateway did not start: {:?}", logs.lock().unwrap()))
            .unwrap_or_else(|| panic!("gateway exited: {:?}", logs.lock().unwrap()));
        Gateway {
            child,
            base: format!("http://127.0.0.1:{port}"),
            logs,
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id().expect("running")
    }

    /// kill -9.
    pub async fn kill(&mut self) {
        let _ = self.child.kill().await;
    }

    pub async fn sigterm(&self) {
        let status = Command::new("kill")
            .args(["-TERM", &self.pid().to_string()])
            .status()
            .await
            .unwrap();
        assert!(status.success());
    }

    pub async fn wait_exit(&mut self, within: Duration) -> std::process::ExitStatus {
        tokio::time::timeout(within, self.child.wait())
            .await
            .expect("gateway exits in time")
            .unwrap()
    }

    pub fn log_text(&self) -> String {
        self.logs.lock().unwrap().join("\n")
    }
}

/// What one request's client saw.
#[derive(Debug, Clone)]
pub struct Seen {
    pub id: Option<Uuid>,
    pub status: u16,
    pub stream: bool,
    /// Content chunks received (streams).
    pub chunks: usize,
    /// The stream ended with `[DONE]`.
    pub done: bool,
    /// An error chunk was received in the stream.
    pub error_chunk: bool,
}

pub fn request_id(headers: &reqwest::header::HeaderMap) -> Option<Uuid> {
    headers
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .and_then(|s| Uuid::parse_str(s.trim_start_matches("gen-")).ok())
}

pub fn chat_body(directive: Value, stream: bool) -> Value {
    json!({
        "model": "test/chat",
        "messages": [{"role": "user", "content": format!("Say hello [[mock:{directive}]]")}],
        "max_tokens": 200,
        "stream": stream,
    })
}

/// Sends one request and reads the whole answer.
pub async fn send(client: &reqwest::Client, base: &str, key: &str, body: &Value) -> Seen {
    let stream = body["stream"].as_bool().unwrap_or(false);
    let res = match client
        .post(format!("{base}/v1/chat/completions"))
        .bearer_auth(key)
        .json(body)
        .send()
        .await
    {
        Ok(r) => r,
        Err(_) => {
            return Seen {
                id: None,
                status: 0,
                stream,
                chunks: 0,
                done: false,
                error_chunk: false,
            }
        }
    };
    let id = request_id(res.headers());
    let status = res.status().as_u16();
    let mut seen = Seen {
        id,
        status,
        stream,
        chunks: 0,
        done: false,
        error_chunk: false,
    };
    if !stream || status != 200 {
        if res.bytes().await.is_err() {
            seen.status = 0;
        }
        return seen;
    }
    let mut body = res.bytes_stream();
    let mut buf = String::new();
    while let Some(part) = body.next().await {
        let Ok(part) = part else { break };
        buf.push_str(&String::from_utf8_lossy(&part));
        while let Some(end) = buf.find("\n\n") {
            let event: String = buf.drain(..end + 2).collect();
            for line in event.lines() {
                let Some(data) = line.strip_prefix("data: ") else {
                    continue;
                };
                if data == "[DONE]" {
                    seen.done = true;
                } else if let Ok(v) = serde_json::from_str::<Value>(data) {
                    if v.get("error").is_some() {
                        seen.error_chunk = true;
                    } else if v["choices"][0]["delta"]["content"]
                        .as_str()
                        .is_some_and(|c| !c.is_empty())
                    {
                        seen.chunks += 1;
                    }
                }
            }
        }
    }
    seen
}

/// Steady load from `clients` concurrent clients until `stop`; returns everything seen.
pub async fn load(
    base: String,
    key: String,
    clients: usize,
    body: Value,
    stop: tokio_util::sync::CancellationToken,
) -> Vec<Seen> {
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap();
    let mut tasks = Vec::new();
    for _ in 0..clients {
        let (client, base, key, body, stop) = (
            client.clone(),
            base.clone(),
            key.clone(),
            body.clone(),
            stop.clone(),
        );
        tasks.push(tokio::spawn(async move {
            let mut seen = Vec::new();
            while !stop.is_cancelled() {
                let s = send(&client, &base, &key, &body).await;
                if s.status != 200 {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                seen.push(s);
            }
            seen
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.unwrap());
    }
    all
}

/// Ids of the requests whose clients received a complete answer.
pub fn answered(seen: &[Seen]) -> Vec<Uuid> {
    seen.iter()
        .filter(|s| s.status == 200 && (!s.stream || s.done))
        .filter_map(|s| s.id)
        .collect()
}
