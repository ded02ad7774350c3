//! The AWS event-stream framing (`application/vnd.amazon.eventstream`), as Bedrock's
//! ConverseStream sends it. Each message is:
//!
//! ```text
//! total length (u32 BE) | headers length (u32 BE) | prelude CRC32 (of the 8 bytes before)
//! headers | payload | message CRC32 (of everything before it)
//! ```
//!
//! A header is a name (u8 length + bytes), a type byte and a value (strings and byte arrays
//! carry a u16 length). A CRC mismatch or an impossible length is a malformed stream: the
//! decoder fails rather than guess where the next message starts.

use bytes::{Buf, Bytes, BytesMut};

use super::http::Framing;

/// Messages larger than this are refused (Bedrock's are a few kilobytes).
const MAX_MESSAGE: usize = 16 * 1024 * 1024;
const PRELUDE: usize = 12;
const MIN_MESSAGE: usize = PRELUDE + 4;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HeaderValue {
    Bool(bool),
    Byte(i8),
    Short(i16),
    Int(i32),
    Long(i64),
    Bytes(Bytes),
    String(String),
    Timestamp(i64),
    Uuid([u8; 16]),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    pub headers: Vec<(String, HeaderValue)>,
    pub payload: Bytes,
}

impl Message {
    /// A string header's value (`:event-type`, `:message-type`, `:exception-type`).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find_map(|(n, v)| match v {
            HeaderValue::String(s) if n == name => Some(s.as_str()),
            _ => None,
        })
    }
}

#[derive(Debug, Default)]
pub struct EventStreamDecoder {
    buf: BytesMut,
}

impl EventStreamDecoder {
    pub fn new() -> Self {
        Self::default()
    }
}

impl Framing for EventStreamDecoder {
    type Frame = Message;

    fn feed(&mut self, bytes: &[u8]) -> Result<Vec<Message>, String> {
        self.buf.extend_from_slice(bytes);
        let mut out = Vec::new();
        loop {
            if self.buf.len() < PRELUDE {
                return Ok(out);
            }
            let total =
                u32::from_be_bytes([self.buf[0], self.buf[1], self.buf[2], self.buf[3]]) as usize;
            let headers_len =
                u32::from_be_bytes([self.buf[4], self.buf[5], self.buf[6], self.buf[7]]) as usize;
            let prelude_crc =
                u32::from_be_bytes([self.buf[8], self.buf[9], self.buf[10], self.buf[11]]);
            if crc32fast::hash(&self.buf[..8]) != prelude_crc {
                return Err("prelude CRC mismatch".into());
            }
            if !(MIN_MESSAGE..=MAX_MESSAGE).contains(&total) || headers_len > total - MIN_MESSAGE {
                return Err(format!(
                    "impossible lengths (message {total}, headers {headers_len})"
                ));
            }
            if self.buf.len() < total {
                return Ok(out);
            }
            let message = self.buf.split_to(total).freeze();
            let crc = u32::from_be_bytes([
                message[total - 4],
                message[total - 3],
                message[total - 2],
                message[total - 1],
            ]);
            if crc32fast::hash(&message[..total - 4]) != crc {
                return Err("message CRC mismatch".into());
            }
            let headers = parse_headers(message.slice(PRELUDE..PRELUDE + headers_len))?;
            let payload = message.slice(PRELUDE + headers_len..total - 4);
            out.push(Message { headers, payload });
        }
    }
}

