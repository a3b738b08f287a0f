//! Limits, backpressure, heartbeats, origin checks and graceful shutdown, over real sockets.
//! Nothing here asserts a duration: waits poll for a state with a generous deadline.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::json;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};
use ws_gateway_axum::prelude::*;
use ws_gateway_axum::test_client::{TestClient, TestError, TestServer};
use ws_gateway_core::{ConnectionConfig, RateLimit};

/// How many clients `handle_disconnect` saw, and how many `slow` handlers started.
#[derive(Default)]
struct Gone(AtomicUsize, AtomicUsize, tokio::sync::Notify);

impl Gone {
    /// Waits until `n` slow handlers have started.
    async fn started(&self, n: usize) {
        tokio::time::timeout(Duration::from_secs(10), async {
            loop {
                let changed = self.2.notified();
                if self.1.load(Ordering::SeqCst) >= n {
                    return;
                }
                changed.await;
            }
        })
        .await
        .expect("the handler never started");
    }
}

#[websocket_gateway(path = "/hard")]
struct HardGateway {
    server: WsServer,
}

#[websocket_gateway]
impl HardGateway {
    #[subscribe("echo")]
    fn echo(&self, data: serde_json::Value) -> serde_json::Value {
        data
    }

    #[subscribe("join")]
    fn join(&self, client: Client, room: String) -> Result<String, RoomError> {
        client.join(room.clone())?;
        Ok(room)
    }

    /// Sends items `from..from + 10` of 1 KiB each to the room.
    #[subscribe("flood")]
    fn flood(&self, from: usize) {
        let pad = "x".repeat(1024);
        for i in from..from + 10 {
            let _ = self
                .server
                .to("flood")
                .emit("item", &json!({"i": i, "pad": pad}));
        }
    }

    #[subscribe("ping")]
    fn ping(&self) -> &'static str {
        "pong"
    }

    #[subscribe("slow")]
    async fn slow(&self, ms: u64, started: Inject<Gone>) -> &'static str {
        started.1.fetch_add(1, Ordering::SeqCst);
        started.2.notify_waiters();
        tokio::time::sleep(Duration::from_millis(ms)).await;
        "done"
    }

    #[handle_disconnect]
    fn gone(&self, gone: Inject<Gone>) {
        gone.0.fetch_add(1, Ordering::SeqCst);
    }
}

async fn start(config: ConnectionConfig) -> (TestServer, Arc<Gone>) {
    let gone = Arc::new(Gone::default());
    let app = GatewayApp::new()
        .provide_arc(gone.clone())
        .config(config)
        .gateway::<HardGateway>()
        .build()
        .unwrap();
    (TestServer::start(app).await.unwrap(), gone)
}

