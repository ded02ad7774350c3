//! Auto top-up: buy a chosen amount of credits with a saved card when the balance falls below
//! a threshold.
//!
//! - The card is saved through a Checkout Session in **setup** mode for the account's Stripe
//!   customer; Stripe's signed `setup_intent.succeeded` event stores the payment method
//!   (`webhook`).
//! - [`fire_triggers`] (a background task on every instance) disarms, in one `UPDATE`, every
//!   enabled auto top-up whose ledger balance is below its threshold and records one trigger
//!   row per crossing; the row lock makes a crossing fire once whichever instance sees it. An
//!   auto top-up is armed again only when its balance is back at or above the threshold.
//! - [`process_pending`] creates each trigger's PaymentIntent (`off_session=true`,
//!   `confirm=true`) with an Idempotency-Key derived from the trigger id, so retries and a
//!   second instance get the same PaymentIntent back from Stripe, never a second payment.
//! - Credits arrive only with the signed `payment_intent.succeeded` event, through the same
//!   posting path as Checkout top-ups (`topup:{payment intent}`, same fee). A refused card
//!   (Stripe's error on create, or `payment_intent.payment_failed`) fails the trigger and turns
//!   auto top-up off, with the reason, until the user turns it on again.

use std::collections::HashMap;
use std::str::FromStr;

use infron_store::auto_topup as auto_store;
use infron_store::topups::{self as topup_store, NewTopupSession};
use infron_store::{PgPool, StoreError};
use serde::Serialize;
use stripe::{IdempotencyKey, RequestStrategy, StripeError, StripeRequest};
use stripe_checkout::checkout_session::{
    CreateCheckoutSession, CreateCheckoutSessionAllowedPaymentMethodTypes as MethodType,
    CreateCheckoutSessionSetupIntentData,
};
use stripe_checkout::CheckoutSessionMode;
use stripe_client_core::{RequestBuilder, StripeMethod};
use uuid::Uuid;

use super::events::{AUTO_TOPUP_PURPOSE, AUTO_TOPUP_TRIGGER};
use super::{to_cents, CreatedSession, StripeCheckout, TopupError};
use crate::fees::FeeSchedule;
use crate::Usd;

#[derive(miniserde::Deserialize)]
struct IdReply {
    id: String,
}

#[derive(miniserde::Deserialize)]
struct SessionReply {
    id: String,
    url: Option<String>,
}

#[derive(miniserde::Deserialize)]
struct PaymentIntentReply {
    id: String,
    status: String,
}

#[derive(miniserde::Deserialize)]
struct PaymentMethodReply {
    card: Option<CardReply>,
}

#[derive(miniserde::Deserialize)]
struct CardReply {
    brand: String,
    last4: String,
}

#[derive(Serialize)]
struct CustomerParams {
    description: String,
    metadata: HashMap<&'static str, String>,
}

#[derive(Serialize)]
struct PaymentIntentParams<'a> {
    amount: i64,
    currency: &'static str,
    customer: &'a str,
    payment_method: &'a str,
    payment_method_types: Vec<&'static str>,
    off_session: bool,
    confirm: bool,
    description: String,
    metadata: HashMap<&'static str, String>,
}

/// What Stripe said to an off-session payment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PaymentAttempt {
    /// The PaymentIntent exists (its status as Stripe reported it); the webhook settles it.
    Created { id: String, status: String },
    /// Stripe refused it (a declined card, an invalid request): do not retry.
    Refused(String),
    /// Stripe could not be reached or failed: retry with the same Idempotency-Key.
    Unreachable(String),
}

fn key(text: String) -> Result<IdempotencyKey, TopupError> {
    IdempotencyKey::new(text).map_err(|e| TopupError::Stripe(e.to_string()))
}

impl StripeCheckout {
    /// Creates the Stripe customer that holds an account's saved card. The Idempotency-Key is
    /// the account's, so two concurrent set-ups create one customer.
    pub async fn create_customer(&self, account: Uuid) -> Result<String, TopupError> {
        let params = CustomerParams {
            description: format!("Infron account {account}"),
            metadata: HashMap::from([("account_id", account.to_string())]),
        };
        let reply: IdReply = RequestBuilder::new(StripeMethod::Post, "/customers")
            .form(&params)
            .customize::<IdReply>()
            .request_strategy(RequestStrategy::Idempotent(key(format!(
                "infron-customer-{account}"
            ))?))
            .send(self.client())
            .await
            .map_err(|e| TopupError::Stripe(e.to_string()))?;
        Ok(reply.id)
    }

