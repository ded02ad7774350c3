//! The account's people and settings: members and roles, invitations, leaving, ownership
//! transfer, settings (privacy, default key limits) and the audit log. Sessions of members call
//! these; what each role may do is decided by `infron_accounts::policy`.

use std::collections::HashMap;

use actix_web::{web, HttpRequest, HttpResponse};
use chrono::{DateTime, Utc};
use infron_accounts::keys::SettingsPatch;
use infron_accounts::{Change, Email, Role};
use infron_billing::Usd;
use infron_store::accounts::AccountRow;
use serde::Deserialize;
use serde_json::{json, Value};
use uuid::Uuid;

use super::session::json;
use super::usage::UsdNumber;
use crate::error::ApiError;
use crate::principal::{audit_ctx, principal, Principal};
use crate::state::AppState;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Invite {
    email: String,
    role: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RoleChange {
    role: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Transfer {
    user_id: Uuid,
}

fn role(field: &'static str, s: &str) -> Result<Role, ApiError> {
    s.parse().map_err(|e: String| ApiError::invalid(field, e))
}

/// `GET /api/v1/members`
#[utoipa::path(
    get, path = "/api/v1/members", tag = "Account",
    summary = "Members and open invitations",
    responses((status = 200, description = "Members and invitations", body = crate::openapi::schemas::MemberList)), security(("bearer" = []), ("session" = [])),
)]
pub async fn list(req: HttpRequest, state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let p = principal(&req, &state).await?;
    p.actor.read_members()?;
    let members = infron_store::members::list(&state.pg, p.actor.account_id()).await?;
    let invitations =
        infron_store::members::open_invitations(&state.pg, p.actor.account_id()).await?;
    Ok(HttpResponse::Ok().json(json!({
        "data": members.iter().map(|m| json!({
            "user_id": m.user_id, "email": m.email, "role": m.role, "joined_at": m.created_at,
        })).collect::<Vec<_>>(),
        "invitations": invitations.iter().map(invitation_json).collect::<Vec<_>>(),
    })))
}

fn invitation_json(i: &infron_store::members::InvitationRow) -> Value {
    json!({ "id": i.id, "email": i.email, "role": i.role, "invited_by": i.invited_by,
            "created_at": i.created_at, "expires_at": i.expires_at })
}

/// `PATCH /api/v1/members/{user_id}` `{role}`
#[utoipa::path(
    patch, path = "/api/v1/members/{user_id}", tag = "Account",
    summary = "Change a member's role",
    params(("user_id" = uuid::Uuid, Path, description = "The member's user id")),
    request_body(content = crate::openapi::schemas::RoleChangeBody, content_type = "application/json"),
    responses((status = 200, description = "`user_id` and the new `role`", body = crate::openapi::schemas::DataObject)), security(("bearer" = []), ("session" = [])),
)]
pub async fn change_role(
    req: HttpRequest,
    path: web::Path<Uuid>,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let p = principal(&req, &state).await?;
    let body: RoleChange = json(&req, payload).await?;
    let new_role = role("role", &body.role)?;
    let ctx = audit_ctx(&req, &state, &p).await;
    state
        .accounts
        .change_role(&p.actor, &ctx, *path, new_role)
        .await?;
    Ok(HttpResponse::Ok().json(json!({ "data": { "user_id": *path, "role": new_role } })))
}

/// `DELETE /api/v1/members/{user_id}`: the member's keys are disabled.
#[utoipa::path(
    delete, path = "/api/v1/members/{user_id}", tag = "Account",
    summary = "Remove a member (their keys are disabled)",
    params(("user_id" = uuid::Uuid, Path, description = "The member's user id")),
    responses((status = 200, description = "Removed", body = crate::openapi::schemas::Deleted)), security(("bearer" = []), ("session" = [])),
)]
pub async fn remove(
    req: HttpRequest,
    path: web::Path<Uuid>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let p = principal(&req, &state).await?;
    let ctx = audit_ctx(&req, &state, &p).await;
    state
        .accounts
        .remove_member(&p.actor, &ctx, *path, false)
        .await?;
    Ok(HttpResponse::Ok().json(json!({ "deleted": true })))
}

