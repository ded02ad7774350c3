//! Anthropic's SSE event sequence (message_start, content_block_start/delta/stop,
//! message_delta, message_stop, ping, error) translated to OpenAI chunks. Stateful: a tool
//! call's id and name arrive once, in `content_block_start`, and its arguments in later
//! `input_json_delta` fragments, so the translator remembers what each block index is.

use serde_json::{json, Value};

use super::anthropic::{finish_reason, parse_usage, REASONING_FORMAT};
use super::http::{bad_response, broken, in_stream_error, StreamTranslator};
use super::translate::chunk;
use super::{FailureKind, ProviderError, StreamEvent};
use crate::sse::SseEvent;
use crate::types::Delta;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Block {
    Text,
    Thinking,
    /// A function tool call, with its position in OpenAI's `tool_calls`.
    Tool(u32),
    /// The forced tool carrying a `json_schema` answer: its input is content.
    Json,
    Other,
}

pub struct AnthropicStream {
    provider: String,
    json_tool: Option<String>,
    exclude_reasoning: bool,
    id: String,
    model: String,
    blocks: Vec<(u64, Block)>,
    tools: u32,
    usage: Option<Value>,
    stopped: bool,
}

impl AnthropicStream {
    pub fn new(provider: &str, json_tool: Option<String>, exclude_reasoning: bool) -> Self {
        AnthropicStream {
            provider: provider.to_string(),
            json_tool,
            exclude_reasoning,
            id: String::new(),
            model: String::new(),
            blocks: Vec::new(),
            tools: 0,
            usage: None,
            stopped: false,
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

    fn block(&self, index: u64) -> Block {
        self.blocks
            .iter()
            .find(|(i, _)| *i == index)
            .map_or(Block::Other, |(_, b)| *b)
    }

    /// Usage fields arrive in message_start and (cumulatively) in message_delta; later wins.
    fn merge_usage(&mut self, u: Option<&Value>) {
        let Some(Value::Object(new)) = u else {
            return;
        };
        let mut merged = self
            .usage
            .take()
            .and_then(|v| v.as_object().cloned())
            .unwrap_or_default();
        for (k, v) in new {
            if !v.is_null() {
                merged.insert(k.clone(), v.clone());
            }
        }
        self.usage = Some(Value::Object(merged));
    }

    fn reasoning_detail(&self, index: u64, fields: Value) -> Option<Vec<Value>> {
        let mut d = json!({"type": "reasoning.text", "format": REASONING_FORMAT, "index": index});
        if let (Value::Object(d), Value::Object(f)) = (&mut d, fields) {
            d.extend(f);
        }
        Some(vec![d])
    }

    fn block_start(&mut self, v: &Value) -> Vec<Result<StreamEvent, ProviderError>> {
        let index = v.get("index").and_then(Value::as_u64).unwrap_or(0);
        let cb = v.get("content_block").cloned().unwrap_or(Value::Null);
        let str_of = |k: &str| cb.get(k).and_then(Value::as_str).unwrap_or_default();
        let (block, delta) = match cb.get("type").and_then(Value::as_str) {
            Some("text") => {
                let t = str_of("text");
                let delta = (!t.is_empty()).then(|| Delta {
                    content: Some(t.to_string()),
                    ..Default::default()
                });
                (Block::Text, delta)
            }
            Some("thinking") => {
                let t = str_of("thinking");
                let delta = (!t.is_empty() && !self.exclude_reasoning).then(|| Delta {
                    reasoning: Some(t.to_string()),
                    reasoning_details: self.reasoning_detail(index, json!({"text": t})),
                    ..Default::default()
                });
                (Block::Thinking, delta)
            }
            Some("redacted_thinking") => {
                let delta = (!self.exclude_reasoning).then(|| Delta {
                    reasoning_details: Some(vec![json!({"type": "reasoning.encrypted",
                        "data": cb.get("data"), "format": REASONING_FORMAT, "index": index})]),
                    ..Default::default()
                });
                (Block::Other, delta)
            }
            Some("tool_use") if self.json_tool.as_deref() == Some(str_of("name")) => {
                (Block::Json, None)
            }
            Some("tool_use") => {
                let position = self.tools;
                self.tools += 1;
                let call = json!({"index": position, "id": str_of("id"), "type": "function",
                    "function": {"name": str_of("name"), "arguments": ""}});
                let delta = Delta {
                    tool_calls: Some(vec![call]),
                    ..Default::default()
                };
                (Block::Tool(position), Some(delta))
            }
            _ => (Block::Other, None),
        };
        self.blocks.push((index, block));
        delta.map(|d| self.emit(d, None)).into_iter().collect()
    }

    fn block_delta(&mut self, v: &Value) -> Vec<Result<StreamEvent, ProviderError>> {
        let index = v.get("index").and_then(Value::as_u64).unwrap_or(0);
        let d = v.get("delta").cloned().unwrap_or(Value::Null);
        let str_of = |k: &str| d.get(k).and_then(Value::as_str).unwrap_or_default();
        let delta = match (self.block(index), d.get("type").and_then(Value::as_str)) {
            (Block::Text, Some("text_delta")) => Delta {
                content: Some(str_of("text").to_string()),
                ..Default::default()
            },
            (Block::Thinking, _) if self.exclude_reasoning => return Vec::new(),
            (Block::Thinking, Some("thinking_delta")) => Delta {
                reasoning: Some(str_of("thinking").to_string()),
                reasoning_details: self
                    .reasoning_detail(index, json!({"text": str_of("thinking")})),
                ..Default::default()
            },
            (Block::Thinking, Some("signature_delta")) => Delta {
                reasoning_details: self
                    .reasoning_detail(index, json!({"signature": str_of("signature")})),
                ..Default::default()
            },
            (Block::Tool(position), Some("input_json_delta")) => {
                let fragment = str_of("partial_json");
                if fragment.is_empty() {
                    return Vec::new();
                }
                Delta {
                    tool_calls: Some(vec![
                        json!({"index": position, "function": {"arguments": fragment}}),
                    ]),
                    ..Default::default()
                }
            }
            (Block::Json, Some("input_json_delta")) => Delta {
                content: Some(str_of("partial_json").to_string()),
                ..Default::default()
            },
            _ => return Vec::new(), // citations and future delta types carry nothing for us
        };
        vec![self.emit(delta, None)]
    }
}

impl StreamTranslator for AnthropicStream {
    type Frame = SseEvent;

    fn event(&mut self, event: &SseEvent) -> Vec<Result<StreamEvent, ProviderError>> {
        let v: Value = match serde_json::from_str(&event.data) {
            Ok(v) => v,
            Err(e) => return vec![Err(bad_response(&self.provider, &e.to_string()))],
        };
        let kind = v
            .get("type")
            .and_then(Value::as_str)
            .or(event.event.as_deref())
            .unwrap_or_default();
        match kind {
            "message_start" => {
                let m = v.get("message").cloned().unwrap_or(Value::Null);
                self.id = m
                    .get("id")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .into();
                self.model = m
                    .get("model")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .into();
                self.merge_usage(m.get("usage"));
                let role = Delta {
                    role: Some("assistant".into()),
                    content: Some(String::new()),
                    ..Default::default()
                };
                vec![self.emit(role, None)]
            }
            "content_block_start" => self.block_start(&v),
            "content_block_delta" => self.block_delta(&v),
            "message_delta" => {
                self.merge_usage(v.get("usage"));
                match v.pointer("/delta/stop_reason").and_then(Value::as_str) {
                    Some(stop) => {
                        let finish = finish_reason(stop, self.json_tool.is_some());
                        vec![self.emit(Delta::default(), Some(finish))]
                    }
                    None => Vec::new(),
                }
            }
            "message_stop" => {
                self.stopped = true;
                Vec::new()
            }
            "error" => {
                let kind_name = v
                    .pointer("/error/type")
                    .and_then(Value::as_str)
                    .unwrap_or("error");
                let kind = match kind_name {
                    "overloaded_error" | "api_error" => FailureKind::Unavailable,
                    "rate_limit_error" => FailureKind::RateLimited,
                    "timeout_error" => FailureKind::Timeout,
                    _ => FailureKind::StreamBroken,
                };
                // The type, not the provider's free text: it may echo anything.
                vec![Err(in_stream_error(&self.provider, kind, kind_name))]
            }
            _ => Vec::new(), // ping, content_block_stop, and event types added later
        }
    }

    fn finished(&self) -> bool {
        self.stopped
    }

    fn end(&mut self) -> Result<Vec<StreamEvent>, ProviderError> {
        if !self.stopped {
            return Err(broken(&self.provider, "stream ended before message_stop"));
        }
        Ok(self
            .usage
            .as_ref()
            .map(|u| StreamEvent::Usage(parse_usage(u)))
            .into_iter()
            .collect())
    }
}
