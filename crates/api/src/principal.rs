//! Who is calling a tenant route: an API key (inference or management) or a signed-in session,
//! turned into the `Actor` the rules in `infron_accounts::policy` judge. Session requests that
//! change something must come from our own origin and carry the session's CSRF token.

use actix_web::http::header::{HeaderValue, COOKIE};
use actix_web::http::Method;
use actix_web::HttpRequest;
use infron_accounts::{Actor, AuditCtx, KeyKind, Session, Subject};
use uuid::Uuid;

use crate::auth::{Authenticator, Caller};
use crate::error::ApiError;
use crate::state::AppState;

pub const CSRF_HEADER: &str = "x-csrf-token";
const COOKIE_NAME: &str = "infron_session";
/// With `Secure`, the `__Host-` prefix also pins the cookie to this host and path `/`.
const SECURE_COOKIE_NAME: &str = "__Host-infron_session";

/// An authenticated caller of a tenant route.
pub struct Principal {
    pub actor: Actor,
    /// The key, when a key called.
    pub key: Option<Caller>,
    /// The session, when a signed-in user called.
    pub session: Option<Session>,
}

pub fn cookie_name(state: &AppState) -> &'static str {
    if state.accounts.config.secure_cookies() {
        SECURE_COOKIE_NAME
    } else {
        COOKIE_NAME
    }
}

/// `Set-Cookie` for a new session id (HttpOnly, SameSite=Lax, Secure unless plain localhost).
pub fn session_cookie(state: &AppState, value: &str) -> String {
    let secure = if state.accounts.config.secure_cookies() {
        "; Secure"
    } else {
        ""
    };
    format!(
        "{}={value}; Path=/; HttpOnly; SameSite=Lax; Max-Age={}{secure}",
        cookie_name(state),
        state.settings.tenants.session_absolute.as_secs()
    )
}

/// `Set-Cookie` that removes the session cookie.
pub fn cleared_cookie(state: &AppState) -> String {
    let secure = if state.accounts.config.secure_cookies() {
        "; Secure"
    } else {
        ""
    };
    format!(
        "{}=; Path=/; HttpOnly; SameSite=Lax; Max-Age=0{secure}",
        cookie_name(state)
    )
}

pub fn session_cookie_value<'a>(req: &'a HttpRequest, name: &str) -> Option<&'a str> {
    req.headers()
        .get_all(COOKIE)
        .filter_map(|v: &HeaderValue| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.trim())
}

fn header<'a>(req: &'a HttpRequest, name: &str) -> Option<&'a str> {
    req.headers().get(name).and_then(|v| v.to_str().ok())
}

/// The client's address: the peer, or the last `X-Forwarded-For` hop when the operator says a
/// proxy in front sets it (the last entry is the one that proxy added).
pub fn client_ip(req: &HttpRequest, state: &AppState) -> String {
    if state.settings.tenants.trust_forwarded_for {
        if let Some(ip) = header(req, "x-forwarded-for")
            .and_then(|v| v.rsplit(',').next())
            .map(str::trim)
            .filter(|v| !v.is_empty())
        {
            return ip.to_string();
        }
    }
    req.peer_addr()
        .map_or_else(|| "unknown".to_string(), |a| a.ip().to_string())
}

fn changes_state(req: &HttpRequest) -> bool {
    !matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS)
}

/// Refuses a cross-site request: the Origin (or Sec-Fetch-Site) must be ours. Used for every
/// session-authenticated change and for sign-in and sign-up themselves.
pub fn check_origin(req: &HttpRequest, state: &AppState) -> Result<(), ApiError> {
    if infron_accounts::sessions::same_origin(
        header(req, "origin"),
        header(req, "sec-fetch-site"),
        &state.accounts.config.allowed_origins(),
    ) {
        Ok(())
    } else {
        Err(ApiError::Forbidden(
            "cross-site request refused: it must come from this gateway's own pages".into(),
        ))
    }
}

/// The session of the request's cookie, checked for origin and CSRF token when the request
/// changes something. None without a (live) session cookie.
pub async fn session(req: &HttpRequest, state: &AppState) -> Result<Option<Session>, ApiError> {
    let Some(cookie) = session_cookie_value(req, cookie_name(state)) else {
        return Ok(None);
    };
    let Some(session) = state.accounts.sessions.resolve(cookie).await? else {
        return Ok(None);
    };
    if changes_state(req) {
        check_origin(req, state)?;
        let token = header(req, CSRF_HEADER).unwrap_or_default();
        if !session.csrf_matches(token) {
            return Err(ApiError::Forbidden(format!(
                "missing or wrong {CSRF_HEADER} header (the session's CSRF token)"
            )));
        }
    }
    Ok(Some(session))
}

/// A signed-in user's session, or 401.
pub async fn user_session(
    req: &HttpRequest,
    state: &AppState,
) -> Result<(Session, Uuid), ApiError> {
    match session(req, state).await? {
        Some(s) => match s.subject {
            Subject::User(u) => Ok((s, u)),
            Subject::Operator(_) => Err(ApiError::Forbidden(
                "operators use the operator API (/api/v1/operator)".into(),
            )),
        },
        None => Err(ApiError::Unauthorized("sign in first".into())),
    }
}

