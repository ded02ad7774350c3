//! Mutation strategies for the property-based fuzz tests of every crate: byte-level edits of
//! seed inputs (for parsers that see bytes) and node replacement in seed JSON documents (for
//! translators that see parsed JSON). Seeds live beside each crate's tests; this crate only
//! knows how to bend them.
//!
//! Each property runs `PROPTEST_CASES` cases ([`config`]; 200 by default, a bounded pass for
//! the normal test command); run longer with e.g. `PROPTEST_CASES=20000`.

use proptest::prelude::*;
use serde_json::{json, Value};

/// The proptest configuration every fuzz property uses.
pub fn config() -> ProptestConfig {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|c| c.parse().ok())
        .unwrap_or(200);
    ProptestConfig {
        cases,
        max_shrink_iters: 2000,
        ..ProptestConfig::default()
    }
}

// ---- bytes ----

/// One edit of a byte string.
#[derive(Debug, Clone)]
pub enum Edit {
    Flip(usize, u8),
    Insert(usize, Vec<u8>),
    Delete(usize, usize),
    Truncate(usize),
    Duplicate(usize, usize),
}

/// Up to five edits, inserting the bytes parsers trip on: quotes and brackets, escapes of
/// invalid code points, numbers out of range, line breaks, SSE field names, invalid UTF-8.
pub fn edits() -> impl Strategy<Value = Vec<Edit>> {
    let interesting = prop_oneof![
        any::<u8>().prop_map(|b| vec![b]),
        Just(b"\"".to_vec()),
        Just(b"}".to_vec()),
        Just(b"]".to_vec()),
        Just(b",".to_vec()),
        Just(b"null".to_vec()),
        Just(b"\\u0000".to_vec()),
        Just(b"\\ud800".to_vec()),
        Just(b"1e999".to_vec()),
        Just(b"-1".to_vec()),
        Just(b"18446744073709551616".to_vec()),
        Just(b"\n\n".to_vec()),
        Just(b"\r".to_vec()),
        Just(b"data: ".to_vec()),
        Just("\u{00e9}\u{1F600}".as_bytes().to_vec()),
        Just(vec![0xff, 0xfe]),
    ];
    let edit = prop_oneof![
        (any::<usize>(), any::<u8>()).prop_map(|(p, b)| Edit::Flip(p, b)),
        (any::<usize>(), interesting).prop_map(|(p, b)| Edit::Insert(p, b)),
        (any::<usize>(), 1usize..16).prop_map(|(p, n)| Edit::Delete(p, n)),
        any::<usize>().prop_map(Edit::Truncate),
        (any::<usize>(), 1usize..64).prop_map(|(p, n)| Edit::Duplicate(p, n)),
    ];
    prop::collection::vec(edit, 0..6)
}

/// `bytes` with `edits` applied in order (positions wrap around the current length).
pub fn apply(mut bytes: Vec<u8>, edits: &[Edit]) -> Vec<u8> {
    for e in edits {
        let len = bytes.len();
        let at = |p: usize| if len == 0 { 0 } else { p % (len + 1) };
        match e {
            Edit::Flip(p, b) if len > 0 => bytes[p % len] ^= b,
            Edit::Flip(..) => {}
            Edit::Insert(p, b) => {
                let i = at(*p);
                bytes.splice(i..i, b.iter().copied());
            }
            Edit::Delete(p, n) => {
                let i = at(*p);
                let end = (i + n).min(len);
                bytes.drain(i..end);
            }
            Edit::Truncate(p) => bytes.truncate(at(*p)),
            Edit::Duplicate(p, n) => {
                let i = at(*p);
                let end = (i + n).min(len);
                let copy = bytes[i..end].to_vec();
                bytes.splice(end..end, copy);
            }
        }
    }
    bytes
}

/// One of `seeds`, edited.
pub fn mutated_bytes(seeds: Vec<Vec<u8>>) -> impl Strategy<Value = Vec<u8>> {
    assert!(!seeds.is_empty(), "no seeds");
    let n = seeds.len();
    (0..n, edits()).prop_map(move |(i, e)| apply(seeds[i].clone(), &e))
}

/// Cuts `bytes` into pieces at the given points, as a network would.
pub fn pieces(bytes: &[u8], cuts: &[usize]) -> Vec<Vec<u8>> {
    let mut points: Vec<usize> = cuts
        .iter()
        .map(|c| if bytes.is_empty() { 0 } else { c % bytes.len() })
        .collect();
    points.sort_unstable();
    points.dedup();
    let mut out = Vec::new();
    let mut start = 0;
    for p in points {
        out.push(bytes[start..p].to_vec());
        start = p;
    }
    out.push(bytes[start..].to_vec());
    out
}

