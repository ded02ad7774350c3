//! For operators and orchestrators: `GET /health` (dependencies), `GET /ready` (may this
//! instance take traffic) and `GET /metrics` (Prometheus text format).

use std::sync::atomic::Ordering;
use std::time::Duration;

use actix_web::{web, HttpResponse};
use serde_json::json;

use crate::metrics::Gauges;
use crate::state::AppState;

/// A dependency check gives up after this long: a probe must answer quickly either way.
const CHECK_TIMEOUT: Duration = Duration::from_secs(2);

async fn postgres_ok(state: &AppState) -> bool {
    matches!(
        tokio::time::timeout(CHECK_TIMEOUT, sqlx::query("SELECT 1").execute(&state.pg)).await,
        Ok(Ok(_))
    )
}

async fn redis_ok(state: &AppState) -> bool {
    let ping = async {
        redis::cmd("PING")
            .query_async::<String>(&mut state.redis.clone())
            .await
            .is_ok()
    };
    tokio::time::timeout(CHECK_TIMEOUT, ping)
        .await
        .unwrap_or(false)
}

/// Liveness plus the dependencies a request needs.
#[utoipa::path(
    get, path = "/health", tag = "Operations",
    summary = "Liveness, with Postgres and Redis checked",
    responses(
        (status = 200, description = "Postgres and Redis answer", body = crate::openapi::schemas::Health),
        (status = 503, description = "One of them does not", body = crate::openapi::schemas::Health),
    ),
)]
pub async fn health(state: web::Data<AppState>) -> HttpResponse {
    let (pg, redis) = tokio::join!(postgres_ok(&state), redis_ok(&state));
    let body = json!({ "status": if pg && redis { "ok" } else { "degraded" }, "postgres": pg, "redis": redis });
    if pg && redis {
        HttpResponse::Ok().json(body)
    } else {
        HttpResponse::ServiceUnavailable().json(body)
    }
}

/// Readiness: Postgres and Redis answer, the catalog has models, and the instance is not
/// draining. 503 names every part that is not ready in `failing`.
#[utoipa::path(
    get, path = "/ready", tag = "Operations",
    summary = "Readiness for traffic",
    responses(
        (status = 200, description = "Ready", body = crate::openapi::schemas::Ready),
        (status = 503, description = "Not ready: `failing` names why", body = crate::openapi::schemas::Ready),
    ),
)]
pub async fn ready(state: web::Data<AppState>) -> HttpResponse {
    let (pg, redis) = tokio::join!(postgres_ok(&state), redis_ok(&state));
    let catalog = state.catalog();
    let models = catalog.models.len();
    let configured = catalog
        .providers
        .iter()
        .filter(|p| p.is_configured())
        .count();
    let draining = state.shutdown.draining.is_cancelled();
    let mut failing = Vec::new();
    if !pg {
        failing.push("postgres");
    }
    if !redis {
        failing.push("redis");
    }
    if models == 0 {
        failing.push("catalog");
    }
    if draining {
        failing.push("draining");
    }
    let body = json!({
        "status": if failing.is_empty() { "ready" } else { "not_ready" },
        "failing": failing,
        "postgres": pg,
        "redis": redis,
        "catalog": { "models": models, "configured_providers": configured },
        "draining": draining,
    });
    if failing.is_empty() {
        HttpResponse::Ok().json(body)
    } else {
        HttpResponse::ServiceUnavailable().json(body)
    }
}

/// Prometheus text exposition of this instance's metrics.
#[utoipa::path(
    get, path = "/metrics", tag = "Operations",
    summary = "Prometheus metrics of this instance",
    description = "Requests by route, model, provider and status; latency histograms; fallbacks; cache hits; refusals; settlement backlog and lag; spend. See docs/operations.md.",
    responses((status = 200, description = "Prometheus text format 0.0.4", content_type = "text/plain; version=0.0.4; charset=utf-8", body = String)),
)]
pub async fn metrics(state: web::Data<AppState>) -> HttpResponse {
    let stats = &state.writer_stats;
    let text = state.metrics.render(&Gauges {
        settlement_backlog: stats.backlog.load(Ordering::Relaxed),
        settlement_lag_ms: stats.lag_ms.load(Ordering::Relaxed),
        settlements_unposted: state.ledger.unposted(),
        in_flight: state.ledger.in_flight(),
        catalog_models: state.catalog().models.len(),
    });
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4; charset=utf-8")
        .body(text)
}
