//! Stripe top-ups end to end: checkout sessions against a fake Stripe API, and webhook events
//! signed the way Stripe signs them (HMAC-SHA-256 over "{t}.{body}", computed here
//! independently of the gateway's verifier).

use futures_util::future::join_all;
use hmac::{Hmac, Mac};
use infron_store::ledger::platform;
use rust_decimal::Decimal;
use serde_json::{json, Value};
use sha2::Sha256;
use uuid::Uuid;

use crate::fake_stripe::FakeStripe;
use crate::helpers::*;

const SECRET_KEY: &str = "sk_test_infron_e2e";
const WHSEC: &str = "whsec_test_current";
/// A second configured secret, as during a rotation.
const WHSEC_NEXT: &str = "whsec_test_next";

async fn stripe_app() -> (TestApp, FakeStripe) {
    stripe_app_with(&[]).await
}

async fn stripe_app_with(extra: &[(&str, String)]) -> (TestApp, FakeStripe) {
    let fake = FakeStripe::start().await;
    let mut env = vec![
        ("STRIPE_SECRET_KEY", SECRET_KEY.to_string()),
        ("STRIPE_API_BASE", fake.base.clone()),
        ("STRIPE_WEBHOOK_SECRETS", format!("{WHSEC}, {WHSEC_NEXT}")),
        (
            "INFRON_CHECKOUT_SUCCESS_URL",
            "https://app.example/credits?session={CHECKOUT_SESSION_ID}".to_string(),
        ),
        (
            "INFRON_CHECKOUT_CANCEL_URL",
            "https://app.example/credits".to_string(),
        ),
    ];
    env.extend_from_slice(extra);
    (spawn_app_with(&env).await, fake)
}

/// A session created through the API, and the ids Stripe would give its payment.
struct Topup {
    session: String,
    payment_intent: String,
    charge: String,
    account: Uuid,
    credits_cents: i64,
    fee_cents: i64,
}

impl Topup {
    fn total(&self) -> i64 {
        self.credits_cents + self.fee_cents
    }
}

async fn post_checkout(app: &TestApp, key: &str, body: &Value) -> reqwest::Response {
    app.client
        .post(format!("{}/api/v1/credits/checkout", app.base))
        .bearer_auth(key)
        .json(body)
        .send()
        .await
        .unwrap()
}

async fn checkout(app: &TestApp, t: &Tenant, amount: Value) -> Topup {
    let resp = post_checkout(app, &t.key, &json!({ "amount": amount })).await;
    assert_eq!(resp.status(), 200);
    let body: Value = resp.json().await.unwrap();
    let row = infron_store::topups::get_session(&app.pg, body["id"].as_str().unwrap())
        .await
        .unwrap()
        .unwrap();
    let suffix = Uuid::new_v4().simple();
    Topup {
        session: row.id,
        payment_intent: format!("pi_test_{suffix}"),
        charge: format!("ch_test_{suffix}"),
        account: t.account,
        credits_cents: row.credits_cents,
        fee_cents: row.fee_cents,
    }
}

fn signature(secret: &str, t: i64, body: &str) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(format!("{t}.{body}").as_bytes());
    let hex: String = mac
        .finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    format!("t={t},v1={hex}")
}

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

fn event(id: &str, kind: &str, object: Value) -> String {
    json!({
        "id": id,
        "object": "event",
        "api_version": "2026-09-30.endive",
        "created": now(),
        "livemode": false,
        "pending_webhooks": 1,
        "request": { "id": null, "idempotency_key": null },
        "type": kind,
        "data": { "object": object },
    })
    .to_string()
}

fn evt() -> String {
    format!("evt_test_{}", Uuid::new_v4().simple())
}

fn session_object(t: &Topup, payment_status: &str) -> Value {
    json!({
        "id": t.session,
        "object": "checkout.session",
        "amount_subtotal": t.total(),
        "amount_total": t.total(),
        "client_reference_id": t.account.to_string(),
        "currency": "usd",
        "livemode": false,
        "metadata": {
            "account_id": t.account.to_string(),
            "credits_cents": t.credits_cents.to_string(),
            "fee_cents": t.fee_cents.to_string(),
        },
        "mode": "payment",
        "payment_intent": t.payment_intent,
        "payment_status": payment_status,
        "status": "complete",
    })
}

fn charge_object(t: &Topup, amount_refunded: i64) -> Value {
    json!({
        "id": t.charge,
        "object": "charge",
        "amount": t.total(),
        "amount_captured": t.total(),
        "amount_refunded": amount_refunded,
        "captured": true,
        "currency": "usd",
        "paid": true,
        "payment_intent": t.payment_intent,
        "refunded": amount_refunded == t.total(),
        "status": "succeeded",
    })
}

