use serde_json::Value;

use crate::helpers::*;

async fn status_and_type(app: &TestApp, auth: Option<&str>) -> (u16, Value) {
    let mut req = app
        .client
        .post(format!("{}/v1/chat/completions", app.base))
        .json(&chat_body("test/chat", None));
    if let Some(a) = auth {
        req = req.header("authorization", a);
    }
    let res = req.send().await.unwrap();
    (res.status().as_u16(), res.json().await.unwrap())
}

#[tokio::test]
async fn missing_malformed_unknown_and_disabled_keys_are_401() {
    let app = spawn_app().await;
    let t = app.tenant("1").await;

    let (s, v) = status_and_type(&app, None).await;
    assert_eq!(
        (s, v["error"]["type"].as_str()),
        (401, Some("authentication_error"))
    );
    assert_eq!(status_and_type(&app, Some("Basic abc")).await.0, 401);
    assert_eq!(
        status_and_type(&app, Some("Bearer sk-inf-v1-nope")).await.0,
        401
    );
    // Right shape and checksum, but never issued.
    let stranger = infron_api::api_keys::ApiKey::generate();
    let (s, v) = status_and_type(&app, Some(&format!("Bearer {}", stranger.expose()))).await;
    assert_eq!(s, 401);
    assert_eq!(v["error"]["message"], "invalid API key");
    // A valid key works; a disabled one does not (a fresh key, not yet cached, is used).
    assert_eq!(
        status_and_type(&app, Some(&format!("Bearer {}", t.key)))
            .await
            .0,
        200
    );
    let (other, other_id) = app.new_key(t.account).await;
    infron_store::keys::set_disabled(&app.pg, other_id, true)
        .await
        .unwrap();
    let (s, v) = status_and_type(&app, Some(&format!("Bearer {other}"))).await;
    assert_eq!(s, 401);
    assert!(v["error"]["message"].as_str().unwrap().contains("disabled"));
    assert!(app.mock.requests().len() == 1);
}

#[tokio::test]
async fn only_a_keyed_hash_of_the_key_is_stored() {
    let app = spawn_app().await;
    let t = app.tenant("1").await;
    let dump: String =
        sqlx::query_scalar("SELECT string_agg(row_to_json(k)::text, ' ') FROM api_keys k")
            .fetch_one(&app.pg)
            .await
            .unwrap();
    let secret_part = &t.key[infron_api::api_keys::PREFIX.len()..];
    assert!(!dump.contains(secret_part));
    let hint: String = sqlx::query_scalar("SELECT key_hint FROM api_keys WHERE id = $1")
        .bind(t.key_id)
        .fetch_one(&app.pg)
        .await
        .unwrap();
    assert!(hint.ends_with(&t.key[t.key.len() - 4..]));
}

#[tokio::test]
async fn disabling_a_key_takes_effect_at_once_on_running_gateways() {
    let app = spawn_app().await;
    let t = app.tenant("1").await;
    // The key is now cached by the gateway.
    assert_eq!(
        app.post_chat(&t.key, &chat_body("test/chat", None))
            .await
            .status(),
        200
    );
    infron_store::keys::set_disabled(&app.pg, t.key_id, true)
        .await
        .unwrap();
    let mut status = 0;
    for _ in 0..40 {
        status = app
            .post_chat(&t.key, &chat_body("test/chat", None))
            .await
            .status()
            .as_u16();
        if status == 401 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    // Well inside the 30 s cache TTL: the change notification, not expiry, did it.
    assert_eq!(status, 401);
}