/// `POST /api/v1/account/leave`: the signed-in member leaves the current account.
#[utoipa::path(
    post, path = "/api/v1/account/leave", tag = "Account",
    summary = "Leave the current account (not its owner)",
    responses((status = 200, description = "`left`: the account's id", body = crate::openapi::schemas::DataObject)), security(("bearer" = []), ("session" = [])),
)]
pub async fn leave(req: HttpRequest, state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let p = principal(&req, &state).await?;
    let me = p
        .actor
        .user_id()
        .filter(|_| p.session.is_some())
        .ok_or_else(|| ApiError::Forbidden("sign in to leave an account".into()))?;
    let ctx = audit_ctx(&req, &state, &p).await;
    state
        .accounts
        .remove_member(&p.actor, &ctx, me, true)
        .await?;
    if let Some(s) = &p.session {
        // Act in another account, if any, from now on.
        if let Some(next) = infron_store::members::of_user(&state.pg, me).await?.first() {
            state
                .accounts
                .sessions
                .switch_account(s, next.account_id)
                .await?;
        }
    }
    Ok(HttpResponse::Ok().json(json!({ "data": { "left": p.actor.account_id() } })))
}

/// `POST /api/v1/account/transfer` `{user_id}`: the member becomes the owner, the owner an admin.
#[utoipa::path(
    post, path = "/api/v1/account/transfer", tag = "Account",
    summary = "Make a member the owner",
    request_body(content = crate::openapi::schemas::TransferBody, content_type = "application/json"),
    responses((status = 200, description = "`owner`: the new owner", body = crate::openapi::schemas::DataObject)), security(("bearer" = []), ("session" = [])),
)]
pub async fn transfer(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let p = principal(&req, &state).await?;
    let body: Transfer = json(&req, payload).await?;
    let ctx = audit_ctx(&req, &state, &p).await;
    state
        .accounts
        .transfer_ownership(&p.actor, &ctx, body.user_id)
        .await?;
    Ok(HttpResponse::Ok().json(json!({ "data": { "owner": body.user_id } })))
}

/// `GET /api/v1/invitations`
#[utoipa::path(
    get, path = "/api/v1/invitations", tag = "Account",
    summary = "Open invitations",
    responses((status = 200, description = "The invitations", body = crate::openapi::schemas::InvitationList)), security(("bearer" = []), ("session" = [])),
)]
pub async fn invitations(
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let p = principal(&req, &state).await?;
    p.actor.read_members()?;
    let rows = infron_store::members::open_invitations(&state.pg, p.actor.account_id()).await?;
    Ok(HttpResponse::Ok()
        .json(json!({ "data": rows.iter().map(invitation_json).collect::<Vec<_>>() })))
}

/// `POST /api/v1/invitations` `{email, role}`: emails a link valid 7 days.
#[utoipa::path(
    post, path = "/api/v1/invitations", tag = "Account",
    summary = "Invite someone (emails a link valid 7 days)",
    request_body(content = crate::openapi::schemas::InviteBody, content_type = "application/json"),
    responses((status = 201, description = "The invitation", body = crate::openapi::schemas::InvitationResponse)), security(("bearer" = []), ("session" = [])),
)]
pub async fn invite(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let p = principal(&req, &state).await?;
    let body: Invite = json(&req, payload).await?;
    let email = Email::parse("email", &body.email)?;
    let role = role("role", &body.role)?;
    let ctx = audit_ctx(&req, &state, &p).await;
    let row = state.accounts.invite(&p.actor, &ctx, &email, role).await?;
    Ok(HttpResponse::Created().json(json!({ "data": invitation_json(&row) })))
}

