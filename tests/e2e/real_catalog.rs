//! The shipped catalog (config/catalog.toml, generated from LiteLLM's price map) end to end,
//! with every provider's base URL pointed at the mock provider: the documentation's quick-start
//! request, the ids of the catalog the import replaced, and price-weighted routing across an
//! imported model's providers.

use std::collections::HashMap;

use infron_mock_provider::{Behaviour, DEFAULT_REPLY};
use infron_router::Catalog;
use rust_decimal::Decimal;
use serde_json::{json, Value};
use uuid::Uuid;

use crate::helpers::*;

/// The model of the product's quick start (README).
const QUICK_START_MODEL: &str = "claude-3-5-sonnet@20240620";

/// Chat model ids and aliases of the hand-written catalog the first import replaced
/// (`google/text-embedding-004` is gone: Google retired it and the price map dropped it).
const SEED_CHAT: &[&str] = &[
    "openai/gpt-4o",
    "gpt-4o",
    "openai/gpt-4o-mini",
    "gpt-4o-mini",
    "openai/gpt-4.1",
    "gpt-4.1",
    "openai/gpt-4.1-mini",
    "openai/gpt-4.1-nano",
    "openai/o3-mini",
    "o3-mini",
    "openai/o4-mini",
    "anthropic/claude-3.5-haiku",
    "claude-3-5-haiku-20241022",
    "claude-3-5-haiku-latest",
    "anthropic/claude-3.5-haiku@20241022",
    "anthropic/claude-3.7-sonnet",
    "claude-3-7-sonnet-20250219",
    "anthropic/claude-sonnet-4",
    "claude-sonnet-4-20250514",
    "claude-sonnet-4-0",
    "anthropic/claude-opus-4",
    "claude-opus-4-20250514",
    "google/gemini-2.0-flash",
    "google/gemini-2.5-flash",
    "gemini-2.5-flash",
    "google/gemini-2.5-pro",
    "meta-llama/llama-3.3-70b-instruct",
    "llama-3.3-70b-instruct",
    "meta-llama/Llama-3.3-70B-Instruct",
    "meta-llama/llama-3.1-8b-instruct",
    "meta-llama/Meta-Llama-3.1-8B-Instruct",
    "deepseek/deepseek-chat",
    "deepseek-chat",
    "deepseek/deepseek-r1",
    "deepseek-reasoner",
    "qwen/qwen-2.5-72b-instruct",
    "Qwen/Qwen2.5-72B-Instruct",
    "mistralai/mistral-small",
    "mistral-small-2506",
    "mistralai/mistral-large",
    "mistral-large-latest",
    "x-ai/grok-3",
    "grok-3",
    "x-ai/grok-3-mini",
    QUICK_START_MODEL,
];
const SEED_EMBEDDINGS: &[&str] = &[
    "openai/text-embedding-3-small",
    "text-embedding-3-large",
    "google/gemini-embedding-001",
];

async fn shipped_app(extra: &[(&str, String)]) -> TestApp {
    spawn_app_from(extra, real_catalog_on).await
}

#[tokio::test]
async fn the_quick_start_request_answers_through_the_shipped_catalog() {
    let app = shipped_app(&[]).await;
    let t = app.tenant("10").await;
    // README's quick start, as the OpenAI SDK sends it.
    let body = json!({"model": QUICK_START_MODEL,
        "messages": [{"role": "user", "content": "Hello"}]});
    let res = app.post_chat(&t.key, &body).await;
    assert_eq!(res.status(), 200);
    let v: Value = res.json().await.unwrap();
    assert_eq!(v["model"], "anthropic/claude-3.5-sonnet-20240620");
    assert_eq!(v["choices"][0]["message"]["content"], DEFAULT_REPLY);
    let provider = v["provider"].as_str().unwrap().to_string();
    assert!(
        ["amazon-bedrock", "google-vertex"].contains(&provider.as_str()),
        "{provider}"
    );
    // Charged at the published price: $3 / $15 per million tokens on both providers.
    let row = app.log_row(v["id"].as_str().unwrap()).await;
    let expected = Decimal::from(row.prompt_tokens) * dec("0.000003")
        + Decimal::from(row.completion_tokens) * dec("0.000015");
    assert_eq!(row.cost, expected);

    // Both providers of the model answer it, each in its own wire format.
    for (only, path) in [
        (
            "amazon-bedrock",
            "/model/us.anthropic.claude-3-5-sonnet-20240620-v1%3A0/converse",
        ),
        (
            "google-vertex",
            "/v1/projects/mock-project/locations/us-east5/publishers/anthropic/models/claude-3-5-sonnet@20240620:rawPredict",
        ),
    ] {
        let mut b = body.clone();
        b["provider"] = json!({"only": [only]});
        let v: Value = app.post_chat(&t.key, &b).await.json().await.unwrap();
        assert_eq!(v["provider"], only, "{v}");
        assert!(
            app.mock.requests().iter().any(|r| r.path == path),
            "{only} was called at {path}"
        );
    }
    app.settled().await;
    app.ledger_clean().await;
    app.hot_matches_ledger(t.account).await;
}

