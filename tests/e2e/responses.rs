//! OpenAI's Responses API on the gateway (stateless): requests as the official `openai` SDKs
//! send them, answers and streams in the Responses shapes, OpenAI's error shape, and the same
//! routing and billing as chat completions, whatever the upstream wire.

use infron_mock_provider::Behaviour;
use serde_json::{json, Value};

use crate::helpers::*;

fn body(model: &str, directive: Value) -> Value {
    json!({
        "model": model,
        "instructions": "You are terse.",
        "input": format!("Say hello [[mock:{directive}]]"),
    })
}

async fn post(app: &TestApp, key: &str, body: &Value) -> reqwest::Response {
    app.client
        .post(format!("{}/v1/responses", app.base))
        .bearer_auth(key)
        .json(body)
        .send()
        .await
        .unwrap()
}

/// The `data` of each event of an SSE body, checking that `event:` names its `type`.
fn events(text: &str) -> Vec<Value> {
    text.split("\n\n")
        .filter_map(|e| {
            let name = e.lines().find_map(|l| l.strip_prefix("event: "))?;
            let data = e.lines().find_map(|l| l.strip_prefix("data: "))?;
            let v: Value = serde_json::from_str(data).unwrap();
            assert_eq!(v["type"], name, "event: names the data's type");
            Some(v)
        })
        .collect()
}

fn last_upstream(app: &TestApp) -> Value {
    app.mock
        .requests()
        .into_iter()
        .rfind(|r| r.method == "POST")
        .unwrap()
        .body
}

