//! What an account spent: `GET /api/v1/activity` (per UTC day, model, provider and key, from the
//! daily rollup) and `GET /api/v1/logs` (the request log, metadata only, keyset-paginated).
//! Members see their own keys' rows only; the rules decide.

use std::collections::HashMap;

use actix_web::{web, HttpRequest, HttpResponse};
use chrono::{DateTime, Duration, NaiveDate, Utc};
use infron_accounts::{Actor, Visibility};
use infron_billing::Usd;
pub use infron_store::usage_reads::ActivityBy;
use infron_store::usage_reads::{Buckets, LogQuery, StatusFilter};
use rust_decimal::Decimal;
use serde_json::{json, Value};
use uuid::Uuid;

use super::keys::hex_of;
use super::usage::UsdNumber;
use crate::error::ApiError;
use crate::principal::{principal, Principal};
use crate::state::AppState;

/// Activity covers the last 30 UTC days and today (which is still counting).
const ACTIVITY_DAYS: i64 = 30;
const LOG_PAGE_DEFAULT: i64 = 50;
const LOG_PAGE_MAX: i64 = 500;

fn usd(d: Decimal) -> UsdNumber {
    UsdNumber(Usd::rounded(d))
}

/// An account's keys: id → (name, hash hex, creator).
struct KeyIndex(HashMap<Uuid, (String, String, Option<Uuid>)>);

impl KeyIndex {
    async fn load(state: &AppState, account: Uuid) -> Result<KeyIndex, ApiError> {
        Ok(KeyIndex(
            infron_store::usage_reads::key_names(&state.pg, account)
                .await?
                .into_iter()
                .map(|(id, name, hash, by)| (id, (name, hex_of(&hash), by)))
                .collect(),
        ))
    }

    fn by_hash(&self, hash: &str) -> Option<(Uuid, Option<Uuid>)> {
        let hash = hash.trim().to_ascii_lowercase();
        self.0
            .iter()
            .find(|(_, (_, h, _))| *h == hash)
            .map(|(id, (_, _, by))| (*id, *by))
    }

    fn created_by(&self, user: Uuid) -> Vec<Uuid> {
        self.0
            .iter()
            .filter(|(_, (_, _, by))| *by == Some(user))
            .map(|(id, _)| *id)
            .collect()
    }

    fn hash(&self, id: Option<Uuid>) -> Option<&str> {
        id.and_then(|i| self.0.get(&i)).map(|(_, h, _)| h.as_str())
    }

    fn name(&self, id: Option<Uuid>) -> Option<&str> {
        id.and_then(|i| self.0.get(&i)).map(|(n, _, _)| n.as_str())
    }
}

/// The keys a read is limited to: the rules' visibility, narrowed by an `api_key_hash` or
/// `user_id` filter. A key or user the caller cannot see is 404. None: the whole account.
fn key_scope(
    visibility: Visibility,
    keys: &KeyIndex,
    key_hash: Option<&str>,
    user: Option<&str>,
) -> Result<Option<Vec<Uuid>>, ApiError> {
    let mut scope: Option<Vec<Uuid>> = match visibility {
        Visibility::Account => None,
        Visibility::CreatedBy(u) => Some(keys.created_by(u)),
    };
    if let Some(h) = key_hash.filter(|h| !h.trim().is_empty()) {
        let (id, _) = keys
            .by_hash(h)
            .filter(|(id, _)| scope.as_ref().is_none_or(|s| s.contains(id)))
            .ok_or_else(|| ApiError::UnknownId("key not found".into()))?;
        scope = Some(vec![id]);
    }
    if let Some(u) = user.filter(|u| !u.trim().is_empty()) {
        let u = Uuid::parse_str(u.trim())
            .map_err(|_| ApiError::invalid("user_id", format!("user_id: '{u}' is not an id")))?;
        if let Visibility::CreatedBy(me) = visibility {
            if u != me {
                return Err(ApiError::UnknownId("member not found".into()));
            }
        }
        let theirs = keys.created_by(u);
        scope = Some(match scope {
            None => theirs,
            Some(s) => s.into_iter().filter(|k| theirs.contains(k)).collect(),
        });
    }
    Ok(scope)
}

