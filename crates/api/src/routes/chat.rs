//! `POST /v1/chat/completions`: authenticate, validate, choose endpoints, reserve the maximum
//! cost, try endpoints in order, answer as JSON or SSE, and settle exactly once.

use std::sync::Arc;
use std::time::Instant;

use actix_web::{web, HttpRequest, HttpResponse};
use chrono::{DateTime, Utc};
use infron_billing::{CostBreakdown, FailedAttempt, Hold, Settled, SettlementRecord, Usage, Usd};
use infron_router::cache::CachedAnswer;
use infron_router::health;
use infron_router::legacy;
use infron_router::preferences::{self, ModelNameError, Needs, ProviderPreferences};
use infron_router::providers::{self, Reply};
use infron_router::selection::{self, ChainLink, Route};
use infron_router::types::{ChatRequest, Content, ContentPart, Message, Role};
use infron_router::{Attempt, Endpoint, FailureKind, Model};
use serde_json::Value;
use uuid::Uuid;

use super::body;
use super::stream::{self, StreamHealth, StreamJob};
use super::usage::{UsageOut, WithUsage};
use crate::auth::Caller;
use crate::error::ApiError;
use crate::request_id::RequestId;
use crate::response_cache::{self, CacheUse, Hit};
use crate::state::AppState;

/// Public form of a request id, as returned in `id` and `x-request-id`.
pub fn public_id(id: Uuid) -> String {
    RequestId::public(id)
}

/// The API a request came in through, which decides the shape of the answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    Chat,
    /// Legacy `/v1/completions`: served through chat, answered as `text_completion`.
    Completion,
    Embedding,
    /// Anthropic's `/v1/messages`: served through chat, answered in Anthropic's shapes.
    Messages,
    /// OpenAI's `/v1/responses`: served through chat, answered as a `response`.
    Responses,
}

impl Shape {
    pub fn endpoint_kind(self) -> &'static str {
        match self {
            Shape::Chat => "chat",
            Shape::Completion => "completion",
            Shape::Embedding => "embedding",
            Shape::Messages => "messages",
            Shape::Responses => "responses",
        }
    }
}

/// What the request log will say, filled in as the request proceeds.
pub struct Draft {
    pub shape: Shape,
    pub id: Uuid,
    pub caller: Caller,
    pub created_at: DateTime<Utc>,
    pub started: Instant,
    pub requested_model: String,
    pub hold: Option<Hold>,
    pub attempts: Vec<Attempt>,
    pub streamed: bool,
    /// The request's parameters as a Responses answer echoes them (`/v1/responses` only).
    pub echo: Option<serde_json::Value>,
}

/// How a finished request is recorded.
pub struct Outcome<'a> {
    pub status: u16,
    pub error_class: Option<&'a str>,
    pub served: Option<(&'a Model, &'a Endpoint)>,
    pub usage: Usage,
    pub usage_source: Option<&'a str>,
    pub cost: CostBreakdown,
    pub finish_reason: Option<String>,
    pub cancelled: bool,
    pub first_token_ms: Option<i32>,
    pub cache_hit: bool,
}

impl Outcome<'_> {
    /// A request that ended with an error before any provider answered.
    pub fn failed(status: u16, class: &str) -> Outcome<'_> {
        Outcome {
            status,
            error_class: Some(class),
            served: None,
            usage: Usage::default(),
            usage_source: None,
            cost: CostBreakdown::default(),
            finish_reason: None,
            cancelled: false,
            first_token_ms: None,
            cache_hit: false,
        }
    }
}

