//! The load generator of the benchmarks (`bench/run.sh` drives it): `cargo run --release -p
//! gateway-loadgen -- --port 3000 --server-pid <pid> echo --connections 64`.
//!
//! It speaks the JSON protocol `{"event":..,"data":..}` over plain WebSockets, so it measures
//! our gateway, a hand-written axum server and a NestJS app alike; with `--protocol socketio`
//! it speaks Socket.IO over Engine.IO v4's WebSocket transport instead (namespace `/`,
//! `42["event",data]` frames, Engine.IO pings answered), for our Socket.IO adapter and
//! socketioxide alone. Modes:
//! - `echo`: N connections each send an `echo` event (`--event` another) and wait for the
//!   reply, in a loop; round trips per second and p50/p99/p999 latency.
//! - `broadcast`: R receivers and one sender of `broadcast` events carrying a sequence number
//!   and a send timestamp; deliveries per second and delivery latency. The sender keeps at
//!   most `--window` broadcasts ahead of the slowest receiver, so no server queue overflows;
//!   when the time is up it stops, and the receivers are given the broadcasts still in flight
//!   before they close.
//! - `ask`: R receivers answering every question the server asks with an acknowledgement
//!   (`{"ack":N,"data":"ok"}`; Socket.IO: the ACK packet `43N["ok"]`), and one sender of `ask`
//!   events, each of which the server sends to every receiver as a `question` and answers
//!   with how many answered (`{"answers":<count>,"ask":<data>}` under `ask`), at most
//!   `--window` asks in flight; answers collected per second and the latency of an ask.
//!
//! Rates count the measured window only; `echo`, `broadcast` and `ask` also print `total=`,
//! every round trip (delivery to a receiver, answer collected) the server completed over the
//! whole run, warm-up and the last in-flight ones included, for counts of the server's work
//! such as `bench/callgrind.sh` divides by.
//! - `idle`: opens N connections from source addresses spread over 127.0.0.x (past the
//!   ephemeral-port limit of one address) and holds them; the server's RSS per connection.
//! - `rooms`: room traffic across several instances (`--ports`) sharing rooms through Redis:
//!   rooms of `--members` members, each room's members on other instances than its sender,
//!   who emits `say` to the room; deliveries per second, delivery latency, and the server
//!   CPU of all instances (`--server-pid` lists them) per delivery (see `rooms.rs`).
//! - `connect`: opens, completes the handshake of (for Socket.IO: the WebSocket upgrade, the
//!   Engine.IO open packet and the namespace's connect), and closes connections in a loop;
//!   connections per second.
//!
//! With `--server-pid` every mode also reads the server's CPU time (user + system, from
//! `/proc/<pid>/stat`) over the measured interval and prints it per message, so results
//! stay comparable when the load generator, not the server, is the bottleneck.
//!
//! The last line of the output is machine-readable: `RESULT key=value ...`. The report goes
//! to standard output, the reason of a failure to standard error; the exit code says what
//! failed (`--help` lists the codes): 2 bad usage, 4 nothing answers at the server's address,
//! 1 a failure during the run.

// A command-line tool: its output is the report.
#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

mod rooms;

use clap::{Parser, Subcommand, ValueEnum};
use futures_util::{SinkExt, StreamExt};
use hdrhistogram::Histogram;
use tokio::net::{TcpSocket, TcpStream};
use tokio::sync::{Semaphore, mpsc};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::{Message, Utf8Bytes};

use crate::rooms::{RoomShape, rooms};

type Error = Box<dyn std::error::Error + Send + Sync>;
type Ws = WebSocketStream<TcpStream>;

/// The data of the echo request: a ~60-byte frame in the JSON protocol, ~50 in Socket.IO's.
const ECHO_DATA: &str = r#"{"user":"bench","text":"hello, gateway"}"#;

/// How long the protocol's own handshake (after the WebSocket one) may take.
const OPEN_TIMEOUT: Duration = Duration::from_secs(10);

/// The wire protocol spoken to the server: how events are framed, and the handshake and
/// housekeeping around them. Every mode goes through it, so the measurements are the same
/// code for every protocol.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum Protocol {
    /// `{"event":..,"data":..}` text frames (our JSON adapter, raw axum, NestJS's
    /// platform-ws).
    Json,
    /// Socket.IO over Engine.IO v4's WebSocket transport, namespace `/`: `42["event",data]`
    /// text frames, Engine.IO pings (`2`) answered with pongs (`3`).
    Socketio,
}

