//! The chat example over real sockets: every event of the README, several clients, each
//! authenticated with a token from the example's own auth service.

use chat::auth::AuthService;
use chat::chat::HISTORY_LIMIT;
use serde_json::{Value, json};
use ws_gateway_axum::test_client::{TestClient, TestServer};

const SECRET: &str = "chat-roundtrip-secret";

fn auth() -> AuthService {
    AuthService::new(SECRET).with_users([
        ("alice", "wonderland"),
        ("bob", "builder"),
        ("carol", "x"),
    ])
}

async fn server() -> TestServer {
    let app = chat::app_with(auth()).build().unwrap();
    let router = chat::router(&app, auth());
    TestServer::start_router(app, router).await.unwrap()
}

/// The chat's gateways are declared in another crate (the example), as in most apps, and
/// `inventory` collects them across the crate boundary: an app that names no gateway gets
/// them from the registry.
#[test]
fn gateways_of_another_crate_are_found_through_the_registry() {
    let registered: Vec<_> = ws_gateway_core::registered()
        .into_iter()
        .map(|descriptor| (descriptor.path, descriptor.name, descriptor.location()))
        .collect();
    for (path, name) in [("/auth", "AuthGateway"), ("/chat", "ChatGateway")] {
        assert!(
            registered
                .iter()
                .any(|(p, n, file)| (*p, *n) == (path, name) && file.contains("examples/chat/")),
            "{name} at {path} is not registered: {registered:?}"
        );
    }
    let app = ws_gateway_core::GatewayApp::new()
        .provide(chat::chat::ChatService::new())
        .provide(auth())
        .build()
        .unwrap();
    assert!(app.server("/chat").is_some());
    assert!(app.server("/auth").is_some());
}

/// A client of `/chat` logged in as `user` (with `?token=`, as browsers do), past its
/// first frame: the chat has connection state recovery on, and every connection begins with
/// a fresh session.
async fn connect_as(server: &TestServer, user: &str) -> TestClient {
    let token = auth().issue(user).unwrap();
    let mut client = TestClient::connect(&format!("{}?token={token}", server.url("/chat")))
        .await
        .unwrap();
    let session = client.expect("session").await.unwrap();
    assert_eq!(session["recovered"], false, "{session}");
    client
}

async fn joined(server: &TestServer, user: &str, room: &str) -> TestClient {
    let mut client = connect_as(server, user).await;
    client.emit("join", &json!({ "room": room })).await.unwrap();
    assert_eq!(
        client.expect("joined").await.unwrap(),
        json!({ "room": room })
    );
    client
}

/// `POST path` with a JSON body: (status, body).
async fn post(server: &TestServer, path: &str, body: &Value) -> (u16, Value) {
    gateway_tests::post_json(server.addr(), path, body).await
}

