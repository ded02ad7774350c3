//! A local stand-in for Stripe's API, for the top-up tests: it takes form bodies the way Stripe
//! does (bracketed keys such as `line_items[0][price_data][unit_amount]`, Bearer secret key) and
//! answers with Stripe's objects, recording every request it received:
//!
//! - `POST /v1/checkout/sessions`: a Checkout Session (payment or setup mode);
//! - `POST /v1/customers`: a Customer;
//! - `POST /v1/payment_intents`: a PaymentIntent, confirmed at once (`confirm=true`) with the
//!   customer's saved card (`off_session=true`): `succeeded`, or the `card_error` Stripe answers
//!   with status 402 after [`FakeStripe::decline_next_payment`];
//! - `GET /v1/payment_methods/{id}`: a card PaymentMethod.
//!
//! Like Stripe, a POST repeated with the same `Idempotency-Key` gets the first answer again and
//! creates nothing.

use std::collections::HashMap;
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
    /// Decline the next PaymentIntent's card (Stripe's 402 `card_error`).
    decline_next: Mutex<bool>,
    /// First answers by Idempotency-Key.
    idempotent: Mutex<HashMap<String, (u16, Value)>>,
    /// PaymentIntents created.
    payment_intents: Mutex<Vec<Value>>,
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
                .route("/v1/customers", web::post().to(create_customer))
                .route("/v1/payment_intents", web::post().to(create_payment_intent))
                .route(
                    "/v1/payment_methods/{id}",
                    web::get().to(get_payment_method),
                )
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

    pub fn decline_next_payment(&self) {
        *self.shared.decline_next.lock().unwrap() = true;
    }

    /// The PaymentIntents created so far (one per Idempotency-Key).
    pub fn payment_intents(&self) -> Vec<Value> {
        self.shared.payment_intents.lock().unwrap().clone()
    }

    /// Requests received at `path`.
    pub fn requests_to(&self, path: &str) -> Vec<StripeRequest> {
        self.requests()
            .into_iter()
            .filter(|r| r.path == path)
            .collect()
    }
}

/// Records the request and checks the secret key; `Err` is the answer to send instead.
fn receive(
    req: &HttpRequest,
    body: &[u8],
    shared: &Shared,
) -> Result<StripeRequest, Box<HttpResponse>> {
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
        form: parse_form(body),
    };
    shared.requests.lock().unwrap().push(recorded.clone());
    if !recorded
        .authorization
        .as_deref()
        .is_some_and(|a| a.starts_with("Bearer sk_"))
    {
        return Err(Box::new(
            HttpResponse::Unauthorized().json(json!({"error": {
            "type": "invalid_request_error", "message": "Invalid API Key provided"}})),
        ));
    }
    Ok(recorded)
}

/// `metadata[k]=v` fields as an object.
fn metadata(r: &StripeRequest, prefix: &str) -> serde_json::Map<String, Value> {
    r.form
        .iter()
        .filter_map(|(k, v)| {
            k.strip_prefix(prefix)
                .and_then(|k| k.strip_suffix(']'))
                .map(|k| (k.to_string(), json!(v)))
        })
        .collect()
}

/// Answers an idempotent POST: the first answer for its key again, or `make`'s (remembered).
fn idempotent(
    shared: &Shared,
    r: &StripeRequest,
    make: impl FnOnce() -> (u16, Value),
) -> HttpResponse {
    let mut seen = shared.idempotent.lock().unwrap();
    let (status, body) = match r.idempotency_key.as_ref().and_then(|k| seen.get(k)) {
        Some(first) => first.clone(),
        None => {
            let answer = make();
            if let Some(k) = &r.idempotency_key {
                seen.insert(k.clone(), answer.clone());
            }
            answer
        }
    };
    HttpResponse::build(actix_web::http::StatusCode::from_u16(status).unwrap()).json(body)
}

