use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use sqlx::{FromRow, PgPool};
use uuid::Uuid;

use crate::StoreError;

#[derive(Debug, Clone, FromRow)]
pub struct ApiKeyRow {
    pub id: Uuid,
    pub account_id: Uuid,
    pub name: String,
    pub key_hint: String,
    pub disabled: bool,
    pub credit_limit: Option<Decimal>,
    pub limit_reset: Option<String>,
    pub expires_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    /// `inference`, `management` or `management_read`.
    pub kind: String,
    /// The user who created the key (None for keys made with the CLI).
    pub created_by: Option<Uuid>,
    pub updated_at: Option<DateTime<Utc>>,
    pub deleted_at: Option<DateTime<Utc>>,
    /// Requests per minute this key may make (None: the account's default, if any).
    pub rate_limit_rpm: Option<i32>,
    /// Tokens per minute this key may use (None: the account's default, if any).
    pub rate_limit_tpm: Option<i64>,
}

const COLUMNS: &str =
    "id, account_id, name, key_hint, disabled, credit_limit, limit_reset, expires_at, \
    created_at, kind, created_by, updated_at, deleted_at, rate_limit_rpm, rate_limit_tpm";

pub struct NewApiKey<'a> {
    pub id: Uuid,
    pub account_id: Uuid,
    pub name: &'a str,
    pub key_hash: &'a [u8],
    pub key_hint: &'a str,
}

pub async fn insert(pool: &PgPool, key: NewApiKey<'_>) -> Result<ApiKeyRow, StoreError> {
    Ok(sqlx::query_as::<_, ApiKeyRow>(&format!(
        "INSERT INTO api_keys (id, account_id, name, key_hash, key_hint) VALUES ($1, $2, $3, $4, $5) \
         RETURNING {COLUMNS}"
    ))
    .bind(key.id)
    .bind(key.account_id)
    .bind(key.name)
    .bind(key.key_hash)
    .bind(key.key_hint)
    .fetch_one(pool)
    .await?)
}

/// Looks a key up by its keyed hash (unique index). The hash comparison is the index lookup
/// itself; callers compare again in constant time before trusting the row.
pub async fn find_by_hash(
    pool: &PgPool,
    hash: &[u8],
) -> Result<Option<(ApiKeyRow, Vec<u8>)>, StoreError> {
    #[derive(FromRow)]
    struct WithHash {
        #[sqlx(flatten)]
        row: ApiKeyRow,
        key_hash: Vec<u8>,
    }
    let found = sqlx::query_as::<_, WithHash>(&format!(
        "SELECT {COLUMNS}, key_hash FROM api_keys WHERE key_hash = $1"
    ))
    .bind(hash)
    .fetch_optional(pool)
    .await?;
    Ok(found.map(|w| (w.row, w.key_hash)))
}

pub async fn list_for_account(
    pool: &PgPool,
    account_id: Uuid,
) -> Result<Vec<ApiKeyRow>, StoreError> {
    Ok(sqlx::query_as::<_, ApiKeyRow>(&format!(
        "SELECT {COLUMNS} FROM api_keys WHERE account_id = $1 ORDER BY created_at"
    ))
    .bind(account_id)
    .fetch_all(pool)
    .await?)
}

pub async fn set_disabled(
    pool: &PgPool,
    id: Uuid,
    disabled: bool,
) -> Result<Option<ApiKeyRow>, StoreError> {
    Ok(sqlx::query_as::<_, ApiKeyRow>(&format!(
        "UPDATE api_keys SET disabled = $2, updated_at = now() WHERE id = $1 RETURNING {COLUMNS}"
    ))
    .bind(id)
    .bind(disabled)
    .fetch_optional(pool)
    .await?)
}

/// Sets or clears a key's spending limit, its reset period and its expiry.
pub async fn set_limit(
    pool: &PgPool,
    id: Uuid,
    credit_limit: Option<Decimal>,
    limit_reset: Option<&str>,
    expires_at: Option<DateTime<Utc>>,
) -> Result<Option<ApiKeyRow>, StoreError> {
    Ok(sqlx::query_as::<_, ApiKeyRow>(&format!(
        "UPDATE api_keys SET credit_limit = $2, limit_reset = $3, expires_at = $4, updated_at = now() \
         WHERE id = $1 RETURNING {COLUMNS}"
    ))
    .bind(id)
    .bind(credit_limit)
    .bind(limit_reset)
    .bind(expires_at)
    .fetch_optional(pool)
    .await?)
}

