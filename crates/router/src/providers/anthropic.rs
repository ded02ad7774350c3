//! The Anthropic Messages API (`POST {base}/v1/messages`, headers `x-api-key` and
//! `anthropic-version: 2023-06-01`), translated to and from the internal OpenAI shape.
//!
//! Request rules:
//! - `system` and `developer` messages, wherever they appear, become `system` text blocks in
//!   order (`cache_control` kept); consecutive turns of one role are merged into one turn.
//! - Text parts keep `cache_control`; empty text is left out (Anthropic rejects empty blocks).
//!   Images: base64 data URLs become `base64` sources, http(s) URLs `url` sources (JPEG, PNG,
//!   GIF, WebP). `file` parts with a PDF (data URL or URL) become `document` blocks. Audio
//!   input and other file types are answered with a 400 naming the part.
//! - Assistant `tool_calls` become `tool_use` blocks; `tool` messages become `tool_result`
//!   blocks in a user turn (consecutive ones merged). Assistant `reasoning_details` with a
//!   signature (or encrypted data) go first as `thinking`/`redacted_thinking` blocks when this
//!   request has thinking on, so multi-turn thinking with tools verifies.
//! - `max_tokens` is always set: the request's limit, or the endpoint's `max_output_tokens`,
//!   and never above the latter (the reservation assumed that bound).
//! - `temperature` is clamped to Anthropic's 0..1; `top_p`, `top_k` pass; `stop` becomes
//!   `stop_sequences`; `user` becomes `metadata.user_id`; `parallel_tool_calls: false` becomes
//!   `disable_parallel_tool_use`. `seed`, `frequency_penalty`, `presence_penalty`,
//!   `logit_bias` are dropped (no equivalent).
//! - `reasoning` becomes `thinking: {type: enabled, budget_tokens}` (budgets in
//!   `translate`); the budget must stay below `max_tokens` or the request is a 400. With
//!   thinking on, `temperature`/`top_p`/`top_k` are dropped and a forced `tool_choice` is a
//!   400 (Anthropic allows neither). When the latest assistant turn called tools but carries no
//!   signed thinking to send back, thinking is left off for that request (Anthropic would
//!   reject the tool loop otherwise).
//! - `response_format: json_object` adds a system instruction to answer with one JSON object.
//!   `json_schema` (object schemas) is a forced tool whose `input_schema` is the schema; its
//!   input comes back as the message content with `finish_reason: stop`. It cannot be combined
//!   with `tools` or `reasoning` (400).

use std::sync::Arc;

use infron_billing::Usage;
use secrecy::ExposeSecret;
use serde_json::{json, Map, Value};

use super::anthropic_stream::AnthropicStream;
use super::http::{self, untranslatable};
use super::media::{self, Media};
use super::translate::{self, Target, Thinking, ToolChoice};
use super::{ProviderClient, ProviderError, Reply};
use crate::catalog::Endpoint;
use crate::types::{
    ChatRequest, ChatResponse, Choice, Content, ContentPart, Message, ResponseMessage, Role, Stop,
};

pub const API_VERSION: &str = "2023-06-01";
/// Anthropic's smallest thinking budget, and the largest this gateway asks for by effort.
const THINKING_MIN: u64 = 1024;
const THINKING_CAP: u64 = 32_000;
/// `format` of the `reasoning_details` this adapter emits and accepts.
pub const REASONING_FORMAT: &str = "anthropic-claude-v1";
const JSON_OBJECT_INSTRUCTION: &str =
    "Respond with a single valid JSON object and nothing else: no prose, no code fences.";

/// A request translated for Anthropic, and what translating its answer needs to know.
#[derive(Debug, Clone)]
pub struct Prepared {
    pub body: Value,
    /// The forced tool carrying a `json_schema` answer; its input is the message content.
    pub json_tool: Option<String>,
    pub exclude_reasoning: bool,
}

