//! Alerts and auto top-up, off the request path: every instance runs two background loops.
//!
//! - **Checks** (every `INFRON_ALERT_CHECK_INTERVAL_MS`): compares the ledger balances of
//!   accounts with a low-balance threshold, and the period usage of limited keys of accounts
//!   that want key-spend alerts, with their thresholds. A condition that holds and has no open
//!   firing is fired (one row, unique while open, so one alert per crossing whichever instance
//!   sees it first) together with its deliveries (outbox rows); a firing whose condition no
//!   longer holds is cleared, which re-arms it. Then auto top-up: triggers fire and due
//!   PaymentIntents are created (`infron_billing::topups::auto`).
//! - **Deliveries**: claims due outbox rows with a lease, sends each (email through the
//!   mailer, or a POST signed like Stripe's webhooks), and retries failures with exponential
//!   backoff. Nothing here blocks a request.
//!
//! Webhook signing secrets are never stored: each is HMAC-SHA-256 under `INFRON_KEY_SECRET` of
//! the account id and a random nonce kept in `alert_settings`; a new nonce is a new secret, shown
//! once when it is made.

use std::collections::{HashMap, HashSet};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use hmac::{Hmac, Mac};
use infron_accounts::mail::Mail;
use infron_accounts::Email;
use infron_store::alerts::{self as store, NewFiring};
use rand::Rng;
use rust_decimal::Decimal;
use secrecy::{ExposeSecret, SecretString};
use serde_json::{json, Value};
use sha2::Sha256;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::state::AppState;

/// The header carrying a webhook's signature: `t=<unix seconds>,v1=<hex HMAC-SHA-256 of
/// "{t}.{body}">`.
pub const SIGNATURE_HEADER: &str = "Infron-Signature";

/// The signing secret of an account's webhook (derived, never stored).
pub fn webhook_secret(key_secret: &SecretString, account: Uuid, nonce: &str) -> String {
    let mut mac = match Hmac::<Sha256>::new_from_slice(key_secret.expose_secret().as_bytes()) {
        Ok(m) => m,
        Err(_) => return String::new(),
    };
    mac.update(format!("infron alert webhook secret\0{account}\0{nonce}").as_bytes());
    format!("whsec_{}", hex(&mac.finalize().into_bytes()))
}

/// A fresh random nonce (a new secret).
pub fn new_nonce() -> String {
    let mut bytes = [0_u8; 16];
    rand::rngs::OsRng.fill(&mut bytes);
    hex(&bytes)
}

/// The signature header value for `body` sent at `timestamp`.
pub fn signature(secret: &str, timestamp: i64, body: &[u8]) -> String {
    let mut mac = match Hmac::<Sha256>::new_from_slice(secret.as_bytes()) {
        Ok(m) => m,
        Err(_) => return String::new(),
    };
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    format!("t={timestamp},v1={}", hex(&mac.finalize().into_bytes()))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Whether an address is on the public internet (not loopback, private, link-local, shared,
/// unspecified, multicast or documentation space).
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let o = v4.octets();
            !(v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_broadcast()
                || v4.is_multicast()
                || v4.is_documentation()
                || o[0] == 0
                || (o[0] == 100 && (64..128).contains(&o[1]))
                || (o[0] == 192 && o[1] == 0 && o[2] == 0)
                || o[0] >= 240)
        }
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_public(IpAddr::V4(v4));
            }
            let s = v6.segments();
            !(v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || (s[0] & 0xfe00) == 0xfc00
                || (s[0] & 0xffc0) == 0xfe80
                || s[0] == 0x2001 && s[1] == 0x0db8)
        }
    }
}

/// Checks a webhook URL and resolves its host: http or https, a host, and (unless private
/// addresses are allowed) only public addresses. Returns the URL and the addresses to use.
pub async fn resolve_webhook_url(
    url: &str,
    allow_private: bool,
) -> Result<(reqwest::Url, Vec<SocketAddr>), String> {
    let parsed = reqwest::Url::parse(url.trim()).map_err(|e| format!("not a URL: {e}"))?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err("must be an http:// or https:// URL".into());
    }
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err("must not carry a user name or password".into());
    }
    let host = parsed
        .host_str()
        .ok_or_else(|| "has no host".to_string())?
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_string();
    let port = parsed
        .port_or_known_default()
        .ok_or_else(|| "has no port".to_string())?;
    let addrs: Vec<SocketAddr> = match host.parse::<IpAddr>() {
        Ok(ip) => vec![SocketAddr::new(ip, port)],
        Err(_) => tokio::net::lookup_host((host.as_str(), port))
            .await
            .map_err(|_| format!("the host '{host}' could not be resolved"))?
            .collect(),
    };
    if addrs.is_empty() {
        return Err(format!("the host '{host}' has no address"));
    }
    if !allow_private && addrs.iter().any(|a| !is_public(a.ip())) {
        return Err(
            "must reach a public address (private, loopback and link-local addresses are refused)"
                .into(),
        );
    }
    Ok((parsed, addrs))
}

