//! Logs and traces.
//!
//! Logs go to stderr: `RUST_LOG` filters (default info), `INFRON_LOG_FORMAT=json` for JSON
//! lines, colours only when stderr is a terminal.
//!
//! Traces are exported over OTLP (HTTP/protobuf) when an endpoint is configured with the
//! standard variables `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` or `OTEL_EXPORTER_OTLP_ENDPOINT`
//! (`OTEL_EXPORTER_OTLP_HEADERS`, `OTEL_SERVICE_NAME`, `OTEL_RESOURCE_ATTRIBUTES` and the
//! `OTEL_BSP_*` batch settings apply too), and are off otherwise. Spans are made only while
//! exporting ([`on`]), so a gateway without a collector pays one atomic load per request:
//!
//! - `request` (server): one per HTTP request, from its arrival until its body (a whole stream)
//!   is sent; method, route pattern, status and the public request id. A W3C `traceparent`
//!   header from the client makes it a child of the client's trace.
//! - `billing.reserve`: the credit and rate-limit reservation.
//! - `upstream` (client): one per provider attempt, until the provider's answer (or a stream's
//!   head) arrives; provider, model, upstream model and the outcome.
//!
//! Spans carry no prompt or completion text, no key and no account id.

use std::sync::atomic::{AtomicBool, Ordering};

use opentelemetry::propagation::{Extractor, TextMapPropagator};
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing::Span;
use tracing_opentelemetry::OpenTelemetrySpanExt;
use tracing_subscriber::filter::{filter_fn, FilterExt, Targets};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

/// The target of the spans made for export; the log output leaves them out.
pub const TARGET: &str = "infron::trace";

static ON: AtomicBool = AtomicBool::new(false);

/// Whether traces are being exported (and spans should be made).
#[inline]
pub fn on() -> bool {
    ON.load(Ordering::Relaxed)
}

/// Flushes and stops the trace exporter when dropped (at the end of `infron serve`).
pub struct Telemetry {
    provider: Option<SdkTracerProvider>,
}

impl Drop for Telemetry {
    fn drop(&mut self) {
        if let Some(provider) = self.provider.take() {
            ON.store(false, Ordering::Relaxed);
            if let Err(e) = provider.shutdown() {
                eprintln!("trace export did not shut down cleanly: {e}");
            }
        }
    }
}

fn configured(var: &str) -> bool {
    std::env::var(var).is_ok_and(|v| !v.trim().is_empty())
}

/// Sets up logging, and trace export when an OTLP endpoint is configured.
pub fn init() -> Telemetry {
    use std::io::IsTerminal;
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let json = std::env::var("INFRON_LOG_FORMAT").is_ok_and(|v| v.eq_ignore_ascii_case("json"));
    let not_trace = filter_fn(|m| m.target() != TARGET);
    let fmt = tracing_subscriber::fmt::layer()
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr);
    let fmt = if json {
        fmt.json().with_filter(filter.and(not_trace)).boxed()
    } else {
        fmt.with_filter(filter.and(not_trace)).boxed()
    };

    let mut problem = None;
    let provider = if configured("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
        || configured("OTEL_EXPORTER_OTLP_ENDPOINT")
    {
        match exporter() {
            Ok(p) => Some(p),
            Err(e) => {
                problem = Some(e);
                None
            }
        }
    } else {
        None
    };
    let otel = provider.as_ref().map(|p| {
        // Our spans, and warnings and errors logged inside them (as span events).
        let targets = Targets::new()
            .with_target(TARGET, tracing::Level::INFO)
            .with_default(tracing::Level::WARN);
        tracing_opentelemetry::layer()
            .with_tracer(p.tracer("infron"))
            .with_filter(targets)
    });
    let _ = tracing_subscriber::registry()
        .with(fmt)
        .with(otel)
        .try_init();
    if let Some(e) = problem {
        tracing::error!(error = %e, "OTLP trace export is configured but cannot start; traces are off");
    }
    if provider.is_some() {
        ON.store(true, Ordering::Relaxed);
        tracing::info!("exporting traces over OTLP");
    }
    Telemetry { provider }
}

fn exporter() -> Result<SdkTracerProvider, String> {
    if let Ok(p) = std::env::var("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL")
        .or_else(|_| std::env::var("OTEL_EXPORTER_OTLP_PROTOCOL"))
    {
        if p != "http/protobuf" {
            return Err(format!(
                "OTLP protocol {p:?} is not supported: use http/protobuf (port 4318)"
            ));
        }
    }
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .build()
        .map_err(|e| e.to_string())?;
    let mut resource = opentelemetry_sdk::Resource::builder();
    if !configured("OTEL_SERVICE_NAME") {
        resource = resource.with_service_name("infron");
    }
    Ok(SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_resource(resource.build())
        .build())
}

struct Headers<'a>(&'a actix_web::http::header::HeaderMap);

impl Extractor for Headers<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|v| v.to_str().ok())
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(|k| k.as_str()).collect()
    }
}

/// The span of one HTTP request (none when traces are off).
pub fn request_span(
    method: &str,
    route: &str,
    headers: &actix_web::http::header::HeaderMap,
) -> Span {
    if !on() {
        return Span::none();
    }
    let span = tracing::info_span!(
        target: TARGET,
        "request",
        otel.name = %format_args!("{method} {route}"),
        otel.kind = "server",
        otel.status_code = tracing::field::Empty,
        http.request.method = method,
        http.route = route,
        http.response.status_code = tracing::field::Empty,
        infron.request_id = tracing::field::Empty,
    );
    if headers.contains_key("traceparent") {
        let parent = TraceContextPropagator::new().extract(&Headers(headers));
        let _ = span.set_parent(parent);
    }
    span
}

/// Records the request's status and public id on its span.
pub fn finish_request(span: &Span, status: u16, request_id: &str) {
    if span.is_none() {
        return;
    }
    span.record("http.response.status_code", i64::from(status));
    span.record("infron.request_id", request_id);
    if status >= 500 {
        span.record("otel.status_code", "ERROR");
    }
}

/// The span of the credit and rate-limit reservation.
pub fn reserve_span() -> Span {
    if !on() {
        return Span::none();
    }
    tracing::info_span!(target: TARGET, "billing.reserve")
}

/// The span of one provider attempt.
pub fn upstream_span(provider: &str, model: &str, upstream_model: &str) -> Span {
    if !on() {
        return Span::none();
    }
    tracing::info_span!(
        target: TARGET,
        "upstream",
        otel.kind = "client",
        otel.status_code = tracing::field::Empty,
        infron.provider = provider,
        infron.model = model,
        gen_ai.request.model = upstream_model,
        infron.outcome = tracing::field::Empty,
    )
}

/// Records a provider attempt's outcome (`ok` or the failure class) on its span.
pub fn finish_upstream(span: &Span, outcome: &str) {
    if span.is_none() {
        return;
    }
    span.record("infron.outcome", outcome);
    if outcome != "ok" {
        span.record("otel.status_code", "ERROR");
    }
}
