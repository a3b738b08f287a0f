//! The JSON wire protocol over real sockets: replies, ids, and a precise exception for
//! every kind of bad input, with the connection and the other clients unharmed.

use std::collections::BTreeMap;
use std::time::Duration;

use futures_util::{Stream, StreamExt};
use serde::Deserialize;
use serde_json::{Value, json};
use ws_gateway_axum::prelude::*;
use ws_gateway_axum::test_client::{TestClient, TestError, TestServer};

#[derive(Debug, Deserialize)]
struct Point {
    x: i32,
    y: i32,
}

struct NotSerializable;

impl serde::Serialize for NotSerializable {
    fn serialize<S: serde::Serializer>(&self, _: S) -> Result<S::Ok, S::Error> {
        Err(serde::ser::Error::custom("refuses to serialize"))
    }
}

#[websocket_gateway(path = "/proto")]
struct ProtoGateway;

#[websocket_gateway]
impl ProtoGateway {
    #[subscribe("echo")]
    fn echo(&self, data: Value) -> Value {
        data
    }

    #[subscribe("sum")]
    async fn sum(&self, point: Point) -> i32 {
        tokio::task::yield_now().await;
        point.x + point.y
    }

    #[subscribe("nothing")]
    fn nothing(&self) {}

    #[subscribe("maybe")]
    fn maybe(&self, some: bool) -> Option<&'static str> {
        some.then_some("here")
    }

    #[subscribe("fail")]
    fn fail(&self, code: u32) -> Result<u32, WsException> {
        Err(WsException::new("Room is full").with("code", code))
    }

    #[subscribe("fail-async")]
    async fn fail_async(&self) -> Result<(), String> {
        Err("async failure".to_owned())
    }

    #[subscribe("panic")]
    fn panic(&self) -> u32 {
        panic!("handler bug")
    }

    #[subscribe("panic-async")]
    async fn panic_async(&self) -> u32 {
        tokio::task::yield_now().await;
        panic!("async handler bug")
    }

    #[subscribe("unserializable")]
    fn unserializable(&self) -> NotSerializable {
        NotSerializable
    }

    #[subscribe("bad-map")]
    fn bad_map(&self) -> BTreeMap<(u8, u8), u8> {
        BTreeMap::from([((1, 2), 3)])
    }

    #[subscribe("count")]
    fn count(&self, n: u32) -> impl Stream<Item = u32> + use<> {
        futures_util::stream::iter(0..n)
    }

    #[subscribe("slow-count")]
    async fn slow_count(&self, n: u32) -> impl Stream<Item = WsResponse<u32>> + use<> {
        futures_util::stream::iter(0..n).then(|i| async move {
            tokio::time::sleep(Duration::from_millis(1)).await;
            WsResponse::new("tick", i)
        })
    }

    #[subscribe("kick")]
    fn kick(&self) -> Result<(), WsException> {
        Err(WsException::new("Goodbye").close(4000, "kicked"))
    }

    #[subscribe("emit-then-reply")]
    fn emit_then_reply(&self, client: Client) -> &'static str {
        client.emit("first", &1).unwrap();
        "second"
    }
}

async fn server() -> TestServer {
    let app = GatewayApp::new().gateway::<ProtoGateway>().build().unwrap();
    TestServer::start(app).await.unwrap()
}

async fn exception_for(client: &mut TestClient, text: &str) -> Value {
    client.send_text(text).await.unwrap();
    let frame = client.recv().await.unwrap();
    assert_eq!(frame.event, "exception", "for {text}: {frame:?}");
    assert_eq!(frame.data["status"], "error");
    frame.data
}

/// Proves the connection is still open and in order: the next frame is this echo.
async fn still_works(client: &mut TestClient) {
    client.emit("echo", &"alive").await.unwrap();
    let frame = client.recv().await.unwrap();
    assert_eq!((frame.event.as_str(), frame.data), ("echo", json!("alive")));
}

#[tokio::test]
async fn replies_under_the_request_event() {
    let server = server().await;
    let mut client = server.connect("/proto").await.unwrap();
    client.emit("sum", &json!({"x": 2, "y": 3})).await.unwrap();
    assert_eq!(client.expect("sum").await.unwrap(), json!(5));
    client.emit("maybe", &true).await.unwrap();
    assert_eq!(client.expect("maybe").await.unwrap(), json!("here"));
}

#[tokio::test]
async fn unit_and_none_send_nothing() {
    let server = server().await;
    let mut client = server.connect("/proto").await.unwrap();
    client.emit("nothing", &()).await.unwrap();
    client.emit("maybe", &false).await.unwrap();
    still_works(&mut client).await;
}