#[tokio::test]
async fn plain_text_is_answered_and_charged_as_logged_on_every_wire() {
    let app = spawn_app().await;
    let t = app.tenant("5").await;
    for model in ["test/chat", "conf/anthropic", "conf/gemini"] {
        let before = app.balance(t.account).await;
        let res = post(
            &app,
            &t.key,
            &body(
                model,
                json!({"reply": "Hi there", "prompt_tokens": 30, "completion_tokens": 5, "cached_tokens": 10, "reasoning_tokens": 2}),
            ),
        )
        .await;
        assert_eq!(res.status(), 200, "{model}");
        let id = res.headers()["x-request-id"].to_str().unwrap().to_string();
        let v: Value = res.json().await.unwrap();
        assert_eq!(v["object"], "response", "{model}: {v}");
        assert_eq!(v["id"], id.as_str());
        assert!(v["created_at"].as_i64().unwrap() > 0);
        assert_eq!(v["status"], "completed");
        assert_eq!(v["model"], model);
        assert_eq!(v["instructions"], "You are terse.");
        assert!(v.get("output_text").is_none(), "output_text is SDK-side");
        let output = v["output"].as_array().unwrap();
        assert_eq!(output.len(), 1, "{v}");
        assert_eq!(output[0]["type"], "message");
        assert_eq!(output[0]["role"], "assistant");
        assert_eq!(output[0]["status"], "completed");
        assert_eq!(output[0]["content"][0]["type"], "output_text");
        assert_eq!(output[0]["content"][0]["text"], "Hi there", "{model}");
        assert_eq!(v["usage"]["input_tokens"], 30, "{model}: {v}");
        assert_eq!(v["usage"]["output_tokens"], 5);
        assert_eq!(v["usage"]["total_tokens"], 35);
        if model == "test/chat" {
            assert_eq!(v["usage"]["input_tokens_details"]["cached_tokens"], 10);
            assert_eq!(v["usage"]["output_tokens_details"]["reasoning_tokens"], 2);
        }
        // The instructions went upstream as the system prompt.
        let up = last_upstream(&app).to_string();
        assert!(up.contains("You are terse."), "{model}: {up}");

        let row = app.log_row(&id).await;
        assert_eq!(row.endpoint_kind, "responses");
        assert_eq!(row.status, 200);
        assert_eq!((row.prompt_tokens, row.completion_tokens), (30, 5));
        app.settled().await;
        let after = app.balance(t.account).await;
        assert!(row.cost > rust_decimal::Decimal::ZERO);
        assert_eq!(
            before - after,
            row.cost,
            "{model}: charged what the log says"
        );
    }
    // The same under /api/v1.
    let res = app
        .client
        .post(format!("{}/api/v1/responses", app.base))
        .bearer_auth(&t.key)
        .json(&json!({"model": "test/chat", "input": [{"role": "user", "content": [{"type": "input_text", "text": "hi"}]}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    app.ledger_clean().await;
    // Metadata only: nothing of the instructions, input or output is stored.
    let rows: Vec<String> = sqlx::query_scalar("SELECT row_to_json(r)::text FROM request_logs r")
        .fetch_all(&app.pg)
        .await
        .unwrap();
    for text in rows {
        assert!(
            !text.contains("terse") && !text.contains("Say hello") && !text.contains("Hi there"),
            "{text}"
        );
    }
    // Counted under their own route.
    let metrics = app
        .client
        .get(format!("{}/metrics", app.base))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics
            .lines()
            .any(|l| l.starts_with("infron_requests_total{")
                && l.contains("route=\"responses\"")
                && l.contains("status=\"200\"")),
        "{metrics}"
    );
}

#[tokio::test]
async fn a_function_tool_round_trips() {
    let app = spawn_app().await;
    let t = app.tenant("5").await;
    app.mock.push_behaviour(
        "up-a",
        Behaviour::from_json(json!({"tool_calls": [{"name": "get_weather", "arguments": {"city": "Paris"}, "id": "call_1"}]}))
            .unwrap(),
    );
    let tools = json!([{"type": "function", "name": "get_weather", "description": "Weather",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
        "strict": true}]);
    let first = json!({"model": "test/chat", "input": "Weather in Paris?", "tools": tools,
                       "tool_choice": "auto"});
    let res = post(&app, &t.key, &first).await;
    assert_eq!(res.status(), 200);
    let v: Value = res.json().await.unwrap();
    let up = last_upstream(&app);
    assert_eq!(up["tools"][0]["function"]["name"], "get_weather", "{up}");
    assert_eq!(v["tools"][0]["name"], "get_weather");
    let call = v["output"]
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["type"] == "function_call")
        .unwrap_or_else(|| panic!("{v}"))
        .clone();
    assert_eq!(call["call_id"], "call_1");
    assert_eq!(call["name"], "get_weather");
    let args: Value = serde_json::from_str(call["arguments"].as_str().unwrap()).unwrap();
    assert_eq!(args, json!({"city": "Paris"}));
    assert!(call["id"].as_str().unwrap().starts_with("fc_"));

    // The next turn sends the output back, then the function's result.
    app.mock.push_behaviour(
        "up-a",
        Behaviour::from_json(json!({"reply": "It is sunny in Paris."})).unwrap(),
    );
    let mut input = vec![json!({"role": "user", "content": "Weather in Paris?"})];
    input.extend(v["output"].as_array().unwrap().iter().cloned());
    input.push(json!({"type": "function_call_output", "call_id": "call_1", "output": "sunny"}));
    let second = json!({"model": "test/chat", "input": input, "tools": tools});
    let res = post(&app, &t.key, &second).await;
    assert_eq!(res.status(), 200);
    let v: Value = res.json().await.unwrap();
    assert_eq!(
        v["output"][0]["content"][0]["text"],
        "It is sunny in Paris."
    );
    let up = last_upstream(&app);
    let msgs = up["messages"].as_array().unwrap();
    let assistant = msgs.iter().find(|m| m["role"] == "assistant").unwrap();
    assert_eq!(assistant["tool_calls"][0]["id"], "call_1", "{up}");
    assert_eq!(
        assistant["tool_calls"][0]["function"]["name"],
        "get_weather"
    );
    let tool = msgs.last().unwrap();
    assert_eq!(tool["role"], "tool", "{up}");
    assert_eq!(tool["tool_call_id"], "call_1");
    assert_eq!(tool["content"], "sunny");
}

#[tokio::test]
async fn streams_follow_the_responses_event_sequence() {
    let app = spawn_app().await;
    let t = app.tenant("5").await;
    for model in ["test/chat", "conf/anthropic"] {
        let mut req = body(
            model,
            json!({"reply": "one two three", "prompt_tokens": 12, "completion_tokens": 3}),
        );
        req["stream"] = json!(true);
        let before = app.balance(t.account).await;
        let res = post(&app, &t.key, &req).await;
        assert_eq!(res.status(), 200);
        assert!(res.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/event-stream"));
        let id = res.headers()["x-request-id"].to_str().unwrap().to_string();
        let ev = events(&res.text().await.unwrap());
        let names: Vec<&str> = ev.iter().map(|e| e["type"].as_str().unwrap()).collect();
        assert_eq!(
            names[..4],
            [
                "response.created",
                "response.in_progress",
                "response.output_item.added",
                "response.content_part.added"
            ],
            "{names:?}"
        );
        assert_eq!(
            names[names.len() - 4..],
            [
                "response.output_text.done",
                "response.content_part.done",
                "response.output_item.done",
                "response.completed"
            ],
            "{names:?}"
        );
        for (i, e) in ev.iter().enumerate() {
            assert_eq!(e["sequence_number"], i as u64, "sequence numbers count up");
        }
        assert_eq!(ev[0]["response"]["id"], id.as_str());
        assert_eq!(ev[0]["response"]["status"], "in_progress");
        let text: String = ev
            .iter()
            .filter(|e| e["type"] == "response.output_text.delta")
            .map(|e| e["delta"].as_str().unwrap().to_string())
            .collect();
        assert_eq!(text, "one two three", "{model}");
        let done = ev
            .iter()
            .find(|e| e["type"] == "response.output_text.done")
            .unwrap();
        assert_eq!(done["text"], "one two three");
        let completed = &ev[ev.len() - 1]["response"];
        assert_eq!(completed["id"], id.as_str());
        assert_eq!(completed["status"], "completed");
        assert_eq!(
            completed["output"][0]["content"][0]["text"],
            "one two three"
        );
        assert_eq!(
            completed["usage"]["output_tokens"], 3,
            "{model}: {completed}"
        );
        assert_eq!(completed["usage"]["input_tokens"], 12);
        let row = app.log_row(&id).await;
        assert_eq!(row.endpoint_kind, "responses");
        assert!(row.streamed);
        app.settled().await;
        assert_eq!(before - app.balance(t.account).await, row.cost, "{model}");
    }

    // Function calls stream their arguments.
    let mut req = body(
        "test/chat",
        json!({"tool_calls": [{"name": "f", "arguments": {"a": 1}, "id": "call_9"}]}),
    );
    req["stream"] = json!(true);
    req["tools"] = json!([{"type": "function", "name": "f", "parameters": {"type": "object"}}]);
    let res = post(&app, &t.key, &req).await;
    let ev = events(&res.text().await.unwrap());
    let added = ev
        .iter()
        .find(|e| e["type"] == "response.output_item.added" && e["item"]["type"] == "function_call")
        .unwrap();
    assert_eq!(added["item"]["call_id"], "call_9");
    let args: String = ev
        .iter()
        .filter(|e| e["type"] == "response.function_call_arguments.delta")
        .map(|e| e["delta"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        serde_json::from_str::<Value>(&args).unwrap(),
        json!({"a": 1})
    );
    let done = ev
        .iter()
        .find(|e| e["type"] == "response.function_call_arguments.done")
        .unwrap();
    assert_eq!(done["arguments"], args.as_str());
    assert_eq!(done["item_id"], added["item"]["id"]);
    assert_eq!(ev.last().unwrap()["type"], "response.completed");

    // Cut by the output limit: response.incomplete, the message incomplete.
    let mut req = body(
        "test/chat",
        json!({"reply": "one two", "finish_reason": "length"}),
    );
    req["stream"] = json!(true);
    req["max_output_tokens"] = json!(2);
    let res = post(&app, &t.key, &req).await;
    let ev = events(&res.text().await.unwrap());
    let last = ev.last().unwrap();
    assert_eq!(last["type"], "response.incomplete", "{ev:?}");
    assert_eq!(last["response"]["status"], "incomplete");
    assert_eq!(
        last["response"]["incomplete_details"]["reason"],
        "max_output_tokens"
    );
    assert_eq!(last["response"]["output"][0]["status"], "incomplete");

    // A stream cut short by the provider ends with response.failed.
    let mut req = body(
        "test/chat",
        json!({"reply": "one two three four", "fault": "error_after_chunks", "after_chunks": 2}),
    );
    req["stream"] = json!(true);
    let res = post(&app, &t.key, &req).await;
    let ev = events(&res.text().await.unwrap());
    let last = ev.last().unwrap();
    assert_eq!(last["type"], "response.failed", "{ev:?}");
    assert_eq!(last["response"]["status"], "failed");
    assert!(last["response"]["error"]["message"].as_str().is_some());
    let error = &ev[ev.len() - 2];
    assert_eq!(error["type"], "error", "{ev:?}");
    assert_eq!(error["code"], "server_error");
    assert_eq!(last["response"]["output"][0]["type"], "message");
    assert_eq!(last["response"]["output"][0]["status"], "incomplete");
}

#[tokio::test]
async fn max_output_tokens_and_json_schema_are_honoured() {
    let app = spawn_app().await;
    let t = app.tenant("5").await;
    let mut req = body(
        "test/chat",
        json!({"reply": "{\"name\": \"Ada\"}", "finish_reason": "length"}),
    );
    req["max_output_tokens"] = json!(16);
    req["text"] = json!({"format": {"type": "json_schema", "name": "person", "strict": true,
        "schema": {"type": "object", "properties": {"name": {"type": "string"}}, "required": ["name"]}}});
    let res = post(&app, &t.key, &req).await;
    assert_eq!(res.status(), 200);
    let v: Value = res.json().await.unwrap();
    let up = last_upstream(&app);
    assert_eq!(up["response_format"]["type"], "json_schema", "{up}");
    assert_eq!(up["response_format"]["json_schema"]["name"], "person");
    assert_eq!(up["response_format"]["json_schema"]["strict"], true);
    assert_eq!(up["max_tokens"], 16, "{up}");
    assert_eq!(v["text"]["format"]["name"], "person");
    assert_eq!(v["max_output_tokens"], 16);
    let out: Value =
        serde_json::from_str(v["output"][0]["content"][0]["text"].as_str().unwrap()).unwrap();
    assert_eq!(out["name"], "Ada");
    assert_eq!(v["status"], "incomplete");
    assert_eq!(v["incomplete_details"]["reason"], "max_output_tokens");

    let mut req = body("test/chat", json!({"reply": "{}"}));
    req["text"] = json!({"format": {"type": "json_object"}});
    let res = post(&app, &t.key, &req).await;
    assert_eq!(res.status(), 200);
    assert_eq!(
        last_upstream(&app)["response_format"]["type"],
        "json_object"
    );
}

#[tokio::test]
async fn refusals_come_in_openais_error_shape() {
    let app = spawn_app().await;
    let t = app.tenant("5").await;
    let before = app.mock.requests().len();
    let check = |res: (u16, Value), status: u16, param: Option<&str>| {
        let (s, v) = res;
        assert_eq!(s, status, "{v}");
        assert!(
            v["error"]["message"]
                .as_str()
                .is_some_and(|m| !m.is_empty()),
            "{v}"
        );
        if let Some(p) = param {
            assert_eq!(v["error"]["param"], p, "{v}");
        }
    };
    async fn send(app: &TestApp, key: &str, b: &Value) -> (u16, Value) {
        let res = post(app, key, b).await;
        (res.status().as_u16(), res.json().await.unwrap())
    }
    let mut stateful = body("test/chat", json!({}));
    stateful["previous_response_id"] = json!("resp_123");
    let (s, v) = send(&app, &t.key, &stateful).await;
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("previous_response_id"),
        "{v}"
    );
    check((s, v), 400, Some("previous_response_id"));
    let mut hosted = body("test/chat", json!({}));
    hosted["tools"] = json!([{"type": "web_search"}]);
    check(
        send(&app, &t.key, &hosted).await,
        400,
        Some("tools[0].type"),
    );
    check(
        send(&app, &t.key, &json!({"model": "test/chat"})).await,
        400,
        Some("input"),
    );
    check(
        send(
            &app,
            &t.key,
            &json!({"model": "test/chat", "input": [{"type": "item_reference", "id": "msg_1"}]}),
        )
        .await,
        400,
        Some("input[0].type"),
    );
    check(
        send(&app, "sk-inf-v1-nope", &body("test/chat", json!({}))).await,
        401,
        None,
    );
    check(
        send(&app, &t.key, &body("test/nope", json!({}))).await,
        404,
        None,
    );
    // No credits: 402 in OpenAI's shape, before anything reaches a provider.
    let broke = app.tenant("0").await;
    let (s, v) = send(&app, &broke.key, &body("test/chat", json!({}))).await;
    assert_eq!(v["error"]["type"], "insufficient_quota", "{v}");
    check((s, v), 402, None);
    // Nothing is stored, so no response can be fetched, cancelled or deleted.
    for (method, path) in [
        (reqwest::Method::GET, "/v1/responses/gen-1"),
        (reqwest::Method::DELETE, "/v1/responses/gen-1"),
        (reqwest::Method::POST, "/api/v1/responses/gen-1/cancel"),
        (reqwest::Method::GET, "/v1/responses/gen-1/input_items"),
    ] {
        let res = app
            .client
            .request(method.clone(), format!("{}{path}", app.base))
            .bearer_auth(&t.key)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 404, "{method} {path}");
        let v: Value = res.json().await.unwrap();
        assert!(
            v["error"]["message"]
                .as_str()
                .unwrap()
                .contains("not stored"),
            "{v}"
        );
    }
    // Nothing refused reached a provider, and nothing was charged.
    assert_eq!(app.mock.requests().len(), before);
    app.settled().await;
    assert_eq!(app.balance(t.account).await, dec("5"));
    // A refused request is logged under its endpoint.
    let kinds: Vec<String> =
        sqlx::query_scalar("SELECT DISTINCT endpoint_kind FROM request_logs WHERE account_id = $1")
            .bind(t.account)
            .fetch_all(&app.pg)
            .await
            .unwrap();
    assert_eq!(kinds, vec!["responses".to_string()]);
}

#[tokio::test]
async fn reasoning_comes_back_and_round_trips_its_signature() {
    let app = spawn_app().await;
    let t = app.tenant("5").await;
    let directive = json!({"reasoning": "Let me think", "completion_tokens": 20,
        "tool_calls": [{"name": "get_weather", "arguments": {"city": "Paris"}, "id": "toolu_1"}]});
    let mut req = body("conf/anthropic", directive.clone());
    req["tools"] = json!([{"type": "function", "name": "get_weather", "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}]);
    req["reasoning"] = json!({"effort": "medium"});
    req["max_output_tokens"] = json!(4000);
    let res = post(&app, &t.key, &req).await;
    assert_eq!(res.status(), 200);
    let v: Value = res.json().await.unwrap();
    assert_eq!(v["reasoning"]["effort"], "medium");
    let output = v["output"].as_array().unwrap();
    assert_eq!(output[0]["type"], "reasoning", "{v}");
    assert_eq!(output[0]["content"][0]["type"], "reasoning_text");
    assert_eq!(output[0]["content"][0]["text"], "Let me think");
    assert!(output[0]["encrypted_content"].as_str().is_some(), "{v}");
    assert_eq!(output[1]["type"], "function_call", "{v}");

    // The next turn sends the whole output back: Anthropic gets its signed thinking back.
    let mut input = vec![json!({"role": "user", "content": req["input"]})];
    input.extend(output.iter().cloned());
    input.push(json!({"type": "function_call_output", "call_id": "toolu_1", "output": "sunny"}));
    let mut next = req.clone();
    next["input"] = json!(input);
    let res = post(&app, &t.key, &next).await;
    assert_eq!(res.status(), 200);
    let up = last_upstream(&app);
    let turns = up["messages"].as_array().unwrap();
    assert_eq!(turns[1]["role"], "assistant", "{up}");
    assert_eq!(turns[1]["content"][0]["type"], "thinking", "{up}");
    assert!(!turns[1]["content"][0]["signature"]
        .as_str()
        .unwrap()
        .is_empty());
    assert_eq!(turns[1]["content"][1]["type"], "tool_use", "{up}");
    assert_eq!(turns[2]["content"][0]["type"], "tool_result");

    // Streamed, reasoning comes as reasoning_text events before the call.
    let mut req = req.clone();
    req["stream"] = json!(true);
    let res = post(&app, &t.key, &req).await;
    let ev = events(&res.text().await.unwrap());
    let reasoning: String = ev
        .iter()
        .filter(|e| e["type"] == "response.reasoning_text.delta")
        .map(|e| e["delta"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(reasoning, "Let me think");
    let done: Vec<&Value> = ev
        .iter()
        .filter(|e| e["type"] == "response.output_item.done")
        .collect();
    assert_eq!(done[0]["item"]["type"], "reasoning");
    assert!(done[0]["item"]["encrypted_content"].as_str().is_some());
    assert_eq!(done[1]["item"]["type"], "function_call");
    let completed = &ev.last().unwrap()["response"];
    assert_eq!(completed["output"][0]["id"], done[0]["item"]["id"]);
    // Anthropic reports no separate reasoning token count; the total is the output.
    assert_eq!(completed["usage"]["output_tokens"], 20);

    // The streamed output goes back as well: the thinking arrives whole, with its signature.
    let mut input = vec![json!({"role": "user", "content": req["input"]})];
    input.extend(completed["output"].as_array().unwrap().iter().cloned());
    input.push(json!({"type": "function_call_output", "call_id": "toolu_1", "output": "sunny"}));
    let mut next = req.clone();
    next["input"] = json!(input);
    next["stream"] = json!(false);
    let res = post(&app, &t.key, &next).await;
    assert_eq!(res.status(), 200);
    let up = last_upstream(&app);
    let thinking = &up["messages"][1]["content"][0];
    assert_eq!(thinking["type"], "thinking", "{up}");
    assert_eq!(thinking["thinking"], "Let me think", "{up}");
    assert!(!thinking["signature"].as_str().unwrap().is_empty());
}

#[tokio::test]
async fn input_tokens_estimates_the_prompt() {
    let app = spawn_app().await;
    let t = app.tenant("1").await;
    let count = |body: Value| {
        let app = &app;
        let key = t.key.clone();
        async move {
            let res = app
                .client
                .post(format!("{}/v1/responses/input_tokens", app.base))
                .bearer_auth(key)
                .json(&body)
                .send()
                .await
                .unwrap();
            (res.status().as_u16(), res.json::<Value>().await.unwrap())
        }
    };
    let (s, short) = count(json!({"model": "test/chat", "input": "hi"})).await;
    assert_eq!(s, 200, "{short}");
    assert_eq!(short["object"], "response.input_tokens");
    let (_, long) = count(json!({"input": "word ".repeat(400), "instructions": "be brief"})).await;
    let (a, b) = (
        short["input_tokens"].as_u64().unwrap(),
        long["input_tokens"].as_u64().unwrap(),
    );
    assert!(a > 0 && b > a + 300, "{a} {b}");
    let (s, v) = count(json!({"model": "test/nope", "input": "hi"})).await;
    assert_eq!(s, 404, "{v}");
    let (s, v) =
        count(json!({"model": "test/chat", "input": "hi", "previous_response_id": "r"})).await;
    assert_eq!(s, 400, "{v}");
    // Nothing reached a provider or was charged.
    assert!(app.mock.requests().is_empty());
    app.settled().await;
    assert_eq!(app.balance(t.account).await, dec("1"));
}
