//! Sign-up, sign-in, email verification, password reset, sign-out, switching accounts and
//! accepting invitations: the same `infron_accounts` flows as the JSON routes, as forms.

use std::collections::HashMap;

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use infron_accounts::{AccountsError, Email, Password};
use uuid::Uuid;

use super::views::AuthPage;
use super::{render, render_status, see_other, PageError};
use crate::error::ApiError;
use crate::principal::{self, check_origin, client_ip, page_user};
use crate::state::AppState;

type Form = web::Form<HashMap<String, String>>;
type Query = web::Query<HashMap<String, String>>;

fn field<'a>(form: &'a HashMap<String, String>, name: &str) -> &'a str {
    form.get(name).map_or("", String::as_str)
}

/// Only a path of ours (`/...`, not `//host`) may be where sign-in returns to.
fn safe_next(next: &str) -> Option<&str> {
    (next.starts_with('/') && !next.starts_with("//") && !next.contains('\\')).then_some(next)
}

/// What a person should read for a refused form: the rule's own message, or for throttling
/// the wait. Internal failures keep their detail in the log.
fn message(e: &ApiError) -> String {
    if let ApiError::Internal(detail) = e {
        tracing::error!(detail = %detail, "dashboard form failed");
    }
    e.to_string()
}

fn status_of(e: &ApiError) -> StatusCode {
    actix_web::ResponseError::status_code(e)
}

pub async fn sign_in_page(
    req: HttpRequest,
    query: Query,
    state: web::Data<AppState>,
) -> Result<HttpResponse, PageError> {
    if let Some(u) = page_user(&req, &state, None).await? {
        if !query.contains_key("next") {
            return Ok(see_other(
                super::landing(&state, u.user, u.session.account).await,
            ));
        }
    }
    let mut page = AuthPage::new("sign-in", "Sign in");
    page.next = query
        .get("next")
        .and_then(|n| safe_next(n))
        .unwrap_or("")
        .to_string();
    render(&page)
}

pub async fn sign_in(
    req: HttpRequest,
    form: Form,
    state: web::Data<AppState>,
) -> Result<HttpResponse, PageError> {
    let mut page = AuthPage::new("sign-in", "Sign in");
    page.email = field(&form, "email").to_string();
    page.next = safe_next(field(&form, "next")).unwrap_or("").to_string();
    let attempt = async {
        check_origin(&req, &state)?;
        let email = Email::parse("email", field(&form, "email"))?;
        let signed = state
            .accounts
            .sign_in(
                &email,
                &Password::offered(field(&form, "password")),
                &client_ip(&req, &state),
            )
            .await?;
        Ok::<_, ApiError>(signed)
    };
    match attempt.await {
        Ok(signed) => {
            end_previous(&req, &state).await;
            let to = match safe_next(field(&form, "next")) {
                Some(next) => next,
                None => super::landing(&state, signed.user_id, signed.session.account).await,
            };
            Ok(HttpResponse::SeeOther()
                .insert_header(("Location", to))
                .insert_header((
                    "Set-Cookie",
                    principal::session_cookie(&state, &signed.cookie),
                ))
                .insert_header(("Cache-Control", "no-store"))
                .finish())
        }
        Err(e) => {
            page.offer_resend =
                matches!(&e, ApiError::Forbidden(m) if m.contains("confirm your email"));
            page.error = Some(message(&e));
            render_status(status_of(&e), &page)
        }
    }
}

/// Sends the confirmation link again; the same answer whatever the address.
pub async fn resend(
    req: HttpRequest,
    form: Form,
    state: web::Data<AppState>,
) -> Result<HttpResponse, PageError> {
    let mut page = AuthPage::new("sign-in", "Sign in");
    page.email = field(&form, "email").to_string();
    let attempt = async {
        let email = Email::parse("email", field(&form, "email"))?;
        state
            .accounts
            .resend_verification(&email, &client_ip(&req, &state))
            .await?;
        Ok::<_, ApiError>(())
    };
    match attempt.await {
        Ok(()) => {
            page.notice = Some(
                "If this address is not confirmed yet, we sent it a new link. Open it, then sign in."
                    .into(),
            );
            render_status(StatusCode::ACCEPTED, &page)
        }
        Err(e) => {
            page.error = Some(message(&e));
            render_status(status_of(&e), &page)
        }
    }
}