#[tokio::test]
async fn ids_are_echoed_in_replies_and_exceptions() {
    let server = server().await;
    let mut client = server.connect("/proto").await.unwrap();
    client.emit_with_id("echo", &1, 17).await.unwrap();
    let reply = client.recv().await.unwrap();
    assert_eq!(reply.id, Some(json!(17)));
    client
        .emit_with_id("fail", &9, json!({"n": "x"}))
        .await
        .unwrap();
    let err = client.recv().await.unwrap();
    assert_eq!(err.event, "exception");
    assert_eq!(err.id, Some(json!({"n": "x"})));
}

#[tokio::test]
async fn every_kind_of_bad_input_gets_one_precise_exception() {
    let server = server().await;
    let mut client = server.connect("/proto").await.unwrap();

    let err = exception_for(&mut client, "{not json").await;
    assert_eq!(
        err,
        json!({"status": "error", "message": "Malformed JSON: key must be a string at line 1 column 2"})
    );

    let err = exception_for(&mut client, r#"{"data": 1}"#).await;
    assert_eq!(err["message"], r#"Invalid frame: missing "event" field"#);
    assert!(err.get("cause").is_none());

    let err = exception_for(&mut client, r#"{"event": 7, "data": 1}"#).await;
    assert_eq!(err["message"], r#"Invalid frame: "event" must be a string"#);

    let err = exception_for(&mut client, r#"["echo", 1]"#).await;
    assert_eq!(
        err["message"],
        r#"Invalid frame: expected a JSON object like {"event": "name", "data": ...}"#
    );

    let err = exception_for(&mut client, r#"{"event": "nope", "data": [1]}"#).await;
    assert_eq!(
        err,
        json!({"status": "error", "message": "Unknown event \"nope\"", "cause": {"pattern": "nope", "data": [1]}})
    );

    let err = exception_for(&mut client, r#"{"event": "sum", "data": {"x": 1}}"#).await;
    assert_eq!(
        err,
        json!({
            "status": "error",
            "message": "Invalid message body: missing field `y` at line 1 column 8",
            "cause": {"pattern": "sum", "data": {"x": 1}}
        })
    );

    client.send_binary(vec![1, 2, 3]).await.unwrap();
    let err = client.recv().await.unwrap();
    assert_eq!(err.event, "exception");
    assert!(
        err.data["message"]
            .as_str()
            .unwrap()
            .starts_with("Binary frames are not supported")
    );

    still_works(&mut client).await;
}

#[tokio::test]
async fn handler_errors_carry_their_fields_and_cause() {
    let server = server().await;
    let mut client = server.connect("/proto").await.unwrap();
    client.emit("fail", &3).await.unwrap();
    assert_eq!(
        client.expect("exception").await.unwrap(),
        json!({"status": "error", "message": "Room is full", "code": 3, "cause": {"pattern": "fail", "data": 3}})
    );
    client.emit("fail-async", &()).await.unwrap();
    assert_eq!(
        client.expect("exception").await.unwrap()["message"],
        "async failure"
    );
    still_works(&mut client).await;
}

#[tokio::test]
async fn panics_and_serialization_failures_are_internal_server_errors() {
    let server = server().await;
    let mut client = server.connect("/proto").await.unwrap();
    for event in ["panic", "panic-async", "unserializable", "bad-map"] {
        client.emit(event, &()).await.unwrap();
        let err = client.expect("exception").await.unwrap();
        assert_eq!(err["message"], "Internal server error", "for {event}");
        assert_eq!(err["cause"]["pattern"], event);
    }
    still_works(&mut client).await;
}

#[tokio::test]
async fn bad_input_leaves_other_clients_alone() {
    let server = server().await;
    let mut bad = server.connect("/proto").await.unwrap();
    let mut good = server.connect("/proto").await.unwrap();
    bad.send_text("garbage").await.unwrap();
    bad.emit("panic", &()).await.unwrap();
    bad.expect("exception").await.unwrap();
    bad.expect("exception").await.unwrap();
    still_works(&mut good).await;
    still_works(&mut bad).await;
}

#[tokio::test]
async fn streams_send_one_frame_per_item_in_order() {
    let server = server().await;
    let mut client = server.connect("/proto").await.unwrap();
    client.emit_with_id("count", &3, 1).await.unwrap();
    for i in 0..3 {
        let frame = client.recv().await.unwrap();
        assert_eq!(
            (frame.event.as_str(), frame.data, frame.id),
            ("count", json!(i), Some(json!(1)))
        );
    }
    client.emit("slow-count", &3).await.unwrap();
    for i in 0..3 {
        assert_eq!(client.expect("tick").await.unwrap(), json!(i));
    }
}

#[tokio::test]
async fn emits_from_a_handler_arrive_before_its_reply() {
    let server = server().await;
    let mut client = server.connect("/proto").await.unwrap();
    client.emit("emit-then-reply", &()).await.unwrap();
    assert_eq!(client.recv().await.unwrap().event, "first");
    assert_eq!(client.recv().await.unwrap().event, "emit-then-reply");
}

#[tokio::test]
async fn an_exception_closes_the_socket_only_when_asked() {
    let server = server().await;
    let mut client = server.connect("/proto").await.unwrap();
    client.emit("kick", &()).await.unwrap();
    assert_eq!(
        client.expect("exception").await.unwrap()["message"],
        "Goodbye"
    );
    let close = client.expect_close().await.unwrap().unwrap();
    assert_eq!(u16::from(close.code), 4000);
    assert_eq!(close.reason.as_str(), "kicked");
}

#[tokio::test]
async fn oversized_messages_close_with_1009() {
    let server = server().await;
    let mut client = server.connect("/proto").await.unwrap();
    let big = "x".repeat(65 * 1024);
    client.emit("echo", &big).await.unwrap();
    match client.expect_close().await {
        Ok(Some(close)) => assert_eq!(u16::from(close.code), 1009),
        other => panic!("expected close 1009, got {other:?}"),
    }
    // The server is unharmed.
    let mut other = server.connect("/proto").await.unwrap();
    still_works(&mut other).await;
}

#[tokio::test]
async fn a_plain_http_request_is_not_upgraded() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    let server = server().await;
    // A plain GET on a gateway's path: refused by the upgrade, not served as a socket.
    let mut tcp = tokio::net::TcpStream::connect(server.addr()).await.unwrap();
    tcp.write_all(b"GET /proto HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut response = Vec::new();
    tokio::time::timeout(Duration::from_secs(5), tcp.read_to_end(&mut response))
        .await
        .unwrap()
        .unwrap();
    let response = String::from_utf8_lossy(&response);
    let status = response.lines().next().unwrap_or_default();
    assert!(
        status.starts_with("HTTP/1.1 4") && !status.starts_with("HTTP/1.1 404"),
        "{response}"
    );
    // A WebSocket handshake on a path no gateway has: 404.
    let err = TestClient::connect(&server.url("/nowhere"))
        .await
        .unwrap_err();
    let TestError::WebSocket(tokio_tungstenite::tungstenite::Error::Http(response)) = err else {
        panic!("expected an HTTP refusal, got {err:?}");
    };
    assert_eq!(response.status(), 404);
}

#[tokio::test]
async fn a_client_close_is_answered_with_a_close_frame() {
    use futures_util::SinkExt;
    use tokio_tungstenite::tungstenite::Message;
    use tokio_tungstenite::tungstenite::protocol::CloseFrame;
    use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

    let server = server().await;
    let mut ws = server.connect("/proto").await.unwrap().into_inner();
    ws.send(Message::Close(Some(CloseFrame {
        code: CloseCode::Normal,
        reason: "bye".into(),
    })))
    .await
    .unwrap();
    // The close handshake completes: the server echoes the close frame (RFC 6455 5.5.1),
    // so browsers see a clean close (wasClean, 1000) rather than 1006.
    let reply = tokio::time::timeout(Duration::from_secs(5), ws.next())
        .await
        .expect("no answer to the close frame");
    match reply {
        Some(Ok(Message::Close(Some(frame)))) => assert_eq!(frame.code, CloseCode::Normal),
        other => panic!("expected the server's close frame, got {other:?}"),
    }
}

/// NestJS's `messageParser`: the e2e suite of @nestjs/websockets sends `["push", data]`.
fn tuple_frame(text: &str) -> Result<ws_gateway_core::Request<'_>, WsException> {
    let (event, data): (std::borrow::Cow<'_, str>, &serde_json::value::RawValue) =
        serde_json::from_str(text)
            .map_err(|err| WsException::new(format!("expected [event, data]: {err}")))?;
    Ok(ws_gateway_core::Request::new(event).with_data(data))
}

#[tokio::test]
async fn a_message_parser_reads_other_shapes_of_frame() {
    let app = GatewayApp::new().gateway::<ProtoGateway>().build().unwrap();
    let router = ws_gateway_axum::JsonTransport::with_message_parser(tuple_frame).mount(&app);
    let server = TestServer::start_router(app, router).await.unwrap();
    let mut client = server.connect("/proto").await.unwrap();
    client
        .send_text(r#"["echo",{"test":"test"}]"#)
        .await
        .unwrap();
    assert_eq!(
        client.expect("echo").await.unwrap(),
        json!({"test": "test"})
    );
    // What the parser refuses is answered with its message, and the socket stays open.
    let err = exception_for(&mut client, r#"{"event":"echo","data":1}"#).await;
    assert!(
        err["message"]
            .as_str()
            .unwrap()
            .starts_with("expected [event, data]: "),
        "{err}"
    );
    client.send_text(r#"["echo",[1]]"#).await.unwrap();
    assert_eq!(client.expect("echo").await.unwrap(), json!([1]));
}