fn dispute_object(t: &Topup, dispute: &str, amount: i64, status: &str) -> Value {
    json!({
        "id": dispute,
        "object": "dispute",
        "amount": amount,
        "charge": t.charge,
        "currency": "usd",
        "payment_intent": t.payment_intent,
        "reason": "fraudulent",
        "status": status,
    })
}

async fn deliver_signed(app: &TestApp, body: &str, header: Option<String>) -> reqwest::Response {
    let mut req = app
        .client
        .post(format!("{}/api/v1/stripe/webhook", app.base))
        .header("content-type", "application/json")
        .body(body.to_string());
    if let Some(h) = header {
        req = req.header("Stripe-Signature", h);
    }
    req.send().await.unwrap()
}

/// Delivers an event signed with the current secret; it must be accepted.
async fn deliver(app: &TestApp, body: &str) -> Value {
    let resp = deliver_signed(app, body, Some(signature(WHSEC, now(), body))).await;
    assert_eq!(resp.status(), 200, "{body}");
    resp.json().await.unwrap()
}

async fn book(app: &TestApp, id: Uuid) -> Decimal {
    sqlx::query_scalar("SELECT balance FROM ledger_accounts WHERE id = $1")
        .bind(id)
        .fetch_one(&app.pg)
        .await
        .unwrap()
}

async fn stripe_event_count(app: &TestApp) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM stripe_events")
        .fetch_one(&app.pg)
        .await
        .unwrap()
}

/// Loads the tenant's hot copy, so webhook postings must update it.
async fn load_hot(app: &TestApp, account: Uuid) {
    app.ledger.available(account).await.unwrap();
}

async fn clean(app: &TestApp, account: Uuid) {
    app.ledger_clean().await;
    app.hot_matches_ledger(account).await;
}

/// Creates a session for `amount` USD and delivers its paid completion.
async fn paid_topup(app: &TestApp, t: &Tenant, amount: &str) -> Topup {
    let topup = checkout(app, t, json!(amount)).await;
    deliver(
        app,
        &event(
            &evt(),
            "checkout.session.completed",
            session_object(&topup, "paid"),
        ),
    )
    .await;
    topup
}

