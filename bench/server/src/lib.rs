//! The gateway the benchmark servers serve: `bench-server` over plain WebSockets (the JSON
//! protocol), `socketio-bench-server` over Socket.IO, both from this one definition.
//!
//! One gateway at `/` with three events and nothing else in the way:
//! - `echo` replies with the same data under `echo`;
//! - `broadcast` sends its data under `broadcast` to every client and replies nothing;
//! - `ask` sends its data under `question` to every other client with an acknowledgement
//!   ([`Broadcast::emit_with_ack`](ws_gateway_core::Broadcast::emit_with_ack)), collects
//!   every answer and replies `{"answers":<count>,"ask":<data>}` under `ask`.
//!
//! and two for the scale-out benchmark (`bench/scale_out.sh`: several instances sharing rooms
//! through Redis, [`ScaleOutOptions`]):
//! - `join` puts the client in the room its data names and replies the room's name under
//!   `join` once room emits from every instance reach it
//!   ([`Client::join_synced`](ws_gateway_core::Client::join_synced));
//! - `say` `{"room":..,"msg":..}` sends `msg` under `room` to every member of the room, on
//!   whichever instance, and replies nothing;
//!
//! and two more echoes for `bench/callgrind.sh --event`, the load generator's
//! `{"user":..,"text":..}` read into a DOM or a struct rather than kept raw: `echo_value`
//! (a `serde_json::Value`, whose map is a `BTreeMap`, or an `IndexMap` with the feature
//! `preserve_order`) and `echo_typed` (a struct).
//!
//! The rate limit is off (a load generator sends far more than 1,000 messages a second per
//! connection); every other setting is the default `ConnectionConfig`.
//!
//! Every server binary takes the same command line, [`ServerOptions`] (`--port`/`PORT`), and
//! exits with the same codes ([`AFTER_HELP`]).

use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Duration;

use futures_util::StreamExt;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use ws_gateway_axum::prelude::*;
use ws_gateway_redis::{RedisAdapter, RedisConfig};

/// The load generator's echo data, `{"user":"bench","text":"hello, gateway"}`, typed.
#[derive(Debug, Deserialize, Serialize)]
pub struct EchoData {
    /// Who sends.
    pub user: String,
    /// What.
    pub text: String,
}

/// How long an `ask` waits for its answers: far longer than 1,000 answers take, so that a
/// missing answer shows as a short count rather than a slow run.
pub const ASK_TIMEOUT: Duration = Duration::from_secs(5);

/// The reply to an `ask`: how many clients answered, and the ask's own data (which carries
/// the load generator's sequence number).
#[derive(Debug, Serialize)]
pub struct Tally {
    /// The answers collected.
    pub answers: usize,
    /// The data of the `ask`, as it came.
    pub ask: Box<RawValue>,
}

/// The data of a `say`: what to send, and to which room.
#[derive(Debug, Deserialize)]
pub struct Say {
    /// The room whose members receive `msg`.
    pub room: String,
    /// What they receive under `room`, as it came.
    pub msg: Box<RawValue>,
}

/// Echo, broadcast and ask, as in `raw-socketioxide` (echo and broadcast also as in
/// `bench/peers/nest` and `raw-axum`); join and say, as in `raw-socketioxide-redis` and the
/// NestJS peer's `RoomGateway`.
#[websocket_gateway(path = "/")]
pub struct BenchGateway {
    server: WsServer,
}

#[websocket_gateway]
impl BenchGateway {
    /// The same data back under the same event. The body stays raw JSON (no DOM is built),
    /// as in the hand-written `raw-axum` server.
    #[subscribe("echo")]
    fn echo(&self, data: Box<RawValue>) -> Box<RawValue> {
        data
    }

    /// `echo` with the data read into a `serde_json::Value` and written back from it.
    #[subscribe("echo_value")]
    fn echo_value(&self, data: serde_json::Value) -> serde_json::Value {
        data
    }

    /// `echo` with the data read into a struct and written back from it.
    #[subscribe("echo_typed")]
    fn echo_typed(&self, data: EchoData) -> EchoData {
        data
    }

    /// `data` to every client of the gateway, encoded once.
    #[subscribe("broadcast")]
    fn broadcast(&self, data: Box<RawValue>) {
        let _ = self.server.emit("broadcast", &data);
    }

    /// Puts the client in room `room` and replies `room` once the room's emits from every
    /// instance reach it (with per-room channels: once Redis acknowledged the room's
    /// subscription).
    #[subscribe("join")]
    async fn join(&self, client: Client, room: String) -> Result<String, RoomError> {
        client.join_synced(room.clone()).await?;
        Ok(room)
    }

