//! The API description: an OpenAPI 3.1 document generated from the code with utoipa, served at
//! `GET /openapi.json` (and `/v1/openapi.json`, `/api/v1/openapi.json`), and rendered for people
//! at `/docs/api` (`reference`).
//!
//! Operations come from the `#[utoipa::path]` attribute on each handler; request schemas are
//! derived (`ToSchema`) from the types the handlers deserialize (`ChatRequest`,
//! `EmbeddingRequest`, the tenant bodies). Handlers that read loosely typed JSON (Messages,
//! Responses, key changes) or build their answer with `json!` are described by the schema-only
//! types in `schemas`, which list what the parsers accept and what the answers hold. The e2e
//! test `api_description` and `scripts/schemathesis.sh` check real answers against the document,
//! so a drift shows as a failing test.

pub mod reference;
pub mod schemas;

use std::sync::OnceLock;

use actix_web::{web, HttpResponse};
use serde_json::Value;
use utoipa::openapi::path::Operation;
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{ContentBuilder, Ref, ResponseBuilder};
use utoipa::{Modify, OpenApi};

use crate::routes;
use crate::state::AppState;

/// The model named in request examples; the served document names a model of the running
/// gateway's catalog instead (`localized`).
pub const EXAMPLE_CHAT_MODEL: &str = "openai/gpt-4o-mini";
pub const EXAMPLE_EMBEDDING_MODEL: &str = "openai/text-embedding-3-small";

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Infron API",
        description = "A multi-tenant LLM routing gateway: OpenAI's Chat Completions, Completions, \
Embeddings and Responses APIs, Anthropic's Messages API and OpenRouter's model, key and usage \
APIs in front of many providers, paid from prepaid credits.\n\n\
Every path is served under both `/v1` and `/api/v1` (`/v1/chat/completions` is also \
`/api/v1/chat/completions`); this document lists each once. Errors use OpenAI's shape \
(`{\"error\": {\"code\", \"message\", \"type\", \"param\", \"metadata\"}}`), except on \
`/v1/messages`, which answers in Anthropic's. `/health`, `/ready` and `/metrics` are at the \
root only. Stripe's webhook (`/api/v1/stripe/webhook`, called by Stripe with its signature) and \
the dashboard's pages are not part of this document.",
        license(name = "Apache-2.0", identifier = "Apache-2.0"),
    ),
    paths(
        routes::chat::chat_completions,
        routes::chat::completions,
        routes::embeddings::embeddings,
        routes::responses::responses,
        routes::responses::input_tokens,
        routes::responses::retrieve,
        routes::responses::delete,
        routes::responses::cancel,
        routes::responses::input_items,
        routes::messages::messages,
        routes::messages::count_tokens,
        routes::models::list,
        routes::models::get_encoded,
        routes::models::get,
        routes::endpoints::list,
        routes::account::credits,
        routes::account::key,
        routes::account::generation,
        routes::keys::list,
        routes::keys::create,
        routes::keys::get,
        routes::keys::update,
        routes::keys::delete,
        routes::activity::activity,
        routes::activity::logs,
        routes::members::settings,
        routes::members::update_settings,
        routes::members::list,
        routes::members::change_role,
        routes::members::remove,
        routes::members::leave,
        routes::members::transfer,
        routes::members::invitations,
        routes::members::invite,
        routes::members::revoke,
        routes::members::audit,
        routes::session::sign_up,
        routes::session::verify,
        routes::session::resend,
        routes::session::sign_in,
        routes::session::sign_out,
        routes::session::sign_out_all,
        routes::session::change_password,
        routes::session::forgot,
        routes::session::reset,
        routes::session::me,
        routes::session::switch_account,
        routes::session::create_account,
        routes::session::accept_invitation,
        routes::stripe::create_checkout,
        routes::alerts::get_alerts,
        routes::alerts::patch_alerts,
        routes::alerts::post_webhook_secret,
        routes::alerts::get_auto_topup,
        routes::alerts::patch_auto_topup,
        routes::alerts::post_card,
        routes::session::operator_sign_in,
        routes::operator::accounts,
        routes::operator::account,
        routes::operator::grant,
        routes::operator::reverse,
        routes::operator::freeze,
        routes::operator::unfreeze,
        routes::operator::audit,
        routes::admin::reload_catalog,
        routes::ops::health,
        routes::ops::ready,
        routes::ops::metrics,
        description,
    ),
    components(schemas(schemas::ErrorResponse, schemas::AnthropicErrorResponse)),
    modifiers(&Finish),
    tags(
        (name = "Chat", description = "OpenAI's Chat Completions and the legacy Completions API."),
        (name = "Embeddings", description = "OpenAI's Embeddings API."),
        (name = "Responses", description = "OpenAI's Responses API, stateless: nothing is stored."),
        (name = "Messages", description = "Anthropic's Messages API, for every model; errors in Anthropic's shape."),
        (name = "Models", description = "The catalog: models, their prices and endpoints. No key needed."),
        (name = "Usage", description = "Credits, the calling key, one request's record, activity and logs."),
        (name = "Keys", description = "OpenRouter's key management API."),
        (name = "Account", description = "Settings, members, invitations and the audit log."),
        (name = "Sign-in", description = "Users, sessions and passwords (the dashboard's API)."),
        (name = "Credits", description = "Buying credits with Stripe Checkout: the fee ($0.35 + 5% by default) is added to the amount."),
        (name = "Alerts", description = "Low-balance and key-spend alerts by email and signed webhook, and auto top-up with a saved card."),
        (name = "Operator", description = "For the people running the platform: accounts, grants and reversals, freezes, the audit log (an operator's session), and the catalog reload (the admin token)."),
        (name = "Operations", description = "Health, readiness and Prometheus metrics, for load balancers and monitoring."),
        (name = "Description", description = "This document."),
    ),
)]
pub struct ApiDoc;

