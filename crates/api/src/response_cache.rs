//! How a chat request uses the response cache (`router::cache`): the per-request
//! `x-infron-cache` header, the lookup, and what a hit costs.
//!
//! Request header `x-infron-cache`: `no-cache` answers from a provider and stores the fresh
//! answer; `no-store` answers from a provider and stores nothing. Response header
//! `x-infron-cache`: `hit`, `miss`, or `bypass` (the request said `no-cache` / `no-store`);
//! absent when the operator turned the cache off.
//!
//! A hit is billed by `INFRON_CACHE_HIT_BILLING`: `full` (default) charges the cached usage at
//! the current prices of the endpoint that produced the answer, exactly like a miss, through a
//! hold and a settlement; `free` charges nothing (logged and settled at zero, without a hold).

use std::sync::Arc;

use actix_web::HttpRequest;
use infron_billing::CostBreakdown;
use infron_router::cache::{CacheKey, CachedAnswer};
use infron_router::types::ChatRequest;
use infron_router::{Endpoint, Model};

use crate::error::ApiError;
use crate::settings::CacheHitBilling;
use crate::state::AppState;

pub const HEADER: &str = "x-infron-cache";

/// What the request's `x-infron-cache` header asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Directive {
    Use,
    NoCache,
    NoStore,
}

impl Directive {
    pub fn of(req: &HttpRequest) -> Result<Self, ApiError> {
        let Some(value) = req.headers().get(HEADER) else {
            return Ok(Directive::Use);
        };
        match value
            .to_str()
            .map(|v| v.trim().to_ascii_lowercase())
            .as_deref()
        {
            Ok("no-cache") => Ok(Directive::NoCache),
            Ok("no-store") => Ok(Directive::NoStore),
            Ok("" | "default") => Ok(Directive::Use),
            _ => Err(ApiError::invalid(
                HEADER,
                "the x-infron-cache request header must be no-cache or no-store",
            )),
        }
    }
}

/// How this request relates to the cache, carried to where the answer is sent.
#[derive(Debug, Clone)]
pub enum CacheUse {
    /// The operator turned the cache off.
    Off,
    /// Answered by a provider; the answer is stored under `key` when there is one.
    Miss {
        header: &'static str,
        key: Option<CacheKey>,
    },
    /// Answered from the cache.
    Hit { free: bool },
}

impl CacheUse {
    pub fn header(&self) -> Option<&'static str> {
        match self {
            CacheUse::Off => None,
            CacheUse::Miss { header, .. } => Some(header),
            CacheUse::Hit { .. } => Some("hit"),
        }
    }

    pub fn is_hit(&self) -> bool {
        matches!(self, CacheUse::Hit { .. })
    }

    pub fn is_free_hit(&self) -> bool {
        matches!(self, CacheUse::Hit { free: true })
    }

    /// Stores an answer if this request is a storing miss.
    pub fn store(&self, state: &AppState, answer: Option<CachedAnswer>) {
        if let (CacheUse::Miss { key: Some(key), .. }, Some(cache), Some(answer)) =
            (self, &state.response_cache, answer)
        {
            cache.put(key.clone(), answer);
        }
    }
}

/// A cached answer, the catalog entries that produced it, and what it is charged.
pub struct Hit {
    pub answer: CachedAnswer,
    pub model: Arc<Model>,
    pub endpoint: Arc<Endpoint>,
    pub cost: CostBreakdown,
}

/// Looks the request up. An entry whose model or endpoint left the catalog is a miss.
pub async fn lookup(
    state: &AppState,
    account: &str,
    request: &ChatRequest,
    directive: Directive,
) -> Result<(Option<Hit>, CacheUse), ApiError> {
    let Some(cache) = &state.response_cache else {
        return Ok((None, CacheUse::Off));
    };
    let key = cache.key(account, request);
    match directive {
        Directive::NoStore => {
            return Ok((
                None,
                CacheUse::Miss {
                    header: "bypass",
                    key: None,
                },
            ))
        }
        Directive::NoCache => {
            return Ok((
                None,
                CacheUse::Miss {
                    header: "bypass",
                    key: Some(key),
                },
            ))
        }
        Directive::Use => {}
    }
    let miss = |key| CacheUse::Miss {
        header: "miss",
        key: Some(key),
    };
    let Some(answer) = cache.get(&key).await else {
        return Ok((None, miss(key)));
    };
    let catalog = state.catalog();
    let found = catalog.model(&answer.model).and_then(|m| {
        m.endpoints
            .iter()
            .find(|e| {
                e.provider.name == answer.provider && e.upstream_model == answer.upstream_model
            })
            .map(|e| (m.clone(), e.clone()))
    });
    let Some((model, endpoint)) = found else {
        return Ok((None, miss(key)));
    };
    let free = state.settings.routing.cache_hit_billing == CacheHitBilling::Free;
    let cost = if free {
        CostBreakdown::default()
    } else {
        endpoint.prices.cost(&answer.usage)?
    };
    Ok((
        Some(Hit {
            answer,
            model,
            endpoint,
            cost,
        }),
        CacheUse::Hit { free },
    ))
}
