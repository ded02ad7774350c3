//! What operators see: `/ready` beside `/health`, and `/metrics` in Prometheus' text format
//! after real requests (parsed, not grepped).

use std::collections::HashMap;

use serde_json::{json, Value};

use crate::helpers::*;

#[tokio::test]
async fn ready_names_what_is_checked() {
    let app = spawn_app().await;
    let res = app
        .client
        .get(format!("{}/ready", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let v: Value = res.json().await.unwrap();
    assert_eq!(v["status"], "ready");
    assert_eq!(v["postgres"], true);
    assert_eq!(v["redis"], true);
    assert_eq!(v["failing"], json!([]));
    assert!(v["catalog"]["models"].as_u64().unwrap() > 5);
    assert_eq!(v["draining"], false);
}

/// One sample: metric name, labels, value.
#[derive(Debug)]
struct Sample {
    name: String,
    labels: HashMap<String, String>,
    value: f64,
}

/// Parses the text exposition strictly: every sample belongs to a family declared with HELP and
/// TYPE before it, label values are quoted, values are numbers.
fn parse(text: &str) -> Vec<Sample> {
    let mut declared: HashMap<String, String> = HashMap::new();
    let mut samples = Vec::new();
    for line in text.lines() {
        if line.is_empty() {
            continue;
        }
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').unwrap();
            assert!(["counter", "gauge", "histogram"].contains(&kind), "{line}");
            declared.insert(name.to_string(), kind.to_string());
            continue;
        }
        if line.starts_with("# HELP ") {
            continue;
        }
        assert!(!line.starts_with('#'), "unexpected comment: {line}");
        let (series, value) = line.rsplit_once(' ').unwrap();
        let value: f64 = match value {
            "+Inf" => f64::INFINITY,
            v => v.parse().unwrap_or_else(|_| panic!("not a number: {line}")),
        };
        let (name, labels) = match series.split_once('{') {
            Some((n, l)) => (n, l.strip_suffix('}').expect("labels close")),
            None => (series, ""),
        };
        let family = ["_bucket", "_sum", "_count"]
            .iter()
            .find_map(|s| {
                name.strip_suffix(s)
                    .filter(|f| declared.get(*f).is_some_and(|k| k == "histogram"))
            })
            .unwrap_or(name);
        assert!(declared.contains_key(family), "undeclared: {line}");
        let mut map = HashMap::new();
        for pair in labels.split(",").filter(|p| !p.is_empty()) {
            let (k, v) = pair.split_once('=').unwrap();
            let v = v
                .strip_prefix('"')
                .and_then(|v| v.strip_suffix('"'))
                .unwrap_or_else(|| panic!("unquoted label: {line}"));
            map.insert(k.to_string(), v.to_string());
        }
        samples.push(Sample {
            name: name.to_string(),
            labels: map,
            value,
        });
    }
    samples
}

fn value(samples: &[Sample], name: &str, labels: &[(&str, &str)]) -> f64 {
    samples
        .iter()
        .filter(|s| s.name == name)
        .filter(|s| {
            labels
                .iter()
                .all(|(k, v)| s.labels.get(*k).map(String::as_str) == Some(*v))
        })
        .map(|s| s.value)
        .sum()
}

async fn scrape(app: &TestApp) -> Vec<Sample> {
    let res = app
        .client
        .get(format!("{}/metrics", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert!(res.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/plain; version=0.0.4"));
    parse(&res.text().await.unwrap())
}

#[tokio::test]
async fn metrics_count_real_requests() {
    let app = spawn_app_with(&[("INFRON_RESPONSE_CACHE", "on".to_string())]).await;
    let t = app.tenant("5").await;
    let broke = app.tenant("0").await;

    let res = app.post_chat(&t.key, &chat_body("test/chat", None)).await;
    assert_eq!(res.status(), 200);
    // A stream, for time to first token.
    let mut body = chat_body("test/chat", Some(json!({"reply": "one two three"})));
    body["stream"] = json!(true);
    let res = app.post_chat(&t.key, &body).await;
    assert_eq!(res.status(), 200);
    res.text().await.unwrap();
    // The cheapest endpoint of test/flaky is down: served by the next one.
    let res = app.post_chat(&t.key, &chat_body("test/flaky", None)).await;
    assert_eq!(res.status(), 200);
    // No credits: refused at the reservation.
    let res = app
        .post_chat(&broke.key, &chat_body("test/chat", None))
        .await;
    assert_eq!(res.status(), 402);
    // The same request again until the cache answers it.
    let same = chat_body("test/backup", None);
    let mut hit = false;
    for _ in 0..20 {
        let res = app.post_chat(&t.key, &same).await;
        assert_eq!(res.status(), 200);
        if res
            .headers()
            .get("x-infron-cache")
            .is_some_and(|h| h.to_str().unwrap().eq_ignore_ascii_case("hit"))
        {
            hit = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(hit, "the response cache answered");
    // A key allowed one request a minute: the second is refused by the rate limit.
    let (limited, limited_id) = app.new_key(t.account).await;
    infron_store::keys::set_rate_limit(&app.pg, limited_id, Some(1), None)
        .await
        .unwrap();
    let own = chat_body("test/chat", Some(json!({"reply": "limited"})));
    let first = app.post_chat(&limited, &own).await;
    assert_eq!(first.status(), 200);
    let second = app.post_chat(&limited, &own).await;
    assert_eq!(second.status(), 429);
    let misses = app
        .client
        .get(format!("{}/v1/nope", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(misses.status(), 404);

    let m = scrape(&app).await;
    let chat = [
        ("route", "chat/completions"),
        ("model", "test/chat"),
        ("provider", "mock-a"),
        ("status", "200"),
    ];
    assert_eq!(value(&m, "infron_requests_total", &chat), 3.0, "{m:?}");
    assert_eq!(
        value(
            &m,
            "infron_requests_total",
            &[("model", "none"), ("provider", "none"), ("status", "402")]
        ),
        1.0
    );
    assert_eq!(
        value(
            &m,
            "infron_reservation_refusals_total",
            &[("reason", "insufficient_credits")]
        ),
        1.0
    );
    assert_eq!(
        value(
            &m,
            "infron_fallbacks_total",
            &[("route", "chat/completions")]
        ),
        1.0
    );
    assert_eq!(
        value(
            &m,
            "infron_upstream_attempts_total",
            &[("provider", "mock-down")]
        ),
        1.0
    );
    assert!(
        value(
            &m,
            "infron_upstream_attempts_total",
            &[("provider", "mock-a"), ("outcome", "ok")]
        ) >= 4.0
    );
    assert_eq!(
        value(
            &m,
            "infron_cache_hits_total",
            &[("route", "chat/completions")]
        ),
        1.0
    );
    // Histograms: the +Inf bucket equals the count; buckets never decrease.
    let ttft = [("route", "chat/completions"), ("provider", "mock-a")];
    assert_eq!(
        value(&m, "infron_time_to_first_token_seconds_count", &ttft),
        1.0
    );
    for family in [
        "infron_request_duration_seconds",
        "infron_upstream_duration_seconds",
        "infron_http_request_duration_seconds",
    ] {
        let count = value(&m, &format!("{family}_count"), &[]);
        assert!(count >= 5.0, "{family}: {count}");
        let inf = value(&m, &format!("{family}_bucket"), &[("le", "+Inf")]);
        assert_eq!(inf, count, "{family}");
    }
    assert!(
        value(
            &m,
            "infron_http_requests_total",
            &[
                ("method", "POST"),
                ("route", "/v1/chat/completions"),
                ("status", "200")
            ]
        ) >= 5.0
    );
    assert_eq!(
        value(
            &m,
            "infron_http_requests_total",
            &[("route", "unmatched"), ("status", "404")]
        ),
        1.0
    );
    assert!(value(&m, "infron_spend_usd_total", &[("model", "test/chat")]) > 0.0);
    assert_eq!(value(&m, "infron_rate_limited_total", &[]), 1.0);
    for gauge in [
        "infron_settlement_backlog",
        "infron_settlement_lag_seconds",
        "infron_settlements_unposted",
        "infron_requests_in_flight",
    ] {
        assert!(m.iter().any(|s| s.name == gauge), "{gauge}");
    }
    // Never a key, an account or a request id in a label.
    for s in &m {
        for v in s.labels.values() {
            assert!(!v.contains(&t.key[..12]) && !v.starts_with("gen-"), "{s:?}");
            assert!(!v.contains(&t.account.to_string()), "{s:?}");
        }
    }
}
