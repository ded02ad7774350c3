//! Every request gets an id before any handler runs; every response carries it in
//! `x-request-id`, errors included, and it is the id of the request's log row.

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::middleware::Next;
use actix_web::{HttpMessage, HttpRequest};
use uuid::Uuid;

pub const HEADER: &str = "x-request-id";

#[derive(Debug, Clone, Copy)]
pub struct RequestId(pub Uuid);

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

pub async fn assign(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let id = Uuid::now_v7();
    req.extensions_mut().insert(RequestId(id));
    let mut res = next.call(req).await?;
    let headers = res.headers_mut();
    let name = HeaderName::from_static(HEADER);
    if !headers.contains_key(&name) {
        if let Ok(value) = HeaderValue::from_str(&RequestId::public(id)) {
            headers.insert(name, value);
        }
    }
    Ok(res)
}
