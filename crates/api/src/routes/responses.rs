//! `POST /v1/responses`: OpenAI's Responses API, stateless, so `client.responses.create(...)`
//! in the official SDKs works. A request is translated to the internal chat request and served
//! by the same routing, fallback, reservation and billing as `/v1/chat/completions`; the answer
//! and the stream (`response.created` … `response.completed`) are translated back. Nothing is
//! stored: `previous_response_id`, `conversation`, `background` and stored prompts are refused.
//! Errors keep the OpenAI error shape.

use actix_web::{web, HttpRequest, HttpResponse};
use infron_billing::Usage;
use infron_router::types::{
    ChatRequest, ChatResponse, Content, ContentPart, GatewayOptions, ImageUrl, Message, Role,
};
use serde_json::{json, Map, Value};

use super::chat::{self, Shape};
use crate::error::ApiError;
use crate::state::AppState;

/// `POST /v1/responses`.
#[utoipa::path(
    post, path = "/v1/responses", tag = "Responses",
    summary = "Create a response",
    description = "OpenAI's Responses API, stateless: send the whole conversation in `input`. With `stream: true`, the Responses event sequence (`response.created` … `response.completed`) as `text/event-stream`.",
    request_body(content = crate::openapi::schemas::ResponsesBody, content_type = "application/json",
        example = json!({"model": "openai/gpt-4o-mini", "input": "Hello", "max_output_tokens": 16})),
    responses((status = 200, description = "The response, or its stream",
        content((crate::openapi::schemas::ResponseObject = "application/json"), (String = "text/event-stream")))),
    security(("bearer" = []), ("x_api_key" = [])),
)]
pub async fn responses(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    match chat::serve(req, payload, state, Shape::Responses).await {
        // Chat checks the output limit under its own name; the caller sent `max_output_tokens`.
        Err(ApiError::InvalidRequest {
            message,
            param: Some(p),
        }) if p == "max_tokens" => Err(ApiError::InvalidRequest {
            message: message.replace("'max_tokens'", "'max_output_tokens'"),
            param: Some("max_output_tokens".into()),
        }),
        other => other,
    }
}

/// `POST /v1/responses/input_tokens`: `{"object": "response.input_tokens", "input_tokens": N}`,
/// an estimate of the prompt (about four bytes of text per token, plus images and tools), as
/// the gateway runs no provider tokenizer. `model` is optional; an unknown one is a 404.
#[utoipa::path(
    post, path = "/v1/responses/input_tokens", tag = "Responses",
    summary = "Count a request's input tokens",
    description = "An estimate (about four bytes of text per token, images and tools included); nothing is charged.",
    request_body(content = crate::openapi::schemas::InputTokensBody, content_type = "application/json",
        example = json!({"model": "openai/gpt-4o-mini", "input": "Hello"})),
    responses((status = 200, description = "The estimate", body = crate::openapi::schemas::InputTokensResponse)),
    security(("bearer" = []), ("x_api_key" = [])),
)]
pub async fn input_tokens(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    state.auth.authenticate(&req).await?;
    super::body::require_json(&req)?;
    let raw = super::body::read(&req, payload, state.settings.max_body_bytes).await?;
    let mut value: Value = super::body::parse_json(&raw)?;
    match value.get("model") {
        Some(Value::String(name)) => {
            if infron_router::preferences::resolve_model(&state.catalog(), name).is_err() {
                return Err(ApiError::NotFound(format!(
                    "model '{name}' is not available on this gateway; GET /v1/models lists the models"
                )));
            }
        }
        None | Some(Value::Null) => {
            if let Value::Object(o) = &mut value {
                o.insert("model".into(), json!("-"));
            }
        }
        Some(_) => return Err(invalid("model", "'model' must be a string")),
    }
    let (chat, _) = to_chat(value)?;
    let tools: u64 = chat
        .tools
        .iter()
        .flatten()
        .map(|t| (t.to_string().len() as u64).div_ceil(4))
        .sum();
    Ok(HttpResponse::Ok().json(json!({
        "object": "response.input_tokens",
        "input_tokens": chat.prompt_token_estimate() + tools,
    })))
}

/// `GET` / `DELETE /v1/responses/{id}`, `POST …/cancel`, `GET …/input_items`: nothing is
/// stored, so no response id is known; a key is still required, as for every API route.
pub async fn stored(
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    state.auth.authenticate(&req).await?;
    Err(ApiError::UnknownId(
        "responses are not stored by this gateway (the Responses API is stateless here), so none can be retrieved, cancelled or deleted".into(),
    ))
}

