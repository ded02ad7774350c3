pub mod body;
pub mod chat;
pub mod models;
pub mod stream;
pub mod usage;

use actix_web::{web, HttpResponse};
use serde_json::json;

use crate::error::ApiError;
use crate::state::AppState;

pub fn configure(cfg: &mut web::ServiceConfig) {
    for prefix in ["/v1", "/api/v1"] {
        cfg.service(
            web::scope(prefix)
                .route("/chat/completions", web::post().to(chat::chat_completions))
                .route("/models", web::get().to(models::list))
                .route("/models/{author}/{slug}", web::get().to(models::get)),
        );
    }
    cfg.route("/health", web::get().to(health));
}

/// Liveness plus the dependencies a request needs.
async fn health(state: web::Data<AppState>) -> HttpResponse {
    let pg = sqlx::query("SELECT 1").execute(&state.pg).await.is_ok();
    let redis = match state.hot.pool().get().await {
        Ok(mut c) => redis::cmd("PING")
            .query_async::<String>(&mut *c)
            .await
            .is_ok(),
        Err(_) => false,
    };
    let body = json!({ "status": if pg && redis { "ok" } else { "degraded" }, "postgres": pg, "redis": redis });
    if pg && redis {
        HttpResponse::Ok().json(body)
    } else {
        HttpResponse::ServiceUnavailable().json(body)
    }
}

pub async fn not_found() -> Result<HttpResponse, ApiError> {
    Err(ApiError::NotFound("no such route; see docs/api.md".into()))
}
