//! Metrics of the chat example over its Prometheus endpoint, after real traffic.

use std::sync::OnceLock;

use chat::auth::AuthService;
use metrics_exporter_prometheus::PrometheusHandle;
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use ws_gateway_axum::prelude::*;
use ws_gateway_axum::test_client::{TestClient, TestServer};

/// The process's one recorder, installed before the first app is built.
fn recorder() -> PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE
        .get_or_init(|| chat::metrics::install().unwrap())
        .clone()
}

async fn get(server: &TestServer, path: &str) -> String {
    let mut stream = tokio::net::TcpStream::connect(server.addr()).await.unwrap();
    let request = format!("GET {path} HTTP/1.1\r\nhost: localhost\r\nconnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).await.unwrap();
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    response
}

#[tokio::test]
async fn prometheus_counts_connections_messages_errors_and_latency() {
    let handle = recorder();
    let auth = AuthService::new("observability-secret");
    let app = chat::app_with(auth.clone()).build().unwrap();
    let router = chat::router(&app, auth.clone()).merge(chat::metrics::routes(handle));
    let server = TestServer::start_router(app, router).await.unwrap();

    let token = auth.issue("ann").unwrap();
    let mut client = TestClient::connect(&format!("{}?token={token}", server.url("/chat")))
        .await
        .unwrap();
    client.expect("session").await.unwrap();
    for n in 0..3 {
        client.emit("identity", &n).await.unwrap();
        client.expect("identity").await.unwrap();
    }
    client.emit("nope", &json!(null)).await.unwrap();
    client.expect("exception").await.unwrap();
    client
        .emit("message", &json!({"room": "", "text": ""}))
        .await
        .unwrap();
    client.expect("exception").await.unwrap();

    let text = get(&server, "/metrics").await;
    for line in [
        r#"gateway_connections{gateway="/chat"} 1"#,
        r#"gateway_messages_received_total{gateway="/chat",event="identity"} 3"#,
        r#"gateway_messages_received_total{gateway="/chat",event="unknown"} 1"#,
        r#"gateway_errors_total{gateway="/chat",kind="unknown_event"} 1"#,
        r#"gateway_errors_total{gateway="/chat",kind="validation"} 1"#,
        // The chat has recovery on: a connection without `?pid=` opens a fresh session.
        r#"gateway_sessions_total{gateway="/chat",outcome="fresh"} 1"#,
    ] {
        assert!(text.contains(line), "missing {line} in\n{text}");
    }
    assert!(
        text.contains(
            r#"gateway_handler_duration_seconds{gateway="/chat",event="identity",quantile="0.5"}"#
        ),
        "{text}"
    );
    let sent: u64 = text
        .lines()
        .find(|l| l.starts_with(r#"gateway_messages_sent_total{gateway="/chat"}"#))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap();
    assert_eq!(
        sent, 6,
        "the session frame, three replies and two exceptions"
    );
}

#[websocket_gateway(path = "/positions")]
struct Positions;

#[websocket_gateway]
impl Positions {
    /// `n` volatile emits while the session is busy here (it drains the queue once the
    /// handler returns): those past the queue's capacity are dropped.
    #[subscribe("burst")]
    fn burst(&self, client: Client, n: u32) -> u32 {
        for i in 0..n {
            client.volatile().emit("pos", &i).unwrap();
        }
        n
    }
}

#[tokio::test]
async fn dropped_volatile_frames_are_counted() {
    let handle = recorder();
    let mut config = ws_gateway_core::ConnectionConfig::default();
    config.outbound_queue = 4;
    let app = GatewayApp::new()
        .config(config)
        .gateway::<Positions>()
        .build()
        .unwrap();
    let router = (&app).into_router().merge(chat::metrics::routes(handle));
    let server = TestServer::start_router(app, router).await.unwrap();
    let mut client = server.connect("/positions").await.unwrap();
    client.emit("burst", &10).await.unwrap();
    assert_eq!(client.expect("burst").await.unwrap(), json!(10));

    let text = get(&server, "/metrics").await;
    let line = r#"gateway_messages_dropped_total{gateway="/positions"} 6"#;
    assert!(text.contains(line), "missing {line} in\n{text}");
}
