//! Every OpenRouter-shaped response checked field by field against OpenRouter's published
//! OpenAPI document: required fields present, types and enums as documented. The schemas come
//! from a trimmed copy of the document (tests/e2e/fixtures/openrouter-openapi.json, made by
//! scripts/openrouter-fixture.py; its `source` names the commit).

use serde_json::{json, Value};

use crate::helpers::*;
use crate::tenant_helpers::*;

fn spec(route: &str) -> Value {
    let text = include_str!("fixtures/openrouter-openapi.json");
    let all: Value = serde_json::from_str(text).unwrap();
    all["routes"][route].clone()
}

fn type_ok(t: &str, v: &Value) -> bool {
    match t {
        "null" => v.is_null(),
        "boolean" => v.is_boolean(),
        "integer" => v.is_i64() || v.is_u64(),
        "number" => v.is_number(),
        "string" => v.is_string(),
        "array" => v.is_array(),
        "object" => v.is_object(),
        _ => false,
    }
}

/// Provider names are the operator's (catalog `display_name`), not OpenRouter's closed list.
const OPERATOR_NAMED: &[&str] = &["provider_name"];

fn check(schema: &Value, v: &Value, path: &str, errors: &mut Vec<String>) {
    if let Some(all) = schema.get("allOf").and_then(Value::as_array) {
        for s in all {
            check(s, v, path, errors);
        }
    }
    for key in ["anyOf", "oneOf"] {
        if let Some(alts) = schema.get(key).and_then(Value::as_array) {
            let ok = alts.iter().any(|s| {
                let mut e = Vec::new();
                check(s, v, path, &mut e);
                e.is_empty()
            });
            if !ok {
                errors.push(format!("{path}: matches none of {key}: {v}"));
            }
        }
    }
    if let Some(t) = schema.get("type") {
        let ok = match t {
            Value::String(t) => type_ok(t, v),
            Value::Array(ts) => ts.iter().any(|t| type_ok(t.as_str().unwrap_or(""), v)),
            _ => true,
        };
        if !ok {
            errors.push(format!("{path}: expected {t}, got {v}"));
            return;
        }
    }
    if let Some(c) = schema.get("const") {
        if c != v {
            errors.push(format!("{path}: expected {c}, got {v}"));
        }
    }
    let field = path.rsplit('.').next().unwrap_or("");
    if let Some(values) = schema.get("enum").and_then(Value::as_array) {
        if !values.contains(v) && !OPERATOR_NAMED.contains(&field) {
            errors.push(format!(
                "{path}: {v} is not one of {}",
                Value::Array(values.clone())
            ));
        }
    }
    if let Some(obj) = v.as_object() {
        if let Some(req) = schema.get("required").and_then(Value::as_array) {
            for r in req {
                let r = r.as_str().unwrap();
                if !obj.contains_key(r) {
                    errors.push(format!("{path}.{r}: required, missing"));
                }
            }
        }
        if let Some(props) = schema.get("properties").and_then(Value::as_object) {
            for (k, s) in props {
                if let Some(val) = obj.get(k) {
                    check(s, val, &format!("{path}.{k}"), errors);
                }
            }
        }
    }
    if let (Some(items), Some(arr)) = (schema.get("items"), v.as_array()) {
        for (i, item) in arr.iter().enumerate() {
            check(items, item, &format!("{path}[{i}]"), errors);
        }
    }
}

fn conforms(route: &str, v: &Value) -> Vec<String> {
    let s = spec(route);
    assert!(s.is_object(), "no schema for {route}");
    let mut errors = Vec::new();
    check(&s, v, route, &mut errors);
    errors
}

#[test]
fn the_checker_catches_missing_fields_wrong_types_and_enums() {
    let good = json!({"data": {"total_credits": 1.5, "total_usage": 0}});
    assert!(conforms("GET /credits", &good).is_empty());
    assert_eq!(
        conforms("GET /credits", &json!({"data": {"total_credits": 1}})).len(),
        1
    );
    assert_eq!(
        conforms(
            "GET /credits",
            &json!({"data": {"total_credits": "1", "total_usage": 0}})
        )
        .len(),
        1
    );
    assert!(!conforms("DELETE /keys/{hash}", &json!({"deleted": false})).is_empty());
    let model = json!({"data": [], "total_count": 0, "links": {"next": null}});
    assert!(conforms("GET /models", &model).is_empty());
}

