//! AWS Bedrock's Converse API (`POST {base}/model/{modelId}/converse`, and
//! `/converse-stream` with the event-stream framing), signed with SigV4 (service `bedrock`,
//! the provider's region), translated to and from the internal OpenAI shape.
//!
//! Request rules:
//! - `system`/`developer` messages become `system` text blocks; turns alternate user/assistant
//!   (consecutive turns of one role are merged). A `cache_control` on a text part adds a
//!   `cachePoint` block after it.
//! - Images must be inline: base64 data URLs become `image` blocks (`png`, `jpeg`, `gif`,
//!   `webp`); a PDF `file` becomes a `document` block. http(s) image URLs, audio and other
//!   files are a 400 naming the part (Converse reads only bytes or S3 locations).
//! - Assistant `tool_calls` become `toolUse` blocks, `tool` messages `toolResult` blocks (a JSON
//!   object result as `json`, anything else as `text`) in a user turn. Signed reasoning from an
//!   earlier answer (`reasoning_details`, this adapter's format) goes back first as
//!   `reasoningContent`.
//! - `inferenceConfig`: `maxTokens` (the request's limit, or the endpoint's maximum, never
//!   above it), `temperature`, `topP`, `stopSequences`. `seed`, penalties, `logit_bias` and
//!   `user` have no Converse field and are dropped.
//! - Tools become `toolConfig.tools[].toolSpec` with `inputSchema.json`; `tool_choice`
//!   auto/required/named becomes `auto`/`any`/`tool`. `none` leaves the tools out, unless the
//!   conversation already holds tool calls (Converse requires `toolConfig` then), in which case
//!   they are sent without a choice.
//! - `reasoning` on Anthropic models becomes `additionalModelRequestFields.thinking` with the
//!   same budget rules as the Anthropic adapter; other models reason on their own or not at all.
//! - `response_format`: `json_schema` is a forced tool whose input is returned as the content
//!   (`finish_reason: stop`); `json_object` adds a system instruction.
//!
//! Answers: `text` → content, `toolUse` → tool calls, `reasoningContent` → `reasoning` and
//! `reasoning_details`. `stopReason`: end_turn/stop_sequence → stop, max_tokens and
//! model_context_window_exceeded → length, tool_use → tool_calls, guardrail_intervened and
//! content_filtered → content_filter. Usage: `inputTokens` excludes cache reads and writes,
//! which are added back (as for Anthropic).

use std::sync::Arc;

use infron_billing::Usage;
use secrecy::ExposeSecret;
use serde_json::{json, Map, Value};

use super::bedrock_stream::BedrockStream;
use super::event_stream::EventStreamDecoder;
use super::http::{self, encode_segment, untranslatable};
use super::media::{self, Media};
use super::sigv4::{self, Credentials, SignableRequest};
use super::translate::{self, Target, Thinking, ToolChoice};
use super::{ProviderClient, ProviderError, Reply};
use crate::catalog::Endpoint;
use crate::types::{
    ChatRequest, ChatResponse, Choice, Content, ContentPart, Message, ResponseMessage, Role, Stop,
};

pub const SERVICE: &str = "bedrock";
/// `format` of the `reasoning_details` this adapter emits and accepts.
pub const REASONING_FORMAT: &str = "amazon-bedrock-converse-v1";
const THINKING_MIN: u64 = 1024;
const THINKING_CAP: u64 = 32_000;
const JSON_OBJECT_INSTRUCTION: &str =
    "Respond with a single valid JSON object and nothing else: no prose, no code fences.";

#[derive(Debug, Clone)]
pub struct Prepared {
    pub body: Value,
    pub json_tool: Option<String>,
    pub exclude_reasoning: bool,
}

