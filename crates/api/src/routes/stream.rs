//! Streaming answers as OpenAI-style SSE. A task owns the upstream stream and the hold: it
//! forwards chunks through a bounded channel, notices a client that went away, and settles
//! exactly once however the stream ends.

use std::sync::Arc;
use std::time::{Duration, Instant};

use actix_web::HttpResponse;
use bytes::Bytes;
use futures_util::StreamExt;
use infron_billing::{CostBreakdown, Usage};
use infron_router::cache::StreamRecorder;
use infron_router::health;
use infron_router::legacy;
use infron_router::providers::{EventStream, StreamEvent};
use infron_router::types::ChatChunk;
use infron_router::{Endpoint, Model};
use serde_json::json;
use tokio::sync::mpsc;

use super::chat::{public_id, settle, Draft, Outcome, Shape};
use super::messages_stream::AnthropicStream;
use super::responses_stream::ResponsesStream;
use super::usage::{UsageOut, WithUsage};
use crate::response_cache::{self, CacheUse};
use crate::state::AppState;

pub struct StreamJob {
    pub state: Arc<AppState>,
    pub draft: Draft,
    pub model: Arc<Model>,
    pub endpoint: Arc<Endpoint>,
    pub prompt_estimate: u64,
    pub include_usage: bool,
    pub include_cost: bool,
    pub deadline: tokio::time::Instant,
    /// Whether this answer comes from the response cache or may be stored in it.
    pub cache: CacheUse,
    /// Set when a provider streams the answer: its outcome is recorded to endpoint health.
    pub health: Option<StreamHealth>,
}

/// What endpoint health needs to know of a provider stream.
pub struct StreamHealth {
    /// Time from the attempt's start to its first content.
    pub latency_ms: u64,
    pub first_content_at: Instant,
}

const KEEP_ALIVE: Duration = Duration::from_secs(15);

pub fn respond(job: StreamJob, head: Vec<StreamEvent>, rest: EventStream) -> HttpResponse {
    let (tx, rx) = mpsc::channel::<Bytes>(32);
    let id = public_id(job.draft.id);
    let cache_header = job.cache.header();
    tokio::spawn(run(job, head, rest, tx));
    let body = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv()
            .await
            .map(|b| (Ok::<Bytes, actix_web::Error>(b), rx))
    });
    let mut reply = HttpResponse::Ok();
    reply
        .content_type("text/event-stream")
        .insert_header(("cache-control", "no-cache"))
        .insert_header(("x-accel-buffering", "no"))
        .insert_header(("x-request-id", id));
    if let Some(h) = cache_header {
        reply.insert_header((response_cache::HEADER, h));
    }
    reply.streaming(body)
}

enum End {
    Done,
    ClientGone,
    Failed(String),
    TimedOut,
    /// The gateway's drain period ran out (SIGTERM).
    Shutdown,
}

/// How often a stream records what it delivered, so another instance can charge it if this
/// one dies.
const PROGRESS_EVERY: Duration = Duration::from_secs(1);

struct Progress {
    content_bytes: u64,
    usage: Option<Usage>,
    finish_reason: Option<String>,
    first_token_ms: Option<i32>,
    recorder: StreamRecorder,
}

