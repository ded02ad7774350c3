//! OpenAI-shaped errors for requests the HTTP parser refuses.
//!
//! A request whose head cannot be parsed (a NUL or another control byte in a header, a broken
//! request line or header name) never reaches the application: actix-http answers it itself
//! with a bare `400 Bad Request` and no body, and a head over the size limit with a bare `431`,
//! then closes the connection. Clients of this API expect the OpenAI error shape on every
//! error, so each connection's writes pass through [`ShapedErrors`], which recognises those
//! two responses and sends the same status with an OpenAI-shaped JSON body instead.
//!
//! Recognising them is exact and cheap: they are the only responses that begin a write with a
//! `400`/`431` status line and declare `content-length: 0` without a `content-type` (every
//! error the application sends carries a JSON body). Anything else passes through untouched;
//! the cost on other writes is one comparison of the first twelve bytes.

use std::io;
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// A connection whose parser-level error responses are rewritten; see the module docs.
pub struct ShapedErrors<T> {
    io: T,
    /// A rewritten response still being written, and how much of it is out.
    pending: Option<(Vec<u8>, usize)>,
}

impl<T> ShapedErrors<T> {
    pub fn new(io: T) -> Self {
        ShapedErrors { io, pending: None }
    }
}

impl<T: AsyncWrite + Unpin> ShapedErrors<T> {
    fn poll_pending(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while let Some((bytes, sent)) = &mut self.pending {
            if *sent == bytes.len() {
                self.pending = None;
                break;
            }
            let n = ready!(Pin::new(&mut self.io).poll_write(cx, &bytes[*sent..]))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            *sent += n;
        }
        Poll::Ready(Ok(()))
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for ShapedErrors<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_read(cx, buf)
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for ShapedErrors<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        ready!(this.poll_pending(cx))?;
        if let Some((head_len, replacement)) = reshape(buf) {
            this.pending = Some((replacement, 0));
            // The rewritten response is ours to deliver now: the caller sees the original head
            // as written, and every later write, flush or shutdown first finishes this one.
            if let Poll::Ready(Err(e)) = this.poll_pending(cx) {
                return Poll::Ready(Err(e));
            }
            return Poll::Ready(Ok(head_len));
        }
        Pin::new(&mut this.io).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        ready!(self.poll_pending(cx))?;
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        ready!(self.poll_pending(cx))?;
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}

const BAD_REQUEST: &str = "The request is not valid HTTP: a header holds a byte HTTP does not \
allow (such as NUL or another control character), or the request line or a header name is \
malformed.";
const TOO_LARGE: &str =
    "The request's headers are too large: at most 96 headers and 128 KiB are accepted.";

/// When `buf` begins with the parser's bodiless 400 or 431 response, the length of that
/// response's head and the response to send in its place.
fn reshape(buf: &[u8]) -> Option<(usize, Vec<u8>)> {
    if buf.len() < 12 || !(buf.starts_with(b"HTTP/1.1 4") || buf.starts_with(b"HTTP/1.0 4")) {
        return None;
    }
    let (status, message) = match &buf[9..12] {
        b"400" => (400u16, BAD_REQUEST),
        b"431" => (431, TOO_LARGE),
        _ => return None,
    };
    let head_len = buf.windows(4).position(|w| w == b"\r\n\r\n")? + 4;
    let head = std::str::from_utf8(&buf[..head_len]).ok()?;
    let mut lines = head.split("\r\n");
    let status_line = lines.next()?;
    let mut kept = Vec::new();
    let mut empty_body = false;
    for line in lines.filter(|l| !l.is_empty()) {
        let (name, value) = line.split_once(':')?;
        let name = name.trim().to_ascii_lowercase();
        match name.as_str() {
            "content-length" => empty_body = value.trim() == "0",
            "content-type" | "transfer-encoding" => return None,
            _ => kept.push(line),
        }
    }
    if !empty_body {
        return None;
    }
    let body = serde_json::json!({ "error": {
        "code": status,
        "message": message,
        "type": "invalid_request_error",
        "param": null,
        "metadata": null,
    }})
    .to_string();
    let mut out = String::with_capacity(head_len + body.len() + 64);
    out.push_str(status_line);
    out.push_str("\r\n");
    for line in kept {
        out.push_str(line);
        out.push_str("\r\n");
    }
    out.push_str("content-type: application/json\r\n");
    out.push_str(&format!("content-length: {}\r\n\r\n", body.len()));
    out.push_str(&body);
    Some((head_len, out.into_bytes()))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use tokio::io::AsyncWriteExt;

    #[test]
    fn rewrites_only_the_parsers_bodiless_errors() {
        let bare = b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\nconnection: close\r\ndate: Mon, 07 Dec 2026 17:00:00 GMT\r\n\r\n";
        let (len, out) = reshape(bare).unwrap();
        assert_eq!(len, bare.len());
        let out = String::from_utf8(out).unwrap();
        let (head, body) = out.split_once("\r\n\r\n").unwrap();
        assert!(head.starts_with("HTTP/1.1 400 Bad Request\r\n"));
        assert!(head.contains("\r\nconnection: close"));
        assert!(head.contains("\r\ndate: Mon, 07 Dec 2026"));
        assert!(head.contains(&format!("content-length: {}", body.len())));
        let v: serde_json::Value = serde_json::from_str(body).unwrap();
        assert_eq!(v["error"]["type"], "invalid_request_error");
        assert_eq!(v["error"]["code"], 400);

        let large = b"HTTP/1.1 431 Request Header Fields Too Large\r\ncontent-length: 0\r\n\r\n";
        let out = String::from_utf8(reshape(large).unwrap().1).unwrap();
        assert!(out.contains("\"code\":431"));

        // The application's errors carry a body and a type, and pass untouched.
        let app = b"HTTP/1.1 400 Bad Request\r\ncontent-length: 10\r\ncontent-type: application/json\r\n\r\n{\"error\":1}";
        assert!(reshape(app).is_none());
        let app_empty_typed =
            b"HTTP/1.1 400 Bad Request\r\ncontent-type: text/plain\r\ncontent-length: 0\r\n\r\n";
        assert!(reshape(app_empty_typed).is_none());
        assert!(reshape(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n").is_none());
        assert!(reshape(b"HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\n\r\n").is_none());
        assert!(reshape(b"data: HTTP/1.1 400").is_none());
        // A head split across writes is not recognised (and not damaged).
        assert!(reshape(b"HTTP/1.1 400 Bad Request\r\ncontent-le").is_none());
    }

    #[tokio::test]
    async fn the_wrapper_sends_the_rewritten_response_and_the_rest_unchanged() {
        let (client, server) = tokio::io::duplex(16);
        let mut shaped = ShapedErrors::new(server);
        let reader = tokio::spawn(async move {
            let mut client = client;
            let mut all = Vec::new();
            tokio::io::AsyncReadExt::read_to_end(&mut client, &mut all)
                .await
                .unwrap();
            all
        });
        let head = b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\n\r\n";
        // A small pipe forces partial writes of the replacement.
        let n = shaped.write(head).await.unwrap();
        assert_eq!(n, head.len());
        shaped.write_all(b"next").await.unwrap();
        shaped.shutdown().await.unwrap();
        drop(shaped);
        let all = String::from_utf8(reader.await.unwrap()).unwrap();
        let (_, rest) = all.split_once("\r\n\r\n").unwrap();
        assert!(rest.starts_with("{\"error\":"));
        assert!(rest.ends_with("}next"));
    }
}
