//! The operator's side of the real binary: the access log, `infron healthcheck`, reloading the
//! catalog on SIGHUP, and refusing the example key secret.

use std::process::Stdio;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Command;

use crate::harness::*;

const SHARED_REDIS: &str = "redis://127.0.0.1:6379";

/// Waits until a log line satisfies `want`; returns it.
async fn log_line(gw: &Gateway, want: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let found = gw
            .logs
            .lock()
            .unwrap()
            .iter()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .find(|v| want(v));
        if let Some(v) = found {
            return v;
        }
        assert!(
            Instant::now() < deadline,
            "no such log line in:\n{}",
            gw.log_text()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_request_has_an_access_log_line_with_its_public_id_and_key_hint() {
    let scene = Scene::new().await;
    let gw = Gateway::start(&scene.env(&scene.database_url(5432), SHARED_REDIS)).await;
    let t = scene.tenant("10").await;
    let client = reqwest::Client::new();

    let res = client
        .post(format!("{}/v1/chat/completions", gw.base))
        .bearer_auth(&t.key)
        .json(&chat_body(json!({"reply": "hi"}), false))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let id = res.headers()["x-request-id"].to_str().unwrap().to_string();
    assert!(id.starts_with("gen-"), "{id}");
    res.bytes().await.unwrap();

    let line = log_line(&gw, |v| v["fields"]["request_id"] == id.as_str()).await;
    let f = &line["fields"];
    assert_eq!(line["level"], "INFO", "{line}");
    assert_eq!(line["target"], "infron::access", "{line}");
    assert_eq!(f["method"], "POST");
    assert_eq!(f["route"], "/v1/chat/completions");
    assert_eq!(f["status"], 200);
    assert!(f["latency_ms"].as_u64().is_some(), "{line}");
    let hint = infron_api::api_keys::ApiKey::parse(&t.key).unwrap().hint();
    assert_eq!(f["key"], hint.as_str());
    assert!(
        !gw.log_text().contains(&t.key),
        "the key itself is never logged"
    );

    // A stream's line comes when the stream has ended, with the same public id.
    let seen = send(
        &client,
        &gw.base,
        &t.key,
        &chat_body(json!({"reply": "a b c", "chunk_delay_ms": 100}), true),
    )
    .await;
    assert!(seen.done);
    let sid = format!("gen-{}", seen.id.unwrap().simple());
    let line = log_line(&gw, |v| v["fields"]["request_id"] == sid.as_str()).await;
    assert!(
        line["fields"]["latency_ms"].as_u64().unwrap() >= 200,
        "{line}"
    );

    // An unknown route: a line too, without a key.
    let res = client
        .get(format!("{}/v1/nope", gw.base))
        .send()
        .await
        .unwrap();
    let nid = res.headers()["x-request-id"].to_str().unwrap().to_string();
    let line = log_line(&gw, |v| v["fields"]["request_id"] == nid.as_str()).await;
    assert_eq!(line["fields"]["status"], 404);
    assert_eq!(line["fields"]["route"], "unmatched");
    assert_eq!(line["fields"]["key"], "-");

    // A provider failure is a warning naming the public request id.
    let res = client
        .post(format!("{}/v1/chat/completions", gw.base))
        .bearer_auth(&t.key)
        .json(&chat_body(json!({"status": 500}), false))
        .send()
        .await
        .unwrap();
    let fid = res.headers()["x-request-id"].to_str().unwrap().to_string();
    let line = log_line(&gw, |v| {
        v["fields"]["request_id"] == fid.as_str()
            && v["fields"]["message"] == "provider attempt failed"
    })
    .await;
    assert_eq!(line["level"], "WARN", "{line}");
}

/// `infron healthcheck` with the given arguments and INFRON_BIND; (exit success, output).
async fn healthcheck(bind: &str, args: &[&str]) -> (bool, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_infron"))
        .arg("healthcheck")
        .args(args)
        .env_clear()
        .env("INFRON_BIND", bind)
        .current_dir(std::env::temp_dir())
        .output()
        .await
        .unwrap();
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn healthcheck_probes_ready_and_text_logs_have_no_colours_off_a_terminal() {
    let scene = Scene::new().await;
    let port = free_port();
    let bind = format!("0.0.0.0:{port}");
    let mut env = scene.env(&scene.database_url(5432), SHARED_REDIS);
    env.retain(|(k, _)| k != "INFRON_LOG_FORMAT" && k != "INFRON_BIND");
    env.push(("INFRON_BIND".into(), bind.clone()));
    let mut child = Command::new(env!("CARGO_BIN_EXE_infron"))
        .arg("serve")
        .env_clear()
        .envs(env)
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let mut log = Vec::new();
    let started = tokio::time::timeout(Duration::from_secs(30), async {
        while let Ok(Some(line)) = lines.next_line().await {
            let serving = line.contains("infron is serving");
            log.push(line);
            if serving {
                return true;
            }
        }
        false
    })
    .await;
    assert!(matches!(started, Ok(true)), "{log:?}");
    assert!(
        log.iter().all(|l| !l.contains('\u{1b}')),
        "no ANSI escapes when stderr is not a terminal: {log:?}"
    );

    // The wildcard bind is probed on loopback.
    let (ok, out) = healthcheck(&bind, &[]).await;
    assert!(ok, "{out}");
    let (ok, out) = healthcheck("ignored:1", &["--addr", &format!("127.0.0.1:{port}")]).await;
    assert!(ok, "{out}");
    let closed = free_port();
    let (ok, out) = healthcheck(&format!("127.0.0.1:{closed}"), &["--timeout-secs", "2"]).await;
    assert!(!ok);
    assert!(
        out.contains(&closed.to_string()),
        "names the address: {out}"
    );
    let _ = child.kill().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_reloads_the_catalog_file_and_keeps_it_when_the_file_is_invalid() {
    let scene = Scene::new().await;
    let gw = Gateway::start(&scene.env(&scene.database_url(5432), SHARED_REDIS)).await;
    let client = reqwest::Client::new();
    let status = |path: &'static str| {
        let (c, base) = (client.clone(), gw.base.clone());
        async move {
            c.get(format!("{base}/v1/models/{path}"))
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }
    };
    assert_eq!(status("test%2Fadded").await, 404);
    let original = std::fs::read_to_string(&scene.catalog.0).unwrap();
    let added = original.clone()
        + r#"
[[models]]
id = "test/added"
name = "Added by a reload"
context_length = 8000
max_output_tokens = 1000
[[models.endpoints]]
provider = "mock"
upstream_model = "up-added"
pricing = { prompt = "0.000001", completion = "0.000002" }
"#;
    std::fs::write(&scene.catalog.0, added).unwrap();
    let hup = |pid: u32| async move {
        let s = Command::new("kill")
            .args(["-HUP", &pid.to_string()])
            .status()
            .await
            .unwrap();
        assert!(s.success());
    };
    hup(gw.pid()).await;
    let deadline = Instant::now() + Duration::from_secs(10);
    while status("test%2Fadded").await != 200 {
        assert!(
            Instant::now() < deadline,
            "not reloaded:\n{}",
            gw.log_text()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // An invalid file: logged, and the catalog in effect stays.
    std::fs::write(&scene.catalog.0, "[[models]]\nid = 3\n").unwrap();
    hup(gw.pid()).await;
    let line = log_line(&gw, |v| {
        v["fields"]["message"]
            .as_str()
            .is_some_and(|m| m.starts_with("catalog reload failed"))
    })
    .await;
    assert_eq!(line["level"], "ERROR");
    assert_eq!(status("test%2Fadded").await, 200);
    assert_eq!(status("test%2Fchat").await, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_example_key_secret_is_refused_at_start() {
    let scene = Scene::new().await;
    let example = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../.env.example"),
    )
    .unwrap();
    let placeholder = example
        .lines()
        .find_map(|l| l.strip_prefix("INFRON_KEY_SECRET="))
        .unwrap()
        .to_string();
    let mut env = scene.env(&scene.database_url(5432), SHARED_REDIS);
    env.retain(|(k, _)| k != "INFRON_KEY_SECRET");
    env.push(("INFRON_KEY_SECRET".into(), placeholder));
    let out = tokio::time::timeout(
        Duration::from_secs(30),
        Command::new(env!("CARGO_BIN_EXE_infron"))
            .arg("serve")
            .env_clear()
            .envs(env)
            .current_dir(std::env::temp_dir())
            .output(),
    )
    .await
    .expect("exits at once")
    .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("INFRON_KEY_SECRET") && err.contains(".env.example"),
        "{err}"
    );
}
