//! Request routing, authentication, and the common answer pipeline
//! (latency → faults before headers → status errors → body / stream).

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use hyper::header::{HeaderValue, CACHE_CONTROL, CONTENT_TYPE, RETRY_AFTER};
use hyper::{Response, StatusCode};
use serde_json::Value;

use crate::behaviour::{parse_directive, Behaviour, Fault};
use crate::ojson::J;
use crate::server::{
    self, ConnCtl, Ev, EvKind, MockBody, Outcome, Shared, StreamFault, StreamPlan,
};
use crate::{anthropic, errors, gemini, openai, openai_extra, util, RecordedRequest};

/// Which wire format a route speaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Provider {
    OpenAi,
    Anthropic,
    Gemini,
    Bedrock,
}

/// Who hosts the route: the provider itself, or a cloud serving its format
/// (Vertex AI for Gemini and Anthropic, Azure for OpenAI) with its own URLs
/// and authentication.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dialect {
    Native,
    Vertex,
    Azure,
}

/// A successful answer, before faults are applied.
pub(crate) enum Built {
    Json(J),
    Stream {
        content_type: &'static str,
        events: Vec<Ev>,
        error_event: Bytes,
    },
}

/// Everything a handler needs about one request.
pub(crate) struct Ctx {
    pub req: RecordedRequest,
    pub body_is_json: bool,
    /// The body as received (SigV4 signs its hash; the token endpoint is a form).
    pub raw: Bytes,
    pub dialect: Dialect,
    /// The model named by the URL rather than the body (Vertex, Azure deployments).
    pub model_override: Option<String>,
    pub shared: Arc<Shared>,
    pub ctl: Arc<ConnCtl>,
}

pub(crate) async fn route(ctx: Ctx) -> Outcome {
    let path = ctx.path().to_string();
    let method = ctx.req.method.clone();
    match (method.as_str(), path.as_str()) {
        ("POST", "/v1/chat/completions") => openai::chat(ctx).await,
        ("POST", "/v1/completions") => openai_extra::completions(ctx).await,
        ("POST", "/v1/embeddings") => openai_extra::embeddings(ctx).await,
        ("GET", "/v1/models") => {
            if ctx.header("anthropic-version").is_some() {
                anthropic::models(&ctx)
            } else {
                openai_extra::models(&ctx)
            }
        }
        ("POST", "/v1/messages") => anthropic::messages(ctx).await,
        ("POST", "/v1/messages/count_tokens") => anthropic::count_tokens(&ctx),
        ("POST", "/token") => crate::oauth::token(&ctx),
        ("POST", p) if p.starts_with("/model/") => crate::bedrock::route(ctx).await,
        ("POST", p) if p.starts_with("/v1/projects/") => crate::vertex::route(ctx).await,
        ("POST", p) if p.starts_with("/openai/deployments/") => crate::azure::route(ctx).await,
        (m, p) => {
            let gemini_rest = p
                .strip_prefix("/v1beta/models/")
                .or_else(|| p.strip_prefix("/v1/models/").filter(|r| r.contains(':')));
            match gemini_rest {
                Some(rest) if m == "POST" => {
                    let rest = rest.to_string();
                    gemini::route(ctx, &rest).await
                }
                _ => {
                    let provider = guess_provider(p, &ctx);
                    let status = if gemini_rest.is_some() || known_path(p) {
                        405
                    } else {
                        404
                    };
                    let msg = format!("Unknown route {m} {p} (mock provider).");
                    ctx.error(provider, status, &msg)
                }
            }
        }
    }
}

fn known_path(p: &str) -> bool {
    matches!(
        p,
        "/v1/chat/completions"
            | "/v1/completions"
            | "/v1/embeddings"
            | "/v1/models"
            | "/v1/messages"
    )
}

fn guess_provider(path: &str, ctx: &Ctx) -> Provider {
    if path.starts_with("/v1beta") {
        Provider::Gemini
    } else if path.starts_with("/v1/messages") || ctx.header("anthropic-version").is_some() {
        Provider::Anthropic
    } else {
        Provider::OpenAi
    }
}

impl Ctx {
    /// Path without the query string.
    pub fn path(&self) -> &str {
        self.req.path.split('?').next().unwrap_or("/")
    }