#[tokio::test]
async fn login_over_http_then_chat_with_the_token() {
    let server = server().await;
    let (status, body) = post(
        &server,
        "/auth/login",
        &json!({"username": "alice", "password": "wonderland"}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let token = body["token"].as_str().unwrap();
    let mut client = TestClient::connect(&format!("{}?token={token}", server.url("/chat")))
        .await
        .unwrap();
    client.emit("whoami", &()).await.unwrap();
    assert_eq!(
        client.expect("whoami").await.unwrap()["data"]["username"],
        "alice"
    );

    let (status, body) = post(
        &server,
        "/auth/login",
        &json!({"username": "alice", "password": "nope"}),
    )
    .await;
    assert_eq!(status, 401);
    assert_eq!(body["message"], "Invalid username or password");
}

#[tokio::test]
async fn no_socket_without_a_valid_token() {
    let server = server().await;
    for url in [
        server.url("/chat"),
        format!("{}?token=forged", server.url("/chat")),
        format!(
            "{}?token={}",
            server.url("/chat"),
            AuthService::new("another-secret").issue("alice").unwrap()
        ),
    ] {
        let err = TestClient::connect(&url).await.unwrap_err().to_string();
        assert!(err.contains("401"), "{url}: {err}");
    }
}

#[tokio::test]
async fn whoami_is_transformed_and_never_shows_the_password_hash() {
    let server = server().await;
    let mut client = connect_as(&server, "bob").await;
    client.send_text(r#"{"event":"whoami"}"#).await.unwrap();
    let frame = client.recv().await.unwrap();
    assert_eq!(frame.event, "whoami");
    assert_eq!(frame.data["data"], json!({"username": "bob"}));
    assert!(frame.data["timestamp"].as_u64().unwrap() > 1_600_000_000_000);
    assert!(!frame.raw.contains("password"), "{}", frame.raw);
}

#[tokio::test]
async fn invalid_messages_say_which_field_and_why() {
    let server = server().await;
    let mut client = joined(&server, "alice", "lobby").await;
    client
        .emit("message", &json!({"room": "Not A Room", "text": ""}))
        .await
        .unwrap();
    let err = client.expect("exception").await.unwrap();
    assert_eq!(err["message"], "Validation failed");
    assert_eq!(
        err["errors"]["room"],
        json!(["must be 1 to 64 characters of a-z, 0-9, _ and -"])
    );
    assert_eq!(err["errors"]["text"].as_array().unwrap().len(), 1);
    // The connection is unharmed.
    client.emit("identity", &5).await.unwrap();
    assert_eq!(client.expect("identity").await.unwrap(), json!(5));
}

#[tokio::test]
async fn events_echoes_its_data() {
    let server = server().await;
    let mut client = connect_as(&server, "alice").await;
    let data = json!({"nested": [1, "two", {"three": null}]});
    client.emit("events", &data).await.unwrap();
    assert_eq!(client.expect("events").await.unwrap(), data);
}

/// The data the client wrote, not sorted (`{"n":..,"test":..}` before the example enabled
/// `preserve_order`): compared as text, since a `Value` compares equal in any key order.
#[tokio::test]
async fn events_keeps_the_clients_key_order() {
    let server = server().await;
    let mut client = connect_as(&server, "alice").await;
    for data in [
        r#"{"test":"test","n":[1,2,3]}"#,
        r#"{"z":{"b":1,"a":[{"y":2,"x":{"d":null,"c":"x"}}]},"m":-1.5,"a":true}"#,
    ] {
        let text = format!(r#"{{"event":"events","data":{data}}}"#);
        client.send_text(text.clone()).await.unwrap();
        assert_eq!(client.expect_frame("events").await.unwrap().raw, text);
    }
}

#[tokio::test]
async fn identity_replies_under_its_event_with_the_request_id() {
    let server = server().await;
    let mut client = connect_as(&server, "alice").await;
    client.emit_with_id("identity", &42, "req-1").await.unwrap();
    let frame = client.expect_frame("identity").await.unwrap();
    assert_eq!(frame.data, json!(42));
    assert_eq!(frame.id, Some(json!("req-1")));
}

#[tokio::test]
async fn room_messages_reach_members_only_sender_included() {
    let server = server().await;
    let mut alice = joined(&server, "alice", "rust").await;
    let mut bob = joined(&server, "bob", "rust").await;
    let mut carol = joined(&server, "carol", "elsewhere").await;

    alice
        .emit("message", &json!({"room": "rust", "text": "hi all"}))
        .await
        .unwrap();
    let expected = json!({"room": "rust", "text": "hi all", "from": "alice"});
    assert_eq!(alice.expect("message").await.unwrap(), expected);
    assert_eq!(bob.expect("message").await.unwrap(), expected);

    // Carol is in another room: the next frame she gets is the answer to her own request.
    carol.emit("identity", &1).await.unwrap();
    assert_eq!(carol.recv().await.unwrap().event, "identity");
}

#[tokio::test]
async fn leave_stops_delivery() {
    let server = server().await;
    let mut alice = joined(&server, "alice", "r").await;
    let mut bob = joined(&server, "bob", "r").await;
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
    let mut client = connect_as(&server, "alice").await;
    client
        .emit("message", &json!({"room": "secret", "text": "x"}))
        .await
        .unwrap();
    let err = client.expect("exception").await.unwrap();
    assert_eq!(err["message"], r#"Join room "secret" before sending to it"#);
    assert_eq!(err["code"], "NOT_IN_ROOM");
    assert_eq!(err["cause"]["pattern"], "message");
}

#[tokio::test]
async fn history_streams_the_last_fifty_messages_as_message_events() {
    let server = server().await;
    let mut alice = joined(&server, "alice", "log").await;
    for n in 0..55 {
        alice
            .emit("message", &json!({"room": "log", "text": n.to_string()}))
            .await
            .unwrap();
    }
    for _ in 0..55 {
        alice.expect("message").await.unwrap();
    }

    let mut reader = connect_as(&server, "bob").await;
    reader
        .emit("history", &json!({"room": "log"}))
        .await
        .unwrap();
    let mut texts = Vec::new();
    for _ in 0..HISTORY_LIMIT {
        let message = reader.expect("message").await.unwrap();
        assert_eq!(message["from"], "alice");
        texts.push(message["text"].as_str().unwrap().to_owned());
    }
    // 0..=4 fell out of the window of 50.
    let expected: Vec<String> = (5..55).map(|n| n.to_string()).collect();
    assert_eq!(texts, expected);
}

/// `{"event":"poll","data":{"room":..,"question":..},"id":..}` as text.
fn poll_frame(room: &str, question: &str, id: u32) -> String {
    json!({"event": "poll", "data": {"room": room, "question": question}, "id": id}).to_string()
}

#[tokio::test]
async fn a_poll_ends_when_every_member_answered_with_the_answers_as_sent() {
    let server = server().await;
    let mut alice = joined(&server, "alice", "quiz").await;
    let mut bob = joined(&server, "bob", "quiz").await;
    let mut carol = joined(&server, "carol", "elsewhere").await;

    let asked = std::time::Instant::now();
    alice
        .send_text(poll_frame("quiz", "Tabs or spaces?", 7))
        .await
        .unwrap();
    let question = bob.expect_frame("question").await.unwrap();
    let ack = question
        .ack
        .expect("the question asks for an acknowledgement");
    assert_eq!(
        question.raw,
        format!(
            r#"{{"event":"question","data":{{"question":"Tabs or spaces?","from":"alice"}},"ack":{ack}}}"#
        )
    );
    // Keys in an order serde_json would not choose: the asker reads them as sent.
    bob.send_text(format!(
        r#"{{"ack":{ack},"data":{{"z":"spaces","a":[4]}}}}"#
    ))
    .await
    .unwrap();

    let result = alice.expect_frame("poll").await.unwrap();
    assert!(
        asked.elapsed() < chat::chat::POLL_TIMEOUT,
        "the only asked member answered: no need to wait for the timeout"
    );
    assert_eq!(result.id, Some(json!(7)));
    assert!(
        result.raw.contains(
            r#""answers":[{"from":"bob","answer":{"z":"spaces","a":[4]}}],"unanswered":0"#
        ),
        "{}",
        result.raw
    );
    // Neither the asker nor a member of another room was asked.
    for client in [&mut alice, &mut carol] {
        client.emit("identity", &3).await.unwrap();
        assert_eq!(client.recv().await.unwrap().event, "identity");
    }
}

#[tokio::test]
async fn a_poll_from_a_non_member_is_the_same_exception_as_message() {
    let server = server().await;
    let mut alice = connect_as(&server, "alice").await;
    let _bob = joined(&server, "bob", "secret").await;
    alice
        .send_text(poll_frame("secret", "Anyone?", 1))
        .await
        .unwrap();
    let frame = alice.expect_frame("exception").await.unwrap();
    assert_eq!(frame.id, Some(json!(1)));
    assert_eq!(
        frame.data["message"],
        r#"Join room "secret" before sending to it"#
    );
    assert_eq!(frame.data["code"], "NOT_IN_ROOM");
    assert_eq!(frame.data["cause"]["pattern"], "poll");
}

#[tokio::test]
async fn poll_questions_of_0_and_201_characters_are_refused_by_validation() {
    let server = server().await;
    let mut alice = joined(&server, "alice", "quiz").await;
    let mut bob = joined(&server, "bob", "quiz").await;
    // 200 characters of two bytes each pass; one more does not.
    for question in [String::new(), "é".repeat(201)] {
        alice
            .send_text(poll_frame("quiz", &question, 2))
            .await
            .unwrap();
        let err = alice.expect("exception").await.unwrap();
        assert_eq!(err["message"], "Validation failed");
        assert_eq!(
            err["errors"]["question"],
            json!(["length must be between 1 and 200"]),
            "{err}"
        );
    }
    alice
        .send_text(poll_frame("quiz", &"é".repeat(200), 3))
        .await
        .unwrap();
    let question = bob.expect_frame("question").await.unwrap();
    assert_eq!(
        question.data["question"].as_str().unwrap().chars().count(),
        200
    );
    bob.answer(question.ack.unwrap(), &"ok").await.unwrap();
    assert_eq!(
        alice.expect("poll").await.unwrap(),
        json!({"answers": [{"from": "bob", "answer": "ok"}], "unanswered": 0})
    );
}

/// Each client is in its user's room, by which polls name answerers of other instances:
/// nobody joins or leaves another's, or its own.
#[tokio::test]
async fn the_users_own_rooms_cannot_be_joined_or_left() {
    let server = server().await;
    let mut alice = connect_as(&server, "alice").await;
    let _bob = connect_as(&server, "bob").await;
    for event in ["join", "leave"] {
        for room in ["@bob", "@alice"] {
            alice.emit(event, &json!({ "room": room })).await.unwrap();
            let err = alice.expect("exception").await.unwrap();
            assert_eq!(err["code"], "RESERVED_ROOM", "{event} {room}: {err}");
            assert_eq!(
                err["message"],
                format!(
                    "Room {room:?} is reserved: names starting with @ are the users' own rooms"
                )
            );
        }
    }
    let rooms = server.app().server("/chat").unwrap().rooms();
    assert_eq!(rooms, ["@alice", "@bob"]);
}
