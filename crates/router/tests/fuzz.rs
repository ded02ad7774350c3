//! Property-based fuzzing: no input may panic the request parser, a wire's translation in
//! either direction, or a stream decoder and translator.
//!
//! Inputs are mutations of the seeds in `tests/fuzz_corpus/` (and the wire fixtures in
//! `tests/fixtures/`): byte flips, insertions, deletions and truncations for the parsers, and
//! JSON values with one node replaced by an arbitrary value for the translators, which only
//! ever see parsed JSON. Each property runs `PROPTEST_CASES` cases (default 200, a bounded
//! pass for the normal test command); run longer with e.g. `PROPTEST_CASES=20000`. A failing
//! case is shrunk and kept in `proptest-regressions/`, which is committed.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::{Arc, OnceLock};

use infron_fuzzkit::{apply, config, edits, mutated_json, pieces};
use infron_router::legacy::CompletionRequest;
use infron_router::providers::anthropic_stream::AnthropicStream;
use infron_router::providers::bedrock_stream::BedrockStream;
use infron_router::providers::event_stream::{self, EventStreamDecoder};
use infron_router::providers::gemini_stream::GeminiStream;
use infron_router::providers::http::{Framing, StreamTranslator};
use infron_router::providers::openai::OpenAiStream;
use infron_router::providers::{anthropic, bedrock, gemini, openai, vertex, Reply};
use infron_router::sse::{SseDecoder, SseEvent};
use infron_router::types::{ChatRequest, ChatResponse};
use infron_router::{Catalog, Endpoint};
use proptest::prelude::*;
use serde_json::{json, Value};

const CATALOG: &str = r#"
[[providers]]
name = "oai"
wire = "openai"
base_url = "https://api.openai.com/v1"
api_key_env = "K"
[[providers]]
name = "claude"
wire = "anthropic"
base_url = "https://api.anthropic.com"
api_key_env = "K"
[[providers]]
name = "google"
wire = "gemini"
base_url = "https://generativelanguage.googleapis.com"
api_key_env = "K"
[[providers]]
name = "aws"
wire = "bedrock"
base_url = "https://bedrock-runtime.us-east-1.amazonaws.com"
region = "us-east-1"
api_key_env = "K"
access_key_id_env = "K"
[[providers]]
name = "vtx"
wire = "vertex"
base_url = "https://us-east5-aiplatform.googleapis.com"
region = "us-east5"
api_key_env = "K"
[[models]]
id = "t/all"
name = "All wires"
context_length = 200000
max_output_tokens = 8000
[[models.endpoints]]
provider = "oai"
upstream_model = "gpt"
pricing = { prompt = "0.000001", completion = "0.000002" }
[[models.endpoints]]
provider = "claude"
upstream_model = "claude-x"
pricing = { prompt = "0.000001", completion = "0.000002" }
[[models.endpoints]]
provider = "google"
upstream_model = "gemini-x"
pricing = { prompt = "0.000001", completion = "0.000002" }
[[models.endpoints]]
provider = "aws"
upstream_model = "anthropic.claude-x-v1:0"
pricing = { prompt = "0.000001", completion = "0.000002" }
[[models.endpoints]]
provider = "vtx"
upstream_model = "claude-x@1"
pricing = { prompt = "0.000001", completion = "0.000002" }
[[models.endpoints]]
provider = "vtx"
upstream_model = "gemini-y"
pricing = { prompt = "0.000001", completion = "0.000002" }
"#;

fn endpoints() -> &'static Vec<Arc<Endpoint>> {
    static E: OnceLock<Vec<Arc<Endpoint>>> = OnceLock::new();
    E.get_or_init(|| {
        let catalog = Catalog::parse(CATALOG, "fuzz.toml", &|_| Some("key".into())).unwrap();
        catalog.model("t/all").unwrap().endpoints.clone()
    })
}

fn endpoint(provider: &str) -> &'static Arc<Endpoint> {
    endpoints()
        .iter()
        .find(|e| e.provider.name == provider)
        .unwrap()
}

// ---- seeds ----

