//! What a caller can ask about their own account: credits, the calling key itself, and one
//! generation's record.

use actix_web::{web, HttpRequest, HttpResponse};
use infron_billing::limits::period_start;
use infron_billing::Usd;
use rust_decimal::Decimal;
use serde::Deserialize;
use serde_json::json;
use uuid::Uuid;

use super::usage::UsdNumber;
use crate::error::ApiError;
use crate::principal::{principal, Principal};
use crate::state::AppState;
use infron_accounts::Visibility;
use serde_json::Value;

fn usd(d: Decimal) -> UsdNumber {
    UsdNumber(Usd::rounded(d))
}

#[derive(sqlx::FromRow)]
struct CreditTotals {
    credited: Decimal,
    usage: Decimal,
    refunded: Decimal,
    expired: Decimal,
    balance: Decimal,
}

/// `GET /api/v1/credits`: what the account was credited, what it used, what remains, and
/// which credits expire when.
#[utoipa::path(
    get, path = "/api/v1/credits", tag = "Usage",
    summary = "The account's credits",
    responses((status = 200, description = "Credits, usage and balance in USD", body = crate::openapi::schemas::CreditsResponse)),
    security(("bearer" = []), ("session" = [])),
)]
pub async fn credits(
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let p = principal(&req, &state).await?;
    Ok(HttpResponse::Ok().json(credits_json(&state, &p).await?))
}

/// `GET /api/v1/credits`'s answer for `p`.
pub async fn credits_json(state: &AppState, p: &Principal) -> Result<Value, ApiError> {
    p.actor.read_credits()?;
    let account_id = p.actor.account_id();
    let totals = sqlx::query_as::<_, CreditTotals>(
        // From the daily ledger rollup (exact: its deltas are written with the entries), not
        // the entries themselves: a busy account has millions of usage entries.
        "SELECT coalesce(sum(d.credits), 0) AS credited, \
                coalesce(sum(d.debits) FILTER (WHERE d.txn_kind = 'usage'), 0) AS usage, \
                coalesce(sum(d.debits) FILTER (WHERE d.txn_kind IN ('refund', 'dispute')), 0) AS refunded, \
                coalesce(sum(d.debits) FILTER (WHERE d.txn_kind = 'expiry'), 0) AS expired, \
                la.balance \
         FROM ledger_accounts la \
         LEFT JOIN finance.ledger_daily d ON d.ledger_account_id = la.id \
         WHERE la.account_id = $1 AND la.kind = 'credits' GROUP BY la.id, la.balance",
    )
    .bind(account_id)
    .fetch_optional(&state.pg)
    .await
    .map_err(infron_store::StoreError::from)?
    .ok_or_else(|| ApiError::Internal(format!("account {account_id} has no credits book")))?;
    let lots = infron_store::lots::open_lots(&state.pg, account_id).await?;
    let expiring: Vec<_> = lots
        .iter()
        .filter_map(|l| l.expires_at.map(|at| json!({ "amount": usd(l.remaining), "expires_at": at, "source": l.source_kind })))
        .collect();
    Ok(json!({ "data": {
        "total_credits": usd(totals.credited),
        "total_usage": usd(totals.usage),
        "total_refunded": usd(totals.refunded),
        "total_expired": usd(totals.expired),
        "balance": usd(totals.balance),
        "expiring": expiring,
    }}))
}

