//! The OpenAI-compatible wire format (OpenAI, DeepSeek, Groq, Together, Fireworks, Mistral, xAI,
//! DeepInfra, ...). The internal model already is this format, so translation is limited to the
//! catalog's per-provider quirks and to normalizing usage and reasoning fields.

use std::sync::Arc;

use infron_billing::Usage;
use serde::ser::{SerializeMap, Serializer};
use serde::Serialize;
use serde_json::{Map, Value};

use super::http::{self, StreamTranslator};
use super::{ProviderClient, ProviderError, Reply, StreamEvent};
use crate::catalog::{Endpoint, MaxTokensField};
use crate::providers::FailureKind;
use crate::sse::SseEvent;
use crate::types::{ChatChunk, ChatRequest, ChatResponse};

/// The JSON body sent upstream: the client's request with the upstream model, the provider's
/// max-tokens field, usage always asked for when streaming, and without the parameters the
/// provider rejects. Serialized straight from the borrowed request (no clone, no
/// intermediate `Value`): this runs for every request.
pub struct UpstreamBody<'a> {
    pub endpoint: &'a Endpoint,
    pub request: &'a ChatRequest,
}

impl Serialize for UpstreamBody<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let r = self.request;
        let unsupported = &self.endpoint.provider.unsupported_parameters;
        let mut map = s.serialize_map(None)?;
        macro_rules! field {
            ($name:expr, $value:expr) => {
                if !unsupported.contains($name) {
                    map.serialize_entry($name, $value)?;
                }
            };
        }
        macro_rules! optional {
            ($name:expr, $value:expr) => {
                if let Some(v) = $value {
                    field!($name, v);
                }
            };
        }
        field!("model", &self.endpoint.upstream_model);
        field!("messages", &r.messages);
        if r.stream {
            field!("stream", &true);
            // Always ask for usage so a stream is never billed from estimates when it need not be.
            let mut opts = match &r.stream_options {
                Some(Value::Object(m)) => m.clone(),
                _ => Map::new(),
            };
            opts.insert("include_usage".into(), Value::Bool(true));
            field!("stream_options", &opts);
        }
        if let Some(max) = r.max_output() {
            match self.endpoint.provider.max_tokens_field {
                MaxTokensField::MaxTokens => field!("max_tokens", &max),
                MaxTokensField::MaxCompletionTokens => field!("max_completion_tokens", &max),
            }
        }
        optional!("temperature", &r.temperature);
        optional!("top_p", &r.top_p);
        optional!("stop", &r.stop);
        optional!("seed", &r.seed);
        optional!("tools", &r.tools);
        optional!("tool_choice", &r.tool_choice);
        optional!("response_format", &r.response_format);
        optional!("reasoning", &r.reasoning);
        optional!("user", &r.user);
        for (k, v) in &r.extra {
            field!(k.as_str(), v);
        }
        map.end()
    }
}

/// The JSON body sent upstream, as bytes.
pub fn request_body(endpoint: &Endpoint, request: &ChatRequest) -> Vec<u8> {
    serde_json::to_vec(&UpstreamBody { endpoint, request }).unwrap_or_default()
}

pub(super) async fn chat(
    client: &ProviderClient,
    endpoint: &Arc<Endpoint>,
    request: &ChatRequest,
) -> Result<Reply, ProviderError> {
    let provider = endpoint.provider.name.as_str();
    let url = match &endpoint.provider.chat_url {
        Some(u) => u.clone(),
        None => reqwest::Url::parse(&format!("{}/chat/completions", endpoint.provider.base_url))
            .map_err(|e| ProviderError {
                provider: provider.to_string(),
                kind: FailureKind::NotConfigured,
                status: None,
                message: format!("base_url does not make a URL: {e}"),
                retry_after: None,
            })?,
    };
    let mut builder = client
        .http()
        .post(url)
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .body(request_body(endpoint, request));
    if let Some(auth) = &endpoint.provider.bearer {
        builder = builder.header(reqwest::header::AUTHORIZATION, auth.clone());
    }
    let response = http::send(client, endpoint, builder, |status, _| status).await?;
    answer(client, provider, request.stream, response).await
}