/// Runs the checks until `stop`.
pub async fn run_checks(state: Arc<AppState>, stop: CancellationToken) {
    let mut tick = tokio::time::interval(state.settings.alerts.check_interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tick.tick() => {}
        }
        if let Err(error) = check_alerts(&state).await {
            tracing::warn!(%error, "alert check failed");
        }
        if let Some(stripe) = &state.stripe_checkout {
            if let Err(error) =
                infron_billing::topups::auto::fire_triggers(&state.pg, &state.settings.fees).await
            {
                tracing::warn!(%error, "auto top-up check failed");
            }
            if let Err(error) =
                infron_billing::topups::auto::process_pending(&state.pg, stripe).await
            {
                tracing::warn!(%error, "auto top-up payments failed");
            }
        }
    }
}

/// Runs the deliveries until `stop`.
pub async fn run_deliveries(state: Arc<AppState>, stop: CancellationToken) {
    let every = state
        .settings
        .alerts
        .check_interval
        .min(Duration::from_secs(1));
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tick.tick() => {}
        }
        if let Err(error) = deliver_due(&state).await {
            tracing::warn!(%error, "alert deliveries failed");
        }
    }
}

/// One condition that holds now.
struct Holding {
    account: Uuid,
    kind: &'static str,
    subject: String,
    pct: i32,
    period_start: Option<chrono::DateTime<Utc>>,
    data: Value,
}

fn amount(d: Decimal) -> String {
    d.normalize().to_string()
}

async fn check_alerts(state: &AppState) -> Result<(), infron_store::StoreError> {
    // The open firings are read before the conditions: a firing another instance clears
    // meanwhile is then either still in this list (and clearing it again changes nothing) or
    // re-fired by a crossing this check sees, never fired twice for one crossing.
    let open = store::open_firings(&state.pg).await?;
    let mut holding: Vec<Holding> = Vec::new();
    for b in store::balances_to_check(&state.pg).await? {
        if b.balance < b.threshold {
            holding.push(Holding {
                account: b.account_id,
                kind: "low_balance",
                subject: String::new(),
                pct: 0,
                period_start: None,
                data: json!({ "balance": amount(b.balance), "threshold": amount(b.threshold) }),
            });
        }
    }
    for k in store::key_spend_to_check(&state.pg).await? {
        for pct in [80_i32, 100] {
            if k.used * Decimal::ONE_HUNDRED >= k.credit_limit * Decimal::from(pct) {
                holding.push(Holding {
                    account: k.account_id,
                    kind: "key_spend",
                    subject: k.key_id.to_string(),
                    pct,
                    period_start: Some(k.period_start),
                    data: json!({
                        "key": { "hash": hex(&k.key_hash), "name": k.name, "label": k.key_hint },
                        "threshold_percent": pct,
                        "limit": amount(k.credit_limit),
                        "limit_reset": k.limit_reset,
                        "usage": amount(k.used),
                        "period_start": k.period_start,
                    }),
                });
            }
        }
    }
    let id = |account: Uuid, kind: &str, subject: &str, pct: i32, period: Option<_>| {
        (account, kind.to_string(), subject.to_string(), pct, period)
    };
    let holds: HashSet<_> = holding
        .iter()
        .map(|h| id(h.account, h.kind, &h.subject, h.pct, h.period_start))
        .collect();
    let mut open_now = HashMap::new();
    for f in &open {
        let key = id(
            f.account_id,
            &f.kind,
            &f.subject,
            f.threshold_pct,
            f.period_start,
        );
        if holds.contains(&key) {
            open_now.insert(key, f.id);
        } else {
            // The condition cleared (balance back up, limit raised, a new period): re-armed.
            store::clear(&state.pg, f.id).await?;
        }
    }
    for h in holding {
        let key = id(h.account, h.kind, &h.subject, h.pct, h.period_start);
        if !open_now.contains_key(&key) {
            fire(state, h).await?;
        }
    }
    Ok(())
}

