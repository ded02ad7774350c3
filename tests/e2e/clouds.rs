//! The cloud wires' own failure modes through the gateway: Vertex tokens that expire, a token
//! exchange that fails, refresh done once for many requests; Bedrock signatures the provider
//! rejects and event streams that break; Azure's content filter.

use infron_mock_provider::{Behaviour, Fault};
use serde_json::{json, Value};

use crate::helpers::*;

/// Extra providers whose credentials are wrong, next to the working ones of the test catalog.
const BROKEN_CREDENTIALS: &str = r#"
[[providers]]
name = "mock-bedrock-wrong-secret"
wire = "bedrock"
base_url = "{base}"
region = "us-east-1"
api_key_env = "MOCK_KEY"
access_key_id_env = "MOCK_AWS_ACCESS_KEY_ID"
[[providers]]
name = "mock-vertex-no-key-file"
wire = "vertex"
base_url = "{base}"
region = "us-east5"
api_key_env = "MOCK_KEY"

[[models]]
id = "cloud/bad-credentials"
name = "Wrong AWS secret, then a Vertex key file that does not exist"
context_length = 8000
max_output_tokens = 1000
[[models.endpoints]]
provider = "mock-bedrock-wrong-secret"
upstream_model = "anthropic.bad-v1:0"
pricing = { prompt = "0.000001", completion = "0.000001" }
[[models.endpoints]]
provider = "mock-vertex-no-key-file"
upstream_model = "gemini-bad"
pricing = { prompt = "0.000002", completion = "0.000002" }
"#;

fn body(model: &str, text: &str, stream: bool) -> Value {
    json!({"model": model, "max_tokens": 50, "stream": stream,
        "stream_options": {"include_usage": true}, "usage": {"include": true},
        "messages": [{"role": "user", "content": text}]})
}

async fn chunks(res: reqwest::Response) -> Vec<Value> {
    assert_eq!(res.status(), 200);
    let text = res.text().await.unwrap();
    let data = sse_data(&text);
    assert_eq!(data.last().map(String::as_str), Some("[DONE]"), "{text}");
    data[..data.len() - 1]
        .iter()
        .map(|d| serde_json::from_str(d).unwrap())
        .collect()
}

#[tokio::test]
async fn vertex_tokens_are_cached_refreshed_once_and_renewed_when_rejected() {
    let app = spawn_app().await;
    let t = app.tenant("1").await;
    // Many requests on a cold start share one token exchange.
    let requests = (0..8).map(|i| {
        let body = body("conf/vertex-gemini", &format!("hello {i}"), false);
        let (app, key) = (&app, t.key.clone());
        async move { app.post_chat(&key, &body).await.status() }
    });
    for status in futures_util::future::join_all(requests).await {
        assert_eq!(status, 200);
    }
    assert_eq!(app.mock.tokens_issued(), 1);
    // Claude on Vertex uses the same token.
    let res = app
        .post_chat(&t.key, &body("conf/vertex-anthropic", "hi", false))
        .await;
    assert_eq!(res.status(), 200);
    assert_eq!(app.mock.tokens_issued(), 1);

    // The token expires (or is revoked): Vertex says 401, the gateway fetches a new one and
    // the client never notices.
    app.mock.expire_tokens();
    let res = app
        .post_chat(&t.key, &body("conf/vertex-anthropic", "again", true))
        .await;
    let c = chunks(res).await;
    assert!(c
        .iter()
        .any(|c| c["choices"][0]["delta"]["content"].is_string()));
    assert_eq!(app.mock.tokens_issued(), 2);
    let rejected = app
        .mock
        .requests()
        .iter()
        .filter(|r| r.path.contains(":streamRawPredict"))
        .count();
    assert_eq!(rejected, 2, "one rejected attempt, one with the new token");

    // The token endpoint failing is the operator's problem: a 502 naming no secret.
    app.mock.expire_tokens();
    app.mock
        .push_behaviour("oauth2-token", Behaviour::error(503, "backend unavailable"));
    let res = app
        .post_chat(&t.key, &body("conf/vertex-gemini", "x", false))
        .await;
    assert_eq!(res.status(), 502);
    let v: Value = res.json().await.unwrap();
    assert_eq!(
        v["error"]["metadata"]["provider_errors"][0]["kind"],
        "unavailable"
    );
    app.settled().await;
    app.ledger_clean().await;
}

