//! The dashboard in a real browser: headless Debian Chromium driven over WebDriver against the
//! real server (port 0, its own Postgres database and Redis prefix), the SMTP sink and the fake
//! Stripe. One browser session walks the flows a person would; every page is scanned with
//! axe-core (from `web/node_modules`) and photographed at desktop and phone width under
//! `$CARGO_TARGET_TMPDIR/dashboard-screenshots` (not committed).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

#[path = "../e2e/fake_stripe.rs"]
#[allow(dead_code)]
mod fake_stripe;
#[path = "../e2e/helpers.rs"]
#[allow(dead_code)]
mod helpers;
#[path = "../e2e/smtp_sink.rs"]
#[allow(dead_code)]
mod smtp_sink;
#[path = "../e2e/tenant_helpers.rs"]
#[allow(dead_code)]
mod tenant_helpers;
mod webdriver;

use std::path::PathBuf;

use hmac::{Hmac, Mac};
use serde_json::json;
use sha2::Sha256;
use uuid::Uuid;

use fake_stripe::FakeStripe;
use helpers::*;
use tenant_helpers::{spawn_tenant_app, PASSWORD};
use webdriver::{Browser, Driver};

const WHSEC: &str = "whsec_browser_test";

fn shots_dir() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("dashboard-screenshots");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn axe_source() -> String {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../web/node_modules/axe-core/axe.min.js");
    std::fs::read_to_string(&path).unwrap_or_else(|_| {
        panic!(
            "{} is missing: run `npm ci --prefix web` (scripts/test.sh does)",
            path.display()
        )
    })
}

/// Checks the page as a person would meet it: no serious or critical axe-core violation, no
/// sideways scrolling at 390 px, and a screenshot at phone and desktop width.
async fn inspect(b: &Browser, axe: &str, name: &str) {
    let script = format!(
        "{axe}\n;const done = arguments[arguments.length - 1];\
         axe.run(document, {{ resultTypes: ['violations'] }}).then(r => done(r.violations\
           .filter(v => v.impact === 'serious' || v.impact === 'critical')\
           .map(v => v.id + ': ' + v.help + ' at ' + v.nodes.map(n => n.target.join(' ')).join(', '))))\
           .catch(e => done(['axe failed: ' + e]));"
    );
    let violations = b.run_async(&script, json!([])).await;
    assert_eq!(
        violations,
        json!([]),
        "accessibility violations on {name} ({})",
        b.url().await
    );
    let dir = shots_dir();
    b.resize(390, 844).await;
    let overflow = b
        .run(
            "return document.documentElement.scrollWidth - document.documentElement.clientWidth;",
            json!([]),
        )
        .await;
    b.screenshot(&dir.join(format!("{name}-phone.png"))).await;
    b.resize(1280, 900).await;
    b.screenshot(&dir.join(format!("{name}-desktop.png"))).await;
    assert!(
        overflow.as_i64().unwrap_or(0) <= 0,
        "{name} scrolls sideways at 390 px by {overflow} px"
    );
}

fn sign(body: &str) -> String {
    let t = chrono::Utc::now().timestamp();
    let mut mac = Hmac::<Sha256>::new_from_slice(WHSEC.as_bytes()).unwrap();
    mac.update(format!("{t}.{body}").as_bytes());
    let hex: String = mac
        .finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    format!("t={t},v1={hex}")
}

/// What Stripe sends when the Checkout Session `session` is paid.
async fn complete_payment(app: &TestApp, session: &str) {
    let row = infron_store::topups::get_session(&app.pg, session)
        .await
        .unwrap()
        .expect("the dashboard recorded the checkout session");
    let total = row.credits_cents + row.fee_cents;
    let body = json!({
        "id": format!("evt_test_{}", Uuid::new_v4().simple()),
        "object": "event",
        "api_version": "2026-09-30.endive",
        "created": chrono::Utc::now().timestamp(),
        "livemode": false,
        "pending_webhooks": 1,
        "request": { "id": null, "idempotency_key": null },
        "type": "checkout.session.completed",
        "data": { "object": {
            "id": session,
            "object": "checkout.session",
            "amount_subtotal": total,
            "amount_total": total,
            "client_reference_id": row.account_id.to_string(),
            "currency": "usd",
            "livemode": false,
            "metadata": {
                "account_id": row.account_id.to_string(),
                "credits_cents": row.credits_cents.to_string(),
                "fee_cents": row.fee_cents.to_string(),
            },
            "mode": "payment",
            "payment_intent": format!("pi_test_{}", Uuid::new_v4().simple()),
            "payment_status": "paid",
            "status": "complete",
        }},
    })
    .to_string();
    let r = app
        .client
        .post(format!("{}/api/v1/stripe/webhook", app.base))
        .header("content-type", "application/json")
        .header("Stripe-Signature", sign(&body))
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
}