impl Draft {
    /// The settlement record of this request as it ends with `o` (the hold stays with the
    /// caller, who settles it).
    pub fn record(&self, o: &Outcome<'_>) -> SettlementRecord {
        SettlementRecord {
            id: self.id,
            created_at: self.created_at,
            completed_at: Utc::now(),
            account_id: self.caller.account_id,
            api_key_id: Some(self.caller.key_id),
            key_period: self
                .hold
                .as_ref()
                .and_then(|h| h.key.as_ref())
                .map(|k| k.period_start),
            requested_model: self.requested_model.clone(),
            model: o.served.map(|(m, _)| m.id.clone()),
            provider: o.served.map(|(_, e)| e.provider.name.clone()),
            upstream_model: o.served.map(|(_, e)| e.upstream_model.clone()),
            endpoint_kind: self.shape.endpoint_kind().into(),
            prompt_tokens: clamp(o.usage.prompt_tokens),
            completion_tokens: clamp(o.usage.completion_tokens),
            cached_tokens: clamp(o.usage.cached_tokens),
            cache_write_tokens: clamp(o.usage.cache_write_tokens),
            reasoning_tokens: clamp(o.usage.reasoning_tokens),
            list_cost: o.cost.total,
            prices: o.served.map(|(_, e)| e.prices),
            usage_source: o.usage_source.map(str::to_string),
            status: i16::try_from(o.status).unwrap_or(i16::MAX),
            error_class: o.error_class.map(str::to_string),
            finish_reason: o.finish_reason.clone(),
            streamed: self.streamed,
            cancelled: o.cancelled,
            cache_hit: o.cache_hit,
            failed_attempts: failed_attempts(&self.attempts),
            latency_ms: i32::try_from(self.started.elapsed().as_millis()).ok(),
            first_token_ms: o.first_token_ms,
        }
    }
}

/// What the request log keeps of attempts that did not answer: never the provider's message,
/// which often quotes the prompt.
pub fn failed_attempts(attempts: &[Attempt]) -> Vec<FailedAttempt> {
    attempts
        .iter()
        .filter_map(|a| {
            let e = a.error.as_ref()?;
            Some(FailedAttempt {
                provider: a.provider.clone(),
                model: a.model.clone(),
                upstream_model: a.upstream_model.clone(),
                status: e.status,
                class: e.kind.as_str().to_string(),
                latency_ms: a.latency_ms,
            })
        })
        .collect()
}

fn clamp(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// Counts a refused reservation: a rate limit in `infron_rate_limited_total`, anything else in
/// `infron_reservation_refusals_total` by reason.
pub fn count_refusal(state: &AppState, e: &infron_billing::BillingError) {
    use infron_billing::BillingError as B;
    let reason = match e {
        B::RateLimited { .. } => return state.metrics.rate_limited(),
        B::InsufficientCredits { .. } => "insufficient_credits",
        B::KeyLimitReached { .. } => "key_limit_reached",
        B::Busy(_) => "busy",
        _ => "unavailable",
    };
    state.metrics.reservation_refused(reason);
}

/// Settles a request and says what it charged. If the settlement could not be recorded at
/// all (an error here means Redis and Postgres both refused it and it is kept in memory), the
/// request is still answered: it was served.
pub async fn settle(state: &AppState, hold: Option<&Hold>, record: &SettlementRecord) -> Settled {
    let settled = settle_only(state, hold, record).await;
    state.metrics.model_request(record, settled.charged);
    settled
}

async fn settle_only(state: &AppState, hold: Option<&Hold>, record: &SettlementRecord) -> Settled {
    match state.ledger.settle(hold, record).await {
        Ok(s) => s,
        Err(e) => {
            tracing::error!(request_id = %crate::request_id::RequestId::public(record.id), error = %e, "settlement failed");
            let charged = hold.map_or(record.list_cost, |h| record.list_cost.min(h.amount));
            Settled {
                charged,
                overage: record.list_cost.checked_sub(charged).unwrap_or(Usd::ZERO),
            }
        }
    }
}

#[utoipa::path(
    post, path = "/v1/chat/completions", tag = "Chat",
    summary = "Create a chat completion",
    description = "OpenAI's Chat Completions request, routed to the cheapest healthy endpoint of the model, with fallback. With `stream: true` the answer is `text/event-stream`: `data:` chunks (`object: \"chat.completion.chunk\"`), a final usage chunk when asked, then `data: [DONE]`.",
    request_body(content = infron_router::types::ChatRequest, content_type = "application/json",
        example = json!({"model": "openai/gpt-4o-mini", "messages": [{"role": "user", "content": "Hello"}], "max_tokens": 16})),
    params(("x-infron-cache" = Option<String>, Header, description = "`no-cache` skips the response cache lookup, `no-store` neither reads nor writes it")),
    responses((status = 200, description = "The completion, or its stream",
        content((crate::openapi::schemas::ChatCompletion = "application/json"), (String = "text/event-stream")))),
    security(("bearer" = []), ("x_api_key" = [])),
)]
pub async fn chat_completions(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    serve(req, payload, state, Shape::Chat).await
}