fn parse_headers(mut b: Bytes) -> Result<Vec<(String, HeaderValue)>, String> {
    let short = || "truncated header".to_string();
    let mut out = Vec::new();
    while b.has_remaining() {
        let name_len = usize::from(b.get_u8());
        if b.remaining() < name_len + 1 {
            return Err(short());
        }
        let name = String::from_utf8(b.split_to(name_len).to_vec())
            .map_err(|_| "header name is not UTF-8".to_string())?;
        let need = |b: &Bytes, n: usize| {
            if b.remaining() < n {
                Err(short())
            } else {
                Ok(())
            }
        };
        let value = match b.get_u8() {
            0 => HeaderValue::Bool(true),
            1 => HeaderValue::Bool(false),
            2 => {
                need(&b, 1)?;
                HeaderValue::Byte(b.get_i8())
            }
            3 => {
                need(&b, 2)?;
                HeaderValue::Short(b.get_i16())
            }
            4 => {
                need(&b, 4)?;
                HeaderValue::Int(b.get_i32())
            }
            5 => {
                need(&b, 8)?;
                HeaderValue::Long(b.get_i64())
            }
            t @ (6 | 7) => {
                need(&b, 2)?;
                let len = usize::from(b.get_u16());
                need(&b, len)?;
                let v = b.split_to(len);
                if t == 6 {
                    HeaderValue::Bytes(v)
                } else {
                    HeaderValue::String(
                        String::from_utf8(v.to_vec())
                            .map_err(|_| "header value is not UTF-8".to_string())?,
                    )
                }
            }
            8 => {
                need(&b, 8)?;
                HeaderValue::Timestamp(b.get_i64())
            }
            9 => {
                need(&b, 16)?;
                let mut u = [0u8; 16];
                b.copy_to_slice(&mut u);
                HeaderValue::Uuid(u)
            }
            other => return Err(format!("unknown header type {other}")),
        };
        out.push((name, value));
    }
    Ok(out)
}

/// Encodes a message with string headers (for tests and fixtures).
pub fn encode(headers: &[(&str, &str)], payload: &[u8]) -> Vec<u8> {
    let mut h = Vec::new();
    for (name, value) in headers {
        h.push(name.len() as u8);
        h.extend_from_slice(name.as_bytes());
        h.push(7);
        h.extend_from_slice(&(value.len() as u16).to_be_bytes());
        h.extend_from_slice(value.as_bytes());
    }
    let total = (PRELUDE + h.len() + payload.len() + 4) as u32;
    let mut m = Vec::with_capacity(total as usize);
    m.extend_from_slice(&total.to_be_bytes());
    m.extend_from_slice(&(h.len() as u32).to_be_bytes());
    let prelude_crc = crc32fast::hash(&m);
    m.extend_from_slice(&prelude_crc.to_be_bytes());
    m.extend_from_slice(&h);
    m.extend_from_slice(payload);
    let crc = crc32fast::hash(&m);
    m.extend_from_slice(&crc.to_be_bytes());
    m
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn decodes_messages_split_anywhere() {
        let a = encode(
            &[(":event-type", "messageStart"), (":message-type", "event")],
            br#"{"role":"assistant"}"#,
        );
        let b = encode(
            &[(":event-type", "messageStop")],
            br#"{"stopReason":"end_turn"}"#,
        );
        let all: Vec<u8> = a.iter().chain(b.iter()).copied().collect();
        for cut in 0..all.len() {
            let mut d = EventStreamDecoder::new();
            let mut got = d.feed(&all[..cut]).unwrap();
            got.extend(d.feed(&all[cut..]).unwrap());
            assert_eq!(got.len(), 2, "cut at {cut}");
            assert_eq!(got[0].header(":event-type"), Some("messageStart"));
            assert_eq!(&got[1].payload[..], br#"{"stopReason":"end_turn"}"#);
        }
    }

    #[test]
    fn corrupt_messages_are_refused() {
        let mut m = encode(&[(":event-type", "x")], b"{}");
        let last = m.len() - 6;
        m[last] ^= 1; // payload byte: message CRC fails
        assert!(EventStreamDecoder::new()
            .feed(&m)
            .unwrap_err()
            .contains("message CRC"));
        let mut m = encode(&[(":event-type", "x")], b"{}");
        m[2] ^= 1; // length: prelude CRC fails
        assert!(EventStreamDecoder::new()
            .feed(&m)
            .unwrap_err()
            .contains("prelude CRC"));
    }
}
