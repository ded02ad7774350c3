//! Sign-up, email verification, sign-in and out, passwords, and the signed-in user's own view
//! (`/api/v1/me`): the JSON side of the dashboard's account pages.

use actix_web::{web, HttpRequest, HttpResponse};
use infron_accounts::{Email, Password, Subject};
use serde::Deserialize;
use serde_json::json;
use uuid::Uuid;

use super::body;
use crate::error::ApiError;
use crate::principal::{self, check_origin, client_ip, user_session};
use crate::state::AppState;

/// Tenant request bodies are small; anything larger is refused before parsing.
pub const BODY_LIMIT: usize = 64 * 1024;

pub async fn json<T: serde::de::DeserializeOwned>(
    req: &HttpRequest,
    payload: web::Payload,
) -> Result<T, ApiError> {
    let bytes = body::read(req, payload, BODY_LIMIT).await?;
    body::parse_json(&bytes)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Credentials {
    email: String,
    password: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct EmailOnly {
    email: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TokenOnly {
    token: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Reset {
    token: String,
    password: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ChangePassword {
    current_password: String,
    new_password: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AccountChoice {
    account_id: Uuid,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewAccount {
    name: String,
}

fn accepted(status: &str) -> HttpResponse {
    HttpResponse::Accepted().json(json!({ "data": { "status": status } }))
}

/// `POST /api/v1/auth/signup`: always 202, whether or not the address had an account.
#[utoipa::path(
    post, path = "/api/v1/auth/signup", tag = "Sign-in",
    summary = "Sign up (emails a verification link)",
    request_body(content = crate::openapi::schemas::Credentials, content_type = "application/json"),
    responses((status = 202, description = "Accepted (the same for a taken address)", body = crate::openapi::schemas::DataObject)),
)]
pub async fn sign_up(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    check_origin(&req, &state)?;
    let c: Credentials = json(&req, payload).await?;
    let email = Email::parse("email", &c.email)?;
    let password = Password::parse("password", &c.password)?;
    state
        .accounts
        .sign_up(&email, &password, &client_ip(&req, &state))
        .await?;
    Ok(accepted("verification_email_sent"))
}

/// `POST /api/v1/auth/verify`: the token from the emailed link.
#[utoipa::path(
    post, path = "/api/v1/auth/verify", tag = "Sign-in",
    summary = "Verify an email address",
    request_body(content = crate::openapi::schemas::TokenBody, content_type = "application/json"),
    responses((status = 200, description = "Verified", body = crate::openapi::schemas::DataObject)),
)]
pub async fn verify(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let t: TokenOnly = json(&req, payload).await?;
    state.accounts.verify_email(&t.token).await?;
    Ok(HttpResponse::Ok().json(json!({ "data": { "verified": true } })))
}

/// `POST /api/v1/auth/verify/resend`: always 202.
#[utoipa::path(
    post, path = "/api/v1/auth/verify/resend", tag = "Sign-in",
    summary = "Send the verification link again",
    request_body(content = crate::openapi::schemas::EmailBody, content_type = "application/json"),
    responses((status = 202, description = "Accepted", body = crate::openapi::schemas::DataObject)),
)]
pub async fn resend(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let e: EmailOnly = json(&req, payload).await?;
    let email = Email::parse("email", &e.email)?;
    state
        .accounts
        .resend_verification(&email, &client_ip(&req, &state))
        .await?;
    Ok(accepted("verification_email_sent_if_unverified"))
}

/// `POST /api/v1/auth/signin`: a new session (any session the browser had ends: the id
/// rotates at every sign-in).
#[utoipa::path(
    post, path = "/api/v1/auth/signin", tag = "Sign-in",
    summary = "Sign in (sets the session cookie)",
    request_body(content = crate::openapi::schemas::Credentials, content_type = "application/json"),
    responses((status = 200, description = "Signed in", body = crate::openapi::schemas::SignedIn)),
)]
pub async fn sign_in(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    check_origin(&req, &state)?;
    let c: Credentials = json(&req, payload).await?;
    let email = Email::parse("email", &c.email)?;
    let signed = state
        .accounts
        .sign_in(
            &email,
            &Password::offered(&c.password),
            &client_ip(&req, &state),
        )
        .await?;
    end_previous(&req, &state).await;
    Ok(HttpResponse::Ok()
        .insert_header((
            "Set-Cookie",
            principal::session_cookie(&state, &signed.cookie),
        ))
        .insert_header(("Cache-Control", "no-store"))
        .json(json!({ "data": {
            "user_id": signed.user_id,
            "account_id": signed.session.account,
            "csrf_token": signed.session.csrf,
        }})))
}

