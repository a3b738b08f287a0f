//! The soak test: `cargo run --release -p gateway-soak -- [--clients 2000] [--rooms 50]
//! [--messages 100000] [--rate 5000] [--churn 0.2] [--redis redis://127.0.0.1:6379]`
//! (`--help` lists them).
//!
//! Two app instances on two ports share rooms through Redis. Most clients join a room and
//! stay; a fraction (`churn`) keeps dropping abruptly and reconnecting to a random instance
//! and room. The stable clients send `messages` numbered messages to their rooms at `rate`
//! per second. At the end every stable member of a room must have received every message
//! sent to that room exactly once: the run prints the figures on standard output and fails
//! (exit code 5) on any loss or duplicate. The other exit codes say what kept it from
//! finishing (`--help` lists them): 2 bad usage, 3 cannot listen, 4 cannot reach Redis, 1
//! any other failure.

// A command-line tool: its output is the report.
#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::collections::HashMap;
use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;
use ws_gateway_axum::IntoRouter;
use ws_gateway_core::prelude::*;
use ws_gateway_redis::{RedisAdapter, RedisConfig};

/// One chat line: who sent it, its number, when (µs since the run began).
#[derive(Clone, Debug, Serialize, Deserialize)]
struct Say {
    room: String,
    sender: u32,
    seq: u32,
    sent_us: u64,
}

/// The gateway every instance serves.
#[websocket_gateway(path = "/soak")]
pub struct SoakGateway {
    server: WsServer,
}

#[websocket_gateway]
impl SoakGateway {
    #[subscribe("join")]
    fn join(&self, client: Client, room: String) -> Result<String, RoomError> {
        client.join(room.clone())?;
        Ok(room)
    }

    #[subscribe("say")]
    fn say(&self, say: Say) {
        let _ = self.server.to(say.room.clone()).emit("said", &say);
    }
}

/// The end of `--help`: where the output goes and what the exit codes mean.
const AFTER_HELP: &str = "\
The figures go to standard output, the reason of a failure to standard error.

Exit codes:
  0  every message reached every stable member of its room exactly once
  1  failed while running (a client could not connect or join, an I/O error)
  2  bad usage: an unknown option, a value out of range, no stable client
  3  cannot listen on 127.0.0.1
  4  cannot reach Redis at --redis (REDIS_URL)
  5  the check failed: a message was lost or delivered twice";

/// The exit codes (`AFTER_HELP` lists them); 0 is success.
mod exit {
    pub(crate) const FAILURE: u8 = 1;
    pub(crate) const USAGE: u8 = 2;
    pub(crate) const BIND: u8 = 3;
    pub(crate) const UNREACHABLE: u8 = 4;
    pub(crate) const CHECK_FAILED: u8 = 5;
}

/// Thousands of clients in rooms across two instances through Redis, with churn; every
/// stable member of a room must receive every message sent to it exactly once.
#[derive(Debug, clap::Parser)]
#[command(name = "soak", version, after_help = AFTER_HELP)]
struct Options {
    /// Clients in all, stable and churning.
    #[arg(long, env = "SOAK_CLIENTS", default_value_t = 2_000)]
    clients: usize,
    /// Rooms the clients are spread over.
    #[arg(long, env = "SOAK_ROOMS", default_value_t = 50, value_parser = at_least_one())]
    rooms: usize,
    /// Messages the stable clients send in all.
    #[arg(long, env = "SOAK_MESSAGES", default_value_t = 100_000)]
    messages: usize,
    /// Messages sent per second.
    #[arg(long, env = "SOAK_RATE", default_value_t = 5_000, value_parser = at_least_one())]
    rate: usize,
    /// Fraction of the clients that keep dropping and reconnecting (0 to 1, below 1).
    #[arg(long, env = "SOAK_CHURN", default_value_t = 0.2, value_parser = churn)]
    churn: f64,
    /// The Redis both instances share rooms through.
    #[arg(long, env = "REDIS_URL", default_value = "redis://127.0.0.1:6379")]
    redis: String,
}

/// Why the soak did not finish; each has its exit code.
#[derive(Debug)]
enum Failure {
    /// The options leave nothing to measure.
    Usage(String),
    /// An instance could not listen.
    Bind(std::io::Error),
    /// An instance could not reach Redis, or `--redis` is not a Redis URL.
    Redis(ws_gateway_redis::Error),
    /// Anything else.
    Runtime(Box<dyn std::error::Error>),
}

impl Failure {
    fn runtime(err: impl Into<Box<dyn std::error::Error>>) -> Self {
        Self::Runtime(err.into())
    }

    fn exit_code(&self) -> u8 {
        match self {
            Self::Usage(_) | Self::Redis(ws_gateway_redis::Error::InvalidUrl { .. }) => exit::USAGE,
            Self::Bind(_) => exit::BIND,
            Self::Redis(_) => exit::UNREACHABLE,
            Self::Runtime(_) => exit::FAILURE,
        }
    }
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Usage(reason) => f.write_str(reason),
            Self::Bind(err) => write!(f, "cannot listen on 127.0.0.1: {err}"),
            Self::Redis(err) => write!(f, "{err}"),
            Self::Runtime(err) => write!(f, "{err}"),
        }
    }
}