/// Sets or clears a key's own rate limits (requests and tokens per minute).
pub async fn set_rate_limit(
    pool: &PgPool,
    id: Uuid,
    rpm: Option<i32>,
    tpm: Option<i64>,
) -> Result<Option<ApiKeyRow>, StoreError> {
    Ok(sqlx::query_as::<_, ApiKeyRow>(&format!(
        "UPDATE api_keys SET rate_limit_rpm = $2, rate_limit_tpm = $3, updated_at = now() \
         WHERE id = $1 RETURNING {COLUMNS}"
    ))
    .bind(id)
    .bind(rpm)
    .bind(tpm)
    .fetch_optional(pool)
    .await?)
}

pub async fn get(pool: &PgPool, id: Uuid) -> Result<Option<ApiKeyRow>, StoreError> {
    Ok(
        sqlx::query_as::<_, ApiKeyRow>(&format!("SELECT {COLUMNS} FROM api_keys WHERE id = $1"))
            .bind(id)
            .fetch_optional(pool)
            .await?,
    )
}

/// What a key spent in the limit period starting at `period_start`, and the row's version.
pub async fn period_usage(
    pool: &PgPool,
    id: Uuid,
    period_start: DateTime<Utc>,
) -> Result<(Decimal, i64), StoreError> {
    Ok(sqlx::query_as::<_, (Decimal, i64)>(
        "SELECT used, version FROM api_key_usage WHERE api_key_id = $1 AND period_start = $2",
    )
    .bind(id)
    .bind(period_start)
    .fetch_optional(pool)
    .await?
    .unwrap_or((Decimal::ZERO, 0)))
}

/// Total, daily, weekly and monthly (UTC calendar periods) cost charged to a key.
#[derive(Debug, Clone, FromRow)]
pub struct KeySpend {
    pub total: Decimal,
    pub daily: Decimal,
    pub weekly: Decimal,
    pub monthly: Decimal,
}

pub async fn spend(pool: &PgPool, id: Uuid) -> Result<KeySpend, StoreError> {
    Ok(sqlx::query_as::<_, KeySpend>(
        "SELECT coalesce(sum(cost), 0) AS total, \
           coalesce(sum(cost) FILTER (WHERE created_at >= infron_limit_period('daily', now())), 0) AS daily, \
           coalesce(sum(cost) FILTER (WHERE created_at >= infron_limit_period('weekly', now())), 0) AS weekly, \
           coalesce(sum(cost) FILTER (WHERE created_at >= infron_limit_period('monthly', now())), 0) AS monthly \
         FROM request_logs WHERE api_key_id = $1",
    )
    .bind(id)
    .fetch_one(pool)
    .await?)
}

/// A key as the management API creates it: kind, creator and limits in one insert.
pub struct NewKey<'a> {
    pub id: Uuid,
    pub account_id: Uuid,
    pub name: &'a str,
    pub key_hash: &'a [u8],
    pub key_hint: &'a str,
    pub kind: &'a str,
    pub created_by: Option<Uuid>,
    pub credit_limit: Option<Decimal>,
    pub limit_reset: Option<&'a str>,
    pub expires_at: Option<DateTime<Utc>>,
}

pub async fn insert_key(pool: &PgPool, k: NewKey<'_>) -> Result<ApiKeyRow, StoreError> {
    Ok(sqlx::query_as::<_, ApiKeyRow>(&format!(
        "INSERT INTO api_keys (id, account_id, name, key_hash, key_hint, kind, created_by, credit_limit, \
                               limit_reset, expires_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) RETURNING {COLUMNS}"
    ))
    .bind(k.id)
    .bind(k.account_id)
    .bind(k.name)
    .bind(k.key_hash)
    .bind(k.key_hint)
    .bind(k.kind)
    .bind(k.created_by)
    .bind(k.credit_limit)
    .bind(k.limit_reset)
    .bind(k.expires_at)
    .fetch_one(pool)
    .await?)
}

/// An account's key by its keyed hash; deleted keys are not found.
pub async fn get_in_account(
    pool: &PgPool,
    account_id: Uuid,
    hash: &[u8],
) -> Result<Option<ApiKeyRow>, StoreError> {
    Ok(sqlx::query_as::<_, ApiKeyRow>(&format!(
        "SELECT {COLUMNS} FROM api_keys WHERE key_hash = $1 AND account_id = $2 AND deleted_at IS NULL"
    ))
    .bind(hash)
    .bind(account_id)
    .fetch_optional(pool)
    .await?)
}

/// Which keys a listing returns.
pub struct KeyFilter<'a> {
    pub account_id: Uuid,
    pub kinds: &'a [&'a str],
    /// Only keys this user created.
    pub created_by: Option<Uuid>,
    pub include_disabled: bool,
    pub offset: i64,
    pub limit: i64,
}