/// `GET /openapi.json`: this document.
#[utoipa::path(
    get,
    path = "/openapi.json",
    tag = "Description",
    summary = "The OpenAPI 3.1 document",
    description = "This document, generated from the gateway's code. Also at `/v1/openapi.json` and `/api/v1/openapi.json`; rendered for people at `/docs/api`.",
    responses((status = 200, description = "The document", content_type = "application/json", body = Object)),
)]
pub async fn description(state: web::Data<AppState>) -> HttpResponse {
    HttpResponse::Ok()
        .insert_header(("Cache-Control", "no-cache"))
        .json(localized(&state))
}

/// The document as generated (examples name `EXAMPLE_CHAT_MODEL`).
pub fn document() -> &'static Value {
    static DOC: OnceLock<Value> = OnceLock::new();
    DOC.get_or_init(|| serde_json::to_value(ApiDoc::openapi()).unwrap_or(Value::Null))
}

/// The document with its examples naming models this gateway serves, so that trying an
/// example works.
pub fn localized(state: &AppState) -> Value {
    let catalog = state.catalog();
    let first = |kind: infron_router::catalog::ModelKind| {
        catalog
            .models
            .iter()
            .find(|m| m.kind == kind)
            .map(|m| m.id.clone())
    };
    let chat = first(infron_router::catalog::ModelKind::Chat);
    let embedding = first(infron_router::catalog::ModelKind::Embedding);
    let mut doc = document().clone();
    replace_models(&mut doc, chat.as_deref(), embedding.as_deref());
    doc
}

fn replace_models(v: &mut Value, chat: Option<&str>, embedding: Option<&str>) {
    match v {
        Value::Object(o) => {
            for (k, child) in o.iter_mut() {
                if k == "model" {
                    if let Value::String(s) = child {
                        match (s.as_str(), chat, embedding) {
                            (EXAMPLE_CHAT_MODEL, Some(c), _) => *s = c.to_string(),
                            (EXAMPLE_EMBEDDING_MODEL, _, Some(e)) => *s = e.to_string(),
                            _ => {}
                        }
                        continue;
                    }
                }
                replace_models(child, chat, embedding);
            }
        }
        Value::Array(a) => a
            .iter_mut()
            .for_each(|c| replace_models(c, chat, embedding)),
        _ => {}
    }
}

/// Security schemes, and every operation's error answers by the kind of route it is.
struct Finish;

/// The error answers of each kind of route.
const MODEL_ERRORS: &[u16] = &[400, 401, 402, 403, 404, 408, 413, 429, 502, 503];
const COUNT_ERRORS: &[u16] = &[400, 401, 403, 404, 413, 429, 503];
const CATALOG_ERRORS: &[u16] = &[400, 404];
const TENANT_ERRORS: &[u16] = &[400, 401, 403, 404, 409, 413, 429, 503];

fn error_description(status: u16) -> &'static str {
    match status {
        400 => "Invalid request: `param` names the field at fault",
        401 => "Missing, unknown, disabled or expired key, or no session",
        402 => "Not enough credits, or the key's spending limit is reached",
        403 => "Not allowed: a management key on a model route, a frozen account, a role that may not do this, a session change without its CSRF token",
        404 => "Unknown model or id, or no endpoint can serve the request",
        408 => "The request's deadline passed",
        409 => "Conflict with the current state",
        413 => "The body is larger than the limit",
        429 => "A rate limit; `Retry-After` says when to retry",
        502 => "Every provider tried failed",
        503 => "Postgres or Redis is unavailable, or the gateway is shutting down",
        _ => "Error",
    }
}