#[tokio::test]
async fn stripe_checkout_creates_a_session_for_credits_plus_fee() {
    let (app, fake) =
        stripe_app_with(&[("INFRON_TOPUP_PAYMENT_METHODS", "card,alipay".into())]).await;
    let t = app.tenant("0").await;
    let resp = post_checkout(&app, &t.key, &json!({ "amount": 25 })).await;
    assert_eq!(resp.status(), 200);
    let body: Value = resp.json().await.unwrap();
    let id = body["id"].as_str().unwrap();
    assert!(id.starts_with("cs_test_"), "{body}");
    assert_eq!(
        body["url"],
        json!(format!("https://checkout.stripe.com/c/pay/{id}"))
    );
    assert_eq!(body["credits"], json!(25));
    assert_eq!(body["fee"], json!(1.6));
    assert_eq!(body["total"], json!(26.6));

    let requests = fake.requests();
    assert_eq!(requests.len(), 1);
    let r = &requests[0];
    assert_eq!(r.path, "/v1/checkout/sessions");
    assert_eq!(
        r.authorization.as_deref(),
        Some(&*format!("Bearer {SECRET_KEY}"))
    );
    assert!(r.idempotency_key.is_some());
    assert!(r.stripe_version.is_some());
    assert_eq!(
        r.content_type.as_deref(),
        Some("application/x-www-form-urlencoded")
    );
    let account = t.account.to_string();
    for (key, value) in [
        ("mode", "payment"),
        ("currency", "usd"),
        ("client_reference_id", account.as_str()),
        ("line_items[0][price_data][currency]", "usd"),
        ("line_items[0][price_data][unit_amount]", "2500"),
        ("line_items[0][quantity]", "1"),
        ("line_items[1][price_data][currency]", "usd"),
        ("line_items[1][price_data][unit_amount]", "160"),
        (
            "line_items[1][price_data][product_data][name]",
            "Top-up fee",
        ),
        ("line_items[1][quantity]", "1"),
        ("metadata[account_id]", account.as_str()),
        ("metadata[credits_cents]", "2500"),
        ("metadata[fee_cents]", "160"),
        (
            "payment_intent_data[metadata][account_id]",
            account.as_str(),
        ),
        (
            "success_url",
            "https://app.example/credits?session={CHECKOUT_SESSION_ID}",
        ),
        ("cancel_url", "https://app.example/credits"),
    ] {
        assert_eq!(r.field(key), Some(value), "{key} in {:?}", r.form);
    }
    assert_eq!(
        r.list("allowed_payment_method_types"),
        vec!["card", "alipay"]
    );

    let row = infron_store::topups::get_session(&app.pg, id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(row.account_id, t.account);
    assert_eq!(
        (row.credits_cents, row.fee_cents, row.total_cents),
        (2500, 160, 2660)
    );
    assert_eq!(row.status, "open");
    assert_eq!(row.payment_intent, None);
    assert_eq!(row.credited_at, None);

    // A decimal string is read exactly; $100.00 costs $105.35.
    let resp = post_checkout(&app, &t.key, &json!({ "amount": "100.00" })).await;
    assert_eq!(resp.status(), 200);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(
        (&body["credits"], &body["fee"], &body["total"]),
        (&json!(100), &json!(5.35), &json!(105.35))
    );
    let r = &fake.requests()[1];
    assert_eq!(
        r.field("line_items[0][price_data][unit_amount]"),
        Some("10000")
    );
    assert_eq!(
        r.field("line_items[1][price_data][unit_amount]"),
        Some("535")
    );
    // Nothing is credited before Stripe says the payment succeeded.
    assert_eq!(app.balance(t.account).await, Decimal::ZERO);
    app.ledger_clean().await;
}

#[tokio::test]
async fn stripe_checkout_rejects_bad_amounts_naming_the_field() {
    let (app, fake) = stripe_app_with(&[
        ("INFRON_TOPUP_MIN_USD", "10".into()),
        ("INFRON_TOPUP_MAX_USD", "500".into()),
    ])
    .await;
    let t = app.tenant("0").await;
    for amount in [
        json!(9.99),
        json!(500.01),
        json!(25.001),
        json!("12.345"),
        json!(-10),
        json!(0),
        json!("abc"),
        json!(null),
        json!(true),
        json!({"usd": 10}),
    ] {
        let resp = post_checkout(&app, &t.key, &json!({ "amount": amount })).await;
        assert_eq!(resp.status(), 400, "{amount}");
        let body: Value = resp.json().await.unwrap();
        assert_eq!(body["error"]["param"], "amount", "{amount}: {body}");
        assert_eq!(body["error"]["code"], 400);
    }
    let resp = post_checkout(&app, &t.key, &json!({ "credits": 10 })).await;
    assert_eq!(resp.status(), 400);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["error"]["param"], "amount");
    // The limits are inclusive.
    for ok in [json!(10), json!("500")] {
        assert_eq!(
            post_checkout(&app, &t.key, &json!({ "amount": ok }))
                .await
                .status(),
            200
        );
    }
    assert_eq!(fake.requests().len(), 2);
    // No key, no checkout.
    let resp = app
        .client
        .post(format!("{}/api/v1/credits/checkout", app.base))
        .json(&json!({ "amount": 20 }))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
}

#[tokio::test]
async fn stripe_failure_to_create_a_session_is_503_and_stores_nothing() {
    let (app, fake) = stripe_app().await;
    let t = app.tenant("0").await;
    fake.fail_next(
        400,
        json!({"error": {"type": "invalid_request_error", "message": "bad payment method"}}),
    );
    let resp = post_checkout(&app, &t.key, &json!({ "amount": 20 })).await;
    assert_eq!(resp.status(), 503);
    let body: Value = resp.json().await.unwrap();
    assert!(!body.to_string().contains(SECRET_KEY));
    let sessions: i64 = sqlx::query_scalar("SELECT count(*) FROM topup_sessions")
        .fetch_one(&app.pg)
        .await
        .unwrap();
    assert_eq!(sessions, 0);
}

#[tokio::test]
async fn stripe_endpoints_answer_503_when_unconfigured() {
    let app = spawn_app().await;
    let t = app.tenant("0").await;
    let resp = post_checkout(&app, &t.key, &json!({ "amount": 20 })).await;
    assert_eq!(resp.status(), 503);
    let body: Value = resp.json().await.unwrap();
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("STRIPE_SECRET_KEY"),
        "{body}"
    );
    let body = event(&evt(), "customer.created", json!({}));
    let resp = deliver_signed(&app, &body, Some(signature(WHSEC, now(), &body))).await;
    assert_eq!(resp.status(), 503);
}

