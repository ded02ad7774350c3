//! The Infron HTTP gateway: routes, authentication, the error envelope, streaming, and the
//! admin CLI. It wires the router, billing and store crates together.

// The OpenRouter-shaped responses are large `json!` literals.
#![recursion_limit = "256"]

pub mod alerts;
pub mod api_keys;
pub mod app;
pub mod auth;
pub mod cli;
pub mod dashboard;
pub mod error;
pub mod healthcheck;
pub mod metrics;
pub mod openapi;
pub mod principal;
pub mod rate_limit;
pub mod request_id;
pub mod response_cache;
pub mod routes;
pub mod settings;
pub mod shaped_errors;
pub mod state;
pub mod telemetry;

pub use app::Application;
pub use settings::Settings;
