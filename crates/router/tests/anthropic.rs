//! The Anthropic adapter against the documented Messages API examples.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use infron_router::providers::anthropic;
use infron_router::providers::anthropic_stream::AnthropicStream;
use infron_router::providers::http::translate_sse;
use infron_router::FailureKind;
use serde_json::{json, Value};

fn prepare(v: Value) -> Result<anthropic::Prepared, String> {
    anthropic::prepare(&endpoint("t/claude"), &request(v))
}

#[test]
fn request_translates_messages_media_tools_and_parameters() {
    let p = prepare(json!({
        "model": "t/claude",
        "messages": [
            {"role": "system", "content": "You are terse."},
            {"role": "user", "content": [
                {"type": "text", "text": "Describe these", "cache_control": {"type": "ephemeral"}},
                {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}},
                {"type": "image_url", "image_url": {"url": "https://example.com/cat.jpg"}},
                {"type": "file", "file": {"filename": "a.pdf", "file_data": "data:application/pdf;base64,JVBERi0x"}}
            ]},
            {"role": "assistant", "content": null, "tool_calls": [
                {"id": "toolu_1", "type": "function", "function": {"name": "get_weather", "arguments": "{\"city\":\"Paris\"}"}},
                {"id": "toolu_2", "type": "function", "function": {"name": "get_time", "arguments": ""}}
            ]},
            {"role": "tool", "tool_call_id": "toolu_1", "content": "18C"},
            {"role": "tool", "tool_call_id": "toolu_2", "content": "noon"},
            {"role": "developer", "content": "Answer in French."},
            {"role": "user", "content": "And now?"}
        ],
        "tools": [{"type": "function", "function": {"name": "get_weather", "description": "Weather",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}},
            {"type": "function", "function": {"name": "get_time"}}],
        "tool_choice": "required",
        "parallel_tool_calls": false,
        "stop": "END",
        "temperature": 1.5,
        "top_p": 0.9,
        "seed": 7,
        "logit_bias": {"50256": -100},
        "user": "user-42",
        "max_tokens": 300
    }))
    .unwrap();
    assert_eq!(
        p.body,
        json!({
            "model": "claude-sonnet-4-5",
            "max_tokens": 300,
            "system": [{"type": "text", "text": "You are terse."}, {"type": "text", "text": "Answer in French."}],
            "messages": [
                {"role": "user", "content": [
                    {"type": "text", "text": "Describe these", "cache_control": {"type": "ephemeral"}},
                    {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo="}},
                    {"type": "image", "source": {"type": "url", "url": "https://example.com/cat.jpg"}},
                    {"type": "document", "title": "a.pdf", "source": {"type": "base64", "media_type": "application/pdf", "data": "JVBERi0x"}}
                ]},
                {"role": "assistant", "content": [
                    {"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {"city": "Paris"}},
                    {"type": "tool_use", "id": "toolu_2", "name": "get_time", "input": {}}
                ]},
                {"role": "user", "content": [
                    {"type": "tool_result", "tool_use_id": "toolu_1", "content": "18C"},
                    {"type": "tool_result", "tool_use_id": "toolu_2", "content": "noon"},
                    {"type": "text", "text": "And now?"}
                ]}
            ],
            "tools": [
                {"name": "get_weather", "description": "Weather", "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}}},
                {"name": "get_time", "input_schema": {"type": "object", "properties": {}}}
            ],
            "tool_choice": {"type": "any", "disable_parallel_tool_use": true},
            "stop_sequences": ["END"],
            "temperature": 1.0,
            "top_p": 0.9,
            "metadata": {"user_id": "user-42"}
        })
    );
    assert!(p.json_tool.is_none());
}

#[test]
fn max_tokens_is_always_set_and_capped_at_the_endpoint() {
    let body = |extra: Value| {
        let mut v = json!({"messages": [{"role": "user", "content": "hi"}], "stream": true});
        for (k, x) in extra.as_object().unwrap() {
            v[k] = x.clone();
        }
        prepare(v).unwrap().body
    };
    assert_eq!(body(json!({}))["max_tokens"], 8000);
    assert_eq!(body(json!({"max_completion_tokens": 50}))["max_tokens"], 50);
    assert_eq!(body(json!({"max_tokens": 100000}))["max_tokens"], 8000);
    assert_eq!(body(json!({}))["stream"], true);
    let named = body(
        json!({"tools": [{"type": "function", "function": {"name": "f"}}],
        "tool_choice": {"type": "function", "function": {"name": "f"}}}),
    );
    assert_eq!(named["tool_choice"], json!({"type": "tool", "name": "f"}));
    let none = body(
        json!({"tools": [{"type": "function", "function": {"name": "f"}}], "tool_choice": "none"}),
    );
    assert_eq!(none["tool_choice"], json!({"type": "none"}));
}

#[test]
fn reasoning_becomes_a_thinking_budget_below_max_tokens() {
    let base = json!({"messages": [{"role": "user", "content": "hi"}], "max_tokens": 4000, "temperature": 0.2});
    let mut v = base.clone();
    v["reasoning"] = json!({"effort": "high"});
    let body = prepare(v).unwrap().body;
    // high = 0.8 x 4000
    assert_eq!(
        body["thinking"],
        json!({"type": "enabled", "budget_tokens": 3200})
    );
    assert!(
        body.get("temperature").is_none(),
        "Anthropic rejects temperature with thinking"
    );
    let mut v = base.clone();
    v["reasoning"] = json!({"effort": "low"});
    assert_eq!(prepare(v).unwrap().body["thinking"]["budget_tokens"], 1024);
    let mut v = base.clone();
    v["reasoning"] = json!({"max_tokens": 2000});
    assert_eq!(prepare(v).unwrap().body["thinking"]["budget_tokens"], 2000);
    let mut v = base.clone();
    v["reasoning"] = json!({"max_tokens": 5000});
    assert!(prepare(v).unwrap_err().starts_with("max_tokens"));
    let mut v = base.clone();
    v["max_tokens"] = json!(1000);
    v["reasoning"] = json!({"effort": "medium"});
    assert!(prepare(v).unwrap_err().contains("thinking budget"));
    let mut v = base.clone();
    v["reasoning"] = json!({"effort": "none"});
    assert!(prepare(v).unwrap().body.get("thinking").is_none());
    let mut v = base;
    v["reasoning"] = json!({"effort": "high"});
    v["tools"] = json!([{"type": "function", "function": {"name": "f"}}]);
    v["tool_choice"] = json!("required");
    assert!(prepare(v).unwrap_err().starts_with("tool_choice"));
}

#[test]
fn signed_reasoning_goes_back_as_thinking_blocks_first() {
    // The documented thinking response, translated, then sent back in the next turn.
    let first = prepare(
        json!({"messages": [{"role": "user", "content": "q"}], "reasoning": {"effort": "low"}}),
    )
    .unwrap();
    let (resp, _) =
        anthropic::parse_response(&fixture_json("anthropic/message_thinking.json"), &first)
            .unwrap();
    let message = serde_json::to_value(&resp.choices[0].message).unwrap();
    let p = prepare(json!({
        "messages": [
            {"role": "user", "content": "q"},
            message,
            {"role": "user", "content": "more"}
        ],
        "reasoning": {"effort": "low"}
    }))
    .unwrap();
    assert_eq!(
        p.body["messages"][1]["content"],
        json!([
            {"type": "thinking", "thinking": "Let me analyze this step by step...",
             "signature": "WaUjzkypQ2mUEVM36O2TxuC06KN8xyfbJwyem2dw3URve/op91XWHOEBLLqIOMfFG/UvLEczmEsUjavL...."},
            {"type": "redacted_thinking", "data": "EmwKAhgBEgy3va3pzix/LafPsn4aDFIT2Xlxh0L5L8rLVyIwxtE3rAFBa8cr3qpP..."},
            {"type": "text", "text": "Based on my analysis..."}
        ])
    );
    // Streamed fragments sent back as received merge into one block per index.
    let streamed = json!([
        {"type": "reasoning.text", "text": "a", "format": "anthropic-claude-v1", "index": 0},
        {"type": "reasoning.text", "text": "b", "format": "anthropic-claude-v1", "index": 0},
        {"type": "reasoning.text", "signature": "sig", "format": "anthropic-claude-v1", "index": 0},
        {"type": "reasoning.encrypted", "data": "x", "format": "google-gemini-v1", "id": "call_1"}
    ]);
    let p = prepare(json!({
        "messages": [{"role": "user", "content": "q"},
            {"role": "assistant", "content": "ok", "reasoning_details": streamed},
            {"role": "user", "content": "more"}],
        "reasoning": {"effort": "low"}
    }))
    .unwrap();
    assert_eq!(
        p.body["messages"][1]["content"][0],
        json!({"type": "thinking", "thinking": "ab", "signature": "sig"})
    );
    assert_eq!(
        p.body["messages"][1]["content"].as_array().unwrap().len(),
        2
    );
}

#[test]
fn json_schema_is_a_forced_tool_whose_input_is_the_content() {
    let p = prepare(json!({
        "messages": [{"role": "user", "content": "weather?"}],
        "response_format": {"type": "json_schema", "json_schema": {"name": "weather report",
            "schema": {"type": "object", "properties": {"temp": {"type": "number"}}, "required": ["temp"]}}}
    }))
    .unwrap();
    assert_eq!(p.json_tool.as_deref(), Some("weather_report"));
    assert_eq!(
        p.body["tool_choice"],
        json!({"type": "tool", "name": "weather_report"})
    );
    assert_eq!(
        p.body["tools"][0]["input_schema"]["required"],
        json!(["temp"])
    );
    let answer = json!({"id": "msg_1", "type": "message", "role": "assistant", "model": "m",
        "content": [{"type": "tool_use", "id": "toolu_9", "name": "weather_report", "input": {"temp": 21.5}}],
        "stop_reason": "tool_use", "usage": {"input_tokens": 10, "output_tokens": 5}});
    let (resp, _) = anthropic::parse_response(&answer, &p).unwrap();
    let choice = &resp.choices[0];
    assert_eq!(choice.message.content.as_deref(), Some(r#"{"temp":21.5}"#));
    assert!(choice.message.tool_calls.is_none());
    assert_eq!(choice.finish_reason.as_deref(), Some("stop"));
    // Streamed, the forced tool's input fragments are content.
    let sse = "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"m\",\"model\":\"x\",\"usage\":{\"input_tokens\":3,\"output_tokens\":1}}}\n\n\
event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"tool_use\",\"id\":\"t\",\"name\":\"weather_report\",\"input\":{}}}\n\n\
event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"input_json_delta\",\"partial_json\":\"{\\\"temp\\\":\"}}\n\n\
event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"input_json_delta\",\"partial_json\":\"21.5}\"}}\n\n\
event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"tool_use\"},\"usage\":{\"output_tokens\":5}}\n\n\
event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n";
    let (chunks, _) = split(translate_sse(
        AnthropicStream::new("p", p.json_tool.clone(), false),
        sse.as_bytes(),
    ));
    let (content, _, finish) = accumulate(&chunks);
    assert_eq!(content, r#"{"temp":21.5}"#);
    assert_eq!(finish.as_deref(), Some("stop"));
    assert!(tool_calls(&chunks).is_empty());
    // Not combinable with tools, and only object schemas.
    let err = prepare(json!({"messages": [{"role": "user", "content": "x"}],
        "tools": [{"type": "function", "function": {"name": "f"}}],
        "response_format": {"type": "json_schema", "json_schema": {"name": "n", "schema": {"type": "object"}}}}))
    .unwrap_err();
    assert!(err.starts_with("response_format"), "{err}");
    let err = prepare(json!({"messages": [{"role": "user", "content": "x"}],
        "response_format": {"type": "json_schema", "json_schema": {"name": "n", "schema": {"type": "array"}}}}))
    .unwrap_err();
    assert!(
        err.starts_with("response_format.json_schema.schema"),
        "{err}"
    );
    let p = prepare(json!({"messages": [{"role": "user", "content": "x"}], "response_format": {"type": "json_object"}})).unwrap();
    assert!(p.body["system"][0]["text"]
        .as_str()
        .unwrap()
        .contains("JSON object"));
}

#[test]
fn what_anthropic_cannot_take_is_a_400_naming_the_field() {
    let err = prepare(json!({"messages": [{"role": "user", "content": [
        {"type": "text", "text": "listen"},
        {"type": "input_audio", "input_audio": {"data": "AAAA", "format": "wav"}}]}]}))
    .unwrap_err();
    assert!(err.starts_with("messages[0].content[1]"), "{err}");
    let err = prepare(json!({"messages": [{"role": "user", "content": "x"}], "logprobs": true}))
        .unwrap_err();
    assert!(err.starts_with("logprobs"), "{err}");
    let err = prepare(json!({"messages": [{"role": "user", "content": [
        {"type": "file", "file": {"file_data": "data:text/csv;base64,YSxi"}}]}]}))
    .unwrap_err();
    assert!(err.starts_with("messages[0].content[0].file"), "{err}");
    let err = prepare(json!({"messages": [{"role": "assistant", "content": "x",
        "tool_calls": [{"id": "t", "type": "function", "function": {"name": "f", "arguments": "not json"}}]}]}))
    .unwrap_err();
    assert!(
        err.starts_with("messages[0].tool_calls[0].function.arguments"),
        "{err}"
    );
}

#[test]
fn documented_text_response_and_usage_with_cache() {
    let p = prepare(json!({"messages": [{"role": "user", "content": "hi"}]})).unwrap();
    let (resp, usage) =
        anthropic::parse_response(&fixture_json("anthropic/message_text.json"), &p).unwrap();
    assert_eq!(
        resp.choices[0].message.content.as_deref(),
        Some("Hi! My name is Claude.")
    );
    assert_eq!(resp.choices[0].finish_reason.as_deref(), Some("stop"));
    let u = usage.unwrap();
    // input 2095 + cache read 1000 + cache write 100
    assert_eq!(
        (
            u.prompt_tokens,
            u.completion_tokens,
            u.cached_tokens,
            u.cache_write_tokens,
            u.reasoning_tokens
        ),
        (3195, 503, 1000, 100, 0)
    );
}

#[test]
fn documented_tool_use_response() {
    let p = prepare(json!({"messages": [{"role": "user", "content": "hi"}]})).unwrap();
    let (resp, usage) =
        anthropic::parse_response(&fixture_json("anthropic/message_tool_use.json"), &p).unwrap();
    let m = &resp.choices[0].message;
    assert_eq!(
        m.content.as_deref(),
        Some("I'll check the current weather in San Francisco for you.")
    );
    let calls = m.tool_calls.as_ref().unwrap();
    assert_eq!(calls[0]["id"], "toolu_01A09q90qw90lq917835lq9");
    assert_eq!(calls[0]["type"], "function");
    assert_eq!(calls[0]["function"]["name"], "get_weather");
    let args: Value =
        serde_json::from_str(calls[0]["function"]["arguments"].as_str().unwrap()).unwrap();
    assert_eq!(
        args,
        json!({"location": "San Francisco, CA", "unit": "celsius"})
    );
    assert_eq!(resp.choices[0].finish_reason.as_deref(), Some("tool_calls"));
    assert_eq!(usage.unwrap().prompt_tokens, 472);
}

#[test]
fn documented_thinking_response_keeps_signatures_unless_excluded() {
    let p = prepare(json!({"messages": [{"role": "user", "content": "hi"}]})).unwrap();
    let (resp, _) =
        anthropic::parse_response(&fixture_json("anthropic/message_thinking.json"), &p).unwrap();
    let m = &resp.choices[0].message;
    assert_eq!(
        m.reasoning.as_deref(),
        Some("Let me analyze this step by step...")
    );
    let d = m.reasoning_details.as_ref().unwrap();
    assert_eq!(d[0]["type"], "reasoning.text");
    assert!(d[0]["signature"].as_str().unwrap().starts_with("WaUjzkyp"));
    assert_eq!(d[0]["format"], "anthropic-claude-v1");
    assert_eq!(d[1]["type"], "reasoning.encrypted");
    assert_eq!(m.content.as_deref(), Some("Based on my analysis..."));
    let excluded = prepare(json!({"messages": [{"role": "user", "content": "hi"}],
        "reasoning": {"effort": "low", "exclude": true}}))
    .unwrap();
    let (resp, _) =
        anthropic::parse_response(&fixture_json("anthropic/message_thinking.json"), &excluded)
            .unwrap();
    assert!(resp.choices[0].message.reasoning.is_none());
    assert!(resp.choices[0].message.reasoning_details.is_none());
}

fn stream(path: &str) -> Vec<Result<infron_router::StreamEvent, infron_router::ProviderError>> {
    translate_sse(
        AnthropicStream::new("claude", None, false),
        fixture(path).as_bytes(),
    )
}

#[test]
fn documented_text_stream() {
    let (chunks, usage) = split(stream("anthropic/stream_text.sse"));
    assert_eq!(
        chunks[0].choices[0].delta.role.as_deref(),
        Some("assistant")
    );
    assert_eq!(chunks[0].id, "msg_1nZdL29xx5MUA1yADyHTEsnR8uuvGzszyY");
    let (content, _, finish) = accumulate(&chunks);
    assert_eq!(content, "Hello!");
    assert_eq!(finish.as_deref(), Some("stop"));
    let u = usage.unwrap();
    assert_eq!((u.prompt_tokens, u.completion_tokens), (25, 15));
}

#[test]
fn documented_tool_use_stream() {
    let (chunks, usage) = split(stream("anthropic/stream_tool_use.sse"));
    let (content, _, finish) = accumulate(&chunks);
    assert_eq!(
        content,
        "Okay, let's check the weather for San Francisco, CA:"
    );
    assert_eq!(finish.as_deref(), Some("tool_calls"));
    // The first tool-call delta carries index, id, type, name and empty arguments.
    let first = chunks
        .iter()
        .find_map(|c| c.choices[0].delta.tool_calls.clone())
        .unwrap();
    assert_eq!(
        first[0],
        json!({"index": 0, "id": "toolu_01T1x1fJ34qAmk2tNTrN7Up6", "type": "function",
            "function": {"name": "get_weather", "arguments": ""}})
    );
    let calls = tool_calls(&chunks);
    assert_eq!(calls.len(), 1);
    let args: Value = serde_json::from_str(&calls[0].2).unwrap();
    assert_eq!(
        args,
        json!({"location": "San Francisco, CA", "unit": "fahrenheit"})
    );
    let u = usage.unwrap();
    assert_eq!((u.prompt_tokens, u.completion_tokens), (472, 89));
}

#[test]
fn documented_thinking_stream() {
    let (chunks, usage) = split(stream("anthropic/stream_thinking.sse"));
    let (content, reasoning, finish) = accumulate(&chunks);
    assert_eq!(content, "27 * 453 = 12,231");
    assert!(reasoning.starts_with("Let me solve this step by step:"));
    assert!(reasoning.ends_with("453 = 400 + 50 + 3"));
    assert_eq!(finish.as_deref(), Some("stop"));
    let signature = chunks
        .iter()
        .flat_map(|c| {
            c.choices[0]
                .delta
                .reasoning_details
                .clone()
                .unwrap_or_default()
        })
        .find(|d| d.get("signature").is_some())
        .unwrap();
    assert_eq!(signature["index"], 0);
    assert!(signature["signature"]
        .as_str()
        .unwrap()
        .starts_with("EqQBCgIY"));
    assert!(usage.is_none(), "the documented example reports no usage");
}

#[test]
fn error_event_and_cut_stream_fail_the_stream() {
    let events = stream("anthropic/stream_error.sse");
    let err = events.last().unwrap().as_ref().unwrap_err();
    assert_eq!(err.kind, FailureKind::Unavailable);
    assert!(err.message.contains("overloaded_error"));
    assert!(
        !err.message.contains("Overloaded"),
        "the provider's free text is not relayed"
    );
    let cut = fixture("anthropic/stream_text.sse").replace(
        "event: message_stop\ndata: {\"type\": \"message_stop\"}\n\n",
        "",
    );
    let events = translate_sse(AnthropicStream::new("claude", None, false), cut.as_bytes());
    assert_eq!(
        events.last().unwrap().as_ref().unwrap_err().kind,
        FailureKind::StreamBroken
    );
    let rate = "event: error\ndata: {\"type\":\"error\",\"error\":{\"type\":\"rate_limit_error\",\"message\":\"x\"}}\n\n";
    let events = translate_sse(AnthropicStream::new("claude", None, false), rate.as_bytes());
    assert_eq!(
        events[0].as_ref().unwrap_err().kind,
        FailureKind::RateLimited
    );
}

#[test]
fn a_tool_loop_without_its_signed_thinking_turns_thinking_off() {
    let turn = |details: Value| {
        prepare(json!({
            "max_tokens": 4000,
            "reasoning": {"effort": "medium"},
            "messages": [
                {"role": "user", "content": "weather?"},
                {"role": "assistant", "content": null, "reasoning_details": details, "tool_calls": [
                    {"id": "toolu_1", "type": "function", "function": {"name": "get_weather", "arguments": "{}"}}]},
                {"role": "tool", "tool_call_id": "toolu_1", "content": "sunny"}
            ]
        }))
        .unwrap()
        .body
    };
    assert!(turn(Value::Null).get("thinking").is_none());
    let signed = turn(
        json!([{"type": "reasoning.text", "text": "t", "signature": "s",
        "format": "anthropic-claude-v1", "index": 0}]),
    );
    assert_eq!(signed["thinking"]["budget_tokens"], 2000);
    assert_eq!(signed["messages"][1]["content"][0]["type"], "thinking");
}
