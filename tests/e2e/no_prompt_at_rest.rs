//! No prompt or completion text at rest: unique markers sent through every success and error
//! path (each wire, streams, provider errors that quote the input, mid-stream failures,
//! malformed answers, the legacy and embeddings APIs) never show up in any Postgres table, in
//! any Redis key of the test's prefix, or in the server's log output. The client still gets the
//! provider's message.

use std::io::Write;
use std::sync::{Arc, Mutex};

use serde_json::{json, Value};
use uuid::Uuid;

use crate::helpers::*;

const WIRES: &[&str] = &[
    "conf/openai",
    "conf/anthropic",
    "conf/gemini",
    "conf/bedrock",
    "conf/vertex-anthropic",
    "conf/vertex-gemini",
    "conf/azure",
];

#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Captures every log line of this test process, the gateway's at trace level.
fn capture_logs() -> Captured {
    let captured = Captured::default();
    let writer = captured.clone();
    let filter = tracing_subscriber::EnvFilter::new(
        "info,infron_api=trace,infron_router=trace,infron_billing=trace,infron_store=trace,\
         infron_accounts=trace,actix_web=debug,actix_http=debug",
    );
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .try_init()
        .expect("this test installs the only log subscriber of its process (run it under nextest)");
    captured
}

struct Markers(Vec<String>);

impl Markers {
    fn mint(&mut self, what: &str) -> String {
        let m = format!(
            "SECRETMARK{}{}",
            what.replace(['/', '-', ' '], ""),
            Uuid::new_v4().simple()
        );
        self.0.push(m.clone());
        m
    }
}

fn ask(model: &str, prompt: &str, directive: Value, stream: bool) -> Value {
    json!({"model": model, "max_tokens": 100, "stream": stream,
    "stream_options": {"include_usage": true},
    "messages": [
        {"role": "system", "content": format!("system {prompt}")},
        {"role": "user", "content": format!("{prompt} [[mock:{directive}]]")},
    ]})
}