async fn end_previous(req: &HttpRequest, state: &AppState) {
    let name = principal::cookie_name(state);
    let previous = principal::session_cookie_value(req, name)
        .map(str::to_string)
        .filter(|v| !v.is_empty());
    if let Some(old) = previous {
        if let Ok(Some(s)) = state.accounts.sessions.resolve(&old).await {
            let _ = state.accounts.sessions.end(&s).await;
        }
    }
}

/// `POST /api/v1/auth/signout`: ends this session.
#[utoipa::path(
    post, path = "/api/v1/auth/signout", tag = "Sign-in",
    summary = "End this session",
    responses((status = 200, description = "Signed out", body = crate::openapi::schemas::DataObject)),
)]
pub async fn sign_out(
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    if let Some(s) = principal::session(&req, &state).await? {
        state.accounts.sessions.end(&s).await?;
    }
    Ok(HttpResponse::Ok()
        .insert_header(("Set-Cookie", principal::cleared_cookie(&state)))
        .json(json!({ "data": { "signed_out": true } })))
}

/// `POST /api/v1/auth/signout-all`: ends every session of the signed-in user or operator.
#[utoipa::path(
    post, path = "/api/v1/auth/signout-all", tag = "Sign-in",
    summary = "End every session of the user",
    responses((status = 200, description = "`sessions_ended`", body = crate::openapi::schemas::DataObject)), security(("session" = [])),
)]
pub async fn sign_out_all(
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let s = principal::session(&req, &state)
        .await?
        .ok_or_else(|| ApiError::Unauthorized("sign in first".into()))?;
    let ended = state.accounts.sessions.end_all(s.subject, None).await?;
    Ok(HttpResponse::Ok()
        .insert_header(("Set-Cookie", principal::cleared_cookie(&state)))
        .json(json!({ "data": { "sessions_ended": ended } })))
}

/// `POST /api/v1/auth/password`: change the password; other sessions end.
#[utoipa::path(
    post, path = "/api/v1/auth/password", tag = "Sign-in",
    summary = "Change the password (other sessions end)",
    request_body(content = crate::openapi::schemas::PasswordChange, content_type = "application/json"),
    responses((status = 200, description = "Changed", body = crate::openapi::schemas::DataObject)), security(("session" = [])),
)]
pub async fn change_password(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let (session, user) = user_session(&req, &state).await?;
    let c: ChangePassword = json(&req, payload).await?;
    let new = Password::parse("new_password", &c.new_password)?;
    state
        .accounts
        .change_password(
            &session,
            user,
            &Password::offered(&c.current_password),
            &new,
        )
        .await?;
    Ok(HttpResponse::Ok().json(json!({ "data": { "changed": true } })))
}

/// `POST /api/v1/auth/password/forgot`: always 202.
#[utoipa::path(
    post, path = "/api/v1/auth/password/forgot", tag = "Sign-in",
    summary = "Email a password reset link",
    request_body(content = crate::openapi::schemas::EmailBody, content_type = "application/json"),
    responses((status = 202, description = "Accepted", body = crate::openapi::schemas::DataObject)),
)]
pub async fn forgot(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let e: EmailOnly = json(&req, payload).await?;
    let email = Email::parse("email", &e.email)?;
    state
        .accounts
        .forgot_password(&email, &client_ip(&req, &state))
        .await?;
    Ok(accepted("reset_email_sent_if_registered"))
}

/// `POST /api/v1/auth/password/reset`: a new password with the emailed token.
#[utoipa::path(
    post, path = "/api/v1/auth/password/reset", tag = "Sign-in",
    summary = "Set a new password with a reset link's token (every session ends)",
    request_body(content = crate::openapi::schemas::ResetBody, content_type = "application/json"),
    responses((status = 200, description = "Reset", body = crate::openapi::schemas::DataObject)),
)]
pub async fn reset(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let r: Reset = json(&req, payload).await?;
    let password = Password::parse("password", &r.password)?;
    state
        .accounts
        .reset_password(&r.token, &password, &client_ip(&req, &state))
        .await?;
    Ok(HttpResponse::Ok().json(json!({ "data": { "reset": true } })))
}

/// `GET /api/v1/me`: the signed-in user, their accounts and roles, the current account and the
/// session's CSRF token.
#[utoipa::path(
    get, path = "/api/v1/me", tag = "Sign-in",
    summary = "The signed-in user and their accounts",
    responses((status = 200, description = "The user", body = crate::openapi::schemas::MeResponse)), security(("session" = [])),
)]
pub async fn me(req: HttpRequest, state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let (session, user_id) = user_session(&req, &state).await?;
    let user = infron_store::users::user(&state.pg, user_id)
        .await?
        .ok_or_else(|| ApiError::Unauthorized("sign in first".into()))?;
    let memberships = infron_store::members::of_user(&state.pg, user_id).await?;
    Ok(HttpResponse::Ok()
        .insert_header(("Cache-Control", "no-store"))
        .json(json!({ "data": {
            "user": { "id": user.id, "email": user.email, "email_verified": user.email_verified_at.is_some(),
                      "created_at": user.created_at },
            "account_id": session.account,
            "csrf_token": session.csrf,
            "accounts": memberships.iter().map(|m| json!({
                "id": m.account_id, "name": m.name, "role": m.role, "personal": m.personal, "frozen": m.frozen,
            })).collect::<Vec<_>>(),
        }})))
}

