//! The MessagePack adapter over a real WebSocket client (tokio-tungstenite), next to JSON
//! clients of the same app.
// Helpers fail the test the way the tests do.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use msgpack_adapter::demo::RoomsGateway;
use msgpack_adapter::{Message, MsgPackCodec, MsgPackTransport};
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message as WsMessage;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};
use ws_gateway::prelude::*;
use ws_gateway::test_client::TestServer;

type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

async fn server() -> TestServer {
    let app = GatewayApp::new().gateway::<RoomsGateway>().build().unwrap();
    let router = app.clone().into_router().merge(
        MsgPackTransport::new(MsgPackCodec)
            .at("/msgpack")
            .mount(&app),
    );
    TestServer::start_router(app, router).await.unwrap()
}

async fn connect(server: &TestServer) -> Socket {
    let (socket, _) = tokio_tungstenite::connect_async(server.url("/msgpack/rooms"))
        .await
        .unwrap();
    socket
}

async fn send(socket: &mut Socket, message: &Message) {
    let bytes = message.to_bytes().unwrap();
    socket.send(WsMessage::Binary(bytes.into())).await.unwrap();
}

/// The next binary message, decoded.
async fn recv(socket: &mut Socket) -> Message {
    loop {
        let frame = tokio::time::timeout(Duration::from_secs(5), socket.next())
            .await
            .expect("timed out")
            .expect("closed")
            .unwrap();
        match frame {
            WsMessage::Binary(bytes) => return Message::from_bytes(&bytes).unwrap(),
            WsMessage::Ping(_) | WsMessage::Pong(_) => {}
            other => panic!("expected a binary frame, got {other:?}"),
        }
    }
}

#[tokio::test]
async fn replies_come_back_as_messagepack() {
    let server = server().await;
    let mut socket = connect(&server).await;

    send(&mut socket, &Message::new("echo", json!({"n": [1, 2]}))).await;
    assert_eq!(
        recv(&mut socket).await,
        Message::new("echo", json!({"n": [1, 2]}))
    );

    let mut add = Message::new("add", json!({"a": 2, "b": 40}));
    add.id = Some(json!(7));
    send(&mut socket, &add).await;
    let reply = recv(&mut socket).await;
    assert_eq!(reply.event, "add");
    assert_eq!(reply.data, json!(42));
    assert_eq!(reply.id, Some(json!(7)));

    send(&mut socket, &Message::new("join", json!("r"))).await;
    assert_eq!(recv(&mut socket).await, Message::new("joined", json!("r")));
}

#[tokio::test]
async fn exceptions_are_the_json_adapters_in_messagepack() {
    let server = server().await;
    let mut socket = connect(&server).await;

    send(&mut socket, &Message::new("add", json!({"a": 1}))).await;
    let exception = recv(&mut socket).await;
    assert_eq!(exception.event, "exception");
    assert_eq!(exception.data["status"], "error");
    assert!(
        exception.data["message"]
            .as_str()
            .unwrap()
            .starts_with("Invalid message body: missing field `b`"),
        "{exception:?}"
    );
    assert_eq!(
        exception.data["cause"],
        json!({"pattern": "add", "data": {"a": 1}})
    );

    // The same request on the JSON adapter gets the same payload.
    let mut json_client = server.connect("/rooms").await.unwrap();
    json_client.emit("add", &json!({"a": 1})).await.unwrap();
    assert_eq!(
        json_client.expect("exception").await.unwrap(),
        exception.data
    );

    // Not MessagePack, a text frame: answered, the connection stays open.
    socket
        .send(WsMessage::Binary(vec![0xc1].into()))
        .await
        .unwrap();
    let malformed = recv(&mut socket).await;
    assert!(
        malformed.data["message"]
            .as_str()
            .unwrap()
            .starts_with("Malformed MessagePack"),
        "{malformed:?}"
    );
    socket
        .send(WsMessage::Text("{\"event\":\"echo\"}".into()))
        .await
        .unwrap();
    let text = recv(&mut socket).await;
    assert_eq!(text.event, "exception");
    assert!(
        text.data["message"]
            .as_str()
            .unwrap()
            .starts_with("Text frames are not supported"),
        "{text:?}"
    );
    send(
        &mut socket,
        &Message::new("echo", Value::from("still here")),
    )
    .await;
    assert_eq!(recv(&mut socket).await.data, json!("still here"));
}

#[tokio::test]
async fn a_room_holds_json_and_messagepack_clients() {
    let server = server().await;
    let mut packed = connect(&server).await;
    let mut json_client = server.connect("/rooms").await.unwrap();

    send(&mut packed, &Message::new("join", json!("mixed"))).await;
    assert_eq!(recv(&mut packed).await.event, "joined");
    json_client.emit("join", &"mixed").await.unwrap();
    json_client.expect("joined").await.unwrap();

    json_client
        .emit("say", &json!({"room": "mixed", "text": "from json"}))
        .await
        .unwrap();
    assert_eq!(
        recv(&mut packed).await,
        Message::new("said", json!("from json"))
    );
    assert_eq!(
        json_client.expect("said").await.unwrap(),
        json!("from json")
    );

    send(
        &mut packed,
        &Message::new("say", json!({"room": "mixed", "text": "from msgpack"})),
    )
    .await;
    assert_eq!(
        json_client.expect("said").await.unwrap(),
        json!("from msgpack")
    );
    assert_eq!(
        recv(&mut packed).await,
        Message::new("said", json!("from msgpack"))
    );

    // Closing runs the disconnect binding: the room forgets the client.
    packed.close(None).await.unwrap();
    let rooms = server.app().server("/rooms").unwrap();
    for _ in 0..100 {
        if rooms.client_count() == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(rooms.client_count(), 1);
    assert_eq!(rooms.room_members("mixed").len(), 1);
}
