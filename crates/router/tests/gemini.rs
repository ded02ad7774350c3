//! The Gemini adapter against the documented generateContent examples.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use infron_router::providers::gemini;
use infron_router::providers::gemini_stream::GeminiStream;
use infron_router::providers::http::translate_sse;
use infron_router::FailureKind;
use serde_json::{json, Value};

fn prepare(v: Value) -> Result<gemini::Prepared, String> {
    gemini::prepare(&endpoint("t/gemini"), &request(v))
}

#[test]
fn request_translates_roles_media_tools_and_generation_config() {
    let p = prepare(json!({
        "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": [
                {"type": "text", "text": "What is this?"},
                {"type": "image_url", "image_url": {"url": "data:image/jpeg;base64,/9j/4AAQ"}},
                {"type": "image_url", "image_url": {"url": "https://example.com/cat.png"}},
                {"type": "file", "file": {"file_data": "data:application/pdf;base64,JVBERi0x"}},
                {"type": "input_audio", "input_audio": {"data": "UklGRg==", "format": "wav"}}
            ]},
            {"role": "assistant", "content": "Let me look.", "tool_calls": [
                {"id": "call_a", "type": "function", "function": {"name": "lookup", "arguments": "{\"q\":\"cat\"}"}}
            ]},
            {"role": "tool", "tool_call_id": "call_a", "content": "{\"found\": true}"},
            {"role": "tool", "tool_call_id": "call_a", "content": "plain text"}
        ],
        "tools": [{"type": "function", "function": {"name": "lookup", "description": "Search",
            "parameters": {"type": "object", "additionalProperties": false, "$schema": "x",
                "properties": {"q": {"type": "string"}}, "required": ["q"]}}},
            {"type": "function", "function": {"name": "noargs", "parameters": {"type": "object", "properties": {}}}}],
        "tool_choice": {"type": "function", "function": {"name": "lookup"}},
        "temperature": 0.3, "top_p": 0.8, "top_k": 40, "stop": ["END"], "seed": 9,
        "presence_penalty": 0.5, "frequency_penalty": 0.25, "max_tokens": 500, "user": "u1",
        "response_format": {"type": "json_schema", "json_schema": {"name": "x", "strict": true,
            "schema": {"type": "object", "additionalProperties": false, "properties": {"a": {"type": "integer"}}}}},
        "reasoning": {"max_tokens": 300}
    }))
    .unwrap();
    assert_eq!(
        p.body,
        json!({
            "systemInstruction": {"parts": [{"text": "Be brief."}]},
            "contents": [
                {"role": "user", "parts": [
                    {"text": "What is this?"},
                    {"inlineData": {"mimeType": "image/jpeg", "data": "/9j/4AAQ"}},
                    {"fileData": {"mimeType": "image/png", "fileUri": "https://example.com/cat.png"}},
                    {"inlineData": {"mimeType": "application/pdf", "data": "JVBERi0x"}},
                    {"inlineData": {"mimeType": "audio/wav", "data": "UklGRg=="}}
                ]},
                {"role": "model", "parts": [
                    {"text": "Let me look."},
                    {"functionCall": {"name": "lookup", "args": {"q": "cat"}}}
                ]},
                {"role": "user", "parts": [
                    {"functionResponse": {"name": "lookup", "response": {"found": true}}},
                    {"functionResponse": {"name": "lookup", "response": {"result": "plain text"}}}
                ]}
            ],
            "tools": [{"functionDeclarations": [
                {"name": "lookup", "description": "Search", "parameters": {"type": "object",
                    "properties": {"q": {"type": "string"}}, "required": ["q"]}},
                {"name": "noargs"}
            ]}],
            "toolConfig": {"functionCallingConfig": {"mode": "ANY", "allowedFunctionNames": ["lookup"]}},
            "generationConfig": {
                "temperature": 0.3, "topP": 0.8, "topK": 40, "maxOutputTokens": 500,
                "stopSequences": ["END"], "seed": 9, "presencePenalty": 0.5, "frequencyPenalty": 0.25,
                "responseMimeType": "application/json",
                "responseSchema": {"type": "object", "properties": {"a": {"type": "integer"}}},
                "thinkingConfig": {"thinkingBudget": 300, "includeThoughts": true}
            }
        })
    );
}

#[test]
fn tool_choice_effort_and_json_object() {
    let base = json!({"messages": [{"role": "user", "content": "hi"}],
        "tools": [{"type": "function", "function": {"name": "f"}}]});
    for (choice, mode) in [("auto", "AUTO"), ("none", "NONE"), ("required", "ANY")] {
        let mut v = base.clone();
        v["tool_choice"] = json!(choice);
        assert_eq!(
            prepare(v).unwrap().body["toolConfig"]["functionCallingConfig"]["mode"],
            mode
        );
    }
    let mut v = base.clone();
    v["reasoning"] = json!({"effort": "medium", "exclude": true});
    v["response_format"] = json!({"type": "json_object"});
    let body = prepare(v).unwrap().body;
    // medium = 0.5 x the endpoint's 8000 output tokens
    assert_eq!(
        body["generationConfig"]["thinkingConfig"],
        json!({"thinkingBudget": 4000, "includeThoughts": false})
    );
    assert_eq!(
        body["generationConfig"]["responseMimeType"],
        "application/json"
    );
    assert_eq!(body["generationConfig"]["maxOutputTokens"], 8000);
    let mut v = base;
    v["reasoning"] = json!({"enabled": false});
    assert_eq!(
        prepare(v).unwrap().body["generationConfig"]["thinkingConfig"],
        json!({"thinkingBudget": 0})
    );
}

