//! The same server written by hand on axum 0.8, the floor of our stack: `PORT=3000 cargo run
//! --release -p gateway-bench --bin raw-axum` (`-- --help`: the options and exit codes).
//!
//! A WebSocket route at `/` with 4 KiB read and write buffers (as our `ConnectionConfig`),
//! `TCP_NODELAY`, a listen backlog of 1024. Each text frame is parsed as
//! `{"event":..,"data":..}` with the data kept raw; `echo` writes the reply back, `broadcast`
//! encodes `{"event":"broadcast","data":..}` once into a `Utf8Bytes` and hands a clone to
//! every connection's unbounded channel; a connection writes up to 64 queued frames per flush. No limits, no heartbeats, no hooks.

use std::collections::HashMap;
use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use axum::Router;
use axum::extract::State;
use axum::extract::ws::{Message, Utf8Bytes, WebSocket, WebSocketUpgrade};
use axum::response::Response;
use axum::routing::get;
use futures_util::{SinkExt, StreamExt};
use gateway_bench::{Failure, ServerOptions};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use tokio::sync::mpsc;

/// Every connection's outbound channel, by connection number.
#[derive(Clone, Default)]
struct Hub {
    next: Arc<AtomicU64>,
    senders: Arc<Mutex<HashMap<u64, mpsc::UnboundedSender<Utf8Bytes>>>>,
}

impl Hub {
    fn broadcast(&self, frame: &Utf8Bytes) {
        let senders = self.senders.lock().unwrap_or_else(PoisonError::into_inner);
        for sender in senders.values() {
            let _ = sender.send(frame.clone());
        }
    }
}

#[derive(Deserialize)]
struct Incoming<'a> {
    #[serde(borrow)]
    event: &'a str,
    #[serde(borrow)]
    data: Option<&'a RawValue>,
}

#[derive(Serialize)]
struct Outgoing<'a> {
    event: &'a str,
    data: Option<&'a RawValue>,
}

async fn upgrade(ws: WebSocketUpgrade, State(hub): State<Hub>) -> Response {
    ws.read_buffer_size(4 * 1024)
        .write_buffer_size(4 * 1024)
        .on_upgrade(move |socket| connection(socket, hub))
}

async fn connection(socket: WebSocket, hub: Hub) {
    let id = hub.next.fetch_add(1, Ordering::Relaxed);
    let (tx, mut rx) = mpsc::unbounded_channel();
    hub.senders
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .insert(id, tx);
    let (mut sink, mut stream) = socket.split();
    loop {
        tokio::select! {
            out = rx.recv() => match out {
                Some(frame) => {
                    // Write what is queued (up to 64 frames), then flush once.
                    let mut batch = vec![frame];
                    while batch.len() < 64 {
                        match rx.try_recv() {
                            Ok(frame) => batch.push(frame),
                            Err(_) => break,
                        }
                    }
                    let mut frames = futures_util::stream::iter(batch.into_iter().map(|f| Ok(Message::Text(f))));
                    if sink.send_all(&mut frames).await.is_err() {
                        break;
                    }
                }
                None => break,
            },
            message = stream.next() => match message {
                Some(Ok(Message::Text(text))) => {
                    let Ok(incoming) = serde_json::from_str::<Incoming<'_>>(&text) else {
                        continue;
                    };
                    let Ok(reply) = serde_json::to_string(&Outgoing {
                        event: incoming.event,
                        data: incoming.data,
                    }) else {
                        continue;
                    };
                    if incoming.event == "broadcast" {
                        hub.broadcast(&reply.into());
                    } else if incoming.event == "echo"
                        && sink.send(Message::Text(reply.into())).await.is_err()
                    {
                        break;
                    }
                }
                Some(Ok(Message::Close(_)) | Err(_)) | None => break,
                Some(Ok(_)) => {}
            },
        }
    }
    hub.senders
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .remove(&id);
}

#[tokio::main]
async fn main() -> ExitCode {
    let options = ServerOptions::from_command_line(
        "raw-axum",
        "The benchmark server by hand on axum: echo and broadcast at ws://127.0.0.1:PORT/",
    );
    gateway_bench::exit("raw-axum", run(&options).await)
}

async fn run(options: &ServerOptions) -> Result<(), Failure> {
    let addr = options.addr();
    let listener =
        gateway_bench::raw_listener(addr).map_err(|source| Failure::Bind { addr, source })?;
    let app = Router::new()
        .route("/", get(upgrade))
        .with_state(Hub::default());
    axum::serve(listener, app).await.map_err(Failure::runtime)
}
