//! What the mock answers: the [`Behaviour`] type, in-message directives, and
//! the resolution of a behaviour into concrete text, tool calls, usage numbers
//! and finish reason.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::util;

/// Default reply text when a behaviour does not set `reply`.
pub const DEFAULT_REPLY: &str = "Hello! This is the mock provider.";

/// Default number of embedding dimensions.
pub const DEFAULT_EMBEDDING_DIMS: usize = 8;

/// How the mock answers one request. Every field is optional; an absent field
/// takes its default (see the crate README for the full table).
///
/// A behaviour comes from, in priority order (the first one found is used
/// whole, fields are never merged across sources):
/// 1. a `[[mock:{...json...}]]` directive inside the last user message,
/// 2. a one-shot behaviour queued with [`crate::MockProvider::push_behaviour`],
/// 3. the behaviour set with [`crate::MockProvider::set_model_behaviour`],
/// 4. the defaults (`Behaviour::default()`).
#[derive(Clone, Debug, Default, PartialEq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct Behaviour {
    /// Assistant text. Default [`DEFAULT_REPLY`], or no text at all when
    /// `tool_calls` is set and `reply` is not.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reply: Option<String>,
    /// Thinking text: Anthropic `thinking` block (with a signature), Gemini
    /// `thought: true` part, OpenAI-compatible `reasoning_content` field.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reasoning: Option<String>,
    /// Total input tokens, cache reads and writes included.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub prompt_tokens: Option<u64>,
    /// Total output tokens, reasoning included.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub completion_tokens: Option<u64>,
    /// Input tokens read from the prompt cache (part of `prompt_tokens`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cached_tokens: Option<u64>,
    /// Input tokens written to the prompt cache (part of `prompt_tokens`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cache_write_tokens: Option<u64>,
    /// Reasoning tokens (part of `completion_tokens`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reasoning_tokens: Option<u64>,
    /// Tool calls to emit.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tool_calls: Option<Vec<MockToolCall>>,
    /// Finish reason override, in OpenAI vocabulary (`stop`, `length`,
    /// `tool_calls`, `content_filter`) or any provider's own value.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub finish_reason: Option<String>,
    /// Respond with this HTTP status (>= 400) and the provider's error body.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    /// Message of the error body (with `status`, or `fault: error_after_chunks`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_message: Option<String>,
    /// Seconds, sent as a `retry-after` header.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retry_after: Option<u64>,
    /// Wait this long before sending the response headers.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub latency_ms: Option<u64>,
    /// Wait this long between two stream events.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub chunk_delay_ms: Option<u64>,
    /// Number of pieces the reply (and the reasoning) is split into when
    /// streaming. Default: one piece per word.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub chunks: Option<usize>,
    /// Network fault to inject.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fault: Option<Fault>,
    /// Number of content events sent before a `*_after_chunks` fault.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub after_chunks: Option<usize>,
    /// Leave usage out (see README for what each format does).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub omit_usage: Option<bool>,
    /// Embedding vector length (default 8).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub embedding_dims: Option<usize>,
    /// Azure OpenAI only: the content filter refuses the prompt (HTTP 400,
    /// `error.code: content_filter`). A filtered completion is
    /// `finish_reason: "content_filter"`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub prompt_filtered: Option<bool>,
    /// Answer a streaming request with the complete non-stream body
    /// (`content-type: application/json`), as some proxies do.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub json_for_stream: Option<bool>,
}

/// A tool call the mock should emit.
#[derive(Clone, Debug, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct MockToolCall {
    /// Function / tool name.
    pub name: String,
    /// Arguments: any JSON value, or a string holding JSON. Absent = `{}`.
    #[serde(default)]
    pub arguments: Value,
    /// Call id; generated (`call_…` / `toolu_…`) when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
}

