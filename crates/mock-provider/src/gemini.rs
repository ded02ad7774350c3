//! Google Gemini API: `models/{model}:generateContent`,
//! `:streamGenerateContent` (`alt=sse`, or the JSON-array stream without it),
//! `:embedContent`, `:batchEmbedContents` and `:countTokens`.

use serde_json::{json, Value};

use crate::ojson::{obj, J};

use crate::behaviour::{Answer, PromptInfo, Usage, DEFAULT_EMBEDDING_DIMS};
use crate::router::{Built, Ctx, Provider};
use crate::server::{Ev, EvKind, Outcome};
use crate::{errors, util};

/// `POST /v1beta/models/{rest}` where `rest` is `{model}:{action}`.
pub(crate) async fn route(ctx: Ctx, rest: &str) -> Outcome {
    let Some((model, action)) = rest.rsplit_once(':') else {
        return ctx.error(
            Provider::Gemini,
            404,
            &format!("Unknown method models/{rest}."),
        );
    };
    let model = model.to_string();
    match action {
        "generateContent" => generate(ctx, model, false).await,
        "streamGenerateContent" => generate(ctx, model, true).await,
        "embedContent" => embed(ctx, model, false).await,
        "batchEmbedContents" => embed(ctx, model, true).await,
        "countTokens" => count_tokens(&ctx),
        other => ctx.error(
            Provider::Gemini,
            404,
            &format!("Method {other} not found for models/{model}."),
        ),
    }
}

fn part_texts(content: Option<&Value>) -> Vec<&str> {
    content
        .and_then(|c| c.get("parts"))
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|p| p.get("text").and_then(Value::as_str))
        .collect()
}

fn prompt_info(body: &Value) -> PromptInfo {
    let mut info = PromptInfo::default();
    let system = body
        .get("systemInstruction")
        .or_else(|| body.get("system_instruction"));
    if let Some(system) = system {
        info.add_message(part_texts(Some(system)));
    }
    for content in body
        .get("contents")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let texts = part_texts(Some(content));
        let role = content
            .get("role")
            .and_then(Value::as_str)
            .unwrap_or("user");
        if role == "user" {
            info.last_user_text = Some(texts.join("\n"));
        }
        info.add_message(texts);
    }
    info
}

fn pre_checks(ctx: &Ctx) -> Option<Outcome> {
    ctx.check_auth(Provider::Gemini)
        .or_else(|| ctx.check_json(Provider::Gemini))
}

/// `usageMetadata` with the given running counts (`visible` excludes thoughts).
fn usage_json(u: &Usage, visible: u64, thoughts: u64) -> J {
    let mut v = obj! {
        "promptTokenCount": u.prompt,
        "candidatesTokenCount": visible,
        "totalTokenCount": u.prompt + visible + thoughts,
    };
    if u.cached > 0 {
        v.set("cachedContentTokenCount", u.cached);
    }
    v.set(
        "promptTokensDetails",
        vec![obj! {"modality": "TEXT", "tokenCount": u.prompt}],
    );
    if thoughts > 0 {
        v.set("thoughtsTokenCount", thoughts);
    }
    v
}

struct Meta {
    model: String,
    response_id: String,
}

fn response(meta: &Meta, parts: Vec<J>, finish: Option<String>, usage: Option<J>) -> J {
    let mut candidate = obj! {
        "content": obj! {"parts": parts, "role": "model"},
    };
    if let Some(f) = finish {
        candidate.set("finishReason", f);
    }
    candidate.set("index", 0u64);
    let mut v = obj! {"candidates": vec![candidate]};
    if let Some(u) = usage {
        v.set("usageMetadata", u);
    }
    v.set("modelVersion", &meta.model);
    v.set("responseId", &meta.response_id);
    v
}

fn text_part(text: impl Into<J>) -> J {
    obj! {"text": text.into()}
}

fn thought_part(text: impl Into<J>) -> J {
    obj! {"text": text.into(), "thought": true}
}

