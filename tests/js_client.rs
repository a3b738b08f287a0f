//! `ws-gateway.js`, the plain protocol's JavaScript client (`gateway-axum/client`), in node
//! on npm's `ws` package (`tests/node/gateway_client.mjs`), against the chat example behind
//! a proxy that can cut the network: requests through `emitWithAck` and their exceptions,
//! the server's questions answered, and a drop recovered by the client itself, with every
//! message sent meanwhile delivered once, in order.

use std::time::Duration;

use chat::auth::AuthService;
use gateway_tests::{CutProxy, NodeScript};
use serde_json::{Value, json};
use ws_gateway_axum::test_client::{TestClient, TestServer};

const TIMEOUT: Duration = Duration::from_secs(10);

fn is(kind: &'static str) -> impl Fn(&Value) -> bool {
    move |r| r["type"] == kind
}

fn event(name: &'static str) -> impl Fn(&Value) -> bool {
    move |r| r["type"] == "event" && r["event"] == name
}

async fn rust_client(server: &TestServer, auth: &AuthService, user: &str) -> TestClient {
    let token = auth.issue(user).unwrap();
    let url = format!("{}?token={token}", server.url("/chat"));
    let mut client = TestClient::connect(&url).await.unwrap();
    client.expect("session").await.unwrap();
    client
        .emit_with_id("join", &json!({"room": "lobby"}), 1)
        .await
        .unwrap();
    client.expect("joined").await.unwrap();
    client
}

#[tokio::test]
async fn the_js_client_requests_answers_and_recovers_across_a_drop() {
    let auth = AuthService::new("js-client-secret");
    let app = chat::app_with(auth.clone()).build().unwrap();
    let router = chat::router(&app, auth.clone());
    let server = TestServer::start_router(app, router).await.unwrap();
    let proxy = CutProxy::start(server.addr()).await;

    let token = auth.issue("alice").unwrap();
    let mut alice = NodeScript::spawn("gateway_client.mjs");
    alice
        .send(json!({"cmd": "connect", "url": format!("ws://{}/chat?token={token}", proxy.addr())}))
        .await;
    let connected = alice.next_where(TIMEOUT, is("connect")).await;
    assert_eq!(connected["recovered"], false, "{connected}");

    // emitWithAck: the reply's data; an exception rejects with its data.
    alice
        .send(json!({"cmd": "request", "event": "message", "data": {"room": "lobby", "text": "early"}}))
        .await;
    let failed = alice.next_where(TIMEOUT, is("failed")).await;
    assert_eq!(failed["name"], "GatewayError", "{failed}");
    assert_eq!(failed["data"]["code"], "NOT_IN_ROOM", "{failed}");
    alice
        .send(json!({"cmd": "request", "event": "join", "data": {"room": "lobby"}}))
        .await;
    let joined = alice.next_where(TIMEOUT, is("reply")).await;
    assert_eq!(joined["data"]["room"], "lobby", "{joined}");

    // The server's question, answered through the listener's `answer`.
    alice
        .send(json!({"cmd": "answer", "event": "question", "value": "from node"}))
        .await;
    let mut bob = rust_client(&server, &auth, "bob").await;
    bob.send_text(
        json!({"event": "poll", "data": {"room": "lobby", "question": "Works?"}, "id": 2})
            .to_string(),
    )
    .await
    .unwrap();
    let asked = alice.next_where(TIMEOUT, event("question")).await;
    assert_eq!(asked["asked"], true, "{asked}");
    let poll = bob.expect_frame("poll").await.unwrap();
    assert_eq!(
        poll.data,
        json!({"answers": [{"from": "alice", "answer": "from node"}], "unanswered": 0})
    );

    // The network drops: the client notices, and retries with backoff while it is away.
    proxy.cut();
    let dropped = alice.next_where(TIMEOUT, is("disconnect")).await;
    assert_eq!(dropped["reconnecting"], true, "{dropped}");
    alice.next_where(TIMEOUT, is("reconnect_attempt")).await;
    let texts: Vec<String> = (1..=5).map(|n| format!("while away {n}")).collect();
    for (n, text) in texts.iter().enumerate() {
        bob.emit_with_id("message", &json!({"room": "lobby", "text": text}), n + 10)
            .await
            .unwrap();
        bob.expect("message").await.unwrap();
    }
    proxy.restore();
    let back = alice.next_where(TIMEOUT, is("connect")).await;
    assert_eq!(back["recovered"], true, "{back}");

    // Everything sent while away, once each, in order, then live traffic.
    bob.emit("message", &json!({"room": "lobby", "text": "live"}))
        .await
        .unwrap();
    let mut received = Vec::new();
    loop {
        let message = alice.next_where(TIMEOUT, event("message")).await;
        let text = message["data"]["text"].as_str().unwrap().to_owned();
        assert!(message["offset"].is_string(), "{message}");
        if text == "live" {
            break;
        }
        received.push(text);
    }
    assert_eq!(received, texts);
    alice.send(json!({"cmd": "close"})).await;
}