fn check_workspace(actor: &Actor, q: &HashMap<String, String>) -> Result<(), ApiError> {
    match q
        .get("workspace_id")
        .map(|w| w.trim())
        .filter(|w| !w.is_empty())
    {
        None => Ok(()),
        Some(w) if Uuid::parse_str(w).ok() == Some(actor.account_id()) => Ok(()),
        Some(_) => Err(ApiError::UnknownId("workspace not found".into())),
    }
}

/// `GET /api/v1/activity?date=&api_key_hash=&user_id=&group_by=&workspace_id=`
#[utoipa::path(
    get, path = "/api/v1/activity", tag = "Usage",
    summary = "Usage per day, model, provider and key",
    params(
        ("date" = Option<String>, Query, description = "One UTC day, `YYYY-MM-DD`"),
        ("api_key_hash" = Option<String>, Query, description = "One key"),
        ("user_id" = Option<String>, Query, description = "The keys a member created"),
        ("group_by" = Option<String>, Query, description = "`workspace` adds `workspace_id`"),
        ("workspace_id" = Option<String>, Query, description = "The account's id"),
    ),
    responses((status = 200, description = "The last 30 days and today, newest first", body = crate::openapi::schemas::ActivityResponse)),
    security(("bearer" = []), ("session" = [])),
)]
pub async fn activity(
    req: HttpRequest,
    query: web::Query<HashMap<String, String>>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let p = principal(&req, &state).await?;
    Ok(HttpResponse::Ok().json(activity_json(&state, &p, &query).await?))
}

/// `GET /api/v1/activity`'s answer for `p`: the dashboard's Activity page reads it too.
pub async fn activity_json(
    state: &AppState,
    p: &Principal,
    query: &HashMap<String, String>,
) -> Result<Value, ApiError> {
    let visibility = p.actor.read_usage()?;
    check_workspace(&p.actor, query)?;
    let by_workspace = match query.get("group_by").map(String::as_str) {
        None | Some("") => false,
        Some("workspace") => true,
        Some(other) => {
            return Err(ApiError::invalid(
                "group_by",
                format!("group_by: '{other}' is not workspace"),
            ))
        }
    };
    let today = Utc::now().date_naive();
    let first = today - Duration::days(ACTIVITY_DAYS);
    let (from, to) = match query
        .get("date")
        .map(|d| d.trim())
        .filter(|d| !d.is_empty())
    {
        None => (first, today),
        Some(d) => {
            let day = NaiveDate::parse_from_str(d, "%Y-%m-%d")
                .map_err(|_| ApiError::invalid("date", format!("date: '{d}' is not YYYY-MM-DD")))?;
            if day < first || day > today {
                return Err(ApiError::invalid(
                    "date",
                    format!("date must be within the last {ACTIVITY_DAYS} days (from {first})"),
                ));
            }
            (day, day)
        }
    };
    let account = p.actor.account_id();
    let keys = KeyIndex::load(state, account).await?;
    let scope = key_scope(
        visibility,
        &keys,
        query.get("api_key_hash").map(String::as_str),
        query.get("user_id").map(String::as_str),
    )?;
    let rows =
        infron_store::usage_reads::activity(&state.pg, account, from, to, scope.as_deref()).await?;
    let data: Vec<Value> = rows
        .iter()
        .map(|r| {
            let model = r.model.clone().unwrap_or_else(|| "unknown".into());
            let provider = r.provider.clone().unwrap_or_else(|| "unknown".into());
            let mut row = json!({
                "date": r.day.format("%Y-%m-%d").to_string(),
                "model": model,
                "model_permaslug": model,
                "endpoint_id": format!("{provider}/{model}"),
                "provider_name": provider,
                "usage": usd(r.cost),
                "byok_usage_inference": UsdNumber(Usd::ZERO),
                "requests": r.requests,
                "prompt_tokens": r.prompt_tokens,
                "completion_tokens": r.completion_tokens,
                "reasoning_tokens": r.reasoning_tokens,
                "api_key_hash": keys.hash(r.api_key_id),
                "api_key_name": keys.name(r.api_key_id),
            });
            if by_workspace {
                row["workspace_id"] = json!(account.to_string());
            }
            row
        })
        .collect();
    Ok(json!({ "data": data }))
}

