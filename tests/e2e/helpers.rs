use std::sync::Arc;
use std::time::Duration;

use infron_api::api_keys::ApiKey;
use infron_api::{Application, Settings};
use infron_billing::HotLedger;
use infron_billing::Usd;
use infron_mock_provider::MockProvider;
use infron_router::Catalog;
use infron_store::hot::HotState;
use infron_store::PgPool;
use rust_decimal::Decimal;
use serde_json::Value;
use uuid::Uuid;

pub const PROVIDER_KEY: &str = "mock-provider-secret-key";
/// The AWS credentials the mock's Bedrock routes verify SigV4 signatures against.
pub const AWS_ACCESS_KEY_ID: &str = "AKIAMOCKGATEWAY";
pub const AWS_SECRET_ACCESS_KEY: &str = "mock-aws-secret/Access+Key";
/// The service account the mock's token endpoint trusts (its key is the mock's test key).
pub const VERTEX_EMAIL: &str = "infron-gateway@mock-project.iam.gserviceaccount.com";
pub const VERTEX_PROJECT: &str = "mock-project";

/// Test catalog. Prices are per token. `test/chat` is served by mock-a (cheaper) and mock-b;
/// `test/private` only by a provider that trains on prompts.
pub fn catalog_toml(base: &str) -> String {
    format!(
        r#"
[[providers]]
name = "mock-a"
wire = "openai"
base_url = "{base}/v1"
api_key_env = "MOCK_KEY"
[[providers]]
name = "mock-b"
wire = "openai"
base_url = "{base}/v1"
api_key_env = "MOCK_KEY"
max_tokens_field = "max_completion_tokens"
[[providers]]
name = "mock-trainer"
wire = "openai"
base_url = "{base}/v1"
api_key_env = "MOCK_KEY"
data_policy = {{ training = true }}
[[providers]]
name = "mock-unconfigured"
wire = "openai"
base_url = "{base}/v1"
api_key_env = "MOCK_KEY_THAT_IS_NOT_SET"

[[models]]
id = "test/chat"
name = "Test Chat"
aliases = ["chat-alias"]
context_length = 8000
max_output_tokens = 1000
[[models.endpoints]]
provider = "mock-b"
upstream_model = "up-b"
pricing = {{ prompt = "0.000002", completion = "0.000004" }}
[[models.endpoints]]
provider = "mock-a"
upstream_model = "up-a"
pricing = {{ prompt = "0.000001", completion = "0.000002", input_cache_read = "0.0000005" }}

[[models]]
id = "test/private"
name = "Trains on prompts"
context_length = 8000
max_output_tokens = 1000
[[models.endpoints]]
provider = "mock-trainer"
upstream_model = "up-trainer"
pricing = {{ prompt = "0.000001", completion = "0.000001" }}

[[models]]
id = "test/backup"
name = "Backup"
context_length = 8000
max_output_tokens = 1000
[[models.endpoints]]
provider = "mock-a"
upstream_model = "up-backup"
pricing = {{ prompt = "0.000003", completion = "0.000003" }}

[[models]]
id = "test/unconfigured"
name = "No key"
context_length = 8000
max_output_tokens = 1000
[[models.endpoints]]
provider = "mock-unconfigured"
upstream_model = "up-x"
pricing = {{ prompt = "0.000001", completion = "0.000001" }}

# Routing: `test/routing` has three endpoints with different capabilities and data policies
# (prices per million tokens, prompt + completion: mock-c 1, mock-a 2, mock-b 4).
# `test/flaky` starts with an endpoint nothing listens on.
[[providers]]
name = "mock-c"
display_name = "Mock C (retains prompts)"
wire = "openai"
base_url = "{base}/v1"
api_key_env = "MOCK_KEY"
data_policy = {{ retains_prompts = true, retention_days = 30 }}
[[providers]]
name = "mock-down"
wire = "openai"
base_url = "http://127.0.0.1:9/v1"
api_key_env = "MOCK_KEY"

[[models]]
id = "test/routing"
name = "Routing"
context_length = 8000
max_output_tokens = 1000
supported_parameters = ["tools", "tool_choice", "temperature", "max_tokens", "response_format", "structured_outputs", "reasoning"]
input_modalities = ["text", "image"]
[[models.endpoints]]
provider = "mock-c"
upstream_model = "rt-c"
supported_parameters = ["temperature", "max_tokens"]
input_modalities = ["text"]
pricing = {{ prompt = "0.0000005", completion = "0.0000005" }}
[[models.endpoints]]
provider = "mock-a"
upstream_model = "rt-a"
pricing = {{ prompt = "0.000001", completion = "0.000001" }}
[[models.endpoints]]
provider = "mock-b"
upstream_model = "rt-b"
supported_parameters = ["tools", "tool_choice", "temperature", "max_tokens", "response_format"]
pricing = {{ prompt = "0.000002", completion = "0.000002" }}

[[models]]
id = "test/flaky"
name = "First endpoint down"
context_length = 8000
max_output_tokens = 1000
[[models.endpoints]]
provider = "mock-down"
upstream_model = "fl-down"
pricing = {{ prompt = "0.0000005", completion = "0.0000005" }}
[[models.endpoints]]
provider = "mock-a"
upstream_model = "fl-a"
pricing = {{ prompt = "0.000001", completion = "0.000001" }}

# Conformance: one model per wire format, all on the mock, with the same prices.
[[providers]]
name = "mock-anthropic"
wire = "anthropic"
base_url = "{base}"
api_key_env = "MOCK_KEY"
[[providers]]
name = "mock-gemini"
wire = "gemini"
base_url = "{base}"
api_key_env = "MOCK_KEY"

[[models]]
id = "conf/openai"
name = "Conformance (OpenAI wire)"
context_length = 100000
max_output_tokens = 4000
input_modalities = ["text", "image", "file"]
[[models.endpoints]]
provider = "mock-a"
upstream_model = "conf-openai"
pricing = {{ prompt = "0.000001", completion = "0.000002", input_cache_read = "0.0000005", input_cache_write = "0.00000125" }}

[[models]]
id = "conf/anthropic"
name = "Conformance (Anthropic wire)"
context_length = 100000
max_output_tokens = 4000
input_modalities = ["text", "image", "file"]
[[models.endpoints]]
provider = "mock-anthropic"
upstream_model = "conf-claude"
pricing = {{ prompt = "0.000001", completion = "0.000002", input_cache_read = "0.0000005", input_cache_write = "0.00000125" }}

[[models]]
id = "conf/gemini"
name = "Conformance (Gemini wire)"
context_length = 100000
max_output_tokens = 4000
input_modalities = ["text", "image", "file"]
[[models.endpoints]]
provider = "mock-gemini"
upstream_model = "conf-gemini"
pricing = {{ prompt = "0.000001", completion = "0.000002", input_cache_read = "0.0000005", input_cache_write = "0.00000125" }}

# Mixed wires: the cheaper Anthropic endpoint cannot take audio, the OpenAI one can.
[[models]]
id = "test/mixed"
name = "Mixed wires"
context_length = 8000
max_output_tokens = 1000
input_modalities = ["text", "image", "file", "audio"]
[[models.endpoints]]
provider = "mock-anthropic"
upstream_model = "mix-claude"
pricing = {{ prompt = "0.0000005", completion = "0.000001" }}
[[models.endpoints]]
provider = "mock-a"
upstream_model = "mix-a"
pricing = {{ prompt = "0.000001", completion = "0.000002" }}

# The cloud wires: Bedrock (SigV4), Vertex AI (service-account token; Anthropic and Gemini
# publishers) and Azure OpenAI, on the mock, with the conformance prices.
[[providers]]
name = "mock-bedrock"
wire = "bedrock"
base_url = "{base}"
region = "us-east-1"
api_key_env = "MOCK_AWS_SECRET_ACCESS_KEY"
access_key_id_env = "MOCK_AWS_ACCESS_KEY_ID"
[[providers]]
name = "mock-vertex"
wire = "vertex"
base_url = "{base}"
region = "us-east5"
api_key_env = "MOCK_VERTEX_CREDENTIALS"
[[providers]]
name = "mock-azure"
wire = "azure"
base_url = "{base}"
api_version = "2024-10-21"
api_key_env = "MOCK_KEY"

[[models]]
id = "conf/bedrock"
name = "Conformance (Bedrock Converse)"
context_length = 100000
max_output_tokens = 4000
input_modalities = ["text", "image", "file"]
[[models.endpoints]]
provider = "mock-bedrock"
upstream_model = "anthropic.conf-claude-v1:0"
pricing = {{ prompt = "0.000001", completion = "0.000002", input_cache_read = "0.0000005", input_cache_write = "0.00000125" }}

[[models]]
id = "conf/vertex-anthropic"
name = "Conformance (Vertex AI, Anthropic publisher)"
context_length = 100000
max_output_tokens = 4000
input_modalities = ["text", "image", "file"]
[[models.endpoints]]
provider = "mock-vertex"
upstream_model = "claude-conf@20240620"
pricing = {{ prompt = "0.000001", completion = "0.000002", input_cache_read = "0.0000005", input_cache_write = "0.00000125" }}

[[models]]
id = "conf/vertex-gemini"
name = "Conformance (Vertex AI, Gemini)"
context_length = 100000
max_output_tokens = 4000
input_modalities = ["text", "image", "file"]
[[models.endpoints]]
provider = "mock-vertex"
upstream_model = "gemini-conf"
pricing = {{ prompt = "0.000001", completion = "0.000002", input_cache_read = "0.0000005", input_cache_write = "0.00000125" }}

[[models]]
id = "conf/azure"
name = "Conformance (Azure OpenAI)"
context_length = 100000
max_output_tokens = 4000
input_modalities = ["text", "image", "file"]
[[models.endpoints]]
provider = "mock-azure"
upstream_model = "conf-azure"
pricing = {{ prompt = "0.000001", completion = "0.000002", input_cache_read = "0.0000005", input_cache_write = "0.00000125" }}

# Embeddings: the OpenAI-compatible endpoint is cheaper than the Gemini one.
[[models]]
id = "test/embed"
name = "Embeddings"
kind = "embedding"
context_length = 8000
max_output_tokens = 0
[[models.endpoints]]
provider = "mock-a"
upstream_model = "emb-a"
pricing = {{ prompt = "0.0000001", completion = "0" }}
[[models.endpoints]]
provider = "mock-gemini"
upstream_model = "emb-g"
pricing = {{ prompt = "0.0000002", completion = "0" }}
"#
    )
}