/// Network faults.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Fault {
    /// Read the request, then close the socket (TCP RST) without any response.
    ResetBeforeHeaders,
    /// Send `after_chunks` content events, then reset the connection.
    ResetAfterChunks,
    /// Send `after_chunks` content events, then hang with the connection open.
    StallAfterChunks,
    /// Never respond (the connection stays open).
    StallBeforeHeaders,
    /// Extension: send `after_chunks` content events, then the format's
    /// in-stream error event, then end the body cleanly.
    ErrorAfterChunks,
    /// Send `after_chunks` content events, then bytes the format's decoder
    /// must refuse (an event-stream message with a bad CRC, an SSE event that
    /// is not JSON), then end the body.
    CorruptAfterChunks,
}

impl Behaviour {
    /// Behaviour with only `reply` set.
    pub fn reply(text: impl Into<String>) -> Self {
        Self {
            reply: Some(text.into()),
            ..Self::default()
        }
    }

    /// Behaviour answering with an HTTP error in the provider's shape.
    pub fn error(status: u16, message: impl Into<String>) -> Self {
        Self {
            status: Some(status),
            error_message: Some(message.into()),
            ..Self::default()
        }
    }

    /// Behaviour with only `fault` (and `after_chunks` for the `*_after_chunks` faults) set.
    pub fn fault(fault: Fault, after_chunks: Option<usize>) -> Self {
        Self {
            fault: Some(fault),
            after_chunks,
            ..Self::default()
        }
    }

    /// Parses a behaviour from JSON (the same shape as a directive).
    pub fn from_json(value: Value) -> anyhow::Result<Self> {
        Ok(serde_json::from_value(value)?)
    }

    pub(crate) fn error_status(&self) -> Option<u16> {
        self.status.filter(|s| *s >= 400 && *s <= 599)
    }

    /// Whether a stream was asked for and is to be answered as one.
    pub(crate) fn streams(&self, requested: bool) -> bool {
        requested && self.json_for_stream != Some(true)
    }

    pub(crate) fn omit_usage(&self) -> bool {
        self.omit_usage.unwrap_or(false)
    }
}

/// Marker that opens an in-message directive.
const DIRECTIVE_OPEN: &str = "[[mock:";

/// Finds a `[[mock:{...}]]` directive in `text`. `Ok(None)` when there is none,
/// `Err` (a human readable reason) when one is present but malformed.
pub fn parse_directive(text: &str) -> Result<Option<Behaviour>, String> {
    let Some(start) = text.find(DIRECTIVE_OPEN) else {
        return Ok(None);
    };
    let rest = &text[start + DIRECTIVE_OPEN.len()..];
    let mut values = serde_json::Deserializer::from_str(rest).into_iter::<Value>();
    let value = match values.next() {
        Some(Ok(v)) => v,
        Some(Err(e)) => return Err(format!("invalid mock directive JSON: {e}")),
        None => return Err("empty mock directive".to_string()),
    };
    let after = rest[values.byte_offset()..].trim_start();
    if !after.starts_with("]]") {
        return Err("mock directive must end with ]]".to_string());
    }
    serde_json::from_value::<Behaviour>(value)
        .map(Some)
        .map_err(|e| format!("invalid mock directive: {e}"))
}

/// What the request looked like, as far as defaults are concerned.
#[derive(Clone, Debug, Default)]
pub struct PromptInfo {
    /// Number of messages (a system prompt counts as one message).
    pub messages: u64,
    /// Whitespace-separated words over all message text.
    pub words: u64,
    /// Text of the last user message (directive source).
    pub last_user_text: Option<String>,
}

impl PromptInfo {
    /// Adds one message with the given text pieces.
    pub fn add_message<'a>(&mut self, texts: impl IntoIterator<Item = &'a str>) {
        self.messages += 1;
        self.words += texts.into_iter().map(util::word_count).sum::<u64>();
    }

    /// Default prompt tokens: 4 per message + words.
    pub fn default_prompt_tokens(&self) -> u64 {
        4 * self.messages + self.words
    }
}

/// Token counts reported for one response.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Usage {
    /// Total input tokens (cache read and write included).
    pub prompt: u64,
    /// Total output tokens (reasoning included).
    pub completion: u64,
    /// Cache-read input tokens.
    pub cached: u64,
    /// Cache-write input tokens.
    pub cache_write: u64,
    /// Reasoning tokens.
    pub reasoning: u64,
}

