//! `POST /v1/embeddings`: authenticate, validate, choose endpoints, reserve the maximum cost,
//! try endpoints in order, settle the input tokens at the endpoint's prompt price.

use std::time::Instant;

use actix_web::{web, HttpRequest, HttpResponse};
use chrono::Utc;
use infron_billing::{CostBreakdown, Usage};
use infron_router::catalog::ModelKind;
use infron_router::preferences::{Needs, ProviderPreferences};
use infron_router::providers::embeddings::EmbeddingRequest;
use infron_router::selection::{self, Constraints};
use infron_router::Attempt;
use serde_json::Value;

use super::body;
use super::chat::{fail, public_id, settle, Draft, Outcome, Shape};
use super::usage::UsdNumber;
use crate::error::ApiError;
use crate::request_id::RequestId;
use crate::state::AppState;

/// Request fields that steer the gateway and are never forwarded.
const GATEWAY_FIELDS: &[&str] = &["provider", "usage", "models", "fallback_models"];

#[utoipa::path(
    post, path = "/v1/embeddings", tag = "Embeddings",
    summary = "Create embeddings",
    request_body(content = crate::openapi::schemas::EmbeddingsBody, content_type = "application/json",
        example = json!({"model": "openai/text-embedding-3-small", "input": "Hello"})),
    responses((status = 200, description = "The embeddings", body = crate::openapi::schemas::EmbeddingsResponse)),
    security(("bearer" = []), ("x_api_key" = [])),
)]
pub async fn embeddings(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let started = Instant::now();
    let created_at = Utc::now();
    let caller = state.auth.authenticate(&req).await?;
    let raw = body::read(&req, payload, state.settings.max_body_bytes).await?;
    let draft = Draft {
        shape: Shape::Embedding,
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
    let parsed = body::require_json(&req).and_then(|()| body::parse_json(&raw));
    let mut request: EmbeddingRequest = match parsed {
        Ok(r) => r,
        Err(e) => return Err(fail(&state, draft, e).await),
    };
    let mut draft = draft;
    draft.requested_model = request.model.clone();
    if let Err((param, message)) = request.validate() {
        return Err(fail(&state, draft, ApiError::invalid(param, message)).await);
    }
    let provider_prefs: Option<Value> = request.extra.remove("provider");
    let include_cost = request
        .extra
        .get("usage")
        .and_then(|u| u.get("include"))
        .and_then(Value::as_bool)
        .unwrap_or(false);
    for f in GATEWAY_FIELDS {
        request.extra.remove(*f);
    }
    match run(
        &state,
        &mut draft,
        &request,
        provider_prefs.as_ref(),
        include_cost,
    )
    .await
    {
        Ok((body, served)) => {
            let record = draft.record(&served.outcome());
            let id = record.id;
            settle(&state, draft.hold.as_ref(), &record).await;
            Ok(HttpResponse::Ok()
                .insert_header(("x-request-id", public_id(id)))
                .content_type("application/json")
                .body(body))
        }
        Err(e) => Err(fail(&state, draft, e).await),
    }
}

#[derive(serde::Serialize)]
struct EmbeddingsOut<'a> {
    object: &'a str,
    data: &'a [infron_router::providers::embeddings::Embedding],
    model: &'a str,
    provider: &'a str,
    usage: EmbeddingsUsageOut,
}

#[derive(serde::Serialize)]
struct EmbeddingsUsageOut {
    prompt_tokens: u64,
    total_tokens: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    cost: Option<UsdNumber>,
}

/// What a successful embedding request records.
struct Served {
    model: std::sync::Arc<infron_router::Model>,
    endpoint: std::sync::Arc<infron_router::Endpoint>,
    usage: Usage,
    cost: CostBreakdown,
}

impl Served {
    fn outcome(&self) -> Outcome<'_> {
        Outcome {
            status: 200,
            error_class: None,
            served: Some((&self.model, &self.endpoint)),
            usage: self.usage,
            usage_source: Some("provider"),
            cost: self.cost,
            finish_reason: None,
            cancelled: false,
            first_token_ms: None,
            cache_hit: false,
        }
    }
}

