//! `POST /v1/messages` and `POST /v1/messages/count_tokens`: Anthropic's Messages API, so the
//! official `anthropic` SDKs work unchanged. A request is translated to the internal chat
//! request and served by the same routing, fallback, reservation and billing as
//! `/v1/chat/completions`; the answer, the stream (`message_start` … `message_stop`) and errors
//! are translated back to Anthropic's shapes.

use actix_web::{web, HttpRequest, HttpResponse, ResponseError};
use infron_billing::Usage;
use infron_router::providers::anthropic::REASONING_FORMAT;
use infron_router::types::{
    ChatRequest, ChatResponse, Content, ContentPart, GatewayOptions, ImageUrl, Message, Role, Stop,
};
use serde_json::{json, Map, Value};

use super::chat::{self, Shape};
use crate::error::ApiError;
use crate::request_id::RequestId;
use crate::state::AppState;

/// `POST /v1/messages`.
#[utoipa::path(
    post, path = "/v1/messages", tag = "Messages",
    summary = "Create a message (Anthropic)",
    description = "Anthropic's Messages API, for every catalog model. With `stream: true`, Anthropic's event sequence (`message_start` … `message_stop`) as `text/event-stream`. Errors in Anthropic's shape.",
    request_body(content = crate::openapi::schemas::MessagesBody, content_type = "application/json",
        example = json!({"model": "openai/gpt-4o-mini", "max_tokens": 16, "messages": [{"role": "user", "content": "Hello"}]})),
    params(("anthropic-version" = Option<String>, Header, description = "Accepted and ignored")),
    responses((status = 200, description = "The message, or its stream",
        content((crate::openapi::schemas::MessageResponse = "application/json"), (String = "text/event-stream")))),
    security(("bearer" = []), ("x_api_key" = [])),
)]
pub async fn messages(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> HttpResponse {
    let id = RequestId::public(RequestId::of(&req));
    match chat::serve(req, payload, state, Shape::Messages).await {
        Ok(mut r) => {
            if let Ok(v) = actix_web::http::header::HeaderValue::from_str(&id) {
                r.headers_mut().insert(
                    actix_web::http::header::HeaderName::from_static("request-id"),
                    v,
                );
            }
            r
        }
        Err(e) => error_response(&e, &id),
    }
}

/// `POST /v1/messages/count_tokens`: `{"input_tokens": N}`, an estimate of the prompt (about
/// four bytes of text per token, plus images), as the gateway has no provider tokenizers.
#[utoipa::path(
    post, path = "/v1/messages/count_tokens", tag = "Messages",
    summary = "Count a message request's input tokens (Anthropic)",
    description = "An estimate (about four bytes of text per token, images and tools included); nothing is charged.",
    request_body(content = crate::openapi::schemas::CountTokensBody, content_type = "application/json",
        example = json!({"model": "openai/gpt-4o-mini", "messages": [{"role": "user", "content": "Hello"}]})),
    responses((status = 200, description = "The estimate", body = crate::openapi::schemas::CountTokensResponse)),
    security(("bearer" = []), ("x_api_key" = [])),
)]
pub async fn count_tokens(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> HttpResponse {
    let id = RequestId::public(RequestId::of(&req));
    let result = async {
        state.auth.authenticate(&req).await?;
        let raw = super::body::read(&req, payload, state.settings.max_body_bytes).await?;
        let value: Value = super::body::parse_json(&raw)?;
        let chat = to_chat(value, false)?;
        let name = chat.model.clone().unwrap_or_default();
        if infron_router::preferences::resolve_model(&state.catalog(), &name).is_err() {
            return Err(ApiError::NotFound(format!(
                "model '{name}' is not available on this gateway; GET /v1/models lists the models"
            )));
        }
        let tools: u64 = chat
            .tools
            .iter()
            .flatten()
            .map(|t| (t.to_string().len() as u64).div_ceil(4))
            .sum();
        Ok(chat.prompt_token_estimate() + tools)
    }
    .await;
    match result {
        Ok(n) => HttpResponse::Ok().json(json!({ "input_tokens": n })),
        Err(e) => error_response(&e, &id),
    }
}

/// An error in Anthropic's shape: `{"type": "error", "error": {"type", "message"}, "request_id"}`.
pub fn error_response(e: &ApiError, request_id: &str) -> HttpResponse {
    let status = e.status_code();
    let kind = match status.as_u16() {
        400 | 409 => "invalid_request_error",
        413 => "request_too_large",
        401 => "authentication_error",
        402 => "billing_error",
        403 => "permission_error",
        404 => "not_found_error",
        408 | 504 => "timeout_error",
        429 => "rate_limit_error",
        502 | 503 => "overloaded_error",
        _ => "api_error",
    };
    // The standard error response carries the headers (Retry-After, rate-limit state); only
    // the body changes shape.
    let mut response = e.error_response();
    if let Ok(v) = actix_web::http::header::HeaderValue::from_str(request_id) {
        response.headers_mut().insert(
            actix_web::http::header::HeaderName::from_static("request-id"),
            v,
        );
    }
    response.set_body(actix_web::body::BoxBody::new(
        json!({
            "type": "error",
            "error": { "type": kind, "message": e.to_string() },
            "request_id": request_id,
        })
        .to_string(),
    ))
}

fn invalid(param: impl Into<String>, message: impl Into<String>) -> ApiError {
    ApiError::invalid(param, message)
}

// ---- request: Anthropic to chat ----

/// Parses a Messages request body into the internal chat request. `require_max_tokens` is
/// false for `count_tokens`, which takes no `max_tokens`.
pub fn to_chat(body: Value, require_max_tokens: bool) -> Result<ChatRequest, ApiError> {
    let Value::Object(mut o) = body else {
        return Err(invalid("body", "the request body must be a JSON object"));
    };
    let model = match o.remove("model") {
        Some(Value::String(m)) if !m.trim().is_empty() => m,
        _ => return Err(invalid("model", "'model' is required")),
    };
    let max_tokens = match o.remove("max_tokens") {
        Some(v) => Some(
            v.as_u64()
                .filter(|n| *n >= 1)
                .ok_or_else(|| invalid("max_tokens", "'max_tokens' must be a positive integer"))?,
        ),
        None if require_max_tokens => {
            return Err(invalid("max_tokens", "'max_tokens' is required"))
        }
        None => None,
    };
    let mut messages = Vec::new();
    if let Some(system) = o.remove("system") {
        let content = match system {
            Value::String(s) => Content::Text(s),
            Value::Array(blocks) => Content::Parts(
                blocks
                    .iter()
                    .enumerate()
                    .map(|(i, b)| text_part(b, &format!("system[{i}]")))
                    .collect::<Result<_, _>>()?,
            ),
            Value::Null => Content::Text(String::new()),
            _ => {
                return Err(invalid(
                    "system",
                    "'system' must be a string or text blocks",
                ))
            }
        };
        messages.push(message(Role::System, Some(content)));
    }
    let Some(Value::Array(turns)) = o.remove("messages") else {
        return Err(invalid("messages", "'messages' must be an array"));
    };
    for (i, turn) in turns.iter().enumerate() {
        let path = format!("messages[{i}]");
        match turn.get("role").and_then(Value::as_str) {
            Some("user") => user_turn(turn.get("content"), &path, &mut messages)?,
            Some("assistant") => messages.push(assistant_turn(turn.get("content"), &path)?),
            _ => {
                return Err(invalid(
                    format!("{path}.role"),
                    "'role' must be 'user' or 'assistant'",
                ))
            }
        }
    }
    let tools = match o.remove("tools") {
        None | Some(Value::Null) => None,
        Some(Value::Array(tools)) => Some(
            tools
                .iter()
                .enumerate()
                .map(|(i, t)| tool(t, i))
                .collect::<Result<Vec<_>, _>>()?,
        ),
        Some(_) => return Err(invalid("tools", "'tools' must be an array")),
    };
    let mut extra = Map::new();
    let tool_choice = match o.remove("tool_choice") {
        None | Some(Value::Null) => None,
        Some(tc) => {
            if tc.get("disable_parallel_tool_use") == Some(&Value::Bool(true)) {
                extra.insert("parallel_tool_calls".into(), json!(false));
            }
            Some(match tc.get("type").and_then(Value::as_str) {
                Some("auto") => json!("auto"),
                Some("any") => json!("required"),
                Some("none") => json!("none"),
                Some("tool") => {
                    let name = tc.get("name").and_then(Value::as_str).ok_or_else(|| {
                        invalid("tool_choice.name", "a 'tool' tool_choice needs 'name'")
                    })?;
                    json!({"type": "function", "function": {"name": name}})
                }
                _ => {
                    return Err(invalid(
                        "tool_choice.type",
                        "'tool_choice.type' must be auto, any, tool or none",
                    ))
                }
            })
        }
    };
    let stop = match o.remove("stop_sequences") {
        None | Some(Value::Null) => None,
        Some(Value::Array(v)) => Some(Stop::Many(
            v.iter()
                .map(|s| {
                    s.as_str().map(str::to_string).ok_or_else(|| {
                        invalid("stop_sequences", "'stop_sequences' must be strings")
                    })
                })
                .collect::<Result<_, _>>()?,
        )),
        Some(_) => {
            return Err(invalid(
                "stop_sequences",
                "'stop_sequences' must be an array",
            ))
        }
    };
    let reasoning = match o.remove("thinking") {
        None | Some(Value::Null) => None,
        Some(t) => match t.get("type").and_then(Value::as_str) {
            Some("enabled") => {
                let budget = t
                    .get("budget_tokens")
                    .and_then(Value::as_u64)
                    .ok_or_else(|| {
                        invalid(
                            "thinking.budget_tokens",
                            "enabled thinking needs 'budget_tokens'",
                        )
                    })?;
                Some(json!({ "max_tokens": budget }))
            }
            Some("disabled") => Some(json!({ "enabled": false })),
            // Adaptive thinking: the model decides; a medium effort is the closest request.
            Some("adaptive") => Some(json!({ "effort": "medium" })),
            _ => {
                return Err(invalid(
                    "thinking.type",
                    "'thinking.type' must be enabled, disabled or adaptive",
                ))
            }
        },
    };
    let user = o
        .remove("metadata")
        .and_then(|m| m.get("user_id").and_then(Value::as_str).map(str::to_string));
    let number = |o: &mut Map<String, Value>, k: &str| -> Result<Option<f64>, ApiError> {
        match o.remove(k) {
            None | Some(Value::Null) => Ok(None),
            Some(v) => v
                .as_f64()
                .map(Some)
                .ok_or_else(|| invalid(k, format!("'{k}' must be a number"))),
        }
    };
    let temperature = number(&mut o, "temperature")?;
    let top_p = number(&mut o, "top_p")?;
    if let Some(k) = o.remove("top_k") {
        extra.insert("top_k".into(), k);
    }
    let stream = match o.remove("stream") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => b,
        Some(_) => return Err(invalid("stream", "'stream' must be a boolean")),
    };
    // The gateway's own options (OpenRouter's `provider`, `models`), as on chat completions.
    let gateway: GatewayOptions = serde_json::from_value(json!({
        "provider": o.remove("provider"),
        "models": o.remove("models"),
    }))
    .map_err(|e| invalid("provider", e.to_string()))?;
    Ok(ChatRequest {
        model: Some(model),
        messages,
        stream,
        stream_options: None,
        max_tokens,
        max_completion_tokens: None,
        temperature,
        top_p,
        stop,
        seed: None,
        tools,
        tool_choice,
        response_format: None,
        reasoning,
        user,
        gateway,
        extra,
    })
}

