//! A small W3C WebDriver client over reqwest, enough for the dashboard's browser tests: it
//! starts Debian's `chromedriver` on a free port and drives headless `/usr/bin/chromium`.

use std::process::Stdio;
use std::time::Duration;

use base64::Engine;
use serde_json::{json, Value};
use tokio::process::{Child, Command};

const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";
pub const CHROMIUM: &str = "/usr/bin/chromium";
pub const CHROMEDRIVER: &str = "/usr/bin/chromedriver";

pub struct Driver {
    _process: Child,
    http: reqwest::Client,
    base: String,
}

pub struct Browser {
    http: reqwest::Client,
    session: String,
}

#[derive(Clone)]
pub struct Element(String);

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl Driver {
    pub async fn start() -> Driver {
        for (path, package) in [(CHROMIUM, "chromium"), (CHROMEDRIVER, "chromium-driver")] {
            assert!(
                std::path::Path::new(path).exists(),
                "{path} is missing: install Debian's {package} (scripts/test.sh does: apt-get install chromium chromium-driver)"
            );
        }
        let port = free_port();
        let process = Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("chromedriver starts");
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(90))
            .build()
            .unwrap();
        let base = format!("http://127.0.0.1:{port}");
        for _ in 0..200 {
            if let Ok(r) = http.get(format!("{base}/status")).send().await {
                if r.status().is_success() {
                    break;
                }
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Driver {
            _process: process,
            http,
            base,
        }
    }

    /// A new headless Chromium session.
    pub async fn browser(&self) -> Browser {
        let caps = json!({ "capabilities": { "alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": CHROMIUM,
                "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                         "--window-size=1280,900", "--no-first-run", "--disable-extensions",
                         "--host-resolver-rules=MAP checkout.stripe.com 127.0.0.1:9"]
            },
            "timeouts": { "pageLoad": 30000, "script": 30000, "implicit": 0 }
        }}});
        let r: Value = self
            .http
            .post(format!("{}/session", self.base))
            .json(&caps)
            .send()
            .await
            .expect("chromedriver answers")
            .json()
            .await
            .unwrap();
        let session = r["value"]["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no WebDriver session: {r}"))
            .to_string();
        Browser {
            http: self.http.clone(),
            session: format!("{}/session/{session}", self.base),
        }
    }
}