    /// Header value (names are lower-case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.req.headers.get(name).map(String::as_str)
    }

    /// Percent-decoded query parameter.
    pub fn query(&self, name: &str) -> Option<String> {
        let query = self.req.path.split_once('?')?.1;
        query.split('&').find_map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            (percent_decode(k) == name).then(|| percent_decode(v))
        })
    }

    pub fn body(&self) -> &Value {
        &self.req.body
    }

    /// `Some(rejection)` when an expected key is configured and the request
    /// does not carry it in this provider's auth header.
    pub fn check_auth(&self, provider: Provider) -> Option<Outcome> {
        match self.dialect {
            Dialect::Vertex => return crate::oauth::check_bearer(self, provider),
            Dialect::Azure => return crate::azure::check_key(self),
            Dialect::Native => {}
        }
        if provider == Provider::Bedrock {
            return crate::sigv4::check(self);
        }
        let expected = self.shared.config.expected_api_key.as_deref()?;
        let ok = match provider {
            Provider::OpenAi => self
                .header("authorization")
                .is_some_and(|v| v == format!("Bearer {expected}")),
            Provider::Anthropic => self.header("x-api-key") == Some(expected),
            Provider::Gemini => {
                self.header("x-goog-api-key") == Some(expected)
                    || self.query("key").as_deref() == Some(expected)
            }
            Provider::Bedrock => true,
        };
        if ok {
            return None;
        }
        let message = match provider {
            Provider::OpenAi if self.header("authorization").is_none() => {
                "You didn't provide an API key. You need to provide your API key in an Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY).".to_string()
            }
            Provider::OpenAi => "Incorrect API key provided.".to_string(),
            Provider::Anthropic => "invalid x-api-key".to_string(),
            Provider::Gemini => "API key not valid. Please pass a valid API key.".to_string(),
            Provider::Bedrock => String::new(),
        };
        Some(self.error(provider, 401, &message))
    }

    /// 400 when the body is not JSON.
    pub fn check_json(&self, provider: Provider) -> Option<Outcome> {
        if self.body_is_json && self.req.body.is_object() {
            return None;
        }
        let message = match provider {
            Provider::OpenAi => "We could not parse the JSON body of your request. (HINT: This likely means you aren't using your HTTP library correctly. The OpenAI API expects a JSON payload, but what was sent was not valid JSON.)",
            Provider::Anthropic => "There was an issue with the request body: expected a JSON object.",
            Provider::Gemini => "Invalid JSON payload received.",
            Provider::Bedrock => "Malformed input request, please reformat your input and try again.",
        };
        Some(self.error(provider, 400, message))
    }

    /// Behaviour for `model`, with a directive taken from `directive_text`.
    /// A malformed directive yields a 400 in the provider's shape.
    pub fn behaviour(
        &self,
        provider: Provider,
        model: &str,
        directive_text: Option<&str>,
    ) -> Result<Behaviour, Outcome> {
        let directive = match directive_text.map(parse_directive) {
            Some(Err(reason)) => return Err(self.error(provider, 400, &reason)),
            Some(Ok(d)) => d,
            None => None,
        };
        Ok(self.shared.resolve(model, directive))
    }

    /// An error response with no behaviour-specific headers.
    pub fn error(&self, provider: Provider, status: u16, message: &str) -> Outcome {
        self.error_with(provider, status, message, None)
    }

    fn error_with(
        &self,
        provider: Provider,
        status: u16,
        message: &str,
        retry_after: Option<u64>,
    ) -> Outcome {
        let request_id = util::random_id("req_");
        let body = errors::body(provider, status, message, retry_after, &request_id);
        self.json(provider, status, &body, retry_after, &request_id)
    }

    /// A JSON response.
    pub fn json(
        &self,
        provider: Provider,
        status: u16,
        body: &J,
        retry_after: Option<u64>,
        request_id: &str,
    ) -> Outcome {
        let bytes = Bytes::from(body.to_string());
        let content_type = match provider {
            Provider::Gemini => "application/json; charset=UTF-8",
            _ => "application/json",
        };
        let resp = response(
            provider,
            status,
            content_type,
            retry_after,
            request_id,
            MockBody::Full(Some(bytes)),
        );
        Outcome::Respond(Box::new(resp))
    }

    /// The common pipeline: latency, faults before headers, status error,
    /// then the body built by `build` (with stream faults applied).
    pub async fn answer(
        &self,
        provider: Provider,
        b: &Behaviour,
        build: impl FnOnce() -> Built,
    ) -> Outcome {
        let cancel = self.shared.cancel.clone();
        if let Some(ms) = b.latency_ms.filter(|ms| *ms > 0) {
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_millis(ms)) => {}
                _ = cancel.cancelled() => return Outcome::Reset,
            }
        }
        match b.fault {
            Some(Fault::ResetBeforeHeaders) => return Outcome::Reset,
            Some(Fault::StallBeforeHeaders) => {
                cancel.cancelled().await;
                return Outcome::Reset;
            }
            _ => {}
        }
        if let Some(status) = b.error_status() {
            let message = b
                .error_message
                .clone()
                .unwrap_or_else(|| errors::default_message(provider, status));
            return self.error_with(provider, status, &message, b.retry_after);
        }
        let stream_fault = match b.fault {
            Some(Fault::ResetAfterChunks) => Some(StreamFault::Reset),
            Some(Fault::StallAfterChunks) => Some(StreamFault::Stall),
            Some(Fault::ErrorAfterChunks) => Some(StreamFault::Error),
            Some(Fault::CorruptAfterChunks) => Some(StreamFault::Corrupt),
            _ => None,
        };
        let after = b.after_chunks.unwrap_or(0);
        let request_id = util::random_id("req_");
        match build() {
            Built::Json(value) => match stream_fault {
                None => self.json(provider, 200, &value, b.retry_after, &request_id),
                Some(StreamFault::Error) => {
                    let status = errors::in_stream_status(provider);
                    let message = b
                        .error_message
                        .clone()
                        .unwrap_or_else(|| errors::default_message(provider, status));
                    self.error_with(provider, status, &message, b.retry_after)
                }
                Some(fault) => {
                    // Non-streaming body cut in two halves sent chunked; the
                    // fault fires after the first half.
                    let text = value.to_string();
                    let mid = text.len() / 2;
                    let (first, second) = text.split_at(mid);
                    let plan = StreamPlan {
                        events: vec![
                            Ev::new(EvKind::Content, first.to_string()),
                            Ev::new(EvKind::Content, second.to_string()),
                        ],
                        error_event: Bytes::new(),
                        corrupt_event: Bytes::from_static(b"\x00not json"),
                        chunk_delay: Duration::ZERO,
                        fault: Some((fault, 1)),
                    };
                    let body = server::drive(plan, self.ctl.clone(), cancel);
                    Outcome::Respond(Box::new(response(
                        provider,
                        200,
                        "application/json",
                        b.retry_after,
                        &request_id,
                        body,
                    )))
                }
            },
            Built::Stream {
                content_type,
                events,
                error_event,
            } => {
                let corrupt_event = if content_type == crate::eventstream::CONTENT_TYPE {
                    crate::eventstream::corrupt()
                } else {
                    Bytes::from_static(b"data: {\"this is\": not json\n\n")
                };
                let plan = StreamPlan {
                    events,
                    error_event,
                    corrupt_event,
                    chunk_delay: Duration::from_millis(b.chunk_delay_ms.unwrap_or(0)),
                    fault: stream_fault.map(|f| (f, after)),
                };
                let body = server::drive(plan, self.ctl.clone(), cancel);
                Outcome::Respond(Box::new(response(
                    provider,
                    200,
                    content_type,
                    b.retry_after,
                    &request_id,
                    body,
                )))
            }
        }
    }
}

