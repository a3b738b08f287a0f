//! The soak test: `cargo run --release -p gateway-soak -- [--clients 2000] [--rooms 50]
//! [--messages 100000] [--rate 5000] [--churn 0.2] [--redis redis://127.0.0.1:6379]
//! [--instances 2] [--recover SECS [--reconnect same|other|any]] [--restart-redis-at SECS]`
//! (`--help` lists them).
//!
//! Two app instances on two ports share rooms through Redis (or, with `--instances 1`, one
//! instance runs alone, in memory). Most clients join a room and stay; a fraction (`churn`)
//! keeps dropping abruptly and reconnecting to a random instance and room. The stable
//! clients send `messages` numbered messages to their rooms at `rate` per second. At the
//! end every stable member of a room must have received every message sent to that room
//! exactly once, in each sender's order: the run prints the figures on standard output and
//! fails (exit code 5) on any loss, duplicate or reordering. The other exit codes say what
//! kept it from finishing (`--help` lists them): 2 bad usage, 3 cannot listen, 4 cannot
//! reach Redis, 1 any other failure.
//!
//! With `--recover SECS` the instances run with connection state recovery (window `SECS`)
//! and the churning clients are checked too: each stays in one room, drops its TCP
//! connection without a close frame and comes back with `?pid=&offset=` to the instance
//! `--reconnect` picks ([`recovering`]), and must miss nothing either. With
//! `--restart-redis-at`, Redis is killed and started again once while the traffic flows
//! ([`redis_server`]).

// A command-line tool: its output is the report.
#![allow(clippy::print_stdout, clippy::print_stderr)]

mod recovering;
mod redis_server;
mod tally;

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use serde::{Deserialize, Serialize};
use tokio::sync::{mpsc, watch};
use tokio_tungstenite::tungstenite::Message;
use ws_gateway_axum::IntoRouter;
use ws_gateway_core::Recovery;
use ws_gateway_core::prelude::*;
use ws_gateway_redis::{RedisAdapter, RedisConfig};

use recovering::{Phase, Reconnect, Recovering, Sessions};
use redis_server::RedisServer;
use tally::{Seen, ms, quantile};

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
  0  every message reached every checked member of its room exactly once, in order
  1  failed while running (a client could not connect or join, an I/O error)
  2  bad usage: an unknown option, a value out of range, no stable client
  3  cannot listen on 127.0.0.1
  4  cannot reach Redis at --redis (REDIS_URL), or cannot start redis-server
  5  the check failed: a message was lost, delivered twice or out of order";

/// The exit codes (`AFTER_HELP` lists them); 0 is success.
mod exit {
    pub(crate) const FAILURE: u8 = 1;
    pub(crate) const USAGE: u8 = 2;
    pub(crate) const BIND: u8 = 3;
    pub(crate) const UNREACHABLE: u8 = 4;
    pub(crate) const CHECK_FAILED: u8 = 5;
}