/// A count of at least 1.
fn at_least_one() -> clap::builder::RangedU64ValueParser<usize> {
    clap::builder::RangedU64ValueParser::new().range(1..)
}

/// A churn fraction: at least one client must stay to send and receive.
fn churn(value: &str) -> Result<f64, String> {
    let churn: f64 = value.parse().map_err(|e| format!("{e}"))?;
    if (0.0..1.0).contains(&churn) {
        Ok(churn)
    } else {
        Err(format!("{churn} is not in 0..1"))
    }
}

/// A tiny deterministic random number generator (xorshift), so runs are reproducible.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// What a stable client saw.
#[derive(Default)]
struct Seen {
    /// (sender, seq) → times received.
    counts: HashMap<(u32, u32), u32>,
    latencies_us: Vec<u64>,
}

fn peak_rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

async fn instance(redis: &str, prefix: &str) -> Result<String, Failure> {
    let adapter = RedisAdapter::connect(RedisConfig::new(redis).prefix(prefix))
        .await
        .map_err(Failure::Redis)?;
    let mut config = ws_gateway_core::ConnectionConfig::default();
    config.rate_limit = None;
    config.outbound_queue = 8_192;
    let app = GatewayApp::new()
        .config(config)
        .adapter(adapter)
        .gateway::<SoakGateway>()
        .build()
        .map_err(Failure::runtime)?;
    let listener =
        ws_gateway_axum::bind(SocketAddr::from(([127, 0, 0, 1], 0))).map_err(Failure::Bind)?;
    let url = format!(
        "ws://{}/soak",
        listener.local_addr().map_err(Failure::runtime)?
    );
    let router = app.into_router();
    tokio::spawn(async move {
        if let Err(err) = ws_gateway_axum::serve(listener, router).await {
            eprintln!("instance failed: {err}");
        }
    });
    Ok(url)
}

#[tokio::main]
async fn main() -> ExitCode {
    // A usage error exits here with code 2, `--help` with 0.
    let options = <Options as clap::Parser>::parse();
    match run(&options).await {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => {
            eprintln!("soak: FAILED: messages were lost or delivered twice (see the figures)");
            ExitCode::from(exit::CHECK_FAILED)
        }
        Err(failure) => {
            eprintln!("soak: {failure}");
            ExitCode::from(failure.exit_code())
        }
    }
}