/// `POST /v1/completions`: the legacy API, served through chat (see `infron_router::legacy`).
#[utoipa::path(
    post, path = "/v1/completions", tag = "Chat",
    summary = "Create a text completion (legacy)",
    description = "The legacy Completions API, served through chat: `prompt` becomes one user message. Streams as `text_completion` chunks with `stream: true`.",
    request_body(content = crate::openapi::schemas::CompletionsBody, content_type = "application/json",
        example = json!({"model": "openai/gpt-4o-mini", "prompt": "Say hello", "max_tokens": 16})),
    responses((status = 200, description = "The completion, or its stream",
        content((crate::openapi::schemas::TextCompletionResponse = "application/json"), (String = "text/event-stream")))),
    security(("bearer" = []), ("x_api_key" = [])),
)]
pub async fn completions(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    serve(req, payload, state, Shape::Completion).await
}

pub async fn serve(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
    shape: Shape,
) -> Result<HttpResponse, ApiError> {
    let started = Instant::now();
    let created_at = Utc::now();
    let caller = state.auth.authenticate(&req).await?;
    let raw = body::read(&req, payload, state.settings.max_body_bytes).await?;
    let mut draft = Draft {
        shape,
        id: RequestId::of(&req),
        caller,
        created_at,
        started,
        requested_model: String::new(),
        hold: None,
        attempts: Vec::new(),
        streamed: false,
        echo: None,
    };
    let state = state.into_inner();
    let request: Result<ChatRequest, ApiError> = body::require_json(&req)
        .and_then(|()| parse_request(&raw, shape))
        .and_then(|(r, echo)| {
            validate(&r)?;
            draft.echo = echo;
            Ok(r)
        });
    let mut request = match request {
        Ok(r) => r,
        Err(e) => return Err(fail(&state, draft, e).await),
    };
    if request.stream
        && matches!(shape, Shape::Chat | Shape::Completion)
        && req.path().starts_with("/api/")
    {
        usage_by_default(&mut request);
    }
    draft.requested_model = request.model.clone().unwrap_or_default();
    draft.streamed = request.stream;
    let cache_directive = match response_cache::Directive::of(&req) {
        Ok(d) => d,
        Err(e) => return Err(fail(&state, draft, e).await),
    };
    run(state, draft, request, cache_directive).await
}

/// The chat request, and for `/v1/responses` the parameters its answer echoes.
pub(crate) fn parse_request(
    raw: &[u8],
    shape: Shape,
) -> Result<(ChatRequest, Option<serde_json::Value>), ApiError> {
    match shape {
        Shape::Completion => {
            let legacy: legacy::CompletionRequest = body::parse_json(raw)?;
            legacy
                .into_chat()
                .map(|r| (r, None))
                .map_err(|e| ApiError::invalid(e.param, e.message))
        }
        Shape::Messages => Ok((
            super::messages::to_chat(body::parse_json(raw)?, true)?,
            None,
        )),
        Shape::Responses => {
            let (r, echo) = super::responses::to_chat(body::parse_json(raw)?)?;
            Ok((r, Some(echo)))
        }
        _ => Ok((body::parse_json(raw)?, None)),
    }
}

/// Records a failed request (releasing its hold, if any) and returns its error.
pub async fn fail(state: &AppState, draft: Draft, e: ApiError) -> ApiError {
    let status = actix_web::ResponseError::status_code(&e).as_u16();
    let record = draft.record(&Outcome::failed(status, e.class()));
    settle(state, draft.hold.as_ref(), &record).await;
    e
}