fn response(
    provider: Provider,
    status: u16,
    content_type: &'static str,
    retry_after: Option<u64>,
    request_id: &str,
    body: MockBody,
) -> Response<MockBody> {
    let mut resp = Response::new(body);
    *resp.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let headers = resp.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    if content_type.starts_with("text/event-stream") {
        headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    }
    if let Some(secs) = retry_after {
        headers.insert(RETRY_AFTER, HeaderValue::from(secs));
    }
    let id_header = match provider {
        Provider::OpenAi => Some("x-request-id"),
        Provider::Anthropic => Some("request-id"),
        Provider::Gemini => None,
        Provider::Bedrock => Some("x-amzn-requestid"),
    };
    if provider == Provider::Bedrock && status >= 400 {
        let kind = format!(
            "{}:http://internal.amazon.com/coral/com.amazon.bedrock/",
            errors::bedrock_exception(status)
        );
        if let Ok(v) = HeaderValue::from_str(&kind) {
            headers.insert("x-amzn-errortype", v);
        }
    }
    if let (Some(name), Ok(value)) = (id_header, HeaderValue::from_str(request_id)) {
        headers.insert(name, value);
    }
    resp
}

pub(crate) fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).ok();
                match hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                    Some(v) => {
                        out.push(v);
                        i += 2;
                    }
                    None => out.push(b'%'),
                }
            }
            other => out.push(other),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Extracts `model` (a string) from an OpenAI / Anthropic body, or a 400.
/// Routes that name the model in the URL set `model_override` instead.
pub(crate) fn require_model(ctx: &Ctx, provider: Provider) -> Result<String, Outcome> {
    if let Some(m) = &ctx.model_override {
        return Ok(m.clone());
    }
    match ctx.body().get("model").and_then(Value::as_str) {
        Some(m) if !m.is_empty() => Ok(m.to_string()),
        _ => Err(ctx.error(provider, 400, "model: Field required")),
    }
}

/// Whether `stream: true` was requested.
pub(crate) fn wants_stream(body: &Value) -> bool {
    body.get("stream").and_then(Value::as_bool).unwrap_or(false)
}

/// An SSE `data:` event with a JSON payload, `\n\n`-terminated.
pub(crate) fn sse_data(value: &J) -> String {
    format!("data: {value}\n\n")
}

/// An SSE event with an `event:` line, `\n\n`-terminated.
pub(crate) fn sse_event(name: &str, value: &J) -> String {
    format!("event: {name}\ndata: {value}\n\n")
}
