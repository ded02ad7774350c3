//! The internal request/response/stream model. It is OpenAI's chat-completions shape, which
//! every client already speaks; adapters translate it to and from each provider's wire format.
//! Unknown fields are kept in `extra` so OpenAI-compatible providers receive what the client
//! sent, minus the gateway's own fields.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use utoipa::ToSchema;

/// OpenAI's Chat Completions request, with OpenRouter's routing fields. Fields not listed are
/// passed through to OpenAI-compatible providers.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ChatRequest {
    /// A catalog id or alias, optionally with a variant (`:floor` cheapest first, `:nitro`
    /// fastest first). Required unless `models` names the models to try.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(example = "openai/gpt-4o-mini")]
    pub model: Option<String>,
    /// The conversation, at least one message.
    #[schema(min_items = 1)]
    pub messages: Vec<Message>,
    /// Answer as `text/event-stream` chunks.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub stream: bool,
    /// `{"include_usage": true}` ends a stream with a usage chunk.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<StreamOptions>)]
    pub stream_options: Option<Value>,
    /// Output limit; at most the largest maximum output of the requested models.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(minimum = 1)]
    pub max_tokens: Option<u64>,
    /// The same as `max_tokens`, which it overrides.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(minimum = 1)]
    pub max_completion_tokens: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(minimum = 0, maximum = 2)]
    pub temperature: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(minimum = 0, maximum = 1)]
    pub top_p: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop: Option<Stop>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seed: Option<i64>,
    /// Function tools: `{"type": "function", "function": {"name", "description", "parameters"}}`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Vec<Object>>)]
    pub tools: Option<Vec<Value>>,
    /// `"auto"`, `"none"`, `"required"` or `{"type": "function", "function": {"name"}}`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_choice: Option<Value>,
    /// `{"type": "text" | "json_object"}` or `{"type": "json_schema", "json_schema": {...}}`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub response_format: Option<Value>,
    /// OpenRouter's reasoning settings: `effort`, `max_tokens`, `enabled`, `exclude`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub reasoning: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    // Gateway options, never forwarded upstream. Must precede `extra` so its keys are taken
    // out before the pass-through map collects the rest.
    #[serde(flatten, skip_serializing)]
    pub gateway: GatewayOptions,
    #[serde(flatten)]
    #[schema(ignore)]
    pub extra: Map<String, Value>,
}

/// `stream_options` of a chat request.
#[derive(Serialize, Deserialize, ToSchema)]
#[allow(dead_code)]
pub struct StreamOptions {
    /// End the stream with a chunk whose `choices` are empty and which carries `usage`.
    include_usage: Option<bool>,
}

/// OpenRouter-style request fields that steer the gateway itself.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
pub struct GatewayOptions {
    /// `{"include": true}` adds `cost` and `cost_details` to `usage`.
    #[serde(default)]
    pub usage: Option<UsageOption>,
    /// Routing preferences (OpenRouter's `provider` object).
    #[serde(default)]
    #[schema(value_type = Option<crate::preferences::Raw>)]
    pub provider: Option<Value>,
    /// Models to try, in order, when every endpoint of the previous one failed.
    #[serde(default)]
    pub models: Option<Vec<String>>,
    /// The same as `models`.
    #[serde(default)]
    pub fallback_models: Option<Vec<String>>,
}

#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
pub struct UsageOption {
    #[serde(default)]
    pub include: bool,
}

/// One stop sequence or several.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(untagged)]
pub enum Stop {
    One(String),
    Many(Vec<String>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    System,
    Developer,
    User,
    Assistant,
    Tool,
    Function,
}

/// One message of the conversation. Every role but `assistant` needs `content`; a `tool`
/// message needs `tool_call_id`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Message {
    pub role: Role,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content: Option<Content>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// An assistant message's tool calls, as a chat completion returned them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Vec<Object>>)]
    pub tool_calls: Option<Vec<Value>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_call_id: Option<String>,
    #[serde(flatten)]
    #[schema(ignore)]
    pub extra: Map<String, Value>,
}