#[tokio::test]
async fn markers_never_reach_postgres_redis_or_the_logs() {
    let logs = capture_logs();
    let app = spawn_app().await;
    let t = app.tenant("5").await;
    let mut markers = Markers(Vec::new());

    for model in WIRES {
        for stream in [false, true] {
            let p = markers.mint(&format!("{model}ok{stream}"));
            let r = markers.mint(&format!("{model}reply{stream}"));
            let d = json!({"reply": format!("the answer is {r}"), "reasoning": format!("thinking {r}")});
            let res = app.post_chat(&t.key, &ask(model, &p, d, stream)).await;
            assert_eq!(res.status(), 200, "{model}");
            assert!(
                res.text().await.unwrap().contains(&r),
                "{model}: the client gets the reply"
            );

            let p = markers.mint(&format!("{model}tool{stream}"));
            let a = markers.mint(&format!("{model}args{stream}"));
            let d = json!({"tool_calls": [{"name": "lookup", "arguments": {"q": a}}]});
            let mut body = ask(model, &p, d, stream);
            body["tools"] = json!([{"type": "function", "function": {"name": "lookup",
                "parameters": {"type": "object", "properties": {"q": {"type": "string"}}}}}]);
            assert_eq!(app.post_chat(&t.key, &body).await.status(), 200, "{model}");
        }

        // Provider errors that quote the input: the client gets the message, nobody else.
        for (status, template) in [
            (400, "Invalid value in prompt: '{}'"),
            (
                400,
                "This model's maximum context length is 10 tokens; your prompt '{}' is too long",
            ),
            (422, "Unprocessable: {}"),
            (429, "Rate limited while reading '{}'"),
            (500, "Internal failure on '{}'"),
            (503, "Overloaded by '{}'"),
        ] {
            for stream in [false, true] {
                let p = markers.mint(&format!("{model}err{status}{stream}"));
                let d = json!({"status": status, "error_message": template.replace("{}", &p)});
                let res = app.post_chat(&t.key, &ask(model, &p, d, stream)).await;
                assert!(res.status().as_u16() >= 400, "{model} {status}");
                let text = res.text().await.unwrap();
                if status == 400 || status == 422 {
                    assert!(
                        text.contains(&p),
                        "{model} {status}: the client gets the provider's message: {text}"
                    );
                }
            }
        }

        // Faults in the middle of an answer.
        for fault in [
            "error_after_chunks",
            "corrupt_after_chunks",
            "reset_after_chunks",
            "reset_before_headers",
        ] {
            for stream in [false, true] {
                let p = markers.mint(&format!("{model}{fault}{stream}"));
                let r = markers.mint(&format!("{model}{fault}reply{stream}"));
                let d = json!({"fault": fault, "after_chunks": 2,
                    "reply": format!("partial {r} words and more words"),
                    "error_message": format!("broke on {p}")});
                let _ = app
                    .post_chat(&t.key, &ask(model, &p, d, stream))
                    .await
                    .text()
                    .await;
            }
        }

        // A whole JSON body to a stream request.
        let p = markers.mint(&format!("{model}jsonstream"));
        let r = markers.mint(&format!("{model}jsonstreamreply"));
        let d = json!({"json_for_stream": true, "reply": r});
        assert_eq!(
            app.post_chat(&t.key, &ask(model, &p, d, true))
                .await
                .status(),
            200
        );
    }

    // Requests the gateway itself refuses, with the marker where a parser would quote it.
    let p = markers.mint("badrole");
    let body = json!({"model": "test/chat", "messages": [{"role": p, "content": "x"}]});
    assert_eq!(app.post_chat(&t.key, &body).await.status(), 400);
    let p = markers.mint("badtype");
    let body =
        json!({"model": "test/chat", "messages": [{"role": "user", "content": [{"type": p}]}]});
    assert_eq!(app.post_chat(&t.key, &body).await.status(), 400);
    let p = markers.mint("trailing");
    let res = app
        .client
        .post(format!("{}/v1/chat/completions", app.base))
        .bearer_auth(&t.key)
        .header("content-type", "application/json")
        .body(format!("{} \"{p}\"", chat_body("test/chat", None)))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);

    // The legacy API and embeddings.
    let p = markers.mint("legacy");
    let r = markers.mint("legacyreply");
    let res = app
        .client
        .post(format!("{}/v1/completions", app.base))
        .bearer_auth(&t.key)
        .json(&json!({"model": "test/chat", "max_tokens": 20,
            "prompt": format!("{p} [[mock:{}]]", json!({"reply": r}))}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let p = markers.mint("legacyerr");
    let res = app
        .client
        .post(format!("{}/v1/completions", app.base))
        .bearer_auth(&t.key)
        .json(&json!({"model": "test/chat", "max_tokens": 20,
            "prompt": format!("{p} [[mock:{}]]", json!({"status": 400, "error_message": p}))}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
    for model in ["test/embed"] {
        let p = markers.mint("embed");
        let res = app
            .client
            .post(format!("{}/v1/embeddings", app.base))
            .bearer_auth(&t.key)
            .json(&json!({"model": model, "input": [p]}))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200);
    }

    app.settled().await;
    app.ledger_clean().await;

    // Postgres: every row of every table, as text.
    let tables: Vec<(String, String)> = sqlx::query_as(
        "SELECT table_schema::text, table_name::text FROM information_schema.tables
         WHERE table_type = 'BASE TABLE' AND table_schema NOT IN ('pg_catalog', 'information_schema')",
    )
    .fetch_all(&app.pg)
    .await
    .unwrap();
    assert!(
        tables.iter().any(|(_, t)| t == "request_logs"),
        "{tables:?}"
    );
    let mut dump = String::new();
    for (schema, table) in &tables {
        let rows: Vec<Option<String>> =
            sqlx::query_scalar(&format!("SELECT t::text FROM \"{schema}\".\"{table}\" t"))
                .fetch_all(&app.pg)
                .await
                .unwrap();
        for row in rows.into_iter().flatten() {
            dump.push_str(&row);
            dump.push('\n');
        }
    }
    assert!(dump.contains("request_logs") || !dump.is_empty());
    let logged: i64 = sqlx::query_scalar("SELECT count(*) FROM request_logs")
        .fetch_one(&app.pg)
        .await
        .unwrap();
    assert!(logged > 100, "every request was logged ({logged})");

    // Redis: every key of the test's prefix, whatever its type.
    let client = redis::Client::open(redis_url()).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let pattern = format!("{}*", app.hot.keys().prefix());
    let keys: Vec<String> = {
        let mut cursor: u64 = 0;
        let mut keys = Vec::new();
        loop {
            let (next, batch): (u64, Vec<String>) = redis::cmd("SCAN")
                .arg(cursor)
                .arg("MATCH")
                .arg(&pattern)
                .arg("COUNT")
                .arg(1000)
                .query_async(&mut conn)
                .await
                .unwrap();
            keys.extend(batch);
            if next == 0 {
                break keys;
            }
            cursor = next;
        }
    };
    assert!(!keys.is_empty());
    let mut redis_dump = String::new();
    for key in &keys {
        redis_dump.push_str(key);
        let kind: String = redis::cmd("TYPE")
            .arg(key)
            .query_async(&mut conn)
            .await
            .unwrap();
        let value: redis::Value = match kind.as_str() {
            "string" => redis::cmd("GET")
                .arg(key)
                .query_async(&mut conn)
                .await
                .unwrap(),
            "hash" => redis::cmd("HGETALL")
                .arg(key)
                .query_async(&mut conn)
                .await
                .unwrap(),
            "list" => redis::cmd("LRANGE")
                .arg(key)
                .arg(0)
                .arg(-1)
                .query_async(&mut conn)
                .await
                .unwrap(),
            "set" => redis::cmd("SMEMBERS")
                .arg(key)
                .query_async(&mut conn)
                .await
                .unwrap(),
            "zset" => redis::cmd("ZRANGE")
                .arg(key)
                .arg(0)
                .arg(-1)
                .arg("WITHSCORES")
                .query_async(&mut conn)
                .await
                .unwrap(),
            "stream" => redis::cmd("XRANGE")
                .arg(key)
                .arg("-")
                .arg("+")
                .query_async(&mut conn)
                .await
                .unwrap(),
            _ => redis::Value::Nil,
        };
        redis_dump.push_str(&format!("{value:?}\n"));
    }

    let log_text = String::from_utf8_lossy(&logs.0.lock().unwrap()).to_string();
    assert!(!log_text.is_empty(), "logs were captured");
    for m in &markers.0 {
        assert!(!dump.contains(m), "marker {m} found in Postgres");
        assert!(!redis_dump.contains(m), "marker {m} found in Redis");
        assert!(!log_text.contains(m), "marker {m} found in the logs");
    }
}