/// `GET /v1/responses/{id}`.
#[utoipa::path(
    get, path = "/v1/responses/{id}", tag = "Responses",
    summary = "Retrieve a response (always 404: nothing is stored)",
    params(("id" = String, Path, description = "A response id")),
    responses(), security(("bearer" = []), ("x_api_key" = [])),
)]
pub async fn retrieve(
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    stored(req, state).await
}

/// `DELETE /v1/responses/{id}`.
#[utoipa::path(
    delete, path = "/v1/responses/{id}", tag = "Responses",
    summary = "Delete a response (always 404: nothing is stored)",
    params(("id" = String, Path, description = "A response id")),
    responses(), security(("bearer" = []), ("x_api_key" = [])),
)]
pub async fn delete(
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    stored(req, state).await
}

/// `POST /v1/responses/{id}/cancel`.
#[utoipa::path(
    post, path = "/v1/responses/{id}/cancel", tag = "Responses",
    summary = "Cancel a response (always 404: nothing is stored)",
    params(("id" = String, Path, description = "A response id")),
    responses(), security(("bearer" = []), ("x_api_key" = [])),
)]
pub async fn cancel(
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    stored(req, state).await
}

/// `GET /v1/responses/{id}/input_items`.
#[utoipa::path(
    get, path = "/v1/responses/{id}/input_items", tag = "Responses",
    summary = "List a response's input items (always 404: nothing is stored)",
    params(("id" = String, Path, description = "A response id")),
    responses(), security(("bearer" = []), ("x_api_key" = [])),
)]
pub async fn input_items(
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    stored(req, state).await
}

fn invalid(param: impl Into<String>, message: impl Into<String>) -> ApiError {
    ApiError::invalid(param, message)
}

// ---- request: Responses to chat ----

