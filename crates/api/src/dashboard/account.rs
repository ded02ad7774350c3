//! The account's pages: keys, credits, logs, activity, models, settings and members. Each reads
//! and changes through the same functions (and so the same rules) as the JSON API.

use std::collections::{BTreeMap, HashMap};

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use infron_accounts::{Email, Role, Visibility};
use rust_decimal::Decimal;
use serde_json::{json, Map, Value};
use uuid::Uuid;

use super::views::*;
use super::{member, render, render_status, see_other, Member, PageError};
use crate::error::ApiError;
use crate::principal::audit_ctx;
use crate::routes;
use crate::state::AppState;

type Form = web::Form<HashMap<String, String>>;
type Query = web::Query<HashMap<String, String>>;

fn field<'a>(form: &'a HashMap<String, String>, name: &str) -> &'a str {
    form.get(name).map_or("", |s| s.trim())
}

fn shown(e: &ApiError) -> String {
    if let ApiError::Internal(detail) = e {
        tracing::error!(detail = %detail, "dashboard form failed");
    }
    e.to_string()
}

fn status_of(e: &ApiError) -> StatusCode {
    actix_web::ResponseError::status_code(e)
}

// ---------------------------------------------------------------------------------------- keys

async fn keys_page(state: &AppState, m: &Member) -> Result<KeysPage, PageError> {
    let visibility = m.p.actor.read_keys()?;
    let keys = routes::keys::list_keys(state, &m.p, visibility, &["inference"], true, 0).await?;
    Ok(KeysPage {
        layout: m.layout("API keys"),
        csrf: m.csrf().to_string(),
        keys: keys.iter().map(KeyRow::from_json).collect(),
        can_create: m
            .p
            .actor
            .create_key(infron_accounts::KeyKind::Inference, None)
            .is_ok(),
        own_only: matches!(visibility, Visibility::CreatedBy(_)),
        created: None,
        error: None,
        notice: None,
        form_name: String::new(),
    })
}

pub async fn keys(req: HttpRequest, state: web::Data<AppState>) -> Result<HttpResponse, PageError> {
    let m = member(&req, &state, "/keys", None).await?;
    render(&keys_page(&state, &m).await?)
}

/// A date from a date input → the end of that day, UTC (RFC 3339).
fn end_of_day(date: &str) -> Result<Value, ApiError> {
    if date.is_empty() {
        return Ok(Value::Null);
    }
    let day = chrono::NaiveDate::parse_from_str(date, "%Y-%m-%d")
        .map_err(|_| ApiError::invalid("expires_at", format!("'{date}' is not a date")))?;
    Ok(json!(format!("{}T23:59:59Z", day.format("%Y-%m-%d"))))
}

fn limit_fields(form: &HashMap<String, String>, body: &mut Map<String, Value>, explicit: bool) {
    let limit = field(form, "limit");
    let reset = field(form, "limit_reset");
    if !limit.is_empty() {
        body.insert("limit".into(), json!(limit));
        body.insert(
            "limit_reset".into(),
            if reset.is_empty() {
                Value::Null
            } else {
                json!(reset)
            },
        );
    } else if explicit {
        body.insert("limit".into(), Value::Null);
    } else if !reset.is_empty() {
        body.insert("limit_reset".into(), json!(reset));
    }
}

pub async fn create_key(
    req: HttpRequest,
    form: Form,
    state: web::Data<AppState>,
) -> Result<HttpResponse, PageError> {
    let m = member(&req, &state, "/keys", Some(&form)).await?;
    let attempt = async {
        let mut body = Map::new();
        body.insert("name".into(), json!(field(&form, "name")));
        limit_fields(&form, &mut body, false);
        let expires = end_of_day(field(&form, "expires"))?;
        if !expires.is_null() {
            body.insert("expires_at".into(), expires);
        }
        routes::keys::create_key(&req, &state, &m.p, &Value::Object(body)).await
    };
    match attempt.await {
        Ok((data, secret)) => {
            let mut page = keys_page(&state, &m).await?;
            page.created = Some((text_of(&data["name"]), secret));
            render_status(StatusCode::CREATED, &page)
        }
        Err(e) => {
            let mut page = keys_page(&state, &m).await?;
            page.error = Some(shown(&e));
            page.form_name = field(&form, "name").to_string();
            render_status(status_of(&e), &page)
        }
    }
}

async fn visible_key(state: &AppState, m: &Member, hash: &str) -> Result<Value, PageError> {
    let visibility = m.p.actor.read_keys()?;
    let keys = routes::keys::list_keys(state, &m.p, visibility, &["inference"], true, 0).await?;
    keys.into_iter()
        .find(|k| k["hash"].as_str() == Some(hash))
        .ok_or_else(|| ApiError::UnknownId("key not found".into()).into())
}

pub async fn edit_key_page(
    req: HttpRequest,
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, PageError> {
    let m = member(&req, &state, "/keys", None).await?;
    let key = visible_key(&state, &m, &path).await?;
    render(&KeyEditPage {
        layout: m.layout("Edit key"),
        csrf: m.csrf().to_string(),
        key: KeyRow::from_json(&key),
        error: None,
    })
}

pub async fn edit_key(
    req: HttpRequest,
    path: web::Path<String>,
    form: Form,
    state: web::Data<AppState>,
) -> Result<HttpResponse, PageError> {
    let m = member(&req, &state, "/keys", Some(&form)).await?;
    let attempt = async {
        let mut body = Map::new();
        body.insert("name".into(), json!(field(&form, "name")));
        limit_fields(&form, &mut body, true);
        body.insert("expires_at".into(), end_of_day(field(&form, "expires"))?);
        routes::keys::update_key(&req, &state, &m.p, &path, Value::Object(body)).await
    };
    match attempt.await {
        Ok(_) => Ok(see_other("/keys")),
        Err(e @ (ApiError::InvalidRequest { .. } | ApiError::Forbidden(_))) => {
            let key = visible_key(&state, &m, &path).await?;
            render_status(
                status_of(&e),
                &KeyEditPage {
                    layout: m.layout("Edit key"),
                    csrf: m.csrf().to_string(),
                    key: KeyRow::from_json(&key),
                    error: Some(shown(&e)),
                },
            )
        }
        Err(e) => Err(e.into()),
    }
}

/// `POST /keys/{hash}/disable|enable|delete`
pub async fn key_action(
    req: HttpRequest,
    path: web::Path<(String, String)>,
    form: Form,
    state: web::Data<AppState>,
) -> Result<HttpResponse, PageError> {
    let m = member(&req, &state, "/keys", Some(&form)).await?;
    let (hash, action) = path.into_inner();
    let done = match action.as_str() {
        "disable" | "enable" => routes::keys::update_key(
            &req,
            &state,
            &m.p,
            &hash,
            json!({ "disabled": action == "disable" }),
        )
        .await
        .map(|k| format!("The key “{}” is {action}d.", text_of(&k["name"]))),
        "delete" => routes::keys::delete_key(&req, &state, &m.p, &hash)
            .await
            .map(|()| "The key is deleted; it no longer works.".to_string()),
        _ => return Err(ApiError::NotFound("no such page".into()).into()),
    };
    match done {
        Ok(notice) => {
            let mut page = keys_page(&state, &m).await?;
            page.notice = Some(notice);
            render(&page)
        }
        Err(e @ (ApiError::Forbidden(_) | ApiError::InvalidRequest { .. })) => {
            let mut page = keys_page(&state, &m).await?;
            page.error = Some(shown(&e));
            render_status(status_of(&e), &page)
        }
        Err(e) => Err(e.into()),
    }
}

// ------------------------------------------------------------------------------------- credits

#[derive(sqlx::FromRow)]
struct HistoryEntry {
    effective_at: chrono::DateTime<chrono::Utc>,
    kind: String,
    amount: Decimal,
    /// The top-up fee this transaction charged (positive) or gave back (negative).
    fee: Decimal,
}

fn describe(kind: &str) -> &'static str {
    match kind {
        "topup" => "Top-up (Stripe)",
        "grant" => "Grant",
        "refund" => "Refund",
        "dispute" => "Dispute",
        "dispute_reinstated" => "Dispute won: reinstated",
        "expiry" => "Credits expired",
        "reversal" => "Grant reversed",
        _ => "Other",
    }
}

