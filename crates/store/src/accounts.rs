use chrono::{DateTime, Utc};
use sqlx::{FromRow, PgPool, Postgres, Transaction};
use uuid::Uuid;

use crate::StoreError;

#[derive(Debug, Clone, FromRow)]
pub struct AccountRow {
    pub id: Uuid,
    pub name: String,
    pub allow_training: bool,
    pub created_at: DateTime<Utc>,
    pub frozen_at: Option<DateTime<Utc>>,
    pub frozen_reason: Option<String>,
    pub default_key_limit: Option<rust_decimal::Decimal>,
    pub default_key_limit_reset: Option<String>,
    pub personal_of: Option<Uuid>,
    /// Requests per minute for all of the account's keys together.
    pub rate_limit_rpm: Option<i32>,
    /// Tokens per minute for all of the account's keys together.
    pub rate_limit_tpm: Option<i64>,
    /// Requests per minute of a key that sets none of its own.
    pub default_key_rpm: Option<i32>,
    /// Tokens per minute of a key that sets none of its own.
    pub default_key_tpm: Option<i64>,
}

pub const COLUMNS: &str = "id, name, allow_training, created_at, frozen_at, frozen_reason, \
    default_key_limit, default_key_limit_reset, personal_of, rate_limit_rpm, rate_limit_tpm, \
    default_key_rpm, default_key_tpm";

/// Creates the account and its credits book in one transaction.
pub async fn create(pool: &PgPool, id: Uuid, name: &str) -> Result<AccountRow, StoreError> {
    let mut tx = pool.begin().await?;
    let row = create_in(&mut tx, id, name, None).await?;
    tx.commit().await?;
    Ok(row)
}

/// Creates the account and its credits book inside the caller's transaction.
pub async fn create_in(
    tx: &mut Transaction<'_, Postgres>,
    id: Uuid,
    name: &str,
    personal_of: Option<Uuid>,
) -> Result<AccountRow, StoreError> {
    let row = sqlx::query_as::<_, AccountRow>(&format!(
        "INSERT INTO accounts (id, name, personal_of) VALUES ($1, $2, $3) RETURNING {COLUMNS}"
    ))
    .bind(id)
    .bind(name)
    .bind(personal_of)
    .fetch_one(&mut **tx)
    .await?;
    sqlx::query(
        "INSERT INTO ledger_accounts (id, code, kind, account_id, normal_side) \
         VALUES ($1, $2, 'credits', $3, 'credit')",
    )
    .bind(Uuid::now_v7())
    .bind(format!("tenant:{id}:credits"))
    .bind(id)
    .execute(&mut **tx)
    .await?;
    Ok(row)
}

pub async fn get(pool: &PgPool, id: Uuid) -> Result<Option<AccountRow>, StoreError> {
    Ok(
        sqlx::query_as::<_, AccountRow>(&format!("SELECT {COLUMNS} FROM accounts WHERE id = $1"))
            .bind(id)
            .fetch_optional(pool)
            .await?,
    )
}

pub async fn set_allow_training(pool: &PgPool, id: Uuid, allow: bool) -> Result<bool, StoreError> {
    let done = sqlx::query("UPDATE accounts SET allow_training = $2 WHERE id = $1")
        .bind(id)
        .bind(allow)
        .execute(pool)
        .await?;
    Ok(done.rows_affected() == 1)
}

/// Freezes (`Some(reason)`) or unfreezes (`None`) an account. Returns the row, or None if there
/// is no such account. The accounts trigger flushes every instance's key cache.
pub async fn set_frozen(
    pool: &PgPool,
    id: Uuid,
    reason: Option<&str>,
) -> Result<Option<AccountRow>, StoreError> {
    Ok(sqlx::query_as::<_, AccountRow>(&format!(
        "UPDATE accounts SET frozen_at = CASE WHEN $2::text IS NULL THEN NULL ELSE coalesce(frozen_at, now()) END, \
                             frozen_reason = $2 WHERE id = $1 RETURNING {COLUMNS}"
    ))
    .bind(id)
    .bind(reason)
    .fetch_optional(pool)
    .await?)
}

