//! The operator API (`/api/v1/operator/...`), for the people running the platform: list and
//! search accounts, grant and reverse credits, freeze and unfreeze, read the audit log.
//! Operators sign in with their own sessions (`infron operators create`); tenant sessions and
//! keys never reach these routes.

use std::collections::HashMap;

use actix_web::{web, HttpRequest, HttpResponse};
use infron_accounts::{AuditCtx, Change, Subject};
use infron_billing::reversals::Reversal;
use infron_billing::Usd;
use serde::Deserialize;
use serde_json::json;
use uuid::Uuid;

use super::members::{audit_json, audit_page, settings_json};
use super::session::json;
use super::usage::UsdNumber;
use crate::error::ApiError;
use crate::principal::client_ip;
use crate::state::AppState;

/// The signed-in operator, with what the audit log records of them.
async fn operator(req: &HttpRequest, state: &AppState) -> Result<AuditCtx, ApiError> {
    let session = crate::principal::session(req, state)
        .await?
        .ok_or_else(|| ApiError::Unauthorized("sign in as an operator first".into()))?;
    let Subject::Operator(id) = session.subject else {
        // A tenant's session: the operator API does not exist for it.
        return Err(ApiError::NoSuchRoute);
    };
    operator_ctx(req, state, id).await
}

/// What the audit log records of operator `id` (who must exist and be enabled).
pub(crate) async fn operator_ctx(
    req: &HttpRequest,
    state: &AppState,
    id: Uuid,
) -> Result<AuditCtx, ApiError> {
    let op = infron_store::users::operator(&state.pg, id)
        .await?
        .filter(|o| !o.disabled)
        .ok_or_else(|| ApiError::Unauthorized("sign in as an operator first".into()))?;
    Ok(AuditCtx {
        actor_kind: "operator",
        user_id: Some(op.id),
        key_id: None,
        label: op.email,
        ip: Some(client_ip(req, state)),
        user_agent: req
            .headers()
            .get("user-agent")
            .and_then(|v| v.to_str().ok())
            .map(|s| s.chars().take(300).collect()),
    })
}

fn usd(d: rust_decimal::Decimal) -> UsdNumber {
    UsdNumber(Usd::rounded(d))
}

/// `GET /api/v1/operator/accounts?q=&offset=&limit=`
#[utoipa::path(
    get, path = "/api/v1/operator/accounts", tag = "Operator",
    summary = "Find accounts",
    params(
        ("q" = Option<String>, Query, description = "A name, an account id or a member's email"),
        ("offset" = Option<i64>, Query, minimum = 0),
        ("limit" = Option<i64>, Query, minimum = 0, maximum = 500, description = "Default 50"),
    ),
    responses((status = 200, description = "A page of accounts", body = crate::openapi::schemas::OperatorAccountList)), security(("session" = [])),
)]
pub async fn accounts(
    req: HttpRequest,
    query: web::Query<HashMap<String, String>>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    operator(&req, &state).await?;
    let num = |name: &'static str, default: i64, max: i64| -> Result<i64, ApiError> {
        match query.get(name).map(|v| v.trim()).filter(|v| !v.is_empty()) {
            None => Ok(default),
            Some(v) => v
                .parse::<i64>()
                .ok()
                .filter(|n| (0..=max).contains(n))
                .ok_or_else(|| ApiError::invalid(name, format!("{name} must be 0 to {max}"))),
        }
    };
    let offset = num("offset", 0, i64::MAX)?;
    let limit = num("limit", 50, 500)?.max(1);
    let q = query.get("q").map(|s| s.trim()).filter(|s| !s.is_empty());
    Ok(HttpResponse::Ok().json(accounts_json(&state, q, offset, limit).await?))
}

/// A page of accounts matching `q` (name, id or a member's email), as the API lists them.
pub(crate) async fn accounts_json(
    state: &AppState,
    q: Option<&str>,
    offset: i64,
    limit: i64,
) -> Result<serde_json::Value, ApiError> {
    let rows = infron_store::accounts::search(&state.pg, q, offset, limit).await?;
    Ok(json!({ "data": rows.iter().map(|r| {
        let mut v = settings_json(&r.account);
        v["balance"] = json!(usd(r.balance));
        v["owner_email"] = json!(r.owner_email);
        v["members"] = json!(r.members);
        v["frozen_reason"] = json!(r.account.frozen_reason);
        v
    }).collect::<Vec<_>>() }))
}

