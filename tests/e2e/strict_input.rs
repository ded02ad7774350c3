//! Strict input: what a lenient parser would accept and forward is refused with a 400 in the
//! OpenAI error shape whose `param` names the field, and a refused request changes nothing (no
//! hold left, no charge, nothing sent to a provider).

use serde_json::{json, Value};

use crate::helpers::*;

const WIRES: &[&str] = &[
    "conf/openai",
    "conf/anthropic",
    "conf/gemini",
    "conf/bedrock",
    "conf/vertex-anthropic",
    "conf/vertex-gemini",
    "conf/azure",
];

async fn send_raw(
    app: &TestApp,
    key: &str,
    path: &str,
    content_type: Option<&str>,
    body: impl Into<reqwest::Body>,
) -> reqwest::Response {
    let mut req = app
        .client
        .post(format!("{}{path}", app.base))
        .bearer_auth(key)
        .body(body);
    if let Some(ct) = content_type {
        req = req.header("content-type", ct);
    }
    req.send().await.unwrap()
}

/// Asserts an OpenAI-shaped 400 naming `param`.
async fn refused(res: reqwest::Response, param: &str) -> Value {
    assert_eq!(res.status().as_u16(), 400);
    let v: Value = res.json().await.unwrap();
    assert_eq!(v["error"]["code"], 400, "{v}");
    assert_eq!(v["error"]["type"], "invalid_request_error", "{v}");
    assert_eq!(v["error"]["param"], param, "{v}");
    assert!(v["error"]["message"]
        .as_str()
        .is_some_and(|m| !m.is_empty()));
    v
}

async fn nothing_changed(app: &TestApp, t: &Tenant) {
    app.settled().await;
    assert_eq!(app.balance(t.account).await, dec("1"));
    assert!(
        app.mock.requests().is_empty(),
        "a refused request reached a provider"
    );
    app.hot_matches_ledger(t.account).await;
    app.ledger_clean().await;
}

#[tokio::test]
async fn trailing_bytes_and_wrong_content_types_are_refused_on_every_api() {
    let app = spawn_app().await;
    let t = app.tenant("1").await;
    let chat = chat_body("test/chat", None).to_string();
    let completion = json!({"model": "test/chat", "prompt": "hi", "max_tokens": 5}).to_string();
    let embedding = json!({"model": "test/embed", "input": "hi"}).to_string();
    for (path, body) in [
        ("/v1/chat/completions", &chat),
        ("/v1/completions", &completion),
        ("/v1/embeddings", &embedding),
    ] {
        for trailing in [" {}", "x", "\n[1]", "}"] {
            let res = send_raw(
                &app,
                &t.key,
                path,
                Some("application/json"),
                format!("{body}{trailing}"),
            )
            .await;
            refused(res, "body").await;
        }
        // Whitespace after the value is fine, and so is a charset parameter.
        let res = send_raw(
            &app,
            &t.key,
            path,
            Some("application/json; charset=utf-8"),
            format!("{body} \r\n\t"),
        )
        .await;
        assert_eq!(res.status(), 200, "{path}: {}", res.text().await.unwrap());

        for ct in [
            "text/plain",
            "text/plain; charset=utf-8",
            "application/x-www-form-urlencoded",
            "multipart/form-data; boundary=x",
        ] {
            let res = send_raw(&app, &t.key, path, Some(ct), body.clone()).await;
            refused(res, "content-type").await;
        }
    }
    // Only the three accepted requests reached a provider and were charged.
    app.settled().await;
    assert_eq!(app.mock.requests().len(), 3);
    let charged: rust_decimal::Decimal =
        sqlx::query_scalar("SELECT COALESCE(sum(cost), 0) FROM request_logs")
            .fetch_one(&app.pg)
            .await
            .unwrap();
    assert!(charged > rust_decimal::Decimal::ZERO);
    assert_eq!(app.balance(t.account).await, dec("1") - charged);
    app.hot_matches_ledger(t.account).await;
    app.ledger_clean().await;
}

#[tokio::test]
async fn malformed_messages_and_tools_are_refused_and_change_nothing() {
    let app = spawn_app().await;
    let t = app.tenant("1").await;
    let url = "/v1/chat/completions";
    let post = |body: Value| {
        let app = &app;
        let key = t.key.clone();
        async move { send_raw(app, &key, url, Some("application/json"), body.to_string()).await }
    };

    for role in ["user", "system", "developer"] {
        let body = json!({"model": "test/chat", "messages": [
            {"role": "user", "content": "hi"},
            {"role": role, "content": null},
        ]});
        refused(post(body).await, "messages[1].content").await;
    }
    let body = json!({"model": "test/chat", "messages": [{"role": "user"}]});
    refused(post(body).await, "messages[0].content").await;

    // A tool entry without its `function` object, or with a non-object one.
    for tool in [
        json!({"type": "function"}),
        json!({}),
        json!({"type": "function", "function": "get_weather"}),
        json!({"type": "function", "function": null}),
    ] {
        let body = json!({"model": "test/chat",
            "messages": [{"role": "user", "content": "hi"}],
            "tools": [{"type": "function", "function": {"name": "ok"}}, tool]});
        refused(post(body).await, "tools[1].function").await;
    }

    // More output than the model can produce (test/chat allows 1000).
    for (field, value) in [
        ("max_tokens", json!(1001)),
        ("max_tokens", json!(u64::MAX)),
        ("max_completion_tokens", json!(5000)),
    ] {
        let mut body = chat_body("test/chat", None);
        body.as_object_mut().unwrap().remove("max_tokens");
        body[field] = value;
        refused(post(body).await, field).await;
    }
    let res = send_raw(
        &app,
        &t.key,
        "/v1/completions",
        Some("application/json"),
        json!({"model": "test/chat", "prompt": "hi", "max_tokens": 1_000_000}).to_string(),
    )
    .await;
    refused(res, "max_tokens").await;

    nothing_changed(&app, &t).await;

    // The limit itself is accepted.
    let mut body = chat_body("test/chat", None);
    body["max_tokens"] = json!(1000);
    assert_eq!(post(body).await.status(), 200);
}

#[tokio::test]
async fn image_urls_with_other_schemes_are_refused_on_every_wire() {
    let app = spawn_app().await;
    let t = app.tenant("1").await;
    let bad = [
        "javascript:alert(1)",
        "file:///etc/passwd",
        "ftp://example.com/cat.png",
        "JavaScript:alert(1)",
        " vbscript:x",
        "gopher://127.0.0.1:6379/_INFO",
        "//example.com/cat.png",
        "http:/no-authority",
        "cat.png",
        "",
    ];
    for model in WIRES {
        for url in bad {
            let body = json!({"model": model, "messages": [{"role": "user", "content": [
                {"type": "text", "text": "what is this?"},
                {"type": "image_url", "image_url": {"url": url}},
            ]}]});
            let res = app.post_chat(&t.key, &body).await;
            refused(res, "messages[0].content[1].image_url.url").await;
        }
    }
    nothing_changed(&app, &t).await;
}
