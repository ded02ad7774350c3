//! AWS Bedrock's Converse API: `POST /model/{modelId}/converse` (JSON) and
//! `/model/{modelId}/converse-stream` (the event-stream framing), SigV4-signed. The model id
//! is the percent-decoded path segment (`anthropic.claude-3-5-sonnet-20240620-v1:0`).
//!
//! Usage: `inputTokens` = P − R − W, `cacheReadInputTokens` = R, `cacheWriteInputTokens` = W,
//! `outputTokens` = C. Stream: messageStart, reasoning deltas (text, then signature), text
//! deltas, per tool call a contentBlockStart then input deltas, messageStop, metadata (usage).
//! Each event payload carries a `p` padding field, as Bedrock's do.

use serde_json::Value;

use crate::behaviour::{Answer, Finish, PromptInfo};
use crate::eventstream::{self, CONTENT_TYPE};
use crate::ojson::{obj, J};
use crate::router::{percent_decode, wants_stream, Built, Ctx, Provider};
use crate::server::{Ev, EvKind, Outcome};
use crate::{errors, util};

pub(crate) async fn route(mut ctx: Ctx) -> Outcome {
    let path = ctx.path().to_string();
    let rest = path.trim_start_matches("/model/");
    let Some((model, operation)) = rest.rsplit_once('/') else {
        return ctx.error(Provider::Bedrock, 404, "Unknown operation.");
    };
    let stream = match operation {
        "converse" => false,
        "converse-stream" => true,
        _ => {
            return ctx.error(
                Provider::Bedrock,
                404,
                &format!("Operation {operation} is not supported (mock provider)."),
            )
        }
    };
    ctx.model_override = Some(percent_decode(model));
    converse(ctx, stream).await
}

fn texts(blocks: Option<&Value>) -> Vec<&str> {
    let mut out = Vec::new();
    for b in blocks.and_then(Value::as_array).into_iter().flatten() {
        if let Some(t) = b.get("text").and_then(Value::as_str) {
            out.push(t);
        }
        for c in b
            .pointer("/toolResult/content")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            out.extend(c.get("text").and_then(Value::as_str));
        }
    }
    out
}

fn prompt_info(body: &Value) -> PromptInfo {
    let mut info = PromptInfo::default();
    if let Some(system) = body.get("system") {
        info.add_message(texts(Some(system)));
    }
    for m in body
        .get("messages")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let t = texts(m.get("content"));
        if m.get("role").and_then(Value::as_str) == Some("user") {
            info.last_user_text = Some(t.join("\n"));
        }
        info.add_message(t);
    }
    info
}

fn stop_reason(f: &Finish) -> String {
    match f {
        Finish::Stop => "end_turn".into(),
        Finish::Length => "max_tokens".into(),
        Finish::ToolCalls => "tool_use".into(),
        Finish::ContentFilter => "content_filtered".into(),
        Finish::StopSequence => "stop_sequence".into(),
        Finish::Other(s) => s.clone(),
    }
}

fn usage_json(a: &Answer) -> J {
    let u = &a.usage;
    let z = |v: u64| if a.omit_usage { 0 } else { v };
    let input = u.uncached_input();
    obj! {
        "inputTokens": z(input),
        "outputTokens": z(u.completion),
        "totalTokens": z(input + u.completion + u.cached + u.cache_write),
        "cacheReadInputTokens": z(u.cached),
        "cacheWriteInputTokens": z(u.cache_write),
    }
}

fn tool_id(call: &crate::behaviour::ResolvedToolCall) -> String {
    call.id
        .clone()
        .unwrap_or_else(|| util::random_id("tooluse_"))
}

fn input(call: &crate::behaviour::ResolvedToolCall) -> Value {
    if call.value.is_object() {
        call.value.clone()
    } else {
        serde_json::json!({ "value": call.value })
    }
}

