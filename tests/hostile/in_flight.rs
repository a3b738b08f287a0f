//! In-flight work (issue 13, item 3): a client pipelining far more slow requests than
//! `max_in_flight` has at most that many handlers running at once, is not read meanwhile
//! (memory stays bounded), and gets every answer once they finish. Plain WebSocket and
//! Socket.IO (spoken raw, Engine.IO v4 over a WebSocket).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::sync::{Notify, watch};
use tokio_tungstenite::tungstenite::Message;
use ws_gateway_axum::prelude::*;
use ws_gateway_axum::test_client::TestServer;
use ws_gateway_axum::{SocketIoTransport, Transport};
use ws_gateway_core::{ConnectionConfig, Inject};

use crate::common::rss_kib;

const BOUND: usize = 8;

/// Holds every `slow` handler until opened, counting them.
struct Gate {
    running: AtomicUsize,
    peak: AtomicUsize,
    started: AtomicUsize,
    changed: Notify,
    open: watch::Sender<bool>,
}

impl Gate {
    fn new() -> Arc<Self> {
        Arc::new(Self {
            running: AtomicUsize::new(0),
            peak: AtomicUsize::new(0),
            started: AtomicUsize::new(0),
            changed: Notify::new(),
            open: watch::channel(false).0,
        })
    }

    /// Waits until `n` handlers have started.
    async fn started(&self, n: usize) {
        tokio::time::timeout(Duration::from_secs(30), async {
            loop {
                let changed = self.changed.notified();
                if self.started.load(Ordering::SeqCst) >= n {
                    return;
                }
                changed.await;
            }
        })
        .await
        .expect("the handlers never started");
    }
}

#[derive(Deserialize)]
struct Slow {
    n: u64,
}

#[websocket_gateway(path = "/hostile-in-flight")]
struct InFlight {
    gate: Inject<Arc<Gate>>,
}

#[websocket_gateway]
impl InFlight {
    #[subscribe("slow")]
    async fn slow(&self, body: Slow) -> u64 {
        let gate = &**self.gate;
        let now = gate.running.fetch_add(1, Ordering::SeqCst) + 1;
        gate.peak.fetch_max(now, Ordering::SeqCst);
        gate.started.fetch_add(1, Ordering::SeqCst);
        gate.changed.notify_waiters();
        let mut open = gate.open.subscribe();
        let _ = open.wait_for(|open| *open).await;
        gate.running.fetch_sub(1, Ordering::SeqCst);
        body.n
    }
}

async fn server(gate: &Arc<Gate>) -> TestServer {
    let mut config = ConnectionConfig::default();
    config.max_in_flight = BOUND;
    config.rate_limit = None;
    let app = GatewayApp::new()
        .config(config)
        .provide(Arc::clone(gate))
        .gateway::<InFlight>()
        .build()
        .unwrap();
    let (socketio, _io) = SocketIoTransport::new().mount(&app);
    let router = socketio.merge((&app).into_router());
    TestServer::start_router(app, router).await.unwrap()
}

/// Runs the attack over one socket: `requests(i)` is the i-th message, `answered(text)` the
/// number a text frame answers, if it is an answer. Returns the RSS growth in KiB while the
/// handlers were held, and whether every request had been sent by then.
async fn pipeline(
    gate: &Gate,
    ws: tokio_tungstenite::WebSocketStream<
        tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>,
    >,
    total: usize,
    request: impl Fn(usize) -> String + Send + 'static,
    answered: impl Fn(&str) -> Option<u64>,
    pong: Option<&'static str>,
) -> (u64, bool) {
    let before = rss_kib();
    let (mut tx, mut rx) = ws.split();
    let (pongs, mut to_send) = tokio::sync::mpsc::unbounded_channel::<&'static str>();
    let sender = tokio::spawn(async move {
        for i in 0..total {
            tx.feed(Message::text(request(i))).await.unwrap();
            while let Ok(pong) = to_send.try_recv() {
                tx.feed(Message::text(pong)).await.unwrap();
            }
        }
        tx.flush().await.unwrap();
        tx
    });
    // The bound's worth of handlers start; the rest of the requests wait unread.
    gate.started(BOUND).await;
    assert!(gate.peak.load(Ordering::SeqCst) <= BOUND);
    let grown = rss_kib().saturating_sub(before);
    let all_sent = sender.is_finished();
    gate.open.send_replace(true);
    let mut seen = vec![false; total];
    let mut answers = 0;
    while answers < total {
        let next = tokio::time::timeout(Duration::from_secs(60), rx.next()).await;
        let Ok(Some(Ok(Message::Text(text)))) = next else {
            panic!("after {answers} answers: {next:?}");
        };
        if let Some(n) = answered(&text) {
            assert!(
                !std::mem::replace(&mut seen[n as usize], true),
                "{n} answered twice"
            );
            answers += 1;
        } else if let (Some(pong), "2") = (pong, text.as_str()) {
            let _ = pongs.send(pong);
        }
    }
    let _tx = sender.await.unwrap();
    let peak = gate.peak.load(Ordering::SeqCst);
    assert!(
        peak <= BOUND,
        "{peak} handlers ran at once, the bound is {BOUND}"
    );
    assert_eq!(gate.started.load(Ordering::SeqCst), total);
    (grown, all_sent)
}