async fn run(
    job: StreamJob,
    head: Vec<StreamEvent>,
    mut rest: EventStream,
    tx: mpsc::Sender<Bytes>,
) {
    let StreamJob {
        state,
        draft,
        model,
        endpoint,
        prompt_estimate,
        include_usage,
        include_cost,
        deadline,
        cache,
        health,
    } = job;
    let id = public_id(draft.id);
    let created = draft.created_at.timestamp();
    let legacy_shape = draft.shape == Shape::Completion;
    let provider = endpoint.provider.name.clone();
    let mut progress = Progress {
        content_bytes: 0,
        usage: None,
        finish_reason: None,
        first_token_ms: None,
        recorder: StreamRecorder::default(),
    };
    let started = draft.started;
    // `/v1/messages` streams Anthropic's event sequence instead of chat chunks.
    let mut anthropic = (draft.shape == Shape::Messages)
        .then(|| AnthropicStream::new(id.clone(), model.id.clone(), prompt_estimate));
    // `/v1/responses` streams the Responses API's events.
    let mut responses = (draft.shape == Shape::Responses).then(|| {
        ResponsesStream::new(super::responses::Head {
            id: id.clone(),
            model: model.id.clone(),
            created_at: created,
            echo: draft.echo.clone().unwrap_or_default(),
        })
    });

    let mut emit = |event: StreamEvent, progress: &mut Progress| -> Option<Bytes> {
        match event {
            StreamEvent::Usage(u) => {
                progress.usage = Some(u);
                None
            }
            StreamEvent::Chunk(mut chunk) => {
                if chunk.has_content() && progress.first_token_ms.is_none() {
                    progress.first_token_ms = i32::try_from(started.elapsed().as_millis()).ok();
                }
                progress.content_bytes += chunk.content_bytes();
                progress.recorder.observe(&chunk);
                if let Some(f) = chunk.choices.iter().find_map(|c| c.finish_reason.clone()) {
                    progress.finish_reason = Some(f);
                }
                chunk.id = id.clone();
                chunk.model = model.id.clone();
                chunk.provider = Some(provider.clone());
                chunk.object = "chat.completion.chunk".into();
                chunk.created = created;
                chunk.usage = None;
                if let Some(a) = anthropic.as_mut() {
                    return a.chunk(&chunk);
                }
                if let Some(r) = responses.as_mut() {
                    return r.chunk(&chunk);
                }
                if legacy_shape {
                    // Legacy clients read `choices[].text`; role-only chunks carry nothing for them.
                    let legacy = legacy::completion_chunk_from_chat(&chunk);
                    let empty = legacy
                        .choices
                        .iter()
                        .all(|c| c.text.is_empty() && c.finish_reason.is_none());
                    return if empty { None } else { sse_json(&legacy) };
                }
                sse_json(&chunk)
            }
        }
    };

    let mut end = End::Done;
    let mut last_progress = Instant::now();
    let mut progress_bytes = 0u64;
    'outer: {
        for event in head {
            if let Some(bytes) = emit(event, &mut progress) {
                if tx.send(bytes).await.is_err() {
                    end = End::ClientGone;
                    break 'outer;
                }
            }
        }
        loop {
            let next = tokio::select! {
                biased;
                _ = tx.closed() => { end = End::ClientGone; break; }
                _ = tokio::time::sleep_until(deadline) => { end = End::TimedOut; break; }
                _ = state.shutdown.deadline.cancelled() => { end = End::Shutdown; break; }
                _ = tokio::time::sleep(KEEP_ALIVE) => {
                    if tx.send(Bytes::from_static(b": keep-alive\n\n")).await.is_err() {
                        end = End::ClientGone;
                        break;
                    }
                    continue;
                }
                n = rest.next() => n,
            };
            match next {
                None => break,
                Some(Err(e)) => {
                    end = End::Failed(e.message);
                    break;
                }
                Some(Ok(event)) => {
                    if let Some(bytes) = emit(event, &mut progress) {
                        if tx.send(bytes).await.is_err() {
                            end = End::ClientGone;
                            break;
                        }
                    }
                    if progress.content_bytes > progress_bytes
                        && last_progress.elapsed() >= PROGRESS_EVERY
                    {
                        last_progress = Instant::now();
                        progress_bytes = progress.content_bytes;
                        record_progress(
                            &state,
                            &draft,
                            &model,
                            &endpoint,
                            prompt_estimate,
                            &progress,
                        );
                    }
                }
            }
        }
    }
    // Dropping the upstream stream cancels the provider request.
    drop(rest);

    let (usage, source) = delivered_usage(&progress, prompt_estimate);
    let source = if cache.is_hit() { "cache" } else { source };
    let priced = if cache.is_free_hit() {
        Ok(CostBreakdown::default())
    } else {
        endpoint.prices.cost(&usage)
    };
    let cost = match priced {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(request_id = %crate::request_id::RequestId::public(draft.id), error = %e, "cost out of range; charging the hold amount");
            let mut c = CostBreakdown::default();
            if let Some(h) = &draft.hold {
                c.total = h.amount;
            }
            c
        }
    };

    let (error_class, cancelled) = match &end {
        End::Done => (None, false),
        End::ClientGone => (Some("client_disconnected"), true),
        End::Failed(_) => (Some("stream_broken"), false),
        End::TimedOut => (Some("timeout"), false),
        End::Shutdown => (Some("shutdown"), false),
    };
    if matches!(end, End::Failed(_) | End::TimedOut | End::Shutdown) {
        progress.finish_reason = Some("error".into());
    }

    // Settled before the last bytes go out: the usage chunk reports what was charged, and a
    // client that saw `[DONE]` has been charged.
    let record = draft.record(&Outcome {
        status: 200,
        error_class,
        served: Some((&model, &endpoint)),
        usage,
        usage_source: Some(source),
        cost,
        finish_reason: progress.finish_reason.clone(),
        cancelled,
        first_token_ms: progress.first_token_ms,
        cache_hit: cache.is_hit(),
    });
    let settled = settle(&state, draft.hold.as_ref(), &record).await;
    let cost = cost.charged(settled.charged);

    if let (false, Some(a)) = (matches!(end, End::ClientGone), anthropic.as_mut()) {
        let last = match end {
            End::Failed(_) => a.error(502, &message_of(&end)),
            End::TimedOut => a.error(408, &message_of(&end)),
            End::Shutdown => a.error(503, &message_of(&end)),
            _ => a.finish(&usage),
        };
        let _ = tx.send(last).await;
    } else if let (false, Some(r)) = (matches!(end, End::ClientGone), responses.as_mut()) {
        let last = match end {
            End::Failed(_) => r.error(502, &message_of(&end), &usage),
            End::TimedOut => r.error(408, &message_of(&end), &usage),
            End::Shutdown => r.error(503, &message_of(&end), &usage),
            _ => r.finish(&usage),
        };
        let _ = tx.send(last).await;
    } else if !matches!(end, End::ClientGone) {
        let mut tail: Vec<Bytes> = Vec::new();
        if matches!(end, End::Failed(_) | End::TimedOut | End::Shutdown) {
            let code = match end {
                End::TimedOut => 408,
                End::Shutdown => 503,
                _ => 502,
            };
            let object = if legacy_shape {
                "text_completion"
            } else {
                "chat.completion.chunk"
            };
            let err_chunk = json!({
                "id": id, "object": object, "created": created, "model": model.id,
                "provider": provider,
                "error": { "code": code, "message": message_of(&end) },
                "choices": [{ "index": 0, "delta": { "content": "" }, "finish_reason": "error" }],
            });
            if let Some(b) = sse_json(&err_chunk) {
                tail.push(b);
            }
        }
        if include_usage && legacy_shape {
            let usage_chunk = legacy::Completion {
                id: id.clone(),
                object: "text_completion".into(),
                created,
                model: model.id.clone(),
                provider: Some(provider.clone()),
                choices: Vec::new(),
            };
            let with = WithUsage {
                inner: &usage_chunk,
                usage: Some(UsageOut::new(&usage, &cost, include_cost)),
            };
            if let Some(b) = sse_json(&with) {
                tail.push(b);
            }
        } else if include_usage {
            let usage_chunk = ChatChunk {
                id: id.clone(),
                object: "chat.completion.chunk".into(),
                created,
                model: model.id.clone(),
                provider: Some(provider.clone()),
                choices: Vec::new(),
                usage: None,
                extra: Default::default(),
            };
            let with = WithUsage {
                inner: &usage_chunk,
                usage: Some(UsageOut::new(&usage, &cost, include_cost)),
            };
            if let Some(b) = sse_json(&with) {
                tail.push(b);
            }
        }
        tail.push(Bytes::from_static(b"data: [DONE]\n\n"));
        for b in tail {
            if tx.send(b).await.is_err() {
                break;
            }
        }
    }

    if let Some(h) = &health {
        let outcome = match &end {
            End::Done => Some(health::Outcome::Success {
                latency_ms: h.latency_ms,
                tokens: usage.completion_tokens,
                generation_ms: u64::try_from(h.first_content_at.elapsed().as_millis())
                    .unwrap_or(u64::MAX),
            }),
            End::Failed(_) | End::TimedOut => Some(health::Outcome::Failure),
            // A client that went away, or our own shutdown, says nothing about the endpoint.
            End::ClientGone | End::Shutdown => None,
        };
        if let Some(o) = outcome {
            state.health.record(&endpoint, o);
        }
    }
    if matches!(end, End::Done) {
        cache.store(
            &state,
            progress.recorder.finish(
                usage,
                &model.id,
                &provider,
                &endpoint.upstream_model,
                created,
            ),
        );
    }
}

