//! The `ask` event of the three servers that ask for acknowledgements (`bench-server`,
//! `socketio-bench-server`, `raw-socketioxide`), over real sockets: every other client is
//! sent the ask's data as a `question` with an acknowledgement number, answers it, and the
//! sender gets `{"answers":<count>,"ask":<data>}` under `ask`.

// Helpers of tests: a test fails by panicking.
#![allow(clippy::expect_used)]

use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// How long any one step may take.
const STEP: Duration = Duration::from_secs(10);

/// A server process, killed when dropped.
struct Server {
    child: Child,
    port: u16,
}

impl Drop for Server {
    fn drop(&mut self) {
        self.child.kill().ok();
        self.child.wait().ok();
    }
}

/// Starts `binary` on a free port and waits until it listens.
async fn start(binary: &str) -> Server {
    let port = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    let child = Command::new(binary)
        .args(["--port", &port.to_string()])
        .env_remove("PORT")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .spawn()
        .expect("run the server");
    let server = Server { child, port };
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    tokio::time::timeout(STEP, async {
        while TcpStream::connect(addr).await.is_err() {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("the server listens");
    server
}

/// The wire of one server: plain JSON frames or Socket.IO.
#[derive(Clone, Copy)]
enum Wire {
    Json,
    SocketIo,
}

impl Wire {
    async fn connect(self, port: u16) -> Ws {
        let url = match self {
            Self::Json => format!("ws://127.0.0.1:{port}/"),
            Self::SocketIo => format!("ws://127.0.0.1:{port}/socket.io/?EIO=4&transport=websocket"),
        };
        let (mut ws, _) = tokio::time::timeout(STEP, tokio_tungstenite::connect_async(url))
            .await
            .expect("the handshake in time")
            .expect("the handshake");
        if let Self::SocketIo = self {
            let open = self.next(&mut ws).await;
            assert!(
                open.starts_with("0{"),
                "not an Engine.IO open packet: {open}"
            );
            ws.send(Message::text("40"))
                .await
                .expect("send the connect");
            let connect = self.next(&mut ws).await;
            assert!(connect.starts_with("40"), "not a connect: {connect}");
        }
        ws
    }

    /// The next text frame, Engine.IO pings answered on the way.
    async fn next(self, ws: &mut Ws) -> String {
        loop {
            let message = tokio::time::timeout(STEP, ws.next())
                .await
                .expect("a frame in time")
                .expect("the connection open")
                .expect("a frame");
            match message {
                Message::Text(text) if text.as_str() == "2" => {
                    ws.send(Message::text("3")).await.expect("send a pong");
                }
                Message::Text(text) => return text.as_str().to_owned(),
                _ => {}
            }
        }
    }

    /// `event` and `data` as a frame.
    fn event(self, event: &str, data: &Value) -> String {
        match self {
            Self::Json => json!({ "event": event, "data": data }).to_string(),
            Self::SocketIo => format!("42{}", json!([event, data])),
        }
    }

    /// The event, data and acknowledgement number of a frame.
    fn parse(self, text: &str) -> (String, Value, Option<u64>) {
        match self {
            Self::Json => {
                let frame: Value = serde_json::from_str(text).expect("a JSON frame");
                (
                    frame["event"].as_str().expect("an event").to_owned(),
                    frame["data"].clone(),
                    frame["ack"].as_u64(),
                )
            }
            Self::SocketIo => {
                let rest = text.strip_prefix("42").expect("an event packet");
                let at = rest.find('[').expect("the arguments");
                let args: Value = serde_json::from_str(&rest[at..]).expect("JSON arguments");
                (
                    args[0].as_str().expect("an event").to_owned(),
                    args[1].clone(),
                    rest[..at].parse().ok(),
                )
            }
        }
    }

    /// The answer to acknowledgement `ack`.
    fn answer(self, ack: u64, data: &Value) -> String {
        match self {
            Self::Json => json!({ "ack": ack, "data": data }).to_string(),
            Self::SocketIo => format!("43{ack}{}", json!([data])),
        }
    }
}

/// Three receivers answer every question; the sender asks until its tally counts all three
/// (a receiver may be registered a moment after its handshake), then once more to see
/// that every receiver got exactly the ask's data.
async fn every_answer_is_collected(binary: &str, wire: Wire) {
    let server = start(binary).await;
    let (seen_tx, mut seen) = tokio::sync::mpsc::unbounded_channel();
    let mut receivers = Vec::new();
    for _ in 0..3 {
        let mut ws = wire.connect(server.port).await;
        let seen_tx = seen_tx.clone();
        receivers.push(tokio::spawn(async move {
            loop {
                let text = wire.next(&mut ws).await;
                let (event, data, ack) = wire.parse(&text);
                assert_eq!(event, "question", "{text}");
                let ack = ack.unwrap_or_else(|| panic!("a question without a number: {text}"));
                ws.send(Message::text(wire.answer(ack, &json!("ok"))))
                    .await
                    .expect("send the answer");
                seen_tx.send(data).expect("the test waits");
            }
        }));
    }
    let mut sender = wire.connect(server.port).await;
    let mut s = 0;
    loop {
        s += 1;
        let ask = json!({ "s": s, "text": "hello" });
        sender
            .send(Message::text(wire.event("ask", &ask)))
            .await
            .expect("send the ask");
        let (event, tally, ack) = wire.parse(&wire.next(&mut sender).await);
        assert_eq!((event.as_str(), ack), ("ask", None), "{tally}");
        assert_eq!(tally["ask"], ask, "{binary}");
        if tally["answers"] == 3 {
            break;
        }
        assert!(s < 50, "{binary}: never three answers: {tally}");
    }
    let ask = json!({ "s": 0, "text": "last" });
    sender
        .send(Message::text(wire.event("ask", &ask)))
        .await
        .expect("send the ask");
    let (_, tally, _) = wire.parse(&wire.next(&mut sender).await);
    assert_eq!(tally, json!({ "answers": 3, "ask": ask }), "{binary}");
    // The questions of the earlier asks may still be reported: skipped.
    let mut last = 0;
    while last < 3 {
        let data = tokio::time::timeout(STEP, seen.recv())
            .await
            .expect("every receiver reports the last question")
            .expect("the receivers run");
        last += usize::from(data == ask);
    }
    for receiver in receivers {
        receiver.abort();
    }
}

#[tokio::test]
async fn the_gateway_collects_every_answer_over_plain_websockets() {
    every_answer_is_collected(env!("CARGO_BIN_EXE_bench-server"), Wire::Json).await;
}

#[tokio::test]
async fn the_gateway_collects_every_answer_over_socketio() {
    every_answer_is_collected(env!("CARGO_BIN_EXE_socketio-bench-server"), Wire::SocketIo).await;
}

#[tokio::test]
async fn socketioxide_alone_collects_every_answer() {
    every_answer_is_collected(env!("CARGO_BIN_EXE_raw-socketioxide"), Wire::SocketIo).await;
}
