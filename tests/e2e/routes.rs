//! Routing details clients depend on: the encoded-slash model id the OpenAI SDKs send, every
//! route under both prefixes, and what an unknown route answers.

use serde_json::Value;

use crate::helpers::*;

#[tokio::test]
async fn a_model_id_with_an_encoded_slash_is_retrieved_under_both_prefixes() {
    let app = spawn_app().await;
    for prefix in ["/v1", "/api/v1"] {
        for path in ["test%2Fchat", "test%2fchat", "test/chat", "chat-alias"] {
            let res = app
                .client
                .get(format!("{}{prefix}/models/{path}", app.base))
                .send()
                .await
                .unwrap();
            assert_eq!(res.status(), 200, "{prefix}/models/{path}");
            let v: Value = res.json().await.unwrap();
            assert_eq!(v["id"], "test/chat", "{prefix}/models/{path}");
            assert_eq!(v["object"], "model");
        }
        let res = app
            .client
            .get(format!("{}{prefix}/models/test%2Fchat/endpoints", app.base))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200);
        let v: Value = res.json().await.unwrap();
        assert_eq!(v["data"]["id"], "test/chat");
        // An unknown model is a 404 about the model.
        let res = app
            .client
            .get(format!("{}{prefix}/models/test%2Fnope", app.base))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 404);
        let v: Value = res.json().await.unwrap();
        assert_eq!(v["error"]["param"], "model");
    }
}

#[tokio::test]
async fn account_routes_are_served_under_v1_as_well() {
    let app = spawn_app().await;
    let t = app.tenant("5").await;
    for prefix in ["/v1", "/api/v1"] {
        for path in ["/credits", "/key"] {
            let res = app
                .client
                .get(format!("{}{prefix}{path}", app.base))
                .bearer_auth(&t.key)
                .send()
                .await
                .unwrap();
            assert_eq!(res.status(), 200, "{prefix}{path}");
            let v: Value = res.json().await.unwrap();
            assert!(v["data"].is_object(), "{prefix}{path}: {v}");
        }
        // An id that is not one of this account's requests: 404 from the handler, not the router.
        let res = app
            .client
            .get(format!(
                "{}{prefix}/generation?id=gen-0190a0a0a0a07a0a8a0a0a0a0a0a0a0a",
                app.base
            ))
            .bearer_auth(&t.key)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 404, "{prefix}/generation");
        let v: Value = res.json().await.unwrap();
        assert_ne!(v["error"]["message"], "no such route; see docs/api.md");
    }
}

#[tokio::test]
async fn an_unknown_route_is_a_404_without_a_param() {
    let app = spawn_app().await;
    for path in ["/v1/nope", "/api/v1/nope", "/nope", "/v1/models/a/b/c/d"] {
        let res = app
            .client
            .get(format!("{}{path}", app.base))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 404, "{path}");
        assert!(res.headers().contains_key("x-request-id"));
        let v: Value = res.json().await.unwrap();
        assert_eq!(v["error"]["type"], "not_found_error", "{path}");
        assert_eq!(v["error"]["code"], 404);
        assert!(v["error"]["param"].is_null(), "{path}: {v}");
    }
}
