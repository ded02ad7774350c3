//! The key management API in OpenRouter's shapes: `GET/POST /api/v1/keys`,
//! `GET/PATCH/DELETE /api/v1/keys/{hash}`. Management keys and signed-in members call it; the
//! rules in `infron_accounts::policy` decide what each sees and may change. A key's `hash` is
//! the hex of its keyed hash (what Postgres indexes); the secret is shown once, at creation.

use std::collections::HashMap;

use actix_web::{web, HttpRequest, HttpResponse};
use infron_accounts::keys::{KeyPatch, NewKeySpec};
use infron_accounts::{Actor, Change, KeyFacts, KeyKind, Role, Visibility};
use infron_billing::Usd;
use infron_store::keys::{ApiKeyRow, KeyChanges, KeyFilter, KeyUsage};
use rust_decimal::Decimal;
use serde_json::{json, Value};
use uuid::Uuid;

use super::session::json;
use super::usage::UsdNumber;
use crate::api_keys::ApiKey;
use crate::error::ApiError;
use crate::principal::{audit_ctx, principal, Principal};
use crate::state::AppState;

const PAGE: i64 = 100;

fn usd(d: Decimal) -> UsdNumber {
    UsdNumber(Usd::rounded(d))
}

fn zero() -> UsdNumber {
    UsdNumber(Usd::ZERO)
}

fn kind_of(row: &ApiKeyRow) -> Result<KeyKind, ApiError> {
    row.kind
        .parse()
        .map_err(|e: String| ApiError::Internal(format!("key {}: {e}", row.id)))
}

pub fn facts(row: &ApiKeyRow) -> Result<KeyFacts, ApiError> {
    Ok(KeyFacts {
        kind: kind_of(row)?,
        created_by: row.created_by,
    })
}

/// A key in OpenRouter's shape, with Infron's `kind`.
pub fn key_json(row: &ApiKeyRow, hash: &[u8], usage: Option<&KeyUsage>, used: Decimal) -> Value {
    let u = |f: fn(&KeyUsage) -> Decimal| usage.map_or_else(zero, |k| usd(f(k)));
    json!({
        "hash": hex_of(hash),
        "name": row.name,
        "label": row.key_hint,
        "disabled": row.disabled,
        "limit": row.credit_limit.map(usd),
        "limit_remaining": row.credit_limit.map(|l| usd((l - used).max(Decimal::ZERO))),
        "limit_reset": row.limit_reset,
        "include_byok_in_limit": false,
        "usage": u(|k| k.total),
        "usage_daily": u(|k| k.daily),
        "usage_weekly": u(|k| k.weekly),
        "usage_monthly": u(|k| k.monthly),
        "byok_usage": zero(),
        "byok_usage_daily": zero(),
        "byok_usage_weekly": zero(),
        "byok_usage_monthly": zero(),
        "created_at": row.created_at,
        "updated_at": row.updated_at,
        "expires_at": row.expires_at,
        "creator_user_id": row.created_by.map(|u| u.to_string()),
        "workspace_id": row.account_id.to_string(),
        "kind": row.kind,
        // The key's own per-minute limits (null: the account's default for keys applies).
        "rate_limit": {
            "requests": row.rate_limit_rpm,
            "tokens": row.rate_limit_tpm,
            "interval": "1m",
        },
    })
}

