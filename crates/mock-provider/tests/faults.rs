//! Faults, errors, latency and delays.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::{Duration, Instant};

use common::*;
use infron_mock_provider::{Behaviour, Fault};
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn chat(text: &str, stream: bool) -> Value {
    json!({
        "model": "gpt-4o",
        "stream": stream,
        "messages": [{"role": "user", "content": text}]
    })
}

/// Reads a streaming body chunk by chunk until it ends, errors or `idle` passes
/// without data. Returns the text and how it ended.
async fn read_stream(mut resp: reqwest::Response, idle: Duration) -> (String, &'static str) {
    let mut buf = Vec::new();
    loop {
        match tokio::time::timeout(idle, resp.chunk()).await {
            Err(_) => return (String::from_utf8(buf).unwrap(), "stalled"),
            Ok(Err(_)) => return (String::from_utf8(buf).unwrap(), "error"),
            Ok(Ok(None)) => return (String::from_utf8(buf).unwrap(), "end"),
            Ok(Ok(Some(bytes))) => buf.extend_from_slice(&bytes),
        }
    }
}

fn count_content_chunks(text: &str) -> usize {
    text.matches("\"delta\":{\"content\":\"").count()
        - text.matches("\"delta\":{\"content\":\"\"").count()
}

#[tokio::test]
async fn reset_before_headers_gives_error_without_status() {
    let mock = start().await;
    let d = directive(json!({"fault": "reset_before_headers"}));
    let err = client()
        .post(format!("{}/v1/chat/completions", mock.base_url()))
        .json(&chat(&d, false))
        .send()
        .await
        .unwrap_err();
    assert!(err.status().is_none(), "{err:?}");
    assert!(!err.is_timeout());
    // the request was read and recorded before the reset
    assert_eq!(mock.requests().len(), 1);
    // the server keeps working
    let ok = openai(&mock, "/v1/chat/completions", chat("hi", false)).await;
    assert_eq!(ok.status(), 200);
}

#[tokio::test]
async fn reset_before_headers_raw_socket_sees_rst() {
    let mock = start().await;
    mock.push_behaviour("m", Behaviour::fault(Fault::ResetBeforeHeaders, None));
    let body = json!({"model": "m", "messages": [{"role": "user", "content": "x"}]}).to_string();
    let mut sock = tokio::net::TcpStream::connect(mock.addr()).await.unwrap();
    let req = format!(
        "POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    );
    sock.write_all(req.as_bytes()).await.unwrap();
    let mut buf = Vec::new();
    let res = tokio::time::timeout(Duration::from_secs(5), sock.read_to_end(&mut buf))
        .await
        .unwrap();
    assert!(buf.is_empty(), "no response bytes expected");
    let err = res.unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::ConnectionReset);
}

#[tokio::test]
async fn reset_after_chunks_openai() {
    let mock = start().await;
    let d = directive(
        json!({"reply": "one two three four five", "fault": "reset_after_chunks", "after_chunks": 2}),
    );
    let resp = openai(&mock, "/v1/chat/completions", chat(&d, true)).await;
    assert_eq!(resp.status(), 200);
    let (text, ended) = read_stream(resp, Duration::from_secs(5)).await;
    assert_eq!(ended, "error", "{text}");
    assert_eq!(count_content_chunks(&text), 2, "{text}");
    assert!(text.contains("\"content\":\" two\""));
    assert!(!text.contains("[DONE]"));
    assert!(!text.contains("finish_reason\":\"stop"));
}

