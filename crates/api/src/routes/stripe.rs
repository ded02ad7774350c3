//! Stripe top-ups over HTTP: `POST /api/v1/credits/checkout` starts a Checkout Session for an
//! API key's account; `POST /api/v1/stripe/webhook` takes Stripe's signed events.

use actix_web::{web, HttpRequest, HttpResponse};
use infron_billing::topups::{
    self, webhook, CheckoutConfig, SignatureError, StripeCheckout, TopupError, WebhookVerifier,
};
use infron_store::topups::NewTopupSession;
use serde::Deserialize;
use serde_json::json;
use serde_json::value::RawValue;

use super::body;
use super::usage::UsdNumber;
use crate::error::ApiError;
use crate::settings::StripeSettings;
use crate::state::AppState;

/// Routes of the `/api/v1` scope.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/credits/checkout", web::post().to(create_checkout))
        .route("/stripe/webhook", web::post().to(receive_webhook));
}

/// Builds the Stripe client and the webhook verifier from settings; each is None while its
/// settings are absent.
pub fn build(
    settings: &StripeSettings,
) -> Result<(Option<StripeCheckout>, Option<WebhookVerifier>), TopupError> {
    let checkout = match (&settings.secret_key, &settings.checkout) {
        (Some(key), Some(config)) => Some(StripeCheckout::new(
            key,
            &settings.api_base,
            settings.request_timeout,
            CheckoutConfig::clone(config),
        )?),
        _ => None,
    };
    let webhook = (!settings.webhook_secrets.is_empty()).then(|| {
        WebhookVerifier::new(settings.webhook_secrets.clone(), settings.webhook_tolerance)
    });
    Ok((checkout, webhook))
}

impl From<TopupError> for ApiError {
    fn from(e: TopupError) -> Self {
        match e {
            TopupError::InvalidAmount(message) => ApiError::invalid("amount", message),
            TopupError::Signature(s) => ApiError::invalid("Stripe-Signature", s.to_string()),
            TopupError::Payload(m) => ApiError::invalid("body", m),
            TopupError::Stripe(detail) => {
                tracing::error!(detail = %detail, "Stripe checkout session failed");
                ApiError::Unavailable(
                    "the payment provider could not start a checkout; try again later".into(),
                )
            }
            TopupError::Billing(infron_billing::BillingError::AmountOutOfRange(m)) => {
                ApiError::invalid("amount", m)
            }
            TopupError::Billing(b) => b.into(),
            TopupError::Store(s) => s.into(),
        }
    }
}

#[derive(Deserialize)]
struct CheckoutBody {
    /// Kept as written so the amount is read exactly, from a number or a string.
    amount: Option<Box<RawValue>>,
}

#[utoipa::path(
    post, path = "/api/v1/credits/checkout", tag = "Credits",
    summary = "Buy credits with Stripe Checkout",
    description = "Starts a Stripe Checkout Session for `amount` USD of credits plus the fee; the account is credited when Stripe's signed webhook reports the payment.",
    request_body(content = crate::openapi::schemas::CheckoutBody, content_type = "application/json"),
    responses((status = 200, description = "The session to send the buyer to", body = crate::openapi::schemas::CheckoutResponse)),
    security(("bearer" = [])),
)]
pub async fn create_checkout(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let caller = state.auth.authenticate(&req).await?;
    let bytes = body::read(&req, payload, state.settings.max_body_bytes).await?;
    let parsed: CheckoutBody = body::parse_json(&bytes)?;
    let raw = parsed
        .amount
        .ok_or_else(|| ApiError::invalid("amount", "amount (USD of credits to buy) is required"))?;
    let amount = topups::parse_amount(raw.get())?;
    let (session, quote) = start_checkout(&state, caller.account_id, amount).await?;
    Ok(HttpResponse::Ok().json(json!({
        "id": session.id,
        "url": session.url,
        "credits": UsdNumber(quote.credits),
        "fee": UsdNumber(quote.fee),
        "total": UsdNumber(quote.total),
        "currency": "usd",
    })))
}

/// What buying `amount` USD of credits costs, with the fee schedule and limits in effect.
pub fn quote(state: &AppState, amount: rust_decimal::Decimal) -> Result<topups::Quote, ApiError> {
    Ok(topups::quote(
        amount,
        &state.settings.stripe.topup_limits,
        &state.settings.fees,
    )?)
}

/// Starts a Stripe Checkout Session buying `amount` USD of credits for `account_id` and
/// records it; the signed webhook credits the account when the payment completes.
pub async fn start_checkout(
    state: &AppState,
    account_id: uuid::Uuid,
    amount: rust_decimal::Decimal,
) -> Result<(topups::CreatedSession, topups::Quote), ApiError> {
    let checkout = state.stripe_checkout.as_ref().ok_or_else(|| {
        ApiError::Unavailable(
            "top-ups are not configured on this server (STRIPE_SECRET_KEY is not set)".into(),
        )
    })?;
    let quote = quote(state, amount)?;
    let session = checkout.create_session(account_id, &quote).await?;
    infron_store::topups::insert_session(
        &state.pg,
        &NewTopupSession {
            id: &session.id,
            account_id,
            credits_cents: quote.credits_cents,
            fee_cents: quote.fee_cents,
        },
    )
    .await?;
    tracing::info!(account = %account_id, session = %session.id, credits_cents = quote.credits_cents, "checkout session created");
    Ok((session, quote))
}

async fn receive_webhook(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let verifier = state.stripe_webhook.as_ref().ok_or_else(|| {
        ApiError::Unavailable(
            "Stripe webhooks are not configured on this server (STRIPE_WEBHOOK_SECRETS is not set)"
                .into(),
        )
    })?;
    let bytes = body::read(&req, payload, state.settings.max_body_bytes).await?;
    let header = match req.headers().get("stripe-signature") {
        Some(v) => Some(
            v.to_str()
                .map_err(|_| TopupError::Signature(SignatureError::Malformed))?,
        ),
        None => None,
    };
    verifier
        .verify(header, &bytes, chrono::Utc::now().timestamp())
        .map_err(TopupError::Signature)?;
    let outcome = webhook::process(&state.pg, state.ledger.state(), &bytes).await?;
    if !outcome.posted.is_empty() {
        tracing::info!(event = %outcome.event_id, posted = ?outcome.posted, "Stripe event posted");
    }
    if let Some((account, pm)) = outcome.saved_card.clone() {
        tracing::info!(%account, "card saved for auto top-up");
        // The brand and last four digits, for the page; best effort, after the answer.
        let state = state.clone();
        tokio::spawn(async move {
            let Some(stripe) = state.stripe_checkout.as_ref() else {
                return;
            };
            match stripe.card_details(&pm).await {
                Ok(Some((brand, last4))) => {
                    if let Err(error) = infron_store::auto_topup::set_card_details(
                        &state.pg, account, &pm, &brand, &last4,
                    )
                    .await
                    {
                        tracing::warn!(%error, "could not record the saved card's details");
                    }
                }
                Ok(None) => {}
                Err(error) => tracing::warn!(%error, "could not read the saved card's details"),
            }
        });
    }
    Ok(HttpResponse::Ok().json(json!({
        "received": true,
        "event": outcome.event_id,
        "duplicate": outcome.duplicate,
        "ignored": outcome.ignored,
        "posted": outcome.posted,
    })))
}
