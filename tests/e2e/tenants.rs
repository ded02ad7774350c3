//! Tenants serve themselves: sign-up through email, sessions, keys over the API, usage, and
//! the rules around them, against the real server, Postgres, Redis and an SMTP sink.

use std::time::Duration;

use serde_json::{json, Value};

use crate::helpers::*;
use crate::tenant_helpers::*;

#[tokio::test]
async fn sign_up_verify_sign_in_create_a_key_call_and_see_logs_and_activity() {
    let t = spawn_tenant_app(&[]).await;
    let app = &t.app;
    let email = "Ada.Lovelace@Example.com";
    let mut b = Browser::new(&app.base);

    // Sign up: 202, and an email with a verification link arrives over SMTP.
    let (s, v) = status_of(
        b.client
            .post(format!("{}/api/v1/auth/signup", app.base))
            .header("origin", &app.base)
            .json(&json!({ "email": email, "password": PASSWORD })),
    )
    .await;
    assert_eq!(s, 202, "{v}");
    let link = t
        .smtp
        .link("ada.lovelace@example.com", "/verify-email")
        .await;
    assert!(link.starts_with(&app.base), "{link}");
    // Not verified yet: signing in is refused.
    assert_eq!(b.sign_in(email, PASSWORD).await, 403);
    let token = link.split_once("token=").unwrap().1;
    let (s, _) = status_of(b.post("/api/v1/auth/verify", &json!({ "token": token }))).await;
    assert_eq!(s, 200);
    // A used token does not work twice.
    let (s, v) = status_of(b.post("/api/v1/auth/verify", &json!({ "token": token }))).await;
    assert_eq!((s, v["error"]["param"].as_str()), (400, Some("token")));

    // Wrong password, then right.
    assert_eq!(b.sign_in(email, "not the password at all").await, 401);
    assert_eq!(b.sign_in(email, PASSWORD).await, 200);
    let (s, me) = status_of(b.get("/api/v1/me")).await;
    assert_eq!(s, 200);
    assert_eq!(me["data"]["user"]["email"], "ada.lovelace@example.com");
    assert_eq!(me["data"]["accounts"][0]["role"], "owner");
    let account: uuid::Uuid = me["data"]["account_id"].as_str().unwrap().parse().unwrap();

    // Credits for the new account, then a key over the API, used on a model.
    infron_billing::grants::grant(
        &app.pg,
        &app.hot,
        account,
        "5".parse().unwrap(),
        "welcome",
        "grant:welcome".into(),
    )
    .await
    .unwrap();
    let (hash, secret) = api_key(
        &b,
        json!({ "name": "laptop", "limit": 2, "limit_reset": "monthly" }),
    )
    .await;
    let res = app
        .post_chat(
            &secret,
            &chat_body(
                "test/chat",
                Some(json!({"prompt_tokens": 10, "completion_tokens": 20})),
            ),
        )
        .await;
    assert_eq!(res.status(), 200);
    let id = res.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    app.settled().await;

    // The request is in the log, with the key that made it...
    let (s, logs) = status_of(b.get("/api/v1/logs")).await;
    assert_eq!(s, 200, "{logs}");
    let row = &logs["data"][0];
    assert_eq!(row["id"], id.as_str());
    assert_eq!(row["api_key_hash"], hash.as_str());
    assert_eq!(row["model"], "test/chat");
    assert_eq!(row["tokens_prompt"], 10);
    assert_eq!(row["status"], 200);
    // ...filterable by key, model and status...
    for q in [
        format!("api_key_hash={hash}"),
        "model=test/chat".into(),
        "status=200".into(),
        "status=success".into(),
    ] {
        let (_, v) = status_of(b.get(&format!("/api/v1/logs?{q}"))).await;
        assert_eq!(v["data"].as_array().unwrap().len(), 1, "{q}: {v}");
    }
    for q in ["status=error", "model=test/other", "provider=nobody"] {
        let (_, v) = status_of(b.get(&format!("/api/v1/logs?{q}"))).await;
        assert_eq!(v["data"].as_array().unwrap().len(), 0, "{q}: {v}");
    }
    // ...and in activity, from the rollup, with the exact cost.
    let (s, act) = status_of(b.get("/api/v1/activity")).await;
    assert_eq!(s, 200, "{act}");
    let a = &act["data"][0];
    assert_eq!(a["model"], "test/chat");
    assert_eq!(a["provider_name"], "mock-a");
    assert_eq!(a["requests"], 1);
    assert_eq!(a["prompt_tokens"], 10);
    assert_eq!(a["completion_tokens"], 20);
    assert_eq!(a["api_key_hash"], hash.as_str());
    // 10 × 0.000001 + 20 × 0.000002
    assert_eq!(a["usage"].to_string(), "0.00005");
    // The key's own view and the generation record agree.
    let (_, k) = status_of(
        app.client
            .get(format!("{}/api/v1/key", app.base))
            .bearer_auth(&secret),
    )
    .await;
    assert_eq!(k["data"]["usage"].to_string(), "0.00005");
    assert_eq!(k["data"]["limit_remaining"].to_string(), "1.99995");
    assert_eq!(k["data"]["is_management_key"], false);
    let (s, g) = status_of(
        app.client
            .get(format!("{}/api/v1/generation?id={id}", app.base))
            .bearer_auth(&secret),
    )
    .await;
    assert_eq!(s, 200, "{g}");
    assert_eq!(g["data"]["native_tokens_completion"], 20);
    app.ledger_clean().await;
}