fn message(role: Role, content: Option<Content>) -> Message {
    Message {
        role,
        content,
        name: None,
        tool_calls: None,
        tool_call_id: None,
        extra: Map::new(),
    }
}

fn text_part(block: &Value, path: &str) -> Result<ContentPart, ApiError> {
    if block.get("type").and_then(Value::as_str) != Some("text") {
        return Err(invalid(
            format!("{path}.type"),
            "only text blocks are allowed here",
        ));
    }
    let text = block
        .get("text")
        .and_then(Value::as_str)
        .ok_or_else(|| invalid(format!("{path}.text"), "a text block needs 'text'"))?;
    let mut extra = Map::new();
    if let Some(cc) = block.get("cache_control") {
        extra.insert("cache_control".into(), cc.clone());
    }
    Ok(ContentPart::Text {
        text: text.to_string(),
        extra,
    })
}

/// `{"type": "base64", "media_type", "data"}` or `{"type": "url", "url"}` as a URL.
fn source_url(block: &Value, path: &str) -> Result<String, ApiError> {
    let source = block
        .get("source")
        .ok_or_else(|| invalid(format!("{path}.source"), "'source' is required"))?;
    match source.get("type").and_then(Value::as_str) {
        Some("base64") => {
            let media_type = source
                .get("media_type")
                .and_then(Value::as_str)
                .ok_or_else(|| invalid(format!("{path}.source.media_type"), "required"))?;
            let data = source
                .get("data")
                .and_then(Value::as_str)
                .ok_or_else(|| invalid(format!("{path}.source.data"), "required"))?;
            Ok(format!("data:{media_type};base64,{data}"))
        }
        Some("url") => source
            .get("url")
            .and_then(Value::as_str)
            .map(str::to_string)
            .ok_or_else(|| invalid(format!("{path}.source.url"), "required")),
        _ => Err(invalid(
            format!("{path}.source.type"),
            "'source.type' must be base64 or url",
        )),
    }
}

