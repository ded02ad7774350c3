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
    let response = send_raw(client, endpoint, request).await?;
    if response.status().is_success() {
        return Ok(response);
    }
    Err(read_error(client, response)
        .await
        .into_failure(endpoint, error_status))
}

/// Sends a prepared request under the first-byte timeout and returns the response whatever
/// its status.
pub(crate) async fn send_raw(
    client: &ProviderClient,
    endpoint: &Endpoint,
    request: reqwest::RequestBuilder,
) -> Result<reqwest::Response, ProviderError> {
    let provider = endpoint.provider.name.as_str();
    match tokio::time::timeout(client.timeouts.first_byte, request.send()).await {
        Err(_) => Err(timeout_error(provider, "no response headers")),
        Ok(Err(e)) => Err(transport_error(provider, &e)),
        Ok(Ok(r)) => Ok(r),
    }
}

/// An error response, read: its status, `Retry-After` and JSON body (`Null` if not JSON).
pub(crate) struct ErrorReply {
    pub status: u16,
    pub retry_after: Option<u64>,
    pub body: Value,
}

pub(crate) async fn read_error(client: &ProviderClient, response: reqwest::Response) -> ErrorReply {
    let status = response.status().as_u16();
    let header_retry = response
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse().ok());
    let text = tokio::time::timeout(client.timeouts.idle, response.text())
        .await
        .ok()
        .and_then(Result::ok)
        .unwrap_or_default();
    let body: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
    ErrorReply {
        status,
        retry_after: header_retry.or_else(|| google_retry_delay(&body)),
        body,
    }
}

impl ErrorReply {
    /// The failure this reply stands for, classified by its (possibly reclassified) status.
    pub(crate) fn into_failure(
        self,
        endpoint: &Endpoint,
        error_status: fn(u16, &Value) -> u16,
    ) -> ProviderError {
        let status = error_status(self.status, &self.body);
        status_error(
            endpoint,
            status,
            &error_message(&self.body),
            self.retry_after,
        )
    }
}

/// Whether a 2xx answer to a request is to be read as a stream: the client asked for one and
/// the provider did not answer with a whole JSON body instead. Some upstreams (a LiteLLM proxy
/// in front of Anthropic, for one) answer `stream: true` with `application/json`; that answer
/// is parsed like a non-stream one and relayed to the client as a stream
/// (`Reply::into_stream`).
pub(crate) fn streams(requested: bool, response: &reqwest::Response) -> bool {
    requested && !is_json(response)
}

fn is_json(response: &reqwest::Response) -> bool {
    response
        .headers()
        .get(reqwest::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|essence| essence.trim().eq_ignore_ascii_case("application/json"))
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

/// RFC 3986 percent-encoding of one URL path segment: everything but the unreserved
/// characters (`A-Z a-z 0-9 - . _ ~`) is encoded, so a model id with `:` or `/` stays one
/// segment.
pub(crate) fn encode_segment(segment: &str) -> String {
    let mut out = String::with_capacity(segment.len());
    for b in segment.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
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

/// A response that did not parse. The parser's detail is not logged: serde quotes the
/// offending value, which may be generated text (no prompt or completion text in the logs).
pub(crate) fn bad_response(provider: &str, detail: &str) -> ProviderError {
    tracing::warn!(
        provider,
        detail_bytes = detail.len(),
        "provider response did not parse"
    );
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

/// How a wire cuts a response body into frames: SSE events, or AWS event-stream messages.
pub trait Framing: Send + 'static {
    type Frame: Send;
    /// The complete frames in `bytes` (and what came before); `Err` if the body is malformed.
    fn feed(&mut self, bytes: &[u8]) -> Result<Vec<Self::Frame>, String>;
}

impl Framing for SseDecoder {
    type Frame = SseEvent;
    fn feed(&mut self, bytes: &[u8]) -> Result<Vec<SseEvent>, String> {
        Ok(SseDecoder::feed(self, bytes))
    }
}

/// What a wire needs to turn its stream frames into OpenAI-shaped stream events.
pub trait StreamTranslator: Send + 'static {
    type Frame;
    /// One frame to zero or more stream events; an `Err` ends the stream.
    fn event(&mut self, frame: &Self::Frame) -> Vec<Result<StreamEvent, ProviderError>>;
    /// Whether the wire's terminal event has been seen (nothing more is read after it).
    fn finished(&self) -> bool;
    /// Called when the body ends: the closing events, or an error if the stream was cut short.
    fn end(&mut self) -> Result<Vec<StreamEvent>, ProviderError>;
}

/// Drives `translator` over an SSE response body, enforcing the idle timeout between reads.
pub(crate) fn event_stream<T: StreamTranslator<Frame = SseEvent>>(
    provider: String,
    response: reqwest::Response,
    idle: Duration,
    translator: T,
) -> EventStream {
    framed_stream(provider, response, idle, SseDecoder::new(), translator)
}

/// Drives `translator` over the frames `framing` cuts from the response body, enforcing the
/// idle timeout between reads. A malformed frame ends the stream as broken.
pub(crate) fn framed_stream<F: Framing, T: StreamTranslator<Frame = F::Frame>>(
    provider: String,
    response: reqwest::Response,
    idle: Duration,
    framing: F,
    translator: T,
) -> EventStream {
    struct State<F, T> {
        bytes: std::pin::Pin<
            Box<dyn futures_util::Stream<Item = reqwest::Result<bytes::Bytes>> + Send>,
        >,
        decoder: F,
        translator: T,
        pending: VecDeque<Result<StreamEvent, ProviderError>>,
        done: bool,
        provider: String,
    }
    let state = State {
        bytes: Box::pin(response.bytes_stream()),
        decoder: framing,
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
                        let frames = match st.decoder.feed(&chunk) {
                            Ok(frames) => frames,
                            Err(detail) => {
                                // The decoder's detail may quote the frame: not logged.
                                tracing::warn!(provider = %st.provider, detail_bytes = detail.len(), "malformed stream frame");
                                st.done = true;
                                let e =
                                    broken(&st.provider, "provider sent a malformed stream frame");
                                return Some((Err(e), st));
                            }
                        };
                        for event in frames {
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
pub fn translate_sse<T: StreamTranslator<Frame = SseEvent>>(
    translator: T,
    body: &[u8],
) -> Vec<Result<StreamEvent, ProviderError>> {
    translate_frames(SseDecoder::new(), translator, body)
}

/// Runs a translator over a complete body held in memory, cut by `framing`.
pub fn translate_frames<F: Framing, T: StreamTranslator<Frame = F::Frame>>(
    mut framing: F,
    mut translator: T,
    body: &[u8],
) -> Vec<Result<StreamEvent, ProviderError>> {
    let mut out = Vec::new();
    let frames = match framing.feed(body) {
        Ok(frames) => frames,
        Err(_) => {
            out.push(Err(broken(
                "test",
                "provider sent a malformed stream frame",
            )));
            return out;
        }
    };
    for event in frames {
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