/// `GET /api/v1/operator/accounts/{id}`: settings, balance, members and keys.
#[utoipa::path(
    get, path = "/api/v1/operator/accounts/{id}", tag = "Operator",
    summary = "One account: settings, balance, members and keys",
    params(("id" = uuid::Uuid, Path, description = "The account's id")),
    responses((status = 200, description = "The account", body = crate::openapi::schemas::OperatorAccountResponse)), security(("session" = [])),
)]
pub async fn account(
    req: HttpRequest,
    path: web::Path<Uuid>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    operator(&req, &state).await?;
    Ok(HttpResponse::Ok().json(json!({ "data": account_json(&state, *path).await? })))
}

/// One account as the operator API shows it: settings, balance, members and keys.
pub(crate) async fn account_json(
    state: &AppState,
    id: Uuid,
) -> Result<serde_json::Value, ApiError> {
    let a = infron_store::accounts::get(&state.pg, id)
        .await?
        .ok_or_else(|| ApiError::UnknownId("account not found".into()))?;
    let (balance, _) = infron_store::ledger::tenant_balance(&state.pg, id)
        .await?
        .unwrap_or_default();
    let members = infron_store::members::list(&state.pg, id).await?;
    let keys = infron_store::keys::list_for_account(&state.pg, id).await?;
    let mut v = settings_json(&a);
    v["balance"] = json!(usd(balance));
    v["frozen_reason"] = json!(a.frozen_reason);
    v["members"] = json!(members
        .iter()
        .map(|m| json!({ "user_id": m.user_id, "email": m.email, "role": m.role }))
        .collect::<Vec<_>>());
    v["keys"] = json!(keys
        .iter()
        .filter(|k| k.deleted_at.is_none())
        .map(
            |k| json!({ "id": k.id, "name": k.name, "label": k.key_hint, "kind": k.kind,
                         "disabled": k.disabled, "created_by": k.created_by })
        )
        .collect::<Vec<_>>());
    Ok(v)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct GrantBody {
    amount: String,
    reason: String,
    idempotency_key: Option<String>,
}

fn reason(r: &str) -> Result<String, ApiError> {
    let r = r.trim();
    if r.is_empty() || r.chars().count() > 500 {
        return Err(ApiError::invalid(
            "reason",
            "reason must be 1 to 500 characters",
        ));
    }
    Ok(r.to_string())
}

/// `POST /api/v1/operator/accounts/{id}/grants` `{amount, reason, idempotency_key?}`
#[utoipa::path(
    post, path = "/api/v1/operator/accounts/{id}/grants", tag = "Operator",
    summary = "Grant credits",
    params(("id" = uuid::Uuid, Path, description = "The account's id")),
    request_body(content = crate::openapi::schemas::GrantBody, content_type = "application/json"),
    responses((status = 200, description = "The grant", body = crate::openapi::schemas::GrantResponse)), security(("session" = [])),
)]
pub async fn grant(
    req: HttpRequest,
    path: web::Path<Uuid>,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let ctx = operator(&req, &state).await?;
    let body: GrantBody = json(&req, payload).await?;
    let data = do_grant(
        &state,
        &ctx,
        *path,
        &body.amount,
        &body.reason,
        body.idempotency_key.as_deref(),
    )
    .await?;
    Ok(HttpResponse::Ok().json(json!({ "data": data })))
}

