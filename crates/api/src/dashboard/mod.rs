//! The web dashboard: server-rendered pages (askama templates, checked at compile time) on the
//! same routes, rules and sessions as the tenant API. Forms post to these pages and work without
//! JavaScript; htmx (bundled from npm at build time, `build.rs`) adds partial updates. Every page
//! carries a strict Content-Security-Policy (`script-src 'self'`, no inline scripts or styles).
//!
//! A page's change (a POST) must come from our own origin and carry the session's CSRF token in
//! the form's `csrf_token` field (`principal::page_user`), like the API's `X-CSRF-Token`.

mod account;
mod auth;
mod operator;
pub(crate) mod views;

use std::collections::HashMap;

use actix_web::http::header::{CACHE_CONTROL, CONTENT_TYPE, LOCATION};
use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse, ResponseError};
use askama::Template;
use infron_accounts::{Actor, Role};

use crate::error::ApiError;
use crate::principal::{page_user, PageUser, Principal};
use crate::state::AppState;

pub use views::{Layout, Nav};

mod assets {
    include!(concat!(env!("OUT_DIR"), "/web_assets.rs"));
}

const CSS: &str = include_str!("../../../../web/src/dashboard.css");
const JS: &str = include_str!("../../../../web/src/dashboard.js");

/// Whether htmx was bundled into this build (see `build.rs`).
pub fn htmx_bundled() -> bool {
    assets::HTMX_MIN_JS.is_some()
}

/// Every script the pages load comes from `/assets/`; nothing inline, nothing from elsewhere.
/// Stripe Checkout is reached by a redirect after a form post, which `form-action` allows.
pub const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
     connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; \
     form-action 'self' https://checkout.stripe.com";

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/", web::get().to(home))
        .route("/assets/dashboard.css", web::get().to(css))
        .route("/assets/dashboard.js", web::get().to(js))
        .route("/assets/htmx.min.js", web::get().to(htmx))
        .route("/assets/uplot.min.js", web::get().to(uplot_js))
        .route("/assets/uplot.min.css", web::get().to(uplot_css))
        .route("/sign-in", web::get().to(auth::sign_in_page))
        .route("/sign-in", web::post().to(auth::sign_in))
        .route("/sign-up", web::get().to(auth::sign_up_page))
        .route("/sign-up", web::post().to(auth::sign_up))
        .route("/verify-email", web::get().to(auth::verify_page))
        .route("/verify-email", web::post().to(auth::verify))
        .route("/verify-email/resend", web::post().to(auth::resend))
        .route("/forgot-password", web::get().to(auth::forgot_page))
        .route("/forgot-password", web::post().to(auth::forgot))
        .route("/reset-password", web::get().to(auth::reset_page))
        .route("/reset-password", web::post().to(auth::reset))
        .route("/sign-out", web::post().to(auth::sign_out))
        .route("/switch-account", web::post().to(auth::switch_account))
        .route("/invitations/accept", web::get().to(auth::invitation_page))
        .route(
            "/invitations/accept",
            web::post().to(auth::accept_invitation),
        )
        .route("/keys", web::get().to(account::keys))
        .route("/keys", web::post().to(account::create_key))
        .route("/keys/{hash}/edit", web::get().to(account::edit_key_page))
        .route("/keys/{hash}/edit", web::post().to(account::edit_key))
        .route("/keys/{hash}/{action}", web::post().to(account::key_action))
        .route("/credits", web::get().to(account::credits))
        .route("/credits/quote", web::get().to(account::quote))
        .route("/credits/review", web::post().to(account::review))
        .route("/credits/checkout", web::post().to(account::checkout))
        .route(
            "/credits/auto-topup",
            web::post().to(account::change_auto_topup),
        )
        .route(
            "/credits/auto-topup/card",
            web::post().to(account::save_card),
        )
        .route("/logs", web::get().to(account::logs))
        .route("/logs/{id}", web::get().to(account::log_detail))
        .route("/activity", web::get().to(account::activity))
        .route("/activity.csv", web::get().to(account::activity_csv))
        .route("/models", web::get().to(account::models))
        .route("/models/{id:.+}", web::get().to(account::model))
        .route("/settings", web::get().to(account::settings))
        .route("/settings", web::post().to(account::change_settings))
        .route("/settings/alerts", web::post().to(account::change_alerts))
        .route(
            "/settings/alerts/secret",
            web::post().to(account::new_alert_secret),
        )
        .route("/members", web::get().to(account::members))
        .route("/members/invite", web::post().to(account::invite))
        .route(
            "/members/{user_id}/{action}",
            web::post().to(account::member_action),
        )
        .route(
            "/members/invitations/{id}/revoke",
            web::post().to(account::revoke_invitation),
        )
        .route("/account/leave", web::post().to(account::leave_account))
        .route(
            "/operator",
            web::get().to(|| async { see_other("/operator/accounts") }),
        )
        .route("/operator/sign-in", web::get().to(operator::sign_in_page))
        .route("/operator/sign-in", web::post().to(operator::sign_in))
        .route("/operator/accounts", web::get().to(operator::accounts))
        .route("/operator/accounts/{id}", web::get().to(operator::account))
        .route(
            "/operator/accounts/{id}/{action}",
            web::post().to(operator::account_action),
        )
        .route("/operator/audit", web::get().to(operator::audit));
}

