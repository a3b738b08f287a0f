//! The chat example, attacked as people copy it: a huge username at login, history filled
//! with large messages or spread over many rooms, and tokens signed with the development
//! secret.

use ::chat::auth::{AuthService, DEVELOPMENT_SECRET, MAX_USERNAME_CHARS};
use ::chat::config::{Config, ConfigError};
use clap::Parser;
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use ws_gateway_axum::test_client::{TestClient, TestServer};
use ws_gateway_core::ConnectionConfig;

use crate::common::rss_kib;

const SECRET: &str = "hostile-chat-secret";

/// The chat in its demo mode (any username, password `password`), served as `main` does.
async fn demo_server(config: ConnectionConfig) -> TestServer {
    let auth = AuthService::new(SECRET);
    let app = ::chat::app_with(auth.clone())
        .config(config)
        .build()
        .unwrap();
    let router = ::chat::router(&app, auth);
    TestServer::start_router(app, router).await.unwrap()
}

/// `POST path` with a JSON body: (status, body).
async fn post(server: &TestServer, path: &str, body: &Value) -> (u16, Value) {
    gateway_tests::post_json(server.addr(), path, body).await
}

async fn login(server: &TestServer, username: &str) -> (u16, Value) {
    post(
        server,
        "/auth/login",
        &json!({"username": username, "password": "password"}),
    )
    .await
}

/// The longest username this server's login accepts, among a huge one and the bound.
async fn longest_accepted_login(server: &TestServer) -> (String, String) {
    for len in [200_000, MAX_USERNAME_CHARS] {
        let username = "u".repeat(len);
        let (status, body) = login(server, &username).await;
        if status == 200 {
            return (username, body["token"].as_str().unwrap().to_owned());
        }
    }
    panic!("no username accepted");
}

/// A client of `/chat` with the token in `Authorization` (a long token does not fit in a URI).
async fn chat_client(server: &TestServer, token: &str) -> TestClient {
    let mut request = server.url("/chat").into_client_request().unwrap();
    request.headers_mut().insert(
        "authorization",
        HeaderValue::from_str(&format!("Bearer {token}")).unwrap(),
    );
    let (ws, _) = tokio_tungstenite::connect_async(request).await.unwrap();
    let mut client = TestClient::from_stream(ws);
    // The chat has recovery on: every connection begins with its session.
    client.expect("session").await.unwrap();
    client
}

#[tokio::test]
async fn a_200000_character_username_is_refused_at_login() {
    let _alone = crate::common::alone().await;
    let server = demo_server(ConnectionConfig::default()).await;
    let (status, body) = login(&server, &"u".repeat(200_000)).await;
    assert_eq!(
        status, 400,
        "a token for a 200,000-character name was issued"
    );
    assert_eq!(body["message"], "Username must be 1 to 64 characters");
    // A username at the bound still logs in.
    let (status, body) = login(&server, &"u".repeat(MAX_USERNAME_CHARS)).await;
    assert_eq!(status, 200, "{body}");
}

/// 1,000 messages of 500 characters from the longest username login accepts, spread over
/// 20 rooms (50 each, the per-room window), then disconnect: what the history keeps is
/// bounded by the username and text bounds. Before the bound: +191 MB kept.
#[tokio::test]
async fn large_messages_then_disconnect_keep_memory_bounded() {
    let _alone = crate::common::alone().await;
    let server = demo_server(ConnectionConfig::default()).await;
    let before = rss_kib();
    let (username, token) = longest_accepted_login(&server).await;
    let mut client = chat_client(&server, &token).await;
    let text = "x".repeat(500);
    for room in 0..20 {
        let room = format!("big-{room}");
        client.emit("join", &json!({ "room": room })).await.unwrap();
        client.expect("joined").await.unwrap();
        for _ in 0..50 {
            client
                .emit("message", &json!({ "room": room, "text": text }))
                .await
                .unwrap();
            assert_eq!(client.expect("message").await.unwrap()["from"], username);
        }
    }
    client.close().await.unwrap();
    let grown_mib = rss_kib().saturating_sub(before) / 1024;
    eprintln!("1,000 large messages then disconnect: RSS +{grown_mib} MiB");
    assert!(grown_mib < 64, "RSS grew by {grown_mib} MiB");
}