    /// A Checkout Session in setup mode: the customer enters a card, Stripe saves it to
    /// `customer` for later off-session payments, and `setup_intent.succeeded` tells us.
    pub async fn create_setup_session(
        &self,
        account: Uuid,
        customer: &str,
        success_url: &str,
        cancel_url: &str,
    ) -> Result<CreatedSession, TopupError> {
        let metadata: HashMap<String, String> = HashMap::from([
            ("account_id".to_string(), account.to_string()),
            ("purpose".to_string(), AUTO_TOPUP_PURPOSE.to_string()),
        ]);
        let mut setup = CreateCheckoutSessionSetupIntentData::new();
        setup.metadata = Some(metadata.clone());
        setup.description = Some(format!("Infron auto top-up for account {account}"));
        let methods: Vec<MethodType> = MethodType::from_str("card").into_iter().collect();
        let reply: SessionReply = CreateCheckoutSession::new()
            .mode(CheckoutSessionMode::Setup)
            .currency(stripe_types::Currency::USD)
            .customer(customer.to_string())
            .metadata(metadata)
            .client_reference_id(account.to_string())
            .setup_intent_data(setup)
            .allowed_payment_method_types(methods)
            .success_url(success_url.to_string())
            .cancel_url(cancel_url.to_string())
            .build()
            .customize::<SessionReply>()
            .request_strategy(RequestStrategy::Idempotent(key(format!(
                "infron-setup-{}",
                Uuid::now_v7()
            ))?))
            .send(self.client())
            .await
            .map_err(|e| TopupError::Stripe(e.to_string()))?;
        let url = reply
            .url
            .ok_or_else(|| TopupError::Stripe(format!("session {} has no url", reply.id)))?;
        Ok(CreatedSession { id: reply.id, url })
    }

    /// The brand and last four digits of a saved card (None for other payment methods).
    pub async fn card_details(
        &self,
        payment_method: &str,
    ) -> Result<Option<(String, String)>, TopupError> {
        let reply: PaymentMethodReply = RequestBuilder::new(
            StripeMethod::Get,
            format!("/payment_methods/{payment_method}"),
        )
        .customize::<PaymentMethodReply>()
        .send(self.client())
        .await
        .map_err(|e| TopupError::Stripe(e.to_string()))?;
        Ok(reply.card.map(|c| (c.brand, c.last4)))
    }

    /// Charges the saved card for a trigger: credits plus fee, off-session, confirmed at once.
    /// The Idempotency-Key is the trigger's, so however often this is called for one trigger,
    /// Stripe makes one PaymentIntent.
    pub async fn pay_off_session(
        &self,
        trigger: &auto_store::TriggerRow,
        customer: &str,
        payment_method: &str,
    ) -> PaymentAttempt {
        let params = PaymentIntentParams {
            amount: trigger.credits_cents + trigger.fee_cents,
            currency: "usd",
            customer,
            payment_method,
            payment_method_types: vec!["card"],
            off_session: true,
            confirm: true,
            description: format!(
                "Infron auto top-up for account {} (${} of credits)",
                trigger.account_id,
                Usd::from_cents(trigger.credits_cents)
            ),
            metadata: HashMap::from([
                ("account_id", trigger.account_id.to_string()),
                ("credits_cents", trigger.credits_cents.to_string()),
                ("fee_cents", trigger.fee_cents.to_string()),
                (AUTO_TOPUP_TRIGGER, trigger.id.to_string()),
            ]),
        };
        let strategy = match key(idempotency_key(trigger.id)) {
            Ok(k) => RequestStrategy::Idempotent(k),
            Err(e) => return PaymentAttempt::Refused(e.to_string()),
        };
        let result = RequestBuilder::new(StripeMethod::Post, "/payment_intents")
            .form(&params)
            .customize::<PaymentIntentReply>()
            .request_strategy(strategy)
            .send(self.client())
            .await;
        match result {
            Ok(pi) => PaymentAttempt::Created {
                id: pi.id,
                status: pi.status,
            },
            Err(StripeError::Stripe(e, status))
                if (400..500).contains(&status) && !matches!(status, 409 | 429) =>
            {
                let message = e
                    .message
                    .clone()
                    .unwrap_or_else(|| "Stripe refused the payment".to_string());
                PaymentAttempt::Refused(match e.decline_code.clone() {
                    Some(code) => format!("{message} ({code})"),
                    None => message,
                })
            }
            Err(other) => PaymentAttempt::Unreachable(other.to_string()),
        }
    }
}

/// The Idempotency-Key of a trigger's PaymentIntent.
pub fn idempotency_key(trigger: Uuid) -> String {
    format!("infron-auto-topup-{trigger}")
}