/// `GET /api/v1/key`: the calling key (inference or management): label, limit and spend, in
/// OpenRouter's shape (BYOK figures are zero: Infron has no BYOK).
#[utoipa::path(
    get, path = "/api/v1/key", tag = "Usage",
    summary = "The calling key",
    responses((status = 200, description = "The key, its limit and spend", body = crate::openapi::schemas::CurrentKeyResponse)),
    security(("bearer" = []), ("x_api_key" = [])),
)]
pub async fn key(req: HttpRequest, state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let caller = state.auth.authenticate_any(&req).await?;
    let row = infron_store::keys::get(&state.pg, caller.key_id)
        .await?
        .ok_or_else(|| ApiError::Unauthorized("invalid API key".into()))?;
    let usage = infron_store::keys::usage_from_rollup(&state.pg, caller.account_id, &[row.id])
        .await?
        .into_iter()
        .next();
    let remaining = match &caller.limit {
        Some(limit) => {
            let start = period_start(limit.reset, chrono::Utc::now());
            let (used, _) =
                infron_store::keys::period_usage(&state.pg, caller.key_id, start).await?;
            Some(usd((limit.limit.decimal() - used).max(Decimal::ZERO)))
        }
        None => None,
    };
    let spent = |f: fn(&infron_store::keys::KeyUsage) -> Decimal| {
        usd(usage.as_ref().map_or(Decimal::ZERO, f))
    };
    let zero = || usd(Decimal::ZERO);
    let management = caller.kind.is_management();
    Ok(HttpResponse::Ok().json(json!({ "data": {
        "label": row.key_hint,
        "name": row.name,
        "key_hint": row.key_hint,
        "limit": row.credit_limit.map(usd),
        "limit_remaining": remaining,
        "limit_reset": row.limit_reset,
        "include_byok_in_limit": false,
        "usage": spent(|u| u.total),
        "usage_daily": spent(|u| u.daily),
        "usage_weekly": spent(|u| u.weekly),
        "usage_monthly": spent(|u| u.monthly),
        "byok_usage": zero(),
        "byok_usage_daily": zero(),
        "byok_usage_weekly": zero(),
        "byok_usage_monthly": zero(),
        "is_free_tier": false,
        "is_management_key": management,
        "is_provisioning_key": management,
        "kind": row.kind,
        "creator_user_id": row.created_by.map(|u| u.to_string()),
        // The per-minute limits this key's requests are checked against: its own (or the
        // account's default for keys) in OpenRouter's shape, `-1` meaning none, and the
        // account's limit over all of its keys.
        "rate_limit": {
            "requests": caller.rate.key_rpm.unwrap_or(-1),
            "tokens": caller.rate.key_tpm.unwrap_or(-1),
            "interval": "1m",
            "note": "Requests and tokens per minute for this key; -1 means no limit. `account` is the limit over all of the account's keys.",
            "account": {
                "requests": caller.rate.account_rpm.unwrap_or(-1),
                "tokens": caller.rate.account_tpm.unwrap_or(-1),
            },
        },
        "expires_at": row.expires_at,
        "created_at": row.created_at,
        "workspace_id": row.account_id.to_string(),
    }})))
}

#[derive(Deserialize)]
pub struct GenerationQuery {
    id: Option<String>,
}

/// `GET /api/v1/generation?id=gen-…`: one request's metadata, tokens and cost, in OpenRouter's
/// shape plus Infron's breakdown (`cost_details`, `prices`, `providers`). Keys and members see
/// the requests of the keys they may see; anything else is 404.
#[utoipa::path(
    get, path = "/api/v1/generation", tag = "Usage",
    summary = "One request's record",
    description = "Tokens, cost, latency and the providers tried. Records appear a moment after the request ends.",
    params(("id" = String, Query, description = "The request's id (`gen-…`)")),
    responses((status = 200, description = "The record", body = crate::openapi::schemas::GenerationResponse)),
    security(("bearer" = []), ("session" = [])),
)]
pub async fn generation(
    req: HttpRequest,
    query: web::Query<GenerationQuery>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let p = principal(&req, &state).await?;
    let raw = query
        .id
        .as_deref()
        .ok_or_else(|| ApiError::invalid("id", "query parameter 'id' is required"))?;
    Ok(HttpResponse::Ok().json(generation_json(&state, &p, raw).await?))
}