/// Translates a chat request; `Err` is a 400 message naming the field.
pub fn prepare(endpoint: &Endpoint, request: &ChatRequest) -> Result<Prepared, String> {
    translate::check_unsupported(request, Target::Anthropic)?;
    let reasoning = translate::reasoning(request)?;
    let cap = endpoint.max_output_tokens.max(1);
    let max_tokens = request.max_output().unwrap_or(cap).min(cap);
    let budget = match reasoning.thinking {
        Thinking::Default | Thinking::Off => None,
        Thinking::Effort(e) => Some(e.budget(max_tokens, THINKING_MIN, THINKING_CAP)),
        Thinking::Budget(b) => Some(b.max(THINKING_MIN)),
    }
    .filter(|_| !unsigned_tool_turn(request));
    if let Some(b) = budget {
        if b >= max_tokens {
            return Err(format!(
                "max_tokens: reasoning on Anthropic models needs max_tokens above the thinking budget ({b} tokens); raise max_tokens or lower reasoning.max_tokens"
            ));
        }
    }
    let thinking = budget.is_some();

    let (mut system, messages) = messages(request, thinking)?;
    let mut body = Map::new();
    body.insert("model".into(), json!(endpoint.upstream_model));
    body.insert("max_tokens".into(), json!(max_tokens));

    let mut tools: Vec<Value> = translate::function_tools(request)?
        .into_iter()
        .map(|t| {
            let mut o = Map::new();
            o.insert("name".into(), json!(t.name));
            if let Some(d) = t.description {
                o.insert("description".into(), json!(d));
            }
            let schema = t
                .parameters
                .unwrap_or_else(|| json!({"type": "object", "properties": {}}));
            o.insert("input_schema".into(), schema);
            if let Some(cc) = t.extra.get("cache_control") {
                o.insert("cache_control".into(), cc.clone());
            }
            Value::Object(o)
        })
        .collect();
    let mut tool_choice = tool_choice(request, &tools, thinking)?;

    let mut json_tool = None;
    let format = request.response_format.as_ref().filter(|f| !f.is_null());
    match format.and_then(|f| f.get("type")).and_then(Value::as_str) {
        None | Some("text") => {}
        Some("json_object") => {
            system.push(json!({"type": "text", "text": JSON_OBJECT_INSTRUCTION}))
        }
        Some("json_schema") => {
            if !tools.is_empty() {
                return Err("response_format: json_schema cannot be combined with tools on Anthropic models".into());
            }
            if thinking {
                return Err("response_format: json_schema cannot be combined with reasoning on Anthropic models".into());
            }
            let (name, schema) = translate::json_schema(format.unwrap_or(&Value::Null))?;
            if schema
                .get("type")
                .and_then(Value::as_str)
                .is_some_and(|t| t != "object")
            {
                return Err("response_format.json_schema.schema: Anthropic models can only be held to an object schema".into());
            }
            let name = tool_name(&name);
            tools.push(json!({
                "name": name,
                "description": "Answer with JSON matching this schema.",
                "input_schema": schema,
            }));
            tool_choice = Some(json!({"type": "tool", "name": name}));
            json_tool = Some(name);
        }
        Some(other) => return Err(format!("response_format.type: '{other}' is not supported")),
    }

    if !system.is_empty() {
        body.insert("system".into(), Value::Array(system));
    }
    body.insert("messages".into(), Value::Array(messages));
    if !tools.is_empty() {
        body.insert("tools".into(), Value::Array(tools));
        if let Some(tc) = tool_choice {
            body.insert("tool_choice".into(), tc);
        }
    }
    if let Some(stop) = &request.stop {
        let list = match stop {
            Stop::One(s) => vec![s.clone()],
            Stop::Many(v) => v.clone(),
        };
        if !list.is_empty() {
            body.insert("stop_sequences".into(), json!(list));
        }
    }
    if let Some(b) = budget {
        body.insert(
            "thinking".into(),
            json!({"type": "enabled", "budget_tokens": b}),
        );
    } else {
        if let Some(t) = request.temperature {
            body.insert("temperature".into(), json!(t.clamp(0.0, 1.0)));
        }
        if let Some(p) = request.top_p {
            body.insert("top_p".into(), json!(p));
        }
        if let Some(k) = request.extra.get("top_k").filter(|k| k.is_u64()) {
            body.insert("top_k".into(), k.clone());
        }
    }
    if let Some(user) = request.user.as_deref().filter(|u| !u.is_empty()) {
        body.insert("metadata".into(), json!({"user_id": user}));
    }
    if request.stream {
        body.insert("stream".into(), json!(true));
    }
    Ok(Prepared {
        body: Value::Object(body),
        json_tool,
        exclude_reasoning: reasoning.exclude,
    })
}