/// Parses a Responses request into the internal chat request, and the request's parameters as
/// the response object echoes them (`instructions`, `tools`, `text`, …).
pub fn to_chat(body: Value) -> Result<(ChatRequest, Value), ApiError> {
    let Value::Object(mut o) = body else {
        return Err(invalid("body", "the request body must be a JSON object"));
    };
    // Stateless: nothing is stored, so nothing can be referred to later.
    for (field, what) in [
        ("previous_response_id", "'previous_response_id' is not supported: this gateway does not store responses; send the whole conversation in 'input'"),
        ("conversation", "'conversation' is not supported: this gateway does not store conversations; send the whole conversation in 'input'"),
        ("prompt", "'prompt' (stored prompt templates) is not supported; send 'instructions' and 'input'"),
    ] {
        if o.remove(field).is_some_and(|v| !v.is_null()) {
            return Err(invalid(field, what));
        }
    }
    if o.remove("background") == Some(Value::Bool(true)) {
        return Err(invalid(
            "background",
            "'background' is not supported: responses are not stored",
        ));
    }
    let model = match o.remove("model") {
        Some(Value::String(m)) if !m.trim().is_empty() => m,
        _ => return Err(invalid("model", "'model' is required")),
    };
    let max_tokens = match o.remove("max_output_tokens") {
        None | Some(Value::Null) => None,
        Some(v) => Some(v.as_u64().filter(|n| *n >= 1).ok_or_else(|| {
            invalid(
                "max_output_tokens",
                "'max_output_tokens' must be a positive integer",
            )
        })?),
    };
    let mut messages = Vec::new();
    let instructions = match o.remove("instructions") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => {
            messages.push(message(Role::System, Some(Content::Text(s.clone()))));
            Some(s)
        }
        Some(_) => return Err(invalid("instructions", "'instructions' must be a string")),
    };
    match o.remove("input") {
        Some(Value::String(s)) => messages.push(message(Role::User, Some(Content::Text(s)))),
        Some(Value::Array(items)) => {
            for (i, item) in items.iter().enumerate() {
                input_item(item, &format!("input[{i}]"), &mut messages)?;
            }
        }
        _ => {
            return Err(invalid(
                "input",
                "'input' must be a string or an array of input items",
            ))
        }
    }
    // A turn that only reasoned (its answer not sent back) says nothing to a provider.
    messages.retain(|m| m.role != Role::Assistant || m.content.is_some() || m.tool_calls.is_some());
    if !messages.iter().any(|m| m.role != Role::System) {
        return Err(invalid("input", "'input' must contain at least one item"));
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
    let tools_echo: Vec<Value> = tools
        .iter()
        .flatten()
        .map(|t| {
            let f = &t["function"];
            json!({"type": "function", "name": f["name"], "description": f.get("description"),
                   "parameters": f.get("parameters"), "strict": f.get("strict")})
        })
        .collect();
    let (tool_choice, tool_choice_echo) =
        match o.remove("tool_choice") {
            None | Some(Value::Null) => (None, json!("auto")),
            Some(Value::String(s)) if matches!(s.as_str(), "auto" | "none" | "required") => {
                (Some(json!(s)), json!(s))
            }
            Some(tc) if tc.get("type").and_then(Value::as_str) == Some("function") => {
                let name = tc.get("name").and_then(Value::as_str).ok_or_else(|| {
                    invalid("tool_choice.name", "a 'function' tool_choice needs 'name'")
                })?;
                (
                    Some(json!({"type": "function", "function": {"name": name}})),
                    json!({"type": "function", "name": name}),
                )
            }
            Some(_) => return Err(invalid(
                "tool_choice",
                "'tool_choice' must be auto, none, required or {\"type\": \"function\", \"name\"}",
            )),
        };
    let mut extra = Map::new();
    let parallel = match o.remove("parallel_tool_calls") {
        None | Some(Value::Null) => true,
        Some(Value::Bool(b)) => {
            extra.insert("parallel_tool_calls".into(), json!(b));
            b
        }
        Some(_) => {
            return Err(invalid(
                "parallel_tool_calls",
                "'parallel_tool_calls' must be a boolean",
            ))
        }
    };
    let (response_format, text_echo) = match o.remove("text") {
        None | Some(Value::Null) => (None, json!({"format": {"type": "text"}})),
        Some(t) => {
            let format = t.get("format").cloned().unwrap_or(Value::Null);
            let rf = match format.get("type").and_then(Value::as_str) {
                None if format.is_null() => None,
                Some("text") => None,
                Some("json_object") => Some(json!({"type": "json_object"})),
                Some("json_schema") => {
                    let name = format.get("name").and_then(Value::as_str).ok_or_else(|| {
                        invalid("text.format.name", "a json_schema format needs 'name'")
                    })?;
                    let schema =
                        format
                            .get("schema")
                            .filter(|s| s.is_object())
                            .ok_or_else(|| {
                                invalid(
                                    "text.format.schema",
                                    "a json_schema format needs 'schema' (an object)",
                                )
                            })?;
                    let mut js = json!({"name": name, "schema": schema});
                    for k in ["strict", "description"] {
                        if let Some(v) = format.get(k).filter(|v| !v.is_null()) {
                            js[k] = v.clone();
                        }
                    }
                    Some(json!({"type": "json_schema", "json_schema": js}))
                }
                _ => {
                    return Err(invalid(
                        "text.format.type",
                        "'text.format.type' must be text, json_object or json_schema",
                    ))
                }
            };
            let echo = if format.is_null() {
                json!({"format": {"type": "text"}})
            } else {
                json!({ "format": format })
            };
            (rf, echo)
        }
    };
    let (reasoning, reasoning_echo) = match o.remove("reasoning") {
        None | Some(Value::Null) => (None, json!({"effort": null, "summary": null})),
        Some(r) => {
            let effort = match r.get("effort") {
                None | Some(Value::Null) => None,
                Some(Value::String(e))
                    if matches!(
                        e.as_str(),
                        "none" | "minimal" | "low" | "medium" | "high" | "xhigh"
                    ) =>
                {
                    Some(e.clone())
                }
                Some(_) => {
                    return Err(invalid(
                        "reasoning.effort",
                        "'reasoning.effort' must be none, minimal, low, medium, high or xhigh",
                    ))
                }
            };
            let chat_reasoning = match effort.as_deref() {
                None => None,
                Some("none") => Some(json!({"enabled": false})),
                Some(e) => Some(json!({ "effort": e })),
            };
            (
                chat_reasoning,
                json!({"effort": effort, "summary": r.get("summary").cloned().unwrap_or(Value::Null)}),
            )
        }
    };
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
    let stream = match o.remove("stream") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => b,
        Some(_) => return Err(invalid("stream", "'stream' must be a boolean")),
    };
    let metadata = match o.remove("metadata") {
        None | Some(Value::Null) => json!({}),
        Some(m @ Value::Object(_)) => m,
        Some(_) => return Err(invalid("metadata", "'metadata' must be an object")),
    };
    let user = match (o.remove("user"), o.remove("safety_identifier")) {
        (Some(Value::String(u)), _) | (_, Some(Value::String(u))) => Some(u),
        _ => None,
    };
    // The gateway's own options (OpenRouter's `provider`, `models`), as on chat completions.
    let gateway: GatewayOptions = serde_json::from_value(json!({
        "provider": o.remove("provider"),
        "models": o.remove("models"),
    }))
    .map_err(|e| invalid("provider", e.to_string()))?;
    // Accepted and not applicable to a stateless gateway: `store`, `include`, `truncation`,
    // `service_tier`, `stream_options`, `prompt_cache_key`, `max_tool_calls`, `top_logprobs`.
    let echo = json!({
        "instructions": instructions,
        "max_output_tokens": max_tokens,
        "metadata": metadata,
        "parallel_tool_calls": parallel,
        "previous_response_id": null,
        "reasoning": reasoning_echo,
        "store": false,
        "temperature": temperature.unwrap_or(1.0),
        "text": text_echo,
        "tool_choice": tool_choice_echo,
        "tools": tools_echo,
        "top_p": top_p.unwrap_or(1.0),
        "truncation": "disabled",
        "user": user,
    });
    let request = ChatRequest {
        model: Some(model),
        messages,
        stream,
        stream_options: None,
        max_tokens,
        max_completion_tokens: None,
        temperature,
        top_p,
        stop: None,
        seed: None,
        tools,
        tool_choice,
        response_format,
        reasoning,
        user,
        gateway,
        extra,
    };
    Ok((request, echo))
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

