//! Which endpoints may serve a request, and in what order.
//!
//! Eligibility, per model, filters in this order and reports the first filter that leaves no
//! endpoint: the request's `only` / `ignore` (`no_endpoints`), privacy — the account's setting
//! and `data_collection` / `zdr` (`privacy_restricted`), capabilities — tools, images, JSON
//! schema, reasoning, and every parameter under `require_parameters` (`capability_missing`),
//! then `max_price` (`price_exceeded`).
//!
//! Order: endpoints are ranked healthy, then recently failed (a failure in the last 30 s), then
//! open circuits. Among the healthy ones the first is drawn at random with weight 1/price²,
//! where price is the prompt plus completion price per token after discount; the rest follow
//! by the same weight (cheapest first). `sort` (or a `:floor` / `:nitro` variant, or the
//! operator's default sort) replaces the draw with a strict order inside each rank. `order`
//! puts the listed providers first, in the given order, whatever their health short of an open
//! circuit. Without `allow_fallbacks`, only the listed providers (or, with no `order`, the first
//! endpoint) are tried.

use std::cmp::Ordering;
use std::sync::Arc;

use infron_billing::{BillingError, Usd};
use rand::Rng;
use rust_decimal::prelude::ToPrimitive;
use rust_decimal::Decimal;

use crate::catalog::{Endpoint, Model};
use crate::health::{HealthBoard, Standing};
use crate::preferences::{DataCollection, Needs, ProviderPreferences, Sort, Variant};

/// Why no endpoint of a model may serve a request (`metadata.availability`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unavailable {
    NoEndpoints,
    PrivacyRestricted,
    CapabilityMissing,
    PriceExceeded,
}

impl Unavailable {
    pub fn as_str(self) -> &'static str {
        match self {
            Unavailable::NoEndpoints => "no_endpoints",
            Unavailable::PrivacyRestricted => "privacy_restricted",
            Unavailable::CapabilityMissing => "capability_missing",
            Unavailable::PriceExceeded => "price_exceeded",
        }
    }
}

/// What eligibility depends on besides the model.
pub struct Constraints<'a> {
    pub preferences: &'a ProviderPreferences,
    pub needs: &'a Needs,
    /// The account allows providers that train on prompts.
    pub allow_training: bool,
}

/// Endpoints of `model` that may serve the request, in catalog order.
pub fn eligible(model: &Model, c: &Constraints<'_>) -> Result<Vec<Arc<Endpoint>>, Unavailable> {
    let p = c.preferences;
    let mut list: Vec<Arc<Endpoint>> = model
        .endpoints
        .iter()
        .filter(|e| p.only.is_empty() || p.only.contains(&e.provider.name))
        .filter(|e| !p.ignore.contains(&e.provider.name))
        .filter(|e| p.allow_fallbacks || p.order.is_empty() || p.order.contains(&e.provider.name))
        .cloned()
        .collect();
    if list.is_empty() {
        return Err(Unavailable::NoEndpoints);
    }
    let strict_privacy = p.data_collection == DataCollection::Deny || p.zdr;
    list.retain(|e| {
        let policy = &e.provider.data_policy;
        let training_ok = !policy.training || (c.allow_training && !strict_privacy);
        let retention_ok = !strict_privacy || !policy.retains_prompts;
        training_ok && retention_ok
    });
    if list.is_empty() {
        return Err(Unavailable::PrivacyRestricted);
    }
    list.retain(|e| {
        c.needs.missing_capability(e).is_none()
            && (!p.require_parameters || c.needs.all_parameters_supported(e))
    });
    if list.is_empty() {
        return Err(Unavailable::CapabilityMissing);
    }
    if p.max_price.is_set() {
        list.retain(|e| p.max_price.admits(e));
        if list.is_empty() {
            return Err(Unavailable::PriceExceeded);
        }
    }
    Ok(list)
}

/// Price per token charged for a prompt token plus a completion token (list x (1 - discount)).
pub fn unit_price(e: &Endpoint) -> Decimal {
    let p = &e.prices;
    (p.prompt.decimal() + p.completion.decimal()) * (Decimal::ONE - p.discount)
}