/// One part of a user turn (text, image or document).
fn user_part(block: &Value, path: &str) -> Result<ContentPart, ApiError> {
    match block.get("type").and_then(Value::as_str) {
        Some("text") => text_part(block, path),
        Some("image") => Ok(ContentPart::ImageUrl {
            image_url: ImageUrl {
                url: source_url(block, path)?,
                detail: None,
            },
        }),
        Some("document") => {
            let mut file = json!({ "file_data": source_url(block, path)? });
            if let Some(title) = block.get("title").and_then(Value::as_str) {
                file["filename"] = json!(title);
            }
            Ok(ContentPart::File { file })
        }
        Some(other) => Err(invalid(
            format!("{path}.type"),
            format!("content blocks of type '{other}' are not supported here"),
        )),
        None => Err(invalid(format!("{path}.type"), "'type' is required")),
    }
}

/// A user turn: its `tool_result` blocks become tool messages (first, as they answer the
/// previous assistant turn), the rest one user message.
fn user_turn(content: Option<&Value>, path: &str, out: &mut Vec<Message>) -> Result<(), ApiError> {
    match content {
        Some(Value::String(s)) => {
            out.push(message(Role::User, Some(Content::Text(s.clone()))));
            Ok(())
        }
        Some(Value::Array(blocks)) => {
            let mut parts = Vec::new();
            for (j, b) in blocks.iter().enumerate() {
                let bpath = format!("{path}.content[{j}]");
                if b.get("type").and_then(Value::as_str) == Some("tool_result") {
                    out.push(tool_result(b, &bpath)?);
                } else {
                    parts.push(user_part(b, &bpath)?);
                }
            }
            if !parts.is_empty() {
                out.push(message(Role::User, Some(Content::Parts(parts))));
            }
            Ok(())
        }
        _ => Err(invalid(
            format!("{path}.content"),
            "'content' must be a string or an array of blocks",
        )),
    }
}

