//! Rows of alerts: an account's alert settings, the alerts fired (one per crossing), and the
//! outbox of their deliveries by email and webhook.

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use sqlx::{FromRow, PgPool, Postgres, Transaction};
use uuid::Uuid;

use crate::StoreError;

type Tx<'a> = Transaction<'a, Postgres>;

#[derive(Debug, Clone, FromRow)]
pub struct AlertSettingsRow {
    pub account_id: Uuid,
    pub low_balance_threshold: Option<Decimal>,
    pub key_spend: bool,
    pub email: bool,
    pub webhook_url: Option<String>,
    pub webhook_secret_nonce: Option<String>,
    pub updated_at: DateTime<Utc>,
}

const COLUMNS: &str =
    "account_id, low_balance_threshold, key_spend, email, webhook_url, webhook_secret_nonce, updated_at";

pub async fn get(pool: &PgPool, account: Uuid) -> Result<Option<AlertSettingsRow>, StoreError> {
    Ok(sqlx::query_as::<_, AlertSettingsRow>(&format!(
        "SELECT {COLUMNS} FROM alert_settings WHERE account_id = $1"
    ))
    .bind(account)
    .fetch_optional(pool)
    .await?)
}

/// What the account chose (the secret's nonce is set separately).
#[derive(Debug, Clone)]
pub struct AlertChoice {
    pub low_balance_threshold: Option<Decimal>,
    pub key_spend: bool,
    pub email: bool,
    pub webhook_url: Option<String>,
}

pub async fn set(
    pool: &PgPool,
    account: Uuid,
    c: &AlertChoice,
) -> Result<AlertSettingsRow, StoreError> {
    Ok(sqlx::query_as::<_, AlertSettingsRow>(&format!(
        "INSERT INTO alert_settings (account_id, low_balance_threshold, key_spend, email, webhook_url) \
         VALUES ($1, $2, $3, $4, $5) \
         ON CONFLICT (account_id) DO UPDATE SET low_balance_threshold = EXCLUDED.low_balance_threshold, \
             key_spend = EXCLUDED.key_spend, email = EXCLUDED.email, \
             webhook_url = EXCLUDED.webhook_url, updated_at = now() \
         RETURNING {COLUMNS}"
    ))
    .bind(account)
    .bind(c.low_balance_threshold)
    .bind(c.key_spend)
    .bind(c.email)
    .bind(&c.webhook_url)
    .fetch_one(pool)
    .await?)
}

/// Replaces the nonce the webhook signing secret is derived from (a new secret).
pub async fn set_secret_nonce(pool: &PgPool, account: Uuid, nonce: &str) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO alert_settings (account_id, webhook_secret_nonce) VALUES ($1, $2) \
         ON CONFLICT (account_id) DO UPDATE SET webhook_secret_nonce = EXCLUDED.webhook_secret_nonce, \
             updated_at = now()",
    )
    .bind(account)
    .bind(nonce)
    .execute(pool)
    .await?;
    Ok(())
}

/// An account's balance next to its low-balance threshold.
#[derive(Debug, Clone, FromRow)]
pub struct BalanceCheck {
    pub account_id: Uuid,
    pub balance: Decimal,
    pub threshold: Decimal,
}

/// Every account with a low-balance threshold, and its ledger balance.
pub async fn balances_to_check(pool: &PgPool) -> Result<Vec<BalanceCheck>, StoreError> {
    Ok(sqlx::query_as::<_, BalanceCheck>(
        "SELECT s.account_id, la.balance, s.low_balance_threshold AS threshold \
         FROM alert_settings s \
         JOIN ledger_accounts la ON la.account_id = s.account_id AND la.kind = 'credits' \
         WHERE s.low_balance_threshold IS NOT NULL",
    )
    .fetch_all(pool)
    .await?)
}