/// `DELETE /api/v1/invitations/{id}`
#[utoipa::path(
    delete, path = "/api/v1/invitations/{id}", tag = "Account",
    summary = "Revoke an invitation",
    params(("id" = uuid::Uuid, Path, description = "The invitation's id")),
    responses((status = 200, description = "Revoked", body = crate::openapi::schemas::Deleted)), security(("bearer" = []), ("session" = [])),
)]
pub async fn revoke(
    req: HttpRequest,
    path: web::Path<Uuid>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let p = principal(&req, &state).await?;
    let ctx = audit_ctx(&req, &state, &p).await;
    state
        .accounts
        .revoke_invitation(&p.actor, &ctx, *path)
        .await?;
    Ok(HttpResponse::Ok().json(json!({ "deleted": true })))
}

pub fn settings_json(a: &AccountRow) -> Value {
    json!({
        "id": a.id,
        "name": a.name,
        "allow_training": a.allow_training,
        "default_key_limit": a.default_key_limit.map(|d| UsdNumber(Usd::rounded(d))),
        "default_key_limit_reset": a.default_key_limit_reset,
        "rate_limit": { "requests": a.rate_limit_rpm, "tokens": a.rate_limit_tpm, "interval": "1m" },
        "default_key_rate_limit": {
            "requests": a.default_key_rpm, "tokens": a.default_key_tpm, "interval": "1m",
        },
        "frozen": a.frozen_at.is_some(),
        "frozen_at": a.frozen_at,
        "created_at": a.created_at,
    })
}

/// `GET /api/v1/account`: the account's settings.
#[utoipa::path(
    get, path = "/api/v1/account", tag = "Account",
    summary = "The account's settings",
    responses((status = 200, description = "The settings", body = crate::openapi::schemas::AccountSettingsResponse)), security(("bearer" = []), ("session" = [])),
)]
pub async fn settings(
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let p = principal(&req, &state).await?;
    p.actor.read_settings()?;
    let a = infron_store::accounts::get(&state.pg, p.actor.account_id())
        .await?
        .ok_or_else(|| ApiError::UnknownId("account not found".into()))?;
    Ok(HttpResponse::Ok().json(json!({ "data": settings_json(&a) })))
}

/// `PATCH /api/v1/account`: `name`, `allow_training`, `default_key_limit`,
/// `default_key_limit_reset`.
#[utoipa::path(
    patch, path = "/api/v1/account", tag = "Account",
    summary = "Change the account's settings",
    request_body(content = crate::openapi::schemas::AccountChange, content_type = "application/json"),
    responses((status = 200, description = "The settings as changed", body = crate::openapi::schemas::AccountSettingsResponse)), security(("bearer" = []), ("session" = [])),
)]
pub async fn update_settings(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let p = principal(&req, &state).await?;
    let body: Value = json(&req, payload).await?;
    let data = change_settings(&req, &state, &p, body).await?;
    Ok(HttpResponse::Ok().json(json!({ "data": data })))
}

