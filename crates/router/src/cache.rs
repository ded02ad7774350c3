//! The response cache: a finished answer kept in Redis for a while, so an identical request
//! from the same account is answered without calling a provider, as JSON or replayed as SSE.
//!
//! The key is `P:rc:{account}:{sha256}` over the account id and the canonical JSON of the request
//! (object keys sorted, no whitespace) without the fields that only shape the response:
//! `stream`, `stream_options` and `usage`. Routing constraints (`provider`, `models`,
//! `fallback_models`) stay in the key, so a hit never comes from an endpoint the request would
//! have excluded. Entries are never shared between accounts.
//!
//! Only complete answers are stored: one choice, no tool calls (tool-call ids must stay unique
//! within a conversation, and agents that repeat a step would otherwise see the same id twice),
//! not errors, not streams that failed, timed out or lost their client.

use std::sync::Arc;
use std::time::Duration;

use infron_billing::Usage;
use infron_store::redis_conn::RedisConn;
use infron_store::StoreError;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use crate::providers::StreamEvent;
use crate::types::{
    ChatChunk, ChatRequest, ChatResponse, Choice, ChunkChoice, Delta, ResponseMessage,
};

/// Answers larger than this are not stored.
const MAX_ENTRY_BYTES: usize = 1024 * 1024;

/// A stored answer and what produced it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CachedAnswer {
    /// Catalog model id, provider name and upstream model that answered.
    pub model: String,
    pub provider: String,
    pub upstream_model: String,
    pub created: i64,
    pub message: ResponseMessage,
    pub finish_reason: Option<String>,
    pub usage: Usage,
}

impl CachedAnswer {
    /// The answer of a non-streaming response, if it may be stored.
    pub fn from_response(
        response: &ChatResponse,
        usage: Usage,
        model: &str,
        provider: &str,
        upstream_model: &str,
    ) -> Option<Self> {
        let [choice] = response.choices.as_slice() else {
            return None;
        };
        if choice
            .message
            .tool_calls
            .as_ref()
            .is_some_and(|t| !t.is_empty())
        {
            return None;
        }
        Some(Self {
            model: model.to_string(),
            provider: provider.to_string(),
            upstream_model: upstream_model.to_string(),
            created: response.created,
            message: choice.message.clone(),
            finish_reason: choice.finish_reason.clone(),
            usage,
        })
    }

    /// The answer as a chat completion (the caller sets `id`, `model`, `provider`, `usage`).
    pub fn to_response(&self) -> ChatResponse {
        ChatResponse {
            id: String::new(),
            object: "chat.completion".into(),
            created: self.created,
            model: self.model.clone(),
            provider: Some(self.provider.clone()),
            choices: vec![Choice {
                index: 0,
                message: self.message.clone(),
                finish_reason: self.finish_reason.clone(),
                extra: Map::new(),
            }],
            usage: None,
            extra: Map::new(),
        }
    }

    /// The answer as stream events: reasoning, then content, then the finish, then usage.
    pub fn to_events(&self) -> Vec<StreamEvent> {
        let chunk = |delta: Delta, finish_reason: Option<String>| {
            StreamEvent::Chunk(ChatChunk {
                id: String::new(),
                object: "chat.completion.chunk".into(),
                created: self.created,
                model: self.model.clone(),
                provider: None,
                choices: vec![ChunkChoice {
                    index: 0,
                    delta,
                    finish_reason,
                    extra: Map::new(),
                }],
                usage: None,
                extra: Map::new(),
            })
        };
        let m = &self.message;
        let mut events = Vec::new();
        let has_reasoning = m.reasoning.as_deref().is_some_and(|r| !r.is_empty())
            || m.reasoning_details.as_ref().is_some_and(|d| !d.is_empty());
        if has_reasoning {
            events.push(chunk(
                Delta {
                    role: Some("assistant".into()),
                    reasoning: m.reasoning.clone(),
                    reasoning_details: m.reasoning_details.clone(),
                    ..Default::default()
                },
                None,
            ));
        }
        events.push(chunk(
            Delta {
                role: (!has_reasoning).then(|| "assistant".into()),
                content: Some(m.content.clone().unwrap_or_default()),
                ..Default::default()
            },
            None,
        ));
        events.push(chunk(Delta::default(), self.finish_reason.clone()));
        events.push(StreamEvent::Usage(self.usage));
        events
    }
}

/// Collects a streamed answer so it can be stored once the stream finished cleanly.
#[derive(Debug, Default)]
pub struct StreamRecorder {
    content: String,
    reasoning: String,
    reasoning_details: Vec<Value>,
    finish_reason: Option<String>,
    /// Tool calls, several choices or too much text: the answer is not stored.
    unstorable: bool,
}

