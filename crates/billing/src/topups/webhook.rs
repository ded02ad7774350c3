//! Applying a verified Stripe event to the ledger exactly once.
//!
//! One database transaction per event: take a lock on the payment the event concerns, record
//! the event id (a replay stops here), record what Stripe reported (session paid, a charge's
//! cumulative refund, a dispute's funds withdrawn or reinstated), then bring the ledger in line
//! with everything recorded for that payment so far. Facts that arrive before the payment is
//! credited (a refund seen before the checkout completion) wait in their tables and are posted
//! when the completion arrives, so any delivery order ends in the same ledger state.
//! After commit, the hot balance in Redis is moved by the same amount.

use chrono::{DateTime, Utc};
use infron_store::hot::HotState;
use infron_store::ledger::{self, NewTransaction};
use infron_store::topups::{
    self as store, DisputeFunds, NewTopupSession, StripeEventRow, TopupSessionRow,
};
use infron_store::{PgPool, StoreError};
use rust_decimal::Decimal;
use sqlx::{Postgres, Transaction};
use uuid::Uuid;

use super::events::{self, PaymentIntentObject, SessionObject, TopupEvent};
use super::posting::{self, PaidTopup};
use super::TopupError;
use crate::Usd;
use infron_store::auto_topup as auto_store;

/// What processing an event did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WebhookOutcome {
    pub event_id: String,
    /// The event id was processed before; nothing changed.
    pub duplicate: bool,
    /// An event type top-ups do not act on, or about an object that is not ours.
    pub ignored: bool,
    /// External ids of the ledger transactions this event posted.
    pub posted: Vec<String>,
    /// A card saved for auto top-up: the account and the payment method.
    pub saved_card: Option<(Uuid, String)>,
}

/// Ledger changes made inside the transaction, for the hot balance after commit.
struct Posted {
    account: Uuid,
    external_ids: Vec<String>,
    /// Change of the tenant's balance (positive: more credits).
    tenant_delta: Decimal,
    version: i64,
}

/// Processes one event whose signature was already verified.
pub async fn process(
    pg: &PgPool,
    hot: &HotState,
    body: &[u8],
) -> Result<WebhookOutcome, TopupError> {
    let event = events::parse_event(body)?;
    let topup_event = TopupEvent::from_event(&event)?;
    let mut outcome = WebhookOutcome {
        event_id: event.id.clone(),
        ..WebhookOutcome::default()
    };
    let Some(lock_key) = lock_key(&topup_event) else {
        outcome.ignored = true;
        return Ok(outcome);
    };

    let mut tx = pg.begin().await.map_err(StoreError::from)?;
    store::lock_payment(&mut tx, &lock_key).await?;
    let created_at = DateTime::<Utc>::from_timestamp(event.created, 0).unwrap_or_else(Utc::now);
    let fresh = store::record_event(
        &mut tx,
        &StripeEventRow {
            id: &event.id,
            kind: &event.kind,
            object_id: topup_event.object_id(),
            livemode: event.livemode,
            created_at,
        },
    )
    .await?;
    if !fresh {
        tx.rollback().await.map_err(StoreError::from)?;
        outcome.duplicate = true;
        return Ok(outcome);
    }
    let session = record_fact(&mut tx, &topup_event, created_at, &mut outcome).await?;
    let posted = match session {
        Some(s) if s.status == "paid" => Some(reconcile(&mut tx, &s).await?),
        Some(_) => None,
        None => {
            // A checkout event for a session that is not ours. Refund and dispute facts stay
            // recorded even when no credited payment matches them yet.
            outcome.ignored = matches!(
                topup_event,
                TopupEvent::SessionCompleted(_)
                    | TopupEvent::AsyncPaymentSucceeded(_)
                    | TopupEvent::AsyncPaymentFailed(_)
                    | TopupEvent::SessionExpired(_)
                    | TopupEvent::PaymentSucceeded(_)
            ) || (matches!(topup_event, TopupEvent::SetupSucceeded(_))
                && outcome.saved_card.is_none());
            None
        }
    };
    tx.commit().await.map_err(StoreError::from)?;

    if let Some(p) = posted {
        if !p.tenant_delta.is_zero() {
            update_hot(hot, &p).await;
        }
        outcome.posted = p.external_ids;
    }
    Ok(outcome)
}

