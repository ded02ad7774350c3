//! A Server-Sent Events decoder over a byte stream (WHATWG framing: LF, CR or CRLF line ends,
//! `data:` lines joined with newlines, comments ignored, an event ends at a blank line).

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SseEvent {
    pub event: Option<String>,
    pub data: String,
}

#[derive(Default)]
pub struct SseDecoder {
    buf: Vec<u8>,
    event: Option<String>,
    data: Vec<String>,
    has_data: bool,
    /// The last line ended with CR at the end of a chunk: an LF starting the next chunk is the
    /// second half of that CRLF, not a blank line.
    after_cr: bool,
}

impl SseDecoder {
    pub fn new() -> Self {
        Self::default()
    }

    /// Feeds bytes and returns every event completed by them.
    pub fn feed(&mut self, bytes: &[u8]) -> Vec<SseEvent> {
        let bytes = match (self.after_cr, bytes.first()) {
            (true, Some(b'\n')) => &bytes[1..],
            _ => bytes,
        };
        if !bytes.is_empty() {
            self.after_cr = false;
        }
        self.buf.extend_from_slice(bytes);
        let mut out = Vec::new();
        while let Some(pos) = self.buf.iter().position(|&b| b == b'\n' || b == b'\r') {
            // A line ends at CR, LF or CRLF. A CR ending the buffer ends its line now; an LF
            // arriving next is then dropped (`after_cr`).
            let skip = if self.buf[pos] == b'\r' && self.buf.get(pos + 1) == Some(&b'\n') {
                2
            } else {
                if self.buf[pos] == b'\r' && pos + 1 == self.buf.len() {
                    self.after_cr = true;
                }
                1
            };
            let line: Vec<u8> = self.buf.drain(..pos + skip).take(pos).collect();
            let line = String::from_utf8_lossy(&line);
            if line.is_empty() {
                if self.has_data {
                    out.push(SseEvent {
                        event: self.event.take(),
                        data: self.data.join("\n"),
                    });
                }
                self.event = None;
                self.data.clear();
                self.has_data = false;
                continue;
            }
            if line.starts_with(':') {
                continue;
            }
            let (field, value) = match line.split_once(':') {
                Some((f, v)) => (f, v.strip_prefix(' ').unwrap_or(v)),
                None => (line.as_ref(), ""),
            };
            match field {
                "data" => {
                    self.data.push(value.to_string());
                    self.has_data = true;
                }
                "event" => self.event = Some(value.to_string()),
                _ => {}
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_split_and_mixed_line_endings() {
        let mut d = SseDecoder::new();
        let mut events = d.feed(b"event: a\r\ndata: {\"x\"");
        assert!(events.is_empty());
        events.extend(d.feed(b":1}\r\n\r\n: keep-alive\n\ndata: one\ndata: two\n\ndata: [DONE]\r"));
        events.extend(d.feed(b"\r"));
        // CRLF split across chunks is one line end, not a blank line.
        events.extend(d.feed(b"data: split\r"));
        events.extend(d.feed(b"\ndata: more\r\n\r\n"));
        assert_eq!(
            events,
            vec![
                SseEvent {
                    event: Some("a".into()),
                    data: "{\"x\":1}".into()
                },
                SseEvent {
                    event: None,
                    data: "one\ntwo".into()
                },
                SseEvent {
                    event: None,
                    data: "[DONE]".into()
                },
                SseEvent {
                    event: None,
                    data: "split\nmore".into()
                },
            ]
        );
    }
}