pub(crate) fn validate(r: &ChatRequest) -> Result<(), ApiError> {
    if r.model.as_deref().is_none_or(|m| m.trim().is_empty())
        && r.gateway.models.as_ref().is_none_or(|m| m.is_empty())
    {
        return Err(ApiError::invalid("model", "'model' is required"));
    }
    if r.messages.is_empty() {
        return Err(ApiError::invalid(
            "messages",
            "'messages' must contain at least one message",
        ));
    }
    for (i, m) in r.messages.iter().enumerate() {
        if m.role == Role::Tool && m.tool_call_id.is_none() {
            return Err(ApiError::invalid(
                format!("messages[{i}].tool_call_id"),
                "a 'tool' message needs 'tool_call_id'",
            ));
        }
        validate_content(i, m)?;
    }
    for (i, tool) in r.tools.iter().flatten().enumerate() {
        let kind = tool
            .get("type")
            .and_then(Value::as_str)
            .unwrap_or("function");
        if kind == "function" && !tool.get("function").is_some_and(Value::is_object) {
            return Err(ApiError::invalid(
                format!("tools[{i}].function"),
                format!("tools[{i}] is a function tool without its 'function' object"),
            ));
        }
    }
    if let Some(t) = r.temperature {
        if !(0.0..=2.0).contains(&t) {
            return Err(ApiError::invalid(
                "temperature",
                "'temperature' must be between 0 and 2",
            ));
        }
    }
    if let Some(p) = r.top_p {
        if !(0.0..=1.0).contains(&p) {
            return Err(ApiError::invalid(
                "top_p",
                "'top_p' must be between 0 and 1",
            ));
        }
    }
    for (name, v) in [
        ("max_tokens", r.max_tokens),
        ("max_completion_tokens", r.max_completion_tokens),
    ] {
        if v == Some(0) {
            return Err(ApiError::invalid(
                name,
                format!("'{name}' must be at least 1"),
            ));
        }
    }
    if let Some(n) = r.extra.get("n") {
        if n.as_u64() != Some(1) {
            return Err(ApiError::invalid(
                "n",
                "only n = 1 is supported; send separate requests for more choices",
            ));
        }
    }
    Ok(())
}

/// Every message but the assistant's (which may carry only tool calls) needs content, and
/// images must be fetched over http(s) or given inline as `data:` URLs: a `file:`,
/// `javascript:` or other scheme is refused here, on every wire, rather than handed to a
/// provider.
fn validate_content(i: usize, m: &Message) -> Result<(), ApiError> {
    let content = match &m.content {
        Some(c) => c,
        None if m.role == Role::Assistant || m.role == Role::Function => return Ok(()),
        None => {
            return Err(ApiError::invalid(
                format!("messages[{i}].content"),
                format!(
                    "messages[{i}].content must be a string or an array of content parts, not null"
                ),
            ))
        }
    };
    let Content::Parts(parts) = content else {
        return Ok(());
    };
    for (j, part) in parts.iter().enumerate() {
        if let ContentPart::ImageUrl { image_url } = part {
            if !allowed_image_url(&image_url.url) {
                return Err(ApiError::invalid(
                    format!("messages[{i}].content[{j}].image_url.url"),
                    "an image URL must be an http(s) URL or a data: URL",
                ));
            }
        }
    }
    Ok(())
}

pub(crate) fn allowed_image_url(url: &str) -> bool {
    let url = url.trim_start();
    let scheme = url.split_once(':').map(|(s, _)| s.to_ascii_lowercase());
    match scheme.as_deref() {
        Some("http" | "https") => url
            .split_once(':')
            .is_some_and(|(_, rest)| rest.starts_with("//") && rest.len() > 2),
        Some("data") => true,
        _ => false,
    }
}

