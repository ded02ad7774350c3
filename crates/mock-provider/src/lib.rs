//! # infron-mock-provider
//!
//! A fake LLM provider HTTP server speaking the OpenAI (Chat Completions,
//! legacy Completions, Embeddings), Anthropic (Messages), Google Gemini
//! (generateContent, streamGenerateContent, embedContent, batchEmbedContents),
//! AWS Bedrock (Converse, ConverseStream with the event-stream framing, SigV4
//! verification), Google Vertex AI (Gemini and Anthropic publishers, with the
//! OAuth JWT-bearer token exchange) and Azure OpenAI (deployments, api-version,
//! content-filter annotations) wire formats, with scriptable answers, token
//! usage, errors, latency and network faults. Used in-process by the gateway's integration tests, by
//! benchmarks and by the local demo (binary `infron-mock-provider`).
//!
//! ```no_run
//! # async fn demo() -> anyhow::Result<()> {
//! use infron_mock_provider::{Behaviour, MockProvider};
//! let mock = MockProvider::start("127.0.0.1:0").await?;
//! mock.set_model_behaviour("gpt-4o", Behaviour::reply("Hi there"));
//! mock.push_behaviour("gpt-4o", Behaviour::error(429, "slow down"));
//! let url = format!("{}/v1/chat/completions", mock.base_url());
//! # let _ = url;
//! # Ok(()) }
//! ```
//!
//! ## Token usage mapping
//!
//! With `P` = `prompt_tokens`, `C` = `completion_tokens`, `R` =
//! `cached_tokens`, `W` = `cache_write_tokens`, `T` = `reasoning_tokens`
//! (see [`Behaviour`]; `P` includes `R` and `W`, `C` includes `T`):
//!
//! | format | fields |
//! |---|---|
//! | OpenAI chat | `prompt_tokens`=P, `completion_tokens`=C, `total_tokens`=P+C, `prompt_tokens_details.cached_tokens`=R, `completion_tokens_details.reasoning_tokens`=T, `prompt_tokens_details.cache_write_tokens`=W (only when W>0) |
//! | OpenAI legacy | `prompt_tokens`=P, `completion_tokens`=C, `total_tokens`=P+C (details objects only when non-zero) |
//! | Anthropic | `input_tokens`=P−R−W (saturating), `cache_read_input_tokens`=R, `cache_creation_input_tokens`=W, `output_tokens`=C |
//! | Gemini | `promptTokenCount`=P, `cachedContentTokenCount`=R (when R>0), `candidatesTokenCount`=C−T, `thoughtsTokenCount`=T (when T>0), `totalTokenCount`=P+C |
//!
//! Defaults: P = 4 × messages + words of all message text (a system prompt
//! counts as a message); C = max(1, words of the reply) + T; R = W = T = 0.
//! The crate README has the complete description.

mod anthropic;
mod azure;
mod bedrock;
mod behaviour;
mod errors;
mod eventstream;
mod gemini;
mod oauth;
mod ojson;
mod openai;
mod openai_extra;
mod router;
mod server;
mod sigv4;
mod util;
mod vertex;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;

use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

pub use behaviour::{
    parse_directive, Behaviour, Fault, MockToolCall, DEFAULT_EMBEDDING_DIMS, DEFAULT_REPLY,
};

use server::Shared;

/// Server configuration.
#[derive(Clone, Debug, Default)]
pub struct MockConfig {
    /// When `Some`, requests that do not carry exactly this key in the
    /// provider's auth header (`Authorization: Bearer` for OpenAI routes,
    /// `x-api-key` for Anthropic, `x-goog-api-key` or `?key=` for Gemini,
    /// `api-key` for Azure OpenAI) get that provider's 401 error body.
    pub expected_api_key: Option<String>,
    /// When `Some`, Bedrock requests must be SigV4-signed with these credentials
    /// (403 `UnrecognizedClientException` / `InvalidSignatureException` otherwise).
    pub aws: Option<AwsCredentials>,
    /// When `Some`, the token endpoint (`POST /token`) accepts only JWT assertions
    /// signed by this service account, and Vertex routes only the access tokens it
    /// issued (401 `UNAUTHENTICATED` otherwise).
    pub google: Option<GoogleServiceAccount>,
}

/// AWS credentials Bedrock requests are verified against.
#[derive(Clone, Debug)]
pub struct AwsCredentials {
    pub access_key_id: String,
    pub secret_access_key: String,
}

