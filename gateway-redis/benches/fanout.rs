//! End-to-end fan-out benchmark over real sockets:
//!
//! 1. one message to 1,000 and to 10,000 clients of one instance (local fan-out);
//! 2. one message from a client of instance A to 1,000 clients of instance B, through Redis.
//!
//! Run: `cargo bench -p ws-gateway-redis --bench fanout` (Redis on 127.0.0.1:6379, or set
//! `REDIS_URL`; without Redis the cross-instance part is skipped). Prints deliveries/s and
//! p50/p99 latency (emit on the server to receipt by the client) per scenario.
//!
//! Servers run in child processes (this binary again, `FANOUT_ROLE=server`): 10,000 clients
//! and their 10,000 server-side sockets would not fit one process's file limit.

#![allow(
    missing_docs,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::print_stdout,
    clippy::print_stderr
)]

use std::process::Stdio;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use futures_util::{SinkExt, StreamExt, stream};
use serde::Deserialize;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader};
use tokio::process::{Child, Command};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;
use ws_gateway_axum::prelude::*;
use ws_gateway_redis::{RedisAdapter, RedisConfig};

fn now_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
}

// ---------------------------------------------------------------- server side

#[derive(Deserialize)]
struct Blast {
    room: String,
    round: u32,
}

#[websocket_gateway(path = "/bench")]
struct BenchGateway {
    server: WsServer,
}

#[websocket_gateway]
impl BenchGateway {
    #[subscribe("join")]
    fn join(&self, client: Client, room: String) -> Result<WsResponse<String>, RoomError> {
        client.join(room.clone())?;
        Ok(WsResponse::new("joined", room))
    }

    /// One frame to every member of the room, stamped with the emit time.
    #[subscribe("blast")]
    fn blast(&self, blast: Blast) {
        self.server
            .to(blast.room)
            .emit("tick", &(now_ns(), blast.round))
            .ok();
    }
}

async fn serve() {
    let mut builder = GatewayApp::new().gateway::<BenchGateway>();
    let mut config = ws_gateway_core::ConnectionConfig::default();
    config.rate_limit = None;
    config.ping_interval = None;
    config.idle_timeout = None;
    builder = builder.config(config);
    if let Ok(url) = std::env::var("FANOUT_REDIS") {
        let prefix = std::env::var("FANOUT_PREFIX").unwrap();
        builder = builder.adapter(
            RedisAdapter::connect(RedisConfig::new(url).prefix(prefix))
                .await
                .unwrap(),
        );
    }
    let app = builder.build().unwrap();
    let listener = ws_gateway_axum::bind("127.0.0.1:0".parse().unwrap()).unwrap();
    println!("PORT {}", listener.local_addr().unwrap().port());
    let router = (&app).into_router();
    tokio::spawn(async move { ws_gateway_axum::serve(listener, router).await.unwrap() });
    // Until the parent closes our stdin (or dies).
    let mut sink = Vec::new();
    tokio::io::stdin().read_to_end(&mut sink).await.ok();
}

/// Starts a server process; returns it and its port.
async fn spawn_server(redis: Option<(&str, &str)>) -> (Child, u16) {
    let mut command = Command::new(std::env::current_exe().unwrap());
    command
        .env("FANOUT_ROLE", "server")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .kill_on_drop(true);
    if let Some((url, prefix)) = redis {
        command
            .env("FANOUT_REDIS", url)
            .env("FANOUT_PREFIX", prefix);
    }
    let mut child = command.spawn().unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let line = lines.next_line().await.unwrap().expect("server's port");
    let port = line.strip_prefix("PORT ").unwrap().parse().unwrap();
    (child, port)
}

// ---------------------------------------------------------------- client side

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

#[derive(Deserialize)]
struct Tick {
    data: (u64, u32),
}