/// A request for more output than any model it names can produce is refused rather than
/// forwarded (a provider would refuse it, or an absurd value would reach it as is).
fn validate_max_output(r: &ChatRequest, chain: &[ChainLink]) -> Result<(), ApiError> {
    let Some(asked) = r.max_output() else {
        return Ok(());
    };
    let limit = chain
        .iter()
        .flat_map(|(m, _)| {
            std::iter::once(m.max_output_tokens)
                .chain(m.endpoints.iter().map(|e| e.max_output_tokens))
        })
        .max()
        .unwrap_or(0);
    if limit > 0 && asked > limit {
        let field = if r.max_completion_tokens.is_some() {
            "max_completion_tokens"
        } else {
            "max_tokens"
        };
        return Err(ApiError::invalid(
            field,
            format!("'{field}' is {asked}, above this model's maximum output of {limit} tokens"),
        ));
    }
    Ok(())
}

/// The models to try, in order: `model`, then `models` / `fallback_models`, each with its
/// `:floor` / `:nitro` variant.
fn model_chain(state: &AppState, r: &ChatRequest) -> Result<Vec<ChainLink>, ApiError> {
    let catalog = state.catalog();
    let mut names: Vec<&str> = Vec::new();
    if let Some(m) = r.model.as_deref() {
        names.push(m);
    }
    for list in [&r.gateway.models, &r.gateway.fallback_models]
        .into_iter()
        .flatten()
    {
        for m in list {
            if !names.contains(&m.as_str()) {
                names.push(m);
            }
        }
    }
    let mut chain = Vec::new();
    for name in names {
        let field = if r.model.as_deref() == Some(name) {
            "model"
        } else {
            "models"
        };
        match preferences::resolve_model(&catalog, name) {
            Ok(m) => chain.push(m),
            Err(ModelNameError::UnknownVariant(v)) => {
                return Err(ApiError::invalid(
                    field,
                    format!("unknown model variant ':{v}' in '{name}'; supported variants are :floor and :nitro"),
                ))
            }
            Err(ModelNameError::Unknown) if chain.is_empty() && r.model.as_deref() == Some(name) => {
                return Err(ApiError::NotFound(format!("model '{name}' is not available on this gateway; GET /v1/models lists the models")))
            }
            Err(ModelNameError::Unknown) => {
                return Err(ApiError::NotFound(format!("model '{name}' (in models) is not available on this gateway")))
            }
        }
    }
    if chain
        .iter()
        .any(|(m, _)| m.kind != infron_router::catalog::ModelKind::Chat)
    {
        return Err(ApiError::invalid(
            "model",
            "this model does not serve chat completions",
        ));
    }
    Ok(chain)
}

