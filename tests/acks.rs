//! Acknowledgements the server asks for (`Client::emit_with_ack`, `Broadcast::emit_with_ack`)
//! over real sockets: plain WebSocket clients answering `{"ack":N,"data":..}`, a silent
//! client timing out, late, unknown and repeated numbers ignored, a room's answers
//! collected with who answered, and answers from clients of another instance through Redis
//! (127.0.0.1:6379, which `./scripts/test.sh` starts). Socket.IO clients answering with
//! their callback are in `tests/socketio.rs`.

use std::time::Duration;

use futures_util::StreamExt;
use serde::Deserialize;
use serde_json::{Value, json};
use ws_gateway_axum::prelude::*;
use ws_gateway_axum::test_client::{Received, TestClient, TestServer};
use ws_gateway_redis::{RedisAdapter, RedisConfig};

#[derive(Deserialize)]
struct Poll {
    room: String,
    timeout_ms: u64,
}

#[websocket_gateway(path = "/acks")]
struct AckGateway;

#[websocket_gateway]
impl AckGateway {
    /// Asks the sender `question` and replies with its answer, or why there is none.
    #[subscribe("ask")]
    async fn ask(&self, client: Client, timeout_ms: u64) -> Value {
        let answer = client
            .timeout(Duration::from_millis(timeout_ms))
            .emit_with_ack::<Value>("question", &"ready?")
            .await;
        match answer {
            Ok(answer) => json!({ "answer": answer }),
            Err(err) => json!({ "error": err.to_string() }),
        }
    }

    /// Asks for a number: a string answer does not deserialize.
    #[subscribe("ask_number")]
    async fn ask_number(&self, client: Client) -> Result<u32, WsException> {
        Ok(client.emit_with_ack::<u32>("number", &()).await?)
    }

    #[subscribe("join")]
    fn join(&self, client: Client, room: String) -> Result<String, RoomError> {
        client.join(room.clone())?;
        Ok(room)
    }

    /// Asks every other member of the room, on every instance; replies with the answers by
    /// client id and how many did not answer.
    #[subscribe("poll")]
    async fn poll(&self, client: Client, poll: Poll) -> Result<Value, WsException> {
        let mut answers = client
            .to(poll.room)
            .timeout(Duration::from_millis(poll.timeout_ms))
            .emit_with_ack::<Value>("vote", &"pick one")?;
        let mut got = Vec::new();
        while let Some((who, answer)) = answers.next().await {
            got.push(match answer {
                Ok(answer) => json!({ "from": who, "answer": answer }),
                Err(err) => json!({ "from": who, "error": err.to_string() }),
            });
        }
        got.sort_by_key(|entry| entry["from"].as_str().unwrap_or_default().to_owned());
        Ok(json!({
            "answers": got,
            "sent": answers.sent(),
            "unanswered": answers.unanswered(),
        }))
    }

    #[subscribe("whoami")]
    fn whoami(&self, client: Client) -> ClientId {
        client.id()
    }

    #[subscribe("ping")]
    fn ping(&self) -> &'static str {
        "pong"
    }

    /// Answers the client's own acknowledgement from a spawned task, after `n` ticks; the
    /// return value is not sent.
    #[subscribe("later")]
    fn later(&self, ack: Ack, client: Client, n: u32) -> &'static str {
        tokio::spawn(async move {
            for i in 0..n {
                let _ = client.emit("tick", &i);
            }
            ack.send(&json!({"done": n})).ok();
        });
        "not sent"
    }

    /// An `Ack` taken and a failure: the failure is still answered.
    #[subscribe("later_fails")]
    fn later_fails(&self, _ack: Ack) -> Result<(), WsException> {
        Err(WsException::new("no way"))
    }
}

async fn server() -> TestServer {
    let app = GatewayApp::new().gateway::<AckGateway>().build().unwrap();
    TestServer::start(app).await.unwrap()
}

/// A client in `room`, and its id.
async fn member(server: &TestServer, room: &str) -> (TestClient, String) {
    let mut client = server.connect("/acks").await.unwrap();
    client.emit("join", room).await.unwrap();
    client.expect("join").await.unwrap();
    client.emit("whoami", &()).await.unwrap();
    let id = client.expect("whoami").await.unwrap();
    (client, id.as_str().unwrap().to_owned())
}

