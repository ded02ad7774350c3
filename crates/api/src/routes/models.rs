//! `GET /v1/models` and `GET /api/v1/models`: the catalog in OpenRouter's shape, filtered by
//! `supported_parameters`, `input_modalities`, `output_modalities` and a minimum `context`, and
//! sorted by `sort` (`pricing-low-to-high`, `pricing-high-to-low`, `context-high-to-low`,
//! `context-low-to-high`). `GET /api/v1/models/{author}/{slug}` is one model with every
//! provider endpoint and its prices.

use actix_web::{web, HttpResponse};
use infron_router::catalog::ModelKind;
use infron_router::selection::unit_price;
use infron_router::{Endpoint, Model};
use rust_decimal::Decimal;
use serde::Deserialize;
use serde_json::{json, Value};

use crate::error::ApiError;
use crate::state::AppState;

fn price(p: infron_billing::TokenPrice) -> String {
    p.decimal().normalize().to_string()
}

fn pricing_json(e: &Endpoint) -> Value {
    let p = &e.prices;
    json!({
        "prompt": price(p.prompt),
        "completion": price(p.completion),
        "request": price(p.request),
        "image": price(p.image),
        "input_cache_read": price(p.input_cache_read.unwrap_or(p.prompt)),
        "input_cache_write": price(p.input_cache_write.unwrap_or(p.prompt)),
        "discount": discount(p.discount),
    })
}

/// The default route's endpoint: the cheapest (prompt + completion, after discount).
fn cheapest(m: &Model) -> Option<&Endpoint> {
    m.endpoints
        .iter()
        .min_by_key(|e| unit_price(e))
        .map(|e| e.as_ref())
}

fn output_modality(m: &Model) -> &'static str {
    match m.kind {
        ModelKind::Chat => "text",
        ModelKind::Embedding => "embeddings",
    }
}

/// A model's listed price is that of its cheapest endpoint (the default route).
fn model_json(m: &Model) -> Value {
    let (author, _) = m.id.split_once('/').unwrap_or(("", ""));
    json!({
        "id": m.id,
        "object": "model",
        "created": 0,
        "owned_by": author,
        "name": m.name,
        "description": m.description.as_deref().unwrap_or_default(),
        "canonical_slug": m.id,
        "aliases": m.aliases,
        "context_length": m.context_length,
        "architecture": architecture(m),
        "pricing": cheapest(m).map(pricing_json).unwrap_or_else(
            || json!({ "prompt": "0", "completion": "0", "request": "0", "image": "0", "discount": 0 }),
        ),
        "top_provider": {
            "context_length": m.context_length,
            "max_completion_tokens": m.max_output_tokens,
            "is_moderated": false,
        },
        "per_request_limits": null,
        "default_parameters": null,
        "supported_voices": null,
        "supported_parameters": m.supported_parameters,
        "endpoints_count": m.endpoints.len(),
        "links": { "details": format!("/api/v1/models/{}/endpoints", m.id) },
    })
}

/// OpenRouter's `discount` is a number (a fraction of the list price).
pub fn discount(d: rust_decimal::Decimal) -> Value {
    serde_json::from_str(&d.normalize().to_string()).unwrap_or_else(|_| json!(0))
}

/// Input and output modalities, and OpenRouter's summary of them (`text+image->text`).
pub fn architecture(m: &Model) -> Value {
    let output: Vec<&str> = match m.kind {
        ModelKind::Chat => vec!["text"],
        ModelKind::Embedding => vec!["embeddings"],
    };
    json!({
        "modality": format!("{}->{}", m.input_modalities.join("+"), output.join("+")),
        "input_modalities": m.input_modalities,
        "output_modalities": output,
        // The catalog does not say which tokenizer or chat template a model uses.
        "tokenizer": "Other",
        "instruct_type": null,
    })
}

/// Every provider of the model with its prices, limits and data policy.
fn endpoints_json(m: &Model) -> Vec<Value> {
    m.endpoints
        .iter()
        .map(|e| {
            json!({
                "provider_name": e.provider.display_name,
                "tag": e.provider.name,
                "context_length": e.context_length,
                "max_completion_tokens": e.max_output_tokens,
                "pricing": pricing_json(e),
                "data_policy": e.provider.data_policy,
            })
        })
        .collect()
}

#[derive(Debug, Default, Deserialize)]
pub struct ListQuery {
    #[serde(default)]
    supported_parameters: Option<String>,
    #[serde(default)]
    input_modalities: Option<String>,
    #[serde(default)]
    output_modalities: Option<String>,
    #[serde(default)]
    context: Option<u64>,
    #[serde(default)]
    sort: Option<String>,
}

fn list_of(v: &Option<String>) -> Vec<&str> {
    v.as_deref()
        .unwrap_or_default()
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .collect()
}

fn bad(param: &str, message: String) -> ApiError {
    ApiError::InvalidRequest {
        message,
        param: Some(param.to_string()),
    }
}

/// Whether some endpoint of the model honours every listed parameter and accepts every listed
/// input modality (an endpoint that declares none is not filtered, as in routing).
fn matches(m: &Model, params: &[&str], inputs: &[&str]) -> bool {
    m.endpoints.iter().any(|e| {
        params.iter().all(|p| e.supports_parameter(p))
            && inputs.iter().all(|i| e.accepts_modality(i))
    })
}