/// Text, or an array of content parts.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(untagged)]
pub enum Content {
    Text(String),
    Parts(Vec<ContentPart>),
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ContentPart {
    Text {
        text: String,
        #[serde(flatten)]
        #[schema(ignore)]
        extra: Map<String, Value>,
    },
    ImageUrl {
        image_url: ImageUrl,
    },
    /// `{"data": base64, "format": "wav" | "mp3"}`.
    InputAudio {
        #[schema(value_type = Object)]
        input_audio: Value,
    },
    /// `{"filename", "file_data": data URL}`.
    File {
        #[schema(value_type = Object)]
        file: Value,
    },
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ImageUrl {
    /// An `http(s)://` URL or a `data:` URL.
    pub url: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

impl ChatRequest {
    /// The output-token limit the client asked for, whichever field carried it.
    pub fn max_output(&self) -> Option<u64> {
        self.max_completion_tokens.or(self.max_tokens)
    }

    pub fn image_count(&self) -> u64 {
        self.messages
            .iter()
            .filter_map(|m| match &m.content {
                Some(Content::Parts(p)) => Some(
                    p.iter()
                        .filter(|p| matches!(p, ContentPart::ImageUrl { .. }))
                        .count() as u64,
                ),
                _ => None,
            })
            .sum()
    }

    /// A typical-case prompt token count (about four bytes of text per token), used only when a
    /// provider never reports usage, so what was consumed is still charged.
    pub fn prompt_token_estimate(&self) -> u64 {
        let mut bytes: u64 = 0;
        let mut overhead: u64 = 3;
        for m in &self.messages {
            overhead += 4;
            match &m.content {
                Some(Content::Text(t)) => bytes += t.len() as u64,
                Some(Content::Parts(parts)) => {
                    for p in parts {
                        match p {
                            ContentPart::Text { text, .. } => bytes += text.len() as u64,
                            ContentPart::ImageUrl { .. } => overhead += 765,
                            ContentPart::InputAudio { input_audio } => {
                                bytes += input_audio.to_string().len() as u64
                            }
                            ContentPart::File { file } => bytes += file.to_string().len() as u64,
                        }
                    }
                }
                None => {}
            }
        }
        bytes.div_ceil(4) + overhead
    }

    /// An upper bound on prompt tokens: byte-level tokenizers never emit more tokens than
    /// bytes, plus a per-message allowance for the chat template, and for images and files the
    /// bounds `media_tokens` reads from their content. Reserving against this bound means a
    /// request rarely costs more than its hold (and never charges more: see billing).
    pub fn prompt_token_bound(&self) -> u64 {
        const PER_MESSAGE: u64 = 8;
        let mut total: u64 = 16;
        for m in &self.messages {
            total += PER_MESSAGE;
            match &m.content {
                Some(Content::Text(t)) => total += t.len() as u64,
                Some(Content::Parts(parts)) => {
                    for p in parts {
                        total += match p {
                            ContentPart::Text { text, .. } => text.len() as u64,
                            ContentPart::ImageUrl { image_url } => {
                                crate::media_tokens::image(&image_url.url)
                            }
                            ContentPart::InputAudio { input_audio } => {
                                input_audio.to_string().len() as u64
                            }
                            ContentPart::File { file } => {
                                crate::media_tokens::file(file).max(file.to_string().len() as u64)
                            }
                        }
                    }
                }
                None => {}
            }
            if let Some(calls) = &m.tool_calls {
                total += calls
                    .iter()
                    .map(|c| c.to_string().len() as u64)
                    .sum::<u64>();
            }
        }
        if let Some(tools) = &self.tools {
            total += tools
                .iter()
                .map(|t| t.to_string().len() as u64)
                .sum::<u64>();
        }
        total
    }
}

// ---- responses ----

/// A chat completion (`object: "chat.completion"`).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ChatResponse {
    /// The request's id (`gen-…`), also in the `x-request-id` header.
    #[serde(default)]
    #[schema(required = true)]
    pub id: String,
    #[serde(default = "chat_completion")]
    #[schema(required = true, example = "chat.completion")]
    pub object: String,
    /// Unix seconds.
    #[serde(default)]
    #[schema(required = true)]
    pub created: i64,
    /// The catalog id of the model that answered.
    #[serde(default)]
    #[schema(required = true)]
    pub model: String,
    /// The provider that answered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provider: Option<String>,
    pub choices: Vec<Choice>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(ignore)]
    pub usage: Option<Value>,
    #[serde(flatten)]
    #[schema(ignore)]
    pub extra: Map<String, Value>,
}

fn chat_completion() -> String {
    "chat.completion".into()
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Choice {
    #[serde(default)]
    #[schema(required = true)]
    pub index: u32,
    pub message: ResponseMessage,
    /// `stop`, `length`, `tool_calls`, `content_filter`, or null.
    #[serde(default)]
    #[schema(required = true)]
    pub finish_reason: Option<String>,
    #[serde(flatten)]
    #[schema(ignore)]
    pub extra: Map<String, Value>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
pub struct ResponseMessage {
    #[serde(default = "assistant")]
    #[schema(required = true, example = "assistant")]
    pub role: String,
    #[serde(default)]
    #[schema(required = true)]
    pub content: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reasoning: Option<String>,
    /// OpenRouter's structured reasoning (`reasoning.text` with a signature,
    /// `reasoning.encrypted`), which clients send back so multi-turn thinking verifies.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Vec<Object>>)]
    pub reasoning_details: Option<Vec<Value>>,
    /// `{"id", "type": "function", "function": {"name", "arguments"}}`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Vec<Object>>)]
    pub tool_calls: Option<Vec<Value>>,
    #[serde(flatten)]
    #[schema(ignore)]
    pub extra: Map<String, Value>,
}

fn assistant() -> String {
    "assistant".into()
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ChatChunk {
    #[serde(default)]
    pub id: String,
    #[serde(default = "chunk_object")]
    pub object: String,
    #[serde(default)]
    pub created: i64,
    #[serde(default)]
    pub model: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provider: Option<String>,
    #[serde(default)]
    pub choices: Vec<ChunkChoice>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub usage: Option<Value>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

fn chunk_object() -> String {
    "chat.completion.chunk".into()
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ChunkChoice {
    #[serde(default)]
    pub index: u32,
    #[serde(default)]
    pub delta: Delta,
    #[serde(default)]
    pub finish_reason: Option<String>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Delta {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reasoning: Option<String>,
    /// OpenRouter's structured reasoning (`reasoning.text` with a signature,
    /// `reasoning.encrypted`), which clients send back so multi-turn thinking verifies.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reasoning_details: Option<Vec<Value>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_calls: Option<Vec<Value>>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl ChatChunk {
    /// True if this chunk carries anything a client would show (text, reasoning, tool calls).
    pub fn has_content(&self) -> bool {
        self.choices.iter().any(|c| {
            c.delta.content.as_deref().is_some_and(|s| !s.is_empty())
                || c.delta.reasoning.as_deref().is_some_and(|s| !s.is_empty())
                || c.delta.tool_calls.as_ref().is_some_and(|t| !t.is_empty())
        })
    }

    /// Bytes of generated text and tool-call arguments in this chunk.
    pub fn content_bytes(&self) -> u64 {
        self.choices
            .iter()
            .map(|c| {
                c.delta.content.as_deref().map_or(0, str::len) as u64
                    + c.delta.reasoning.as_deref().map_or(0, str::len) as u64
                    + c.delta
                        .tool_calls
                        .as_ref()
                        .map_or(0, |t| t.iter().map(|v| v.to_string().len() as u64).sum())
            })
            .sum()
    }
}