async fn run(
    state: Arc<AppState>,
    mut draft: Draft,
    request: ChatRequest,
    cache_directive: response_cache::Directive,
) -> Result<HttpResponse, ApiError> {
    let chain = match model_chain(&state, &request)
        .and_then(|c| validate_max_output(&request, &c).map(|()| c))
    {
        Ok(c) => c,
        Err(e) => return Err(fail(&state, draft, e).await),
    };
    let plan = match routing_plan(&state, &draft, &request, &chain).await {
        Ok(p) => p,
        Err(e) => return Err(fail(&state, draft, e).await),
    };

    let account = draft.caller.account_id.to_string();
    let (mut hit, cache) =
        match response_cache::lookup(&state, &account, &request, cache_directive).await {
            Ok(found) => found,
            Err(e) => return Err(fail(&state, draft, e).await),
        };
    // A hit that costs nothing holds nothing.
    if let Some(free) = hit.take_if(|h| h.cost.total.is_zero()) {
        return answer_from_cache(state, draft, &request, free, cache).await;
    }
    let all: Vec<Arc<Endpoint>> = plan
        .iter()
        .flat_map(|r| r.endpoints.iter().cloned())
        .collect();
    let bound = request.prompt_token_bound();
    let amount = match &hit {
        Some(h) => Ok(h.cost.total),
        None => selection::max_cost(&all, bound, request.max_output(), request.image_count()),
    };
    let amount = match amount {
        Ok(a) => a,
        Err(e) => return Err(fail(&state, draft, e.into()).await),
    };
    // Token rate limits take the prompt estimate plus the output the client asked for, and are
    // corrected by what the request really used when it settles.
    let tokens = request
        .prompt_token_estimate()
        .saturating_add(request.max_output().unwrap_or(0));
    let rate =
        crate::rate_limit::limits_for(&draft.caller, i64::try_from(tokens).unwrap_or(i64::MAX));
    let reservation = state.ledger.reserve(
        draft.caller.account_id,
        draft.id,
        draft.caller.limit.as_ref(),
        amount,
        &rate,
    );
    match tracing::Instrument::instrument(reservation, crate::telemetry::reserve_span()).await {
        Ok(hold) => {
            crate::rate_limit::report(&hold.rate);
            draft.hold = Some(hold);
        }
        Err(e) => {
            count_refusal(&state, &e);
            return Err(fail(&state, draft, e.into()).await);
        }
    }
    if let Some(hit) = hit {
        return answer_from_cache(state, draft, &request, hit, cache).await;
    }

    let overall = tokio::time::Instant::now() + state.settings.request_timeout;
    let include_cost = request.gateway.usage.as_ref().is_some_and(|u| u.include);
    for Route { model, endpoints } in &plan {
        for endpoint in endpoints {
            let attempt_started = Instant::now();
            let span = crate::telemetry::upstream_span(
                &endpoint.provider.name,
                &model.id,
                &endpoint.upstream_model,
            );
            let call = tokio::time::timeout_at(
                overall,
                tracing::Instrument::instrument(
                    state.providers.chat(endpoint, &request),
                    span.clone(),
                ),
            );
            let result = tokio::select! {
                r = call => r,
                _ = state.shutdown.deadline.cancelled() => {
                    let e = ApiError::Unavailable("the gateway is shutting down; retry the request".into());
                    return Err(fail(&state, draft, e).await);
                }
            };
            let result = match result {
                Err(_) => {
                    crate::telemetry::finish_upstream(&span, "timeout");
                    state.health.record(endpoint, health::Outcome::Failure);
                    return Err(fail(&state, draft, ApiError::Timeout).await);
                }
                Ok(r) => r,
            };
            let mut attempt = Attempt {
                provider: endpoint.provider.name.clone(),
                model: model.id.clone(),
                upstream_model: endpoint.upstream_model.clone(),
                error: None,
                latency_ms: u64::try_from(attempt_started.elapsed().as_millis())
                    .unwrap_or(u64::MAX),
            };
            let outcome = result.as_ref().map_or_else(|e| e.kind.as_str(), |_| "ok");
            state
                .metrics
                .upstream_attempt(&endpoint.provider.name, outcome, attempt.latency_ms);
            crate::telemetry::finish_upstream(&span, outcome);
            drop(span);
            match result {
                Ok(Reply::Complete { response, usage }) => {
                    state.health.record(
                        endpoint,
                        health::Outcome::Success {
                            latency_ms: attempt.latency_ms,
                            tokens: usage.map_or(0, |u| u.completion_tokens),
                            generation_ms: attempt.latency_ms,
                        },
                    );
                    draft.attempts.push(attempt);
                    return complete(
                        &state,
                        draft,
                        &request,
                        model,
                        endpoint,
                        response,
                        usage,
                        include_cost,
                        cache,
                    )
                    .await;
                }
                Ok(Reply::Stream { head, rest }) => {
                    let health = Some(StreamHealth {
                        latency_ms: attempt.latency_ms,
                        first_content_at: Instant::now(),
                    });
                    draft.attempts.push(attempt);
                    let job = StreamJob {
                        state: state.clone(),
                        draft,
                        model: model.clone(),
                        endpoint: endpoint.clone(),
                        prompt_estimate: request.prompt_token_estimate(),
                        include_usage: include_usage(&request, include_cost),
                        include_cost,
                        deadline: overall,
                        cache,
                        health,
                    };
                    return Ok(stream::respond(job, head, rest));
                }
                Err(e) => {
                    tracing::warn!(request_id = %public_id(draft.id), provider = %e.provider, kind = e.kind.as_str(), status = ?e.status, "provider attempt failed");
                    let kind = e.kind;
                    if health::counts_against_endpoint(kind) {
                        state.health.record(endpoint, health::Outcome::Failure);
                    }
                    attempt.error = Some(e.clone());
                    draft.attempts.push(attempt);
                    if !kind.is_retryable() {
                        return Err(fail(&state, draft, ApiError::ProviderRejected(e)).await);
                    }
                    if kind == FailureKind::ContextLength {
                        break; // no other endpoint of this model will fit it either: next model
                    }
                }
            }
        }
    }
    let attempts = draft.attempts.clone();
    Err(fail(&state, draft, ApiError::AllProvidersFailed(attempts)).await)
}