fn is_anthropic(endpoint: &Endpoint) -> bool {
    let model = endpoint.upstream_model.as_str();
    let model = model.split_once('.').map_or(model, |(first, rest)| {
        // `us.anthropic.claude-...` inference profiles
        if first.len() <= 6 && rest.starts_with("anthropic.") {
            rest
        } else {
            model
        }
    });
    model.starts_with("anthropic.")
        || model.contains(":inference-profile/") && model.contains("anthropic")
}

/// Translates a chat request; `Err` is a 400 message naming the field.
pub fn prepare(endpoint: &Endpoint, request: &ChatRequest) -> Result<Prepared, String> {
    translate::check_unsupported(request, Target::Bedrock)?;
    let reasoning = translate::reasoning(request)?;
    let cap = endpoint.max_output_tokens.max(1);
    let max_tokens = request.max_output().unwrap_or(cap).min(cap);
    let budget = match (reasoning.thinking, is_anthropic(endpoint)) {
        (_, false) | (Thinking::Default | Thinking::Off, _) => None,
        (Thinking::Effort(e), true) => Some(e.budget(max_tokens, THINKING_MIN, THINKING_CAP)),
        (Thinking::Budget(b), true) => Some(b.max(THINKING_MIN)),
    };
    if let Some(b) = budget {
        if b >= max_tokens {
            return Err(format!(
                "max_tokens: reasoning on Anthropic models needs max_tokens above the thinking budget ({b} tokens); raise max_tokens or lower reasoning.max_tokens"
            ));
        }
    }
    let thinking = budget.is_some();
    let (mut system, messages, has_tool_blocks) = messages(request, thinking)?;

    let mut tools: Vec<Value> = translate::function_tools(request)?
        .into_iter()
        .map(|t| {
            let mut spec = Map::new();
            spec.insert("name".into(), json!(t.name));
            if let Some(d) = t.description.filter(|d| !d.is_empty()) {
                spec.insert("description".into(), json!(d));
            }
            let schema = t
                .parameters
                .unwrap_or_else(|| json!({"type": "object", "properties": {}}));
            spec.insert("inputSchema".into(), json!({ "json": schema }));
            json!({ "toolSpec": spec })
        })
        .collect();
    let mut choice = match translate::tool_choice(request)? {
        None | Some(ToolChoice::Auto) => None,
        Some(ToolChoice::None) => {
            if !has_tool_blocks {
                tools.clear();
            }
            None
        }
        Some(ToolChoice::Required) => Some(json!({"any": {}})),
        Some(ToolChoice::Named(n)) => {
            if !tools.iter().any(|t| t["toolSpec"]["name"] == n.as_str()) {
                return Err(format!("tool_choice: no tool named '{n}' in tools"));
            }
            Some(json!({"tool": {"name": n}}))
        }
    };
    if thinking && choice.is_some() {
        return Err("tool_choice: Anthropic models cannot be forced to call a tool while reasoning; use \"auto\" or turn reasoning off".into());
    }

    let mut json_tool = None;
    let format = request.response_format.as_ref().filter(|f| !f.is_null());
    match format.and_then(|f| f.get("type")).and_then(Value::as_str) {
        None | Some("text") => {}
        Some("json_object") => system.push(json!({"text": JSON_OBJECT_INSTRUCTION})),
        Some("json_schema") => {
            if !tools.is_empty() {
                return Err(
                    "response_format: json_schema cannot be combined with tools on Bedrock models"
                        .into(),
                );
            }
            if thinking {
                return Err("response_format: json_schema cannot be combined with reasoning on Bedrock models".into());
            }
            let (name, schema) = translate::json_schema(format.unwrap_or(&Value::Null))?;
            let name = tool_name(&name);
            tools.push(json!({"toolSpec": {
                "name": name,
                "description": "Answer with JSON matching this schema.",
                "inputSchema": {"json": schema},
            }}));
            choice = Some(json!({"tool": {"name": name}}));
            json_tool = Some(name);
        }
        Some(other) => return Err(format!("response_format.type: '{other}' is not supported")),
    }

    let mut body = Map::new();
    body.insert("messages".into(), Value::Array(messages));
    if !system.is_empty() {
        body.insert("system".into(), Value::Array(system));
    }
    let mut config = Map::new();
    config.insert("maxTokens".into(), json!(max_tokens));
    if !thinking {
        if let Some(t) = request.temperature {
            let t = if is_anthropic(endpoint) {
                t.clamp(0.0, 1.0)
            } else {
                t
            };
            config.insert("temperature".into(), json!(t));
        }
        if let Some(p) = request.top_p {
            config.insert("topP".into(), json!(p));
        }
    }
    if let Some(stop) = &request.stop {
        let list = match stop {
            Stop::One(s) => vec![s.clone()],
            Stop::Many(v) => v.clone(),
        };
        if !list.is_empty() {
            config.insert("stopSequences".into(), json!(list));
        }
    }
    body.insert("inferenceConfig".into(), Value::Object(config));
    if !tools.is_empty() {
        let mut tc = json!({ "tools": tools });
        if let Some(c) = choice {
            tc["toolChoice"] = c;
        }
        body.insert("toolConfig".into(), tc);
    }
    if let Some(b) = budget {
        body.insert(
            "additionalModelRequestFields".into(),
            json!({"thinking": {"type": "enabled", "budget_tokens": b}}),
        );
    }
    Ok(Prepared {
        body: Value::Object(body),
        json_tool,
        exclude_reasoning: reasoning.exclude,
    })
}

