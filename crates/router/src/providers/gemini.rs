//! Google Gemini `generateContent` / `streamGenerateContent?alt=sse`
//! (`{base}/v1beta/models/{model}:...`), translated to and from the internal OpenAI shape. The
//! key travels in the `x-goog-api-key` header, never in the URL, so no logged or echoed URL
//! can carry it.
//!
//! Request rules:
//! - Roles: user -> `user`, assistant -> `model`; `system`/`developer` messages become
//!   `systemInstruction` parts in order. Consecutive turns of one role are merged.
//! - Images, PDFs and audio given inline (base64 data URLs, `input_audio`) become
//!   `inlineData`; http(s) URLs become `fileData` with a media type guessed from the URL's
//!   extension (image/jpeg for unknown images, application/pdf for unknown files).
//! - `tools` become one `functionDeclarations` tool with schemas reduced to what Gemini
//!   accepts (`gemini_schema`); `tool_choice` auto/none/required/named become
//!   `toolConfig.functionCallingConfig` AUTO/NONE/ANY/ANY+allowedFunctionNames.
//! - Assistant `tool_calls` become `functionCall` parts (with their `thoughtSignature` from
//!   `reasoning_details` when present); `tool` messages become `functionResponse` parts named
//!   after the earlier call with that id. A JSON-object result is the response as is; anything
//!   else is wrapped as `{"result": ...}`.
//! - `generationConfig`: temperature, topP, topK, maxOutputTokens (always set: the request's
//!   limit capped at the endpoint's), stopSequences, seed, presence/frequency penalties;
//!   `json_object` -> responseMimeType application/json; `json_schema` -> also responseSchema;
//!   `reasoning` -> thinkingConfig {thinkingBudget, includeThoughts: !exclude}. `logit_bias`
//!   and `user` are dropped.
//!
//! Response rules: thought parts are `reasoning`, other text `content`, function calls
//! `tool_calls` with generated ids (`call_` + 24 random characters; Gemini has none). STOP
//! with function calls -> tool_calls; STOP -> stop; MAX_TOKENS -> length; SAFETY, RECITATION,
//! BLOCKLIST, PROHIBITED_CONTENT, SPII, IMAGE_SAFETY and a prompt `blockReason` ->
//! content_filter; MALFORMED_FUNCTION_CALL -> error; anything else -> stop.

use std::sync::Arc;

use infron_billing::Usage;
use rand::Rng;
use secrecy::ExposeSecret;
use serde_json::{json, Map, Value};

use super::gemini_schema;
use super::gemini_stream::GeminiStream;
use super::http::{self, untranslatable};
use super::media::{self, Media};
use super::translate::{self, Target, Thinking, ToolChoice};
use super::{ProviderClient, ProviderError, Reply};
use crate::catalog::Endpoint;
use crate::types::{
    ChatRequest, ChatResponse, Choice, Content, ContentPart, Message, ResponseMessage, Role, Stop,
};

/// `format` of the `reasoning_details` (thought signatures) this adapter emits and accepts.
pub const REASONING_FORMAT: &str = "google-gemini-v1";
/// Bounds of an effort-derived thinking budget (2.5 Pro's minimum, 2.5 Flash's maximum).
const THINKING_MIN: u64 = 128;
const THINKING_CAP: u64 = 24_576;

#[derive(Debug, Clone)]
pub struct Prepared {
    pub body: Value,
    pub exclude_reasoning: bool,
}

