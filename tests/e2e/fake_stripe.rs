//! A local stand-in for Stripe's API, for the top-up tests: it takes
//! `POST /v1/checkout/sessions` form bodies the way Stripe does (bracketed keys such as
//! `line_items[0][price_data][unit_amount]`, Bearer secret key) and answers with a Checkout
//! Session object, recording every request it received.

use std::sync::{Arc, Mutex};

use actix_web::{web, App, HttpRequest, HttpResponse, HttpServer};
use serde_json::{json, Value};
use uuid::Uuid;

/// One request as the fake received it.
#[derive(Debug, Clone)]
pub struct StripeRequest {
    pub path: String,
    pub authorization: Option<String>,
    pub idempotency_key: Option<String>,
    pub stripe_version: Option<String>,
    pub content_type: Option<String>,
    /// Decoded form fields, in order.
    pub form: Vec<(String, String)>,
}

impl StripeRequest {
    pub fn field(&self, key: &str) -> Option<&str> {
        self.form
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// Values of `prefix[0]`, `prefix[1]`, ... in order.
    pub fn list(&self, prefix: &str) -> Vec<String> {
        (0..)
            .map_while(|i| self.field(&format!("{prefix}[{i}]")).map(str::to_string))
            .collect()
    }
}

#[derive(Default)]
struct Shared {
    requests: Mutex<Vec<StripeRequest>>,
    /// Answer the next session request with this status and Stripe error body.
    fail_next: Mutex<Option<(u16, Value)>>,
}

pub struct FakeStripe {
    /// API base to configure as STRIPE_API_BASE.
    pub base: String,
    shared: Arc<Shared>,
}

impl FakeStripe {
    pub async fn start() -> FakeStripe {
        let shared = Arc::new(Shared::default());
        let data = web::Data::from(shared.clone());
        let server = HttpServer::new(move || {
            App::new()
                .app_data(data.clone())
                .route("/v1/checkout/sessions", web::post().to(create_session))
        })
        .workers(1)
        .disable_signals()
        .bind("127.0.0.1:0")
        .expect("fake Stripe binds");
        let addr = server.addrs()[0];
        tokio::spawn(server.run());
        FakeStripe {
            base: format!("http://{addr}"),
            shared,
        }
    }

    pub fn requests(&self) -> Vec<StripeRequest> {
        self.shared.requests.lock().unwrap().clone()
    }

    pub fn fail_next(&self, status: u16, body: Value) {
        *self.shared.fail_next.lock().unwrap() = Some((status, body));
    }
}

async fn create_session(
    req: HttpRequest,
    body: web::Bytes,
    shared: web::Data<Shared>,
) -> HttpResponse {
    let header = |name: &str| {
        req.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    let recorded = StripeRequest {
        path: req.path().to_string(),
        authorization: header("authorization"),
        idempotency_key: header("idempotency-key"),
        stripe_version: header("stripe-version"),
        content_type: header("content-type"),
        form: parse_form(&body),
    };
    shared.requests.lock().unwrap().push(recorded.clone());

    if !recorded
        .authorization
        .as_deref()
        .is_some_and(|a| a.starts_with("Bearer sk_"))
    {
        return HttpResponse::Unauthorized().json(json!({"error": {
            "type": "invalid_request_error", "message": "Invalid API Key provided"}}));
    }
    if let Some((status, body)) = shared.fail_next.lock().unwrap().take() {
        return HttpResponse::build(actix_web::http::StatusCode::from_u16(status).unwrap())
            .json(body);
    }
    let total: i64 = (0..)
        .map_while(|i| {
            recorded
                .field(&format!("line_items[{i}][price_data][unit_amount]"))
                .map(|a| {
                    let qty: i64 = recorded
                        .field(&format!("line_items[{i}][quantity]"))
                        .unwrap_or("1")
                        .parse()
                        .unwrap();
                    a.parse::<i64>().unwrap() * qty
                })
        })
        .sum();
    let metadata: serde_json::Map<String, Value> = recorded
        .form
        .iter()
        .filter_map(|(k, v)| {
            k.strip_prefix("metadata[")
                .and_then(|k| k.strip_suffix(']'))
                .map(|k| (k.to_string(), json!(v)))
        })
        .collect();
    let id = format!("cs_test_{}", Uuid::new_v4().simple());
    let now = chrono::Utc::now().timestamp();
    HttpResponse::Ok().json(json!({
        "id": id,
        "object": "checkout.session",
        "amount_subtotal": total,
        "amount_total": total,
        "allowed_payment_method_types": recorded.list("allowed_payment_method_types"),
        "cancel_url": recorded.field("cancel_url"),
        "client_reference_id": recorded.field("client_reference_id"),
        "created": now,
        "currency": recorded.field("currency"),
        "customer": null,
        "expires_at": now + 86_400,
        "livemode": false,
        "metadata": metadata,
        "mode": recorded.field("mode"),
        "payment_intent": null,
        "payment_status": "unpaid",
        "status": "open",
        "success_url": recorded.field("success_url"),
        "url": format!("https://checkout.stripe.com/c/pay/{id}"),
    }))
}

/// `application/x-www-form-urlencoded` decoding: `+` is a space, `%XX` a byte.
fn parse_form(body: &[u8]) -> Vec<(String, String)> {
    fn decode(s: &str) -> String {
        let bytes = s.as_bytes();
        let mut out = Vec::with_capacity(bytes.len());
        let mut i = 0;
        while i < bytes.len() {
            match bytes[i] {
                b'+' => out.push(b' '),
                b'%' if i + 2 < bytes.len() => {
                    let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap();
                    out.push(u8::from_str_radix(hex, 16).unwrap());
                    i += 2;
                }
                b => out.push(b),
            }
            i += 1;
        }
        String::from_utf8(out).unwrap()
    }
    std::str::from_utf8(body)
        .unwrap()
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            (decode(k), decode(v))
        })
        .collect()
}