impl Usage {
    /// Anthropic `input_tokens`: prompt minus cache read and cache write.
    pub fn uncached_input(&self) -> u64 {
        self.prompt
            .saturating_sub(self.cached)
            .saturating_sub(self.cache_write)
    }

    /// Gemini `candidatesTokenCount`: completion minus reasoning.
    pub fn visible_output(&self) -> u64 {
        self.completion.saturating_sub(self.reasoning)
    }
}

/// Canonical finish reason.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Finish {
    Stop,
    Length,
    ToolCalls,
    ContentFilter,
    StopSequence,
    Other(String),
}

impl Finish {
    /// Normalizes any provider's finish / stop reason.
    pub fn parse(raw: &str) -> Self {
        match raw {
            "stop" | "end_turn" | "STOP" => Self::Stop,
            "length" | "max_tokens" | "MAX_TOKENS" => Self::Length,
            "tool_calls" | "tool_use" | "function_call" => Self::ToolCalls,
            "content_filter" | "SAFETY" | "safety" | "refusal" => Self::ContentFilter,
            "stop_sequence" => Self::StopSequence,
            other => Self::Other(other.to_string()),
        }
    }

    /// OpenAI `finish_reason`.
    pub fn openai(&self) -> String {
        match self {
            Self::Stop | Self::StopSequence => "stop".into(),
            Self::Length => "length".into(),
            Self::ToolCalls => "tool_calls".into(),
            Self::ContentFilter => "content_filter".into(),
            Self::Other(s) => s.clone(),
        }
    }

    /// Anthropic `stop_reason`.
    pub fn anthropic(&self) -> String {
        match self {
            Self::Stop => "end_turn".into(),
            Self::Length => "max_tokens".into(),
            Self::ToolCalls => "tool_use".into(),
            Self::ContentFilter => "refusal".into(),
            Self::StopSequence => "stop_sequence".into(),
            Self::Other(s) => s.clone(),
        }
    }

    /// Gemini `finishReason`.
    pub fn gemini(&self) -> String {
        match self {
            Self::Stop | Self::ToolCalls | Self::StopSequence => "STOP".into(),
            Self::Length => "MAX_TOKENS".into(),
            Self::ContentFilter => "SAFETY".into(),
            Self::Other(s) => s.clone(),
        }
    }
}

/// A tool call ready to be rendered.
#[derive(Clone, Debug)]
pub struct ResolvedToolCall {
    /// Call id without provider prefix decisions (already prefixed when generated).
    pub id: Option<String>,
    pub name: String,
    /// Arguments as a JSON value (an object for Anthropic / Gemini).
    pub value: Value,
    /// Arguments as the JSON text sent to OpenAI clients.
    pub json: String,
}

/// A behaviour resolved against one request.
#[derive(Clone, Debug)]
pub struct Answer {
    pub text: Option<String>,
    pub reasoning: Option<String>,
    pub tool_calls: Vec<ResolvedToolCall>,
    pub usage: Usage,
    pub finish: Finish,
    pub omit_usage: bool,
    /// Stream split: number of pieces (None = one per word).
    pub chunks: Option<usize>,
}

impl Answer {
    /// Resolves `b` for a request described by `prompt`.
    pub fn resolve(b: &Behaviour, prompt: &PromptInfo) -> Self {
        let tool_calls: Vec<ResolvedToolCall> = b
            .tool_calls
            .iter()
            .flatten()
            .map(resolve_tool_call)
            .collect();
        let text = match (&b.reply, tool_calls.is_empty()) {
            (Some(r), _) => Some(r.clone()),
            (None, true) => Some(DEFAULT_REPLY.to_string()),
            (None, false) => None,
        };
        let reasoning_tokens = b.reasoning_tokens.unwrap_or(0);
        let text_words = text.as_deref().map(util::word_count).unwrap_or(0);
        let usage = Usage {
            prompt: b
                .prompt_tokens
                .unwrap_or_else(|| prompt.default_prompt_tokens()),
            completion: b
                .completion_tokens
                .unwrap_or(text_words.max(1) + reasoning_tokens),
            cached: b.cached_tokens.unwrap_or(0),
            cache_write: b.cache_write_tokens.unwrap_or(0),
            reasoning: reasoning_tokens,
        };
        let finish = match &b.finish_reason {
            Some(raw) => Finish::parse(raw),
            None if !tool_calls.is_empty() => Finish::ToolCalls,
            None => Finish::Stop,
        };
        Self {
            text,
            reasoning: b.reasoning.clone().filter(|r| !r.is_empty()),
            tool_calls,
            usage,
            finish,
            omit_usage: b.omit_usage(),
            chunks: b.chunks,
        }
    }