/// Polls `check` every 10 ms for up to 10 s.
async fn eventually(mut check: impl FnMut() -> bool) -> bool {
    for _ in 0..1000 {
        if check() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    false
}

fn status_of(err: TestError) -> u16 {
    match err {
        TestError::WebSocket(WsError::Http(response)) => response.status().as_u16(),
        other => panic!("expected an HTTP refusal, got {other}"),
    }
}

#[tokio::test]
async fn a_flooding_client_is_answered_then_closed_and_others_are_unharmed() {
    let mut config = ConnectionConfig::default();
    let mut limit = RateLimit::new(1, 5);
    limit.close_after = 10;
    config.rate_limit = Some(limit);
    let (server, gone) = start(config).await;
    let mut calm = server.connect("/hard").await.unwrap();
    let mut flood = server.connect("/hard").await.unwrap();

    for i in 0..5 {
        flood.emit("echo", &i).await.unwrap();
        assert_eq!(flood.expect("echo").await.unwrap(), json!(i));
    }
    flood.emit("echo", &5).await.unwrap();
    let err = flood.expect("exception").await.unwrap();
    assert_eq!(
        err["message"],
        "Rate limit exceeded: at most 1 messages per second"
    );
    assert_eq!(err["cause"]["data"], json!(5));
    for i in 0..20 {
        if flood.emit("echo", &i).await.is_err() {
            break;
        }
    }
    let close = loop {
        match flood.recv().await {
            Ok(frame) => assert_eq!(frame.event, "exception"),
            Err(TestError::Closed(close)) => break close.unwrap(),
            Err(other) => panic!("{other}"),
        }
    };
    assert_eq!(u16::from(close.code), 1008);
    assert_eq!(close.reason.as_str(), "rate limit exceeded");
    assert!(eventually(|| gone.0.load(Ordering::SeqCst) == 1).await);

    calm.emit("echo", &"still here").await.unwrap();
    assert_eq!(calm.expect("echo").await.unwrap(), json!("still here"));
}

#[tokio::test]
async fn deeply_nested_messages_get_an_exception() {
    let mut config = ConnectionConfig::default();
    config.max_json_depth = 4;
    let (server, _) = start(config).await;
    let mut client = server.connect("/hard").await.unwrap();
    client
        .send_text(r#"{"event":"echo","data":[[[[1]]]]}"#)
        .await
        .unwrap();
    let err = client.expect("exception").await.unwrap();
    assert_eq!(
        err["message"],
        "Message nested too deeply: at most 4 levels of arrays and objects"
    );
    client
        .send_text(r#"{"event":"echo","data":[[1]]}"#)
        .await
        .unwrap();
    assert_eq!(client.expect("echo").await.unwrap(), json!([[1]]));
}

#[tokio::test]
async fn connections_over_the_instance_limit_get_503_before_the_upgrade() {
    let mut config = ConnectionConfig::default();
    config.max_connections = Some(2);
    let (server, _) = start(config).await;
    let first = server.connect("/hard").await.unwrap();
    let _second = server.connect("/hard").await.unwrap();
    assert_eq!(status_of(server.connect("/hard").await.unwrap_err()), 503);
    first.close().await.unwrap();
    let live = server.app().connections().clone();
    assert!(eventually(|| live.live() == 1).await);
    server.connect("/hard").await.unwrap();
}

#[tokio::test]
async fn connections_over_the_per_address_limit_get_429() {
    let mut config = ConnectionConfig::default();
    config.max_connections_per_ip = Some(1);
    let (server, _) = start(config).await;
    let _first = server.connect("/hard").await.unwrap();
    let err = server.connect("/hard").await.unwrap_err();
    assert_eq!(status_of(err), 429);
}

async fn connect_with_origin(server: &TestServer, origin: &str) -> Result<TestClient, TestError> {
    let mut request = server.url("/hard").into_client_request().unwrap();
    request
        .headers_mut()
        .insert("origin", HeaderValue::from_str(origin).unwrap());
    let (ws, _) = tokio_tungstenite::connect_async(request).await?;
    Ok(TestClient::from_stream(ws))
}

#[tokio::test]
async fn only_allowed_origins_may_connect() {
    let mut config = ConnectionConfig::default();
    config.allowed_origins = ws_gateway_core::Origins::only(["https://chat.example"]);
    let (server, _) = start(config).await;
    let err = connect_with_origin(&server, "https://evil.example")
        .await
        .unwrap_err();
    assert_eq!(status_of(err), 403);
    let mut good = connect_with_origin(&server, "https://chat.example")
        .await
        .unwrap();
    good.emit("echo", &1).await.unwrap();
    assert_eq!(good.expect("echo").await.unwrap(), json!(1));
    // Not a browser: no Origin header.
    server.connect("/hard").await.unwrap();
}

#[tokio::test]
async fn silent_clients_are_closed_and_their_disconnect_hook_runs() {
    let mut config = ConnectionConfig::default();
    config.ping_interval = Some(Duration::from_millis(50));
    config.idle_timeout = Some(Duration::from_millis(250));
    let (server, gone) = start(config).await;

    // This one reads, so its WebSocket library answers every ping with a pong.
    let (mut lively, _) = tokio_tungstenite::connect_async(server.url("/hard"))
        .await
        .unwrap();
    // This one never reads: it never pongs.
    let (_silent, _) = tokio_tungstenite::connect_async(server.url("/hard"))
        .await
        .unwrap();

    let mut pings = 0;
    while gone.0.load(Ordering::SeqCst) == 0 {
        match tokio::time::timeout(Duration::from_secs(10), lively.next()).await {
            Ok(Some(Ok(Message::Ping(_)))) => pings += 1,
            other => panic!("the lively client should only see pings, got {other:?}"),
        }
    }
    assert!(pings > 0);
    assert_eq!(gone.0.load(Ordering::SeqCst), 1);
    // The lively client outlived the silent one and still works.
    lively
        .send(Message::text(r#"{"event":"echo","data":"alive"}"#))
        .await
        .unwrap();
    loop {
        match lively.next().await.unwrap().unwrap() {
            Message::Text(text) => {
                assert_eq!(text.as_str(), r#"{"event":"echo","data":"alive"}"#);
                break;
            }
            Message::Ping(_) => {}
            other => panic!("{other:?}"),
        }
    }
}

#[tokio::test]
async fn a_slow_consumer_is_cut_off_and_the_room_keeps_its_pace() {
    let (server, gone) = start(ConnectionConfig::default()).await;
    let mut reader = server.connect("/hard").await.unwrap();
    reader.emit("join", &"flood").await.unwrap();
    reader.expect("join").await.unwrap();
    // Joins, then never reads again.
    let (mut slow, _) = tokio_tungstenite::connect_async(server.url("/hard"))
        .await
        .unwrap();
    slow.send(Message::text(r#"{"event":"join","data":"flood"}"#))
        .await
        .unwrap();
    let members = server.app().server("/hard").unwrap();
    assert!(eventually(|| members.room_members("flood").len() == 2).await);

    // 20 MiB for the room, far more than the socket buffers and the 1,024-frame queue of
    // the slow client can hold.
    let batches = 2_000;
    let read = Arc::new(AtomicUsize::new(0));
    let reading = tokio::spawn({
        let read = read.clone();
        async move {
            for i in 0..batches * 10 {
                let item = reader.expect("item").await.unwrap();
                assert_eq!(item["i"], json!(i), "items arrive in order, none lost");
                read.store(i + 1, Ordering::Release);
            }
            reader
        }
    });
    let mut sender = server.connect("/hard").await.unwrap();
    for batch in 0..batches {
        sender.emit("flood", &(batch * 10)).await.unwrap();
        // A healthy reader stays within a few hundred frames of the sender (this test's
        // client is a debug build: slower than the server).
        while (batch * 10).saturating_sub(read.load(Ordering::Acquire)) > 300 {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }
    let mut reader = reading.await.unwrap();
    // The slow one was disconnected when its queue overflowed: memory stays bounded.
    assert!(eventually(|| gone.0.load(Ordering::SeqCst) == 1).await);
    assert_eq!(members.room_members("flood").len(), 1);
    reader.emit("ping", &()).await.unwrap();
    reader.expect("ping").await.unwrap();
}

#[tokio::test]
async fn shutdown_finishes_in_flight_work_then_closes_with_1001() {
    let (server, gone) = start(ConnectionConfig::default()).await;
    let mut busy = server.connect("/hard").await.unwrap();
    let mut idle = server.connect("/hard").await.unwrap();
    busy.emit("slow", &300).await.unwrap();
    gone.started(1).await;

    let still_open = server.shutdown(Duration::from_secs(5)).await;
    assert_eq!(still_open, 0);
    assert_eq!(busy.expect("slow").await.unwrap(), json!("done"));
    for client in [&mut busy, &mut idle] {
        let close = client.expect_close().await.unwrap().unwrap();
        assert_eq!(u16::from(close.code), 1001);
        assert_eq!(close.reason.as_str(), "server shutting down");
    }
    assert_eq!(gone.0.load(Ordering::SeqCst), 2);
    // No new connection is accepted.
    assert!(server.connect("/hard").await.is_err());
}

#[tokio::test]
async fn shutdown_deadline_closes_a_connection_whose_handler_still_runs() {
    let (server, gone) = start(ConnectionConfig::default()).await;
    let mut busy = server.connect("/hard").await.unwrap();
    busy.emit("slow", &600_000).await.unwrap();
    gone.started(1).await;

    server.shutdown(Duration::from_millis(200)).await;
    // The handler would take ten minutes: the deadline closes the connection without its reply.
    let close = busy.expect_close().await.unwrap().unwrap();
    assert_eq!(u16::from(close.code), 1001);
    assert_eq!(close.reason.as_str(), "server shutting down");
    assert!(eventually(|| gone.0.load(Ordering::SeqCst) == 1).await);
}
