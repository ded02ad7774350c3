//! Anthropic Messages API (`POST /v1/messages`, stream and not), token
//! counting and model list.

use serde_json::{json, Value};

use crate::ojson::{obj, J, NULL};

use crate::behaviour::{Answer, Finish, PromptInfo, ResolvedToolCall, Usage};
use crate::router::{require_model, sse_event, wants_stream, Built, Ctx, Dialect, Provider};
use crate::server::{Ev, EvKind, Outcome};
use crate::{errors, openai_extra, util};

/// `Content-Type` of Anthropic streams.
const SSE_CONTENT_TYPE: &str = "text/event-stream; charset=utf-8";

/// Text of a `system` parameter or a message `content` (string or blocks).
/// `include_tool_results` also takes the text of `tool_result` blocks.
fn block_texts(content: Option<&Value>, include_tool_results: bool) -> Vec<&str> {
    match content {
        Some(Value::String(s)) => vec![s.as_str()],
        Some(Value::Array(blocks)) => {
            let mut out = Vec::new();
            for block in blocks {
                match block.get("type").and_then(Value::as_str) {
                    Some("text") => out.extend(block.get("text").and_then(Value::as_str)),
                    Some("tool_result") if include_tool_results => {
                        out.extend(block_texts(block.get("content"), false));
                    }
                    _ => {}
                }
            }
            out
        }
        _ => Vec::new(),
    }
}

fn prompt_info(body: &Value) -> PromptInfo {
    let mut info = PromptInfo::default();
    if let Some(system) = body.get("system") {
        info.add_message(block_texts(Some(system), false));
    }
    for msg in body
        .get("messages")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        if msg.get("role").and_then(Value::as_str) == Some("user") {
            info.last_user_text = Some(block_texts(msg.get("content"), false).join("\n"));
        }
        info.add_message(block_texts(msg.get("content"), true));
    }
    info
}

/// Anthropic `usage`: `input_tokens` excludes cache reads and writes;
/// all zero when usage is omitted.
fn usage_json(u: &Usage, omit: bool, output_tokens: u64) -> J {
    let z = |v: u64| if omit { 0 } else { v };
    obj! {
        "input_tokens": z(u.uncached_input()),
        "cache_creation_input_tokens": z(u.cache_write),
        "cache_read_input_tokens": z(u.cached),
        "cache_creation": obj! {
            "ephemeral_5m_input_tokens": z(u.cache_write),
            "ephemeral_1h_input_tokens": 0u64,
        },
        "output_tokens": z(output_tokens),
        "service_tier": "standard",
    }
}

/// Checks shared by `/v1/messages` and `/v1/messages/count_tokens`. On Vertex the version is
/// in the body (`vertex-2023-10-16`) and the model in the URL, never in the body.
fn validate(ctx: &Ctx) -> Option<Outcome> {
    if let Some(rejected) = ctx.check_auth(Provider::Anthropic) {
        return Some(rejected);
    }
    if let Some(rejected) = ctx.check_json(Provider::Anthropic) {
        return Some(rejected);
    }
    if ctx.dialect == Dialect::Vertex {
        let version = ctx.body().get("anthropic_version").and_then(Value::as_str);
        if version != Some(crate::vertex::ANTHROPIC_VERSION) {
            return Some(ctx.error(
                Provider::Anthropic,
                400,
                "anthropic_version: Input should be 'vertex-2023-10-16'",
            ));
        }
        if ctx.body().get("model").is_some() {
            return Some(ctx.error(
                Provider::Anthropic,
                400,
                "model: Extra inputs are not permitted",
            ));
        }
    } else if ctx.header("anthropic-version").is_none() {
        return Some(ctx.error(
            Provider::Anthropic,
            400,
            "anthropic-version: header is required",
        ));
    }
    if !ctx.body().get("messages").is_some_and(Value::is_array) {
        return Some(ctx.error(Provider::Anthropic, 400, "messages: Field required"));
    }
    None
}

