//! The wire (issue 13 items 1, 5 and 7): frames that break RFC 6455 get the close code the
//! RFC names (1002, 1007) instead of a dropped TCP connection; a close the server decides
//! while the client is still sending reaches the client; a client that stops reading while
//! it floods pings is stopped, its pongs never pile up; a client over its rate limit for
//! good is closed with 1008.
//!
//! Protocol abuse needs hand-made frames, so these tests speak WebSocket over a raw
//! `TcpStream`: the upgrade request, masked (or deliberately unmasked) client frames, and a
//! reader of the server's frames that returns the close code, or `None` when the TCP
//! connection ended without a close frame (what a browser reports as 1006).

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use ws_gateway_axum::prelude::*;
use ws_gateway_axum::test_client::TestServer;
use ws_gateway_axum::{SocketIoTransport, Transport};
use ws_gateway_core::{ConnectionConfig, RateLimit};

use crate::common::rss_kib;

#[websocket_gateway(path = "/wire")]
struct Wire;

#[websocket_gateway]
impl Wire {
    #[subscribe("echo")]
    fn echo(&self, data: serde_json::Value) -> serde_json::Value {
        data
    }
}

async fn start(config: ConnectionConfig) -> TestServer {
    let app = GatewayApp::new()
        .config(config)
        .gateway::<Wire>()
        .build()
        .unwrap();
    TestServer::start(app).await.unwrap()
}

/// How long a test waits for what it expects before failing: generous, nothing is timed.
const PATIENCE: Duration = Duration::from_secs(30);

/// A raw TCP connection upgraded to WebSocket on `path` (and query).
async fn upgrade(addr: std::net::SocketAddr, path: &str) -> TcpStream {
    upgrade_on(TcpStream::connect(addr).await.unwrap(), addr, path).await
}

/// Upgrades `tcp` to WebSocket on `path` (and query).
async fn upgrade_on(mut tcp: TcpStream, addr: std::net::SocketAddr, path: &str) -> TcpStream {
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    );
    tcp.write_all(request.as_bytes()).await.unwrap();
    // The response head, byte by byte so that no frame after it is consumed.
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        head.push(tcp.read_u8().await.unwrap());
    }
    let head = String::from_utf8(head).unwrap();
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    tcp
}

/// One client frame: `first` is the FIN/RSV/opcode byte; masked unless `masked` is false.
fn frame(first: u8, payload: &[u8], masked: bool) -> Vec<u8> {
    let mask_bit = if masked { 0x80 } else { 0 };
    let mut out = vec![first];
    match payload.len() {
        len @ 0..=125 => out.push(mask_bit | len as u8),
        len @ 126..=0xffff => {
            out.push(mask_bit | 126);
            out.extend_from_slice(&(len as u16).to_be_bytes());
        }
        len => {
            out.push(mask_bit | 127);
            out.extend_from_slice(&(len as u64).to_be_bytes());
        }
    }
    if masked {
        let key = [0x37, 0xfa, 0x21, 0x3d];
        out.extend_from_slice(&key);
        out.extend(payload.iter().enumerate().map(|(i, b)| b ^ key[i % 4]));
    } else {
        out.extend_from_slice(payload);
    }
    out
}

/// Reads the server's frames until its close frame: the close code (1005 for a close
/// without one), or `None` if the connection ended (EOF or reset) without a close frame.
async fn close_code(tcp: &mut (impl AsyncRead + Unpin)) -> Option<u16> {
    let read = async {
        loop {
            let b0 = tcp.read_u8().await.ok()?;
            let b1 = tcp.read_u8().await.ok()?;
            let len = match b1 & 0x7f {
                126 => u64::from(tcp.read_u16().await.ok()?),
                127 => tcp.read_u64().await.ok()?,
                len => u64::from(len),
            };
            let mut payload = vec![0; usize::try_from(len).ok()?];
            tcp.read_exact(&mut payload).await.ok()?;
            if b0 & 0x0f == 0x8 {
                return Some(match payload.get(..2) {
                    Some(code) => u16::from_be_bytes([code[0], code[1]]),
                    None => 1005,
                });
            }
        }
    };
    tokio::time::timeout(PATIENCE, read)
        .await
        .expect("the server neither closed nor ended the connection")
}

