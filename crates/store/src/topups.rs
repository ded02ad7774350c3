//! Rows of Stripe top-ups: the Checkout Sessions we created, the webhook events processed, and
//! the refund and dispute facts Stripe reported. Amounts are integer cents. Which facts move
//! the ledger, and by how much, is decided in billing; this module only reads and writes rows.

use chrono::{DateTime, Utc};
use sqlx::{FromRow, PgPool, Postgres, Transaction};
use uuid::Uuid;

use crate::StoreError;

type Tx<'a> = Transaction<'a, Postgres>;

#[derive(Debug, Clone, FromRow)]
pub struct TopupSessionRow {
    pub id: String,
    pub account_id: Uuid,
    pub credits_cents: i64,
    pub fee_cents: i64,
    pub total_cents: i64,
    pub currency: String,
    pub status: String,
    pub payment_intent: Option<String>,
    pub reversed_cents: i64,
    pub created_at: DateTime<Utc>,
    pub paid_at: Option<DateTime<Utc>>,
    pub credited_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone)]
pub struct NewTopupSession<'a> {
    pub id: &'a str,
    pub account_id: Uuid,
    pub credits_cents: i64,
    pub fee_cents: i64,
}

const SESSION_COLUMNS: &str = "id, account_id, credits_cents, fee_cents, total_cents, currency, \
     status, payment_intent, reversed_cents, created_at, paid_at, credited_at";

/// Records a session just created at Stripe (status open, no payment intent yet).
pub async fn insert_session(pool: &PgPool, s: &NewTopupSession<'_>) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO topup_sessions (id, account_id, credits_cents, fee_cents, total_cents) \
         VALUES ($1, $2, $3, $4, $3 + $4)",
    )
    .bind(s.id)
    .bind(s.account_id)
    .bind(s.credits_cents)
    .bind(s.fee_cents)
    .execute(pool)
    .await?;
    Ok(())
}

/// Inserts a session learned from a webhook (our own insert was lost); false if it exists.
pub async fn adopt_session(tx: &mut Tx<'_>, s: &NewTopupSession<'_>) -> Result<bool, StoreError> {
    let done = sqlx::query(
        "INSERT INTO topup_sessions (id, account_id, credits_cents, fee_cents, total_cents) \
         VALUES ($1, $2, $3, $4, $3 + $4) ON CONFLICT (id) DO NOTHING",
    )
    .bind(s.id)
    .bind(s.account_id)
    .bind(s.credits_cents)
    .bind(s.fee_cents)
    .execute(&mut **tx)
    .await?;
    Ok(done.rows_affected() == 1)
}

pub async fn get_session(pool: &PgPool, id: &str) -> Result<Option<TopupSessionRow>, StoreError> {
    Ok(sqlx::query_as::<_, TopupSessionRow>(&format!(
        "SELECT {SESSION_COLUMNS} FROM topup_sessions WHERE id = $1"
    ))
    .bind(id)
    .fetch_optional(pool)
    .await?)
}

/// Serialises every webhook that concerns one payment (keyed by payment intent, or by session
/// id when there is none) until the caller's transaction ends, so facts recorded by one event
/// are always seen by the next.
pub async fn lock_payment(tx: &mut Tx<'_>, key: &str) -> Result<(), StoreError> {
    sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended('stripe:' || $1, 0))")
        .bind(key)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

#[derive(Debug, Clone)]
pub struct StripeEventRow<'a> {
    pub id: &'a str,
    pub kind: &'a str,
    pub object_id: Option<&'a str>,
    pub livemode: bool,
    pub created_at: DateTime<Utc>,
}

/// Records an event id; false when it was processed before (a replay or duplicate delivery).
pub async fn record_event(tx: &mut Tx<'_>, e: &StripeEventRow<'_>) -> Result<bool, StoreError> {
    let done = sqlx::query(
        "INSERT INTO stripe_events (id, type, object_id, livemode, created_at) \
         VALUES ($1, $2, $3, $4, $5) ON CONFLICT (id) DO NOTHING",
    )
    .bind(e.id)
    .bind(e.kind)
    .bind(e.object_id)
    .bind(e.livemode)
    .bind(e.created_at)
    .execute(&mut **tx)
    .await?;
    Ok(done.rows_affected() == 1)
}