/// Changes the account's settings as `p` asks (`PATCH /api/v1/account`'s fields).
pub async fn change_settings(
    req: &HttpRequest,
    state: &AppState,
    p: &Principal,
    body: Value,
) -> Result<Value, ApiError> {
    let patch = SettingsPatch::parse(&body)?;
    p.actor.update_settings()?;
    let before = infron_store::accounts::get(&state.pg, p.actor.account_id())
        .await?
        .ok_or_else(|| ApiError::UnknownId("account not found".into()))?;
    let limit = patch.default_key_limit.unwrap_or(before.default_key_limit);
    let reset = match (patch.default_key_limit, patch.default_key_limit_reset) {
        (Some(None), _) => None,
        (_, Some(r)) => r.map(str::to_string),
        (_, None) => before.default_key_limit_reset.clone(),
    };
    if reset.is_some() && limit.is_none() {
        return Err(ApiError::invalid(
            "default_key_limit_reset",
            "default_key_limit_reset needs a default_key_limit",
        ));
    }
    let after = infron_store::accounts::update_settings(
        &state.pg,
        before.id,
        &infron_store::accounts::AccountSettings {
            name: patch.name.clone().unwrap_or_else(|| before.name.clone()),
            allow_training: patch.allow_training.unwrap_or(before.allow_training),
            default_key_limit: limit,
            default_key_limit_reset: reset,
        },
    )
    .await?
    .ok_or_else(|| ApiError::UnknownId("account not found".into()))?;
    let after = if patch.rate_limit.is_some() || patch.default_key_rate_limit.is_some() {
        let none = infron_accounts::keys::RatePatch::default();
        let (rpm, tpm) = patch
            .rate_limit
            .unwrap_or(none)
            .apply(after.rate_limit_rpm.map(i64::from), after.rate_limit_tpm);
        let (key_rpm, key_tpm) = patch
            .default_key_rate_limit
            .unwrap_or(none)
            .apply(after.default_key_rpm.map(i64::from), after.default_key_tpm);
        let small = |v: Option<i64>, field: &'static str| {
            v.map(i32::try_from)
                .transpose()
                .map_err(|_| ApiError::invalid(field, format!("{field}.requests is too large")))
        };
        infron_store::accounts::set_rate_limits(
            &state.pg,
            after.id,
            infron_store::accounts::AccountRateLimits {
                rpm: small(rpm, "rate_limit")?,
                tpm,
                default_key_rpm: small(key_rpm, "default_key_rate_limit")?,
                default_key_tpm: key_tpm,
            },
        )
        .await?
        .ok_or_else(|| ApiError::UnknownId("account not found".into()))?
    } else {
        after
    };
    let ctx = audit_ctx(req, state, p).await;
    state
        .accounts
        .record(
            &ctx,
            Change {
                account_id: Some(after.id),
                action: "settings.update",
                target_kind: "account",
                target_id: after.id.to_string(),
                details: json!({ "changed": body, "before": settings_json(&before) }),
            },
        )
        .await;
    Ok(settings_json(&after))
}

/// A keyset position in the audit log: the last entry's time and id.
pub type AuditCursor = (DateTime<Utc>, Uuid);

/// Parses the audit log's keyset cursor and page size.
pub fn audit_page(q: &HashMap<String, String>) -> Result<(Option<AuditCursor>, i64), ApiError> {
    let limit = match q.get("limit").map(|v| v.trim()).filter(|v| !v.is_empty()) {
        None => 50,
        Some(v) => v
            .parse::<i64>()
            .ok()
            .filter(|n| (1..=500).contains(n))
            .ok_or_else(|| ApiError::invalid("limit", "limit must be 1 to 500"))?,
    };
    let cursor = match q.get("cursor").map(|v| v.trim()).filter(|v| !v.is_empty()) {
        None => None,
        Some(c) => {
            let bad = || ApiError::invalid("cursor", "cursor is not one this API returned");
            let (micros, id) = c.split_once('_').ok_or_else(bad)?;
            let at = micros
                .parse::<i64>()
                .ok()
                .and_then(DateTime::from_timestamp_micros)
                .ok_or_else(bad)?;
            Some((at, Uuid::parse_str(id).map_err(|_| bad())?))
        }
    };
    Ok((cursor, limit))
}

pub fn audit_json(rows: &[infron_store::audit::AuditRow], limit: i64) -> Value {
    let next = (rows.len() as i64 == limit)
        .then(|| {
            rows.last()
                .map(|r| format!("{}_{}", r.at.timestamp_micros(), r.id.simple()))
        })
        .flatten();
    json!({ "data": rows, "next_cursor": next })
}

/// `GET /api/v1/audit?limit=&cursor=`: the account's audit log, newest first (owners).
#[utoipa::path(
    get, path = "/api/v1/audit", tag = "Account",
    summary = "The account's audit log",
    params(("limit" = Option<u32>, Query, description = "1 to 500, default 50"), ("cursor" = Option<String>, Query, description = "`next_cursor` of the previous page")),
    responses((status = 200, description = "Newest first", body = crate::openapi::schemas::AuditPage)), security(("bearer" = []), ("session" = [])),
)]
pub async fn audit(
    req: HttpRequest,
    query: web::Query<HashMap<String, String>>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let p = principal(&req, &state).await?;
    p.actor.read_audit()?;
    let (cursor, limit) = audit_page(&query)?;
    let rows =
        infron_store::audit::page(&state.pg, Some(p.actor.account_id()), cursor, limit).await?;
    Ok(HttpResponse::Ok().json(audit_json(&rows, limit)))
}
