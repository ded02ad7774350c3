//! The pages' templates (`crates/api/templates`) and what they show, already formatted: the
//! templates only lay text out (askama escapes every value).

use askama::Template;
use rust_decimal::Decimal;
use serde_json::Value;

use crate::error::ApiError;
use crate::principal::PageUser;
use crate::state::AppState;

/// What every page's frame needs.
#[derive(Clone)]
pub struct Layout {
    pub title: String,
    pub nav: Option<Nav>,
    pub htmx: bool,
}

impl Layout {
    /// A page for signed-out visitors.
    pub fn bare(title: &str) -> Layout {
        Layout {
            title: title.to_string(),
            nav: None,
            htmx: super::htmx_bundled(),
        }
    }

    pub fn with_nav(title: &str, nav: Nav) -> Layout {
        Layout {
            title: title.to_string(),
            nav: Some(nav),
            htmx: super::htmx_bundled(),
        }
    }
}

/// The signed-in frame: the pages this role may open, the account switcher and sign-out.
#[derive(Clone)]
pub struct Nav {
    pub email: String,
    pub csrf: String,
    pub links: Vec<NavLink>,
    pub accounts: Vec<AccountChoice>,
}

#[derive(Clone)]
pub struct NavLink {
    pub href: &'static str,
    pub label: &'static str,
    pub current: bool,
}

#[derive(Clone)]
pub struct AccountChoice {
    pub id: String,
    pub label: String,
    pub selected: bool,
}

impl Nav {
    pub async fn load(
        state: &AppState,
        user: &PageUser,
        current: &'static str,
    ) -> Result<Nav, ApiError> {
        let email = infron_store::users::user(&state.pg, user.user)
            .await?
            .map(|u| u.email)
            .unwrap_or_default();
        let memberships = infron_store::members::of_user(&state.pg, user.user).await?;
        let role = memberships
            .iter()
            .find(|m| Some(m.account_id) == user.session.account)
            .map(|m| m.role.as_str());
        let mut pages: Vec<(&'static str, &'static str)> = Vec::new();
        if role.is_some() {
            if role != Some("billing") {
                pages.push(("/keys", "Keys"));
            }
            pages.extend([
                ("/credits", "Credits"),
                ("/activity", "Activity"),
                ("/logs", "Logs"),
            ]);
        }
        pages.push(("/models", "Models"));
        pages.push(("/docs/api", "API"));
        if role.is_some() {
            pages.push(("/settings", "Settings"));
        }
        if matches!(role, Some("owner" | "admin")) {
            pages.push(("/members", "Members"));
        }
        Ok(Nav {
            email,
            csrf: user.session.csrf.clone(),
            links: pages
                .into_iter()
                .map(|(href, label)| NavLink {
                    href,
                    label,
                    current: href == current,
                })
                .collect(),
            accounts: memberships
                .iter()
                .map(|m| AccountChoice {
                    id: m.account_id.to_string(),
                    label: format!("{} ({})", m.name, m.role),
                    selected: Some(m.account_id) == user.session.account,
                })
                .collect(),
        })
    }
}

/// USD for people: cents for sums of a cent or more, more digits for the tiny costs of single
/// requests.
pub fn usd(d: Decimal) -> String {
    let negative = d.is_sign_negative() && !d.is_zero();
    let a = d.abs();
    let text = if a.is_zero() {
        "0.00".to_string()
    } else if a < Decimal::new(1, 2) {
        let s = a.round_dp(6).normalize().to_string();
        if s == "0" {
            "<0.000001".to_string()
        } else {
            s
        }
    } else {
        format!(
            "{:.2}",
            a.round_dp_with_strategy(2, rust_decimal::RoundingStrategy::MidpointAwayFromZero)
        )
    };
    format!("{}${text}", if negative { "−" } else { "" })
}

/// A USD amount from the JSON API's numbers.
pub fn usd_of(v: &Value) -> String {
    match decimal_of(v) {
        Some(d) => usd(d),
        None => "—".to_string(),
    }
}

pub fn decimal_of(v: &Value) -> Option<Decimal> {
    match v {
        Value::Number(n) => n
            .to_string()
            .parse::<Decimal>()
            .ok()
            .or_else(|| n.as_f64().and_then(|f| Decimal::try_from(f).ok())),
        Value::String(s) => s.parse().ok(),
        _ => None,
    }
}