pub fn hex_of(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A key's `hash` from the path; anything that is not 64 hex digits cannot name a key (404).
fn parse_hash(s: &str) -> Option<Vec<u8>> {
    if s.len() != 64 {
        return None;
    }
    (0..64)
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

/// Usage and current-period spend of `rows`, then their JSON.
async fn render(
    state: &AppState,
    account: Uuid,
    rows: &[(ApiKeyRow, Vec<u8>)],
) -> Result<Vec<Value>, ApiError> {
    let ids: Vec<Uuid> = rows.iter().map(|(r, _)| r.id).collect();
    let usage = infron_store::keys::usage_from_rollup(&state.pg, account, &ids).await?;
    let limited: Vec<(Uuid, Option<String>)> = rows
        .iter()
        .filter(|(r, _)| r.credit_limit.is_some())
        .map(|(r, _)| (r.id, r.limit_reset.clone()))
        .collect();
    let used: HashMap<Uuid, Decimal> = if limited.is_empty() {
        HashMap::new()
    } else {
        infron_store::keys::current_period_usage(&state.pg, &limited)
            .await?
            .into_iter()
            .collect()
    };
    let usage: HashMap<Uuid, KeyUsage> = usage.into_iter().map(|u| (u.api_key_id, u)).collect();
    Ok(rows
        .iter()
        .map(|(r, h)| {
            key_json(
                r,
                h,
                usage.get(&r.id),
                used.get(&r.id).copied().unwrap_or(Decimal::ZERO),
            )
        })
        .collect())
}

fn flag(q: &HashMap<String, String>, name: &'static str) -> Result<bool, ApiError> {
    match q
        .get(name)
        .map(|s| s.trim().to_ascii_lowercase())
        .as_deref()
    {
        None | Some("" | "false" | "0") => Ok(false),
        Some("true" | "1") => Ok(true),
        Some(other) => Err(ApiError::invalid(
            name,
            format!("{name}: '{other}' is not true or false"),
        )),
    }
}

/// `workspace_id`, where OpenRouter clients send one, is the account's own id: Infron has one
/// workspace per account. Anything else is foreign (404).
fn check_workspace(actor: &Actor, workspace: Option<&str>) -> Result<(), ApiError> {
    match workspace.map(str::trim).filter(|w| !w.is_empty()) {
        None => Ok(()),
        Some(w) if Uuid::parse_str(w).ok() == Some(actor.account_id()) => Ok(()),
        Some(_) => Err(ApiError::UnknownId("workspace not found".into())),
    }
}

/// `GET /api/v1/keys?offset=&include_disabled=&kind=`
#[utoipa::path(
    get, path = "/api/v1/keys", tag = "Keys",
    summary = "List keys",
    params(
        ("offset" = Option<u64>, Query, description = "Skip this many keys"),
        ("include_disabled" = Option<bool>, Query, description = "Include disabled keys"),
        ("kind" = Option<String>, Query, description = "`management` lists management keys"),
    ),
    responses((status = 200, description = "Up to 100 keys, oldest first", body = crate::openapi::schemas::KeyList)),
    security(("bearer" = []), ("session" = [])),
)]
pub async fn list(
    req: HttpRequest,
    query: web::Query<HashMap<String, String>>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let p = principal(&req, &state).await?;
    let visibility = p.actor.read_keys()?;
    check_workspace(&p.actor, query.get("workspace_id").map(String::as_str))?;
    let offset = match query.get("offset") {
        None => 0,
        Some(o) => o
            .trim()
            .parse::<i64>()
            .ok()
            .filter(|n| *n >= 0)
            .ok_or_else(|| {
                ApiError::invalid("offset", format!("offset: '{o}' is not a whole number ≥ 0"))
            })?,
    };
    let include_disabled = flag(&query, "include_disabled")?;
    let management = match query.get("kind").map(String::as_str) {
        None | Some("inference") => false,
        Some("management") => true,
        Some(other) => {
            return Err(ApiError::invalid(
                "kind",
                format!("kind: '{other}' is not inference or management"),
            ))
        }
    };
    let kinds: &[&str] = if management {
        // Only owners and admins see management keys.
        match &p.actor {
            Actor::User { role, .. } if role.administers() => &["management", "management_read"],
            _ => {
                return Err(ApiError::Forbidden(
                    "only owners and admins see management keys".into(),
                ))
            }
        }
    } else {
        &["inference"]
    };
    let data = list_keys(&state, &p, visibility, kinds, include_disabled, offset).await?;
    Ok(HttpResponse::Ok().json(json!({ "data": data })))
}

/// A page of the keys `p` may see (as the JSON API shows them): the dashboard's list too.
pub async fn list_keys(
    state: &AppState,
    p: &Principal,
    visibility: Visibility,
    kinds: &[&str],
    include_disabled: bool,
    offset: i64,
) -> Result<Vec<Value>, ApiError> {
    let rows = infron_store::keys::list_page(
        &state.pg,
        &KeyFilter {
            account_id: p.actor.account_id(),
            kinds,
            created_by: match visibility {
                Visibility::Account => None,
                Visibility::CreatedBy(u) => Some(u),
            },
            include_disabled,
            offset,
            limit: PAGE,
        },
    )
    .await?;
    render(state, p.actor.account_id(), &rows).await
}

/// The key named by `hash` if the caller may see it; 404 otherwise.
async fn visible_key(
    p: &Principal,
    state: &AppState,
    hash: &str,
) -> Result<(ApiKeyRow, Vec<u8>), ApiError> {
    // Whether the caller may see keys at all comes first, so the answer never depends on
    // which id was guessed.
    p.actor.read_keys()?;
    let not_found = || ApiError::UnknownId("key not found".into());
    let bytes = parse_hash(hash).ok_or_else(not_found)?;
    let row = infron_store::keys::get_in_account(&state.pg, p.actor.account_id(), &bytes)
        .await?
        .ok_or_else(not_found)?;
    p.actor.see_key(&facts(&row)?)?;
    Ok((row, bytes))
}

