//! Per-minute rate limits of keys and accounts: which limits a request is checked against, and
//! the `X-RateLimit-*` headers that tell the client where it stands.
//!
//! The check itself is part of the reservation (one atomic Redis script, shared by every
//! instance; see `infron_store::hot`): a request refused by a rate limit takes nothing from any
//! balance or limit, and one refused by its balance takes nothing from the rate limits.
//!
//! Headers follow OpenAI's names: `x-ratelimit-limit-requests`, `-remaining-requests`,
//! `-reset-requests` and the same for `-tokens`. Where a key and its account both have a limit
//! of one kind, the headers describe the one with less left.

use std::cell::RefCell;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{HeaderMap, HeaderName, HeaderValue};
use actix_web::middleware::Next;
use infron_store::hot::{RateLimit, RateState, RateSubject, RateUnit};

use crate::auth::Caller;

/// A key's and its account's per-minute limits, as the auth cache holds them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CallerLimits {
    /// The key's own limit, or the account's default for its keys.
    pub key_rpm: Option<i64>,
    pub key_tpm: Option<i64>,
    /// The account's limit over all of its keys.
    pub account_rpm: Option<i64>,
    pub account_tpm: Option<i64>,
}

impl CallerLimits {
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }
}

/// The limits one request is checked against: one unit of every request limit and
/// `tokens` (the estimate) of every token limit.
pub fn limits_for(caller: &Caller, tokens: i64) -> Vec<RateLimit> {
    let l = &caller.rate;
    if l.is_empty() {
        return Vec::new();
    }
    let key = RateSubject::Key(caller.key_id);
    let all = [
        (key, RateUnit::Requests, l.key_rpm, 1),
        (key, RateUnit::Tokens, l.key_tpm, tokens),
        (RateSubject::Account, RateUnit::Requests, l.account_rpm, 1),
        (
            RateSubject::Account,
            RateUnit::Tokens,
            l.account_tpm,
            tokens,
        ),
    ];
    all.into_iter()
        .filter_map(|(subject, unit, per_minute, cost)| {
            per_minute.map(|per_minute| RateLimit {
                subject,
                unit,
                per_minute,
                cost: cost.max(0),
            })
        })
        .collect()
}

/// The `X-RateLimit-*` headers for the states a reservation reported.
pub fn headers(states: &[RateState]) -> Vec<(&'static str, String)> {
    let mut out = Vec::new();
    for (unit, [limit, remaining, reset]) in [
        (
            RateUnit::Requests,
            [
                "x-ratelimit-limit-requests",
                "x-ratelimit-remaining-requests",
                "x-ratelimit-reset-requests",
            ],
        ),
        (
            RateUnit::Tokens,
            [
                "x-ratelimit-limit-tokens",
                "x-ratelimit-remaining-tokens",
                "x-ratelimit-reset-tokens",
            ],
        ),
    ] {
        let Some(tightest) = states
            .iter()
            .filter(|s| s.limit.unit == unit)
            .min_by_key(|s| s.remaining)
        else {
            continue;
        };
        out.push((limit, tightest.limit.per_minute.to_string()));
        out.push((remaining, tightest.remaining.to_string()));
        out.push((reset, duration(tightest.reset_ms)));
    }
    out
}

/// A reset time as OpenAI writes it: `1s`, `6m0s`, `250ms`.
fn duration(ms: i64) -> String {
    let ms = u64::try_from(ms).unwrap_or(0);
    if ms < 1000 {
        return format!("{ms}ms");
    }
    let secs = ms.div_ceil(1000);
    if secs < 60 {
        format!("{secs}s")
    } else {
        format!("{}m{}s", secs / 60, secs % 60)
    }
}

pub fn apply(map: &mut HeaderMap, headers: &[(&'static str, String)]) {
    for (name, value) in headers {
        if let Ok(v) = HeaderValue::from_str(value) {
            map.insert(HeaderName::from_static(name), v);
        }
    }
}

tokio::task_local! {
    /// What the request's reservation reported, for the response headers. Set by the handler
    /// (same task), read by [`headers_middleware`] when the response is ready.
    static REPORTED: RefCell<Vec<RateState>>;
}

/// Records where the rate limits stand for this request's response headers.
pub fn report(states: &[RateState]) {
    if states.is_empty() {
        return;
    }
    let _ = REPORTED.try_with(|r| *r.borrow_mut() = states.to_vec());
}

/// Adds the `X-RateLimit-*` headers of whatever the handler reported.
pub async fn headers_middleware(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    REPORTED
        .scope(RefCell::new(Vec::new()), async move {
            let mut res = next.call(req).await?;
            let states = REPORTED.with(|r| std::mem::take(&mut *r.borrow_mut()));
            if !states.is_empty() {
                apply(res.headers_mut(), &headers(&states));
            }
            Ok(res)
        })
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state(unit: RateUnit, per_minute: i64, remaining: i64, reset_ms: i64) -> RateState {
        RateState {
            limit: RateLimit {
                subject: RateSubject::Account,
                unit,
                per_minute,
                cost: 1,
            },
            remaining,
            reset_ms,
        }
    }

    #[test]
    fn headers_describe_the_tightest_limit_of_each_kind() {
        let h = headers(&[
            state(RateUnit::Requests, 100, 40, 36_000),
            state(RateUnit::Requests, 10, 3, 42_000),
            state(RateUnit::Tokens, 5000, 4000, 999),
        ]);
        let get = |n: &str| h.iter().find(|(k, _)| *k == n).map(|(_, v)| v.as_str());
        assert_eq!(get("x-ratelimit-limit-requests"), Some("10"));
        assert_eq!(get("x-ratelimit-remaining-requests"), Some("3"));
        assert_eq!(get("x-ratelimit-reset-requests"), Some("42s"));
        assert_eq!(get("x-ratelimit-limit-tokens"), Some("5000"));
        assert_eq!(get("x-ratelimit-reset-tokens"), Some("999ms"));
    }

    #[test]
    fn durations_read_like_openai() {
        assert_eq!(duration(0), "0ms");
        assert_eq!(duration(1000), "1s");
        assert_eq!(duration(1001), "2s");
        assert_eq!(duration(60_000), "1m0s");
        assert_eq!(duration(61_500), "1m2s");
    }
}