fn str_field<'a>(v: &'a Value, key: &str, path: &str) -> Result<&'a str, ApiError> {
    v.get(key)
        .and_then(Value::as_str)
        .ok_or_else(|| invalid(format!("{path}.{key}"), format!("'{key}' is required")))
}

/// One content part of an input message.
fn input_part(part: &Value, path: &str) -> Result<ContentPart, ApiError> {
    match part.get("type").and_then(Value::as_str) {
        Some("input_text" | "output_text" | "text") => Ok(ContentPart::Text {
            text: str_field(part, "text", path)?.to_string(),
            extra: Map::new(),
        }),
        Some("refusal") => Ok(ContentPart::Text {
            text: str_field(part, "refusal", path)?.to_string(),
            extra: Map::new(),
        }),
        Some("input_image") => {
            let Some(url) = part.get("image_url").and_then(Value::as_str) else {
                return Err(invalid(
                    format!("{path}.image_url"),
                    "'input_image' needs 'image_url' (a URL or a data URL); 'file_id' is not supported",
                ));
            };
            if !chat::allowed_image_url(url) {
                return Err(invalid(
                    format!("{path}.image_url"),
                    "an image URL must be an http(s) URL or a data: URL",
                ));
            }
            Ok(ContentPart::ImageUrl {
                image_url: ImageUrl {
                    url: url.to_string(),
                    detail: part
                        .get("detail")
                        .and_then(Value::as_str)
                        .map(str::to_string),
                },
            })
        }
        Some("input_file") => {
            let Some(data) = part.get("file_data").and_then(Value::as_str) else {
                return Err(invalid(
                    format!("{path}.file_data"),
                    "'input_file' needs 'file_data'; 'file_id' and 'file_url' are not supported",
                ));
            };
            let mut file = json!({ "file_data": data });
            if let Some(name) = part.get("filename").and_then(Value::as_str) {
                file["filename"] = json!(name);
            }
            Ok(ContentPart::File { file })
        }
        Some(other) => Err(invalid(
            format!("{path}.type"),
            format!("content parts of type '{other}' are not supported"),
        )),
        None => Err(invalid(format!("{path}.type"), "'type' is required")),
    }
}

fn content(v: Option<&Value>, path: &str) -> Result<Content, ApiError> {
    match v {
        Some(Value::String(s)) => Ok(Content::Text(s.clone())),
        Some(Value::Array(parts)) => Ok(Content::Parts(
            parts
                .iter()
                .enumerate()
                .map(|(j, p)| input_part(p, &format!("{path}[{j}]")))
                .collect::<Result<_, _>>()?,
        )),
        _ => Err(invalid(
            path,
            "'content' must be a string or an array of content parts",
        )),
    }
}