/// Converse tool names are `[a-zA-Z0-9_-]{1,64}`.
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

/// System blocks, alternating turns, and whether any turn holds tool calls or results.
fn messages(
    request: &ChatRequest,
    thinking: bool,
) -> Result<(Vec<Value>, Vec<Value>, bool), String> {
    let mut system = Vec::new();
    let mut turns: Vec<(&'static str, Vec<Value>)> = Vec::new();
    let mut tool_blocks = false;
    let mut documents = 0;
    for (i, m) in request.messages.iter().enumerate() {
        let path = format!("messages[{i}]");
        let (role, blocks) = match m.role {
            Role::System | Role::Developer => {
                system.extend(blocks(m.content.as_ref(), &path, false, &mut documents)?);
                continue;
            }
            Role::User => (
                "user",
                blocks(m.content.as_ref(), &path, true, &mut documents)?,
            ),
            Role::Assistant => {
                let b = assistant_blocks(m, &path, thinking)?;
                tool_blocks |= m.tool_calls.as_ref().is_some_and(|c| !c.is_empty());
                ("assistant", b)
            }
            Role::Tool => {
                tool_blocks = true;
                ("user", vec![tool_result(m, &path)?])
            }
            Role::Function => {
                return Err(format!(
                "{path}.role: 'function' messages are not supported by Bedrock models; use 'tool'"
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
        return Err("messages: Bedrock models need at least one user or assistant message".into());
    }
    let messages = turns
        .into_iter()
        .map(|(role, content)| json!({"role": role, "content": content}))
        .collect();
    Ok((system, messages, tool_blocks))
}

fn blocks(
    content: Option<&Content>,
    path: &str,
    media_allowed: bool,
    documents: &mut usize,
) -> Result<Vec<Value>, String> {
    let mut out = Vec::new();
    match content {
        None => {}
        Some(Content::Text(t)) if t.is_empty() => {}
        Some(Content::Text(t)) => out.push(json!({"text": t})),
        Some(Content::Parts(parts)) => {
            for (j, part) in parts.iter().enumerate() {
                let ppath = format!("{path}.content[{j}]");
                match part {
                    ContentPart::Text { text, extra } => {
                        if !text.is_empty() {
                            out.push(json!({"text": text}));
                            if extra.get("cache_control").is_some_and(|c| !c.is_null()) {
                                out.push(json!({"cachePoint": {"type": "default"}}));
                            }
                        }
                    }
                    _ if !media_allowed => {
                        return Err(format!(
                            "{ppath}: only text is allowed here for Bedrock models"
                        ))
                    }
                    ContentPart::ImageUrl { image_url } => out.push(image(&image_url.url, &ppath)?),
                    ContentPart::File { file } => {
                        *documents += 1;
                        out.push(document(file, &ppath, *documents)?)
                    }
                    ContentPart::InputAudio { .. } => {
                        return Err(format!(
                            "{ppath}: input_audio is not supported by Bedrock models"
                        ))
                    }
                }
            }
        }
    }
    Ok(out)
}

fn image(url: &str, path: &str) -> Result<Value, String> {
    match media::parse_url(url).map_err(|e| format!("{path}.image_url.url: {e}"))? {
        Media::Inline { media_type, data } => {
            let format = match media_type.as_str() {
                "image/png" => "png",
                "image/jpeg" | "image/jpg" => "jpeg",
                "image/gif" => "gif",
                "image/webp" => "webp",
                other => {
                    return Err(format!(
                        "{path}.image_url: image type '{other}' is not supported by Bedrock models"
                    ))
                }
            };
            Ok(json!({"image": {"format": format, "source": {"bytes": data}}}))
        }
        Media::Url { .. } => Err(format!(
            "{path}.image_url.url: Bedrock models take images inline only; send a base64 data URL"
        )),
    }
}

fn document(file: &Value, path: &str, n: usize) -> Result<Value, String> {
    match media::parse_file(file).map_err(|e| format!("{path}.file: {e}"))? {
        Media::Inline { media_type, data } if media_type == "application/pdf" => {
            // Converse document names: letters, digits, spaces, hyphens, brackets; unique.
            let name: String = file
                .get("filename")
                .and_then(Value::as_str)
                .unwrap_or("document")
                .chars()
                .map(|c| {
                    if c.is_ascii_alphanumeric() || c == '-' || c == ' ' {
                        c
                    } else {
                        '-'
                    }
                })
                .take(100)
                .collect();
            Ok(
                json!({"document": {"format": "pdf", "name": format!("{name} {n}"),
                "source": {"bytes": data}}}),
            )
        }
        Media::Inline { media_type, .. } => Err(format!(
            "{path}.file: '{media_type}' files are not supported by Bedrock models (PDF only)"
        )),
        Media::Url { .. } => Err(format!(
            "{path}.file: Bedrock models take files inline only; send a base64 data URL"
        )),
    }
}

fn assistant_blocks(m: &Message, path: &str, thinking: bool) -> Result<Vec<Value>, String> {
    let mut out = Vec::new();
    if thinking {
        for d in translate::merged_reasoning_details(m.extra.get("reasoning_details")) {
            if d.get("format").and_then(Value::as_str) != Some(REASONING_FORMAT) {
                continue;
            }
            match d.get("type").and_then(Value::as_str) {
                Some("reasoning.text") => {
                    if let Some(sig) = d.get("signature").and_then(Value::as_str) {
                        let text = d.get("text").and_then(Value::as_str).unwrap_or_default();
                        out.push(json!({"reasoningContent": {"reasoningText":
                            {"text": text, "signature": sig}}}));
                    }
                }
                Some("reasoning.encrypted") => {
                    if let Some(data) = d.get("data").and_then(Value::as_str) {
                        out.push(json!({"reasoningContent": {"redactedContent": data}}));
                    }
                }
                _ => {}
            }
        }
    }
    let mut documents = 0;
    out.extend(blocks(m.content.as_ref(), path, false, &mut documents)?);
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
        out.push(json!({"toolUse": {"toolUseId": id, "name": name, "input": input}}));
    }
    Ok(out)
}

fn tool_result(m: &Message, path: &str) -> Result<Value, String> {
    let id = m
        .tool_call_id
        .as_deref()
        .ok_or_else(|| format!("{path}.tool_call_id: missing"))?;
    let text = match &m.content {
        None => String::new(),
        Some(Content::Text(t)) => t.clone(),
        Some(Content::Parts(parts)) => parts
            .iter()
            .filter_map(|p| match p {
                ContentPart::Text { text, .. } => Some(text.as_str()),
                _ => None,
            })
            .collect::<Vec<_>>()
            .join("\n"),
    };
    let content = match serde_json::from_str::<Value>(&text) {
        Ok(v @ Value::Object(_)) => json!({"json": v}),
        _ => json!({"text": text}),
    };
    Ok(json!({"toolResult": {"toolUseId": id, "content": [content], "status": "success"}}))
}

/// Converse usage: `inputTokens` excludes cache reads and writes, which are added back.
pub fn parse_usage(u: &Value) -> Usage {
    let n = |k: &str| u.get(k).and_then(Value::as_u64).unwrap_or(0);
    let read = n("cacheReadInputTokens");
    let write = n("cacheWriteInputTokens");
    Usage {
        prompt_tokens: n("inputTokens") + read + write,
        completion_tokens: n("outputTokens"),
        cached_tokens: read,
        cache_write_tokens: write,
        reasoning_tokens: 0,
        images: 0,
    }
}

pub fn finish_reason(stop: &str, json_tool: bool) -> String {
    match stop {
        "max_tokens" | "model_context_window_exceeded" => "length",
        "tool_use" if json_tool => "stop",
        "tool_use" => "tool_calls",
        "guardrail_intervened" | "content_filtered" => "content_filter",
        _ => "stop",
    }
    .into()
}

pub fn parse_response(
    body: &Value,
    prepared: &Prepared,
) -> Result<(ChatResponse, Option<Usage>), String> {
    let blocks = body
        .pointer("/output/message/content")
        .and_then(Value::as_array)
        .ok_or("no output.message.content array")?;
    let (mut text, mut has_text) = (String::new(), false);
    let mut reasoning = String::new();
    let mut details = Vec::new();
    let mut calls = Vec::new();
    for (i, b) in blocks.iter().enumerate() {
        if let Some(t) = b.get("text").and_then(Value::as_str) {
            has_text = true;
            text.push_str(t);
        } else if let Some(r) = b.get("reasoningContent") {
            if let Some(rt) = r.get("reasoningText") {
                let t = rt.get("text").and_then(Value::as_str).unwrap_or_default();
                reasoning.push_str(t);
                details.push(json!({"type": "reasoning.text", "text": t,
                    "signature": rt.get("signature"), "format": REASONING_FORMAT, "index": i}));
            } else if let Some(data) = r.get("redactedContent") {
                details.push(json!({"type": "reasoning.encrypted", "data": data,
                    "format": REASONING_FORMAT, "index": i}));
            }
        } else if let Some(call) = b.get("toolUse") {
            let name = call.get("name").and_then(Value::as_str).unwrap_or_default();
            let input = call.get("input").cloned().unwrap_or_else(|| json!({}));
            if prepared.json_tool.as_deref() == Some(name) {
                has_text = true;
                text.push_str(&input.to_string());
            } else {
                calls.push(json!({"id": call.get("toolUseId"), "type": "function",
                    "function": {"name": name, "arguments": input.to_string()}}));
            }
        }
    }
    let stop = body
        .get("stopReason")
        .and_then(Value::as_str)
        .unwrap_or("end_turn");
    let show = !prepared.exclude_reasoning;
    let message = ResponseMessage {
        role: "assistant".into(),
        content: (has_text || calls.is_empty()).then_some(text),
        reasoning: (show && !reasoning.is_empty()).then_some(reasoning),
        reasoning_details: (show && !details.is_empty()).then_some(details),
        tool_calls: (!calls.is_empty()).then_some(calls),
        extra: Map::new(),
    };
    let response = ChatResponse {
        id: String::new(),
        object: "chat.completion".into(),
        created: 0,
        model: String::new(),
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

/// Bedrock reports errors as `{"message": ...}` with the exception in `x-amzn-ErrorType`; a
/// too-long prompt is a ValidationException ("Input is too long ..."), classified by the text.
pub fn error_status(status: u16, _body: &Value) -> u16 {
    status
}

pub(super) async fn chat(
    client: &ProviderClient,
    endpoint: &Arc<Endpoint>,
    request: &ChatRequest,
) -> Result<Reply, ProviderError> {
    let provider = endpoint.provider.name.as_str();
    let prepared = prepare(endpoint, request).map_err(|m| untranslatable(endpoint, m))?;
    let operation = if request.stream {
        "converse-stream"
    } else {
        "converse"
    };
    let base = endpoint.provider.base_url.trim_end_matches('/');
    let url = format!(
        "{base}/model/{}/{operation}",
        encode_segment(&endpoint.upstream_model)
    );
    let payload = serde_json::to_vec(&prepared.body).unwrap_or_default();
    let headers =
        signed_headers(endpoint, &url, &payload).map_err(|m| http::bad_response(provider, &m))?;
    let mut builder = client.http().post(&url).body(payload);
    for (k, v) in headers {
        builder = builder.header(k, v);
    }
    let response = http::send(client, endpoint, builder, error_status).await?;
    if http::streams(request.stream, &response) {
        let translator = BedrockStream::new(
            provider,
            prepared.json_tool.clone(),
            prepared.exclude_reasoning,
        );
        return Ok(Reply::Stream {
            head: Vec::new(),
            rest: http::framed_stream(
                provider.to_string(),
                response,
                client.timeouts.idle,
                EventStreamDecoder::new(),
                translator,
            ),
        });
    }
    let body = http::json_body(client, provider, response).await?;
    let (response, usage) =
        parse_response(&body, &prepared).map_err(|e| http::bad_response(provider, &e))?;
    Ok(Reply::Complete { response, usage })
}

/// The headers that sign a POST of `payload` to `url` now: content type, `x-amz-date`, the
/// session token if any, and `Authorization`.
pub(crate) fn signed_headers(
    endpoint: &Endpoint,
    url: &str,
    payload: &[u8],
) -> Result<Vec<(String, String)>, String> {
    let p = &endpoint.provider;
    let parsed = reqwest::Url::parse(url).map_err(|e| format!("bad URL: {e}"))?;
    let host = match (parsed.host_str(), parsed.port()) {
        (Some(h), Some(port)) => format!("{h}:{port}"),
        (Some(h), None) => h.to_string(),
        (None, _) => return Err("URL without a host".into()),
    };
    let amz_date = chrono::Utc::now().format("%Y%m%dT%H%M%SZ").to_string();
    let secret = p
        .api_key
        .as_ref()
        .map(|k| k.expose_secret().to_string())
        .unwrap_or_default();
    let token = p
        .session_token
        .as_ref()
        .map(|t| t.expose_secret().to_string());
    let creds = Credentials {
        access_key_id: p.access_key_id.as_deref().unwrap_or_default(),
        secret_access_key: &secret,
        session_token: token.as_deref(),
    };
    let mut signed = vec![
        ("content-type".to_string(), "application/json".to_string()),
        ("host".to_string(), host),
        ("x-amz-date".to_string(), amz_date.clone()),
    ];
    if let Some(t) = creds.session_token {
        signed.push(("x-amz-security-token".to_string(), t.to_string()));
    }
    let authorization = sigv4::authorization(
        &creds,
        p.region.as_deref().unwrap_or_default(),
        SERVICE,
        &amz_date,
        &SignableRequest {
            method: "POST",
            path: parsed.path(),
            query: parsed.query().unwrap_or_default(),
            headers: &signed,
            payload,
        },
    );
    // reqwest sets Host itself, from the same URL.
    let mut headers: Vec<(String, String)> =
        signed.into_iter().filter(|(k, _)| k != "host").collect();
    headers.push(("authorization".to_string(), authorization));
    Ok(headers)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::catalog::Catalog;

    fn endpoint(upstream: &str) -> Arc<Endpoint> {
        let toml = format!(
            r#"
[[providers]]
name = "b"
wire = "bedrock"
base_url = "https://bedrock-runtime.us-east-1.amazonaws.com"
region = "us-east-1"
api_key_env = "S"
[[models]]
id = "a/m"
name = "M"
context_length = 1000
max_output_tokens = 500
[[models.endpoints]]
provider = "b"
upstream_model = "{upstream}"
pricing = {{ prompt = "0.000001", completion = "0.000001" }}
"#
        );
        let c = Catalog::parse(&toml, "t", &|_| None).unwrap();
        c.model("a/m").unwrap().endpoints[0].clone()
    }

    fn request(v: Value) -> ChatRequest {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn tool_choice_none_drops_tools_unless_the_conversation_has_tool_calls() {
        let e = endpoint("anthropic.claude-x-v1:0");
        let tools = json!([{"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}]);
        let fresh = request(json!({"messages": [{"role": "user", "content": "hi"}],
            "tools": tools, "tool_choice": "none"}));
        assert!(prepare(&e, &fresh)
            .unwrap()
            .body
            .get("toolConfig")
            .is_none());
        let with_history = request(json!({"tools": tools, "tool_choice": "none", "messages": [
            {"role": "user", "content": "hi"},
            {"role": "assistant", "tool_calls": [{"id": "c1", "type": "function",
                "function": {"name": "f", "arguments": "{}"}}]},
            {"role": "tool", "tool_call_id": "c1", "content": "ok"}]}));
        let body = prepare(&e, &with_history).unwrap().body;
        assert!(body["toolConfig"]["tools"].is_array());
        assert!(body["toolConfig"].get("toolChoice").is_none());
    }

    #[test]
    fn limits_temperature_and_media() {
        let e = endpoint("anthropic.claude-x-v1:0");
        let r = request(json!({"messages": [{"role": "user", "content": "hi"}],
            "max_tokens": 9000, "temperature": 1.7}));
        let body = prepare(&e, &r).unwrap().body;
        assert_eq!(
            body["inferenceConfig"]["maxTokens"], 500,
            "capped at the endpoint's maximum"
        );
        assert_eq!(
            body["inferenceConfig"]["temperature"], 1.0,
            "Anthropic's range"
        );
        let other = endpoint("meta.llama3-3-70b-instruct-v1:0");
        let body = prepare(&other, &r).unwrap().body;
        assert_eq!(body["inferenceConfig"]["temperature"], 1.7);
        let url_image = request(json!({"messages": [{"role": "user", "content": [
            {"type": "image_url", "image_url": {"url": "https://example.com/a.png"}}]}]}));
        assert!(prepare(&e, &url_image)
            .unwrap_err()
            .starts_with("messages[0].content[0].image_url.url"));
        let pdf = request(json!({"messages": [{"role": "user", "content": [
            {"type": "file", "file": {"filename": "report.pdf",
                "file_data": "data:application/pdf;base64,JVBERi0="}}]}]}));
        let body = prepare(&e, &pdf).unwrap().body;
        assert_eq!(
            body["messages"][0]["content"][0]["document"],
            json!({"format": "pdf", "name": "report-pdf 1", "source": {"bytes": "JVBERi0="}})
        );
    }

    #[test]
    fn reasoning_only_for_anthropic_models() {
        let r = request(json!({"messages": [{"role": "user", "content": "hi"}],
            "max_tokens": 400, "reasoning": {"max_tokens": 100}}));
        let err = prepare(&endpoint("us.anthropic.claude-x-v1:0"), &r).unwrap_err();
        assert!(
            err.starts_with("max_tokens"),
            "1024 minimum budget above 400: {err}"
        );
        let body = prepare(&endpoint("deepseek.r1-v1:0"), &r).unwrap().body;
        assert!(body.get("additionalModelRequestFields").is_none());
    }
}