/// `POST /api/v1/me/account`: act in another of the user's accounts (404 if not a member).
#[utoipa::path(
    post, path = "/api/v1/me/account", tag = "Sign-in",
    summary = "Act in another of one's accounts",
    request_body(content = crate::openapi::schemas::AccountChoice, content_type = "application/json"),
    responses((status = 200, description = "Switched", body = crate::openapi::schemas::DataObject)), security(("session" = [])),
)]
pub async fn switch_account(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let (session, user) = user_session(&req, &state).await?;
    let c: AccountChoice = json(&req, payload).await?;
    state.accounts.user_actor(user, c.account_id).await?;
    state
        .accounts
        .sessions
        .switch_account(&session, c.account_id)
        .await?;
    Ok(HttpResponse::Ok().json(json!({ "data": { "account_id": c.account_id } })))
}

/// `POST /api/v1/accounts`: a new (team) account owned by the signed-in user, who now acts in it.
#[utoipa::path(
    post, path = "/api/v1/accounts", tag = "Sign-in",
    summary = "Create an account owned by the user (now current)",
    request_body(content = crate::openapi::schemas::NewAccount, content_type = "application/json"),
    responses((status = 201, description = "Created", body = crate::openapi::schemas::DataObject)), security(("session" = [])),
)]
pub async fn create_account(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let (session, user) = user_session(&req, &state).await?;
    let n: NewAccount = json(&req, payload).await?;
    let email = infron_store::users::user(&state.pg, user)
        .await?
        .map(|u| u.email)
        .unwrap_or_default();
    let ctx = principal::user_ctx(&req, &state, user, email);
    let id = state.accounts.create_account(user, &ctx, &n.name).await?;
    state.accounts.sessions.switch_account(&session, id).await?;
    Ok(HttpResponse::Created()
        .json(json!({ "data": { "id": id, "name": n.name.trim(), "role": "owner" } })))
}

/// `POST /api/v1/invitations/accept`: join the account of an invitation sent to the signed-in
/// user's address; the session switches to it.
#[utoipa::path(
    post, path = "/api/v1/invitations/accept", tag = "Account",
    summary = "Join an account (signed in with the invited address)",
    request_body(content = crate::openapi::schemas::TokenBody, content_type = "application/json"),
    responses((status = 200, description = "Joined", body = crate::openapi::schemas::DataObject)), security(("session" = [])),
)]
pub async fn accept_invitation(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let (session, user) = user_session(&req, &state).await?;
    let t: TokenOnly = json(&req, payload).await?;
    let email = infron_store::users::user(&state.pg, user)
        .await?
        .map(|u| u.email)
        .unwrap_or_default();
    let ctx = principal::user_ctx(&req, &state, user, email);
    let inv = state
        .accounts
        .accept_invitation(user, &ctx, &t.token)
        .await?;
    state
        .accounts
        .sessions
        .switch_account(&session, inv.account_id)
        .await?;
    Ok(HttpResponse::Ok()
        .json(json!({ "data": { "account_id": inv.account_id, "role": inv.role } })))
}

/// `POST /api/v1/operator/auth/signin`: an operator's session.
#[utoipa::path(
    post, path = "/api/v1/operator/auth/signin", tag = "Operator",
    summary = "Sign in as an operator",
    description = "Operators are made with `infron operators create`. Sets the session cookie; tenant sessions and keys never reach the operator routes.",
    request_body(content = crate::openapi::schemas::Credentials, content_type = "application/json"),
    responses((status = 200, description = "Signed in", body = crate::openapi::schemas::OperatorSignedIn)),
)]
pub async fn operator_sign_in(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    check_origin(&req, &state)?;
    let c: Credentials = json(&req, payload).await?;
    let email = Email::parse("email", &c.email)?;
    let (cookie, session) = state
        .accounts
        .operator_sign_in(
            &email,
            &Password::offered(&c.password),
            &client_ip(&req, &state),
        )
        .await?;
    end_previous(&req, &state).await;
    let Subject::Operator(id) = session.subject else {
        return Err(ApiError::Internal(
            "operator session without an operator".into(),
        ));
    };
    Ok(HttpResponse::Ok()
        .insert_header(("Set-Cookie", principal::session_cookie(&state, &cookie)))
        .insert_header(("Cache-Control", "no-store"))
        .json(json!({ "data": { "operator_id": id, "csrf_token": session.csrf } })))
}