/// Keys with their keyed hash (the management API's `hash`), oldest first.
pub async fn list_page(
    pool: &PgPool,
    f: &KeyFilter<'_>,
) -> Result<Vec<(ApiKeyRow, Vec<u8>)>, StoreError> {
    #[derive(FromRow)]
    struct WithHash {
        #[sqlx(flatten)]
        row: ApiKeyRow,
        key_hash: Vec<u8>,
    }
    let kinds: Vec<&str> = f.kinds.to_vec();
    let rows = sqlx::query_as::<_, WithHash>(&format!(
        "SELECT {COLUMNS}, key_hash FROM api_keys \
         WHERE account_id = $1 AND deleted_at IS NULL AND kind = ANY($2) \
           AND ($3::uuid IS NULL OR created_by = $3) AND ($4 OR NOT disabled) \
         ORDER BY created_at, id OFFSET $5 LIMIT $6"
    ))
    .bind(f.account_id)
    .bind(&kinds)
    .bind(f.created_by)
    .bind(f.include_disabled)
    .bind(f.offset)
    .bind(f.limit)
    .fetch_all(pool)
    .await?;
    Ok(rows.into_iter().map(|w| (w.row, w.key_hash)).collect())
}

/// The fields of a key the management API changes; `None` leaves a field as it is.
#[derive(Debug, Default, Clone)]
pub struct KeyChanges {
    pub name: Option<String>,
    pub disabled: Option<bool>,
    pub credit_limit: Option<Option<Decimal>>,
    pub limit_reset: Option<Option<String>>,
    pub expires_at: Option<Option<DateTime<Utc>>>,
}

pub async fn update(
    pool: &PgPool,
    id: Uuid,
    c: &KeyChanges,
) -> Result<Option<ApiKeyRow>, StoreError> {
    Ok(sqlx::query_as::<_, ApiKeyRow>(&format!(
        "UPDATE api_keys SET \
           name = coalesce($2, name), \
           disabled = coalesce($3, disabled), \
           credit_limit = CASE WHEN $4 THEN $5 ELSE credit_limit END, \
           limit_reset = CASE WHEN $6 THEN $7 ELSE limit_reset END, \
           expires_at = CASE WHEN $8 THEN $9 ELSE expires_at END, \
           updated_at = now() \
         WHERE id = $1 AND deleted_at IS NULL RETURNING {COLUMNS}"
    ))
    .bind(id)
    .bind(&c.name)
    .bind(c.disabled)
    .bind(c.credit_limit.is_some())
    .bind(c.credit_limit.flatten())
    .bind(c.limit_reset.is_some())
    .bind(c.limit_reset.clone().flatten())
    .bind(c.expires_at.is_some())
    .bind(c.expires_at.flatten())
    .fetch_optional(pool)
    .await?)
}