/// The caller of a tenant route: a bearer key if one is sent, else the session.
pub async fn principal(req: &HttpRequest, state: &AppState) -> Result<Principal, ApiError> {
    if Authenticator::has_bearer(req) {
        let key = state.auth.authenticate_any(req).await?;
        let actor = match key.kind {
            KeyKind::Management | KeyKind::ManagementRead => Actor::ManagementKey {
                key_id: key.key_id,
                account_id: key.account_id,
                creator: key.created_by,
                read_only: key.kind == KeyKind::ManagementRead,
            },
            KeyKind::Inference => Actor::InferenceKey {
                key_id: key.key_id,
                account_id: key.account_id,
                creator: key.created_by,
                creator_role: match key.created_by {
                    Some(u) => state.accounts.role_in(key.account_id, u).await?,
                    None => None,
                },
            },
        };
        return Ok(Principal {
            actor,
            key: Some(key),
            session: None,
        });
    }
    let (session, user) = user_session(req, state).await?;
    let account = session.account.ok_or_else(|| {
        ApiError::Forbidden(
            "you belong to no account; create one (POST /api/v1/accounts) or accept an invitation"
                .into(),
        )
    })?;
    let actor = state.accounts.user_actor(user, account).await?;
    Ok(Principal {
        actor,
        key: None,
        session: Some(session),
    })
}

/// Who to name in the audit log for a change made by `p`.
pub async fn audit_ctx(req: &HttpRequest, state: &AppState, p: &Principal) -> AuditCtx {
    let label = match (&p.key, p.actor.user_id()) {
        (Some(k), _) => format!("key {}", k.key_name),
        (None, Some(u)) => infron_store::users::user(&state.pg, u)
            .await
            .ok()
            .flatten()
            .map_or_else(|| u.to_string(), |u| u.email),
        (None, None) => String::new(),
    };
    AuditCtx::for_actor(
        &p.actor,
        label,
        Some(client_ip(req, state)),
        header(req, "user-agent").map(|s| s.chars().take(300).collect()),
    )
}

/// The request's IP and user agent for a user acting outside an account (sign-up, joining).
pub fn user_ctx(req: &HttpRequest, state: &AppState, user: Uuid, label: String) -> AuditCtx {
    AuditCtx {
        actor_kind: "user",
        user_id: Some(user),
        key_id: None,
        label,
        ip: Some(client_ip(req, state)),
        user_agent: header(req, "user-agent").map(|s| s.chars().take(300).collect()),
    }
}

/// A signed-in user as the dashboard's pages see them.
pub struct PageUser {
    pub session: Session,
    pub user: Uuid,
    /// How the user acts in the session's account; None when they are in no account (or were
    /// removed from it since).
    pub principal: Option<Principal>,
}

/// The signed-in operator of an operator console page, with what the audit log records of
/// them, or None (signed out, or a tenant's session). Forms carry the CSRF token as a field,
/// as on the tenant pages.
pub async fn page_operator(
    req: &HttpRequest,
    state: &AppState,
    form_token: Option<&str>,
) -> Result<Option<(Session, infron_accounts::AuditCtx)>, ApiError> {
    let Some(cookie) = session_cookie_value(req, cookie_name(state)) else {
        return Ok(None);
    };
    let Some(session) = state.accounts.sessions.resolve(cookie).await? else {
        return Ok(None);
    };
    let Subject::Operator(id) = session.subject else {
        return Ok(None);
    };
    if changes_state(req) {
        check_origin(req, state)?;
        let token = form_token
            .or_else(|| header(req, CSRF_HEADER))
            .unwrap_or_default();
        if !session.csrf_matches(token) {
            return Err(ApiError::Forbidden(
                "this form has expired; reload the page and try again".into(),
            ));
        }
    }
    let ctx = crate::routes::operator::operator_ctx(req, state, id).await?;
    Ok(Some((session, ctx)))
}

/// The signed-in user of a dashboard page, or None. Pages' forms cannot send headers, so a
/// change carries the session's CSRF token in a form field (`form_token`) instead of
/// `X-CSRF-Token` (either is accepted), and must come from our own origin like any other.
/// An operator's session is not a user's: tenant pages treat it as signed out.
pub async fn page_user(
    req: &HttpRequest,
    state: &AppState,
    form_token: Option<&str>,
) -> Result<Option<PageUser>, ApiError> {
    let Some(cookie) = session_cookie_value(req, cookie_name(state)) else {
        return Ok(None);
    };
    let Some(session) = state.accounts.sessions.resolve(cookie).await? else {
        return Ok(None);
    };
    if changes_state(req) {
        check_origin(req, state)?;
        let token = form_token
            .or_else(|| header(req, CSRF_HEADER))
            .unwrap_or_default();
        if !session.csrf_matches(token) {
            return Err(ApiError::Forbidden(
                "this form has expired; reload the page and try again".into(),
            ));
        }
    }
    let Subject::User(user) = session.subject else {
        return Ok(None);
    };
    let principal = match session.account {
        None => None,
        Some(account) => match state.accounts.user_actor(user, account).await {
            Ok(actor) => Some(Principal {
                actor,
                key: None,
                session: Some(session.clone()),
            }),
            Err(infron_accounts::AccountsError::NotFound(_)) => None,
            Err(e) => return Err(e.into()),
        },
    };
    Ok(Some(PageUser {
        session,
        user,
        principal,
    }))
}
