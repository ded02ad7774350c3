//! Operators and the people of an account: the CLI that creates operators, the operator API
//! (search, grants and balanced reversals, freezes that reach every instance within a second,
//! the audit log), and invitations, roles, removal, transfer and leaving.

use std::time::{Duration, Instant};

use serde_json::json;
use uuid::Uuid;

use crate::helpers::*;
use crate::tenant_helpers::*;

async fn account_of(b: &Browser) -> Uuid {
    let (_, me) = status_of(b.get("/api/v1/me")).await;
    me["data"]["account_id"].as_str().unwrap().parse().unwrap()
}

#[tokio::test]
async fn freezing_an_account_refuses_its_keys_on_every_instance_within_a_second() {
    let t = spawn_tenant_app(&[]).await;
    let app = &t.app;
    let replica = spawn_replica(app, &[]).await;
    let op = operator(app).await;
    let (_, _, owner) = member(app, None).await;
    let account = account_of(&owner).await;
    let (s, v) = status_of(op.post(
        &format!("/api/v1/operator/accounts/{account}/grants"),
        &json!({ "amount": "3", "reason": "trial" }),
    ))
    .await;
    assert_eq!(s, 200, "{v}");
    let (_, key) = api_key(&owner, json!({ "name": "k" })).await;
    let call = |base: String| {
        let key = key.clone();
        let client = app.client.clone();
        async move {
            client
                .post(format!("{base}/v1/chat/completions"))
                .bearer_auth(key)
                .json(&chat_body("test/chat", None))
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }
    };
    // Both instances have the key cached.
    assert_eq!(call(app.base.clone()).await, 200);
    assert_eq!(call(replica.clone()).await, 200);

    let (s, v) = status_of(op.post(
        &format!("/api/v1/operator/accounts/{account}/freeze"),
        &json!({ "reason": "chargeback investigation" }),
    ))
    .await;
    assert_eq!((s, v["data"]["frozen"].as_bool()), (200, Some(true)), "{v}");
    let frozen_at = Instant::now();
    for base in [app.base.clone(), replica.clone()] {
        loop {
            let s = call(base.clone()).await;
            if s == 403 {
                break;
            }
            assert!(
                frozen_at.elapsed() < Duration::from_secs(1),
                "{base} still answers {s}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    assert!(frozen_at.elapsed() < Duration::from_secs(1));
    // The owner can still look, not change.
    assert_eq!(status_of(owner.get("/api/v1/keys")).await.0, 200);
    assert_eq!(
        status_of(owner.post("/api/v1/keys", &json!({"name": "x"})))
            .await
            .0,
        403
    );

    let (s, _) = status_of(op.post(
        &format!("/api/v1/operator/accounts/{account}/unfreeze"),
        &json!({}),
    ))
    .await;
    assert_eq!(s, 200);
    let thawed = Instant::now();
    while call(replica.clone()).await != 200 {
        assert!(thawed.elapsed() < Duration::from_secs(1));
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    app.settled().await;
    app.ledger_clean().await;
}

#[tokio::test]
async fn operators_search_grant_reverse_and_read_the_audit_log() {
    let t = spawn_tenant_app(&[]).await;
    let app = &t.app;
    let op = operator(app).await;
    let (_, email, owner) = member(app, None).await;
    let account = account_of(&owner).await;

    // Search by member email, by id; unknown ids are 404.
    let (s, v) = status_of(op.get(&format!("/api/v1/operator/accounts?q={}", &email[..10]))).await;
    assert_eq!(s, 200);
    assert_eq!(v["data"][0]["id"], account.to_string(), "{v}");
    assert_eq!(v["data"][0]["owner_email"], email.as_str());
    let (_, v) = status_of(op.get(&format!("/api/v1/operator/accounts?q={account}"))).await;
    assert_eq!(v["data"].as_array().unwrap().len(), 1);
    let (s, _) = status_of(op.get(&format!("/api/v1/operator/accounts/{}", Uuid::now_v7()))).await;
    assert_eq!(s, 404);

    // Grant (idempotent on its key), spend a little, reverse: what is left of the grant goes.
    let grant = |amount: &str| {
        op.post(
            &format!("/api/v1/operator/accounts/{account}/grants"),
            &json!({ "amount": amount, "reason": "promo", "idempotency_key": "promo-1" }),
        )
    };
    let (s, v) = status_of(grant("2")).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["data"]["grant"], "grant:promo-1");
    let (_, again) = status_of(grant("2")).await;
    assert_eq!(again["data"]["newly_posted"], false);
    for (amount, field) in [
        ("-1", "amount"),
        ("lots", "amount"),
        ("0.0000000000001", "amount"),
    ] {
        let (s, v) = status_of(op.post(
            &format!("/api/v1/operator/accounts/{account}/grants"),
            &json!({ "amount": amount, "reason": "x" }),
        ))
        .await;
        assert_eq!(
            (s, v["error"]["param"].as_str()),
            (400, Some(field)),
            "{amount}"
        );
    }
    let (_, key) = api_key(&owner, json!({ "name": "k" })).await;
    // A prompt long enough for the 100,000 tokens the mock reports (a charge never exceeds
    // the hold, which is bounded by the prompt's bytes).
    let mut body = chat_body(
        "test/chat",
        Some(json!({"prompt_tokens": 100000, "completion_tokens": 0})),
    );
    let text = body["messages"][0]["content"].as_str().unwrap().to_string();
    body["messages"][0]["content"] = json!(format!("{text} {}", "x".repeat(100_000)));
    let res = app.post_chat(&key, &body).await;
    assert_eq!(res.status(), 200);
    app.settled().await;
    assert_eq!(app.balance(account).await, dec("1.9"));
    let (s, v) = status_of(op.post(
        &format!("/api/v1/operator/accounts/{account}/reversals"),
        &json!({ "grant": "grant:promo-1", "reason": "granted by mistake" }),
    ))
    .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["data"]["reversed"].to_string(), "1.9");
    assert_eq!(app.balance(account).await, dec("0"));
    let (s, _) = status_of(op.post(
        &format!("/api/v1/operator/accounts/{account}/reversals"),
        &json!({ "grant": "grant:promo-1", "reason": "again" }),
    ))
    .await;
    assert_eq!(s, 409, "a grant is reversed once");
    let (s, _) = status_of(op.post(
        &format!("/api/v1/operator/accounts/{account}/reversals"),
        &json!({ "grant": "grant:nope", "reason": "x" }),
    ))
    .await;
    assert_eq!(s, 404);
    // The reversal is one balanced ledger transaction; the books and the hot copy agree.
    let (kind, entries): (String, i64) = sqlx::query_as(
        "SELECT t.kind, count(e.id) FROM ledger_transactions t JOIN ledger_entries e ON e.transaction_id = t.id \
         WHERE t.external_id = 'reversal:grant:promo-1' GROUP BY t.kind",
    )
    .fetch_one(&app.pg)
    .await
    .unwrap();
    assert_eq!((kind.as_str(), entries), ("reversal", 2));
    app.ledger_clean().await;
    app.hot_matches_ledger(account).await;

    // The audit log: who did what, from where; the owner sees the account's, operators all.
    let (s, log) = status_of(op.get(&format!("/api/v1/operator/audit?account_id={account}"))).await;
    assert_eq!(s, 200);
    let actions: Vec<&str> = log["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    for a in ["credits.grant", "credits.reverse", "key.create"] {
        assert!(actions.contains(&a), "{a} missing from {actions:?}");
    }
    let reversal = log["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["action"] == "credits.reverse")
        .unwrap();
    assert_eq!(reversal["actor_kind"], "operator");
    assert_eq!(reversal["ip"], "127.0.0.1");
    let (_, mine) = status_of(owner.get("/api/v1/audit?limit=2")).await;
    assert_eq!(mine["data"].as_array().unwrap().len(), 2);
    let cursor = mine["next_cursor"].as_str().unwrap();
    let (_, more) = status_of(owner.get(&format!("/api/v1/audit?limit=2&cursor={cursor}"))).await;
    assert!(!more["data"].as_array().unwrap().is_empty());
    assert_ne!(more["data"][0]["id"], mine["data"][0]["id"]);

    // Tenants cannot reach the operator API; operators' sessions are not tenants'.
    assert_eq!(
        status_of(owner.get("/api/v1/operator/accounts")).await.0,
        404
    );
    assert_eq!(status_of(op.get("/api/v1/keys")).await.0, 403);
    assert_eq!(
        status_of(
            app.client
                .get(format!("{}/api/v1/operator/accounts", app.base))
        )
        .await
        .0,
        401
    );
}

#[tokio::test]
async fn invitations_roles_removal_transfer_and_leaving() {
    let t = spawn_tenant_app(&[]).await;
    let app = &t.app;
    let (owner_id, _, owner) = member(app, None).await;
    let account = account_of(&owner).await;

    // Invite someone who already has an account elsewhere; they accept through the emailed link.
    let (invitee_id, invitee_email, invitee) = member(app, None).await;
    let (s, v) = status_of(owner.post(
        "/api/v1/invitations",
        &json!({ "email": invitee_email.to_uppercase(), "role": "member" }),
    ))
    .await;
    assert_eq!(s, 201, "{v}");
    let token = t.smtp.token(&invitee_email, "/invitations/accept").await;
    // Someone else signed in cannot use it.
    let (_, _, stranger) = member(app, None).await;
    let (s, v) =
        status_of(stranger.post("/api/v1/invitations/accept", &json!({ "token": token }))).await;
    assert_eq!((s, v["error"]["param"].as_str()), (400, Some("token")));
    let (s, v) =
        status_of(invitee.post("/api/v1/invitations/accept", &json!({ "token": token }))).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(
        status_of(invitee.post("/api/v1/invitations/accept", &json!({ "token": token })))
            .await
            .0,
        400
    );
    // They now act in the account as a member, with the two accounts listed.
    let (_, me) = status_of(invitee.get("/api/v1/me")).await;
    assert_eq!(me["data"]["account_id"], account.to_string());
    assert_eq!(me["data"]["accounts"].as_array().unwrap().len(), 2);
    let (member_key, _) = api_key(&invitee, json!({ "name": "mine" })).await;
    let (_, owner_key_secret) = api_key(&owner, json!({ "name": "owner's" })).await;
    let (_, keys) = status_of(invitee.get("/api/v1/keys")).await;
    assert_eq!(
        keys["data"].as_array().unwrap().len(),
        1,
        "a member sees their own keys"
    );
    assert_eq!(keys["data"][0]["hash"], member_key.as_str());
    let (_, keys) = status_of(owner.get("/api/v1/keys")).await;
    assert_eq!(
        keys["data"].as_array().unwrap().len(),
        2,
        "the owner sees all"
    );
    // Switching to an account one is not in: 404.
    let (s, _) = status_of(invitee.post(
        "/api/v1/me/account",
        &json!({ "account_id": Uuid::now_v7() }),
    ))
    .await;
    assert_eq!(s, 404);

    // Promote to admin; an admin's management key goes when the role does.
    let (s, _) = status_of(owner.patch(
        &format!("/api/v1/members/{invitee_id}"),
        &json!({ "role": "admin" }),
    ))
    .await;
    assert_eq!(s, 200);
    let (_, mgmt) = api_key(&invitee, json!({ "name": "m", "kind": "management" })).await;
    let list = |k: String| {
        let c = app.client.clone();
        let url = format!("{}/api/v1/keys", app.base);
        async move {
            c.get(url)
                .bearer_auth(k)
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }
    };
    assert_eq!(list(mgmt.clone()).await, 200);
    let (s, v) = status_of(owner.patch(
        &format!("/api/v1/members/{invitee_id}"),
        &json!({ "role": "billing" }),
    ))
    .await;
    assert_eq!(s, 200, "{v}");
    let mut status = 0;
    for _ in 0..40 {
        status = list(mgmt.clone()).await;
        if status == 401 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert_eq!(
        status, 401,
        "the demoted admin's management key is disabled"
    );
    let (s, v) = status_of(owner.patch(
        &format!("/api/v1/members/{invitee_id}"),
        &json!({ "role": "root" }),
    ))
    .await;
    assert_eq!((s, v["error"]["param"].as_str()), (400, Some("role")));

    // Transfer ownership: the invitee owns, the old owner is an admin and cannot transfer again.
    let (s, _) = status_of(owner.patch(
        &format!("/api/v1/members/{invitee_id}"),
        &json!({ "role": "member" }),
    ))
    .await;
    assert_eq!(s, 200);
    let (s, v) = status_of(owner.post(
        "/api/v1/account/transfer",
        &json!({ "user_id": invitee_id }),
    ))
    .await;
    assert_eq!(s, 200, "{v}");
    let (_, members) = status_of(invitee.get("/api/v1/members")).await;
    let role_of = |id: Uuid| {
        members["data"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["user_id"] == id.to_string())
            .unwrap()["role"]
            .clone()
    };
    assert_eq!(
        (role_of(invitee_id), role_of(owner_id)),
        (json!("owner"), json!("admin"))
    );
    assert_eq!(
        status_of(owner.post("/api/v1/account/transfer", &json!({ "user_id": owner_id })))
            .await
            .0,
        403
    );
    // The owner cannot leave; the admin can, and their keys stop working.
    let (s, _) = status_of(invitee.post("/api/v1/account/leave", &json!({}))).await;
    assert_eq!(s, 409);
    let (s, v) = status_of(owner.post("/api/v1/account/leave", &json!({}))).await;
    assert_eq!(s, 200, "{v}");
    let mut status = 0;
    for _ in 0..40 {
        status = app
            .post_chat(&owner_key_secret, &chat_body("test/chat", None))
            .await
            .status()
            .as_u16();
        if status == 401 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert_eq!(status, 401, "keys of someone who left are disabled");
    // The new owner removes nobody by mistake: a removed member's keys are disabled too.
    let (third, _, _) = member(app, Some((account, "member"))).await;
    assert_eq!(
        status_of(invitee.delete(&format!("/api/v1/members/{third}")))
            .await
            .0,
        200
    );
    assert_eq!(
        status_of(invitee.delete(&format!("/api/v1/members/{third}")))
            .await
            .0,
        404
    );

    // Invitations can be revoked; a revoked link does nothing.
    let (_, inv) = status_of(invitee.post(
        "/api/v1/invitations",
        &json!({ "email": "late@example.com", "role": "billing" }),
    ))
    .await;
    let id = inv["data"]["id"].as_str().unwrap();
    let late_token = t
        .smtp
        .token("late@example.com", "/invitations/accept")
        .await;
    assert_eq!(
        status_of(invitee.delete(&format!("/api/v1/invitations/{id}")))
            .await
            .0,
        200
    );
    let (late_id, _, late) = member(app, None).await;
    sqlx::query("UPDATE users SET email = 'late@example.com' WHERE id = $1")
        .bind(late_id)
        .execute(&app.pg)
        .await
        .unwrap();
    assert_eq!(
        status_of(late.post(
            "/api/v1/invitations/accept",
            &json!({ "token": late_token })
        ))
        .await
        .0,
        400
    );
}

#[tokio::test]
async fn the_operators_cli_prints_a_password_that_signs_in() {
    let app = spawn_app().await;
    let name: String = sqlx::query_scalar("SELECT current_database()")
        .fetch_one(&app.pg)
        .await
        .unwrap();
    let admin = admin_database_url();
    let root = admin.rsplit_once('/').unwrap().0.to_string();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_infron"))
        .args(["operators", "create", "--email", "Root@Example.com"])
        .env("DATABASE_URL", format!("{root}/{name}"))
        .env("REDIS_URL", redis_url())
        .env("INFRON_KEY_SECRET", &app.key_secret)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let password = String::from_utf8(out.stdout).unwrap().trim().to_string();
    assert!(password.len() >= 32);
    let res = app
        .client
        .post(format!("{}/api/v1/operator/auth/signin", app.base))
        .header("origin", &app.base)
        .json(&json!({ "email": "root@example.com", "password": password }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    // A second operator with the same address is refused.
    let again = std::process::Command::new(env!("CARGO_BIN_EXE_infron"))
        .args(["operators", "create", "--email", "root@example.com"])
        .env("DATABASE_URL", format!("{root}/{name}"))
        .env("REDIS_URL", redis_url())
        .env("INFRON_KEY_SECRET", &app.key_secret)
        .output()
        .unwrap();
    assert!(!again.status.success());
    let audit: i64 =
        sqlx::query_scalar("SELECT count(*) FROM audit_log WHERE action = 'operator.create'")
            .fetch_one(&app.pg)
            .await
            .unwrap();
    assert_eq!(audit, 1);
}

/// The operator console in the dashboard: sign in with the form, find the account, grant and
/// reverse credits, freeze (its keys refused) and unfreeze, and read the audit log; tenants
/// find no such pages, and forms without the session's CSRF token change nothing.
#[tokio::test]
async fn the_operator_console_manages_accounts_from_the_pages() {
    let t = spawn_tenant_app(&[]).await;
    let app = &t.app;
    let base = &app.base;
    let (_, owner_email, owner) = member(app, None).await;
    let account = account_of(&owner).await;
    let (_, key) = api_key(&owner, json!({ "name": "console key" })).await;

    // Signed out: to the console's sign-in; a tenant: no such page.
    let anon = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let r = anon
        .get(format!("{base}/operator/accounts"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    assert_eq!(r.headers()["location"], "/operator/sign-in");
    assert_eq!(
        owner
            .get("/operator/accounts")
            .send()
            .await
            .unwrap()
            .status(),
        404
    );

    // Sign in through the form.
    let email = new_operator(app).await;
    let password = OPERATOR_PASSWORD;
    let op = reqwest::Client::builder()
        .cookie_store(true)
        .build()
        .unwrap();
    let r = op
        .post(format!("{base}/operator/sign-in"))
        .header("origin", base)
        .form(&[("email", email.as_str()), ("password", "wrong password!")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let r = op
        .post(format!("{base}/operator/sign-in"))
        .header("origin", base)
        .form(&[("email", email.as_str()), ("password", password)])
        .send()
        .await
        .unwrap();
    assert_eq!(r.url().path(), "/operator/accounts");
    let page = r.text().await.unwrap();
    assert!(page.contains("(operator)"), "{page}");
    let csrf = {
        let marker = "name=\"csrf_token\" value=\"";
        let at = page.find(marker).unwrap() + marker.len();
        page[at..at + page[at..].find('"').unwrap()].to_string()
    };

    // Search by the owner's email.
    let page = op
        .get(format!("{base}/operator/accounts?q={}", owner_email))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        page.contains(&format!("/operator/accounts/{account}")),
        "{page}"
    );

    let act = |action: &'static str, form: Vec<(&'static str, String)>, token: String| {
        let op = op.clone();
        let url = format!("{base}/operator/accounts/{account}/{action}");
        let base = base.clone();
        async move {
            let mut form = form;
            form.push(("csrf_token", token));
            let r = op
                .post(url)
                .header("origin", base)
                .form(&form)
                .send()
                .await
                .unwrap();
            (r.status().as_u16(), r.text().await.unwrap())
        }
    };
    // Without the session's token nothing changes.
    let (s, _) = act(
        "grant",
        vec![("amount", "7".into()), ("reason", "x".into())],
        "nope".into(),
    )
    .await;
    assert_eq!(s, 403);
    assert_eq!(app.balance(account).await, dec("0"));
    // Bad input is explained.
    let (s, page) = act(
        "grant",
        vec![("amount", "-1".into()), ("reason", "x".into())],
        csrf.clone(),
    )
    .await;
    assert_eq!(s, 400);
    assert!(page.contains("amount must be positive"), "{page}");

    let (s, page) = act(
        "grant",
        vec![
            ("amount", "7.5".into()),
            ("reason", "support".into()),
            ("idempotency_key", "console-1".into()),
        ],
        csrf.clone(),
    )
    .await;
    assert_eq!(s, 200, "{page}");
    assert!(
        page.contains("Granted $7.5") && page.contains("$7.50"),
        "{page}"
    );
    let (_, page) = act(
        "grant",
        vec![
            ("amount", "7.5".into()),
            ("reason", "support".into()),
            ("idempotency_key", "console-1".into()),
        ],
        csrf.clone(),
    )
    .await;
    assert!(page.contains("already posted"), "{page}");
    assert_eq!(app.balance(account).await, dec("7.5"));
    assert!(
        page.contains("grant:console-1"),
        "the grant is listed: {page}"
    );

    // Freeze: the key is refused; unfreeze: it works again.
    let (s, page) = act(
        "freeze",
        vec![("reason", "chargeback review".into())],
        csrf.clone(),
    )
    .await;
    assert_eq!(s, 200, "{page}");
    assert!(page.contains("Frozen: chargeback review"));
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    loop {
        let r = app.post_chat(&key, &chat_body("test/chat", None)).await;
        if r.status() != 200 {
            assert!(r.status() == 403 || r.status() == 401, "{}", r.status());
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the frozen key still works"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (s, _) = act("unfreeze", vec![], csrf.clone()).await;
    assert_eq!(s, 200);
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while app
        .post_chat(&key, &chat_body("test/chat", None))
        .await
        .status()
        != 200
    {
        assert!(
            std::time::Instant::now() < deadline,
            "the key stays refused"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    app.settled().await;

    // Reverse what is left of the grant.
    let before = app.balance(account).await;
    let (s, page) = act(
        "reverse",
        vec![
            ("grant", "grant:console-1".into()),
            ("reason", "goodwill ended".into()),
        ],
        csrf.clone(),
    )
    .await;
    assert_eq!(s, 200, "{page}");
    assert!(page.contains("Reversed $"), "{page}");
    app.settled().await;
    assert!(app.balance(account).await < before);
    app.ledger_clean().await;
    let (s, _) = act(
        "reverse",
        vec![
            ("grant", "grant:console-1".into()),
            ("reason", "again".into()),
        ],
        csrf.clone(),
    )
    .await;
    assert_eq!(s, 409);

    // Every change is in the audit log, with the operator.
    let page = op
        .get(format!("{base}/operator/audit?account_id={account}"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for action in [
        "credits.grant",
        "account.freeze",
        "account.unfreeze",
        "credits.reverse",
    ] {
        assert!(page.contains(action), "{action} in {page}");
    }
    assert!(page.contains(&email));
}
