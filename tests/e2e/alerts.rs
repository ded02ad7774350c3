//! Alerts and auto top-up end to end: the real server with its background checks, real
//! requests spending real credits, the SMTP sink, a local webhook receiver that verifies the
//! signature independently, and the fake Stripe for saved cards and off-session payments.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use actix_web::{web, App, HttpRequest, HttpResponse, HttpServer};
use hmac::{Hmac, Mac};
use rust_decimal::Decimal;
use serde_json::{json, Value};
use sha2::Sha256;
use uuid::Uuid;

use crate::fake_stripe::FakeStripe;
use crate::helpers::*;
use crate::tenant_helpers::*;

const SECRET_KEY: &str = "sk_test_infron_alerts";
const WHSEC: &str = "whsec_test_alerts";

/// Requests a webhook receiver got: (Infron-Signature header, body), and how many more to
/// answer with 500.
#[derive(Clone, Default)]
struct Received(Arc<Mutex<Vec<(String, String)>>>, Arc<Mutex<usize>>);

impl Received {
    fn all(&self) -> Vec<(String, String)> {
        self.0.lock().unwrap().clone()
    }
}

async fn receiver() -> (String, Received) {
    receiver_failing(0).await
}

/// A receiver that answers the first `failures` requests with 500.
async fn receiver_failing(failures: usize) -> (String, Received) {
    let received = Received::default();
    *received.1.lock().unwrap() = failures;
    let data = web::Data::new(received.clone());
    let server = HttpServer::new(move || {
        App::new().app_data(data.clone()).route(
            "/hook",
            web::post().to(
                |req: HttpRequest, body: web::Bytes, r: web::Data<Received>| async move {
                    let sig = req
                        .headers()
                        .get("infron-signature")
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or_default()
                        .to_string();
                    r.0.lock()
                        .unwrap()
                        .push((sig, String::from_utf8(body.to_vec()).unwrap()));
                    let mut failures = r.1.lock().unwrap();
                    if *failures > 0 {
                        *failures -= 1;
                        return HttpResponse::InternalServerError().finish();
                    }
                    HttpResponse::NoContent().finish()
                },
            ),
        )
    })
    .workers(1)
    .disable_signals()
    .bind("127.0.0.1:0")
    .unwrap();
    let addr = server.addrs()[0];
    tokio::spawn(server.run());
    (format!("http://{addr}/hook"), received)
}

/// Verifies `t=...,v1=...` over "{t}.{body}" with `secret`, as a receiver would.
fn verify(secret: &str, header: &str, body: &str) -> bool {
    let mut t = None;
    let mut v1 = Vec::new();
    for part in header.split(',') {
        match part.split_once('=') {
            Some(("t", v)) => t = v.parse::<i64>().ok(),
            Some(("v1", v)) => v1.push(v.to_string()),
            _ => {}
        }
    }
    let Some(t) = t else { return false };
    if (chrono::Utc::now().timestamp() - t).abs() > 300 {
        return false;
    }
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(format!("{t}.{body}").as_bytes());
    let expected: String = mac
        .finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    v1.contains(&expected)
}

fn stripe_env(fake: &FakeStripe) -> Vec<(&'static str, String)> {
    vec![
        ("STRIPE_SECRET_KEY", SECRET_KEY.to_string()),
        ("STRIPE_API_BASE", fake.base.clone()),
        ("STRIPE_WEBHOOK_SECRETS", WHSEC.to_string()),
        (
            "INFRON_CHECKOUT_SUCCESS_URL",
            "https://app.example/credits?session={CHECKOUT_SESSION_ID}".to_string(),
        ),
        (
            "INFRON_CHECKOUT_CANCEL_URL",
            "https://app.example/credits".to_string(),
        ),
    ]
}

fn alert_env() -> Vec<(&'static str, String)> {
    vec![
        ("INFRON_ALERT_CHECK_INTERVAL_MS", "100".to_string()),
        ("INFRON_ALERT_WEBHOOK_ALLOW_PRIVATE", "true".to_string()),
        ("INFRON_ALERT_RETRY_BASE_MS", "200".to_string()),
    ]
}

async fn account_of(b: &Browser) -> Uuid {
    let (s, v) = status_of(b.get("/api/v1/account")).await;
    assert_eq!(s, 200, "{v}");
    v["data"]["id"].as_str().unwrap().parse().unwrap()
}

async fn grant(app: &TestApp, account: Uuid, amount: &str) {
    infron_billing::grants::grant(
        &app.pg,
        &app.hot,
        account,
        amount.parse().unwrap(),
        "test",
        format!("grant:{}", Uuid::new_v4()),
    )
    .await
    .unwrap();
}

