//! Reads of request logs and the daily rollup for the tenant API (`/api/v1/logs`,
//! `/api/v1/generation`, `/api/v1/activity`). Only the columns these routes show are selected,
//! so changes to how the money path writes request logs stay out of this module.

use chrono::{DateTime, NaiveDate, Utc};
use rust_decimal::Decimal;
use sqlx::{FromRow, PgPool, Postgres, QueryBuilder};
use uuid::Uuid;

use crate::StoreError;

/// One request's metadata as the log lists it.
#[derive(Debug, Clone, FromRow)]
pub struct LogEntry {
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
    pub status: i16,
    pub streamed: bool,
    pub cancelled: bool,
    pub cache_hit: bool,
    pub latency_ms: Option<i32>,
    pub first_token_ms: Option<i32>,
    pub finish_reason: Option<String>,
    pub usage_source: Option<String>,
    pub error_class: Option<String>,
}

const COLUMNS: &str = "id, created_at, account_id, api_key_id, requested_model, model, provider, \
    upstream_model, endpoint_kind, prompt_tokens, completion_tokens, cached_tokens, \
    cache_write_tokens, reasoning_tokens, cost, status, streamed, cancelled, cache_hit, latency_ms, \
    first_token_ms, finish_reason, usage_source, error_class";

/// Which requests a log page shows.
#[derive(Debug, Clone, Default)]
pub enum StatusFilter {
    #[default]
    Any,
    Exact(i16),
    /// Status below 400.
    Success,
    /// Status 400 and above.
    Error,
}

#[derive(Debug, Clone)]
pub struct LogQuery {
    pub account_id: Uuid,
    /// Only requests made with these keys (a member's own keys, or a key filter).
    pub keys: Option<Vec<Uuid>>,
    pub model: Option<String>,
    pub provider: Option<String>,
    pub status: StatusFilter,
    pub from: Option<DateTime<Utc>>,
    pub to: Option<DateTime<Utc>>,
    /// Keyset cursor: entries strictly older than this `(created_at, id)`.
    pub before: Option<(DateTime<Utc>, Uuid)>,
    pub limit: i64,
}

/// A page of the log, newest first. Served by the (account_id, created_at) or
/// (api_key_id, created_at) index; partitions outside [from, to) are pruned.
pub async fn logs(pool: &PgPool, q: &LogQuery) -> Result<Vec<LogEntry>, StoreError> {
    let mut b: QueryBuilder<Postgres> = QueryBuilder::new(format!(
        "SELECT {COLUMNS} FROM request_logs WHERE account_id = "
    ));
    b.push_bind(q.account_id);
    if let Some(keys) = &q.keys {
        b.push(" AND api_key_id = ANY(")
            .push_bind(keys.clone())
            .push(")");
    }
    if let Some(m) = &q.model {
        b.push(" AND model = ").push_bind(m.clone());
    }
    if let Some(p) = &q.provider {
        b.push(" AND provider = ").push_bind(p.clone());
    }
    match q.status {
        StatusFilter::Any => {}
        StatusFilter::Exact(s) => {
            b.push(" AND status = ").push_bind(s);
        }
        StatusFilter::Success => {
            b.push(" AND status < 400");
        }
        StatusFilter::Error => {
            b.push(" AND status >= 400");
        }
    }
    if let Some(from) = q.from {
        b.push(" AND created_at >= ").push_bind(from);
    }
    if let Some(to) = q.to {
        b.push(" AND created_at < ").push_bind(to);
    }
    if let Some((at, id)) = q.before {
        b.push(" AND (created_at, id) < (")
            .push_bind(at)
            .push(", ")
            .push_bind(id)
            .push(")");
    }
    b.push(" ORDER BY created_at DESC, id DESC LIMIT ")
        .push_bind(q.limit);
    Ok(b.build_query_as::<LogEntry>().fetch_all(pool).await?)
}

/// One request of an account, with the prices it was charged at (its price snapshot), what
/// the provider reported beyond its hold, and the provider attempts that failed before the one
/// that answered (status and class only).
#[derive(Debug, Clone, FromRow)]
pub struct Generation {
    #[sqlx(flatten)]
    pub entry: LogEntry,
    pub overage: Decimal,
    pub prices: Option<serde_json::Value>,
    pub attempts: Option<serde_json::Value>,
}