/// `GET /api/v1/keys/{hash}`
#[utoipa::path(
    get, path = "/api/v1/keys/{hash}", tag = "Keys",
    summary = "Retrieve a key",
    params(("hash" = String, Path, description = "The key's hash (64 hex digits)")),
    responses((status = 200, description = "The key", body = crate::openapi::schemas::KeyResponse)),
    security(("bearer" = []), ("session" = [])),
)]
pub async fn get(
    req: HttpRequest,
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let p = principal(&req, &state).await?;
    let found = visible_key(&p, &state, &path).await?;
    let data = render(&state, p.actor.account_id(), std::slice::from_ref(&found)).await?;
    Ok(HttpResponse::Ok().json(json!({ "data": data.into_iter().next() })))
}

/// `POST /api/v1/keys`: `{name, limit, limit_reset, expires_at, creator_user_id, kind}` →
/// `{data, key}`; the secret is in `key`, this once.
#[utoipa::path(
    post, path = "/api/v1/keys", tag = "Keys",
    summary = "Create a key",
    request_body(content = crate::openapi::schemas::NewKey, content_type = "application/json"),
    responses((status = 201, description = "The key and its secret, shown this once", body = crate::openapi::schemas::CreatedKey)),
    security(("bearer" = []), ("session" = [])),
)]
pub async fn create(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let p = principal(&req, &state).await?;
    let body: Value = json(&req, payload).await?;
    let (data, secret) = create_key(&req, &state, &p, &body).await?;
    Ok(HttpResponse::Created().json(json!({ "data": data, "key": secret })))
}

/// Creates a key as `p` asks (`body` as `POST /api/v1/keys` takes it): the key's JSON and its
/// secret, which is never available again.
pub async fn create_key(
    req: &HttpRequest,
    state: &AppState,
    p: &Principal,
    body: &Value,
) -> Result<(Value, String), ApiError> {
    let spec = NewKeySpec::parse(body)?;
    let account_id = p.actor.account_id();
    if let Some(w) = spec.workspace_id {
        check_workspace(&p.actor, Some(&w.to_string()))?;
    }
    let owner = p.actor.create_key(spec.kind, spec.creator_user_id)?;
    if let Some(u) = owner {
        match state.accounts.role_in(account_id, u).await? {
            None => return Err(ApiError::UnknownId("member not found".into())),
            Some(Role::Billing) => {
                return Err(ApiError::invalid(
                    "creator_user_id",
                    "billing members cannot hold keys",
                ))
            }
            Some(_) => {}
        }
    }
    let account = infron_store::accounts::get(&state.pg, account_id)
        .await?
        .ok_or_else(|| ApiError::UnknownId("account not found".into()))?;
    // Absent limits take the account's defaults; an explicit null means no limit.
    let (limit, reset) = match (spec.limit, spec.limit_reset) {
        (None, None) if spec.kind == KeyKind::Inference => (
            account.default_key_limit,
            account.default_key_limit_reset.clone(),
        ),
        (l, r) => (l.flatten(), r.flatten().map(str::to_string)),
    };
    let secret = ApiKey::generate();
    let hash = secret.hash(&state.settings.key_secret);
    let row = infron_store::keys::insert_key(
        &state.pg,
        infron_store::keys::NewKey {
            id: Uuid::now_v7(),
            account_id,
            name: &spec.name,
            key_hash: &hash,
            key_hint: &secret.hint(),
            kind: spec.kind.as_str(),
            created_by: owner,
            credit_limit: limit,
            limit_reset: reset.as_deref(),
            expires_at: spec.expires_at,
        },
    )
    .await?;
    let ctx = audit_ctx(req, state, p).await;
    state
        .accounts
        .record(
            &ctx,
            Change {
                account_id: Some(account_id),
                action: "key.create",
                target_kind: "key",
                target_id: hex_of(&hash),
                details: json!({ "name": row.name, "kind": row.kind, "creator_user_id": owner,
                                 "limit": row.credit_limit, "limit_reset": row.limit_reset,
                                 "expires_at": row.expires_at }),
            },
        )
        .await;
    let data = render(state, account_id, &[(row, hash.to_vec())]).await?;
    Ok((
        data.into_iter().next().unwrap_or(Value::Null),
        secret.expose().to_string(),
    ))
}

/// `PATCH /api/v1/keys/{hash}`: `name`, `disabled`, `limit`, `limit_reset`, `expires_at`.
#[utoipa::path(
    patch, path = "/api/v1/keys/{hash}", tag = "Keys",
    summary = "Change a key",
    params(("hash" = String, Path, description = "The key's hash (64 hex digits)")),
    request_body(content = crate::openapi::schemas::KeyChange, content_type = "application/json"),
    responses((status = 200, description = "The key as changed", body = crate::openapi::schemas::KeyResponse)),
    security(("bearer" = []), ("session" = [])),
)]
pub async fn update(
    req: HttpRequest,
    path: web::Path<String>,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let p = principal(&req, &state).await?;
    let body: Value = json(&req, payload).await?;
    let data = update_key(&req, &state, &p, &path, body).await?;
    Ok(HttpResponse::Ok().json(json!({ "data": data })))
}