async fn end_previous(req: &HttpRequest, state: &AppState) {
    if let Some(old) = principal::session_cookie_value(req, principal::cookie_name(state)) {
        if let Ok(Some(s)) = state.accounts.sessions.resolve(old).await {
            let _ = state.accounts.sessions.end(&s).await;
        }
    }
}

pub async fn sign_up_page() -> Result<HttpResponse, PageError> {
    render(&AuthPage::new("sign-up", "Create an account"))
}

pub async fn sign_up(
    req: HttpRequest,
    form: Form,
    state: web::Data<AppState>,
) -> Result<HttpResponse, PageError> {
    let mut page = AuthPage::new("sign-up", "Create an account");
    page.email = field(&form, "email").to_string();
    let attempt = async {
        check_origin(&req, &state)?;
        let email = Email::parse("email", field(&form, "email"))?;
        let password = Password::parse("password", field(&form, "password"))?;
        state
            .accounts
            .sign_up(&email, &password, &client_ip(&req, &state))
            .await?;
        Ok::<_, ApiError>(email)
    };
    match attempt.await {
        Ok(email) => {
            page.done = true;
            page.notice = Some(format!(
                "We sent a link to {email}. Open it to confirm your address, then sign in."
            ));
            render_status(StatusCode::ACCEPTED, &page)
        }
        Err(e) => {
            page.error = Some(message(&e));
            render_status(status_of(&e), &page)
        }
    }
}

pub async fn verify_page(query: Query) -> Result<HttpResponse, PageError> {
    let mut page = AuthPage::new("verify", "Confirm your email address");
    page.token = query.get("token").cloned().unwrap_or_default();
    if page.token.is_empty() {
        page.error = Some("This link has no token; open the link from the email again.".into());
        page.done = true;
    }
    render(&page)
}

/// The emailed link opens a page whose button posts the token: a mail scanner that fetches
/// the link does not use it up.
pub async fn verify(form: Form, state: web::Data<AppState>) -> Result<HttpResponse, PageError> {
    let mut page = AuthPage::new("verify", "Confirm your email address");
    page.done = true;
    match state.accounts.verify_email(field(&form, "token")).await {
        Ok(_) => {
            page.notice = Some("Your address is confirmed. You can sign in now.".into());
            render(&page)
        }
        Err(e) => {
            let e = ApiError::from(e);
            page.error = Some(message(&e));
            render_status(status_of(&e), &page)
        }
    }
}

pub async fn forgot_page() -> Result<HttpResponse, PageError> {
    render(&AuthPage::new("forgot", "Reset your password"))
}

pub async fn forgot(
    req: HttpRequest,
    form: Form,
    state: web::Data<AppState>,
) -> Result<HttpResponse, PageError> {
    let mut page = AuthPage::new("forgot", "Reset your password");
    page.email = field(&form, "email").to_string();
    let attempt = async {
        let email = Email::parse("email", field(&form, "email"))?;
        state
            .accounts
            .forgot_password(&email, &client_ip(&req, &state))
            .await?;
        Ok::<_, ApiError>(())
    };
    match attempt.await {
        Ok(()) => {
            page.done = true;
            page.notice = Some(
                "If this address has an account, we sent it a link to set a new password (valid one hour)."
                    .into(),
            );
            render_status(StatusCode::ACCEPTED, &page)
        }
        Err(e) => {
            page.error = Some(message(&e));
            render_status(status_of(&e), &page)
        }
    }
}

pub async fn reset_page(query: Query) -> Result<HttpResponse, PageError> {
    let mut page = AuthPage::new("reset", "Set a new password");
    page.token = query.get("token").cloned().unwrap_or_default();
    render(&page)
}

pub async fn reset(
    req: HttpRequest,
    form: Form,
    state: web::Data<AppState>,
) -> Result<HttpResponse, PageError> {
    let mut page = AuthPage::new("reset", "Set a new password");
    page.token = field(&form, "token").to_string();
    let attempt = async {
        let password = Password::parse("password", field(&form, "password"))?;
        state
            .accounts
            .reset_password(field(&form, "token"), &password, &client_ip(&req, &state))
            .await?;
        Ok::<_, ApiError>(())
    };
    match attempt.await {
        Ok(()) => {
            page.done = true;
            page.notice =
                Some("Your password is set, and every session signed out. Sign in again.".into());
            render(&page)
        }
        Err(e) => {
            page.error = Some(message(&e));
            render_status(status_of(&e), &page)
        }
    }
}