pub async fn generation(
    pool: &PgPool,
    account_id: Uuid,
    id: Uuid,
) -> Result<Option<Generation>, StoreError> {
    let columns = COLUMNS
        .split(", ")
        .map(|c| format!("r.{}", c.trim()))
        .collect::<Vec<_>>()
        .join(", ");
    Ok(sqlx::query_as::<_, Generation>(&format!(
        "SELECT {columns}, r.overage, p.prices, r.attempts \
         FROM request_logs r LEFT JOIN price_snapshots p ON p.id = r.price_id \
         WHERE r.id = $1 AND r.account_id = $2"
    ))
    .bind(id)
    .bind(account_id)
    .fetch_optional(pool)
    .await?)
}

/// One row of activity: a UTC day, model, provider and key.
#[derive(Debug, Clone, FromRow)]
pub struct ActivityRow {
    pub day: NaiveDate,
    pub model: Option<String>,
    pub provider: Option<String>,
    pub api_key_id: Option<Uuid>,
    pub requests: i64,
    pub prompt_tokens: i64,
    pub completion_tokens: i64,
    pub reasoning_tokens: i64,
    pub cost: Decimal,
}

/// Activity per day, model, provider and key for days [from, to], from the daily rollup
/// (served by its (account_id, day) index whatever the number of request logs).
pub async fn activity(
    pool: &PgPool,
    account_id: Uuid,
    from: NaiveDate,
    to: NaiveDate,
    keys: Option<&[Uuid]>,
) -> Result<Vec<ActivityRow>, StoreError> {
    Ok(sqlx::query_as::<_, ActivityRow>(
        "SELECT day, model, provider, api_key_id, sum(requests)::bigint AS requests, \
                sum(prompt_tokens)::bigint AS prompt_tokens, \
                sum(completion_tokens)::bigint AS completion_tokens, \
                sum(reasoning_tokens)::bigint AS reasoning_tokens, sum(cost) AS cost \
         FROM finance.usage_daily \
         WHERE account_id = $1 AND day BETWEEN $2 AND $3 AND ($4::uuid[] IS NULL OR api_key_id = ANY($4)) \
         GROUP BY day, model, provider, api_key_id \
         ORDER BY day DESC, sum(cost) DESC, model, provider, api_key_id",
    )
    .bind(account_id)
    .bind(from)
    .bind(to)
    .bind(keys)
    .fetch_all(pool)
    .await?)
}

/// What activity is totalled by besides its time bucket. The dashboard's charts need one
/// dimension at a time, so the rollup is summed by that one in SQL instead of shipping every
/// (model, provider, key) combination to the page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ActivityBy {
    Model,
    Provider,
    Key,
    /// The bucket's total only.
    Total,
}

impl ActivityBy {
    /// The selected columns and the GROUP BY suffix (static SQL, never caller text).
    fn sql(self) -> (&'static str, &'static str) {
        match self {
            ActivityBy::Model => (
                "model, NULL::text AS provider, NULL::uuid AS api_key_id",
                ", model",
            ),
            ActivityBy::Provider => (
                "NULL::text AS model, provider, NULL::uuid AS api_key_id",
                ", provider",
            ),
            ActivityBy::Key => (
                "NULL::text AS model, NULL::text AS provider, api_key_id",
                ", api_key_id",
            ),
            ActivityBy::Total => (
                "NULL::text AS model, NULL::text AS provider, NULL::uuid AS api_key_id",
                "",
            ),
        }
    }
}

/// The time buckets of an activity query: UTC days [from, to] (the daily rollup), or the whole
/// UTC hours in [from, to) (the hourly rollup, which keeps the last eight days).
#[derive(Debug, Clone, Copy)]
pub enum Buckets {
    Days(NaiveDate, NaiveDate),
    Hours(DateTime<Utc>, DateTime<Utc>),
}