#[tokio::test]
async fn stripe_webhook_signatures_are_checked_before_anything_changes() {
    let (app, _fake) = stripe_app().await;
    let t = app.tenant("0").await;
    let topup = checkout(&app, &t, json!(25)).await;
    let body = event(
        &evt(),
        "checkout.session.completed",
        session_object(&topup, "paid"),
    );
    let ts = now();
    let good = signature(WHSEC, ts, &body);
    let good_v1 = good.split_once(",v1=").unwrap().1.to_string();
    let tampered = body.replace("\"paid\"", "\"paid\" ");
    let rejected = [
        ("no header", body.clone(), None),
        (
            "unknown secret",
            body.clone(),
            Some(signature("whsec_someone_else", ts, &body)),
        ),
        (
            "stale timestamp",
            body.clone(),
            Some(signature(WHSEC, ts - 301, &body)),
        ),
        (
            "timestamp in the future",
            body.clone(),
            Some(signature(WHSEC, ts + 301, &body)),
        ),
        (
            "timestamp swapped after signing",
            body.clone(),
            Some(format!("t={},v1={good_v1}", ts + 1)),
        ),
        ("tampered body", tampered, Some(good.clone())),
        ("no v1", body.clone(), Some(format!("t={ts},v0={good_v1}"))),
        ("garbage header", body.clone(), Some("nonsense".to_string())),
    ];
    for (case, payload, header) in rejected {
        let resp = deliver_signed(&app, &payload, header).await;
        assert_eq!(resp.status(), 400, "{case}");
        let err: Value = resp.json().await.unwrap();
        assert_eq!(err["error"]["param"], "Stripe-Signature", "{case}: {err}");
    }
    assert_eq!(stripe_event_count(&app).await, 0);
    assert_eq!(app.balance(t.account).await, Decimal::ZERO);

    // Several v1 values, one of them right (Stripe sends one per active secret).
    let wrong = signature("whsec_retired", ts, &body);
    let wrong_v1 = wrong.split_once(",v1=").unwrap().1;
    let header = format!("t={ts},v1={wrong_v1},v1={good_v1}");
    let resp = deliver_signed(&app, &body, Some(header)).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(app.balance(t.account).await, dec("25"));

    // The second configured secret (after a rotation) is accepted too.
    let other = checkout(&app, &t, json!(10)).await;
    let body = event(
        &evt(),
        "checkout.session.completed",
        session_object(&other, "paid"),
    );
    let resp = deliver_signed(&app, &body, Some(signature(WHSEC_NEXT, now(), &body))).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(app.balance(t.account).await, dec("35"));
    clean(&app, t.account).await;
}

#[tokio::test]
async fn stripe_payment_is_credited_once_however_often_it_arrives() {
    let (app, _fake) = stripe_app().await;
    let t = app.tenant("0").await;
    load_hot(&app, t.account).await;
    let topup = checkout(&app, &t, json!(25)).await;
    let completed = event(
        &evt(),
        "checkout.session.completed",
        session_object(&topup, "paid"),
    );
    let first = deliver(&app, &completed).await;
    assert_eq!(first["posted"], json!([format!("topup:{}", topup.session)]));
    // The same delivery again (Stripe retries), then the same payment in other events.
    let again = deliver(&app, &completed).await;
    assert_eq!(again["duplicate"], true);
    for kind in [
        "checkout.session.completed",
        "checkout.session.async_payment_succeeded",
    ] {
        let other = deliver(&app, &event(&evt(), kind, session_object(&topup, "paid"))).await;
        assert_eq!(other["duplicate"], false);
        assert_eq!(other["posted"], json!([]));
    }
    assert_eq!(app.balance(t.account).await, dec("25"));
    assert_eq!(book(&app, platform::STRIPE_CLEARING).await, dec("26.6"));
    assert_eq!(book(&app, platform::TOPUP_FEE_REVENUE).await, dec("1.6"));
    let row = infron_store::topups::get_session(&app.pg, &topup.session)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(row.status, "paid");
    assert_eq!(row.payment_intent.as_deref(), Some(&*topup.payment_intent));
    assert!(row.credited_at.is_some());
    clean(&app, t.account).await;
    // The credits are spendable.
    assert_eq!(
        app.post_chat(&t.key, &chat_body("test/chat", None))
            .await
            .status(),
        200
    );
    app.settled().await;
    clean(&app, t.account).await;
}

