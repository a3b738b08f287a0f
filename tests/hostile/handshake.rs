//! The HTTP handshake (issue 13, items 6, 8 and 9): request heads that never end or never
//! stop growing, headers a connection would keep for its whole life, the per-IP limit
//! without a peer address or behind a proxy, and pages of other origins.

use std::net::SocketAddr;
use std::time::Duration;

use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};
use ws_gateway_axum::prelude::*;
use ws_gateway_axum::test_client::{TestClient, TestError, TestServer};
use ws_gateway_axum::{SocketIoTransport, Transport};
use ws_gateway_core::{
    Authenticator, ConnectionConfig, HandshakeRequest, Origins, TrustedProxies, WsException,
};

use crate::common::rss_kib;

const TIMEOUT: Duration = Duration::from_secs(10);

#[websocket_gateway(path = "/hostile-handshake")]
struct Handshaken;

#[websocket_gateway]
impl Handshaken {
    #[subscribe("echo")]
    fn echo(&self, data: serde_json::Value) -> serde_json::Value {
        data
    }

    /// The address the per-IP limit counted this client under.
    #[subscribe("whoami")]
    fn whoami(&self, client: Client) -> Option<String> {
        client.handshake().client_ip.map(|ip| ip.to_string())
    }
}

fn app(config: ConnectionConfig) -> App {
    GatewayApp::new()
        .config(config)
        .gateway::<Handshaken>()
        .build()
        .unwrap()
}

/// Accepts the token "t", wherever the request carries it.
struct TokenT;

impl Authenticator for TokenT {
    type Identity = ();

    async fn authenticate(&self, request: &HandshakeRequest<'_>) -> Result<(), WsException> {
        match request.token() {
            Some("t") => Ok(()),
            _ => Err(WsException::new("Unauthorized")),
        }
    }
}

/// A raw upgrade request for the gateway, with `extra` header lines (each ending in CRLF).
fn upgrade_request(extra: &str) -> String {
    format!(
        "GET /hostile-handshake HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: Upgrade\r\n\
         Upgrade: websocket\r\nSec-WebSocket-Version: 13\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n{extra}\r\n"
    )
}

/// Reads the status line of the response on `tcp`.
async fn status_line(tcp: &mut TcpStream) -> String {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    tokio::time::timeout(TIMEOUT, async {
        while !head.ends_with(b"\r\n") {
            if tcp.read(&mut byte).await.unwrap() == 0 {
                break;
            }
            head.push(byte[0]);
        }
    })
    .await
    .expect("no response");
    String::from_utf8_lossy(&head).trim_end().to_owned()
}