impl Protocol {
    fn name(self) -> &'static str {
        match self {
            Self::Json => "json",
            Self::Socketio => "socketio",
        }
    }

    /// The WebSocket path when `--path` is not given.
    fn default_path(self) -> &'static str {
        match self {
            Self::Json => "/",
            Self::Socketio => "/socket.io/",
        }
    }

    /// The URL to connect to.
    fn url(self, host: Ipv4Addr, port: u16, path: &str) -> String {
        match self {
            Self::Json => format!("ws://{host}:{port}{path}"),
            Self::Socketio => format!("ws://{host}:{port}{path}?EIO=4&transport=websocket"),
        }
    }

    /// A text frame carrying `event` with `data` (JSON text).
    fn encode(self, event: &str, data: &str) -> String {
        match self {
            Self::Json => format!(r#"{{"event":"{event}","data":{data}}}"#),
            Self::Socketio => format!(r#"42["{event}",{data}]"#),
        }
    }

    /// Whether `text` carries event `event`.
    fn is_event(self, text: &str, event: &str) -> bool {
        let prefix = match self {
            Self::Json => r#"{"event":""#,
            Self::Socketio => r#"42[""#,
        };
        text.strip_prefix(prefix)
            .and_then(|rest| rest.strip_prefix(event))
            .is_some_and(|rest| rest.starts_with('"'))
    }

    /// The acknowledgement number of `text` if it is a `question` the server asks with an
    /// acknowledgement: `{"event":"question","data":..,"ack":N}` (the number last, as the
    /// gateway writes it), or Socket.IO's `42N["question",..]`.
    fn question_ack(self, text: &str) -> Option<u64> {
        match self {
            Self::Json => {
                if !self.is_event(text, "question") {
                    return None;
                }
                let key = r#","ack":"#;
                digits(&text[text.rfind(key)? + key.len()..])
            }
            Self::Socketio => {
                let rest = text.strip_prefix("42")?;
                let end = rest.find(|c: char| !c.is_ascii_digit())?;
                rest[end..]
                    .starts_with(r#"["question""#)
                    .then(|| digits(&rest[..end]))
                    .flatten()
            }
        }
    }

    /// The answer to acknowledgement `ack` with `data` (JSON text): `{"ack":N,"data":..}`, or
    /// Socket.IO's ACK packet `43N[..]`.
    fn answer_ack(self, ack: u64, data: &str) -> String {
        match self {
            Self::Json => format!(r#"{{"ack":{ack},"data":{data}}}"#),
            Self::Socketio => format!("43{ack}[{data}]"),
        }
    }

    /// What `text` must be answered with at the protocol level (Engine.IO's pong to its
    /// ping), when it is housekeeping rather than an event.
    fn answer(self, text: &str) -> Option<&'static str> {
        match self {
            Self::Socketio if text == "2" => Some("3"),
            _ => None,
        }
    }

    /// Completes the protocol's own handshake once the WebSocket is open. Socket.IO: the
    /// server's Engine.IO open packet `0{"sid":..}`, our connect to namespace `/` (`40`),
    /// the server's `40{"sid":..}`.
    async fn open(self, ws: &mut Ws) -> Result<(), Error> {
        match self {
            Self::Json => Ok(()),
            Self::Socketio => {
                let handshake = async {
                    let open = next_text(self, ws)
                        .await
                        .ok_or("closed before the Engine.IO open packet")?;
                    if !open.starts_with("0{") {
                        return Err(format!("expected an Engine.IO open packet, got {open}").into());
                    }
                    ws.send(Message::text("40")).await?;
                    let connect = next_text(self, ws)
                        .await
                        .ok_or("closed before the namespace's connect")?;
                    if !connect.starts_with("40") {
                        return Err(format!("namespace / refused the connect: {connect}").into());
                    }
                    Ok(())
                };
                tokio::time::timeout(OPEN_TIMEOUT, handshake)
                    .await
                    .map_err(|_| "Socket.IO handshake timed out")?
            }
        }
    }
}

/// The next text frame that is not the protocol's housekeeping, answering that on the way
/// (Engine.IO pings); `None` once the connection is closed or failed.
async fn next_text(protocol: Protocol, ws: &mut Ws) -> Option<Utf8Bytes> {
    loop {
        match ws.next().await? {
            // A server with connection state recovery on greets every connection with its
            // `session` frame: not a reply to anything measured.
            Ok(Message::Text(text)) if text.starts_with(r#"{"event":"session","#) => {}
            Ok(Message::Text(text)) => match protocol.answer(&text) {
                Some(answer) => ws.send(Message::text(answer)).await.ok()?,
                None => return Some(text),
            },
            Ok(_) => {}
            Err(_) => return None,
        }
    }
}

/// The end of `--help`: where the report goes and what the exit codes mean.
const AFTER_HELP: &str = "\
The report goes to standard output, its last line `RESULT key=value ...`; the reason of a \
failure goes to standard error.

Exit codes:
  0  measured
  1  failed during the run (a connection or handshake failed, an I/O error)
  2  bad usage: an unknown option, a value out of range
  4  nothing answers at HOST:PORT";

/// Exit code: failed during the run.
const EXIT_FAILURE: u8 = 1;
/// Exit code: nothing answers at the server's address.
const EXIT_UNREACHABLE: u8 = 4;

/// Command line.
#[derive(Parser, Debug)]
#[command(
    name = "loadgen",
    about = "WebSocket load generator for the JSON event protocol and Socket.IO",
    after_help = AFTER_HELP
)]
struct Cli {
    /// Server host (an IPv4 address).
    #[arg(long, env = "LOADGEN_HOST", default_value = "127.0.0.1", global = true)]
    host: Ipv4Addr,
    /// Server port.
    #[arg(long, env = "LOADGEN_PORT", default_value_t = 3000, global = true)]
    port: u16,
    /// The protocol spoken: JSON `{"event":..,"data":..}` frames, or Socket.IO (Engine.IO
    /// v4, WebSocket transport, namespace `/`).
    #[arg(long, env = "LOADGEN_PROTOCOL", value_enum, default_value_t = Protocol::Json, global = true)]
    protocol: Protocol,
    /// WebSocket path (default: `/` for JSON, `/socket.io/` for Socket.IO).
    #[arg(long, env = "LOADGEN_PATH", global = true)]
    path: Option<String>,
    /// The server's process id: read its CPU time and RSS from /proc. Several, comma
    /// separated (the instances of `rooms`): their CPU times and RSS added up.
    #[arg(long, env = "LOADGEN_SERVER_PID", global = true, value_delimiter = ',')]
    server_pid: Vec<u32>,
    /// Source addresses 127.0.0.2 .. 127.0.0.(1+N) used round-robin (1 = the default
    /// address only).
    #[arg(long, env = "LOADGEN_SOURCE_IPS", default_value_t = 1, global = true)]
    source_ips: u8,
    /// Handshakes in flight at once while opening connections.
    #[arg(
        long,
        env = "LOADGEN_OPEN_CONCURRENCY",
        default_value_t = 128,
        global = true
    )]
    open_concurrency: usize,
    /// What to measure.
    #[command(subcommand)]
    mode: Mode,
}