    /// Stream pieces of the reply text.
    pub fn text_pieces(&self) -> Vec<String> {
        self.text
            .as_deref()
            .map(|t| util::split_pieces(t, self.chunks))
            .unwrap_or_default()
    }

    /// Stream pieces of the reasoning text.
    pub fn reasoning_pieces(&self) -> Vec<String> {
        self.reasoning
            .as_deref()
            .map(|t| util::split_pieces(t, self.chunks))
            .unwrap_or_default()
    }
}

fn resolve_tool_call(call: &MockToolCall) -> ResolvedToolCall {
    let (value, json) = match &call.arguments {
        Value::Null => (Value::Object(Default::default()), "{}".to_string()),
        Value::String(s) => match serde_json::from_str::<Value>(s) {
            Ok(v) => (v, s.clone()),
            Err(_) => (Value::String(s.clone()), s.clone()),
        },
        other => (other.clone(), other.to_string()),
    };
    ResolvedToolCall {
        id: call.id.clone(),
        name: call.name.clone(),
        value,
        json,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn directive_parses_with_brackets_inside_strings() {
        let b = parse_directive(r#"hi [[mock:{"reply":"a ]] b","status":429}]] tail"#)
            .unwrap()
            .unwrap();
        assert_eq!(b.reply.as_deref(), Some("a ]] b"));
        assert_eq!(b.status, Some(429));
    }

    #[test]
    fn directive_absent_and_malformed() {
        assert!(parse_directive("no directive").unwrap().is_none());
        assert!(parse_directive("[[mock:{\"reply\":}]]").is_err());
        assert!(parse_directive("[[mock:{\"nope\":1}]]").is_err());
        assert!(parse_directive("[[mock:{\"reply\":\"x\"}").is_err());
    }

    #[test]
    fn fault_names() {
        let b = parse_directive(r#"[[mock:{"fault":"reset_after_chunks","after_chunks":2}]]"#)
            .unwrap()
            .unwrap();
        assert_eq!(b.fault, Some(Fault::ResetAfterChunks));
        assert_eq!(b.after_chunks, Some(2));
    }

    #[test]
    fn defaults() {
        let mut p = PromptInfo::default();
        p.add_message(["You are terse."]);
        p.add_message(["Say hello"]);
        let a = Answer::resolve(&Behaviour::default(), &p);
        assert_eq!(a.usage.prompt, 4 * 2 + 5);
        assert_eq!(a.usage.completion, 6);
        assert_eq!(a.finish, Finish::Stop);
        let b = Behaviour {
            tool_calls: Some(vec![MockToolCall {
                name: "f".into(),
                arguments: serde_json::json!({"a": 1}),
                id: None,
            }]),
            reasoning_tokens: Some(3),
            ..Default::default()
        };
        let a = Answer::resolve(&b, &p);
        assert!(a.text.is_none());
        assert_eq!(a.usage.completion, 1 + 3);
        assert_eq!(a.finish, Finish::ToolCalls);
        assert_eq!(a.tool_calls[0].json, r#"{"a":1}"#);
    }

    #[test]
    fn finish_mapping() {
        let f = Finish::parse("length");
        assert_eq!(
            (f.openai(), f.anthropic(), f.gemini()),
            ("length".into(), "max_tokens".into(), "MAX_TOKENS".into())
        );
        assert_eq!(Finish::parse("SAFETY").openai(), "content_filter");
    }
}
