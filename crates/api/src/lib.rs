//! The Infron HTTP gateway: routes, authentication, the error envelope, streaming, and the
//! admin CLI. It wires the router, billing and store crates together.

// The OpenRouter-shaped responses are large `json!` literals.
#![recursion_limit = "256"]

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
pub mod state;

pub use app::Application;
pub use settings::Settings;

/// Logs to stderr; `RUST_LOG` filters (default info), `INFRON_LOG_FORMAT=json` for JSON lines.
/// Colours only when stderr is a terminal, so files and log collectors get plain text.
pub fn telemetry_init() {
    use std::io::IsTerminal;
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let json = std::env::var("INFRON_LOG_FORMAT").is_ok_and(|v| v.eq_ignore_ascii_case("json"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr);
    let _ = if json {
        builder.json().try_init()
    } else {
        builder.try_init()
    };
}