fn time(
    q: &HashMap<String, String>,
    name: &'static str,
) -> Result<Option<DateTime<Utc>>, ApiError> {
    match q.get(name).map(|v| v.trim()).filter(|v| !v.is_empty()) {
        None => Ok(None),
        Some(v) => DateTime::parse_from_rfc3339(v)
            .map(|t| Some(t.with_timezone(&Utc)))
            .map_err(|_| ApiError::invalid(name, format!("{name}: '{v}' is not an RFC 3339 time"))),
    }
}

/// The opaque cursor: the last row's `created_at` (µs since the epoch) and id.
fn encode_cursor(at: DateTime<Utc>, id: Uuid) -> String {
    format!("{}_{}", at.timestamp_micros(), id.simple())
}

fn decode_cursor(s: &str) -> Result<(DateTime<Utc>, Uuid), ApiError> {
    let bad = || ApiError::invalid("cursor", "cursor is not one this API returned");
    let (micros, id) = s.trim().split_once('_').ok_or_else(bad)?;
    let at = micros
        .parse::<i64>()
        .ok()
        .and_then(DateTime::from_timestamp_micros)
        .ok_or_else(bad)?;
    Ok((at, Uuid::parse_str(id).map_err(|_| bad())?))
}

/// `GET /api/v1/logs?limit=&cursor=&api_key_hash=&user_id=&model=&provider=&status=&from=&to=`
#[utoipa::path(
    get, path = "/api/v1/logs", tag = "Usage",
    summary = "The request log (metadata only)",
    params(
        ("limit" = Option<u32>, Query, description = "1 to 500, default 50"),
        ("cursor" = Option<String>, Query, description = "`next_cursor` of the previous page"),
        ("api_key_hash" = Option<String>, Query), ("user_id" = Option<String>, Query),
        ("model" = Option<String>, Query), ("provider" = Option<String>, Query),
        ("status" = Option<String>, Query, description = "An HTTP status, `success` or `error`"),
        ("from" = Option<String>, Query, description = "RFC 3339 time, inclusive"),
        ("to" = Option<String>, Query, description = "RFC 3339 time, exclusive"),
    ),
    responses((status = 200, description = "Newest first", body = crate::openapi::schemas::LogsResponse)),
    security(("bearer" = []), ("session" = [])),
)]
pub async fn logs(
    req: HttpRequest,
    query: web::Query<HashMap<String, String>>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let p = principal(&req, &state).await?;
    Ok(HttpResponse::Ok().json(logs_json(&state, &p, &query).await?))
}

