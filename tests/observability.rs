//! Metrics of the chat example over its Prometheus endpoint, after real traffic.

use chat::auth::AuthService;
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use ws_gateway_axum::test_client::{TestClient, TestServer};

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
    let handle = chat::metrics::install().unwrap();
    let auth = AuthService::new("observability-secret");
    let app = chat::app_with(auth.clone()).build().unwrap();
    let router = chat::router(&app, auth.clone()).merge(chat::metrics::routes(handle));
    let server = TestServer::start_router(app, router).await.unwrap();

    let token = auth.issue("ann").unwrap();
    let mut client = TestClient::connect(&format!("{}?token={token}", server.url("/chat")))
        .await
        .unwrap();
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
    assert_eq!(sent, 5, "three replies and two exceptions");
}