/// Moves the hot balance by what was just committed. A failure here is logged, not returned:
/// the ledger is already right, a retried event would be a no-op, and the hot copy is
/// rebuilt from Postgres by reconciliation.
async fn update_hot(hot: &HotState, p: &Posted) {
    let result = match Usd::new(p.tenant_delta).and_then(Usd::to_pico) {
        Ok(delta) => hot
            .posted_to_account(p.account, p.version, None, delta)
            .await
            .map_err(|e| e.to_string()),
        Err(e) => Err(e.to_string()),
    };
    if let Err(error) = result {
        tracing::warn!(account = %p.account, %error, "could not update the hot balance after a Stripe posting");
    }
}

/// Events about one payment are serialised on its payment intent (falling back to the
/// session, charge or dispute id when Stripe sent none). `None` for events we ignore.
fn lock_key(event: &TopupEvent) -> Option<String> {
    Some(match event {
        TopupEvent::SessionCompleted(s)
        | TopupEvent::AsyncPaymentSucceeded(s)
        | TopupEvent::AsyncPaymentFailed(s)
        | TopupEvent::SessionExpired(s) => s.payment_intent.clone().unwrap_or_else(|| s.id.clone()),
        TopupEvent::ChargeRefunded(c) => c.payment_intent.clone().unwrap_or_else(|| c.id.clone()),
        TopupEvent::DisputeFundsWithdrawn(d) | TopupEvent::DisputeFundsReinstated(d) => {
            d.payment_intent.clone().unwrap_or_else(|| d.charge.clone())
        }
        TopupEvent::PaymentSucceeded(p) | TopupEvent::PaymentFailed(p) => p.id.clone(),
        TopupEvent::SetupSucceeded(s) => s.id.clone(),
        TopupEvent::Ignored => return None,
    })
}