/// Activity per bucket and `by`, newest bucket first. Without a key scope it reads
/// `finance.activity_daily` / `activity_hourly`, which hold each bucket per key and per model
/// and provider (a few thousand rows for months of a busy account). Limited to some keys (a
/// member sees only their own), days come from `finance.usage_daily` and hours from the
/// request log through its key index. A row's unused dimensions are None; `day` is the
/// bucket's UTC day.
pub async fn activity_by(
    pool: &PgPool,
    account_id: Uuid,
    buckets: Buckets,
    keys: Option<&[Uuid]>,
    by: ActivityBy,
) -> Result<Vec<(DateTime<Utc>, ActivityRow)>, StoreError> {
    let (columns, group) = by.sql();
    let sums = "sum(requests)::bigint AS requests, sum(prompt_tokens)::bigint AS prompt_tokens, \
                sum(completion_tokens)::bigint AS completion_tokens, \
                sum(reasoning_tokens)::bigint AS reasoning_tokens, sum(cost) AS cost";
    let dim = if by == ActivityBy::Key { "k" } else { "m" };
    let sql = match (buckets, keys) {
        (Buckets::Days(..), None) => format!(
            "SELECT (day::timestamp AT TIME ZONE 'UTC') AS hour, {columns}, {sums} \
             FROM finance.activity_daily \
             WHERE account_id = $1 AND dim = '{dim}' AND day BETWEEN $2 AND $3 \
             GROUP BY day{group} ORDER BY day DESC"
        ),
        (Buckets::Hours(..), None) => format!(
            "SELECT hour, {columns}, {sums} \
             FROM finance.activity_hourly \
             WHERE account_id = $1 AND dim = '{dim}' AND hour >= $2 AND hour < $3 \
             GROUP BY hour{group} ORDER BY hour DESC"
        ),
        (Buckets::Days(..), Some(_)) => format!(
            "SELECT (day::timestamp AT TIME ZONE 'UTC') AS hour, {columns}, {sums} \
             FROM finance.usage_daily \
             WHERE account_id = $1 AND day BETWEEN $2 AND $3 AND api_key_id = ANY($4) \
             GROUP BY day{group} ORDER BY day DESC"
        ),
        (Buckets::Hours(..), Some(_)) => format!(
            "SELECT date_trunc('hour', created_at AT TIME ZONE 'UTC') AT TIME ZONE 'UTC' AS hour, \
                    {columns}, count(*)::bigint AS requests, \
                    coalesce(sum(prompt_tokens), 0)::bigint AS prompt_tokens, \
                    coalesce(sum(completion_tokens), 0)::bigint AS completion_tokens, \
                    coalesce(sum(reasoning_tokens), 0)::bigint AS reasoning_tokens, \
                    coalesce(sum(cost), 0) AS cost \
             FROM request_logs \
             WHERE account_id = $1 AND created_at >= $2 AND created_at < $3 AND api_key_id = ANY($4) \
             GROUP BY 1{group} ORDER BY 1 DESC"
        ),
    };
    let query = sqlx::query_as::<_, HourRow>(&sql).bind(account_id);
    let query = match buckets {
        Buckets::Days(from, to) => query.bind(from).bind(to),
        Buckets::Hours(from, to) => query.bind(from).bind(to),
    };
    let query = match keys {
        Some(k) => query.bind(k),
        None => query,
    };
    let rows = query.fetch_all(pool).await?;
    Ok(rows
        .into_iter()
        .map(|r| {
            (
                r.hour,
                ActivityRow {
                    day: r.hour.date_naive(),
                    model: r.model,
                    provider: r.provider,
                    api_key_id: r.api_key_id,
                    requests: r.requests,
                    prompt_tokens: r.prompt_tokens,
                    completion_tokens: r.completion_tokens,
                    reasoning_tokens: r.reasoning_tokens,
                    cost: r.cost,
                },
            )
        })
        .collect())
}

#[derive(FromRow)]
struct HourRow {
    hour: DateTime<Utc>,
    model: Option<String>,
    provider: Option<String>,
    api_key_id: Option<Uuid>,
    requests: i64,
    prompt_tokens: i64,
    completion_tokens: i64,
    reasoning_tokens: i64,
    cost: Decimal,
}

/// Key ids and names of an account, deleted ones included (logs and activity name them).
pub async fn key_names(
    pool: &PgPool,
    account_id: Uuid,
) -> Result<Vec<(Uuid, String, Vec<u8>, Option<Uuid>)>, StoreError> {
    Ok(sqlx::query_as::<_, (Uuid, String, Vec<u8>, Option<Uuid>)>(
        "SELECT id, name, key_hash, created_by FROM api_keys WHERE account_id = $1",
    )
    .bind(account_id)
    .fetch_all(pool)
    .await?)
}
