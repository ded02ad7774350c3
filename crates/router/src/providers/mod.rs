//! Calling provider endpoints: one module per wire format, a shared failure model, and the
//! attempt loop that walks the candidate endpoints until one answers.

pub mod anthropic;
pub mod anthropic_stream;
pub mod azure;
pub mod bedrock;
pub mod bedrock_stream;
pub mod embeddings;
pub mod event_stream;
pub mod gemini;
pub mod gemini_schema;
pub mod gemini_stream;
pub mod google_auth;
pub mod http;
pub mod media;
pub mod openai;
pub mod sigv4;
pub mod translate;
pub mod vertex;

use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use futures_util::{Stream, StreamExt};
use infron_billing::Usage;
use serde::Serialize;

use crate::catalog::{Endpoint, Wire};
use crate::types::{ChatChunk, ChatRequest, ChatResponse, ChunkChoice, Delta};

/// Why an endpoint failed, in low-cardinality classes usable as metric labels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FailureKind {
    /// Could not connect or the connection broke before a response.
    Connect,
    Timeout,
    RateLimited,
    /// 5xx (including Anthropic's 529 overloaded).
    Unavailable,
    /// The provider rejected the operator's credentials (401/403): a configuration problem.
    ProviderAuth,
    /// The provider has no key configured in this deployment.
    NotConfigured,
    /// The prompt does not fit the endpoint's context window.
    ContextLength,
    /// The provider rejected the request itself (400-class): returned to the client as is.
    InvalidRequest,
    /// The provider answered with something that is not its documented format.
    BadResponse,
    /// The stream broke before finishing.
    StreamBroken,
}

impl FailureKind {
    /// Whether the next endpoint should be tried.
    pub fn is_retryable(self) -> bool {
        !matches!(self, FailureKind::InvalidRequest)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            FailureKind::Connect => "connect",
            FailureKind::Timeout => "timeout",
            FailureKind::RateLimited => "rate_limited",
            FailureKind::Unavailable => "unavailable",
            FailureKind::ProviderAuth => "provider_auth",
            FailureKind::NotConfigured => "not_configured",
            FailureKind::ContextLength => "context_length",
            FailureKind::InvalidRequest => "invalid_request",
            FailureKind::BadResponse => "bad_response",
            FailureKind::StreamBroken => "stream_broken",
        }
    }
}

/// A provider failure with a message safe to show clients: never a key, never our URLs.
#[derive(Debug, Clone, Serialize)]
pub struct ProviderError {
    pub provider: String,
    pub kind: FailureKind,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    pub message: String,
    #[serde(skip)]
    pub retry_after: Option<u64>,
}

impl std::fmt::Display for ProviderError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} ({}): {}",
            self.provider,
            self.kind.as_str(),
            self.message
        )
    }
}

#[derive(Debug, Clone)]
pub struct Timeouts {
    pub connect: Duration,
    /// From sending the request to the response headers, and to the first stream event.
    pub first_byte: Duration,
    /// Longest gap allowed between two stream events.
    pub idle: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            connect: Duration::from_secs(10),
            first_byte: Duration::from_secs(120),
            idle: Duration::from_secs(60),
        }
    }
}

/// What a stream yields once translated: chunks in OpenAI's shape and the usage, if reported.
#[derive(Debug, Clone)]
pub enum StreamEvent {
    Chunk(ChatChunk),
    Usage(Usage),
}

pub type EventStream = Pin<Box<dyn Stream<Item = Result<StreamEvent, ProviderError>> + Send>>;

pub enum Reply {
    Complete {
        response: ChatResponse,
        usage: Option<Usage>,
    },
    /// Events already read (up to and including the first content) and the rest of the stream.
    Stream {
        head: Vec<StreamEvent>,
        rest: EventStream,
    },
}