pub async fn session_for_update(
    tx: &mut Tx<'_>,
    id: &str,
) -> Result<Option<TopupSessionRow>, StoreError> {
    Ok(sqlx::query_as::<_, TopupSessionRow>(&format!(
        "SELECT {SESSION_COLUMNS} FROM topup_sessions WHERE id = $1 FOR UPDATE"
    ))
    .bind(id)
    .fetch_optional(&mut **tx)
    .await?)
}

pub async fn session_by_payment_intent_for_update(
    tx: &mut Tx<'_>,
    payment_intent: &str,
) -> Result<Option<TopupSessionRow>, StoreError> {
    Ok(sqlx::query_as::<_, TopupSessionRow>(&format!(
        "SELECT {SESSION_COLUMNS} FROM topup_sessions WHERE payment_intent = $1 FOR UPDATE"
    ))
    .bind(payment_intent)
    .fetch_optional(&mut **tx)
    .await?)
}

/// Sets the session's payment intent unless it has one already.
pub async fn set_payment_intent(
    tx: &mut Tx<'_>,
    id: &str,
    payment_intent: &str,
) -> Result<(), StoreError> {
    sqlx::query(
        "UPDATE topup_sessions SET payment_intent = $2 WHERE id = $1 AND payment_intent IS NULL",
    )
    .bind(id)
    .bind(payment_intent)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Moves an open session to `status` (paid, failed or expired); a paid session stays paid.
pub async fn close_session(tx: &mut Tx<'_>, id: &str, status: &str) -> Result<(), StoreError> {
    sqlx::query(
        "UPDATE topup_sessions SET status = $2, \
                paid_at = CASE WHEN $2 = 'paid' THEN now() ELSE paid_at END \
         WHERE id = $1 AND status <> 'paid'",
    )
    .bind(id)
    .bind(status)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Records that the top-up was posted and how far reversals have gone.
pub async fn set_ledger_state(
    tx: &mut Tx<'_>,
    id: &str,
    credited: bool,
    reversed_cents: i64,
) -> Result<(), StoreError> {
    sqlx::query(
        "UPDATE topup_sessions SET reversed_cents = $3, \
                credited_at = CASE WHEN $2 THEN coalesce(credited_at, now()) ELSE credited_at END \
         WHERE id = $1",
    )
    .bind(id)
    .bind(credited)
    .bind(reversed_cents)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

#[derive(Debug, Clone, FromRow)]
pub struct ChargeRow {
    pub id: String,
    pub payment_intent: Option<String>,
    pub amount_cents: i64,
    pub refunded_cents: i64,
    pub applied_cents: i64,
}

/// Records a charge's cumulative refunded amount, keeping the highest figure seen.
pub async fn record_charge_refund(
    tx: &mut Tx<'_>,
    id: &str,
    payment_intent: Option<&str>,
    amount_cents: i64,
    refunded_cents: i64,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO stripe_charges (id, payment_intent, amount_cents, refunded_cents) \
         VALUES ($1, $2, $3, $4) \
         ON CONFLICT (id) DO UPDATE SET \
            refunded_cents = GREATEST(stripe_charges.refunded_cents, EXCLUDED.refunded_cents), \
            payment_intent = coalesce(stripe_charges.payment_intent, EXCLUDED.payment_intent), \
            updated_at = now()",
    )
    .bind(id)
    .bind(payment_intent)
    .bind(amount_cents)
    .bind(refunded_cents)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

pub async fn charges_for_payment(
    tx: &mut Tx<'_>,
    payment_intent: &str,
) -> Result<Vec<ChargeRow>, StoreError> {
    Ok(sqlx::query_as::<_, ChargeRow>(
        "SELECT id, payment_intent, amount_cents, refunded_cents, applied_cents \
         FROM stripe_charges WHERE payment_intent = $1 ORDER BY id",
    )
    .bind(payment_intent)
    .fetch_all(&mut **tx)
    .await?)
}

pub async fn set_charge_applied(
    tx: &mut Tx<'_>,
    id: &str,
    applied_cents: i64,
) -> Result<(), StoreError> {
    sqlx::query("UPDATE stripe_charges SET applied_cents = $2, updated_at = now() WHERE id = $1")
        .bind(id)
        .bind(applied_cents)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

#[derive(Debug, Clone, FromRow)]
pub struct DisputeRow {
    pub id: String,
    pub charge_id: String,
    pub payment_intent: Option<String>,
    pub amount_cents: i64,
    pub withdrawn: bool,
    pub reinstated: bool,
    pub withdrawn_applied: bool,
    pub reinstated_applied: bool,
}

/// Which movement of a dispute's funds Stripe reported.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DisputeFunds {
    Withdrawn,
    Reinstated,
}

pub async fn record_dispute(
    tx: &mut Tx<'_>,
    id: &str,
    charge_id: &str,
    payment_intent: Option<&str>,
    amount_cents: i64,
    funds: DisputeFunds,
) -> Result<(), StoreError> {
    let (withdrawn, reinstated) = match funds {
        DisputeFunds::Withdrawn => (true, false),
        DisputeFunds::Reinstated => (false, true),
    };
    sqlx::query(
        "INSERT INTO stripe_disputes (id, charge_id, payment_intent, amount_cents, withdrawn, reinstated) \
         VALUES ($1, $2, $3, $4, $5, $6) \
         ON CONFLICT (id) DO UPDATE SET \
            withdrawn = stripe_disputes.withdrawn OR EXCLUDED.withdrawn, \
            reinstated = stripe_disputes.reinstated OR EXCLUDED.reinstated, \
            payment_intent = coalesce(stripe_disputes.payment_intent, EXCLUDED.payment_intent), \
            updated_at = now()",
    )
    .bind(id)
    .bind(charge_id)
    .bind(payment_intent)
    .bind(amount_cents)
    .bind(withdrawn)
    .bind(reinstated)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

pub async fn disputes_for_payment(
    tx: &mut Tx<'_>,
    payment_intent: &str,
) -> Result<Vec<DisputeRow>, StoreError> {
    Ok(sqlx::query_as::<_, DisputeRow>(
        "SELECT id, charge_id, payment_intent, amount_cents, withdrawn, reinstated, \
                withdrawn_applied, reinstated_applied \
         FROM stripe_disputes WHERE payment_intent = $1 ORDER BY id",
    )
    .bind(payment_intent)
    .fetch_all(&mut **tx)
    .await?)
}

pub async fn set_dispute_applied(
    tx: &mut Tx<'_>,
    id: &str,
    withdrawn_applied: bool,
    reinstated_applied: bool,
) -> Result<(), StoreError> {
    sqlx::query(
        "UPDATE stripe_disputes SET withdrawn_applied = $2, reinstated_applied = $3, \
                updated_at = now() WHERE id = $1",
    )
    .bind(id)
    .bind(withdrawn_applied)
    .bind(reinstated_applied)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// The payment intent of a charge seen before, for a dispute that names only its charge.
pub async fn charge_payment_intent(
    tx: &mut Tx<'_>,
    charge_id: &str,
) -> Result<Option<String>, StoreError> {
    Ok(sqlx::query_scalar::<_, Option<String>>(
        "SELECT payment_intent FROM stripe_charges WHERE id = $1",
    )
    .bind(charge_id)
    .fetch_optional(&mut **tx)
    .await?
    .flatten())
}

/// A tenant's credits book, read inside the caller's transaction (no second connection is
/// taken while the payment lock is held).
pub async fn credits_book(tx: &mut Tx<'_>, account_id: Uuid) -> Result<Option<Uuid>, StoreError> {
    Ok(sqlx::query_scalar(
        "SELECT id FROM ledger_accounts WHERE account_id = $1 AND kind = 'credits'",
    )
    .bind(account_id)
    .fetch_optional(&mut **tx)
    .await?)
}