/// The benchmark modes.
#[derive(Subcommand, Debug)]
enum Mode {
    /// Round trips of `echo` events.
    #[command(after_help = AFTER_HELP)]
    Echo {
        /// Connections, each with one request in flight.
        #[arg(long, env = "LOADGEN_CONNECTIONS", default_value_t = 64)]
        connections: usize,
        /// Seconds measured.
        #[arg(long, env = "LOADGEN_DURATION", default_value_t = 10.0)]
        duration: f64,
        /// Seconds of warm-up before measuring.
        #[arg(long, env = "LOADGEN_WARMUP", default_value_t = 1.0)]
        warmup: f64,
        /// The event sent, whose reply comes back under the same name (`bench-server` also
        /// has `echo_value` and `echo_typed`: the body as a `serde_json::Value`, as a struct).
        #[arg(long, env = "LOADGEN_EVENT", default_value = "echo")]
        event: String,
    },
    /// Fan-out of `broadcast` events from one sender to every receiver.
    #[command(after_help = AFTER_HELP)]
    Broadcast {
        /// Receiving connections.
        #[arg(long, env = "LOADGEN_RECEIVERS", default_value_t = 1000)]
        receivers: usize,
        /// Seconds measured.
        #[arg(long, env = "LOADGEN_DURATION", default_value_t = 10.0)]
        duration: f64,
        /// Seconds of warm-up before measuring.
        #[arg(long, env = "LOADGEN_WARMUP", default_value_t = 1.0)]
        warmup: f64,
        /// Broadcasts the sender may be ahead of the slowest receiver.
        #[arg(long, env = "LOADGEN_WINDOW", default_value_t = 16)]
        window: u64,
    },
    /// Acknowledgements: receivers answering every `question` the server asks them on behalf
    /// of one sender's `ask` events.
    #[command(after_help = AFTER_HELP)]
    Ask {
        /// Receiving connections, each answering every question.
        #[arg(long, env = "LOADGEN_RECEIVERS", default_value_t = 1000)]
        receivers: usize,
        /// Seconds measured.
        #[arg(long, env = "LOADGEN_DURATION", default_value_t = 10.0)]
        duration: f64,
        /// Seconds of warm-up before measuring.
        #[arg(long, env = "LOADGEN_WARMUP", default_value_t = 1.0)]
        warmup: f64,
        /// Asks the sender keeps in flight (sent, tally not received yet).
        #[arg(long, env = "LOADGEN_WINDOW", default_value_t = 4, value_parser = clap::value_parser!(u64).range(1..))]
        window: u64,
    },
    /// Idle connections: the server's RSS per connection.
    #[command(after_help = AFTER_HELP)]
    Idle {
        /// Connections opened and held.
        #[arg(long, env = "LOADGEN_CONNECTIONS", default_value_t = 10_000)]
        connections: usize,
        /// Seconds to wait after the last connection before reading the RSS.
        #[arg(long, env = "LOADGEN_SETTLE", default_value_t = 2.0)]
        settle: f64,
    },
    /// New connections per second (handshake, then close).
    #[command(after_help = AFTER_HELP)]
    Connect {
        /// Connections being opened at once.
        #[arg(long, env = "LOADGEN_CONCURRENCY", default_value_t = 64)]
        concurrency: usize,
        /// Seconds measured.
        #[arg(long, env = "LOADGEN_DURATION", default_value_t = 5.0)]
        duration: f64,
    },
    /// Room traffic across instances: rooms whose members are on other instances than their
    /// sender, so that every delivery goes through the instances' broadcast adapter (Redis).
    #[command(after_help = AFTER_HELP)]
    Rooms {
        /// The instances' ports on `--host`, comma separated (`--port` is not used): room
        /// r's sender connects to instance r mod N, its members round-robin to the
        /// `--spread` instances after that one.
        #[arg(long, env = "LOADGEN_PORTS", value_delimiter = ',', required = true)]
        ports: Vec<u16>,
        /// Rooms, each with one sender.
        #[arg(long, env = "LOADGEN_ROOMS", default_value_t = 100, value_parser = clap::value_parser!(u64).range(1..))]
        rooms: u64,
        /// Members of each room, each receiving every emit to it.
        #[arg(long, env = "LOADGEN_MEMBERS", default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..))]
        members: u64,
        /// How many instances a room's members are spread over, the sender's never among
        /// them (at most N-1; one instance alone serves everyone).
        #[arg(long, env = "LOADGEN_SPREAD", default_value_t = 2, value_parser = clap::value_parser!(u64).range(1..))]
        spread: u64,
        /// Seconds measured.
        #[arg(long, env = "LOADGEN_DURATION", default_value_t = 10.0)]
        duration: f64,
        /// Seconds of warm-up before measuring.
        #[arg(long, env = "LOADGEN_WARMUP", default_value_t = 1.0)]
        warmup: f64,
        /// Emits each sender may be ahead of the slowest member of its room.
        #[arg(long, env = "LOADGEN_WINDOW", default_value_t = 8, value_parser = clap::value_parser!(u64).range(1..))]
        window: u64,
        /// The process id of the Redis the instances share: its CPU time over the measured
        /// interval, per delivery, too.
        #[arg(long, env = "LOADGEN_REDIS_PID")]
        redis_pid: Option<u32>,
    },
}

