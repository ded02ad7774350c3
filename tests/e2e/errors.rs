use serde_json::{json, Value};

use crate::helpers::*;

async fn error_of(res: reqwest::Response, status: u16) -> Value {
    assert_eq!(res.status().as_u16(), status);
    let v: Value = res.json().await.unwrap();
    assert_eq!(v["error"]["code"], status, "{v}");
    assert!(
        v["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()),
        "{v}"
    );
    assert!(v["error"]["type"].is_string(), "{v}");
    v
}

#[tokio::test]
async fn bad_requests_name_the_field_and_change_nothing() {
    let app = spawn_app().await;
    let t = app.tenant("1").await;
    let url = format!("{}/v1/chat/completions", app.base);

    let res = app
        .client
        .post(&url)
        .bearer_auth(&t.key)
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    let v = error_of(res, 400).await;
    assert!(v["error"]["message"]
        .as_str()
        .unwrap()
        .contains("not valid JSON"));

    let res = app
        .post_chat(&t.key, &json!({"model": "test/chat", "messages": []}))
        .await;
    assert_eq!(error_of(res, 400).await["error"]["param"], "messages");

    let res = app.post_chat(&t.key, &json!({"model": "test/chat"})).await;
    assert!(error_of(res, 400).await["error"]["message"]
        .as_str()
        .unwrap()
        .contains("messages"));

    let mut body = chat_body("test/chat", None);
    body["temperature"] = json!(5);
    assert_eq!(
        error_of(app.post_chat(&t.key, &body).await, 400).await["error"]["param"],
        "temperature"
    );

    let mut body = chat_body("test/chat", None);
    body["max_tokens"] = json!("lots");
    assert_eq!(
        error_of(app.post_chat(&t.key, &body).await, 400).await["error"]["param"],
        "max_tokens"
    );

    let body = json!({"model": "test/chat", "messages": [{"role": "wizard", "content": "hi"}]});
    let v = error_of(app.post_chat(&t.key, &body).await, 400).await;
    assert!(
        v["error"]["param"]
            .as_str()
            .unwrap()
            .starts_with("messages[0]"),
        "{v}"
    );

    let res = app
        .post_chat(
            &t.key,
            &json!({"messages": [{"role": "user", "content": "hi"}]}),
        )
        .await;
    assert_eq!(error_of(res, 400).await["error"]["param"], "model");

    app.settled().await;
    assert_eq!(app.balance(t.account).await, dec("1"));
    assert!(app.mock.requests().is_empty(), "nothing reached a provider");
    app.hot_matches_ledger(t.account).await;
}

#[tokio::test]
async fn unknown_model_is_404() {
    let app = spawn_app().await;
    let t = app.tenant("1").await;
    let v = error_of(
        app.post_chat(&t.key, &chat_body("nobody/nothing", None))
            .await,
        404,
    )
    .await;
    assert_eq!(v["error"]["param"], "model");
    assert!(v["error"]["message"]
        .as_str()
        .unwrap()
        .contains("nobody/nothing"));
}

#[tokio::test]
async fn privacy_excludes_training_providers_by_default() {
    let app = spawn_app().await;
    let t = app.tenant("1").await;
    let v = error_of(
        app.post_chat(&t.key, &chat_body("test/private", None))
            .await,
        404,
    )
    .await;
    assert_eq!(v["error"]["metadata"]["availability"], "privacy_restricted");
    infron_store::accounts::set_allow_training(&app.pg, t.account, true)
        .await
        .unwrap();
    let (key, _) = app.new_key(t.account).await; // a fresh key is looked up anew
    assert_eq!(
        app.post_chat(&key, &chat_body("test/private", None))
            .await
            .status(),
        200
    );
}

#[tokio::test]
async fn body_over_the_limit_is_413() {
    let app = spawn_app().await;
    let t = app.tenant("1").await;
    let big = "x".repeat(300 * 1024);
    let body = json!({"model": "test/chat", "messages": [{"role": "user", "content": big}]});
    error_of(app.post_chat(&t.key, &body).await, 413).await;
}

#[tokio::test]
async fn insufficient_credits_is_402_with_amounts() {
    let app = spawn_app().await;
    let t = app.tenant("0.0001").await;
    let v = error_of(
        app.post_chat(&t.key, &chat_body("test/chat", None)).await,
        402,
    )
    .await;
    let msg = v["error"]["message"].as_str().unwrap();
    assert!(
        msg.contains("may cost up to $") && msg.contains("$0.0001 is available"),
        "{msg}"
    );
    assert_eq!(v["error"]["metadata"]["available"], "0.0001");
    app.settled().await;
    assert_eq!(app.balance(t.account).await, dec("0.0001"));
    assert!(app.mock.requests().is_empty());
    app.hot_matches_ledger(t.account).await;
}

#[tokio::test]
async fn provider_credentials_rejected_is_502_not_401() {
    let app = spawn_app().await;
    let t = app.tenant("1").await;
    let v = error_of(
        app.post_chat(
            &t.key,
            &chat_body("test/chat", Some(json!({"status": 401}))),
        )
        .await,
        502,
    )
    .await;
    let errors = v["error"]["metadata"]["provider_errors"]
        .as_array()
        .unwrap();
    assert_eq!(errors[0]["kind"], "provider_auth");
}

#[tokio::test]
async fn provider_400_is_returned_as_400() {
    let app = spawn_app().await;
    let t = app.tenant("1").await;
    let v = error_of(
        app.post_chat(
            &t.key,
            &chat_body(
                "test/chat",
                Some(json!({"status": 400, "error_message": "Invalid 'tools': bad schema"})),
            ),
        )
        .await,
        400,
    )
    .await;
    assert!(v["error"]["message"]
        .as_str()
        .unwrap()
        .contains("bad schema"));
    assert_eq!(
        app.mock.requests().len(),
        1,
        "a client error is not retried elsewhere"
    );
}

#[tokio::test]
async fn unknown_route_is_openai_shaped_404() {
    let app = spawn_app().await;
    let res = app
        .client
        .get(format!("{}/v1/nothing", app.base))
        .send()
        .await
        .unwrap();
    error_of(res, 404).await;
}

#[tokio::test]
async fn every_response_carries_a_request_id_matching_its_log() {
    let app = spawn_app().await;
    let t = app.tenant("0.0001").await;
    // A refused request: the header names the logged request.
    let res = app.post_chat(&t.key, &chat_body("test/chat", None)).await;
    assert_eq!(res.status(), 402);
    let id = res.headers()["x-request-id"].to_str().unwrap().to_string();
    let row = app.log_row(&id).await;
    assert_eq!(row.status, 402);
    assert_eq!(row.error_class.as_deref(), Some("insufficient_credits"));
    // Unauthenticated, account and catalog endpoints carry one too.
    for res in [
        app.client
            .get(format!("{}/v1/models", app.base))
            .send()
            .await
            .unwrap(),
        app.client
            .get(format!("{}/api/v1/credits", app.base))
            .bearer_auth(&t.key)
            .send()
            .await
            .unwrap(),
        app.client
            .post(format!("{}/v1/chat/completions", app.base))
            .send()
            .await
            .unwrap(),
        app.client
            .get(format!("{}/nowhere", app.base))
            .send()
            .await
            .unwrap(),
    ] {
        let h = res
            .headers()
            .get("x-request-id")
            .map(|v| v.to_str().unwrap().to_string());
        assert!(h.as_deref().is_some_and(|v| v.starts_with("gen-")), "{h:?}");
    }
}