/// One request costing $0.0003 at mock-a's prices (100 prompt and 100 completion tokens).
async fn spend(app: &TestApp, key: &str) {
    let body = chat_body(
        "test/chat",
        Some(json!({"prompt_tokens": 100, "completion_tokens": 100})),
    );
    let r = app.post_chat(key, &body).await;
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
}

/// Waits up to 10 s for `f` to hold.
async fn eventually<F, Fut>(what: &str, mut f: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    for _ in 0..200 {
        if f().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("timed out waiting for {what}");
}

fn mails_with(smtp: &crate::smtp_sink::SmtpSink, to: &str, subject: &str) -> usize {
    smtp.messages()
        .iter()
        .filter(|m| m.to.iter().any(|t| t.contains(to)) && m.subject().contains(subject))
        .count()
}

#[tokio::test]
async fn alerts_low_balance_once_per_crossing_by_email_and_signed_webhook() {
    let TenantApp { app, smtp } = spawn_tenant_app(&alert_env()).await;
    let (_, email, b) = member(&app, None).await;
    let account = account_of(&b).await;
    grant(&app, account, "0.0105").await;
    let (url, received) = receiver().await;

    let (s, v) = status_of(b.patch(
        "/api/v1/account/alerts",
        &json!({ "low_balance_threshold": "0.01", "email": true, "webhook_url": url }),
    ))
    .await;
    assert_eq!(s, 200, "{v}");
    let secret = v["data"]["webhook_secret"].as_str().unwrap().to_string();
    assert!(secret.starts_with("whsec_"));
    assert_eq!(v["data"]["webhook_secret_set"], json!(true));
    assert_eq!(v["data"]["low_balance_threshold"], json!(0.01));
    // The secret is shown once: reading the settings never returns it.
    let (_, again) = status_of(b.get("/api/v1/account/alerts")).await;
    assert!(!again.to_string().contains(&secret));

    let (_, key) = api_key(&b, json!({ "name": "spender" })).await;
    // $0.0105 - 2 x $0.0003 = $0.0099: below the threshold. More requests stay below.
    for _ in 0..6 {
        spend(&app, &key).await;
    }
    app.settled().await;
    eventually("one alert email", || async {
        mails_with(&smtp, &email, "balance is low") == 1
    })
    .await;
    eventually("one webhook", || async { received.all().len() == 1 }).await;
    // Several checks later there is still exactly one of each.
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert_eq!(mails_with(&smtp, &email, "balance is low"), 1);
    let hooks = received.all();
    assert_eq!(hooks.len(), 1, "{hooks:?}");
    let (sig, body) = &hooks[0];
    assert!(
        verify(&secret, sig, body),
        "signature {sig} does not verify"
    );
    assert!(!verify("whsec_wrong", sig, body));
    let event: Value = serde_json::from_str(body).unwrap();
    assert_eq!(event["type"], json!("balance.low"));
    assert_eq!(event["account_id"], json!(account.to_string()));
    assert_eq!(event["data"]["threshold"], json!("0.01"));
    let at: Decimal = event["data"]["balance"].as_str().unwrap().parse().unwrap();
    assert!(at < dec("0.01") && at >= dec("0.0087"), "{event}");
    assert!(!body.contains("Say hello"), "no prompt text in alerts");
    let mail = smtp
        .messages()
        .into_iter()
        .find(|m| m.subject().contains("balance is low"))
        .unwrap();
    assert!(mail.body().contains("$0.01"), "{}", mail.body());

    // A top-up above the threshold clears the alert; the next crossing alerts again, once.
    grant(&app, account, "0.0020").await; // $0.0107
    eventually("the alert cleared", || async {
        let (_, v) = status_of(b.get("/api/v1/account/alerts")).await;
        !v["data"]["recent"][0]["cleared_at"].is_null()
    })
    .await;
    for _ in 0..4 {
        spend(&app, &key).await; // $0.0095
    }
    app.settled().await;
    eventually("a second email", || async {
        mails_with(&smtp, &email, "balance is low") == 2
    })
    .await;
    eventually("a second webhook", || async { received.all().len() == 2 }).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(mails_with(&smtp, &email, "balance is low"), 2);
    assert_eq!(received.all().len(), 2);
    let (sig, body) = &received.all()[1];
    assert!(verify(&secret, sig, body));

    // The page lists the alerts and how they were delivered.
    let html = b
        .get("/settings")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(html.contains("Recent alerts"), "{html}");
    assert!(html.contains("email sent"), "{html}");
    assert!(html.contains("webhook sent"), "{html}");
    assert!(!html.contains(&secret));
    app.ledger_clean().await;
}

#[tokio::test]
async fn alerts_key_spend_at_80_and_100_percent_of_its_limit() {
    let TenantApp { app, smtp } = spawn_tenant_app(&alert_env()).await;
    let (_, email, b) = member(&app, None).await;
    let account = account_of(&b).await;
    grant(&app, account, "1").await;
    let (url, received) = receiver().await;
    let (s, v) = status_of(b.patch(
        "/api/v1/account/alerts",
        &json!({ "key_spend": true, "webhook_url": url }),
    ))
    .await;
    assert_eq!(s, 200, "{v}");
    let secret = v["data"]["webhook_secret"].as_str().unwrap().to_string();
    let (hash, key) = api_key(&b, json!({ "name": "limited", "limit": 0.001 })).await;

    // $0.0008 of a $0.001 limit: 80%.
    let body = json!({
        "model": "test/chat", "max_tokens": 200,
        "messages": [{ "role": "user", "content": "Say hello [[mock:{\"prompt_tokens\": 200, \"completion_tokens\": 300}]]" }],
    });
    let r = app.post_chat(&key, &body).await;
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    app.settled().await;
    eventually("the 80% alert", || async { received.all().len() == 1 }).await;
    let event: Value = serde_json::from_str(&received.all()[0].1).unwrap();
    assert_eq!(event["type"], json!("key.spend_threshold"));
    assert_eq!(event["data"]["threshold_percent"], json!(80));
    assert_eq!(event["data"]["key"]["hash"], json!(hash));
    assert_eq!(event["data"]["usage"], json!("0.0008"));
    assert!(verify(&secret, &received.all()[0].0, &received.all()[0].1));
    eventually("the 80% email", || async {
        mails_with(&smtp, &email, "80% of its limit") == 1
    })
    .await;

    // The limit lowered to what was spent: 100% (the 80% alert stays fired, not sent again).
    let (s, v) =
        status_of(b.patch(&format!("/api/v1/keys/{hash}"), &json!({ "limit": 0.0008 }))).await;
    assert_eq!(s, 200, "{v}");
    eventually("the 100% alert", || async { received.all().len() == 2 }).await;
    let event: Value = serde_json::from_str(&received.all()[1].1).unwrap();
    assert_eq!(event["data"]["threshold_percent"], json!(100));
    eventually("the 100% email", || async {
        mails_with(&smtp, &email, "100% of its limit") == 1
    })
    .await;
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(received.all().len(), 2);
    assert_eq!(mails_with(&smtp, &email, "80% of its limit"), 1);

    // Raised well above the spend: both clear.
    let (s, _) = status_of(b.patch(&format!("/api/v1/keys/{hash}"), &json!({ "limit": 1 }))).await;
    assert_eq!(s, 200);
    eventually("both cleared", || async {
        let (_, v) = status_of(b.get("/api/v1/account/alerts")).await;
        let recent = v["data"]["recent"].as_array().unwrap().clone();
        recent.len() == 2 && recent.iter().all(|f| !f["cleared_at"].is_null())
    })
    .await;
}

/// An owner with a saved card and auto top-up on: $20 of credits below $0.01.
async fn auto_topup_ready(
    app: &TestApp,
    b: &Browser,
    fake: &FakeStripe,
    account: Uuid,
) -> (String, String) {
    // Turning it on before a card is saved is refused.
    let (s, v) = status_of(b.patch(
        "/api/v1/account/auto-topup",
        &json!({ "enabled": true, "threshold": 0.01, "amount": 20 }),
    ))
    .await;
    assert_eq!(s, 400, "{v}");
    assert_eq!(v["error"]["param"], json!("enabled"));

    // Setup-mode Checkout for the account's customer.
    let (s, v) = status_of(b.post("/api/v1/account/auto-topup/card", &json!({}))).await;
    assert_eq!(s, 200, "{v}");
    assert!(v["data"]["url"]
        .as_str()
        .unwrap()
        .starts_with("https://checkout.stripe.com/"));
    let customers = fake.requests_to("/v1/customers");
    assert_eq!(customers.len(), 1);
    assert_eq!(
        customers[0].field("metadata[account_id]"),
        Some(&*account.to_string())
    );
    let sessions = fake.requests_to("/v1/checkout/sessions");
    let setup = sessions.last().unwrap();
    assert_eq!(setup.field("mode"), Some("setup"));
    assert_eq!(setup.field("currency"), Some("usd"));
    assert!(setup.field("customer").unwrap().starts_with("cus_test_"));
    assert_eq!(
        setup.field("setup_intent_data[metadata][account_id]"),
        Some(&*account.to_string())
    );
    assert_eq!(
        setup.field("setup_intent_data[metadata][purpose]"),
        Some("auto_topup")
    );
    assert!(setup
        .field("line_items[0][price_data][unit_amount]")
        .is_none());
    let customer = setup.field("customer").unwrap().to_string();

    // Stripe's signed event saves the card.
    let pm = format!("pm_test_{}", Uuid::new_v4().simple());
    let body = event(
        "setup_intent.succeeded",
        json!({
            "id": format!("seti_test_{}", Uuid::new_v4().simple()),
            "object": "setup_intent",
            "customer": customer,
            "payment_method": pm,
            "status": "succeeded",
            "usage": "off_session",
            "metadata": { "account_id": account.to_string(), "purpose": "auto_topup" },
        }),
    );
    let v = deliver(app, &body).await;
    assert_eq!(v["ignored"], json!(false), "{v}");
    eventually("the card's details", || async {
        let (_, v) = status_of(b.get("/api/v1/account/auto-topup")).await;
        v["data"]["card"]["last4"] == json!("4242")
    })
    .await;

    let (s, v) = status_of(b.patch(
        "/api/v1/account/auto-topup",
        &json!({ "enabled": true, "threshold": "0.01", "amount": 20 }),
    ))
    .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["data"]["enabled"], json!(true));
    assert_eq!(v["data"]["total"], json!(21.35));
    (customer, pm)
}