async fn fire(state: &AppState, h: Holding) -> Result<(), infron_store::StoreError> {
    let Some(settings) = store::get(&state.pg, h.account).await? else {
        return Ok(());
    };
    let firing = Uuid::now_v7();
    let kind = match h.kind {
        "low_balance" => "balance.low",
        _ => "key.spend_threshold",
    };
    let payload = store::event_payload(firing, kind, h.account, h.data);
    let mut tx = state.pg.begin().await?;
    let fired = store::fire(
        &mut tx,
        &NewFiring {
            id: firing,
            account_id: h.account,
            kind: h.kind,
            subject: &h.subject,
            threshold_pct: h.pct,
            period_start: h.period_start,
            payload,
        },
    )
    .await?;
    if !fired {
        // Another instance fired it first.
        tx.rollback().await?;
        return Ok(());
    }
    store::queue_deliveries(
        &mut tx,
        firing,
        h.account,
        settings.email,
        settings.webhook_url.as_deref(),
    )
    .await?;
    tx.commit().await?;
    tracing::info!(account = %h.account, kind = h.kind, subject = %h.subject, pct = h.pct, "alert fired");
    Ok(())
}

async fn deliver_due(state: &AppState) -> Result<(), infron_store::StoreError> {
    let cfg = &state.settings.alerts;
    let lease = i64::try_from(cfg.webhook_timeout.as_secs())
        .unwrap_or(60)
        .saturating_mul(3)
        .max(30);
    for d in store::claim_deliveries(&state.pg, lease, 20).await? {
        let result = match d.channel.as_str() {
            "email" => send_email(state, &d).await,
            _ => send_webhook(state, &d).await,
        };
        match result {
            Ok(()) => store::delivered(&state.pg, d.id).await?,
            Err(error) => {
                let retry = (d.attempts < cfg.max_attempts).then(|| {
                    let ms = cfg
                        .retry_base
                        .as_millis()
                        .saturating_mul(1 << (d.attempts - 1).clamp(0, 16));
                    i64::try_from(ms / 1000)
                        .unwrap_or(i64::MAX)
                        .clamp(1, 6 * 3600)
                });
                tracing::warn!(delivery = %d.id, channel = %d.channel, attempt = d.attempts, %error, retry_secs = ?retry, "alert delivery failed");
                store::attempt_failed(&state.pg, d.id, &error, retry).await?;
            }
        }
    }
    Ok(())
}

fn email_of(d: &store::DeliveryRow) -> Mail {
    let data = &d.payload["data"];
    let text = |v: &Value| v.as_str().unwrap_or_default().to_string();
    let money = |v: &Value| {
        v.as_str()
            .and_then(|s| s.parse::<Decimal>().ok())
            .map_or_else(|| text(v), crate::dashboard::views::usd)
    };
    match d.kind.as_str() {
        "low_balance" => Mail {
            subject: "Your Infron balance is low".into(),
            body: format!(
                "The balance of your Infron account {} is {}, below the alert threshold of {}.\n\n\
                 Buy credits on the Credits page, or set up auto top-up there, so requests keep working.\n\n\
                 You get this email once each time the balance falls below the threshold; change alerts in Settings.\n",
                d.account_id,
                money(&data["balance"]),
                money(&data["threshold"]),
            ),
        },
        "auto_topup_failed" => Mail {
            subject: "Your Infron auto top-up payment failed".into(),
            body: format!(
                "Auto top-up of account {} tried to buy {} of credits (plus a {} fee) with the saved card, \
                 and the payment failed: {}\n\n\
                 Auto top-up is now off, so nothing more is charged until you act. Check the card, \
                 then turn auto top-up on again or buy credits on the Credits page.\n",
                d.account_id,
                money(&data["amount"]),
                money(&data["fee"]),
                text(&data["reason"]),
            ),
        },
        _ => {
            let pct = data["threshold_percent"].as_i64().unwrap_or(0);
            let name = text(&data["key"]["name"]);
            let label = text(&data["key"]["label"]);
            Mail {
                subject: format!("An Infron key has used {pct}% of its limit"),
                body: format!(
                    "The key \"{name}\" ({label}) of account {} has used {} of its {} limit{} ({pct}%).\n\
                     {}\n\nChange the key's limit on the Keys page; change alerts in Settings.\n",
                    d.account_id,
                    money(&data["usage"]),
                    money(&data["limit"]),
                    data["limit_reset"]
                        .as_str()
                        .map(|r| format!(" ({r})"))
                        .unwrap_or_default(),
                    if pct >= 100 {
                        "Requests with this key are refused until the limit resets or is raised."
                    } else {
                        "Requests with this key will be refused once it reaches the limit."
                    },
                ),
            }
        }
    }
}

