pub mod account;
pub mod admin;
pub mod body;
pub mod chat;
pub mod embeddings;
pub mod endpoints;
pub mod models;
pub mod stream;
pub mod stripe;
pub mod usage;

use actix_web::{web, HttpResponse, Scope};
use serde_json::json;

use crate::error::ApiError;
use crate::state::AppState;

/// Routes shared by `/v1` and `/api/v1` (OpenAI-compatible).
fn openai_compatible(scope: Scope) -> Scope {
    scope
        .route("/chat/completions", web::post().to(chat::chat_completions))
        .route("/completions", web::post().to(chat::completions))
        .route("/embeddings", web::post().to(embeddings::embeddings))
        .route("/models", web::get().to(models::list))
        .route("/models/{author}/{slug}", web::get().to(models::get))
        .route(
            "/models/{author}/{slug}/endpoints",
            web::get().to(endpoints::list),
        )
}

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(openai_compatible(web::scope("/v1")));
    // actix serves a path from the first scope whose prefix matches, so every `/api/v1` route
    // must be added to this one scope.
    cfg.service(
        openai_compatible(web::scope("/api/v1"))
            .route("/credits", web::get().to(account::credits))
            .route("/key", web::get().to(account::key))
            .route("/generation", web::get().to(account::generation))
            .route(
                "/admin/catalog/reload",
                web::post().to(admin::reload_catalog),
            )
            .configure(stripe::configure),
    );
    cfg.route("/health", web::get().to(health));
}

/// Liveness plus the dependencies a request needs.
async fn health(state: web::Data<AppState>) -> HttpResponse {
    let pg = sqlx::query("SELECT 1").execute(&state.pg).await.is_ok();
    let redis = match state.redis.get().await {
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