async fn sign_in(b: &Browser, base: &str, email: &str) {
    b.goto(&format!("{base}/sign-in")).await;
    b.fill("#email", email).await;
    b.fill("#password", PASSWORD).await;
    b.click("form[action='/sign-in'] button[type=submit]").await;
    b.find("nav.main a[href='/keys']").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn dashboard_flows_in_a_real_browser() {
    let stripe = FakeStripe::start().await;
    let t = spawn_tenant_app(&[
        ("STRIPE_SECRET_KEY", "sk_test_browser".to_string()),
        ("STRIPE_API_BASE", stripe.base.clone()),
        ("STRIPE_WEBHOOK_SECRETS", WHSEC.to_string()),
        (
            "INFRON_CHECKOUT_SUCCESS_URL",
            "http://127.0.0.1/credits?session={CHECKOUT_SESSION_ID}".to_string(),
        ),
        (
            "INFRON_CHECKOUT_CANCEL_URL",
            "http://127.0.0.1/credits?cancelled".to_string(),
        ),
    ])
    .await;
    let app = &t.app;
    let base = app.base.clone();
    let axe = axe_source();
    let driver = Driver::start().await;
    let b = driver.browser().await;

    // The pages carry the strict policy, and the bundled scripts are served from our origin.
    let r = app
        .client
        .get(format!("{base}/sign-in"))
        .send()
        .await
        .unwrap();
    let csp = r.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(csp.contains("script-src 'self'"), "{csp}");
    assert!(!csp.contains("unsafe-inline"), "{csp}");
    let htmx = app
        .client
        .get(format!("{base}/assets/htmx.min.js"))
        .send()
        .await
        .unwrap();
    assert_eq!(htmx.status(), 200, "htmx is bundled into the binary");

    // Flow 1: sign up, verify through the emailed link, sign in.
    let email = format!("owner{}@example.com", Uuid::new_v4().simple());
    b.goto(&format!("{base}/sign-up")).await;
    inspect(&b, &axe, "sign-up").await;
    b.fill("#email", &email).await;
    b.fill("#password", PASSWORD).await;
    b.click("form[action='/sign-up'] button[type=submit]").await;
    b.wait_for_text("We sent a link").await;
    let link = t.smtp.link(&email, "/verify-email").await;
    assert!(link.starts_with(&base), "{link}");
    b.goto(&link).await;
    b.click("form[action='/verify-email'] button[type=submit]")
        .await;
    b.wait_for_text("Your address is confirmed").await;
    b.goto(&format!("{base}/sign-in")).await;
    inspect(&b, &axe, "sign-in").await;
    sign_in(&b, &base, &email).await;
    assert!(b.url().await.ends_with("/keys"));
    b.wait_for_text("No keys yet").await;

    // Flow 2: buy credits. The fee and total show before paying; the fake Stripe makes the
    // session, the signed webhook credits it, and the page's balance changes.
    b.goto(&format!("{base}/credits")).await;
    assert_eq!(b.text("#balance").await, "$0.00");
    inspect(&b, &axe, "credits").await;
    b.fill("#amount", "20").await;
    // htmx shows the quote as the amount is typed.
    b.wait_for_text("Total charged").await;
    assert!(
        b.text("#quote").await.contains("$21.35"),
        "{}",
        b.text("#quote").await
    );
    b.click("form[action='/credits/review'] button[type=submit]")
        .await;
    // The review page's own total (the credits page, still shown right after the click, has a
    // button with the same words as the review page's heading).
    assert_eq!(b.wait_for_element("#total").await, "$21.35");
    let review = b.wait_for_text("Review the payment").await;
    assert!(
        review.contains("$20.00") && review.contains("$1.35"),
        "{review}"
    );
    assert_eq!(b.text("#total").await, "$21.35");
    inspect(&b, &axe, "credits-review").await;
    b.click("form[action='/credits/checkout'] button[type=submit]")
        .await;
    // The browser was sent to Stripe Checkout (unreachable here: the fake's URL).
    let mut session = String::new();
    for _ in 0..400 {
        let url = b.url().await;
        if let Some(id) = url.split("/c/pay/").nth(1) {
            session = id.to_string();
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(session.starts_with("cs_test_"), "went to {}", b.url().await);
    let sent = stripe.requests();
    assert_eq!(sent.len(), 1);
    complete_payment(app, &session).await;
    b.goto(&format!("{base}/credits?session={session}")).await;
    b.wait_for_text("of credits were added").await;
    assert_eq!(b.text("#balance").await, "$20.00");
    assert!(b.text("body").await.contains("Top-up (Stripe)"));

    // Flow 1 continued: create a key, copy it, call the API, find the request on Logs.
    b.goto(&format!("{base}/keys")).await;
    inspect(&b, &axe, "keys-empty").await;
    b.fill("#key-name", "browser key").await;
    b.click("form[action='/keys'] button[type=submit]").await;
    b.find("#new-key-secret").await;
    let secret = b.text("#new-key-secret").await;
    assert!(secret.starts_with("sk-inf-"), "{secret}");
    // The copy button needs JavaScript: it is there only when our script ran under the CSP.
    b.click("button[data-copy='new-key-secret']").await;
    inspect(&b, &axe, "keys-created").await;
    b.goto(&format!("{base}/keys")).await;
    assert!(
        !b.text("body").await.contains(&secret),
        "the secret is shown only once"
    );
    let r = app.post_chat(&secret, &chat_body("test/chat", None)).await;
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    app.settled().await;
    b.goto(&format!("{base}/logs")).await;
    let logs = b.wait_for_text("test/chat").await;
    assert!(logs.contains("browser key"), "{logs}");
    inspect(&b, &axe, "logs").await;
    b.click("#log-table tbody a").await;
    b.wait_for_text("Prompt tokens").await;
    inspect(&b, &axe, "log-detail").await;
    b.goto(&format!("{base}/activity")).await;
    b.wait_for_text("test/chat").await;
    // uPlot (bundled from npm) drew the chart under the CSP.
    b.find("#activity-chart canvas").await;
    inspect(&b, &axe, "activity").await;
    let csv = b
        .run_async(
            "const done = arguments[0]; fetch('/activity.csv?group=key').then(r => r.text()).then(done);",
            json!([]),
        )
        .await;
    assert!(
        csv.as_str().unwrap().starts_with("key,requests")
            && csv.as_str().unwrap().contains("browser key,1,"),
        "{csv}"
    );
    b.goto(&format!("{base}/models?q=chat")).await;
    b.wait_for_text("Test Chat").await;
    inspect(&b, &axe, "models").await;
    b.goto(&format!("{base}/settings")).await;
    inspect(&b, &axe, "settings").await;

    // Alerts: a threshold, then a webhook signing secret, shown once (with a copy button).
    b.fill("#alert-threshold", "5").await;
    b.click("form[action='/settings/alerts'] button[type=submit]")
        .await;
    b.wait_for_text("Alert settings saved.").await;
    b.click("form[action='/settings/alerts/secret'] button[type=submit]")
        .await;
    b.wait_for_text("shown only now").await;
    assert!(b.text("#alert-secret").await.starts_with("whsec_"));
    b.click("button[data-copy='alert-secret']").await;
    inspect(&b, &axe, "settings-alerts").await;

    // Auto top-up: save a card on Stripe's page (setup mode; the fake's URL), Stripe's signed
    // event stores it, and auto top-up is turned on with the plain form.
    b.goto(&format!("{base}/credits")).await;
    b.click("form[action='/credits/auto-topup/card'] button[type=submit]")
        .await;
    for _ in 0..400 {
        if b.url().await.contains("/c/pay/") {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let setup = stripe
        .requests()
        .into_iter()
        .rfind(|r| r.field("mode") == Some("setup"))
        .expect("a setup-mode Checkout Session");
    let body = json!({
        "id": format!("evt_test_{}", Uuid::new_v4().simple()),
        "object": "event",
        "created": chrono::Utc::now().timestamp(),
        "livemode": false,
        "type": "setup_intent.succeeded",
        "data": { "object": {
            "id": format!("seti_test_{}", Uuid::new_v4().simple()),
            "object": "setup_intent",
            "customer": setup.field("customer"),
            "payment_method": "pm_test_browser",
            "status": "succeeded",
            "metadata": {
                "account_id": setup.field("setup_intent_data[metadata][account_id]"),
                "purpose": "auto_topup",
            },
        }},
    })
    .to_string();
    let r = app
        .client
        .post(format!("{base}/api/v1/stripe/webhook"))
        .header("content-type", "application/json")
        .header("Stripe-Signature", sign(&body))
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let mut shown = false;
    for _ in 0..100 {
        b.goto(&format!("{base}/credits?card=saved")).await;
        if b.text("#auto-status").await.contains("visa ending 4242") {
            shown = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(shown, "{}", b.text("#auto-status").await);
    b.click("input[name='enabled']").await;
    b.click("form[action='/credits/auto-topup'] button[type=submit]")
        .await;
    b.wait_for_text("Auto top-up is on.").await;
    inspect(&b, &axe, "credits-auto-topup").await;

    // Flow 3: invite a member; once they accept they see only their own keys and no admin page.
    b.goto(&format!("{base}/members")).await;
    inspect(&b, &axe, "members").await;
    let (_, invitee, _) = tenant_helpers::member(app, None).await;
    b.fill("#invite-email", &invitee).await;
    b.click("form[action='/members/invite'] button[type=submit]")
        .await;
    b.wait_for_text("We emailed an invitation").await;
    let invitation = t.smtp.link(&invitee, "/invitations/accept").await;
    b.click("form[action='/sign-out'] button[type=submit]")
        .await;
    b.find("form[action='/sign-in']").await;
    sign_in(&b, &base, &invitee).await;
    b.goto(&invitation).await;
    b.click("form[action='/invitations/accept'] button[type=submit]")
        .await;
    b.find("form[action='/switch-account']").await;
    let keys = b.wait_for_text("You see the keys you created").await;
    assert!(
        !keys.contains("browser key"),
        "a member sees another's key: {keys}"
    );
    b.fill("#key-name", "member key").await;
    b.click("form[action='/keys'] button[type=submit]").await;
    b.find("#new-key-secret").await;
    b.goto(&format!("{base}/keys")).await;
    let keys = b.text("body").await;
    assert!(
        keys.contains("member key") && !keys.contains("browser key"),
        "{keys}"
    );
    assert!(b.try_find("nav.main a[href='/members']").await.is_none());
    b.goto(&format!("{base}/members")).await;
    b.wait_for_text("403").await;
    b.goto(&format!("{base}/settings")).await;
    b.wait_for_text("Only owners and admins change settings")
        .await;
    assert!(b.try_find("form[action='/settings']").await.is_none());
    b.quit().await;
}

/// The operator console and the tenant pages' filters in a real browser: an operator finds an
/// account, grants credits, freezes it (the confirm dialog, the keys refused) and unfreezes it,
/// reverses the grant and reads the audit log; the tenant filters Logs by key, Activity by
/// range, grouping and metric, and Models by kind. Every page is scanned and photographed.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn operator_console_and_filters_in_a_real_browser() {
    let t = spawn_tenant_app(&[]).await;
    let app = &t.app;
    let base = app.base.clone();
    let axe = axe_source();
    let (_, owner_email, owner) = tenant_helpers::member(app, None).await;
    let (_, me) = tenant_helpers::status_of(owner.get("/api/v1/me")).await;
    let account = me["data"]["account_id"].as_str().unwrap().to_string();
    let (alpha_hash, alpha) = tenant_helpers::api_key(&owner, json!({ "name": "alpha key" })).await;
    let (_, beta) = tenant_helpers::api_key(&owner, json!({ "name": "beta key" })).await;
    let operator_email = tenant_helpers::new_operator(app).await;

    let driver = Driver::start().await;
    let op = driver.browser().await;
    // The operator signs in, finds the account by its owner's email and grants credits.
    op.goto(&format!("{base}/operator/sign-in")).await;
    inspect(&op, &axe, "operator-sign-in").await;
    op.fill("#email", &operator_email).await;
    op.fill("#password", tenant_helpers::OPERATOR_PASSWORD)
        .await;
    op.click("form[action='/operator/sign-in'] button[type=submit]")
        .await;
    op.find("form[action='/operator/accounts']").await;
    op.fill("#q", &owner_email).await;
    op.click("form[action='/operator/accounts'] button[type=submit]")
        .await;
    op.wait_for_text(&account).await;
    inspect(&op, &axe, "operator-accounts").await;
    op.click(&format!("a[href='/operator/accounts/{account}']"))
        .await;
    op.find("#grant-amount").await;
    op.fill("#grant-amount", "5").await;
    op.fill("#grant-reason", "browser welcome").await;
    op.click(&format!(
        "form[action='/operator/accounts/{account}/grant'] button[type=submit]"
    ))
    .await;
    op.wait_for_text("Granted $5").await;
    assert_eq!(app.balance(account.parse().unwrap()).await, dec("5"));
    inspect(&op, &axe, "operator-account").await;

    // Freezing asks first; then the account's keys are refused within a second or so.
    op.fill("#freeze-reason", "browser review").await;
    op.click(&format!(
        "form[action='/operator/accounts/{account}/freeze'] button[type=submit]"
    ))
    .await;
    let asked = op.accept_dialog().await;
    assert!(
        asked.contains("Every key of the account is refused"),
        "{asked}"
    );
    op.wait_for_text("Frozen: browser review").await;
    let mut refused = false;
    for _ in 0..100 {
        let r = app.post_chat(&alpha, &chat_body("test/chat", None)).await;
        if r.status() == 403 || r.status() == 401 {
            refused = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(refused, "the frozen account's key still works");
    op.click(&format!(
        "form[action='/operator/accounts/{account}/unfreeze'] button[type=submit]"
    ))
    .await;
    op.find("#freeze-reason").await;

    // The tenant's requests once it works again: two with alpha, one with beta.
    for key in [&alpha, &alpha, &beta] {
        let mut ok = false;
        for _ in 0..100 {
            let r = app.post_chat(key, &chat_body("test/chat", None)).await;
            if r.status() == 200 {
                ok = true;
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        assert!(ok, "the unfrozen account's key is still refused");
    }
    app.settled().await;

    // The tenant filters: Logs by key.
    let b = driver.browser().await;
    sign_in(&b, &base, &owner_email).await;
    b.goto(&format!("{base}/logs")).await;
    b.wait_for_text("beta key").await;
    b.select("#key", "alpha key").await;
    b.click("form.filters button[type=submit]").await;
    for _ in 0..200 {
        if b.url().await.contains(&format!("key={alpha_hash}")) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let rows = b.wait_for_text("alpha key").await;
    let table = b.text("#log-table tbody").await;
    assert_eq!(table.matches("alpha key").count(), 2, "{rows}");
    assert!(!table.contains("beta key"), "{table}");
    inspect(&b, &axe, "logs-filtered").await;

    // Activity: the last 48 hours by key, counting requests; then 30 days by model.
    b.goto(&format!("{base}/activity")).await;
    b.select("#range", "Last 48 hours").await;
    b.select("#group", "Key").await;
    b.select("#metric", "Requests").await;
    b.click("form.filters button[type=submit]").await;
    b.wait_for_text("Totals by key").await;
    b.find("#activity-chart canvas").await;
    let body = b.text("body").await;
    assert!(body.contains("Per hour"), "{body}");
    assert!(
        body.contains("alpha key") && body.contains("beta key"),
        "{body}"
    );
    inspect(&b, &axe, "activity-48h-by-key").await;
    b.select("#range", "Last 30 days").await;
    b.select("#group", "Model").await;
    b.click("form.filters button[type=submit]").await;
    b.wait_for_text("Totals by model").await;
    assert!(b.text("body").await.contains("Per day"));
    b.wait_for_text("test/chat").await;

    // Models: only embedding models when that kind is chosen.
    b.goto(&format!("{base}/models")).await;
    b.select("#modality", "embeddings").await;
    b.click("form.filters button[type=submit]").await;
    b.wait_for_text("Embeddings").await;
    let listed = b.text("main table").await;
    assert!(listed.contains("test/embed"), "{listed}");
    assert!(!listed.contains("test/chat"), "{listed}");
    inspect(&b, &axe, "models-embeddings").await;
    b.quit().await;

    // The operator reverses the grant (what is left of it) and reads the audit log.
    op.goto(&format!("{base}/operator/accounts/{account}"))
        .await;
    op.fill("#reverse-1", "browser test over").await;
    op.click(&format!(
        "form[action='/operator/accounts/{account}/reverse'] button[type=submit]"
    ))
    .await;
    op.accept_dialog().await;
    op.wait_for_text("Reversed $").await;
    app.settled().await;
    assert_eq!(app.balance(account.parse().unwrap()).await, dec("0"));
    app.ledger_clean().await;
    op.goto(&format!("{base}/operator/audit?account_id={account}"))
        .await;
    let audit = op.wait_for_text("credits.reverse").await;
    for action in ["credits.grant", "account.freeze", "account.unfreeze"] {
        assert!(audit.contains(action), "{action} missing: {audit}");
    }
    inspect(&op, &axe, "operator-audit").await;
    op.quit().await;
}
