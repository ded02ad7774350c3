//! Rows of auto top-up: the account's settings and saved card, and one row per trigger (a
//! crossing below the threshold that buys credits once). Amounts are integer cents.

use chrono::{DateTime, Utc};
use sqlx::{FromRow, PgPool, Postgres, Transaction};
use uuid::Uuid;

use crate::StoreError;

type Tx<'a> = Transaction<'a, Postgres>;

#[derive(Debug, Clone, FromRow)]
pub struct AutoTopupRow {
    pub account_id: Uuid,
    pub enabled: bool,
    pub threshold_cents: i64,
    pub amount_cents: i64,
    pub armed: bool,
    pub trigger_seq: i64,
    pub stripe_customer: Option<String>,
    pub payment_method: Option<String>,
    pub card_brand: Option<String>,
    pub card_last4: Option<String>,
    pub last_failure: Option<String>,
    pub last_failure_at: Option<DateTime<Utc>>,
    pub updated_at: DateTime<Utc>,
}

const COLUMNS: &str = "account_id, enabled, threshold_cents, amount_cents, armed, trigger_seq, \
     stripe_customer, payment_method, card_brand, card_last4, last_failure, last_failure_at, updated_at";

pub async fn get(pool: &PgPool, account: Uuid) -> Result<Option<AutoTopupRow>, StoreError> {
    Ok(sqlx::query_as::<_, AutoTopupRow>(&format!(
        "SELECT {COLUMNS} FROM auto_topup WHERE account_id = $1"
    ))
    .bind(account)
    .fetch_optional(pool)
    .await?)
}

/// Records the Stripe customer of an account (kept if one is recorded already); returns the
/// customer in effect.
pub async fn set_customer(
    pool: &PgPool,
    account: Uuid,
    customer: &str,
) -> Result<String, StoreError> {
    Ok(sqlx::query_scalar(
        "INSERT INTO auto_topup (account_id, stripe_customer) VALUES ($1, $2) \
         ON CONFLICT (account_id) DO UPDATE \
           SET stripe_customer = coalesce(auto_topup.stripe_customer, EXCLUDED.stripe_customer) \
         RETURNING stripe_customer",
    )
    .bind(account)
    .bind(customer)
    .fetch_one(pool)
    .await?)
}

/// Sets whether auto top-up is on, its threshold and amount. Turning it on clears the last
/// failure and arms it (the user acted after a failed payment: the next check may buy again).
pub async fn configure(
    pool: &PgPool,
    account: Uuid,
    enabled: bool,
    threshold_cents: i64,
    amount_cents: i64,
) -> Result<AutoTopupRow, StoreError> {
    Ok(sqlx::query_as::<_, AutoTopupRow>(&format!(
        "INSERT INTO auto_topup AS a (account_id, enabled, threshold_cents, amount_cents) \
         VALUES ($1, $2, $3, $4) \
         ON CONFLICT (account_id) DO UPDATE SET enabled = EXCLUDED.enabled, \
             threshold_cents = EXCLUDED.threshold_cents, amount_cents = EXCLUDED.amount_cents, \
             armed = CASE WHEN EXCLUDED.enabled AND NOT a.enabled THEN true ELSE a.armed END, \
             last_failure = CASE WHEN EXCLUDED.enabled THEN NULL ELSE a.last_failure END, \
             last_failure_at = CASE WHEN EXCLUDED.enabled THEN NULL ELSE a.last_failure_at END, \
             updated_at = now() \
         RETURNING {COLUMNS}"
    ))
    .bind(account)
    .bind(enabled)
    .bind(threshold_cents)
    .bind(amount_cents)
    .fetch_one(pool)
    .await?)
}