/// Deletes a key: disabled for good and gone from listings and lookups; the row stays so that
/// request logs and activity keep naming it.
pub async fn soft_delete(pool: &PgPool, id: Uuid) -> Result<bool, StoreError> {
    let done = sqlx::query(
        "UPDATE api_keys SET disabled = true, deleted_at = now(), updated_at = now() \
         WHERE id = $1 AND deleted_at IS NULL",
    )
    .bind(id)
    .execute(pool)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Disables the keys of `kinds` that `user` created in `account` (they left, were removed or
/// lost the role the keys needed). Returns the ids disabled.
pub async fn disable_created_by(
    pool: &PgPool,
    account_id: Uuid,
    user: Uuid,
    kinds: &[&str],
) -> Result<Vec<Uuid>, StoreError> {
    let kinds: Vec<&str> = kinds.to_vec();
    Ok(sqlx::query_scalar(
        "UPDATE api_keys SET disabled = true, updated_at = now() \
         WHERE account_id = $1 AND created_by = $2 AND kind = ANY($3) AND NOT disabled \
           AND deleted_at IS NULL RETURNING id",
    )
    .bind(account_id)
    .bind(user)
    .bind(&kinds)
    .fetch_all(pool)
    .await?)
}

/// Usage per key from the daily rollup (UTC days, so the day, ISO-week and month totals are
/// exact): total, today, this week, this month.
#[derive(Debug, Clone, FromRow)]
pub struct KeyUsage {
    pub api_key_id: Uuid,
    pub total: Decimal,
    pub daily: Decimal,
    pub weekly: Decimal,
    pub monthly: Decimal,
}

pub async fn usage_from_rollup(
    pool: &PgPool,
    account_id: Uuid,
    key_ids: &[Uuid],
) -> Result<Vec<KeyUsage>, StoreError> {
    Ok(sqlx::query_as::<_, KeyUsage>(
        "SELECT api_key_id, coalesce(sum(cost), 0) AS total, \
           coalesce(sum(cost) FILTER (WHERE day >= (now() AT TIME ZONE 'UTC')::date), 0) AS daily, \
           coalesce(sum(cost) FILTER (WHERE day >= date_trunc('week', now() AT TIME ZONE 'UTC')::date), 0) AS weekly, \
           coalesce(sum(cost) FILTER (WHERE day >= date_trunc('month', now() AT TIME ZONE 'UTC')::date), 0) AS monthly \
         FROM finance.activity_daily \
         WHERE dim = 'k' AND api_key_id = ANY($2) AND account_id = $1 GROUP BY api_key_id",
    )
    .bind(account_id)
    .bind(key_ids)
    .fetch_all(pool)
    .await?)
}

/// What each of `keys` (id, reset period) used in its current limit period.
pub async fn current_period_usage(
    pool: &PgPool,
    keys: &[(Uuid, Option<String>)],
) -> Result<Vec<(Uuid, Decimal)>, StoreError> {
    let ids: Vec<Uuid> = keys.iter().map(|(id, _)| *id).collect();
    let resets: Vec<Option<String>> = keys.iter().map(|(_, r)| r.clone()).collect();
    Ok(sqlx::query_as::<_, (Uuid, Decimal)>(
        "SELECT k.id, coalesce(u.used, 0) FROM UNNEST($1::uuid[], $2::text[]) AS k(id, reset) \
         LEFT JOIN api_key_usage u ON u.api_key_id = k.id \
                                  AND u.period_start = infron_limit_period(k.reset, now())",
    )
    .bind(&ids)
    .bind(&resets)
    .fetch_all(pool)
    .await?)
}

/// The auth revision: moves whenever a key or an account changes (see the migration
/// `auth_revision`). Instances compare it to drop cached keys.
pub async fn auth_revision(pool: &PgPool) -> Result<i64, StoreError> {
    Ok(
        sqlx::query_scalar("SELECT revision FROM auth_revision WHERE id")
            .fetch_one(pool)
            .await?,
    )
}

/// The channel the auth-revision trigger notifies.
pub const AUTH_CHANNEL: &str = "infron_auth";

/// A limited key's usage in one period after a posting batch added to it.
#[derive(Debug, Clone, FromRow)]
pub struct PeriodUsage {
    pub api_key_id: Uuid,
    pub period_start: DateTime<Utc>,
    pub used: Decimal,
    pub version: i64,
    /// The key's limit now (None if it was removed meanwhile).
    pub credit_limit: Option<Decimal>,
}

/// What limited keys' current periods used before a batch, locked for the batch (rows that do
/// not exist yet are absent: they used nothing).
pub async fn lock_period_usage(
    tx: &mut sqlx::Transaction<'_, sqlx::Postgres>,
    periods: &[(Uuid, DateTime<Utc>)],
) -> Result<Vec<PeriodUsage>, StoreError> {
    let keys: Vec<Uuid> = periods.iter().map(|p| p.0).collect();
    let starts: Vec<DateTime<Utc>> = periods.iter().map(|p| p.1).collect();
    Ok(sqlx::query_as::<_, PeriodUsage>(
        "SELECT u.api_key_id, u.period_start, u.used, u.version, k.credit_limit \
         FROM api_key_usage u JOIN api_keys k ON k.id = u.api_key_id \
         JOIN UNNEST($1::uuid[], $2::timestamptz[]) AS p(key, at) \
           ON u.api_key_id = p.key AND u.period_start = p.at \
         ORDER BY u.api_key_id, u.period_start FOR UPDATE OF u",
    )
    .bind(&keys)
    .bind(&starts)
    .fetch_all(&mut **tx)
    .await?)
}

/// Adds what a batch charged to limited keys' periods; returns each period after the change.
pub async fn add_period_usage(
    tx: &mut sqlx::Transaction<'_, sqlx::Postgres>,
    items: &[(Uuid, DateTime<Utc>, Decimal)],
) -> Result<Vec<PeriodUsage>, StoreError> {
    if items.is_empty() {
        return Ok(Vec::new());
    }
    let keys: Vec<Uuid> = items.iter().map(|i| i.0).collect();
    let starts: Vec<DateTime<Utc>> = items.iter().map(|i| i.1).collect();
    let amounts: Vec<Decimal> = items.iter().map(|i| i.2).collect();
    Ok(sqlx::query_as::<_, PeriodUsage>(
        "WITH up AS ( \
           INSERT INTO api_key_usage AS u (api_key_id, period_start, used, version) \
           SELECT key, at, amount, 1 FROM UNNEST($1::uuid[], $2::timestamptz[], $3::numeric[]) \
                  AS x(key, at, amount) ORDER BY key, at \
           ON CONFLICT (api_key_id, period_start) \
           DO UPDATE SET used = u.used + EXCLUDED.used, version = u.version + 1 \
           RETURNING u.api_key_id, u.period_start, u.used, u.version) \
         SELECT up.api_key_id, up.period_start, up.used, up.version, k.credit_limit \
         FROM up JOIN api_keys k ON k.id = up.api_key_id",
    )
    .bind(&keys)
    .bind(&starts)
    .bind(&amounts)
    .fetch_all(&mut **tx)
    .await?)
}