/// Records what the event says; returns our session (locked) when the ledger may need to move.
async fn record_fact(
    tx: &mut Transaction<'_, Postgres>,
    event: &TopupEvent,
    created_at: DateTime<Utc>,
    outcome: &mut WebhookOutcome,
) -> Result<Option<TopupSessionRow>, TopupError> {
    match event {
        TopupEvent::PaymentSucceeded(p) => {
            let Some(row) = own_auto_payment(tx, p).await? else {
                return Ok(None);
            };
            store::set_payment_intent(tx, &row.id, &p.id).await?;
            let usd = p.currency.as_deref().is_none_or(|c| c == "usd");
            if usd && p.amount.is_some_and(|a| a != row.total_cents) {
                tracing::warn!(payment_intent = %p.id, expected = row.total_cents, paid = ?p.amount,
                    "auto top-up amount differs from the quote; crediting the quote");
            }
            store::close_session(tx, &row.id, "paid").await?;
            if let Some(trigger) = p.trigger() {
                auto_store::mark_succeeded(tx, trigger, &p.id).await?;
            }
            Ok(store::session_for_update(tx, &row.id).await?)
        }
        TopupEvent::PaymentFailed(p) => {
            if let Some(trigger) = p.trigger() {
                auto_store::mark_failed(tx, trigger, Some(&p.id), &p.failure_reason()).await?;
            }
            if let Some(row) = store::session_for_update(tx, &p.id).await? {
                store::close_session(tx, &row.id, "failed").await?;
            }
            Ok(None)
        }
        TopupEvent::SetupSucceeded(s) => {
            let account = s
                .metadata
                .get("account_id")
                .and_then(|a| a.parse::<Uuid>().ok());
            let (Some(account), Some(pm)) = (account, s.payment_method.as_deref()) else {
                tracing::warn!(setup_intent = %s.id, "saved card without an account or payment method; ignored");
                return Ok(None);
            };
            if store::credits_book(tx, account).await?.is_none() {
                tracing::warn!(setup_intent = %s.id, %account, "saved card names an unknown account; ignored");
                return Ok(None);
            }
            if auto_store::save_card(tx, account, s.customer.as_deref(), pm, created_at).await? {
                outcome.saved_card = Some((account, pm.to_string()));
            }
            Ok(None)
        }
        TopupEvent::SessionCompleted(s) | TopupEvent::AsyncPaymentSucceeded(s) => {
            let Some(row) = own_session(tx, s).await? else {
                return Ok(None);
            };
            if let Some(pi) = &s.payment_intent {
                store::set_payment_intent(tx, &row.id, pi).await?;
            }
            let paid = matches!(event, TopupEvent::AsyncPaymentSucceeded(_))
                || s.payment_status.as_deref() == Some("paid");
            if paid {
                check_amounts(&row, s);
                store::close_session(tx, &row.id, "paid").await?;
            }
            Ok(store::session_for_update(tx, &row.id).await?)
        }
        TopupEvent::AsyncPaymentFailed(s) | TopupEvent::SessionExpired(s) => {
            let status = if matches!(event, TopupEvent::SessionExpired(_)) {
                "expired"
            } else {
                "failed"
            };
            match store::session_for_update(tx, &s.id).await? {
                Some(row) => {
                    store::close_session(tx, &row.id, status).await?;
                    Ok(store::session_for_update(tx, &row.id).await?)
                }
                None => Ok(None),
            }
        }
        TopupEvent::ChargeRefunded(c) => {
            if !c.currency.eq_ignore_ascii_case("usd") {
                return Ok(None);
            }
            store::record_charge_refund(
                tx,
                &c.id,
                c.payment_intent.as_deref(),
                c.amount,
                c.amount_refunded,
            )
            .await?;
            match &c.payment_intent {
                Some(pi) => Ok(store::session_by_payment_intent_for_update(tx, pi).await?),
                None => Ok(None),
            }
        }
        TopupEvent::DisputeFundsWithdrawn(d) | TopupEvent::DisputeFundsReinstated(d) => {
            if !d.currency.eq_ignore_ascii_case("usd") {
                return Ok(None);
            }
            let funds = if matches!(event, TopupEvent::DisputeFundsWithdrawn(_)) {
                DisputeFunds::Withdrawn
            } else {
                DisputeFunds::Reinstated
            };
            let pi = match &d.payment_intent {
                Some(pi) => Some(pi.clone()),
                None => store::charge_payment_intent(tx, &d.charge).await?,
            };
            store::record_dispute(tx, &d.id, &d.charge, pi.as_deref(), d.amount, funds).await?;
            match pi {
                Some(pi) => Ok(store::session_by_payment_intent_for_update(tx, &pi).await?),
                None => Ok(None),
            }
        }
        TopupEvent::Ignored => Ok(None),
    }
}

/// Our row for a completed session. A session created by this server but whose row was lost
/// (the insert failed after Stripe created it) is adopted from the metadata we gave Stripe;
/// a session that is not ours at all is ignored.
async fn own_session(
    tx: &mut Transaction<'_, Postgres>,
    s: &SessionObject,
) -> Result<Option<TopupSessionRow>, TopupError> {
    if let Some(row) = store::session_for_update(tx, &s.id).await? {
        return Ok(Some(row));
    }
    let Some((account, credits_cents, fee_cents)) = metadata_amounts(s) else {
        tracing::warn!(session = %s.id, "completed Checkout Session is not an Infron top-up; ignored");
        return Ok(None);
    };
    if store::credits_book(tx, account).await?.is_none() {
        tracing::error!(session = %s.id, %account, "completed top-up names an unknown account; ignored");
        return Ok(None);
    }
    tracing::warn!(session = %s.id, %account, "adopting a paid Checkout Session this server has no row for");
    store::adopt_session(
        tx,
        &NewTopupSession {
            id: &s.id,
            account_id: account,
            credits_cents,
            fee_cents,
        },
    )
    .await?;
    Ok(store::session_for_update(tx, &s.id).await?)
}

