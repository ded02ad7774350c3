//! Small helpers: word counting, text splitting, ids, hashing, embeddings, base64.

use std::time::{SystemTime, UNIX_EPOCH};

/// Number of whitespace-separated words.
pub fn word_count(text: &str) -> u64 {
    text.split_whitespace().count() as u64
}

/// Splits `text` into pieces whose concatenation is `text`: one piece per word
/// (each word carries its leading whitespace) when `chunks` is `None`,
/// otherwise `chunks` pieces (grouping words, or splitting characters when
/// there are fewer words than pieces).
pub fn split_pieces(text: &str, chunks: Option<usize>) -> Vec<String> {
    if text.is_empty() {
        return Vec::new();
    }
    let words = split_words(text);
    let Some(n) = chunks else {
        return words;
    };
    let n = n.max(1);
    if words.len() >= n {
        return group(&words, n).into_iter().map(|g| g.concat()).collect();
    }
    split_chars(text, n)
}

/// Splits a tool-call argument string into at least two pieces (when it has at
/// least two characters), about 16 characters each.
pub fn split_args(json: &str) -> Vec<String> {
    let len = json.chars().count();
    if len < 2 {
        return vec![json.to_string()];
    }
    let n = len.div_ceil(16).max(2);
    split_chars(json, n)
}

fn split_words(text: &str) -> Vec<String> {
    let mut pieces: Vec<String> = Vec::new();
    let mut current = String::new();
    let mut in_word = false;
    for c in text.chars() {
        if c.is_whitespace() {
            if in_word {
                pieces.push(std::mem::take(&mut current));
                in_word = false;
            }
            current.push(c);
        } else {
            in_word = true;
            current.push(c);
        }
    }
    if !current.is_empty() {
        match (in_word, pieces.last_mut()) {
            // trailing whitespace sticks to the last word
            (false, Some(last)) => last.push_str(&current),
            _ => pieces.push(current),
        }
    }
    pieces
}

fn group<T: Clone>(items: &[T], n: usize) -> Vec<Vec<T>> {
    let base = items.len() / n;
    let extra = items.len() % n;
    let mut out = Vec::with_capacity(n);
    let mut idx = 0;
    for i in 0..n {
        let size = base + usize::from(i < extra);
        out.push(items[idx..idx + size].to_vec());
        idx += size;
    }
    out
}

fn split_chars(text: &str, n: usize) -> Vec<String> {
    let chars: Vec<char> = text.chars().collect();
    let n = n.min(chars.len()).max(1);
    group(&chars, n)
        .into_iter()
        .map(|g| g.into_iter().collect())
        .collect()
}

/// Seconds since the Unix epoch.
pub fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// A random id: `prefix` + 24 alphanumeric characters.
pub fn random_id(prefix: &str) -> String {
    let hex = uuid::Uuid::new_v4().simple().to_string();
    format!("{prefix}{}", &hex[..24])
}

/// FNV-1a 64-bit hash.
pub fn fnv1a(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

fn splitmix64(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    let mut z = x;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// Deterministic pseudo-random unit vector (L2 norm 1) derived from `text`.
pub fn embedding(text: &str, dims: usize) -> Vec<f32> {
    let seed = fnv1a(text.as_bytes());
    let raw: Vec<f64> = (0..dims as u64)
        .map(|i| {
            let bits = splitmix64(seed ^ splitmix64(i)) >> 11;
            (bits as f64 / (1u64 << 53) as f64) * 2.0 - 1.0
        })
        .collect();
    let norm = raw.iter().map(|x| x * x).sum::<f64>().sqrt();
    raw.into_iter()
        .map(|x| if norm > 0.0 { (x / norm) as f32 } else { 0.0 })
        .collect()
}

/// Standard base64 (with padding).
pub fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        let idx = |shift: u32| char::from(ALPHABET[((n >> shift) & 63) as usize]);
        out.push(idx(18));
        out.push(idx(12));
        out.push(if chunk.len() > 1 { idx(6) } else { '=' });
        out.push(if chunk.len() > 2 { idx(0) } else { '=' });
    }
    out
}

/// Fake thinking signature: base64 of a hash of the thinking text.
pub fn signature(thinking: &str) -> String {
    let mut bytes = Vec::with_capacity(48);
    let mut h = fnv1a(thinking.as_bytes());
    for _ in 0..6 {
        h = splitmix64(h);
        bytes.extend_from_slice(&h.to_le_bytes());
    }
    base64(&bytes)
}

/// `part` of `total` after `done` of `count` steps (integer, exact at the end).
pub fn running(total: u64, done: usize, count: usize) -> u64 {
    if count == 0 || done >= count {
        return total;
    }
    total * done as u64 / count as u64
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn words_split_and_rejoin() {
        let t = "Hello! This is  the mock provider. ";
        let p = split_pieces(t, None);
        assert_eq!(p.concat(), t);
        assert_eq!(p.len(), 6);
        assert_eq!(p[0], "Hello!");
        assert_eq!(p[1], " This");
        let p = split_pieces(t, Some(2));
        assert_eq!(p.len(), 2);
        assert_eq!(p.concat(), t);
        let p = split_pieces("abc", Some(5));
        assert_eq!(p, vec!["a", "b", "c"]);
        assert!(split_pieces("", None).is_empty());
    }

    #[test]
    fn args_split_in_two_or_more() {
        assert_eq!(split_args("{}"), vec!["{", "}"]);
        let s = r#"{"location":"Paris","unit":"celsius"}"#;
        let p = split_args(s);
        assert!(p.len() >= 2);
        assert_eq!(p.concat(), s);
    }

    #[test]
    fn base64_known_values() {
        assert_eq!(base64(b""), "");
        assert_eq!(base64(b"f"), "Zg==");
        assert_eq!(base64(b"fo"), "Zm8=");
        assert_eq!(base64(b"foo"), "Zm9v");
        assert_eq!(base64(b"foobar"), "Zm9vYmFy");
    }

    #[test]
    fn embeddings_are_deterministic_unit_vectors() {
        let a = embedding("hello", 8);
        assert_eq!(a, embedding("hello", 8));
        assert_ne!(a, embedding("hello!", 8));
        let norm: f32 = a.iter().map(|x| x * x).sum();
        assert!((norm - 1.0).abs() < 1e-4);
    }
}
