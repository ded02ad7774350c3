//! Bedrock (SigV4, Converse, the event-stream framing), Vertex AI (the OAuth JWT-bearer token
//! exchange, both publishers) and Azure OpenAI (deployments, api-version, content filter), each
//! checked against the gateway's own signer, decoder and JWT signer — independent code — so
//! both sides agree on the documented formats.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use infron_mock_provider::{
    test_keys, AwsCredentials, Behaviour, Fault, GoogleServiceAccount, MockConfig, MockProvider,
};
use infron_router::providers::event_stream::{EventStreamDecoder, Message};
use infron_router::providers::google_auth::ServiceAccount;
use infron_router::providers::http::Framing;
use infron_router::providers::sigv4::{self, Credentials, SignableRequest};
use serde_json::{json, Value};

const AKID: &str = "AKIAMOCKEXAMPLE";
const SECRET: &str = "mock/secret+key/EXAMPLE";
const EMAIL: &str = "gateway@mock-project.iam.gserviceaccount.com";

async fn start() -> MockProvider {
    MockProvider::start_with(
        "127.0.0.1:0",
        MockConfig {
            expected_api_key: Some("azure-key".into()),
            aws: Some(AwsCredentials {
                access_key_id: AKID.into(),
                secret_access_key: SECRET.into(),
            }),
            google: Some(GoogleServiceAccount {
                client_email: EMAIL.into(),
                public_key_pem: test_keys::VERTEX_PUBLIC_KEY_PEM.into(),
            }),
        },
    )
    .await
    .unwrap()
}

/// POSTs `body` to a Bedrock path, signed with `secret`.
async fn bedrock(mock: &MockProvider, path: &str, body: &Value, secret: &str) -> reqwest::Response {
    let url = reqwest::Url::parse(&format!("{}{path}", mock.base_url())).unwrap();
    let payload = body.to_string().into_bytes();
    let host = format!("{}:{}", url.host_str().unwrap(), url.port().unwrap());
    let amz_date = chrono_like_now();
    let headers = vec![
        ("content-type".to_string(), "application/json".to_string()),
        ("host".to_string(), host),
        ("x-amz-date".to_string(), amz_date.clone()),
    ];
    let auth = sigv4::authorization(
        &Credentials {
            access_key_id: AKID,
            secret_access_key: secret,
            session_token: None,
        },
        "us-east-1",
        "bedrock",
        &amz_date,
        &SignableRequest {
            method: "POST",
            path: url.path(),
            query: "",
            headers: &headers,
            payload: &payload,
        },
    );
    common::client()
        .post(url)
        .header("content-type", "application/json")
        .header("x-amz-date", amz_date)
        .header("authorization", auth)
        .body(payload)
        .send()
        .await
        .unwrap()
}

/// `YYYYMMDDTHHMMSSZ` for now, without a date library.
fn chrono_like_now() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    // Civil from days (Howard Hinnant).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}{m:02}{d:02}T{:02}{:02}{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

const MODEL_PATH: &str = "/model/anthropic.claude-3-5-sonnet-20240620-v1%3A0";

fn converse_body(text: &str) -> Value {
    json!({"messages": [{"role": "user", "content": [{"text": text}]}],
        "system": [{"text": "Be brief."}], "inferenceConfig": {"maxTokens": 100}})
}