/// A limited key of an account that wants key-spend alerts, with its current period's usage.
#[derive(Debug, Clone, FromRow)]
pub struct KeySpendCheck {
    pub account_id: Uuid,
    pub key_id: Uuid,
    pub key_hash: Vec<u8>,
    pub name: String,
    pub key_hint: String,
    pub credit_limit: Decimal,
    pub limit_reset: Option<String>,
    pub period_start: DateTime<Utc>,
    pub used: Decimal,
}

pub async fn key_spend_to_check(pool: &PgPool) -> Result<Vec<KeySpendCheck>, StoreError> {
    Ok(sqlx::query_as::<_, KeySpendCheck>(
        "SELECT k.account_id, k.id AS key_id, k.key_hash, k.name, k.key_hint, k.credit_limit, k.limit_reset, \
                infron_limit_period(k.limit_reset, now()) AS period_start, coalesce(u.used, 0) AS used \
         FROM alert_settings s \
         JOIN api_keys k ON k.account_id = s.account_id \
         LEFT JOIN api_key_usage u ON u.api_key_id = k.id \
                                  AND u.period_start = infron_limit_period(k.limit_reset, now()) \
         WHERE s.key_spend AND k.credit_limit IS NOT NULL AND k.credit_limit > 0 \
           AND NOT k.disabled AND k.deleted_at IS NULL",
    )
    .fetch_all(pool)
    .await?)
}

/// An alert that fired.
#[derive(Debug, Clone, FromRow)]
pub struct FiringRow {
    pub id: Uuid,
    pub account_id: Uuid,
    pub kind: String,
    pub subject: String,
    pub threshold_pct: i32,
    pub period_start: Option<DateTime<Utc>>,
    pub fired_at: DateTime<Utc>,
    pub cleared_at: Option<DateTime<Utc>>,
    pub payload: serde_json::Value,
}

const FIRING_COLUMNS: &str =
    "id, account_id, kind, subject, threshold_pct, period_start, fired_at, cleared_at, payload";

/// The alert still fired (not cleared) for this condition, if any.
pub async fn open_firing(
    pool: &PgPool,
    account: Uuid,
    kind: &str,
    subject: &str,
    threshold_pct: i32,
) -> Result<Option<FiringRow>, StoreError> {
    Ok(sqlx::query_as::<_, FiringRow>(&format!(
        "SELECT {FIRING_COLUMNS} FROM alert_firings WHERE account_id = $1 AND kind = $2 \
         AND subject = $3 AND threshold_pct = $4 AND cleared_at IS NULL"
    ))
    .bind(account)
    .bind(kind)
    .bind(subject)
    .bind(threshold_pct)
    .fetch_optional(pool)
    .await?)
}

/// A firing to record.
#[derive(Debug, Clone)]
pub struct NewFiring<'a> {
    pub id: Uuid,
    pub account_id: Uuid,
    pub kind: &'a str,
    pub subject: &'a str,
    pub threshold_pct: i32,
    pub period_start: Option<DateTime<Utc>>,
    pub payload: serde_json::Value,
}

