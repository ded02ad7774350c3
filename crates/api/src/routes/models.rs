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
            "discount": p.discount.normalize().to_string(),
        })
    });
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
        "architecture": {
            "input_modalities": m.input_modalities,
            "output_modalities": match m.kind { ModelKind::Chat => vec!["text"], ModelKind::Embedding => vec!["embeddings"] },
        },
        "pricing": pricing,
        "top_provider": {
            "context_length": m.context_length,
            "max_completion_tokens": m.max_output_tokens,
        },
        "supported_parameters": m.supported_parameters,
        "endpoints_count": m.endpoints.len(),
    })
}

pub async fn list(state: web::Data<AppState>) -> HttpResponse {
    let catalog = state.catalog();
    let data: Vec<Value> = catalog.models.iter().map(|m| model_json(m)).collect();
    HttpResponse::Ok().json(json!({ "object": "list", "data": data }))
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