#[tokio::test]
async fn stripe_async_payments_credit_only_when_they_succeed() {
    let (app, _fake) = stripe_app().await;
    let t = app.tenant("0").await;
    let ok = checkout(&app, &t, json!(20)).await;
    deliver(
        &app,
        &event(
            &evt(),
            "checkout.session.completed",
            session_object(&ok, "unpaid"),
        ),
    )
    .await;
    assert_eq!(app.balance(t.account).await, Decimal::ZERO);
    deliver(
        &app,
        &event(
            &evt(),
            "checkout.session.async_payment_succeeded",
            session_object(&ok, "paid"),
        ),
    )
    .await;
    assert_eq!(app.balance(t.account).await, dec("20"));

    let failed = checkout(&app, &t, json!(30)).await;
    deliver(
        &app,
        &event(
            &evt(),
            "checkout.session.completed",
            session_object(&failed, "unpaid"),
        ),
    )
    .await;
    deliver(
        &app,
        &event(
            &evt(),
            "checkout.session.async_payment_failed",
            session_object(&failed, "unpaid"),
        ),
    )
    .await;
    let expired = checkout(&app, &t, json!(40)).await;
    deliver(
        &app,
        &event(
            &evt(),
            "checkout.session.expired",
            session_object(&expired, "unpaid"),
        ),
    )
    .await;
    assert_eq!(app.balance(t.account).await, dec("20"));
    for (topup, status) in [(&failed, "failed"), (&expired, "expired")] {
        let row = infron_store::topups::get_session(&app.pg, &topup.session)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(row.status, status);
    }
    clean(&app, t.account).await;
}

#[tokio::test]
async fn stripe_refunds_are_cumulative_and_take_credits_before_the_fee() {
    let (app, _fake) = stripe_app().await;
    let t = app.tenant("0").await;
    load_hot(&app, t.account).await;
    let topup = paid_topup(&app, &t, "25").await;
    let refund =
        |cumulative: i64| event(&evt(), "charge.refunded", charge_object(&topup, cumulative));

    let r = deliver(&app, &refund(1000)).await;
    assert_eq!(
        r["posted"],
        json!([format!("refund:{}:1000", topup.charge)])
    );
    assert_eq!(app.balance(t.account).await, dec("15"));
    // Another event reporting the same cumulative amount changes nothing.
    assert_eq!(deliver(&app, &refund(1000)).await["posted"], json!([]));
    assert_eq!(app.balance(t.account).await, dec("15"));
    deliver(&app, &refund(2000)).await;
    assert_eq!(app.balance(t.account).await, dec("5"));
    // An older figure arriving late is not a new refund.
    assert_eq!(deliver(&app, &refund(1500)).await["posted"], json!([]));
    assert_eq!(app.balance(t.account).await, dec("5"));
    assert_eq!(book(&app, platform::TOPUP_FEE_REVENUE).await, dec("1.6"));
    // Refunding the rest takes the last credits, then the fee.
    deliver(&app, &refund(2600)).await;
    assert_eq!(app.balance(t.account).await, Decimal::ZERO);
    assert_eq!(book(&app, platform::TOPUP_FEE_REVENUE).await, dec("0.6"));
    deliver(&app, &refund(2660)).await;
    assert_eq!(book(&app, platform::TOPUP_FEE_REVENUE).await, Decimal::ZERO);
    assert_eq!(book(&app, platform::STRIPE_CLEARING).await, Decimal::ZERO);
    assert_eq!(app.balance(t.account).await, Decimal::ZERO);
    let refunds: Vec<String> = sqlx::query_scalar(
        "SELECT external_id FROM ledger_transactions WHERE kind = 'refund' ORDER BY created_at",
    )
    .fetch_all(&app.pg)
    .await
    .unwrap();
    assert_eq!(
        refunds,
        [1000, 2000, 2600, 2660].map(|c| format!("refund:{}:{c}", topup.charge))
    );
    clean(&app, t.account).await;
}

#[tokio::test]
async fn stripe_refund_before_completion_is_applied_when_the_payment_completes() {
    let (app, _fake) = stripe_app().await;
    let t = app.tenant("0").await;
    load_hot(&app, t.account).await;
    let topup = checkout(&app, &t, json!(25)).await;
    let early = deliver(
        &app,
        &event(&evt(), "charge.refunded", charge_object(&topup, 1000)),
    )
    .await;
    assert_eq!(early["posted"], json!([]));
    let dispute = format!("dp_test_{}", Uuid::new_v4().simple());
    deliver(
        &app,
        &event(
            &evt(),
            "charge.dispute.funds_withdrawn",
            dispute_object(&topup, &dispute, 500, "needs_response"),
        ),
    )
    .await;
    assert_eq!(app.balance(t.account).await, Decimal::ZERO);

    let done = deliver(
        &app,
        &event(
            &evt(),
            "checkout.session.completed",
            session_object(&topup, "paid"),
        ),
    )
    .await;
    assert_eq!(
        done["posted"],
        json!([
            format!("topup:{}", topup.session),
            format!("refund:{}:1000", topup.charge),
            format!("dispute:{dispute}:withdrawn"),
        ])
    );
    assert_eq!(app.balance(t.account).await, dec("10"));
    clean(&app, t.account).await;
}

