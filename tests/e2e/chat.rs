use serde_json::{json, Value};

use crate::helpers::*;

#[tokio::test]
async fn non_streaming_answer_is_charged_exactly() {
    let app = spawn_app().await;
    let t = app.tenant("5").await;
    let mut body = chat_body(
        "test/chat",
        Some(
            json!({"reply": "Hello there friend", "prompt_tokens": 120, "completion_tokens": 30, "cached_tokens": 20}),
        ),
    );
    body["usage"] = json!({ "include": true });

    let res = app.post_chat(&t.key, &body).await;
    assert_eq!(res.status(), 200);
    let request_id = res.headers()["x-request-id"].to_str().unwrap().to_string();
    let v: Value = res.json().await.unwrap();
    assert_eq!(v["id"], request_id);
    assert_eq!(v["object"], "chat.completion");
    assert_eq!(v["model"], "test/chat");
    assert_eq!(v["provider"], "mock-a", "the cheapest endpoint answers");
    assert_eq!(v["choices"][0]["message"]["content"], "Hello there friend");
    assert_eq!(v["usage"]["prompt_tokens"], 120);
    assert_eq!(v["usage"]["completion_tokens"], 30);
    assert_eq!(v["usage"]["total_tokens"], 150);
    assert_eq!(v["usage"]["prompt_tokens_details"]["cached_tokens"], 20);
    // 100 uncached x 0.000001 + 20 cached x 0.0000005 + 30 x 0.000002
    let expected = dec("0.00017");
    assert_eq!(v["usage"]["cost"].to_string(), "0.00017");
    assert_eq!(
        v["usage"]["cost_details"]["cache_read"].to_string(),
        "0.00001"
    );

    let row = app.log_row(&request_id).await;
    app.settled().await;
    assert_eq!(row.cost, expected);
    assert_eq!(
        (row.prompt_tokens, row.completion_tokens, row.cached_tokens),
        (120, 30, 20)
    );
    assert_eq!(row.provider.as_deref(), Some("mock-a"));
    assert_eq!(row.upstream_model.as_deref(), Some("up-a"));
    assert_eq!(row.status, 200);
    assert!(!row.streamed);
    assert_eq!(row.usage_source.as_deref(), Some("provider"));
    assert_eq!(row.api_key_id, Some(t.key_id));
    // Metadata only: nothing of the prompt or completion is stored.
    let text: String = sqlx::query_scalar("SELECT row_to_json(r)::text FROM request_logs r")
        .fetch_one(&app.pg)
        .await
        .unwrap();
    assert!(
        !text.contains("Say hello") && !text.contains("Hello there"),
        "{text}"
    );

    assert_eq!(app.balance(t.account).await, dec("5") - expected);
    // The request names the usage transaction that charged it: the tenant's debit and the
    // usage revenue, balanced.
    let entries: Vec<(rust_decimal::Decimal, String)> = sqlx::query_as(
        "SELECT e.amount, la.kind FROM ledger_entries e JOIN ledger_accounts la ON la.id = e.ledger_account_id \
         WHERE e.transaction_id = $1 ORDER BY la.kind",
    )
    .bind(row.usage_txn_id.expect("charged request names its usage transaction"))
    .fetch_all(&app.pg)
    .await
    .unwrap();
    assert_eq!(
        entries,
        vec![
            (expected, "credits".to_string()),
            (-expected, "usage_revenue".to_string())
        ]
    );
    app.ledger_clean().await;
    app.hot_matches_ledger(t.account).await;

    // What reached the provider: its own key, the upstream model name, never the client's key.
    let sent = app
        .mock
        .requests()
        .into_iter()
        .find(|r| r.path.ends_with("/chat/completions"))
        .unwrap();
    assert_eq!(
        sent.headers["authorization"],
        format!("Bearer {PROVIDER_KEY}")
    );
    assert_eq!(sent.body["model"], "up-a");
    assert!(
        sent.body.get("usage").is_none(),
        "gateway fields are not forwarded"
    );
    assert!(!format!("{:?}", sent.headers).contains(&t.key));
}

