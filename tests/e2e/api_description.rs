//! The gateway's own OpenAPI document (`GET /openapi.json`, generated from the code with
//! utoipa): it is OpenAPI 3.1, lists the main paths, and real answers validate against the
//! schemas it gives for them. The API reference page (`/docs/api`) lists every path of it.

use serde_json::{json, Value};

use crate::helpers::*;
use crate::tenant_helpers::*;

/// A small JSON Schema validator for what the document uses: `$ref` to components, `allOf`,
/// `oneOf`, `anyOf`, `type` (one or several), `enum`, `pattern` (only anchored literals here,
/// compared as text), `required`, `properties`, `items`, `minimum`, `maximum`, and
/// `additionalProperties: false`.
fn validate(doc: &Value, schema: &Value, v: &Value, path: &str, errors: &mut Vec<String>) {
    if let Some(r) = schema["$ref"].as_str() {
        let name = r.rsplit('/').next().unwrap();
        let target = &doc["components"]["schemas"][name];
        assert!(!target.is_null(), "{path}: dangling $ref {r}");
        return validate(doc, target, v, path, errors);
    }
    for s in schema["allOf"].as_array().into_iter().flatten() {
        validate(doc, s, v, path, errors);
    }
    for key in ["oneOf", "anyOf"] {
        if let Some(alts) = schema[key].as_array() {
            let matching = alts
                .iter()
                .filter(|s| {
                    let mut e = Vec::new();
                    validate(doc, s, v, path, &mut e);
                    e.is_empty()
                })
                .count();
            let ok = if key == "oneOf" {
                matching == 1
            } else {
                matching >= 1
            };
            if !ok {
                errors.push(format!(
                    "{path}: {matching} alternatives of {key} match {v}"
                ));
            }
        }
    }
    let type_ok = |t: &str| match t {
        "null" => v.is_null(),
        "boolean" => v.is_boolean(),
        "integer" => v.is_i64() || v.is_u64(),
        "number" => v.is_number(),
        "string" => v.is_string(),
        "array" => v.is_array(),
        "object" => v.is_object(),
        _ => true,
    };
    let typed = match &schema["type"] {
        Value::String(t) => type_ok(t),
        Value::Array(ts) => ts.iter().any(|t| type_ok(t.as_str().unwrap_or(""))),
        _ => true,
    };
    if !typed {
        errors.push(format!("{path}: {v} is not of type {}", schema["type"]));
        return;
    }
    if let Some(values) = schema["enum"].as_array() {
        if !values.contains(v) {
            errors.push(format!("{path}: {v} is not one of {values:?}"));
        }
    }
    if let (Some(p), Some(s)) = (schema["pattern"].as_str(), v.as_str()) {
        if let Some(literal) = p.strip_prefix('^').and_then(|p| p.strip_suffix('$')) {
            if !literal.contains(['[', '(', '*', '+', '{']) && s != literal.replace('\\', "") {
                errors.push(format!("{path}: {s:?} does not match {p}"));
            }
        }
    }
    if let Some(n) = v.as_f64() {
        if schema["minimum"].as_f64().is_some_and(|m| n < m) {
            errors.push(format!("{path}: {n} is below {}", schema["minimum"]));
        }
        if schema["maximum"].as_f64().is_some_and(|m| n > m) {
            errors.push(format!("{path}: {n} is above {}", schema["maximum"]));
        }
    }
    if let Some(obj) = v.as_object() {
        for r in schema["required"].as_array().into_iter().flatten() {
            let r = r.as_str().unwrap();
            if !obj.contains_key(r) {
                errors.push(format!("{path}: required field '{r}' is missing"));
            }
        }
        let props = schema["properties"].as_object();
        for (k, child) in obj {
            match props.and_then(|p| p.get(k)) {
                Some(s) => validate(doc, s, child, &format!("{path}.{k}"), errors),
                None if schema["additionalProperties"] == json!(false) => {
                    errors.push(format!("{path}: unexpected field '{k}'"))
                }
                None => {}
            }
        }
    }
    if let (Some(items), Some(arr)) = (schema.get("items"), v.as_array()) {
        for (i, item) in arr.iter().enumerate() {
            validate(doc, items, item, &format!("{path}[{i}]"), errors);
        }
    }
}