async fn converse(ctx: Ctx, stream: bool) -> Outcome {
    if let Some(rejected) = ctx
        .check_auth(Provider::Bedrock)
        .or_else(|| ctx.check_json(Provider::Bedrock))
    {
        return rejected;
    }
    if !ctx.body().get("messages").is_some_and(Value::is_array) {
        return ctx.error(
            Provider::Bedrock,
            400,
            "1 validation error detected: Value null at 'messages' failed to satisfy constraint: Member must not be null",
        );
    }
    let model = ctx.model_override.clone().unwrap_or_default();
    let prompt = prompt_info(ctx.body());
    let behaviour = match ctx.behaviour(Provider::Bedrock, &model, prompt.last_user_text.as_deref())
    {
        Ok(b) => b,
        Err(o) => return o,
    };
    let answer = Answer::resolve(&behaviour, &prompt);
    let error_message = behaviour.error_message.clone();
    let stream = behaviour.streams(stream || wants_stream(ctx.body()));
    ctx.answer(Provider::Bedrock, &behaviour, move || {
        if stream {
            Built::Stream {
                content_type: CONTENT_TYPE,
                events: stream_events(&answer),
                error_event: eventstream::exception(
                    &lower_first(errors::bedrock_exception(errors::in_stream_status(
                        Provider::Bedrock,
                    ))),
                    error_message
                        .as_deref()
                        .unwrap_or("Bedrock is unable to process your request."),
                )
                .into(),
            }
        } else {
            Built::Json(response(&answer))
        }
    })
    .await
}

/// Stream exception types are the exception names with a lower-case first letter.
fn lower_first(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_ascii_lowercase().to_string() + c.as_str(),
        None => String::new(),
    }
}

fn response(a: &Answer) -> J {
    let mut content = Vec::new();
    if let Some(r) = &a.reasoning {
        content.push(obj! {"reasoningContent": obj! {"reasoningText": obj! {
        "text": r, "signature": util::signature(r)}}});
    }
    if let Some(t) = a.text.as_deref().filter(|t| !t.is_empty()) {
        content.push(obj! {"text": t});
    }
    for call in &a.tool_calls {
        content.push(obj! {"toolUse": obj! {
        "toolUseId": tool_id(call), "name": &call.name, "input": input(call)}});
    }
    obj! {
        "output": obj! {"message": obj! {"role": "assistant", "content": content}},
        "stopReason": stop_reason(&a.finish),
        "usage": usage_json(a),
        "metrics": obj! {"latencyMs": 42u64},
    }
}

fn ev(kind: EvKind, event_type: &str, payload: J) -> Ev {
    let mut payload = payload;
    payload.set("p", "abcdefghijklmnopqrstuvwxyzABCDEF");
    Ev::new(kind, eventstream::event(event_type, &payload.to_string()))
}

fn stream_events(a: &Answer) -> Vec<Ev> {
    let mut events = vec![ev(
        EvKind::Other,
        "messageStart",
        obj! {"role": "assistant"},
    )];
    let mut index = 0u64;
    let delta = |index: u64, d: J| {
        ev(
            EvKind::Content,
            "contentBlockDelta",
            obj! {"contentBlockIndex": index, "delta": d},
        )
    };
    let stop = |index: u64| {
        ev(
            EvKind::Other,
            "contentBlockStop",
            obj! {"contentBlockIndex": index},
        )
    };
    if let Some(r) = &a.reasoning {
        for piece in a.reasoning_pieces() {
            events.push(delta(
                index,
                obj! {"reasoningContent": obj! {"text": piece}},
            ));
        }
        events.push(delta(
            index,
            obj! {"reasoningContent": obj! {"signature": util::signature(r)}},
        ));
        events.push(stop(index));
        index += 1;
    }
    if a.text.as_deref().is_some_and(|t| !t.is_empty()) {
        for piece in a.text_pieces() {
            events.push(delta(index, obj! {"text": piece}));
        }
        events.push(stop(index));
        index += 1;
    }
    for call in &a.tool_calls {
        events.push(ev(
            EvKind::Other,
            "contentBlockStart",
            obj! {"contentBlockIndex": index, "start": obj! {"toolUse": obj! {
            "toolUseId": tool_id(call), "name": &call.name}}},
        ));
        for piece in util::split_args(&input(call).to_string()) {
            events.push(delta(index, obj! {"toolUse": obj! {"input": piece}}));
        }
        events.push(stop(index));
        index += 1;
    }
    events.push(ev(
        EvKind::Tail,
        "messageStop",
        obj! {"stopReason": stop_reason(&a.finish)},
    ));
    events.push(ev(
        EvKind::Tail,
        "metadata",
        obj! {"usage": usage_json(a), "metrics": obj! {"latencyMs": 42u64}},
    ));
    events
}
