//! `GET /v1/models` and `GET /api/v1/models`: the catalog in OpenRouter's shape.

use actix_web::{web, HttpResponse};
use infron_router::catalog::ModelKind;
use infron_router::Model;
use serde_json::{json, Value};

use crate::state::AppState;

fn price(p: infron_billing::TokenPrice) -> String {
    p.decimal().normalize().to_string()
}

/// A model's listed price is that of its cheapest endpoint (the default route).
fn model_json(m: &Model) -> Value {
    let cheapest = m
        .endpoints
        .iter()
        .min_by_key(|e| e.prices.prompt.decimal() + e.prices.completion.decimal());
    let pricing = cheapest.map(|e| {
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
    });
    let pricing = pricing.unwrap_or_else(
        || json!({ "prompt": "0", "completion": "0", "request": "0", "image": "0", "discount": 0 }),
    );
    let (author, _) = m.id.split_once('/').unwrap_or(("", ""));
    json!({
        "id": m.id,
        "object": "model",
        "created": 0,
        "owned_by": author,
        "name": m.name,
        "canonical_slug": m.id,
        "aliases": m.aliases,
        "context_length": m.context_length,
        "description": "",
        "architecture": architecture(m),
        "pricing": pricing,
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

pub async fn list(state: web::Data<AppState>) -> HttpResponse {
    let catalog = state.catalog();
    let data: Vec<Value> = catalog.models.iter().map(|m| model_json(m)).collect();
    HttpResponse::Ok().json(json!({
        "object": "list", "total_count": data.len(), "links": { "next": null }, "data": data,
    }))
}

pub async fn get(
    path: web::Path<(String, String)>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, crate::error::ApiError> {
    let (author, slug) = path.into_inner();
    let id = format!("{author}/{slug}");
    let catalog = state.catalog();
    let m = catalog.model(&id).ok_or_else(|| {
        crate::error::ApiError::NotFound(format!("model '{id}' is not available on this gateway"))
    })?;
    Ok(HttpResponse::Ok().json(model_json(m)))
}
