//! What the tests of the benchmark servers share: starting a server process, and speaking
//! plain JSON frames or Socket.IO to it over a real WebSocket.

// Each test binary uses part of it.
#![allow(dead_code)]

use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

pub(crate) type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// How long any one step may take.
pub(crate) const STEP: Duration = Duration::from_secs(10);

/// A server process, killed when dropped.
pub(crate) struct Server {
    child: Child,
    pub(crate) port: u16,
}

impl Drop for Server {
    fn drop(&mut self) {
        self.child.kill().ok();
        self.child.wait().ok();
    }
}

/// Starts `binary` on a free port and waits until it listens.
pub(crate) async fn start(binary: &str) -> Server {
    start_with(binary, &[]).await
}

/// Starts `binary` on a free port with these further arguments and waits until it listens.
pub(crate) async fn start_with(binary: &str, args: &[&str]) -> Server {
    let port = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    let child = Command::new(binary)
        .args(["--port", &port.to_string()])
        .args(args)
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
pub(crate) enum Wire {
    Json,
    SocketIo,
}

impl Wire {
    pub(crate) async fn connect(self, port: u16) -> Ws {
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
    pub(crate) async fn next(self, ws: &mut Ws) -> String {
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
    pub(crate) fn event(self, event: &str, data: &Value) -> String {
        match self {
            Self::Json => json!({ "event": event, "data": data }).to_string(),
            Self::SocketIo => format!("42{}", json!([event, data])),
        }
    }

    /// The event, data and acknowledgement number of a frame.
    pub(crate) fn parse(self, text: &str) -> (String, Value, Option<u64>) {
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
    pub(crate) fn answer(self, ack: u64, data: &Value) -> String {
        match self {
            Self::Json => json!({ "ack": ack, "data": data }).to_string(),
            Self::SocketIo => format!("43{ack}{}", json!([data])),
        }
    }
}
