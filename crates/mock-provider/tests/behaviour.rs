//! Behaviour resolution, directives, auth and request recording.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use infron_mock_provider::{Behaviour, Fault, MockProvider, MockToolCall};
use serde_json::{json, Value};

async fn reply_of(mock: &MockProvider, model: &str, text: &str) -> String {
    let v: Value = openai(
        mock,
        "/v1/chat/completions",
        json!({"model": model, "messages": [{"role": "user", "content": text}]}),
    )
    .await
    .json()
    .await
    .unwrap();
    v["choices"][0]["message"]["content"]
        .as_str()
        .unwrap()
        .to_string()
}

#[tokio::test]
async fn priority_directive_pushed_set_default() {
    let mock = start().await;
    assert_eq!(
        reply_of(&mock, "m", "hi").await,
        "Hello! This is the mock provider."
    );
    mock.set_model_behaviour("m", Behaviour::reply("set"));
    mock.push_behaviour("m", Behaviour::reply("pushed 1"));
    mock.push_behaviour("m", Behaviour::reply("pushed 2"));
    mock.push_behaviour("other", Behaviour::reply("other"));
    let d = directive(json!({"reply": "directive"}));
    assert_eq!(reply_of(&mock, "m", &d).await, "directive");
    // a directive does not consume pushed behaviours
    assert_eq!(reply_of(&mock, "m", "hi").await, "pushed 1");
    assert_eq!(reply_of(&mock, "m", "hi").await, "pushed 2");
    assert_eq!(reply_of(&mock, "m", "hi").await, "set");
    assert_eq!(reply_of(&mock, "m", "hi").await, "set");
    assert_eq!(reply_of(&mock, "other", "hi").await, "other");
}

#[tokio::test]
async fn directive_is_read_from_the_last_user_message_only() {
    let mock = start().await;
    let d = directive(json!({"reply": "from directive"}));
    let v: Value = openai(
        &mock,
        "/v1/chat/completions",
        json!({"model": "m", "messages": [
            {"role": "user", "content": "older"},
            {"role": "assistant", "content": d},
            {"role": "user", "content": [{"type": "text", "text": "look: "}, {"type": "text", "text": d}]},
            {"role": "tool", "tool_call_id": "x", "content": "result"}
        ]}),
    )
    .await
    .json()
    .await
    .unwrap();
    assert_eq!(v["choices"][0]["message"]["content"], "from directive");
    let v: Value = openai(
        &mock,
        "/v1/chat/completions",
        json!({"model": "m", "messages": [
            {"role": "user", "content": d},
            {"role": "user", "content": "plain"}
        ]}),
    )
    .await
    .json()
    .await
    .unwrap();
    assert_eq!(
        v["choices"][0]["message"]["content"],
        "Hello! This is the mock provider."
    );
}

#[tokio::test]
async fn malformed_directive_is_a_400_in_the_provider_shape() {
    let mock = start().await;
    let resp = anthropic(
        &mock,
        json!({"model": "c", "max_tokens": 5, "messages": [{"role": "user", "content": "[[mock:{\"reply\": }]]"}]}),
    )
    .await;
    assert_eq!(resp.status(), 400);
    let v: Value = resp.json().await.unwrap();
    assert_eq!(v["error"]["type"], "invalid_request_error");
    assert!(v["error"]["message"]
        .as_str()
        .unwrap()
        .contains("mock directive"));
}