/// A 2xx response of the OpenAI shape, as a reply: the event stream, or the parsed answer.
pub(crate) async fn answer(
    client: &ProviderClient,
    provider: &str,
    stream: bool,
    response: reqwest::Response,
) -> Result<Reply, ProviderError> {
    if http::streams(stream, &response) {
        return Ok(Reply::Stream {
            head: Vec::new(),
            rest: http::event_stream(
                provider.to_string(),
                response,
                client.timeouts.idle,
                OpenAiStream::new(provider),
            ),
        });
    }
    let body = http::json_body(client, provider, response).await?;
    let mut parsed: ChatResponse =
        serde_json::from_value(body).map_err(|e| http::bad_response(provider, &e.to_string()))?;
    let usage = parsed.usage.as_ref().map(parse_usage);
    normalize_response(&mut parsed);
    Ok(Reply::Complete {
        response: parsed,
        usage,
    })
}

/// Provider-specific fields of a complete answer mapped to OpenAI's: reasoning text, and
/// Azure's content-filter annotations.
pub(crate) fn normalize_response(parsed: &mut ChatResponse) {
    parsed.extra.remove("prompt_filter_results");
    for choice in &mut parsed.choices {
        normalize_reasoning(&mut choice.message.reasoning, &mut choice.message.extra);
        content_filter(&mut choice.finish_reason, &mut choice.extra);
    }
}

/// Azure OpenAI annotates each choice with `content_filter_results` (per category:
/// `filtered`, `severity` or `detected`). A category that filtered the output makes the finish
/// reason `content_filter`, whatever the provider said; the annotations themselves are
/// Azure's and are not passed on.
pub(crate) fn content_filter(finish_reason: &mut Option<String>, extra: &mut Map<String, Value>) {
    let Some(results) = extra.remove("content_filter_results") else {
        return;
    };
    let filtered = results.as_object().is_some_and(|categories| {
        categories
            .values()
            .any(|c| c.get("filtered").and_then(Value::as_bool) == Some(true))
    });
    if filtered {
        *finish_reason = Some("content_filter".into());
    }
}

/// The OpenAI stream is already in the internal shape: each `data:` chunk is parsed, its usage
/// split off, and `data: [DONE]` ends it. A body that ends before `[DONE]` is a broken stream.
pub struct OpenAiStream {
    provider: String,
    done: bool,
}

impl OpenAiStream {
    pub fn new(provider: &str) -> Self {
        OpenAiStream {
            provider: provider.to_string(),
            done: false,
        }
    }
}

impl StreamTranslator for OpenAiStream {
    type Frame = SseEvent;

    fn event(&mut self, event: &SseEvent) -> Vec<Result<StreamEvent, ProviderError>> {
        if event.data == "[DONE]" {
            self.done = true;
            return Vec::new();
        }
        translate_chunk(&self.provider, &event.data)
    }

    fn finished(&self) -> bool {
        self.done
    }

    fn end(&mut self) -> Result<Vec<StreamEvent>, ProviderError> {
        if self.done {
            Ok(Vec::new())
        } else {
            Err(http::broken(&self.provider, "stream ended before [DONE]"))
        }
    }
}

/// One `data:` payload to zero or more events.
fn translate_chunk(provider: &str, data: &str) -> Vec<Result<StreamEvent, ProviderError>> {
    let value: Value = match serde_json::from_str(data) {
        Ok(v) => v,
        Err(e) => return vec![Err(http::bad_response(provider, &e.to_string()))],
    };
    if value.get("error").is_some() {
        return vec![Err(http::in_stream_error(
            provider,
            FailureKind::StreamBroken,
            &http::error_message(&value),
        ))];
    }
    let mut chunk: ChatChunk = match serde_json::from_value(value) {
        Ok(c) => c,
        Err(e) => return vec![Err(http::bad_response(provider, &e.to_string()))],
    };
    let mut out = Vec::new();
    if let Some(u) = chunk.usage.take() {
        if !u.is_null() {
            out.push(Ok(StreamEvent::Usage(parse_usage(&u))));
        }
    }
    // Azure opens its streams with a chunk of prompt annotations and no choices.
    chunk.extra.remove("prompt_filter_results");
    for c in &mut chunk.choices {
        normalize_reasoning(&mut c.delta.reasoning, &mut c.delta.extra);
        content_filter(&mut c.finish_reason, &mut c.extra);
    }
    if !chunk.choices.is_empty() {
        out.insert(0, Ok(StreamEvent::Chunk(chunk)));
    }
    out
}