/// Whether the latest assistant turn called tools without the signed thinking that opened it
/// (a client that dropped `reasoning_details`, or asked for `exclude`). Anthropic rejects
/// thinking in that tool loop, so thinking is left off for this request instead.
fn unsigned_tool_turn(request: &ChatRequest) -> bool {
    let Some(last) = request
        .messages
        .iter()
        .rev()
        .find(|m| m.role == Role::Assistant)
    else {
        return false;
    };
    let calls = last.tool_calls.as_ref().is_some_and(|c| !c.is_empty());
    let signed = translate::merged_reasoning_details(last.extra.get("reasoning_details"))
        .iter()
        .any(|d| {
            d.get("format")
                .and_then(Value::as_str)
                .is_none_or(|f| f == REASONING_FORMAT)
                && (d.get("signature").is_some_and(Value::is_string)
                    || d.get("data").is_some_and(Value::is_string))
        });
    calls && !signed
}

/// Anthropic tool names are `[a-zA-Z0-9_-]{1,64}`.
fn tool_name(name: &str) -> String {
    let clean: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .take(64)
        .collect();
    if clean.is_empty() {
        "json_response".into()
    } else {
        clean
    }
}

fn tool_choice(
    request: &ChatRequest,
    tools: &[Value],
    thinking: bool,
) -> Result<Option<Value>, String> {
    if tools.is_empty() {
        return Ok(None);
    }
    let parallel = request
        .extra
        .get("parallel_tool_calls")
        .and_then(Value::as_bool);
    let mut choice = match translate::tool_choice(request)? {
        None if parallel == Some(false) => json!({"type": "auto"}),
        None => return Ok(None),
        Some(ToolChoice::Auto) => json!({"type": "auto"}),
        Some(ToolChoice::None) => return Ok(Some(json!({"type": "none"}))),
        Some(ToolChoice::Required) => json!({"type": "any"}),
        Some(ToolChoice::Named(n)) => {
            if !tools.iter().any(|t| t["name"] == n.as_str()) {
                return Err(format!("tool_choice: no tool named '{n}' in tools"));
            }
            json!({"type": "tool", "name": n})
        }
    };
    if thinking && choice["type"] != "auto" {
        return Err("tool_choice: Anthropic models cannot be forced to call a tool while reasoning; use \"auto\" or turn reasoning off".into());
    }
    if parallel == Some(false) {
        choice["disable_parallel_tool_use"] = json!(true);
    }
    Ok(Some(choice))
}