/// The last message if it is an assistant turn that later items may still extend (nothing has
/// answered it yet).
fn open_assistant(out: &mut [Message]) -> Option<&mut Message> {
    out.last_mut().filter(|m| m.role == Role::Assistant)
}

/// One input item, appended to the chat messages. Reasoning, assistant text and function calls
/// that follow each other make one assistant turn, as chat expects.
fn input_item(item: &Value, path: &str, out: &mut Vec<Message>) -> Result<(), ApiError> {
    let kind = item.get("type").and_then(Value::as_str);
    match kind {
        Some("message") | None => {
            if kind.is_none() && item.get("role").is_none() {
                return Err(invalid(format!("{path}.type"), "'type' is required"));
            }
            let c = content(item.get("content"), &format!("{path}.content"))?;
            match item.get("role").and_then(Value::as_str) {
                Some("user") => out.push(message(Role::User, Some(c))),
                Some("system" | "developer") => out.push(message(Role::System, Some(c))),
                Some("assistant") => match open_assistant(out) {
                    Some(m) if m.content.is_none() && m.tool_calls.is_none() => {
                        m.content = Some(c);
                    }
                    _ => out.push(message(Role::Assistant, Some(c))),
                },
                _ => {
                    return Err(invalid(
                        format!("{path}.role"),
                        "'role' must be user, system, developer or assistant",
                    ))
                }
            }
        }
        Some("function_call") => {
            let call_id = str_field(item, "call_id", path)?;
            let name = str_field(item, "name", path)?;
            let arguments = item
                .get("arguments")
                .and_then(Value::as_str)
                .unwrap_or("{}");
            let call = json!({"id": call_id, "type": "function",
                              "function": {"name": name, "arguments": arguments}});
            match open_assistant(out) {
                Some(m) => m.tool_calls.get_or_insert_with(Vec::new).push(call),
                None => {
                    let mut m = message(Role::Assistant, None);
                    m.tool_calls = Some(vec![call]);
                    out.push(m);
                }
            }
        }
        Some("function_call_output") => {
            let call_id = str_field(item, "call_id", path)?;
            let c = content(item.get("output"), &format!("{path}.output"))?;
            let mut m = message(Role::Tool, Some(c));
            m.tool_call_id = Some(call_id.to_string());
            out.push(m);
        }
        Some("reasoning") => {
            // `encrypted_content` carries the provider's reasoning details (with signatures) as
            // this gateway returned them; anything else is the client's and is dropped.
            let details = item
                .get("encrypted_content")
                .and_then(Value::as_str)
                .and_then(|s| serde_json::from_str::<Vec<Value>>(s).ok());
            if let Some(details) = details {
                // Reasoning opens the assistant turn; one that comes after the turn's text or
                // calls joins it.
                match open_assistant(out) {
                    Some(m) => match m.extra.get_mut("reasoning_details") {
                        Some(Value::Array(mine)) => mine.extend(details),
                        _ => {
                            m.extra
                                .insert("reasoning_details".into(), Value::Array(details));
                        }
                    },
                    None => {
                        let mut m = message(Role::Assistant, None);
                        m.extra
                            .insert("reasoning_details".into(), Value::Array(details));
                        out.push(m);
                    }
                }
            }
        }
        Some("item_reference") => {
            return Err(invalid(
                format!("{path}.type"),
                "'item_reference' is not supported: this gateway does not store items; send the item itself",
            ))
        }
        Some(other) => {
            return Err(invalid(
                format!("{path}.type"),
                format!("input items of type '{other}' are not supported"),
            ))
        }
    }
    Ok(())
}

fn tool(t: &Value, i: usize) -> Result<Value, ApiError> {
    match t.get("type").and_then(Value::as_str) {
        Some("function") => {}
        Some(kind) => {
            return Err(invalid(
                format!("tools[{i}].type"),
                format!("hosted tools ('{kind}') are not supported; define function tools"),
            ))
        }
        None => return Err(invalid(format!("tools[{i}].type"), "'type' is required")),
    }
    let name = t
        .get("name")
        .and_then(Value::as_str)
        .filter(|n| !n.is_empty())
        .ok_or_else(|| invalid(format!("tools[{i}].name"), "'name' is required"))?;
    let mut function = json!({
        "name": name,
        "parameters": t.get("parameters").filter(|p| !p.is_null()).cloned()
            .unwrap_or_else(|| json!({"type": "object", "properties": {}})),
    });
    for k in ["description", "strict"] {
        if let Some(v) = t.get(k).filter(|v| !v.is_null()) {
            function[k] = v.clone();
        }
    }
    Ok(json!({"type": "function", "function": function}))
}