/// DeepSeek and others put reasoning text in `reasoning_content`; OpenRouter clients read `reasoning`.
fn normalize_reasoning(reasoning: &mut Option<String>, extra: &mut Map<String, Value>) {
    if let Some(Value::String(r)) = extra.remove("reasoning_content") {
        if reasoning.is_none() {
            *reasoning = Some(r);
        }
    }
}

/// OpenAI's usage object (and DeepSeek's cache fields) to normalized usage.
pub fn parse_usage(u: &Value) -> Usage {
    let n = |v: Option<&Value>| v.and_then(Value::as_u64).unwrap_or(0);
    let cached = n(u.pointer("/prompt_tokens_details/cached_tokens"))
        .max(n(u.get("prompt_cache_hit_tokens")));
    Usage {
        prompt_tokens: n(u.get("prompt_tokens")),
        completion_tokens: n(u.get("completion_tokens")),
        cached_tokens: cached,
        cache_write_tokens: n(u.pointer("/prompt_tokens_details/cache_write_tokens")),
        reasoning_tokens: n(u.pointer("/completion_tokens_details/reasoning_tokens")),
        images: 0,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn usage_maps_cached_and_reasoning() {
        let u = serde_json::json!({"prompt_tokens": 100, "completion_tokens": 50, "total_tokens": 150,
            "prompt_tokens_details": {"cached_tokens": 40}, "completion_tokens_details": {"reasoning_tokens": 20}});
        let n = parse_usage(&u);
        assert_eq!(
            (
                n.prompt_tokens,
                n.completion_tokens,
                n.cached_tokens,
                n.reasoning_tokens
            ),
            (100, 50, 40, 20)
        );
        let ds = serde_json::json!({"prompt_tokens": 10, "completion_tokens": 5, "prompt_cache_hit_tokens": 7});
        assert_eq!(parse_usage(&ds).cached_tokens, 7);
    }

    #[test]
    fn azure_content_filter_results_become_the_finish_reason() {
        let events = translate_chunk(
            "p",
            r#"{"id":"x","choices":[{"index":0,"delta":{"content":"a"},"finish_reason":null,
                "content_filter_results":{"hate":{"filtered":false,"severity":"safe"}}}]}"#,
        );
        let Ok(StreamEvent::Chunk(c)) = &events[0] else {
            panic!("{events:?}")
        };
        assert_eq!(c.choices[0].finish_reason, None);
        assert!(!c.choices[0].extra.contains_key("content_filter_results"));
        let events = translate_chunk(
            "p",
            r#"{"id":"x","choices":[{"index":0,"delta":{},"finish_reason":"stop",
                "content_filter_results":{"violence":{"filtered":true,"severity":"high"}}}]}"#,
        );
        let Ok(StreamEvent::Chunk(c)) = &events[0] else {
            panic!("{events:?}")
        };
        assert_eq!(
            c.choices[0].finish_reason.as_deref(),
            Some("content_filter")
        );
        // The opening chunk of prompt annotations carries nothing for the client.
        assert!(translate_chunk(
            "p",
            r#"{"id":"","choices":[],"prompt_filter_results":[{"prompt_index":0,"content_filter_results":{}}]}"#
        )
        .is_empty());
    }

    #[test]
    fn usage_chunk_is_split_from_content() {
        let events = translate_chunk(
            "p",
            r#"{"id":"x","object":"chat.completion.chunk","created":1,"model":"m","choices":[],"usage":{"prompt_tokens":3,"completion_tokens":2,"total_tokens":5}}"#,
        );
        assert_eq!(events.len(), 1);
        assert!(matches!(&events[0], Ok(StreamEvent::Usage(u)) if u.prompt_tokens == 3));
        let events = translate_chunk(
            "p",
            r#"{"id":"x","choices":[{"index":0,"delta":{"reasoning_content":"hm"}}]}"#,
        );
        assert!(
            matches!(&events[0], Ok(StreamEvent::Chunk(c)) if c.choices[0].delta.reasoning.as_deref() == Some("hm"))
        );
    }
}
