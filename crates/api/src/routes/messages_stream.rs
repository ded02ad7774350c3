//! Anthropic's stream event sequence for `/v1/messages`, from the chat chunks every provider
//! adapter produces.

use bytes::Bytes;
use infron_billing::Usage;
use infron_router::types::ChatChunk;
use serde_json::{json, Value};

use super::messages::{stop_reason, usage_json};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Block {
    Thinking,
    Text,
    /// A tool call, by its index in the chat stream.
    Tool(u64),
}

/// Turns a stream of chat chunks into Anthropic's event sequence: `message_start` and a `ping`
/// first, then each content block opened, extended and closed in turn, then `message_delta`
/// (stop reason, usage) and `message_stop`.
pub struct AnthropicStream {
    id: String,
    model: String,
    input_estimate: u64,
    started: bool,
    open: Option<Block>,
    next_index: u64,
    finish: Option<String>,
}

fn event(name: &str, data: &Value, out: &mut Vec<u8>) {
    out.extend_from_slice(b"event: ");
    out.extend_from_slice(name.as_bytes());
    out.extend_from_slice(b"\ndata: ");
    out.extend_from_slice(data.to_string().as_bytes());
    out.extend_from_slice(b"\n\n");
}

impl AnthropicStream {
    pub fn new(id: String, model: String, input_estimate: u64) -> Self {
        Self {
            id,
            model,
            input_estimate,
            started: false,
            open: None,
            next_index: 0,
            finish: None,
        }
    }