/// Sends `bytes` on a fresh connection and returns the close code the server answers with.
async fn answer_to(bytes: &[u8]) -> Option<u16> {
    let server = start(ConnectionConfig::default()).await;
    let mut tcp = upgrade(server.addr(), "/wire").await;
    tcp.write_all(bytes).await.unwrap();
    close_code(&mut tcp).await
}

#[tokio::test]
async fn invalid_utf8_in_a_text_frame_gets_1007() {
    let _alone = crate::common::alone().await;
    assert_eq!(
        answer_to(&frame(0x81, b"{\"event\":\xff}", true)).await,
        Some(1007)
    );
}

#[tokio::test]
async fn invalid_utf8_in_a_close_reason_gets_1007() {
    let _alone = crate::common::alone().await;
    assert_eq!(
        answer_to(&frame(0x88, b"\x03\xe8\xff\xfe", true)).await,
        Some(1007)
    );
}

#[tokio::test]
async fn protocol_errors_get_1002() {
    let _alone = crate::common::alone().await;
    let cases: [(&str, Vec<u8>); 8] = [
        ("unmasked frame", frame(0x81, b"{}", false)),
        ("RSV1 set", frame(0xc1, b"{}", true)),
        ("RSV3 set", frame(0x91, b"{}", true)),
        ("reserved data opcode 0x3", frame(0x83, b"{}", true)),
        ("reserved control opcode 0xb", frame(0x8b, b"", true)),
        ("continuation with no start", frame(0x80, b"{}", true)),
        ("ping of 126 bytes", frame(0x89, &[b'p'; 126], true)),
        ("fragmented ping", frame(0x09, b"p", true)),
    ];
    let server = start(ConnectionConfig::default()).await;
    for (case, bytes) in cases {
        let mut tcp = upgrade(server.addr(), "/wire").await;
        tcp.write_all(&bytes).await.unwrap();
        assert_eq!(close_code(&mut tcp).await, Some(1002), "{case}");
    }
}