/// Our row for an auto top-up's PaymentIntent (its id is the row's id). A payment whose row is
/// missing (the insert after Stripe created it failed, or this webhook came first) is adopted
/// from the metadata we gave Stripe when that metadata is consistent.
async fn own_auto_payment(
    tx: &mut Transaction<'_, Postgres>,
    p: &PaymentIntentObject,
) -> Result<Option<TopupSessionRow>, TopupError> {
    if let Some(row) = store::session_for_update(tx, &p.id).await? {
        return Ok(Some(row));
    }
    let as_session = SessionObject {
        id: p.id.clone(),
        payment_status: None,
        payment_intent: Some(p.id.clone()),
        amount_total: p.amount,
        currency: p.currency.clone(),
        metadata: p.metadata.clone(),
        mode: None,
    };
    let Some((account, credits_cents, fee_cents)) = metadata_amounts(&as_session) else {
        tracing::warn!(payment_intent = %p.id, "auto top-up payment with inconsistent metadata; ignored");
        return Ok(None);
    };
    if store::credits_book(tx, account).await?.is_none() {
        tracing::error!(payment_intent = %p.id, %account, "auto top-up names an unknown account; ignored");
        return Ok(None);
    }
    store::adopt_session(
        tx,
        &NewTopupSession {
            id: &p.id,
            account_id: account,
            credits_cents,
            fee_cents,
        },
    )
    .await?;
    Ok(store::session_for_update(tx, &p.id).await?)
}

fn metadata_amounts(s: &SessionObject) -> Option<(Uuid, i64, i64)> {
    let account = s.metadata.get("account_id")?.parse::<Uuid>().ok()?;
    let credits = s.metadata.get("credits_cents")?.parse::<i64>().ok()?;
    let fee = s.metadata.get("fee_cents")?.parse::<i64>().ok()?;
    if credits <= 0 || fee < 0 {
        return None;
    }
    // Checked: metadata amounts near i64::MAX must not overflow (found by fuzzing).
    let total = credits.checked_add(fee)?;
    let usd = s.currency.as_deref().is_none_or(|c| c == "usd");
    if usd && s.amount_total.is_some_and(|t| t != total) {
        return None;
    }
    Some((account, credits, fee))
}

/// The customer cannot change a session's amounts, so a difference means a Stripe-side
/// feature (such as a presentment currency) changed what is shown; the quote is what we sold.
fn check_amounts(row: &TopupSessionRow, s: &SessionObject) {
    let usd = s.currency.as_deref().is_none_or(|c| c == "usd");
    if usd && s.amount_total.is_some_and(|t| t != row.total_cents) {
        tracing::warn!(session = %row.id, expected = row.total_cents, paid = ?s.amount_total,
            "Checkout Session amount differs from the quote; crediting the quote");
    }
}