/// CPU time (user + system) of a process, in microseconds, from `/proc/<pid>/stat`.
fn cpu_us(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may hold spaces and parentheses: fields are counted after the last ')'.
    let rest = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // Field 3 (state) is fields[0]; utime is field 14, stime field 15, in clock ticks.
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    // USER_HZ is 100 on Linux for every architecture this runs on.
    Some((utime + stime) * 10_000)
}

/// Resident set size of a process, in KiB, from `/proc/<pid>/status`.
fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// Where connections go and how they are opened.
#[derive(Clone)]
struct Target {
    server: SocketAddr,
    url: String,
    protocol: Protocol,
    source_ips: u8,
    next_source: Arc<AtomicU64>,
}

impl Target {
    /// The server at `port` on `--host`, spoken to in `--protocol` at `--path`.
    fn new(cli: &Cli, port: u16) -> Self {
        let protocol = cli.protocol;
        let path = cli.path.as_deref().unwrap_or(protocol.default_path());
        Self {
            server: SocketAddr::from((cli.host, port)),
            url: protocol.url(cli.host, port, path),
            protocol,
            source_ips: cli.source_ips,
            next_source: Arc::new(AtomicU64::new(0)),
        }
    }

    /// Opens one WebSocket connection (4 KiB buffers, `TCP_NODELAY`), from the next source
    /// address when several are used, and completes the protocol's handshake.
    async fn connect(&self) -> Result<Ws, Error> {
        let socket = TcpSocket::new_v4()?;
        if self.source_ips > 1 {
            let n = self.next_source.fetch_add(1, Ordering::Relaxed) % u64::from(self.source_ips);
            let last = u8::try_from(n + 2).unwrap_or(2);
            socket.set_reuseaddr(true)?;
            socket.bind(SocketAddr::from(([127, 0, 0, last], 0)))?;
        }
        let stream = socket.connect(self.server).await?;
        stream.set_nodelay(true)?;
        let config = WebSocketConfig::default()
            .read_buffer_size(4 * 1024)
            .write_buffer_size(4 * 1024);
        let request = self.url.as_str().into_client_request()?;
        let (mut ws, _) =
            tokio_tungstenite::client_async_with_config(request, stream, Some(config)).await?;
        self.protocol.open(&mut ws).await?;
        Ok(ws)
    }

    /// Opens `n` connections, at most `concurrency` handshakes at once.
    async fn open_many(&self, n: usize, concurrency: usize) -> Result<Vec<Ws>, Error> {
        let permits = Arc::new(Semaphore::new(concurrency.max(1)));
        let mut tasks = Vec::with_capacity(n);
        for _ in 0..n {
            let permits = Arc::clone(&permits);
            let target = self.clone();
            tasks.push(tokio::spawn(async move {
                let _permit = permits.acquire_owned().await;
                target.connect().await
            }));
        }
        let mut sockets = Vec::with_capacity(n);
        for task in tasks {
            sockets.push(task.await??);
        }
        Ok(sockets)
    }
}

/// CPU time of the server's processes over the measured interval.
struct CpuMeter {
    pids: Vec<u32>,
    start: Option<u64>,
}

impl CpuMeter {
    fn start(pids: &[u32]) -> Self {
        Self {
            pids: pids.to_vec(),
            start: total_cpu_us(pids),
        }
    }

    /// Microseconds of CPU the processes used since `start`, added up.
    fn elapsed(&self) -> Option<u64> {
        let now = total_cpu_us(&self.pids)?;
        Some(now.saturating_sub(self.start?))
    }
}

/// The CPU time of every process of `pids`, added up; `None` when there is none or one
/// cannot be read.
fn total_cpu_us(pids: &[u32]) -> Option<u64> {
    if pids.is_empty() {
        return None;
    }
    pids.iter().map(|&pid| cpu_us(pid)).sum()
}

/// The RSS of every process of `pids`, added up, as [`total_cpu_us`].
fn total_rss_kib(pids: &[u32]) -> Option<u64> {
    if pids.is_empty() {
        return None;
    }
    pids.iter().map(|&pid| rss_kib(pid)).sum()
}

