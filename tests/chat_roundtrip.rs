//! The chat example over real sockets: every event of the README, several clients.

use chat::chat::HISTORY_LIMIT;
use gateway_axum::test_client::{TestClient, TestServer};
use serde_json::json;

async fn server() -> TestServer {
    // `GatewayApp::new()` finds the chat gateway through the registry: it is declared in
    // another crate (the example), which is what most apps look like.
    TestServer::start(chat::app().build().unwrap()).await.unwrap()
}

async fn joined(server: &TestServer, room: &str) -> (TestClient, String) {
    let mut client = server.connect("/chat").await.unwrap();
    client.emit("join", &json!({ "room": room })).await.unwrap();
    assert_eq!(client.expect("joined").await.unwrap(), json!({ "room": room }));
    // The client learns its id from the `from` of its own message.
    client
        .emit("message", &json!({ "room": room, "text": "hello" }))
        .await
        .unwrap();
    let id = client.expect("message").await.unwrap()["from"]
        .as_str()
        .unwrap()
        .to_owned();
    (client, id)
}

#[tokio::test]
async fn events_echoes_its_data() {
    let server = server().await;
    let mut client = server.connect("/chat").await.unwrap();
    let data = json!({"nested": [1, "two", {"three": null}]});
    client.emit("events", &data).await.unwrap();
    assert_eq!(client.expect("events").await.unwrap(), data);
}

#[tokio::test]
async fn identity_replies_under_its_event_with_the_request_id() {
    let server = server().await;
    let mut client = server.connect("/chat").await.unwrap();
    client.emit_with_id("identity", &42, "req-1").await.unwrap();
    let frame = client.expect_frame("identity").await.unwrap();
    assert_eq!(frame.data, json!(42));
    assert_eq!(frame.id, Some(json!("req-1")));
}

#[tokio::test]
async fn room_messages_reach_members_only_sender_included() {
    let server = server().await;
    let (mut alice, alice_id) = joined(&server, "rust").await;
    let (mut bob, _) = joined(&server, "rust").await;
    let (mut carol, _) = joined(&server, "elsewhere").await;

    alice
        .emit("message", &json!({"room": "rust", "text": "hi all"}))
        .await
        .unwrap();
    let expected = json!({"room": "rust", "text": "hi all", "from": alice_id});
    assert_eq!(alice.expect("message").await.unwrap(), expected);
    assert_eq!(bob.expect("message").await.unwrap(), expected);

    // Carol is in another room: the next frame she gets is the answer to her own request.
    carol.emit("identity", &1).await.unwrap();
    assert_eq!(carol.recv().await.unwrap().event, "identity");
}

#[tokio::test]
async fn leave_stops_delivery() {
    let server = server().await;
    let (mut alice, _) = joined(&server, "r").await;
    let (mut bob, _) = joined(&server, "r").await;
    bob.emit("leave", &json!({"room": "r"})).await.unwrap();
    assert_eq!(bob.expect("left").await.unwrap(), json!({"room": "r"}));

    alice
        .emit("message", &json!({"room": "r", "text": "anyone?"}))
        .await
        .unwrap();
    alice.expect("message").await.unwrap();
    bob.emit("identity", &2).await.unwrap();
    assert_eq!(bob.recv().await.unwrap().event, "identity");
}

#[tokio::test]
async fn sending_to_a_room_not_joined_is_an_exception() {
    let server = server().await;
    let mut client = server.connect("/chat").await.unwrap();
    client
        .emit("message", &json!({"room": "secret", "text": "x"}))
        .await
        .unwrap();
    let err = client.expect("exception").await.unwrap();
    assert_eq!(err["message"], r#"Join room "secret" before sending to it"#);
    assert_eq!(err["cause"]["pattern"], "message");
}

#[tokio::test]
async fn history_streams_the_last_fifty_messages_as_message_events() {
    let server = server().await;
    let (mut alice, alice_id) = joined(&server, "log").await;
    for n in 0..55 {
        alice
            .emit("message", &json!({"room": "log", "text": n.to_string()}))
            .await
            .unwrap();
    }
    for _ in 0..55 {
        alice.expect("message").await.unwrap();
    }

    let mut reader = server.connect("/chat").await.unwrap();
    reader.emit("history", &json!({"room": "log"})).await.unwrap();
    let mut texts = Vec::new();
    for _ in 0..HISTORY_LIMIT {
        let message = reader.expect("message").await.unwrap();
        assert_eq!(message["from"], alice_id.as_str());
        texts.push(message["text"].as_str().unwrap().to_owned());
    }
    // "hello" from `joined` and 0..=4 fell out of the window of 50.
    let expected: Vec<String> = (5..55).map(|n| n.to_string()).collect();
    assert_eq!(texts, expected);
}
