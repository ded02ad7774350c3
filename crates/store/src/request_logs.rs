//! Request logs: one row per request, metadata only (never the prompt or the completion), the
//! sub-ledger of usage. Written by the ledger writer in bulk.

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use sqlx::{FromRow, PgConnection};
use uuid::Uuid;

use crate::copy::BinaryCopy;
use crate::StoreError;

/// One request's metadata, as stored.
#[derive(Debug, Clone, Serialize, Deserialize, FromRow, PartialEq)]
pub struct RequestLogRow {
    pub id: Uuid,
    pub created_at: DateTime<Utc>,
    pub account_id: Uuid,
    pub api_key_id: Option<Uuid>,
    pub requested_model: String,
    pub model: Option<String>,
    pub provider: Option<String>,
    pub upstream_model: Option<String>,
    pub endpoint_kind: String,
    pub prompt_tokens: i64,
    pub completion_tokens: i64,
    pub cached_tokens: i64,
    pub cache_write_tokens: i64,
    pub reasoning_tokens: i64,
    /// What the tenant was charged.
    pub cost: Decimal,
    /// Usage beyond the hold, absorbed by the platform.
    pub overage: Decimal,
    pub price_id: Option<Uuid>,
    pub usage_source: Option<String>,
    pub status: i16,
    pub error_class: Option<String>,
    pub finish_reason: Option<String>,
    pub streamed: bool,
    pub cancelled: bool,
    pub cache_hit: bool,
    /// Attempts beyond the one that answered (status and class only); None if the first did.
    pub attempts: Option<serde_json::Value>,
    pub latency_ms: Option<i32>,
    pub first_token_ms: Option<i32>,
    pub completed_at: DateTime<Utc>,
    pub usage_txn_id: Option<Uuid>,
}

pub const COLUMNS: &str =
    "id, created_at, account_id, api_key_id, requested_model, model, provider, \
    upstream_model, endpoint_kind, prompt_tokens, completion_tokens, cached_tokens, \
    cache_write_tokens, reasoning_tokens, cost, overage, price_id, usage_source, status, \
    error_class, finish_reason, streamed, cancelled, cache_hit, attempts, latency_ms, \
    first_token_ms, completed_at, usage_txn_id";
const FIELDS: i16 = 29;

fn encode(rows: &[&RequestLogRow]) -> Result<Vec<u8>, StoreError> {
    let mut copy = BinaryCopy::new(FIELDS, rows.len() * 320);
    for r in rows {
        copy.row()
            .field(&r.id)?
            .field(&r.created_at)?
            .field(&r.account_id)?
            .field(&r.api_key_id)?
            .field(&r.requested_model)?
            .field(&r.model)?
            .field(&r.provider)?
            .field(&r.upstream_model)?
            .field(&r.endpoint_kind)?
            .field(&r.prompt_tokens)?
            .field(&r.completion_tokens)?
            .field(&r.cached_tokens)?
            .field(&r.cache_write_tokens)?
            .field(&r.reasoning_tokens)?
            .field(&r.cost)?
            .field(&r.overage)?
            .field(&r.price_id)?
            .field(&r.usage_source)?
            .field(&r.status)?
            .field(&r.error_class)?
            .field(&r.finish_reason)?
            .field(&r.streamed)?
            .field(&r.cancelled)?
            .field(&r.cache_hit)?
            .field(&r.attempts)?
            .field(&r.latency_ms)?
            .field(&r.first_token_ms)?
            .field(&r.completed_at)?
            .field(&r.usage_txn_id)?;
    }
    Ok(copy.finish())
}

async fn copy_into(conn: &mut PgConnection, table: &str, data: Vec<u8>) -> Result<(), StoreError> {
    let mut copy = conn
        .copy_in_raw(&format!(
            "COPY {table} ({COLUMNS}) FROM STDIN (FORMAT binary)"
        ))
        .await?;
    if let Err(e) = copy.send(data).await {
        let _ = copy.abort("encoding failed").await;
        return Err(e.into());
    }
    copy.finish().await?;
    Ok(())
}

