use serde_json::{json, Value};

use crate::helpers::*;

#[tokio::test]
async fn embeddings_are_answered_and_charged_per_input_token() {
    let app = spawn_app().await;
    let t = app.tenant("1").await;
    let res = app
        .client
        .post(format!("{}/v1/embeddings", app.base))
        .bearer_auth(&t.key)
        .json(&json!({"model": "test/embed", "input": ["hello world", "one two three"], "usage": {"include": true}}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let id = res.headers()["x-request-id"].to_str().unwrap().to_string();
    let text = res.text().await.unwrap();
    let v: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(v["object"], "list");
    assert_eq!(v["model"], "test/embed");
    assert_eq!(v["provider"], "mock-a");
    assert_eq!(v["data"].as_array().unwrap().len(), 2);
    assert_eq!(v["data"][1]["index"], 1);
    assert!(!v["data"][0]["embedding"].as_array().unwrap().is_empty());
    let tokens = v["usage"]["prompt_tokens"].as_u64().unwrap();
    assert!(tokens > 0);
    // Charged tokens x 0.0000001, exactly.
    let expected = dec("0.0000001") * rust_decimal::Decimal::from(tokens);
    // The cost is an exact decimal literal on the wire (parsing into f64 would blur it).
    assert!(
        text.contains(&format!("\"cost\":{}", expected.normalize())),
        "{text}"
    );
    let row = app.log_row(&id).await;
    app.settled().await;
    assert_eq!(row.endpoint_kind, "embedding");
    assert_eq!(row.cost, expected);
    assert_eq!(app.balance(t.account).await, dec("1") - expected);
    // Gateway fields never reach the provider.
    let sent = app
        .mock
        .requests()
        .into_iter()
        .find(|r| r.path.ends_with("/embeddings"))
        .unwrap();
    assert_eq!(sent.body["model"], "emb-a");
    assert!(sent.body.get("usage").is_none());
    app.ledger_clean().await;
    app.hot_matches_ledger(t.account).await;
}

#[tokio::test]
async fn embeddings_fall_back_to_gemini_and_reject_bad_input() {
    let app = spawn_app().await;
    let t = app.tenant("1").await;
    app.mock
        .push_behaviour("emb-a", infron_mock_provider::Behaviour::error(500, "down"));
    let res = app
        .client
        .post(format!("{}/v1/embeddings", app.base))
        .bearer_auth(&t.key)
        .json(&json!({"model": "test/embed", "input": "hello"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let v: Value = res.json().await.unwrap();
    assert_eq!(v["provider"], "mock-gemini");
    assert_eq!(v["data"].as_array().unwrap().len(), 1);

    for (body, param) in [
        (json!({"model": "test/embed", "input": []}), "input"),
        (json!({"model": "test/embed"}), "input"),
        (json!({"model": "test/chat", "input": "x"}), "model"),
    ] {
        let res = app
            .client
            .post(format!("{}/v1/embeddings", app.base))
            .bearer_auth(&t.key)
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 400, "{body}");
        let v: Value = res.json().await.unwrap();
        assert!(
            v["error"]["param"]
                .as_str()
                .unwrap_or_default()
                .contains(param)
                || v["error"]["message"].as_str().unwrap().contains(param),
            "{v}"
        );
    }
    let res = app
        .client
        .post(format!("{}/v1/embeddings", app.base))
        .bearer_auth(&t.key)
        .json(&json!({"model": "no/such", "input": "x"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 404);
}
