//! The integration tests of the gateway workspace live beside this file, one target per
//! topic (`chat_roundtrip.rs`, `protocol.rs`, `lifecycle.rs`, `pipeline.rs`, ...); the
//! compile-fail and pass cases of the macros are under `ui/`. Run them all with
//! `./scripts/test.sh`, which also starts what they need.
//!
//! What several targets share lives here.

use std::net::SocketAddr;
use std::time::Duration;

use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// `POST path` with a JSON body to `addr` over a plain TCP socket (`connection: close`):
/// the status and the body (`null` when it is not JSON). Panics when no answer comes
/// within 30 s.
///
/// # Panics
///
/// When the server cannot be reached, does not answer in time, or answers no HTTP.
#[expect(clippy::unwrap_used, clippy::expect_used, reason = "a test helper")]
pub async fn post_json(addr: SocketAddr, path: &str, body: &Value) -> (u16, Value) {
    let body = body.to_string();
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let request = format!(
        "POST {path} HTTP/1.1\r\nhost: localhost\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut response = String::new();
    tokio::time::timeout(
        Duration::from_secs(30),
        stream.read_to_string(&mut response),
    )
    .await
    .expect("no answer within 30 s")
    .unwrap();
    let status = response[9..12].parse().unwrap();
    let (_, body) = response.split_once("\r\n\r\n").unwrap();
    (status, serde_json::from_str(body).unwrap_or(Value::Null))
}