/// System blocks and alternating user/assistant turns.
fn messages(request: &ChatRequest, thinking: bool) -> Result<(Vec<Value>, Vec<Value>), String> {
    let mut system = Vec::new();
    let mut turns: Vec<(&'static str, Vec<Value>)> = Vec::new();
    for (i, m) in request.messages.iter().enumerate() {
        let path = format!("messages[{i}]");
        let (role, blocks) = match m.role {
            Role::System | Role::Developer => {
                system.extend(blocks(m.content.as_ref(), &path, false)?);
                continue;
            }
            Role::User => ("user", blocks(m.content.as_ref(), &path, true)?),
            Role::Assistant => ("assistant", assistant_blocks(m, &path, thinking)?),
            Role::Tool => ("user", vec![tool_result(m, &path)?]),
            Role::Function => {
                return Err(format!(
                    "{path}.role: 'function' messages are not supported by Anthropic models; use 'tool'"
                ))
            }
        };
        if blocks.is_empty() {
            continue;
        }
        match turns.last_mut() {
            Some((last, existing)) if *last == role => existing.extend(blocks),
            _ => turns.push((role, blocks)),
        }
    }
    if turns.is_empty() {
        return Err(
            "messages: Anthropic models need at least one user or assistant message".into(),
        );
    }
    let messages = turns
        .into_iter()
        .map(|(role, content)| json!({"role": role, "content": content}))
        .collect();
    Ok((system, messages))
}

/// Content blocks of one message; `media` allows images and documents.
fn blocks(content: Option<&Content>, path: &str, media: bool) -> Result<Vec<Value>, String> {
    let mut out = Vec::new();
    match content {
        None => {}
        Some(Content::Text(t)) if t.is_empty() => {}
        Some(Content::Text(t)) => out.push(json!({"type": "text", "text": t})),
        Some(Content::Parts(parts)) => {
            for (j, part) in parts.iter().enumerate() {
                let ppath = format!("{path}.content[{j}]");
                match part {
                    ContentPart::Text { text, extra } => {
                        if text.is_empty() {
                            continue;
                        }
                        let mut b = json!({"type": "text", "text": text});
                        if let Some(cc) = extra.get("cache_control") {
                            b["cache_control"] = cc.clone();
                        }
                        out.push(b);
                    }
                    _ if !media => {
                        return Err(format!(
                            "{ppath}: only text is allowed here for Anthropic models"
                        ))
                    }
                    ContentPart::ImageUrl { image_url } => {
                        out.push(image_block(&image_url.url, &ppath)?)
                    }
                    ContentPart::File { file } => out.push(document_block(file, &ppath)?),
                    ContentPart::InputAudio { .. } => {
                        return Err(format!(
                            "{ppath}: input_audio is not supported by Anthropic models"
                        ))
                    }
                }
            }
        }
    }
    Ok(out)
}

fn image_block(url: &str, path: &str) -> Result<Value, String> {
    match media::parse_url(url).map_err(|e| format!("{path}.image_url.url: {e}"))? {
        Media::Inline { media_type, data } => {
            if !["image/jpeg", "image/png", "image/gif", "image/webp"]
                .contains(&media_type.as_str())
            {
                return Err(format!(
                    "{path}.image_url: image type '{media_type}' is not supported by Anthropic models"
                ));
            }
            Ok(
                json!({"type": "image", "source": {"type": "base64", "media_type": media_type, "data": data}}),
            )
        }
        Media::Url { url } => Ok(json!({"type": "image", "source": {"type": "url", "url": url}})),
    }
}

fn document_block(file: &Value, path: &str) -> Result<Value, String> {
    let source = match media::parse_file(file).map_err(|e| format!("{path}.file: {e}"))? {
        Media::Inline { media_type, data } if media_type == "application/pdf" => {
            json!({"type": "base64", "media_type": media_type, "data": data})
        }
        Media::Inline { media_type, .. } => {
            return Err(format!(
                "{path}.file: '{media_type}' files are not supported by Anthropic models (PDF only)"
            ))
        }
        Media::Url { url } => json!({"type": "url", "url": url}),
    };
    let mut block = json!({"type": "document", "source": source});
    if let Some(name) = file.get("filename").and_then(Value::as_str) {
        block["title"] = json!(name);
    }
    Ok(block)
}

fn assistant_blocks(m: &Message, path: &str, thinking: bool) -> Result<Vec<Value>, String> {
    let mut out = Vec::new();
    if thinking {
        for d in translate::merged_reasoning_details(m.extra.get("reasoning_details")) {
            let format = d.get("format").and_then(Value::as_str);
            if format.is_some_and(|f| f != REASONING_FORMAT) {
                continue; // another provider's reasoning cannot be verified here
            }
            match d.get("type").and_then(Value::as_str) {
                Some("reasoning.text") => {
                    if let Some(sig) = d.get("signature").and_then(Value::as_str) {
                        let text = d.get("text").and_then(Value::as_str).unwrap_or_default();
                        out.push(json!({"type": "thinking", "thinking": text, "signature": sig}));
                    }
                }
                Some("reasoning.encrypted") => {
                    if let Some(data) = d.get("data").and_then(Value::as_str) {
                        out.push(json!({"type": "redacted_thinking", "data": data}));
                    }
                }
                _ => {}
            }
        }
    }
    out.extend(blocks(m.content.as_ref(), path, false)?);
    for (k, call) in m.tool_calls.iter().flatten().enumerate() {
        let cpath = format!("{path}.tool_calls[{k}]");
        let id = call
            .get("id")
            .and_then(Value::as_str)
            .ok_or_else(|| format!("{cpath}.id: missing"))?;
        let name = call
            .pointer("/function/name")
            .and_then(Value::as_str)
            .ok_or_else(|| format!("{cpath}.function.name: missing"))?;
        let input = translate::call_arguments(call, &cpath)?;
        out.push(json!({"type": "tool_use", "id": id, "name": name, "input": input}));
    }
    Ok(out)
}

fn tool_result(m: &Message, path: &str) -> Result<Value, String> {
    let id = m
        .tool_call_id
        .as_deref()
        .ok_or_else(|| format!("{path}.tool_call_id: missing"))?;
    let mut block = json!({"type": "tool_result", "tool_use_id": id});
    match &m.content {
        None => {}
        Some(Content::Text(t)) => block["content"] = json!(t),
        Some(parts @ Content::Parts(_)) => {
            block["content"] = Value::Array(blocks(Some(parts), path, true)?)
        }
    }
    Ok(block)
}

/// Anthropic's usage: `input_tokens` excludes cache reads and writes, which are added back so
/// `prompt_tokens` is the whole prompt. Thinking is inside `output_tokens`, not reported apart.
pub fn parse_usage(u: &Value) -> Usage {
    let n = |k: &str| u.get(k).and_then(Value::as_u64).unwrap_or(0);
    let read = n("cache_read_input_tokens");
    let write = n("cache_creation_input_tokens");
    Usage {
        prompt_tokens: n("input_tokens") + read + write,
        completion_tokens: n("output_tokens"),
        cached_tokens: read,
        cache_write_tokens: write,
        reasoning_tokens: 0,
        images: 0,
    }
}

/// `stop_reason` to OpenAI's `finish_reason`.
pub fn finish_reason(stop: &str, json_tool: bool) -> String {
    match stop {
        "max_tokens" | "model_context_window_exceeded" => "length",
        "tool_use" if json_tool => "stop",
        "tool_use" => "tool_calls",
        "refusal" => "content_filter",
        _ => "stop", // end_turn, stop_sequence, pause_turn
    }
    .into()
}

/// A complete Messages response to a chat completion and its usage.
pub fn parse_response(
    body: &Value,
    prepared: &Prepared,
) -> Result<(ChatResponse, Option<Usage>), String> {
    let blocks = body
        .get("content")
        .and_then(Value::as_array)
        .ok_or("no content array")?;
    let mut text = String::new();
    let mut has_text = false;
    let mut reasoning = String::new();
    let mut details = Vec::new();
    let mut calls = Vec::new();
    for (i, b) in blocks.iter().enumerate() {
        match b.get("type").and_then(Value::as_str) {
            Some("text") => {
                has_text = true;
                text.push_str(b.get("text").and_then(Value::as_str).unwrap_or_default());
            }
            Some("thinking") => {
                let t = b
                    .get("thinking")
                    .and_then(Value::as_str)
                    .unwrap_or_default();
                reasoning.push_str(t);
                details.push(json!({"type": "reasoning.text", "text": t,
                    "signature": b.get("signature"), "format": REASONING_FORMAT, "index": i}));
            }
            Some("redacted_thinking") => details.push(json!({"type": "reasoning.encrypted",
                "data": b.get("data"), "format": REASONING_FORMAT, "index": i})),
            Some("tool_use") => {
                let name = b.get("name").and_then(Value::as_str).unwrap_or_default();
                let input = b.get("input").cloned().unwrap_or_else(|| json!({}));
                if prepared.json_tool.as_deref() == Some(name) {
                    has_text = true;
                    text.push_str(&input.to_string());
                } else {
                    calls.push(json!({"id": b.get("id"), "type": "function",
                        "function": {"name": name, "arguments": input.to_string()}}));
                }
            }
            _ => {} // server tools and future block types carry nothing for the client
        }
    }
    let stop = body
        .get("stop_reason")
        .and_then(Value::as_str)
        .unwrap_or("end_turn");
    let show_reasoning = !prepared.exclude_reasoning;
    let message = ResponseMessage {
        role: "assistant".into(),
        content: (has_text || calls.is_empty()).then_some(text),
        reasoning: (show_reasoning && !reasoning.is_empty()).then_some(reasoning),
        reasoning_details: (show_reasoning && !details.is_empty()).then_some(details),
        tool_calls: (!calls.is_empty()).then_some(calls),
        extra: Map::new(),
    };
    let response = ChatResponse {
        id: body
            .get("id")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string(),
        object: "chat.completion".into(),
        created: 0,
        model: body
            .get("model")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string(),
        provider: None,
        choices: vec![Choice {
            index: 0,
            message,
            finish_reason: Some(finish_reason(stop, prepared.json_tool.is_some())),
            extra: Map::new(),
        }],
        usage: None,
        extra: Map::new(),
    };
    Ok((response, body.get("usage").map(parse_usage)))
}

/// `{base}/v1/messages`, whether or not the catalog's base URL already ends in `/v1`.
fn url(base: &str) -> String {
    match base.strip_suffix("/v1") {
        Some(root) => format!("{root}/v1/messages"),
        None => format!("{base}/v1/messages"),
    }
}

pub(super) async fn chat(
    client: &ProviderClient,
    endpoint: &Arc<Endpoint>,
    request: &ChatRequest,
) -> Result<Reply, ProviderError> {
    let provider = endpoint.provider.name.as_str();
    let prepared = prepare(endpoint, request).map_err(|m| untranslatable(endpoint, m))?;
    let key = endpoint
        .provider
        .api_key
        .as_ref()
        .map(|k| k.expose_secret().to_string())
        .unwrap_or_default();
    let builder = client
        .http()
        .post(url(&endpoint.provider.base_url))
        .header("x-api-key", key)
        .header("anthropic-version", API_VERSION)
        .json(&prepared.body);
    let response = http::send(client, endpoint, builder, |s, _| s).await?;
    if http::streams(request.stream, &response) {
        let translator = AnthropicStream::new(
            provider,
            prepared.json_tool.clone(),
            prepared.exclude_reasoning,
        );
        return Ok(Reply::Stream {
            head: Vec::new(),
            rest: http::event_stream(
                provider.to_string(),
                response,
                client.timeouts.idle,
                translator,
            ),
        });
    }
    let body = http::json_body(client, provider, response).await?;
    let (response, usage) =
        parse_response(&body, &prepared).map_err(|e| http::bad_response(provider, &e))?;
    Ok(Reply::Complete { response, usage })
}