#[tokio::test]
async fn the_replaced_catalogs_model_ids_still_answer() {
    let app = shipped_app(&[]).await;
    let t = app.tenant("50").await;
    // DeepSeek's own API trains on prompts; this account allows it.
    infron_store::accounts::set_allow_training(&app.pg, t.account, true)
        .await
        .unwrap();
    for id in SEED_CHAT {
        let res = app
            .post_chat(
                &t.key,
                &json!({"model": id, "max_tokens": 16,
                    "messages": [{"role": "user", "content": "ping"}]}),
            )
            .await;
        let status = res.status();
        let text = res.text().await.unwrap();
        assert_eq!(status, 200, "{id}: {text}");
    }
    for id in SEED_EMBEDDINGS {
        let res = app
            .client
            .post(format!("{}/v1/embeddings", app.base))
            .bearer_auth(&t.key)
            .json(&json!({"model": id, "input": "ping"}))
            .send()
            .await
            .unwrap();
        let status = res.status();
        let text = res.text().await.unwrap();
        assert_eq!(status, 200, "{id}: {text}");
    }
    app.settled().await;
    app.ledger_clean().await;
}

/// Pearson's chi-square of observed counts against expected probabilities.
fn chi_square(observed: &[f64], probabilities: &[f64]) -> f64 {
    let n: f64 = observed.iter().sum();
    observed
        .iter()
        .zip(probabilities)
        .map(|(o, p)| (o - n * p).powi(2) / (n * p))
        .sum()
}

#[tokio::test]
async fn the_cheapest_healthy_provider_wins_as_often_as_its_weight_and_a_dead_one_is_skipped() {
    let app = shipped_app(&[("INFRON_DEFAULT_PROVIDER_SORT", "weighted".to_string())]).await;
    let t = app.tenant("20").await;
    let model = "meta-llama/llama-3.3-70b-instruct";
    let providers = ["deepinfra", "groq", "amazon-bedrock"];
    // The weights the router draws with, from the shipped prices: 1/price².
    let catalog = Catalog::parse(
        &real_catalog_on(&app.mock.base_url()),
        "shipped",
        &catalog_env_for(&app.mock.base_url()),
    )
    .unwrap();
    let endpoints = &catalog.model(model).unwrap().endpoints;
    let weight = |name: &str| {
        let e = endpoints.iter().find(|e| e.provider.name == name).unwrap();
        infron_router::selection::weight(e)
    };
    let total: f64 = providers.iter().map(|p| weight(p)).sum();
    let expected: Vec<f64> = providers.iter().map(|p| weight(p) / total).collect();
    assert!(expected[0] > 0.6, "deepinfra is the cheapest: {expected:?}");

    let ask = |n: usize| {
        let (app, key) = (&app, t.key.clone());
        async move {
            let mut counts: HashMap<String, f64> = HashMap::new();
            for batch in 0..n / 10 {
                let requests = (0..10).map(|i| {
                    let body = json!({"model": model, "max_tokens": 16,
                        "provider": {"only": providers},
                        "messages": [{"role": "user",
                            "content": format!("hello {batch} {i} {}", Uuid::new_v4())}]});
                    let key = key.clone();
                    async move { app.post_chat(&key, &body).await }
                });
                for res in futures_util::future::join_all(requests).await {
                    assert_eq!(res.status(), 200);
                    let v: Value = res.json().await.unwrap();
                    *counts
                        .entry(v["provider"].as_str().unwrap().to_string())
                        .or_default() += 1.0;
                }
            }
            counts
        }
    };
    let counts = ask(300).await;
    let observed: Vec<f64> = providers
        .iter()
        .map(|p| counts.get(*p).copied().unwrap_or(0.0))
        .collect();
    // Two degrees of freedom, p = 0.001.
    let x2 = chi_square(&observed, &expected);
    assert!(
        x2 < 13.82,
        "observed {observed:?}, expected {expected:?}, chi² {x2}"
    );

    // The cheapest endpoint dies: every request still answers, never from it.
    app.mock.set_model_behaviour(
        "meta-llama/Llama-3.3-70B-Instruct",
        Behaviour::error(503, "down"),
    );
    let counts = ask(60).await;
    assert_eq!(counts.get("deepinfra"), None, "{counts:?}");
    assert_eq!(counts.values().sum::<f64>(), 60.0);
    app.settled().await;
    app.ledger_clean().await;
}

