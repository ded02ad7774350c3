//! The operator console: the people running the platform sign in with their own accounts
//! (`infron operators create`), list and search tenants' accounts, open one (balance, members,
//! keys, grants), grant and reverse credits, freeze and unfreeze it, and read the audit log.
//! Every change goes through the same functions as the operator API, so it is recorded in the
//! audit log the same way; a tenant's session sees none of it (404).

use std::collections::HashMap;

use actix_web::{web, HttpRequest, HttpResponse};
use askama::Template;
use infron_accounts::{AuditCtx, Email, Password, Session};
use serde_json::Value;
use uuid::Uuid;

use super::views::{text_of, usd_of, Layout, Nav, NavLink};
use super::{render, render_status, see_other, PageError};
use crate::error::ApiError;
use crate::principal::{self, check_origin, client_ip};
use crate::routes::operator as api;
use crate::state::AppState;

type Form = web::Form<HashMap<String, String>>;
type Query = web::Query<HashMap<String, String>>;

const PAGE: i64 = 50;

fn field<'a>(form: &'a HashMap<String, String>, name: &str) -> &'a str {
    form.get(name).map_or("", |s| s.trim())
}

/// The signed-in operator; signed-out visitors go to the console's sign-in page, and a
/// tenant's session finds no such page.
struct Operator {
    session: Session,
    ctx: AuditCtx,
}

impl Operator {
    async fn of(
        req: &HttpRequest,
        state: &AppState,
        form: Option<&HashMap<String, String>>,
    ) -> Result<Result<Operator, HttpResponse>, PageError> {
        let token = form.and_then(|f| f.get("csrf_token")).map(String::as_str);
        match principal::page_operator(req, state, token).await? {
            Some((session, ctx)) => Ok(Ok(Operator { session, ctx })),
            None if principal::page_user(req, state, None).await?.is_some() => {
                Err(ApiError::NotFound("no such page".into()).into())
            }
            None => Ok(Err(see_other("/operator/sign-in"))),
        }
    }

    fn layout(&self, title: &str, current: &str) -> Layout {
        let links = [
            ("/operator/accounts", "Accounts"),
            ("/operator/audit", "Audit log"),
        ]
        .into_iter()
        .map(|(href, label)| NavLink {
            href,
            label,
            current: href == current,
        })
        .collect();
        Layout::with_nav(
            title,
            Nav {
                email: format!("{} (operator)", self.ctx.label),
                csrf: self.session.csrf.clone(),
                links,
                accounts: Vec::new(),
            },
        )
    }
}

#[derive(Template)]
#[template(path = "operator_sign_in.html")]
struct SignInPage {
    layout: Layout,
    email: String,
    error: Option<String>,
}

pub async fn sign_in_page() -> Result<HttpResponse, PageError> {
    render(&SignInPage {
        layout: Layout::bare("Operator sign-in"),
        email: String::new(),
        error: None,
    })
}

pub async fn sign_in(
    req: HttpRequest,
    form: Form,
    state: web::Data<AppState>,
) -> Result<HttpResponse, PageError> {
    let attempt = async {
        check_origin(&req, &state)?;
        let email = Email::parse("email", field(&form, "email"))?;
        let (cookie, _) = state
            .accounts
            .operator_sign_in(
                &email,
                &Password::offered(field(&form, "password")),
                &client_ip(&req, &state),
            )
            .await?;
        Ok::<_, ApiError>(cookie)
    };
    match attempt.await {
        Ok(cookie) => Ok(HttpResponse::SeeOther()
            .insert_header(("Location", "/operator/accounts"))
            .insert_header(("Set-Cookie", principal::session_cookie(&state, &cookie)))
            .insert_header(("Cache-Control", "no-store"))
            .finish()),
        Err(e) => {
            let status = actix_web::ResponseError::status_code(&e);
            render_status(
                status,
                &SignInPage {
                    layout: Layout::bare("Operator sign-in"),
                    email: field(&form, "email").to_string(),
                    error: Some(e.to_string()),
                },
            )
        }
    }
}