    /// `msg` under `room` to every member of the room, on every instance, encoded once.
    #[subscribe("say")]
    fn say(&self, data: Say) {
        let _ = self.server.to(data.room).emit("room", &data.msg);
    }

    /// `data` under `question` to every other client, each asked for an acknowledgement;
    /// replies with how many answered once all did (or [`ASK_TIMEOUT`] passed).
    #[subscribe("ask")]
    async fn ask(&self, client: Client, data: Box<RawValue>) -> Result<Tally, WsException> {
        let mut answers = self
            .server
            .broadcast()
            .except(client.id())
            .timeout(ASK_TIMEOUT)
            .emit_with_ack::<Box<RawValue>>("question", &data)?;
        let mut answered = 0;
        while let Some((_, answer)) = answers.next().await {
            answered += usize::from(answer.is_ok());
        }
        Ok(Tally {
            answers: answered,
            ask: data,
        })
    }
}

/// The app of the benchmark servers: [`BenchGateway`], no rate limit.
///
/// # Errors
///
/// The app's build error (none for this gateway).
pub fn app() -> Result<App, ws_gateway_core::BuildError> {
    bench_app(GatewayApp::new(), None)
}

fn bench_app(
    app: GatewayApp,
    recovery: Option<std::time::Duration>,
) -> Result<App, ws_gateway_core::BuildError> {
    let mut config = ws_gateway_core::ConnectionConfig::default();
    config.rate_limit = None;
    let mut app = app.gateway::<BenchGateway>().config(config);
    if let Some(window) = recovery {
        app = app.recover_all(ws_gateway_core::Recovery::new(window));
    }
    app.build()
}

/// [`app`], sharing its rooms with the other instances through Redis when `options` name
/// one ([`ws_gateway_redis::RedisAdapter`], classic or per-room channels), and with
/// connection state recovery on when they give a window (every delivered frame is
/// numbered and kept, the cost `bench/run.sh --recovery` measures).
///
/// # Errors
///
/// Redis cannot be reached ([`Failure::Redis`]), or the app's build error.
pub async fn scale_out_app(options: &ScaleOutOptions) -> Result<App, Failure> {
    let recovery = options.recovery.map(std::time::Duration::from_secs);
    let Some(url) = &options.redis else {
        return bench_app(GatewayApp::new(), recovery).map_err(Failure::runtime);
    };
    let mut config = RedisConfig::new(url.as_str()).prefix(options.redis_prefix.as_str());
    if options.per_room {
        config = config.per_room();
    }
    let redis = RedisAdapter::connect(config)
        .await
        .map_err(|source| Failure::Redis {
            url: url.clone(),
            source: source.into(),
        })?;
    bench_app(GatewayApp::new().adapter(redis), recovery).map_err(Failure::runtime)
}

/// The end of every benchmark server's `--help`: what the exit codes mean.
pub const AFTER_HELP: &str = "\
Serves until killed; writes nothing to standard output, the reason of a failure to standard \
error.

Exit codes:
  1  failed while serving (an I/O error)
  2  bad usage: an unknown option, a value out of range
  3  cannot listen on 127.0.0.1:PORT (in use, or not permitted)";

/// The end of `--help` of the servers that may scale out over Redis: [`AFTER_HELP`] and the
/// exit code when Redis cannot be reached.
pub const AFTER_HELP_REDIS: &str = "\
Serves until killed; writes nothing to standard output, the reason of a failure to standard \
error.

Exit codes:
  1  failed while serving (an I/O error)
  2  bad usage: an unknown option, a value out of range
  3  cannot listen on 127.0.0.1:PORT (in use, or not permitted)
  4  cannot reach Redis at --redis";

/// The command line of every benchmark server.
#[derive(Clone, Debug, clap::Parser)]
#[command(version, after_help = AFTER_HELP)]
pub struct ServerOptions {
    /// The port to listen on, on 127.0.0.1.
    #[arg(long, env = "PORT", default_value_t = 3000)]
    pub port: u16,
}

impl ServerOptions {
    /// The command line of the server `name`, which `about` describes in `--help`. Exits
    /// with 0 after `--help`, with 2 on a usage error.
    pub fn from_command_line(name: &'static str, about: &'static str) -> Self {
        command_line(name, about)
    }

    /// The address to listen on: 127.0.0.1 at [`port`](Self::port).
    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port))
    }
}