/// `GET /api/v1/logs`'s answer for `p`: the dashboard's Logs page reads it too.
pub async fn logs_json(
    state: &AppState,
    p: &Principal,
    query: &HashMap<String, String>,
) -> Result<Value, ApiError> {
    let visibility = p.actor.read_usage()?;
    let limit = match query
        .get("limit")
        .map(|v| v.trim())
        .filter(|v| !v.is_empty())
    {
        None => LOG_PAGE_DEFAULT,
        Some(v) => v
            .parse::<i64>()
            .ok()
            .filter(|n| (1..=LOG_PAGE_MAX).contains(n))
            .ok_or_else(|| {
                ApiError::invalid("limit", format!("limit must be 1 to {LOG_PAGE_MAX}"))
            })?,
    };
    let status = match query
        .get("status")
        .map(|v| v.trim())
        .filter(|v| !v.is_empty())
    {
        None => StatusFilter::Any,
        Some("success") => StatusFilter::Success,
        Some("error") => StatusFilter::Error,
        Some(v) => StatusFilter::Exact(
            v.parse::<i16>()
                .ok()
                .filter(|s| (100..=599).contains(s))
                .ok_or_else(|| {
                    ApiError::invalid("status", "status must be an HTTP status, success or error")
                })?,
        ),
    };
    let text = |name: &str| {
        query
            .get(name)
            .map(|v| v.trim().to_string())
            .filter(|v| !v.is_empty())
    };
    let account = p.actor.account_id();
    let keys = KeyIndex::load(state, account).await?;
    let scope = key_scope(
        visibility,
        &keys,
        query.get("api_key_hash").map(String::as_str),
        query.get("user_id").map(String::as_str),
    )?;
    let before = match text("cursor") {
        Some(c) => Some(decode_cursor(&c)?),
        None => None,
    };
    let rows = infron_store::usage_reads::logs(
        &state.pg,
        &LogQuery {
            account_id: account,
            keys: scope,
            model: text("model"),
            provider: text("provider"),
            status,
            from: time(query, "from")?,
            to: time(query, "to")?,
            before,
            limit,
        },
    )
    .await?;
    let next = (rows.len() as i64 == limit)
        .then(|| rows.last().map(|r| encode_cursor(r.created_at, r.id)))
        .flatten();
    let data: Vec<Value> = rows
        .iter()
        .map(|r| {
            json!({
                "id": format!("gen-{}", r.id.simple()),
                "created_at": r.created_at,
                "model": r.model,
                "requested_model": r.requested_model,
                "provider_name": r.provider,
                "upstream_model": r.upstream_model,
                "api_type": r.endpoint_kind,
                "api_key_hash": keys.hash(r.api_key_id),
                "api_key_name": keys.name(r.api_key_id),
                "tokens_prompt": r.prompt_tokens,
                "tokens_completion": r.completion_tokens,
                "native_tokens_cached": r.cached_tokens,
                "native_tokens_cache_write": r.cache_write_tokens,
                "native_tokens_reasoning": r.reasoning_tokens,
                "total_cost": usd(r.cost),
                "status": r.status,
                "streamed": r.streamed,
                "cancelled": r.cancelled,
                "cache_hit": r.cache_hit,
                "latency": r.latency_ms,
                "first_token_latency": r.first_token_ms,
                "finish_reason": r.finish_reason,
                "usage_source": r.usage_source,
                "error_class": r.error_class,
            })
        })
        .collect();
    Ok(json!({ "data": data, "next_cursor": next }))
}

/// The label of a dimension with no value: "unknown" when the rows are totalled by it (a
/// request that failed before a model or provider was chosen), empty otherwise.
fn unknown(by: ActivityBy, dimension: ActivityBy) -> String {
    if by == dimension {
        "unknown".into()
    } else {
        String::new()
    }
}

/// The time an activity read covers: whole UTC days (from the daily rollup) or whole hours
/// (from the hourly rollup, for short spans).
#[derive(Debug, Clone, Copy)]
pub enum Period {
    Days(NaiveDate, NaiveDate),
    Hours(DateTime<Utc>, DateTime<Utc>),
}

/// One bucket (day or hour, by its start) × model × provider × key of the usage the caller may
/// see.
pub struct UsageRow {
    pub bucket: DateTime<Utc>,
    pub model: String,
    pub provider: String,
    pub key_name: Option<String>,
    pub requests: i64,
    pub prompt_tokens: i64,
    pub completion_tokens: i64,
    pub cost: Decimal,
}

/// Usage over `period` totalled by `by`, limited by the rules to what the caller may see (the
/// dashboard's Activity and Credits pages; `GET /api/v1/activity` keeps OpenRouter's per-day,
/// 30-day shape). The dimensions `by` does not total are empty in the rows.
pub async fn usage_rows(
    state: &AppState,
    p: &Principal,
    period: Period,
    by: ActivityBy,
) -> Result<Vec<UsageRow>, ApiError> {
    let visibility = p.actor.read_usage()?;
    let account = p.actor.account_id();
    let keys = KeyIndex::load(state, account).await?;
    let scope = key_scope(visibility, &keys, None, None)?;
    let buckets = match period {
        Period::Days(from, to) => Buckets::Days(from, to),
        Period::Hours(from, to) => Buckets::Hours(from, to),
    };
    let rows =
        infron_store::usage_reads::activity_by(&state.pg, account, buckets, scope.as_deref(), by)
            .await?;
    Ok(rows
        .into_iter()
        .map(|(bucket, r)| UsageRow {
            bucket,
            key_name: keys.name(r.api_key_id).map(str::to_string),
            model: r.model.unwrap_or_else(|| unknown(by, ActivityBy::Model)),
            provider: r
                .provider
                .unwrap_or_else(|| unknown(by, ActivityBy::Provider)),
            requests: r.requests,
            prompt_tokens: r.prompt_tokens,
            completion_tokens: r.completion_tokens,
            cost: r.cost,
        })
        .collect())
}