#[allow(clippy::too_many_arguments)]
async fn complete(
    state: &AppState,
    draft: Draft,
    request: &ChatRequest,
    model: &Arc<Model>,
    endpoint: &Arc<Endpoint>,
    mut response: infron_router::types::ChatResponse,
    usage: Option<Usage>,
    include_cost: bool,
    cache: CacheUse,
) -> Result<HttpResponse, ApiError> {
    let (usage, source) = match usage {
        Some(u) => (u, "provider"),
        None => {
            let text: u64 = response
                .choices
                .iter()
                .map(|c| {
                    c.message.content.as_deref().map_or(0, str::len) as u64
                        + c.message.reasoning.as_deref().map_or(0, str::len) as u64
                        + c.message
                            .tool_calls
                            .as_ref()
                            .map_or(0, |t| t.iter().map(|v| v.to_string().len() as u64).sum())
                })
                .sum();
            (
                Usage {
                    prompt_tokens: request.prompt_token_estimate(),
                    completion_tokens: text.div_ceil(4),
                    ..Default::default()
                },
                "estimated",
            )
        }
    };
    let source = if cache.is_hit() { "cache" } else { source };
    let cost = if cache.is_free_hit() {
        CostBreakdown::default()
    } else {
        endpoint.prices.cost(&usage).map_err(ApiError::from)?
    };
    let id = draft.id;
    let shape = draft.shape;
    response.id = public_id(id);
    response.model = model.id.clone();
    response.provider = Some(endpoint.provider.name.clone());
    response.usage = None;
    response.object = "chat.completion".into();
    if response.created == 0 {
        response.created = draft.created_at.timestamp();
    }
    let finish = response
        .choices
        .first()
        .and_then(|c| c.finish_reason.clone());
    let record = draft.record(&Outcome {
        status: 200,
        error_class: None,
        served: Some((model, endpoint)),
        usage,
        usage_source: Some(source),
        cost,
        finish_reason: finish,
        cancelled: false,
        first_token_ms: None,
        cache_hit: cache.is_hit(),
    });
    let settled = settle(state, draft.hold.as_ref(), &record).await;
    let cost = cost.charged(settled.charged);
    cache.store(
        state,
        CachedAnswer::from_response(
            &response,
            usage,
            &model.id,
            &endpoint.provider.name,
            &endpoint.upstream_model,
        ),
    );
    let usage_out = Some(UsageOut::new(&usage, &cost, include_cost));
    let mut reply = HttpResponse::Ok();
    reply.insert_header(("x-request-id", public_id(id)));
    if let Some(h) = cache.header() {
        reply.insert_header((response_cache::HEADER, h));
    }
    Ok(match shape {
        Shape::Messages => reply.json(super::messages::message_json(
            &public_id(id),
            &model.id,
            &response,
            &usage,
        )),
        Shape::Responses => reply.json(super::responses::response_json(
            &super::responses::Head {
                id: public_id(id),
                created_at: draft.created_at.timestamp(),
                model: model.id.clone(),
                echo: draft.echo.clone().unwrap_or_default(),
            },
            &response,
            &usage,
        )),
        Shape::Completion => reply.json(WithUsage {
            inner: &legacy::completion_from_chat(&response),
            usage: usage_out,
        }),
        _ => reply.json(WithUsage {
            inner: &response,
            usage: usage_out,
        }),
    })
}

