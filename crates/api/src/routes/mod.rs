pub mod account;
pub mod activity;
pub mod admin;
pub mod alerts;
pub mod body;
pub mod chat;
pub mod embeddings;
pub mod endpoints;
#[cfg(test)]
mod fuzz;
pub mod keys;
pub mod members;
pub mod messages;
pub mod messages_stream;
pub mod models;
pub mod operator;
pub mod ops;
pub mod responses;
pub mod responses_stream;
pub mod session;
pub mod stream;
pub mod stripe;
pub mod usage;

use actix_web::{web, HttpResponse, Scope};

use crate::error::ApiError;

/// Every API route. The same set is served under `/v1` and `/api/v1`: actix serves a path from
/// the first scope whose prefix matches, so each prefix gets one scope holding all of them.
fn api(scope: Scope) -> Scope {
    scope
        .route("/chat/completions", web::post().to(chat::chat_completions))
        .route("/completions", web::post().to(chat::completions))
        .route("/embeddings", web::post().to(embeddings::embeddings))
        .route("/messages", web::post().to(messages::messages))
        .route(
            "/messages/count_tokens",
            web::post().to(messages::count_tokens),
        )
        .route("/responses", web::post().to(responses::responses))
        .route(
            "/responses/input_tokens",
            web::post().to(responses::input_tokens),
        )
        .route("/responses/{id}", web::get().to(responses::retrieve))
        .route("/responses/{id}", web::delete().to(responses::delete))
        .route("/responses/{id}/cancel", web::post().to(responses::cancel))
        .route(
            "/responses/{id}/input_items",
            web::get().to(responses::input_items),
        )
        .route("/models", web::get().to(models::list))
        // One segment: the id's slash percent-encoded (`mock%2Fgpt-4o-mini`), as SDKs send it.
        .route("/models/{id}", web::get().to(models::get_encoded))
        .route("/models/{author}/{slug}", web::get().to(models::get))
        .route(
            "/models/{author}/{slug}/endpoints",
            web::get().to(endpoints::list),
        )
        .route("/credits", web::get().to(account::credits))
        .route("/key", web::get().to(account::key))
        .route("/generation", web::get().to(account::generation))
        .route("/openapi.json", web::get().to(crate::openapi::description))
        .route(
            "/admin/catalog/reload",
            web::post().to(admin::reload_catalog),
        )
        .configure(stripe::configure)
        .configure(alerts::configure)
        .configure(tenant_routes)
}

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(api(web::scope("/v1")));
    cfg.service(api(web::scope("/api/v1")));
    cfg.route("/health", web::get().to(ops::health))
        .route("/ready", web::get().to(ops::ready))
        .route("/metrics", web::get().to(ops::metrics));
}

/// The tenant-facing API: sign-in, keys, usage, members, settings, and the operator API.
fn tenant_routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/auth/signup", web::post().to(session::sign_up))
        .route("/auth/verify", web::post().to(session::verify))
        .route("/auth/verify/resend", web::post().to(session::resend))
        .route("/auth/signin", web::post().to(session::sign_in))
        .route("/auth/signout", web::post().to(session::sign_out))
        .route("/auth/signout-all", web::post().to(session::sign_out_all))
        .route("/auth/password", web::post().to(session::change_password))
        .route("/auth/password/forgot", web::post().to(session::forgot))
        .route("/auth/password/reset", web::post().to(session::reset))
        .route("/me", web::get().to(session::me))
        .route("/me/account", web::post().to(session::switch_account))
        .route("/accounts", web::post().to(session::create_account))
        .route("/keys", web::get().to(keys::list))
        .route("/keys", web::post().to(keys::create))
        .route("/keys/{hash}", web::get().to(keys::get))
        .route("/keys/{hash}", web::patch().to(keys::update))
        .route("/keys/{hash}", web::delete().to(keys::delete))
        .route("/activity", web::get().to(activity::activity))
        .route("/logs", web::get().to(activity::logs))
        .route("/account", web::get().to(members::settings))
        .route("/account", web::patch().to(members::update_settings))
        .route("/account/leave", web::post().to(members::leave))
        .route("/account/transfer", web::post().to(members::transfer))
        .route("/members", web::get().to(members::list))
        .route("/members/{user_id}", web::patch().to(members::change_role))
        .route("/members/{user_id}", web::delete().to(members::remove))
        .route("/invitations", web::get().to(members::invitations))
        .route("/invitations", web::post().to(members::invite))
        .route(
            "/invitations/accept",
            web::post().to(session::accept_invitation),
        )
        .route("/invitations/{id}", web::delete().to(members::revoke))
        .route("/audit", web::get().to(members::audit))
        .route(
            "/operator/auth/signin",
            web::post().to(session::operator_sign_in),
        )
        .route("/operator/accounts", web::get().to(operator::accounts))
        .route("/operator/accounts/{id}", web::get().to(operator::account))
        .route(
            "/operator/accounts/{id}/grants",
            web::post().to(operator::grant),
        )
        .route(
            "/operator/accounts/{id}/reversals",
            web::post().to(operator::reverse),
        )
        .route(
            "/operator/accounts/{id}/freeze",
            web::post().to(operator::freeze),
        )
        .route(
            "/operator/accounts/{id}/unfreeze",
            web::post().to(operator::unfreeze),
        )
        .route("/operator/audit", web::get().to(operator::audit));
}

/// A query string that does not parse (`?context=abc` where a number is expected) is a 400 in
/// the error envelope, not actix's plain-text answer.
pub fn query_config() -> web::QueryConfig {
    web::QueryConfig::default().error_handler(|e, _| {
        ApiError::InvalidRequest {
            message: format!("the query string is invalid: {e}"),
            param: None,
        }
        .into()
    })
}

/// A path segment that cannot be an id of its kind (`/members/abc` where a UUID is expected)
/// names nothing that exists: 404 in the error envelope.
pub fn path_config() -> web::PathConfig {
    web::PathConfig::default().error_handler(|_, _| {
        ApiError::UnknownId("not found: the path names nothing that exists".into()).into()
    })
}

pub async fn not_found() -> Result<HttpResponse, ApiError> {
    Err(ApiError::NoSuchRoute)
}