#[tokio::test]
async fn stripe_disputes_withdraw_and_reinstate_in_either_order() {
    let (app, _fake) = stripe_app().await;
    let t = app.tenant("0").await;
    load_hot(&app, t.account).await;
    let topup = paid_topup(&app, &t, "25").await;
    let dispute = format!("dp_test_{}", Uuid::new_v4().simple());
    let withdrawn = event(
        &evt(),
        "charge.dispute.funds_withdrawn",
        dispute_object(&topup, &dispute, topup.total(), "needs_response"),
    );
    deliver(&app, &withdrawn).await;
    assert_eq!(app.balance(t.account).await, Decimal::ZERO);
    assert_eq!(book(&app, platform::TOPUP_FEE_REVENUE).await, Decimal::ZERO);
    // A replay and a second event for the same withdrawal change nothing.
    assert_eq!(deliver(&app, &withdrawn).await["duplicate"], true);
    deliver(
        &app,
        &event(
            &evt(),
            "charge.dispute.funds_withdrawn",
            dispute_object(&topup, &dispute, topup.total(), "under_review"),
        ),
    )
    .await;
    assert_eq!(app.balance(t.account).await, Decimal::ZERO);
    deliver(
        &app,
        &event(
            &evt(),
            "charge.dispute.funds_reinstated",
            dispute_object(&topup, &dispute, topup.total(), "won"),
        ),
    )
    .await;
    assert_eq!(app.balance(t.account).await, dec("25"));
    assert_eq!(book(&app, platform::TOPUP_FEE_REVENUE).await, dec("1.6"));
    clean(&app, t.account).await;

    // Reinstatement delivered before the withdrawal: nothing until both are known.
    let second = paid_topup(&app, &t, "10").await;
    let dispute = format!("dp_test_{}", Uuid::new_v4().simple());
    let early = deliver(
        &app,
        &event(
            &evt(),
            "charge.dispute.funds_reinstated",
            dispute_object(&second, &dispute, 600, "won"),
        ),
    )
    .await;
    assert_eq!(early["posted"], json!([]));
    let late = deliver(
        &app,
        &event(
            &evt(),
            "charge.dispute.funds_withdrawn",
            dispute_object(&second, &dispute, 600, "needs_response"),
        ),
    )
    .await;
    assert_eq!(
        late["posted"],
        json!([
            format!("dispute:{dispute}:withdrawn"),
            format!("dispute:{dispute}:reinstated"),
        ])
    );
    assert_eq!(app.balance(t.account).await, dec("35"));
    clean(&app, t.account).await;
}

#[tokio::test]
async fn stripe_reversal_below_zero_refuses_requests_until_topped_up() {
    let (app, _fake) = stripe_app().await;
    let t = app.tenant("0").await;
    let topup = paid_topup(&app, &t, "5").await;
    let spend = chat_body(
        "test/chat",
        Some(json!({"prompt_tokens": 1000, "completion_tokens": 1000})),
    );
    assert_eq!(app.post_chat(&t.key, &spend).await.status(), 200);
    app.settled().await;
    let spent = dec("5") - app.balance(t.account).await;
    assert!(spent > Decimal::ZERO);

    // The whole payment is refunded after some credits were used: the tenant owes them.
    deliver(
        &app,
        &event(
            &evt(),
            "charge.refunded",
            charge_object(&topup, topup.total()),
        ),
    )
    .await;
    assert_eq!(app.balance(t.account).await, -spent);
    let refused = app.post_chat(&t.key, &chat_body("test/chat", None)).await;
    assert_eq!(refused.status(), 402);
    let body: Value = refused.json().await.unwrap();
    assert_eq!(body["error"]["code"], 402);
    // Every key of the account is refused.
    let (other_key, _) = app.new_key(t.account).await;
    assert_eq!(
        app.post_chat(&other_key, &chat_body("test/chat", None))
            .await
            .status(),
        402
    );
    clean(&app, t.account).await;

    // A new top-up covers the debt and requests go through again.
    paid_topup(&app, &t, "5").await;
    assert_eq!(app.balance(t.account).await, dec("5") - spent);
    assert_eq!(
        app.post_chat(&t.key, &chat_body("test/chat", None))
            .await
            .status(),
        200
    );
    app.settled().await;
    clean(&app, t.account).await;
}

