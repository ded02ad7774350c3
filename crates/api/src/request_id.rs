//! Every request gets an id before any handler runs; every response carries it in
//! `x-request-id`, errors included, and it is the id of the request's log row. The same
//! middleware writes the access log: one line per request when its response body ends (a
//! stream's line comes when the stream does), and counts it in the HTTP metrics.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

use actix_web::body::{BodySize, BoxBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::middleware::Next;
use actix_web::web::Bytes;
use actix_web::{web, HttpMessage, HttpRequest};
use uuid::Uuid;

use crate::metrics::Metrics;
use crate::state::AppState;

pub const HEADER: &str = "x-request-id";

#[derive(Debug, Clone, Copy)]
pub struct RequestId(pub Uuid);

/// The hint of the API key that authenticated the request (`sk-inf-...abcd`), for the access
/// log. Set only once a key is accepted; the key itself is never logged.
#[derive(Debug, Clone)]
pub struct KeyHint(pub String);

impl RequestId {
    /// The id assigned to this request (a fresh one if the middleware did not run).
    pub fn of(req: &HttpRequest) -> Uuid {
        req.extensions()
            .get::<RequestId>()
            .map_or_else(Uuid::now_v7, |r| r.0)
    }

    /// Public form, as clients see it in `id` and `x-request-id`.
    pub fn public(id: Uuid) -> String {
        format!("gen-{}", id.simple())
    }
}

/// Probes and scrapes come every few seconds: their lines are at debug level.
fn is_probe(route: &str) -> bool {
    matches!(route, "/health" | "/ready" | "/metrics")
}

pub async fn assign(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<AccessLogged>, actix_web::Error> {
    let started = Instant::now();
    let id = Uuid::now_v7();
    req.extensions_mut().insert(RequestId(id));
    let metrics = req
        .app_data::<web::Data<AppState>>()
        .map(|s| s.metrics.clone());
    let method = req.method().to_string();
    // The resource map matches the path without routing, so the pattern is known up front.
    let route = req.match_pattern().unwrap_or_else(|| "unmatched".into());
    let span = crate::telemetry::request_span(&method, &route, req.headers());
    let mut res = tracing::Instrument::instrument(next.call(req), span.clone()).await?;
    let headers = res.headers_mut();
    let name = HeaderName::from_static(HEADER);
    if !headers.contains_key(&name) {
        if let Ok(value) = HeaderValue::from_str(&RequestId::public(id)) {
            headers.insert(name.clone(), value);
        }
    }
    // Exactly what the client sees.
    let public = headers
        .get(&name)
        .and_then(|v| v.to_str().ok())
        .map_or_else(|| RequestId::public(id), str::to_string);
    let status = res.status().as_u16();
    crate::telemetry::finish_request(&span, status, &public);
    let line = AccessLine {
        method,
        route,
        status,
        request_id: public,
        key: res
            .request()
            .extensions()
            .get::<KeyHint>()
            .map(|k| k.0.clone()),
        started,
        metrics,
        span,
    };
    Ok(res.map_body(|_, body| AccessLogged {
        inner: body.boxed(),
        line: Some(line),
    }))
}

struct AccessLine {
    method: String,
    route: String,
    status: u16,
    request_id: String,
    key: Option<String>,
    started: Instant,
    metrics: Option<Arc<Metrics>>,
    /// The request's trace span, ended with this line: when the whole body has been sent.
    span: tracing::Span,
}

impl AccessLine {
    fn emit(self) {
        let elapsed = self.started.elapsed();
        let latency_ms = u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX);
        let key = self.key.as_deref().unwrap_or("-");
        if is_probe(&self.route) {
            tracing::debug!(target: "infron::access", method = %self.method, route = %self.route,
                status = self.status, latency_ms, request_id = %self.request_id, key, "request");
        } else {
            tracing::info!(target: "infron::access", method = %self.method, route = %self.route,
                status = self.status, latency_ms, request_id = %self.request_id, key, "request");
        }
        if let Some(m) = &self.metrics {
            m.http_request(
                &self.method,
                &self.route,
                self.status,
                elapsed.as_secs_f64(),
            );
        }
        // The request's span ends here, with its body.
        drop(self.span);
    }
}

/// A response body that writes the request's access-log line when it is done with: sent in
/// full, or dropped because the client went away.
pub struct AccessLogged {
    inner: BoxBody,
    line: Option<AccessLine>,
}

impl Drop for AccessLogged {
    fn drop(&mut self) {
        if let Some(line) = self.line.take() {
            line.emit();
        }
    }
}

impl MessageBody for AccessLogged {
    type Error = Box<dyn std::error::Error>;

    fn size(&self) -> BodySize {
        self.inner.size()
    }

    fn poll_next(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Bytes, Self::Error>>> {
        Pin::new(&mut self.get_mut().inner).poll_next(cx)
    }
}
