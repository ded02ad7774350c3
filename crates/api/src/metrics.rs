//! What `GET /metrics` exposes, in Prometheus' text format (version 0.0.4), written by hand:
//! a few counters and histograms keyed by low-cardinality labels. Labels are routes, catalog
//! model ids, provider names, statuses and reasons; never a key, an account or a request.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use infron_billing::{SettlementRecord, Usd};
use rust_decimal::prelude::ToPrimitive;
use rust_decimal::Decimal;

/// Upper bounds of the latency buckets, seconds.
const BUCKETS: [f64; 14] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0,
];

type Labels = Vec<(&'static str, String)>;

#[derive(Default)]
struct Histogram {
    /// Per bucket (not cumulative), then the `+Inf` overflow.
    counts: [u64; BUCKETS.len() + 1],
    sum: f64,
    count: u64,
}

impl Histogram {
    fn observe(&mut self, seconds: f64) {
        let i = BUCKETS
            .iter()
            .position(|b| seconds <= *b)
            .unwrap_or(BUCKETS.len());
        self.counts[i] += 1;
        self.sum += seconds;
        self.count += 1;
    }
}

#[derive(Default)]
struct Families {
    http_requests: BTreeMap<Labels, u64>,
    http_duration: BTreeMap<Labels, Histogram>,
    requests: BTreeMap<Labels, u64>,
    request_duration: BTreeMap<Labels, Histogram>,
    upstream_duration: BTreeMap<Labels, Histogram>,
    first_token: BTreeMap<Labels, Histogram>,
    attempts: BTreeMap<Labels, u64>,
    fallbacks: BTreeMap<Labels, u64>,
    cache_hits: BTreeMap<Labels, u64>,
    reservation_refusals: BTreeMap<Labels, u64>,
    spend: BTreeMap<Labels, Decimal>,
}

/// The gateway's metrics, shared by every worker.
#[derive(Default)]
pub struct Metrics {
    families: Mutex<Families>,
    rate_limited: AtomicU64,
}

/// Gauges read when `/metrics` is scraped.
pub struct Gauges {
    pub settlement_backlog: i64,
    pub settlement_lag_ms: i64,
    pub settlements_unposted: usize,
    pub in_flight: usize,
    pub catalog_models: usize,
}

/// The kind of API a model request came through, as a route label.
pub fn route_of(endpoint_kind: &str) -> &'static str {
    match endpoint_kind {
        "chat" => "chat/completions",
        "completion" => "completions",
        "embedding" | "embeddings" => "embeddings",
        "messages" => "messages",
        "responses" => "responses",
        _ => "other",
    }
}

/// HTTP methods as labels; anything unusual is `OTHER`, so a client cannot add series.
fn method_label(m: &str) -> &'static str {
    match m {
        "GET" => "GET",
        "POST" => "POST",
        "PUT" => "PUT",
        "PATCH" => "PATCH",
        "DELETE" => "DELETE",
        "HEAD" => "HEAD",
        "OPTIONS" => "OPTIONS",
        _ => "OTHER",
    }
}

impl Metrics {
    fn with<R>(&self, f: impl FnOnce(&mut Families) -> R) -> R {
        match self.families.lock() {
            Ok(mut g) => f(&mut g),
            Err(poisoned) => f(&mut poisoned.into_inner()),
        }
    }

    /// Every HTTP request, by method, route pattern (`/v1/chat/completions`; `unmatched` for
    /// unknown paths) and status.
    pub fn http_request(&self, method: &str, route: &str, status: u16, seconds: f64) {
        let method = method_label(method);
        self.with(|f| {
            *f.http_requests
                .entry(vec![
                    ("method", method.to_string()),
                    ("route", route.to_string()),
                    ("status", status.to_string()),
                ])
                .or_default() += 1;
            f.http_duration
                .entry(vec![("route", route.to_string())])
                .or_default()
                .observe(seconds);
        });
    }