/// Opens a connection whose receive buffer is small, sends two echo requests of 4 KiB
/// without reading the replies (so that part of them waits in the server's send queue),
/// then sends `abuse` and 256 KiB more that the server will not read, closes its side, and
/// only then reads: the close code, or `None` if the connection was reset.
///
/// A server that drops the connection with unread input makes the kernel send a reset,
/// which throws away what it had not sent yet: the end of the replies and the close frame.
async fn close_code_after_unread_input(
    addr: std::net::SocketAddr,
    path: &str,
    abuse: &[u8],
) -> Option<u16> {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let tcp = socket.connect(addr).await.unwrap();
    let mut tcp = upgrade_on(tcp, addr, path).await;
    let pad = "x".repeat(4096);
    for _ in 0..2 {
        let echo = format!(r#"{{"event":"echo","data":"{pad}"}}"#);
        tcp.write_all(&frame(0x81, echo.as_bytes(), true))
            .await
            .unwrap();
    }
    let (mut read, mut write) = tcp.into_split();
    let _ = write.write_all(abuse).await;
    for _ in 0..16 {
        if write.write_all(&[b'x'; 16 * 1024]).await.is_err() {
            break;
        }
    }
    let _ = write.shutdown().await;
    close_code(&mut read).await
}

#[tokio::test]
async fn a_message_too_big_gets_1009_while_the_client_is_still_sending() {
    let _alone = crate::common::alone().await;
    let mut config = ConnectionConfig::default();
    // Time for the client to finish sending, however busy the machine.
    config.close_timeout = PATIENCE;
    let server = start(config).await;
    // A text frame announcing 16 MiB, over the 64 KiB limit; its payload keeps coming.
    let mut header = vec![0x81, 0x80 | 127];
    header.extend_from_slice(&(16u64 << 20).to_be_bytes());
    header.extend_from_slice(&[1, 2, 3, 4]);
    let code = close_code_after_unread_input(server.addr(), "/wire", &header).await;
    assert_eq!(code, Some(1009));
}

#[tokio::test]
async fn a_protocol_error_gets_1002_while_the_client_is_still_sending() {
    let _alone = crate::common::alone().await;
    let mut config = ConnectionConfig::default();
    config.close_timeout = PATIENCE;
    let server = start(config).await;
    let code =
        close_code_after_unread_input(server.addr(), "/wire", &frame(0xc1, b"{}", true)).await;
    assert_eq!(code, Some(1002));
}

#[tokio::test]
async fn sustained_sending_over_the_rate_limit_ends_in_1008() {
    let _alone = crate::common::alone().await;
    let mut config = ConnectionConfig::default();
    config.rate_limit = Some(RateLimit::new(100, 100));
    let server = start(config).await;
    let (ws, _) = tokio_tungstenite::connect_async(server.url("/wire"))
        .await
        .unwrap();
    let (mut sink, mut stream) = ws.split();
    // Ten times the limit, paced so that a token comes back between every ten messages:
    // rejections never come a hundred in a row.
    let sender = tokio::spawn(async move {
        let mut pace = tokio::time::interval(Duration::from_millis(1));
        loop {
            pace.tick().await;
            let message = Message::text(r#"{"event":"echo","data":1}"#);
            if sink.send(message).await.is_err() {
                return;
            }
        }
    });
    let closed = tokio::time::timeout(PATIENCE, async {
        while let Some(Ok(message)) = stream.next().await {
            if let Message::Close(close) = message {
                return close.map(|close| u16::from(close.code));
            }
        }
        None
    })
    .await;
    sender.abort();
    assert_eq!(closed, Ok(Some(1008)), "no close 1008 while over the limit");
}

/// Sends up to `pings` ping frames of 125 bytes without ever reading. Returns whether the
/// server stopped the client (the connection failed) and the server's RSS growth in KiB.
async fn ping_flood(tcp: TcpStream, pings: usize) -> (bool, u64) {
    let (_read, mut write) = tcp.into_split();
    let ping = frame(0x89, &[b'p'; 125], true);
    // A batch of pings per write, so that the test client is not the bottleneck.
    let batch: Vec<u8> = ping
        .iter()
        .copied()
        .cycle()
        .take(ping.len() * 256)
        .collect();
    let before = rss_kib();
    let mut peak = before;
    let mut stopped = false;
    let flood = async {
        for _ in 0..pings / 256 {
            if write.write_all(&batch).await.is_err() {
                stopped = true;
                return;
            }
            peak = peak.max(rss_kib());
        }
    };
    let _ = tokio::time::timeout(PATIENCE * 2, flood).await;
    let grown = peak.saturating_sub(before);
    eprintln!(
        "ping flood: server RSS grew by {} KiB, stopped: {stopped}",
        grown
    );
    (stopped, grown)
}

/// What a ping flood may cost the server, with room for a noisy machine (the issue
/// measured +150 MB).
const FLOOD_BOUND_KIB: u64 = 32 * 1024;

/// A config in which a client that stops reading is given up on quickly.
fn impatient() -> ConnectionConfig {
    let mut config = ConnectionConfig::default();
    config.write_timeout = Some(Duration::from_secs(1));
    config
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ping_flood_from_a_client_that_never_reads_is_bounded_and_stopped() {
    let _alone = crate::common::alone().await;
    let server = start(impatient()).await;
    let tcp = upgrade(server.addr(), "/wire").await;
    let (stopped, grown) = ping_flood(tcp, 1_000_000).await;
    assert!(grown < FLOOD_BOUND_KIB, "server RSS grew by {grown} KiB");
    assert!(
        stopped,
        "the server kept reading a client that does not read"
    );
}
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ping_flood_over_socket_io_without_a_token_is_bounded_and_stopped() {
    let _alone = crate::common::alone().await;
    let app = GatewayApp::new()
        .config(impatient())
        .gateway::<Wire>()
        .build()
        .unwrap();
    let (socketio, _io) = SocketIoTransport::new().mount(&app);
    let router = (&app).into_router().merge(socketio);
    let server = TestServer::start_router(app, router).await.unwrap();
    let tcp = upgrade(server.addr(), "/socket.io/?EIO=4&transport=websocket").await;
    let (stopped, grown) = ping_flood(tcp, 1_000_000).await;
    assert!(grown < FLOOD_BOUND_KIB, "server RSS grew by {grown} KiB");
    assert!(
        stopped,
        "the server kept reading a client that does not read"
    );
}

/// The issue's figures, printed rather than asserted (durations are the point here):
/// another client's echo latency before and during four ping floods (two plain, two
/// Socket.IO without a token) and one client at ten times its rate limit, and the server's
/// RSS growth. `cargo test -p gateway-tests --test hostile figures -- --ignored --nocapture`
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "prints figures; run by hand"]
async fn figures() {
    let _alone = crate::common::alone().await;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::time::Instant;

    let app = GatewayApp::new().gateway::<Wire>().build().unwrap();
    let (socketio, _io) = SocketIoTransport::new().mount(&app);
    let router = (&app).into_router().merge(socketio);
    let server = TestServer::start_router(app, router).await.unwrap();
    let addr = server.addr();
    let (mut victim, _) = tokio_tungstenite::connect_async(server.url("/wire"))
        .await
        .unwrap();
    let mut echoes = async |n: usize| {
        let mut took = Vec::with_capacity(n);
        // Under the victim's own rate limit (1,000 a second).
        let mut pace = tokio::time::interval(Duration::from_millis(2));
        for _ in 0..n {
            pace.tick().await;
            let sent = Instant::now();
            let message = Message::text(r#"{"event":"echo","data":1}"#);
            victim.send(message).await.unwrap();
            while let Some(Ok(message)) = victim.next().await {
                if message.is_text() {
                    break;
                }
            }
            took.push(sent.elapsed());
        }
        took.sort();
        (took[n / 2], took[n * 99 / 100])
    };
    let (p50, p99) = echoes(1000).await;
    eprintln!("idle: echo p50 {p50:?}, p99 {p99:?}");

    let before = rss_kib();
    let peak = Arc::new(AtomicU64::new(before));
    let sampler = tokio::spawn({
        let peak = peak.clone();
        async move {
            loop {
                peak.fetch_max(rss_kib(), Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
    });
    // Past the default write timeout (10 s), so that the floods are seen to end.
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut attackers = Vec::new();
    for path in [
        "/wire",
        "/wire",
        "/socket.io/?EIO=4&transport=websocket",
        "/socket.io/?EIO=4&transport=websocket",
    ] {
        let tcp = upgrade(addr, path).await;
        attackers.push(tokio::spawn(async move {
            let started = Instant::now();
            let (_read, mut write) = tcp.into_split();
            let ping = frame(0x89, &[b'p'; 125], true);
            let batch: Vec<u8> = ping
                .iter()
                .copied()
                .cycle()
                .take(ping.len() * 256)
                .collect();
            for _ in 0..1_000_000 / 256 {
                match tokio::time::timeout_at(deadline.into(), write.write_all(&batch)).await {
                    Ok(Ok(())) => {}
                    Ok(Err(_)) => return format!("{path}: stopped after {:?}", started.elapsed()),
                    Err(_) => return format!("{path}: still open after {:?}", started.elapsed()),
                }
            }
            format!("{path}: sent 1,000,000 pings, not stopped")
        }));
    }
    let (ws, _) = tokio_tungstenite::connect_async(server.url("/wire"))
        .await
        .unwrap();
    let abuser = tokio::spawn(async move {
        let started = Instant::now();
        let (mut sink, mut stream) = ws.split();
        let sender = tokio::spawn(async move {
            // 10,000 a second: ten times the default limit.
            let mut pace = tokio::time::interval(Duration::from_millis(1));
            loop {
                pace.tick().await;
                for _ in 0..10 {
                    let message = Message::text(r#"{"event":"echo","data":1}"#);
                    if sink.send(message).await.is_err() {
                        return;
                    }
                }
            }
        });
        let closed = tokio::time::timeout_at(deadline.into(), async {
            while let Some(Ok(message)) = stream.next().await {
                if let Message::Close(close) = message {
                    return close.map(|close| u16::from(close.code));
                }
            }
            None
        })
        .await;
        sender.abort();
        format!(
            "rate-limit abuser: {closed:?} after {:?}",
            started.elapsed()
        )
    });
    let (p50, p99) = echoes(3000).await;
    eprintln!("under attack: echo p50 {p50:?}, p99 {p99:?}");
    for attacker in attackers {
        eprintln!("{}", attacker.await.unwrap());
    }
    eprintln!("{}", abuser.await.unwrap());
    sampler.abort();
    let peak = peak.load(Ordering::Relaxed);
    eprintln!(
        "peak RSS during the attacks: +{} KiB",
        peak.saturating_sub(before)
    );
    eprintln!(
        "after the attacks: RSS +{} KiB",
        rss_kib().saturating_sub(before)
    );
}