/// Who may buy credits from the dashboard: owners and admins (billing members only read).
fn can_buy(m: &Member) -> bool {
    m.role.administers()
}

fn quote_view(state: &AppState, amount: &str) -> Result<QuoteView, ApiError> {
    let amount_d: Decimal = amount
        .trim()
        .parse()
        .map_err(|_| ApiError::invalid("amount", "enter an amount in USD, such as 20 or 12.50"))?;
    let q = routes::stripe::quote(state, amount_d)?;
    Ok(QuoteView {
        credits: usd(q.credits.decimal()),
        fee: usd(q.fee.decimal()),
        total: usd(q.total.decimal()),
        amount: q.credits.decimal().normalize().to_string(),
    })
}

fn fee_rule(state: &AppState) -> String {
    let f = &state.settings.fees;
    format!(
        "{} + {}%",
        usd(f.fixed.decimal()),
        (f.rate * Decimal::from(100)).normalize()
    )
}

async fn credits_page(state: &AppState, m: &Member) -> Result<CreditsPage, PageError> {
    let c = routes::account::credits_json(state, &m.p).await?;
    let d = &c["data"];
    let history = sqlx::query_as::<_, HistoryEntry>(
        "SELECT t.effective_at, t.kind, -e.amount AS amount, \
                COALESCE((SELECT -sum(f.amount) FROM ledger_entries f \
                          JOIN ledger_accounts fa ON fa.id = f.ledger_account_id \
                          WHERE f.transaction_id = t.id AND fa.kind = 'topup_fee_revenue'), 0) AS fee \
         FROM ledger_transactions t JOIN ledger_entries e ON e.transaction_id = t.id \
         JOIN ledger_accounts la ON la.id = e.ledger_account_id \
         WHERE t.account_id = $1 AND t.kind <> 'usage' \
           AND la.account_id = $1 AND la.kind = 'credits' \
         ORDER BY t.effective_at DESC LIMIT 50",
    )
    .bind(m.p.actor.account_id())
    .fetch_all(&state.pg)
    .await
    .map_err(infron_store::StoreError::from)?;
    let mut days: BTreeMap<String, (Decimal, i64)> = BTreeMap::new();
    if m.p.actor.read_usage().is_ok() {
        let today = chrono::Utc::now().date_naive();
        let month = routes::activity::Period::Days(today - chrono::Days::new(29), today);
        let rows =
            routes::activity::usage_rows(state, &m.p, month, routes::activity::ActivityBy::Total)
                .await?;
        for r in rows {
            let e = days
                .entry(r.bucket.format("%Y-%m-%d").to_string())
                .or_default();
            e.0 += r.cost;
            e.1 += r.requests;
        }
    }
    let limits = &state.settings.stripe.topup_limits;
    Ok(CreditsPage {
        layout: m.layout("Credits"),
        csrf: m.csrf().to_string(),
        balance: usd_of(&d["balance"]),
        total_credits: usd_of(&d["total_credits"]),
        total_usage: usd_of(&d["total_usage"]),
        expiring: d["expiring"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|e| (usd_of(&e["amount"]), time_of(&e["expires_at"])))
            .collect(),
        history: history
            .iter()
            .map(|h| HistoryRow {
                when: h.effective_at.format("%Y-%m-%d %H:%M UTC").to_string(),
                what: describe(&h.kind).to_string(),
                amount: usd(h.amount),
                fee: (!h.fee.is_zero()).then(|| usd(h.fee)),
            })
            .collect(),
        usage_days: days
            .into_iter()
            .rev()
            .map(|(day, (spend, n))| (day, usd(spend), n))
            .collect(),
        can_buy: can_buy(m),
        topups_configured: state.stripe_checkout.is_some(),
        fee_rule: fee_rule(state),
        min: usd(limits.min.decimal()),
        max: usd(limits.max.decimal()),
        amount: String::new(),
        error: None,
        notice: None,
        auto: match state.stripe_checkout {
            Some(_) => Some(auto_topup_view(state, m).await?),
            None => None,
        },
    })
}

/// A form's USD amount as typed back into its input ("5" for 5.00).
fn form_amount(v: &Value) -> String {
    decimal_of(v)
        .map(|d| d.normalize().to_string())
        .unwrap_or_default()
}

async fn auto_topup_view(state: &AppState, m: &Member) -> Result<AutoTopupView, PageError> {
    let a = routes::alerts::auto_topup_json(state, &m.p).await?;
    Ok(AutoTopupView {
        enabled: a["enabled"].as_bool().unwrap_or(false),
        threshold: form_amount(&a["threshold"]),
        amount: form_amount(&a["amount"]),
        charge: format!(
            "{} + {} fee = {}",
            usd_of(&a["amount"]),
            usd_of(&a["fee"]),
            usd_of(&a["total"])
        ),
        card_saved: a["card_saved"].as_bool().unwrap_or(false),
        card: match (a["card"]["brand"].as_str(), a["card"]["last4"].as_str()) {
            (Some(b), Some(l)) => format!("{b} ending {l}"),
            _ => String::new(),
        },
        failure: a["last_failure"].as_str().map(str::to_string),
        failure_at: time_of(&a["last_failure_at"]),
        recent: a["recent"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|t| {
                let status = match t["status"].as_str().unwrap_or_default() {
                    "pending" => "starting",
                    "created" => "waiting for Stripe",
                    "succeeded" => "credited",
                    "failed" => "failed",
                    other => other,
                };
                (
                    time_of(&t["created_at"]),
                    status.to_string(),
                    usd_of(&t["total"]),
                    text_of(&t["error"]),
                )
            })
            .collect(),
    })
}

/// Auto top-up's settings from the Credits page.
pub async fn change_auto_topup(
    req: HttpRequest,
    form: Form,
    state: web::Data<AppState>,
) -> Result<HttpResponse, PageError> {
    let m = member(&req, &state, "/credits", Some(&form)).await?;
    let body = json!({
        "enabled": field(&form, "enabled") == "true",
        "threshold": field(&form, "threshold"),
        "amount": field(&form, "amount"),
    });
    let outcome = routes::alerts::change_auto_topup(&req, &state, &m.p, body).await;
    let mut page = credits_page(&state, &m).await?;
    match outcome {
        Ok(v) => {
            page.notice = Some(if v["enabled"].as_bool() == Some(true) {
                "Auto top-up is on.".into()
            } else {
                "Auto top-up is off.".into()
            });
            render(&page)
        }
        Err(e) => {
            page.error = Some(shown(&e));
            render_status(status_of(&e), &page)
        }
    }
}