/// Parses the `provider` object and orders the eligible endpoints of each model in the chain.
async fn routing_plan(
    state: &AppState,
    draft: &Draft,
    request: &ChatRequest,
    chain: &[ChainLink],
) -> Result<Vec<Route>, ApiError> {
    let catalog = state.catalog();
    let preferences = ProviderPreferences::parse(request.gateway.provider.as_ref(), &catalog)
        .map_err(|e| ApiError::invalid(e.field.clone(), e.to_string()))?;
    let needs = Needs::of(request);
    let constraints = selection::Constraints {
        preferences: &preferences,
        needs: &needs,
        allow_training: draft.caller.allow_training,
    };
    let plan = selection::plan(
        chain,
        &constraints,
        state.settings.routing.default_sort,
        &state.health,
    )
    .await
    .map_err(|(model, why)| ApiError::NoEligibleEndpoint {
        model,
        availability: why.as_str(),
    })?;
    keep_translatable(plan, request)
}

/// Drops endpoints whose wire format cannot carry this request (an audio part to Anthropic, a
/// token-array prompt to Gemini, ...), so fallback moves past them instead of stopping at a
/// 400. Only when no endpoint of any model can take it is the request refused, with the first
/// adapter's reason (which names the part or parameter).
fn keep_translatable(plan: Vec<Route>, request: &ChatRequest) -> Result<Vec<Route>, ApiError> {
    let mut first_reason = None;
    let routes: Vec<Route> = plan
        .into_iter()
        .filter_map(|mut route| {
            route
                .endpoints
                .retain(|e| match providers::check_translatable(e, request) {
                    Ok(()) => true,
                    Err(reason) => {
                        first_reason.get_or_insert(reason);
                        false
                    }
                });
            (!route.endpoints.is_empty()).then_some(route)
        })
        .collect();
    if routes.is_empty() {
        return Err(ApiError::InvalidRequest {
            message: first_reason.unwrap_or_else(|| "no endpoint can serve this request".into()),
            param: None,
        });
    }
    Ok(routes)
}

/// OpenRouter's API always ends a stream with the usage chunk, and clients written for it (the
/// Vercel AI SDK's OpenRouter provider, for one) read the usage from there without asking for
/// it; so under `/api/v1` a stream has it unless `stream_options.include_usage` is `false`.
/// Under `/v1` OpenAI's rule holds: only when `include_usage` is `true`.
fn usage_by_default(request: &mut ChatRequest) {
    let options = request
        .stream_options
        .get_or_insert_with(|| Value::Object(Default::default()));
    if let Some(options) = options.as_object_mut() {
        options.entry("include_usage").or_insert(Value::Bool(true));
    }
}

/// Whether a stream ends with a usage chunk.
fn include_usage(request: &ChatRequest, include_cost: bool) -> bool {
    include_cost
        || request
            .stream_options
            .as_ref()
            .and_then(|o| o.get("include_usage"))
            .and_then(serde_json::Value::as_bool)
            .unwrap_or(false)
}

/// Answers from the response cache, as JSON or replayed as SSE, and settles like any answer.
async fn answer_from_cache(
    state: Arc<AppState>,
    draft: Draft,
    request: &ChatRequest,
    hit: Hit,
    cache: CacheUse,
) -> Result<HttpResponse, ApiError> {
    let include_cost = request.gateway.usage.as_ref().is_some_and(|u| u.include);
    if request.stream {
        let job = StreamJob {
            state: state.clone(),
            draft,
            model: hit.model,
            endpoint: hit.endpoint,
            prompt_estimate: request.prompt_token_estimate(),
            include_usage: include_usage(request, include_cost),
            include_cost,
            deadline: tokio::time::Instant::now() + state.settings.request_timeout,
            cache,
            health: None,
        };
        return Ok(stream::respond(
            job,
            hit.answer.to_events(),
            Box::pin(futures_util::stream::empty()),
        ));
    }
    complete(
        &state,
        draft,
        request,
        &hit.model,
        &hit.endpoint,
        hit.answer.to_response(),
        Some(hit.answer.usage),
        include_cost,
        cache,
    )
    .await
}