#[tokio::test]
async fn expected_api_key_rejections_per_provider() {
    let mock = start_with_key("secret").await;
    let base = mock.base_url();
    let c = client();
    let chat = json!({"model": "m", "messages": [{"role": "user", "content": "hi"}]});

    let resp = c
        .post(format!("{base}/v1/chat/completions"))
        .json(&chat)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
    let v: Value = resp.json().await.unwrap();
    assert_eq!(v["error"]["type"], "invalid_request_error");
    let resp = c
        .post(format!("{base}/v1/chat/completions"))
        .bearer_auth("wrong")
        .json(&chat)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
    let v: Value = resp.json().await.unwrap();
    assert_eq!(v["error"]["code"], "invalid_api_key");
    let resp = c
        .post(format!("{base}/v1/chat/completions"))
        .bearer_auth("secret")
        .json(&chat)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);

    let msg =
        json!({"model": "c", "max_tokens": 5, "messages": [{"role": "user", "content": "hi"}]});
    let resp = c
        .post(format!("{base}/v1/messages"))
        .header("anthropic-version", "2023-06-01")
        .header("x-api-key", "wrong")
        .json(&msg)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
    let v: Value = resp.json().await.unwrap();
    assert_eq!(v["type"], "error");
    assert_eq!(v["error"]["type"], "authentication_error");
    let resp = c
        .post(format!("{base}/v1/messages"))
        .header("anthropic-version", "2023-06-01")
        .header("x-api-key", "secret")
        .json(&msg)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);

    let gen = json!({"contents": [{"parts": [{"text": "hi"}]}]});
    let url = format!("{base}/v1beta/models/g:generateContent");
    let resp = c.post(&url).json(&gen).send().await.unwrap();
    assert_eq!(resp.status(), 401);
    let v: Value = resp.json().await.unwrap();
    assert_eq!(v["error"]["code"], 401);
    assert_eq!(v["error"]["status"], "UNAUTHENTICATED");
    let resp = c
        .post(&url)
        .header("x-goog-api-key", "secret")
        .json(&gen)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let resp = c
        .post(format!("{url}?key=secret"))
        .json(&gen)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let last = mock.requests().pop().unwrap();
    assert_eq!(last.path, "/v1beta/models/g:generateContent?key=secret");
}

#[tokio::test]
async fn recorded_requests() {
    let mock = start().await;
    let c = client();
    c.post(format!("{}/v1/chat/completions", mock.base_url()))
        .header("X-Custom-Header", "Value")
        .bearer_auth("sk-1")
        .json(&json!({"model": "m", "messages": []}))
        .send()
        .await
        .unwrap();
    c.post(format!(
        "{}/v1beta/models/g:streamGenerateContent?alt=sse",
        mock.base_url()
    ))
    .body("not json")
    .send()
    .await
    .unwrap();
    let reqs = mock.requests();
    assert_eq!(reqs.len(), 2);
    assert_eq!(reqs[0].method, "POST");
    assert_eq!(reqs[0].path, "/v1/chat/completions");
    assert_eq!(reqs[0].headers["x-custom-header"], "Value");
    assert_eq!(reqs[0].headers["authorization"], "Bearer sk-1");
    assert_eq!(reqs[0].body, json!({"model": "m", "messages": []}));
    assert_eq!(
        reqs[1].path,
        "/v1beta/models/g:streamGenerateContent?alt=sse"
    );
    assert_eq!(reqs[1].body, Value::Null);
    mock.clear_requests();
    assert!(mock.requests().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn works_on_a_multi_thread_runtime() {
    let mock = start().await;
    let handles: Vec<_> = (0..8)
        .map(|i| {
            let url = format!("{}/v1/chat/completions", mock.base_url());
            tokio::spawn(async move {
                client()
                    .post(url)
                    .json(&json!({"model": "m", "stream": true, "messages": [{"role": "user", "content": format!("req {i}")}]}))
                    .send()
                    .await
                    .unwrap()
                    .text()
                    .await
                    .unwrap()
            })
        })
        .collect();
    for h in handles {
        assert!(h.await.unwrap().ends_with("data: [DONE]\n\n"));
    }
    assert_eq!(mock.requests().len(), 8);
}

#[test]
fn behaviour_json_round_trip() {
    let b = Behaviour::from_json(json!({
        "reply": "x",
        "tool_calls": [{"name": "f", "arguments": {"a": 1}}],
        "fault": "stall_after_chunks",
        "after_chunks": 2,
        "retry_after": 5
    }))
    .unwrap();
    assert_eq!(b.fault, Some(Fault::StallAfterChunks));
    assert_eq!(
        b.tool_calls.as_ref().unwrap()[0],
        MockToolCall {
            name: "f".into(),
            arguments: json!({"a": 1}),
            id: None
        }
    );
    let v = serde_json::to_value(&b).unwrap();
    assert_eq!(v["fault"], "stall_after_chunks");
    assert!(v.get("status").is_none());
    assert_eq!(Behaviour::from_json(v).unwrap(), b);
    assert!(Behaviour::from_json(json!({"replly": "typo"})).is_err());
}