impl StreamRecorder {
    pub fn observe(&mut self, chunk: &ChatChunk) {
        if self.unstorable {
            return;
        }
        for c in &chunk.choices {
            if c.index != 0 || c.delta.tool_calls.as_ref().is_some_and(|t| !t.is_empty()) {
                self.unstorable = true;
                return;
            }
            if let Some(t) = &c.delta.content {
                self.content.push_str(t);
            }
            if let Some(r) = &c.delta.reasoning {
                self.reasoning.push_str(r);
            }
            if let Some(d) = &c.delta.reasoning_details {
                self.reasoning_details.extend(d.iter().cloned());
            }
            if c.finish_reason.is_some() {
                self.finish_reason = c.finish_reason.clone();
            }
        }
        if self.content.len() + self.reasoning.len() > MAX_ENTRY_BYTES {
            self.unstorable = true;
        }
    }

    pub fn finish(
        self,
        usage: Usage,
        model: &str,
        provider: &str,
        upstream_model: &str,
        created: i64,
    ) -> Option<CachedAnswer> {
        if self.unstorable {
            return None;
        }
        Some(CachedAnswer {
            model: model.to_string(),
            provider: provider.to_string(),
            upstream_model: upstream_model.to_string(),
            created,
            message: ResponseMessage {
                role: "assistant".into(),
                content: Some(self.content),
                reasoning: (!self.reasoning.is_empty()).then_some(self.reasoning),
                reasoning_details: (!self.reasoning_details.is_empty())
                    .then_some(self.reasoning_details),
                tool_calls: None,
                extra: Map::new(),
            },
            finish_reason: self.finish_reason,
            usage,
        })
    }
}

/// Redis key of a request's cache entry for an account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CacheKey(String);

impl CacheKey {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

pub struct ResponseCache {
    conn: RedisConn,
    prefix: String,
    ttl: Duration,
}

impl ResponseCache {
    pub fn new(conn: RedisConn, redis_prefix: &str, ttl: Duration) -> Self {
        Self {
            conn,
            prefix: format!("{redis_prefix}:rc"),
            ttl,
        }
    }

    pub fn key(&self, account: &str, request: &ChatRequest) -> CacheKey {
        let mut hasher = Sha256::new();
        hasher.update(account.as_bytes());
        hasher.update([0u8]);
        hasher.update(fingerprint(request));
        let digest = hasher.finalize();
        let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
        CacheKey(format!("{}:{account}:{hex}", self.prefix))
    }

    /// The stored answer, if any. A Redis failure is logged and counts as a miss.
    pub async fn get(&self, key: &CacheKey) -> Option<CachedAnswer> {
        match self.fetch(key).await {
            Ok(found) => found,
            Err(e) => {
                tracing::warn!(error = %e, "response cache lookup failed; answering from a provider");
                None
            }
        }
    }

    async fn fetch(&self, key: &CacheKey) -> Result<Option<CachedAnswer>, StoreError> {
        let mut conn = self.conn.clone();
        let raw: Option<String> = redis::cmd("GET")
            .arg(key.as_str())
            .query_async(&mut conn)
            .await?;
        Ok(raw.and_then(|r| serde_json::from_str(&r).ok()))
    }

    /// Stores an answer in the background; the response never waits for it.
    pub fn put(self: &Arc<Self>, key: CacheKey, answer: CachedAnswer) {
        let cache = self.clone();
        tokio::spawn(async move {
            if let Err(e) = cache.store(&key, &answer).await {
                tracing::warn!(error = %e, "could not store a response in the cache");
            }
        });
    }

