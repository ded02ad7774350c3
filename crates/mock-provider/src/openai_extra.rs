//! OpenAI legacy Completions, Embeddings and model list.

use serde_json::{json, Value};

use crate::ojson::{obj, J, NULL};

use crate::behaviour::{Answer, PromptInfo, Usage, DEFAULT_EMBEDDING_DIMS};
use crate::openai::{
    include_usage, stream_error_event, stream_tail, Meta, FINGERPRINT, SSE_CONTENT_TYPE,
};
use crate::router::{require_model, sse_data, wants_stream, Built, Ctx, Provider};
use crate::server::{Ev, EvKind, Outcome};
use crate::util;

/// Legacy `usage`: the three documented counters, plus the details objects
/// only when they carry something.
fn legacy_usage(u: &Usage) -> J {
    let mut v = obj! {
        "prompt_tokens": u.prompt,
        "completion_tokens": u.completion,
        "total_tokens": u.prompt + u.completion,
    };
    if u.cached > 0 || u.cache_write > 0 {
        let mut details = obj! {"cached_tokens": u.cached};
        if u.cache_write > 0 {
            details.set("cache_write_tokens", u.cache_write);
        }
        v.set("prompt_tokens_details", details);
    }
    if u.reasoning > 0 {
        v.set(
            "completion_tokens_details",
            obj! {"reasoning_tokens": u.reasoning},
        );
    }
    v
}

/// Prompt of a legacy completion: string, strings, token ids or arrays of token ids.
fn completion_prompt(prompt: Option<&Value>) -> PromptInfo {
    let mut info = PromptInfo::default();
    match prompt {
        Some(Value::String(s)) => {
            info.add_message([s.as_str()]);
            info.last_user_text = Some(s.clone());
        }
        Some(Value::Array(items)) if items.iter().all(Value::is_number) => {
            info.messages += 1;
            info.words += items.len() as u64;
        }
        Some(Value::Array(items)) => {
            for item in items {
                match item {
                    Value::String(s) => {
                        info.add_message([s.as_str()]);
                        info.last_user_text = Some(s.clone());
                    }
                    Value::Array(tokens) => {
                        info.messages += 1;
                        info.words += tokens.len() as u64;
                    }
                    _ => {}
                }
            }
        }
        _ => {}
    }
    info
}

/// `POST /v1/completions`.
pub(crate) async fn completions(ctx: Ctx) -> Outcome {
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
    let prompt = completion_prompt(ctx.body().get("prompt"));
    let behaviour = match ctx.behaviour(Provider::OpenAi, &model, prompt.last_user_text.as_deref())
    {
        Ok(b) => b,
        Err(o) => return o,
    };
    let answer = Answer::resolve(&behaviour, &prompt);
    let stream = wants_stream(ctx.body());
    let with_usage = include_usage(ctx.body());
    let error_message = behaviour.error_message.clone();
    ctx.answer(Provider::OpenAi, &behaviour, move || {
        let meta = Meta::new("cmpl-", &model);
        if stream {
            Built::Stream {
                content_type: SSE_CONTENT_TYPE,
                events: completion_stream(&meta, &answer, with_usage),
                error_event: stream_error_event(error_message.as_deref()).into(),
            }
        } else {
            let mut body = obj! {
                "id": &meta.id,
                "object": "text_completion",
                "created": meta.created,
                "model": &meta.model,
                "system_fingerprint": FINGERPRINT,
                "choices": vec![obj! {
                    "text": answer.text.clone().unwrap_or_default(),
                    "index": 0u64,
                    "logprobs": NULL,
                    "finish_reason": answer.finish.openai(),
                }],
            };
            if !answer.omit_usage {
                body.set("usage", legacy_usage(&answer.usage));
            }
            Built::Json(body)
        }
    })
    .await
}

fn completion_chunk(meta: &Meta, text: &str, finish: Option<String>) -> String {
    sse_data(&obj! {
        "id": &meta.id,
        "object": "text_completion",
        "created": meta.created,
        "choices": vec![obj! {
            "text": text,
            "index": 0u64,
            "logprobs": NULL,
            "finish_reason": finish,
        }],
        "model": &meta.model,
        "system_fingerprint": FINGERPRINT,
    })
}

