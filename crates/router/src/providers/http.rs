//! HTTP plumbing shared by the Anthropic, Gemini and embeddings adapters: sending a request
//! under the first-byte timeout, turning an error status into a sanitized failure, reading a
//! JSON body under the idle timeout, and driving a per-wire SSE translator over a byte stream.

use std::collections::VecDeque;
use std::time::Duration;

use futures_util::StreamExt;
use serde_json::Value;

use super::{
    status_error, timeout_error, transport_error, EventStream, FailureKind, ProviderClient,
    ProviderError, StreamEvent,
};
use crate::catalog::Endpoint;
use crate::sse::{SseDecoder, SseEvent};

/// Sends a prepared request and returns the response if its status is 2xx. `error_status`
/// lets a wire reclassify an error body (Gemini reports a bad key as 400) before mapping.
pub(crate) async fn send(
    client: &ProviderClient,
    endpoint: &Endpoint,
    request: reqwest::RequestBuilder,
    error_status: fn(u16, &Value) -> u16,
) -> Result<reqwest::Response, ProviderError> {
    let provider = endpoint.provider.name.as_str();
    let response = match tokio::time::timeout(client.timeouts.first_byte, request.send()).await {
        Err(_) => return Err(timeout_error(provider, "no response headers")),
        Ok(Err(e)) => return Err(transport_error(provider, &e)),
        Ok(Ok(r)) => r,
    };
    let status = response.status().as_u16();
    if (200..300).contains(&status) {
        return Ok(response);
    }
    let header_retry = response
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse().ok());
    let body = tokio::time::timeout(client.timeouts.idle, response.text())
        .await
        .ok()
        .and_then(Result::ok)
        .unwrap_or_default();
    let parsed: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
    let retry_after = header_retry.or_else(|| google_retry_delay(&parsed));
    let status = error_status(status, &parsed);
    Err(status_error(
        endpoint,
        status,
        &error_message(&parsed),
        retry_after,
    ))
}

/// Reads a whole JSON body under the idle timeout.
pub(crate) async fn json_body(
    client: &ProviderClient,
    provider: &str,
    response: reqwest::Response,
) -> Result<Value, ProviderError> {
    let body = match tokio::time::timeout(client.timeouts.idle, response.bytes()).await {
        Err(_) => return Err(timeout_error(provider, "response body")),
        Ok(Err(e)) => return Err(transport_error(provider, &e)),
        Ok(Ok(b)) => b,
    };
    serde_json::from_slice(&body).map_err(|e| bad_response(provider, &e.to_string()))
}

/// The provider's own error text: `error.message` in Anthropic's, Gemini's and OpenAI's bodies.
pub(crate) fn error_message(body: &Value) -> String {
    body.pointer("/error/message")
        .or_else(|| body.get("message"))
        .or_else(|| body.get("error"))
        .and_then(Value::as_str)
        .map(str::to_string)
        .unwrap_or_else(|| "provider returned an error".into())
}

/// Google's `RetryInfo` detail (`"retryDelay": "30s"`), used when no Retry-After header came.
fn google_retry_delay(body: &Value) -> Option<u64> {
    body.pointer("/error/details")?
        .as_array()?
        .iter()
        .find_map(|d| d.get("retryDelay").and_then(Value::as_str))
        .and_then(|s| s.trim_end_matches('s').parse::<f64>().ok())
        .map(|secs| secs.ceil() as u64)
}

pub(crate) fn bad_response(provider: &str, detail: &str) -> ProviderError {
    tracing::warn!(provider, detail, "provider response did not parse");
    ProviderError {
        provider: provider.to_string(),
        kind: FailureKind::BadResponse,
        status: None,
        message: "provider returned a malformed response".into(),
        retry_after: None,
    }
}

pub(crate) fn broken(provider: &str, what: &str) -> ProviderError {
    ProviderError {
        provider: provider.to_string(),
        kind: FailureKind::StreamBroken,
        status: None,
        message: what.to_string(),
        retry_after: None,
    }
}