pub async fn sign_out(
    req: HttpRequest,
    form: Form,
    state: web::Data<AppState>,
) -> Result<HttpResponse, PageError> {
    let token = form.get("csrf_token").map(String::as_str);
    if let Some(u) = page_user(&req, &state, token).await? {
        state.accounts.sessions.end(&u.session).await?;
    } else if let Some((session, _)) = principal::page_operator(&req, &state, token).await? {
        state.accounts.sessions.end(&session).await?;
    }
    Ok(HttpResponse::SeeOther()
        .insert_header(("Location", "/sign-in"))
        .insert_header(("Set-Cookie", principal::cleared_cookie(&state)))
        .finish())
}

pub async fn switch_account(
    req: HttpRequest,
    form: Form,
    state: web::Data<AppState>,
) -> Result<HttpResponse, PageError> {
    let u = page_user(&req, &state, form.get("csrf_token").map(String::as_str))
        .await?
        .ok_or_else(|| ApiError::Unauthorized("sign in first".into()))?;
    let account = Uuid::parse_str(field(&form, "account_id"))
        .map_err(|_| ApiError::UnknownId("account not found".into()))?;
    state.accounts.user_actor(u.user, account).await?;
    state
        .accounts
        .sessions
        .switch_account(&u.session, account)
        .await?;
    Ok(see_other(
        super::landing(&state, u.user, Some(account)).await,
    ))
}

pub async fn invitation_page(
    req: HttpRequest,
    query: Query,
    state: web::Data<AppState>,
) -> Result<HttpResponse, PageError> {
    let token = query.get("token").cloned().unwrap_or_default();
    let mut page = AuthPage::new("invitation", "Accept the invitation");
    match page_user(&req, &state, None).await? {
        Some(u) => {
            page.token = token;
            page.csrf = u.session.csrf;
        }
        None => {
            page.done = true;
            page.notice = Some(
                "Sign in with the address the invitation was sent to (create an account with it first if you have none)."
                    .into(),
            );
            let back = format!("/invitations/accept?token={}", urlencode(&token));
            page.next = format!("/sign-in?next={}", urlencode(&back));
        }
    }
    render(&page)
}

pub async fn accept_invitation(
    req: HttpRequest,
    form: Form,
    state: web::Data<AppState>,
) -> Result<HttpResponse, PageError> {
    let u = page_user(&req, &state, form.get("csrf_token").map(String::as_str))
        .await?
        .ok_or_else(|| ApiError::Unauthorized("sign in first".into()))?;
    let email = infron_store::users::user(&state.pg, u.user)
        .await?
        .map(|u| u.email)
        .unwrap_or_default();
    let ctx = principal::user_ctx(&req, &state, u.user, email);
    match state
        .accounts
        .accept_invitation(u.user, &ctx, field(&form, "token"))
        .await
    {
        Ok(inv) => {
            state
                .accounts
                .sessions
                .switch_account(&u.session, inv.account_id)
                .await?;
            Ok(see_other(
                super::landing(&state, u.user, Some(inv.account_id)).await,
            ))
        }
        Err(e @ (AccountsError::Invalid { .. } | AccountsError::NotFound(_))) => {
            let mut page = AuthPage::new("invitation", "Accept the invitation");
            page.done = true;
            let e = ApiError::from(e);
            page.error = Some(message(&e));
            render_status(status_of(&e), &page)
        }
        Err(e) => Err(e.into()),
    }
}

/// Percent-encoding for a query value.
pub fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sign_in_returns_only_to_our_own_paths() {
        assert_eq!(safe_next("/keys"), Some("/keys"));
        assert_eq!(
            safe_next("/invitations/accept?token=x"),
            Some("/invitations/accept?token=x")
        );
        for bad in [
            "",
            "https://evil.example",
            "//evil.example",
            "/\\evil.example",
            "keys",
        ] {
            assert_eq!(safe_next(bad), None, "{bad}");
        }
        assert_eq!(urlencode("/a?b=c&d"), "%2Fa%3Fb%3Dc%26d");
    }
}
