//! Amplification (issue 13, item 4): no error answer is larger than a constant plus the
//! request that caused it, and an over-long event name or id is refused without being
//! echoed back.

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;
use ws_gateway_axum::prelude::*;
use ws_gateway_axum::test_client::{TestClient, TestServer};
use ws_gateway_axum::{SocketIoTransport, Transport};
use ws_gateway_core::{ConnectionConfig, RateLimit};

use crate::common::rss_kib;

/// What an error answer may add to the request it answers: the envelope, a message, fields.
const SLACK: usize = 2 * 1024;

#[websocket_gateway(path = "/hostile-amplify")]
struct Amplify;

#[websocket_gateway]
impl Amplify {
    #[subscribe("echo")]
    fn echo(&self, data: Value) -> Value {
        data
    }

    #[subscribe("number")]
    fn number(&self, n: u32) -> u32 {
        n
    }
}

async fn server() -> TestServer {
    server_with(ConnectionConfig::default()).await
}

async fn server_with(config: ConnectionConfig) -> TestServer {
    let app = GatewayApp::new()
        .gateway::<Amplify>()
        .config(config)
        .build()
        .unwrap();
    let (socketio, _io) = SocketIoTransport::new().mount(&app);
    let router = socketio.merge((&app).into_router());
    TestServer::start_router(app, router).await.unwrap()
}

async fn client(server: &TestServer) -> TestClient {
    server
        .connect("/hostile-amplify")
        .await
        .unwrap()
        .with_timeout(Duration::from_secs(60))
}

/// Sends `text` and returns the raw answer, checking it is an exception no larger than the
/// request plus [`SLACK`].
async fn answer_to(client: &mut TestClient, text: String) -> (String, Value) {
    let sent = text.len();
    client.send_text(text).await.unwrap();
    let frame = client.recv().await.unwrap();
    assert_eq!(
        frame.event,
        "exception",
        "{}",
        &frame.raw[..frame.raw.len().min(300)]
    );
    assert!(
        frame.raw.len() <= sent + SLACK,
        "a {sent}-byte request got a {}-byte answer: {}",
        frame.raw.len(),
        &frame.raw[..300]
    );
    (frame.raw, frame.data)
}

#[tokio::test]
async fn an_over_long_event_name_is_refused_without_being_echoed() {
    let _alone = crate::common::alone().await;
    let server = server().await;
    let mut client = client(&server).await;
    let max = ConnectionConfig::default().max_event_name_len;
    let name = "e".repeat(60 * 1024);
    let (raw, data) = answer_to(&mut client, json!({ "event": name, "data": 1 }).to_string()).await;
    assert!(raw.len() < 512, "{}-byte answer to a long name", raw.len());
    assert_eq!(
        data["message"],
        format!("Event name too long: 61440 bytes, at most {max}")
    );
    assert!(data.get("cause").is_none());
    // At the bound, the name is an ordinary unknown event.
    let name = "e".repeat(max);
    let (_, data) = answer_to(&mut client, json!({ "event": name, "data": 1 }).to_string()).await;
    assert_eq!(data["cause"]["pattern"], name);
}

/// The next Engine.IO packet that is not a ping.
async fn sio_next<S>(ws: &mut S) -> String
where
    S: futures_util::Stream<Item = Result<Message, tokio_tungstenite::tungstenite::Error>> + Unpin,
{
    loop {
        let next = tokio::time::timeout(Duration::from_secs(30), ws.next()).await;
        let text = next.unwrap().unwrap().unwrap().into_text().unwrap();
        if text.as_str() != "2" {
            return text.as_str().to_owned();
        }
    }
}

/// Socket.IO clients get the same bound: socketioxide hands over any event name (up to
/// its `max_payload`), the session refuses it without echoing it.
#[tokio::test]
async fn socketio_clients_get_the_event_name_bound() {
    let _alone = crate::common::alone().await;
    const NS: &str = "/hostile-amplify";
    let server = server().await;
    let url = format!(
        "ws://{}/socket.io/?EIO=4&transport=websocket",
        server.addr()
    );
    let (mut ws, _) = tokio_tungstenite::connect_async(url).await.unwrap();
    assert!(sio_next(&mut ws).await.starts_with('0'));
    ws.send(Message::text(format!("40{NS},"))).await.unwrap();
    assert!(sio_next(&mut ws).await.starts_with(&format!("40{NS},")));
    // Plain letters: socketioxide reads an event name only as borrowed text, and closes
    // the connection on a name with JSON escapes (`\"`) before the session sees it.
    let name = "e".repeat(20_000);
    let request = format!("42{NS},{}", json!([name, 1]));
    ws.send(Message::text(request)).await.unwrap();
    let answer = sio_next(&mut ws).await;
    assert!(
        answer.len() < 512,
        "{}-byte answer: {:.200}",
        answer.len(),
        answer
    );
    let max = ConnectionConfig::default().max_event_name_len;
    let expected = json!(["exception", {
        "status": "error",
        "message": format!("Event name too long: 20000 bytes, at most {max}"),
    }]);
    let args = answer.strip_prefix(&format!("42{NS},")).expect(&answer);
    assert_eq!(serde_json::from_str::<Value>(args).unwrap(), expected);
}

#[tokio::test]
async fn event_names_of_quotes_are_not_tripled() {
    let _alone = crate::common::alone().await;
    let server = server().await;
    let mut client = client(&server).await;
    // 20,000 `"` characters: 40,000 bytes escaped.
    let name = "\"".repeat(20_000);
    let (raw, _) = answer_to(&mut client, json!({ "event": name, "data": 1 }).to_string()).await;
    assert!(
        raw.len() < 512,
        "{}-byte answer to a name of quotes",
        raw.len()
    );
    // Within the bound, quotes or not, the answer stays within the request plus a constant.
    let name = "\"".repeat(ConnectionConfig::default().max_event_name_len);
    answer_to(&mut client, json!({ "event": name, "data": 1 }).to_string()).await;
}