/// Grants `amount` (text, USD) to account `id` for `reason`, once per idempotency key.
pub(crate) async fn do_grant(
    state: &AppState,
    ctx: &AuditCtx,
    id: Uuid,
    amount: &str,
    reason_text: &str,
    idempotency_key: Option<&str>,
) -> Result<serde_json::Value, ApiError> {
    let amount: Usd = amount
        .trim()
        .parse()
        .map_err(|e| ApiError::invalid("amount", format!("amount: {e}")))?;
    if amount.is_negative() || amount.is_zero() {
        return Err(ApiError::invalid("amount", "amount must be positive"));
    }
    // $100,000,000: far beyond any real grant, well inside the hot balance's range.
    if amount > Usd::from_cents(10_000_000_000) {
        return Err(ApiError::invalid(
            "amount",
            "amount must be at most 100000000",
        ));
    }
    let why = reason(reason_text)?;
    if infron_store::accounts::get(&state.pg, id).await?.is_none() {
        return Err(ApiError::UnknownId("account not found".into()));
    }
    let key = match idempotency_key.map(str::trim) {
        Some(k) if !k.is_empty() && k.len() <= 200 => k.to_string(),
        Some(_) => {
            return Err(ApiError::invalid(
                "idempotency_key",
                "idempotency_key must be 1 to 200 characters",
            ))
        }
        None => Uuid::now_v7().to_string(),
    };
    let external_id = format!("grant:{key}");
    let r = infron_billing::grants::grant(
        &state.pg,
        state.ledger.state(),
        id,
        amount,
        &why,
        external_id,
    )
    .await?;
    if r.newly_posted {
        state
            .accounts
            .record(
                ctx,
                Change {
                    account_id: Some(id),
                    action: "credits.grant",
                    target_kind: "transaction",
                    target_id: r.transaction_external_id.clone(),
                    details: json!({ "amount": amount.to_string(), "reason": why }),
                },
            )
            .await;
    }
    Ok(json!({
        "grant": r.transaction_external_id, "newly_posted": r.newly_posted,
        "amount": UsdNumber(amount), "balance": UsdNumber(r.balance),
    }))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ReverseBody {
    grant: String,
    reason: String,
}

/// `POST /api/v1/operator/accounts/{id}/reversals` `{grant, reason}`: reverses a grant (what
/// is left of it; spent credits stay spent).
#[utoipa::path(
    post, path = "/api/v1/operator/accounts/{id}/reversals", tag = "Operator",
    summary = "Reverse what is left of a grant",
    params(("id" = uuid::Uuid, Path, description = "The account's id")),
    request_body(content = crate::openapi::schemas::ReverseBody, content_type = "application/json"),
    responses((status = 200, description = "The reversal", body = crate::openapi::schemas::ReversalResponse)), security(("session" = [])),
)]
pub async fn reverse(
    req: HttpRequest,
    path: web::Path<Uuid>,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let ctx = operator(&req, &state).await?;
    let body: ReverseBody = json(&req, payload).await?;
    let data = do_reverse(&state, &ctx, *path, &body.grant, &body.reason).await?;
    Ok(HttpResponse::Ok().json(json!({ "data": data })))
}

/// Reverses what is left of grant `grant` (its transaction's external id) of account `id`.
pub(crate) async fn do_reverse(
    state: &AppState,
    ctx: &AuditCtx,
    id: Uuid,
    grant_id: &str,
    reason_text: &str,
) -> Result<serde_json::Value, ApiError> {
    let why = reason(reason_text)?;
    match infron_billing::reversals::reverse_grant(
        &state.pg,
        state.ledger.state(),
        id,
        grant_id.trim(),
        &why,
    )
    .await?
    {
        Reversal::NoSuchGrant => Err(ApiError::UnknownId("grant not found".into())),
        Reversal::AlreadyReversed { external_id } => Err(ApiError::Conflict(format!(
            "this grant was already reversed ({external_id})"
        ))),
        Reversal::Reversed {
            external_id,
            grant,
            reversed,
            balance,
        } => {
            state
                .accounts
                .record(
                    ctx,
                    Change {
                        account_id: Some(id),
                        action: "credits.reverse",
                        target_kind: "transaction",
                        target_id: external_id.clone(),
                        details: json!({ "grant": grant_id.trim(), "granted": grant.to_string(),
                                         "reversed": reversed.to_string(), "reason": why }),
                    },
                )
                .await;
            Ok(json!({
                "reversal": external_id, "granted": UsdNumber(grant), "reversed": UsdNumber(reversed),
                "balance": UsdNumber(balance),
            }))
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FreezeBody {
    reason: String,
}

/// `POST /api/v1/operator/accounts/{id}/freeze` `{reason}`: every key of the account is refused
/// on every instance within a second (the accounts trigger flushes the key caches).
#[utoipa::path(
    post, path = "/api/v1/operator/accounts/{id}/freeze", tag = "Operator",
    summary = "Freeze an account (every key refused within a second)",
    params(("id" = uuid::Uuid, Path, description = "The account's id")),
    request_body(content = crate::openapi::schemas::FreezeBody, content_type = "application/json"),
    responses((status = 200, description = "The account's settings", body = crate::openapi::schemas::AccountSettingsResponse)), security(("session" = [])),
)]
pub async fn freeze(
    req: HttpRequest,
    path: web::Path<Uuid>,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let ctx = operator(&req, &state).await?;
    let body: FreezeBody = json(&req, payload).await?;
    let why = reason(&body.reason)?;
    let data = set_frozen(&state, &ctx, *path, Some(why)).await?;
    Ok(HttpResponse::Ok().json(json!({ "data": data })))
}

/// `POST /api/v1/operator/accounts/{id}/unfreeze`
#[utoipa::path(
    post, path = "/api/v1/operator/accounts/{id}/unfreeze", tag = "Operator",
    summary = "Unfreeze an account",
    params(("id" = uuid::Uuid, Path, description = "The account's id")),
    responses((status = 200, description = "The account's settings", body = crate::openapi::schemas::AccountSettingsResponse)), security(("session" = [])),
)]
pub async fn unfreeze(
    req: HttpRequest,
    path: web::Path<Uuid>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let ctx = operator(&req, &state).await?;
    let data = set_frozen(&state, &ctx, *path, None).await?;
    Ok(HttpResponse::Ok().json(json!({ "data": data })))
}