// ---- response: chat to Responses ----

/// The suffix of item ids: the request id without its `gen-` prefix.
pub fn item_suffix(id: &str) -> &str {
    id.strip_prefix("gen-").unwrap_or(id)
}

/// Responses usage from the gateway's usage.
pub fn usage_json(u: &Usage) -> Value {
    json!({
        "input_tokens": u.prompt_tokens,
        "input_tokens_details": {"cached_tokens": u.cached_tokens, "cache_write_tokens": u.cache_write_tokens},
        "output_tokens": u.completion_tokens,
        "output_tokens_details": {"reasoning_tokens": u.reasoning_tokens},
        "total_tokens": u.prompt_tokens + u.completion_tokens,
    })
}

/// `status` and `incomplete_details` from the chat finish reason.
pub fn status_of(finish: Option<&str>) -> (&'static str, Value) {
    match finish {
        Some("length") => ("incomplete", json!({"reason": "max_output_tokens"})),
        Some("content_filter") => ("incomplete", json!({"reason": "content_filter"})),
        _ => ("completed", Value::Null),
    }
}

/// What every response object of one request shares: its id, creation time, model and the
/// request's parameters as echoed.
pub struct Head {
    pub id: String,
    pub created_at: i64,
    pub model: String,
    pub echo: Value,
}

impl Head {
    /// The response object around `output`, echoing the request's parameters.
    pub fn object(
        &self,
        status: &str,
        output: Vec<Value>,
        usage: Option<Value>,
        incomplete_details: Value,
    ) -> Value {
        let mut r = json!({
            "id": self.id,
            "object": "response",
            "created_at": self.created_at,
            "status": status,
            "error": null,
            "incomplete_details": incomplete_details,
            "model": self.model,
            "output": output,
            "usage": usage,
        });
        if let (Value::Object(r), Value::Object(e)) = (&mut r, &self.echo) {
            for (k, v) in e {
                r.insert(k.clone(), v.clone());
            }
        }
        r
    }
}

/// A reasoning output item: the text as `reasoning_text`, and the provider's reasoning details
/// (signatures, encrypted reasoning) as `encrypted_content`, which the next request sends back.
pub fn reasoning_item(id: &str, text: &str, details: &[Value]) -> Value {
    let mut item = json!({
        "id": id, "type": "reasoning", "status": "completed", "summary": [],
        "content": [{"type": "reasoning_text", "text": text}],
    });
    if !details.is_empty() {
        item["encrypted_content"] = json!(Value::Array(details.to_vec()).to_string());
    }
    item
}