/// `POST /v1/messages`.
pub(crate) async fn messages(ctx: Ctx) -> Outcome {
    if let Some(rejected) = validate(&ctx) {
        return rejected;
    }
    let model = match require_model(&ctx, Provider::Anthropic) {
        Ok(m) => m,
        Err(o) => return o,
    };
    if !ctx.body().get("max_tokens").is_some_and(Value::is_u64) {
        return ctx.error(Provider::Anthropic, 400, "max_tokens: Field required");
    }
    let prompt = prompt_info(ctx.body());
    let behaviour = match ctx.behaviour(
        Provider::Anthropic,
        &model,
        prompt.last_user_text.as_deref(),
    ) {
        Ok(b) => b,
        Err(o) => return o,
    };
    let answer = Answer::resolve(&behaviour, &prompt);
    let stop_sequence = match answer.finish {
        Finish::StopSequence => ctx
            .body()
            .pointer("/stop_sequences/0")
            .cloned()
            .unwrap_or(Value::Null),
        _ => Value::Null,
    };
    let stream = behaviour.streams(wants_stream(ctx.body()));
    let error_message = behaviour.error_message.clone();
    ctx.answer(Provider::Anthropic, &behaviour, move || {
        let msg = MessageMeta {
            id: util::random_id("msg_01"),
            model,
            stop_sequence,
        };
        if stream {
            Built::Stream {
                content_type: SSE_CONTENT_TYPE,
                events: message_stream(&msg, &answer),
                error_event: stream_error_event(error_message.as_deref()).into(),
            }
        } else {
            Built::Json(message_response(&msg, &answer))
        }
    })
    .await
}

struct MessageMeta {
    id: String,
    model: String,
    stop_sequence: Value,
}

/// Tool input as an object, and its JSON text.
fn tool_input(call: &ResolvedToolCall) -> (Value, String) {
    let input = if call.value.is_object() {
        call.value.clone()
    } else {
        json!({ "value": call.value })
    };
    let text = input.to_string();
    (input, text)
}

fn tool_id(call: &ResolvedToolCall) -> String {
    call.id
        .clone()
        .unwrap_or_else(|| util::random_id("toolu_01"))
}

fn message_json(
    msg: &MessageMeta,
    content: Vec<J>,
    stop_reason: J,
    stop_sequence: J,
    usage: J,
) -> J {
    obj! {
        "id": &msg.id,
        "type": "message",
        "role": "assistant",
        "content": content,
        "model": &msg.model,
        "stop_reason": stop_reason,
        "stop_sequence": stop_sequence,
        "usage": usage,
    }
}

fn message_response(msg: &MessageMeta, answer: &Answer) -> J {
    let mut content = Vec::new();
    if let Some(thinking) = &answer.reasoning {
        content.push(obj! {
            "type": "thinking",
            "thinking": thinking,
            "signature": util::signature(thinking),
        });
    }
    if let Some(text) = answer.text.as_deref().filter(|t| !t.is_empty()) {
        content.push(obj! {"type": "text", "text": text});
    }
    for call in &answer.tool_calls {
        let (input, _) = tool_input(call);
        content.push(obj! {
            "type": "tool_use",
            "id": tool_id(call),
            "name": &call.name,
            "input": input,
        });
    }
    let usage = usage_json(&answer.usage, answer.omit_usage, answer.usage.completion);
    message_json(
        msg,
        content,
        answer.finish.anthropic().into(),
        (&msg.stop_sequence).into(),
        usage,
    )
}

fn event(kind: EvKind, name: &str, v: &J) -> Ev {
    Ev::new(kind, sse_event(name, v))
}