/// Thousands of clients in rooms across two instances through Redis, with churn (and
/// connection state recovery, --recover); every checked member of a room must receive every
/// message sent to it exactly once, in each sender's order.
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
    /// About how many operations the Redis stream keeps (`RedisConfig::stream_max_len`):
    /// an outage longer than this many messages take loses the oldest of them (default: the
    /// adapter's, 10,000).
    #[arg(long, env = "SOAK_STREAM_MAX_LEN", default_value_t = 10_000, value_parser = at_least_one())]
    stream_max_len: usize,
    /// App instances: 2 share rooms through Redis, 1 runs alone, in memory (no Redis).
    #[arg(long, env = "SOAK_INSTANCES", default_value_t = 2,
          value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..=2))]
    instances: usize,
    /// Connection state recovery on, with this window in seconds: the churning clients stay
    /// in one room, drop abruptly and come back with `?pid=&offset=`, and are checked as the
    /// stable ones are (off when absent: they come back as new clients, unchecked).
    #[arg(long, env = "SOAK_RECOVER", value_parser = clap::builder::RangedU64ValueParser::<u64>::new().range(1..))]
    recover: Option<u64>,
    /// With --recover: the instance a churning client comes back to, the one it dropped
    /// from, the other, or either at random.
    #[arg(long, env = "SOAK_RECONNECT", value_enum, default_value_t = Reconnect::Same)]
    reconnect: Reconnect,
    /// With --recover: the longest a churning client stays away after a drop, in
    /// milliseconds (each time uniformly from none to this), missing what its room gets.
    #[arg(long, env = "SOAK_AWAY_MS", default_value_t = 250)]
    away_ms: u64,
    /// Restart Redis once, this many seconds after the traffic starts: the soak then runs
    /// its own redis-server (from PATH) on a spare port instead of --redis, kills it, and
    /// starts it again --redis-down seconds later.
    #[arg(long, env = "SOAK_RESTART_REDIS_AT", value_parser = seconds)]
    restart_redis_at: Option<f64>,
    /// With --restart-redis-at: how long Redis stays down, in seconds.
    #[arg(long, env = "SOAK_REDIS_DOWN", default_value_t = 2.0, value_parser = seconds)]
    redis_down: f64,
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
    /// The soak's own `redis-server` (`--restart-redis-at`) did not start, or not again.
    OwnRedis(String),
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
            Self::Redis(_) | Self::OwnRedis(_) => exit::UNREACHABLE,
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
            Self::OwnRedis(reason) => f.write_str(reason),
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