fn per_message(cpu: Option<u64>, messages: u64) -> String {
    match cpu {
        Some(cpu) if messages > 0 => format!("{:.2}", cpu as f64 / messages as f64),
        _ => "-".into(),
    }
}

fn histogram() -> Histogram<u64> {
    // 1 µs .. 60 s at 3 significant figures; the bounds are valid constants.
    Histogram::new_with_bounds(1, 60_000_000, 3).unwrap_or_else(|_| unreachable!())
}

/// `(measure_from, measure_until)`: when counting starts and stops.
fn window(warmup: f64, duration: f64) -> (Instant, Instant) {
    let from = Instant::now() + Duration::from_secs_f64(warmup);
    (from, from + Duration::from_secs_f64(duration))
}

async fn echo(
    cli: &Cli,
    target: &Target,
    n: usize,
    duration: f64,
    warmup: f64,
    event: &str,
) -> Result<(), Error> {
    let sockets = target.open_many(n, cli.open_concurrency).await?;
    let (from, until) = window(warmup, duration);
    let protocol = target.protocol;
    let request = Utf8Bytes::from(protocol.encode(event, ECHO_DATA));
    let mut tasks = Vec::with_capacity(n);
    for mut ws in sockets {
        let request = request.clone();
        let event = event.to_owned();
        tasks.push(tokio::spawn(async move {
            let mut hist = histogram();
            let (mut errors, mut done) = (0u64, 0u64);
            loop {
                let sent = Instant::now();
                if sent >= until {
                    break;
                }
                if ws.send(Message::Text(request.clone())).await.is_err() {
                    errors += 1;
                    break;
                }
                let Some(reply) = next_text(protocol, &mut ws).await else {
                    errors += 1;
                    break;
                };
                if protocol.is_event(&reply, &event) {
                    done += 1;
                } else {
                    errors += 1;
                }
                if sent >= from {
                    hist.saturating_record(sent.elapsed().as_micros() as u64);
                }
            }
            let _ = ws.close(None).await;
            (hist, errors, done)
        }));
    }
    tokio::time::sleep_until(from.into()).await;
    let cpu = CpuMeter::start(&cli.server_pid);
    tokio::time::sleep_until(until.into()).await;
    let cpu = cpu.elapsed();
    let mut hist = histogram();
    let (mut errors, mut total) = (0, 0);
    for task in tasks {
        let (h, e, d) = task.await?;
        hist.add(&h).map_err(|e| format!("{e:?}"))?;
        errors += e;
        total += d;
    }
    let count = hist.len();
    let rate = count as f64 / duration;
    let (p50, p99, p999) = (
        hist.value_at_quantile(0.5),
        hist.value_at_quantile(0.99),
        hist.value_at_quantile(0.999),
    );
    let cpu_per = per_message(cpu, count);
    println!(
        "echo: {n} connections, {rate:.0} round trips/s, latency p50 {p50} µs, p99 {p99} µs, \
         p999 {p999} µs, server CPU {cpu_per} µs per round trip, {errors} errors, {total} round \
         trips in all"
    );
    println!(
        "RESULT mode=echo protocol={} connections={n} rate={rate:.0} p50_us={p50} \
         p99_us={p99} p999_us={p999} cpu_us={cpu_per} errors={errors} total={total}",
        protocol.name()
    );
    Ok(())
}

/// How long the receivers get, once the sender has stopped, for the broadcasts still in flight.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(60);

/// Reads `"key":<digits>` from a frame without parsing all of it.
fn number_after(text: &str, key: &str) -> Option<u64> {
    let at = text.find(key)? + key.len();
    let digits = text[at..]
        .bytes()
        .take_while(u8::is_ascii_digit)
        .fold(0u64, |n, d| n * 10 + u64::from(d - b'0'));
    Some(digits)
}

/// The number `text` starts with; `None` when it does not start with a digit.
fn digits(text: &str) -> Option<u64> {
    let end = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    text[..end].parse().ok()
}