/// `GET /api/v1/generation?id=`'s answer for `p`.
pub async fn generation_json(
    state: &AppState,
    p: &Principal,
    raw: &str,
) -> Result<Value, ApiError> {
    let visibility = p.actor.read_generation()?;
    let id = Uuid::parse_str(raw.trim_start_matches("gen-"))
        .map_err(|_| ApiError::invalid("id", format!("'{raw}' is not a generation id")))?;
    let not_found = || {
        ApiError::UnknownId(format!(
            "generation '{raw}' not found (records appear a moment after the request ends)"
        ))
    };
    let g = infron_store::usage_reads::generation(&state.pg, p.actor.account_id(), id)
        .await?
        .ok_or_else(not_found)?;
    let r = &g.entry;
    if let Visibility::CreatedBy(user) = visibility {
        let creator = match r.api_key_id {
            Some(k) => infron_store::keys::get(&state.pg, k)
                .await?
                .and_then(|k| k.created_by),
            None => None,
        };
        if creator != Some(user) {
            return Err(not_found());
        }
    }
    let api_type = match r.endpoint_kind.as_str() {
        "embedding" | "embeddings" => "embeddings",
        _ => "completions",
    };
    // Attempts that failed (status and class only: provider messages are never stored), then
    // the one that answered.
    let mut provider_responses: Vec<Value> = g
        .attempts
        .as_ref()
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .map(|t| {
                    json!({
                        "status": t.get("status").cloned().unwrap_or(Value::Null),
                        "endpoint_id": format!("{}/{}", t["provider"].as_str().unwrap_or(""), t["upstream_model"].as_str().unwrap_or("")),
                        "model_permaslug": t["model"],
                        "latency": t["latency_ms"],
                        "is_byok": false,
                        "provider": t["provider"],
                        "error": t.get("class"),
                    })
                })
                .collect()
        })
        .unwrap_or_default();
    if let (Some(provider), Some(upstream)) = (&r.provider, &r.upstream_model) {
        if r.cache_hit {
            // Answered from the response cache: no provider was called.
        } else {
            provider_responses.push(json!({
                "status": if r.status < 400 { json!(200) } else { json!(r.status) },
                "endpoint_id": format!("{provider}/{upstream}"),
                "model_permaslug": r.model,
                "latency": r.latency_ms,
                "is_byok": false,
                "provider": provider,
                "error": Value::Null,
            }));
        }
    }
    let provider_responses = (!provider_responses.is_empty()).then_some(provider_responses);
    // The breakdown is recomputed from the tokens and the prices the request was charged at.
    let cost_details = g
        .prices
        .as_ref()
        .and_then(|p| serde_json::from_value::<infron_billing::Prices>(p.clone()).ok())
        .and_then(|p| {
            p.cost(&infron_billing::Usage {
                prompt_tokens: u64::try_from(r.prompt_tokens).unwrap_or(0),
                completion_tokens: u64::try_from(r.completion_tokens).unwrap_or(0),
                cached_tokens: u64::try_from(r.cached_tokens).unwrap_or(0),
                cache_write_tokens: u64::try_from(r.cache_write_tokens).unwrap_or(0),
                reasoning_tokens: u64::try_from(r.reasoning_tokens).unwrap_or(0),
                images: 0,
            })
            .ok()
        })
        .and_then(|c| serde_json::to_value(c).ok());
    let generation_time = match (r.latency_ms, r.first_token_ms) {
        (Some(l), Some(f)) if l >= f => Some(l - f),
        _ => None,
    };
    Ok(json!({ "data": {
        "id": format!("gen-{}", r.id.simple()),
        "upstream_id": Value::Null,
        "total_cost": usd(r.cost),
        "usage": usd(r.cost),
        "cache_discount": Value::Null,
        "upstream_inference_cost": Value::Null,
        "created_at": r.created_at,
        "model": r.model.clone().unwrap_or_else(|| r.requested_model.clone()),
        "requested_model": r.requested_model,
        "app_id": Value::Null,
        "streamed": r.streamed,
        "cancelled": r.cancelled,
        "provider_name": r.provider,
        "upstream_model": r.upstream_model,
        "api_key_id": r.api_key_id,
        "latency": r.latency_ms,
        "first_token_latency": r.first_token_ms,
        "moderation_latency": Value::Null,
        "generation_time": generation_time,
        "finish_reason": r.finish_reason,
        "native_finish_reason": r.finish_reason,
        "service_tier": Value::Null,
        "tokens_prompt": r.prompt_tokens,
        "tokens_completion": r.completion_tokens,
        "native_tokens_prompt": r.prompt_tokens,
        "native_tokens_completion": r.completion_tokens,
        "native_tokens_completion_images": Value::Null,
        "native_tokens_reasoning": r.reasoning_tokens,
        "native_tokens_cached": r.cached_tokens,
        "native_tokens_cache_write": r.cache_write_tokens,
        "num_media_prompt": Value::Null,
        "num_input_audio_prompt": Value::Null,
        "num_media_completion": Value::Null,
        "num_search_results": Value::Null,
        "num_fetches": Value::Null,
        "web_search_engine": Value::Null,
        "origin": "",
        "is_byok": false,
        "external_user": Value::Null,
        "api_type": api_type,
        "preset_id": Value::Null,
        "router": Value::Null,
        "provider_responses": provider_responses,
        "user_agent": Value::Null,
        "http_referer": Value::Null,
        "data_region": "global",
        "workspace_id": r.account_id.to_string(),
        "usage_source": r.usage_source,
        "cost_details": cost_details,
        "overage": usd(g.overage),
        "prices": g.prices,
        "providers": g.attempts,
        "cache_hit": r.cache_hit,
        "status": r.status,
        "error_class": r.error_class,
    }}))
}