#[tokio::test]
async fn an_over_long_id_is_refused_without_being_echoed() {
    let _alone = crate::common::alone().await;
    let server = server().await;
    let mut client = client(&server).await;
    let max = ConnectionConfig::default().max_id_len;
    let id = "i".repeat(30_000);
    let text = json!({ "event": "echo", "data": 1, "id": id }).to_string();
    let (raw, data) = answer_to(&mut client, text).await;
    assert!(raw.len() < 512, "{}-byte answer to a long id", raw.len());
    assert_eq!(
        data["message"],
        format!("Id too long: 30002 bytes, at most {max}")
    );
    // An id at the bound is echoed as ever.
    let id = "i".repeat(max - 2);
    client.emit_with_id("echo", &5, &id).await.unwrap();
    let frame = client.recv().await.unwrap();
    assert_eq!((frame.event.as_str(), frame.id), ("echo", Some(json!(id))));
}

/// A body that does not fit: serde's message quotes the value it got, whole. The answer
/// must not carry it twice (or four times, for a string of quotes).
#[tokio::test]
async fn a_body_that_does_not_fit_is_not_echoed_in_the_message() {
    let _alone = crate::common::alone().await;
    let server = server().await;
    let mut client = client(&server).await;
    for body in [
        "x".repeat(60_000),
        "\"".repeat(30_000),
        "\u{1}".repeat(10_000),
    ] {
        let text = json!({ "event": "number", "data": body }).to_string();
        let (_, data) = answer_to(&mut client, text).await;
        let message = data["message"].as_str().unwrap();
        assert!(
            message.starts_with("Invalid message body: invalid type: string"),
            "{message:.200}"
        );
        assert!(message.len() <= 1024, "a {}-byte message", message.len());
    }
}

/// The pipelined attack: many large requests that each fail, sent without waiting.
/// What comes back is at most what went out plus a constant per request, and memory stays
/// bounded.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pipelined_large_failing_requests_stay_bounded() {
    let _alone = crate::common::alone().await;
    const REQUESTS: usize = 2_000;
    // A token per message, whatever its size: the default rate limit would close this
    // client long before its 2,000th request (see the next test), and here the answers
    // are the point.
    let mut config = ConnectionConfig::default();
    let mut limit = RateLimit::new(1_000, 2_000);
    limit.token_size = 64 * 1024;
    config.rate_limit = Some(limit);
    let server = server_with(config).await;
    let client = client(&server).await;
    let (mut tx, mut rx) = client.into_inner().split();
    let request = json!({ "event": "number", "data": "\"".repeat(30_000) }).to_string();
    let before = rss_kib();
    let reader = tokio::spawn(async move {
        let (mut answers, mut bytes, mut largest) = (0, 0, 0);
        while answers < REQUESTS {
            match tokio::time::timeout(Duration::from_secs(60), rx.next()).await {
                Ok(Some(Ok(Message::Text(text)))) => {
                    answers += 1;
                    bytes += text.len();
                    largest = largest.max(text.len());
                }
                Ok(Some(Ok(_))) => {}
                other => panic!("after {answers} answers: {other:?}"),
            }
        }
        (bytes, largest)
    });
    for _ in 0..REQUESTS {
        tx.feed(Message::text(request.clone())).await.unwrap();
    }
    tx.flush().await.unwrap();
    let (bytes, largest) = reader.await.unwrap();
    let grown = rss_kib().saturating_sub(before);
    let sent = REQUESTS * request.len();
    eprintln!(
        "amplification: {REQUESTS} pipelined {}-byte failing requests ({sent} bytes): \
         {bytes} bytes answered, largest answer {largest}, RSS +{grown} KiB",
        request.len()
    );
    assert!(largest <= request.len() + SLACK, "a {largest}-byte answer");
    assert!(grown < 10 * 1024, "RSS grew by {grown} KiB");
}

/// The same attack under the default rate limit: a 60 KB request takes 15 tokens, so the
/// client runs out of its burst within a few hundred requests and is closed with 1008
/// instead of making the server parse 120 MB.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pipelined_large_requests_spend_the_rate_limit_by_size() {
    let _alone = crate::common::alone().await;
    let server = server().await;
    let client = client(&server).await;
    let (mut tx, mut rx) = client.into_inner().split();
    let request = json!({ "event": "number", "data": "\"".repeat(30_000) }).to_string();
    let writer = tokio::spawn(async move {
        for _ in 0..2_000 {
            if tx.feed(Message::text(request.clone())).await.is_err() {
                break;
            }
        }
        let _ = tx.flush().await;
    });
    let (mut answers, mut rate_limited) = (0, 0);
    let close = loop {
        match tokio::time::timeout(Duration::from_secs(60), rx.next()).await {
            Ok(Some(Ok(Message::Text(text)))) => {
                answers += 1;
                if text.contains("Rate limit exceeded") {
                    rate_limited += 1;
                }
            }
            Ok(Some(Ok(Message::Close(close)))) => break close,
            Ok(Some(Ok(_))) => {}
            other => panic!("after {answers} answers: {other:?}"),
        }
    };
    writer.abort();
    let close = close.expect("a close frame with a code");
    assert_eq!(u16::from(close.code), 1008, "{close:?}");
    // The burst of 2,000 tokens pays for about 133 such requests; debt of 100 tokens, about
    // 7 more, closes.
    assert!(answers < 500, "{answers} answers before the close");
    assert!(rate_limited > 0, "no rate-limit exception before the close");
}