/// Translates a chat request; `Err` is a 400 message naming the field.
pub fn prepare(endpoint: &Endpoint, request: &ChatRequest) -> Result<Prepared, String> {
    translate::check_unsupported(request, Target::Gemini)?;
    let reasoning = translate::reasoning(request)?;
    let cap = endpoint.max_output_tokens.max(1);
    let max_tokens = request.max_output().unwrap_or(cap).min(cap);

    let (system, contents) = contents(request)?;
    let mut body = Map::new();
    body.insert("contents".into(), Value::Array(contents));
    if !system.is_empty() {
        body.insert("systemInstruction".into(), json!({"parts": system}));
    }

    let tools = translate::function_tools(request)?;
    if !tools.is_empty() {
        let decls: Vec<Value> = tools
            .iter()
            .map(|t| {
                let mut d = json!({"name": t.name});
                if let Some(desc) = &t.description {
                    d["description"] = json!(desc);
                }
                if let Some(params) = &t.parameters {
                    let params = gemini_schema::sanitize(params);
                    if gemini_schema::has_properties(&params) {
                        d["parameters"] = params;
                    }
                }
                d
            })
            .collect();
        body.insert("tools".into(), json!([{"functionDeclarations": decls}]));
        let config = match translate::tool_choice(request)? {
            None => None,
            Some(ToolChoice::Auto) => Some(json!({"mode": "AUTO"})),
            Some(ToolChoice::None) => Some(json!({"mode": "NONE"})),
            Some(ToolChoice::Required) => Some(json!({"mode": "ANY"})),
            Some(ToolChoice::Named(n)) => {
                if !tools.iter().any(|t| t.name == n) {
                    return Err(format!("tool_choice: no tool named '{n}' in tools"));
                }
                Some(json!({"mode": "ANY", "allowedFunctionNames": [n]}))
            }
        };
        if let Some(c) = config {
            body.insert("toolConfig".into(), json!({"functionCallingConfig": c}));
        }
    }

    let mut gen = Map::new();
    if let Some(t) = request.temperature {
        gen.insert("temperature".into(), json!(t));
    }
    if let Some(p) = request.top_p {
        gen.insert("topP".into(), json!(p));
    }
    if let Some(k) = request.extra.get("top_k").filter(|k| k.is_u64()) {
        gen.insert("topK".into(), k.clone());
    }
    gen.insert("maxOutputTokens".into(), json!(max_tokens));
    if let Some(stop) = &request.stop {
        let list = match stop {
            Stop::One(s) => vec![s.clone()],
            Stop::Many(v) => v.clone(),
        };
        if !list.is_empty() {
            gen.insert("stopSequences".into(), json!(list));
        }
    }
    if let Some(seed) = request.seed {
        gen.insert("seed".into(), json!(seed));
    }
    for (from, to) in [
        ("presence_penalty", "presencePenalty"),
        ("frequency_penalty", "frequencyPenalty"),
    ] {
        if let Some(v) = request.extra.get(from).filter(|v| v.is_number()) {
            gen.insert(to.into(), v.clone());
        }
    }
    let format = request.response_format.as_ref().filter(|f| !f.is_null());
    match format.and_then(|f| f.get("type")).and_then(Value::as_str) {
        None | Some("text") => {}
        Some("json_object") => {
            gen.insert("responseMimeType".into(), json!("application/json"));
        }
        Some("json_schema") => {
            let (_, schema) = translate::json_schema(format.unwrap_or(&Value::Null))?;
            gen.insert("responseMimeType".into(), json!("application/json"));
            gen.insert("responseSchema".into(), gemini_schema::sanitize(&schema));
        }
        Some(other) => return Err(format!("response_format.type: '{other}' is not supported")),
    }
    let include = !reasoning.exclude;
    let thinking = match reasoning.thinking {
        Thinking::Default => None,
        Thinking::Off => Some(json!({"thinkingBudget": 0})),
        Thinking::Effort(e) => Some(json!({
            "thinkingBudget": e.budget(max_tokens, THINKING_MIN, THINKING_CAP),
            "includeThoughts": include,
        })),
        Thinking::Budget(b) => Some(json!({"thinkingBudget": b, "includeThoughts": include})),
    };
    if let Some(t) = thinking {
        gen.insert("thinkingConfig".into(), t);
    }
    body.insert("generationConfig".into(), Value::Object(gen));
    Ok(Prepared {
        body: Value::Object(body),
        exclude_reasoning: reasoning.exclude,
    })
}