async fn home(req: HttpRequest, state: web::Data<AppState>) -> Result<HttpResponse, PageError> {
    match page_user(&req, &state, None).await? {
        Some(u) => Ok(see_other(landing(&state, u.user, u.session.account).await)),
        None => Ok(see_other("/sign-in")),
    }
}

/// Where a signed-in user starts: their keys; billing members (who hold none) their credits;
/// someone in no account the catalog.
pub async fn landing(
    state: &AppState,
    user: uuid::Uuid,
    account: Option<uuid::Uuid>,
) -> &'static str {
    let Some(account) = account else {
        return "/models";
    };
    match state.accounts.role_in(account, user).await {
        Ok(Some(Role::Billing)) => "/credits",
        Ok(Some(_)) => "/keys",
        _ => "/models",
    }
}

fn asset(content_type: &'static str, body: &'static [u8]) -> HttpResponse {
    HttpResponse::Ok()
        .insert_header((CONTENT_TYPE, content_type))
        .insert_header((CACHE_CONTROL, "public, max-age=3600"))
        .insert_header(("X-Content-Type-Options", "nosniff"))
        .body(body)
}

async fn css() -> HttpResponse {
    asset("text/css; charset=utf-8", CSS.as_bytes())
}

async fn js() -> HttpResponse {
    asset("text/javascript; charset=utf-8", JS.as_bytes())
}

async fn htmx() -> HttpResponse {
    match assets::HTMX_MIN_JS {
        Some(b) => asset("text/javascript; charset=utf-8", b),
        None => HttpResponse::NotFound()
            .insert_header((CONTENT_TYPE, "text/plain; charset=utf-8"))
            .body("htmx was not bundled into this build (run `npm ci --prefix web` and rebuild)"),
    }
}

fn bundled(content_type: &'static str, body: Option<&'static [u8]>) -> HttpResponse {
    match body {
        Some(b) => asset(content_type, b),
        None => HttpResponse::NotFound()
            .insert_header((CONTENT_TYPE, "text/plain; charset=utf-8"))
            .body("not bundled into this build (run `npm ci --prefix web` and rebuild)"),
    }
}

async fn uplot_js() -> HttpResponse {
    bundled("text/javascript; charset=utf-8", assets::UPLOT_MIN_JS)
}

async fn uplot_css() -> HttpResponse {
    bundled("text/css; charset=utf-8", assets::UPLOT_MIN_CSS)
}

/// Whether uPlot (the Activity chart) was bundled into this build.
pub fn chart_bundled() -> bool {
    assets::UPLOT_MIN_JS.is_some() && assets::UPLOT_MIN_CSS.is_some()
}

/// An HTML page with the dashboard's security headers.
pub fn html(status: StatusCode, body: String) -> HttpResponse {
    HttpResponse::build(status)
        .insert_header((CONTENT_TYPE, "text/html; charset=utf-8"))
        .insert_header(("Content-Security-Policy", CSP))
        .insert_header((CACHE_CONTROL, "no-store"))
        .insert_header(("X-Content-Type-Options", "nosniff"))
        .insert_header(("Referrer-Policy", "same-origin"))
        .insert_header(("X-Frame-Options", "DENY"))
        .body(body)
}

/// Renders a template as a 200 page (or `status`).
pub fn render<T: Template>(t: &T) -> Result<HttpResponse, PageError> {
    render_status(StatusCode::OK, t)
}