/// 20,000 rooms with one message each: only the most recently written rooms keep their
/// history. Before the bound: +28.6 MB kept, every room remembered.
#[tokio::test]
async fn twenty_thousand_rooms_keep_history_memory_bounded() {
    let _alone = crate::common::alone().await;
    const ROOMS: usize = 20_000;
    const BATCH: usize = 100;
    let mut config = ConnectionConfig::default();
    config.rate_limit = None; // many clients could do the same; one is enough here
    let server = demo_server(config).await;
    let before = rss_kib();
    let (_, token) = login(&server, "alice").await;
    let mut client = chat_client(&server, token["token"].as_str().unwrap()).await;
    for batch in (0..ROOMS).step_by(BATCH) {
        for room in batch..batch + BATCH {
            let room = format!("room-{room}");
            client.emit("join", &json!({ "room": room })).await.unwrap();
            client
                .emit("message", &json!({ "room": room, "text": "hello" }))
                .await
                .unwrap();
            client
                .emit("leave", &json!({ "room": room }))
                .await
                .unwrap();
        }
        for _ in 0..BATCH {
            client.expect("joined").await.unwrap();
            client.expect("message").await.unwrap();
            client.expect("left").await.unwrap();
        }
    }
    let grown_mib = rss_kib().saturating_sub(before) / 1024;
    eprintln!("{ROOMS} rooms with one message each: RSS +{grown_mib} MiB");

    // The newest room kept its message; the oldest was evicted.
    let newest = format!("room-{}", ROOMS - 1);
    client
        .emit("history", &json!({ "room": newest }))
        .await
        .unwrap();
    assert_eq!(client.expect("message").await.unwrap()["room"], newest);
    client
        .emit("history", &json!({ "room": "room-0" }))
        .await
        .unwrap();
    // History of an evicted room is empty: the next frame answers the next request.
    client.emit("identity", &7).await.unwrap();
    let next = client.recv().await.unwrap();
    assert_eq!((next.event.as_str(), next.data), ("identity", json!(7)));
    assert!(grown_mib < 32, "RSS grew by {grown_mib} MiB");
}

/// With `CHAT_USERS` set and no `JWT_SECRET`, the server would sign with the development
/// secret, public in the source: it refuses to start (`main` exits with this error).
#[test]
fn configured_users_without_a_secret_refuse_to_start() {
    let config = Config::try_parse_from(["chat", "--users", "alice:wonderland"]).unwrap();
    let err = config.auth.service().unwrap_err();
    assert_eq!(err, ConfigError::DevelopmentSecretWithUsers);
    assert!(err.to_string().contains("set JWT_SECRET"), "{err}");
}

/// A server configured as it must be now: a token forged with the development secret for a
/// configured user gets HTTP 401 before the upgrade; the user's real login works.
#[tokio::test]
async fn a_token_forged_with_the_development_secret_is_refused() {
    let _alone = crate::common::alone().await;
    let config = Config::try_parse_from([
        "chat",
        "--users",
        "alice:wonderland",
        "--jwt-secret",
        "a-real-secret",
    ])
    .unwrap();
    let auth = config.auth.service().unwrap();
    let app = ::chat::app_with_services(auth.clone(), config.history.service())
        .build()
        .unwrap();
    let router = ::chat::router(&app, auth);
    let server = TestServer::start_router(app, router).await.unwrap();
    let forged = AuthService::new(DEVELOPMENT_SECRET).issue("alice").unwrap();
    let err = TestClient::connect(&format!("{}?token={forged}", server.url("/chat")))
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("401"), "{err}");

    let (status, body) = post(
        &server,
        "/auth/login",
        &json!({"username": "alice", "password": "wonderland"}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let mut client = chat_client(&server, body["token"].as_str().unwrap()).await;
    client.emit("whoami", &()).await.unwrap();
    assert_eq!(
        client.expect("whoami").await.unwrap()["data"]["username"],
        "alice"
    );
}