fn tool_result(block: &Value, path: &str) -> Result<Message, ApiError> {
    let id = block
        .get("tool_use_id")
        .and_then(Value::as_str)
        .ok_or_else(|| invalid(format!("{path}.tool_use_id"), "'tool_use_id' is required"))?;
    let mut content = match block.get("content") {
        None | Some(Value::Null) => Content::Text(String::new()),
        Some(Value::String(s)) => Content::Text(s.clone()),
        Some(Value::Array(blocks)) => Content::Parts(
            blocks
                .iter()
                .enumerate()
                .map(|(k, b)| user_part(b, &format!("{path}.content[{k}]")))
                .collect::<Result<_, _>>()?,
        ),
        Some(_) => {
            return Err(invalid(
                format!("{path}.content"),
                "'content' must be a string or blocks",
            ))
        }
    };
    if block.get("is_error") == Some(&Value::Bool(true)) {
        // Chat has no error flag on tool results: the model reads it in the text.
        content = match content {
            Content::Text(t) => Content::Text(format!("Error: {t}")),
            parts => parts,
        };
    }
    let mut m = message(Role::Tool, Some(content));
    m.tool_call_id = Some(id.to_string());
    Ok(m)
}

fn assistant_turn(content: Option<&Value>, path: &str) -> Result<Message, ApiError> {
    let mut m = message(Role::Assistant, None);
    let blocks = match content {
        Some(Value::String(s)) => {
            m.content = Some(Content::Text(s.clone()));
            return Ok(m);
        }
        Some(Value::Array(blocks)) => blocks,
        _ => {
            return Err(invalid(
                format!("{path}.content"),
                "'content' must be a string or an array of blocks",
            ))
        }
    };
    let mut parts = Vec::new();
    let mut calls = Vec::new();
    let mut details = Vec::new();
    for (j, b) in blocks.iter().enumerate() {
        let bpath = format!("{path}.content[{j}]");
        match b.get("type").and_then(Value::as_str) {
            Some("text") => parts.push(text_part(b, &bpath)?),
            Some("tool_use") => {
                let id = b.get("id").and_then(Value::as_str).unwrap_or_default();
                let name = b
                    .get("name")
                    .and_then(Value::as_str)
                    .ok_or_else(|| invalid(format!("{bpath}.name"), "'name' is required"))?;
                let input = b.get("input").cloned().unwrap_or_else(|| json!({}));
                calls.push(json!({"id": id, "type": "function",
                    "function": {"name": name, "arguments": input.to_string()}}));
            }
            Some("thinking") => details.push(json!({
                "type": "reasoning.text",
                "text": b.get("thinking").and_then(Value::as_str).unwrap_or_default(),
                "signature": b.get("signature"),
                "format": REASONING_FORMAT,
                "index": j,
            })),
            Some("redacted_thinking") => details.push(json!({
                "type": "reasoning.encrypted", "data": b.get("data"),
                "format": REASONING_FORMAT, "index": j,
            })),
            _ => {
                return Err(invalid(
                    format!("{bpath}.type"),
                    "assistant blocks must be text, tool_use, thinking or redacted_thinking",
                ))
            }
        }
    }
    if !parts.is_empty() {
        m.content = Some(Content::Parts(parts));
    }
    if !calls.is_empty() {
        m.tool_calls = Some(calls);
    }
    if !details.is_empty() {
        m.extra
            .insert("reasoning_details".into(), Value::Array(details));
    }
    Ok(m)
}