#[tokio::test]
async fn session_cookies_are_http_only_lax_rotated_and_stored_only_hashed() {
    let t = spawn_tenant_app(&[]).await;
    let app = &t.app;
    let (_, email, _) = member(app, None).await;
    let res = app
        .client
        .post(format!("{}/api/v1/auth/signin", app.base))
        .header("origin", &app.base)
        .json(&json!({ "email": email, "password": PASSWORD }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let cookie = res.headers()["set-cookie"].to_str().unwrap().to_string();
    assert!(cookie.starts_with("infron_session="), "{cookie}");
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Lax"),
        "{cookie}"
    );
    // Plain HTTP on 127.0.0.1: the only case without Secure.
    assert!(!cookie.contains("Secure"), "{cookie}");
    let id = cookie["infron_session=".len()..]
        .split(';')
        .next()
        .unwrap()
        .to_string();
    // Redis holds the session under a hash of its id, never the id itself.
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg(format!("{}:{{sessions}}:sess*", app.hot.keys().prefix()))
        .query_async(&mut app.hot.conn())
        .await
        .unwrap();
    assert!(!keys.is_empty());
    assert!(keys.iter().all(|k| !k.contains(&id)), "{keys:?}");
    // A second sign-in gives a new id.
    let again = app
        .client
        .post(format!("{}/api/v1/auth/signin", app.base))
        .header("origin", &app.base)
        .json(&json!({ "email": email, "password": PASSWORD }))
        .send()
        .await
        .unwrap();
    let cookie2 = again.headers()["set-cookie"].to_str().unwrap().to_string();
    assert_ne!(cookie2, cookie);
    // Nothing about the password or the session id reaches Postgres.
    let dump: String = sqlx::query_scalar(
        "SELECT coalesce(string_agg(row_to_json(u)::text, ' '), '') FROM users u",
    )
    .fetch_one(&app.pg)
    .await
    .unwrap();
    assert!(!dump.contains(PASSWORD) && !dump.contains(&id));
}

#[tokio::test]
async fn session_changes_need_our_origin_and_the_csrf_token() {
    let t = spawn_tenant_app(&[]).await;
    let app = &t.app;
    let (_, _, b) = member(app, None).await;
    let body = json!({ "name": "k" });
    let url = format!("{}/api/v1/keys", app.base);
    // No CSRF token.
    let (s, v) = status_of(b.client.post(&url).header("origin", &app.base).json(&body)).await;
    assert_eq!(s, 403, "{v}");
    // Wrong token.
    let (s, _) = status_of(
        b.client
            .post(&url)
            .header("origin", &app.base)
            .header("x-csrf-token", "nope")
            .json(&body),
    )
    .await;
    assert_eq!(s, 403);
    // Right token, foreign origin.
    let (s, _) = status_of(
        b.client
            .post(&url)
            .header("origin", "https://evil.example")
            .header("x-csrf-token", &b.csrf)
            .json(&body),
    )
    .await;
    assert_eq!(s, 403);
    // Cross-site fetch metadata without an Origin.
    let (s, _) = status_of(
        b.client
            .post(&url)
            .header("sec-fetch-site", "cross-site")
            .header("x-csrf-token", &b.csrf)
            .json(&body),
    )
    .await;
    assert_eq!(s, 403);
    assert_eq!(
        sqlx::query_scalar::<_, i64>("SELECT count(*) FROM api_keys")
            .fetch_one(&app.pg)
            .await
            .unwrap(),
        0,
        "nothing was created"
    );
    // Same-origin with the token: created. Reads need no token.
    let (s, _) = status_of(b.post("/api/v1/keys", &body)).await;
    assert_eq!(s, 201);
    assert_eq!(status_of(b.get("/api/v1/keys")).await.0, 200);
    // Sign-in itself refuses a foreign origin (login CSRF).
    let (s, _) = status_of(
        app.client
            .post(format!("{}/api/v1/auth/signin", app.base))
            .header("origin", "https://evil.example")
            .json(&json!({ "email": "x@example.com", "password": PASSWORD })),
    )
    .await;
    assert_eq!(s, 403);
}

#[tokio::test]
async fn sign_out_password_change_and_reset_end_sessions() {
    let t = spawn_tenant_app(&[]).await;
    let app = &t.app;
    let (_, email, mut one) = member(app, None).await;
    let mut two = Browser::new(&app.base);
    assert_eq!(two.sign_in(&email, PASSWORD).await, 200);
    assert_eq!(status_of(one.get("/api/v1/me")).await.0, 200);

    // Sign out of one session: the other stays.
    assert_eq!(
        status_of(one.post("/api/v1/auth/signout", &json!({})))
            .await
            .0,
        200
    );
    assert_eq!(status_of(one.get("/api/v1/me")).await.0, 401);
    assert_eq!(status_of(two.get("/api/v1/me")).await.0, 200);

    // Changing the password keeps this session and ends the others.
    assert_eq!(one.sign_in(&email, PASSWORD).await, 200);
    let new_password = "a brand new passphrase";
    let (s, v) = status_of(two.post(
        "/api/v1/auth/password",
        &json!({ "current_password": "wrong wrong wrong", "new_password": new_password }),
    ))
    .await;
    assert_eq!(
        (s, v["error"]["param"].as_str()),
        (400, Some("current_password"))
    );
    let (s, v) = status_of(two.post(
        "/api/v1/auth/password",
        &json!({ "current_password": PASSWORD, "new_password": "short" }),
    ))
    .await;
    assert_eq!(
        (s, v["error"]["param"].as_str()),
        (400, Some("new_password"))
    );
    let (s, _) = status_of(two.post(
        "/api/v1/auth/password",
        &json!({ "current_password": PASSWORD, "new_password": new_password }),
    ))
    .await;
    assert_eq!(s, 200);
    assert_eq!(status_of(two.get("/api/v1/me")).await.0, 200);
    assert_eq!(status_of(one.get("/api/v1/me")).await.0, 401);

    // Forgot: the same answer for a stranger; a link for the user; the reset ends every session.
    for who in ["nobody@example.com", email.as_str()] {
        let (s, _) = status_of(
            app.client
                .post(format!("{}/api/v1/auth/password/forgot", app.base))
                .json(&json!({ "email": who })),
        )
        .await;
        assert_eq!(s, 202);
    }
    let token = t.smtp.token(&email, "/reset-password").await;
    assert!(t
        .smtp
        .messages()
        .iter()
        .all(|m| !m.to.contains(&"nobody@example.com".to_string())));
    let reset = |password: &str| {
        app.client
            .post(format!("{}/api/v1/auth/password/reset", app.base))
            .json(&json!({ "token": token, "password": password }))
    };
    assert_eq!(status_of(reset("tiny")).await.0, 400);
    assert_eq!(status_of(reset("the reset passphrase")).await.0, 200);
    assert_eq!(
        status_of(reset("the reset passphrase")).await.0,
        400,
        "used once"
    );
    assert_eq!(status_of(two.get("/api/v1/me")).await.0, 401);
    assert_eq!(one.sign_in(&email, new_password).await, 401);
    assert_eq!(one.sign_in(&email, "the reset passphrase").await, 200);

    // Sign out everywhere.
    assert_eq!(two.sign_in(&email, "the reset passphrase").await, 200);
    let (s, v) = status_of(one.post("/api/v1/auth/signout-all", &json!({}))).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(status_of(two.get("/api/v1/me")).await.0, 401);
}

#[tokio::test]
async fn sessions_expire_when_idle_and_at_their_absolute_deadline() {
    let t = spawn_tenant_app(&[
        ("INFRON_SESSION_IDLE_SECS", "1".to_string()),
        ("INFRON_SESSION_ABSOLUTE_SECS", "3".to_string()),
    ])
    .await;
    let app = &t.app;
    let (_, email, idle) = member(app, None).await;
    tokio::time::sleep(Duration::from_millis(1300)).await;
    assert_eq!(
        status_of(idle.get("/api/v1/me")).await.0,
        401,
        "idle too long"
    );

    let mut busy = Browser::new(&app.base);
    assert_eq!(busy.sign_in(&email, PASSWORD).await, 200);
    // Used every 400 ms, it outlives the idle time but not the absolute deadline.
    let started = std::time::Instant::now();
    while started.elapsed() < Duration::from_millis(1800) {
        assert_eq!(status_of(busy.get("/api/v1/me")).await.0, 200);
        tokio::time::sleep(Duration::from_millis(400)).await;
    }
    tokio::time::sleep(Duration::from_millis(3300).saturating_sub(started.elapsed())).await;
    assert_eq!(
        status_of(busy.get("/api/v1/me")).await.0,
        401,
        "past the absolute deadline"
    );
}

#[tokio::test]
async fn signing_up_twice_reveals_nothing_and_bad_input_names_the_field() {
    let t = spawn_tenant_app(&[]).await;
    let app = &t.app;
    let signup = |email: &str, password: &str| {
        app.client
            .post(format!("{}/api/v1/auth/signup", app.base))
            .header("origin", &app.base)
            .json(&json!({ "email": email, "password": password }))
    };
    assert_eq!(
        status_of(signup("grace@example.com", PASSWORD)).await.0,
        202
    );
    assert_eq!(
        status_of(signup("GRACE@example.com", "another long password"))
            .await
            .0,
        202
    );
    // The second got an "already registered" email, not a second account.
    let users: i64 = sqlx::query_scalar("SELECT count(*) FROM users")
        .fetch_one(&app.pg)
        .await
        .unwrap();
    assert_eq!(users, 1);
    for _ in 0..100 {
        if t.smtp.messages().len() == 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let subjects: Vec<String> = t.smtp.messages().iter().map(|m| m.subject()).collect();
    assert!(
        subjects.iter().any(|s| s.contains("already have")),
        "{subjects:?}"
    );
    for (email, password, field) in [
        ("not-an-email", PASSWORD, "email"),
        ("x@example.com", "short", "password"),
        ("x@example.com", &"p".repeat(300) as &str, "password"),
    ] {
        let (s, v) = status_of(signup(email, password)).await;
        assert_eq!((s, v["error"]["param"].as_str()), (400, Some(field)), "{v}");
    }
    let (s, v) = status_of(
        app.client
            .post(format!("{}/api/v1/auth/signup", app.base))
            .header("origin", &app.base)
            .json(&json!({ "email": "x@example.com", "password": PASSWORD, "admin": true })),
    )
    .await;
    assert_eq!(s, 400, "{v}");
    assert_eq!(users, 1);
}

#[tokio::test]
async fn sign_in_is_throttled_per_email_across_instances() {
    let limits = [
        ("INFRON_SIGNIN_MAX_PER_EMAIL", "3".to_string()),
        ("INFRON_SIGNIN_MAX_PER_IP", "1000".to_string()),
    ];
    let t = spawn_tenant_app(&limits).await;
    let app = &t.app;
    let replica = spawn_replica(app, &limits).await;
    let (_, email, _) = member(app, None).await; // one successful sign-in counted
    let mut a = Browser::new(&app.base);
    let mut b = Browser::new(&replica);
    assert_eq!(a.sign_in(&email, "wrong password 1").await, 401);
    assert_eq!(b.sign_in(&email, "wrong password 2").await, 401);
    // The fourth attempt within the window, on either instance, is refused.
    let res = b
        .client
        .post(format!("{replica}/api/v1/auth/signin"))
        .header("origin", &replica)
        .json(&json!({ "email": email, "password": PASSWORD }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 429);
    let wait: u64 = res.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=900).contains(&wait), "{wait}");
    assert_eq!(
        a.sign_in(&email, PASSWORD).await,
        429,
        "the right password too"
    );
    // Another address is not affected.
    let (_, other, _) = member(app, None).await;
    assert_eq!(a.sign_in(&other, PASSWORD).await, 200);
}

#[tokio::test]
async fn reset_requests_are_throttled_per_ip() {
    let t = spawn_tenant_app(&[("INFRON_SIGNIN_MAX_PER_IP", "2".to_string())]).await;
    let app = &t.app;
    let forgot = |email: String| {
        app.client
            .post(format!("{}/api/v1/auth/password/forgot", app.base))
            .json(&json!({ "email": email }))
    };
    assert_eq!(status_of(forgot("a@example.com".into())).await.0, 202);
    assert_eq!(status_of(forgot("b@example.com".into())).await.0, 202);
    let (s, v) = status_of(forgot("c@example.com".into())).await;
    assert_eq!(s, 429, "{v}");
    assert_eq!(v["error"]["type"], "rate_limit_error");
}

#[tokio::test]
async fn management_keys_administer_but_cannot_call_models() {
    let t = spawn_tenant_app(&[]).await;
    let app = &t.app;
    let (_, _, owner) = member(app, None).await;
    let (_, mgmt) = api_key(&owner, json!({ "name": "ci", "kind": "management" })).await;
    let res = app.post_chat(&mgmt, &chat_body("test/chat", None)).await;
    assert_eq!(res.status(), 403);
    let v: Value = res.json().await.unwrap();
    assert_eq!(v["error"]["type"], "permission_error");
    // It creates and lists inference keys...
    let r = app
        .client
        .post(format!("{}/api/v1/keys", app.base))
        .bearer_auth(&mgmt)
        .json(&json!({ "name": "made by ci", "limit": 1 }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let created: Value = r.json().await.unwrap();
    let (s, list) = status_of(
        app.client
            .get(format!("{}/api/v1/keys", app.base))
            .bearer_auth(&mgmt),
    )
    .await;
    assert_eq!(s, 200);
    assert_eq!(list["data"].as_array().unwrap().len(), 1, "{list}");
    // ...and the key it made calls models (once credits exist).
    let account: uuid::Uuid = created["data"]["workspace_id"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    infron_billing::grants::grant(
        &app.pg,
        &app.hot,
        account,
        "1".parse().unwrap(),
        "t",
        "grant:t".into(),
    )
    .await
    .unwrap();
    let secret = created["key"].as_str().unwrap();
    assert_eq!(
        app.post_chat(secret, &chat_body("test/chat", None))
            .await
            .status(),
        200
    );
    // /api/v1/key says what the management key is.
    let (_, k) = status_of(
        app.client
            .get(format!("{}/api/v1/key", app.base))
            .bearer_auth(&mgmt),
    )
    .await;
    assert_eq!(k["data"]["is_management_key"], true);
    // Deleting the inference key stops it at once.
    let hash = created["data"]["hash"].as_str().unwrap();
    let (s, v) = status_of(
        app.client
            .delete(format!("{}/api/v1/keys/{hash}", app.base))
            .bearer_auth(&mgmt),
    )
    .await;
    assert_eq!((s, v["deleted"].as_bool()), (200, Some(true)));
    let mut status = 0;
    for _ in 0..40 {
        status = app
            .post_chat(secret, &chat_body("test/chat", None))
            .await
            .status()
            .as_u16();
        if status == 401 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert_eq!(status, 401);
    let (s, _) = status_of(
        app.client
            .get(format!("{}/api/v1/keys/{hash}", app.base))
            .bearer_auth(&mgmt),
    )
    .await;
    assert_eq!(s, 404, "a deleted key is gone");
}

#[tokio::test]
async fn key_limits_defaults_and_bad_input() {
    let t = spawn_tenant_app(&[]).await;
    let app = &t.app;
    let (_, _, owner) = member(app, None).await;
    // Account defaults apply to keys created without a limit.
    let (s, v) = status_of(owner.patch(
        "/api/v1/account",
        &json!({ "default_key_limit": 3, "default_key_limit_reset": "daily", "allow_training": true }),
    ))
    .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["data"]["allow_training"], true);
    let (hash, _) = api_key(&owner, json!({ "name": "defaulted" })).await;
    let (_, k) = status_of(owner.get(&format!("/api/v1/keys/{hash}"))).await;
    assert_eq!(k["data"]["limit"], 3);
    assert_eq!(k["data"]["limit_reset"], "daily");
    let (hash2, _) = api_key(&owner, json!({ "name": "unlimited", "limit": null })).await;
    let (_, k) = status_of(owner.get(&format!("/api/v1/keys/{hash2}"))).await;
    assert!(k["data"]["limit"].is_null());
    // PATCH changes what it names and nothing else.
    let (s, k) = status_of(owner.patch(
        &format!("/api/v1/keys/{hash}"),
        &json!({ "limit": 7.5, "name": "renamed", "disabled": true }),
    ))
    .await;
    assert_eq!(s, 200, "{k}");
    assert_eq!(
        (
            k["data"]["limit"].to_string().as_str(),
            k["data"]["name"].as_str()
        ),
        ("7.5", Some("renamed"))
    );
    assert_eq!(
        (
            k["data"]["disabled"].as_bool(),
            k["data"]["limit_reset"].as_str()
        ),
        (Some(true), Some("daily"))
    );
    // Disabled keys are listed only on request.
    let (_, l) = status_of(owner.get("/api/v1/keys")).await;
    assert_eq!(l["data"].as_array().unwrap().len(), 1);
    let (_, l) = status_of(owner.get("/api/v1/keys?include_disabled=true")).await;
    assert_eq!(l["data"].as_array().unwrap().len(), 2);
    // Bad input: 400 naming the field, nothing changed.
    for (body, field) in [
        (json!({ "limit": -1 }), "limit"),
        (json!({ "limit_reset": "hourly" }), "limit_reset"),
        (
            json!({ "expires_at": "2000-01-01T00:00:00Z" }),
            "expires_at",
        ),
        (
            json!({ "expires_at": "2999-01-01T00:00:00+01:00" }),
            "expires_at",
        ),
        (json!({ "disabled": "no" }), "disabled"),
        (json!({ "name": "" }), "name"),
        (json!({ "owner": "me" }), "body"),
    ] {
        let (s, v) = status_of(owner.patch(&format!("/api/v1/keys/{hash}"), &body)).await;
        assert_eq!(
            (s, v["error"]["param"].as_str()),
            (400, Some(field)),
            "{body}: {v}"
        );
    }
    let (_, k) = status_of(owner.get(&format!("/api/v1/keys/{hash}?"))).await;
    assert_eq!(k["data"]["name"], "renamed");
    assert_eq!(k["data"]["limit"].to_string(), "7.5");
    for q in ["offset=-1", "include_disabled=maybe", "kind=root"] {
        let (s, _) = status_of(owner.get(&format!("/api/v1/keys?{q}"))).await;
        assert_eq!(s, 400, "{q}");
    }
    for q in ["limit=0", "status=999", "from=yesterday", "cursor=zzz"] {
        let (s, v) = status_of(owner.get(&format!("/api/v1/logs?{q}"))).await;
        assert_eq!(s, 400, "{q}: {v}");
    }
    for q in ["date=2001-01-01", "date=today", "group_by=model"] {
        let (s, _) = status_of(owner.get(&format!("/api/v1/activity?{q}"))).await;
        assert_eq!(s, 400, "{q}");
    }
}