#[tokio::test]
async fn reset_after_chunks_raw_socket_has_no_chunked_terminator() {
    let mock = start().await;
    mock.push_behaviour(
        "m",
        Behaviour {
            reply: Some("alpha beta gamma".into()),
            ..Behaviour::fault(Fault::ResetAfterChunks, Some(1))
        },
    );
    let body =
        json!({"model": "m", "stream": true, "messages": [{"role": "user", "content": "x"}]})
            .to_string();
    let mut sock = tokio::net::TcpStream::connect(mock.addr()).await.unwrap();
    let req = format!(
        "POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    );
    sock.write_all(req.as_bytes()).await.unwrap();
    let mut buf = Vec::new();
    let mut tmp = [0u8; 4096];
    let err = loop {
        match tokio::time::timeout(Duration::from_secs(5), sock.read(&mut tmp))
            .await
            .unwrap()
        {
            Ok(0) => panic!("clean EOF, expected a reset"),
            Ok(n) => buf.extend_from_slice(&tmp[..n]),
            Err(e) => break e,
        }
    };
    assert_eq!(err.kind(), std::io::ErrorKind::ConnectionReset);
    let text = String::from_utf8(buf).unwrap();
    assert!(text.starts_with("HTTP/1.1 200 OK"));
    assert!(text.contains("transfer-encoding: chunked"));
    assert!(text.contains("\"content\":\"alpha\""));
    assert!(!text.contains("beta"));
    assert!(!text.ends_with("0\r\n\r\n"));
}

#[tokio::test]
async fn reset_after_chunks_anthropic_and_gemini() {
    let mock = start().await;
    let d = directive(json!({"reply": "a b c", "fault": "reset_after_chunks", "after_chunks": 1}));
    let resp = anthropic(
        &mock,
        json!({"model": "c", "max_tokens": 5, "stream": true, "messages": [{"role": "user", "content": d}]}),
    )
    .await;
    let (text, ended) = read_stream(resp, Duration::from_secs(5)).await;
    assert_eq!(ended, "error");
    assert_eq!(text.matches("event: content_block_delta").count(), 1);
    assert!(!text.contains("message_stop"));

    let resp = gemini(
        &mock,
        "g:streamGenerateContent?alt=sse",
        json!({"contents": [{"parts": [{"text": d}]}]}),
    )
    .await;
    let (text, ended) = read_stream(resp, Duration::from_secs(5)).await;
    assert_eq!(ended, "error");
    assert_eq!(text.matches("data: ").count(), 1);
    assert!(!text.contains("finishReason"));
}

#[tokio::test]
async fn reset_after_all_chunks_drops_terminal_events() {
    let mock = start().await;
    let d = directive(json!({"reply": "a b", "fault": "reset_after_chunks", "after_chunks": 99}));
    let resp = openai(&mock, "/v1/chat/completions", chat(&d, true)).await;
    let (text, ended) = read_stream(resp, Duration::from_secs(5)).await;
    assert_eq!(ended, "error");
    assert_eq!(count_content_chunks(&text), 2);
    assert!(!text.contains("[DONE]"));
}

#[tokio::test]
async fn reset_after_chunks_on_non_stream_request_cuts_the_body() {
    let mock = start().await;
    let d = directive(json!({"fault": "reset_after_chunks"}));
    let resp = openai(&mock, "/v1/chat/completions", chat(&d, false)).await;
    assert_eq!(resp.status(), 200);
    assert!(resp.json::<Value>().await.is_err());
}

#[tokio::test]
async fn stall_after_chunks_keeps_connection_open() {
    let mock = start().await;
    let d =
        directive(json!({"reply": "a b c d", "fault": "stall_after_chunks", "after_chunks": 3}));
    let resp = openai(&mock, "/v1/chat/completions", chat(&d, true)).await;
    let (text, ended) = read_stream(resp, Duration::from_millis(400)).await;
    assert_eq!(ended, "stalled");
    assert_eq!(count_content_chunks(&text), 3);
}

#[tokio::test]
async fn stall_before_headers_never_responds() {
    let mock = start().await;
    let d = directive(json!({"fault": "stall_before_headers"}));
    let res = tokio::time::timeout(
        Duration::from_millis(300),
        openai(&mock, "/v1/chat/completions", chat(&d, false)),
    )
    .await;
    assert!(res.is_err(), "expected no response");
}

#[tokio::test]
async fn stalled_requests_end_when_the_provider_is_dropped() {
    let mock = start().await;
    let url = format!("{}/v1/chat/completions", mock.base_url());
    let d = directive(json!({"fault": "stall_before_headers"}));
    let task = tokio::spawn(async move { client().post(url).json(&chat(&d, false)).send().await });
    tokio::time::sleep(Duration::from_millis(100)).await;
    drop(mock);
    let res = tokio::time::timeout(Duration::from_secs(5), task)
        .await
        .expect("request should end once the mock is dropped")
        .unwrap();
    assert!(res.is_err());
}

#[tokio::test]
async fn status_with_retry_after_on_stream_request() {
    let mock = start().await;
    mock.push_behaviour(
        "gpt-4o",
        Behaviour {
            retry_after: Some(3),
            ..Behaviour::error(429, "Rate limit reached")
        },
    );
    let resp = openai(&mock, "/v1/chat/completions", chat("hi", true)).await;
    assert_eq!(resp.status(), 429);
    assert_eq!(resp.headers()["retry-after"], "3");
    assert!(resp.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("application/json"));
    let v: Value = resp.json().await.unwrap();
    assert_eq!(
        v,
        json!({"error": {
            "message": "Rate limit reached",
            "type": "requests",
            "param": null,
            "code": "rate_limit_exceeded"
        }})
    );
    // one-shot: the next request succeeds
    let resp = openai(&mock, "/v1/chat/completions", chat("hi", true)).await;
    assert_eq!(resp.status(), 200);
    let d = directive(json!({"status": 503}));
    let resp = openai(&mock, "/v1/chat/completions", chat(&d, false)).await;
    assert_eq!(resp.status(), 503);
    let v: Value = resp.json().await.unwrap();
    assert_eq!(v["error"]["type"], "server_error");
}

#[tokio::test]
async fn latency_and_chunk_delay() {
    let mock = start().await;
    let d = directive(json!({"latency_ms": 250}));
    let t = Instant::now();
    let resp = openai(&mock, "/v1/chat/completions", chat(&d, false)).await;
    assert_eq!(resp.status(), 200);
    assert!(t.elapsed() >= Duration::from_millis(250));

    // role, 3 words, finish, [DONE]: 5 gaps
    let d = directive(json!({"reply": "a b c", "chunk_delay_ms": 60}));
    let t = Instant::now();
    let resp = openai(&mock, "/v1/chat/completions", chat(&d, true)).await;
    let first = t.elapsed();
    let text = resp.text().await.unwrap();
    assert!(text.ends_with("data: [DONE]\n\n"));
    assert!(
        first < Duration::from_millis(200),
        "headers are not delayed"
    );
    assert!(t.elapsed() >= Duration::from_millis(300));
}

#[tokio::test]
async fn error_after_chunks_sends_in_stream_error() {
    let mock = start().await;
    let d = directive(json!({"reply": "a b c", "fault": "error_after_chunks", "after_chunks": 1}));
    let resp = anthropic(
        &mock,
        json!({"model": "c", "max_tokens": 5, "stream": true, "messages": [{"role": "user", "content": d}]}),
    )
    .await;
    assert_eq!(resp.status(), 200);
    let text = resp.text().await.unwrap();
    let events = parse_sse(&text, "\n\n");
    let last = events.last().unwrap();
    assert_eq!(last.event.as_deref(), Some("error"));
    assert_eq!(
        last.json(),
        json!({"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}})
    );
    assert_eq!(text.matches("content_block_delta").count(), 2); // event line + JSON type

    let resp = openai(&mock, "/v1/chat/completions", chat(&d, true)).await;
    let text = resp.text().await.unwrap();
    let events = parse_sse(&text, "\n\n");
    assert_eq!(
        events.last().unwrap().json()["error"]["type"],
        "server_error"
    );
    assert!(!text.contains("[DONE]"));

    let resp = gemini(
        &mock,
        "g:streamGenerateContent?alt=sse",
        json!({"contents": [{"parts": [{"text": d}]}]}),
    )
    .await;
    let text = resp.text().await.unwrap();
    let events = parse_sse(&text, "\r\n\r\n");
    assert_eq!(
        events.last().unwrap().json()["error"]["status"],
        "UNAVAILABLE"
    );
}

#[tokio::test]
async fn dropping_the_provider_stops_the_server() {
    let mock = start().await;
    let url = format!("{}/v1/models", mock.base_url());
    assert!(client().get(&url).send().await.is_ok());
    drop(mock);
    tokio::time::sleep(Duration::from_millis(50)).await;
    let res = reqwest::Client::new().get(&url).send().await;
    assert!(res.is_err());
}