/// Fires every auto top-up whose balance crossed below its threshold (one trigger row per
/// crossing, with the credits and fee it will buy), then re-arms those whose balance is back
/// above. Returns the triggers fired.
pub async fn fire_triggers(pg: &PgPool, fees: &FeeSchedule) -> Result<Vec<Uuid>, TopupError> {
    let mut tx = pg.begin().await.map_err(StoreError::from)?;
    let fired = auto_store::fire(&mut tx).await?;
    let mut ids = Vec::with_capacity(fired.len());
    for f in &fired {
        let credits = Usd::from_cents(f.amount_cents);
        let fee_cents = to_cents(fees.fee(credits))?;
        let id = Uuid::now_v7();
        auto_store::insert_trigger(
            &mut tx,
            id,
            f.account_id,
            f.trigger_seq,
            f.amount_cents,
            fee_cents,
        )
        .await?;
        tracing::info!(account = %f.account_id, trigger = %id, credits_cents = f.amount_cents, "auto top-up triggered");
        ids.push(id);
    }
    tx.commit().await.map_err(StoreError::from)?;
    auto_store::rearm(pg).await?;
    Ok(ids)
}

/// Attempts to reach Stripe for one trigger (about 40 minutes of backoff) before it fails.
pub const MAX_ATTEMPTS: i32 = 10;

/// Creates the PaymentIntents of due triggers. Returns how many were attempted.
pub async fn process_pending(pg: &PgPool, stripe: &StripeCheckout) -> Result<usize, TopupError> {
    let triggers = auto_store::claim_pending(pg, 60, 20).await?;
    for t in &triggers {
        let settings = auto_store::get(pg, t.account_id).await?;
        let card = settings.as_ref().and_then(|s| {
            Some((
                s.enabled,
                s.stripe_customer.clone()?,
                s.payment_method.clone()?,
            ))
        });
        let Some((enabled, customer, pm)) = card else {
            fail(pg, t.id, "no card is saved for auto top-up").await?;
            continue;
        };
        if !enabled {
            fail(pg, t.id, "auto top-up was turned off before the payment").await?;
            continue;
        }
        match stripe.pay_off_session(t, &customer, &pm).await {
            PaymentAttempt::Created { id, status } => {
                let mut tx = pg.begin().await.map_err(StoreError::from)?;
                auto_store::mark_created(&mut tx, t.id, &id).await?;
                topup_store::adopt_session(
                    &mut tx,
                    &NewTopupSession {
                        id: &id,
                        account_id: t.account_id,
                        credits_cents: t.credits_cents,
                        fee_cents: t.fee_cents,
                    },
                )
                .await?;
                if let Some(row) = topup_store::session_for_update(&mut tx, &id).await? {
                    if row.payment_intent.is_none() {
                        topup_store::set_payment_intent(&mut tx, &id, &id).await?;
                    }
                }
                let refused = match status.as_str() {
                    "requires_action" => Some("the card needs the cardholder to authenticate the payment; save a card again or pay on the Credits page"),
                    "requires_payment_method" => Some("the card was declined"),
                    "canceled" => Some("the payment was canceled"),
                    _ => None,
                };
                if let Some(reason) = refused {
                    auto_store::mark_failed(&mut tx, t.id, Some(&id), reason).await?;
                }
                tx.commit().await.map_err(StoreError::from)?;
                tracing::info!(account = %t.account_id, trigger = %t.id, payment_intent = %id, %status, "auto top-up payment created");
            }
            PaymentAttempt::Refused(reason) => {
                tracing::warn!(account = %t.account_id, trigger = %t.id, %reason, "auto top-up payment refused; auto top-up turned off");
                fail(pg, t.id, &reason).await?;
            }
            PaymentAttempt::Unreachable(error) if t.attempts >= MAX_ATTEMPTS => {
                tracing::warn!(account = %t.account_id, trigger = %t.id, %error, "auto top-up payment not created after every attempt; auto top-up turned off");
                fail(
                    pg,
                    t.id,
                    &format!("the payment could not be made: Stripe could not be reached, or its answer read, in {MAX_ATTEMPTS} attempts"),
                )
                .await?;
            }
            PaymentAttempt::Unreachable(error) => {
                let secs = 5_i64.saturating_mul(1 << t.attempts.clamp(0, 8));
                tracing::warn!(trigger = %t.id, %error, retry_secs = secs, "auto top-up payment not created; will retry");
                auto_store::retry_later(pg, t.id, secs, &error).await?;
            }
        }
    }
    Ok(triggers.len())
}

async fn fail(pg: &PgPool, trigger: Uuid, reason: &str) -> Result<(), TopupError> {
    let mut tx = pg.begin().await.map_err(StoreError::from)?;
    auto_store::mark_failed(&mut tx, trigger, None, reason).await?;
    tx.commit().await.map_err(StoreError::from)?;
    Ok(())
}