#[tokio::test]
async fn bedrock_verifies_sigv4_and_answers_converse() {
    let mock = start().await;
    let directive = r#"Hi [[mock:{"reply":"Hello there","prompt_tokens":30,"completion_tokens":4,"cached_tokens":10}]]"#;
    let res = bedrock(
        &mock,
        &format!("{MODEL_PATH}/converse"),
        &converse_body(directive),
        SECRET,
    )
    .await;
    assert_eq!(res.status(), 200);
    let v: Value = res.json().await.unwrap();
    assert_eq!(v["output"]["message"]["content"][0]["text"], "Hello there");
    assert_eq!(v["stopReason"], "end_turn");
    assert_eq!(v["usage"]["inputTokens"], 20);
    assert_eq!(v["usage"]["cacheReadInputTokens"], 10);
    assert_eq!(v["usage"]["outputTokens"], 4);
    // The model id was taken from the (percent-encoded) path.
    assert!(mock.requests()[0].path.contains("v1%3A0"));

    // A wrong secret: the signature does not match.
    let res = bedrock(
        &mock,
        &format!("{MODEL_PATH}/converse"),
        &converse_body("Hi"),
        "wrong",
    )
    .await;
    assert_eq!(res.status(), 403);
    assert!(res.headers()["x-amzn-errortype"]
        .to_str()
        .unwrap()
        .starts_with("InvalidSignatureException"));
    let v: Value = res.json().await.unwrap();
    assert!(v["message"].as_str().unwrap().contains("signature"));

    // Unsigned.
    let res = common::client()
        .post(format!("{}{MODEL_PATH}/converse", mock.base_url()))
        .json(&converse_body("Hi"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 403);

    // Throttling, as Bedrock reports it.
    mock.push_behaviour(
        "anthropic.claude-3-5-sonnet-20240620-v1:0",
        Behaviour::error(429, "Too many requests, please wait before trying again."),
    );
    let res = bedrock(
        &mock,
        &format!("{MODEL_PATH}/converse"),
        &converse_body("Hi"),
        SECRET,
    )
    .await;
    assert_eq!(res.status(), 429);
    assert!(res.headers()["x-amzn-errortype"]
        .to_str()
        .unwrap()
        .starts_with("ThrottlingException"));
}

async fn stream_messages(res: reqwest::Response) -> Result<Vec<Message>, String> {
    assert_eq!(
        res.headers()["content-type"],
        "application/vnd.amazon.eventstream"
    );
    let bytes = res.bytes().await.unwrap_or_default();
    EventStreamDecoder::new().feed(&bytes)
}

#[tokio::test]
async fn bedrock_streams_event_stream_frames_with_faults() {
    let mock = start().await;
    let directive = r#"Go [[mock:{"reply":"one two","tool_calls":[{"name":"f","arguments":{"a":1}}],"prompt_tokens":9,"completion_tokens":3}]]"#;
    let res = bedrock(
        &mock,
        &format!("{MODEL_PATH}/converse-stream"),
        &converse_body(directive),
        SECRET,
    )
    .await;
    let messages = stream_messages(res).await.unwrap();
    let kinds: Vec<&str> = messages
        .iter()
        .map(|m| m.header(":event-type").unwrap())
        .collect();
    assert_eq!(kinds.first(), Some(&"messageStart"));
    assert!(kinds.contains(&"contentBlockStart"));
    assert_eq!(&kinds[kinds.len() - 2..], ["messageStop", "metadata"]);
    let last: Value = serde_json::from_slice(&messages.last().unwrap().payload).unwrap();
    assert_eq!(last["usage"]["outputTokens"], 3);
    assert!(last["p"].is_string(), "payloads carry padding");

    // An exception frame after one content event.
    mock.push_behaviour(
        "anthropic.claude-3-5-sonnet-20240620-v1:0",
        Behaviour {
            reply: Some("a b c".into()),
            ..Behaviour::fault(Fault::ErrorAfterChunks, Some(1))
        },
    );
    let res = bedrock(
        &mock,
        &format!("{MODEL_PATH}/converse-stream"),
        &converse_body("x"),
        SECRET,
    )
    .await;
    let messages = stream_messages(res).await.unwrap();
    let last = messages.last().unwrap();
    assert_eq!(last.header(":message-type"), Some("exception"));
    assert_eq!(
        last.header(":exception-type"),
        Some("serviceUnavailableException")
    );

    // A frame whose CRC does not match.
    mock.push_behaviour(
        "anthropic.claude-3-5-sonnet-20240620-v1:0",
        Behaviour::fault(Fault::CorruptAfterChunks, Some(1)),
    );
    let res = bedrock(
        &mock,
        &format!("{MODEL_PATH}/converse-stream"),
        &converse_body("x"),
        SECRET,
    )
    .await;
    assert!(stream_messages(res).await.unwrap_err().contains("CRC"));
}

fn account(mock: &MockProvider) -> ServiceAccount {
    ServiceAccount::parse(&test_keys::service_account_json(
        &mock.base_url(),
        EMAIL,
        "mock-project",
    ))
    .unwrap()
}

async fn token(mock: &MockProvider, assertion: &str) -> reqwest::Response {
    common::client()
        .post(format!("{}/token", mock.base_url()))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!(
            "grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Ajwt-bearer&assertion={assertion}"
        ))
        .send()
        .await
        .unwrap()
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

#[tokio::test]
async fn google_token_exchange_verifies_the_assertion() {
    let mock = start().await;
    let sa = account(&mock);
    let res = token(&mock, &sa.assertion(now())).await;
    assert_eq!(res.status(), 200);
    let v: Value = res.json().await.unwrap();
    assert_eq!(v["token_type"], "Bearer");
    assert!(v["access_token"].as_str().unwrap().starts_with("ya29."));
    assert!(v["expires_in"].as_u64().unwrap() > 3000);

    // A tampered signature, an expired assertion, another issuer.
    let good = sa.assertion(now());
    let (head, sig) = good.rsplit_once('.').unwrap();
    let flipped = if sig.starts_with('A') { "B" } else { "A" };
    let bad = format!("{head}.{flipped}{}", &sig[1..]);
    for (assertion, why) in [
        (bad, "Signature"),
        (sa.assertion(now() - 7200), "short-lived"),
    ] {
        let res = token(&mock, &assertion).await;
        assert_eq!(res.status(), 400);
        let v: Value = res.json().await.unwrap();
        assert_eq!(v["error"], "invalid_grant");
        assert!(
            v["error_description"].as_str().unwrap().contains(why),
            "{v}"
        );
    }
    let other = ServiceAccount::parse(&test_keys::service_account_json(
        &mock.base_url(),
        "someone-else@x.iam.gserviceaccount.com",
        "p",
    ))
    .unwrap();
    assert_eq!(token(&mock, &other.assertion(now())).await.status(), 400);
    assert_eq!(mock.tokens_issued(), 1);
}

#[tokio::test]
async fn vertex_routes_need_a_live_token_and_speak_both_publishers() {
    let mock = start().await;
    let v: Value = token(&mock, &account(&mock).assertion(now()))
        .await
        .json()
        .await
        .unwrap();
    let access = v["access_token"].as_str().unwrap().to_string();
    let base = format!(
        "{}/v1/projects/mock-project/locations/us-east5/publishers",
        mock.base_url()
    );
    let post = |url: String, token: Option<String>, body: Value| async move {
        let mut b = common::client().post(url).json(&body);
        if let Some(t) = token {
            b = b.bearer_auth(t);
        }
        b.send().await.unwrap()
    };
    let gemini = json!({"contents": [{"role": "user", "parts": [{"text": "Hi [[mock:{\"reply\":\"Gemini here\"}]]"}]}]});
    let res = post(
        format!("{base}/google/models/gemini-2.5-pro:generateContent"),
        Some(access.clone()),
        gemini.clone(),
    )
    .await;
    assert_eq!(res.status(), 200);
    let v: Value = res.json().await.unwrap();
    assert_eq!(
        v["candidates"][0]["content"]["parts"][0]["text"],
        "Gemini here"
    );
    assert_eq!(
        post(
            format!("{base}/google/models/gemini-2.5-pro:generateContent"),
            None,
            gemini.clone()
        )
        .await
        .status(),
        401
    );

    let claude = json!({"anthropic_version": "vertex-2023-10-16", "max_tokens": 50,
        "messages": [{"role": "user", "content": "Hi [[mock:{\"reply\":\"Claude here\"}]]"}]});
    let url = format!("{base}/anthropic/models/claude-3-5-sonnet@20240620:rawPredict");
    let res = post(url.clone(), Some(access.clone()), claude.clone()).await;
    assert_eq!(res.status(), 200);
    let v: Value = res.json().await.unwrap();
    assert_eq!(v["content"][0]["text"], "Claude here");
    assert_eq!(v["model"], "claude-3-5-sonnet@20240620");
    // Vertex's Anthropic body: the version in the body, no model.
    let mut with_model = claude.clone();
    with_model["model"] = json!("claude");
    assert_eq!(
        post(url.clone(), Some(access.clone()), with_model)
            .await
            .status(),
        400
    );
    let mut no_version = claude.clone();
    no_version
        .as_object_mut()
        .unwrap()
        .remove("anthropic_version");
    assert_eq!(
        post(url.clone(), Some(access.clone()), no_version)
            .await
            .status(),
        400
    );

    // The expired-token fault.
    mock.expire_tokens();
    let res = post(url, Some(access), claude).await;
    assert_eq!(res.status(), 401);
    let v: Value = res.json().await.unwrap();
    assert_eq!(v["error"]["status"], "UNAUTHENTICATED");
}

#[tokio::test]
async fn azure_deployments_with_api_version_key_and_content_filter() {
    let mock = start().await;
    let url = format!(
        "{}/openai/deployments/gpt-4o-mini/chat/completions?api-version=2024-10-21",
        mock.base_url()
    );
    let body = json!({"messages": [{"role": "user", "content": "Hi"}]});
    let send = |url: String, key: &'static str, body: Value| async move {
        common::client()
            .post(url)
            .header("api-key", key)
            .json(&body)
            .send()
            .await
            .unwrap()
    };
    let res = send(url.clone(), "azure-key", body.clone()).await;
    assert_eq!(res.status(), 200);
    let v: Value = res.json().await.unwrap();
    assert_eq!(v["model"], "gpt-4o-mini", "the deployment names the model");
    assert_eq!(
        v["prompt_filter_results"][0]["content_filter_results"]["hate"]["filtered"],
        false
    );
    assert_eq!(
        v["choices"][0]["content_filter_results"]["violence"]["filtered"],
        false
    );
    assert_eq!(send(url.clone(), "wrong", body.clone()).await.status(), 401);
    let no_version = url.split('?').next().unwrap().to_string();
    assert_eq!(
        send(no_version, "azure-key", body.clone()).await.status(),
        404
    );

    // A filtered completion and a refused prompt.
    let filtered = json!({"messages": [{"role": "user", "content": "x [[mock:{\"finish_reason\":\"content_filter\"}]]"}]});
    let v: Value = send(url.clone(), "azure-key", filtered)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(v["choices"][0]["finish_reason"], "content_filter");
    assert_eq!(
        v["choices"][0]["content_filter_results"]["violence"]["filtered"],
        true
    );
    let refused =
        json!({"messages": [{"role": "user", "content": "x [[mock:{\"prompt_filtered\":true}]]"}]});
    let res = send(url.clone(), "azure-key", refused).await;
    assert_eq!(res.status(), 400);
    let v: Value = res.json().await.unwrap();
    assert_eq!(v["error"]["code"], "content_filter");
    assert_eq!(
        v["error"]["innererror"]["code"],
        "ResponsibleAIPolicyViolation"
    );

    // Streams open with the prompt's filter results.
    let mut stream = body.clone();
    stream["stream"] = json!(true);
    let text = send(url, "azure-key", stream).await.text().await.unwrap();
    let first = common::parse_sse(&text, "\n\n")[0].json();
    assert_eq!(first["choices"], json!([]));
    assert!(first["prompt_filter_results"].is_array());
}
