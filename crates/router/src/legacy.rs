//! The legacy `/v1/completions` API served through chat, so every provider can answer it:
//! `prompt` in, `choices[].text` out, streaming too.
//!
//! Rules:
//! - `prompt` as a string, or an array of exactly one string, becomes one user message. An
//!   array of several prompts (a batch: one choice per prompt) and token-array prompts are
//!   answered with a 400 naming `prompt`; send one request per prompt, as text.
//! - `echo: true`, a non-empty `suffix`, `logprobs` > 0 and `best_of` > 1 cannot be served
//!   through chat and are answered with a 400 naming the parameter.
//! - Every other field (max_tokens, temperature, top_p, stop, seed, user, stream,
//!   stream_options, the gateway's `models`/`provider`/`usage`, ...) means what it means in
//!   chat. OpenAI's legacy default of 16 output tokens is not applied: without `max_tokens`
//!   the model's own limit applies, as in chat.
//! - Answers: `text` is the chat message content (empty for none); reasoning and tool calls
//!   have no place in this shape and are left out; `logprobs` is always null.

use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

use crate::types::{ChatChunk, ChatRequest, ChatResponse};

/// The legacy Completions request. Besides these fields, every chat field but `messages`
/// (`model`, `max_tokens`, `temperature`, `stop`, `stream`, `models`, `provider`, `usage`, ...)
/// means what it means in chat.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[schema(as = CompletionRequest)]
pub struct CompletionRequest {
    /// One prompt, as a string or an array of one string.
    pub prompt: Prompt,
    /// Only `false`.
    #[serde(default)]
    pub echo: Option<bool>,
    /// Only empty.
    #[serde(default)]
    pub suffix: Option<String>,
    /// Only 0.
    #[serde(default)]
    #[schema(maximum = 0)]
    pub logprobs: Option<u32>,
    /// Only 1.
    #[serde(default)]
    #[schema(maximum = 1)]
    pub best_of: Option<u32>,
    /// Everything else, which chat understands as is.
    #[serde(flatten)]
    #[schema(ignore)]
    pub rest: Map<String, Value>,
}

#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(untagged)]
pub enum Prompt {
    Text(String),
    Texts(Vec<String>),
    Tokens(Vec<u32>),
    TokenBatches(Vec<Vec<u32>>),
}

/// A request that cannot be served through chat: a 400 naming `param`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct LegacyError {
    pub param: String,
    pub message: String,
}

fn reject(param: &str, message: &str) -> LegacyError {
    LegacyError {
        param: param.to_string(),
        message: message.to_string(),
    }
}

impl CompletionRequest {
    /// The chat request that serves this completion request.
    pub fn into_chat(self) -> Result<ChatRequest, LegacyError> {
        let prompt = match self.prompt {
            Prompt::Text(t) => t,
            Prompt::Texts(mut v) if v.len() == 1 => v.remove(0),
            Prompt::Texts(_) => {
                return Err(reject(
                    "prompt",
                    "'prompt' must be one string; send one request per prompt",
                ))
            }
            Prompt::Tokens(_) | Prompt::TokenBatches(_) => {
                return Err(reject(
                    "prompt",
                    "token-array prompts are not supported; send the prompt as text",
                ))
            }
        };
        if self.echo == Some(true) {
            return Err(reject("echo", "'echo' is not supported"));
        }
        if self.suffix.as_deref().is_some_and(|s| !s.is_empty()) {
            return Err(reject("suffix", "'suffix' is not supported"));
        }
        if self.logprobs.is_some_and(|n| n > 0) {
            return Err(reject("logprobs", "'logprobs' is not supported"));
        }
        if self.best_of.is_some_and(|n| n > 1) {
            return Err(reject("best_of", "only best_of = 1 is supported"));
        }
        let mut body = self.rest;
        body.insert(
            "messages".into(),
            json!([{"role": "user", "content": prompt}]),
        );
        let mut track = serde_path_to_error::Track::new();
        let de = serde_path_to_error::Deserializer::new(Value::Object(body), &mut track);
        ChatRequest::deserialize(de).map_err(|e| {
            let param = track.path().to_string();
            LegacyError {
                message: format!("'{param}': {e}"),
                param,
            }
        })
    }
}