fn read_dir(dir: &str) -> Vec<(String, Vec<u8>)> {
    let root = format!("{}/tests/{dir}", env!("CARGO_MANIFEST_DIR"));
    let mut out: Vec<(String, Vec<u8>)> = std::fs::read_dir(&root)
        .unwrap_or_else(|e| panic!("{root}: {e}"))
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file() && p.extension().is_some_and(|x| x != "md"))
        .map(|p| (p.display().to_string(), std::fs::read(&p).unwrap()))
        .collect();
    out.sort();
    out
}

fn seeds(dirs: &[&str], ext: &str) -> Vec<Vec<u8>> {
    let s: Vec<Vec<u8>> = dirs
        .iter()
        .flat_map(|d| read_dir(d))
        .filter(|(name, _)| name.ends_with(ext))
        .map(|(_, bytes)| bytes)
        .collect();
    assert!(!s.is_empty(), "no seeds in {dirs:?} ending {ext}");
    s
}

fn request_seeds() -> &'static Vec<Vec<u8>> {
    static S: OnceLock<Vec<Vec<u8>>> = OnceLock::new();
    S.get_or_init(|| seeds(&["fuzz_corpus/requests"], ".json"))
}

fn json_seeds(dirs: &'static [&'static str]) -> Vec<Value> {
    seeds(dirs, ".json")
        .into_iter()
        .map(|b| serde_json::from_slice(&b).unwrap())
        .collect()
}

// ---- targets ----

/// Every wire's request translation, and the estimates made from a request.
fn translate_request(r: &ChatRequest) {
    let _ = r.prompt_token_bound();
    let _ = r.prompt_token_estimate();
    let _ = r.max_output();
    let _ = r.image_count();
    for e in endpoints() {
        let _ = infron_router::providers::check_translatable(e, r);
    }
    let _ = openai::request_body(endpoint("oai"), r);
    let _ = anthropic::prepare(endpoint("claude"), r);
    let _ = gemini::prepare(endpoint("google"), r);
    let _ = bedrock::prepare(endpoint("aws"), r);
    let _ = vertex::url(endpoint("vtx"), "p", r.stream);
}