async fn broadcast(
    cli: &Cli,
    target: &Target,
    receivers: usize,
    duration: f64,
    warmup: f64,
    window_size: u64,
) -> Result<(), Error> {
    let sockets = target.open_many(receivers, cli.open_concurrency).await?;
    let sender = target.connect().await?;
    // Give the server time to register the last connections before the first broadcast.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let epoch = Instant::now();
    let (from, until) = window(warmup, duration);
    let stop = Arc::new(AtomicBool::new(false));
    let hist = Arc::new(Mutex::new(histogram()));
    let seen: Arc<Vec<AtomicU64>> = Arc::new((0..receivers).map(|_| AtomicU64::new(0)).collect());
    let delivered = Arc::new(AtomicU64::new(0));
    // Every delivery to a receiver, in the window or not.
    let total = Arc::new(AtomicU64::new(0));
    let protocol = target.protocol;
    let mut tasks = Vec::with_capacity(receivers);
    for (i, mut ws) in sockets.into_iter().enumerate() {
        let (hist, seen, delivered, total) = (
            Arc::clone(&hist),
            Arc::clone(&seen),
            Arc::clone(&delivered),
            Arc::clone(&total),
        );
        tasks.push(tokio::spawn(async move {
            while let Some(text) = next_text(protocol, &mut ws).await {
                let (Some(seq), Some(sent_us)) = (
                    number_after(&text, r#""s":"#),
                    number_after(&text, r#""t":"#),
                ) else {
                    continue;
                };
                seen[i].store(seq, Ordering::Relaxed);
                total.fetch_add(1, Ordering::Relaxed);
                let now = Instant::now();
                if now >= from && now < until {
                    delivered.fetch_add(1, Ordering::Relaxed);
                    let latency = (now - epoch).as_micros() as u64;
                    hist.lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .saturating_record(latency.saturating_sub(sent_us));
                }
            }
        }));
    }
    let (mut sink, mut own) = sender.split();
    // The sender receives its own broadcasts: drain them, and hand what needs an answer
    // (Engine.IO pings) to the sending task, which owns the sink.
    let (answers_tx, mut answers) = mpsc::unbounded_channel();
    let drain = tokio::spawn(async move {
        while let Some(Ok(message)) = own.next().await {
            if let Message::Text(text) = message
                && let Some(answer) = protocol.answer(&text)
            {
                let _ = answers_tx.send(answer);
            }
        }
    });
    let send = {
        let seen = Arc::clone(&seen);
        let stop = Arc::clone(&stop);
        tokio::spawn(async move {
            let mut seq = 0u64;
            let mut sent = 0u64;
            'sending: while !stop.load(Ordering::Relaxed) {
                seq += 1;
                // Stay at most `window` broadcasts ahead of the slowest receiver.
                while !stop.load(Ordering::Relaxed)
                    && seen
                        .iter()
                        .map(|s| s.load(Ordering::Relaxed))
                        .min()
                        .unwrap_or(seq)
                        + window_size
                        < seq
                {
                    tokio::task::yield_now().await;
                }
                while let Ok(answer) = answers.try_recv() {
                    if sink.send(Message::text(answer)).await.is_err() {
                        break 'sending;
                    }
                }
                let t = epoch.elapsed().as_micros();
                let data = format!(r#"{{"s":{seq},"t":{t},"text":"hello, gateway"}}"#);
                let text = protocol.encode("broadcast", &data);
                if sink.send(Message::Text(text.into())).await.is_err() {
                    break;
                }
                sent += 1;
            }
            let _ = sink.close().await;
            sent
        })
    };
    tokio::time::sleep_until(from.into()).await;
    let cpu = CpuMeter::start(&cli.server_pid);
    tokio::time::sleep_until(until.into()).await;
    let cpu = cpu.elapsed();
    stop.store(true, Ordering::Relaxed);
    let count = delivered.load(Ordering::Relaxed);
    let sent = send.await?;
    // The broadcasts still in flight reach every receiver before the connections close, so
    // that `total` is all the server delivered.
    let drain_until = Instant::now() + DRAIN_TIMEOUT;
    let drained = loop {
        if seen.iter().all(|s| s.load(Ordering::Relaxed) >= sent) {
            break true;
        }
        if Instant::now() >= drain_until {
            break false;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    let total = total.load(Ordering::Relaxed);
    drain.abort();
    for task in tasks {
        task.abort();
    }
    let hist = hist.lock().unwrap_or_else(PoisonError::into_inner).clone();
    let rate = count as f64 / duration;
    let (p50, p99) = (hist.value_at_quantile(0.5), hist.value_at_quantile(0.99));
    let cpu_per = per_message(cpu, count);
    println!(
        "broadcast: {receivers} receivers, {sent} broadcasts sent, {rate:.0} deliveries/s, \
         delivery latency p50 {p50} µs, p99 {p99} µs, server CPU {cpu_per} µs per delivery, \
         {total} deliveries in all{}",
        if drained {
            ""
        } else {
            " (some receivers missed the last broadcasts)"
        }
    );
    println!(
        "RESULT mode=broadcast protocol={} receivers={receivers} rate={rate:.0} p50_us={p50} \
         p99_us={p99} cpu_us={cpu_per} sent={sent} total={total} drained={drained}",
        protocol.name()
    );
    Ok(())
}

/// How long the sender of `ask` waits for a tally: past the servers' 5 s acknowledgement
/// timeout, so that a missing answer shows as a short tally rather than a failed run.
const TALLY_TIMEOUT: Duration = Duration::from_secs(15);

/// What the sender of `ask` counted.
struct Tallies {
    /// Latency of the asks completed in the measured window.
    hist: Histogram<u64>,
    /// Asks completed in the measured window, and the answers they collected.
    asks: u64,
    answers: u64,
    /// Every answer collected over the whole run, and how many were missing from tallies.
    total: u64,
    missing: u64,
}

async fn ask(
    cli: &Cli,
    target: &Target,
    receivers: usize,
    duration: f64,
    warmup: f64,
    window_size: u64,
) -> Result<(), Error> {
    let sockets = target.open_many(receivers, cli.open_concurrency).await?;
    let mut sender = target.connect().await?;
    // Give the server time to register the last connections before the first ask.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (from, until) = window(warmup, duration);
    let protocol = target.protocol;
    let mut tasks = Vec::with_capacity(receivers);
    for mut ws in sockets {
        tasks.push(tokio::spawn(async move {
            while let Some(text) = next_text(protocol, &mut ws).await {
                if let Some(ack) = protocol.question_ack(&text) {
                    let answer = protocol.answer_ack(ack, r#""ok""#);
                    if ws.send(Message::text(answer)).await.is_err() {
                        break;
                    }
                }
            }
        }));
    }
    let asking = tokio::spawn(async move {
        let mut tallies = Tallies {
            hist: histogram(),
            asks: 0,
            answers: 0,
            total: 0,
            missing: 0,
        };
        let mut sent_at = HashMap::new();
        let mut seq = 0u64;
        loop {
            while (sent_at.len() as u64) < window_size && Instant::now() < until {
                seq += 1;
                let data = format!(r#"{{"s":{seq},"text":"hello, gateway"}}"#);
                sender
                    .send(Message::Text(protocol.encode("ask", &data).into()))
                    .await?;
                sent_at.insert(seq, Instant::now());
            }
            if sent_at.is_empty() {
                break;
            }
            let reply = tokio::time::timeout(TALLY_TIMEOUT, next_text(protocol, &mut sender))
                .await
                .map_err(|_| format!("no tally within {TALLY_TIMEOUT:?}"))?
                .ok_or("the sender's connection closed")?;
            if !protocol.is_event(&reply, "ask") {
                continue;
            }
            let (Some(s), Some(answers)) = (
                number_after(&reply, r#""s":"#),
                number_after(&reply, r#""answers":"#),
            ) else {
                return Err(format!("not a tally: {reply}").into());
            };
            let Some(asked) = sent_at.remove(&s) else {
                return Err(format!("a tally of an ask never sent: {reply}").into());
            };
            let now = Instant::now();
            tallies.total += answers;
            tallies.missing += (receivers as u64).saturating_sub(answers);
            if now >= from && now < until {
                tallies.asks += 1;
                tallies.answers += answers;
                tallies
                    .hist
                    .saturating_record((now - asked).as_micros() as u64);
            }
        }
        let _ = sender.close(None).await;
        Ok::<_, Error>(tallies)
    });
    tokio::time::sleep_until(from.into()).await;
    let cpu = CpuMeter::start(&cli.server_pid);
    tokio::time::sleep_until(until.into()).await;
    let cpu = cpu.elapsed();
    let tallies = asking.await?;
    for task in tasks {
        task.abort();
    }
    let tallies = tallies?;
    let hist = &tallies.hist;
    let rate = tallies.answers as f64 / duration;
    let asks_rate = tallies.asks as f64 / duration;
    let (p50, p99) = (hist.value_at_quantile(0.5), hist.value_at_quantile(0.99));
    let cpu_per = per_message(cpu, tallies.answers);
    let (total, missing) = (tallies.total, tallies.missing);
    println!(
        "ask: {receivers} receivers, {window_size} asks in flight, {asks_rate:.0} asks/s, \
         {rate:.0} answers/s, ask latency p50 {p50} µs, p99 {p99} µs, server CPU {cpu_per} µs \
         per answer, {missing} answers missing, {total} answers in all"
    );
    println!(
        "RESULT mode=ask protocol={} receivers={receivers} window={window_size} rate={rate:.0} \
         asks={asks_rate:.0} p50_us={p50} p99_us={p99} cpu_us={cpu_per} missing={missing} \
         total={total}",
        protocol.name()
    );
    Ok(())
}

async fn idle(cli: &Cli, target: &Target, n: usize, settle: f64) -> Result<(), Error> {
    let pids = &cli.server_pid;
    let before = total_rss_kib(pids);
    let cpu = CpuMeter::start(pids);
    let started = Instant::now();
    let sockets = target.open_many(n, cli.open_concurrency).await?;
    let opened_in = started.elapsed().as_secs_f64();
    tokio::time::sleep(Duration::from_secs_f64(settle)).await;
    let after = total_rss_kib(pids);
    let cpu = cpu.elapsed();
    let (per_conn, base) = match (before, after) {
        (Some(before), Some(after)) => (
            format!("{:.2}", after.saturating_sub(before) as f64 / n as f64),
            format!("{:.1}", before as f64 / 1024.0),
        ),
        _ => ("-".into(), "-".into()),
    };
    let open_rate = n as f64 / opened_in;
    let cpu_per = per_message(cpu, n as u64);
    println!(
        "idle: {n} connections open (in {opened_in:.1} s, {open_rate:.0}/s), server RSS \
         {per_conn} KiB per connection over a {base} MiB process, server CPU {cpu_per} µs per connection"
    );
    println!(
        "RESULT mode=idle protocol={} connections={n} rss_kib_per_conn={per_conn} \
         base_mib={base} open_rate={open_rate:.0} cpu_us={cpu_per}",
        target.protocol.name()
    );
    drop(sockets);
    Ok(())
}

async fn connect(
    cli: &Cli,
    target: &Target,
    concurrency: usize,
    duration: f64,
) -> Result<(), Error> {
    let (from, until) = window(0.5, duration);
    let mut tasks = Vec::with_capacity(concurrency);
    for _ in 0..concurrency {
        let target = target.clone();
        tasks.push(tokio::spawn(async move {
            let (mut opened, mut errors) = (0u64, 0u64);
            while Instant::now() < until {
                match target.connect().await {
                    Ok(mut ws) => {
                        if Instant::now() >= from && Instant::now() < until {
                            opened += 1;
                        }
                        // Close, then read until the server ends the TCP connection, so the
                        // TIME_WAIT stays on the server's side.
                        let _ = ws.close(None).await;
                        while let Some(Ok(_)) = ws.next().await {}
                    }
                    Err(_) => {
                        errors += 1;
                        tokio::time::sleep(Duration::from_millis(10)).await;
                    }
                }
            }
            (opened, errors)
        }));
    }
    tokio::time::sleep_until(from.into()).await;
    let cpu = CpuMeter::start(&cli.server_pid);
    tokio::time::sleep_until(until.into()).await;
    let cpu = cpu.elapsed();
    let (mut opened, mut errors) = (0, 0);
    for task in tasks {
        let (o, e) = task.await?;
        opened += o;
        errors += e;
    }
    let rate = opened as f64 / duration;
    let cpu_per = per_message(cpu, opened);
    println!(
        "connect: {concurrency} at once, {rate:.0} connections/s, server CPU {cpu_per} µs per \
         connection, {errors} errors"
    );
    println!(
        "RESULT mode=connect protocol={} rate={rate:.0} cpu_us={cpu_per} errors={errors}",
        target.protocol.name()
    );
    Ok(())
}

#[tokio::main]
async fn main() -> ExitCode {
    // A usage error exits here with code 2, `--help` with 0.
    let cli = Cli::parse();
    let (code, reason) = match run(&cli).await {
        Ok(()) => return ExitCode::SUCCESS,
        Err(Failure::Unreachable(reason)) => (EXIT_UNREACHABLE, reason),
        Err(Failure::Run(err)) => (EXIT_FAILURE, err.to_string()),
    };
    eprintln!("loadgen: {reason}");
    ExitCode::from(code)
}

/// Why a run did not measure.
enum Failure {
    /// Nothing answers at the server's address.
    Unreachable(String),
    /// The run failed.
    Run(Error),
}

impl From<Error> for Failure {
    fn from(err: Error) -> Self {
        Self::Run(err)
    }
}

async fn run(cli: &Cli) -> Result<(), Failure> {
    let target = Target::new(cli, cli.port);
    // A plain TCP connection first, so that a server that is not there is told apart from
    // one that fails under load.
    let servers = match &cli.mode {
        Mode::Rooms { ports, .. } => ports.iter().map(|&p| Target::new(cli, p).server).collect(),
        _ => vec![target.server],
    };
    for server in servers {
        probe(server).await?;
    }
    let result = match cli.mode {
        Mode::Echo {
            connections,
            duration,
            warmup,
            ref event,
        } => echo(cli, &target, connections, duration, warmup, event).await,
        Mode::Broadcast {
            receivers,
            duration,
            warmup,
            window,
        } => broadcast(cli, &target, receivers, duration, warmup, window).await,
        Mode::Ask {
            receivers,
            duration,
            warmup,
            window,
        } => ask(cli, &target, receivers, duration, warmup, window).await,
        Mode::Idle {
            connections,
            settle,
        } => idle(cli, &target, connections, settle).await,
        Mode::Connect {
            concurrency,
            duration,
        } => connect(cli, &target, concurrency, duration).await,
        Mode::Rooms {
            ref ports,
            rooms: room_count,
            members,
            spread,
            duration,
            warmup,
            window,
            redis_pid,
        } => {
            let shape = RoomShape {
                rooms: room_count,
                members,
                spread,
                window,
            };
            let targets: Vec<Target> = ports.iter().map(|&p| Target::new(cli, p)).collect();
            rooms(cli, &targets, shape, duration, warmup, redis_pid).await
        }
    };
    Ok(result?)
}

/// Fails with [`Failure::Unreachable`] when nothing accepts a TCP connection at `server`.
async fn probe(server: SocketAddr) -> Result<(), Failure> {
    match tokio::time::timeout(OPEN_TIMEOUT, TcpStream::connect(server)).await {
        Ok(Ok(_probe)) => Ok(()),
        Ok(Err(err)) => Err(Failure::Unreachable(format!(
            "cannot reach the server at {server}: {err}"
        ))),
        Err(_) => Err(Failure::Unreachable(format!(
            "cannot reach the server at {server}: no answer within {OPEN_TIMEOUT:?}"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_question_is_told_from_other_frames_in_both_protocols() {
        let json = Protocol::Json;
        let question = r#"{"event":"question","data":{"s":1,"ack":9},"ack":42}"#;
        assert_eq!(json.question_ack(question), Some(42));
        assert_eq!(
            json.question_ack(r#"{"event":"ask","data":1,"ack":3}"#),
            None
        );
        assert_eq!(json.question_ack(r#"{"event":"question","data":1}"#), None);
        assert_eq!(json.answer_ack(42, r#""ok""#), r#"{"ack":42,"data":"ok"}"#);

        let sio = Protocol::Socketio;
        assert_eq!(sio.question_ack(r#"4217["question",{"s":1}]"#), Some(17));
        assert_eq!(sio.question_ack(r#"42["question",{"s":1}]"#), None);
        assert_eq!(sio.question_ack(r#"4217["ask",{"s":1}]"#), None);
        assert_eq!(sio.question_ack("2"), None);
        assert_eq!(sio.answer_ack(17, r#""ok""#), r#"4317["ok"]"#);
    }
}
