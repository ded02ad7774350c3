//! Google Vertex AI: Gemini and Anthropic models behind one Google Cloud project, called with
//! an OAuth access token from a service-account key (`google_auth`).
//!
//! - URLs: `{base}/v1/projects/{project}/locations/{region}/publishers/{publisher}/models/
//!   {model}:{method}`, where the project is the key's `project_id` and the region the
//!   provider's `region`. Upstream models named `claude-*` are Anthropic's publisher, the rest
//!   Google's.
//! - Gemini: the body, answers and stream are Gemini's (`gemini`), with `:generateContent` and
//!   `:streamGenerateContent?alt=sse`.
//! - Anthropic: `:rawPredict` and `:streamRawPredict` take the Messages body (`anthropic`)
//!   without `model` (the URL names it) and with `anthropic_version: "vertex-2023-10-16"`; the
//!   answers and SSE stream are Anthropic's.
//! - A 401 means the token expired or was revoked: it is dropped and the request is sent once
//!   more with a fresh one. 403 (the account lacks permission) is the operator's to fix.

use std::sync::Arc;

use secrecy::ExposeSecret;
use serde_json::{json, Value};

use super::anthropic_stream::AnthropicStream;
use super::gemini_stream::GeminiStream;
use super::http::{self, encode_segment, untranslatable};
use super::{anthropic, gemini, ProviderClient, ProviderError, Reply};
use crate::catalog::Endpoint;
use crate::types::ChatRequest;

/// The `anthropic_version` Vertex expects in the body.
pub const ANTHROPIC_VERSION: &str = "vertex-2023-10-16";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Publisher {
    Google,
    Anthropic,
}

impl Publisher {
    pub fn of(upstream_model: &str) -> Publisher {
        if upstream_model.starts_with("claude") {
            Publisher::Anthropic
        } else {
            Publisher::Google
        }
    }

    fn path(self) -> &'static str {
        match self {
            Publisher::Google => "google",
            Publisher::Anthropic => "anthropic",
        }
    }
}

/// The request in the publisher's shape.
enum Prepared {
    Gemini(gemini::Prepared),
    Anthropic(anthropic::Prepared),
}

fn prepare(endpoint: &Endpoint, request: &ChatRequest) -> Result<Prepared, String> {
    Ok(match Publisher::of(&endpoint.upstream_model) {
        Publisher::Google => Prepared::Gemini(gemini::prepare(endpoint, request)?),
        Publisher::Anthropic => {
            let mut p = anthropic::prepare(endpoint, request)?;
            if let Value::Object(body) = &mut p.body {
                body.remove("model");
                body.insert("anthropic_version".into(), json!(ANTHROPIC_VERSION));
            }
            Prepared::Anthropic(p)
        }
    })
}

/// Whether the request can be carried, as `providers::check_translatable` asks.
pub fn check(endpoint: &Endpoint, request: &ChatRequest) -> Result<(), String> {
    prepare(endpoint, request).map(drop)
}

pub fn url(endpoint: &Endpoint, project: &str, stream: bool) -> String {
    let publisher = Publisher::of(&endpoint.upstream_model);
    let method = match (publisher, stream) {
        (Publisher::Google, false) => "generateContent",
        (Publisher::Google, true) => "streamGenerateContent?alt=sse",
        (Publisher::Anthropic, false) => "rawPredict",
        (Publisher::Anthropic, true) => "streamRawPredict",
    };
    let base = endpoint.provider.base_url.trim_end_matches('/');
    let base = base.strip_suffix("/v1").unwrap_or(base);
    format!(
        "{base}/v1/projects/{}/locations/{}/publishers/{}/models/{}:{method}",
        encode_segment(project),
        encode_segment(endpoint.provider.region.as_deref().unwrap_or_default()),
        publisher.path(),
        // Vertex writes versions as `model@version`; `@` is a legal path character and stays.
        encode_segment(&endpoint.upstream_model).replace("%40", "@"),
    )
}

pub(super) async fn chat(
    client: &ProviderClient,
    endpoint: &Arc<Endpoint>,
    request: &ChatRequest,
) -> Result<Reply, ProviderError> {
    let provider = endpoint.provider.name.as_str();
    let prepared = prepare(endpoint, request).map_err(|m| untranslatable(endpoint, m))?;
    let body = match &prepared {
        Prepared::Gemini(p) => &p.body,
        Prepared::Anthropic(p) => &p.body,
    };
    let mut retried = false;
    let response = loop {
        let auth = client.google_tokens().authorize(client, endpoint).await?;
        let builder = client
            .http()
            .post(url(endpoint, &auth.account.project_id, request.stream))
            .bearer_auth(auth.token.expose_secret())
            .json(body);
        let response = http::send_raw(client, endpoint, builder).await?;
        if response.status().as_u16() == 401 && !retried {
            tracing::info!(
                provider,
                "Vertex rejected the access token; fetching a new one"
            );
            client.google_tokens().invalidate(provider).await;
            retried = true;
            continue;
        }
        if !response.status().is_success() {
            return Err(http::read_error(client, response)
                .await
                .into_failure(endpoint, gemini::error_status));
        }
        break response;
    };
    match prepared {
        Prepared::Gemini(p) => {
            if http::streams(request.stream, &response) {
                let translator = GeminiStream::new(provider, p.exclude_reasoning);
                return Ok(Reply::Stream {
                    head: Vec::new(),
                    rest: http::event_stream(
                        provider.to_string(),
                        response,
                        client.timeouts.idle,
                        translator,
                    ),
                });
            }
            let body = http::json_body(client, provider, response).await?;
            let (response, usage) =
                gemini::parse_response(&body, &p).map_err(|e| http::bad_response(provider, &e))?;
            Ok(Reply::Complete { response, usage })
        }
        Prepared::Anthropic(p) => {
            if http::streams(request.stream, &response) {
                let translator =
                    AnthropicStream::new(provider, p.json_tool.clone(), p.exclude_reasoning);
                return Ok(Reply::Stream {
                    head: Vec::new(),
                    rest: http::event_stream(
                        provider.to_string(),
                        response,
                        client.timeouts.idle,
                        translator,
                    ),
                });
            }
            let body = http::json_body(client, provider, response).await?;
            let (response, usage) = anthropic::parse_response(&body, &p)
                .map_err(|e| http::bad_response(provider, &e))?;
            Ok(Reply::Complete { response, usage })
        }
    }
}
