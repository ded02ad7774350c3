use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use sqlx::{FromRow, Postgres, Transaction};
use uuid::Uuid;

use crate::StoreError;

/// One request's metadata. Never the prompt or the completion.
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
    pub cost: Decimal,
    pub cost_details: Option<serde_json::Value>,
    pub prices: Option<serde_json::Value>,
    pub usage_source: Option<String>,
    pub status: i16,
    pub error_class: Option<String>,
    pub finish_reason: Option<String>,
    pub streamed: bool,
    pub cancelled: bool,
    pub cache_hit: bool,
    pub attempts: serde_json::Value,
    pub latency_ms: Option<i32>,
    pub first_token_ms: Option<i32>,
    pub completed_at: DateTime<Utc>,
}

const COLUMNS: &str = "id, created_at, account_id, api_key_id, requested_model, model, provider, upstream_model, \
    endpoint_kind, prompt_tokens, completion_tokens, cached_tokens, cache_write_tokens, reasoning_tokens, cost, \
    cost_details, prices, usage_source, status, error_class, finish_reason, streamed, cancelled, cache_hit, \
    attempts, latency_ms, first_token_ms, completed_at";

/// Inserts rows; a row whose (id, created_at) exists already is skipped (replayed settlement).
pub async fn insert_batch(
    tx: &mut Transaction<'_, Postgres>,
    rows: &[RequestLogRow],
) -> Result<u64, StoreError> {
    if rows.is_empty() {
        return Ok(0);
    }
    let mut qb =
        sqlx::QueryBuilder::<Postgres>::new(format!("INSERT INTO request_logs ({COLUMNS}) "));
    qb.push_values(rows, |mut b, r| {
        b.push_bind(r.id)
            .push_bind(r.created_at)
            .push_bind(r.account_id)
            .push_bind(r.api_key_id)
            .push_bind(&r.requested_model)
            .push_bind(&r.model)
            .push_bind(&r.provider)
            .push_bind(&r.upstream_model)
            .push_bind(&r.endpoint_kind)
            .push_bind(r.prompt_tokens)
            .push_bind(r.completion_tokens)
            .push_bind(r.cached_tokens)
            .push_bind(r.cache_write_tokens)
            .push_bind(r.reasoning_tokens)
            .push_bind(r.cost)
            .push_bind(&r.cost_details)
            .push_bind(&r.prices)
            .push_bind(&r.usage_source)
            .push_bind(r.status)
            .push_bind(&r.error_class)
            .push_bind(&r.finish_reason)
            .push_bind(r.streamed)
            .push_bind(r.cancelled)
            .push_bind(r.cache_hit)
            .push_bind(&r.attempts)
            .push_bind(r.latency_ms)
            .push_bind(r.first_token_ms)
            .push_bind(r.completed_at);
    });
    qb.push(" ON CONFLICT DO NOTHING");
    Ok(qb.build().execute(&mut **tx).await?.rows_affected())
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