impl Browser {
    async fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        let mut req = self.http.request(method, format!("{}{path}", self.session));
        if let Some(b) = body {
            req = req.json(&b);
        }
        let r: Value = req.send().await.unwrap().json().await.unwrap();
        if let Some(err) = r["value"]["error"].as_str() {
            panic!("WebDriver {path}: {err}: {}", r["value"]["message"]);
        }
        r["value"].clone()
    }

    async fn try_call(&self, method: reqwest::Method, path: &str, body: Value) -> Option<Value> {
        let text = self
            .http
            .request(method, format!("{}{path}", self.session))
            .json(&body)
            .send()
            .await
            .ok()?
            .text()
            .await
            .ok()?;
        if std::env::var("INFRON_WEBDRIVER_DEBUG").is_ok() {
            eprintln!(
                "WebDriver {path}: {}",
                text.chars().take(300).collect::<String>()
            );
        }
        let r: Value = serde_json::from_str(&text).ok()?;
        if r["value"]["error"].is_string() {
            if std::env::var("INFRON_WEBDRIVER_DEBUG").is_ok() {
                eprintln!("WebDriver {path}: {}", r["value"]);
            }
            None
        } else {
            Some(r["value"].clone())
        }
    }

    pub async fn goto(&self, url: &str) {
        self.call(reqwest::Method::POST, "/url", Some(json!({ "url": url })))
            .await;
    }

    pub async fn url(&self) -> String {
        self.call(reqwest::Method::GET, "/url", None)
            .await
            .as_str()
            .unwrap()
            .to_string()
    }

    pub async fn find(&self, css: &str) -> Element {
        // Generous: CI runs this next to the rest of the suite on two cores.
        for _ in 0..400 {
            if let Some(e) = self.try_find(css).await {
                return e;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!(
            "no element {css} on {}: {}",
            self.url().await,
            self.text("body").await
        );
    }

    pub async fn try_find(&self, css: &str) -> Option<Element> {
        let v = self
            .try_call(
                reqwest::Method::POST,
                "/element",
                json!({ "using": "css selector", "value": css }),
            )
            .await?;
        v[ELEMENT].as_str().map(|s| Element(s.to_string()))
    }

    pub async fn fill(&self, css: &str, text: &str) {
        let e = self.find(css).await;
        self.call(
            reqwest::Method::POST,
            &format!("/element/{}/clear", e.0),
            Some(json!({})),
        )
        .await;
        self.call(
            reqwest::Method::POST,
            &format!("/element/{}/value", e.0),
            Some(json!({ "text": text })),
        )
        .await;
    }

    pub async fn click(&self, css: &str) {
        let e = self.find(css).await;
        self.call(
            reqwest::Method::POST,
            &format!("/element/{}/click", e.0),
            Some(json!({})),
        )
        .await;
    }

    /// The visible text of the first element matching `css` ("" when there is none, or the
    /// page is changing).
    pub async fn text(&self, css: &str) -> String {
        self.try_call(
            reqwest::Method::POST,
            "/execute/sync",
            json!({ "script": "const e = document.querySelector(arguments[0]); return e ? e.innerText : '';",
                    "args": [css] }),
        )
        .await
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default()
    }

    /// Waits until the page's text contains `needle`.
    pub async fn wait_for_text(&self, needle: &str) -> String {
        let mut body = String::new();
        for _ in 0..600 {
            body = self.text("body").await;
            if body.contains(needle) {
                return body;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("'{needle}' never appeared on {}: {body}", self.url().await);
    }

    /// Waits until an element matching `css` shows some text (a new page has loaded, not the
    /// one the click was made on); returns that text.
    pub async fn wait_for_element(&self, css: &str) -> String {
        for _ in 0..600 {
            let t = self.text(css).await;
            if !t.trim().is_empty() {
                return t;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("'{css}' never appeared on {}", self.url().await);
    }

    /// Waits for the page's `confirm()` dialog, accepts it and returns its text.
    pub async fn accept_dialog(&self) -> String {
        for _ in 0..200 {
            let r: Option<Value> = async {
                let text = self
                    .http
                    .get(format!("{}/alert/text", self.session))
                    .send()
                    .await
                    .ok()?
                    .json::<Value>()
                    .await
                    .ok()?;
                text["value"].as_str().map(|t| json!(t))
            }
            .await;
            if let Some(text) = r {
                self.call(reqwest::Method::POST, "/alert/accept", Some(json!({})))
                    .await;
                return text.as_str().unwrap_or_default().to_string();
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("no dialog opened on {}", self.url().await);
    }

    /// Chooses the option of the `<select>` matching `css` whose text contains `label`, as a
    /// person would with the keyboard or mouse.
    pub async fn select(&self, css: &str, label: &str) {
        self.find(css).await;
        let css_option = format!("{css} option");
        let index = self
            .run(
                "return Array.from(document.querySelectorAll(arguments[0])).findIndex(o => o.textContent.includes(arguments[1]));",
                json!([css_option, label]),
            )
            .await
            .as_i64()
            .unwrap_or(-1);
        assert!(index >= 0, "no option '{label}' in {css}");
        self.click(&format!("{css} option:nth-child({})", index + 1))
            .await;
    }

    pub async fn run(&self, script: &str, args: Value) -> Value {
        self.call(
            reqwest::Method::POST,
            "/execute/sync",
            Some(json!({ "script": script, "args": args })),
        )
        .await
    }

    pub async fn run_async(&self, script: &str, args: Value) -> Value {
        self.call(
            reqwest::Method::POST,
            "/execute/async",
            Some(json!({ "script": script, "args": args })),
        )
        .await
    }

    pub async fn resize(&self, width: u32, height: u32) {
        self.call(
            reqwest::Method::POST,
            "/window/rect",
            Some(json!({ "width": width, "height": height })),
        )
        .await;
    }

    pub async fn screenshot(&self, path: &std::path::Path) {
        let b64 = self.call(reqwest::Method::GET, "/screenshot", None).await;
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(b64.as_str().unwrap())
            .unwrap();
        std::fs::write(path, bytes).unwrap();
    }

    pub async fn quit(self) {
        let _ = self.http.delete(&self.session).send().await;
    }
}