#[tokio::test]
async fn stripe_unknown_events_and_foreign_sessions_are_acknowledged_and_ignored() {
    let (app, _fake) = stripe_app().await;
    let t = app.tenant("0").await;
    let unknown = deliver(
        &app,
        &event(&evt(), "customer.created", json!({"id": "cus_1"})),
    )
    .await;
    assert_eq!(unknown["ignored"], true);
    // A session of another product on the same Stripe account.
    let foreign = deliver(
        &app,
        &event(
            &evt(),
            "checkout.session.completed",
            json!({"id": "cs_test_foreign", "object": "checkout.session", "amount_total": 999,
                   "currency": "usd", "metadata": {}, "payment_intent": "pi_test_foreign",
                   "payment_status": "paid"}),
        ),
    )
    .await;
    assert_eq!(foreign["ignored"], true);
    // A refund of a payment that is not ours.
    deliver(
        &app,
        &event(
            &evt(),
            "charge.refunded",
            json!({"id": "ch_test_foreign", "amount": 999, "amount_refunded": 999,
                   "currency": "usd", "payment_intent": "pi_test_foreign"}),
        ),
    )
    .await;
    // One of ours whose row was lost after Stripe created it: adopted from its metadata.
    let lost = Topup {
        session: format!("cs_test_{}", Uuid::new_v4().simple()),
        payment_intent: format!("pi_test_{}", Uuid::new_v4().simple()),
        charge: String::new(),
        account: t.account,
        credits_cents: 1000,
        fee_cents: 85,
    };
    let adopted = deliver(
        &app,
        &event(
            &evt(),
            "checkout.session.completed",
            session_object(&lost, "paid"),
        ),
    )
    .await;
    assert_eq!(
        adopted["posted"],
        json!([format!("topup:{}", lost.session)])
    );
    assert_eq!(app.balance(t.account).await, dec("10"));
    clean(&app, t.account).await;
}

/// A payment's events (completion, refunds, a dispute and its reinstatement, duplicates)
/// delivered concurrently in shuffled orders always end in the same ledger state.
#[tokio::test]
async fn stripe_shuffled_concurrent_events_end_in_the_same_state() {
    let (app, _fake) = stripe_app().await;
    let t = app.tenant("0").await;
    load_hot(&app, t.account).await;
    let mut seed: u64 = 0x2545_f491_4f6c_dd1d;
    let rounds: i64 = 6;
    for _ in 0..rounds {
        let topup = checkout(&app, &t, json!(25)).await;
        let dispute = format!("dp_test_{}", Uuid::new_v4().simple());
        let completed = event(
            &evt(),
            "checkout.session.completed",
            session_object(&topup, "paid"),
        );
        let refund_small = event(&evt(), "charge.refunded", charge_object(&topup, 700));
        let mut events = [
            completed.clone(),
            completed,
            event(&evt(), "charge.refunded", charge_object(&topup, 1800)),
            refund_small.clone(),
            refund_small,
            event(
                &evt(),
                "charge.dispute.funds_withdrawn",
                dispute_object(&topup, &dispute, topup.total(), "needs_response"),
            ),
            event(
                &evt(),
                "charge.dispute.funds_reinstated",
                dispute_object(&topup, &dispute, topup.total(), "won"),
            ),
            event(
                &evt(),
                "checkout.session.async_payment_succeeded",
                session_object(&topup, "paid"),
            ),
        ];
        for i in (1..events.len()).rev() {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            events.swap(i, usize::try_from(seed % (i as u64 + 1)).unwrap());
        }
        join_all(events.iter().map(|e| deliver(&app, e))).await;
    }
    // Each payment: $25 credited, $18 refunded (credits first), the dispute undone.
    assert_eq!(app.balance(t.account).await, Decimal::from(7 * rounds));
    assert_eq!(
        book(&app, platform::TOPUP_FEE_REVENUE).await,
        dec("1.6") * Decimal::from(rounds)
    );
    assert_eq!(
        book(&app, platform::STRIPE_CLEARING).await,
        dec("8.6") * Decimal::from(rounds)
    );
    clean(&app, t.account).await;
}