/// Brings the ledger in line with what is recorded for a paid session: the payment once, then
/// every refund and dispute movement not posted yet.
async fn reconcile(
    tx: &mut Transaction<'_, Postgres>,
    session: &TopupSessionRow,
) -> Result<Posted, TopupError> {
    let account = session.account_id;
    let book = store::credits_book(tx, account)
        .await?
        .ok_or(crate::BillingError::UnknownAccount(account))?;
    let topup = PaidTopup {
        credits_cents: session.credits_cents,
        fee_cents: session.fee_cents,
    };
    let mut txns: Vec<NewTransaction> = Vec::new();
    if session.credited_at.is_none() {
        txns.push(posting::topup_transaction(
            &session.id,
            account,
            book,
            topup,
            session.payment_intent.as_deref(),
        ));
    }
    let mut position = session.reversed_cents;
    if let Some(pi) = &session.payment_intent {
        for charge in store::charges_for_payment(tx, pi).await? {
            if charge.refunded_cents <= charge.applied_cents {
                continue;
            }
            let to = position + (charge.refunded_cents - charge.applied_cents);
            txns.extend(posting::reversal_transaction(
                posting::refund_external_id(&charge.id, charge.refunded_cents),
                "refund",
                account,
                book,
                topup.delta(position, to),
                serde_json::json!({
                    "session_id": session.id, "charge_id": charge.id,
                    "amount_refunded_cents": charge.refunded_cents,
                }),
            ));
            position = to;
            store::set_charge_applied(tx, &charge.id, charge.refunded_cents).await?;
        }
        for dispute in store::disputes_for_payment(tx, pi).await? {
            let mut withdrawn_applied = dispute.withdrawn_applied;
            let mut reinstated_applied = dispute.reinstated_applied;
            let metadata = serde_json::json!({
                "session_id": session.id, "dispute_id": dispute.id,
                "charge_id": dispute.charge_id, "amount_cents": dispute.amount_cents,
            });
            if dispute.withdrawn && !withdrawn_applied {
                let to = position + dispute.amount_cents;
                txns.extend(posting::reversal_transaction(
                    posting::dispute_external_id(&dispute.id, true),
                    "dispute",
                    account,
                    book,
                    topup.delta(position, to),
                    metadata.clone(),
                ));
                position = to;
                withdrawn_applied = true;
            }
            // Funds are only reinstated after they were withdrawn.
            if dispute.reinstated && withdrawn_applied && !reinstated_applied {
                let to = (position - dispute.amount_cents).max(0);
                txns.extend(posting::reversal_transaction(
                    posting::dispute_external_id(&dispute.id, false),
                    "dispute_reinstated",
                    account,
                    book,
                    topup.delta(position, to),
                    metadata,
                ));
                position = to;
                reinstated_applied = true;
            }
            if (withdrawn_applied, reinstated_applied)
                != (dispute.withdrawn_applied, dispute.reinstated_applied)
            {
                store::set_dispute_applied(tx, &dispute.id, withdrawn_applied, reinstated_applied)
                    .await?;
            }
        }
    }
    store::set_ledger_state(tx, &session.id, true, position).await?;

    let batch = ledger::post_batch(tx, &txns).await?;
    let mut tenant_delta = Decimal::ZERO;
    for t in txns
        .iter()
        .filter(|t| batch.posted.contains(&t.external_id))
    {
        for (b, amount) in &t.entries {
            if *b == book {
                // Entries are debits; the credits book's balance is on the credit side.
                tenant_delta -= *amount;
            }
        }
    }
    let version = batch
        .balances
        .iter()
        .find(|b| b.ledger_account_id == book)
        .map_or(0, |b| b.version);
    Ok(Posted {
        account,
        external_ids: batch.posted,
        tenant_delta,
        version,
    })
}

#[cfg(test)]
mod fuzz {
    use super::*;
    use proptest::prelude::*;

    fn amount() -> impl Strategy<Value = String> {
        prop_oneof![
            any::<i64>().prop_map(|n| n.to_string()),
            Just(i64::MAX.to_string()),
            Just("9223372036854775808".to_string()),
            ".{0,6}",
        ]
    }

    proptest! {
        /// Whatever the session's metadata and total, reading the amounts never panics, and
        /// amounts it accepts add up to the total.
        #[test]
        fn metadata_amounts_never_panic(
            credits in amount(),
            fee in amount(),
            total in proptest::option::of(any::<i64>()),
            currency in proptest::option::of(prop_oneof![Just("usd".to_string()), ".{0,4}"]),
        ) {
            let mut metadata = std::collections::HashMap::new();
            metadata.insert("account_id".to_string(), Uuid::nil().to_string());
            metadata.insert("credits_cents".to_string(), credits);
            metadata.insert("fee_cents".to_string(), fee);
            let s = SessionObject {
                id: "cs_1".into(),
                payment_status: Some("paid".into()),
                payment_intent: None,
                amount_total: total,
                currency: currency.clone(),
                metadata,
                mode: None,
            };
            if let Some((_, c, f)) = metadata_amounts(&s) {
                prop_assert!(c > 0 && f >= 0);
                if currency.as_deref().is_none_or(|c| c == "usd") {
                    if let Some(t) = total {
                        prop_assert_eq!(Some(t), c.checked_add(f));
                    }
                }
            }
        }
    }
}