fn completion_stream(meta: &Meta, answer: &Answer, with_usage: bool) -> Vec<Ev> {
    let mut events: Vec<Ev> = answer
        .text_pieces()
        .iter()
        .map(|p| Ev::new(EvKind::Content, completion_chunk(meta, p, None)))
        .collect();
    events.push(Ev::new(
        EvKind::Tail,
        completion_chunk(meta, "", Some(answer.finish.openai())),
    ));
    let usage = (with_usage && !answer.omit_usage).then(|| legacy_usage(&answer.usage));
    events.extend(stream_tail(meta, "text_completion", usage));
    events
}

/// One embedding input: its text (for hashing and the directive) and token count.
struct EmbedInput {
    text: String,
    tokens: u64,
    is_text: bool,
}

fn embed_inputs(input: &Value) -> Option<Vec<EmbedInput>> {
    let text_input = |s: &str| EmbedInput {
        text: s.to_string(),
        tokens: util::word_count(s).max(1),
        is_text: true,
    };
    let token_input = |ids: &[Value]| EmbedInput {
        text: Value::Array(ids.to_vec()).to_string(),
        tokens: (ids.len() as u64).max(1),
        is_text: false,
    };
    match input {
        Value::String(s) => Some(vec![text_input(s)]),
        Value::Array(items) if !items.is_empty() && items.iter().all(Value::is_number) => {
            Some(vec![token_input(items)])
        }
        Value::Array(items) if !items.is_empty() => items
            .iter()
            .map(|item| match item {
                Value::String(s) => Some(text_input(s)),
                Value::Array(ids) => Some(token_input(ids)),
                _ => None,
            })
            .collect(),
        _ => None,
    }
}

/// Little-endian f32 bytes, base64-encoded (OpenAI `encoding_format: base64`).
fn base64_floats(values: &[f32]) -> String {
    let bytes: Vec<u8> = values.iter().flat_map(|f| f.to_le_bytes()).collect();
    util::base64(&bytes)
}

/// `POST /v1/embeddings`.
pub(crate) async fn embeddings(ctx: Ctx) -> Outcome {
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
    let Some(inputs) = ctx.body().get("input").and_then(embed_inputs) else {
        return ctx.error(
            Provider::OpenAi,
            400,
            "'input' must be a non-empty string, array of strings, or array of token arrays.",
        );
    };
    let directive_text = inputs
        .iter()
        .rev()
        .find(|i| i.is_text)
        .map(|i| i.text.clone());
    let behaviour = match ctx.behaviour(Provider::OpenAi, &model, directive_text.as_deref()) {
        Ok(b) => b,
        Err(o) => return o,
    };
    let dims = behaviour
        .embedding_dims
        .or_else(|| {
            ctx.body()
                .get("dimensions")
                .and_then(Value::as_u64)
                .map(|d| d as usize)
        })
        .unwrap_or(DEFAULT_EMBEDDING_DIMS);
    let base64 = ctx.body().get("encoding_format").and_then(Value::as_str) == Some("base64");
    let tokens = behaviour
        .prompt_tokens
        .unwrap_or_else(|| inputs.iter().map(|i| i.tokens).sum());
    let omit_usage = behaviour.omit_usage();
    ctx.answer(Provider::OpenAi, &behaviour, move || {
        let data: Vec<J> = inputs
            .iter()
            .enumerate()
            .map(|(index, input)| {
                let vector = util::embedding(&input.text, dims);
                let embedding = if base64 {
                    J::from(base64_floats(&vector))
                } else {
                    J::from(json!(vector))
                };
                obj! {"object": "embedding", "embedding": embedding, "index": index}
            })
            .collect();
        let mut body = obj! {"object": "list", "data": data, "model": model};
        if !omit_usage {
            body.set(
                "usage",
                obj! {"prompt_tokens": tokens, "total_tokens": tokens},
            );
        }
        Built::Json(body)
    })
    .await
}

/// `GET /v1/models` (OpenAI shape).
pub(crate) fn models(ctx: &Ctx) -> Outcome {
    if let Some(rejected) = ctx.check_auth(Provider::OpenAi) {
        return rejected;
    }
    let data: Vec<J> = model_names(ctx)
        .into_iter()
        .map(|id| {
            obj! {
                "id": id,
                "object": "model",
                "created": 1_700_000_000u64,
                "owned_by": "mock-provider",
            }
        })
        .collect();
    let body = obj! {"object": "list", "data": data};
    ctx.json(Provider::OpenAi, 200, &body, None, &util::random_id("req_"))
}

/// `mock-model` plus every model with a set or pushed behaviour.
pub(crate) fn model_names(ctx: &Ctx) -> Vec<String> {
    let mut names = vec!["mock-model".to_string()];
    names.extend(ctx.shared.models());
    names.sort();
    names.dedup();
    names
}