#[tokio::test]
async fn cost_is_omitted_unless_asked_for() {
    let app = spawn_app().await;
    let t = app.tenant("1").await;
    let v: Value = app
        .post_chat(&t.key, &chat_body("chat-alias", None))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(v["model"], "test/chat", "aliases resolve to the model id");
    assert!(v["usage"]["prompt_tokens"].as_u64().unwrap() > 0);
    assert!(v["usage"].get("cost").is_none());
}

#[tokio::test]
async fn streaming_answer_is_sse_with_usage_and_done() {
    let app = spawn_app().await;
    let t = app.tenant("5").await;
    let mut body = chat_body(
        "test/chat",
        Some(json!({"reply": "one two three four", "prompt_tokens": 50, "completion_tokens": 10})),
    );
    body["stream"] = json!(true);
    body["stream_options"] = json!({ "include_usage": true });
    body["usage"] = json!({ "include": true });

    let res = app.post_chat(&t.key, &body).await;
    assert_eq!(res.status(), 200);
    assert!(res.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/event-stream"));
    let id = res.headers()["x-request-id"].to_str().unwrap().to_string();
    let text = res.text().await.unwrap();
    let data = sse_data(&text);
    assert_eq!(data.last().map(String::as_str), Some("[DONE]"));
    let chunks: Vec<Value> = data[..data.len() - 1]
        .iter()
        .map(|d| serde_json::from_str(d).unwrap())
        .collect();
    let mut content = String::new();
    for c in &chunks {
        assert_eq!(c["id"], id);
        assert_eq!(c["object"], "chat.completion.chunk");
        assert_eq!(c["model"], "test/chat");
        assert_eq!(c["provider"], "mock-a");
        if let Some(s) = c["choices"][0]["delta"]["content"].as_str() {
            content.push_str(s);
        }
    }
    assert_eq!(content, "one two three four");
    assert!(chunks
        .iter()
        .any(|c| c["choices"][0]["finish_reason"] == "stop"));
    let last = chunks.last().unwrap();
    assert_eq!(last["choices"], json!([]));
    assert_eq!(last["usage"]["prompt_tokens"], 50);
    assert_eq!(last["usage"]["completion_tokens"], 10);
    // 50 x 0.000001 + 10 x 0.000002
    assert_eq!(last["usage"]["cost"].to_string(), "0.00007");

    let row = app.log_row(&id).await;
    app.settled().await;
    assert!(row.streamed);
    assert_eq!(row.cost, dec("0.00007"));
    assert!(row.first_token_ms.is_some());
    assert_eq!(app.balance(t.account).await, dec("4.99993"));
    // The gateway always asks the provider for stream usage.
    let sent = app
        .mock
        .requests()
        .into_iter()
        .find(|r| r.path.ends_with("/chat/completions"))
        .unwrap();
    assert_eq!(sent.body["stream_options"]["include_usage"], true);
    app.ledger_clean().await;
    app.hot_matches_ledger(t.account).await;
}

#[tokio::test]
async fn provider_failure_is_502_and_charges_nothing() {
    let app = spawn_app().await;
    let t = app.tenant("1").await;
    let res = app
        .post_chat(
            &t.key,
            &chat_body(
                "test/chat",
                Some(json!({"status": 500, "error_message": "boom at http://internal"})),
            ),
        )
        .await;
    assert_eq!(res.status(), 502);
    let id = res
        .headers()
        .get("x-request-id")
        .map(|h| h.to_str().unwrap().to_string());
    let v: Value = res.json().await.unwrap();
    assert_eq!(v["error"]["code"], 502);
    let errors = v["error"]["metadata"]["provider_errors"]
        .as_array()
        .unwrap();
    assert_eq!(errors.len(), 2, "both endpoints were tried: {v}");
    assert_eq!(errors[0]["provider"], "mock-a");
    assert_eq!(errors[1]["provider"], "mock-b");
    let raw = v.to_string();
    assert!(
        !raw.contains(PROVIDER_KEY) && !raw.contains("127.0.0.1") && !raw.contains("internal"),
        "{raw}"
    );
    assert!(id.is_none() || id.is_some());
    app.settled().await;
    assert_eq!(app.balance(t.account).await, dec("1"));
    let (status, cost): (i16, rust_decimal::Decimal) =
        sqlx::query_as("SELECT status, cost FROM request_logs WHERE account_id = $1")
            .bind(t.account)
            .fetch_one(&app.pg)
            .await
            .unwrap();
    assert_eq!((status, cost), (502, rust_decimal::Decimal::ZERO));
    app.hot_matches_ledger(t.account).await;
}

#[tokio::test]
async fn failing_endpoint_falls_back_and_only_the_answering_one_is_charged() {
    let app = spawn_app().await;
    let t = app.tenant("1").await;
    app.mock.push_behaviour(
        "up-a",
        infron_mock_provider::Behaviour::error(503, "overloaded"),
    );
    app.mock.set_model_behaviour(
        "up-b",
        infron_mock_provider::Behaviour {
            prompt_tokens: Some(10),
            completion_tokens: Some(10),
            ..Default::default()
        },
    );
    let mut body = chat_body("test/chat", None);
    body["usage"] = json!({ "include": true });
    let res = app.post_chat(&t.key, &body).await;
    assert_eq!(res.status(), 200);
    let v: Value = res.json().await.unwrap();
    assert_eq!(v["provider"], "mock-b");
    // mock-b prices: 10 x 0.000002 + 10 x 0.000004
    assert_eq!(v["usage"]["cost"].to_string(), "0.00006");
    let row = app.log_row(v["id"].as_str().unwrap()).await;
    assert_eq!(row.attempts.unwrap().as_array().unwrap().len(), 1);
    app.settled().await;
    assert_eq!(app.balance(t.account).await, dec("0.99994"));
    // mock-b takes max_completion_tokens (catalog quirk).
    let sent = app
        .mock
        .requests()
        .into_iter()
        .rfind(|r| r.body["model"] == "up-b")
        .unwrap();
    assert_eq!(sent.body["max_completion_tokens"], 100);
    assert!(sent.body.get("max_tokens").is_none());
}

#[tokio::test]
async fn streaming_failure_before_content_falls_back() {
    let app = spawn_app().await;
    let t = app.tenant("1").await;
    app.mock.push_behaviour(
        "up-a",
        infron_mock_provider::Behaviour::fault(
            infron_mock_provider::Fault::ResetAfterChunks,
            Some(0),
        ),
    );
    let mut body = chat_body("test/chat", None);
    body["stream"] = json!(true);
    let res = app.post_chat(&t.key, &body).await;
    assert_eq!(res.status(), 200);
    let text = res.text().await.unwrap();
    let first: Value = serde_json::from_str(&sse_data(&text)[0]).unwrap();
    assert_eq!(first["provider"], "mock-b");
    assert!(text.ends_with("data: [DONE]\n\n"));
}

#[tokio::test]
async fn fallback_models_are_tried_in_order() {
    let app = spawn_app().await;
    let t = app.tenant("1").await;
    let body = json!({
        "model": "test/unconfigured",
        "models": ["test/backup"],
        "messages": [{"role": "user", "content": "hi"}],
        "max_tokens": 10,
    });
    let res = app.post_chat(&t.key, &body).await;
    assert_eq!(res.status(), 200);
    let v: Value = res.json().await.unwrap();
    assert_eq!(v["model"], "test/backup");
}

#[tokio::test]
async fn concurrent_requests_never_overdraw_credits() {
    let app = spawn_app().await;
    // Each request holds at most ~0.0021 (max_tokens 1000 at the priciest endpoint's 0.000004
    // plus the prompt bound) and costs 0.0003 (100 + 100 tokens at mock-a's prices).
    let t = app.tenant("0.01").await;
    let body = chat_body(
        "test/chat",
        Some(json!({"prompt_tokens": 100, "completion_tokens": 100, "latency_ms": 50})),
    );
    let mut body = body;
    body["max_tokens"] = json!(1000);
    let mut tasks = Vec::new();
    for _ in 0..50 {
        let client = app.client.clone();
        let url = format!("{}/v1/chat/completions", app.base);
        let key = t.key.clone();
        let body = body.clone();
        tasks.push(tokio::spawn(async move {
            client
                .post(url)
                .bearer_auth(key)
                .json(&body)
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }));
    }
    let mut ok = 0;
    let mut refused = 0;
    for task in tasks {
        match task.await.unwrap() {
            200 => ok += 1,
            402 => refused += 1,
            other => panic!("unexpected status {other}"),
        }
    }
    assert!(
        ok > 0 && refused > 0,
        "some fit, some do not: {ok} ok, {refused} refused"
    );
    app.settled().await;
    let balance = app.balance(t.account).await;
    assert!(
        balance >= rust_decimal::Decimal::ZERO,
        "balance went below zero: {balance}"
    );
    assert_eq!(
        balance,
        dec("0.01") - dec("0.0003") * rust_decimal::Decimal::from(ok)
    );
    let charged: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM request_logs WHERE cost > 0 AND usage_txn_id IS NOT NULL",
    )
    .fetch_one(&app.pg)
    .await
    .unwrap();
    assert_eq!(charged, ok);
    app.ledger_clean().await;
    app.hot_matches_ledger(t.account).await;
}