#[tokio::test]
async fn openrouter_shaped_responses_match_the_published_document() {
    let t = spawn_tenant_app(&[]).await;
    let app = &t.app;
    let (_, _, owner) = member(app, None).await;
    let (_, me) = status_of(owner.get("/api/v1/me")).await;
    let account: uuid::Uuid = me["data"]["account_id"].as_str().unwrap().parse().unwrap();
    infron_billing::grants::grant(
        &app.pg,
        &app.hot,
        account,
        "5".parse().unwrap(),
        "t",
        "grant:t".into(),
    )
    .await
    .unwrap();
    let (_, mgmt) = api_key(&owner, json!({ "name": "mgmt", "kind": "management" })).await;
    let get = |path: &str, key: &str| {
        let r = app
            .client
            .get(format!("{}{path}", app.base))
            .bearer_auth(key.to_string());
        async move { status_of(r).await }
    };

    let mut failures = Vec::new();
    let mut expect = |route: &str, (status, v): (u16, Value), want: u16| {
        if status != want {
            failures.push(format!("{route}: status {status}: {v}"));
            return;
        }
        failures.extend(conforms(route, &v));
    };

    let created = status_of(
        app.client
            .post(format!("{}/api/v1/keys", app.base))
            .bearer_auth(&mgmt)
            .json(
                &json!({ "name": "shaped", "limit": 5, "limit_reset": "weekly",
                           "expires_at": "2999-12-31T23:59:59Z", "include_byok_in_limit": false }),
            ),
    )
    .await;
    let secret = created.1["key"].as_str().unwrap_or_default().to_string();
    let hash = created.1["data"]["hash"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    expect("POST /keys", created, 201);

    let res = app
        .post_chat(
            &secret,
            &chat_body(
                "test/chat",
                Some(json!({"prompt_tokens": 7, "completion_tokens": 3})),
            ),
        )
        .await;
    assert_eq!(res.status(), 200);
    let id = res.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    // A stream too, whose generation has a first-token time.
    let mut streamed = chat_body("test/chat", None);
    streamed["stream"] = json!(true);
    let _ = app
        .post_chat(&secret, &streamed)
        .await
        .text()
        .await
        .unwrap();
    app.settled().await;

    expect("GET /keys", get("/api/v1/keys", &mgmt).await, 200);
    expect(
        "GET /keys/{hash}",
        get(&format!("/api/v1/keys/{hash}"), &mgmt).await,
        200,
    );
    expect(
        "PATCH /keys/{hash}",
        status_of(
            app.client
                .patch(format!("{}/api/v1/keys/{hash}", app.base))
                .bearer_auth(&mgmt)
                .json(&json!({ "name": "reshaped", "limit": null })),
        )
        .await,
        200,
    );
    expect("GET /key", get("/api/v1/key", &secret).await, 200);
    expect("GET /key", get("/api/v1/key", &mgmt).await, 200);
    expect("GET /credits", get("/api/v1/credits", &mgmt).await, 200);
    expect("GET /credits", get("/api/v1/credits", &secret).await, 200);
    expect(
        "GET /generation",
        get(&format!("/api/v1/generation?id={id}"), &secret).await,
        200,
    );
    expect("GET /activity", get("/api/v1/activity", &mgmt).await, 200);
    let today = chrono::Utc::now().date_naive();
    let (s, act) = get(
        &format!("/api/v1/activity?date={today}&group_by=workspace&api_key_hash={hash}"),
        &mgmt,
    )
    .await;
    assert_eq!(act["data"].as_array().map(Vec::len), Some(1), "{act}");
    expect("GET /activity", (s, act), 200);
    for path in ["/api/v1/models", "/v1/models"] {
        expect("GET /models", get(path, &secret).await, 200);
    }
    for model in ["test/chat", "test/routing", "test/embed"] {
        expect(
            "GET /models/{author}/{slug}/endpoints",
            get(&format!("/api/v1/models/{model}/endpoints"), &secret).await,
            200,
        );
    }
    expect(
        "DELETE /keys/{hash}",
        status_of(
            app.client
                .delete(format!("{}/api/v1/keys/{hash}", app.base))
                .bearer_auth(&mgmt),
        )
        .await,
        200,
    );
    assert!(
        failures.is_empty(),
        "{} differences:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