/// Selection weight, 1/price² with price in USD per million tokens. A free endpoint weighs as
/// much as one charging a millionth of a dollar per million tokens, so free ones dominate.
pub fn weight(e: &Endpoint) -> f64 {
    let per_million = (unit_price(e) * Decimal::from(1_000_000))
        .to_f64()
        .unwrap_or(f64::MAX)
        .max(1e-6);
    1.0 / (per_million * per_million)
}

/// Measured figures used by `sort: latency` and `sort: throughput`.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Measured {
    pub latency_ms: Option<f64>,
    pub throughput: Option<f64>,
}

/// How to order the eligible endpoints of one model.
pub struct OrderBy<'a> {
    pub preferences: &'a ProviderPreferences,
    /// The effective sort: the request's `sort`, else the model variant's, else the operator's.
    pub sort: Option<Sort>,
    pub standing: &'a dyn Fn(&Endpoint) -> Standing,
    pub measured: &'a dyn Fn(&Endpoint) -> Measured,
}

/// Orders eligible endpoints (see the module documentation).
pub fn order(
    eligible: Vec<Arc<Endpoint>>,
    how: &OrderBy<'_>,
    rng: &mut impl Rng,
) -> Vec<Arc<Endpoint>> {
    let p = how.preferences;
    let (mut listed, rest): (Vec<_>, Vec<_>) = eligible
        .into_iter()
        .partition(|e| p.order.contains(&e.provider.name));
    let position = |e: &Endpoint| p.order.iter().position(|n| *n == e.provider.name);
    listed.sort_by(|a, b| {
        position(a)
            .cmp(&position(b))
            .then_with(|| unit_price(a).cmp(&unit_price(b)))
    });

    let mut ranked: Vec<Vec<Arc<Endpoint>>> = vec![Vec::new(), Vec::new(), Vec::new()];
    for e in rest {
        let rank = match (how.standing)(&e) {
            Standing::Healthy => 0,
            Standing::RecentlyFailed => 1,
            Standing::Open => 2,
        };
        ranked[rank].push(e);
    }
    let mut default_order = Vec::new();
    for (rank, mut group) in ranked.into_iter().enumerate() {
        match how.sort {
            Some(sort) => sort_by(&mut group, sort, how.measured),
            None => {
                sort_by(&mut group, Sort::Price, how.measured);
                if rank == 0 {
                    if let Some(first) = weighted_pick(&group, rng) {
                        let chosen = group.remove(first);
                        group.insert(0, chosen);
                    }
                }
            }
        }
        default_order.extend(group);
    }

    let mut out = listed;
    if p.allow_fallbacks || p.order.is_empty() {
        out.extend(default_order);
    }
    if !p.allow_fallbacks && p.order.is_empty() {
        out.truncate(1);
    }
    // An open circuit goes last even when `order` lists it.
    let (mut closed, open): (Vec<_>, Vec<_>) = out
        .into_iter()
        .partition(|e| (how.standing)(e) != Standing::Open);
    closed.extend(open);
    closed
}

fn sort_by(group: &mut [Arc<Endpoint>], sort: Sort, measured: &dyn Fn(&Endpoint) -> Measured) {
    let price = |a: &Arc<Endpoint>, b: &Arc<Endpoint>| unit_price(a).cmp(&unit_price(b));
    // Known figures first (best first), unknown ones after them by price.
    let known_first =
        |a: Option<f64>, b: Option<f64>, better: fn(f64, f64) -> Ordering| match (a, b) {
            (Some(x), Some(y)) => better(x, y),
            (Some(_), None) => Ordering::Less,
            (None, Some(_)) => Ordering::Greater,
            (None, None) => Ordering::Equal,
        };
    match sort {
        Sort::Price => group.sort_by(price),
        Sort::Latency => group.sort_by(|a, b| {
            known_first(measured(a).latency_ms, measured(b).latency_ms, |x, y| {
                x.total_cmp(&y)
            })
            .then_with(|| price(a, b))
        }),
        Sort::Throughput => group.sort_by(|a, b| {
            known_first(measured(a).throughput, measured(b).throughput, |x, y| {
                y.total_cmp(&x)
            })
            .then_with(|| price(a, b))
        }),
    }
}

