//! Azure OpenAI: `POST {base}/openai/deployments/{deployment}/chat/completions?api-version=V`
//! with the key in the `api-key` header. The body and the answers are OpenAI's; what differs:
//!
//! - The catalog's `upstream_model` is the deployment name (operators name deployments; the
//!   shipped catalog assumes deployments named after the models) and `api_version` the
//!   provider's `api-version`. Embeddings go to `.../embeddings` the same way.
//! - Content filtering. A filtered completion carries `finish_reason: "content_filter"` or a
//!   `content_filter_results` category with `filtered: true`; either becomes
//!   `finish_reason: "content_filter"` and the annotations are dropped (`openai::content_filter`).
//!   A filtered prompt is answered by Azure with HTTP 400 and `error.code: "content_filter"`;
//!   the gateway answers it as a completion with no content, `finish_reason: "content_filter"`
//!   and zero usage (Azure bills nothing for it), not as the client's error.

use std::sync::Arc;

use infron_billing::Usage;
use secrecy::ExposeSecret;
use serde_json::{Map, Value};

use super::http::{self, encode_segment, ErrorReply};
use super::translate::chunk;
use super::{openai, ProviderClient, ProviderError, Reply, StreamEvent};
use crate::catalog::Endpoint;
use crate::types::{ChatRequest, ChatResponse, Choice, Delta, ResponseMessage};

/// `{base}/openai/deployments/{deployment}/{operation}?api-version={version}`.
pub(crate) fn url(endpoint: &Endpoint, operation: &str) -> String {
    let base = endpoint.provider.base_url.trim_end_matches('/');
    let base = base.strip_suffix("/openai").unwrap_or(base);
    format!(
        "{base}/openai/deployments/{}/{operation}?api-version={}",
        encode_segment(&endpoint.upstream_model),
        encode_segment(endpoint.provider.api_version.as_deref().unwrap_or_default())
    )
}

pub(crate) fn api_key(endpoint: &Endpoint) -> String {
    endpoint
        .provider
        .api_key
        .as_ref()
        .map(|k| k.expose_secret().to_string())
        .unwrap_or_default()
}

pub(super) async fn chat(
    client: &ProviderClient,
    endpoint: &Arc<Endpoint>,
    request: &ChatRequest,
) -> Result<Reply, ProviderError> {
    let provider = endpoint.provider.name.as_str();
    let builder = client
        .http()
        .post(url(endpoint, "chat/completions"))
        .header("api-key", api_key(endpoint))
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .body(openai::request_body(endpoint, request));
    let response = http::send_raw(client, endpoint, builder).await?;
    if !response.status().is_success() {
        let reply = http::read_error(client, response).await;
        if prompt_filtered(&reply) {
            tracing::info!(provider, "Azure content filter refused the prompt");
            return Ok(filtered(endpoint, request.stream));
        }
        return Err(reply.into_failure(endpoint, |status, _| status));
    }
    openai::answer(client, provider, request.stream, response).await
}

/// Azure's answer to a prompt its content filter refused: 400 with `error.code` `content_filter`
/// (and `innererror.code` `ResponsibleAIPolicyViolation`).
fn prompt_filtered(reply: &ErrorReply) -> bool {
    reply.status == 400
        && reply.body.pointer("/error/code").and_then(Value::as_str) == Some("content_filter")
}

/// A completion with no content, stopped by the content filter, that costs nothing.
fn filtered(endpoint: &Endpoint, stream: bool) -> Reply {
    let finish = Some("content_filter".to_string());
    if stream {
        let delta = Delta {
            role: Some("assistant".into()),
            content: Some(String::new()),
            ..Default::default()
        };
        let head = vec![
            StreamEvent::Chunk(chunk("", &endpoint.upstream_model, delta, finish)),
            StreamEvent::Usage(Usage::default()),
        ];
        return Reply::Stream {
            head,
            rest: Box::pin(futures_util::stream::empty()),
        };
    }
    let response = ChatResponse {
        id: String::new(),
        object: "chat.completion".into(),
        created: 0,
        model: endpoint.upstream_model.clone(),
        provider: None,
        choices: vec![Choice {
            index: 0,
            message: ResponseMessage {
                role: "assistant".into(),
                content: Some(String::new()),
                reasoning: None,
                reasoning_details: None,
                tool_calls: None,
                extra: Map::new(),
            },
            finish_reason: finish,
            extra: Map::new(),
        }],
        usage: None,
        extra: Map::new(),
    };
    Reply::Complete {
        response,
        usage: Some(Usage::default()),
    }
}
