//! `infron healthcheck`: one `GET /ready` over plain HTTP/1.1 to a local server, so a container
//! image needs no curl or wget to be health-checked.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Ok when `GET http://{addr}/ready` answers 200 within `timeout`; otherwise why not.
pub async fn probe(addr: &str, timeout: Duration) -> Result<(), String> {
    match tokio::time::timeout(timeout, request(addr)).await {
        Ok(r) => r,
        Err(_) => Err(format!(
            "{addr} did not answer within {} s",
            timeout.as_secs()
        )),
    }
}

async fn request(addr: &str) -> Result<(), String> {
    let mut stream = TcpStream::connect(addr)
        .await
        .map_err(|e| format!("cannot connect to {addr}: {e}"))?;
    let head = format!("GET /ready HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    stream
        .write_all(head.as_bytes())
        .await
        .map_err(|e| format!("cannot send to {addr}: {e}"))?;
    // The status line and a small JSON body; more than this is not a probe answer.
    let mut reply = Vec::with_capacity(1024);
    stream
        .take(64 * 1024)
        .read_to_end(&mut reply)
        .await
        .map_err(|e| format!("cannot read from {addr}: {e}"))?;
    let text = String::from_utf8_lossy(&reply);
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse::<u16>().ok())
        .ok_or_else(|| format!("{addr} did not answer HTTP"))?;
    if status == 200 {
        return Ok(());
    }
    let body = text.split_once("\r\n\r\n").map_or("", |(_, b)| b.trim());
    Err(format!("{addr} answered {status}: {body}"))
}