/// Loads rows none of which exists yet (one COPY). A row that does exist fails the whole load
/// with a unique violation (`is_duplicate`); use `insert_new` then.
pub async fn copy_new(conn: &mut PgConnection, rows: &[&RequestLogRow]) -> Result<(), StoreError> {
    if rows.is_empty() {
        return Ok(());
    }
    copy_into(conn, "request_logs", encode(rows)?).await
}

/// Inserts the rows that do not exist yet and returns their ids: a COPY into a temporary
/// table, then one INSERT … ON CONFLICT DO NOTHING.
pub async fn insert_new(
    conn: &mut PgConnection,
    rows: &[&RequestLogRow],
) -> Result<Vec<Uuid>, StoreError> {
    if rows.is_empty() {
        return Ok(Vec::new());
    }
    sqlx::query(
        "CREATE TEMPORARY TABLE IF NOT EXISTS request_logs_staging \
         (LIKE request_logs INCLUDING DEFAULTS) ON COMMIT DELETE ROWS",
    )
    .execute(&mut *conn)
    .await?;
    copy_into(conn, "request_logs_staging", encode(rows)?).await?;
    let ids = sqlx::query_scalar(&format!(
        "INSERT INTO request_logs ({COLUMNS}) SELECT {COLUMNS} FROM request_logs_staging \
         ON CONFLICT DO NOTHING RETURNING id"
    ))
    .fetch_all(&mut *conn)
    .await?;
    sqlx::query("TRUNCATE request_logs_staging")
        .execute(&mut *conn)
        .await?;
    Ok(ids)
}

/// Which of these (id, created_at) already have a row.
pub async fn existing(
    conn: &mut PgConnection,
    rows: &[&RequestLogRow],
) -> Result<Vec<Uuid>, StoreError> {
    let ids: Vec<Uuid> = rows.iter().map(|r| r.id).collect();
    let at: Vec<DateTime<Utc>> = rows.iter().map(|r| r.created_at).collect();
    Ok(sqlx::query_scalar(
        "SELECT r.id FROM request_logs r \
         JOIN UNNEST($1::uuid[], $2::timestamptz[]) AS x(id, at) ON r.id = x.id AND r.created_at = x.at",
    )
    .bind(&ids)
    .bind(&at)
    .fetch_all(&mut *conn)
    .await?)
}

/// True for the unique violation a COPY of an already posted row raises.
pub fn is_duplicate(e: &StoreError) -> bool {
    matches!(e, StoreError::Database(sqlx::Error::Database(d)) if d.code().as_deref() == Some("23505"))
}

/// Makes sure each (id, prices) snapshot exists.
pub async fn ensure_price_snapshots(
    conn: &mut PgConnection,
    snapshots: &[(Uuid, &serde_json::Value)],
) -> Result<(), StoreError> {
    if snapshots.is_empty() {
        return Ok(());
    }
    let ids: Vec<Uuid> = snapshots.iter().map(|(id, _)| *id).collect();
    let prices: Vec<&serde_json::Value> = snapshots.iter().map(|(_, p)| *p).collect();
    sqlx::query(
        "INSERT INTO price_snapshots (id, prices) SELECT * FROM UNNEST($1::uuid[], $2::jsonb[]) \
         ON CONFLICT DO NOTHING",
    )
    .bind(&ids)
    .bind(&prices)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

pub async fn get(
    pool: &sqlx::PgPool,
    account_id: Uuid,
    id: Uuid,
) -> Result<Option<RequestLogRow>, StoreError> {
    Ok(sqlx::query_as::<_, RequestLogRow>(&format!(
        "SELECT {COLUMNS} FROM request_logs WHERE id = $1 AND account_id = $2"
    ))
    .bind(id)
    .bind(account_id)
    .fetch_optional(pool)
    .await?)
}

/// The prices a snapshot id names.
pub async fn price_snapshot(
    pool: &sqlx::PgPool,
    id: Uuid,
) -> Result<Option<serde_json::Value>, StoreError> {
    Ok(
        sqlx::query_scalar("SELECT prices FROM price_snapshots WHERE id = $1")
            .bind(id)
            .fetch_optional(pool)
            .await?,
    )
}