/// The server's next question to `client`, checked to be exactly the documented frame.
async fn question(client: &mut TestClient, event: &str, data: Value) -> Received {
    let frame = client.expect_frame(event).await.unwrap();
    let ack = frame.ack.expect("the question carries an ack number");
    assert!(ack > 0);
    assert_eq!(
        frame.raw,
        format!(r#"{{"event":"{event}","data":{data},"ack":{ack}}}"#)
    );
    frame
}

/// The next frame is the answer to a `ping`: nothing else (no exception) came before it.
async fn still_fine(client: &mut TestClient) {
    client.emit("ping", &()).await.unwrap();
    let next = client.recv().await.unwrap();
    assert_eq!((next.event.as_str(), next.data), ("ping", json!("pong")));
}

#[tokio::test]
async fn a_plain_client_answers_and_the_handler_gets_the_answer() {
    let server = server().await;
    let mut client = server.connect("/acks").await.unwrap();
    client.emit("ask", &5000).await.unwrap();
    let asked = question(&mut client, "question", json!("ready?")).await;
    client
        .answer(asked.ack.unwrap(), &json!({"yes": [1, 2]}))
        .await
        .unwrap();
    assert_eq!(
        client.expect("ask").await.unwrap(),
        json!({"answer": {"yes": [1, 2]}})
    );
    still_fine(&mut client).await;
}

#[tokio::test]
async fn a_silent_client_times_out_and_its_late_answer_is_ignored() {
    let server = server().await;
    let mut client = server.connect("/acks").await.unwrap();
    client.emit("ask", &50).await.unwrap();
    let asked = question(&mut client, "question", json!("ready?")).await;
    assert_eq!(
        client.expect("ask").await.unwrap(),
        json!({"error": "no answer within 50ms"})
    );
    // Too late: ignored, not an error, the connection fine.
    client.answer(asked.ack.unwrap(), &"late").await.unwrap();
    still_fine(&mut client).await;
}

#[tokio::test]
async fn unknown_and_repeated_numbers_are_ignored() {
    let server = server().await;
    let mut client = server.connect("/acks").await.unwrap();
    client.answer(987_654_321, &"nobody asked").await.unwrap();
    client
        .send_text(r#"{"ack":18446744073709551615}"#)
        .await
        .unwrap();
    still_fine(&mut client).await;

    client.emit("ask", &5000).await.unwrap();
    let ack = question(&mut client, "question", json!("ready?"))
        .await
        .ack
        .unwrap();
    client.answer(ack, &1).await.unwrap();
    assert_eq!(client.expect("ask").await.unwrap(), json!({"answer": 1}));
    client.answer(ack, &2).await.unwrap(); // again
    still_fine(&mut client).await;

    // Not a number at all is a malformed answer: said so, and the connection stays.
    client.send_text(r#"{"ack":"x","data":1}"#).await.unwrap();
    let err = client.expect("exception").await.unwrap();
    assert_eq!(
        err["message"],
        r#"Invalid answer: "ack" must be a positive integer"#
    );
    still_fine(&mut client).await;
}

#[tokio::test]
async fn an_answer_of_the_wrong_type_is_a_clear_error() {
    let server = server().await;
    let mut client = server.connect("/acks").await.unwrap();
    client.emit("ask_number", &()).await.unwrap();
    let asked = question(&mut client, "number", json!(null)).await;
    client
        .answer(asked.ack.unwrap(), &"forty-two")
        .await
        .unwrap();
    let err = client.expect("exception").await.unwrap();
    let message = err["message"].as_str().unwrap();
    assert!(
        message.starts_with("the answer did not deserialize: invalid type: string"),
        "{message}"
    );
}

#[tokio::test]
async fn a_room_answers_with_who_said_what_and_who_did_not() {
    let server = server().await;
    let (mut asker, _) = member(&server, "r").await;
    let (mut ann, ann_id) = member(&server, "r").await;
    let (mut bob, bob_id) = member(&server, "r").await;
    let (mut silent, _) = member(&server, "r").await;

    asker
        .emit("poll", &json!({"room": "r", "timeout_ms": 300}))
        .await
        .unwrap();
    let ann_ack = question(&mut ann, "vote", json!("pick one")).await.ack;
    let bob_ack = question(&mut bob, "vote", json!("pick one")).await.ack;
    let silent_ack = question(&mut silent, "vote", json!("pick one")).await.ack;
    // One number for the whole broadcast on an instance: encoded once.
    assert_eq!(ann_ack, bob_ack);
    assert_eq!(bob_ack, silent_ack);
    ann.answer(ann_ack.unwrap(), &"tea").await.unwrap();
    bob.answer(bob_ack.unwrap(), &json!({"coffee": 2}))
        .await
        .unwrap();

    let mut expected = vec![
        json!({"from": ann_id, "answer": "tea"}),
        json!({"from": bob_id, "answer": {"coffee": 2}}),
    ];
    expected.sort_by_key(|e| e["from"].as_str().unwrap().to_owned());
    assert_eq!(
        asker.expect("poll").await.unwrap(),
        json!({"answers": expected, "sent": 3, "unanswered": 1})
    );
}

#[tokio::test]
async fn a_room_that_answers_in_full_ends_before_the_timeout() {
    let server = server().await;
    let (mut asker, _) = member(&server, "full").await;
    let (mut ann, ann_id) = member(&server, "full").await;
    // A timeout far past the test client's own: the reply can only come because every
    // member answered.
    asker
        .emit("poll", &json!({"room": "full", "timeout_ms": 600_000}))
        .await
        .unwrap();
    let ack = question(&mut ann, "vote", json!("pick one")).await.ack;
    ann.answer(ack.unwrap(), &true).await.unwrap();
    assert_eq!(
        asker.expect("poll").await.unwrap(),
        json!({"answers": [{"from": ann_id, "answer": true}], "sent": 1, "unanswered": 0})
    );
}

#[tokio::test]
async fn a_member_that_leaves_before_answering_is_reported_at_once() {
    let server = server().await;
    let (mut asker, _) = member(&server, "gone").await;
    let (mut ann, ann_id) = member(&server, "gone").await;
    asker
        .emit("poll", &json!({"room": "gone", "timeout_ms": 600_000}))
        .await
        .unwrap();
    question(&mut ann, "vote", json!("pick one")).await;
    ann.close().await.unwrap();
    assert_eq!(
        asker.expect("poll").await.unwrap(),
        json!({
            "answers": [{"from": ann_id, "error": "the client disconnected before it answered"}],
            "sent": 1,
            "unanswered": 0,
        })
    );
}

async fn redis_instance(prefix: &str) -> TestServer {
    let redis = RedisAdapter::connect(RedisConfig::new("redis://127.0.0.1:6379").prefix(prefix))
        .await
        .expect("Redis listens on 127.0.0.1:6379 (./scripts/test.sh starts it)");
    let app = GatewayApp::new()
        .adapter(redis)
        .gateway::<AckGateway>()
        .build()
        .unwrap();
    TestServer::start(app).await.unwrap()
}

#[tokio::test]
async fn answers_come_from_the_clients_of_another_instance_through_redis() {
    let prefix = format!("acks-test-{}-{}", std::process::id(), line!());
    let a = redis_instance(&prefix).await;
    let b = redis_instance(&prefix).await;
    let (mut asker, _) = member(&a, "x").await;
    let (mut here, here_id) = member(&a, "x").await;
    let (mut there, there_id) = member(&b, "x").await;
    let (mut silent, _) = member(&b, "x").await;

    asker
        .emit("poll", &json!({"room": "x", "timeout_ms": 1500}))
        .await
        .unwrap();
    let ack = question(&mut here, "vote", json!("pick one")).await.ack;
    here.answer(ack.unwrap(), &"from a").await.unwrap();
    let ack = question(&mut there, "vote", json!("pick one")).await.ack;
    there.answer(ack.unwrap(), &"from b").await.unwrap();
    question(&mut silent, "vote", json!("pick one")).await;

    let mut expected = vec![
        json!({"from": here_id, "answer": "from a"}),
        json!({"from": there_id, "answer": "from b"}),
    ];
    expected.sort_by_key(|e| e["from"].as_str().unwrap().to_owned());
    assert_eq!(
        asker.expect("poll").await.unwrap(),
        json!({"answers": expected, "sent": 3, "unanswered": 1})
    );
}

#[tokio::test]
async fn a_fully_answered_poll_across_instances_ends_before_the_timeout() {
    let prefix = format!("acks-test-{}-{}", std::process::id(), line!());
    let a = redis_instance(&prefix).await;
    let b = redis_instance(&prefix).await;
    let (mut asker, _) = member(&a, "y").await;
    let (mut there, there_id) = member(&b, "y").await;
    asker
        .emit("poll", &json!({"room": "y", "timeout_ms": 600_000}))
        .await
        .unwrap();
    let ack = question(&mut there, "vote", json!("pick one")).await.ack;
    there.answer(ack.unwrap(), &42).await.unwrap();
    assert_eq!(
        asker.expect("poll").await.unwrap(),
        json!({"answers": [{"from": there_id, "answer": 42}], "sent": 1, "unanswered": 0})
    );
}

#[tokio::test]
async fn a_handler_answers_the_clients_ack_later_through_ack() {
    let server = server().await;
    let mut client = server.connect("/acks").await.unwrap();
    client.emit_with_id("later", &2, "req-1").await.unwrap();
    for i in 0..2 {
        assert_eq!(client.recv().await.unwrap().data, json!(i));
    }
    let answer = client.recv().await.unwrap();
    assert_eq!(
        answer.raw,
        r#"{"event":"later","data":{"done":2},"id":"req-1"}"#
    );
    // The handler's own return value was not sent.
    still_fine(&mut client).await;

    client.emit_with_id("later_fails", &(), 7).await.unwrap();
    let err = client.expect_frame("exception").await.unwrap();
    assert_eq!(
        (err.data["message"].clone(), err.id),
        (json!("no way"), Some(json!(7)))
    );
}
