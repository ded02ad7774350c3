//! OpenAI Chat Completions (`POST /v1/chat/completions`), plus the usage and
//! chunk helpers shared with the legacy Completions endpoint.

use serde_json::Value;

use crate::behaviour::{Answer, PromptInfo, Usage};
use crate::ojson::{obj, J, NULL};
use crate::router::{require_model, sse_data, wants_stream, Built, Ctx, Dialect, Provider};
use crate::server::{Ev, EvKind, Outcome};
use crate::{errors, util};

/// `Content-Type` of OpenAI streams.
pub(crate) const SSE_CONTENT_TYPE: &str = "text/event-stream; charset=utf-8";

/// Value of `system_fingerprint` in every response.
pub(crate) const FINGERPRINT: &str = "fp_mock";

/// Text pieces of an OpenAI message `content` (string or array of parts).
pub(crate) fn content_texts(content: Option<&Value>) -> Vec<&str> {
    match content {
        Some(Value::String(s)) => vec![s.as_str()],
        Some(Value::Array(parts)) => parts
            .iter()
            .filter_map(|p| match p {
                Value::String(s) => Some(s.as_str()),
                other => other.get("text").and_then(Value::as_str),
            })
            .collect(),
        _ => Vec::new(),
    }
}

/// Prompt summary of a `messages` array.
fn prompt_info(body: &Value) -> PromptInfo {
    let mut info = PromptInfo::default();
    for msg in body
        .get("messages")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let texts = content_texts(msg.get("content"));
        if msg.get("role").and_then(Value::as_str) == Some("user") {
            info.last_user_text = Some(texts.join("\n"));
        }
        info.add_message(texts);
    }
    info
}

/// OpenAI `usage` object.
pub(crate) fn usage_json(u: &Usage) -> J {
    let mut prompt_details = obj! {
        "cached_tokens": u.cached,
        "audio_tokens": 0u64,
    };
    if u.cache_write > 0 {
        prompt_details.set("cache_write_tokens", u.cache_write);
    }
    obj! {
        "prompt_tokens": u.prompt,
        "completion_tokens": u.completion,
        "total_tokens": u.prompt + u.completion,
        "prompt_tokens_details": prompt_details,
        "completion_tokens_details": obj! {
            "reasoning_tokens": u.reasoning,
            "audio_tokens": 0u64,
            "accepted_prediction_tokens": 0u64,
            "rejected_prediction_tokens": 0u64,
        },
    }
}

/// Whether `stream_options.include_usage` is true.
pub(crate) fn include_usage(body: &Value) -> bool {
    body.pointer("/stream_options/include_usage")
        .and_then(Value::as_bool)
        .unwrap_or(false)
}

/// In-stream error event used by `fault: error_after_chunks`.
pub(crate) fn stream_error_event(message: Option<&str>) -> String {
    let status = errors::in_stream_status(Provider::OpenAi);
    let default = errors::default_message(Provider::OpenAi, status);
    sse_data(&errors::openai(status, message.unwrap_or(&default)))
}

/// `POST /v1/chat/completions`.
pub(crate) async fn chat(ctx: Ctx) -> Outcome {
    if let Some(rejected) = ctx
        .check_auth(Provider::OpenAi)
        .or_else(|| ctx.check_json(Provider::OpenAi))
    {
        return rejected;
    }
    let model = match require_model(&ctx, Provider::OpenAi) {
        Ok(m) => m,
        Err(o) => return o,
    };
    if !ctx.body().get("messages").is_some_and(Value::is_array) {
        return ctx.error(
            Provider::OpenAi,
            400,
            "Missing required parameter: 'messages'.",
        );
    }
    let prompt = prompt_info(ctx.body());
    let behaviour = match ctx.behaviour(Provider::OpenAi, &model, prompt.last_user_text.as_deref())
    {
        Ok(b) => b,
        Err(o) => return o,
    };
    let azure = ctx.dialect == Dialect::Azure;
    if azure && behaviour.prompt_filtered == Some(true) {
        return crate::azure::prompt_filtered(&ctx);
    }
    let answer = Answer::resolve(&behaviour, &prompt);
    let stream = behaviour.streams(wants_stream(ctx.body()));
    let with_usage = include_usage(ctx.body());
    let error_message = behaviour.error_message.clone();
    ctx.answer(Provider::OpenAi, &behaviour, move || {
        let meta = Meta::new("chatcmpl-", &model);
        if stream {
            Built::Stream {
                content_type: SSE_CONTENT_TYPE,
                events: chat_stream(&meta, &answer, with_usage, azure),
                error_event: stream_error_event(error_message.as_deref()).into(),
            }
        } else {
            Built::Json(chat_response(&meta, &answer, azure))
        }
    })
    .await
}

/// Id, creation time and model shared by all chunks of one response.
pub(crate) struct Meta {
    pub id: String,
    pub created: u64,
    pub model: String,
}

impl Meta {
    pub fn new(prefix: &str, model: &str) -> Self {
        Self {
            id: util::random_id(prefix),
            created: util::now_secs(),
            model: model.to_string(),
        }
    }
}

fn tool_call_ids(answer: &Answer) -> Vec<String> {
    answer
        .tool_calls
        .iter()
        .map(|c| c.id.clone().unwrap_or_else(|| util::random_id("call_")))
        .collect()
}