impl Modify for Finish {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("sk-inf-v1-…")
                    .description(Some(
                        "An API key: an inference key for model routes, any key (or a management key) for the account's routes.",
                    ))
                    .build(),
            ),
        );
        components.add_security_scheme(
            "admin_token",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some("The operator's `INFRON_ADMIN_TOKEN`."))
                    .build(),
            ),
        );
        components.add_security_scheme(
            "x_api_key",
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::with_description(
                "x-api-key",
                "The same key in Anthropic's header, as the anthropic SDKs send it.",
            ))),
        );
        components.add_security_scheme(
            "session",
            SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::with_description(
                "infron_session",
                "A signed-in user's session cookie (`__Host-infron_session` over HTTPS). Changes also need `Origin` and the `X-CSRF-Token` header.",
            ))),
        );
        for (path, item) in openapi.paths.paths.iter_mut() {
            let ops = [
                item.get.as_mut(),
                item.post.as_mut(),
                item.put.as_mut(),
                item.patch.as_mut(),
                item.delete.as_mut(),
            ];
            for op in ops.into_iter().flatten() {
                add_errors(path, op);
            }
        }
    }
}

fn add_errors(path: &str, op: &mut Operation) {
    let tag = op
        .tags
        .as_ref()
        .and_then(|t| t.first())
        .map(String::as_str)
        .unwrap_or("");
    let (statuses, schema) = match tag {
        "Chat" | "Embeddings" => (MODEL_ERRORS, "ErrorResponse"),
        "Responses" if path.ends_with("/input_tokens") => (COUNT_ERRORS, "ErrorResponse"),
        "Responses" if path.contains("{id}") => (&[401, 403, 404, 429, 503][..], "ErrorResponse"),
        "Responses" => (MODEL_ERRORS, "ErrorResponse"),
        "Messages" if path.ends_with("/count_tokens") => (COUNT_ERRORS, "AnthropicErrorResponse"),
        "Messages" => (MODEL_ERRORS, "AnthropicErrorResponse"),
        "Models" => (CATALOG_ERRORS, "ErrorResponse"),
        "Description" | "Operations" => (&[][..], "ErrorResponse"),
        "Operator" if path.contains("/admin/") => (&[400, 401, 403, 404][..], "ErrorResponse"),
        _ => (TENANT_ERRORS, "ErrorResponse"),
    };
    for status in statuses {
        let key = status.to_string();
        if op.responses.responses.contains_key(&key) {
            continue;
        }
        let response = ResponseBuilder::new()
            .description(error_description(*status))
            .content(
                "application/json",
                ContentBuilder::new()
                    .schema(Some(Ref::from_schema_name(schema)))
                    .build(),
            )
            .build();
        op.responses.responses.insert(key, response.into());
    }
}

/// `GET /openapi.json` and the prefixed copies.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/openapi.json", web::get().to(description))
        .route("/docs/api", web::get().to(reference::page));
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    /// Every `$ref` names a schema the document defines, and every operation has a tag, a
    /// summary and a success answer.
    #[test]
    fn the_document_is_complete() {
        let doc = document();
        assert_eq!(doc["openapi"], "3.1.0");
        fn refs<'a>(v: &'a Value, out: &mut Vec<&'a str>) {
            match v {
                Value::Object(o) => {
                    if let Some(Value::String(r)) = o.get("$ref") {
                        out.push(r);
                    }
                    o.values().for_each(|c| refs(c, out));
                }
                Value::Array(a) => a.iter().for_each(|c| refs(c, out)),
                _ => {}
            }
        }
        let mut all = Vec::new();
        refs(doc, &mut all);
        assert!(!all.is_empty());
        for r in all {
            let name = r.strip_prefix("#/components/schemas/").unwrap();
            assert!(
                doc["components"]["schemas"][name].is_object(),
                "dangling {r}"
            );
        }
        for (path, item) in doc["paths"].as_object().unwrap() {
            for (method, op) in item.as_object().unwrap() {
                assert!(op["tags"][0].is_string(), "{method} {path}: no tag");
                assert!(op["summary"].is_string(), "{method} {path}: no summary");
                let statuses: Vec<&String> = op["responses"].as_object().unwrap().keys().collect();
                assert!(
                    statuses.iter().any(|s| s.starts_with('2'))
                        || path.starts_with("/v1/responses/{id}"),
                    "{method} {path}: no success answer"
                );
            }
        }
    }

    /// The chat request's schema comes from `ChatRequest`: its fields, bounds and the gateway's
    /// routing fields, without the pass-through map.
    #[test]
    fn the_chat_request_schema_is_derived_from_the_type() {
        let schemas = &document()["components"]["schemas"];
        let text = schemas["ChatRequest"].to_string();
        assert!(text.contains("\"messages\""));
        assert!(
            text.contains("#/components/schemas/GatewayOptions"),
            "{text}"
        );
        assert!(!text.contains("\"extra\""), "{text}");
        assert!(!text.contains("\"gateway\""), "{text}");
        let gateway = schemas["GatewayOptions"].to_string();
        assert!(
            gateway.contains("#/components/schemas/ProviderPreferences"),
            "{gateway}"
        );
        assert_eq!(
            schemas["ProviderPreferences"]["additionalProperties"],
            false
        );
    }
}