fn function_call_part(call: &crate::behaviour::ResolvedToolCall) -> J {
    let args = if call.value.is_object() {
        call.value.clone()
    } else {
        json!({ "value": call.value })
    };
    obj! {"functionCall": obj! {"name": &call.name, "args": args}}
}

pub(crate) async fn generate(ctx: Ctx, model: String, stream: bool) -> Outcome {
    if let Some(rejected) = pre_checks(&ctx) {
        return rejected;
    }
    if !ctx.body().get("contents").is_some_and(Value::is_array) {
        return ctx.error(
            Provider::Gemini,
            400,
            "* GenerateContentRequest.contents: contents is not specified",
        );
    }
    let prompt = prompt_info(ctx.body());
    let behaviour = match ctx.behaviour(Provider::Gemini, &model, prompt.last_user_text.as_deref())
    {
        Ok(b) => b,
        Err(o) => return o,
    };
    let answer = Answer::resolve(&behaviour, &prompt);
    let sse = ctx.query("alt").as_deref() == Some("sse");
    let stream = behaviour.streams(stream);
    let error_message = behaviour.error_message.clone();
    ctx.answer(Provider::Gemini, &behaviour, move || {
        let meta = Meta {
            model,
            response_id: util::random_id(""),
        };
        if stream {
            let framing = if sse {
                Framing::Sse
            } else {
                Framing::JsonArray
            };
            let events = stream_events(&meta, &answer, framing);
            let error = errors::gemini(
                errors::in_stream_status(Provider::Gemini),
                error_message
                    .as_deref()
                    .unwrap_or("The model is overloaded. Please try again later."),
                None,
            );
            Built::Stream {
                content_type: framing.content_type(),
                error_event: framing.error_event(&error).into(),
                events,
            }
        } else {
            Built::Json(full_response(&meta, &answer))
        }
    })
    .await
}

fn full_response(meta: &Meta, answer: &Answer) -> J {
    let mut parts = Vec::new();
    if let Some(r) = &answer.reasoning {
        parts.push(thought_part(r));
    }
    if let Some(t) = answer.text.as_deref().filter(|t| !t.is_empty()) {
        parts.push(text_part(t));
    }
    parts.extend(answer.tool_calls.iter().map(function_call_part));
    if parts.is_empty() {
        parts.push(text_part(""));
    }
    let u = &answer.usage;
    let usage = (!answer.omit_usage).then(|| usage_json(u, u.visible_output(), u.reasoning));
    response(meta, parts, Some(answer.finish.gemini()), usage)
}

#[derive(Clone, Copy)]
enum Framing {
    /// `data: {...}\r\n\r\n` per chunk (`alt=sse`).
    Sse,
    /// One JSON array streamed element by element.
    JsonArray,
}

impl Framing {
    fn content_type(self) -> &'static str {
        match self {
            Framing::Sse => "text/event-stream",
            Framing::JsonArray => "application/json; charset=UTF-8",
        }
    }

    fn frame(self, value: &J, first: bool, last: bool) -> String {
        match self {
            Framing::Sse => format!("data: {value}\r\n\r\n"),
            Framing::JsonArray => {
                let open = if first { "[" } else { ",\r\n" };
                let close = if last { "]" } else { "" };
                format!("{open}{value}{close}")
            }
        }
    }

    fn error_event(self, error: &J) -> String {
        match self {
            Framing::Sse => format!("data: {error}\r\n\r\n"),
            Framing::JsonArray => format!(",\r\n{error}]"),
        }
    }
}