impl Reply {
    /// A complete answer as the stream a client asked for: one chunk with the whole message,
    /// one with the finish reason, then the usage. A stream stays as it is.
    pub fn into_stream(self) -> Reply {
        let Reply::Complete { response, usage } = self else {
            return self;
        };
        let mut head = Vec::new();
        for choice in response.choices {
            let message = choice.message;
            let tool_calls = message.tool_calls.map(|calls| {
                calls
                    .into_iter()
                    .enumerate()
                    .map(|(i, mut call)| {
                        if let Some(o) = call.as_object_mut() {
                            o.entry("index").or_insert_with(|| serde_json::json!(i));
                        }
                        call
                    })
                    .collect()
            });
            let chunk = |delta: Delta, finish_reason: Option<String>| ChatChunk {
                id: response.id.clone(),
                object: "chat.completion.chunk".into(),
                created: response.created,
                model: response.model.clone(),
                provider: response.provider.clone(),
                choices: vec![ChunkChoice {
                    index: choice.index,
                    delta,
                    finish_reason,
                    extra: Default::default(),
                }],
                usage: None,
                extra: Default::default(),
            };
            head.push(StreamEvent::Chunk(chunk(
                Delta {
                    role: Some("assistant".into()),
                    content: message.content,
                    reasoning: message.reasoning,
                    reasoning_details: message.reasoning_details,
                    tool_calls,
                    extra: message.extra,
                },
                None,
            )));
            head.push(StreamEvent::Chunk(chunk(
                Delta::default(),
                choice.finish_reason.or_else(|| Some("stop".into())),
            )));
        }
        if let Some(u) = usage {
            head.push(StreamEvent::Usage(u));
        }
        Reply::Stream {
            head,
            rest: Box::pin(futures_util::stream::empty()),
        }
    }
}

/// One attempt, as recorded in the request log and returned in error metadata.
#[derive(Debug, Clone, Serialize)]
pub struct Attempt {
    pub provider: String,
    pub model: String,
    pub upstream_model: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<ProviderError>,
    pub latency_ms: u64,
}

#[derive(Clone)]
pub struct ProviderClient {
    http: reqwest::Client,
    pub timeouts: Timeouts,
    /// Vertex access tokens, shared by every request of this instance.
    google: Arc<google_auth::GoogleTokens>,
}

impl ProviderClient {
    pub fn new(timeouts: Timeouts) -> Result<Self, reqwest::Error> {
        let http = reqwest::Client::builder()
            .connect_timeout(timeouts.connect)
            .pool_idle_timeout(Duration::from_secs(90))
            .tcp_nodelay(true)
            .user_agent(concat!("infron/", env!("CARGO_PKG_VERSION")))
            .build()?;
        Ok(Self {
            http,
            timeouts,
            google: Arc::default(),
        })
    }

    /// Sends a chat request to one endpoint. For streams, waits for the first content event so a
    /// stream that fails before producing anything counts as a failed attempt.
    pub async fn chat(
        &self,
        endpoint: &Arc<Endpoint>,
        request: &ChatRequest,
    ) -> Result<Reply, ProviderError> {
        if !endpoint.provider.is_configured() {
            tracing::error!(provider = %endpoint.provider.name, env = %endpoint.provider.credential_vars(),
                "provider has no credentials configured");
            return Err(ProviderError {
                provider: endpoint.provider.name.clone(),
                kind: FailureKind::NotConfigured,
                status: None,
                message: "provider is not configured on this gateway".into(),
                retry_after: None,
            });
        }
        let reply = match endpoint.provider.wire {
            Wire::Openai => openai::chat(self, endpoint, request).await?,
            Wire::Anthropic => anthropic::chat(self, endpoint, request).await?,
            Wire::Gemini => gemini::chat(self, endpoint, request).await?,
            Wire::Bedrock => bedrock::chat(self, endpoint, request).await?,
            Wire::Vertex => vertex::chat(self, endpoint, request).await?,
            Wire::Azure => azure::chat(self, endpoint, request).await?,
        };
        let reply = if request.stream {
            reply.into_stream()
        } else {
            reply
        };
        match reply {
            Reply::Stream { head, rest } => {
                self.peek_first_content(&endpoint.provider.name, head, rest)
                    .await
            }
            complete => Ok(complete),
        }
    }

    async fn peek_first_content(
        &self,
        provider: &str,
        mut head: Vec<StreamEvent>,
        mut rest: EventStream,
    ) -> Result<Reply, ProviderError> {
        loop {
            let next = tokio::time::timeout(self.timeouts.first_byte, rest.next()).await;
            match next {
                Err(_) => {
                    return Err(timeout_error(
                        provider,
                        "no content before the first-byte timeout",
                    ))
                }
                Ok(None) => {
                    return Ok(Reply::Stream {
                        head,
                        rest: Box::pin(futures_util::stream::empty()),
                    })
                }
                Ok(Some(Err(e))) => return Err(e),
                Ok(Some(Ok(event))) => {
                    let content = matches!(&event, StreamEvent::Chunk(c) if c.has_content());
                    head.push(event);
                    if content {
                        return Ok(Reply::Stream { head, rest });
                    }
                }
            }
        }
    }