fn event(kind: &str, object: Value) -> String {
    json!({
        "id": format!("evt_test_{}", Uuid::new_v4().simple()),
        "object": "event",
        "api_version": "2026-09-30.endive",
        "created": chrono::Utc::now().timestamp(),
        "livemode": false,
        "type": kind,
        "data": { "object": object },
    })
    .to_string()
}

async fn deliver(app: &TestApp, body: &str) -> Value {
    let t = chrono::Utc::now().timestamp();
    let mut mac = Hmac::<Sha256>::new_from_slice(WHSEC.as_bytes()).unwrap();
    mac.update(format!("{t}.{body}").as_bytes());
    let hex: String = mac
        .finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let r = app
        .client
        .post(format!("{}/api/v1/stripe/webhook", app.base))
        .header("content-type", "application/json")
        .header("Stripe-Signature", format!("t={t},v1={hex}"))
        .body(body.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    r.json().await.unwrap()
}

#[tokio::test]
async fn auto_topup_pays_once_off_session_and_credits_only_from_the_signed_webhook() {
    let fake = FakeStripe::start().await;
    let mut env = stripe_env(&fake);
    env.extend(alert_env());
    let TenantApp { app, smtp: _smtp } = spawn_tenant_app(&env).await;
    // A second instance on the same database and Redis runs the same checks.
    let _replica = spawn_replica(&app, &env).await;
    let (_, _, b) = member(&app, None).await;
    let account = account_of(&b).await;
    grant(&app, account, "0.0105").await;
    let (customer, pm) = auto_topup_ready(&app, &b, &fake, account).await;
    assert!(
        fake.payment_intents().is_empty(),
        "above the threshold: nothing bought"
    );

    let (_, key) = api_key(&b, json!({ "name": "spender" })).await;
    for _ in 0..4 {
        spend(&app, &key).await; // $0.0093
    }
    app.settled().await;
    eventually("one PaymentIntent", || async {
        fake.payment_intents().len() == 1
    })
    .await;
    tokio::time::sleep(Duration::from_millis(800)).await;
    let intents = fake.payment_intents();
    assert_eq!(intents.len(), 1, "{intents:?}");
    let posts = fake.requests_to("/v1/payment_intents");
    assert_eq!(posts.len(), 1, "one request: the trigger fired once");
    let r = &posts[0];
    assert_eq!(r.field("amount"), Some("2135"));
    assert_eq!(r.field("currency"), Some("usd"));
    assert_eq!(r.field("customer"), Some(&*customer));
    assert_eq!(r.field("payment_method"), Some(&*pm));
    assert_eq!(r.field("off_session"), Some("true"));
    assert_eq!(r.field("confirm"), Some("true"));
    assert_eq!(r.field("metadata[credits_cents]"), Some("2000"));
    assert_eq!(r.field("metadata[fee_cents]"), Some("135"));
    let trigger: Uuid = r
        .field("metadata[auto_topup_trigger]")
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(
        r.idempotency_key.as_deref(),
        Some(&*format!("infron-auto-topup-{trigger}"))
    );

    // Stripe said "succeeded", but nothing is credited until its signed webhook.
    let pi = intents[0].clone();
    let pi_id = pi["id"].as_str().unwrap().to_string();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(app.balance(account).await, dec("0.0093"));
    let (_, v) = status_of(b.get("/api/v1/account/auto-topup")).await;
    assert_eq!(v["data"]["recent"][0]["status"], json!("created"), "{v}");

    // An unsigned event changes nothing.
    let body = event("payment_intent.succeeded", pi.clone());
    let r = app
        .client
        .post(format!("{}/api/v1/stripe/webhook", app.base))
        .header("content-type", "application/json")
        .body(body.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert_eq!(app.balance(account).await, dec("0.0093"));

    let v = deliver(&app, &body).await;
    assert_eq!(v["posted"], json!([format!("topup:{pi_id}")]), "{v}");
    assert_eq!(app.balance(account).await, dec("20.0093"));
    // The same event again, and another event about the same payment: credited once.
    let v = deliver(&app, &body).await;
    assert_eq!(v["duplicate"], json!(true));
    let v = deliver(&app, &event("payment_intent.succeeded", pi.clone())).await;
    assert_eq!(v["posted"], json!([]));
    assert_eq!(app.balance(account).await, dec("20.0093"));
    let fee: Decimal = sqlx::query_scalar(
        "SELECT -sum(e.amount) FROM ledger_entries e JOIN ledger_transactions t ON t.id = e.transaction_id \
         WHERE t.external_id = $1 AND e.ledger_account_id = $2",
    )
    .bind(format!("topup:{pi_id}"))
    .bind(infron_store::ledger::platform::TOPUP_FEE_REVENUE)
    .fetch_one(&app.pg)
    .await
    .unwrap();
    assert_eq!(fee, dec("1.35"));

    let (_, v) = status_of(b.get("/api/v1/account/auto-topup")).await;
    assert_eq!(v["data"]["recent"][0]["status"], json!("succeeded"));
    assert_eq!(v["data"]["enabled"], json!(true));
    // Back above the threshold: armed again, and nothing more bought.
    eventually("re-armed", || async {
        sqlx::query_scalar::<_, bool>("SELECT armed FROM auto_topup WHERE account_id = $1")
            .bind(account)
            .fetch_one(&app.pg)
            .await
            .unwrap()
    })
    .await;
    assert_eq!(fake.payment_intents().len(), 1);
    let html = b
        .get("/credits")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        html.contains("Auto top-up is <strong>on</strong>"),
        "{html}"
    );
    assert!(html.contains("visa ending 4242"), "{html}");
    assert!(html.contains("credited"), "{html}");
    // The history shows the top-up with the fee paid on top of the credits.
    assert!(
        html.contains(
            "<td>Top-up (Stripe)</td><td class=\"num\">$20.00</td><td class=\"num\">$1.35</td>"
        ),
        "{html}"
    );
    app.settled().await;
    app.ledger_clean().await;
    app.hot_matches_ledger(account).await;
}

#[tokio::test]
async fn auto_topup_stops_after_a_failed_payment_until_turned_on_again() {
    let fake = FakeStripe::start().await;
    let mut env = stripe_env(&fake);
    env.extend(alert_env());
    let TenantApp { app, smtp } = spawn_tenant_app(&env).await;
    let (_, email, b) = member(&app, None).await;
    let account = account_of(&b).await;
    grant(&app, account, "0.0105").await;
    auto_topup_ready(&app, &b, &fake, account).await;

    // The card is declined when the PaymentIntent is created.
    fake.decline_next_payment();
    let (_, key) = api_key(&b, json!({ "name": "spender" })).await;
    for _ in 0..2 {
        spend(&app, &key).await; // $0.0099
    }
    app.settled().await;
    eventually("auto top-up turned off", || async {
        let (_, v) = status_of(b.get("/api/v1/account/auto-topup")).await;
        v["data"]["enabled"] == json!(false)
    })
    .await;
    let (_, v) = status_of(b.get("/api/v1/account/auto-topup")).await;
    assert!(
        v["data"]["last_failure"]
            .as_str()
            .unwrap()
            .contains("Your card has insufficient funds."),
        "{v}"
    );
    assert_eq!(v["data"]["recent"][0]["status"], json!("failed"));
    let html = b
        .get("/credits")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        html.contains("Auto top-up stopped after a failed payment"),
        "{html}"
    );
    assert!(html.contains("Your card has insufficient funds."), "{html}");
    assert!(
        html.contains("Auto top-up is <strong>off</strong>"),
        "{html}"
    );
    // The owner is told by email, once, with what failed and what to do.
    eventually("the failure email", || async {
        mails_with(&smtp, &email, "auto top-up payment failed") == 1
    })
    .await;
    let mail = smtp
        .messages()
        .into_iter()
        .find(|m| m.subject().contains("auto top-up payment failed"))
        .unwrap();
    assert!(mail.body().contains("$20.00"), "{}", mail.body());
    assert!(mail.body().contains("Your card has insufficient funds."));
    assert!(mail.body().contains("Auto top-up is now off"));
    let (_, v) = status_of(b.get("/api/v1/account/alerts")).await;
    assert_eq!(v["data"]["recent"][0]["type"], "auto_topup.failed", "{v}");
    assert_eq!(v["data"]["recent"][0]["data"]["amount"], "20.00");
    // Nothing more is tried while it is off.
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(fake.requests_to("/v1/payment_intents").len(), 1);
    assert_eq!(app.balance(account).await, dec("0.0099"));

    // The user turns it on again from the page (a plain form): the balance is still low, so
    // it buys at once; this time Stripe's webhook reports the failure.
    let csrf = b.csrf.clone();
    let r = b
        .client
        .post(format!("{}/credits/auto-topup", b.base))
        .header("origin", &b.base)
        .form(&[
            ("csrf_token", csrf.as_str()),
            ("enabled", "true"),
            ("threshold", "0.01"),
            ("amount", "20"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.text().await.unwrap().contains("Auto top-up is on."));
    eventually("a second PaymentIntent", || async {
        fake.payment_intents().len() == 2
    })
    .await;
    let mut pi = fake.payment_intents()[1].clone();
    pi["status"] = json!("requires_payment_method");
    pi["last_payment_error"] = json!({
        "type": "card_error", "code": "card_declined", "decline_code": "generic_decline",
        "message": "Your card was declined.",
    });
    let v = deliver(&app, &event("payment_intent.payment_failed", pi.clone())).await;
    assert_eq!(v["posted"], json!([]));
    let (_, v) = status_of(b.get("/api/v1/account/auto-topup")).await;
    assert_eq!(v["data"]["enabled"], json!(false));
    assert!(v["data"]["last_failure"]
        .as_str()
        .unwrap()
        .contains("Your card was declined."));
    assert_eq!(app.balance(account).await, dec("0.0099"));
    // A second email for the second failure; the webhook event delivered again changes nothing.
    eventually("the second failure email", || async {
        mails_with(&smtp, &email, "auto top-up payment failed") == 2
    })
    .await;
    deliver(&app, &event("payment_intent.payment_failed", pi.clone())).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(mails_with(&smtp, &email, "auto top-up payment failed"), 2);
    app.ledger_clean().await;
}

#[tokio::test]
async fn alerts_and_auto_topup_are_changed_by_owners_and_admins_only() {
    let fake = FakeStripe::start().await;
    // No INFRON_ALERT_WEBHOOK_ALLOW_PRIVATE: private webhook addresses are refused.
    let TenantApp { app, smtp: _smtp } = spawn_tenant_app(&stripe_env(&fake)).await;
    let (_, _, owner) = member(&app, None).await;
    let account = account_of(&owner).await;
    let (_, _, admin) = member(&app, Some((account, "admin"))).await;
    let (_, _, m) = member(&app, Some((account, "member"))).await;
    let (_, _, billing) = member(&app, Some((account, "billing"))).await;

    for b in [&m, &billing] {
        for (path, body) in [
            (
                "/api/v1/account/alerts",
                json!({ "low_balance_threshold": 5 }),
            ),
            ("/api/v1/account/auto-topup", json!({ "threshold": 5 })),
        ] {
            let (s, v) = status_of(b.patch(path, &body)).await;
            assert_eq!(s, 403, "{path}: {v}");
            let (s, _) = status_of(b.get(path)).await;
            assert_eq!(s, 200, "{path}");
        }
        let (s, _) = status_of(b.post("/api/v1/account/auto-topup/card", &json!({}))).await;
        assert_eq!(s, 403);
        let (s, _) = status_of(b.post("/api/v1/account/alerts/webhook-secret", &json!({}))).await;
        assert_eq!(s, 403);
    }
    assert!(fake.requests().is_empty());

    let (s, v) = status_of(admin.patch(
        "/api/v1/account/alerts",
        &json!({ "low_balance_threshold": 5, "key_spend": true }),
    ))
    .await;
    assert_eq!(s, 200, "{v}");
    for bad in [
        json!({ "webhook_url": "http://127.0.0.1:9/hook" }),
        json!({ "webhook_url": "http://169.254.169.254/latest" }),
        json!({ "webhook_url": "ftp://example.com/" }),
    ] {
        let (s, v) = status_of(owner.patch("/api/v1/account/alerts", &bad)).await;
        assert_eq!(s, 400, "{bad}: {v}");
        assert_eq!(v["error"]["param"], json!("webhook_url"));
    }
    for bad in [
        json!({ "low_balance_threshold": 0 }),
        json!({ "low_balance_threshold": "1.001" }),
        json!({ "low_balance_threshold": "abc" }),
        json!({ "surprise": 1 }),
    ] {
        let (s, _) = status_of(owner.patch("/api/v1/account/alerts", &bad)).await;
        assert_eq!(s, 400, "{bad}");
    }
    let (s, v) =
        status_of(owner.patch("/api/v1/account/auto-topup", &json!({ "amount": 1 }))).await;
    assert_eq!(s, 400, "{v}");
    assert_eq!(v["error"]["param"], json!("amount"));
    let (s, v) = status_of(admin.patch(
        "/api/v1/account/auto-topup",
        &json!({ "threshold": 5, "amount": 25 }),
    ))
    .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["data"]["amount"], json!(25));
    assert_eq!(v["data"]["total"], json!(26.6));

    // Pages: owners get the forms; members read the settings.
    let html = owner
        .get("/settings")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(html.contains(r#"action="/settings/alerts""#), "{html}");
    assert!(html.contains(r#"<label for="alert-threshold">"#));
    // No webhook yet: the URL input is empty (a placeholder there would fail the browser's
    // URL validation and block the form).
    assert!(
        html.contains(r#"name="webhook_url" type="url" maxlength="2000" value="""#),
        "{html}"
    );
    let html = owner
        .get("/credits")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(html.contains(r#"action="/credits/auto-topup""#), "{html}");
    assert!(html.contains("No card is saved."));
    let html = m
        .get("/settings")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(!html.contains(r#"action="/settings/alerts""#));
    assert!(html.contains("below $5"), "{html}");
    assert!(html.contains("<dt>Webhook</dt><dd>none</dd>"), "{html}");
    let html = m
        .get("/credits")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(!html.contains(r#"action="/credits/auto-topup""#));

    // The owner's form post (as a browser sends it, without JavaScript) saves the alerts.
    let r = owner
        .client
        .post(format!("{}/settings/alerts", owner.base))
        .header("origin", &owner.base)
        .form(&[
            ("csrf_token", owner.csrf.as_str()),
            ("low_balance_threshold", "7"),
            ("email", "true"),
            ("webhook_url", ""),
        ])
        .send()
        .await
        .unwrap();
    let status = r.status();
    let html = r.text().await.unwrap();
    assert_eq!(status, 200, "{html}");
    assert!(html.contains("Alert settings saved."), "{html}");
    let (_, v) = status_of(owner.get("/api/v1/account/alerts")).await;
    assert_eq!(v["data"]["low_balance_threshold"], json!(7));
    assert_eq!(v["data"]["key_spend"], json!(false));

    // A member's form post is refused on the page too.
    let r = m
        .client
        .post(format!("{}/settings/alerts", m.base))
        .header("origin", &m.base)
        .form(&[
            ("csrf_token", m.csrf.as_str()),
            ("low_balance_threshold", "1"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
}

#[tokio::test]
async fn auto_topup_concurrent_checks_and_a_retried_trigger_make_one_payment() {
    use infron_billing::topups::{auto, CheckoutConfig, StripeCheckout};
    let fake = FakeStripe::start().await;
    // No Stripe settings on the app: its own background loop stays out of the way, and this
    // test drives the checks itself, many at once.
    let app = spawn_app().await;
    let t = app.tenant("0.005").await;
    infron_store::auto_topup::configure(&app.pg, t.account, true, 1000, 2000)
        .await
        .unwrap();
    sqlx::query(
        "UPDATE auto_topup SET stripe_customer = 'cus_test_c', payment_method = 'pm_test_c' \
         WHERE account_id = $1",
    )
    .bind(t.account)
    .execute(&app.pg)
    .await
    .unwrap();
    let stripe = Arc::new(
        StripeCheckout::new(
            &secrecy::SecretString::from(SECRET_KEY.to_string()),
            &fake.base,
            Duration::from_secs(5),
            CheckoutConfig {
                payment_methods: vec!["card".into()],
                success_url: "https://app.example/ok".into(),
                cancel_url: "https://app.example/no".into(),
            },
        )
        .unwrap(),
    );
    let fees = infron_billing::fees::FeeSchedule::default();

    // Eight checks at once see the balance below the threshold: one trigger.
    let fired = futures_util::future::join_all((0..8).map(|_| {
        let (pg, fees) = (app.pg.clone(), fees);
        async move { auto::fire_triggers(&pg, &fees).await.unwrap() }
    }))
    .await;
    let triggers: Vec<Uuid> = fired.into_iter().flatten().collect();
    assert_eq!(triggers.len(), 1, "{triggers:?}");
    // Four instances processing at once: one PaymentIntent request.
    join_all_process(&app, &stripe).await;
    assert_eq!(fake.requests_to("/v1/payment_intents").len(), 1);
    assert_eq!(fake.payment_intents().len(), 1);
    let row = infron_store::auto_topup::get_trigger(&app.pg, triggers[0])
        .await
        .unwrap()
        .unwrap();
    assert_eq!(row.status, "created");
    assert_eq!((row.credits_cents, row.fee_cents), (2000, 135));

    // As if an instance had died after Stripe created the payment but before recording it:
    // the trigger is due again and is retried with the same Idempotency-Key, and Stripe
    // answers with the same PaymentIntent.
    sqlx::query(
        "UPDATE auto_topup_triggers SET status = 'pending', payment_intent = NULL, \
         next_attempt_at = now() WHERE id = $1",
    )
    .bind(triggers[0])
    .execute(&app.pg)
    .await
    .unwrap();
    join_all_process(&app, &stripe).await;
    let posts = fake.requests_to("/v1/payment_intents");
    assert_eq!(posts.len(), 2);
    assert_eq!(posts[0].idempotency_key, posts[1].idempotency_key);
    assert_eq!(fake.payment_intents().len(), 1, "one payment");
    let row = infron_store::auto_topup::get_trigger(&app.pg, triggers[0])
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        row.payment_intent.as_deref(),
        fake.payment_intents()[0]["id"].as_str()
    );
    // Still below the threshold and disarmed: later checks buy nothing more.
    for _ in 0..3 {
        assert!(auto::fire_triggers(&app.pg, &fees)
            .await
            .unwrap()
            .is_empty());
    }
    assert_eq!(app.balance(t.account).await, dec("0.005"));
}

async fn join_all_process(app: &TestApp, stripe: &Arc<infron_billing::topups::StripeCheckout>) {
    futures_util::future::join_all((0..4).map(|_| {
        let (pg, stripe) = (app.pg.clone(), stripe.clone());
        async move {
            infron_billing::topups::auto::process_pending(&pg, &stripe)
                .await
                .unwrap()
        }
    }))
    .await;
}

#[tokio::test]
async fn alerts_webhook_failures_are_retried_with_backoff() {
    let TenantApp { app, smtp: _smtp } = spawn_tenant_app(&alert_env()).await;
    let (_, _, b) = member(&app, None).await;
    let (url, received) = receiver_failing(2).await;
    // No credits at all: below the threshold as soon as it is set.
    let (s, v) = status_of(b.patch(
        "/api/v1/account/alerts",
        &json!({ "low_balance_threshold": 1, "email": false, "webhook_url": url }),
    ))
    .await;
    assert_eq!(s, 200, "{v}");
    let secret = v["data"]["webhook_secret"].as_str().unwrap().to_string();
    eventually("delivered on the third attempt", || async {
        let (_, v) = status_of(b.get("/api/v1/account/alerts")).await;
        !v["data"]["recent"][0]["deliveries"][0]["delivered_at"].is_null()
    })
    .await;
    let (_, v) = status_of(b.get("/api/v1/account/alerts")).await;
    let d = &v["data"]["recent"][0]["deliveries"][0];
    assert_eq!(d["attempts"], json!(3), "{v}");
    assert_eq!(d["channel"], json!("webhook"));
    assert_eq!(v["data"]["recent"].as_array().unwrap().len(), 1);
    let all = received.all();
    assert_eq!(all.len(), 3);
    // The same event each time, signed each time.
    assert!(all
        .iter()
        .all(|(sig, body)| *body == all[0].1 && verify(&secret, sig, body)));
}