pub fn admin_database_url() -> String {
    std::env::var("INFRON_TEST_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

pub fn redis_url() -> String {
    std::env::var("INFRON_TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into())
}

pub struct TestApp {
    pub base: String,
    pub client: reqwest::Client,
    pub pg: PgPool,
    pub hot: HotState,
    pub ledger: Arc<HotLedger>,
    pub mock: MockProvider,
    pub key_secret: String,
}

/// A fresh database named with its creation time, so old ones can be dropped by later runs.
pub async fn fresh_database() -> String {
    let admin = infron_store::connect_postgres(&admin_database_url(), 2)
        .await
        .expect("Postgres reachable");
    let now = chrono::Utc::now().timestamp();
    // Drop databases left by earlier runs (more than 30 minutes old: no run of the suite takes
    // that long), so repeated runs on one server do not fill its disk (each is ~10 MB).
    let stale: Vec<String> =
        sqlx::query_scalar("SELECT datname FROM pg_database WHERE datname LIKE 'infron_test_%'")
            .fetch_all(&admin)
            .await
            .unwrap_or_default();
    for name in stale {
        let ts = name
            .split('_')
            .nth(2)
            .and_then(|t| t.parse::<i64>().ok())
            .unwrap_or(now);
        if now - ts > 1800 {
            let _ = sqlx::query(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"))
                .execute(&admin)
                .await;
        }
    }
    let name = format!("infron_test_{now}_{}", Uuid::new_v4().simple());
    sqlx::query(&format!("CREATE DATABASE \"{name}\""))
        .execute(&admin)
        .await
        .expect("create database");
    admin.close().await;
    let base = admin_database_url();
    let root = base
        .rsplit_once('/')
        .map(|(r, _)| r.to_string())
        .unwrap_or(base);
    format!("{root}/{name}")
}

/// Test settings with `extra` variables added (or overriding the defaults).
pub fn settings_with(
    database_url: &str,
    prefix: &str,
    key_secret: &str,
    catalog_path: &str,
    extra: &[(&str, String)],
) -> Settings {
    let mut owned: Vec<(&str, String)> = extra.to_vec();
    owned.extend(vec![
        ("DATABASE_URL", database_url.to_string()),
        ("REDIS_URL", redis_url()),
        ("INFRON_KEY_SECRET", key_secret.to_string()),
        ("INFRON_BIND", "127.0.0.1:0".to_string()),
        ("INFRON_REDIS_PREFIX", prefix.to_string()),
        ("INFRON_CATALOG", catalog_path.to_string()),
        ("INFRON_MAX_BODY_BYTES", (256 * 1024).to_string()),
        ("INFRON_WORKERS", "2".to_string()),
        ("INFRON_FIRST_BYTE_TIMEOUT_SECS", "5".to_string()),
        ("INFRON_STREAM_IDLE_TIMEOUT_SECS", "5".to_string()),
        // Deterministic defaults for tests of other features: the cheapest endpoint first and
        // every request reaching a provider. Routing and cache tests switch back to the product
        // defaults (`weighted`, `on`) through `extra`.
        ("INFRON_DEFAULT_PROVIDER_SORT", "price".to_string()),
        ("INFRON_RESPONSE_CACHE", "off".to_string()),
    ]);
    Settings::from_env(&|k| owned.iter().find(|(n, _)| *n == k).map(|(_, v)| v.clone()))
        .expect("test settings")
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(&[]).await
}

/// Like `spawn_app`, with extra environment settings (e.g. Stripe's).
pub async fn spawn_app_with(extra: &[(&str, String)]) -> TestApp {
    spawn_app_with_catalog(extra, "").await
}

/// Like `spawn_app_with`, with `extra_toml` appended to the test catalog (`{base}` in it is the
/// mock provider's URL).
pub async fn spawn_app_with_catalog(extra: &[(&str, String)], extra_toml: &str) -> TestApp {
    let extra_toml = extra_toml.to_string();
    spawn_app_from(extra, move |base| {
        catalog_toml(base) + &extra_toml.replace("{base}", base)
    })
    .await
}

/// The mock provider every test app talks to: it checks the gateway's provider key, AWS
/// signatures and Google service-account assertions.
pub async fn start_mock() -> MockProvider {
    MockProvider::start_with(
        "127.0.0.1:0",
        infron_mock_provider::MockConfig {
            expected_api_key: Some(PROVIDER_KEY.to_string()),
            aws: Some(infron_mock_provider::AwsCredentials {
                access_key_id: AWS_ACCESS_KEY_ID.into(),
                secret_access_key: AWS_SECRET_ACCESS_KEY.into(),
            }),
            google: Some(infron_mock_provider::GoogleServiceAccount {
                client_email: VERTEX_EMAIL.into(),
                public_key_pem: infron_mock_provider::test_keys::VERTEX_PUBLIC_KEY_PEM.into(),
            }),
        },
    )
    .await
    .expect("mock provider starts")
}

/// A test app whose catalog is `catalog(mock_base_url)`.
pub async fn spawn_app_from(
    extra: &[(&str, String)],
    catalog: impl FnOnce(&str) -> String,
) -> TestApp {
    let mock = start_mock().await;
    let database_url = fresh_database().await;
    let prefix = format!("t{}", Uuid::new_v4().simple());
    let key_secret = format!("test-secret-{}", Uuid::new_v4().simple());
    let settings = settings_with(&database_url, &prefix, &key_secret, "unused.toml", extra);
    let toml = catalog(&mock.base_url());
    let env = catalog_env_for(&mock.base_url());
    let catalog = Catalog::parse(&toml, "test-catalog.toml", &env).expect("test catalog is valid");
    let app = Application::build_with_catalog_env(settings, catalog, Arc::new(env))
        .await
        .expect("app builds");
    let base = format!("http://127.0.0.1:{}", app.port());
    let pg = app.state.pg.clone();
    let ledger = app.state.ledger.clone();
    let hot = ledger.state().clone();
    tokio::spawn(app.run_until_stopped(false));
    TestApp {
        base,
        client: reqwest::Client::new(),
        pg,
        hot,
        ledger,
        mock,
        key_secret,
    }
}

/// The shipped catalog (`config/catalog.toml`) with every provider pointed at the mock at
/// `base` and its credential variables at the mock's: prices, models, aliases and endpoints
/// exactly as shipped.
pub fn real_catalog_on(base: &str) -> String {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../config/catalog.toml");
    let text = std::fs::read_to_string(path).expect("config/catalog.toml");
    let mut doc: toml::Table = toml::from_str(&text).expect("the shipped catalog is TOML");
    let providers = doc
        .get_mut("providers")
        .and_then(toml::Value::as_array_mut)
        .expect("providers");
    for p in providers {
        let t = p.as_table_mut().expect("provider table");
        let wire = t["wire"].as_str().expect("wire").to_string();
        let url = if wire == "openai" {
            format!("{base}/v1")
        } else {
            base.to_string()
        };
        t.insert("base_url".into(), url.into());
        let key = match wire.as_str() {
            "bedrock" => {
                t.insert("access_key_id_env".into(), "MOCK_AWS_ACCESS_KEY_ID".into());
                t.remove("session_token_env");
                "MOCK_AWS_SECRET_ACCESS_KEY"
            }
            "vertex" => "MOCK_VERTEX_CREDENTIALS",
            _ => "MOCK_KEY",
        };
        t.insert("api_key_env".into(), key.into());
    }
    toml::to_string(&doc).expect("catalog serializes")
}

/// The environment test catalogs are loaded (and reloaded) with: the provider key, the AWS
/// credentials, and a Vertex service-account key whose token endpoint is the mock at `base`.
pub fn catalog_env_for(base: &str) -> impl Fn(&str) -> Option<String> + Send + Sync + 'static {
    let service_account =
        infron_mock_provider::test_keys::service_account_json(base, VERTEX_EMAIL, VERTEX_PROJECT);
    move |k: &str| match k {
        "MOCK_KEY" => Some(PROVIDER_KEY.to_string()),
        "MOCK_AWS_ACCESS_KEY_ID" => Some(AWS_ACCESS_KEY_ID.to_string()),
        "MOCK_AWS_SECRET_ACCESS_KEY" => Some(AWS_SECRET_ACCESS_KEY.to_string()),
        "MOCK_VERTEX_CREDENTIALS" => Some(service_account.clone()),
        _ => None,
    }
}

/// Product defaults for routing and the cache, which `spawn_app` pins for other tests.
pub fn product_defaults() -> Vec<(&'static str, String)> {
    vec![
        ("INFRON_DEFAULT_PROVIDER_SORT", "weighted".to_string()),
        ("INFRON_RESPONSE_CACHE", "on".to_string()),
    ]
}

/// Another gateway instance on the same database, Redis prefix and mock provider as `app`, as a
/// second replica behind a load balancer would be. Returns its base URL.
pub async fn spawn_replica(app: &TestApp, extra: &[(&str, String)]) -> String {
    let name: String = sqlx::query_scalar("SELECT current_database()")
        .fetch_one(&app.pg)
        .await
        .unwrap();
    let admin = admin_database_url();
    let root = admin
        .rsplit_once('/')
        .map(|(r, _)| r.to_string())
        .unwrap_or(admin);
    let settings = settings_with(
        &format!("{root}/{name}"),
        app.hot.keys().prefix(),
        &app.key_secret,
        "unused.toml",
        extra,
    );
    let env = catalog_env_for(&app.mock.base_url());
    let catalog = Catalog::parse(
        &catalog_toml(&app.mock.base_url()),
        "test-catalog.toml",
        &env,
    )
    .expect("test catalog is valid");
    let replica = Application::build_with_catalog_env(settings, catalog, Arc::new(env))
        .await
        .expect("replica builds");
    let base = format!("http://127.0.0.1:{}", replica.port());
    tokio::spawn(replica.run_until_stopped(false));
    base
}

pub struct Tenant {
    pub account: Uuid,
    pub key: String,
    pub key_id: Uuid,
}

impl TestApp {
    /// An account with one key and `credits` USD granted.
    pub async fn tenant(&self, credits: &str) -> Tenant {
        let account = infron_store::accounts::create(&self.pg, Uuid::now_v7(), "test tenant")
            .await
            .unwrap()
            .id;
        let (key, key_id) = self.new_key(account).await;
        if credits != "0" {
            let amount: Usd = credits.parse().unwrap();
            infron_billing::grants::grant(
                &self.pg,
                &self.hot,
                account,
                amount,
                "test",
                format!("grant:{}", Uuid::new_v4()),
            )
            .await
            .unwrap();
        }
        Tenant {
            account,
            key,
            key_id,
        }
    }

    pub async fn new_key(&self, account: Uuid) -> (String, Uuid) {
        let key = ApiKey::generate();
        let hash = key.hash(&secrecy::SecretString::from(self.key_secret.clone()));
        let row = infron_store::keys::insert(
            &self.pg,
            infron_store::keys::NewApiKey {
                id: Uuid::now_v7(),
                account_id: account,
                name: "test",
                key_hash: &hash,
                key_hint: &key.hint(),
            },
        )
        .await
        .unwrap();
        (key.expose().to_string(), row.id)
    }

    pub async fn post_chat(&self, key: &str, body: &Value) -> reqwest::Response {
        self.client
            .post(format!("{}/v1/chat/completions", self.base))
            .bearer_auth(key)
            .json(body)
            .send()
            .await
            .expect("request sent")
    }

    pub async fn balance(&self, account: Uuid) -> Decimal {
        infron_store::ledger::tenant_balance(&self.pg, account)
            .await
            .unwrap()
            .unwrap()
            .0
    }

    /// Waits until the ledger writer has posted (and reconciled) every queued settlement.
    pub async fn settled(&self) {
        let journal =
            infron_store::hot::journal::Journal::new(self.hot.conn(), self.hot.keys().clone());
        for _ in 0..400 {
            if journal.backlog().await.unwrap() == 0 {
                return;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!("settlements were not posted within 10 seconds");
    }

    /// The request log row of a public request id, once posted.
    pub async fn log_row(&self, public_id: &str) -> infron_store::request_logs::RequestLogRow {
        let id = Uuid::parse_str(public_id.trim_start_matches("gen-"))
            .expect("request id is gen-<uuid>");
        for _ in 0..200 {
            let row: Option<infron_store::request_logs::RequestLogRow> =
                sqlx::query_as("SELECT * FROM request_logs WHERE id = $1")
                    .bind(id)
                    .fetch_optional(&self.pg)
                    .await
                    .unwrap();
            if let Some(r) = row {
                return r;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!("no request log for {public_id}");
    }

    pub async fn ledger_clean(&self) {
        let check = infron_store::ledger::verify(&self.pg).await.unwrap();
        assert!(check.is_clean(), "{check:?}");
    }

    /// The hot copy agrees with Postgres and holds nothing.
    pub async fn hot_matches_ledger(&self, account: Uuid) {
        let Some(snap) = self.hot.snapshot(account).await.unwrap() else {
            return; // never loaded: nothing is held or cached
        };
        assert_eq!(snap.open_holds, 0, "open holds left: {snap:?}");
        assert_eq!(snap.unposted_pico, 0, "unposted costs left: {snap:?}");
        assert_eq!(
            snap.tombstones, 0,
            "unreconciled settlements left: {snap:?}"
        );
        let pg = Usd::new(self.balance(account).await)
            .unwrap()
            .to_pico()
            .unwrap();
        assert_eq!(snap.avail_pico, pg, "hot balance differs from ledger");
    }
}

/// A settlement record for a request that used nothing (tests fill in what they need).
pub fn sample_record(account: Uuid, id: Uuid) -> infron_billing::SettlementRecord {
    let now = chrono::Utc::now();
    infron_billing::SettlementRecord {
        id,
        created_at: now,
        completed_at: now,
        account_id: account,
        api_key_id: None,
        key_period: None,
        requested_model: "test/chat".into(),
        model: Some("test/chat".into()),
        provider: Some("mock-a".into()),
        upstream_model: Some("up-a".into()),
        endpoint_kind: "chat".into(),
        prompt_tokens: 0,
        completion_tokens: 0,
        cached_tokens: 0,
        cache_write_tokens: 0,
        reasoning_tokens: 0,
        list_cost: Usd::ZERO,
        prices: None,
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
    }
}

/// Journal entries that would post `rows` again, as a writer replaying a batch would.
pub fn replay_entries(
    rows: &[infron_store::request_logs::RequestLogRow],
) -> Vec<infron_store::hot::journal::JournalEntry> {
    rows.iter()
        .map(|r| {
            let mut rec = sample_record(r.account_id, r.id);
            rec.created_at = r.created_at;
            rec.completed_at = r.completed_at;
            rec.api_key_id = r.api_key_id;
            rec.model = r.model.clone();
            rec.provider = r.provider.clone();
            rec.prompt_tokens = r.prompt_tokens;
            rec.completion_tokens = r.completion_tokens;
            rec.list_cost = Usd::new(r.cost + r.overage).unwrap();
            infron_store::hot::journal::JournalEntry {
                shard: 0,
                id: String::new(),
                payload: rec.encode().unwrap(),
                charged_pico: Usd::new(r.cost).unwrap().to_pico().unwrap(),
                epoch: String::new(),
                key_epoch: String::new(),
            }
        })
        .collect()
}

pub fn chat_body(model: &str, directive: Option<Value>) -> Value {
    let text = match directive {
        Some(d) => format!("Say hello [[mock:{d}]]"),
        None => "Say hello".to_string(),
    };
    serde_json::json!({ "model": model, "messages": [{ "role": "user", "content": text }], "max_tokens": 100 })
}

/// Parses an SSE body into its `data:` payloads.
pub fn sse_data(body: &str) -> Vec<String> {
    body.split("\n\n")
        .filter_map(|event| {
            let lines: Vec<&str> = event
                .lines()
                .filter_map(|l| l.strip_prefix("data: "))
                .collect();
            (!lines.is_empty()).then(|| lines.join("\n"))
        })
        .collect()
}

pub fn dec(s: &str) -> Decimal {
    s.parse().unwrap()
}
