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
}

const COLUMNS: &str =
    "id, account_id, name, key_hint, disabled, credit_limit, limit_reset, expires_at, created_at";

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
        "UPDATE api_keys SET disabled = $2 WHERE id = $1 RETURNING {COLUMNS}"
    ))
    .bind(id)
    .bind(disabled)
    .fetch_optional(pool)
    .await?)
}