/// `systemInstruction` parts and `contents`.
fn contents(request: &ChatRequest) -> Result<(Vec<Value>, Vec<Value>), String> {
    let mut system = Vec::new();
    let mut turns: Vec<(&'static str, Vec<Value>)> = Vec::new();
    // Gemini names function responses, OpenAI ids them: remember each call's name by id.
    let mut call_names: Vec<(String, String)> = Vec::new();
    for (i, m) in request.messages.iter().enumerate() {
        let path = format!("messages[{i}]");
        let (role, parts) = match m.role {
            Role::System | Role::Developer => {
                system.extend(parts(m.content.as_ref(), &path, false)?);
                continue;
            }
            Role::User => ("user", parts(m.content.as_ref(), &path, true)?),
            Role::Assistant => ("model", model_parts(m, &path, &mut call_names)?),
            Role::Tool => ("user", vec![function_response(m, &path, &call_names)?]),
            Role::Function => {
                return Err(format!(
                "{path}.role: 'function' messages are not supported by Gemini models; use 'tool'"
            ))
            }
        };
        if parts.is_empty() {
            continue;
        }
        match turns.last_mut() {
            Some((last, existing)) if *last == role => existing.extend(parts),
            _ => turns.push((role, parts)),
        }
    }
    if turns.is_empty() {
        return Err("messages: Gemini models need at least one user or assistant message".into());
    }
    let contents = turns
        .into_iter()
        .map(|(role, parts)| json!({"role": role, "parts": parts}))
        .collect();
    Ok((system, contents))
}

fn parts(content: Option<&Content>, path: &str, media: bool) -> Result<Vec<Value>, String> {
    let mut out = Vec::new();
    match content {
        None => {}
        Some(Content::Text(t)) if t.is_empty() => {}
        Some(Content::Text(t)) => out.push(json!({"text": t})),
        Some(Content::Parts(list)) => {
            for (j, part) in list.iter().enumerate() {
                let ppath = format!("{path}.content[{j}]");
                let media_part = match part {
                    ContentPart::Text { text, .. } => {
                        if !text.is_empty() {
                            out.push(json!({"text": text}));
                        }
                        continue;
                    }
                    _ if !media => {
                        return Err(format!(
                            "{ppath}: only text is allowed here for Gemini models"
                        ))
                    }
                    ContentPart::ImageUrl { image_url } => media::parse_url(&image_url.url)
                        .map(|m| (m, "image/jpeg"))
                        .map_err(|e| format!("{ppath}.image_url.url: {e}"))?,
                    ContentPart::File { file } => media::parse_file(file)
                        .map(|m| (m, "application/pdf"))
                        .map_err(|e| format!("{ppath}.file: {e}"))?,
                    ContentPart::InputAudio { input_audio } => media::parse_audio(input_audio)
                        .map(|m| (m, "audio/wav"))
                        .map_err(|e| format!("{ppath}.input_audio: {e}"))?,
                };
                out.push(match media_part {
                    (Media::Inline { media_type, data }, _) => {
                        json!({"inlineData": {"mimeType": media_type, "data": data}})
                    }
                    (Media::Url { url }, fallback) => json!({"fileData": {
                        "mimeType": media::guess_media_type(&url, fallback), "fileUri": url}}),
                });
            }
        }
    }
    Ok(out)
}

fn model_parts(
    m: &Message,
    path: &str,
    call_names: &mut Vec<(String, String)>,
) -> Result<Vec<Value>, String> {
    let signatures: Vec<Map<String, Value>> =
        translate::merged_reasoning_details(m.extra.get("reasoning_details"))
            .into_iter()
            .filter(|d| {
                d.get("format").and_then(Value::as_str) == Some(REASONING_FORMAT)
                    && d.get("type").and_then(Value::as_str) == Some("reasoning.encrypted")
            })
            .collect();
    let signature_for = |id: Option<&str>| {
        signatures
            .iter()
            .find(|d| d.get("id").and_then(Value::as_str) == id)
            .and_then(|d| d.get("data").cloned())
    };
    let mut out = parts(m.content.as_ref(), path, false)?;
    if let (Some(first), Some(sig)) = (out.first_mut(), signature_for(None)) {
        first["thoughtSignature"] = sig;
    }
    for (k, call) in m.tool_calls.iter().flatten().enumerate() {
        let cpath = format!("{path}.tool_calls[{k}]");
        let name = call
            .pointer("/function/name")
            .and_then(Value::as_str)
            .ok_or_else(|| format!("{cpath}.function.name: missing"))?;
        let id = call.get("id").and_then(Value::as_str);
        if let Some(id) = id {
            call_names.push((id.to_string(), name.to_string()));
        }
        let args = translate::call_arguments(call, &cpath)?;
        let mut part = json!({"functionCall": {"name": name, "args": args}});
        if let Some(sig) = id.and_then(|id| signature_for(Some(id))) {
            part["thoughtSignature"] = sig;
        }
        out.push(part);
    }
    Ok(out)
}

fn function_response(
    m: &Message,
    path: &str,
    call_names: &[(String, String)],
) -> Result<Value, String> {
    let id = m
        .tool_call_id
        .as_deref()
        .ok_or_else(|| format!("{path}.tool_call_id: missing"))?;
    let name = call_names
        .iter()
        .rev()
        .find(|(i, _)| i == id)
        .map(|(_, n)| n.clone())
        .ok_or_else(|| {
            format!("{path}.tool_call_id: no earlier assistant tool call has id '{id}'")
        })?;
    let text = match &m.content {
        None => String::new(),
        Some(Content::Text(t)) => t.clone(),
        Some(Content::Parts(list)) => {
            let mut text = String::new();
            for (j, p) in list.iter().enumerate() {
                match p {
                    ContentPart::Text { text: t, .. } => text.push_str(t),
                    _ => {
                        return Err(format!(
                            "{path}.content[{j}]: a Gemini function response carries text only"
                        ))
                    }
                }
            }
            text
        }
    };
    let response = match serde_json::from_str::<Value>(&text) {
        Ok(v @ Value::Object(_)) => v,
        Ok(other) => json!({"result": other}),
        Err(_) => json!({"result": text}),
    };
    Ok(json!({"functionResponse": {"name": name, "response": response}}))
}

/// Gemini's usage: `promptTokenCount` already includes cached content, and tool-use prompt
/// tokens are input too; thoughts are output billed beside the candidates.
pub fn parse_usage(u: &Value) -> Usage {
    let n = |k: &str| u.get(k).and_then(Value::as_u64).unwrap_or(0);
    let thoughts = n("thoughtsTokenCount");
    Usage {
        prompt_tokens: n("promptTokenCount") + n("toolUsePromptTokenCount"),
        completion_tokens: n("candidatesTokenCount") + thoughts,
        cached_tokens: n("cachedContentTokenCount"),
        cache_write_tokens: 0,
        reasoning_tokens: thoughts,
        images: 0,
    }
}

/// `finishReason` to OpenAI's `finish_reason`.
pub fn finish_reason(reason: &str, called_tools: bool) -> String {
    match reason {
        "MAX_TOKENS" => "length",
        "SAFETY" | "RECITATION" | "BLOCKLIST" | "PROHIBITED_CONTENT" | "SPII" | "IMAGE_SAFETY" => {
            "content_filter"
        }
        "MALFORMED_FUNCTION_CALL" | "UNEXPECTED_TOOL_CALL" => "error",
        _ if called_tools => "tool_calls",
        _ => "stop",
    }
    .into()
}

/// An OpenAI tool-call id for a Gemini function call, which has none.
pub fn call_id() -> String {
    let suffix: String = rand::thread_rng()
        .sample_iter(&rand::distributions::Alphanumeric)
        .take(24)
        .map(char::from)
        .collect();
    format!("call_{suffix}")
}

/// One part as what it adds to a message: text, thought, tool call, and its signature detail.
pub(crate) enum PartOut {
    Text(String),
    Thought(String),
    Call(Value),
    Nothing,
}

pub(crate) fn read_part(part: &Value, call_index: usize) -> (PartOut, Option<Value>) {
    let mut call_id_made = None;
    let out = if let Some(fc) = part.get("functionCall") {
        let id = call_id();
        call_id_made = Some(id.clone());
        let args = fc.get("args").cloned().unwrap_or_else(|| json!({}));
        let call = json!({"index": call_index, "id": id, "type": "function", "function": {
            "name": fc.get("name").and_then(Value::as_str).unwrap_or_default(),
            "arguments": args.to_string()}});
        PartOut::Call(call)
    } else if let Some(t) = part.get("text").and_then(Value::as_str) {
        if part.get("thought").and_then(Value::as_bool) == Some(true) {
            PartOut::Thought(t.to_string())
        } else {
            PartOut::Text(t.to_string())
        }
    } else {
        PartOut::Nothing
    };
    let signature = part
        .get("thoughtSignature")
        .and_then(Value::as_str)
        .map(|sig| {
            let mut d =
                json!({"type": "reasoning.encrypted", "data": sig, "format": REASONING_FORMAT});
            if let Some(id) = call_id_made {
                d["id"] = json!(id);
            }
            d
        });
    (out, signature)
}

/// A complete `GenerateContentResponse` to a chat completion and its usage.
pub fn parse_response(
    body: &Value,
    prepared: &Prepared,
) -> Result<(ChatResponse, Option<Usage>), String> {
    let candidates = body
        .get("candidates")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let blocked = body.pointer("/promptFeedback/blockReason").is_some();
    if candidates.is_empty() && !blocked {
        return Err("no candidates and no promptFeedback.blockReason".into());
    }
    let mut choices = Vec::new();
    for (n, cand) in candidates.iter().enumerate() {
        let mut text = String::new();
        let mut reasoning = String::new();
        let mut details = Vec::new();
        let mut calls = Vec::new();
        let parts = cand
            .pointer("/content/parts")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        for part in &parts {
            let (out, signature) = read_part(part, calls.len());
            match out {
                PartOut::Text(t) => text.push_str(&t),
                PartOut::Thought(t) => reasoning.push_str(&t),
                PartOut::Call(mut call) => {
                    if let Some(o) = call.as_object_mut() {
                        o.remove("index");
                    }
                    calls.push(call)
                }
                PartOut::Nothing => {}
            }
            if let Some(mut d) = signature {
                d["index"] = json!(details.len());
                details.push(d);
            }
        }
        let raw = cand
            .get("finishReason")
            .and_then(Value::as_str)
            .unwrap_or("STOP");
        let show = !prepared.exclude_reasoning;
        choices.push(Choice {
            index: u32::try_from(n).unwrap_or(u32::MAX),
            message: ResponseMessage {
                role: "assistant".into(),
                content: (!text.is_empty() || calls.is_empty()).then_some(text),
                reasoning: (show && !reasoning.is_empty()).then_some(reasoning),
                // Signatures are kept even when thoughts are excluded: tool loops need them.
                reasoning_details: (!details.is_empty()).then_some(details),
                tool_calls: (!calls.is_empty()).then_some(calls.clone()),
                extra: Map::new(),
            },
            finish_reason: Some(finish_reason(raw, !calls.is_empty())),
            extra: Map::new(),
        });
    }
    if choices.is_empty() {
        choices.push(Choice {
            index: 0,
            message: ResponseMessage {
                role: "assistant".into(),
                content: Some(String::new()),
                ..Default::default()
            },
            finish_reason: Some("content_filter".into()),
            extra: Map::new(),
        });
    }
    let str_of = |k: &str| {
        body.get(k)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string()
    };
    let response = ChatResponse {
        id: str_of("responseId"),
        object: "chat.completion".into(),
        created: 0,
        model: str_of("modelVersion"),
        provider: None,
        choices,
        usage: None,
        extra: Map::new(),
    };
    Ok((response, body.get("usageMetadata").map(parse_usage)))
}

/// Gemini reports a bad API key as 400 INVALID_ARGUMENT; it is the operator's key, so it is
/// classified as 401 (provider auth), never blamed on the client's request.
pub(crate) fn error_status(status: u16, body: &Value) -> u16 {
    let text = body.to_string();
    if status == 400 && (text.contains("API_KEY_INVALID") || text.contains("API key not valid")) {
        401
    } else {
        status
    }
}

/// `{base}/v1beta/models/{model}:{method}`, tolerating a base that already ends in a version
/// and an upstream model given as `models/...`.
pub(crate) fn url(base: &str, model: &str, method: &str) -> String {
    let root = base
        .strip_suffix("/v1beta")
        .or_else(|| base.strip_suffix("/v1"))
        .unwrap_or(base);
    let model = model.strip_prefix("models/").unwrap_or(model);
    format!("{root}/v1beta/models/{model}:{method}")
}

pub(crate) fn api_key(endpoint: &Endpoint) -> String {
    endpoint
        .provider
        .api_key
        .as_ref()
        .map(|k| k.expose_secret().to_string())
        .unwrap_or_default()
}

pub(super) async fn chat(
    client: &ProviderClient,
    endpoint: &Arc<Endpoint>,
    request: &ChatRequest,
) -> Result<Reply, ProviderError> {
    let provider = endpoint.provider.name.as_str();
    let prepared = prepare(endpoint, request).map_err(|m| untranslatable(endpoint, m))?;
    let method = if request.stream {
        "streamGenerateContent?alt=sse"
    } else {
        "generateContent"
    };
    let builder = client
        .http()
        .post(url(
            &endpoint.provider.base_url,
            &endpoint.upstream_model,
            method,
        ))
        .header("x-goog-api-key", api_key(endpoint))
        .json(&prepared.body);
    let response = http::send(client, endpoint, builder, error_status).await?;
    if http::streams(request.stream, &response) {
        let translator = GeminiStream::new(provider, prepared.exclude_reasoning);
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