fn stream_events(meta: &Meta, answer: &Answer, framing: Framing) -> Vec<Ev> {
    enum Piece {
        Thought(String),
        Visible(J),
    }
    let mut pieces: Vec<Piece> = answer
        .reasoning_pieces()
        .into_iter()
        .map(Piece::Thought)
        .collect();
    pieces.extend(
        answer
            .text_pieces()
            .into_iter()
            .map(|t| Piece::Visible(text_part(t))),
    );
    pieces.extend(
        answer
            .tool_calls
            .iter()
            .map(|c| Piece::Visible(function_call_part(c))),
    );
    let n_thought = pieces
        .iter()
        .filter(|p| matches!(p, Piece::Thought(_)))
        .count();
    let n_visible = pieces.len() - n_thought;
    let u = answer.usage;
    let (mut done_thought, mut done_visible) = (0, 0);
    let mut events = Vec::with_capacity(pieces.len() + 1);
    for (i, piece) in pieces.into_iter().enumerate() {
        let part = match piece {
            Piece::Thought(t) => {
                done_thought += 1;
                thought_part(t)
            }
            Piece::Visible(p) => {
                done_visible += 1;
                p
            }
        };
        let usage = (!answer.omit_usage).then(|| {
            usage_json(
                &u,
                util::running(u.visible_output(), done_visible, n_visible),
                util::running(u.reasoning, done_thought, n_thought),
            )
        });
        let v = response(meta, vec![part], None, usage);
        events.push(Ev::new(EvKind::Content, framing.frame(&v, i == 0, false)));
    }
    let usage = (!answer.omit_usage).then(|| usage_json(&u, u.visible_output(), u.reasoning));
    let last = response(
        meta,
        vec![text_part("")],
        Some(answer.finish.gemini()),
        usage,
    );
    let first = events.is_empty();
    events.push(Ev::new(EvKind::Tail, framing.frame(&last, first, true)));
    events
}

/// Texts of one embed request (`content.parts[].text`), joined by newlines.
fn embed_text(request: &Value) -> String {
    part_texts(request.get("content")).join("\n")
}

async fn embed(ctx: Ctx, model: String, batch: bool) -> Outcome {
    if let Some(rejected) = pre_checks(&ctx) {
        return rejected;
    }
    let requests: Vec<Value> = if batch {
        match ctx.body().get("requests").and_then(Value::as_array) {
            Some(r) if !r.is_empty() => r.clone(),
            _ => {
                return ctx.error(
                    Provider::Gemini,
                    400,
                    "* BatchEmbedContentsRequest.requests: requests is not specified",
                )
            }
        }
    } else {
        if ctx.body().get("content").is_none() {
            return ctx.error(
                Provider::Gemini,
                400,
                "* EmbedContentRequest.content: content is not specified",
            );
        }
        vec![ctx.body().clone()]
    };
    let texts: Vec<String> = requests.iter().map(embed_text).collect();
    let behaviour = match ctx.behaviour(Provider::Gemini, &model, texts.last().map(String::as_str))
    {
        Ok(b) => b,
        Err(o) => return o,
    };
    let dims_for = |request: &Value| {
        behaviour
            .embedding_dims
            .or_else(|| {
                request
                    .get("outputDimensionality")
                    .and_then(Value::as_u64)
                    .map(|d| d as usize)
            })
            .unwrap_or(DEFAULT_EMBEDDING_DIMS)
    };
    let embeddings: Vec<J> = requests
        .iter()
        .zip(&texts)
        .map(|(request, text)| obj! {"values": json!(util::embedding(text, dims_for(request)))})
        .collect();
    let tokens = behaviour
        .prompt_tokens
        .unwrap_or_else(|| texts.iter().map(|t| util::word_count(t).max(1)).sum());
    let omit_usage = behaviour.omit_usage();
    ctx.answer(Provider::Gemini, &behaviour, move || {
        let mut body = if batch {
            obj! {"embeddings": embeddings}
        } else {
            obj! {"embedding": embeddings.into_iter().next()}
        };
        if !omit_usage {
            body.set("usageMetadata", obj! {"promptTokenCount": tokens});
        }
        Built::Json(body)
    })
    .await
}

/// `:countTokens`: the default prompt token count.
fn count_tokens(ctx: &Ctx) -> Outcome {
    if let Some(rejected) = pre_checks(ctx) {
        return rejected;
    }
    let body = ctx
        .body()
        .get("generateContentRequest")
        .unwrap_or(ctx.body());
    let total = prompt_info(body).default_prompt_tokens();
    ctx.json(
        Provider::Gemini,
        200,
        &obj! {"totalTokens": total},
        None,
        "",
    )
}