/// Usage as the provider reported it, or estimated from what was delivered when it never did.
fn delivered_usage(progress: &Progress, prompt_estimate: u64) -> (Usage, &'static str) {
    match progress.usage {
        Some(u) => (u, "provider"),
        None => (
            Usage {
                prompt_tokens: prompt_estimate,
                completion_tokens: progress.content_bytes.div_ceil(4),
                ..Default::default()
            },
            "estimated",
        ),
    }
}

/// Records, without holding the stream up, what to charge if this instance dies now: the
/// prompt and what was delivered so far.
fn record_progress(
    state: &Arc<AppState>,
    draft: &Draft,
    model: &Model,
    endpoint: &Endpoint,
    prompt_estimate: u64,
    progress: &Progress,
) {
    let Some(hold) = draft.hold.clone() else {
        return;
    };
    // Usage a provider reported mid-stream may be partial: never charge less than delivered.
    let (mut usage, _) = delivered_usage(progress, prompt_estimate);
    usage.completion_tokens = usage
        .completion_tokens
        .max(progress.content_bytes.div_ceil(4));
    let Ok(cost) = endpoint.prices.cost(&usage) else {
        return;
    };
    let record = draft.record(&Outcome {
        status: 200,
        error_class: Some("instance_lost"),
        served: Some((model, endpoint)),
        usage,
        usage_source: Some("progress"),
        cost,
        finish_reason: Some("error".into()),
        cancelled: false,
        first_token_ms: progress.first_token_ms,
        cache_hit: false,
    });
    let state = state.clone();
    tokio::spawn(async move {
        if let Err(e) = state.ledger.progress(&hold, &record).await {
            tracing::warn!(request_id = %crate::request_id::RequestId::public(record.id), error = %e, "could not record stream progress");
        }
    });
}

fn message_of(end: &End) -> String {
    match end {
        End::Failed(m) => format!("the provider stream failed: {m}"),
        End::TimedOut => "the request timed out".into(),
        End::Shutdown => "the gateway is shutting down; the answer was cut short".into(),
        _ => String::new(),
    }
}

fn sse_json<T: serde::Serialize>(value: &T) -> Option<Bytes> {
    match serde_json::to_vec(value) {
        Ok(mut v) => {
            let mut out = Vec::with_capacity(v.len() + 8);
            out.extend_from_slice(b"data: ");
            out.append(&mut v);
            out.extend_from_slice(b"\n\n");
            Some(Bytes::from(out))
        }
        Err(e) => {
            tracing::error!(error = %e, "could not encode a stream chunk");
            None
        }
    }
}