// ---- JSON ----

/// Strings every wire gives meaning to, mixed into generated JSON.
const WORDS: &[&str] = &[
    "text",
    "image_url",
    "image",
    "document",
    "function",
    "tool_use",
    "tool_result",
    "thinking",
    "user",
    "assistant",
    "system",
    "tool",
    "input_text",
    "output_text",
    "function_call",
    "function_call_output",
    "reasoning",
    "json_schema",
    "base64",
    "url",
    "data:image/png;base64,AAAA",
    "data:",
    "https://x/y.png",
    "{}",
    "{\"a\":",
    "[{\"type\":\"reasoning.text\"}]",
    "",
];

/// Object keys the wires read.
const KEYS: &[&str] = &[
    "type",
    "role",
    "text",
    "content",
    "arguments",
    "input",
    "name",
    "id",
    "call_id",
    "tool_use_id",
    "index",
    "source",
    "media_type",
    "data",
];

/// Arbitrary JSON, with the kinds of values translators trip on: huge and negative numbers,
/// the type names and keys the wires read, truncated JSON in strings.
pub fn arb_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        any::<u64>().prop_map(|n| json!(n)),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(|f| json!(f)),
        ".{0,12}".prop_map(Value::String),
        prop::sample::select(WORDS).prop_map(|s| Value::String(s.to_string())),
    ];
    leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::vec(
                (
                    prop_oneof![
                        prop::sample::select(KEYS).prop_map(str::to_string),
                        "[a-z_]{1,8}",
                    ],
                    inner
                ),
                0..4
            )
            .prop_map(|kv| Value::Object(kv.into_iter().collect())),
        ]
    })
}

/// Replaces the `pick`-th node (depth first, wrapping around) of `v` with `with`.
pub fn replace_node(v: &mut Value, pick: usize, with: Value) {
    fn count(v: &Value) -> usize {
        1 + match v {
            Value::Array(a) => a.iter().map(count).sum(),
            Value::Object(o) => o.values().map(count).sum(),
            _ => 0,
        }
    }
    fn walk(v: &mut Value, n: &mut usize, with: &mut Option<Value>) {
        if *n == 0 {
            if let Some(w) = with.take() {
                *v = w;
            }
            return;
        }
        *n -= 1;
        match v {
            Value::Array(a) => a.iter_mut().for_each(|c| walk(c, n, with)),
            Value::Object(o) => o.values_mut().for_each(|c| walk(c, n, with)),
            _ => {}
        }
    }
    let mut n = pick % count(v);
    walk(v, &mut n, &mut Some(with));
}

/// One of `seeds` with up to three of its nodes replaced by arbitrary JSON.
pub fn mutated_json(seeds: Vec<Value>) -> impl Strategy<Value = Value> {
    assert!(!seeds.is_empty(), "no seeds");
    let n = seeds.len();
    (
        0..n,
        prop::collection::vec((any::<usize>(), arb_json()), 0..4),
    )
        .prop_map(move |(i, edits)| {
            let mut v = seeds[i].clone();
            for (pick, with) in edits {
                replace_node(&mut v, pick, with);
            }
            v
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn edits_apply_where_they_say() {
        assert_eq!(apply(b"abc".to_vec(), &[Edit::Truncate(1)]), b"a");
        assert_eq!(apply(b"abc".to_vec(), &[Edit::Delete(1, 1)]), b"ac");
        assert_eq!(
            apply(b"abc".to_vec(), &[Edit::Insert(3, b"d".to_vec())]),
            b"abcd"
        );
        assert_eq!(apply(b"ab".to_vec(), &[Edit::Duplicate(0, 1)]), b"aab");
        assert_eq!(apply(Vec::new(), &[Edit::Flip(3, 1)]), b"");
        assert_eq!(
            pieces(b"abcd", &[2, 1]),
            vec![b"a".to_vec(), b"b".to_vec(), b"cd".to_vec()]
        );
    }

    #[test]
    fn replacing_a_node_counts_depth_first() {
        let mut v = json!({"a": [1, 2]});
        replace_node(&mut v, 3, json!("x"));
        assert_eq!(v, json!({"a": [1, "x"]}));
        let mut v = json!([1]);
        replace_node(&mut v, 0, json!(null));
        assert_eq!(v, json!(null));
    }
}