async fn get_json(app: &TestApp, path: &str) -> (u16, Value) {
    let res = app
        .client
        .get(format!("{}{path}", app.base))
        .send()
        .await
        .unwrap();
    (res.status().as_u16(), res.json().await.unwrap())
}

fn unit(m: &Value) -> Decimal {
    let p = &m["pricing"];
    (dec(p["prompt"].as_str().unwrap()) + dec(p["completion"].as_str().unwrap()))
        * (Decimal::ONE - dec(&p["discount"].to_string()))
}

#[tokio::test]
async fn the_model_list_filters_and_sorts_and_shows_every_provider() {
    let app = shipped_app(&[]).await;
    let (_, all) = get_json(&app, "/api/v1/models").await;
    let all = all["data"].as_array().unwrap().len();
    assert!(all >= 300, "{all}");

    // Parameters: models some endpoint of which honours all of them.
    let (status, v) = get_json(&app, "/api/v1/models?supported_parameters=tools,reasoning").await;
    assert_eq!(status, 200);
    let ids: Vec<&str> = v["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_str().unwrap())
        .collect();
    assert!(ids.contains(&"openai/o4-mini"), "{ids:?}");
    assert!(!ids.contains(&"openai/text-embedding-3-small"));
    assert!(ids.len() < all);

    // Modalities.
    let (_, v) = get_json(&app, "/api/v1/models?output_modalities=embeddings").await;
    let data = v["data"].as_array().unwrap();
    assert!(data.len() >= 5);
    assert!(data
        .iter()
        .all(|m| m["architecture"]["output_modalities"] == json!(["embeddings"])));
    let (_, v) = get_json(&app, "/api/v1/models?input_modalities=image,file").await;
    assert!(v["data"]
        .as_array()
        .unwrap()
        .iter()
        .any(|m| m["id"] == "anthropic/claude-3.5-sonnet-20240620"));
    let (_, v) = get_json(
        &app,
        "/api/v1/models?input_modalities=audio&output_modalities=text",
    )
    .await;
    let audio = v["data"].as_array().unwrap().len();
    assert!(audio > 0 && audio < all);

    // Sorts: by the cheapest endpoint's price, and by context; plus a minimum context.
    let (_, v) = get_json(&app, "/api/v1/models?sort=pricing-low-to-high").await;
    let prices: Vec<Decimal> = v["data"].as_array().unwrap().iter().map(unit).collect();
    assert!(prices.windows(2).all(|w| w[0] <= w[1]));
    let (_, v) = get_json(&app, "/v1/models?sort=pricing-high-to-low").await;
    let prices: Vec<Decimal> = v["data"].as_array().unwrap().iter().map(unit).collect();
    assert!(prices.windows(2).all(|w| w[0] >= w[1]));
    let (_, v) = get_json(
        &app,
        "/api/v1/models?sort=context-high-to-low&context=200000",
    )
    .await;
    let contexts: Vec<u64> = v["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["context_length"].as_u64().unwrap())
        .collect();
    assert!(contexts.windows(2).all(|w| w[0] >= w[1]));
    assert!(contexts.iter().all(|c| *c >= 200_000));
    let (status, v) = get_json(&app, "/api/v1/models?sort=newest").await;
    assert_eq!(status, 400);
    assert_eq!(v["error"]["param"], "sort");

    // One model, by its Vertex-style alias: every provider with its prices.
    let (status, v) = get_json(&app, "/api/v1/models/anthropic/claude-3.5-sonnet@20240620").await;
    assert_eq!(status, 200);
    assert_eq!(v["id"], "anthropic/claude-3.5-sonnet-20240620");
    let endpoints = v["endpoints"].as_array().unwrap();
    let tags: Vec<&str> = endpoints
        .iter()
        .map(|e| e["tag"].as_str().unwrap())
        .collect();
    assert_eq!(tags, ["amazon-bedrock", "google-vertex"]);
    for e in endpoints {
        assert_eq!(e["pricing"]["prompt"], "0.000003");
        assert_eq!(e["pricing"]["completion"], "0.000015");
        assert!(e["data_policy"]["training"].is_boolean());
    }
    let (_, v) = get_json(
        &app,
        "/api/v1/models/meta-llama/llama-3.3-70b-instruct/endpoints",
    )
    .await;
    let endpoints = v["data"]["endpoints"].as_array().unwrap();
    assert!(endpoints.len() >= 10);
    assert!(endpoints
        .iter()
        .all(|e| e["pricing"]["prompt"].as_str().is_some()));
}
