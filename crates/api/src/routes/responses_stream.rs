//! The Responses API's stream events for `/v1/responses`, from the chat chunks every provider
//! adapter produces.

use bytes::Bytes;
use infron_billing::Usage;
use infron_router::types::ChatChunk;
use serde_json::{json, Value};

use super::responses::{item_suffix, reasoning_item, status_of, usage_json, Head};

/// The output item being streamed.
enum Open {
    Reasoning {
        text: String,
        details: Vec<Value>,
    },
    Message {
        text: String,
    },
    /// A tool call, by its index in the chat stream.
    Call {
        index: u64,
        call_id: String,
        name: String,
        arguments: String,
    },
}

/// Turns chat chunks into the Responses event sequence: `response.created` and
/// `response.in_progress` first, then each output item added, extended and done in turn, then
/// `response.completed` (or `response.incomplete`) with the whole response and its usage.
pub struct ResponsesStream {
    head: Head,
    sequence: u64,
    started: bool,
    open: Option<(String, Open)>,
    done: Vec<Value>,
    calls: u64,
    finish: Option<String>,
    failed: bool,
}

impl ResponsesStream {
    pub fn new(head: Head) -> Self {
        Self {
            head,
            sequence: 0,
            started: false,
            open: None,
            done: Vec::new(),
            calls: 0,
            finish: None,
            failed: false,
        }
    }

    fn event(&mut self, name: &str, mut data: Value, out: &mut Vec<u8>) {
        data["type"] = json!(name);
        data["sequence_number"] = json!(self.sequence);
        self.sequence += 1;
        out.extend_from_slice(b"event: ");
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(b"\ndata: ");
        out.extend_from_slice(data.to_string().as_bytes());
        out.extend_from_slice(b"\n\n");
    }

    fn snapshot(&self, status: &str, usage: Option<Value>, incomplete: Value) -> Value {
        self.head
            .object(status, self.done.clone(), usage, incomplete)
    }

    fn start(&mut self, out: &mut Vec<u8>) {
        if self.started {
            return;
        }
        self.started = true;
        let r = self.snapshot("in_progress", None, Value::Null);
        self.event("response.created", json!({ "response": r }), out);
        self.event("response.in_progress", json!({ "response": r }), out);
    }

    fn output_index(&self) -> usize {
        self.done.len()
    }

    /// Closes the open item: its `done` events, and it joins the output.
    fn close(&mut self, out: &mut Vec<u8>) {
        let Some((item_id, open)) = self.open.take() else {
            return;
        };
        let output_index = self.output_index();
        let item = match open {
            Open::Reasoning { text, details } => {
                self.event(
                    "response.reasoning_text.done",
                    json!({"item_id": item_id, "output_index": output_index, "content_index": 0, "text": text}),
                    out,
                );
                // Stream fragments of one block merged, so the item carries whole blocks.
                let merged: Vec<Value> =
                    infron_router::providers::translate::merged_reasoning_details(Some(
                        &Value::Array(details),
                    ))
                    .into_iter()
                    .map(Value::Object)
                    .collect();
                reasoning_item(&item_id, &text, &merged)
            }
            Open::Message { text } => {
                let part =
                    json!({"type": "output_text", "text": text, "annotations": [], "logprobs": []});
                self.event(
                    "response.output_text.done",
                    json!({"item_id": item_id, "output_index": output_index, "content_index": 0,
                           "text": text, "logprobs": []}),
                    out,
                );
                self.event(
                    "response.content_part.done",
                    json!({"item_id": item_id, "output_index": output_index, "content_index": 0, "part": part}),
                    out,
                );
                let status = self.item_status();
                json!({"id": item_id, "type": "message", "role": "assistant", "status": status,
                       "content": [part]})
            }
            Open::Call {
                call_id,
                name,
                arguments,
                ..
            } => {
                self.event(
                    "response.function_call_arguments.done",
                    json!({"item_id": item_id, "output_index": output_index,
                           "name": name, "arguments": arguments}),
                    out,
                );
                json!({"id": item_id, "type": "function_call", "status": self.item_status(),
                       "call_id": call_id, "name": name, "arguments": arguments})
            }
        };
        self.event(
            "response.output_item.done",
            json!({"output_index": output_index, "item": item}),
            out,
        );
        self.done.push(item);
    }