/// A legacy completion (or, with `object` `text_completion`, one of its stream chunks).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, utoipa::ToSchema)]
#[schema(as = TextCompletion)]
pub struct Completion {
    pub id: String,
    pub object: String,
    pub created: i64,
    pub model: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provider: Option<String>,
    pub choices: Vec<CompletionChoice>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, utoipa::ToSchema)]
pub struct CompletionChoice {
    pub text: String,
    pub index: u32,
    /// Always null.
    #[schema(value_type = Option<Object>, required = true)]
    pub logprobs: Option<Value>,
    #[schema(required = true)]
    pub finish_reason: Option<String>,
}

/// A chat answer in the legacy shape (usage is added by the caller, as for chat).
pub fn completion_from_chat(response: &ChatResponse) -> Completion {
    Completion {
        id: response.id.clone(),
        object: "text_completion".into(),
        created: response.created,
        model: response.model.clone(),
        provider: response.provider.clone(),
        choices: response
            .choices
            .iter()
            .map(|c| CompletionChoice {
                text: c.message.content.clone().unwrap_or_default(),
                index: c.index,
                logprobs: None,
                finish_reason: c.finish_reason.clone(),
            })
            .collect(),
    }
}

/// A chat stream chunk in the legacy shape. Chunks with nothing for the legacy client (a role
/// or reasoning only) still map, with empty text, so the caller decides what to skip.
pub fn completion_chunk_from_chat(chunk: &ChatChunk) -> Completion {
    Completion {
        id: chunk.id.clone(),
        object: "text_completion".into(),
        created: chunk.created,
        model: chunk.model.clone(),
        provider: chunk.provider.clone(),
        choices: chunk
            .choices
            .iter()
            .map(|c| CompletionChoice {
                text: c.delta.content.clone().unwrap_or_default(),
                index: c.index,
                logprobs: None,
                finish_reason: c.finish_reason.clone(),
            })
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn parse(v: Value) -> CompletionRequest {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn prompt_becomes_one_user_message_and_fields_carry_over() {
        let chat = parse(
            json!({"model": "a/b", "prompt": "Once upon", "max_tokens": 7,
            "stop": ["\n"], "stream": true, "models": ["c/d"], "usage": {"include": true}}),
        )
        .into_chat()
        .unwrap();
        assert_eq!(chat.messages.len(), 1);
        assert_eq!(
            serde_json::to_value(&chat.messages[0]).unwrap(),
            json!({"role": "user", "content": "Once upon"})
        );
        assert_eq!(chat.max_tokens, Some(7));
        assert!(chat.stream);
        assert_eq!(chat.gateway.models, Some(vec!["c/d".to_string()]));
        assert!(chat.gateway.usage.unwrap().include);
        let one = parse(json!({"model": "a/b", "prompt": ["x"]})).into_chat();
        assert!(one.is_ok());
    }

    #[test]
    fn what_chat_cannot_serve_is_named() {
        for (body, param) in [
            (json!({"prompt": ["a", "b"]}), "prompt"),
            (json!({"prompt": [1, 2]}), "prompt"),
            (json!({"prompt": "a", "echo": true}), "echo"),
            (json!({"prompt": "a", "suffix": "z"}), "suffix"),
            (json!({"prompt": "a", "logprobs": 2}), "logprobs"),
            (json!({"prompt": "a", "best_of": 3}), "best_of"),
            (json!({"prompt": "a", "max_tokens": "many"}), "max_tokens"),
        ] {
            assert_eq!(parse(body).into_chat().unwrap_err().param, param);
        }
    }

    #[test]
    fn answers_map_to_text() {
        let r: ChatResponse = serde_json::from_value(json!({"id": "gen-1", "created": 5, "model": "a/b",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": "Hi"}, "finish_reason": "stop"}]}))
        .unwrap();
        let c = serde_json::to_value(completion_from_chat(&r)).unwrap();
        assert_eq!(
            c,
            json!({"id": "gen-1", "object": "text_completion", "created": 5, "model": "a/b",
                "choices": [{"text": "Hi", "index": 0, "logprobs": null, "finish_reason": "stop"}]})
        );
        let ch: ChatChunk = serde_json::from_value(json!({"id": "gen-1", "model": "a/b",
            "choices": [{"index": 0, "delta": {"content": "H"}, "finish_reason": null}]}))
        .unwrap();
        let c = completion_chunk_from_chat(&ch);
        assert_eq!(c.object, "text_completion");
        assert_eq!(c.choices[0].text, "H");
    }
}