async fn send_email(state: &AppState, d: &store::DeliveryRow) -> Result<(), String> {
    let to = Email::parse("email", &d.target).map_err(|e| e.to_string())?;
    state
        .accounts
        .mailer
        .send(&to, email_of(d))
        .await
        .map_err(|e| e.to_string())
}

async fn send_webhook(state: &AppState, d: &store::DeliveryRow) -> Result<(), String> {
    let cfg = &state.settings.alerts;
    let settings = store::get(&state.pg, d.account_id)
        .await
        .map_err(|e| e.to_string())?;
    let nonce = settings
        .and_then(|s| s.webhook_secret_nonce)
        .ok_or_else(|| "no signing secret: generate one in Settings".to_string())?;
    let secret = webhook_secret(&state.settings.key_secret, d.account_id, &nonce);
    // Resolved (and checked) again at every attempt, and the connection pinned to the checked
    // addresses, so a DNS change cannot point it at a private address afterwards.
    let (url, addrs) = resolve_webhook_url(&d.target, cfg.allow_private_webhooks).await?;
    let mut builder = reqwest::Client::builder()
        .timeout(cfg.webhook_timeout)
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("infron-alerts/", env!("CARGO_PKG_VERSION")));
    if let Some(host) = url.host_str() {
        if host.parse::<IpAddr>().is_err() {
            builder = builder.resolve_to_addrs(host, &addrs);
        }
    }
    let client = builder.build().map_err(|e| e.to_string())?;
    let body = serde_json::to_vec(&d.payload).map_err(|e| e.to_string())?;
    let header = signature(&secret, Utc::now().timestamp(), &body);
    let response = client
        .post(url)
        .header("content-type", "application/json")
        .header(SIGNATURE_HEADER, header)
        .header(
            "Infron-Event-Id",
            d.payload["id"].as_str().unwrap_or_default(),
        )
        .body(body)
        .send()
        .await
        .map_err(|e| format!("could not reach the webhook: {}", without_url(&e)))?;
    if response.status().is_success() {
        Ok(())
    } else {
        Err(format!("the webhook answered {}", response.status()))
    }
}

/// reqwest's error text without the URL (it may carry a token the tenant put in the path).
fn without_url(e: &reqwest::Error) -> String {
    if e.is_timeout() {
        "timed out".into()
    } else if e.is_connect() {
        "connection failed".into()
    } else {
        "request failed".into()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn private_addresses_are_not_public() {
        for a in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "::1",
            "fd00::1",
            "fe80::1",
            "::ffff:127.0.0.1",
        ] {
            assert!(!is_public(a.parse().unwrap()), "{a}");
        }
        for a in ["8.8.8.8", "1.1.1.1", "2606:4700:4700::1111"] {
            assert!(is_public(a.parse().unwrap()), "{a}");
        }
    }

    #[tokio::test]
    async fn webhook_urls_are_checked() {
        assert!(resolve_webhook_url("ftp://example.com/x", true)
            .await
            .is_err());
        assert!(resolve_webhook_url("http://127.0.0.1:9/x", false)
            .await
            .is_err());
        assert!(resolve_webhook_url("http://[::1]:9/x", false)
            .await
            .is_err());
        assert!(resolve_webhook_url("http://u:p@8.8.8.8/x", false)
            .await
            .is_err());
        assert!(resolve_webhook_url("http://127.0.0.1:9/x", true)
            .await
            .is_ok());
        assert!(resolve_webhook_url("https://8.8.8.8/hook", false)
            .await
            .is_ok());
    }

    #[test]
    fn signatures_are_hmac_of_time_and_body() {
        let s = signature("whsec_x", 1700000000, b"{}");
        assert!(s.starts_with("t=1700000000,v1="));
        assert_eq!(s.len(), "t=1700000000,v1=".len() + 64);
        let k = SecretString::from("k".repeat(32));
        let a = Uuid::nil();
        assert_eq!(webhook_secret(&k, a, "n1"), webhook_secret(&k, a, "n1"));
        assert_ne!(webhook_secret(&k, a, "n1"), webhook_secret(&k, a, "n2"));
    }
}
