//! Alerts and auto top-up settings over the management API (the dashboard's Settings and
//! Credits pages call the same functions): everyone who may read the account's settings reads
//! them; owners and admins change them.
//!
//! - `GET/PATCH /api/v1/account/alerts`, `POST /api/v1/account/alerts/webhook-secret`
//! - `GET/PATCH /api/v1/account/auto-topup`, `POST /api/v1/account/auto-topup/card`

use actix_web::{web, HttpRequest, HttpResponse};
use infron_accounts::Change;
use infron_billing::topups::{self, CreatedSession};
use infron_billing::Usd;
use infron_store::alerts::{self as alert_store, AlertChoice};
use infron_store::auto_topup as auto_store;
use rust_decimal::Decimal;
use serde_json::{json, Map, Value};

use super::session::json;
use super::usage::UsdNumber;
use crate::error::ApiError;
use crate::principal::{audit_ctx, principal, Principal};
use crate::state::AppState;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/account/alerts", web::get().to(get_alerts))
        .route("/account/alerts", web::patch().to(patch_alerts))
        .route(
            "/account/alerts/webhook-secret",
            web::post().to(post_webhook_secret),
        )
        .route("/account/auto-topup", web::get().to(get_auto_topup))
        .route("/account/auto-topup", web::patch().to(patch_auto_topup))
        .route("/account/auto-topup/card", web::post().to(post_card));
}

fn money(d: Decimal) -> UsdNumber {
    UsdNumber(Usd::rounded(d))
}

fn cents(c: i64) -> UsdNumber {
    UsdNumber(Usd::from_cents(c))
}

/// A whole-cents USD amount from a JSON number or decimal string.
fn amount_field(
    body: &Map<String, Value>,
    name: &'static str,
) -> Result<Option<Decimal>, ApiError> {
    match body.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(v @ (Value::Number(_) | Value::String(_))) => {
            let d = topups::parse_amount(&v.to_string())
                .map_err(|_| ApiError::invalid(name, format!("{name} must be a USD amount")))?;
            if d <= Decimal::ZERO || d.normalize().scale() > 2 || d > Decimal::from(1_000_000) {
                return Err(ApiError::invalid(
                    name,
                    format!("{name} must be more than 0 and at most 1000000 USD, in whole cents"),
                ));
            }
            Ok(Some(d))
        }
        Some(_) => Err(ApiError::invalid(
            name,
            format!("{name} must be a number or a decimal string"),
        )),
    }
}

fn bool_field(body: &Map<String, Value>, name: &'static str) -> Result<Option<bool>, ApiError> {
    match body.get(name) {
        None => Ok(None),
        Some(Value::Bool(b)) => Ok(Some(*b)),
        Some(_) => Err(ApiError::invalid(
            name,
            format!("{name} must be true or false"),
        )),
    }
}

fn object(body: Value, allowed: &[&str]) -> Result<Map<String, Value>, ApiError> {
    let Value::Object(map) = body else {
        return Err(ApiError::invalid("body", "the body must be a JSON object"));
    };
    if let Some(k) = map.keys().find(|k| !allowed.contains(&k.as_str())) {
        return Err(ApiError::invalid(
            "body",
            format!(
                "unknown field '{k}' (expected one of: {})",
                allowed.join(", ")
            ),
        ));
    }
    Ok(map)
}

// -------------------------------------------------------------------------------------- alerts

/// `GET /api/v1/account/alerts`'s answer: the settings and the latest alerts with how each
/// delivery went.
pub async fn alerts_json(state: &AppState, p: &Principal) -> Result<Value, ApiError> {
    p.actor.read_settings()?;
    let account = p.actor.account_id();
    let row = alert_store::get(&state.pg, account).await?;
    let firings = alert_store::recent_firings(&state.pg, account, 20).await?;
    let ids: Vec<_> = firings.iter().map(|f| f.id).collect();
    let deliveries = alert_store::deliveries_of(&state.pg, &ids).await?;
    let recent: Vec<Value> = firings
        .iter()
        .map(|f| {
            json!({
                "id": f.payload["id"],
                "type": f.payload["type"],
                "fired_at": f.fired_at,
                "cleared_at": f.cleared_at,
                "data": f.payload["data"],
                "deliveries": deliveries.iter().filter(|d| d.firing_id == f.id).map(|d| json!({
                    "channel": d.channel,
                    "target": d.target,
                    "attempts": d.attempts,
                    "delivered_at": d.delivered_at,
                    "failed_at": d.failed_at,
                    "last_error": d.last_error,
                })).collect::<Vec<_>>(),
            })
        })
        .collect();
    Ok(json!({
        "low_balance_threshold": row.as_ref().and_then(|r| r.low_balance_threshold).map(money),
        "key_spend": row.as_ref().is_some_and(|r| r.key_spend),
        "email": row.as_ref().is_none_or(|r| r.email),
        "webhook_url": row.as_ref().and_then(|r| r.webhook_url.clone()),
        "webhook_secret_set": row.as_ref().is_some_and(|r| r.webhook_secret_nonce.is_some()),
        "signature_header": crate::alerts::SIGNATURE_HEADER,
        "recent": recent,
    }))
}