/// Changes the key named by `hash` as `body` says (`PATCH /api/v1/keys/{hash}`'s fields).
pub async fn update_key(
    req: &HttpRequest,
    state: &AppState,
    p: &Principal,
    hash: &str,
    body: Value,
) -> Result<Value, ApiError> {
    let patch = KeyPatch::parse(&body)?;
    let (before, hash) = visible_key(p, state, hash).await?;
    p.actor.change_key(&facts(&before)?)?;
    if kind_of(&before)?.is_management()
        && (patch.limit.flatten().is_some() || patch.limit_reset.flatten().is_some())
    {
        return Err(ApiError::invalid(
            "limit",
            "management keys cannot spend, so they take no limit",
        ));
    }
    // A reset needs a limit, the one sent or the one the key has.
    let limit_after = patch.limit.unwrap_or(before.credit_limit);
    if matches!(patch.limit_reset, Some(Some(_))) && limit_after.is_none() {
        return Err(ApiError::invalid(
            "limit_reset",
            "limit_reset needs a limit",
        ));
    }
    let changes = KeyChanges {
        name: patch.name.clone(),
        disabled: patch.disabled,
        credit_limit: patch.limit,
        // Removing the limit removes its reset too.
        limit_reset: match (patch.limit, patch.limit_reset) {
            (Some(None), _) => Some(None),
            (_, r) => r.map(|r| r.map(str::to_string)),
        },
        expires_at: patch.expires_at,
    };
    let mut after = infron_store::keys::update(&state.pg, before.id, &changes)
        .await?
        .ok_or_else(|| ApiError::UnknownId("key not found".into()))?;
    if let Some(rate) = patch.rate_limit {
        let (rpm, tpm) = rate.apply(before.rate_limit_rpm.map(i64::from), before.rate_limit_tpm);
        let rpm = rpm
            .map(i32::try_from)
            .transpose()
            .map_err(|_| ApiError::invalid("rate_limit", "rate_limit.requests is too large"))?;
        after = infron_store::keys::set_rate_limit(&state.pg, after.id, rpm, tpm)
            .await?
            .ok_or_else(|| ApiError::UnknownId("key not found".into()))?;
    }
    infron_billing::limits::apply_limit_change(
        state.ledger.state(),
        after.account_id,
        after.id,
        (before.credit_limit, before.limit_reset.as_deref()),
        (after.credit_limit, after.limit_reset.as_deref()),
    )
    .await?;
    let ctx = audit_ctx(req, state, p).await;
    state
        .accounts
        .record(
            &ctx,
            Change {
                account_id: Some(after.account_id),
                action: "key.update",
                target_kind: "key",
                target_id: hex_of(&hash),
                details: body,
            },
        )
        .await;
    let data = render(state, after.account_id, &[(after, hash)]).await?;
    Ok(data.into_iter().next().unwrap_or(Value::Null))
}

/// `DELETE /api/v1/keys/{hash}` → `{"deleted": true}`. The key stops working everywhere
/// within a second; its logs and activity keep naming it.
#[utoipa::path(
    delete, path = "/api/v1/keys/{hash}", tag = "Keys",
    summary = "Delete a key",
    params(("hash" = String, Path, description = "The key's hash (64 hex digits)")),
    responses((status = 200, description = "Deleted; the key stops working within a second", body = crate::openapi::schemas::Deleted)),
    security(("bearer" = []), ("session" = [])),
)]
pub async fn delete(
    req: HttpRequest,
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let p = principal(&req, &state).await?;
    delete_key(&req, &state, &p, &path).await?;
    Ok(HttpResponse::Ok().json(json!({ "deleted": true })))
}

/// Deletes the key named by `hash`: it stops working everywhere within a second.
pub async fn delete_key(
    req: &HttpRequest,
    state: &AppState,
    p: &Principal,
    hash: &str,
) -> Result<(), ApiError> {
    let (row, hash) = visible_key(p, state, hash).await?;
    p.actor.change_key(&facts(&row)?)?;
    if !infron_store::keys::soft_delete(&state.pg, row.id).await? {
        return Err(ApiError::UnknownId("key not found".into()));
    }
    let ctx = audit_ctx(req, state, p).await;
    state
        .accounts
        .record(
            &ctx,
            Change {
                account_id: Some(row.account_id),
                action: "key.delete",
                target_kind: "key",
                target_id: hex_of(&hash),
                details: json!({ "name": row.name, "kind": row.kind }),
            },
        )
        .await;
    Ok(())
}
