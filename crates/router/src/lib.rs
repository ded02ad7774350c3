//! Routing: the catalog of models and provider endpoints, the internal request/response model,
//! provider adapters, and the choice of endpoints for a request.

pub mod catalog;
pub mod providers;
pub mod selection;
pub mod sse;
pub mod types;

pub use catalog::{Catalog, CatalogError, Endpoint, Model, Provider, Wire};
pub use providers::{
    Attempt, FailureKind, ProviderClient, ProviderError, Reply, StreamEvent, Timeouts,
};