fn message_stream(msg: &MessageMeta, answer: &Answer) -> Vec<Ev> {
    let delta = |index: usize, d: J| {
        event(
            EvKind::Content,
            "content_block_delta",
            &obj! {"type": "content_block_delta", "index": index, "delta": d},
        )
    };
    let start = |index: usize, block: J| {
        event(
            EvKind::Other,
            "content_block_start",
            &obj! {"type": "content_block_start", "index": index, "content_block": block},
        )
    };
    let stop = |index: usize| {
        event(
            EvKind::Other,
            "content_block_stop",
            &obj! {"type": "content_block_stop", "index": index},
        )
    };
    let u = &answer.usage;
    let start_usage = usage_json(u, answer.omit_usage, u.completion.min(1));
    let mut events = vec![event(
        EvKind::Other,
        "message_start",
        &obj! {
            "type": "message_start",
            "message": message_json(msg, Vec::new(), NULL, NULL, start_usage),
        },
    )];
    let mut index = 0;
    if let Some(thinking) = &answer.reasoning {
        events.push(start(
            index,
            obj! {"type": "thinking", "thinking": "", "signature": ""},
        ));
        for piece in answer.reasoning_pieces() {
            events.push(delta(
                index,
                obj! {"type": "thinking_delta", "thinking": piece},
            ));
        }
        events.push(delta(
            index,
            obj! {"type": "signature_delta", "signature": util::signature(thinking)},
        ));
        events.push(stop(index));
        index += 1;
    }
    if answer.text.as_deref().is_some_and(|t| !t.is_empty()) {
        events.push(start(index, obj! {"type": "text", "text": ""}));
        for piece in answer.text_pieces() {
            events.push(delta(index, obj! {"type": "text_delta", "text": piece}));
        }
        events.push(stop(index));
        index += 1;
    }
    for call in &answer.tool_calls {
        let (_, text) = tool_input(call);
        events.push(start(
            index,
            obj! {
                "type": "tool_use",
                "id": tool_id(call),
                "name": &call.name,
                "input": obj! {},
            },
        ));
        for piece in util::split_args(&text) {
            events.push(delta(
                index,
                obj! {"type": "input_json_delta", "partial_json": piece},
            ));
        }
        events.push(stop(index));
        index += 1;
    }
    // As in the documented example, `ping` follows the first content_block_start.
    let ping_at = if index > 0 { 2 } else { 1 };
    events.insert(
        ping_at,
        event(EvKind::Other, "ping", &obj! {"type": "ping"}),
    );
    let mut final_usage = usage_json(u, answer.omit_usage, u.completion);
    final_usage.remove("cache_creation");
    final_usage.remove("service_tier");
    events.push(event(
        EvKind::Tail,
        "message_delta",
        &obj! {
            "type": "message_delta",
            "delta": obj! {
                "stop_reason": answer.finish.anthropic(),
                "stop_sequence": &msg.stop_sequence,
            },
            "usage": final_usage,
        },
    ));
    events.push(event(
        EvKind::Tail,
        "message_stop",
        &obj! {"type": "message_stop"},
    ));
    events
}

/// `event: error` used by `fault: error_after_chunks`.
fn stream_error_event(message: Option<&str>) -> String {
    let status = errors::in_stream_status(Provider::Anthropic);
    let default = errors::default_message(Provider::Anthropic, status);
    let body = obj! {
        "type": "error",
        "error": obj! {
            "type": errors::anthropic_type(status),
            "message": message.unwrap_or(&default),
        },
    };
    sse_event("error", &body)
}

/// `POST /v1/messages/count_tokens`: the default prompt token count.
pub(crate) fn count_tokens(ctx: &Ctx) -> Outcome {
    if let Some(rejected) = validate(ctx) {
        return rejected;
    }
    let prompt = prompt_info(ctx.body());
    let body = obj! {"input_tokens": prompt.default_prompt_tokens()};
    ctx.json(
        Provider::Anthropic,
        200,
        &body,
        None,
        &util::random_id("req_"),
    )
}

/// `GET /v1/models` when an `anthropic-version` header is present.
pub(crate) fn models(ctx: &Ctx) -> Outcome {
    if let Some(rejected) = ctx.check_auth(Provider::Anthropic) {
        return rejected;
    }
    let names = openai_extra::model_names(ctx);
    let data: Vec<J> = names
        .iter()
        .map(|id| {
            obj! {
                "type": "model",
                "id": id,
                "display_name": id,
                "created_at": "2025-01-01T00:00:00Z",
            }
        })
        .collect();
    let body = obj! {
        "data": data,
        "has_more": false,
        "first_id": names.first(),
        "last_id": names.last(),
    };
    ctx.json(
        Provider::Anthropic,
        200,
        &body,
        None,
        &util::random_id("req_"),
    )
}