/// The schema the document gives for `method path`'s `status` JSON answer.
fn response_schema(doc: &Value, method: &str, path: &str, status: &str) -> Value {
    let s = doc["paths"][path][method]["responses"][status]["content"]["application/json"]
        ["schema"]
        .clone();
    assert!(!s.is_null(), "no {status} JSON schema for {method} {path}");
    s
}

fn check(doc: &Value, method: &str, path: &str, status: &str, body: &Value) {
    let schema = response_schema(doc, method, path, status);
    let mut errors = Vec::new();
    validate(doc, &schema, body, "$", &mut errors);
    assert!(
        errors.is_empty(),
        "{method} {path} {status} does not match the document:\n{}\n{body:#}",
        errors.join("\n")
    );
}

async fn get_json(app: &TestApp, key: &str, path: String) -> Value {
    let r = app
        .client
        .get(format!("{}{path}", app.base))
        .bearer_auth(key)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "{path}");
    r.json().await.unwrap()
}

async fn document(app: &TestApp, path: &str) -> Value {
    let r = app
        .client
        .get(format!("{}{path}", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "{path}");
    assert!(r.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("application/json"));
    r.json().await.unwrap()
}

#[tokio::test]
async fn the_document_is_openapi_3_1_and_real_answers_match_it() {
    let app = spawn_app().await;
    let doc = document(&app, "/openapi.json").await;
    assert!(doc["openapi"].as_str().unwrap().starts_with("3.1"));
    assert_eq!(doc["info"]["title"], "Infron API");
    // The prefixed copies are the same document.
    assert_eq!(document(&app, "/v1/openapi.json").await, doc);
    assert_eq!(document(&app, "/api/v1/openapi.json").await, doc);

    let paths = doc["paths"].as_object().unwrap();
    for (path, method) in [
        ("/v1/chat/completions", "post"),
        ("/v1/completions", "post"),
        ("/v1/embeddings", "post"),
        ("/v1/responses", "post"),
        ("/v1/messages", "post"),
        ("/v1/messages/count_tokens", "post"),
        ("/v1/models", "get"),
        ("/v1/models/{id}", "get"),
        ("/api/v1/models/{author}/{slug}/endpoints", "get"),
        ("/api/v1/credits", "get"),
        ("/api/v1/key", "get"),
        ("/api/v1/generation", "get"),
        ("/api/v1/keys", "post"),
        ("/api/v1/keys/{hash}", "patch"),
        ("/api/v1/members", "get"),
        ("/api/v1/account", "patch"),
    ] {
        assert!(
            paths.get(path).and_then(|p| p.get(method)).is_some(),
            "{method} {path} is not in the document"
        );
    }
    // Every route the server has is described, but Stripe's webhook (called by Stripe).
    for (path, method) in [
        ("/api/v1/credits/checkout", "post"),
        ("/api/v1/account/alerts", "patch"),
        ("/api/v1/account/auto-topup/card", "post"),
        ("/api/v1/operator/accounts/{id}/grants", "post"),
        ("/api/v1/operator/audit", "get"),
        ("/api/v1/admin/catalog/reload", "post"),
        ("/health", "get"),
        ("/ready", "get"),
        ("/metrics", "get"),
    ] {
        assert!(
            paths.get(path).and_then(|p| p.get(method)).is_some(),
            "{method} {path} is not in the document"
        );
    }
    assert!(paths.keys().all(|p| !p.contains("/stripe/webhook")));
    // Security schemes, the error shape and streams are described.
    let schemes = &doc["components"]["securitySchemes"];
    assert_eq!(schemes["bearer"]["scheme"], "bearer");
    assert_eq!(schemes["x_api_key"]["name"], "x-api-key");
    let chat = &doc["paths"]["/v1/chat/completions"]["post"];
    assert!(chat["responses"]["200"]["content"]["text/event-stream"].is_object());
    assert_eq!(
        chat["responses"]["402"]["content"]["application/json"]["schema"]["$ref"],
        "#/components/schemas/ErrorResponse"
    );
    // Request examples name a model this gateway serves.
    assert_eq!(
        chat["requestBody"]["content"]["application/json"]["example"]["model"],
        "test/chat"
    );

    // A real chat completion, with and without cost, validates against its schema.
    let t = app.tenant("10").await;
    for body in [
        chat_body("test/chat", None),
        json!({"model": "test/chat", "messages": [{"role": "user", "content": "Hi"}],
               "max_tokens": 20, "usage": {"include": true}}),
    ] {
        let r = app.post_chat(&t.key, &body).await;
        assert_eq!(r.status(), 200);
        let v: Value = r.json().await.unwrap();
        check(&doc, "post", "/v1/chat/completions", "200", &v);
    }
    // And an error answer validates against the error shape.
    let r = app
        .post_chat(
            &t.key,
            &json!({"model": "no/such-model", "messages": [{"role": "user", "content": "x"}]}),
        )
        .await;
    assert_eq!(r.status(), 404);
    let v: Value = r.json().await.unwrap();
    check(&doc, "post", "/v1/chat/completions", "404", &v);

    // What actix's extractors refuse answers in the error envelope, as documented.
    let r = app
        .client
        .get(format!("{}/v1/models?context=abc", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["error"]["type"], "invalid_request_error");
    check(&doc, "get", "/v1/models", "400", &v);
    let r = app
        .client
        .delete(format!("{}/api/v1/members/not-a-uuid", app.base))
        .bearer_auth(&t.key)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    let v: Value = r.json().await.unwrap();
    check(&doc, "delete", "/api/v1/members/{user_id}", "404", &v);

    // Other answers: models, the key, credits.
    let get = |path: &str| get_json(&app, &t.key, path.to_string());
    check(&doc, "get", "/v1/models", "200", &get("/v1/models").await);
    check(
        &doc,
        "get",
        "/api/v1/models/{author}/{slug}",
        "200",
        &get("/api/v1/models/test/chat").await,
    );
    check(
        &doc,
        "get",
        "/api/v1/models/{author}/{slug}/endpoints",
        "200",
        &get("/api/v1/models/test/chat/endpoints").await,
    );
    check(&doc, "get", "/api/v1/key", "200", &get("/api/v1/key").await);
    check(
        &doc,
        "get",
        "/api/v1/credits",
        "200",
        &get("/api/v1/credits").await,
    );
}

/// The answers of the alert, auto top-up, operator and operations routes match the document.
#[tokio::test]
async fn alert_operator_and_operations_answers_match_the_document() {
    let t = spawn_tenant_app(&[]).await;
    let app = &t.app;
    let doc = document(app, "/openapi.json").await;
    let (_, _, owner) = member(app, None).await;
    let (s, me) = status_of(owner.get("/api/v1/me")).await;
    assert_eq!(s, 200);
    let account = me["data"]["account_id"].as_str().unwrap().to_string();

    let (s, v) = status_of(owner.patch(
        "/api/v1/account/alerts",
        &json!({ "low_balance_threshold": "5", "key_spend": true }),
    ))
    .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["data"]["low_balance_threshold"], json!(5));
    check(&doc, "patch", "/api/v1/account/alerts", "200", &v);
    let (s, v) = status_of(owner.get("/api/v1/account/alerts")).await;
    assert_eq!(s, 200);
    check(&doc, "get", "/api/v1/account/alerts", "200", &v);
    let (s, v) = status_of(owner.patch("/api/v1/account/alerts", &json!({ "nope": 1 }))).await;
    assert_eq!(s, 400);
    check(&doc, "patch", "/api/v1/account/alerts", "400", &v);
    let (s, v) = status_of(owner.get("/api/v1/account/auto-topup")).await;
    assert_eq!(s, 200);
    assert_eq!(v["data"]["enabled"], false);
    check(&doc, "get", "/api/v1/account/auto-topup", "200", &v);
    // Without Stripe configured, buying credits is 503 in the error shape.
    let (_, key) = api_key(&owner, json!({ "name": "k" })).await;
    let r = app
        .client
        .post(format!("{}/api/v1/credits/checkout", app.base))
        .bearer_auth(&key)
        .json(&json!({ "amount": 20 }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 503);
    let v: Value = r.json().await.unwrap();
    check(&doc, "post", "/api/v1/credits/checkout", "503", &v);

    let op = operator(app).await;
    let (s, v) = status_of(op.get(&format!("/api/v1/operator/accounts?q={account}"))).await;
    assert_eq!(s, 200);
    assert_eq!(v["data"][0]["id"], account.as_str());
    check(&doc, "get", "/api/v1/operator/accounts", "200", &v);
    let (s, v) = status_of(op.post(
        &format!("/api/v1/operator/accounts/{account}/grants"),
        &json!({ "amount": "3", "reason": "welcome" }),
    ))
    .await;
    assert_eq!(s, 200, "{v}");
    check(
        &doc,
        "post",
        "/api/v1/operator/accounts/{id}/grants",
        "200",
        &v,
    );
    let grant = v["data"]["grant"].as_str().unwrap().to_string();
    let (s, v) = status_of(op.get(&format!("/api/v1/operator/accounts/{account}"))).await;
    assert_eq!(s, 200);
    assert_eq!(v["data"]["keys"][0]["name"], "k");
    check(&doc, "get", "/api/v1/operator/accounts/{id}", "200", &v);
    let (s, v) = status_of(op.post(
        &format!("/api/v1/operator/accounts/{account}/reversals"),
        &json!({ "grant": grant, "reason": "by mistake" }),
    ))
    .await;
    assert_eq!(s, 200, "{v}");
    check(
        &doc,
        "post",
        "/api/v1/operator/accounts/{id}/reversals",
        "200",
        &v,
    );
    let (s, v) = status_of(op.post(
        &format!("/api/v1/operator/accounts/{account}/freeze"),
        &json!({ "reason": "chargebacks" }),
    ))
    .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["data"]["frozen"], true);
    check(
        &doc,
        "post",
        "/api/v1/operator/accounts/{id}/freeze",
        "200",
        &v,
    );
    let (s, v) = status_of(op.get("/api/v1/operator/audit?limit=5")).await;
    assert_eq!(s, 200);
    check(&doc, "get", "/api/v1/operator/audit", "200", &v);

    for path in ["/health", "/ready"] {
        let v = get_json(app, "", path.to_string()).await;
        check(&doc, "get", path, "200", &v);
    }
}

#[tokio::test]
async fn the_reference_page_lists_every_path_of_the_document() {
    let app = spawn_app().await;
    let doc = document(&app, "/openapi.json").await;
    let r = app
        .client
        .get(format!("{}/docs/api", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let csp = r.headers()["content-security-policy"].to_str().unwrap();
    assert!(csp.contains("script-src 'self'"));
    let html = r.text().await.unwrap();
    assert!(html.contains("API reference"));
    assert!(!html.contains("<script>"), "no inline scripts");
    for (path, item) in doc["paths"].as_object().unwrap() {
        assert!(
            html.contains(&format!("<code class=\"path\">{path}</code>")),
            "{path} is missing from the reference page"
        );
        for method in item.as_object().unwrap().keys() {
            let m = method.to_ascii_uppercase();
            assert!(
                html.contains(&format!(
                    "method-{m}\">{m}</span> <code class=\"path\">{path}</code>"
                )),
                "{m} {path} is missing from the reference page"
            );
        }
    }
    // Linked from the pages' navigation.
    let signin = app
        .client
        .get(format!("{}/sign-in", app.base))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(signin.contains("href=\"/docs/api\""));
}