/// Sends the browser to Stripe Checkout (setup mode) to save a card for auto top-up.
pub async fn save_card(
    req: HttpRequest,
    form: Form,
    state: web::Data<AppState>,
) -> Result<HttpResponse, PageError> {
    let m = member(&req, &state, "/credits", Some(&form)).await?;
    match routes::alerts::start_card_setup(&req, &state, &m.p).await {
        Ok(session) => Ok(HttpResponse::SeeOther()
            .insert_header(("Location", session.url))
            .insert_header(("Cache-Control", "no-store"))
            .finish()),
        Err(e) => {
            let mut page = credits_page(&state, &m).await?;
            page.error = Some(shown(&e));
            render_status(status_of(&e), &page)
        }
    }
}

pub async fn credits(
    req: HttpRequest,
    query: Query,
    state: web::Data<AppState>,
) -> Result<HttpResponse, PageError> {
    let m = member(&req, &state, "/credits", None).await?;
    let mut page = credits_page(&state, &m).await?;
    // Stripe's return pages: `?session={CHECKOUT_SESSION_ID}` after paying, `?cancelled` when
    // the buyer turned back.
    if let Some(id) = query.get("session") {
        let row = infron_store::topups::get_session(&state.pg, id).await?;
        page.notice = Some(match row {
            Some(r) if r.account_id == m.p.actor.account_id() && r.credited_at.is_some() => {
                format!(
                    "Thank you: {} of credits were added.",
                    usd(Decimal::new(r.credits_cents, 2))
                )
            }
            Some(r) if r.account_id == m.p.actor.account_id() => {
                "Thank you: the credits are added as soon as Stripe confirms the payment (reload in a moment).".to_string()
            }
            _ => "This payment is not one of this account's.".to_string(),
        });
    } else if query.contains_key("cancelled") {
        page.notice = Some("The payment was cancelled; nothing was charged.".into());
    } else if query.get("card").map(String::as_str) == Some("saved") {
        page.notice = Some(
            "Thank you: the card is saved as soon as Stripe confirms it (reload in a moment), then turn auto top-up on.".into(),
        );
    } else if query.get("card").map(String::as_str) == Some("cancelled") {
        page.notice = Some("No card was saved.".into());
    }
    render(&page)
}

/// The fee and total for an amount, as a fragment (htmx updates the buy form with it).
pub async fn quote(
    req: HttpRequest,
    query: Query,
    state: web::Data<AppState>,
) -> Result<HttpResponse, PageError> {
    if let Err(to_sign_in) = super::fragment_member(&req, &state, "/credits").await? {
        return Ok(to_sign_in);
    }
    let amount = query.get("amount").map_or("", |s| s.trim());
    let partial = if amount.is_empty() {
        QuotePartial {
            quote: None,
            error: Some("Enter an amount to see the fee and total.".into()),
        }
    } else {
        match quote_view(&state, amount) {
            Ok(q) => QuotePartial {
                quote: Some(q),
                error: None,
            },
            Err(e) => QuotePartial {
                quote: None,
                error: Some(shown(&e)),
            },
        }
    };
    render(&partial)
}

async fn buy_refused(
    state: &AppState,
    m: &Member,
    amount: &str,
    e: ApiError,
) -> Result<HttpResponse, PageError> {
    let mut page = credits_page(state, m).await?;
    page.amount = amount.to_string();
    page.error = Some(shown(&e));
    render_status(status_of(&e), &page)
}

fn check_can_buy(m: &Member) -> Result<(), ApiError> {
    if can_buy(m) {
        Ok(())
    } else {
        Err(ApiError::Forbidden(
            "only the account's owners and admins buy credits".into(),
        ))
    }
}

/// The fee and total, before paying (works without JavaScript).
pub async fn review(
    req: HttpRequest,
    form: Form,
    state: web::Data<AppState>,
) -> Result<HttpResponse, PageError> {
    let m = member(&req, &state, "/credits", Some(&form)).await?;
    check_can_buy(&m)?;
    let amount = field(&form, "amount");
    match quote_view(&state, amount) {
        Ok(quote) => render(&ReviewPage {
            layout: m.layout("Review the payment"),
            csrf: m.csrf().to_string(),
            quote,
        }),
        Err(e) => buy_refused(&state, &m, amount, e).await,
    }
}

/// Starts Stripe Checkout and sends the browser there.
pub async fn checkout(
    req: HttpRequest,
    form: Form,
    state: web::Data<AppState>,
) -> Result<HttpResponse, PageError> {
    let m = member(&req, &state, "/credits", Some(&form)).await?;
    check_can_buy(&m)?;
    let amount = field(&form, "amount");
    let attempt = async {
        let d: Decimal = amount
            .parse()
            .map_err(|_| ApiError::invalid("amount", "enter an amount in USD"))?;
        routes::stripe::start_checkout(&state, m.p.actor.account_id(), d).await
    };
    match attempt.await {
        Ok((session, _)) => Ok(HttpResponse::SeeOther()
            .insert_header(("Location", session.url))
            .insert_header(("Cache-Control", "no-store"))
            .finish()),
        Err(e) => buy_refused(&state, &m, amount, e).await,
    }
}

// ---------------------------------------------------------------------------------------- logs

fn log_row(r: &Value) -> LogRow {
    LogRow {
        id: text_of(&r["id"]),
        time: time_of(&r["created_at"]),
        model: r["model"]
            .as_str()
            .or(r["requested_model"].as_str())
            .unwrap_or("—")
            .to_string(),
        provider: text_of(&r["provider_name"]),
        key: text_of(&r["api_key_name"]),
        tokens_in: text_of(&r["tokens_prompt"]),
        tokens_out: text_of(&r["tokens_completion"]),
        cost: usd_of(&r["total_cost"]),
        status: text_of(&r["status"]),
        latency: r["latency"]
            .as_i64()
            .map_or_else(|| "—".to_string(), |l| format!("{l} ms")),
    }
}

pub async fn logs(
    req: HttpRequest,
    query: Query,
    state: web::Data<AppState>,
) -> Result<HttpResponse, PageError> {
    let m = match super::fragment_member(&req, &state, "/logs").await? {
        Ok(m) => m,
        Err(to_sign_in) => return Ok(to_sign_in),
    };
    let value = |k: &str| query.get(k).map_or("", |s| s.trim()).to_string();
    let (model, provider, status) = (value("model"), value("provider"), value("status"));
    let (key, user, from, to) = (value("key"), value("member"), value("from"), value("to"));
    let mut q: HashMap<String, String> = HashMap::new();
    let mut filters = Vec::new();
    for (k, v) in [
        ("model", &model),
        ("provider", &provider),
        ("status", &status),
        ("key", &key),
        ("member", &user),
        ("from", &from),
        ("to", &to),
    ] {
        if !v.is_empty() {
            filters.push(format!("{k}={}", super::auth::urlencode(v)));
        }
    }
    for (k, v) in [
        ("model", &model),
        ("provider", &provider),
        ("status", &status),
        ("api_key_hash", &key),
        ("user_id", &user),
    ] {
        if !v.is_empty() {
            q.insert(k.to_string(), v.clone());
        }
    }
    // Whole UTC days: `from` at its start, `to` through its end.
    for (k, v, days) in [("from", &from, 0), ("to", &to, 1)] {
        if !v.is_empty() {
            let day = chrono::NaiveDate::parse_from_str(v, "%Y-%m-%d").map_err(|_| {
                ApiError::invalid(k, format!("{k}: '{v}' is not a date (YYYY-MM-DD)"))
            })?;
            let at = day + chrono::Days::new(days);
            q.insert(k.to_string(), format!("{at}T00:00:00Z"));
        }
    }
    if let Some(c) = query.get("cursor").filter(|c| !c.trim().is_empty()) {
        q.insert("cursor".into(), c.clone());
    }
    q.insert("limit".into(), "50".into());
    let data = routes::activity::logs_json(&state, &m.p, &q).await?;
    let table = LogsTable {
        rows: data["data"]
            .as_array()
            .into_iter()
            .flatten()
            .map(log_row)
            .collect(),
        next: data["next_cursor"].as_str().map(str::to_string),
        filters: filters.join("&"),
    };
    if query.contains_key("partial") {
        return render(&table);
    }
    let credits = routes::account::credits_json(&state, &m.p).await?;
    let keys = routes::keys::list_keys(
        &state,
        &m.p,
        m.p.actor.read_keys()?,
        &["inference"],
        true,
        0,
    )
    .await?
    .iter()
    .map(|k| {
        let hash = text_of(&k["hash"]);
        let selected = hash == key;
        (hash, text_of(&k["name"]), selected)
    })
    .collect();
    // Admins narrow by member; a member sees only their own keys' requests anyway.
    let members = if matches!(m.p.actor.read_usage()?, Visibility::Account)
        && m.p.actor.read_members().is_ok()
    {
        infron_store::members::list(&state.pg, m.p.actor.account_id())
            .await?
            .into_iter()
            .map(|r| {
                let id = r.user_id.to_string();
                let selected = id == user;
                (id, r.email, selected)
            })
            .collect()
    } else {
        Vec::new()
    };
    render(&LogsPage {
        layout: m.layout("Logs"),
        balance: usd_of(&credits["data"]["balance"]),
        table,
        model,
        provider,
        status,
        keys,
        members,
        from,
        to,
        first_page: !query.contains_key("cursor"),
    })
}