pub fn text_of(v: &Value) -> String {
    match v {
        Value::Null => "—".to_string(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// `2026-12-07T14:03:11.123Z` → `2026-12-07 14:03:11 UTC`.
pub fn time_of(v: &Value) -> String {
    match v.as_str() {
        Some(s) => match chrono::DateTime::parse_from_rfc3339(s) {
            Ok(t) => t
                .with_timezone(&chrono::Utc)
                .format("%Y-%m-%d %H:%M:%S UTC")
                .to_string(),
            Err(_) => s.to_string(),
        },
        None => "—".to_string(),
    }
}

#[derive(Template)]
#[template(path = "error.html")]
pub struct ErrorPage {
    pub layout: Layout,
    pub status: u16,
    pub reason: String,
    pub message: String,
}

/// The sign-in, sign-up, verify, forgot and reset pages share one template.
#[derive(Template)]
#[template(path = "auth.html")]
pub struct AuthPage {
    pub layout: Layout,
    /// sign-in, sign-up, verify, forgot, reset, invitation
    pub form: &'static str,
    pub email: String,
    pub token: String,
    pub next: String,
    pub error: Option<String>,
    pub notice: Option<String>,
    /// The form is done (email sent, address verified, password reset): show only the notice.
    pub done: bool,
    /// For the invitation page: the signed-in user's CSRF token.
    pub csrf: String,
    /// Offer to send the confirmation link again (sign-in refused an unconfirmed address).
    pub offer_resend: bool,
}

impl AuthPage {
    pub fn new(form: &'static str, title: &str) -> AuthPage {
        AuthPage {
            layout: Layout::bare(title),
            form,
            email: String::new(),
            token: String::new(),
            next: String::new(),
            error: None,
            notice: None,
            done: false,
            csrf: String::new(),
            offer_resend: false,
        }
    }
}

pub struct KeyRow {
    pub hash: String,
    pub name: String,
    pub hint: String,
    pub today: String,
    pub week: String,
    pub month: String,
    pub limit: String,
    pub limit_value: String,
    pub reset: String,
    pub remaining: String,
    pub expires: String,
    pub expires_date: String,
    pub disabled: bool,
}

impl KeyRow {
    pub fn from_json(k: &Value) -> KeyRow {
        let limit = decimal_of(&k["limit"]);
        KeyRow {
            hash: text_of(&k["hash"]),
            name: text_of(&k["name"]),
            hint: text_of(&k["label"]),
            today: usd_of(&k["usage_daily"]),
            week: usd_of(&k["usage_weekly"]),
            month: usd_of(&k["usage_monthly"]),
            limit: limit.map_or_else(|| "none".to_string(), usd),
            limit_value: limit.map(|l| l.normalize().to_string()).unwrap_or_default(),
            reset: k["limit_reset"].as_str().unwrap_or("").to_string(),
            remaining: if limit.is_some() {
                usd_of(&k["limit_remaining"])
            } else {
                String::new()
            },
            expires: if k["expires_at"].is_null() {
                "never".to_string()
            } else {
                time_of(&k["expires_at"])
            },
            expires_date: k["expires_at"]
                .as_str()
                .and_then(|s| s.get(..10))
                .unwrap_or("")
                .to_string(),
            disabled: k["disabled"].as_bool().unwrap_or(false),
        }
    }
}

#[derive(Template)]
#[template(path = "keys.html")]
pub struct KeysPage {
    pub layout: Layout,
    pub csrf: String,
    pub keys: Vec<KeyRow>,
    pub can_create: bool,
    pub own_only: bool,
    /// A key just created: (name, secret), shown this once.
    pub created: Option<(String, String)>,
    pub error: Option<String>,
    pub notice: Option<String>,
    pub form_name: String,
}

#[derive(Template)]
#[template(path = "key_edit.html")]
pub struct KeyEditPage {
    pub layout: Layout,
    pub csrf: String,
    pub key: KeyRow,
    pub error: Option<String>,
}

pub struct HistoryRow {
    pub when: String,
    pub what: String,
    pub amount: String,
    /// The top-up fee paid (or, negative, given back); none for grants and expiries.
    pub fee: Option<String>,
}

pub struct QuoteView {
    pub credits: String,
    pub fee: String,
    pub total: String,
    pub amount: String,
}

#[derive(Template)]
#[template(path = "credits.html")]
pub struct CreditsPage {
    pub layout: Layout,
    pub csrf: String,
    pub balance: String,
    pub total_credits: String,
    pub total_usage: String,
    pub expiring: Vec<(String, String)>,
    pub history: Vec<HistoryRow>,
    pub usage_days: Vec<(String, String, i64)>,
    pub can_buy: bool,
    pub topups_configured: bool,
    pub fee_rule: String,
    pub min: String,
    pub max: String,
    pub amount: String,
    pub error: Option<String>,
    pub notice: Option<String>,
    /// Auto top-up (None when Stripe is not configured).
    pub auto: Option<AutoTopupView>,
}

/// The Credits page's auto top-up section.
pub struct AutoTopupView {
    pub enabled: bool,
    /// Form values (USD).
    pub threshold: String,
    pub amount: String,
    /// "$20.00 + $1.35 fee = $21.35".
    pub charge: String,
    pub card_saved: bool,
    /// "visa ending 4242", or "" when the details are not known.
    pub card: String,
    /// Why auto top-up stopped, when a payment failed.
    pub failure: Option<String>,
    pub failure_at: String,
    /// (when, status, total, detail) of the latest automatic payments.
    pub recent: Vec<(String, String, String, String)>,
}

/// The Settings page's alerts section.
pub struct AlertsView {
    pub threshold: String,
    pub key_spend: bool,
    pub email: bool,
    pub webhook_url: String,
    pub secret_set: bool,
    /// A signing secret just made: shown once.
    pub new_secret: Option<String>,
    /// (when, what, deliveries, state) of the latest alerts.
    pub recent: Vec<(String, String, String, String)>,
}

#[derive(Template)]
#[template(path = "quote.html")]
pub struct QuotePartial {
    pub quote: Option<QuoteView>,
    pub error: Option<String>,
}

#[derive(Template)]
#[template(path = "review.html")]
pub struct ReviewPage {
    pub layout: Layout,
    pub csrf: String,
    pub quote: QuoteView,
}

pub struct LogRow {
    pub id: String,
    pub time: String,
    pub model: String,
    pub provider: String,
    pub key: String,
    pub tokens_in: String,
    pub tokens_out: String,
    pub cost: String,
    pub status: String,
    pub latency: String,
}

#[derive(Template)]
#[template(path = "logs.html")]
pub struct LogsPage {
    pub layout: Layout,
    pub balance: String,
    pub table: LogsTable,
    pub model: String,
    pub provider: String,
    pub status: String,
    /// The keys to filter by: (hash, name, selected).
    pub keys: Vec<(String, String, bool)>,
    /// The members to filter by (admins only): (user id, email, selected).
    pub members: Vec<(String, String, bool)>,
    pub from: String,
    pub to: String,
    pub first_page: bool,
}

#[derive(Template)]
#[template(path = "logs_table.html")]
pub struct LogsTable {
    pub rows: Vec<LogRow>,
    pub next: Option<String>,
    /// The filters, as a query string to carry to the next page and the refresh.
    pub filters: String,
}

#[derive(Template)]
#[template(path = "log_detail.html")]
pub struct LogDetailPage {
    pub layout: Layout,
    pub id: String,
    pub fields: Vec<(String, String)>,
    pub attempts: Vec<(String, String, String)>,
}

pub struct ActivityRow {
    pub label: String,
    pub requests: i64,
    pub tokens_in: i64,
    pub tokens_out: i64,
    pub spend: String,
    pub spend_raw: Decimal,
}

pub struct DayRow {
    /// The bucket: a day, or an hour (`YYYY-MM-DD HH:00`).
    pub day: String,
    pub requests: i64,
    pub tokens: i64,
    pub spend: String,
    /// The chosen measure relative to the busiest bucket, 0 to 100 (drawn with a `<meter>`).
    pub share: u32,
}

#[derive(Template)]
#[template(path = "activity.html")]
pub struct ActivityPage {
    pub layout: Layout,
    pub group: String,
    pub groups: Vec<(&'static str, &'static str, bool)>,
    pub metrics: Vec<(&'static str, &'static str, bool)>,
    pub ranges: Vec<(&'static str, &'static str, bool)>,
    pub custom: bool,
    pub from: String,
    pub to: String,
    pub hourly: bool,
    pub metric_label: String,
    /// The query string of this view (for the CSV link).
    pub query: String,
    pub rows: Vec<ActivityRow>,
    pub days: Vec<DayRow>,
    pub total_requests: i64,
    pub total_tokens: i64,
    pub total_spend: String,
    pub runway: Option<String>,
    pub chart: bool,
    pub chart_data: String,
}

pub struct ModelRow {
    pub id: String,
    pub name: String,
    pub context: String,
    pub prompt: String,
    pub completion: String,
    pub providers: Vec<String>,
}

#[derive(Template)]
#[template(path = "models.html")]
pub struct ModelsPage {
    pub layout: Layout,
    pub q: String,
    pub models: Vec<ModelRow>,
    pub total: usize,
    pub shown_all: bool,
    /// (value, label, selected) for the filters.
    pub modalities: Vec<(String, String, bool)>,
    pub parameters: Vec<(String, bool)>,
    pub contexts: Vec<(String, String, bool)>,
    pub max_price: String,
    pub sort: String,
}

pub struct EndpointRow {
    pub provider: String,
    pub context: String,
    pub max_output: String,
    pub prompt: String,
    pub completion: String,
    pub policy: String,
}

#[derive(Template)]
#[template(path = "model.html")]
pub struct ModelPage {
    pub layout: Layout,
    pub id: String,
    pub name: String,
    pub description: String,
    pub aliases: Vec<String>,
    pub context: String,
    pub modalities: String,
    pub endpoints: Vec<EndpointRow>,
}

pub struct MemberRow {
    pub user_id: String,
    /// The caller may change this member's role and remove them (never themselves or the owner).
    pub manageable: bool,
    pub email: String,
    pub role: String,
    pub joined: String,
}

pub struct InvitationRow {
    pub id: String,
    pub email: String,
    pub role: String,
    pub expires: String,
}

#[derive(Template)]
#[template(path = "settings.html")]
pub struct SettingsPage {
    pub layout: Layout,
    pub csrf: String,
    pub name: String,
    pub allow_training: bool,
    /// The default limit of new keys, as typed in the form ("" for none), and its reset.
    pub default_limit: String,
    pub default_reset: String,
    pub can_change: bool,
    pub role: String,
    pub error: Option<String>,
    pub notice: Option<String>,
    pub alerts: AlertsView,
}

#[derive(Template)]
#[template(path = "members.html")]
pub struct MembersPage {
    pub layout: Layout,
    pub csrf: String,
    pub members: Vec<MemberRow>,
    pub invitations: Vec<InvitationRow>,
    /// The signed-in user owns the account (and may hand it over).
    pub is_owner: bool,
    pub error: Option<String>,
    pub notice: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn money_reads_like_money() {
        let d = |s: &str| s.parse::<Decimal>().unwrap_or_default();
        assert_eq!(usd(d("0")), "$0.00");
        assert_eq!(usd(d("20")), "$20.00");
        assert_eq!(usd(d("1.345")), "$1.35");
        assert_eq!(usd(d("0.000018")), "$0.000018");
        assert_eq!(usd(d("0.0000001")), "$<0.000001");
        assert_eq!(usd(d("-2.5")), "−$2.50");
        assert_eq!(usd_of(&json!(21.35)), "$21.35");
        assert_eq!(usd_of(&json!("0.5")), "$0.50");
        assert_eq!(usd_of(&Value::Null), "—");
        assert_eq!(
            time_of(&json!("2026-12-07T14:03:11.123Z")),
            "2026-12-07 14:03:11 UTC"
        );
    }

    #[test]
    fn key_rows_show_limits_and_expiry() {
        let k = KeyRow::from_json(&json!({
            "hash": "ab", "name": "n", "label": "sk-inf-v1-...x", "usage_daily": 0.5,
            "usage_weekly": 1, "usage_monthly": 2, "limit": 5, "limit_remaining": 4.5,
            "limit_reset": "daily", "expires_at": "2099-01-31T23:59:59Z", "disabled": true,
        }));
        assert_eq!(k.limit, "$5.00");
        assert_eq!(k.limit_value, "5");
        assert_eq!(k.remaining, "$4.50");
        assert_eq!(k.expires_date, "2099-01-31");
        assert!(k.disabled);
        let k = KeyRow::from_json(&json!({ "limit": null, "expires_at": null }));
        assert_eq!((k.limit.as_str(), k.remaining.as_str()), ("none", ""));
        assert_eq!(k.expires, "never");
    }
}