async fn connect(port: u16) -> Ws {
    let url = format!("ws://127.0.0.1:{port}/bench");
    for _ in 0..50 {
        match tokio_tungstenite::connect_async(url.as_str()).await {
            Ok((ws, _)) => return ws,
            // The listen backlog overflows under a burst of connects: try again.
            Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    }
    panic!("cannot connect to {url}");
}

async fn member(port: u16) -> Ws {
    let mut ws = connect(port).await;
    ws.send(Message::text(r#"{"event":"join","data":"all"}"#))
        .await
        .unwrap();
    while let Some(frame) = ws.next().await {
        if let Message::Text(text) = frame.unwrap()
            && text.contains("joined")
        {
            return ws;
        }
    }
    panic!("closed before joining");
}

struct Report {
    deliveries: usize,
    elapsed: Duration,
    latencies_ns: Vec<u64>,
}

/// Connects `clients` members to `members_port`, then sends `rounds` blasts from a client
/// of `sender_port`, one after the other: each waits until every member received it.
async fn run(members_port: u16, sender_port: u16, clients: usize, rounds: u32) -> Report {
    let members: Vec<Ws> = stream::iter(0..clients)
        .map(|_| member(members_port))
        .buffer_unordered(64)
        .collect()
        .await;
    let (tx, mut rx) = mpsc::unbounded_channel::<u64>();
    for mut ws in members {
        let tx = tx.clone();
        tokio::spawn(async move {
            let mut got = 0;
            while got < rounds {
                let Some(Ok(Message::Text(text))) = ws.next().await else {
                    return;
                };
                if let Ok(tick) = serde_json::from_str::<Tick>(&text) {
                    tx.send(now_ns().saturating_sub(tick.data.0)).ok();
                    got += 1;
                }
            }
        });
    }
    drop(tx);
    let mut sender = connect(sender_port).await;
    let mut latencies_ns = Vec::with_capacity(clients * rounds as usize);
    let start = Instant::now();
    for round in 0..rounds {
        let blast = format!(r#"{{"event":"blast","data":{{"room":"all","round":{round}}}}}"#);
        sender.send(Message::text(blast)).await.unwrap();
        for _ in 0..clients {
            let latency = tokio::time::timeout(Duration::from_secs(60), rx.recv())
                .await
                .expect("every member receives every round")
                .expect("members alive");
            latencies_ns.push(latency);
        }
    }
    Report {
        deliveries: latencies_ns.len(),
        elapsed: start.elapsed(),
        latencies_ns,
    }
}

fn print(name: &str, mut report: Report) {
    report.latencies_ns.sort_unstable();
    let at = |q: f64| {
        let i = ((report.latencies_ns.len() as f64 - 1.0) * q).round() as usize;
        Duration::from_nanos(report.latencies_ns[i])
    };
    println!(
        "{name:<44} {:>9} deliveries  {:>12.0} deliveries/s  p50 {:>9.2?}  p99 {:>9.2?}",
        report.deliveries,
        report.deliveries as f64 / report.elapsed.as_secs_f64(),
        at(0.50),
        at(0.99),
    );
}

async fn bench() {
    println!("fan-out, real sockets on 127.0.0.1, servers in child processes");
    for (clients, rounds) in [(1_000, 50), (10_000, 10)] {
        let (_server, port) = spawn_server(None).await;
        let report = run(port, port, clients, rounds).await;
        print(
            &format!("local: 1 message -> {clients} clients (x{rounds})"),
            report,
        );
    }

    let url = std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into());
    if RedisAdapter::connect(RedisConfig::new(url.as_str()))
        .await
        .is_err()
    {
        println!("cross-instance: skipped, no Redis at {url}");
        return;
    }
    let prefix = format!("fanout-bench-{}", std::process::id());
    for (clients, rounds) in [(1, 2_000), (1_000, 50)] {
        let (_a, a) = spawn_server(Some((&url, &prefix))).await;
        let (_b, b) = spawn_server(Some((&url, &prefix))).await;
        let report = run(b, a, clients, rounds).await;
        print(
            &format!("via Redis: A -> {clients} clients on B (x{rounds})"),
            report,
        );
    }
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    if std::env::var("FANOUT_ROLE").as_deref() == Ok("server") {
        runtime.block_on(serve());
    } else {
        runtime.block_on(bench());
    }
}