/// Records the firing unless the same condition is fired already (another instance, an
/// earlier scan): true if this call fired it.
pub async fn fire(tx: &mut Tx<'_>, f: &NewFiring<'_>) -> Result<bool, StoreError> {
    let done = sqlx::query(
        "INSERT INTO alert_firings (id, account_id, kind, subject, threshold_pct, period_start, payload) \
         VALUES ($1, $2, $3, $4, $5, $6, $7) \
         ON CONFLICT (account_id, kind, subject, threshold_pct) WHERE cleared_at IS NULL DO NOTHING",
    )
    .bind(f.id)
    .bind(f.account_id)
    .bind(f.kind)
    .bind(f.subject)
    .bind(f.threshold_pct)
    .bind(f.period_start)
    .bind(&f.payload)
    .execute(&mut **tx)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// The JSON event an alert sends (by webhook; emails are written from it): `id` is derived from
/// the firing's id, so a retried delivery carries the same one.
pub fn event_payload(
    firing: Uuid,
    event_type: &str,
    account: Uuid,
    data: serde_json::Value,
) -> serde_json::Value {
    serde_json::json!({
        "id": format!("alert_{}", firing.simple()),
        "type": event_type,
        "created": Utc::now().timestamp(),
        "account_id": account,
        "data": data,
    })
}

/// Queues the deliveries of `firing`: an email to each verified owner and admin when `email`,
/// and the webhook when one is set.
pub async fn queue_deliveries(
    tx: &mut Tx<'_>,
    firing: Uuid,
    account: Uuid,
    email: bool,
    webhook_url: Option<&str>,
) -> Result<(), StoreError> {
    if email {
        for to in recipients(tx, account).await? {
            insert_delivery(tx, firing, account, "email", &to).await?;
        }
    }
    if let Some(url) = webhook_url {
        insert_delivery(tx, firing, account, "webhook", url).await?;
    }
    Ok(())
}

/// Records an event (not a condition) as an alert already cleared, with its deliveries as the
/// account's alert settings ask (email unless turned off, the webhook if one is set), in `tx`.
/// `event_type` is the payload's `type`; `data` its `data`.
pub async fn record_event(
    tx: &mut Tx<'_>,
    account: Uuid,
    kind: &str,
    subject: &str,
    event_type: &str,
    data: serde_json::Value,
) -> Result<(), StoreError> {
    let id = Uuid::now_v7();
    sqlx::query(
        "INSERT INTO alert_firings (id, account_id, kind, subject, threshold_pct, payload, cleared_at) \
         VALUES ($1, $2, $3, $4, 0, $5, now())",
    )
    .bind(id)
    .bind(account)
    .bind(kind)
    .bind(subject)
    .bind(event_payload(id, event_type, account, data))
    .execute(&mut **tx)
    .await?;
    let settings: Option<(bool, Option<String>)> =
        sqlx::query_as("SELECT email, webhook_url FROM alert_settings WHERE account_id = $1")
            .bind(account)
            .fetch_optional(&mut **tx)
            .await?;
    let (email, webhook) = settings.unwrap_or((true, None));
    queue_deliveries(tx, id, account, email, webhook.as_deref()).await
}

/// The condition no longer holds: the next crossing fires again.
pub async fn clear(pool: &PgPool, id: Uuid) -> Result<(), StoreError> {
    sqlx::query("UPDATE alert_firings SET cleared_at = now() WHERE id = $1 AND cleared_at IS NULL")
        .bind(id)
        .execute(pool)
        .await?;
    Ok(())
}

/// Every alert still fired, to clear those whose condition went away.
pub async fn open_firings(pool: &PgPool) -> Result<Vec<FiringRow>, StoreError> {
    Ok(sqlx::query_as::<_, FiringRow>(&format!(
        "SELECT {FIRING_COLUMNS} FROM alert_firings WHERE cleared_at IS NULL"
    ))
    .fetch_all(pool)
    .await?)
}

/// The account's latest alerts, newest first.
pub async fn recent_firings(
    pool: &PgPool,
    account: Uuid,
    limit: i64,
) -> Result<Vec<FiringRow>, StoreError> {
    Ok(sqlx::query_as::<_, FiringRow>(&format!(
        "SELECT {FIRING_COLUMNS} FROM alert_firings WHERE account_id = $1 \
         ORDER BY fired_at DESC LIMIT $2"
    ))
    .bind(account)
    .bind(limit)
    .fetch_all(pool)
    .await?)
}

/// Owners' and admins' verified addresses: who gets alert emails.
pub async fn recipients(tx: &mut Tx<'_>, account: Uuid) -> Result<Vec<String>, StoreError> {
    Ok(sqlx::query_scalar(
        "SELECT u.email FROM memberships m JOIN users u ON u.id = m.user_id \
         WHERE m.account_id = $1 AND m.role IN ('owner', 'admin') \
           AND u.email_verified_at IS NOT NULL ORDER BY u.email",
    )
    .bind(account)
    .fetch_all(&mut **tx)
    .await?)
}

pub async fn insert_delivery(
    tx: &mut Tx<'_>,
    firing: Uuid,
    account: Uuid,
    channel: &str,
    target: &str,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO alert_deliveries (id, firing_id, account_id, channel, target) \
         VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(Uuid::now_v7())
    .bind(firing)
    .bind(account)
    .bind(channel)
    .bind(target)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// A delivery to attempt, with its alert.
#[derive(Debug, Clone, FromRow)]
pub struct DeliveryRow {
    pub id: Uuid,
    pub firing_id: Uuid,
    pub account_id: Uuid,
    pub channel: String,
    pub target: String,
    pub attempts: i32,
    pub kind: String,
    pub fired_at: DateTime<Utc>,
    pub payload: serde_json::Value,
}

/// Due deliveries, each claimed for `lease_secs` (so two instances never send one at once).
pub async fn claim_deliveries(
    pool: &PgPool,
    lease_secs: i64,
    limit: i64,
) -> Result<Vec<DeliveryRow>, StoreError> {
    Ok(sqlx::query_as::<_, DeliveryRow>(
        "WITH claimed AS ( \
           UPDATE alert_deliveries SET attempts = attempts + 1, \
                  next_attempt_at = now() + make_interval(secs => $1) \
           WHERE id IN (SELECT id FROM alert_deliveries \
                        WHERE delivered_at IS NULL AND failed_at IS NULL AND next_attempt_at <= now() \
                        ORDER BY next_attempt_at LIMIT $2 FOR UPDATE SKIP LOCKED) \
           RETURNING id, firing_id, account_id, channel, target, attempts) \
         SELECT c.id, c.firing_id, c.account_id, c.channel, c.target, c.attempts, \
                f.kind, f.fired_at, f.payload \
         FROM claimed c JOIN alert_firings f ON f.id = c.firing_id",
    )
    .bind(lease_secs as f64)
    .bind(limit)
    .fetch_all(pool)
    .await?)
}

pub async fn delivered(pool: &PgPool, id: Uuid) -> Result<(), StoreError> {
    sqlx::query(
        "UPDATE alert_deliveries SET delivered_at = now(), last_error = NULL WHERE id = $1",
    )
    .bind(id)
    .execute(pool)
    .await?;
    Ok(())
}

/// A failed attempt: due again after `retry_secs`, or given up (None).
pub async fn attempt_failed(
    pool: &PgPool,
    id: Uuid,
    error: &str,
    retry_secs: Option<i64>,
) -> Result<(), StoreError> {
    sqlx::query(
        "UPDATE alert_deliveries SET last_error = $2, \
                next_attempt_at = CASE WHEN $3::float8 IS NULL THEN next_attempt_at \
                                       ELSE now() + make_interval(secs => $3::float8) END, \
                failed_at = CASE WHEN $3::float8 IS NULL THEN now() ELSE NULL END \
         WHERE id = $1",
    )
    .bind(id)
    .bind(error)
    .bind(retry_secs.map(|s| s as f64))
    .execute(pool)
    .await?;
    Ok(())
}

/// The deliveries of an account's recent alerts, for the page.
#[derive(Debug, Clone, FromRow)]
pub struct DeliveryStatus {
    pub firing_id: Uuid,
    pub channel: String,
    pub target: String,
    pub attempts: i32,
    pub delivered_at: Option<DateTime<Utc>>,
    pub failed_at: Option<DateTime<Utc>>,
    pub last_error: Option<String>,
}

pub async fn deliveries_of(
    pool: &PgPool,
    firings: &[Uuid],
) -> Result<Vec<DeliveryStatus>, StoreError> {
    Ok(sqlx::query_as::<_, DeliveryStatus>(
        "SELECT firing_id, channel, target, attempts, delivered_at, failed_at, last_error \
         FROM alert_deliveries WHERE firing_id = ANY($1) ORDER BY created_at",
    )
    .bind(firings)
    .fetch_all(pool)
    .await?)
}