fn chat_response(meta: &Meta, answer: &Answer, azure: bool) -> J {
    let mut message = obj! {
        "role": "assistant",
        "content": answer.text.as_deref(),
    };
    if let Some(r) = &answer.reasoning {
        message.set("reasoning_content", r);
    }
    if !answer.tool_calls.is_empty() {
        let calls: Vec<J> = answer
            .tool_calls
            .iter()
            .zip(tool_call_ids(answer))
            .map(|(c, id)| {
                obj! {
                    "id": id,
                    "type": "function",
                    "function": obj! {"name": &c.name, "arguments": &c.json},
                }
            })
            .collect();
        message.set("tool_calls", calls);
    }
    message.set("refusal", NULL);
    message.set("annotations", Vec::new());
    let mut choice = obj! {
        "index": 0u64,
        "message": message,
        "logprobs": NULL,
        "finish_reason": answer.finish.openai(),
    };
    let filtered = answer.finish == crate::behaviour::Finish::ContentFilter;
    if azure {
        choice.set(
            "content_filter_results",
            crate::azure::content_filter_results(filtered),
        );
    }
    let mut body = obj! {
        "id": &meta.id,
        "object": "chat.completion",
        "created": meta.created,
        "model": &meta.model,
    };
    if azure {
        body.set(
            "prompt_filter_results",
            crate::azure::prompt_filter_results(),
        );
    }
    body.set("choices", vec![choice]);
    if !answer.omit_usage {
        body.set("usage", usage_json(&answer.usage));
    }
    body.set("service_tier", "default");
    body.set("system_fingerprint", FINGERPRINT);
    body
}

/// `filter`: Azure's `content_filter_results` on the choice (filtered or not).
fn chunk(
    meta: &Meta,
    delta: J,
    finish: Option<String>,
    with_usage: bool,
    filter: Option<bool>,
) -> String {
    let mut choice = obj! {
        "index": 0u64,
        "delta": delta,
        "logprobs": NULL,
        "finish_reason": finish,
    };
    if let Some(filtered) = filter {
        choice.set(
            "content_filter_results",
            crate::azure::content_filter_results(filtered),
        );
    }
    let mut v = obj! {
        "id": &meta.id,
        "object": "chat.completion.chunk",
        "created": meta.created,
        "model": &meta.model,
        "system_fingerprint": FINGERPRINT,
        "choices": vec![choice],
    };
    if with_usage {
        v.set("usage", NULL);
    }
    sse_data(&v)
}

/// The final usage chunk (`choices: []`) and `[DONE]`.
pub(crate) fn stream_tail(meta: &Meta, object: &str, usage: Option<J>) -> Vec<Ev> {
    let mut events = Vec::new();
    if let Some(usage) = usage {
        let mut v = obj! {
            "id": &meta.id,
            "object": object,
            "created": meta.created,
            "model": &meta.model,
        };
        if object == "chat.completion.chunk" {
            v.set("system_fingerprint", FINGERPRINT);
        }
        v.set("choices", Vec::new());
        v.set("usage", usage);
        events.push(Ev::new(EvKind::Tail, sse_data(&v)));
    }
    events.push(Ev::new(EvKind::Tail, "data: [DONE]\n\n"));
    events
}

fn chat_stream(meta: &Meta, answer: &Answer, with_usage: bool, azure: bool) -> Vec<Ev> {
    let mut events = Vec::new();
    if azure {
        // Azure opens with the prompt's filter results and no choices.
        let v = obj! {
            "choices": Vec::<J>::new(),
            "created": 0u64,
            "id": "",
            "model": "",
            "object": "",
            "prompt_filter_results": crate::azure::prompt_filter_results(),
        };
        events.push(Ev::new(EvKind::Other, sse_data(&v)));
    }
    let filter = azure.then_some(false);
    events.push(Ev::new(
        EvKind::Other,
        chunk(
            meta,
            obj! {"role": "assistant", "content": "", "refusal": NULL},
            None,
            with_usage,
            filter,
        ),
    ));
    let content = |delta: J| {
        Ev::new(
            EvKind::Content,
            chunk(meta, delta, None, with_usage, filter),
        )
    };
    for piece in answer.reasoning_pieces() {
        events.push(content(obj! {"reasoning_content": piece}));
    }
    for piece in answer.text_pieces() {
        events.push(content(obj! {"content": piece}));
    }
    let ids = tool_call_ids(answer);
    for (index, (call, id)) in answer.tool_calls.iter().zip(ids).enumerate() {
        events.push(content(obj! {"tool_calls": vec![obj! {
            "index": index,
            "id": id,
            "type": "function",
            "function": obj! {"name": &call.name, "arguments": ""},
        }]}));
        for piece in util::split_args(&call.json) {
            events.push(content(obj! {"tool_calls": vec![obj! {
                "index": index,
                "function": obj! {"arguments": piece},
            }]}));
        }
    }
    let filtered = answer.finish == crate::behaviour::Finish::ContentFilter;
    events.push(Ev::new(
        EvKind::Tail,
        chunk(
            meta,
            obj! {},
            Some(answer.finish.openai()),
            with_usage,
            azure.then_some(filtered),
        ),
    ));
    let usage = (with_usage && !answer.omit_usage).then(|| usage_json(&answer.usage));
    events.extend(stream_tail(meta, "chat.completion.chunk", usage));
    events
}