    pub async fn store(&self, key: &CacheKey, answer: &CachedAnswer) -> Result<(), StoreError> {
        let Ok(json) = serde_json::to_string(answer) else {
            return Ok(());
        };
        if json.len() > MAX_ENTRY_BYTES {
            return Ok(());
        }
        let mut conn = self.conn.clone();
        let () = redis::cmd("SET")
            .arg(key.as_str())
            .arg(json)
            .arg("EX")
            .arg(self.ttl.as_secs().max(1))
            .query_async(&mut conn)
            .await?;
        Ok(())
    }
}

/// Canonical bytes of what decides the answer (see the module documentation).
pub fn fingerprint(request: &ChatRequest) -> Vec<u8> {
    let mut value = serde_json::to_value(request).unwrap_or(Value::Null);
    if let Value::Object(map) = &mut value {
        map.remove("stream");
        map.remove("stream_options");
        let g = &request.gateway;
        if let Some(p) = &g.provider {
            map.insert("provider".into(), p.clone());
        }
        for (name, list) in [
            ("models", &g.models),
            ("fallback_models", &g.fallback_models),
        ] {
            if let Some(l) = list {
                map.insert(name.into(), Value::from(l.clone()));
            }
        }
    }
    let mut out = Vec::new();
    write_canonical(&value, &mut out);
    out
}

fn write_canonical(v: &Value, out: &mut Vec<u8>) {
    match v {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            out.push(b'{');
            for (i, k) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_canonical(&Value::String(k.clone()), out);
                out.push(b':');
                if let Some(item) = map.get(k) {
                    write_canonical(item, out);
                }
            }
            out.push(b'}');
        }
        Value::Array(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_canonical(item, out);
            }
            out.push(b']');
        }
        scalar => out.extend_from_slice(scalar.to_string().as_bytes()),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use serde_json::json;

    fn request(v: Value) -> ChatRequest {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn fingerprint_ignores_format_fields_and_key_order() {
        let a = request(
            json!({"model": "a/m", "messages": [{"role": "user", "content": "hi"}],
            "temperature": 0.5, "stream": true, "stream_options": {"include_usage": true},
            "usage": {"include": true}, "logit_bias": {"2": 1, "1": 2}}),
        );
        let b = request(json!({"logit_bias": {"1": 2, "2": 1}, "temperature": 0.5,
            "messages": [{"content": "hi", "role": "user"}], "model": "a/m"}));
        assert_eq!(fingerprint(&a), fingerprint(&b));
        let text = String::from_utf8(fingerprint(&b)).unwrap();
        assert!(
            text.starts_with("{\"logit_bias\":{\"1\":2,\"2\":1},\"messages\""),
            "{text}"
        );
    }

    #[test]
    fn fingerprint_keeps_what_changes_the_answer() {
        let base = json!({"model": "a/m", "messages": [{"role": "user", "content": "hi"}]});
        let fp = |patch: Value| {
            let mut v = base.clone();
            for (k, x) in patch.as_object().unwrap() {
                v[k] = x.clone();
            }
            fingerprint(&request(v))
        };
        let plain = fp(json!({}));
        assert_ne!(plain, fp(json!({"model": "a/other"})));
        assert_ne!(plain, fp(json!({"temperature": 0.1})));
        assert_ne!(
            plain,
            fp(json!({"messages": [{"role": "user", "content": "hi!"}]}))
        );
        assert_ne!(plain, fp(json!({"provider": {"only": ["x"]}})));
        assert_ne!(plain, fp(json!({"models": ["a/b"]})));
        assert_ne!(plain, fp(json!({"user": "someone"})));
    }

    #[test]
    fn answers_with_tool_calls_are_not_stored() {
        let response: ChatResponse = serde_json::from_value(json!({"choices": [{"index": 0,
            "message": {"role": "assistant", "content": null, "tool_calls": [{"id": "c1"}]},
            "finish_reason": "tool_calls"}]}))
        .unwrap();
        assert!(CachedAnswer::from_response(&response, Usage::default(), "m", "p", "u").is_none());
        let mut rec = StreamRecorder::default();
        let chunk: ChatChunk = serde_json::from_value(json!({"choices": [{"index": 0,
            "delta": {"tool_calls": [{"index": 0, "id": "c1"}]}}]}))
        .unwrap();
        rec.observe(&chunk);
        assert!(rec.finish(Usage::default(), "m", "p", "u", 0).is_none());
    }

    #[test]
    fn a_recorded_stream_replays_as_the_same_text() {
        let mut rec = StreamRecorder::default();
        for piece in ["Hel", "lo", " there"] {
            let chunk: ChatChunk = serde_json::from_value(
                json!({"choices": [{"index": 0, "delta": {"content": piece}}]}),
            )
            .unwrap();
            rec.observe(&chunk);
        }
        let end: ChatChunk = serde_json::from_value(
            json!({"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}),
        )
        .unwrap();
        rec.observe(&end);
        let usage = Usage {
            prompt_tokens: 3,
            completion_tokens: 2,
            ..Default::default()
        };
        let answer = rec.finish(usage, "a/m", "p", "u", 5).unwrap();
        assert_eq!(answer.message.content.as_deref(), Some("Hello there"));
        assert_eq!(answer.finish_reason.as_deref(), Some("stop"));
        let events = answer.to_events();
        let text: String = events
            .iter()
            .filter_map(|e| match e {
                StreamEvent::Chunk(c) => c.choices[0].delta.content.clone(),
                StreamEvent::Usage(_) => None,
            })
            .collect();
        assert_eq!(text, "Hello there");
        assert!(matches!(events.last(), Some(StreamEvent::Usage(u)) if *u == usage));
        let response = answer.to_response();
        assert_eq!(
            response.choices[0].message.content.as_deref(),
            Some("Hello there")
        );
    }
}