    fn start(&mut self, out: &mut Vec<u8>) {
        if self.started {
            return;
        }
        self.started = true;
        event(
            "message_start",
            &json!({"type": "message_start", "message": {
                "id": self.id, "type": "message", "role": "assistant", "model": self.model,
                "content": [], "stop_reason": null, "stop_sequence": null,
                "usage": {"input_tokens": self.input_estimate, "output_tokens": 0,
                          "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0},
            }}),
            out,
        );
        event("ping", &json!({"type": "ping"}), out);
    }

    fn close(&mut self, out: &mut Vec<u8>) {
        if self.open.take().is_some() {
            event(
                "content_block_stop",
                &json!({"type": "content_block_stop", "index": self.next_index - 1}),
                out,
            );
        }
    }

    /// Opens `block` unless it is the one open; returns its index.
    fn open(&mut self, block: Block, start: Value, out: &mut Vec<u8>) -> u64 {
        if self.open != Some(block) {
            self.close(out);
            event(
                "content_block_start",
                &json!({"type": "content_block_start", "index": self.next_index, "content_block": start}),
                out,
            );
            self.open = Some(block);
            self.next_index += 1;
        }
        self.next_index - 1
    }

    fn delta(index: u64, delta: Value, out: &mut Vec<u8>) {
        event(
            "content_block_delta",
            &json!({"type": "content_block_delta", "index": index, "delta": delta}),
            out,
        );
    }

    /// The events of one chat chunk (possibly none).
    pub fn chunk(&mut self, chunk: &ChatChunk) -> Option<Bytes> {
        let mut out = Vec::new();
        self.start(&mut out);
        for c in &chunk.choices {
            let d = &c.delta;
            if let Some(r) = d.reasoning.as_deref().filter(|r| !r.is_empty()) {
                let i = self.open(
                    Block::Thinking,
                    json!({"type": "thinking", "thinking": "", "signature": ""}),
                    &mut out,
                );
                Self::delta(
                    i,
                    json!({"type": "thinking_delta", "thinking": r}),
                    &mut out,
                );
            }
            for detail in d.reasoning_details.iter().flatten() {
                if let Some(sig) = detail
                    .get("signature")
                    .and_then(Value::as_str)
                    .filter(|s| !s.is_empty())
                {
                    let i = self.open(
                        Block::Thinking,
                        json!({"type": "thinking", "thinking": "", "signature": ""}),
                        &mut out,
                    );
                    Self::delta(
                        i,
                        json!({"type": "signature_delta", "signature": sig}),
                        &mut out,
                    );
                }
            }
            if let Some(t) = d.content.as_deref().filter(|t| !t.is_empty()) {
                let i = self.open(Block::Text, json!({"type": "text", "text": ""}), &mut out);
                Self::delta(i, json!({"type": "text_delta", "text": t}), &mut out);
            }
            for call in d.tool_calls.iter().flatten() {
                let k = call.get("index").and_then(Value::as_u64).unwrap_or(0);
                let i = self.open(
                    Block::Tool(k),
                    json!({
                        "type": "tool_use",
                        "id": call.get("id").and_then(Value::as_str).unwrap_or_default(),
                        "name": call.pointer("/function/name").and_then(Value::as_str).unwrap_or_default(),
                        "input": {},
                    }),
                    &mut out,
                );
                if let Some(args) = call
                    .pointer("/function/arguments")
                    .and_then(Value::as_str)
                    .filter(|a| !a.is_empty())
                {
                    Self::delta(
                        i,
                        json!({"type": "input_json_delta", "partial_json": args}),
                        &mut out,
                    );
                }
            }
            if let Some(f) = &c.finish_reason {
                self.finish = Some(f.clone());
            }
        }
        (!out.is_empty()).then(|| Bytes::from(out))
    }

    /// The closing events: the open block's stop, `message_delta` with the stop reason and
    /// usage, `message_stop`.
    pub fn finish(&mut self, usage: &Usage) -> Bytes {
        let mut out = Vec::new();
        self.start(&mut out);
        self.close(&mut out);
        let u = usage_json(usage);
        event(
            "message_delta",
            &json!({"type": "message_delta",
                    "delta": {"stop_reason": stop_reason(self.finish.as_deref()), "stop_sequence": null},
                    "usage": u}),
            &mut out,
        );
        event("message_stop", &json!({"type": "message_stop"}), &mut out);
        Bytes::from(out)
    }

    /// A stream that failed after it started: Anthropic's `error` event.
    pub fn error(&mut self, code: u16, message: &str) -> Bytes {
        let mut out = Vec::new();
        self.start(&mut out);
        let kind = match code {
            408 => "timeout_error",
            503 | 502 => "overloaded_error",
            _ => "api_error",
        };
        event(
            "error",
            &json!({"type": "error", "error": {"type": kind, "message": message}}),
            &mut out,
        );
        Bytes::from(out)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn a_stream_opens_and_closes_blocks_in_order() {
        let mut s = AnthropicStream::new("gen-1".into(), "m".into(), 10);
        let chunk = |delta: Value, finish: Option<&str>| -> ChatChunk {
            serde_json::from_value(
                json!({"choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}),
            )
            .unwrap()
        };
        let mut text = String::new();
        for c in [
            chunk(json!({"reasoning": "think"}), None),
            chunk(json!({"content": "Hel"}), None),
            chunk(json!({"content": "lo"}), None),
            chunk(
                json!({"tool_calls": [{"index": 0, "id": "c1", "function": {"name": "f", "arguments": "{\"a\""}}]}),
                None,
            ),
            chunk(
                json!({"tool_calls": [{"index": 0, "function": {"arguments": ":1}"}}]}),
                Some("tool_calls"),
            ),
        ] {
            if let Some(b) = s.chunk(&c) {
                text.push_str(std::str::from_utf8(&b).unwrap());
            }
        }
        text.push_str(
            std::str::from_utf8(&s.finish(&Usage {
                prompt_tokens: 10,
                completion_tokens: 7,
                ..Default::default()
            }))
            .unwrap(),
        );
        let names: Vec<&str> = text
            .lines()
            .filter_map(|l| l.strip_prefix("event: "))
            .collect();
        assert_eq!(
            names,
            vec![
                "message_start",
                "ping",
                "content_block_start",
                "content_block_delta",
                "content_block_stop",
                "content_block_start",
                "content_block_delta",
                "content_block_delta",
                "content_block_stop",
                "content_block_start",
                "content_block_delta",
                "content_block_delta",
                "content_block_stop",
                "message_delta",
                "message_stop",
            ]
        );
        assert!(text.contains("\"stop_reason\":\"tool_use\""));
        assert!(text.contains("\"output_tokens\":7"));
        assert!(text.contains("\"partial_json\":\":1}\""));
    }
}
