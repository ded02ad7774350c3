//! Helpers for the tenant API tests: an app with a real SMTP sink, a cookie-keeping "browser"
//! that sends Origin and CSRF headers like the dashboard's pages, and users in roles.

use reqwest::RequestBuilder;
use serde_json::{json, Value};
use uuid::Uuid;

use crate::helpers::*;
use crate::smtp_sink::SmtpSink;

pub const PASSWORD: &str = "correct horse battery staple";

pub struct TenantApp {
    pub app: TestApp,
    pub smtp: SmtpSink,
}

pub async fn spawn_tenant_app(extra: &[(&str, String)]) -> TenantApp {
    let smtp = SmtpSink::start().await;
    // `extra` first: the first value of a setting wins. Every test signs in from 127.0.0.1, so
    // the per-address limit is raised unless a test sets it.
    let mut env: Vec<(&str, String)> = extra.to_vec();
    env.push(("INFRON_SMTP_URL", smtp.url()));
    env.push(("INFRON_SIGNIN_MAX_PER_IP", "1000".to_string()));
    let app = spawn_app_with(&env).await;
    TenantApp { app, smtp }
}

/// A client that keeps cookies and sends what the dashboard's pages send.
pub struct Browser {
    pub client: reqwest::Client,
    pub base: String,
    pub csrf: String,
}

impl Browser {
    pub fn new(base: &str) -> Browser {
        Browser {
            client: reqwest::Client::builder()
                .cookie_store(true)
                .build()
                .unwrap(),
            base: base.to_string(),
            csrf: String::new(),
        }
    }

    pub fn get(&self, path: &str) -> RequestBuilder {
        self.client.get(format!("{}{path}", self.base))
    }

    fn with_headers(&self, r: RequestBuilder) -> RequestBuilder {
        r.header("origin", &self.base)
            .header("x-csrf-token", &self.csrf)
    }

    pub fn post(&self, path: &str, body: &Value) -> RequestBuilder {
        self.with_headers(self.client.post(format!("{}{path}", self.base)))
            .json(body)
    }

    pub fn patch(&self, path: &str, body: &Value) -> RequestBuilder {
        self.with_headers(self.client.patch(format!("{}{path}", self.base)))
            .json(body)
    }

    pub fn delete(&self, path: &str) -> RequestBuilder {
        self.with_headers(self.client.delete(format!("{}{path}", self.base)))
    }

    /// Signs in; returns the status (and keeps the session's CSRF token on success).
    pub async fn sign_in(&mut self, email: &str, password: &str) -> u16 {
        let res = self
            .client
            .post(format!("{}/api/v1/auth/signin", self.base))
            .header("origin", &self.base)
            .json(&json!({ "email": email, "password": password }))
            .send()
            .await
            .unwrap();
        let status = res.status().as_u16();
        if status == 200 {
            let v: Value = res.json().await.unwrap();
            self.csrf = v["data"]["csrf_token"].as_str().unwrap().to_string();
        }
        status
    }
}

/// A verified user created in the database (no email round trip), a member of `account`
/// with `role` if given, signed in with a fresh browser acting in that account.
pub async fn member(app: &TestApp, account: Option<(Uuid, &str)>) -> (Uuid, String, Browser) {
    let email = format!("u{}@example.com", Uuid::new_v4().simple());
    let hash = infron_accounts::password::hash(
        &infron_accounts::Password::parse("password", PASSWORD).unwrap(),
    )
    .await
    .unwrap();
    let mut tx = app.pg.begin().await.unwrap();
    let user = infron_store::users::insert_user(&mut tx, Uuid::now_v7(), &email, &hash)
        .await
        .unwrap()
        .unwrap();
    let account = match account {
        Some((a, role)) => {
            infron_store::members::insert(&mut tx, a, user.id, role)
                .await
                .unwrap();
            a
        }
        None => {
            let a = Uuid::now_v7();
            infron_store::accounts::create_in(&mut tx, a, "team", Some(user.id))
                .await
                .unwrap();
            infron_store::members::insert(&mut tx, a, user.id, "owner")
                .await
                .unwrap();
            a
        }
    };
    tx.commit().await.unwrap();
    infron_store::users::mark_verified(&app.pg, user.id)
        .await
        .unwrap();
    let mut b = Browser::new(&app.base);
    assert_eq!(b.sign_in(&email, PASSWORD).await, 200);
    let r = b
        .post("/api/v1/me/account", &json!({ "account_id": account }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    (user.id, email, b)
}

/// The password of the operators `new_operator` makes.
pub const OPERATOR_PASSWORD: &str = "operator passphrase 1";

/// An operator account as `infron operators create` makes it; returns its email.
pub async fn new_operator(app: &TestApp) -> String {
    let email = format!("op{}@example.com", Uuid::new_v4().simple());
    let hash = infron_accounts::password::hash(
        &infron_accounts::Password::parse("password", OPERATOR_PASSWORD).unwrap(),
    )
    .await
    .unwrap();
    infron_store::users::insert_operator(&app.pg, Uuid::now_v7(), &email, &hash)
        .await
        .unwrap()
        .unwrap();
    email
}

/// An operator, signed in over the API.
pub async fn operator(app: &TestApp) -> Browser {
    let email = new_operator(app).await;
    let password = OPERATOR_PASSWORD;
    let mut b = Browser::new(&app.base);
    let res = b
        .client
        .post(format!("{}/api/v1/operator/auth/signin", app.base))
        .header("origin", &app.base)
        .json(&json!({ "email": email, "password": password }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let v: Value = res.json().await.unwrap();
    b.csrf = v["data"]["csrf_token"].as_str().unwrap().to_string();
    b
}

/// Creates a key through the API as `b`; returns (hash, secret).
pub async fn api_key(b: &Browser, body: Value) -> (String, String) {
    let r = b.post("/api/v1/keys", &body).send().await.unwrap();
    assert_eq!(r.status(), 201, "{}", r.text().await.unwrap());
    let v: Value = r.json().await.unwrap();
    (
        v["data"]["hash"].as_str().unwrap().to_string(),
        v["key"].as_str().unwrap().to_string(),
    )
}

pub async fn status_of(r: RequestBuilder) -> (u16, Value) {
    let res = r.send().await.unwrap();
    let s = res.status().as_u16();
    let text = res.text().await.unwrap();
    (
        s,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}