pub fn render_status<T: Template>(status: StatusCode, t: &T) -> Result<HttpResponse, PageError> {
    match t.render() {
        Ok(body) => Ok(html(status, body)),
        Err(e) => Err(PageError(ApiError::Internal(format!("template: {e}")))),
    }
}

/// 303 to a page of ours.
pub fn see_other(path: &str) -> HttpResponse {
    HttpResponse::SeeOther()
        .insert_header((LOCATION, path))
        .insert_header((CACHE_CONTROL, "no-store"))
        .finish()
}

/// A failed page: the error's status and message on a plain page (never a stack trace; internal
/// errors say only "internal error" and are logged). Signed-out visitors go to the sign-in page.
#[derive(Debug)]
pub struct PageError(pub ApiError);

impl std::fmt::Display for PageError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

impl From<ApiError> for PageError {
    fn from(e: ApiError) -> Self {
        PageError(e)
    }
}

impl From<infron_accounts::AccountsError> for PageError {
    fn from(e: infron_accounts::AccountsError) -> Self {
        PageError(e.into())
    }
}

impl From<infron_store::StoreError> for PageError {
    fn from(e: infron_store::StoreError) -> Self {
        PageError(e.into())
    }
}

impl ResponseError for PageError {
    fn status_code(&self) -> StatusCode {
        self.0.status_code()
    }

    fn error_response(&self) -> HttpResponse {
        if matches!(self.0, ApiError::Unauthorized(_)) {
            return see_other("/sign-in");
        }
        if let ApiError::Internal(detail) = &self.0 {
            tracing::error!(detail = %detail, "dashboard page failed");
        }
        let status = self.0.status_code();
        let page = views::ErrorPage {
            layout: Layout::bare("Something went wrong"),
            status: status.as_u16(),
            reason: status.canonical_reason().unwrap_or("Error").to_string(),
            message: self.0.to_string(),
        };
        match page.render() {
            Ok(body) => html(status, body),
            Err(_) => HttpResponse::build(status)
                .insert_header((CONTENT_TYPE, "text/plain; charset=utf-8"))
                .body(self.0.to_string()),
        }
    }
}

/// For htmx's requests (fragments that replace part of a page): a session that ended sends the
/// whole page to sign-in (`HX-Redirect`) instead of swapping the sign-in page into the fragment.
pub async fn fragment_member(
    req: &HttpRequest,
    state: &AppState,
    current: &'static str,
) -> Result<Result<Member, HttpResponse>, PageError> {
    let htmx = req.headers().contains_key("hx-request");
    match member(req, state, current, None).await {
        Err(PageError(ApiError::Unauthorized(_))) if htmx => Ok(Err(HttpResponse::Ok()
            .insert_header(("HX-Redirect", "/sign-in"))
            .insert_header((CACHE_CONTROL, "no-store"))
            .finish())),
        Err(e) => Err(e),
        Ok(m) => Ok(Ok(m)),
    }
}

/// A signed-in user acting in an account, for the account's pages.
pub struct Member {
    pub user: PageUser,
    pub p: Principal,
    pub role: Role,
    pub nav: Nav,
}

impl Member {
    pub fn csrf(&self) -> &str {
        &self.user.session.csrf
    }

    pub fn layout(&self, title: &str) -> Layout {
        Layout::with_nav(title, self.nav.clone())
    }
}

/// The signed-in member for a page named `current` (highlighted in the navigation); 401 (to
/// the sign-in page) when signed out, 403 when the user is in no account.
pub async fn member(
    req: &HttpRequest,
    state: &AppState,
    current: &'static str,
    form: Option<&HashMap<String, String>>,
) -> Result<Member, PageError> {
    let token = form.and_then(|f| f.get("csrf_token")).map(String::as_str);
    let user = page_user(req, state, token)
        .await?
        .ok_or_else(|| ApiError::Unauthorized("sign in first".into()))?;
    let nav = Nav::load(state, &user, current).await?;
    let Some(p) = user.principal.as_ref().map(|p| Principal {
        actor: p.actor.clone(),
        key: None,
        session: p.session.clone(),
    }) else {
        return Err(ApiError::Forbidden(
            "you belong to no account: accept an invitation, or create an account with the API (POST /api/v1/accounts)".into(),
        )
        .into());
    };
    let role = match &p.actor {
        Actor::User { role, .. } => *role,
        _ => return Err(ApiError::Internal("a page without a user".into()).into()),
    };
    Ok(Member { user, p, role, nav })
}