fn simple_request() -> ChatRequest {
    serde_json::from_value(json!({"model": "t/all", "messages": [{"role": "user", "content": "hi"}],
        "tools": [{"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}]}))
    .unwrap()
}

fn drive<T: StreamTranslator<Frame = SseEvent>>(mut t: T, chunks: &[Vec<u8>]) {
    let mut decoder = SseDecoder::new();
    for c in chunks {
        for event in decoder.feed(c) {
            for out in t.event(&event) {
                if let Ok(infron_router::providers::StreamEvent::Chunk(c)) = out {
                    let _ = c.has_content();
                    let _ = c.content_bytes();
                }
            }
            if t.finished() {
                break;
            }
        }
    }
    let _ = t.end();
}

proptest! {
    #![proptest_config(config())]

    /// Request bodies: the chat and legacy parsers, then every wire's translation.
    #[test]
    fn request_parsing_and_translation(seed in 0..64usize, edits in edits()) {
        let seeds = request_seeds();
        let bytes = apply(seeds[seed % seeds.len()].clone(), &edits);
        if let Ok(r) = serde_json::from_slice::<ChatRequest>(&bytes) {
            translate_request(&r);
            let stream = r.stream;
            let mut r = r;
            r.stream = !stream;
            translate_request(&r);
        }
        if let Ok(legacy) = serde_json::from_slice::<CompletionRequest>(&bytes) {
            if let Ok(r) = legacy.into_chat() {
                translate_request(&r);
            }
        }
    }

    /// Structurally valid JSON with odd values in odd places, through every translation.
    #[test]
    fn odd_requests_translate_or_refuse(v in mutated_json(
        request_seeds().iter().map(|b| serde_json::from_slice(b).unwrap()).collect()
    )) {
        if let Ok(r) = serde_json::from_value::<ChatRequest>(v) {
            translate_request(&r);
        }
    }

    /// Provider answers (the response direction) on every wire.
    #[test]
    fn responses_parse_or_refuse(
        anthropic_body in mutated_json(json_seeds(&["fixtures/anthropic"])),
        gemini_body in mutated_json(json_seeds(&["fixtures/gemini"])),
        bedrock_body in mutated_json(json_seeds(&["fuzz_corpus/bedrock"])),
        openai_body in mutated_json(json_seeds(&["fuzz_corpus/openai"])),
    ) {
        let r = simple_request();
        let prepared = anthropic::prepare(endpoint("claude"), &r).unwrap();
        let _ = anthropic::parse_response(&anthropic_body, &prepared);
        let prepared = gemini::prepare(endpoint("google"), &r).unwrap();
        let _ = gemini::parse_response(&gemini_body, &prepared);
        let prepared = bedrock::prepare(endpoint("aws"), &r).unwrap();
        let _ = bedrock::parse_response(&bedrock_body, &prepared);
        let _ = anthropic::parse_usage(&anthropic_body);
        let _ = gemini::parse_usage(&gemini_body);
        let _ = bedrock::parse_usage(&bedrock_body);
        let _ = openai::parse_usage(&openai_body);
        if let Ok(parsed) = serde_json::from_value::<ChatResponse>(openai_body) {
            let _ = infron_router::legacy::completion_from_chat(&parsed);
            let _ = Reply::Complete { response: parsed, usage: None }.into_stream();
        }
    }

    /// SSE bodies, mutated and cut anywhere, through the decoder and each wire's translator.
    #[test]
    fn sse_streams_decode_and_translate(
        seed in 0..64usize,
        edits in edits(),
        cuts in prop::collection::vec(any::<usize>(), 0..8),
    ) {
        let all = sse_seeds();
        let bytes = apply(all[seed % all.len()].clone(), &edits);
        let chunks = pieces(&bytes, &cuts);
        drive(OpenAiStream::new("p"), &chunks);
        drive(AnthropicStream::new("p", None, false), &chunks);
        drive(AnthropicStream::new("p", Some("json_tool".into()), true), &chunks);
        drive(GeminiStream::new("p", false), &chunks);
        drive(GeminiStream::new("p", true), &chunks);
    }

    /// AWS event-stream bodies (Bedrock): framing, CRCs and the Converse stream translator.
    #[test]
    fn event_streams_decode_and_translate(
        payloads in prop::collection::vec(
            (prop_oneof![
                Just("messageStart"), Just("contentBlockStart"), Just("contentBlockDelta"),
                Just("contentBlockStop"), Just("messageStop"), Just("metadata"),
                Just("throttlingException"), Just("other"),
            ], mutated_json(json_seeds(&["fuzz_corpus/bedrock_stream"]))),
            0..8,
        ),
        edits in edits(),
        cuts in prop::collection::vec(any::<usize>(), 0..8),
    ) {
        let mut body = Vec::new();
        for (kind, payload) in &payloads {
            let message_type = if kind.ends_with("Exception") { "exception" } else { "event" };
            let type_header = if message_type == "event" { ":event-type" } else { ":exception-type" };
            body.extend(event_stream::encode(
                &[(":message-type", message_type), (type_header, kind), (":content-type", "application/json")],
                payload.to_string().as_bytes(),
            ));
        }
        let body = apply(body, &edits);
        let mut decoder = EventStreamDecoder::new();
        let mut translator = BedrockStream::new("p", None, false);
        for c in pieces(&body, &cuts) {
            match decoder.feed(&c) {
                Ok(frames) => {
                    for f in frames {
                        let _ = translator.event(&f);
                    }
                }
                Err(_) => break,
            }
        }
        let _ = translator.end();
    }
}

fn sse_seeds() -> &'static Vec<Vec<u8>> {
    static S: OnceLock<Vec<Vec<u8>>> = OnceLock::new();
    S.get_or_init(|| {
        seeds(
            &[
                "fixtures/anthropic",
                "fixtures/gemini",
                "fuzz_corpus/openai",
                "fuzz_corpus/sse",
            ],
            ".sse",
        )
    })
}