#[tokio::test]
async fn rejected_cloud_credentials_fall_back_and_never_leak() {
    let app = spawn_app_with_catalog(&[], BROKEN_CREDENTIALS).await;
    let t = app.tenant("1").await;
    let res = app
        .post_chat(
            &t.key,
            &json!({"model": "cloud/bad-credentials", "max_tokens": 20,
                "models": ["conf/bedrock"],
                "messages": [{"role": "user", "content": "hi"}]}),
        )
        .await;
    assert_eq!(res.status(), 200);
    let v: Value = res.json().await.unwrap();
    assert_eq!(v["model"], "conf/bedrock");
    let row = app.log_row(v["id"].as_str().unwrap()).await;
    let attempts = row.attempts.clone().expect("failed attempts are logged");
    // The wrong AWS secret: the mock's SigV4 check says 403 InvalidSignatureException.
    assert_eq!(attempts[0]["provider"], "mock-bedrock-wrong-secret");
    assert_eq!(attempts[0]["class"], "provider_auth");
    assert_eq!(attempts[0]["status"], 403);
    // A key variable that is neither a key file's JSON nor a readable path.
    assert_eq!(attempts[1]["provider"], "mock-vertex-no-key-file");
    assert_eq!(attempts[1]["class"], "provider_auth");
    let text = attempts.to_string();
    assert!(
        !text.contains(PROVIDER_KEY) && !text.contains(AWS_SECRET_ACCESS_KEY),
        "{text}"
    );
    let signed = app
        .mock
        .requests()
        .into_iter()
        .find(|r| r.path.starts_with("/model/anthropic.bad-v1%3A0/converse"))
        .unwrap();
    assert!(!format!("{:?}", signed.headers).contains(PROVIDER_KEY));
}

#[tokio::test]
async fn bedrock_streams_that_break_fall_back_or_end_with_an_error_chunk() {
    let app = spawn_app().await;
    let t = app.tenant("1").await;
    let upstream = "anthropic.conf-claude-v1:0";
    // A corrupt frame before any content: the next model answers.
    app.mock.push_behaviour(
        upstream,
        Behaviour::fault(Fault::CorruptAfterChunks, Some(0)),
    );
    let mut b = body("conf/bedrock", "x", true);
    b["models"] = json!(["test/backup"]);
    let c = chunks(app.post_chat(&t.key, &b).await).await;
    assert_eq!(c[0]["model"], "test/backup");

    // After content: an error chunk, and only what was delivered is charged.
    app.mock.push_behaviour(
        upstream,
        Behaviour {
            reply: Some("one two three four".into()),
            ..Behaviour::fault(Fault::CorruptAfterChunks, Some(2))
        },
    );
    let c = chunks(app.post_chat(&t.key, &b).await).await;
    let text: String = c
        .iter()
        .filter_map(|c| c["choices"][0]["delta"]["content"].as_str())
        .collect();
    assert_eq!(text, "one two");
    assert!(c
        .iter()
        .any(|c| c["choices"][0]["finish_reason"] == "error"));

    // Throttling mid-stream before content is retried elsewhere; as an HTTP 429 it is too.
    app.mock.push_behaviour(
        upstream,
        Behaviour {
            retry_after: Some(2),
            ..Behaviour::error(429, "Too many requests, please wait before trying again.")
        },
    );
    let mut nb = body("conf/bedrock", "y", false);
    nb["models"] = json!(["test/backup"]);
    let res = app.post_chat(&t.key, &nb).await;
    let v: Value = res.json().await.unwrap();
    assert_eq!(v["model"], "test/backup");
    let row = app.log_row(v["id"].as_str().unwrap()).await;
    assert_eq!(row.attempts.unwrap()[0]["class"], "rate_limited");
    app.settled().await;
    app.ledger_clean().await;
    app.hot_matches_ledger(t.account).await;
}

#[tokio::test]
async fn azure_content_filter_becomes_finish_reason_content_filter() {
    let app = spawn_app().await;
    let t = app.tenant("1").await;
    for stream in [false, true] {
        // A completion the filter stopped.
        let b = body(
            "conf/azure",
            r#"Tell me [[mock:{"reply":"partial","finish_reason":"content_filter"}]]"#,
            stream,
        );
        let finish = if stream {
            let c = chunks(app.post_chat(&t.key, &b).await).await;
            c.iter()
                .filter_map(|c| c["choices"][0]["finish_reason"].as_str())
                .next_back()
                .map(str::to_string)
        } else {
            let v: Value = app.post_chat(&t.key, &b).await.json().await.unwrap();
            assert!(
                v["choices"][0].get("content_filter_results").is_none(),
                "{v}"
            );
            assert!(v.get("prompt_filter_results").is_none(), "{v}");
            v["choices"][0]["finish_reason"]
                .as_str()
                .map(str::to_string)
        };
        assert_eq!(finish.as_deref(), Some("content_filter"), "stream {stream}");

        // A prompt the filter refused: an empty, free completion, not the client's error.
        let b = body(
            "conf/azure",
            r#"Bad [[mock:{"prompt_filtered":true}]]"#,
            stream,
        );
        let (finish, cost) = if stream {
            let c = chunks(app.post_chat(&t.key, &b).await).await;
            let finish = c
                .iter()
                .filter_map(|c| c["choices"][0]["finish_reason"].as_str())
                .next_back()
                .map(str::to_string);
            (finish, c.last().unwrap()["usage"]["cost"].clone())
        } else {
            let res = app.post_chat(&t.key, &b).await;
            assert_eq!(res.status(), 200);
            let v: Value = res.json().await.unwrap();
            assert_eq!(v["choices"][0]["message"]["content"], "");
            (
                v["choices"][0]["finish_reason"]
                    .as_str()
                    .map(str::to_string),
                v["usage"]["cost"].clone(),
            )
        };
        assert_eq!(finish.as_deref(), Some("content_filter"), "stream {stream}");
        assert_eq!(dec(&cost.to_string()), dec("0"), "stream {stream}");
    }
    app.settled().await;
    app.ledger_clean().await;
}
