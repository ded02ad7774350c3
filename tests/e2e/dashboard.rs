//! The dashboard's forms as a browser without JavaScript sends them (plain form posts, no
//! headers but Origin), and what they refuse: a change without the session's CSRF token, or from
//! another origin. The browser flows themselves are in tests/browser.

use uuid::Uuid;

use crate::tenant_helpers::*;

fn form_client() -> reqwest::Client {
    reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// The session's CSRF token as the page's forms carry it.
fn csrf_in(page: &str) -> String {
    let at = page
        .find("name=\"csrf_token\" value=\"")
        .expect("a form with the CSRF token");
    let rest = &page[at + "name=\"csrf_token\" value=\"".len()..];
    rest[..rest.find('"').unwrap()].to_string()
}

#[tokio::test]
async fn dashboard_forms_work_without_javascript_and_refuse_cross_site_changes() {
    let t = spawn_tenant_app(&[]).await;
    let app = &t.app;
    let base = &app.base;
    let (_, email, _) = member(app, None).await;
    let c = form_client();

    // Signed out: pages send you to sign in (htmx's fragment requests by HX-Redirect, so the
    // sign-in page is not swapped into a table); the sign-in page carries the strict policy.
    let r = c
        .get(format!("{base}/logs?partial=1"))
        .header("hx-request", "true")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["hx-redirect"], "/sign-in");
    let r = c.get(format!("{base}/keys")).send().await.unwrap();
    assert_eq!(r.status(), 303);
    assert_eq!(r.headers()["location"], "/sign-in");
    let r = c.get(format!("{base}/sign-in")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let csp = r.headers()["content-security-policy"].to_str().unwrap();
    assert!(
        csp.contains("script-src 'self'") && !csp.contains("unsafe"),
        "{csp}"
    );

    // Sign-in from another site is refused; a wrong password is shown on the page.
    let r = c
        .post(format!("{base}/sign-in"))
        .header("origin", "https://evil.example")
        .form(&[("email", email.as_str()), ("password", PASSWORD)])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    let r = c
        .post(format!("{base}/sign-in"))
        .header("origin", base)
        .form(&[("email", email.as_str()), ("password", "not the password")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let page = r.text().await.unwrap();
    assert!(page.contains("invalid email or password"), "{page}");
    assert!(!page.contains("not the password"));

    let r = c
        .post(format!("{base}/sign-in"))
        .header("origin", base)
        .form(&[("email", email.as_str()), ("password", PASSWORD)])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    assert_eq!(r.headers()["location"], "/keys");
    let keys = c.get(format!("{base}/keys")).send().await.unwrap();
    assert_eq!(keys.status(), 200);
    let page = keys.text().await.unwrap();
    let csrf = csrf_in(&page);

    // A change without the token, or with it from another origin, changes nothing.
    for (origin, token) in [(base.as_str(), ""), ("https://evil.example", csrf.as_str())] {
        let r = c
            .post(format!("{base}/keys"))
            .header("origin", origin)
            .form(&[("name", "sneaky"), ("csrf_token", token)])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 403, "origin {origin}");
    }

    // Create a key with a limit and expiry: the secret is on the page once, and it works.
    let r = c
        .post(format!("{base}/keys"))
        .header("origin", base)
        .form(&[
            ("name", "form key"),
            ("limit", "5"),
            ("limit_reset", "daily"),
            ("expires", "2099-01-31"),
            ("csrf_token", &csrf),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let page = r.text().await.unwrap();
    let at = page.find("id=\"new-key-secret\">").unwrap() + "id=\"new-key-secret\">".len();
    let secret = &page[at..at + page[at..].find('<').unwrap()];
    assert!(secret.starts_with("sk-inf-"), "{secret}");
    let r = app
        .client
        .get(format!("{base}/api/v1/key"))
        .bearer_auth(secret)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let key: serde_json::Value = r.json().await.unwrap();
    assert_eq!(key["data"]["limit"].as_f64(), Some(5.0));
    assert_eq!(key["data"]["limit_reset"], "daily");
    assert!(key["data"]["expires_at"]
        .as_str()
        .unwrap()
        .starts_with("2099-01-31T23:59:59"));
    let page = c
        .get(format!("{base}/keys"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains("form key") && !page.contains(secret));

    // Edit, disable, enable and delete through the key's forms.
    let hash = {
        let at = page.find("/keys/").unwrap() + "/keys/".len();
        page[at..at + 64].to_string()
    };
    let r = c
        .post(format!("{base}/keys/{hash}/edit"))
        .header("origin", base)
        .form(&[
            ("name", "renamed key"),
            ("limit", ""),
            ("limit_reset", ""),
            ("expires", ""),
            ("csrf_token", &csrf),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    let key: serde_json::Value = app
        .client
        .get(format!("{base}/api/v1/key"))
        .bearer_auth(secret)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(key["data"]["name"], "renamed key");
    assert!(key["data"]["limit"].is_null() && key["data"]["expires_at"].is_null());
    for (action, status_after) in [("disable", 401), ("enable", 200)] {
        let r = c
            .post(format!("{base}/keys/{hash}/{action}"))
            .header("origin", base)
            .form(&[("csrf_token", &csrf)])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{action}");
        let mut seen = 0;
        for _ in 0..100 {
            seen = app
                .client
                .get(format!("{base}/api/v1/key"))
                .bearer_auth(secret)
                .send()
                .await
                .unwrap()
                .status()
                .as_u16();
            if seen == status_after {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        assert_eq!(seen, status_after, "after {action}");
    }
    let r = c
        .post(format!("{base}/keys/{hash}/delete"))
        .header("origin", base)
        .form(&[("csrf_token", &csrf)])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.text().await.unwrap().contains("The key is deleted"));
    let r = c
        .post(format!("{base}/keys/{hash}/delete"))
        .header("origin", base)
        .form(&[("csrf_token", &csrf)])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);

    // A bad value is explained on the page, naming what is wrong.
    let r = c
        .post(format!("{base}/keys"))
        .header("origin", base)
        .form(&[("name", ""), ("csrf_token", &csrf)])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert!(r.text().await.unwrap().contains("name must be 1 to 200"));

    // Buying credits without JavaScript: the review page shows the fee and total. Top-ups are
    // not configured on this server, so the Credits page says so and checkout is refused.
    let page = c
        .get(format!("{base}/credits"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains("Stripe is not configured"), "{page}");
    let r = c
        .post(format!("{base}/credits/review"))
        .header("origin", base)
        .form(&[("amount", "20"), ("csrf_token", &csrf)])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let page = r.text().await.unwrap();
    assert!(page.contains("$1.35") && page.contains("$21.35"), "{page}");
    let r = c
        .post(format!("{base}/credits/checkout"))
        .header("origin", base)
        .form(&[("amount", "20"), ("csrf_token", &csrf)])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 503);
    assert!(r.text().await.unwrap().contains("not configured"));

    // Switching accounts: only to an account of one's own (another's is 404).
    let (_, _, other) = member(app, None).await;
    let foreign = other
        .get("/api/v1/me")
        .send()
        .await
        .unwrap()
        .json::<serde_json::Value>()
        .await
        .unwrap()["data"]["account_id"]
        .as_str()
        .unwrap()
        .to_string();
    let r = c
        .post(format!("{base}/switch-account"))
        .header("origin", base)
        .form(&[("account_id", foreign.as_str()), ("csrf_token", &csrf)])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    let r = c
        .post(format!("{base}/switch-account"))
        .header("origin", base)
        .form(&[
            ("account_id", Uuid::new_v4().to_string().as_str()),
            ("csrf_token", &csrf),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);

    // Signing out ends the session: the old cookie no longer opens a page.
    let r = c
        .post(format!("{base}/sign-out"))
        .header("origin", base)
        .form(&[("csrf_token", &csrf)])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    let r = c.get(format!("{base}/keys")).send().await.unwrap();
    assert_eq!(r.status(), 303);
}

#[tokio::test]
async fn dashboard_pages_never_leak_internals_and_unknown_things_are_404() {
    let t = spawn_tenant_app(&[]).await;
    let app = &t.app;
    let (_, _, b) = member(app, None).await;
    for path in [
        "/keys/00/edit",
        "/logs/gen-not-an-id",
        &format!("/logs/gen-{}", Uuid::new_v4().simple()),
    ] {
        let r = b.get(path).send().await.unwrap();
        let status = r.status().as_u16();
        let page = r.text().await.unwrap();
        assert!(status == 404 || status == 400, "{path}: {status}");
        assert!(page.contains("<h1>"), "{path}: an HTML page");
        assert!(
            !page.contains("panicked") && !page.contains("src/"),
            "{page}"
        );
    }
    // The catalog is public; the search narrows it.
    let page = app
        .client
        .get(format!("{}/models?q=chat-alias", app.base))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains("test/chat"), "{page}");
    let page = app
        .client
        .get(format!("{}/models/test/chat", app.base))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        page.contains("Test Chat") && page.contains("per million"),
        "{page}"
    );
    let r = app
        .client
        .get(format!("{}/models/no/such-model", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    let page = app
        .client
        .get(format!("{}/models?q=zzz-no-such-model", app.base))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains("No model matches"), "{page}");
}

#[tokio::test]
async fn dashboard_members_page_changes_roles_and_removes_within_the_rules() {
    let t = spawn_tenant_app(&[]).await;
    let app = &t.app;
    let base = &app.base;
    let (_, _, owner) = member(app, None).await;
    let me: serde_json::Value = owner
        .get("/api/v1/me")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let account = Uuid::parse_str(me["data"]["account_id"].as_str().unwrap()).unwrap();
    let (mid, memail, m) = member(app, Some((account, "member"))).await;
    let post = |b: &Browser, path: String, form: Vec<(&'static str, String)>| {
        let mut form = form;
        form.push(("csrf_token", b.csrf.clone()));
        b.client
            .post(format!("{base}{path}"))
            .header("origin", base)
            .form(&form)
            .send()
    };

    let page = owner
        .get("/members")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains(&memail) && page.contains(&format!("/members/{mid}/role")));
    let r = post(
        &owner,
        format!("/members/{mid}/role"),
        vec![("role", "billing".into())],
    )
    .await
    .unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.text().await.unwrap().contains("The role is now billing"));
    let list: serde_json::Value = owner
        .get("/api/v1/members")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let row = list["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["email"] == memail.as_str())
        .unwrap()
        .clone();
    assert_eq!(row["role"], "billing");

    // Billing members hold no keys: they start on Credits, and Keys is not theirs.
    let r = m.get("/").send().await.unwrap();
    assert_eq!(r.url().path(), "/credits");
    let page = r.text().await.unwrap();
    assert!(!page.contains("href=\"/keys\""), "no Keys link for billing");
    assert_eq!(m.get("/keys").send().await.unwrap().status(), 403);

    // The member (now billing) can do none of it: 403, and nothing changes.
    let owner_id = me["data"]["user"]["id"].as_str().unwrap().to_string();
    let r = post(&m, format!("/members/{owner_id}/remove"), vec![])
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    // Nobody can make someone owner here, not even the owner.
    let r = post(
        &owner,
        format!("/members/{mid}/role"),
        vec![("role", "owner".into())],
    )
    .await
    .unwrap();
    assert_eq!(r.status(), 403);

    let r = post(&owner, format!("/members/{mid}/remove"), vec![])
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let page = r.text().await.unwrap();
    assert!(
        page.contains("The member is removed") && !page.contains(&format!("<td>{memail}</td>"))
    );
    let r = post(
        &owner,
        format!("/members/{}/remove", Uuid::new_v4()),
        vec![],
    )
    .await
    .unwrap();
    assert_eq!(r.status(), 404);
}

#[tokio::test]
async fn dashboard_logs_page_through_every_request_and_filter() {
    let t = spawn_tenant_app(&[]).await;
    let app = &t.app;
    let (_, _, b) = member(app, None).await;
    let me: serde_json::Value = b
        .get("/api/v1/me")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let account = Uuid::parse_str(me["data"]["account_id"].as_str().unwrap()).unwrap();
    infron_billing::grants::grant(
        &app.pg,
        &app.hot,
        account,
        "5".parse().unwrap(),
        "test",
        format!("grant:{}", Uuid::new_v4()),
    )
    .await
    .unwrap();
    let (_, secret) = api_key(&b, serde_json::json!({ "name": "logged" })).await;
    for _ in 0..51 {
        let r = app
            .post_chat(&secret, &crate::helpers::chat_body("test/chat", None))
            .await;
        assert_eq!(r.status(), 200);
    }
    app.settled().await;
    let rows = |page: &str| page.matches("<a href=\"/logs/gen-").count();
    let page = b.get("/logs").send().await.unwrap().text().await.unwrap();
    assert_eq!(rows(&page), 50);
    assert!(
        page.contains("$5.00") || page.contains("$4.99"),
        "the balance is on top"
    );
    let at = page
        .find("/logs?cursor=")
        .expect("a link to older requests");
    let next = page[at..at + page[at..].find('"').unwrap()].replace("&amp;", "&");
    let older = b.get(&next).send().await.unwrap().text().await.unwrap();
    assert_eq!(rows(&older), 1);
    assert!(!older.contains("/logs?cursor="));
    let failed = b
        .get("/logs?status=error")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(rows(&failed), 0);
    assert!(failed.contains("with these filters"));
    let by_model = b
        .get("/logs?model=test%2Fchat&partial=1")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(rows(&by_model), 50);
    assert!(
        !by_model.contains("<html"),
        "the refresh gets the table only"
    );
    assert!(
        by_model.contains("model=test%2Fchat"),
        "the filter follows the pages"
    );

    // By key, by member and by day.
    let (other_hash, other) = api_key(&b, serde_json::json!({ "name": "other" })).await;
    for _ in 0..2 {
        let r = app
            .post_chat(&other, &crate::helpers::chat_body("test/chat", None))
            .await;
        assert_eq!(r.status(), 200);
    }
    app.settled().await;
    let get = |path: String| {
        let b = &b;
        async move { b.get(&path).send().await.unwrap().text().await.unwrap() }
    };
    let page = get("/logs".into()).await;
    assert!(
        page.contains(&format!("<option value=\"{other_hash}\">other</option>")),
        "the keys are offered"
    );
    let by_key = get(format!("/logs?key={other_hash}")).await;
    assert_eq!(rows(&by_key), 2);
    assert!(by_key.contains(&format!("<option value=\"{other_hash}\" selected>")));
    assert!(
        by_key.contains(&format!("key={other_hash}")),
        "the refresh keeps it"
    );
    let user = me["data"]["user"]["id"].as_str().unwrap().to_string();
    assert_eq!(
        rows(&get(format!("/logs?member={user}&partial=1")).await),
        50
    );
    let today = chrono::Utc::now().date_naive();
    let day = |d: chrono::NaiveDate| d.format("%Y-%m-%d").to_string();
    let tomorrow = day(today + chrono::Days::new(1));
    let yesterday = day(today - chrono::Days::new(1));
    let today = day(today);
    assert_eq!(
        rows(&get(format!("/logs?from={tomorrow}&partial=1")).await),
        0
    );
    assert_eq!(
        rows(&get(format!("/logs?to={yesterday}&partial=1")).await),
        0
    );
    assert_eq!(
        rows(
            &get(format!(
                "/logs?from={today}&to={today}&key={other_hash}&partial=1"
            ))
            .await
        ),
        2
    );
    let r = b.get("/logs?from=31-12-2026").send().await.unwrap();
    assert_eq!(r.status(), 400);
    assert!(r.text().await.unwrap().contains("is not a date"));
}

#[tokio::test]
async fn dashboard_sign_up_offers_the_confirmation_link_again_until_confirmed() {
    let t = spawn_tenant_app(&[]).await;
    let base = &t.app.base;
    let c = form_client();
    let email = format!("new{}@example.com", Uuid::new_v4().simple());
    let r = c
        .post(format!("{base}/sign-up"))
        .header("origin", base)
        .form(&[("email", email.as_str()), ("password", PASSWORD)])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    t.smtp.link(&email, "/verify-email").await;
    let sign_in = || {
        c.post(format!("{base}/sign-in"))
            .header("origin", base)
            .form(&[("email", email.as_str()), ("password", PASSWORD)])
            .send()
    };
    let r = sign_in().await.unwrap();
    assert_eq!(r.status(), 403);
    let page = r.text().await.unwrap();
    assert!(page.contains("confirm your email") && page.contains("/verify-email/resend"));
    let r = c
        .post(format!("{base}/verify-email/resend"))
        .form(&[("email", email.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    let mut links = 0;
    for _ in 0..200 {
        links = t
            .smtp
            .messages()
            .iter()
            .filter(|m| m.to.iter().any(|to| to.eq_ignore_ascii_case(&email)))
            .count();
        if links == 2 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    assert_eq!(links, 2, "a second confirmation email");
    let token = t.smtp.token(&email, "/verify-email").await;
    let page = c
        .get(format!("{base}/verify-email?token={token}"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        page.contains("Confirm my email address"),
        "the link alone uses nothing up"
    );
    let r = c
        .post(format!("{base}/verify-email"))
        .form(&[("token", token.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(r
        .text()
        .await
        .unwrap()
        .contains("Your address is confirmed"));
    let r = c
        .post(format!("{base}/verify-email"))
        .form(&[("token", token.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400, "a link works once");
    let r = sign_in().await.unwrap();
    assert_eq!(r.status(), 303);
}

#[tokio::test]
async fn dashboard_settings_change_privacy_and_the_default_key_limit() {
    let t = spawn_tenant_app(&[]).await;
    let base = &t.app.base;
    let (_, _, owner) = member(&t.app, None).await;
    let post = |form: Vec<(&'static str, &'static str)>| {
        let mut form: Vec<(&str, String)> =
            form.into_iter().map(|(k, v)| (k, v.to_string())).collect();
        form.push(("csrf_token", owner.csrf.clone()));
        owner
            .client
            .post(format!("{base}/settings"))
            .header("origin", base)
            .form(&form)
            .send()
    };
    let r = post(vec![
        ("name", "Team Rocket"),
        ("allow_training", "true"),
        ("default_key_limit", "2.5"),
        ("default_key_limit_reset", "weekly"),
    ])
    .await
    .unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.text().await.unwrap().contains("Settings saved"));
    let s: serde_json::Value = owner
        .get("/api/v1/account")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(s["data"]["name"], "Team Rocket");
    assert_eq!(s["data"]["allow_training"], true);
    assert_eq!(s["data"]["default_key_limit"].as_f64(), Some(2.5));
    assert_eq!(s["data"]["default_key_limit_reset"], "weekly");
    // An unchecked box and an empty limit turn both off; a bad name is explained.
    let r = post(vec![("name", "Team Rocket"), ("default_key_limit", "")])
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let s: serde_json::Value = owner
        .get("/api/v1/account")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(s["data"]["allow_training"], false);
    assert!(
        s["data"]["default_key_limit"].is_null() && s["data"]["default_key_limit_reset"].is_null()
    );
    let r = post(vec![("name", "")]).await.unwrap();
    assert_eq!(r.status(), 400);
    assert!(r.text().await.unwrap().contains("name must be"));
}

/// The catalog page's filters and sorting, checked against the catalog itself.
#[tokio::test]
async fn dashboard_models_filter_by_kind_parameter_context_and_price() {
    let t = spawn_tenant_app(&[]).await;
    let app = &t.app;
    let get = |path: &str| {
        let url = format!("{}{path}", app.base);
        let c = app.client.clone();
        async move { c.get(url).send().await.unwrap().text().await.unwrap() }
    };
    let listed = |page: &str| -> Vec<String> {
        page.match_indices("<a href=\"/models/")
            .map(|(i, _)| {
                let rest = &page[i + "<a href=\"/models/".len()..];
                rest[..rest.find('"').unwrap()].to_string()
            })
            .collect()
    };
    let catalog = infron_router::Catalog::parse(
        &crate::helpers::catalog_toml(&app.mock.base_url()),
        "test catalog",
        &|_| Some("k".into()),
    )
    .unwrap();
    let all = listed(&get("/models").await);
    assert_eq!(all.len(), catalog.models.len().min(200));
    let embeddings = listed(&get("/models?modality=embeddings").await);
    assert!(!embeddings.is_empty());
    for id in &embeddings {
        let m = catalog.model(id).unwrap();
        assert_eq!(m.kind, infron_router::catalog::ModelKind::Embedding, "{id}");
    }
    let big = listed(&get("/models?context=32000").await);
    assert!(
        !big.is_empty() && big.len() < all.len(),
        "the context filter narrows"
    );
    for id in &big {
        assert!(catalog.model(id).unwrap().context_length >= 32_000, "{id}");
    }
    let param = catalog
        .models
        .iter()
        .flat_map(|m| m.supported_parameters.clone())
        .next()
        .expect("some model lists its parameters");
    let supporting = listed(&get(&format!("/models?parameter={param}")).await);
    assert!(!supporting.is_empty() && supporting.len() < all.len());
    for id in &supporting {
        assert!(
            catalog
                .model(id)
                .unwrap()
                .supported_parameters
                .contains(&param),
            "{id}"
        );
    }
    let prompt_per_million = |m: &infron_router::catalog::Model| {
        m.endpoints
            .iter()
            .min_by_key(|e| infron_router::selection::unit_price(e))
            .unwrap()
            .prices
            .prompt
            .decimal()
            * rust_decimal::Decimal::from(1_000_000)
    };
    let threshold = prompt_per_million(catalog.model("test/chat").unwrap());
    let cheap: Vec<String> = catalog
        .models
        .iter()
        .filter(|m| prompt_per_million(m) <= threshold)
        .map(|m| m.id.clone())
        .collect();
    assert!(!cheap.is_empty() && cheap.len() < all.len());
    assert_eq!(
        listed(&get(&format!("/models?max_price={}", threshold.normalize())).await),
        cheap
    );
    let by_price = listed(&get("/models?sort=price").await);
    let price = |id: &String| {
        let m = catalog.model(id).unwrap();
        m.endpoints
            .iter()
            .map(|e| infron_router::selection::unit_price(e))
            .min()
            .unwrap()
    };
    assert!(by_price.windows(2).all(|w| price(&w[0]) <= price(&w[1])));
    let r = app
        .client
        .get(format!("{}/models?max_price=cheap", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
}

/// Activity over a chosen period, per hour or per day, by any measure and grouping; the CSV
/// follows the same choice.
#[tokio::test]
async fn dashboard_activity_by_period_measure_and_group() {
    let t = spawn_tenant_app(&[]).await;
    let app = &t.app;
    let (_, _, b) = member(app, None).await;
    let me: serde_json::Value = b
        .get("/api/v1/me")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let account = Uuid::parse_str(me["data"]["account_id"].as_str().unwrap()).unwrap();
    infron_billing::grants::grant(
        &app.pg,
        &app.hot,
        account,
        "5".parse().unwrap(),
        "test",
        format!("grant:{}", Uuid::new_v4()),
    )
    .await
    .unwrap();
    let (_, first) = api_key(&b, serde_json::json!({ "name": "first key" })).await;
    let (_, second) = api_key(&b, serde_json::json!({ "name": "second key" })).await;
    for (key, n) in [(&first, 3), (&second, 1)] {
        for _ in 0..n {
            let r = app
                .post_chat(key, &crate::helpers::chat_body("test/chat", None))
                .await;
            assert_eq!(r.status(), 200);
        }
    }
    app.settled().await;
    let get = |path: String| {
        let b = &b;
        async move {
            let r = b.get(&path).send().await.unwrap();
            (r.status().as_u16(), r.text().await.unwrap())
        }
    };

    // The last 24 hours, per hour from the log: one hour with all four requests.
    let (status, page) = get("/activity?range=24h&group=key&metric=requests".into()).await;
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("Per hour"), "{page}");
    let hour = chrono::Utc::now().format("%Y-%m-%d %H:00").to_string();
    assert!(
        page.contains(&format!(
            "<tr data-day=\"{hour}\"><td>{hour}</td><td class=\"num\">4</td>"
        )),
        "{page}"
    );
    let marker = "id=\"activity-data\">";
    let data_at = page.find(marker).expect("chart data") + marker.len();
    let data: serde_json::Value =
        serde_json::from_str(&page[data_at..data_at + page[data_at..].find("</script>").unwrap()])
            .unwrap();
    assert_eq!(data["unit"], "requests");
    assert_eq!(
        data["x"].as_array().unwrap().len(),
        24,
        "every hour is on the chart"
    );
    let series = data["series"].as_array().unwrap();
    let of = |label: &str| -> f64 {
        series
            .iter()
            .find(|s| s["label"] == label)
            .unwrap_or_else(|| panic!("{label} in {series:?}"))["values"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_f64().unwrap())
            .sum()
    };
    assert_eq!(of("first key"), 3.0);
    assert_eq!(of("second key"), 1.0);

    // Per day over 7 days, by tokens: totals per key.
    let (_, page) = get("/activity?range=7d&group=key&metric=tokens".into()).await;
    assert!(
        page.contains("Per day") && page.contains("Totals by key"),
        "{page}"
    );
    assert!(
        page.contains("<td>first key</td><td class=\"num\">3</td>"),
        "{page}"
    );
    let (_, csv) = get("/activity.csv?range=24h&group=key&metric=tokens".into()).await;
    assert!(csv.starts_with("key,requests,"), "{csv}");
    assert!(
        csv.contains("first key,3,") && csv.contains("second key,1,"),
        "{csv}"
    );

    // A custom range that holds nothing, and choices that are not offered.
    let tomorrow = (chrono::Utc::now().date_naive() + chrono::Days::new(1))
        .format("%Y-%m-%d")
        .to_string();
    let (status, page) = get(format!("/activity?from={tomorrow}&to={tomorrow}")).await;
    assert_eq!(status, 200);
    assert!(page.contains("No requests in this period"), "{page}");
    for bad in [
        "/activity?range=1y",
        "/activity?metric=vibes",
        "/activity?from=2026-02-01&to=2026-01-01",
        "/activity?from=2020-01-01&to=2026-01-01",
        "/activity?to=yesterday",
    ] {
        let (status, page) = get(bad.to_string()).await;
        assert_eq!(status, 400, "{bad}: {page}");
        assert!(!page.contains("panicked"), "{page}");
    }
}

/// The owner hands the account over on Members, then leaves it from Settings; an owner cannot
/// leave, and a member's leaving disables nothing of anyone else's.
#[tokio::test]
async fn dashboard_transfers_ownership_and_leaves_an_account() {
    let t = spawn_tenant_app(&[]).await;
    let app = &t.app;
    let base = &app.base;
    let (_, _, owner) = member(app, None).await;
    let me: serde_json::Value = owner
        .get("/api/v1/me")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let account = Uuid::parse_str(me["data"]["account_id"].as_str().unwrap()).unwrap();
    let owner_id = me["data"]["user"]["id"].as_str().unwrap().to_string();
    let (mid, memail, m) = member(app, Some((account, "admin"))).await;
    let post = |b: &Browser, path: &str| {
        b.client
            .post(format!("{base}{path}"))
            .header("origin", base)
            .form(&[("csrf_token", b.csrf.clone())])
            .send()
    };
    let role_of = |b: &Browser, who: String| {
        let b = b.client.clone();
        async move {
            let list: serde_json::Value = b
                .get(format!("{base}/api/v1/members"))
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            list["data"]
                .as_array()
                .unwrap()
                .iter()
                .find(|r| r["user_id"] == who.as_str())
                .map(|r| r["role"].as_str().unwrap().to_string())
        }
    };

    // Only the owner is offered the hand-over; an owner cannot leave.
    let page = owner
        .get("/members")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains(&format!("/members/{mid}/transfer")), "{page}");
    let page = m
        .get("/members")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        !page.contains("/transfer\""),
        "admins cannot hand over: {page}"
    );
    let settings = owner
        .get("/settings")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(settings.contains("The owner cannot leave"));
    let r = post(&owner, "/account/leave").await.unwrap();
    assert_eq!(r.status(), 409);
    assert!(
        r.text().await.unwrap().contains("role=\"alert\""),
        "the page says why"
    );
    assert_eq!(
        role_of(&owner, owner_id.clone()).await.as_deref(),
        Some("owner")
    );
    // An admin cannot take the account either.
    let r = post(&m, &format!("/members/{mid}/transfer")).await.unwrap();
    assert_eq!(r.status(), 403);

    let r = post(&owner, &format!("/members/{mid}/transfer"))
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.text().await.unwrap().contains("Ownership is transferred"));
    assert_eq!(role_of(&m, mid.to_string()).await.as_deref(), Some("owner"));
    assert_eq!(
        role_of(&m, owner_id.clone()).await.as_deref(),
        Some("admin")
    );

    // The former owner leaves from Settings and lands outside the account.
    let settings = owner
        .get("/settings")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(settings.contains("action=\"/account/leave\""));
    let r = post(&owner, "/account/leave").await.unwrap();
    assert!(
        r.status().is_success() || r.status().is_redirection(),
        "{}",
        r.status()
    );
    assert_eq!(
        role_of(&m, owner_id.clone()).await,
        None,
        "no longer a member"
    );
    let page = m
        .get("/members")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains(&memail) && !page.contains(&format!("/members/{owner_id}/")));
    // Without a CSRF token nothing happens.
    let r = m
        .client
        .post(format!("{base}/account/leave"))
        .header("origin", base)
        .form(&[("csrf_token", "wrong")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    assert_eq!(role_of(&m, mid.to_string()).await.as_deref(), Some("owner"));
}
