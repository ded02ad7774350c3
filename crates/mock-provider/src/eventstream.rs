//! The AWS event-stream binary framing Bedrock's ConverseStream uses: per message a prelude
//! (total length, headers length, CRC32 of those 8 bytes), string headers (`:event-type`,
//! `:content-type`, `:message-type`, `:exception-type`), the JSON payload and a CRC32 of
//! everything before it. All integers big-endian.

use bytes::Bytes;

pub const CONTENT_TYPE: &str = "application/vnd.amazon.eventstream";

/// Header value type 7: a string with a u16 length.
const STRING: u8 = 7;

pub fn message(headers: &[(&str, &str)], payload: &[u8]) -> Vec<u8> {
    let mut h = Vec::new();
    for (name, value) in headers {
        h.push(u8::try_from(name.len()).unwrap_or(u8::MAX));
        h.extend_from_slice(name.as_bytes());
        h.push(STRING);
        h.extend_from_slice(&u16::try_from(value.len()).unwrap_or(u16::MAX).to_be_bytes());
        h.extend_from_slice(value.as_bytes());
    }
    let total = 12 + h.len() + payload.len() + 4;
    let mut m = Vec::with_capacity(total);
    m.extend_from_slice(&u32::try_from(total).unwrap_or(u32::MAX).to_be_bytes());
    m.extend_from_slice(&u32::try_from(h.len()).unwrap_or(u32::MAX).to_be_bytes());
    let prelude_crc = crc32fast::hash(&m);
    m.extend_from_slice(&prelude_crc.to_be_bytes());
    m.extend_from_slice(&h);
    m.extend_from_slice(payload);
    let crc = crc32fast::hash(&m);
    m.extend_from_slice(&crc.to_be_bytes());
    m
}

/// An event message (`:message-type: event`) with a JSON payload.
pub fn event(event_type: &str, payload: &str) -> Vec<u8> {
    message(
        &[
            (":event-type", event_type),
            (":content-type", "application/json"),
            (":message-type", "event"),
        ],
        payload.as_bytes(),
    )
}

/// An exception message (`:message-type: exception`).
pub fn exception(exception_type: &str, message_text: &str) -> Vec<u8> {
    let payload = serde_json::json!({ "message": message_text }).to_string();
    message(
        &[
            (":exception-type", exception_type),
            (":content-type", "application/json"),
            (":message-type", "exception"),
        ],
        payload.as_bytes(),
    )
}

/// A well-formed message with one payload byte flipped: its message CRC no longer matches.
pub fn corrupt() -> Bytes {
    let mut m = event(
        "contentBlockDelta",
        r#"{"contentBlockIndex":0,"delta":{"text":"x"}}"#,
    );
    let i = m.len() - 8;
    m[i] ^= 0x20;
    Bytes::from(m)
}