/// Waits until the server closes `tcp` (EOF or reset), reading and dropping anything.
async fn closed_by_server(tcp: &mut TcpStream, within: Duration) -> bool {
    let mut buf = [0u8; 1024];
    tokio::time::timeout(within, async {
        loop {
            match tcp.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    })
    .await
    .is_ok()
}

fn status_of(err: TestError) -> u16 {
    match err {
        TestError::WebSocket(WsError::Http(response)) => response.status().as_u16(),
        other => panic!("expected an HTTP refusal, got {other}"),
    }
}

async fn connect_with(
    server: SocketAddr,
    headers: &[(&'static str, &str)],
) -> Result<TestClient, TestError> {
    connect_to(server, "", headers).await
}

async fn connect_to(
    server: SocketAddr,
    query: &str,
    headers: &[(&'static str, &str)],
) -> Result<TestClient, TestError> {
    let mut request = format!("ws://{server}/hostile-handshake{query}")
        .into_client_request()
        .unwrap();
    for (name, value) in headers {
        request
            .headers_mut()
            .insert(*name, HeaderValue::from_str(value).unwrap());
    }
    let (ws, _) = tokio_tungstenite::connect_async(request).await?;
    Ok(TestClient::from_stream(ws))
}

/// Serves `app` with plain `axum::serve` and no `ConnectInfo`, as axum's own examples do.
async fn axum_serve(app: &App) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let router = app.into_router();
    tokio::spawn(async move { axum::serve(listener, router).await });
    addr
}

// Item 6: the request head.

#[tokio::test]
async fn silent_and_slowloris_connections_are_closed() {
    let _alone = crate::common::alone().await;
    let app = app(ConnectionConfig::default());
    let listener = ws_gateway_axum::bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let addr = listener.local_addr().unwrap();
    let serve = ws_gateway_axum::serve(listener, app.into_router())
        .header_read_timeout(Duration::from_millis(300));
    tokio::spawn(serve.into_future());

    // One sends nothing, one a request line and a header, then stops.
    let mut silent = TcpStream::connect(addr).await.unwrap();
    let mut slow = TcpStream::connect(addr).await.unwrap();
    slow.write_all(b"GET /hostile-handshake HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    assert!(closed_by_server(&mut silent, TIMEOUT).await);
    assert!(closed_by_server(&mut slow, TIMEOUT).await);
    // The server is fine.
    let mut client = TestClient::connect(&format!("ws://{addr}/hostile-handshake"))
        .await
        .unwrap();
    client.emit("echo", &1).await.unwrap();
    assert_eq!(client.expect("echo").await.unwrap(), json!(1));
}

#[tokio::test]
async fn request_heads_over_the_limit_get_431_and_cost_nothing_per_connection() {
    let _alone = crate::common::alone().await;
    let server = TestServer::start(app(ConnectionConfig::default()))
        .await
        .unwrap();
    let cookie = format!("Cookie: session={}\r\n", "c".repeat(390 * 1024));
    let request = upgrade_request(&cookie);

    const ATTACKERS: usize = 300;
    let before = rss_kib();
    let mut attackers = Vec::with_capacity(ATTACKERS);
    for _ in 0..ATTACKERS {
        let mut tcp = TcpStream::connect(server.addr()).await.unwrap();
        // The server may stop reading and answer before the whole head is sent.
        let _ = tcp.write_all(request.as_bytes()).await;
        assert!(status_line(&mut tcp).await.starts_with("HTTP/1.1 431"));
        attackers.push(tcp);
    }
    let per_connection = rss_kib().saturating_sub(before) / ATTACKERS as u64;
    // Before the bound, each kept a 368 KiB copy of its cookie.
    assert!(
        per_connection < 64,
        "{per_connection} KiB per refused connection"
    );
    // Heads within the limit still upgrade.
    let cookie = format!("session={}", "c".repeat(8 * 1024));
    let mut client = connect_with(server.addr(), &[("cookie", &cookie)])
        .await
        .unwrap();
    client.emit("echo", &2).await.unwrap();
    assert_eq!(client.expect("echo").await.unwrap(), json!(2));
}

#[tokio::test]
async fn under_axum_serve_the_upgrade_refuses_headers_it_would_keep_too_long() {
    let _alone = crate::common::alone().await;
    let addr = axum_serve(&app(ConnectionConfig::default())).await;
    let cookie = format!("session={}", "c".repeat(390 * 1024));
    let err = connect_with(addr, &[("cookie", &cookie)])
        .await
        .unwrap_err();
    assert_eq!(status_of(err), 431);
    let mut client = connect_with(addr, &[("cookie", "session=1")])
        .await
        .unwrap();
    client.emit("echo", &3).await.unwrap();
    assert_eq!(client.expect("echo").await.unwrap(), json!(3));
}

// Item 8: the per-IP limit.

#[tokio::test]
async fn the_per_ip_limit_refuses_loudly_when_the_peer_address_is_unknown() {
    let _alone = crate::common::alone().await;
    let mut config = ConnectionConfig::default();
    config.max_connections_per_ip = Some(1);
    let addr = axum_serve(&app(config)).await;
    let err = connect_with(addr, &[]).await.unwrap_err();
    let TestError::WebSocket(WsError::Http(response)) = err else {
        panic!("expected an HTTP refusal, got {err}");
    };
    assert_eq!(response.status().as_u16(), 500);
    let body = String::from_utf8_lossy(response.body().as_deref().unwrap_or_default());
    assert!(
        body.contains("into_make_service_with_connect_info"),
        "{body}"
    );
}

async fn whoami(client: &mut TestClient) -> serde_json::Value {
    client.emit("whoami", &()).await.unwrap();
    client.expect("whoami").await.unwrap()
}

#[tokio::test]
async fn behind_a_trusted_proxy_the_per_ip_limit_counts_forwarded_addresses() {
    let _alone = crate::common::alone().await;
    let mut config = ConnectionConfig::default();
    config.max_connections_per_ip = Some(1);
    // The test's clients connect from 127.0.0.1: they play the proxy.
    config.trusted_proxies = Some(TrustedProxies::new(["127.0.0.1/32".parse().unwrap()]));
    let server = TestServer::start(app(config)).await.unwrap();
    let xff = "x-forwarded-for";
    let mut first = connect_with(server.addr(), &[(xff, "6.6.6.6, 203.0.113.1")])
        .await
        .unwrap();
    assert_eq!(whoami(&mut first).await, json!("203.0.113.1"));
    let mut second = connect_with(server.addr(), &[(xff, "203.0.113.2")])
        .await
        .unwrap();
    assert_eq!(whoami(&mut second).await, json!("203.0.113.2"));
    let err = connect_with(server.addr(), &[(xff, "203.0.113.1")])
        .await
        .unwrap_err();
    assert_eq!(status_of(err), 429);
}

#[tokio::test]
async fn forwarded_headers_from_untrusted_peers_are_ignored() {
    let _alone = crate::common::alone().await;
    let mut config = ConnectionConfig::default();
    config.max_connections_per_ip = Some(1);
    let server = TestServer::start(app(config)).await.unwrap();
    let xff = "x-forwarded-for";
    let mut first = connect_with(server.addr(), &[(xff, "203.0.113.1")])
        .await
        .unwrap();
    assert_eq!(whoami(&mut first).await, json!("127.0.0.1"));
    let err = connect_with(server.addr(), &[(xff, "203.0.113.2")])
        .await
        .unwrap_err();
    assert_eq!(status_of(err), 429);
}

// Item 9: origins.

#[tokio::test]
async fn a_foreign_origin_is_refused_by_default_and_the_own_origin_accepted() {
    let _alone = crate::common::alone().await;
    let server = TestServer::start(app(ConnectionConfig::default()))
        .await
        .unwrap();
    let err = connect_with(server.addr(), &[("origin", "http://evil.example")])
        .await
        .unwrap_err();
    assert_eq!(status_of(err), 403);
    let err = connect_with(server.addr(), &[("origin", "null")])
        .await
        .unwrap_err();
    assert_eq!(status_of(err), 403);
    // The page the server itself served (tungstenite's Host is the URL's authority).
    let own = format!("http://{}", server.addr());
    let mut same = connect_with(server.addr(), &[("origin", &own)])
        .await
        .unwrap();
    same.emit("echo", &4).await.unwrap();
    assert_eq!(same.expect("echo").await.unwrap(), json!(4));
    // Not a browser: no Origin.
    server.connect("/hostile-handshake").await.unwrap();
}

#[tokio::test]
async fn socketio_refuses_a_foreign_origin_by_default() {
    let _alone = crate::common::alone().await;
    let app = app(ConnectionConfig::default());
    let (socketio, _io) = SocketIoTransport::new().mount(&app);
    let server = TestServer::start_router(app, socketio).await.unwrap();
    let url = format!(
        "ws://{}/socket.io/?EIO=4&transport=websocket",
        server.addr()
    );
    let connect = |origin: String| {
        let url = url.clone();
        async move {
            let mut request = url.into_client_request().unwrap();
            request
                .headers_mut()
                .insert("origin", HeaderValue::from_str(&origin).unwrap());
            let (mut ws, _) = tokio_tungstenite::connect_async(request).await.unwrap();
            use futures_util::{SinkExt, StreamExt};
            let open = tokio::time::timeout(TIMEOUT, ws.next()).await.unwrap();
            assert!(matches!(open, Some(Ok(Message::Text(t))) if t.starts_with('0')));
            ws.send(Message::text("40/hostile-handshake,"))
                .await
                .unwrap();
            // The first Socket.IO packet, past Engine.IO's pings.
            loop {
                match tokio::time::timeout(TIMEOUT, ws.next()).await.unwrap() {
                    Some(Ok(Message::Text(text))) if text.as_str() == "2" => {
                        ws.send(Message::text("3")).await.unwrap();
                    }
                    Some(Ok(Message::Text(text))) => return text.to_string(),
                    other => panic!("expected a packet, got {other:?}"),
                }
            }
        }
    };
    let refused = connect("http://evil.example".into()).await;
    assert!(refused.starts_with("44/hostile-handshake,"), "{refused}");
    assert!(refused.contains("Origin not allowed"), "{refused}");
    let accepted = connect(format!("http://{}", server.addr())).await;
    assert!(accepted.starts_with("40/hostile-handshake,"), "{accepted}");
}

#[tokio::test]
async fn any_origin_never_authenticates_a_cross_origin_request_by_its_cookie() {
    let _alone = crate::common::alone().await;
    let mut config = ConnectionConfig::default();
    config.allowed_origins = Origins::Any;
    let app = GatewayApp::new()
        .config(config)
        .authenticate_all(TokenT)
        .gateway::<Handshaken>()
        .build()
        .unwrap();
    let server = TestServer::start(app).await.unwrap();
    let evil = ("origin", "http://evil.example");
    let cookie = ("cookie", "token=t");
    // The browser of a logged-in user, on another site's page: its cookie is not the page's.
    let err = connect_with(server.addr(), &[evil, cookie])
        .await
        .unwrap_err();
    assert_eq!(status_of(err), 401);
    // A token the page holds itself is fine, from any origin.
    let mut page = connect_to(server.addr(), "?token=t", &[evil, cookie])
        .await
        .unwrap();
    page.emit("echo", &5).await.unwrap();
    assert_eq!(page.expect("echo").await.unwrap(), json!(5));
    // The server's own pages and non-browser clients keep cookie authentication.
    let own = format!("http://{}", server.addr());
    connect_with(server.addr(), &[("origin", &own), cookie])
        .await
        .unwrap();
    connect_with(server.addr(), &[cookie]).await.unwrap();
}