pub struct AccountRow {
    pub id: String,
    pub name: String,
    pub owner: String,
    pub members: String,
    pub balance: String,
    pub frozen: bool,
}

#[derive(Template)]
#[template(path = "operator_accounts.html")]
struct AccountsPage {
    layout: Layout,
    q: String,
    rows: Vec<AccountRow>,
    /// Links to the previous and next pages (query strings).
    prev: Option<String>,
    next: Option<String>,
}

pub async fn accounts(
    req: HttpRequest,
    query: Query,
    state: web::Data<AppState>,
) -> Result<HttpResponse, PageError> {
    let op = match Operator::of(&req, &state, None).await? {
        Ok(op) => op,
        Err(to_sign_in) => return Ok(to_sign_in),
    };
    let q = query.get("q").map_or("", |s| s.trim()).to_string();
    let offset = match query
        .get("offset")
        .map(|s| s.trim())
        .filter(|s| !s.is_empty())
    {
        None => 0,
        Some(o) => o
            .parse::<i64>()
            .ok()
            .filter(|o| *o >= 0)
            .ok_or_else(|| ApiError::invalid("offset", "offset must be a whole number"))?,
    };
    let data = api::accounts_json(
        &state,
        Some(q.as_str()).filter(|q| !q.is_empty()),
        offset,
        PAGE + 1,
    )
    .await?;
    let mut rows: Vec<AccountRow> = data["data"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|a| AccountRow {
            id: text_of(&a["id"]),
            name: text_of(&a["name"]),
            owner: a["owner_email"].as_str().unwrap_or("—").to_string(),
            members: text_of(&a["members"]),
            balance: usd_of(&a["balance"]),
            frozen: a["frozen"].as_bool().unwrap_or(false) || !a["frozen_reason"].is_null(),
        })
        .collect();
    let more = rows.len() as i64 > PAGE;
    rows.truncate(PAGE as usize);
    let q_part = super::auth::urlencode(&q);
    render(&AccountsPage {
        layout: op.layout("Accounts", "/operator/accounts"),
        prev: (offset > 0).then(|| format!("q={q_part}&offset={}", (offset - PAGE).max(0))),
        next: more.then(|| format!("q={q_part}&offset={}", offset + PAGE)),
        q,
        rows,
    })
}

pub struct GrantRow {
    pub id: String,
    pub at: String,
    pub amount: String,
}

#[derive(Template)]
#[template(path = "operator_account.html")]
struct AccountPage {
    layout: Layout,
    csrf: String,
    id: String,
    name: String,
    balance: String,
    frozen_reason: Option<String>,
    members: Vec<(String, String)>,
    keys: Vec<(String, String, String, bool)>,
    grants: Vec<GrantRow>,
    error: Option<String>,
    notice: Option<String>,
}

async fn account_page(state: &AppState, op: &Operator, id: Uuid) -> Result<AccountPage, PageError> {
    let a: Value = api::account_json(state, id).await?;
    let grants = infron_store::ledger::grants(&state.pg, id, 50).await?;
    Ok(AccountPage {
        layout: op.layout(
            &format!("Account {}", text_of(&a["name"])),
            "/operator/accounts",
        ),
        csrf: op.session.csrf.clone(),
        id: id.to_string(),
        name: text_of(&a["name"]),
        balance: usd_of(&a["balance"]),
        frozen_reason: a["frozen_reason"].as_str().map(str::to_string),
        members: a["members"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|m| (text_of(&m["email"]), text_of(&m["role"])))
            .collect(),
        keys: a["keys"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|k| {
                (
                    text_of(&k["name"]),
                    text_of(&k["label"]),
                    text_of(&k["kind"]),
                    k["disabled"].as_bool().unwrap_or(false),
                )
            })
            .collect(),
        grants: grants
            .into_iter()
            .map(|g| GrantRow {
                id: g.external_id,
                at: g.effective_at.format("%Y-%m-%d %H:%M UTC").to_string(),
                amount: super::views::usd(g.amount),
            })
            .collect(),
        error: None,
        notice: None,
    })
}