/// Saves the card a setup-mode Checkout collected, unless a card saved by a newer Stripe event
/// is already there (events can arrive out of order). True if saved.
pub async fn save_card(
    tx: &mut Tx<'_>,
    account: Uuid,
    customer: Option<&str>,
    payment_method: &str,
    event_created: DateTime<Utc>,
) -> Result<bool, StoreError> {
    let done = sqlx::query(
        "INSERT INTO auto_topup AS a (account_id, stripe_customer, payment_method, card_saved_at) \
         VALUES ($1, $2, $3, $4) \
         ON CONFLICT (account_id) DO UPDATE SET \
             stripe_customer = coalesce(EXCLUDED.stripe_customer, a.stripe_customer), \
             payment_method = EXCLUDED.payment_method, card_saved_at = EXCLUDED.card_saved_at, \
             card_brand = NULL, card_last4 = NULL, updated_at = now() \
         WHERE a.card_saved_at IS NULL OR a.card_saved_at <= EXCLUDED.card_saved_at",
    )
    .bind(account)
    .bind(customer)
    .bind(payment_method)
    .bind(event_created)
    .execute(&mut **tx)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// The brand and last four digits of the saved card, for the page.
pub async fn set_card_details(
    pool: &PgPool,
    account: Uuid,
    payment_method: &str,
    brand: &str,
    last4: &str,
) -> Result<(), StoreError> {
    sqlx::query(
        "UPDATE auto_topup SET card_brand = $3, card_last4 = $4 \
         WHERE account_id = $1 AND payment_method = $2",
    )
    .bind(account)
    .bind(payment_method)
    .bind(brand)
    .bind(last4)
    .execute(pool)
    .await?;
    Ok(())
}

/// An armed, enabled auto top-up whose account's balance is below its threshold, disarmed in
/// the transaction that fires it.
#[derive(Debug, Clone, FromRow)]
pub struct Fired {
    pub account_id: Uuid,
    pub trigger_seq: i64,
    pub amount_cents: i64,
}

/// Disarms every enabled auto top-up with a saved card whose balance (in the ledger) is below
/// its threshold, and returns them. A concurrent caller waits for the row lock and then finds
/// it disarmed, so a crossing fires once whichever instance gets there first.
pub async fn fire(tx: &mut Tx<'_>) -> Result<Vec<Fired>, StoreError> {
    Ok(sqlx::query_as::<_, Fired>(
        "UPDATE auto_topup a SET armed = false, trigger_seq = a.trigger_seq + 1, updated_at = now() \
         FROM ledger_accounts la \
         WHERE la.account_id = a.account_id AND la.kind = 'credits' \
           AND a.enabled AND a.armed AND a.payment_method IS NOT NULL \
           AND la.balance < a.threshold_cents::numeric / 100 \
         RETURNING a.account_id, a.trigger_seq, a.amount_cents",
    )
    .fetch_all(&mut **tx)
    .await?)
}

/// Arms again every disarmed auto top-up whose balance is back at or above its threshold.
pub async fn rearm(pool: &PgPool) -> Result<u64, StoreError> {
    Ok(sqlx::query(
        "UPDATE auto_topup a SET armed = true, updated_at = now() FROM ledger_accounts la \
         WHERE la.account_id = a.account_id AND la.kind = 'credits' AND NOT a.armed \
           AND la.balance >= a.threshold_cents::numeric / 100",
    )
    .execute(pool)
    .await?
    .rows_affected())
}

#[derive(Debug, Clone, FromRow)]
pub struct TriggerRow {
    pub id: Uuid,
    pub account_id: Uuid,
    pub seq: i64,
    pub credits_cents: i64,
    pub fee_cents: i64,
    pub status: String,
    pub payment_intent: Option<String>,
    pub attempts: i32,
    pub error: Option<String>,
    pub created_at: DateTime<Utc>,
}

const TRIGGER_COLUMNS: &str =
    "id, account_id, seq, credits_cents, fee_cents, status, payment_intent, attempts, error, created_at";

pub async fn insert_trigger(
    tx: &mut Tx<'_>,
    id: Uuid,
    account: Uuid,
    seq: i64,
    credits_cents: i64,
    fee_cents: i64,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO auto_topup_triggers (id, account_id, seq, credits_cents, fee_cents) \
         VALUES ($1, $2, $3, $4, $5) ON CONFLICT (account_id, seq) DO NOTHING",
    )
    .bind(id)
    .bind(account)
    .bind(seq)
    .bind(credits_cents)
    .bind(fee_cents)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Pending triggers that are due, each claimed for `lease_secs` (another instance skips them
/// meanwhile; if this one dies, the trigger is due again when the lease ends).
pub async fn claim_pending(
    pool: &PgPool,
    lease_secs: i64,
    limit: i64,
) -> Result<Vec<TriggerRow>, StoreError> {
    Ok(sqlx::query_as::<_, TriggerRow>(&format!(
        "UPDATE auto_topup_triggers SET attempts = attempts + 1, \
                next_attempt_at = now() + make_interval(secs => $1) \
         WHERE id IN (SELECT id FROM auto_topup_triggers \
                      WHERE status = 'pending' AND next_attempt_at <= now() \
                      ORDER BY next_attempt_at LIMIT $2 FOR UPDATE SKIP LOCKED) \
         RETURNING {TRIGGER_COLUMNS}"
    ))
    .bind(lease_secs as f64)
    .bind(limit)
    .fetch_all(pool)
    .await?)
}

/// After a failed attempt to reach Stripe: due again after `secs`.
pub async fn retry_later(
    pool: &PgPool,
    id: Uuid,
    secs: i64,
    error: &str,
) -> Result<(), StoreError> {
    sqlx::query(
        "UPDATE auto_topup_triggers SET next_attempt_at = now() + make_interval(secs => $2), \
                error = $3 WHERE id = $1 AND status = 'pending'",
    )
    .bind(id)
    .bind(secs as f64)
    .bind(error)
    .execute(pool)
    .await?;
    Ok(())
}

/// Stripe created the PaymentIntent: the trigger waits for the webhook. Returns false if the
/// webhook already settled it.
pub async fn mark_created(
    tx: &mut Tx<'_>,
    id: Uuid,
    payment_intent: &str,
) -> Result<bool, StoreError> {
    let done = sqlx::query(
        "UPDATE auto_topup_triggers SET status = 'created', payment_intent = $2, error = NULL \
         WHERE id = $1 AND status = 'pending'",
    )
    .bind(id)
    .bind(payment_intent)
    .execute(&mut **tx)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Stripe's webhook says the payment succeeded.
pub async fn mark_succeeded(
    tx: &mut Tx<'_>,
    id: Uuid,
    payment_intent: &str,
) -> Result<(), StoreError> {
    sqlx::query(
        "UPDATE auto_topup_triggers SET status = 'succeeded', error = NULL, \
                payment_intent = coalesce(payment_intent, $2) WHERE id = $1",
    )
    .bind(id)
    .bind(payment_intent)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// The payment failed (Stripe refused it, or its webhook said so): the trigger fails and auto
/// top-up is turned off with the reason, until the user turns it on again. A trigger that
/// already succeeded stays succeeded. Returns false when nothing changed.
pub async fn mark_failed(
    tx: &mut Tx<'_>,
    id: Uuid,
    payment_intent: Option<&str>,
    reason: &str,
) -> Result<bool, StoreError> {
    let failed: Option<(Uuid, i64, i64)> = sqlx::query_as(
        "UPDATE auto_topup_triggers SET status = 'failed', error = $3, \
                payment_intent = coalesce(payment_intent, $2) \
         WHERE id = $1 AND status IN ('pending', 'created') \
         RETURNING account_id, credits_cents, fee_cents",
    )
    .bind(id)
    .bind(payment_intent)
    .bind(reason)
    .fetch_optional(&mut **tx)
    .await?;
    let Some((account, credits_cents, fee_cents)) = failed else {
        return Ok(false);
    };
    sqlx::query(
        "UPDATE auto_topup SET enabled = false, last_failure = $2, last_failure_at = now(), \
                updated_at = now() WHERE account_id = $1",
    )
    .bind(account)
    .bind(reason)
    .execute(&mut **tx)
    .await?;
    // The people who can turn it on again hear of it, once per failed trigger, in this
    // transaction: the alert outbox delivers the email and the webhook event.
    let cents = |c: i64| rust_decimal::Decimal::new(c, 2).to_string();
    crate::alerts::record_event(
        tx,
        account,
        "auto_topup_failed",
        &id.to_string(),
        "auto_topup.failed",
        serde_json::json!({
            "trigger": id,
            "amount": cents(credits_cents),
            "fee": cents(fee_cents),
            "payment_intent": payment_intent,
            "reason": reason,
        }),
    )
    .await?;
    Ok(true)
}

pub async fn get_trigger(pool: &PgPool, id: Uuid) -> Result<Option<TriggerRow>, StoreError> {
    Ok(sqlx::query_as::<_, TriggerRow>(&format!(
        "SELECT {TRIGGER_COLUMNS} FROM auto_topup_triggers WHERE id = $1"
    ))
    .bind(id)
    .fetch_optional(pool)
    .await?)
}

/// The account's latest triggers, newest first.
pub async fn recent_triggers(
    pool: &PgPool,
    account: Uuid,
    limit: i64,
) -> Result<Vec<TriggerRow>, StoreError> {
    Ok(sqlx::query_as::<_, TriggerRow>(&format!(
        "SELECT {TRIGGER_COLUMNS} FROM auto_topup_triggers WHERE account_id = $1 \
         ORDER BY seq DESC LIMIT $2"
    ))
    .bind(account)
    .bind(limit)
    .fetch_all(pool)
    .await?)
}