/// A duration in seconds, not negative.
fn seconds(value: &str) -> Result<f64, String> {
    let secs: f64 = value.parse().map_err(|e| format!("{e}"))?;
    if secs.is_finite() && secs >= 0.0 {
        Ok(secs)
    } else {
        Err(format!("{secs} is not a number of seconds"))
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

/// Starts one instance, sharing rooms through the Redis at `redis` when given (its adapter
/// is returned too, to watch it reconnect), with recovery on when `recover` gives a window.
async fn instance(
    redis: Option<(&str, usize)>,
    prefix: &str,
    recover: Option<u64>,
) -> Result<(String, Option<RedisAdapter>), Failure> {
    let mut config = ws_gateway_core::ConnectionConfig::default();
    config.rate_limit = None;
    config.outbound_queue = 8_192;
    let mut app = GatewayApp::new().config(config);
    let mut handle = None;
    if let Some((redis, stream_max_len)) = redis {
        let config = RedisConfig::new(redis)
            .prefix(prefix)
            .stream_max_len(stream_max_len);
        let adapter = RedisAdapter::connect(config)
            .await
            .map_err(Failure::Redis)?;
        handle = Some(adapter.clone());
        app = app.adapter(adapter);
    }
    if let Some(window) = recover {
        app = app.recover::<SoakGateway>(Recovery::new(Duration::from_secs(window)));
    }
    let app = app
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
    Ok((url, handle))
}

#[tokio::main]
async fn main() -> ExitCode {
    // A usage error exits here with code 2, `--help` with 0.
    let options = <Options as clap::Parser>::parse();
    // The servers' logs on stderr when `RUST_LOG` asks for them (e.g. `gateway=debug`).
    if let Ok(filter) = tracing_subscriber::EnvFilter::try_from_default_env() {
        tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_writer(std::io::stderr)
            .init();
    }
    match run(&options).await {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => {
            eprintln!(
                "soak: FAILED: messages were lost, delivered twice or out of order (see the figures)"
            );
            ExitCode::from(exit::CHECK_FAILED)
        }
        Err(failure) => {
            eprintln!("soak: {failure}");
            ExitCode::from(failure.exit_code())
        }
    }
}

/// When `--restart-redis-at` took Redis away and gave it back, in seconds since the
/// traffic started.
struct Restarted {
    /// The soak's Redis, kept until the end.
    _server: RedisServer,
    killed: f64,
    started: f64,
    /// When every instance was connected again; none within a minute.
    reconnected: Option<f64>,
}

/// Kills `server` `at` seconds after `traffic`, starts it again `down` seconds later, and
/// waits (up to a minute) for every adapter to be connected again.
async fn restart_redis(
    mut server: RedisServer,
    traffic: Instant,
    at: f64,
    down: f64,
    adapters: Vec<RedisAdapter>,
) -> Result<Restarted, String> {
    tokio::time::sleep_until((traffic + Duration::from_secs_f64(at)).into()).await;
    server.kill().await?;
    let killed = traffic.elapsed().as_secs_f64();
    tokio::time::sleep(Duration::from_secs_f64(down)).await;
    server.restart().await?;
    let started = traffic.elapsed().as_secs_f64();
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut reconnected = None;
    while Instant::now() < deadline {
        if adapters.iter().all(RedisAdapter::is_connected) {
            reconnected = Some(traffic.elapsed().as_secs_f64());
            break;
        }
        // The adapters report no event for it: poll, as the fault tests do.
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Ok(Restarted {
        _server: server,
        killed,
        started,
        reconnected,
    })
}

/// The soak: whether every message reached every checked member of its room exactly once,
/// in each sender's order.
async fn run(options: &Options) -> Result<bool, Failure> {
    let churners = (options.clients as f64 * options.churn) as usize;
    let stable = options.clients - churners;
    if stable == 0 {
        return Err(Failure::Usage(
            "no stable client: raise --clients or lower --churn".into(),
        ));
    }
    if options.instances == 1 && options.restart_redis_at.is_some() {
        return Err(Failure::Usage(
            "--restart-redis-at needs the instances to share Redis: --instances 2".into(),
        ));
    }
    if options.instances == 1 && options.recover.is_some() && options.reconnect == Reconnect::Other
    {
        return Err(Failure::Usage(
            "--reconnect other needs another instance: --instances 2".into(),
        ));
    }
    let sending_secs = options.messages as f64 / options.rate as f64;
    if let Some(at) = options.restart_redis_at
        && at >= sending_secs
    {
        return Err(Failure::Usage(format!(
            "--restart-redis-at {at} is past the end of the traffic ({sending_secs:.1} s: --messages / --rate)"
        )));
    }
    let own_redis = match options.restart_redis_at {
        Some(_) => Some(RedisServer::start().await.map_err(Failure::OwnRedis)?),
        None => None,
    };
    let redis_url = own_redis
        .as_ref()
        .map_or_else(|| options.redis.clone(), RedisServer::url);
    let through_redis = options.instances > 1;
    let prefix = format!("soak-{}", std::process::id());
    let mut urls = Vec::with_capacity(options.instances);
    let mut adapters = Vec::new();
    for _ in 0..options.instances {
        let redis = through_redis.then_some((redis_url.as_str(), options.stream_max_len));
        let (url, adapter) = instance(redis, &prefix, options.recover).await?;
        urls.push(url);
        adapters.extend(adapter);
    }
    let urls: Arc<[String]> = urls.into();
    let start = Instant::now();
    let instances = match (options.instances, &own_redis) {
        (1, _) => "on 1 instance, in memory".to_owned(),
        (n, None) => format!("on {n} instances through Redis"),
        (n, Some(redis)) => format!(
            "on {n} instances through the soak's Redis ({})",
            redis.url()
        ),
    };
    let recovery = match options.recover {
        Some(window) => format!(
            ", recovery on ({window} s window, reconnecting to {})",
            match options.reconnect {
                Reconnect::Same => "the same instance",
                Reconnect::Other => "the other instance",
                Reconnect::Any => "either instance",
            }
        ),
        None => String::new(),
    };
    println!(
        "soak: {} clients ({stable} stable, {churners} churning) in {} rooms {instances}, {} messages at {}/s{recovery}",
        options.clients, options.rooms, options.messages, options.rate
    );

    // Every client whose receipts are checked: its room, what it saw, whether it churns.
    let mut checked: Vec<(String, Arc<Mutex<Seen>>, bool)> = Vec::new();
    // Stable clients: connect, join, then read and record; send what the scheduler says.
    let mut senders = Vec::with_capacity(stable);
    // Why stable clients' connections ended before the run did (a close code, or "broken").
    let ended: Arc<Mutex<BTreeMap<String, usize>>> = Arc::default();
    for i in 0..stable {
        let room = format!("room-{}", i % options.rooms);
        // Every room's members spread over the instances (client `i % rooms + k * rooms` on
        // instance `k`), so that room traffic crosses between them.
        let (ws, _) = tokio_tungstenite::connect_async(&urls[(i / options.rooms) % urls.len()])
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
        checked.push((room, record.clone(), false));
        let ended = ended.clone();
        tokio::spawn(async move {
            loop {
                let message = match stream.next().await {
                    Some(Ok(Message::Close(close))) => {
                        let why = close.map_or("closed without a code".to_owned(), |c| {
                            format!("closed {} {}", u16::from(c.code), c.reason)
                        });
                        *ended
                            .lock()
                            .unwrap_or_else(|e| e.into_inner())
                            .entry(why)
                            .or_default() += 1;
                        return;
                    }
                    Some(Ok(message)) => message,
                    Some(Err(_)) | None => {
                        *ended
                            .lock()
                            .unwrap_or_else(|e| e.into_inner())
                            .entry("broken".to_owned())
                            .or_default() += 1;
                        return;
                    }
                };
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
                record.lock().unwrap_or_else(|e| e.into_inner()).record(
                    say.sender,
                    say.seq,
                    Some(now.saturating_sub(say.sent_us)),
                );
            }
        });
        senders.push(tx);
    }
    let rooms_of_senders: Vec<String> = checked.iter().map(|(room, _, _)| room.clone()).collect();

    // Churning clients. With recovery: each joins a room for good, then drops abruptly and
    // comes back with its session (see `recovering`). Without: connect, join a random room,
    // stay a while, drop without a close frame, repeat, unchecked.
    let running = Arc::new(AtomicU64::new(1));
    let reconnects = Arc::new(AtomicU64::new(0));
    let sessions = Arc::new(Mutex::new(Sessions::default()));
    let (phase, phases) = watch::channel(Phase::Churn);
    for i in 0..churners {
        let seed = 0x9E37_79B9_7F4A_7C15 ^ (i as u64 + 1);
        if options.recover.is_some() {
            let j = stable + i;
            let room = format!("room-{}", j % options.rooms);
            let seen = Arc::new(Mutex::new(Seen::default()));
            let (client, ws) = Recovering::join(recovering::Setup {
                urls: urls.clone(),
                instance: (j / options.rooms) % urls.len(),
                room: room.clone(),
                seed,
                reconnect: options.reconnect,
                away: Duration::from_millis(options.away_ms),
                seen: seen.clone(),
                sessions: sessions.clone(),
                start,
            })
            .await
            .map_err(|err| Failure::runtime(format!("churning client {i}: {err}")))?;
            checked.push((room, seen, true));
            tokio::spawn(client.run(ws, phases.clone()));
            continue;
        }
        let urls = urls.clone();
        let running = running.clone();
        let reconnects = reconnects.clone();
        let rooms = options.rooms;
        tokio::spawn(async move {
            let mut rng = Rng(seed);
            while running.load(Ordering::Relaxed) == 1 {
                let url = &urls[rng.below(urls.len())];
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
    let traffic = Instant::now();
    let restart = match (own_redis, options.restart_redis_at) {
        (Some(server), Some(at)) => Some(tokio::spawn(restart_redis(
            server,
            traffic,
            at,
            options.redis_down,
            adapters.clone(),
        ))),
        _ => None,
    };
    let mut expected: HashMap<String, Vec<(u32, u32)>> = HashMap::new();
    let mut rng = Rng(42);
    let mut seqs = vec![0u32; stable];
    let mut tick = tokio::time::interval(Duration::from_millis(1));
    let mut sent = 0;
    while sent < options.messages {
        tick.tick().await;
        // Whatever is due by now, so that a rate below 1,000/s is kept too.
        let due = ((traffic.elapsed().as_secs_f64() * options.rate as f64) as usize)
            .min(options.messages);
        while sent < due {
            let sender = rng.below(stable);
            let seq = seqs[sender];
            seqs[sender] += 1;
            let room = rooms_of_senders[sender].clone();
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
    let sending = traffic.elapsed();
    // The churning clients with recovery come back one last time and stay.
    let _ = phase.send(Phase::Stay);

    // Wait for the deliveries to settle: until every expected message arrived (duplicates
    // are not counted: they would end the wait early) or nothing new arrives for two seconds.
    let total_expected: usize = checked
        .iter()
        .map(|(room, _, _)| expected.get(room).map_or(0, Vec::len))
        .sum();
    let mut last = 0;
    let mut quiet = Instant::now();
    loop {
        let received: usize = checked
            .iter()
            .map(|(_, r, _)| r.lock().unwrap_or_else(|e| e.into_inner()).counts.len())
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
    let _ = phase.send(Phase::Done);
    let restarted = match restart {
        Some(task) => Some(
            task.await
                .map_err(Failure::runtime)?
                .map_err(Failure::OwnRedis)?,
        ),
        None => None,
    };

    let (mut lost, mut lost_churning, mut duplicated, mut reordered) = (0, 0, 0, 0);
    let mut deliveries = 0usize;
    let mut latencies = Vec::new();
    for (room, record, churning) in &checked {
        let record = record.lock().unwrap_or_else(|e| e.into_inner());
        for key in expected.get(room).map_or(&[][..], Vec::as_slice) {
            match record.counts.get(key) {
                None => {
                    lost += 1;
                    lost_churning += usize::from(*churning);
                }
                Some(1) => {}
                Some(n) => duplicated += (*n - 1) as usize,
            }
        }
        reordered += record.reordered;
        deliveries += record.deliveries;
        latencies.extend_from_slice(&record.latencies_us);
    }
    latencies.sort_unstable();
    let checked_churners = checked.iter().filter(|(_, _, churning)| *churning).count();
    println!(
        "messages sent:     {sent} in {:.1} s",
        sending.as_secs_f64()
    );
    println!(
        "expected:          {total_expected} deliveries, to {stable} stable and {checked_churners} churning members"
    );
    println!("deliveries:        {deliveries}");
    println!("lost:              {lost} (of which to churning members: {lost_churning})");
    println!("duplicated:        {duplicated}");
    println!("reordered:         {reordered}");
    if options.recover.is_some() {
        let mut sessions = sessions.lock().unwrap_or_else(|e| e.into_inner());
        sessions.to_session_us.sort_unstable();
        sessions.to_replayed_us.sort_unstable();
        println!(
            "churn reconnects:  {} ({} failed attempts retried)",
            sessions.reconnects, sessions.failed
        );
        println!(
            "sessions:          {} recovered, {} fresh",
            sessions.recovered, sessions.fresh
        );
        if sessions.to_session_us.is_empty() {
            println!("recovery latency:  - (no session recovered)");
        } else {
            println!(
                "recovery latency:  to the session frame p50 {}, p99 {}; to the last missed frame p50 {}, p99 {}",
                ms(quantile(&sessions.to_session_us, 0.50)),
                ms(quantile(&sessions.to_session_us, 0.99)),
                ms(quantile(&sessions.to_replayed_us, 0.50)),
                ms(quantile(&sessions.to_replayed_us, 0.99)),
            );
        }
    } else {
        println!("churn reconnects:  {}", reconnects.load(Ordering::Relaxed));
    }
    if let Some(restarted) = &restarted {
        let reconnected = restarted.reconnected.map_or_else(
            || "not within a minute".to_owned(),
            |at| format!("at {at:.1} s"),
        );
        println!(
            "redis restart:     killed at {:.1} s, started again at {:.1} s, every instance connected again {reconnected}",
            restarted.killed, restarted.started
        );
    }
    let ended = std::mem::take(&mut *ended.lock().unwrap_or_else(|e| e.into_inner()));
    if !ended.is_empty() {
        let why: Vec<String> = ended.iter().map(|(why, n)| format!("{n} {why}")).collect();
        println!(
            "stable ended:      {} (their connections ended before the run did)",
            why.join(", ")
        );
    }
    println!(
        "latency:           p50 {}, p99 {}, max {} (stable members)",
        ms(quantile(&latencies, 0.50)),
        ms(quantile(&latencies, 0.99)),
        ms(latencies.last().copied().unwrap_or(0))
    );
    println!(
        "peak RSS:          {} MiB (every instance and every client, one process)",
        peak_rss_kib() / 1024
    );
    if lost > 0 || duplicated > 0 || reordered > 0 {
        return Ok(false);
    }
    println!("soak: ok");
    Ok(true)
}