#[utoipa::path(
    get, path = "/api/v1/account/alerts", tag = "Alerts",
    summary = "Alert settings and the latest alerts",
    description = "Low-balance and key-spend alerts (80% and 100% of a key's limit), by email and by a signed webhook; the latest alerts with each delivery's outcome. See docs/alerts.md.",
    responses((status = 200, description = "The settings", body = crate::openapi::schemas::AlertSettingsResponse)), security(("bearer" = []), ("session" = [])),
)]
pub async fn get_alerts(
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let p = principal(&req, &state).await?;
    Ok(HttpResponse::Ok().json(json!({ "data": alerts_json(&state, &p).await? })))
}

/// Changes the alert settings as `p` asks. Returns the settings and, when this change set the
/// first webhook URL, the new signing secret (shown once).
pub async fn change_alerts(
    req: &HttpRequest,
    state: &AppState,
    p: &Principal,
    body: Value,
) -> Result<(Value, Option<String>), ApiError> {
    let map = object(
        body.clone(),
        &["low_balance_threshold", "key_spend", "email", "webhook_url"],
    )?;
    p.actor.update_settings()?;
    let account = p.actor.account_id();
    let before = alert_store::get(&state.pg, account).await?;
    let threshold = if map.contains_key("low_balance_threshold") {
        amount_field(&map, "low_balance_threshold")?
    } else {
        before.as_ref().and_then(|r| r.low_balance_threshold)
    };
    let webhook_url = match map.get("webhook_url") {
        None => before.as_ref().and_then(|r| r.webhook_url.clone()),
        Some(Value::Null) => None,
        Some(Value::String(s)) if s.trim().is_empty() => None,
        Some(Value::String(s)) => {
            if s.len() > 2000 {
                return Err(ApiError::invalid("webhook_url", "webhook_url is too long"));
            }
            crate::alerts::resolve_webhook_url(s, state.settings.alerts.allow_private_webhooks)
                .await
                .map_err(|e| ApiError::invalid("webhook_url", format!("webhook_url {e}")))?;
            Some(s.trim().to_string())
        }
        Some(_) => {
            return Err(ApiError::invalid(
                "webhook_url",
                "webhook_url must be a string or null",
            ))
        }
    };
    let choice = AlertChoice {
        low_balance_threshold: threshold,
        key_spend: bool_field(&map, "key_spend")?
            .unwrap_or_else(|| before.as_ref().is_some_and(|r| r.key_spend)),
        email: bool_field(&map, "email")?
            .unwrap_or_else(|| before.as_ref().is_none_or(|r| r.email)),
        webhook_url,
    };
    let after = alert_store::set(&state.pg, account, &choice).await?;
    let secret = if after.webhook_url.is_some() && after.webhook_secret_nonce.is_none() {
        Some(new_secret(state, account).await?)
    } else {
        None
    };
    record_change(req, state, p, "alerts.update", json!({ "changed": body })).await;
    Ok((alerts_json(state, p).await?, secret))
}

async fn new_secret(state: &AppState, account: uuid::Uuid) -> Result<String, ApiError> {
    let nonce = crate::alerts::new_nonce();
    alert_store::set_secret_nonce(&state.pg, account, &nonce).await?;
    Ok(crate::alerts::webhook_secret(
        &state.settings.key_secret,
        account,
        &nonce,
    ))
}

#[utoipa::path(
    patch, path = "/api/v1/account/alerts", tag = "Alerts",
    summary = "Change the alert settings (owners and admins)",
    description = "Absent fields keep their value. Setting the first webhook URL answers with its signing secret, shown once.",
    request_body(content = crate::openapi::schemas::AlertsChange, content_type = "application/json"),
    responses((status = 200, description = "The settings", body = crate::openapi::schemas::AlertSettingsResponse)), security(("bearer" = []), ("session" = [])),
)]
pub async fn patch_alerts(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let p = principal(&req, &state).await?;
    let body: Value = json(&req, payload).await?;
    let (mut data, secret) = change_alerts(&req, &state, &p, body).await?;
    if let (Some(s), Some(obj)) = (secret, data.as_object_mut()) {
        obj.insert("webhook_secret".into(), json!(s));
    }
    Ok(HttpResponse::Ok().json(json!({ "data": data })))
}