/// Average of the prompt and completion price of the cheapest endpoint, as OpenRouter sorts.
fn sort_price(m: &Model) -> Decimal {
    cheapest(m).map_or(Decimal::MAX, |e| unit_price(e) / Decimal::TWO)
}

#[utoipa::path(
    get, path = "/v1/models", tag = "Models",
    summary = "List models",
    description = "Every model of the catalog with the prices of its cheapest endpoint. No key needed.",
    params(
        ("supported_parameters" = Option<String>, Query, description = "Comma-separated parameters every listed model must honour"),
        ("input_modalities" = Option<String>, Query, description = "Comma-separated `text`, `image`, `file`, `audio`"),
        ("output_modalities" = Option<String>, Query, description = "Comma-separated `text`, `embeddings`, or `all` (the default)"),
        ("context" = Option<u64>, Query, description = "Minimum context length"),
        ("sort" = Option<String>, Query, description = "`pricing-low-to-high`, `pricing-high-to-low`, `context-high-to-low` or `context-low-to-high`"),
    ),
    responses((status = 200, description = "The models", body = crate::openapi::schemas::ModelList)),
)]
pub async fn list(
    query: web::Query<ListQuery>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let q = query.into_inner();
    let params = list_of(&q.supported_parameters);
    let inputs = list_of(&q.input_modalities);
    for i in &inputs {
        if !["text", "image", "file", "audio"].contains(i) {
            return Err(bad(
                "input_modalities",
                format!("input_modalities: '{i}' is not one of text, image, file, audio"),
            ));
        }
    }
    let outputs = list_of(&q.output_modalities);
    for o in &outputs {
        if !["text", "embeddings", "all"].contains(o) {
            return Err(bad(
                "output_modalities",
                format!("output_modalities: '{o}' is not one of text, embeddings, all"),
            ));
        }
    }
    let all_outputs = outputs.is_empty() || outputs.contains(&"all");
    let catalog = state.catalog();
    let mut models: Vec<&Model> = catalog
        .models
        .iter()
        .map(|m| m.as_ref())
        .filter(|m| all_outputs || outputs.contains(&output_modality(m)))
        .filter(|m| q.context.is_none_or(|c| m.context_length >= c))
        .filter(|m| matches(m, &params, &inputs))
        .collect();
    match q.sort.as_deref() {
        None => {}
        Some("pricing-low-to-high") => models.sort_by_key(|m| sort_price(m)),
        Some("pricing-high-to-low") => models.sort_by_key(|m| std::cmp::Reverse(sort_price(m))),
        Some("context-high-to-low") => {
            models.sort_by_key(|m| std::cmp::Reverse(m.context_length))
        }
        Some("context-low-to-high") => models.sort_by_key(|m| m.context_length),
        Some(other) => {
            return Err(bad(
                "sort",
                format!("sort: '{other}' is not one of pricing-low-to-high, pricing-high-to-low, context-high-to-low, context-low-to-high"),
            ))
        }
    }
    let data: Vec<Value> = models.into_iter().map(model_json).collect();
    Ok(HttpResponse::Ok().json(json!({
        "object": "list", "total_count": data.len(), "links": { "next": null }, "data": data,
    })))
}

#[utoipa::path(
    get, path = "/api/v1/models/{author}/{slug}", tag = "Models",
    summary = "Retrieve a model",
    params(("author" = String, Path, description = "The part of the id before the slash"), ("slug" = String, Path, description = "The part after it")),
    responses((status = 200, description = "The model and its endpoints", body = crate::openapi::schemas::ModelDetail)),
)]
pub async fn get(
    path: web::Path<(String, String)>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let (author, slug) = path.into_inner();
    // `/models/mock%2Fgpt-4o-mini/endpoints`: an encoded id followed by `endpoints`.
    if author.contains('/') && slug == "endpoints" {
        return super::endpoints::of_model(&author, &state).await;
    }
    one(&format!("{author}/{slug}"), &state)
}

/// `GET /v1/models/{id}` with the slash of the id percent-encoded (`mock%2Fgpt-4o-mini`), as
/// the official OpenAI SDKs send `models.retrieve("mock/gpt-4o-mini")`.
#[utoipa::path(
    get, path = "/v1/models/{id}", tag = "Models",
    summary = "Retrieve a model by its id, slash percent-encoded, or an alias",
    description = "As the OpenAI SDKs send `models.retrieve(\"openai/gpt-4o-mini\")`: `/v1/models/openai%2Fgpt-4o-mini`.",
    params(("id" = String, Path, description = "A model id with its slash encoded, or an alias")),
    responses((status = 200, description = "The model and its endpoints", body = crate::openapi::schemas::ModelDetail)),
)]
pub async fn get_encoded(
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    one(&path.into_inner(), &state)
}

fn one(id: &str, state: &AppState) -> Result<HttpResponse, ApiError> {
    let catalog = state.catalog();
    let m = catalog.model(id).ok_or_else(|| {
        ApiError::NotFound(format!("model '{id}' is not available on this gateway"))
    })?;
    let mut v = model_json(m);
    v["endpoints"] = Value::Array(endpoints_json(m));
    Ok(HttpResponse::Ok().json(v))
}