/// Freezes account `id` (with a reason) or unfreezes it (`None`).
pub(crate) async fn set_frozen(
    state: &AppState,
    ctx: &AuditCtx,
    id: Uuid,
    reason: Option<String>,
) -> Result<serde_json::Value, ApiError> {
    let row = infron_store::accounts::set_frozen(&state.pg, id, reason.as_deref())
        .await?
        .ok_or_else(|| ApiError::UnknownId("account not found".into()))?;
    state
        .accounts
        .record(
            ctx,
            Change {
                account_id: Some(id),
                action: if reason.is_some() {
                    "account.freeze"
                } else {
                    "account.unfreeze"
                },
                target_kind: "account",
                target_id: id.to_string(),
                details: json!({ "reason": reason }),
            },
        )
        .await;
    Ok(settings_json(&row))
}

/// Checks a freeze reason as the API does.
pub(crate) fn freeze_reason(r: &str) -> Result<String, ApiError> {
    reason(r)
}

/// `GET /api/v1/operator/audit?account_id=&limit=&cursor=`: every account's, or one's.
#[utoipa::path(
    get, path = "/api/v1/operator/audit", tag = "Operator",
    summary = "The audit log of every account, or of one",
    params(
        ("account_id" = Option<uuid::Uuid>, Query),
        ("limit" = Option<i64>, Query, minimum = 1, maximum = 500, description = "Default 50"),
        ("cursor" = Option<String>, Query, description = "`next_cursor` of the previous page"),
    ),
    responses((status = 200, description = "A page, newest first", body = crate::openapi::schemas::AuditPage)), security(("session" = [])),
)]
pub async fn audit(
    req: HttpRequest,
    query: web::Query<HashMap<String, String>>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    operator(&req, &state).await?;
    Ok(HttpResponse::Ok().json(audit_json_for(&state, &query).await?))
}

/// A page of the audit log (every account's, or `account_id`'s), newest first.
pub(crate) async fn audit_json_for(
    state: &AppState,
    query: &HashMap<String, String>,
) -> Result<serde_json::Value, ApiError> {
    let account = match query
        .get("account_id")
        .map(|v| v.trim())
        .filter(|v| !v.is_empty())
    {
        None => None,
        Some(v) => Some(Uuid::parse_str(v).map_err(|_| {
            ApiError::invalid("account_id", format!("account_id: '{v}' is not an id"))
        })?),
    };
    let (cursor, limit) = audit_page(query)?;
    let rows = infron_store::audit::page(&state.pg, account, cursor, limit).await?;
    Ok(audit_json(&rows, limit))
}