/// 2,000 slow requests of 16 KiB each (32 MB if they were all queued).
#[tokio::test]
async fn plain_websocket_clients_are_not_read_past_the_bound() {
    let _alone = crate::common::alone().await;
    const TOTAL: usize = 2_000;
    let gate = Gate::new();
    let server = server(&gate).await;
    let (ws, _) = tokio_tungstenite::connect_async(server.url("/hostile-in-flight"))
        .await
        .unwrap();
    let pad = "p".repeat(16 * 1024);
    let (grown, all_sent) = pipeline(
        &gate,
        ws,
        TOTAL,
        move |i| json!({ "event": "slow", "data": { "n": i, "pad": pad }, "id": i }).to_string(),
        |text| {
            let frame: Value = serde_json::from_str(text).unwrap();
            assert_eq!(frame["event"], "slow", "{text}");
            frame["id"].as_u64()
        },
        None,
    )
    .await;
    eprintln!("in flight (WebSocket): {TOTAL} x 16 KiB pipelined, RSS +{grown} KiB while held");
    assert!(grown < 10 * 1024, "RSS grew by {grown} KiB");
    // 32 MB do not fit in the sockets' buffers: the server was not reading.
    assert!(
        !all_sent,
        "the server read every request while {BOUND} handlers were held"
    );
}

/// The gateway's Socket.IO namespace.
const NS: &str = "/hostile-in-flight";

/// A raw Engine.IO v4 WebSocket to `server`, connected to [`NS`].
async fn socketio_connect(
    server: &TestServer,
) -> tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>> {
    let url = format!(
        "ws://{}/socket.io/?EIO=4&transport=websocket",
        server.addr()
    );
    let (mut ws, _) = tokio_tungstenite::connect_async(url).await.unwrap();
    let open = ws.next().await.unwrap().unwrap();
    assert!(open.to_text().unwrap().starts_with('0'), "{open:?}");
    ws.send(Message::text(format!("40{NS},"))).await.unwrap();
    // The connect reply is the next packet, but for Engine.IO's pings (`2`), which the
    // server may send at any time.
    let connected = loop {
        let packet = ws.next().await.unwrap().unwrap();
        if packet.to_text().unwrap() != "2" {
            break packet;
        }
    };
    assert!(
        connected
            .to_text()
            .unwrap()
            .starts_with(&format!("40{NS},")),
        "{connected:?}"
    );
    ws
}

/// Socket.IO: socketioxide reads the socket itself and hands the session each packet; the
/// session's bound still holds (at most `BOUND` handlers run), and every ack arrives.
#[tokio::test]
async fn socketio_clients_run_at_most_the_bound() {
    let _alone = crate::common::alone().await;
    const TOTAL: usize = 500;
    let gate = Gate::new();
    let server = server(&gate).await;
    let ws = socketio_connect(&server).await;
    let pad = "p".repeat(1024);
    let prefix = format!("43{NS},");
    let (grown, _) = pipeline(
        &gate,
        ws,
        TOTAL,
        move |i| format!("42{NS},{i}{}", json!(["slow", { "n": i, "pad": pad }])),
        move |text| {
            let rest = text.strip_prefix(&prefix)?;
            let end = rest.find('[')?;
            let (id, args) = rest.split_at(end);
            let args: Value = serde_json::from_str(args).unwrap();
            let id: u64 = id.parse().unwrap();
            assert_eq!(args, json!([id]), "{text}");
            Some(id)
        },
        Some("3"),
    )
    .await;
    eprintln!("in flight (Socket.IO): {TOTAL} x 1 KiB pipelined, RSS +{grown} KiB while held");
    assert!(grown < 10 * 1024, "RSS grew by {grown} KiB");
}

/// Socket.IO again, with large messages: socketioxide reads on past the bound (it offers
/// no backpressure), so what waits for the session is bounded in bytes. 1,000 slow
/// requests of 32 KiB (32 MB) while the handlers are held: the client is disconnected
/// once 4 MiB wait, and memory stays bounded.
#[tokio::test]
async fn socketio_clients_sending_large_messages_past_the_bound_are_disconnected() {
    let _alone = crate::common::alone().await;
    const TOTAL: usize = 1_000;
    let gate = Gate::new();
    let server = server(&gate).await;
    let ws = socketio_connect(&server).await;
    let before = rss_kib();
    let (mut tx, mut rx) = ws.split();
    let pad = "p".repeat(32 * 1024);
    let sender = tokio::spawn(async move {
        for i in 0..TOTAL {
            let packet = format!("42{NS},{i}{}", json!(["slow", { "n": i, "pad": pad }]));
            if tx.feed(Message::text(packet)).await.is_err() {
                return;
            }
        }
        let _ = tx.flush().await;
    });
    gate.started(BOUND).await;
    // Disconnected from the namespace (`41`), or the whole connection closed.
    let disconnect = format!("41{NS},");
    loop {
        match tokio::time::timeout(Duration::from_secs(60), rx.next()).await {
            // `1`: Engine.IO's close.
            Ok(Some(Ok(Message::Text(text))))
                if text.as_str() == disconnect || text.as_str() == "1" =>
            {
                break;
            }
            Ok(Some(Ok(Message::Text(text)))) if text.as_str() == "2" => {}
            Ok(Some(Ok(Message::Close(_))) | None | Some(Err(_))) => break,
            other => panic!("expected a disconnect, got {other:?}"),
        }
    }
    let grown = rss_kib().saturating_sub(before);
    sender.abort();
    gate.open.send_replace(true);
    eprintln!(
        "in flight (Socket.IO, large): {TOTAL} x 32 KiB pipelined, RSS +{grown} KiB at the disconnect"
    );
    assert!(grown < 10 * 1024, "RSS grew by {grown} KiB");
}