/// Makes a new webhook signing secret (the old one stops working at once) and returns it; it
/// is not shown again.
pub async fn rotate_webhook_secret(
    req: &HttpRequest,
    state: &AppState,
    p: &Principal,
) -> Result<String, ApiError> {
    p.actor.update_settings()?;
    let account = p.actor.account_id();
    let secret = new_secret(state, account).await?;
    record_change(req, state, p, "alerts.webhook_secret", json!({})).await;
    Ok(secret)
}

#[utoipa::path(
    post, path = "/api/v1/account/alerts/webhook-secret", tag = "Alerts",
    summary = "A new webhook signing secret (owners and admins)",
    description = "The previous secret stops working at once; the new one is shown this once.",
    responses((status = 200, description = "The new secret", body = crate::openapi::schemas::WebhookSecretResponse)), security(("bearer" = []), ("session" = [])),
)]
pub async fn post_webhook_secret(
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let p = principal(&req, &state).await?;
    let secret = rotate_webhook_secret(&req, &state, &p).await?;
    Ok(HttpResponse::Ok().json(json!({ "data": { "webhook_secret": secret } })))
}

// ---------------------------------------------------------------------------------- auto top-up

const DEFAULT_THRESHOLD_CENTS: i64 = 500;
const DEFAULT_AMOUNT_CENTS: i64 = 2000;

/// `GET /api/v1/account/auto-topup`'s answer.
pub async fn auto_topup_json(state: &AppState, p: &Principal) -> Result<Value, ApiError> {
    p.actor.read_settings()?;
    let account = p.actor.account_id();
    let row = auto_store::get(&state.pg, account).await?;
    let triggers = auto_store::recent_triggers(&state.pg, account, 10).await?;
    let amount_cents = row
        .as_ref()
        .map_or(DEFAULT_AMOUNT_CENTS, |r| r.amount_cents);
    let fee = state.settings.fees.fee(Usd::from_cents(amount_cents));
    Ok(json!({
        "enabled": row.as_ref().is_some_and(|r| r.enabled),
        "threshold": cents(row.as_ref().map_or(DEFAULT_THRESHOLD_CENTS, |r| r.threshold_cents)),
        "amount": cents(amount_cents),
        "fee": UsdNumber(fee),
        "total": UsdNumber(Usd::from_cents(amount_cents).checked_add(fee)?),
        "card_saved": row.as_ref().is_some_and(|r| r.payment_method.is_some()),
        "card": row.as_ref().and_then(|r| Some(json!({
            "brand": r.card_brand.clone()?, "last4": r.card_last4.clone()?,
        }))),
        "last_failure": row.as_ref().and_then(|r| r.last_failure.clone()),
        "last_failure_at": row.as_ref().and_then(|r| r.last_failure_at),
        "available": state.stripe_checkout.is_some(),
        "recent": triggers.iter().map(|t| json!({
            "id": t.id,
            "status": t.status,
            "credits": cents(t.credits_cents),
            "fee": cents(t.fee_cents),
            "total": cents(t.credits_cents + t.fee_cents),
            "payment_intent": t.payment_intent,
            "error": t.error,
            "created_at": t.created_at,
        })).collect::<Vec<_>>(),
    }))
}

#[utoipa::path(
    get, path = "/api/v1/account/auto-topup", tag = "Alerts",
    summary = "Auto top-up settings and the latest payments",
    responses((status = 200, description = "The settings", body = crate::openapi::schemas::AutoTopupResponse)), security(("bearer" = []), ("session" = [])),
)]
pub async fn get_auto_topup(
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let p = principal(&req, &state).await?;
    Ok(HttpResponse::Ok().json(json!({ "data": auto_topup_json(&state, &p).await? })))
}

fn whole_cents(d: Decimal, name: &'static str) -> Result<i64, ApiError> {
    let usd = Usd::new(d).map_err(|e| ApiError::invalid(name, e.to_string()))?;
    topups::to_cents(usd).map_err(|e| ApiError::invalid(name, e.to_string()))
}

