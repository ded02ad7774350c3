//! Bedrock's ConverseStream events (AWS event-stream messages with `:event-type`
//! messageStart, contentBlockStart, contentBlockDelta, contentBlockStop, messageStop, metadata,
//! or `:message-type: exception`) translated to OpenAI chunks. Stateful: a tool call's id and
//! name arrive once, in contentBlockStart, and its input in later `toolUse.input` fragments;
//! text and reasoning blocks have no start event, so a block's kind is learned from its first
//! delta. The usage comes last, in `metadata`.

use serde_json::{json, Value};

use super::bedrock::{finish_reason, parse_usage, REASONING_FORMAT};
use super::event_stream::Message;
use super::http::{bad_response, broken, in_stream_error, StreamTranslator};
use super::translate::chunk;
use super::{FailureKind, ProviderError, StreamEvent};
use crate::types::Delta;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Block {
    Tool(u32),
    Json,
}

pub struct BedrockStream {
    provider: String,
    json_tool: Option<String>,
    exclude_reasoning: bool,
    blocks: Vec<(u64, Block)>,
    tools: u32,
    stopped: bool,
    finished: bool,
    usage: Option<Value>,
}

impl BedrockStream {
    pub fn new(provider: &str, json_tool: Option<String>, exclude_reasoning: bool) -> Self {
        BedrockStream {
            provider: provider.to_string(),
            json_tool,
            exclude_reasoning,
            blocks: Vec::new(),
            tools: 0,
            stopped: false,
            finished: false,
            usage: None,
        }
    }

    fn emit(&self, delta: Delta, finish: Option<String>) -> Result<StreamEvent, ProviderError> {
        // Converse streams carry no id or model; the gateway sets both on every chunk.
        Ok(StreamEvent::Chunk(chunk("", "", delta, finish)))
    }

    fn block(&self, index: u64) -> Option<Block> {
        self.blocks
            .iter()
            .find(|(i, _)| *i == index)
            .map(|(_, b)| *b)
    }

    fn start(&mut self, v: &Value) -> Vec<Result<StreamEvent, ProviderError>> {
        let index = v
            .get("contentBlockIndex")
            .and_then(Value::as_u64)
            .unwrap_or(0);
        let Some(tool) = v.pointer("/start/toolUse") else {
            return Vec::new();
        };
        let name = tool.get("name").and_then(Value::as_str).unwrap_or_default();
        if self.json_tool.as_deref() == Some(name) {
            self.blocks.push((index, Block::Json));
            return Vec::new();
        }
        let position = self.tools;
        self.tools += 1;
        self.blocks.push((index, Block::Tool(position)));
        let call = json!({"index": position, "id": tool.get("toolUseId"), "type": "function",
            "function": {"name": name, "arguments": ""}});
        vec![self.emit(
            Delta {
                tool_calls: Some(vec![call]),
                ..Default::default()
            },
            None,
        )]
    }

    fn delta(&mut self, v: &Value) -> Vec<Result<StreamEvent, ProviderError>> {
        let index = v
            .get("contentBlockIndex")
            .and_then(Value::as_u64)
            .unwrap_or(0);
        let Some(d) = v.get("delta") else {
            return Vec::new();
        };
        let delta = if let Some(text) = d.get("text").and_then(Value::as_str) {
            Delta {
                content: Some(text.to_string()),
                ..Default::default()
            }
        } else if let Some(input) = d.pointer("/toolUse/input").and_then(Value::as_str) {
            match self.block(index) {
                Some(Block::Json) => Delta {
                    content: Some(input.to_string()),
                    ..Default::default()
                },
                Some(Block::Tool(position)) if !input.is_empty() => Delta {
                    tool_calls: Some(vec![
                        json!({"index": position, "function": {"arguments": input}}),
                    ]),
                    ..Default::default()
                },
                _ => return Vec::new(),
            }
        } else if let Some(r) = d.get("reasoningContent") {
            if self.exclude_reasoning {
                return Vec::new();
            }
            let detail = |fields: Value| {
                let mut d =
                    json!({"type": "reasoning.text", "format": REASONING_FORMAT, "index": index});
                if let (Value::Object(d), Value::Object(f)) = (&mut d, fields) {
                    d.extend(f);
                }
                d
            };
            if let Some(t) = r.get("text").and_then(Value::as_str) {
                Delta {
                    reasoning: Some(t.to_string()),
                    reasoning_details: Some(vec![detail(json!({"text": t}))]),
                    ..Default::default()
                }
            } else if let Some(sig) = r.get("signature").and_then(Value::as_str) {
                Delta {
                    reasoning_details: Some(vec![detail(json!({"signature": sig}))]),
                    ..Default::default()
                }
            } else if let Some(data) = r.get("redactedContent") {
                Delta {
                    reasoning_details: Some(vec![json!({"type": "reasoning.encrypted",
                        "data": data, "format": REASONING_FORMAT, "index": index})]),
                    ..Default::default()
                }
            } else {
                return Vec::new();
            }
        } else {
            return Vec::new(); // citations and future delta kinds carry nothing for us
        };
        vec![self.emit(delta, None)]
    }

    fn exception(&self, m: &Message) -> ProviderError {
        let kind_name = m.header(":exception-type").unwrap_or("exception");
        let kind = match kind_name {
            "throttlingException" => FailureKind::RateLimited,
            "internalServerException"
            | "serviceUnavailableException"
            | "modelStreamErrorException" => FailureKind::Unavailable,
            "modelTimeoutException" => FailureKind::Timeout,
            _ => FailureKind::StreamBroken,
        };
        // The exception's name, not its free text: it may echo anything.
        in_stream_error(&self.provider, kind, kind_name)
    }
}