/// The usage chunks of a stream sent to `path` with `stream_options` (absent when `None`).
async fn stream_usage_chunks(
    app: &TestApp,
    key: &str,
    path: &str,
    body: &Value,
    stream_options: Option<Value>,
) -> Vec<Value> {
    let mut body = body.clone();
    body["stream"] = json!(true);
    if let Some(options) = stream_options {
        body["stream_options"] = options;
    }
    let res = app
        .client
        .post(format!("{}{path}", app.base))
        .bearer_auth(key)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let data = sse_data(&res.text().await.unwrap());
    assert_eq!(data.last().map(String::as_str), Some("[DONE]"));
    data[..data.len() - 1]
        .iter()
        .map(|d| serde_json::from_str::<Value>(d).unwrap())
        .filter(|c| c.get("usage").is_some_and(|u| !u.is_null()))
        .collect()
}

#[tokio::test]
async fn openrouter_path_streams_end_with_usage_unasked() {
    // OpenRouter always ends a stream with usage, and its clients (the AI SDK's OpenRouter
    // provider) rely on that without sending stream_options; /v1 keeps OpenAI's rule.
    let app = spawn_app().await;
    let t = app.tenant("5").await;
    let chat = chat_body(
        "test/chat",
        Some(json!({"reply": "one two", "prompt_tokens": 7, "completion_tokens": 2})),
    );
    let legacy = json!({
        "model": "test/chat",
        "prompt": "Count [[mock:{\"reply\": \"one two\", \"prompt_tokens\": 7, \"completion_tokens\": 2}]]",
    });
    for (path, body) in [
        ("/api/v1/chat/completions", &chat),
        ("/api/v1/completions", &legacy),
    ] {
        let usage = stream_usage_chunks(&app, &t.key, path, body, None).await;
        assert_eq!(usage.len(), 1, "{path}: one usage chunk");
        assert_eq!(usage[0]["choices"], json!([]), "{path}");
        assert_eq!(usage[0]["usage"]["prompt_tokens"], 7, "{path}");
        assert_eq!(usage[0]["usage"]["completion_tokens"], 2, "{path}");
        assert!(usage[0]["usage"].get("cost").is_none(), "{path}");
        // An explicit "no" is honoured.
        let off = Some(json!({"include_usage": false}));
        assert!(stream_usage_chunks(&app, &t.key, path, body, off)
            .await
            .is_empty());
    }
    for path in ["/v1/chat/completions", "/v1/completions"] {
        let body = if path.ends_with("chat/completions") {
            &chat
        } else {
            &legacy
        };
        assert!(
            stream_usage_chunks(&app, &t.key, path, body, None)
                .await
                .is_empty(),
            "{path}: usage only when asked for"
        );
        let on = Some(json!({"include_usage": true}));
        assert_eq!(
            stream_usage_chunks(&app, &t.key, path, body, on)
                .await
                .len(),
            1
        );
    }
    app.settled().await;
    app.ledger_clean().await;
}
