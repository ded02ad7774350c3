//! Property-based fuzzing of what the API crate parses and produces itself: every inbound
//! request shape through the same parse-and-validate path the handlers use (byte-level edits of
//! the seed bodies, and seed documents with nodes replaced by arbitrary JSON), and the
//! Anthropic and Responses renderings of answers and streams. No input may panic; a refused
//! request is a 400 naming what is wrong, and every stream event is one SSE event whose data is
//! JSON. Seeds: `crates/api/fuzz_corpus/` and the router's request corpus. `PROPTEST_CASES`
//! sets the number of cases (200 by default).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::OnceLock;

use actix_web::ResponseError;
use infron_billing::Usage;
use infron_fuzzkit::{config, mutated_bytes, mutated_json};
use infron_router::providers::embeddings::EmbeddingRequest;
use infron_router::types::{ChatChunk, ChatResponse};
use proptest::prelude::*;
use serde_json::{json, Value};

use super::body::parse_json;
use super::chat::{parse_request, validate, Shape};
use super::messages_stream::AnthropicStream;
use super::responses::{response_json, Head};
use super::responses_stream::ResponsesStream;
use crate::error::ApiError;

fn corpus(dirs: &[&str]) -> Vec<Vec<u8>> {
    let root = env!("CARGO_MANIFEST_DIR");
    let mut out = Vec::new();
    for dir in dirs {
        let dir = format!("{root}/{dir}");
        let mut files: Vec<_> = std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("{dir}: {e}"))
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|x| x == "json"))
            .collect();
        files.sort();
        out.extend(files.into_iter().map(|p| std::fs::read(p).unwrap()));
    }
    assert!(!out.is_empty(), "no seeds in {dirs:?}");
    out
}

fn json_corpus(dirs: &[&str]) -> Vec<Value> {
    corpus(dirs)
        .iter()
        .map(|b| serde_json::from_slice(b).unwrap())
        .collect()
}

const CHAT: &[&str] = &["../router/tests/fuzz_corpus/requests"];
const MESSAGES: &[&str] = &["fuzz_corpus/messages"];
const RESPONSES: &[&str] = &["fuzz_corpus/responses"];
const EMBEDDINGS: &[&str] = &["fuzz_corpus/embeddings"];

fn shape_seeds() -> &'static Vec<(Shape, Vec<u8>)> {
    static S: OnceLock<Vec<(Shape, Vec<u8>)>> = OnceLock::new();
    S.get_or_init(|| {
        let mut all = Vec::new();
        for (shape, dirs) in [
            (Shape::Chat, CHAT),
            (Shape::Completion, CHAT),
            (Shape::Messages, MESSAGES),
            (Shape::Responses, RESPONSES),
        ] {
            all.extend(corpus(dirs).into_iter().map(|b| (shape, b)));
        }
        all
    })
}

/// A refusal is a 400 in the OpenAI shape with a message (and never an internal error).
fn refusal_is_clear(e: &ApiError) {
    assert_eq!(e.status_code().as_u16(), 400, "{e}");
    assert!(matches!(e, ApiError::InvalidRequest { .. }), "{e:?}");
    assert!(!e.to_string().is_empty());
}

/// Parses and validates `raw` exactly as the handler for `shape` does.
fn parse_as(shape: Shape, raw: &[u8]) {
    match parse_request(raw, shape).and_then(|(r, _)| validate(&r)) {
        Ok(()) => {}
        Err(e) => refusal_is_clear(&e),
    }
}

/// Every event of a rendered stream is `event:`/`data:` lines whose data is JSON.
fn events_are_json(bytes: &[u8]) {
    let text = std::str::from_utf8(bytes).expect("stream output is UTF-8");
    for block in text.split("\n\n").filter(|b| !b.is_empty()) {
        for line in block.lines() {
            if let Some(data) = line.strip_prefix("data: ") {
                serde_json::from_str::<Value>(data)
                    .unwrap_or_else(|e| panic!("event data is not JSON ({e}): {data}"));
            } else {
                assert!(line.starts_with("event: "), "unexpected line {line:?}");
            }
        }
    }
}

fn chunks(v: &Value) -> Vec<ChatChunk> {
    v.as_array()
        .into_iter()
        .flatten()
        .filter_map(|c| serde_json::from_value(c.clone()).ok())
        .collect()
}

fn usage() -> Usage {
    Usage {
        prompt_tokens: 3,
        completion_tokens: 4,
        ..Usage::default()
    }
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn request_bodies_parse_or_are_refused_clearly(
        i in 0..64usize,
        edits in infron_fuzzkit::edits(),
    ) {
        let seeds = shape_seeds();
        let (shape, seed) = &seeds[i % seeds.len()];
        parse_as(*shape, &infron_fuzzkit::apply(seed.clone(), &edits));
    }

    #[test]
    fn odd_documents_parse_or_are_refused_clearly(
        chat in mutated_json(json_corpus(CHAT)),
        messages in mutated_json(json_corpus(MESSAGES)),
        responses in mutated_json(json_corpus(RESPONSES)),
    ) {
        let chat = chat.to_string();
        parse_as(Shape::Chat, chat.as_bytes());
        parse_as(Shape::Completion, chat.as_bytes());
        parse_as(Shape::Messages, messages.to_string().as_bytes());
        parse_as(Shape::Responses, responses.to_string().as_bytes());
    }

    #[test]
    fn embedding_requests_parse_or_are_refused_clearly(
        raw in mutated_bytes(corpus(EMBEDDINGS)),
        doc in mutated_json(json_corpus(EMBEDDINGS)),
    ) {
        for bytes in [raw, doc.to_string().into_bytes()] {
            match parse_json::<EmbeddingRequest>(&bytes) {
                Ok(r) => { let _ = r.validate(); }
                Err(e) => refusal_is_clear(&e),
            }
        }
    }

    #[test]
    fn streams_render_as_json_events(
        stream in mutated_json(json_corpus(&["fuzz_corpus/chunks"])),
        fail in any::<bool>(),
        code in prop::sample::select(vec![400u16, 408, 429, 500, 502, 503]),
    ) {
        let chunks = chunks(&stream);
        let mut anthropic = AnthropicStream::new("msg_1".into(), "m".into(), 3);
        let mut responses = ResponsesStream::new(Head {
            id: "gen-1".into(), created_at: 1, model: "m".into(), echo: json!({}),
        });
        for c in &chunks {
            if let Some(b) = anthropic.chunk(c) { events_are_json(&b); }
            if let Some(b) = responses.chunk(c) { events_are_json(&b); }
        }
        if fail {
            events_are_json(&anthropic.error(code, "upstream failed"));
            events_are_json(&responses.error(code, "upstream failed", &usage()));
        } else {
            events_are_json(&anthropic.finish(&usage()));
            events_are_json(&responses.finish(&usage()));
        }
    }

    #[test]
    fn answers_render_in_every_shape(answer in mutated_json(json_corpus(&["fuzz_corpus/answers"]))) {
        if let Ok(r) = serde_json::from_value::<ChatResponse>(answer) {
            let head = Head { id: "gen-1".into(), created_at: 1, model: "m".into(), echo: json!({}) };
            let v = response_json(&head, &r, &usage());
            prop_assert_eq!(&v["object"], "response");
            let m = super::messages::message_json("msg_1", "m", &r, &usage());
            prop_assert_eq!(&m["type"], "message");
        }
    }
}
