use serde_json::Value;

use crate::helpers::*;

#[tokio::test]
async fn models_are_listed_with_openrouter_pricing() {
    let app = spawn_app().await;
    for path in ["/v1/models", "/api/v1/models"] {
        let v: Value = app
            .client
            .get(format!("{}{path}", app.base))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(v["object"], "list");
        let m = v["data"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["id"] == "test/chat")
            .unwrap()
            .clone();
        assert_eq!(m["name"], "Test Chat");
        assert_eq!(m["context_length"], 8000);
        // The cheapest endpoint's prices, as USD-per-token strings.
        assert_eq!(m["pricing"]["prompt"], "0.000001");
        assert_eq!(m["pricing"]["completion"], "0.000002");
        assert_eq!(m["pricing"]["input_cache_read"], "0.0000005");
        assert_eq!(m["pricing"]["request"], "0");
        assert_eq!(m["pricing"]["image"], "0");
        assert_eq!(m["top_provider"]["max_completion_tokens"], 1000);
    }
    let one: Value = app
        .client
        .get(format!("{}/api/v1/models/test/chat", app.base))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(one["id"], "test/chat");
}

#[tokio::test]
async fn shipped_catalogs_are_valid() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let env = |k: &str| (k == "MOCK_BASE_URL").then(|| "http://127.0.0.1:9".to_string());
    let real = infron_router::Catalog::load(&root.join("config/catalog.toml"), &env).unwrap();
    assert!(real.models.len() >= 20);
    assert!(
        real.models.iter().any(|m| m.endpoints.len() >= 3),
        "open-weight models have several endpoints"
    );
    infron_router::Catalog::load(&root.join("config/catalog.mock.toml"), &env).unwrap();
}
