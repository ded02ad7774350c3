//! Routing: the catalog of models and provider endpoints, the internal request/response model,
//! provider adapters, the choice of endpoints for a request, endpoint health and the response
//! cache.

pub mod cache;
pub mod catalog;
pub mod health;
pub mod legacy;
pub mod media_tokens;
pub mod preferences;
pub mod providers;
pub mod selection;
pub mod sse;
pub mod types;

pub use catalog::{Catalog, CatalogError, Endpoint, Model, Provider, Wire};
pub use providers::{
    Attempt, FailureKind, ProviderClient, ProviderError, Reply, StreamEvent, Timeouts,
};