/// Changes auto top-up as `p` asks: `enabled`, `threshold` and `amount` (USD of credits; the
/// fee is added as for any top-up). Turning it on needs a saved card and clears a failure.
pub async fn change_auto_topup(
    req: &HttpRequest,
    state: &AppState,
    p: &Principal,
    body: Value,
) -> Result<Value, ApiError> {
    let map = object(body.clone(), &["enabled", "threshold", "amount"])?;
    p.actor.update_settings()?;
    let account = p.actor.account_id();
    let before = auto_store::get(&state.pg, account).await?;
    let enabled =
        bool_field(&map, "enabled")?.unwrap_or_else(|| before.as_ref().is_some_and(|r| r.enabled));
    let threshold_cents = match amount_field(&map, "threshold")? {
        Some(d) => whole_cents(d, "threshold")?,
        None if map.get("threshold").is_some_and(Value::is_null) => {
            return Err(ApiError::invalid("threshold", "threshold is required"))
        }
        None => before
            .as_ref()
            .map_or(DEFAULT_THRESHOLD_CENTS, |r| r.threshold_cents),
    };
    let amount_cents = match map.get("amount") {
        None => before
            .as_ref()
            .map_or(DEFAULT_AMOUNT_CENTS, |r| r.amount_cents),
        Some(v) => {
            let d = topups::parse_amount(&v.to_string())
                .map_err(|e| ApiError::invalid("amount", e.to_string()))?;
            super::stripe::quote(state, d)?.credits_cents
        }
    };
    if enabled {
        if state.stripe_checkout.is_none() {
            return Err(ApiError::Unavailable(
                "auto top-up is not available on this server (Stripe is not configured)".into(),
            ));
        }
        if before.as_ref().is_none_or(|r| r.payment_method.is_none()) {
            return Err(ApiError::invalid(
                "enabled",
                "save a card first (POST /api/v1/account/auto-topup/card, or \"Save a card\" on the Credits page)",
            ));
        }
    }
    auto_store::configure(&state.pg, account, enabled, threshold_cents, amount_cents).await?;
    record_change(
        req,
        state,
        p,
        "auto_topup.update",
        json!({ "changed": body }),
    )
    .await;
    auto_topup_json(state, p).await
}

#[utoipa::path(
    patch, path = "/api/v1/account/auto-topup", tag = "Alerts",
    summary = "Change auto top-up (owners and admins)",
    description = "When the balance falls below `threshold`, `amount` of credits is bought with the saved card (the top-up fee added); credited only by Stripe's signed webhook, and stopped after a failed payment until turned on again.",
    request_body(content = crate::openapi::schemas::AutoTopupChange, content_type = "application/json"),
    responses((status = 200, description = "The settings", body = crate::openapi::schemas::AutoTopupResponse)), security(("bearer" = []), ("session" = [])),
)]
pub async fn patch_auto_topup(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let p = principal(&req, &state).await?;
    let body: Value = json(&req, payload).await?;
    let data = change_auto_topup(&req, &state, &p, body).await?;
    Ok(HttpResponse::Ok().json(json!({ "data": data })))
}

/// Starts a Stripe Checkout Session in setup mode that saves a card for auto top-up; the
/// card is stored when Stripe's signed `setup_intent.succeeded` event arrives.
pub async fn start_card_setup(
    req: &HttpRequest,
    state: &AppState,
    p: &Principal,
) -> Result<CreatedSession, ApiError> {
    p.actor.update_settings()?;
    let stripe = state.stripe_checkout.as_ref().ok_or_else(|| {
        ApiError::Unavailable(
            "auto top-up is not available on this server (Stripe is not configured)".into(),
        )
    })?;
    let account = p.actor.account_id();
    let existing = auto_store::get(&state.pg, account)
        .await?
        .and_then(|r| r.stripe_customer);
    let customer = match existing {
        Some(c) => c,
        None => {
            let created = stripe.create_customer(account).await?;
            auto_store::set_customer(&state.pg, account, &created).await?
        }
    };
    let base = state.accounts.config.public_url.trim_end_matches('/');
    let cfg = &state.settings.alerts;
    let success = cfg
        .card_success_url
        .clone()
        .unwrap_or_else(|| format!("{base}/credits?card=saved"));
    let cancel = cfg
        .card_cancel_url
        .clone()
        .unwrap_or_else(|| format!("{base}/credits?card=cancelled"));
    let session = stripe
        .create_setup_session(account, &customer, &success, &cancel)
        .await?;
    record_change(
        req,
        state,
        p,
        "auto_topup.card_setup",
        json!({ "session": session.id }),
    )
    .await;
    Ok(session)
}

#[utoipa::path(
    post, path = "/api/v1/account/auto-topup/card", tag = "Alerts",
    summary = "Save a card for auto top-up (owners and admins)",
    description = "A Stripe Checkout Session in setup mode; the card is saved when Stripe's signed event arrives.",
    responses((status = 200, description = "The session to send the user to", body = crate::openapi::schemas::CardSetupResponse)), security(("bearer" = []), ("session" = [])),
)]
pub async fn post_card(
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let p = principal(&req, &state).await?;
    let session = start_card_setup(&req, &state, &p).await?;
    Ok(HttpResponse::Ok().json(json!({ "data": { "id": session.id, "url": session.url } })))
}

/// Records a change of account `p`'s alert or auto top-up settings in its audit log.
async fn record_change(
    req: &HttpRequest,
    state: &AppState,
    p: &Principal,
    action: &'static str,
    details: Value,
) {
    let ctx = audit_ctx(req, state, p).await;
    let account = p.actor.account_id();
    state
        .accounts
        .record(
            &ctx,
            Change {
                account_id: Some(account),
                action,
                target_kind: "account",
                target_id: account.to_string(),
                details,
            },
        )
        .await;
}