/// Index drawn with probability proportional to `weight`.
pub fn weighted_pick(group: &[Arc<Endpoint>], rng: &mut impl Rng) -> Option<usize> {
    let weights: Vec<f64> = group.iter().map(|e| weight(e)).collect();
    let total: f64 = weights.iter().sum();
    if group.is_empty() || !(total.is_finite() && total > 0.0) {
        return (!group.is_empty()).then_some(0);
    }
    let mut r = rng.gen::<f64>() * total;
    for (i, w) in weights.iter().enumerate() {
        if r < *w {
            return Some(i);
        }
        r -= w;
    }
    Some(group.len() - 1)
}

/// A model of the request's fallback chain (`model`, then `models`) with its variant.
pub type ChainLink = (Arc<Model>, Option<Variant>);

/// One model of the fallback chain and the endpoints to try for it, in order.
#[derive(Debug, Clone)]
pub struct Route {
    pub model: Arc<Model>,
    pub endpoints: Vec<Arc<Endpoint>>,
}

/// The ordered plan for a request: each model of the chain (with its variant) that has an
/// eligible endpoint, or the first model's reason when none has.
pub async fn plan(
    chain: &[ChainLink],
    constraints: &Constraints<'_>,
    default_sort: Option<Sort>,
    health: &HealthBoard,
) -> Result<Vec<Route>, (String, Unavailable)> {
    let mut eligible_per_model = Vec::new();
    let mut first_unavailable = None;
    for (model, variant) in chain {
        match eligible(model, constraints) {
            Ok(list) => eligible_per_model.push((model.clone(), *variant, list)),
            Err(why) => {
                first_unavailable.get_or_insert((model.id.clone(), why));
            }
        }
    }
    if eligible_per_model.is_empty() {
        return Err(first_unavailable.unwrap_or_else(|| {
            let id = chain.first().map(|(m, _)| m.id.clone()).unwrap_or_default();
            (id, Unavailable::NoEndpoints)
        }));
    }
    let all: Vec<Arc<Endpoint>> = eligible_per_model
        .iter()
        .flat_map(|(_, _, l)| l.iter().cloned())
        .collect();
    let standings = health.standings(&all).await;
    let standing = |e: &Endpoint| standings.get(&e.key).copied().unwrap_or(Standing::Healthy);
    let measured = |e: &Endpoint| {
        let h = health.get(&e.key);
        Measured {
            latency_ms: h.latency_ms,
            throughput: h.throughput,
        }
    };
    let mut rng = rand::thread_rng();
    Ok(eligible_per_model
        .into_iter()
        .map(|(model, variant, list)| {
            let how = OrderBy {
                preferences: constraints.preferences,
                sort: constraints
                    .preferences
                    .sort
                    .or(variant.map(Variant::sort))
                    .or(default_sort),
                standing: &standing,
                measured: &measured,
            };
            Route {
                endpoints: order(list, &how, &mut rng),
                model,
            }
        })
        .collect())
}

/// Standings of endpoints with no health information: all healthy.
#[cfg(test)]
fn all_healthy(_: &Endpoint) -> Standing {
    Standing::Healthy
}