/// A request the adapter cannot translate faithfully: answered as a 400 naming the field,
/// never sent upstream.
pub(crate) fn untranslatable(endpoint: &Endpoint, message: String) -> ProviderError {
    ProviderError {
        provider: endpoint.provider.name.clone(),
        kind: FailureKind::InvalidRequest,
        status: None,
        message,
        retry_after: None,
    }
}

/// A failure reported inside a stream, classified like the HTTP status it stands for.
pub(crate) fn in_stream_error(provider: &str, kind: FailureKind, what: &str) -> ProviderError {
    ProviderError {
        provider: provider.to_string(),
        kind,
        status: None,
        message: format!("provider reported an error mid-stream: {what}"),
        retry_after: None,
    }
}

/// What a wire needs to turn its SSE events into OpenAI-shaped stream events.
pub trait StreamTranslator: Send + 'static {
    /// One SSE event to zero or more stream events; an `Err` ends the stream.
    fn event(&mut self, event: &SseEvent) -> Vec<Result<StreamEvent, ProviderError>>;
    /// Whether the wire's terminal event has been seen (nothing more is read after it).
    fn finished(&self) -> bool;
    /// Called when the body ends: the closing events, or an error if the stream was cut short.
    fn end(&mut self) -> Result<Vec<StreamEvent>, ProviderError>;
}

/// Drives `translator` over the response body, enforcing the idle timeout between reads.
pub(crate) fn event_stream<T: StreamTranslator>(
    provider: String,
    response: reqwest::Response,
    idle: Duration,
    translator: T,
) -> EventStream {
    struct State<T> {
        bytes: std::pin::Pin<
            Box<dyn futures_util::Stream<Item = reqwest::Result<bytes::Bytes>> + Send>,
        >,
        decoder: SseDecoder,
        translator: T,
        pending: VecDeque<Result<StreamEvent, ProviderError>>,
        done: bool,
        provider: String,
    }
    let state = State {
        bytes: Box::pin(response.bytes_stream()),
        decoder: SseDecoder::new(),
        translator,
        pending: VecDeque::new(),
        done: false,
        provider,
    };
    Box::pin(futures_util::stream::unfold(
        state,
        move |mut st| async move {
            loop {
                if let Some(item) = st.pending.pop_front() {
                    if item.is_err() {
                        st.done = true;
                        st.pending.clear();
                    }
                    return Some((item, st));
                }
                if st.done {
                    return None;
                }
                match tokio::time::timeout(idle, st.bytes.next()).await {
                    Err(_) => {
                        st.done = true;
                        return Some((Err(timeout_error(&st.provider, "stream went idle")), st));
                    }
                    Ok(Some(Err(_))) => {
                        st.done = true;
                        let e = broken(&st.provider, "connection lost mid-stream");
                        return Some((Err(e), st));
                    }
                    Ok(None) => {
                        st.done = true;
                        match st.translator.end() {
                            Ok(events) => st.pending.extend(events.into_iter().map(Ok)),
                            Err(e) => st.pending.push_back(Err(e)),
                        }
                    }
                    Ok(Some(Ok(chunk))) => {
                        for event in st.decoder.feed(&chunk) {
                            st.pending.extend(st.translator.event(&event));
                            if st.translator.finished() {
                                st.done = true;
                                if let Ok(events) = st.translator.end() {
                                    st.pending.extend(events.into_iter().map(Ok));
                                }
                                break;
                            }
                        }
                    }
                }
            }
        },
    ))
}

/// Runs a translator over a complete SSE body held in memory (for tests and fixtures).
pub fn translate_sse<T: StreamTranslator>(
    mut translator: T,
    body: &[u8],
) -> Vec<Result<StreamEvent, ProviderError>> {
    let mut out = Vec::new();
    let mut decoder = SseDecoder::new();
    for event in decoder.feed(body) {
        let events = translator.event(&event);
        let failed = events.iter().any(Result::is_err);
        out.extend(events);
        if failed {
            return out;
        }
        if translator.finished() {
            break;
        }
    }
    match translator.end() {
        Ok(events) => out.extend(events.into_iter().map(Ok)),
        Err(e) => out.push(Err(e)),
    }
    out
}