fn tool(t: &Value, i: usize) -> Result<Value, ApiError> {
    let name = t
        .get("name")
        .and_then(Value::as_str)
        .filter(|n| !n.is_empty())
        .ok_or_else(|| invalid(format!("tools[{i}].name"), "'name' is required"))?;
    if let Some(kind) = t.get("type").and_then(Value::as_str) {
        if kind != "custom" {
            return Err(invalid(
                format!("tools[{i}].type"),
                format!("server tools ('{kind}') are not supported; define client tools with input_schema"),
            ));
        }
    }
    let mut function = json!({
        "name": name,
        "parameters": t.get("input_schema").cloned().unwrap_or_else(|| json!({"type": "object"})),
    });
    if let Some(d) = t.get("description") {
        function["description"] = d.clone();
    }
    let mut out = json!({"type": "function", "function": function});
    if let Some(cc) = t.get("cache_control") {
        out["cache_control"] = cc.clone();
    }
    Ok(out)
}

// ---- response: chat to Anthropic ----

/// `finish_reason` back to Anthropic's `stop_reason`.
pub fn stop_reason(finish: Option<&str>) -> &'static str {
    match finish {
        Some("length") => "max_tokens",
        Some("tool_calls") => "tool_use",
        Some("content_filter") => "refusal",
        _ => "end_turn",
    }
}

/// Anthropic's usage: `input_tokens` counts neither cache reads nor cache writes.
pub fn usage_json(u: &Usage) -> Value {
    json!({
        "input_tokens": u.prompt_tokens.saturating_sub(u.cached_tokens + u.cache_write_tokens),
        "output_tokens": u.completion_tokens,
        "cache_creation_input_tokens": u.cache_write_tokens,
        "cache_read_input_tokens": u.cached_tokens,
    })
}

/// Thinking blocks from OpenRouter-style reasoning details (with their signatures), or from
/// plain reasoning text when a provider gave no details.
fn thinking_blocks(reasoning: Option<&str>, details: Option<&Vec<Value>>) -> Vec<Value> {
    let mut out = Vec::new();
    for d in details.into_iter().flatten() {
        match d.get("type").and_then(Value::as_str) {
            Some("reasoning.text") => out.push(json!({
                "type": "thinking",
                "thinking": d.get("text").and_then(Value::as_str).unwrap_or_default(),
                "signature": d.get("signature").and_then(Value::as_str).unwrap_or_default(),
            })),
            Some("reasoning.encrypted") => out.push(json!({
                "type": "redacted_thinking",
                "data": d.get("data").and_then(Value::as_str).unwrap_or_default(),
            })),
            _ => {}
        }
    }
    if out.is_empty() {
        if let Some(r) = reasoning.filter(|r| !r.is_empty()) {
            out.push(json!({"type": "thinking", "thinking": r, "signature": ""}));
        }
    }
    out
}