#[test]
fn tool_results_need_a_known_call_and_unsupported_things_are_named() {
    let err = prepare(json!({"messages": [{"role": "user", "content": "x"},
        {"role": "tool", "tool_call_id": "nope", "content": "1"}]}))
    .unwrap_err();
    assert!(err.starts_with("messages[1].tool_call_id"), "{err}");
    let err = prepare(json!({"messages": [{"role": "user", "content": "x"}], "top_logprobs": 3}))
        .unwrap_err();
    assert!(err.starts_with("logprobs"), "{err}");
    let err = prepare(json!({"messages": [{"role": "user", "content": [
        {"type": "file", "file": {"file_id": "file-abc"}}]}]}))
    .unwrap_err();
    assert!(err.starts_with("messages[0].content[0].file"), "{err}");
}

#[test]
fn thought_signatures_round_trip_on_function_calls() {
    let p = prepare(json!({"messages": [{"role": "user", "content": "x"}]})).unwrap();
    let fixture = fixture("gemini/stream_function_call.sse");
    let (chunks, usage) = split(translate_sse(
        GeminiStream::new("google", false),
        fixture.as_bytes(),
    ));
    let calls = tool_calls(&chunks);
    assert_eq!(calls.len(), 1);
    assert!(
        calls[0].0.starts_with("call_") && calls[0].0.len() == 29,
        "{}",
        calls[0].0
    );
    assert_eq!(calls[0].1, "get_weather");
    assert_eq!(
        serde_json::from_str::<Value>(&calls[0].2).unwrap(),
        json!({"location": "Boston, MA"})
    );
    assert_eq!(accumulate(&chunks).2.as_deref(), Some("tool_calls"));
    let u = usage.unwrap();
    // completion = candidates 15 + thoughts 80
    assert_eq!(
        (u.prompt_tokens, u.completion_tokens, u.reasoning_tokens),
        (60, 95, 80)
    );
    let details: Vec<Value> = chunks
        .iter()
        .flat_map(|c| {
            c.choices[0]
                .delta
                .reasoning_details
                .clone()
                .unwrap_or_default()
        })
        .collect();
    assert_eq!(details[0]["id"], calls[0].0.as_str());
    let next = prepare(json!({"messages": [
        {"role": "user", "content": "x"},
        {"role": "assistant", "content": null, "reasoning_details": details,
         "tool_calls": [{"id": calls[0].0, "type": "function", "function": {"name": "get_weather", "arguments": calls[0].2}}]},
        {"role": "tool", "tool_call_id": calls[0].0, "content": "sunny"}
    ]}))
    .unwrap();
    assert_eq!(
        next.body["contents"][1]["parts"][0]["thoughtSignature"],
        "CiQB0e2Kb3dRh+BYdbZvmulSN2Pwwc75DfSs"
    );
    assert_eq!(
        next.body["contents"][2]["parts"][0]["functionResponse"]["name"],
        "get_weather"
    );
    let _ = p;
}

#[test]
fn documented_text_response() {
    let p = prepare(json!({"messages": [{"role": "user", "content": "x"}]})).unwrap();
    let (resp, usage) =
        gemini::parse_response(&fixture_json("gemini/generate_text.json"), &p).unwrap();
    assert_eq!(
        resp.choices[0].message.content.as_deref(),
        Some("AI learns patterns from data to make predictions.")
    );
    assert_eq!(resp.choices[0].finish_reason.as_deref(), Some("stop"));
    assert_eq!(resp.model, "gemini-2.5-flash");
    let u = usage.unwrap();
    assert_eq!((u.prompt_tokens, u.completion_tokens), (8, 9));
}

#[test]
fn documented_function_call_response() {
    let p = prepare(json!({"messages": [{"role": "user", "content": "x"}]})).unwrap();
    let (resp, _) =
        gemini::parse_response(&fixture_json("gemini/generate_function_call.json"), &p).unwrap();
    let m = &resp.choices[0].message;
    assert!(m.content.is_none());
    let call = &m.tool_calls.as_ref().unwrap()[0];
    assert!(call["id"].as_str().unwrap().starts_with("call_"));
    assert_eq!(call["type"], "function");
    assert_eq!(call["function"]["name"], "set_light_values");
    assert_eq!(
        serde_json::from_str::<Value>(call["function"]["arguments"].as_str().unwrap()).unwrap(),
        json!({"brightness": 25, "color_temp": "warm"})
    );
    assert_eq!(resp.choices[0].finish_reason.as_deref(), Some("tool_calls"));
}