async fn create_customer(
    req: HttpRequest,
    body: web::Bytes,
    shared: web::Data<Shared>,
) -> HttpResponse {
    let r = match receive(&req, &body, &shared) {
        Ok(r) => r,
        Err(refused) => return *refused,
    };
    idempotent(&shared, &r, || {
        (
            200,
            json!({
                "id": format!("cus_test_{}", Uuid::new_v4().simple()),
                "object": "customer",
                "created": chrono::Utc::now().timestamp(),
                "description": r.field("description"),
                "livemode": false,
                "metadata": metadata(&r, "metadata["),
            }),
        )
    })
}

async fn create_payment_intent(
    req: HttpRequest,
    body: web::Bytes,
    shared: web::Data<Shared>,
) -> HttpResponse {
    let r = match receive(&req, &body, &shared) {
        Ok(r) => r,
        Err(refused) => return *refused,
    };
    let bad = |param: &str, message: &str| {
        (
            400,
            json!({"error": {"type": "invalid_request_error", "param": param, "message": message}}),
        )
    };
    idempotent(&shared, &r, || {
        let amount: Option<i64> = r.field("amount").and_then(|a| a.parse().ok());
        let Some(amount) = amount.filter(|a| *a >= 50) else {
            return bad("amount", "Amount must be at least $0.50 usd");
        };
        if r.field("currency") != Some("usd") {
            return bad("currency", "Invalid currency");
        }
        let (Some(customer), Some(pm)) = (r.field("customer"), r.field("payment_method")) else {
            return bad(
                "payment_method",
                "An off-session payment needs a customer and a payment method",
            );
        };
        if r.field("confirm") != Some("true") || r.field("off_session") != Some("true") {
            return bad("off_session", "off_session=true requires confirm=true");
        }
        let id = format!("pi_test_{}", Uuid::new_v4().simple());
        let pi = json!({
            "id": id,
            "object": "payment_intent",
            "amount": amount,
            "amount_received": amount,
            "capture_method": "automatic",
            "confirmation_method": "automatic",
            "created": chrono::Utc::now().timestamp(),
            "currency": "usd",
            "customer": customer,
            "description": r.field("description"),
            "livemode": false,
            "metadata": metadata(&r, "metadata["),
            "payment_method": pm,
            "payment_method_types": r.list("payment_method_types"),
            "status": "succeeded",
        });
        shared.payment_intents.lock().unwrap().push(pi.clone());
        if std::mem::take(&mut *shared.decline_next.lock().unwrap()) {
            // Stripe's answer to a declined off-session card: 402, a card_error. (Stripe also
            // embeds the whole PaymentIntent, left in `requires_payment_method`; the fake leaves
            // it out rather than invent the rest of its ~50 fields, which async-stripe's typed
            // error would insist on. The gateway reads only the type, message and codes.)
            return (
                402,
                json!({"error": {
                    "type": "card_error",
                    "code": "card_declined",
                    "decline_code": "insufficient_funds",
                    "message": "Your card has insufficient funds.",
                    "doc_url": "https://stripe.com/docs/error-codes/card-declined",
                }}),
            );
        }
        (200, pi)
    })
}

async fn get_payment_method(
    req: HttpRequest,
    path: web::Path<String>,
    shared: web::Data<Shared>,
) -> HttpResponse {
    if let Err(refused) = receive(&req, b"", &shared) {
        return *refused;
    }
    HttpResponse::Ok().json(json!({
        "id": path.into_inner(),
        "object": "payment_method",
        "type": "card",
        "card": { "brand": "visa", "last4": "4242", "exp_month": 12, "exp_year": 2030, "funding": "credit" },
        "livemode": false,
    }))
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
        "expires_at": now + 86_400,
        "livemode": false,
        "metadata": metadata,
        "mode": recorded.field("mode"),
        "customer": recorded.field("customer"),
        "setup_intent": (recorded.field("mode") == Some("setup"))
            .then(|| format!("seti_test_{}", Uuid::new_v4().simple())),
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