async fn run(
    state: &AppState,
    draft: &mut Draft,
    request: &EmbeddingRequest,
    provider_prefs: Option<&Value>,
    include_cost: bool,
) -> Result<(Vec<u8>, Served), ApiError> {
    let catalog = state.catalog();
    let model = catalog.model(&request.model).cloned().ok_or_else(|| {
        ApiError::NotFound(format!(
            "model '{}' is not available on this gateway; GET /v1/models lists the models",
            request.model
        ))
    })?;
    if model.kind != ModelKind::Embedding {
        return Err(ApiError::invalid(
            "model",
            format!("'{}' is not an embedding model", model.id),
        ));
    }
    let preferences = ProviderPreferences::parse(provider_prefs, &catalog)
        .map_err(|e| ApiError::invalid(e.field.clone(), e.to_string()))?;
    let mut endpoints = selection::eligible(
        &model,
        &Constraints {
            preferences: &preferences,
            needs: &Needs::default(),
            allow_training: draft.caller.allow_training,
        },
    )
    .map_err(|why| ApiError::NoEligibleEndpoint {
        model: model.id.clone(),
        availability: why.as_str(),
    })?;
    endpoints.sort_by_key(|e| selection::unit_price(e));

    let amount = selection::max_cost(&endpoints, request.prompt_token_bound(), Some(0), 0)?;
    let rate = crate::rate_limit::limits_for(
        &draft.caller,
        i64::try_from(request.prompt_token_bound()).unwrap_or(i64::MAX),
    );
    let reservation = state.ledger.reserve(
        draft.caller.account_id,
        draft.id,
        draft.caller.limit.as_ref(),
        amount,
        &rate,
    );
    let hold = tracing::Instrument::instrument(reservation, crate::telemetry::reserve_span())
        .await
        .inspect_err(|e| super::chat::count_refusal(state, e))?;
    crate::rate_limit::report(&hold.rate);
    draft.hold = Some(hold);

    for endpoint in endpoints {
        let attempt_started = Instant::now();
        let span = crate::telemetry::upstream_span(
            &endpoint.provider.name,
            &model.id,
            &endpoint.upstream_model,
        );
        let result = tokio::time::timeout(
            state.settings.request_timeout,
            tracing::Instrument::instrument(
                state.providers.embed(&endpoint, request),
                span.clone(),
            ),
        )
        .await
        .map_err(|_| {
            crate::telemetry::finish_upstream(&span, "timeout");
            ApiError::Timeout
        })?;
        let mut attempt = Attempt {
            provider: endpoint.provider.name.clone(),
            model: model.id.clone(),
            upstream_model: endpoint.upstream_model.clone(),
            error: None,
            latency_ms: u64::try_from(attempt_started.elapsed().as_millis()).unwrap_or(u64::MAX),
        };
        let outcome = result.as_ref().map_or_else(|e| e.kind.as_str(), |_| "ok");
        state
            .metrics
            .upstream_attempt(&endpoint.provider.name, outcome, attempt.latency_ms);
        crate::telemetry::finish_upstream(&span, outcome);
        drop(span);
        match result {
            Ok((response, usage)) => {
                draft.attempts.push(attempt);
                let cost = endpoint.prices.cost(&usage)?;
                // Serialized straight from typed values so `cost` stays an exact decimal.
                let body = serde_json::to_vec(&EmbeddingsOut {
                    object: "list",
                    data: &response.data,
                    model: &model.id,
                    provider: &endpoint.provider.name,
                    usage: EmbeddingsUsageOut {
                        prompt_tokens: usage.prompt_tokens,
                        total_tokens: usage.prompt_tokens,
                        cost: include_cost.then_some(UsdNumber(cost.total)),
                    },
                })
                .map_err(|e| ApiError::Internal(e.to_string()))?;
                return Ok((
                    body,
                    Served {
                        model,
                        endpoint,
                        usage,
                        cost,
                    },
                ));
            }
            Err(e) => {
                tracing::warn!(request_id = %public_id(draft.id), provider = %e.provider, kind = e.kind.as_str(), status = ?e.status, "provider attempt failed");
                let kind = e.kind;
                attempt.error = Some(e.clone());
                draft.attempts.push(attempt);
                if !kind.is_retryable() {
                    return Err(ApiError::ProviderRejected(e));
                }
            }
        }
    }
    Err(ApiError::AllProvidersFailed(draft.attempts.clone()))
}