#[test]
fn documented_thinking_response_and_usage_with_cache() {
    let p = prepare(
        json!({"messages": [{"role": "user", "content": "x"}], "reasoning": {"effort": "low"}}),
    )
    .unwrap();
    let (resp, usage) =
        gemini::parse_response(&fixture_json("gemini/generate_thinking.json"), &p).unwrap();
    let m = &resp.choices[0].message;
    assert_eq!(m.content.as_deref(), Some("The total is 42."));
    assert!(m
        .reasoning
        .as_deref()
        .unwrap()
        .starts_with("**Calculating the total**"));
    let u = usage.unwrap();
    // promptTokenCount already includes the 1000 cached; completion = 40 + 250 thoughts
    assert_eq!(
        (
            u.prompt_tokens,
            u.completion_tokens,
            u.cached_tokens,
            u.cache_write_tokens,
            u.reasoning_tokens
        ),
        (1200, 290, 1000, 0, 250)
    );
}

#[test]
fn documented_prompt_block_is_content_filter() {
    let p = prepare(json!({"messages": [{"role": "user", "content": "x"}]})).unwrap();
    let (resp, usage) =
        gemini::parse_response(&fixture_json("gemini/generate_blocked.json"), &p).unwrap();
    assert_eq!(
        resp.choices[0].finish_reason.as_deref(),
        Some("content_filter")
    );
    assert_eq!(usage.unwrap().prompt_tokens, 8);
    for (reason, finish) in [
        ("SAFETY", "content_filter"),
        ("RECITATION", "content_filter"),
        ("PROHIBITED_CONTENT", "content_filter"),
        ("SPII", "content_filter"),
        ("BLOCKLIST", "content_filter"),
        ("MAX_TOKENS", "length"),
        ("STOP", "stop"),
        ("MALFORMED_FUNCTION_CALL", "error"),
    ] {
        assert_eq!(gemini::finish_reason(reason, false), finish, "{reason}");
    }
}

#[test]
fn documented_text_stream() {
    let fixture = fixture("gemini/stream_text.sse");
    let (chunks, usage) = split(translate_sse(
        GeminiStream::new("google", false),
        fixture.as_bytes(),
    ));
    assert_eq!(
        chunks[0].choices[0].delta.role.as_deref(),
        Some("assistant")
    );
    let (content, _, finish) = accumulate(&chunks);
    assert_eq!(content, "Four.");
    assert_eq!(finish.as_deref(), Some("stop"));
    let u = usage.unwrap();
    assert_eq!((u.prompt_tokens, u.completion_tokens), (51, 2));
    assert!(
        chunks
            .iter()
            .all(|c| c.choices[0].delta.content.as_deref() != Some("")
                || c.choices[0].delta.role.is_some()),
        "empty text parts are not chunks"
    );
}

#[test]
fn stream_errors_and_cuts_fail_the_stream() {
    let cut = fixture("gemini/stream_text.sse");
    let cut = &cut[..cut.rfind("data:").unwrap()];
    let events = translate_sse(GeminiStream::new("google", false), cut.as_bytes());
    assert_eq!(
        events.last().unwrap().as_ref().unwrap_err().kind,
        FailureKind::StreamBroken
    );
    let overloaded = "data: {\"error\": {\"code\": 503, \"message\": \"The model is overloaded.\", \"status\": \"UNAVAILABLE\"}}\r\n\r\n";
    let events = translate_sse(GeminiStream::new("google", false), overloaded.as_bytes());
    assert_eq!(
        events[0].as_ref().unwrap_err().kind,
        FailureKind::Unavailable
    );
    let quota = "data: {\"error\": {\"code\": 429, \"message\": \"quota\", \"status\": \"RESOURCE_EXHAUSTED\"}}\r\n\r\n";
    let events = translate_sse(GeminiStream::new("google", false), quota.as_bytes());
    assert_eq!(
        events[0].as_ref().unwrap_err().kind,
        FailureKind::RateLimited
    );
}

#[test]
fn thoughts_stream_as_reasoning_unless_excluded() {
    let sse = "data: {\"candidates\":[{\"content\":{\"parts\":[{\"text\":\"hmm\",\"thought\":true}],\"role\":\"model\"},\"index\":0}]}\r\n\r\n\
data: {\"candidates\":[{\"content\":{\"parts\":[{\"text\":\"Hi\"}],\"role\":\"model\"},\"finishReason\":\"STOP\",\"index\":0}],\"usageMetadata\":{\"promptTokenCount\":4,\"candidatesTokenCount\":1,\"thoughtsTokenCount\":2,\"totalTokenCount\":7}}\r\n\r\n";
    let (chunks, usage) = split(translate_sse(
        GeminiStream::new("google", false),
        sse.as_bytes(),
    ));
    assert_eq!(accumulate(&chunks).1, "hmm");
    assert_eq!(usage.unwrap().completion_tokens, 3);
    let (chunks, _) = split(translate_sse(
        GeminiStream::new("google", true),
        sse.as_bytes(),
    ));
    let (content, reasoning, _) = accumulate(&chunks);
    assert_eq!((content.as_str(), reasoning.as_str()), ("Hi", ""));
}