/// The hold for a request: the largest maximum cost among the endpoints that may serve it.
pub fn max_cost(
    endpoints: &[Arc<Endpoint>],
    prompt_tokens: u64,
    max_output: Option<u64>,
    images: u64,
) -> Result<Usd, BillingError> {
    let mut worst = Usd::ZERO;
    for e in endpoints {
        let out = max_output
            .unwrap_or(e.max_output_tokens)
            .min(e.max_output_tokens.max(1));
        let c = e.prices.max_cost(prompt_tokens, out, images)?;
        worst = worst.max(c);
    }
    Ok(worst)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::catalog::Catalog;
    use rand::SeedableRng;
    use std::collections::HashMap;

    /// Four endpoints of one model: p1 at 1 $/M, p2 at 2 $/M, p3 at 3 $/M (list 6 with 50%
    /// discount), trainer at 0.5 $/M training on prompts.
    const CATALOG: &str = r#"
[[providers]]
name = "p1"
wire = "openai"
base_url = "http://localhost:1/v1"
api_key_env = "K"
[[providers]]
name = "p2"
wire = "openai"
base_url = "http://localhost:1/v1"
api_key_env = "K"
data_policy = { retains_prompts = true }
[[providers]]
name = "p3"
wire = "openai"
base_url = "http://localhost:1/v1"
api_key_env = "K"
[[providers]]
name = "trainer"
wire = "openai"
base_url = "http://localhost:1/v1"
api_key_env = "K"
data_policy = { training = true }
[[models]]
id = "a/m"
name = "M"
context_length = 1000
max_output_tokens = 100
supported_parameters = ["tools", "temperature", "max_tokens"]
[[models.endpoints]]
provider = "p3"
upstream_model = "m3"
pricing = { prompt = "0.000002", completion = "0.000004", discount = "0.5" }
[[models.endpoints]]
provider = "p2"
upstream_model = "m2"
supported_parameters = ["temperature", "max_tokens"]
pricing = { prompt = "0.000001", completion = "0.000001" }
[[models.endpoints]]
provider = "p1"
upstream_model = "m1"
pricing = { prompt = "0.0000005", completion = "0.0000005" }
[[models.endpoints]]
provider = "trainer"
upstream_model = "mt"
pricing = { prompt = "0.00000025", completion = "0.00000025" }
"#;

    fn catalog() -> Catalog {
        Catalog::parse(CATALOG, "t.toml", &|_| Some("k".into())).unwrap()
    }

    fn names(list: &[Arc<Endpoint>]) -> Vec<&str> {
        list.iter().map(|e| e.provider.name.as_str()).collect()
    }

    fn prefs(v: serde_json::Value) -> ProviderPreferences {
        ProviderPreferences::parse(Some(&v), &catalog()).unwrap()
    }

    fn eligible_with(
        p: &ProviderPreferences,
        needs: &Needs,
        training: bool,
    ) -> Result<Vec<&'static str>, Unavailable> {
        let c = catalog();
        let m = c.model("a/m").unwrap();
        eligible(
            m,
            &Constraints {
                preferences: p,
                needs,
                allow_training: training,
            },
        )
        .map(|l| {
            l.iter()
                .map(|e| -> &'static str {
                    match e.provider.name.as_str() {
                        "p1" => "p1",
                        "p2" => "p2",
                        "p3" => "p3",
                        _ => "trainer",
                    }
                })
                .collect()
        })
    }

    fn order_with(
        p: &ProviderPreferences,
        sort: Option<Sort>,
        standing: &dyn Fn(&Endpoint) -> Standing,
        measured: &dyn Fn(&Endpoint) -> Measured,
        seed: u64,
    ) -> Vec<String> {
        let c = catalog();
        let m = c.model("a/m").unwrap();
        let list: Vec<_> = m
            .endpoints
            .iter()
            .filter(|e| e.provider.name != "trainer")
            .cloned()
            .collect();
        let how = OrderBy {
            preferences: p,
            sort,
            standing,
            measured,
        };
        let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
        names(&order(list, &how, &mut rng))
            .into_iter()
            .map(String::from)
            .collect()
    }

    #[test]
    fn weights_are_inverse_square_of_the_discounted_unit_price() {
        let c = catalog();
        let m = c.model("a/m").unwrap();
        let w: Vec<f64> = m.endpoints.iter().map(|e| weight(e)).collect();
        // p3: (2 + 4) x 0.5 = 3 $/M; p2: 2 $/M; p1: 1 $/M; trainer: 0.5 $/M.
        let expected = [1.0 / 9.0, 1.0 / 4.0, 1.0, 4.0];
        for (got, want) in w.iter().zip(expected) {
            assert!((got - want).abs() < 1e-12, "{w:?}");
        }
    }

    /// 10,000 draws among p1 (1 $/M), p2 (2 $/M), p3 (3 $/M): expected shares 1 : 1/4 : 1/9.
    /// Pearson's chi-square with 2 degrees of freedom stays under 13.8 (p = 0.001).
    #[test]
    fn first_choice_follows_the_weights() {
        let p = ProviderPreferences::default();
        let c = catalog();
        let m = c.model("a/m").unwrap();
        let list: Vec<_> = m
            .endpoints
            .iter()
            .filter(|e| e.provider.name != "trainer")
            .cloned()
            .collect();
        let how = OrderBy {
            preferences: &p,
            sort: None,
            standing: &all_healthy,
            measured: &|_| Measured::default(),
        };
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        let mut counts: HashMap<String, f64> = HashMap::new();
        let n = 10_000;
        for _ in 0..n {
            let ordered = order(list.clone(), &how, &mut rng);
            assert_eq!(ordered.len(), 3);
            *counts.entry(ordered[0].provider.name.clone()).or_default() += 1.0;
            // The fallbacks follow by weight: cheapest first.
            let rest: Vec<_> = names(&ordered[1..]).into_iter().collect();
            let mut sorted = rest.clone();
            sorted.sort_by_key(|n| match *n {
                "p1" => 1,
                "p2" => 2,
                _ => 3,
            });
            assert_eq!(rest, sorted);
        }
        let total_weight = 1.0 + 0.25 + 1.0 / 9.0;
        let chi2: f64 = [("p1", 1.0), ("p2", 0.25), ("p3", 1.0 / 9.0)]
            .iter()
            .map(|(name, w)| {
                let expected = n as f64 * w / total_weight;
                let observed = counts.get(*name).copied().unwrap_or(0.0);
                (observed - expected).powi(2) / expected
            })
            .sum();
        assert!(chi2 < 13.8, "chi-square {chi2}, counts {counts:?}");
        // And the cheapest is the most frequent first choice, by a wide margin.
        assert!(counts["p1"] > 0.7 * n as f64, "{counts:?}");
    }

    #[test]
    fn weighted_draw_across_many_seeds_is_stable() {
        // The same property with a different generator state: shares within 2 points.
        let c = catalog();
        let m = c.model("a/m").unwrap();
        let list: Vec<_> = m
            .endpoints
            .iter()
            .filter(|e| e.provider.name == "p1" || e.provider.name == "p2")
            .cloned()
            .collect();
        let mut rng = rand::rngs::StdRng::seed_from_u64(12345);
        let picks = (0..10_000)
            .filter(|_| {
                weighted_pick(&list, &mut rng)
                    == Some(list.iter().position(|e| e.provider.name == "p1").unwrap())
            })
            .count();
        let share = picks as f64 / 10_000.0;
        assert!((share - 0.8).abs() < 0.02, "{share}");
    }

    #[test]
    fn recently_failed_then_open_go_last() {
        let p = ProviderPreferences::default();
        let standing = |e: &Endpoint| match e.provider.name.as_str() {
            "p1" => Standing::Open,
            "p2" => Standing::RecentlyFailed,
            _ => Standing::Healthy,
        };
        for seed in 0..20 {
            assert_eq!(
                order_with(&p, None, &standing, &|_| Measured::default(), seed),
                ["p3", "p2", "p1"]
            );
        }
    }

    #[test]
    fn sorts_are_strict() {
        let p = ProviderPreferences::default();
        let measured = |e: &Endpoint| match e.provider.name.as_str() {
            "p1" => Measured {
                latency_ms: Some(900.0),
                throughput: Some(20.0),
            },
            "p3" => Measured {
                latency_ms: Some(100.0),
                throughput: Some(200.0),
            },
            _ => Measured::default(),
        };
        for seed in 0..20 {
            assert_eq!(
                order_with(&p, Some(Sort::Price), &all_healthy, &measured, seed),
                ["p1", "p2", "p3"]
            );
            assert_eq!(
                order_with(&p, Some(Sort::Latency), &all_healthy, &measured, seed),
                ["p3", "p1", "p2"]
            );
            assert_eq!(
                order_with(&p, Some(Sort::Throughput), &all_healthy, &measured, seed),
                ["p3", "p1", "p2"]
            );
        }
        // Health still ranks first.
        let standing = |e: &Endpoint| {
            if e.provider.name == "p3" {
                Standing::RecentlyFailed
            } else {
                Standing::Healthy
            }
        };
        assert_eq!(
            order_with(&p, Some(Sort::Latency), &standing, &measured, 0),
            ["p1", "p2", "p3"]
        );
    }

    #[test]
    fn order_and_allow_fallbacks() {
        let p = prefs(serde_json::json!({"order": ["p3", "p2"]}));
        assert_eq!(
            order_with(&p, None, &all_healthy, &|_| Measured::default(), 1),
            ["p3", "p2", "p1"]
        );
        // A listed provider keeps its place when it merely failed recently, not when open.
        let standing = |e: &Endpoint| match e.provider.name.as_str() {
            "p3" => Standing::Open,
            "p2" => Standing::RecentlyFailed,
            _ => Standing::Healthy,
        };
        assert_eq!(
            order_with(&p, None, &standing, &|_| Measured::default(), 1),
            ["p2", "p1", "p3"]
        );
        let p = prefs(serde_json::json!({"order": ["p3", "p2"], "allow_fallbacks": false}));
        assert_eq!(
            order_with(&p, None, &all_healthy, &|_| Measured::default(), 1),
            ["p3", "p2"]
        );
        let p = prefs(serde_json::json!({"allow_fallbacks": false, "sort": "price"}));
        assert_eq!(
            order_with(
                &p,
                Some(Sort::Price),
                &all_healthy,
                &|_| Measured::default(),
                1
            ),
            ["p1"]
        );
    }

    #[test]
    fn eligibility_filters_report_the_first_that_empties_the_list() {
        let none = Needs::default();
        let d = ProviderPreferences::default();
        assert_eq!(eligible_with(&d, &none, false).unwrap(), ["p3", "p2", "p1"]);
        assert_eq!(
            eligible_with(&d, &none, true).unwrap(),
            ["p3", "p2", "p1", "trainer"]
        );
        let deny = prefs(serde_json::json!({"data_collection": "deny"}));
        assert_eq!(eligible_with(&deny, &none, true).unwrap(), ["p3", "p1"]);
        let only = prefs(serde_json::json!({"only": ["trainer"]}));
        assert_eq!(
            eligible_with(&only, &none, false),
            Err(Unavailable::PrivacyRestricted)
        );
        let only_ignored = prefs(serde_json::json!({"only": ["p2"], "ignore": ["p2"]}));
        assert_eq!(
            eligible_with(&only_ignored, &none, false),
            Err(Unavailable::NoEndpoints)
        );
        let mut tools = Needs::default();
        tools.capabilities.insert("tools");
        assert_eq!(eligible_with(&d, &tools, false).unwrap(), ["p3", "p1"]);
        let only_p2 = prefs(serde_json::json!({"only": ["p2"]}));
        assert_eq!(
            eligible_with(&only_p2, &tools, false),
            Err(Unavailable::CapabilityMissing)
        );
        let mut params = Needs::default();
        params.parameters.insert("tools".into());
        let require = prefs(serde_json::json!({"require_parameters": true}));
        assert_eq!(
            eligible_with(&require, &params, false).unwrap(),
            ["p3", "p1"]
        );
        let cheap = prefs(serde_json::json!({"max_price": {"prompt": 0.5, "completion": 0.5}}));
        assert_eq!(eligible_with(&cheap, &none, false).unwrap(), ["p1"]);
        let cheaper = prefs(serde_json::json!({"max_price": {"prompt": 0.1}}));
        assert_eq!(
            eligible_with(&cheaper, &none, false),
            Err(Unavailable::PriceExceeded)
        );
    }
}