/// The service account the Google token endpoint trusts.
#[derive(Clone, Debug)]
pub struct GoogleServiceAccount {
    pub client_email: String,
    /// SPKI PEM (`-----BEGIN PUBLIC KEY-----`) of the account's key.
    pub public_key_pem: String,
}

/// A test-only RSA key pair for Vertex tests: the private half goes in the service-account
/// key the gateway is given, the public half in [`GoogleServiceAccount`]. Never trust it
/// anywhere else.
pub mod test_keys {
    pub const VERTEX_PRIVATE_KEY_PEM: &str = include_str!("testdata/vertex-test-key.pem");
    pub const VERTEX_PUBLIC_KEY_PEM: &str = include_str!("testdata/vertex-test-key.pub.pem");

    /// A service-account key file (Google's JSON shape) for `client_email`, whose
    /// `token_uri` is this mock's token endpoint at `base_url`.
    pub fn service_account_json(base_url: &str, client_email: &str, project_id: &str) -> String {
        serde_json::json!({
            "type": "service_account",
            "project_id": project_id,
            "private_key_id": "mock-key-1",
            "private_key": VERTEX_PRIVATE_KEY_PEM,
            "client_email": client_email,
            "client_id": "100000000000000000000",
            "auth_uri": "https://accounts.google.com/o/oauth2/auth",
            "token_uri": format!("{base_url}/token"),
        })
        .to_string()
    }
}

/// One request as received by the mock.
#[derive(Clone, Debug)]
pub struct RecordedRequest {
    /// HTTP method, e.g. `POST`.
    pub method: String,
    /// Path including the query string.
    pub path: String,
    /// Headers with lower-cased names (repeated headers joined with `", "`).
    pub headers: BTreeMap<String, String>,
    /// JSON body, or `Null` if empty / not JSON.
    pub body: serde_json::Value,
}

/// A running mock provider. Dropping it (or calling [`MockProvider::shutdown`])
/// stops the server and closes its connections.
pub struct MockProvider {
    addr: SocketAddr,
    shared: Arc<Shared>,
}

impl MockProvider {
    /// Binds (use `"127.0.0.1:0"` for a free port) and serves in background
    /// tokio tasks on the current runtime.
    pub async fn start(bind: &str) -> anyhow::Result<MockProvider> {
        Self::start_with(bind, MockConfig::default()).await
    }

    /// Like [`MockProvider::start`], with a configuration.
    pub async fn start_with(bind: &str, config: MockConfig) -> anyhow::Result<MockProvider> {
        let listener = TcpListener::bind(bind)
            .await
            .map_err(|e| anyhow::anyhow!("mock provider: cannot bind {bind}: {e}"))?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared::new(config, CancellationToken::new()));
        tokio::spawn(server::accept_loop(listener, shared.clone()));
        Ok(MockProvider { addr, shared })
    }

    /// `http://IP:PORT` (no trailing slash).
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The bound socket address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Every request received so far, in order.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.shared.requests()
    }

    /// Forgets the recorded requests.
    pub fn clear_requests(&self) {
        self.shared.clear_requests();
    }

    /// Behaviour applied to every request for this upstream model name
    /// (overridden by a pushed one-shot behaviour or an in-message directive).
    pub fn set_model_behaviour(&self, upstream_model: &str, behaviour: Behaviour) {
        self.shared.set_behaviour(upstream_model, behaviour);
    }

    /// One-shot behaviours consumed in order for this model, before falling
    /// back to [`MockProvider::set_model_behaviour`] / defaults.
    pub fn push_behaviour(&self, upstream_model: &str, behaviour: Behaviour) {
        self.shared.push_behaviour(upstream_model, behaviour);
    }

    /// Makes every access token issued so far expired (the "expired token" fault):
    /// Vertex routes answer them with 401 until a new one is fetched.
    pub fn expire_tokens(&self) {
        self.shared.expire_tokens();
    }

    /// Access tokens issued by the token endpoint so far.
    pub fn tokens_issued(&self) -> usize {
        self.shared.tokens_issued()
    }

    /// Stops accepting connections and closes the open ones (also done on drop).
    pub fn shutdown(&self) {
        self.shared.cancel.cancel();
    }
}

impl Drop for MockProvider {
    fn drop(&mut self) {
        self.shutdown();
    }
}

impl std::fmt::Debug for MockProvider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MockProvider")
            .field("addr", &self.addr)
            .finish()
    }
}