/// Requests, abandoned streams, provider failures, duplicate and reordered webhook deliveries,
/// cumulative refunds, disputes and expiry runs, all interleaved at random; afterwards every
/// ledger invariant holds and the hot balances agree with Postgres.
#[tokio::test]
async fn stripe_random_interleavings_with_traffic_refunds_and_expiry_keep_the_ledger_consistent() {
    use futures_util::StreamExt;
    use rand::{Rng, SeedableRng};

    let (app, _fake) = stripe_app().await;
    let tenants = [app.tenant("0.05").await, app.tenant("0.05").await];
    for t in &tenants {
        load_hot(&app, t.account).await;
    }
    let mut topups = Vec::new();
    for i in 0..4 {
        topups.push(checkout(&app, &tenants[i % 2], json!("5")).await);
    }
    let seed: u64 = rand::random();
    println!("seed {seed}");
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let mut completed = std::collections::HashSet::new();
    let mut tasks = Vec::new();
    for i in 0..80 {
        let t = &tenants[rng.gen_range(0..2)];
        let topup = &topups[rng.gen_range(0..topups.len())];
        let body = match rng.gen_range(0..9) {
            0 | 1 => Some((
                "chat",
                chat_body(
                    "test/chat",
                    Some(
                        json!({"prompt_tokens": rng.gen_range(1..500), "completion_tokens": rng.gen_range(1..500)}),
                    ),
                ),
            )),
            2 => {
                let mut b = chat_body(
                    "test/chat",
                    Some(json!({"reply": "a b c d e f g h", "chunk_delay_ms": 15})),
                );
                b["stream"] = json!(true);
                Some(("abandon", b))
            }
            3 => Some(("chat", chat_body("test/chat", Some(json!({"status": 503}))))),
            4 => {
                completed.insert(topup.session.clone());
                let kind = if rng.gen_bool(0.5) {
                    "checkout.session.completed"
                } else {
                    "checkout.session.async_payment_succeeded"
                };
                Some((
                    "webhook",
                    json!(event(&evt(), kind, session_object(topup, "paid"))),
                ))
            }
            5 => {
                let refunded = rng.gen_range(1..=topup.total());
                Some((
                    "webhook",
                    json!(event(
                        &evt(),
                        "charge.refunded",
                        charge_object(topup, refunded)
                    )),
                ))
            }
            6 => {
                let (kind, status) = if rng.gen_bool(0.5) {
                    ("charge.dispute.funds_withdrawn", "needs_response")
                } else {
                    ("charge.dispute.funds_reinstated", "won")
                };
                let dispute = format!("dp_{}", topup.session);
                Some((
                    "webhook",
                    json!(event(
                        &evt(),
                        kind,
                        dispute_object(topup, &dispute, topup.total() / 2, status)
                    )),
                ))
            }
            7 => None, // expiry
            _ => {
                if i % 20 == 0 {
                    sqlx::query("UPDATE credit_lots SET expires_at = now()")
                        .execute(&app.pg)
                        .await
                        .unwrap();
                }
                None
            }
        };
        let (client, base, key) = (app.client.clone(), app.base.clone(), t.key.clone());
        let (pg, hot) = (app.pg.clone(), app.hot.clone());
        tasks.push(tokio::spawn(async move {
            match body {
                Some(("chat", b)) => {
                    let _ = client
                        .post(format!("{base}/v1/chat/completions"))
                        .bearer_auth(key)
                        .json(&b)
                        .send()
                        .await;
                }
                Some(("abandon", b)) => {
                    if let Ok(res) = client
                        .post(format!("{base}/v1/chat/completions"))
                        .bearer_auth(key)
                        .json(&b)
                        .send()
                        .await
                    {
                        let _ = res.bytes_stream().next().await;
                    }
                }
                Some((_, Value::String(payload))) => {
                    let res = client
                        .post(format!("{base}/api/v1/stripe/webhook"))
                        .header("content-type", "application/json")
                        .header("Stripe-Signature", signature(WHSEC, now(), &payload))
                        .body(payload.clone())
                        .send()
                        .await
                        .unwrap();
                    assert_eq!(res.status(), 200, "{payload}");
                }
                _ => {
                    infron_billing::expiry::expire_due(&pg, &hot, chrono::Utc::now())
                        .await
                        .unwrap();
                }
            }
        }));
        if rng.gen_bool(0.3) {
            tokio::time::sleep(std::time::Duration::from_millis(rng.gen_range(0..15))).await;
        }
    }
    for t in join_all(tasks).await {
        t.unwrap();
    }
    tokio::time::sleep(std::time::Duration::from_millis(400)).await;
    app.settled().await;
    app.ledger_clean().await;
    for t in &tenants {
        app.hot_matches_ledger(t.account).await;
    }
    // Every completed session was credited exactly once.
    let credited: i64 =
        sqlx::query_scalar("SELECT count(*) FROM ledger_transactions WHERE kind = 'topup'")
            .fetch_one(&app.pg)
            .await
            .unwrap();
    assert_eq!(credited, completed.len() as i64, "seed {seed}");
}