/// A complete answer as an Anthropic `message`.
pub fn message_json(id: &str, model: &str, response: &ChatResponse, usage: &Usage) -> Value {
    let mut content = Vec::new();
    let choice = response.choices.first();
    if let Some(c) = choice {
        let m = &c.message;
        content.extend(thinking_blocks(
            m.reasoning.as_deref(),
            m.reasoning_details.as_ref(),
        ));
        if let Some(t) = m.content.as_deref().filter(|t| !t.is_empty()) {
            content.push(json!({"type": "text", "text": t}));
        }
        for call in m.tool_calls.iter().flatten() {
            let args = call
                .pointer("/function/arguments")
                .and_then(Value::as_str)
                .unwrap_or("{}");
            let input: Value = serde_json::from_str(args).unwrap_or_else(|_| json!({}));
            content.push(json!({
                "type": "tool_use",
                "id": call.get("id").and_then(Value::as_str).unwrap_or_default(),
                "name": call.pointer("/function/name").and_then(Value::as_str).unwrap_or_default(),
                "input": input,
            }));
        }
    }
    json!({
        "id": id,
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": content,
        "stop_reason": stop_reason(choice.and_then(|c| c.finish_reason.as_deref())),
        "stop_sequence": null,
        "usage": usage_json(usage),
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn a_full_request_translates() {
        let body = json!({
            "model": "anthropic/claude", "max_tokens": 100,
            "system": [{"type": "text", "text": "be brief", "cache_control": {"type": "ephemeral"}}],
            "messages": [
                {"role": "user", "content": "hi"},
                {"role": "assistant", "content": [
                    {"type": "thinking", "thinking": "hmm", "signature": "sig"},
                    {"type": "tool_use", "id": "tu_1", "name": "get", "input": {"q": 1}}]},
                {"role": "user", "content": [
                    {"type": "tool_result", "tool_use_id": "tu_1", "content": "42"},
                    {"type": "text", "text": "and?"},
                    {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "AAAA"}}]},
            ],
            "tools": [{"name": "get", "description": "d", "input_schema": {"type": "object"}}],
            "tool_choice": {"type": "any", "disable_parallel_tool_use": true},
            "stop_sequences": ["END"], "temperature": 0.5, "top_k": 3,
            "thinking": {"type": "enabled", "budget_tokens": 1024},
            "metadata": {"user_id": "u1"}, "stream": true,
        });
        let r = to_chat(body, true).unwrap();
        assert_eq!(r.model.as_deref(), Some("anthropic/claude"));
        assert_eq!(r.max_tokens, Some(100));
        assert!(r.stream);
        let roles: Vec<Role> = r.messages.iter().map(|m| m.role).collect();
        assert_eq!(
            roles,
            vec![
                Role::System,
                Role::User,
                Role::Assistant,
                Role::Tool,
                Role::User
            ]
        );
        let a = &r.messages[2];
        assert_eq!(
            a.tool_calls.as_ref().unwrap()[0]["function"]["arguments"],
            "{\"q\":1}"
        );
        assert_eq!(a.extra["reasoning_details"][0]["signature"], "sig");
        assert_eq!(r.messages[3].tool_call_id.as_deref(), Some("tu_1"));
        let Some(Content::Parts(parts)) = &r.messages[4].content else {
            panic!("parts")
        };
        assert!(
            matches!(&parts[1], ContentPart::ImageUrl { image_url } if image_url.url == "data:image/png;base64,AAAA")
        );
        assert_eq!(
            r.tools.as_ref().unwrap()[0]["function"]["parameters"]["type"],
            "object"
        );
        assert_eq!(r.tool_choice, Some(json!("required")));
        assert_eq!(r.extra["parallel_tool_calls"], false);
        assert_eq!(r.extra["top_k"], 3);
        assert_eq!(r.reasoning, Some(json!({"max_tokens": 1024})));
        assert_eq!(r.user.as_deref(), Some("u1"));
    }

    #[test]
    fn missing_fields_name_the_parameter() {
        let e = to_chat(json!({"model": "m", "messages": []}), true).unwrap_err();
        assert!(matches!(e, ApiError::InvalidRequest { param: Some(p), .. } if p == "max_tokens"));
        let e = to_chat(json!({"max_tokens": 5, "messages": []}), true).unwrap_err();
        assert!(matches!(e, ApiError::InvalidRequest { param: Some(p), .. } if p == "model"));
        let e = to_chat(
            json!({"model": "m", "max_tokens": 5, "messages": [{"role": "system", "content": "x"}]}),
            true,
        )
        .unwrap_err();
        assert!(
            matches!(e, ApiError::InvalidRequest { param: Some(p), .. } if p == "messages[0].role")
        );
    }
}
