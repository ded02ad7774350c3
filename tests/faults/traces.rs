//! Traces: with an OTLP endpoint configured, the real binary exports a span per request (a
//! child of the caller's `traceparent`), the reservation and each provider attempt, over
//! OTLP/HTTP protobuf, to a collector the test runs, carrying no prompt text, completion text
//! nor the key.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::any_value::Value as Any;
use opentelemetry_proto::tonic::trace::v1::Span;
use prost::Message;
use serde_json::json;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};

use crate::harness::*;

const SHARED_REDIS: &str = "redis://127.0.0.1:6379";

/// A minimal OTLP/HTTP collector: keeps every body POSTed to /v1/traces.
struct Collector {
    port: u16,
    bodies: Arc<Mutex<Vec<Vec<u8>>>>,
}

impl Collector {
    async fn start() -> Collector {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let bodies = Arc::new(Mutex::new(Vec::new()));
        let sink = bodies.clone();
        tokio::spawn(async move {
            while let Ok((conn, _)) = listener.accept().await {
                let sink = sink.clone();
                tokio::spawn(async move {
                    let mut conn = BufReader::new(conn);
                    loop {
                        let mut request_line = String::new();
                        if conn.read_line(&mut request_line).await.unwrap_or(0) == 0 {
                            return;
                        }
                        let mut length = 0usize;
                        loop {
                            let mut line = String::new();
                            conn.read_line(&mut line).await.unwrap();
                            let line = line.trim_end();
                            if line.is_empty() {
                                break;
                            }
                            if let Some((k, v)) = line.split_once(':') {
                                if k.eq_ignore_ascii_case("content-length") {
                                    length = v.trim().parse().unwrap();
                                }
                            }
                        }
                        let mut body = vec![0; length];
                        conn.read_exact(&mut body).await.unwrap();
                        if request_line.starts_with("POST /v1/traces ") {
                            sink.lock().unwrap().push(body);
                        }
                        conn.get_mut()
                            .write_all(
                                b"HTTP/1.1 200 OK\r\ncontent-type: application/x-protobuf\r\ncontent-length: 0\r\n\r\n",
                            )
                            .await
                            .unwrap();
                    }
                });
            }
        });
        Collector { port, bodies }
    }

    fn spans(&self) -> Vec<Span> {
        self.bodies
            .lock()
            .unwrap()
            .iter()
            .flat_map(|b| {
                ExportTraceServiceRequest::decode(&b[..])
                    .unwrap()
                    .resource_spans
            })
            .flat_map(|r| r.scope_spans)
            .flat_map(|s| s.spans)
            .collect()
    }

    fn raw(&self) -> Vec<u8> {
        self.bodies.lock().unwrap().concat()
    }
}

fn attrs(span: &Span) -> HashMap<String, String> {
    span.attributes
        .iter()
        .map(|kv| {
            let v = match kv.value.as_ref().and_then(|v| v.value.clone()) {
                Some(Any::StringValue(s)) => s,
                Some(Any::IntValue(i)) => i.to_string(),
                Some(Any::BoolValue(b)) => b.to_string(),
                other => format!("{other:?}"),
            };
            (kv.key.clone(), v)
        })
        .collect()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_are_traced_over_otlp_when_an_endpoint_is_configured() {
    let collector = Collector::start().await;
    let scene = Scene::new().await;
    let mut env = scene.env(&scene.database_url(5432), SHARED_REDIS);
    env.push((
        "OTEL_EXPORTER_OTLP_ENDPOINT".into(),
        format!("http://127.0.0.1:{}", collector.port),
    ));
    env.push(("OTEL_BSP_SCHEDULE_DELAY".into(), "100".into()));
    let gw = Gateway::start(&env).await;
    let t = scene.tenant("10").await;
    let client = reqwest::Client::new();

    let trace_id = "4bf92f3577b34da6a3ce929d0e0e4736";
    let parent = "00f067aa0ba902b7";
    let marker = "prompt-marker-7f3a9c";
    let body = json!({
        "model": "test/chat",
        "messages": [{"role": "user", "content": format!("{marker} [[mock:{{\"reply\": \"completion-marker-5e1d\"}}]]")}],
        "max_tokens": 50,
    });
    let res = client
        .post(format!("{}/v1/chat/completions", gw.base))
        .bearer_auth(&t.key)
        .header("traceparent", format!("00-{trace_id}-{parent}-01"))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let request_id = res.headers()["x-request-id"].to_str().unwrap().to_string();
    let text = res.text().await.unwrap();
    assert!(text.contains("completion-marker-5e1d"));

    // The batch exporter sends within its schedule delay.
    let deadline = Instant::now() + Duration::from_secs(15);
    let spans = loop {
        let spans = collector.spans();
        let ours: Vec<Span> = spans
            .into_iter()
            .filter(|s| hex(&s.trace_id) == trace_id)
            .collect();
        if ours.len() >= 3 {
            break ours;
        }
        assert!(Instant::now() < deadline, "spans so far: {ours:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };

    let root = spans
        .iter()
        .find(|s| s.name == "POST /v1/chat/completions")
        .unwrap_or_else(|| panic!("no request span in {spans:?}"));
    assert_eq!(
        hex(&root.parent_span_id),
        parent,
        "a child of the caller's span"
    );
    let a = attrs(root);
    assert_eq!(a["http.route"], "/v1/chat/completions");
    assert_eq!(a["http.response.status_code"], "200");
    assert_eq!(a["infron.request_id"], request_id);
    assert!(root.end_time_unix_nano >= root.start_time_unix_nano);

    let reserve = spans
        .iter()
        .find(|s| s.name == "billing.reserve")
        .expect("a reservation span");
    assert_eq!(reserve.parent_span_id, root.span_id);
    let upstream = spans
        .iter()
        .find(|s| s.name == "upstream")
        .expect("an upstream span");
    assert_eq!(upstream.parent_span_id, root.span_id);
    let u = attrs(upstream);
    assert_eq!(u["infron.provider"], "mock");
    assert_eq!(u["infron.model"], "test/chat");
    assert_eq!(u["infron.outcome"], "ok");

    let raw = String::from_utf8_lossy(&collector.raw()).to_string();
    for secret in [marker, "completion-marker-5e1d", t.key.as_str()] {
        assert!(!raw.contains(secret), "{secret:?} was exported");
    }
}
