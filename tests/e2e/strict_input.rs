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

/// Sends `head` as raw bytes on a new connection and returns the whole answer (the server closes
/// the connection after a head it cannot parse).
async fn raw_exchange(app: &TestApp, head: &[u8]) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let addr = app.base.trim_start_matches("http://");
    let mut conn = tokio::net::TcpStream::connect(addr).await.unwrap();
    conn.write_all(head).await.unwrap();
    let mut answer = Vec::new();
    tokio::time::timeout(
        std::time::Duration::from_secs(10),
        conn.read_to_end(&mut answer),
    )
    .await
    .expect("the server answers and closes")
    .unwrap();
    String::from_utf8(answer).unwrap()
}

/// Asserts an OpenAI-shaped error with `status` and a JSON body of the declared length.
fn shaped(answer: &str, status: u16) {
    let (head, body) = answer.split_once("\r\n\r\n").expect("a full response");
    assert!(head.starts_with(&format!("HTTP/1.1 {status} ")), "{head}");
    let head = head.to_ascii_lowercase();
    assert!(head.contains("content-type: application/json"), "{head}");
    assert!(
        head.contains(&format!("content-length: {}", body.len())),
        "{head}"
    );
    let v: Value = serde_json::from_str(body).unwrap();
    assert_eq!(v["error"]["code"], status, "{v}");
    assert_eq!(v["error"]["type"], "invalid_request_error", "{v}");
    assert!(v["error"]["message"].as_str().is_some_and(|m| m.len() > 20));
}

#[tokio::test]
async fn heads_the_http_parser_refuses_get_openai_shaped_errors() {
    let app = spawn_app().await;
    let t = app.tenant("1").await;
    let body = json!({"model": "conf/openai", "messages": [{"role": "user", "content": "hi"}]})
        .to_string();
    let request = |extra: &[u8]| {
        let mut r = format!(
            "POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\nauthorization: Bearer {}\r\n\
             content-type: application/json\r\ncontent-length: {}\r\n",
            t.key,
            body.len()
        )
        .into_bytes();
        r.extend_from_slice(extra);
        r.extend_from_slice(b"\r\n");
        r.extend_from_slice(body.as_bytes());
        r
    };

    // A NUL byte in a header value, another control byte, a NUL in a header name.
    for bad in [
        &b"x-title: my\0app\r\n"[..],
        b"x-title: my\x01app\r\n",
        b"x-ti\0tle: app\r\n",
    ] {
        shaped(&raw_exchange(&app, &request(bad)).await, 400);
    }
    // A broken request line.
    shaped(
        &raw_exchange(
            &app,
            b"POST /v1/chat\0/completions HTTP/1.1\r\nhost: x\r\n\r\n",
        )
        .await,
        400,
    );
    // More headers than the parser accepts.
    let many: Vec<u8> = (0..200)
        .flat_map(|i| format!("x-h{i}: v\r\n").into_bytes())
        .collect();
    shaped(&raw_exchange(&app, &request(&many)).await, 431);

    // The same connection path still serves a well-formed request, and the application's own
    // errors keep their bodies (a request the application refuses is not rewritten).
    let ok = raw_exchange(&app, &request(b"connection: close\r\n")).await;
    assert!(ok.starts_with("HTTP/1.1 200 "), "{ok}");
    let refused_by_app = raw_exchange(
        &app,
        b"POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\
          content-type: application/json\r\ncontent-length: 2\r\n\r\n{}",
    )
    .await;
    assert!(
        refused_by_app.starts_with("HTTP/1.1 401 "),
        "{refused_by_app}"
    );
    nothing_changed_but(&app, &t, 1).await;
}

/// Like `nothing_changed`, when `served` requests were answered.
async fn nothing_changed_but(app: &TestApp, t: &Tenant, served: usize) {
    app.settled().await;
    assert_eq!(app.mock.requests().len(), served);
    app.hot_matches_ledger(t.account).await;
    app.ledger_clean().await;
}