    /// A model request as it is settled: what it was, who served it, how it ended, what it
    /// charged. Called once per request, success or failure.
    pub fn model_request(&self, r: &SettlementRecord, charged: Usd) {
        let route = route_of(&r.endpoint_kind);
        let model = r.model.clone().unwrap_or_else(|| "none".into());
        let provider = r.provider.clone().unwrap_or_else(|| "none".into());
        let served = r.status < 400 && r.provider.is_some();
        self.with(|f| {
            *f.requests
                .entry(vec![
                    ("route", route.to_string()),
                    ("model", model.clone()),
                    ("provider", provider.clone()),
                    ("status", r.status.to_string()),
                ])
                .or_default() += 1;
            if let Some(ms) = r.latency_ms {
                f.request_duration
                    .entry(vec![("route", route.to_string())])
                    .or_default()
                    .observe(f64::from(ms) / 1000.0);
            }
            if let Some(ms) = r.first_token_ms {
                f.first_token
                    .entry(vec![
                        ("route", route.to_string()),
                        ("provider", provider.clone()),
                    ])
                    .or_default()
                    .observe(f64::from(ms) / 1000.0);
            }
            if served && !r.failed_attempts.is_empty() {
                *f.fallbacks
                    .entry(vec![("route", route.to_string())])
                    .or_default() += 1;
            }
            if r.cache_hit {
                *f.cache_hits
                    .entry(vec![("route", route.to_string())])
                    .or_default() += 1;
            }
            if !charged.is_zero() {
                *f.spend
                    .entry(vec![("model", model), ("provider", provider)])
                    .or_default() += charged.decimal();
            }
        });
    }

    /// One call to a provider: how long until it answered (headers, or the first streamed
    /// event) and whether it did.
    pub fn upstream_attempt(&self, provider: &str, outcome: &str, latency_ms: u64) {
        self.with(|f| {
            *f.attempts
                .entry(vec![
                    ("provider", provider.to_string()),
                    ("outcome", outcome.to_string()),
                ])
                .or_default() += 1;
            f.upstream_duration
                .entry(vec![("provider", provider.to_string())])
                .or_default()
                .observe(latency_ms as f64 / 1000.0);
        });
    }

    /// A reservation refused before any provider was called (`insufficient_credits`,
    /// `key_limit_reached`, `busy`, `unavailable`).
    pub fn reservation_refused(&self, reason: &str) {
        self.with(|f| {
            *f.reservation_refusals
                .entry(vec![("reason", reason.to_string())])
                .or_default() += 1;
        });
    }

    /// A request refused by a rate limit.
    pub fn rate_limited(&self) {
        self.rate_limited.fetch_add(1, Ordering::Relaxed);
    }

    /// The exposition, with `gauges` read at scrape time.
    pub fn render(&self, gauges: &Gauges) -> String {
        let mut out = String::with_capacity(8192);
        self.with(|f| {
            counter(&mut out, "infron_http_requests_total", "HTTP requests by method, route pattern and status.", &f.http_requests);
            histogram(&mut out, "infron_http_request_duration_seconds", "Time until the response head, by route pattern.", &f.http_duration);
            counter(&mut out, "infron_requests_total", "Model requests by API route, served model, provider and status, counted when settled.", &f.requests);
            histogram(&mut out, "infron_request_duration_seconds", "Model requests from arrival to the end of the answer (streams included).", &f.request_duration);
            histogram(&mut out, "infron_upstream_duration_seconds", "Provider calls until the provider answered (response head or first streamed event).", &f.upstream_duration);
            histogram(&mut out, "infron_time_to_first_token_seconds", "Streamed requests from arrival to the first content.", &f.first_token);
            counter(&mut out, "infron_upstream_attempts_total", "Provider calls by outcome (ok, or the failure kind).", &f.attempts);
            counter(&mut out, "infron_fallbacks_total", "Requests served by an endpoint after another one failed.", &f.fallbacks);
            counter(&mut out, "infron_cache_hits_total", "Requests answered from the response cache.", &f.cache_hits);
            counter(&mut out, "infron_reservation_refusals_total", "Requests refused when reserving their maximum cost, by reason.", &f.reservation_refusals);
            let spend: BTreeMap<Labels, f64> = f
                .spend
                .iter()
                .map(|(k, v)| (k.clone(), v.to_f64().unwrap_or(0.0)))
                .collect();
            float_counter(&mut out, "infron_spend_usd_total", "USD charged to tenants, by served model and provider.", &spend);
        });
        let mut rate = BTreeMap::new();
        rate.insert(Vec::new(), self.rate_limited.load(Ordering::Relaxed));
        counter(
            &mut out,
            "infron_rate_limited_total",
            "Requests refused by a rate limit.",
            &rate,
        );
        gauge(
            &mut out,
            "infron_settlement_backlog",
            "Settlements waiting in the journal for Postgres (all instances).",
            gauges.settlement_backlog as f64,
        );
        gauge(
            &mut out,
            "infron_settlement_lag_seconds",
            "Age of the oldest settlement waiting in the journal.",
            gauges.settlement_lag_ms as f64 / 1000.0,
        );
        gauge(
            &mut out,
            "infron_settlements_unposted",
            "Settlements this instance holds in memory until Redis or Postgres takes them.",
            gauges.settlements_unposted as f64,
        );
        gauge(
            &mut out,
            "infron_requests_in_flight",
            "Requests of this instance holding a reservation.",
            gauges.in_flight as f64,
        );
        gauge(
            &mut out,
            "infron_catalog_models",
            "Models in the catalog in effect.",
            gauges.catalog_models as f64,
        );
        out
    }
}