pub async fn log_detail(
    req: HttpRequest,
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, PageError> {
    let m = member(&req, &state, "/logs", None).await?;
    let g = routes::account::generation_json(&state, &m.p, &path).await?;
    let d = &g["data"];
    let mut fields = vec![
        ("Time".to_string(), time_of(&d["created_at"])),
        ("Model".to_string(), text_of(&d["model"])),
        ("Requested as".to_string(), text_of(&d["requested_model"])),
        ("Provider".to_string(), text_of(&d["provider_name"])),
        ("Upstream model".to_string(), text_of(&d["upstream_model"])),
        ("Status".to_string(), text_of(&d["status"])),
        ("Prompt tokens".to_string(), text_of(&d["tokens_prompt"])),
        (
            "Completion tokens".to_string(),
            text_of(&d["tokens_completion"]),
        ),
        (
            "Reasoning tokens".to_string(),
            text_of(&d["native_tokens_reasoning"]),
        ),
        (
            "Cached tokens".to_string(),
            text_of(&d["native_tokens_cached"]),
        ),
        ("Cost".to_string(), usd_of(&d["total_cost"])),
        ("Latency".to_string(), text_of(&d["latency"]) + " ms"),
        (
            "First token".to_string(),
            text_of(&d["first_token_latency"]) + " ms",
        ),
        ("Streamed".to_string(), text_of(&d["streamed"])),
        ("Finish reason".to_string(), text_of(&d["finish_reason"])),
        ("From the cache".to_string(), text_of(&d["cache_hit"])),
    ];
    if let Some(cost) = d["cost_details"].as_object() {
        for (k, v) in cost {
            if let Some(x) = decimal_of(v) {
                fields.push((format!("Cost: {}", k.replace('_', " ")), usd(x)));
            }
        }
    }
    if let Some(prices) = d["prices"].as_object() {
        for (k, v) in prices {
            fields.push((format!("Price used: {}", k.replace('_', " ")), text_of(v)));
        }
    }
    let attempts = d["provider_responses"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|a| {
            (
                text_of(&a["endpoint_id"]),
                text_of(&a["status"]),
                text_of(&a["latency"]),
            )
        })
        .collect();
    render(&LogDetailPage {
        layout: m.layout("Request"),
        id: text_of(&d["id"]),
        fields,
        attempts,
    })
}

// ------------------------------------------------------------------------------------ activity

const GROUPS: [(&str, &str); 3] = [("model", "Model"), ("provider", "Provider"), ("key", "Key")];
const METRICS: [(&str, &str); 3] = [
    ("spend", "Spend"),
    ("tokens", "Tokens"),
    ("requests", "Requests"),
];
const RANGES: [(&str, &str); 5] = [
    ("24h", "Last 24 hours"),
    ("48h", "Last 48 hours"),
    ("7d", "Last 7 days"),
    ("30d", "Last 30 days"),
    ("90d", "Last 90 days"),
];
/// Groups drawn as their own line; the rest are summed as "other".
const CHART_GROUPS: usize = 5;
/// The longest custom range, in days.
const MAX_RANGE_DAYS: i64 = 366;

/// What the Activity page and its CSV show: the period, grouping and measure chosen.
struct ActivityView {
    period: routes::activity::Period,
    /// `24h`…`90d`, or `custom` with `from`/`to`.
    range: String,
    from: String,
    to: String,
    group: &'static str,
    metric: &'static str,
}

impl ActivityView {
    fn parse(q: &HashMap<String, String>) -> Result<ActivityView, ApiError> {
        let value = |k: &str| q.get(k).map_or("", |s| s.trim()).to_string();
        let pick = |k: &str, options: &[(&'static str, &str)], default: &'static str| {
            let v = value(k);
            if v.is_empty() {
                return Ok(default);
            }
            options
                .iter()
                .map(|(o, _)| *o)
                .find(|o| *o == v)
                .ok_or_else(|| {
                    ApiError::invalid(k, format!("{k}: '{v}' is not one of the choices"))
                })
        };
        let group = pick("group", &GROUPS, "model")?;
        let metric = pick("metric", &METRICS, "spend")?;
        let now = chrono::Utc::now();
        let today = now.date_naive();
        let (from, to) = (value("from"), value("to"));
        let date = |k: &str, v: &str| {
            chrono::NaiveDate::parse_from_str(v, "%Y-%m-%d")
                .map_err(|_| ApiError::invalid(k, format!("{k}: '{v}' is not a date (YYYY-MM-DD)")))
        };
        let (range, period) = if !from.is_empty() || !to.is_empty() {
            let last = if to.is_empty() {
                today
            } else {
                date("to", &to)?
            };
            let first = if from.is_empty() {
                last - chrono::Days::new(29)
            } else {
                date("from", &from)?
            };
            if first > last {
                return Err(ApiError::invalid(
                    "from",
                    "from: the range starts after it ends",
                ));
            }
            if (last - first).num_days() >= MAX_RANGE_DAYS {
                return Err(ApiError::invalid(
                    "from",
                    format!("from: a range covers at most {MAX_RANGE_DAYS} days"),
                ));
            }
            (
                "custom".to_string(),
                routes::activity::Period::Days(first, last),
            )
        } else {
            let range = pick("range", &RANGES, "30d")?;
            let period = match range {
                "24h" | "48h" => {
                    let hours = if range == "24h" { 24 } else { 48 };
                    // Whole hours: the current one and the ones before it.
                    let end = chrono::DateTime::from_timestamp(now.timestamp() / 3600 * 3600, 0)
                        .unwrap_or(now)
                        + chrono::TimeDelta::hours(1);
                    routes::activity::Period::Hours(end - chrono::TimeDelta::hours(hours), end)
                }
                days => {
                    let n: u64 = days.trim_end_matches('d').parse().unwrap_or(30);
                    routes::activity::Period::Days(today - chrono::Days::new(n - 1), today)
                }
            };
            (range.to_string(), period)
        };
        Ok(ActivityView {
            period,
            range,
            from,
            to,
            group,
            metric,
        })
    }

    /// The query string that reproduces this view.
    fn query(&self) -> String {
        let mut q = format!("group={}&metric={}", self.group, self.metric);
        if self.range == "custom" {
            for (k, v) in [("from", &self.from), ("to", &self.to)] {
                if !v.is_empty() {
                    q.push_str(&format!("&{k}={}", super::auth::urlencode(v)));
                }
            }
        } else {
            q.push_str(&format!("&range={}", self.range));
        }
        q
    }

    /// The dimension the rows are totalled by: the grouping shown.
    fn by(&self) -> routes::activity::ActivityBy {
        match self.group {
            "provider" => routes::activity::ActivityBy::Provider,
            "key" => routes::activity::ActivityBy::Key,
            _ => routes::activity::ActivityBy::Model,
        }
    }

    fn label(&self, r: &routes::activity::UsageRow) -> String {
        match self.group {
            "provider" => r.provider.clone(),
            "key" => r
                .key_name
                .clone()
                .unwrap_or_else(|| "(deleted key)".to_string()),
            _ => r.model.clone(),
        }
    }
}

#[derive(Default, Clone, Copy)]
struct Measures {
    requests: i64,
    tokens_in: i64,
    tokens_out: i64,
    spend: Decimal,
}

impl Measures {
    fn add(&mut self, r: &routes::activity::UsageRow) {
        self.requests += r.requests;
        self.tokens_in += r.prompt_tokens;
        self.tokens_out += r.completion_tokens;
        self.spend += r.cost;
    }

    fn of(&self, metric: &str) -> Decimal {
        match metric {
            "tokens" => Decimal::from(self.tokens_in + self.tokens_out),
            "requests" => Decimal::from(self.requests),
            _ => self.spend,
        }
    }
}

struct Activity {
    rows: Vec<ActivityRow>,
    buckets: Vec<DayRow>,
    total: Measures,
    runway: Option<String>,
    /// The chart's data (JSON, safe to embed in a `<script type="application/json">`).
    chart_data: String,
}

async fn activity_data(
    state: &AppState,
    m: &Member,
    view: &ActivityView,
) -> Result<Activity, PageError> {
    let rows = routes::activity::usage_rows(state, &m.p, view.period, view.by()).await?;
    let hourly = matches!(view.period, routes::activity::Period::Hours(..));
    let mut groups: BTreeMap<String, Measures> = BTreeMap::new();
    let mut buckets: BTreeMap<chrono::DateTime<chrono::Utc>, Measures> = BTreeMap::new();
    let mut cells: HashMap<(chrono::DateTime<chrono::Utc>, String), Measures> = HashMap::new();
    let mut total = Measures::default();
    for r in &rows {
        let label = view.label(r);
        groups.entry(label.clone()).or_default().add(r);
        buckets.entry(r.bucket).or_default().add(r);
        cells.entry((r.bucket, label)).or_default().add(r);
        total.add(r);
    }
    let mut ranked: Vec<(String, Measures)> = groups.into_iter().collect();
    ranked.sort_by(|a, b| {
        b.1.of(view.metric)
            .cmp(&a.1.of(view.metric))
            .then(a.0.cmp(&b.0))
    });

    // Every bucket of the period on the chart, empty ones included.
    let (step, mut at, end) = match view.period {
        routes::activity::Period::Hours(from, to) => (chrono::TimeDelta::hours(1), from, to),
        routes::activity::Period::Days(from, to) => (
            chrono::TimeDelta::days(1),
            from.and_time(chrono::NaiveTime::MIN).and_utc(),
            to.and_time(chrono::NaiveTime::MIN).and_utc() + chrono::TimeDelta::days(1),
        ),
    };
    let mut xs = Vec::new();
    while at < end {
        xs.push(at);
        at += step;
    }
    let number = |d: Decimal| {
        d.round_dp(6)
            .normalize()
            .to_string()
            .parse::<f64>()
            .unwrap_or(0.0)
    };
    let shown: Vec<&String> = ranked.iter().take(CHART_GROUPS).map(|(l, _)| l).collect();
    let mut series: Vec<Value> = shown
        .iter()
        .map(|label| {
            let values: Vec<f64> = xs
                .iter()
                .map(|x| {
                    cells
                        .get(&(*x, (*label).clone()))
                        .map_or(0.0, |c| number(c.of(view.metric)))
                })
                .collect();
            json!({"label": label, "values": values})
        })
        .collect();
    if ranked.len() > CHART_GROUPS {
        let values: Vec<f64> = xs
            .iter()
            .map(|x| {
                let all = buckets.get(x).map_or(Decimal::ZERO, |b| b.of(view.metric));
                let named: Decimal = shown
                    .iter()
                    .filter_map(|l| cells.get(&(*x, (*l).clone())))
                    .map(|c| c.of(view.metric))
                    .sum();
                number(all - named)
            })
            .collect();
        series.push(json!({"label": "other", "values": values}));
    }
    let unit = match view.metric {
        "tokens" => "tokens",
        "requests" => "requests",
        _ => "USD",
    };
    let chart_data = json!({
        "unit": unit,
        "x": xs.iter().map(|x| x.timestamp()).collect::<Vec<_>>(),
        "series": series,
    })
    .to_string()
    // Never a closing tag inside the data block.
    .replace('<', "\\u003c");

    let busiest = buckets
        .values()
        .map(|b| b.of(view.metric))
        .max()
        .unwrap_or_default();
    let buckets = buckets
        .into_iter()
        .rev()
        .map(|(at, b)| DayRow {
            day: if hourly {
                at.format("%Y-%m-%d %H:00").to_string()
            } else {
                at.format("%Y-%m-%d").to_string()
            },
            requests: b.requests,
            tokens: b.tokens_in + b.tokens_out,
            spend: usd(b.spend),
            share: if busiest > Decimal::ZERO {
                u32::try_from(
                    (b.of(view.metric) * Decimal::from(100) / busiest)
                        .round()
                        .mantissa()
                        .clamp(0, 100),
                )
                .unwrap_or(0)
            } else {
                0
            },
        })
        .collect();
    let rows = ranked
        .into_iter()
        .map(|(label, g)| ActivityRow {
            label,
            requests: g.requests,
            tokens_in: g.tokens_in,
            tokens_out: g.tokens_out,
            spend: usd(g.spend),
            spend_raw: g.spend,
        })
        .collect();
    Ok(Activity {
        rows,
        buckets,
        total,
        runway: runway(state, m).await?,
        chart_data,
    })
}

/// Days of credit left at the last 7 days' average daily spend (today included).
async fn runway(state: &AppState, m: &Member) -> Result<Option<String>, PageError> {
    let today = chrono::Utc::now().date_naive();
    let week = routes::activity::Period::Days(today - chrono::Days::new(6), today);
    let last_week: Decimal =
        routes::activity::usage_rows(state, &m.p, week, routes::activity::ActivityBy::Total)
            .await?
            .iter()
            .map(|r| r.cost)
            .sum();
    if last_week <= Decimal::ZERO {
        return Ok(None);
    }
    let c = routes::account::credits_json(state, &m.p).await?;
    Ok(decimal_of(&c["data"]["balance"]).map(|balance| {
        let per_day = last_week / Decimal::from(7);
        let days = (balance.max(Decimal::ZERO) / per_day).floor();
        if days > Decimal::from(365) {
            "over a year".to_string()
        } else {
            format!("{} days", days.normalize())
        }
    }))
}

pub async fn activity(
    req: HttpRequest,
    query: Query,
    state: web::Data<AppState>,
) -> Result<HttpResponse, PageError> {
    let m = member(&req, &state, "/activity", None).await?;
    let view = ActivityView::parse(&query)?;
    let a = activity_data(&state, &m, &view).await?;
    let choices = |options: &[(&'static str, &'static str)], chosen: &str| {
        options
            .iter()
            .map(|(v, l)| (*v, *l, *v == chosen))
            .collect::<Vec<_>>()
    };
    let metric_label = METRICS
        .iter()
        .find(|(v, _)| *v == view.metric)
        .map_or("Spend", |(_, l)| *l);
    render(&ActivityPage {
        layout: m.layout("Activity"),
        group: view.group.to_string(),
        groups: choices(&GROUPS, view.group),
        metrics: choices(&METRICS, view.metric),
        ranges: choices(&RANGES, &view.range),
        custom: view.range == "custom",
        from: view.from.clone(),
        to: view.to.clone(),
        hourly: matches!(view.period, routes::activity::Period::Hours(..)),
        metric_label: metric_label.to_string(),
        query: view.query(),
        rows: a.rows,
        days: a.buckets,
        total_requests: a.total.requests,
        total_tokens: a.total.tokens_in + a.total.tokens_out,
        total_spend: usd(a.total.spend),
        runway: a.runway,
        chart: super::chart_bundled(),
        chart_data: a.chart_data,
    })
}

/// A CSV field: quoted when it holds a comma, quote or line break; a leading `=`, `+`, `-` or
/// `@` is neutralized so a spreadsheet does not run it as a formula.
fn csv_field(s: &str) -> String {
    let s = if s.starts_with(['=', '+', '-', '@']) {
        format!("'{s}")
    } else {
        s.to_string()
    };
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s
    }
}

pub async fn activity_csv(
    req: HttpRequest,
    query: Query,
    state: web::Data<AppState>,
) -> Result<HttpResponse, PageError> {
    let m = member(&req, &state, "/activity", None).await?;
    let view = ActivityView::parse(&query)?;
    let a = activity_data(&state, &m, &view).await?;
    let mut out = format!(
        "{},requests,prompt_tokens,completion_tokens,spend_usd\n",
        view.group
    );
    for r in &a.rows {
        out.push_str(&format!(
            "{},{},{},{},{}\n",
            csv_field(&r.label),
            r.requests,
            r.tokens_in,
            r.tokens_out,
            r.spend_raw.round_dp(6).normalize()
        ));
    }
    Ok(HttpResponse::Ok()
        .insert_header(("Content-Type", "text/csv; charset=utf-8"))
        .insert_header((
            "Content-Disposition",
            format!(
                "attachment; filename=\"infron-activity-by-{}.csv\"",
                view.group
            ),
        ))
        .insert_header(("Cache-Control", "no-store"))
        .body(out))
}

// -------------------------------------------------------------------------------------- models

fn per_million(p: infron_billing::TokenPrice) -> String {
    let d = p.decimal() * Decimal::from(1_000_000);
    format!("${}", d.round_dp(4).normalize())
}

/// The catalog: public, like `/api/v1/models`; signed-in users get the navigation too.
pub async fn models(
    req: HttpRequest,
    query: Query,
    state: web::Data<AppState>,
) -> Result<HttpResponse, PageError> {
    let layout = match crate::principal::page_user(&req, &state, None).await? {
        Some(u) => Layout::with_nav("Models", Nav::load(&state, &u, "/models").await?),
        None => Layout::bare("Models"),
    };
    let value = |k: &str| query.get(k).map_or("", |s| s.trim()).to_string();
    let q = value("q");
    let needle = q.to_lowercase();
    let modality = value("modality");
    let parameter = value("parameter");
    let context = value("context");
    let max_price = value("max_price");
    let sort = value("sort");
    let min_context: u64 = match context.as_str() {
        "" => 0,
        c => c
            .parse()
            .map_err(|_| ApiError::invalid("context", "context: choose one of the listed sizes"))?,
    };
    // USD per million prompt tokens, as shown.
    let max_prompt: Option<Decimal> = match max_price.as_str() {
        "" => None,
        p => Some(
            p.trim_start_matches('$')
                .parse::<Decimal>()
                .ok()
                .filter(|d| !d.is_sign_negative())
                .ok_or_else(|| {
                    ApiError::invalid("max_price", "max_price: a price in USD, such as 0.5")
                })?,
        ),
    };
    let catalog = state.catalog();
    let cheapest = |m: &infron_router::catalog::Model| {
        m.endpoints
            .iter()
            .min_by_key(|e| infron_router::selection::unit_price(e))
            .cloned()
    };
    let mut matching: Vec<_> = catalog
        .models
        .iter()
        .filter(|m| {
            needle.is_empty()
                || m.id.to_lowercase().contains(&needle)
                || m.name.to_lowercase().contains(&needle)
                || m.aliases.iter().any(|a| a.to_lowercase().contains(&needle))
                || m.endpoints.iter().any(|e| {
                    e.provider.name.to_lowercase().contains(&needle)
                        || e.provider.display_name.to_lowercase().contains(&needle)
                })
        })
        .filter(|m| match modality.as_str() {
            "" => true,
            "embeddings" => m.kind == infron_router::catalog::ModelKind::Embedding,
            other => {
                m.kind == infron_router::catalog::ModelKind::Chat
                    && m.input_modalities.iter().any(|i| i == other)
            }
        })
        .filter(|m| parameter.is_empty() || m.supported_parameters.contains(&parameter))
        .filter(|m| m.context_length >= min_context)
        .filter(|m| {
            max_prompt.is_none_or(|max| {
                cheapest(m)
                    .is_some_and(|e| e.prices.prompt.decimal() * Decimal::from(1_000_000) <= max)
            })
        })
        .collect();
    match sort.as_str() {
        "price" => matching.sort_by_cached_key(|m| {
            cheapest(m).map_or(Decimal::MAX, |e| infron_router::selection::unit_price(&e))
        }),
        "context" => matching.sort_by_key(|m| std::cmp::Reverse(m.context_length)),
        _ => {}
    }
    let shown_all = matching.len() <= 200;
    let models = matching
        .iter()
        .take(200)
        .map(|m| {
            let cheapest = cheapest(m);
            let mut providers: Vec<String> = m
                .endpoints
                .iter()
                .map(|e| {
                    let mut s = e.provider.display_name.clone();
                    if e.provider.data_policy.training {
                        s.push_str(" (may train on prompts)");
                    }
                    s
                })
                .collect();
            providers.dedup();
            ModelRow {
                id: m.id.clone(),
                name: m.name.clone(),
                context: m.context_length.to_string(),
                prompt: cheapest
                    .as_ref()
                    .map_or_else(|| "—".into(), |e| per_million(e.prices.prompt)),
                completion: cheapest
                    .map_or_else(|| "—".into(), |e| per_million(e.prices.completion)),
                providers,
            }
        })
        .collect();
    let mut modalities: Vec<&str> = catalog
        .models
        .iter()
        .flat_map(|m| m.input_modalities.iter().map(String::as_str))
        .collect();
    modalities.sort_unstable();
    modalities.dedup();
    let mut modality_options: Vec<(String, String, bool)> = modalities
        .into_iter()
        .map(|i| (i.to_string(), format!("{i} input"), i == modality))
        .collect();
    modality_options.push((
        "embeddings".into(),
        "embeddings".into(),
        modality == "embeddings",
    ));
    let mut parameters: Vec<&str> = catalog
        .models
        .iter()
        .flat_map(|m| m.supported_parameters.iter().map(String::as_str))
        .collect();
    parameters.sort_unstable();
    parameters.dedup();
    let contexts = [
        (8_000u64, "8K"),
        (32_000, "32K"),
        (128_000, "128K"),
        (200_000, "200K"),
        (1_000_000, "1M"),
    ];
    render(&ModelsPage {
        layout,
        q,
        models,
        total: catalog.models.len(),
        shown_all,
        modalities: modality_options,
        parameters: parameters
            .into_iter()
            .map(|p| (p.to_string(), p == parameter))
            .collect(),
        contexts: contexts
            .iter()
            .map(|(n, label)| (n.to_string(), format!("{label} or more"), *n == min_context))
            .collect(),
        max_price,
        sort,
    })
}

fn policy_text(p: &infron_router::catalog::DataPolicy) -> String {
    let mut parts = vec![if p.training {
        "may train on prompts".to_string()
    } else {
        "does not train on prompts".to_string()
    }];
    if p.retains_prompts {
        parts.push(match p.retention_days {
            Some(d) => format!("keeps prompts {d} days"),
            None => "keeps prompts".to_string(),
        });
    }
    parts.join("; ")
}

/// One model: its providers with their prices, limits and data policies.
pub async fn model(
    req: HttpRequest,
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, PageError> {
    let id = path.into_inner();
    let catalog = state.catalog();
    let m = catalog
        .models
        .iter()
        .find(|m| m.id == id)
        .ok_or_else(|| ApiError::NotFound(format!("no model '{id}' in the catalog")))?;
    let layout = match crate::principal::page_user(&req, &state, None).await? {
        Some(u) => Layout::with_nav(&m.name, Nav::load(&state, &u, "/models").await?),
        None => Layout::bare(&m.name),
    };
    let mut endpoints: Vec<_> = m.endpoints.iter().collect();
    endpoints.sort_by_key(|e| infron_router::selection::unit_price(e));
    render(&ModelPage {
        layout,
        id: m.id.clone(),
        name: m.name.clone(),
        description: m.description.clone().unwrap_or_default(),
        aliases: m.aliases.clone(),
        context: m.context_length.to_string(),
        modalities: if m.input_modalities.is_empty() {
            "text".to_string()
        } else {
            m.input_modalities.join(", ")
        },
        endpoints: endpoints
            .iter()
            .map(|e| EndpointRow {
                provider: e.provider.display_name.clone(),
                context: e.context_length.to_string(),
                max_output: e.max_output_tokens.to_string(),
                prompt: per_million(e.prices.prompt),
                completion: per_million(e.prices.completion),
                policy: policy_text(&e.provider.data_policy),
            })
            .collect(),
    })
}

// ------------------------------------------------------------------------------------ settings

async fn settings_page(state: &AppState, m: &Member) -> Result<SettingsPage, PageError> {
    m.p.actor.read_settings()?;
    let a = infron_store::accounts::get(&state.pg, m.p.actor.account_id())
        .await?
        .ok_or_else(|| ApiError::UnknownId("account not found".into()))?;
    Ok(SettingsPage {
        layout: m.layout("Settings"),
        csrf: m.csrf().to_string(),
        name: a.name,
        allow_training: a.allow_training,
        default_limit: a
            .default_key_limit
            .map(|l| l.normalize().to_string())
            .unwrap_or_default(),
        default_reset: a.default_key_limit_reset.unwrap_or_default(),
        can_change: m.p.actor.update_settings().is_ok(),
        role: m.role.as_str().to_string(),
        error: None,
        notice: None,
        alerts: alerts_view(state, m).await?,
    })
}

async fn alerts_view(state: &AppState, m: &Member) -> Result<AlertsView, PageError> {
    let a = routes::alerts::alerts_json(state, &m.p).await?;
    Ok(AlertsView {
        threshold: form_amount(&a["low_balance_threshold"]),
        key_spend: a["key_spend"].as_bool().unwrap_or(false),
        email: a["email"].as_bool().unwrap_or(true),
        webhook_url: a["webhook_url"].as_str().unwrap_or_default().to_string(),
        secret_set: a["webhook_secret_set"].as_bool().unwrap_or(false),
        new_secret: None,
        recent: a["recent"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|f| {
                let d = &f["data"];
                let what = match f["type"].as_str().unwrap_or_default() {
                    "balance.low" => format!(
                        "Balance {} below {}",
                        usd_of(&d["balance"]),
                        usd_of(&d["threshold"])
                    ),
                    "auto_topup.failed" => format!(
                        "Auto top-up of {} failed: {}",
                        usd_of(&d["amount"]),
                        text_of(&d["reason"])
                    ),
                    _ => format!(
                        "Key \"{}\" at {}% of its {} limit",
                        text_of(&d["key"]["name"]),
                        d["threshold_percent"].as_i64().unwrap_or(0),
                        usd_of(&d["limit"])
                    ),
                };
                let deliveries = f["deliveries"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|x| {
                        let state = if !x["delivered_at"].is_null() {
                            "sent".to_string()
                        } else if !x["failed_at"].is_null() {
                            format!("failed: {}", text_of(&x["last_error"]))
                        } else if x["attempts"].as_i64().unwrap_or(0) > 0 {
                            format!("retrying: {}", text_of(&x["last_error"]))
                        } else {
                            "queued".to_string()
                        };
                        format!("{} {state}", text_of(&x["channel"]))
                    })
                    .collect::<Vec<_>>()
                    .join("; ");
                let state = if f["cleared_at"].is_null() {
                    "active".to_string()
                } else {
                    format!("cleared {}", time_of(&f["cleared_at"]))
                };
                (time_of(&f["fired_at"]), what, deliveries, state)
            })
            .collect(),
    })
}

/// The alert settings from the Settings page.
pub async fn change_alerts(
    req: HttpRequest,
    form: Form,
    state: web::Data<AppState>,
) -> Result<HttpResponse, PageError> {
    let m = member(&req, &state, "/settings", Some(&form)).await?;
    let threshold = field(&form, "low_balance_threshold");
    let body = json!({
        "low_balance_threshold": if threshold.is_empty() { Value::Null } else { json!(threshold) },
        "key_spend": field(&form, "key_spend") == "true",
        "email": field(&form, "email") == "true",
        "webhook_url": field(&form, "webhook_url"),
    });
    let outcome = routes::alerts::change_alerts(&req, &state, &m.p, body).await;
    let mut page = settings_page(&state, &m).await?;
    match outcome {
        Ok((_, secret)) => {
            page.notice = Some("Alert settings saved.".into());
            page.alerts.new_secret = secret;
            render(&page)
        }
        Err(e) => {
            page.error = Some(shown(&e));
            page.alerts.threshold = threshold.to_string();
            page.alerts.webhook_url = field(&form, "webhook_url").to_string();
            render_status(status_of(&e), &page)
        }
    }
}

/// A new webhook signing secret, shown once.
pub async fn new_alert_secret(
    req: HttpRequest,
    form: Form,
    state: web::Data<AppState>,
) -> Result<HttpResponse, PageError> {
    let m = member(&req, &state, "/settings", Some(&form)).await?;
    let outcome = routes::alerts::rotate_webhook_secret(&req, &state, &m.p).await;
    let mut page = settings_page(&state, &m).await?;
    match outcome {
        Ok(secret) => {
            page.notice =
                Some("A new signing secret was made; the old one no longer signs.".into());
            page.alerts.new_secret = Some(secret);
            render(&page)
        }
        Err(e) => {
            page.error = Some(shown(&e));
            render_status(status_of(&e), &page)
        }
    }
}

pub async fn settings(
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, PageError> {
    let m = member(&req, &state, "/settings", None).await?;
    render(&settings_page(&state, &m).await?)
}

pub async fn change_settings(
    req: HttpRequest,
    form: Form,
    state: web::Data<AppState>,
) -> Result<HttpResponse, PageError> {
    let m = member(&req, &state, "/settings", Some(&form)).await?;
    let limit = field(&form, "default_key_limit");
    let reset = field(&form, "default_key_limit_reset");
    let body = json!({
        "name": field(&form, "name"),
        "allow_training": field(&form, "allow_training") == "true",
        "default_key_limit": if limit.is_empty() { Value::Null } else { json!(limit) },
        "default_key_limit_reset": if limit.is_empty() || reset.is_empty() { Value::Null } else { json!(reset) },
    });
    let outcome = routes::members::change_settings(&req, &state, &m.p, body).await;
    let mut page = settings_page(&state, &m).await?;
    match outcome {
        Ok(_) => {
            page.notice = Some("Settings saved.".into());
            render(&page)
        }
        Err(e) => {
            page.error = Some(shown(&e));
            render_status(status_of(&e), &page)
        }
    }
}

async fn members_page(state: &AppState, m: &Member) -> Result<MembersPage, PageError> {
    m.p.actor.read_members()?;
    let account = m.p.actor.account_id();
    let members = infron_store::members::list(&state.pg, account).await?;
    let invitations = infron_store::members::open_invitations(&state.pg, account).await?;
    Ok(MembersPage {
        layout: m.layout("Members"),
        csrf: m.csrf().to_string(),
        members: members
            .iter()
            .map(|r| MemberRow {
                user_id: r.user_id.to_string(),
                manageable: r.role != "owner"
                    && Some(r.user_id) != m.p.actor.user_id()
                    && (m.role == Role::Owner || r.role != "admin"),
                email: r.email.clone(),
                role: r.role.clone(),
                joined: r.created_at.format("%Y-%m-%d").to_string(),
            })
            .collect(),
        invitations: invitations
            .iter()
            .map(|i| InvitationRow {
                id: i.id.to_string(),
                email: i.email.clone(),
                role: i.role.clone(),
                expires: i.expires_at.format("%Y-%m-%d %H:%M UTC").to_string(),
            })
            .collect(),
        is_owner: m.role == Role::Owner,
        error: None,
        notice: None,
    })
}

/// Members and invitations: owners and admins only (others get 403).
pub async fn members(
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, PageError> {
    let m = member(&req, &state, "/members", None).await?;
    render(&members_page(&state, &m).await?)
}

pub async fn invite(
    req: HttpRequest,
    form: Form,
    state: web::Data<AppState>,
) -> Result<HttpResponse, PageError> {
    let m = member(&req, &state, "/members", Some(&form)).await?;
    let attempt = async {
        let email = Email::parse("email", field(&form, "email"))?;
        let role: Role = field(&form, "role")
            .parse()
            .map_err(|e: String| ApiError::invalid("role", e))?;
        let ctx = audit_ctx(&req, &state, &m.p).await;
        state
            .accounts
            .invite(&m.p.actor, &ctx, &email, role)
            .await?;
        Ok::<_, ApiError>(email)
    };
    let outcome = attempt.await;
    let mut page = members_page(&state, &m).await?;
    match outcome {
        Ok(email) => {
            page.notice = Some(format!("We emailed an invitation to {email}."));
            render_status(StatusCode::CREATED, &page)
        }
        Err(e) => {
            page.error = Some(shown(&e));
            render_status(status_of(&e), &page)
        }
    }
}

/// `POST /members/{user_id}/role` (`role`) and `/members/{user_id}/remove`.
pub async fn member_action(
    req: HttpRequest,
    path: web::Path<(String, String)>,
    form: Form,
    state: web::Data<AppState>,
) -> Result<HttpResponse, PageError> {
    let m = member(&req, &state, "/members", Some(&form)).await?;
    let (user, action) = path.into_inner();
    let user =
        Uuid::parse_str(&user).map_err(|_| ApiError::UnknownId("member not found".into()))?;
    let ctx = audit_ctx(&req, &state, &m.p).await;
    let done = match action.as_str() {
        "role" => {
            let role: Role = field(&form, "role")
                .parse()
                .map_err(|e: String| ApiError::invalid("role", e))?;
            state
                .accounts
                .change_role(&m.p.actor, &ctx, user, role)
                .await
                .map(|()| format!("The role is now {role}."))
        }
        "remove" => state
            .accounts
            .remove_member(&m.p.actor, &ctx, user, false)
            .await
            .map(|()| "The member is removed; their keys are disabled.".to_string()),
        "transfer" => state
            .accounts
            .transfer_ownership(&m.p.actor, &ctx, user)
            .await
            .map(|()| "Ownership is transferred; you are now an admin.".to_string()),
        _ => return Err(ApiError::NotFound("no such page".into()).into()),
    };
    let mut page = members_page(&state, &m).await?;
    match done {
        Ok(notice) => {
            page.notice = Some(notice);
            render(&page)
        }
        Err(e) => {
            let e = ApiError::from(e);
            page.error = Some(shown(&e));
            render_status(status_of(&e), &page)
        }
    }
}

pub async fn revoke_invitation(
    req: HttpRequest,
    path: web::Path<String>,
    form: Form,
    state: web::Data<AppState>,
) -> Result<HttpResponse, PageError> {
    let m = member(&req, &state, "/members", Some(&form)).await?;
    let id =
        Uuid::parse_str(&path).map_err(|_| ApiError::UnknownId("invitation not found".into()))?;
    let ctx = audit_ctx(&req, &state, &m.p).await;
    state
        .accounts
        .revoke_invitation(&m.p.actor, &ctx, id)
        .await?;
    let mut page = members_page(&state, &m).await?;
    page.notice = Some("The invitation is revoked.".into());
    render(&page)
}

/// Leaves the current account (owners transfer ownership first); the session moves on to
/// another account of the user, if any.
pub async fn leave_account(
    req: HttpRequest,
    form: Form,
    state: web::Data<AppState>,
) -> Result<HttpResponse, PageError> {
    let m = member(&req, &state, "/settings", Some(&form)).await?;
    let me = m.user.user;
    let ctx = audit_ctx(&req, &state, &m.p).await;
    if let Err(e) = state
        .accounts
        .remove_member(&m.p.actor, &ctx, me, true)
        .await
    {
        let e = ApiError::from(e);
        let mut page = settings_page(&state, &m).await?;
        page.error = Some(shown(&e));
        return render_status(status_of(&e), &page);
    }
    let next = infron_store::members::of_user(&state.pg, me)
        .await?
        .first()
        .map(|a| a.account_id);
    if let (Some(next), Some(session)) = (next, &m.p.session) {
        state
            .accounts
            .sessions
            .switch_account(session, next)
            .await?;
    }
    Ok(see_other(super::landing(&state, me, next).await))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_fields_are_quoted_and_never_formulas() {
        assert_eq!(csv_field("openai/gpt-4o"), "openai/gpt-4o");
        assert_eq!(csv_field("a,b"), "\"a,b\"");
        assert_eq!(csv_field("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(csv_field("=cmd()"), "'=cmd()");
        assert_eq!(csv_field("-1+1"), "'-1+1");
    }

    #[test]
    fn dates_become_the_end_of_that_day() {
        assert_eq!(end_of_day("").ok(), Some(Value::Null));
        assert_eq!(
            end_of_day("2099-01-31").ok(),
            Some(json!("2099-01-31T23:59:59Z"))
        );
        assert!(end_of_day("31/01/2099").is_err());
    }
}