    pub(crate) fn http(&self) -> &reqwest::Client {
        &self.http
    }

    pub(crate) fn google_tokens(&self) -> &google_auth::GoogleTokens {
        &self.google
    }
}

/// Whether `endpoint`'s adapter can translate `request` faithfully, checked without calling
/// anything, so endpoint selection can skip an endpoint whose wire cannot honour a part or a
/// parameter. `Err` names the field, as the 400 the adapter itself would answer with.
pub fn check_translatable(endpoint: &Endpoint, request: &ChatRequest) -> Result<(), String> {
    match endpoint.provider.wire {
        Wire::Openai => Ok(()),
        Wire::Anthropic => anthropic::prepare(endpoint, request).map(drop),
        Wire::Gemini => gemini::prepare(endpoint, request).map(drop),
        Wire::Bedrock => bedrock::prepare(endpoint, request).map(drop),
        Wire::Vertex => vertex::check(endpoint, request),
        Wire::Azure => Ok(()),
    }
}

pub(crate) fn timeout_error(provider: &str, what: &str) -> ProviderError {
    ProviderError {
        provider: provider.to_string(),
        kind: FailureKind::Timeout,
        status: None,
        message: format!("provider timed out: {what}"),
        retry_after: None,
    }
}

/// Maps an HTTP error status and the provider's message to a failure. `message` is the
/// provider's own text; it is shown to clients only for request errors, after redaction.
pub(crate) fn status_error(
    endpoint: &Endpoint,
    status: u16,
    message: &str,
    retry_after: Option<u64>,
) -> ProviderError {
    let provider = endpoint.provider.name.clone();
    let lower = message.to_ascii_lowercase();
    let (kind, shown) = match status {
        401 | 403 => {
            tracing::error!(provider = %provider, status, "provider rejected the gateway's credentials; check {}", endpoint.provider.api_key_env);
            (
                FailureKind::ProviderAuth,
                "provider rejected the gateway's credentials".to_string(),
            )
        }
        408 => (FailureKind::Timeout, "provider timed out".to_string()),
        429 => (
            FailureKind::RateLimited,
            "provider is rate limiting requests".to_string(),
        ),
        400 | 413 | 422
            if lower.contains("context length")
                || lower.contains("context_length")
                || lower.contains("maximum context")
                || lower.contains("too many tokens")
                || lower.contains("prompt is too long")
                || lower.contains("input is too long")
                || lower.contains("exceeds the maximum number of tokens") =>
        {
            (FailureKind::ContextLength, redact(endpoint, message))
        }
        400..=499 => (FailureKind::InvalidRequest, redact(endpoint, message)),
        _ => (
            FailureKind::Unavailable,
            format!("provider returned HTTP {status}"),
        ),
    };
    ProviderError {
        provider,
        kind,
        status: Some(status),
        message: shown,
        retry_after,
    }
}

/// Removes anything of ours a provider might echo back, and bounds the length.
pub(crate) fn redact(endpoint: &Endpoint, message: &str) -> String {
    use secrecy::ExposeSecret;
    let mut m = message.to_string();
    if let Some(key) = &endpoint.provider.api_key {
        let k = key.expose_secret();
        if k.len() >= 4 {
            m = m.replace(k, "[redacted]");
        }
    }
    m = m.replace(&endpoint.provider.base_url, "[provider]");
    // Keys partially echoed ("sk-abc...xyz") are dropped wholesale.
    let m: String = m
        .split(' ')
        .map(|w| {
            // OpenAI-style keys, Google API keys and OAuth access tokens, AWS access key ids.
            let secret_like = ["sk-", "key-", "AIza", "ya29.", "AKIA", "ASIA"];
            if secret_like.iter().any(|p| w.starts_with(p)) {
                "[redacted]"
            } else {
                w
            }
        })
        .collect::<Vec<_>>()
        .join(" ");
    m.chars().take(500).collect()
}

pub(crate) fn transport_error(provider: &str, e: &reqwest::Error) -> ProviderError {
    let kind = if e.is_timeout() {
        FailureKind::Timeout
    } else {
        FailureKind::Connect
    };
    ProviderError {
        provider: provider.to_string(),
        kind,
        status: None,
        message: if e.is_timeout() {
            "provider timed out".into()
        } else {
            "could not reach provider".into()
        },
        retry_after: None,
    }
}