fn escape(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

fn labels(l: &[(&'static str, String)], extra: Option<(&str, &str)>) -> String {
    let mut parts: Vec<String> = l
        .iter()
        .map(|(k, v)| format!("{k}=\"{}\"", escape(v)))
        .collect();
    if let Some((k, v)) = extra {
        parts.push(format!("{k}=\"{v}\""));
    }
    if parts.is_empty() {
        String::new()
    } else {
        format!("{{{}}}", parts.join(","))
    }
}

fn header(out: &mut String, name: &str, help: &str, kind: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

fn counter(out: &mut String, name: &str, help: &str, series: &BTreeMap<Labels, u64>) {
    header(out, name, help, "counter");
    for (l, v) in series {
        let _ = writeln!(out, "{name}{} {v}", labels(l, None));
    }
}

fn float_counter(out: &mut String, name: &str, help: &str, series: &BTreeMap<Labels, f64>) {
    header(out, name, help, "counter");
    for (l, v) in series {
        let _ = writeln!(out, "{name}{} {v}", labels(l, None));
    }
}

fn gauge(out: &mut String, name: &str, help: &str, v: f64) {
    header(out, name, help, "gauge");
    let _ = writeln!(out, "{name} {v}");
}

fn histogram(out: &mut String, name: &str, help: &str, series: &BTreeMap<Labels, Histogram>) {
    header(out, name, help, "histogram");
    for (l, h) in series {
        let mut cumulative = 0;
        for (i, bound) in BUCKETS.iter().enumerate() {
            cumulative += h.counts[i];
            let le = bound.to_string();
            let _ = writeln!(
                out,
                "{name}_bucket{} {cumulative}",
                labels(l, Some(("le", &le)))
            );
        }
        let _ = writeln!(
            out,
            "{name}_bucket{} {}",
            labels(l, Some(("le", "+Inf"))),
            h.count
        );
        let _ = writeln!(out, "{name}_sum{} {}", labels(l, None), h.sum);
        let _ = writeln!(out, "{name}_count{} {}", labels(l, None), h.count);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histograms_are_cumulative_and_labels_escaped() {
        let m = Metrics::default();
        m.http_request("GET", "/v1/models", 200, 0.003);
        m.http_request("GET", "/v1/models", 200, 0.3);
        m.http_request("BREW", "a\"b", 404, 500.0);
        let text = m.render(&Gauges {
            settlement_backlog: 3,
            settlement_lag_ms: 1500,
            settlements_unposted: 0,
            in_flight: 0,
            catalog_models: 2,
        });
        assert!(text.contains(
            "infron_http_requests_total{method=\"GET\",route=\"/v1/models\",status=\"200\"} 2"
        ));
        assert!(text.contains(
            "infron_http_requests_total{method=\"OTHER\",route=\"a\\\"b\",status=\"404\"} 1"
        ));
        assert!(text.contains(
            "infron_http_request_duration_seconds_bucket{route=\"/v1/models\",le=\"0.005\"} 1"
        ));
        assert!(text.contains(
            "infron_http_request_duration_seconds_bucket{route=\"/v1/models\",le=\"0.5\"} 2"
        ));
        assert!(text.contains(
            "infron_http_request_duration_seconds_bucket{route=\"a\\\"b\",le=\"+Inf\"} 1"
        ));
        assert!(text.contains(
            "infron_http_request_duration_seconds_bucket{route=\"a\\\"b\",le=\"120\"} 0"
        ));
        assert!(text.contains("infron_settlement_lag_seconds 1.5"));
        assert!(text.contains("infron_rate_limited_total 0"));
    }
}