/// The soak: whether every message reached every stable member of its room exactly once.
async fn run(options: &Options) -> Result<bool, Failure> {
    let prefix = format!("soak-{}", std::process::id());
    let urls = [
        instance(&options.redis, &prefix).await?,
        instance(&options.redis, &prefix).await?,
    ];
    let start = Instant::now();
    let churners = (options.clients as f64 * options.churn) as usize;
    let stable = options.clients - churners;
    if stable == 0 {
        return Err(Failure::Usage(
            "no stable client: raise --clients or lower --churn".into(),
        ));
    }
    println!(
        "soak: {} clients ({stable} stable, {churners} churning) in {} rooms on 2 instances, {} messages at {}/s",
        options.clients, options.rooms, options.messages, options.rate
    );

    // Stable clients: connect, join, then read and record; send what the scheduler says.
    let mut senders = Vec::with_capacity(stable);
    let mut seen = Vec::with_capacity(stable);
    let mut readers = Vec::with_capacity(stable);
    for i in 0..stable {
        let room = format!("room-{}", i % options.rooms);
        // Every room's members spread over the instances (client `i % rooms + k * rooms` on
        // instance `k % 2`), so that room traffic crosses between them.
        let (ws, _) = tokio_tungstenite::connect_async(&urls[(i / options.rooms) % 2])
            .await
            .map_err(|err| Failure::runtime(format!("client {i} cannot connect: {err}")))?;
        let (mut sink, mut stream) = ws.split();
        sink.send(Message::text(
            serde_json::json!({"event": "join", "data": room}).to_string(),
        ))
        .await
        .map_err(|err| Failure::runtime(format!("client {i} cannot send its join: {err}")))?;
        // Wait for the join's reply before any message is sent.
        loop {
            match stream.next().await {
                Some(Ok(Message::Text(text))) if text.contains(r#""event":"join""#) => break,
                Some(Ok(_)) => {}
                other => {
                    return Err(Failure::runtime(format!(
                        "client {i} failed to join: {other:?}"
                    )));
                }
            }
        }
        let (tx, mut rx) = mpsc::unbounded_channel::<String>();
        tokio::spawn(async move {
            while let Some(text) = rx.recv().await {
                if sink.send(Message::text(text)).await.is_err() {
                    break;
                }
            }
        });
        let record = Arc::new(Mutex::new(Seen::default()));
        seen.push((room, record.clone()));
        readers.push(tokio::spawn(async move {
            while let Some(Ok(message)) = stream.next().await {
                let Message::Text(text) = message else {
                    continue;
                };
                let Ok(frame) = serde_json::from_str::<serde_json::Value>(&text) else {
                    continue;
                };
                if frame["event"] != "said" {
                    continue;
                }
                let Ok(say) = serde_json::from_value::<Say>(frame["data"].clone()) else {
                    continue;
                };
                let now = start.elapsed().as_micros() as u64;
                let mut record = record.lock().unwrap_or_else(|e| e.into_inner());
                *record.counts.entry((say.sender, say.seq)).or_insert(0) += 1;
                record.latencies_us.push(now.saturating_sub(say.sent_us));
            }
        }));
        senders.push(tx);
    }

    // Churning clients: connect, join, stay a while, drop without a close frame, repeat.
    let running = Arc::new(AtomicU64::new(1));
    let reconnects = Arc::new(AtomicU64::new(0));
    for i in 0..churners {
        let urls = urls.clone();
        let running = running.clone();
        let reconnects = reconnects.clone();
        let rooms = options.rooms;
        tokio::spawn(async move {
            let mut rng = Rng(0x9E37_79B9_7F4A_7C15 ^ (i as u64 + 1));
            while running.load(Ordering::Relaxed) == 1 {
                let url = &urls[rng.below(2)];
                if let Ok((mut ws, _)) = tokio_tungstenite::connect_async(url).await {
                    let room = format!("room-{}", rng.below(rooms));
                    let join = serde_json::json!({"event": "join", "data": room}).to_string();
                    let _ = ws.send(Message::text(join)).await;
                    let stay = Duration::from_millis(100 + rng.below(900) as u64);
                    let _ = tokio::time::timeout(stay, async {
                        while let Some(Ok(_)) = ws.next().await {}
                    })
                    .await;
                    reconnects.fetch_add(1, Ordering::Relaxed);
                    drop(ws); // abrupt: no close frame
                }
            }
        });
    }

    // The scheduler: `rate` messages a second, each from a random stable client to its room.
    let mut expected: HashMap<String, Vec<(u32, u32)>> = HashMap::new();
    let mut rng = Rng(42);
    let mut seqs = vec![0u32; stable];
    let mut tick = tokio::time::interval(Duration::from_millis(1));
    let mut sent = 0;
    let traffic = Instant::now();
    while sent < options.messages {
        tick.tick().await;
        // Whatever is due by now, so that a rate below 1,000/s is kept too.
        let due = ((traffic.elapsed().as_secs_f64() * options.rate as f64) as usize)
            .min(options.messages);
        while sent < due {
            let sender = rng.below(stable);
            let seq = seqs[sender];
            seqs[sender] += 1;
            let room = seen[sender].0.clone();
            let say = Say {
                room: room.clone(),
                sender: sender as u32,
                seq,
                sent_us: start.elapsed().as_micros() as u64,
            };
            let text = serde_json::json!({"event": "say", "data": say}).to_string();
            let _ = senders[sender].send(text);
            expected.entry(room).or_default().push((sender as u32, seq));
            sent += 1;
        }
    }
    let sending = start.elapsed();

    // Wait for the deliveries to settle: until nothing new arrives for two seconds.
    let total_expected: usize = seen
        .iter()
        .map(|(room, _)| expected.get(room).map_or(0, Vec::len))
        .sum();
    let mut last = 0;
    let mut quiet = Instant::now();
    loop {
        let received: usize = seen
            .iter()
            .map(|(_, r)| {
                r.lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .latencies_us
                    .len()
            })
            .sum();
        if received >= total_expected || quiet.elapsed() > Duration::from_secs(2) {
            break;
        }
        if received != last {
            last = received;
            quiet = Instant::now();
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    running.store(0, Ordering::Relaxed);

    let mut losses = 0usize;
    let mut duplicates = 0usize;
    let mut deliveries = 0usize;
    let mut latencies = Vec::new();
    for (room, record) in &seen {
        let record = record.lock().unwrap_or_else(|e| e.into_inner());
        for key in expected.get(room).map_or(&[][..], Vec::as_slice) {
            match record.counts.get(key) {
                None => losses += 1,
                Some(1) => {}
                Some(n) => duplicates += (*n - 1) as usize,
            }
        }
        deliveries += record.latencies_us.len();
        latencies.extend_from_slice(&record.latencies_us);
    }
    latencies.sort_unstable();
    let pct = |p: f64| {
        latencies
            .get(((latencies.len() as f64 * p) as usize).min(latencies.len().saturating_sub(1)))
            .copied()
            .unwrap_or(0)
    };
    println!(
        "messages sent:     {sent} in {:.1} s",
        sending.as_secs_f64()
    );
    println!("deliveries:        {deliveries} (expected {total_expected})");
    println!("losses:            {losses}");
    println!("duplicates:        {duplicates}");
    println!("churn reconnects:  {}", reconnects.load(Ordering::Relaxed));
    println!(
        "latency:           p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        pct(0.50) as f64 / 1000.0,
        pct(0.99) as f64 / 1000.0,
        latencies.last().copied().unwrap_or(0) as f64 / 1000.0
    );
    println!(
        "peak RSS:          {} MiB (both instances and every client, one process)",
        peak_rss_kib() / 1024
    );
    if losses > 0 || duplicates > 0 {
        return Ok(false);
    }
    println!("soak: ok");
    Ok(true)
}