/// A complete answer as a Responses `response`.
pub fn response_json(head: &Head, response: &ChatResponse, usage: &Usage) -> Value {
    let suffix = item_suffix(&head.id);
    let mut output = Vec::new();
    let choice = response.choices.first();
    let finish = choice.and_then(|c| c.finish_reason.as_deref());
    let (status, incomplete) = status_of(finish);
    if let Some(c) = choice {
        let m = &c.message;
        let details = m.reasoning_details.clone().unwrap_or_default();
        let mut text = m.reasoning.clone().unwrap_or_default();
        if text.is_empty() {
            text = details
                .iter()
                .filter_map(|d| d.get("text").and_then(Value::as_str))
                .collect();
        }
        if !text.is_empty() || !details.is_empty() {
            output.push(reasoning_item(
                &format!("rs_{suffix}_{}", output.len()),
                &text,
                &details,
            ));
        }
        let mut parts = Vec::new();
        if let Some(t) = m.content.as_deref().filter(|t| !t.is_empty()) {
            parts
                .push(json!({"type": "output_text", "text": t, "annotations": [], "logprobs": []}));
        }
        if let Some(r) = m
            .extra
            .get("refusal")
            .and_then(Value::as_str)
            .filter(|r| !r.is_empty())
        {
            parts.push(json!({"type": "refusal", "refusal": r}));
        }
        if !parts.is_empty() {
            output.push(json!({
                "id": format!("msg_{suffix}_{}", output.len()), "type": "message", "role": "assistant",
                "status": if status == "completed" { "completed" } else { "incomplete" },
                "content": parts,
            }));
        }
        for (k, call) in m.tool_calls.iter().flatten().enumerate() {
            output.push(json!({
                "id": format!("fc_{suffix}_{k}"),
                "type": "function_call",
                "status": "completed",
                "call_id": call.get("id").and_then(Value::as_str).unwrap_or_default(),
                "name": call.pointer("/function/name").and_then(Value::as_str).unwrap_or_default(),
                "arguments": call.pointer("/function/arguments").and_then(Value::as_str).unwrap_or("{}"),
            }));
        }
    }
    head.object(status, output, Some(usage_json(usage)), incomplete)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn a_full_request_translates() {
        let body = json!({
            "model": "mock/gpt", "instructions": "be brief", "max_output_tokens": 100,
            "input": [
                {"role": "user", "content": [{"type": "input_text", "text": "hi"},
                    {"type": "input_image", "image_url": "data:image/png;base64,AAAA"}]},
                {"type": "reasoning", "id": "rs_1", "summary": [],
                 "encrypted_content": "[{\"type\":\"reasoning.text\",\"text\":\"t\",\"signature\":\"sig\"}]"},
                {"type": "message", "role": "assistant", "id": "msg_1", "status": "completed",
                 "content": [{"type": "output_text", "text": "let me check", "annotations": []}]},
                {"type": "function_call", "call_id": "c1", "name": "get", "arguments": "{\"q\":1}"},
                {"type": "function_call_output", "call_id": "c1", "output": "42"},
            ],
            "tools": [{"type": "function", "name": "get", "parameters": {"type": "object"}, "strict": true}],
            "tool_choice": {"type": "function", "name": "get"},
            "text": {"format": {"type": "json_schema", "name": "x", "schema": {"type": "object"}, "strict": true}},
            "reasoning": {"effort": "low"}, "temperature": 0.5, "stream": true, "store": false,
            "metadata": {"k": "v"}, "user": "u1",
        });
        let (r, echo) = to_chat(body).unwrap();
        let roles: Vec<Role> = r.messages.iter().map(|m| m.role).collect();
        assert_eq!(
            roles,
            vec![Role::System, Role::User, Role::Assistant, Role::Tool]
        );
        let a = &r.messages[2];
        assert_eq!(a.extra["reasoning_details"][0]["signature"], "sig");
        assert!(a.content.is_some());
        assert_eq!(
            a.tool_calls.as_ref().unwrap()[0]["function"]["arguments"],
            "{\"q\":1}"
        );
        assert_eq!(r.messages[3].tool_call_id.as_deref(), Some("c1"));
        assert_eq!(r.max_tokens, Some(100));
        assert!(r.stream);
        assert_eq!(r.tools.as_ref().unwrap()[0]["function"]["strict"], true);
        assert_eq!(r.tool_choice.as_ref().unwrap()["function"]["name"], "get");
        assert_eq!(
            r.response_format.as_ref().unwrap()["json_schema"]["name"],
            "x"
        );
        assert_eq!(r.reasoning, Some(json!({"effort": "low"})));
        assert_eq!(echo["instructions"], "be brief");
        assert_eq!(echo["metadata"]["k"], "v");
        assert_eq!(echo["tools"][0]["name"], "get");
    }

    #[test]
    fn stateful_fields_are_refused_by_name() {
        for field in ["previous_response_id", "conversation", "prompt"] {
            let mut body = json!({"model": "m", "input": "hi"});
            body[field] = json!("x");
            let e = to_chat(body).unwrap_err();
            assert!(
                matches!(&e, ApiError::InvalidRequest { param: Some(p), .. } if p == field),
                "{field}"
            );
        }
        let e = to_chat(json!({"model": "m", "input": [{"type": "item_reference", "id": "x"}]}))
            .unwrap_err();
        assert!(
            matches!(e, ApiError::InvalidRequest { param: Some(p), .. } if p == "input[0].type")
        );
        let e = to_chat(json!({"model": "m", "input": "hi", "tools": [{"type": "web_search"}]}))
            .unwrap_err();
        assert!(
            matches!(e, ApiError::InvalidRequest { param: Some(p), .. } if p == "tools[0].type")
        );
    }
}