    /// A message or call cut short (by the output limit, a filter or a failure) is incomplete.
    fn item_status(&self) -> &'static str {
        if self.failed || matches!(self.finish.as_deref(), Some("length" | "content_filter")) {
            "incomplete"
        } else {
            "completed"
        }
    }

    fn open_reasoning(&mut self, out: &mut Vec<u8>) {
        if matches!(self.open, Some((_, Open::Reasoning { .. }))) {
            return;
        }
        self.close(out);
        let id = format!("rs_{}_{}", item_suffix(&self.head.id), self.output_index());
        self.event(
            "response.output_item.added",
            json!({"output_index": self.output_index(), "item":
                {"id": id, "type": "reasoning", "status": "in_progress", "summary": [], "content": []}}),
            out,
        );
        self.open = Some((
            id,
            Open::Reasoning {
                text: String::new(),
                details: Vec::new(),
            },
        ));
    }

    fn open_message(&mut self, out: &mut Vec<u8>) {
        if matches!(self.open, Some((_, Open::Message { .. }))) {
            return;
        }
        self.close(out);
        let id = format!("msg_{}_{}", item_suffix(&self.head.id), self.output_index());
        let output_index = self.output_index();
        self.event(
            "response.output_item.added",
            json!({"output_index": output_index, "item":
                {"id": id, "type": "message", "status": "in_progress", "role": "assistant", "content": []}}),
            out,
        );
        self.event(
            "response.content_part.added",
            json!({"item_id": id, "output_index": output_index, "content_index": 0,
                   "part": {"type": "output_text", "text": "", "annotations": [], "logprobs": []}}),
            out,
        );
        self.open = Some((
            id,
            Open::Message {
                text: String::new(),
            },
        ));
    }

    /// The events of one chat chunk (possibly none).
    pub fn chunk(&mut self, chunk: &ChatChunk) -> Option<Bytes> {
        let mut out = Vec::new();
        self.start(&mut out);
        for c in &chunk.choices {
            let d = &c.delta;
            if let Some(r) = d.reasoning.as_deref().filter(|r| !r.is_empty()) {
                self.open_reasoning(&mut out);
                let output_index = self.output_index();
                if let Some((id, Open::Reasoning { text, .. })) = &mut self.open {
                    text.push_str(r);
                    let id = id.clone();
                    self.event(
                        "response.reasoning_text.delta",
                        json!({"item_id": id, "output_index": output_index, "content_index": 0, "delta": r}),
                        &mut out,
                    );
                }
            }
            let details: Vec<Value> = d.reasoning_details.iter().flatten().cloned().collect();
            if !details.is_empty() {
                self.open_reasoning(&mut out);
                if let Some((_, Open::Reasoning { details: mine, .. })) = &mut self.open {
                    mine.extend(details);
                }
            }
            if let Some(t) = d.content.as_deref().filter(|t| !t.is_empty()) {
                self.open_message(&mut out);
                let output_index = self.output_index();
                if let Some((id, Open::Message { text })) = &mut self.open {
                    text.push_str(t);
                    let id = id.clone();
                    self.event(
                        "response.output_text.delta",
                        json!({"item_id": id, "output_index": output_index, "content_index": 0,
                               "delta": t, "logprobs": []}),
                        &mut out,
                    );
                }
            }
            for call in d.tool_calls.iter().flatten() {
                let k = call.get("index").and_then(Value::as_u64).unwrap_or(0);
                if !matches!(&self.open, Some((_, Open::Call { index, .. })) if *index == k) {
                    self.close(&mut out);
                    let id = format!("fc_{}_{}", item_suffix(&self.head.id), self.calls);
                    self.calls += 1;
                    let call_id = call
                        .get("id")
                        .and_then(Value::as_str)
                        .unwrap_or_default()
                        .to_string();
                    let name = call
                        .pointer("/function/name")
                        .and_then(Value::as_str)
                        .unwrap_or_default()
                        .to_string();
                    self.event(
                        "response.output_item.added",
                        json!({"output_index": self.output_index(), "item":
                            {"id": id, "type": "function_call", "status": "in_progress",
                             "call_id": call_id, "name": name, "arguments": ""}}),
                        &mut out,
                    );
                    self.open = Some((
                        id,
                        Open::Call {
                            index: k,
                            call_id,
                            name,
                            arguments: String::new(),
                        },
                    ));
                }
                if let Some(args) = call
                    .pointer("/function/arguments")
                    .and_then(Value::as_str)
                    .filter(|a| !a.is_empty())
                {
                    let output_index = self.output_index();
                    if let Some((id, Open::Call { arguments, .. })) = &mut self.open {
                        arguments.push_str(args);
                        let id = id.clone();
                        self.event(
                            "response.function_call_arguments.delta",
                            json!({"item_id": id, "output_index": output_index, "delta": args}),
                            &mut out,
                        );
                    }
                }
            }
            if let Some(f) = &c.finish_reason {
                self.finish = Some(f.clone());
            }
        }
        (!out.is_empty()).then(|| Bytes::from(out))
    }

    /// The closing events: the open item's, then `response.completed` (or
    /// `response.incomplete` when cut short) with the whole response and its usage.
    pub fn finish(&mut self, usage: &Usage) -> Bytes {
        let mut out = Vec::new();
        self.start(&mut out);
        self.close(&mut out);
        let (status, incomplete) = status_of(self.finish.as_deref());
        let r = self.snapshot(status, Some(usage_json(usage)), incomplete);
        let name = if status == "completed" {
            "response.completed"
        } else {
            "response.incomplete"
        };
        self.event(name, json!({ "response": r }), &mut out);
        Bytes::from(out)
    }

    /// A stream that failed after it started: an `error` event, then `response.failed` with
    /// the error and what was delivered.
    pub fn error(&mut self, code: u16, message: &str, usage: &Usage) -> Bytes {
        let mut out = Vec::new();
        self.start(&mut out);
        self.failed = true;
        self.close(&mut out);
        let code = match code {
            408 => "timeout",
            503 => "service_unavailable",
            _ => "server_error",
        };
        self.event(
            "error",
            json!({"code": code, "message": message, "param": null}),
            &mut out,
        );
        let mut r = self.snapshot("failed", Some(usage_json(usage)), Value::Null);
        r["error"] = json!({"code": code, "message": message});
        self.event("response.failed", json!({ "response": r }), &mut out);
        Bytes::from(out)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn items_open_and_close_in_order() {
        let mut s = ResponsesStream::new(Head {
            id: "gen-1".into(),
            model: "m".into(),
            created_at: 5,
            echo: json!({}),
        });
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
        let events: Vec<Value> = text
            .lines()
            .filter_map(|l| l.strip_prefix("data: "))
            .map(|d| serde_json::from_str(d).unwrap())
            .collect();
        let names: Vec<&str> = events.iter().map(|e| e["type"].as_str().unwrap()).collect();
        assert_eq!(
            names,
            vec![
                "response.created",
                "response.in_progress",
                "response.output_item.added",
                "response.reasoning_text.delta",
                "response.reasoning_text.done",
                "response.output_item.done",
                "response.output_item.added",
                "response.content_part.added",
                "response.output_text.delta",
                "response.output_text.delta",
                "response.output_text.done",
                "response.content_part.done",
                "response.output_item.done",
                "response.output_item.added",
                "response.function_call_arguments.delta",
                "response.function_call_arguments.delta",
                "response.function_call_arguments.done",
                "response.output_item.done",
                "response.completed",
            ]
        );
        for (i, e) in events.iter().enumerate() {
            assert_eq!(e["sequence_number"], i as u64);
        }
        let last = &events[events.len() - 1]["response"];
        assert_eq!(last["usage"]["output_tokens"], 7);
        assert_eq!(last["output"][1]["content"][0]["text"], "Hello");
        assert_eq!(last["output"][2]["arguments"], "{\"a\":1}");
        assert_eq!(last["output"][2]["call_id"], "c1");
    }
}
