//! What a key's holder can ask about their own account: credits, the key itself, and one
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
use crate::state::AppState;

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
pub async fn credits(
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let caller = state.auth.authenticate(&req).await?;
    let totals = sqlx::query_as::<_, CreditTotals>(
        "SELECT coalesce(sum(-e.amount) FILTER (WHERE e.amount < 0), 0) AS credited, \
                coalesce(sum(e.amount) FILTER (WHERE e.amount > 0 AND t.kind = 'usage'), 0) AS usage, \
                coalesce(sum(e.amount) FILTER (WHERE e.amount > 0 AND t.kind IN ('refund', 'dispute')), 0) AS refunded, \
                coalesce(sum(e.amount) FILTER (WHERE e.amount > 0 AND t.kind = 'expiry'), 0) AS expired, \
                la.balance \
         FROM ledger_accounts la \
         LEFT JOIN ledger_entries e ON e.ledger_account_id = la.id \
         LEFT JOIN ledger_transactions t ON t.id = e.transaction_id \
         WHERE la.account_id = $1 AND la.kind = 'credits' GROUP BY la.id, la.balance",
    )
    .bind(caller.account_id)
    .fetch_optional(&state.pg)
    .await
    .map_err(infron_store::StoreError::from)?
    .ok_or_else(|| ApiError::Internal(format!("account {} has no credits book", caller.account_id)))?;
    let lots = infron_store::lots::open_lots(&state.pg, caller.account_id).await?;
    let expiring: Vec<_> = lots
        .iter()
        .filter_map(|l| l.expires_at.map(|at| json!({ "amount": usd(l.remaining), "expires_at": at, "source": l.source_kind })))
        .collect();
    Ok(HttpResponse::Ok().json(json!({ "data": {
        "total_credits": usd(totals.credited),
        "total_usage": usd(totals.usage),
        "total_refunded": usd(totals.refunded),
        "total_expired": usd(totals.expired),
        "balance": usd(totals.balance),
        "expiring": expiring,
    }})))
}

/// `GET /api/v1/key`: the calling key's label, limit and spend.
pub async fn key(req: HttpRequest, state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let caller = state.auth.authenticate(&req).await?;
    let row = infron_store::keys::get(&state.pg, caller.key_id)
        .await?
        .ok_or_else(|| ApiError::Unauthorized("invalid API key".into()))?;
    let spend = infron_store::keys::spend(&state.pg, caller.key_id).await?;
    let remaining = match &caller.limit {
        Some(limit) => {
            let start = period_start(limit.reset, chrono::Utc::now());
            let (used, _) =
                infron_store::keys::period_usage(&state.pg, caller.key_id, start).await?;
            Some(usd((limit.limit.decimal() - used).max(Decimal::ZERO)))
        }
        None => None,
    };
    Ok(HttpResponse::Ok().json(json!({ "data": {
        "label": if row.name.is_empty() { row.key_hint.clone() } else { row.name.clone() },
        "key_hint": row.key_hint,
        "limit": row.credit_limit.map(usd),
        "limit_remaining": remaining,
        "limit_reset": row.limit_reset,
        "usage": usd(spend.total),
        "usage_daily": usd(spend.daily),
        "usage_weekly": usd(spend.weekly),
        "usage_monthly": usd(spend.monthly),
        "is_free_tier": false,
        "expires_at": row.expires_at,
        "created_at": row.created_at,
    }})))
}

#[derive(Deserialize)]
pub struct GenerationQuery {
    id: Option<String>,
}

/// `GET /api/v1/generation?id=gen-…`: one request's metadata, tokens and cost breakdown.
pub async fn generation(
    req: HttpRequest,
    query: web::Query<GenerationQuery>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let caller = state.auth.authenticate(&req).await?;
    let raw = query
        .id
        .as_deref()
        .ok_or_else(|| ApiError::invalid("id", "query parameter 'id' is required"))?;
    let id = Uuid::parse_str(raw.trim_start_matches("gen-"))
        .map_err(|_| ApiError::invalid("id", format!("'{raw}' is not a generation id")))?;
    let row = infron_store::request_logs::get(&state.pg, caller.account_id, id)
        .await?
        .ok_or_else(|| {
            ApiError::NotFound(format!(
                "generation '{raw}' not found (records appear a moment after the request ends)"
            ))
        })?;
    // The breakdown is recomputed from the tokens and the prices the request was charged at.
    let prices = match row.price_id {
        Some(p) => infron_store::request_logs::price_snapshot(&state.pg, p).await?,
        None => None,
    };
    let cost_details = prices
        .as_ref()
        .and_then(|p| serde_json::from_value::<infron_billing::Prices>(p.clone()).ok())
        .and_then(|p| {
            p.cost(&infron_billing::Usage {
                prompt_tokens: u64::try_from(row.prompt_tokens).unwrap_or(0),
                completion_tokens: u64::try_from(row.completion_tokens).unwrap_or(0),
                cached_tokens: u64::try_from(row.cached_tokens).unwrap_or(0),
                cache_write_tokens: u64::try_from(row.cache_write_tokens).unwrap_or(0),
                reasoning_tokens: u64::try_from(row.reasoning_tokens).unwrap_or(0),
                images: 0,
            })
            .ok()
        })
        .and_then(|c| serde_json::to_value(c).ok());
    Ok(HttpResponse::Ok().json(json!({ "data": {
        "id": format!("gen-{}", row.id.simple()),
        "created_at": row.created_at,
        "model": row.model,
        "requested_model": row.requested_model,
        "provider_name": row.provider,
        "upstream_model": row.upstream_model,
        "api_key_id": row.api_key_id,
        "tokens_prompt": row.prompt_tokens,
        "tokens_completion": row.completion_tokens,
        "native_tokens_cached": row.cached_tokens,
        "native_tokens_cache_write": row.cache_write_tokens,
        "native_tokens_reasoning": row.reasoning_tokens,
        "usage_source": row.usage_source,
        "total_cost": usd(row.cost),
        "overage": usd(row.overage),
        "cost_details": cost_details,
        "prices": prices,
        "latency": row.latency_ms,
        "first_token_latency": row.first_token_ms,
        "streamed": row.streamed,
        "cancelled": row.cancelled,
        "cache_hit": row.cache_hit,
        "finish_reason": row.finish_reason,
        "status": row.status,
        "error_class": row.error_class,
        "providers": row.attempts,
    }})))
}