/// The account settings a tenant may change.
#[derive(Debug, Clone)]
pub struct AccountSettings {
    pub name: String,
    pub allow_training: bool,
    pub default_key_limit: Option<rust_decimal::Decimal>,
    pub default_key_limit_reset: Option<String>,
}

pub async fn update_settings(
    pool: &PgPool,
    id: Uuid,
    s: &AccountSettings,
) -> Result<Option<AccountRow>, StoreError> {
    Ok(sqlx::query_as::<_, AccountRow>(&format!(
        "UPDATE accounts SET name = $2, allow_training = $3, default_key_limit = $4, \
                             default_key_limit_reset = $5 WHERE id = $1 RETURNING {COLUMNS}"
    ))
    .bind(id)
    .bind(&s.name)
    .bind(s.allow_training)
    .bind(s.default_key_limit)
    .bind(&s.default_key_limit_reset)
    .fetch_optional(pool)
    .await?)
}

/// An account's rate limits: its own (all keys together) and its keys' defaults.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AccountRateLimits {
    pub rpm: Option<i32>,
    pub tpm: Option<i64>,
    pub default_key_rpm: Option<i32>,
    pub default_key_tpm: Option<i64>,
}

pub async fn set_rate_limits(
    pool: &PgPool,
    id: Uuid,
    l: AccountRateLimits,
) -> Result<Option<AccountRow>, StoreError> {
    Ok(sqlx::query_as::<_, AccountRow>(&format!(
        "UPDATE accounts SET rate_limit_rpm = $2, rate_limit_tpm = $3, default_key_rpm = $4, \
                             default_key_tpm = $5 WHERE id = $1 RETURNING {COLUMNS}"
    ))
    .bind(id)
    .bind(l.rpm)
    .bind(l.tpm)
    .bind(l.default_key_rpm)
    .bind(l.default_key_tpm)
    .fetch_optional(pool)
    .await?)
}

/// One account as the operator console lists it.
#[derive(Debug, Clone, FromRow)]
pub struct AccountSummary {
    #[sqlx(flatten)]
    pub account: AccountRow,
    pub balance: rust_decimal::Decimal,
    pub owner_email: Option<String>,
    pub members: i64,
}

/// Accounts matching `query` (a part of the name, an owner's or member's email, or the exact
/// id), newest first, `limit` from `offset`.
pub async fn search(
    pool: &PgPool,
    query: Option<&str>,
    offset: i64,
    limit: i64,
) -> Result<Vec<AccountSummary>, StoreError> {
    let cols = COLUMNS
        .split(',')
        .map(|c| format!("a.{}", c.trim()))
        .collect::<Vec<_>>()
        .join(", ");
    let pattern = query.map(|q| {
        format!(
            "%{}%",
            q.replace('\\', "\\\\")
                .replace('%', "\\%")
                .replace('_', "\\_")
        )
    });
    let id = query.and_then(|q| Uuid::parse_str(q.trim()).ok());
    Ok(sqlx::query_as::<_, AccountSummary>(&format!(
        "SELECT {cols}, coalesce(la.balance, 0) AS balance, \
                (SELECT u.email FROM memberships m JOIN users u ON u.id = m.user_id \
                  WHERE m.account_id = a.id AND m.role = 'owner') AS owner_email, \
                (SELECT count(*) FROM memberships m WHERE m.account_id = a.id) AS members \
         FROM accounts a LEFT JOIN ledger_accounts la ON la.account_id = a.id AND la.kind = 'credits' \
         WHERE $1::text IS NULL OR a.id = $2 OR a.name ILIKE $1 \
            OR EXISTS (SELECT 1 FROM memberships m JOIN users u ON u.id = m.user_id \
                       WHERE m.account_id = a.id AND u.email LIKE lower($1)) \
         ORDER BY a.created_at DESC, a.id DESC OFFSET $3 LIMIT $4"
    ))
    .bind(pattern)
    .bind(id)
    .bind(offset)
    .bind(limit)
    .fetch_all(pool)
    .await?)
}