fn account_id(path: &str) -> Result<Uuid, PageError> {
    Uuid::parse_str(path).map_err(|_| ApiError::UnknownId("account not found".into()).into())
}

pub async fn account(
    req: HttpRequest,
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, PageError> {
    let op = match Operator::of(&req, &state, None).await? {
        Ok(op) => op,
        Err(to_sign_in) => return Ok(to_sign_in),
    };
    render(&account_page(&state, &op, account_id(&path)?).await?)
}

/// `POST /operator/accounts/{id}/{action}`: grant, reverse, freeze, unfreeze.
pub async fn account_action(
    req: HttpRequest,
    path: web::Path<(String, String)>,
    form: Form,
    state: web::Data<AppState>,
) -> Result<HttpResponse, PageError> {
    let op = match Operator::of(&req, &state, Some(&form)).await? {
        Ok(op) => op,
        Err(to_sign_in) => return Ok(to_sign_in),
    };
    let (id, action) = path.into_inner();
    let id = account_id(&id)?;
    let done: Result<String, ApiError> = match action.as_str() {
        "grant" => api::do_grant(
            &state,
            &op.ctx,
            id,
            field(&form, "amount"),
            field(&form, "reason"),
            Some(field(&form, "idempotency_key")).filter(|k| !k.is_empty()),
        )
        .await
        .map(|g| {
            if g["newly_posted"] == true {
                format!("Granted ${}.", g["amount"])
            } else {
                "This grant was already posted; nothing changed.".to_string()
            }
        }),
        "reverse" => api::do_reverse(
            &state,
            &op.ctx,
            id,
            field(&form, "grant"),
            field(&form, "reason"),
        )
        .await
        .map(|r| format!("Reversed ${} of the grant.", r["reversed"])),
        "freeze" => match api::freeze_reason(field(&form, "reason")) {
            Ok(why) => api::set_frozen(&state, &op.ctx, id, Some(why))
                .await
                .map(|_| "The account is frozen: its keys are refused.".to_string()),
            Err(e) => Err(e),
        },
        "unfreeze" => api::set_frozen(&state, &op.ctx, id, None)
            .await
            .map(|_| "The account is unfrozen.".to_string()),
        _ => return Err(ApiError::NotFound("no such page".into()).into()),
    };
    let mut page = account_page(&state, &op, id).await?;
    match done {
        Ok(notice) => {
            page.notice = Some(notice);
            render(&page)
        }
        Err(e) => {
            let status = actix_web::ResponseError::status_code(&e);
            page.error = Some(e.to_string());
            render_status(status, &page)
        }
    }
}

pub struct AuditRow {
    pub at: String,
    pub actor: String,
    pub action: String,
    pub target: String,
    pub account: String,
}

#[derive(Template)]
#[template(path = "operator_audit.html")]
struct AuditPage {
    layout: Layout,
    account: String,
    rows: Vec<AuditRow>,
    next: Option<String>,
}

pub async fn audit(
    req: HttpRequest,
    query: Query,
    state: web::Data<AppState>,
) -> Result<HttpResponse, PageError> {
    let op = match Operator::of(&req, &state, None).await? {
        Ok(op) => op,
        Err(to_sign_in) => return Ok(to_sign_in),
    };
    let account = query.get("account_id").map_or("", |s| s.trim()).to_string();
    let data = api::audit_json_for(&state, &query).await?;
    let rows = data["data"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|r| AuditRow {
            at: text_of(&r["at"]),
            actor: format!(
                "{} {}",
                text_of(&r["actor_kind"]),
                text_of(&r["actor_label"])
            ),
            action: text_of(&r["action"]),
            target: format!(
                "{} {}",
                text_of(&r["target_kind"]),
                text_of(&r["target_id"])
            ),
            account: text_of(&r["account_id"]),
        })
        .collect();
    let next = data["next_cursor"].as_str().map(|c| {
        format!(
            "account_id={}&cursor={}",
            super::auth::urlencode(&account),
            super::auth::urlencode(c)
        )
    });
    render(&AuditPage {
        layout: op.layout("Audit log", "/operator/audit"),
        account,
        rows,
        next,
    })
}
