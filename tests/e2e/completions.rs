use serde_json::{json, Value};

use crate::helpers::*;

async fn post(app: &TestApp, key: &str, body: &Value) -> reqwest::Response {
    app.client
        .post(format!("{}/v1/completions", app.base))
        .bearer_auth(key)
        .json(body)
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn legacy_completions_are_served_through_chat() {
    let app = spawn_app().await;
    let t = app.tenant("1").await;
    let body = json!({
        "model": "test/chat",
        "prompt": "Once upon a time [[mock:{\"reply\": \"there was a gateway\", \"prompt_tokens\": 10, \"completion_tokens\": 4}]]",
        "max_tokens": 20,
        "usage": {"include": true},
    });
    let res = post(&app, &t.key, &body).await;
    assert_eq!(res.status(), 200);
    let v: Value = res.json().await.unwrap();
    assert_eq!(v["object"], "text_completion");
    assert_eq!(v["model"], "test/chat");
    assert_eq!(v["choices"][0]["text"], "there was a gateway");
    assert_eq!(v["choices"][0]["finish_reason"], "stop");
    assert!(v["choices"][0]["logprobs"].is_null());
    assert_eq!(v["usage"]["total_tokens"], 14);
    // 10 x 0.000001 + 4 x 0.000002
    assert_eq!(v["usage"]["cost"].to_string(), "0.000018");
    let row = app.log_row(v["id"].as_str().unwrap()).await;
    assert_eq!(row.endpoint_kind, "completion");
    assert_eq!(row.cost, dec("0.000018"));
    // Upstream it was a chat request with one user message.
    let sent = app
        .mock
        .requests()
        .into_iter()
        .find(|r| r.path.ends_with("/chat/completions"))
        .unwrap();
    assert_eq!(sent.body["messages"][0]["role"], "user");
    assert!(sent.body.get("prompt").is_none());
}

#[tokio::test]
async fn legacy_completions_stream_text_chunks() {
    let app = spawn_app().await;
    let t = app.tenant("1").await;
    let body = json!({
        "model": "test/chat",
        "prompt": "Count [[mock:{\"reply\": \"one two three\"}]]",
        "stream": true,
        "stream_options": {"include_usage": true},
    });
    let res = post(&app, &t.key, &body).await;
    assert_eq!(res.status(), 200);
    let data = sse_data(&res.text().await.unwrap());
    assert_eq!(data.last().map(String::as_str), Some("[DONE]"));
    let chunks: Vec<Value> = data[..data.len() - 1]
        .iter()
        .map(|d| serde_json::from_str(d).unwrap())
        .collect();
    let text: String = chunks
        .iter()
        .filter_map(|c| c["choices"][0]["text"].as_str())
        .collect();
    assert_eq!(text, "one two three");
    assert!(chunks.iter().all(|c| c["object"] == "text_completion"));
    assert!(
        chunks.last().unwrap()["usage"]["completion_tokens"]
            .as_u64()
            .unwrap()
            > 0
    );
}

#[tokio::test]
async fn legacy_parameters_chat_cannot_serve_are_refused_by_name() {
    let app = spawn_app().await;
    let t = app.tenant("1").await;
    for (extra, param) in [
        (json!({"echo": true}), "echo"),
        (json!({"prompt": ["a", "b"]}), "prompt"),
        (json!({"best_of": 3}), "best_of"),
        (json!({"suffix": "end"}), "suffix"),
    ] {
        let mut body = json!({"model": "test/chat", "prompt": "hi"});
        for (k, v) in extra.as_object().unwrap() {
            body[k] = v.clone();
        }
        let res = post(&app, &t.key, &body).await;
        assert_eq!(res.status(), 400, "{body}");
        let v: Value = res.json().await.unwrap();
        assert_eq!(v["error"]["param"], param, "{v}");
    }
    assert!(app.mock.requests().is_empty());
}

#[tokio::test]
async fn endpoints_that_cannot_carry_a_part_are_skipped() {
    let app = spawn_app().await;
    let t = app.tenant("1").await;
    let audio = json!({
        "model": "test/mixed",
        "messages": [{"role": "user", "content": [
            {"type": "text", "text": "Transcribe"},
            {"type": "input_audio", "input_audio": {"data": "UklGRiQAAABXQVZF", "format": "wav"}},
        ]}],
        "max_tokens": 10,
    });
    let res = app.post_chat(&t.key, &audio).await;
    assert_eq!(res.status(), 200);
    let v: Value = res.json().await.unwrap();
    assert_eq!(
        v["provider"], "mock-a",
        "the Anthropic endpoint cannot take audio and was skipped"
    );
    // Text alone goes to the cheaper Anthropic endpoint.
    let res = app.post_chat(&t.key, &chat_body("test/mixed", None)).await;
    assert_eq!(
        res.json::<Value>().await.unwrap()["provider"],
        "mock-anthropic"
    );
    // When no endpoint can carry the part, the 400 says why.
    let mut only_anthropic = audio.clone();
    only_anthropic["provider"] = json!({"only": ["mock-anthropic"]});
    let res = app.post_chat(&t.key, &only_anthropic).await;
    assert_eq!(res.status(), 400);
    let v: Value = res.json().await.unwrap();
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .to_lowercase()
            .contains("audio"),
        "{v}"
    );
}
