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

/// Echo, broadcast and ask, as in `raw-socketioxide` (echo and broadcast also as in
/// `bench/peers/nest` and `raw-axum`).
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
    app_with_recovery(None)
}

/// [`app`], with connection state recovery on for this window when one is given: every
/// delivered frame is numbered and kept, the cost `bench/run.sh --recovery` measures.
///
/// # Errors
///
/// The app's build error (none for this gateway).
pub fn app_with_recovery(
    window: Option<std::time::Duration>,
) -> Result<App, ws_gateway_core::BuildError> {
    let mut config = ws_gateway_core::ConnectionConfig::default();
    config.rate_limit = None;
    let mut app = GatewayApp::new().gateway::<BenchGateway>().config(config);
    if let Some(window) = window {
        app = app.recover_all(ws_gateway_core::Recovery::new(window));
    }
    app.build()
}

/// The end of every benchmark server's `--help`: what the exit codes mean.
pub const AFTER_HELP: &str = "\
Serves until killed; writes nothing to standard output, the reason of a failure to standard \
error.

Exit codes:
  1  failed while serving (an I/O error)
  2  bad usage: an unknown option, a value out of range
  3  cannot listen on 127.0.0.1:PORT (in use, or not permitted)";

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
        use clap::{CommandFactory, FromArgMatches};

        let matches = Self::command().name(name).about(about).get_matches();
        Self::from_arg_matches(&matches).unwrap_or_else(|err| err.exit())
    }

    /// The address to listen on: 127.0.0.1 at [`port`](Self::port).
    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port))
    }
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