impl StreamTranslator for BedrockStream {
    type Frame = Message;

    fn event(&mut self, m: &Message) -> Vec<Result<StreamEvent, ProviderError>> {
        match m.header(":message-type") {
            Some("event") | None => {}
            Some(_) => return vec![Err(self.exception(m))],
        }
        let v: Value = match serde_json::from_slice(&m.payload) {
            Ok(v) => v,
            Err(e) => return vec![Err(bad_response(&self.provider, &e.to_string()))],
        };
        match m.header(":event-type").unwrap_or_default() {
            "messageStart" => vec![self.emit(
                Delta {
                    role: Some("assistant".into()),
                    content: Some(String::new()),
                    ..Default::default()
                },
                None,
            )],
            "contentBlockStart" => self.start(&v),
            "contentBlockDelta" => self.delta(&v),
            "messageStop" => {
                self.stopped = true;
                let stop = v
                    .get("stopReason")
                    .and_then(Value::as_str)
                    .unwrap_or("end_turn");
                let finish = finish_reason(stop, self.json_tool.is_some());
                vec![self.emit(Delta::default(), Some(finish))]
            }
            "metadata" => {
                self.usage = v.get("usage").cloned();
                self.finished = true;
                Vec::new()
            }
            _ => Vec::new(), // contentBlockStop, and event types added later
        }
    }

    fn finished(&self) -> bool {
        self.finished
    }

    fn end(&mut self) -> Result<Vec<StreamEvent>, ProviderError> {
        if !self.stopped {
            return Err(broken(&self.provider, "stream ended before messageStop"));
        }
        Ok(self
            .usage
            .as_ref()
            .map(|u| StreamEvent::Usage(parse_usage(u)))
            .into_iter()
            .collect())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::providers::event_stream::{encode, EventStreamDecoder};
    use crate::providers::http::translate_frames;

    fn event(kind: &str, payload: Value) -> Vec<u8> {
        encode(
            &[
                (":event-type", kind),
                (":content-type", "application/json"),
                (":message-type", "event"),
            ],
            payload.to_string().as_bytes(),
        )
    }

    #[test]
    fn text_tool_calls_and_usage() {
        let mut body = Vec::new();
        for (kind, payload) in [
            ("messageStart", json!({"role": "assistant", "p": "abc"})),
            (
                "contentBlockDelta",
                json!({"contentBlockIndex": 0, "delta": {"text": "Hi"}}),
            ),
            ("contentBlockStop", json!({"contentBlockIndex": 0})),
            (
                "contentBlockStart",
                json!({"contentBlockIndex": 1,
                "start": {"toolUse": {"toolUseId": "tooluse_1", "name": "f"}}}),
            ),
            (
                "contentBlockDelta",
                json!({"contentBlockIndex": 1,
                "delta": {"toolUse": {"input": "{\"a\":"}}}),
            ),
            (
                "contentBlockDelta",
                json!({"contentBlockIndex": 1,
                "delta": {"toolUse": {"input": "1}"}}}),
            ),
            ("messageStop", json!({"stopReason": "tool_use"})),
            (
                "metadata",
                json!({"usage": {"inputTokens": 10, "outputTokens": 5,
                "totalTokens": 15, "cacheReadInputTokens": 2}, "metrics": {"latencyMs": 9}}),
            ),
        ] {
            body.extend(event(kind, payload));
        }
        let events: Vec<StreamEvent> = translate_frames(
            EventStreamDecoder::new(),
            BedrockStream::new("b", None, false),
            &body,
        )
        .into_iter()
        .map(Result::unwrap)
        .collect();
        let chunks: Vec<_> = events
            .iter()
            .filter_map(|e| match e {
                StreamEvent::Chunk(c) => Some(c),
                _ => None,
            })
            .collect();
        assert_eq!(chunks[1].choices[0].delta.content.as_deref(), Some("Hi"));
        let first_call = &chunks[2].choices[0].delta.tool_calls.as_ref().unwrap()[0];
        assert_eq!(first_call["id"], "tooluse_1");
        assert_eq!(first_call["function"]["name"], "f");
        assert_eq!(
            chunks.last().unwrap().choices[0].finish_reason.as_deref(),
            Some("tool_calls")
        );
        let Some(StreamEvent::Usage(u)) = events.last() else {
            panic!("usage last: {events:?}")
        };
        assert_eq!(
            (u.prompt_tokens, u.cached_tokens, u.completion_tokens),
            (12, 2, 5)
        );
    }

    #[test]
    fn exceptions_and_cut_streams_fail() {
        let mut body = event("messageStart", json!({"role": "assistant"}));
        body.extend(encode(
            &[
                (":message-type", "exception"),
                (":exception-type", "throttlingException"),
            ],
            br#"{"message":"slow down"}"#,
        ));
        let out = translate_frames(
            EventStreamDecoder::new(),
            BedrockStream::new("b", None, false),
            &body,
        );
        let err = out.last().unwrap().as_ref().unwrap_err();
        assert_eq!(err.kind, FailureKind::RateLimited);
        assert!(!err.message.contains("slow down"));

        let cut = event("messageStart", json!({"role": "assistant"}));
        let out = translate_frames(
            EventStreamDecoder::new(),
            BedrockStream::new("b", None, false),
            &cut,
        );
        assert_eq!(
            out.last().unwrap().as_ref().unwrap_err().kind,
            FailureKind::StreamBroken
        );
    }
}
