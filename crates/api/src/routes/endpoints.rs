//! `GET /api/v1/models/{author}/{slug}/endpoints`: every provider endpoint of a model with its
//! prices, limits, capabilities and measured health, in OpenRouter's shape.

use actix_web::{web, HttpResponse};
use futures_util::future::join_all;
use infron_billing::TokenPrice;
use infron_router::health::{now_ms, EndpointHealth, WindowStats};
use infron_router::{Endpoint, Model};
use serde_json::{json, Value};

use crate::error::ApiError;
use crate::state::AppState;

fn price(p: TokenPrice) -> String {
    p.decimal().normalize().to_string()
}

fn sorted(set: Option<&std::collections::HashSet<String>>, fallback: &[String]) -> Vec<String> {
    let mut v: Vec<String> = match set {
        Some(s) => s.iter().cloned().collect(),
        None => fallback.to_vec(),
    };
    v.sort();
    v
}

fn endpoint_json(
    model: &Model,
    e: &Endpoint,
    health: &EndpointHealth,
    stats: &WindowStats,
    status: &str,
) -> Value {
    let p = &e.prices;
    let round = |v: f64| (v * 10.0).round() / 10.0;
    json!({
        "name": format!("{} | {}", e.provider.display_name, model.id),
        "model_id": model.id,
        "model_name": model.name,
        "provider_name": e.provider.display_name,
        "tag": e.provider.name,
        "upstream_model": e.upstream_model,
        "context_length": e.context_length,
        "max_completion_tokens": e.max_output_tokens,
        "max_prompt_tokens": null,
        "quantization": null,
        "supports_implicit_caching": false,
        "pricing": {
            "prompt": price(p.prompt),
            "completion": price(p.completion),
            "request": price(p.request),
            "image": price(p.image),
            "input_cache_read": price(p.input_cache_read.unwrap_or(p.prompt)),
            "input_cache_write": price(p.input_cache_write.unwrap_or(p.prompt)),
            "discount": super::models::discount(p.discount),
        },
        "supported_parameters": sorted(e.supported_parameters.as_ref(), &model.supported_parameters),
        "input_modalities": sorted(e.input_modalities.as_ref(), &model.input_modalities),
        "data_policy": e.provider.data_policy,
        // OpenRouter's integer status (0 ok, -1 degraded, -2 circuit open); Infron's name too.
        "status": match status { "ok" => 0, "degraded" => -1, _ => -2 },
        "status_name": status,
        "uptime_last_30m": stats.uptime_percent.map(round),
        "uptime_last_5m": null,
        "uptime_last_1d": null,
        "requests_last_30m": stats.requests,
        "latency_last_30m": stats.latency_p50_ms.map(|p50| json!({
            "p50": round(p50),
            "p75": round(stats.latency_p75_ms.unwrap_or(p50)),
            "p90": round(stats.latency_p90_ms.unwrap_or(p50)),
            "p99": round(stats.latency_p99_ms.unwrap_or(p50)),
        })),
        // Infron measures tokens over generation time per minute, not per request: the
        // window's figure stands for every percentile.
        "throughput_last_30m": stats.throughput.map(|t| json!({
            "p50": round(t), "p75": round(t), "p90": round(t), "p99": round(t),
        })),
        "circuit": {
            "consecutive_failures": health.consecutive_failures,
            "open_until": (health.open_until_ms > now_ms()).then_some(health.open_until_ms),
        },
    })
}

#[utoipa::path(
    get, path = "/api/v1/models/{author}/{slug}/endpoints", tag = "Models",
    summary = "List a model's endpoints with their measured health",
    params(("author" = String, Path, description = "The part of the id before the slash"), ("slug" = String, Path, description = "The part after it")),
    responses((status = 200, description = "The endpoints", body = crate::openapi::schemas::EndpointsResponse)),
)]
pub async fn list(
    path: web::Path<(String, String)>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let (author, slug) = path.into_inner();
    of_model(&format!("{author}/{slug}"), &state).await
}

/// The endpoints of the model `id` (also reached with the id's slash percent-encoded).
pub async fn of_model(id: &str, state: &AppState) -> Result<HttpResponse, ApiError> {
    let catalog = state.catalog();
    let model = catalog.model(id).ok_or_else(|| {
        ApiError::NotFound(format!("model '{id}' is not available on this gateway"))
    })?;
    let reports = join_all(model.endpoints.iter().map(|e| state.health.report(&e.key))).await;
    let now = now_ms();
    let config = &state.health.config;
    let endpoints: Vec<Value> = model
        .endpoints
        .iter()
        .zip(reports)
        .map(|(e, report)| {
            let (health, stats) = report.unwrap_or_else(|err| {
                tracing::warn!(error = %err, endpoint = %e.key, "health report unavailable");
                (state.health.get(&e.key), WindowStats::default())
            });
            let status = health.status(now, config);
            endpoint_json(model, e, &health, &stats, status)
        })
        .collect();
    Ok(HttpResponse::Ok().json(json!({ "data": {
        "id": model.id,
        "name": model.name,
        "created": 0,
        "description": model.description.as_deref().unwrap_or_default(),
        "architecture": super::models::architecture(model),
        "endpoints": endpoints,
    }})))
}