/// The command line `T` of the server `name`, which `about` describes in `--help`. Exits
/// with 0 after `--help`, with 2 on a usage error.
pub fn command_line<T: clap::Parser>(name: &'static str, about: &'static str) -> T {
    let matches = T::command().name(name).about(about).get_matches();
    T::from_arg_matches(&matches).unwrap_or_else(|err| err.exit())
}

/// The command line of our servers that may run as one of several instances sharing rooms
/// through Redis (`bench-server`, `socketio-bench-server`).
#[derive(Clone, Debug, clap::Parser)]
#[command(version, after_help = AFTER_HELP_REDIS)]
pub struct ScaleOutOptions {
    /// Where to listen.
    #[command(flatten)]
    pub server: ServerOptions,
    /// Share rooms, emits and broadcasts with the other instances through the Redis at this
    /// URL, e.g. `redis://127.0.0.1:6379` (unset: one instance on its own).
    #[arg(long, env = "REDIS_URL")]
    pub redis: Option<String>,
    /// With `--redis`: a channel per room (`RedisConfig::per_room`), subscribed while the
    /// instance has a member in it, instead of one channel per gateway.
    #[arg(long, requires = "redis")]
    pub per_room: bool,
    /// With `--redis`: the prefix of the Redis channels, the same on every instance.
    #[arg(long, env = "REDIS_PREFIX", default_value = "bench")]
    pub redis_prefix: String,
    /// Connection state recovery with this window in seconds (off when absent): every
    /// delivered frame is numbered and kept, as `bench/run.sh --recovery` measures.
    #[arg(long, env = "RECOVERY_SECS")]
    pub recovery: Option<u64>,
}

/// The command line of `raw-socketioxide-redis`: where to listen, and the Redis every
/// instance shares.
#[derive(Clone, Debug, clap::Parser)]
#[command(version, after_help = AFTER_HELP_REDIS)]
pub struct RedisServerOptions {
    /// Where to listen.
    #[command(flatten)]
    pub server: ServerOptions,
    /// The Redis every instance shares (Redis 7 or later: the adapter speaks RESP3).
    #[arg(long, env = "REDIS_URL", default_value = "redis://127.0.0.1:6379")]
    pub redis: String,
}

/// Why a benchmark server stopped; [`exit`] turns it into its exit code.
#[derive(Debug)]
pub enum Failure {
    /// The address is in use or not ours to take: exit code 3.
    Bind {
        /// The address.
        addr: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
    /// Redis cannot be reached: exit code 4.
    Redis {
        /// Its URL.
        url: String,
        /// Why.
        source: Box<dyn std::error::Error>,
    },
    /// Anything else: exit code 1.
    Runtime(Box<dyn std::error::Error>),
}

impl Failure {
    /// A [`Failure::Runtime`].
    pub fn runtime(err: impl Into<Box<dyn std::error::Error>>) -> Self {
        Self::Runtime(err.into())
    }
}

/// The exit code of a server `name` that stopped with `result`, the reason on standard
/// error.
pub fn exit(name: &str, result: Result<(), Failure>) -> ExitCode {
    let (code, reason) = match result {
        Ok(()) => return ExitCode::SUCCESS,
        Err(Failure::Bind { addr, source }) => (
            3,
            format!("cannot listen on {addr}: {source} (set PORT or --port)"),
        ),
        Err(Failure::Redis { url, source }) => (
            4,
            format!("cannot reach Redis at {url}: {source} (set --redis or REDIS_URL)"),
        ),
        Err(Failure::Runtime(err)) => (1, err.to_string()),
    };
    #[allow(clippy::print_stderr)] // a server's last word
    {
        eprintln!("{name}: {reason}");
    }
    ExitCode::from(code)
}

/// The listener of the hand-written peers (`raw-axum`, `raw-socketioxide`) on `addr`, a
/// backlog of 1024 and `TCP_NODELAY`, as `ws_gateway_axum::bind` and `serve` set up ours, so
/// that the comparison is of the servers alone.
///
/// # Errors
///
/// Creating, binding or listening on the socket failed.
pub fn raw_listener(
    addr: SocketAddr,
) -> std::io::Result<impl axum::serve::Listener<Addr = SocketAddr>> {
    use axum::serve::ListenerExt;

    let socket = tokio::net::TcpSocket::new_v4()?;
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    Ok(socket.listen(1024)?.tap_io(|tcp| {
        let _ = tcp.set_nodelay(true);
    }))
}
