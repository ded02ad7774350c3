//! Gemini's `streamGenerateContent?alt=sse` stream (one `GenerateContentResponse` per `data:`
//! event, cumulative `usageMetadata`, no terminator event) translated to OpenAI chunks. A
//! function call arrives whole in one part; it gets a generated id and is sent as one
//! tool-call delta carrying its complete arguments.

use serde_json::{json, Value};

use super::gemini::{finish_reason, parse_usage, read_part, PartOut};
use super::http::{bad_response, broken, in_stream_error, StreamTranslator};
use super::translate::chunk;
use super::{FailureKind, ProviderError, StreamEvent};
use crate::sse::SseEvent;
use crate::types::Delta;

pub struct GeminiStream {
    provider: String,
    exclude_reasoning: bool,
    id: String,
    model: String,
    started: bool,
    calls: usize,
    details: usize,
    usage: Option<Value>,
    finished: bool,
}

impl GeminiStream {
    pub fn new(provider: &str, exclude_reasoning: bool) -> Self {
        GeminiStream {
            provider: provider.to_string(),
            exclude_reasoning,
            id: String::new(),
            model: String::new(),
            started: false,
            calls: 0,
            details: 0,
            usage: None,
            finished: false,
        }
    }

    fn emit(&self, delta: Delta, finish: Option<String>) -> Result<StreamEvent, ProviderError> {
        Ok(StreamEvent::Chunk(chunk(
            &self.id,
            &self.model,
            delta,
            finish,
        )))
    }

    fn error(&self, error: &Value) -> ProviderError {
        let code = error.get("code").and_then(Value::as_u64).unwrap_or(0);
        let status = error
            .get("status")
            .and_then(Value::as_str)
            .unwrap_or("UNKNOWN");
        let kind = match (code, status) {
            (429, _) | (_, "RESOURCE_EXHAUSTED") => FailureKind::RateLimited,
            (500 | 503, _) | (_, "UNAVAILABLE" | "INTERNAL") => FailureKind::Unavailable,
            (504, _) | (_, "DEADLINE_EXCEEDED") => FailureKind::Timeout,
            _ => FailureKind::StreamBroken,
        };
        in_stream_error(&self.provider, kind, status)
    }
}

impl StreamTranslator for GeminiStream {
    type Frame = SseEvent;

    fn event(&mut self, event: &SseEvent) -> Vec<Result<StreamEvent, ProviderError>> {
        let v: Value = match serde_json::from_str(&event.data) {
            Ok(v) => v,
            Err(e) => return vec![Err(bad_response(&self.provider, &e.to_string()))],
        };
        if let Some(error) = v.get("error") {
            return vec![Err(self.error(error))];
        }
        let mut out = Vec::new();
        if !self.started {
            self.started = true;
            let str_of = |k: &str| {
                v.get(k)
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_string()
            };
            self.id = str_of("responseId");
            self.model = str_of("modelVersion");
            let role = Delta {
                role: Some("assistant".into()),
                content: Some(String::new()),
                ..Default::default()
            };
            out.push(self.emit(role, None));
        }
        if let Some(u) = v.get("usageMetadata") {
            self.usage = Some(u.clone());
        }
        let candidate = v.pointer("/candidates/0").cloned().unwrap_or(Value::Null);
        for part in candidate
            .pointer("/content/parts")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let (part_out, signature) = read_part(part, self.calls);
            let mut delta = match part_out {
                PartOut::Text(t) if !t.is_empty() => Delta {
                    content: Some(t),
                    ..Default::default()
                },
                PartOut::Thought(t) if !t.is_empty() && !self.exclude_reasoning => Delta {
                    reasoning: Some(t),
                    ..Default::default()
                },
                PartOut::Call(call) => {
                    self.calls += 1;
                    Delta {
                        tool_calls: Some(vec![call]),
                        ..Default::default()
                    }
                }
                _ => Delta::default(),
            };
            if let Some(mut d) = signature {
                d["index"] = json!(self.details);
                self.details += 1;
                delta.reasoning_details = Some(vec![d]);
            }
            let empty = delta.content.is_none()
                && delta.reasoning.is_none()
                && delta.tool_calls.is_none()
                && delta.reasoning_details.is_none();
            if !empty {
                out.push(self.emit(delta, None));
            }
        }
        let finish = candidate
            .get("finishReason")
            .and_then(Value::as_str)
            .map(|r| finish_reason(r, self.calls > 0))
            .or_else(|| {
                v.pointer("/promptFeedback/blockReason")
                    .map(|_| "content_filter".to_string())
            });
        if let Some(f) = finish {
            self.finished = true;
            out.push(self.emit(Delta::default(), Some(f)));
        }
        out
    }

    fn finished(&self) -> bool {
        self.finished
    }

    fn end(&mut self) -> Result<Vec<StreamEvent>, ProviderError> {
        if !self.finished {
            return Err(broken(&self.provider, "stream ended before a finishReason"));
        }
        Ok(self
            .usage
            .as_ref()
            .map(|u| StreamEvent::Usage(parse_usage(u)))
            .into_iter()
            .collect())
    }
}
