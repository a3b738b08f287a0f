//! The demo server: `cargo run -p msgpack-adapter`, then talk JSON to
//! `ws://127.0.0.1:3001/rooms` or MessagePack to `ws://127.0.0.1:3001/msgpack/rooms`.
//!
//! `cargo run -p msgpack-adapter -- --help` lists the options (`--host`/`HOST`,
//! `--port`/`PORT`) and what the exit codes mean; logs go to standard error, `RUST_LOG`
//! chooses them.

use std::io::IsTerminal;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use msgpack_adapter::demo::RoomsGateway;
use msgpack_adapter::{MsgPackCodec, MsgPackTransport};
use tracing_subscriber::EnvFilter;
use ws_gateway::prelude::*;

/// The end of `--help`: where the logs go and what the exit codes mean.
const AFTER_HELP: &str = "\
Logs go to standard error (RUST_LOG chooses them, default: info; coloured on a terminal unless \
NO_COLOR is set).

Exit codes:
  0  stopped by ctrl-c
  1  failed while running (an I/O error)
  2  bad usage: an unknown option, a value out of range
  3  cannot listen on HOST:PORT (in use, or not permitted)";

/// Exit code: failed while running.
const EXIT_FAILURE: u8 = 1;
/// Exit code: the address to listen on is in use or not permitted.
const EXIT_BIND: u8 = 3;

/// The rooms gateway as JSON at /rooms and as MessagePack in binary frames at
/// /msgpack/rooms.
#[derive(Debug, clap::Parser)]
#[command(name = "msgpack-adapter", version, after_help = AFTER_HELP)]
struct Options {
    /// The address to listen on.
    #[arg(long, env = "HOST", default_value_t = IpAddr::V4(Ipv4Addr::LOCALHOST))]
    host: IpAddr,
    /// The port to listen on (0: any free port).
    #[arg(long, env = "PORT", default_value_t = 3001)]
    port: u16,
}

#[tokio::main]
async fn main() -> ExitCode {
    // A usage error exits here with code 2, `--help` with 0.
    let options = Options::parse();
    let colour = std::io::stderr().is_terminal()
        && std::env::var_os("NO_COLOR").is_none_or(|value| value.is_empty());
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .with_ansi(colour)
        .init();
    match run(options).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => {
            #[allow(clippy::print_stderr)] // why the server stopped, whatever RUST_LOG says
            {
                eprintln!("msgpack-adapter: {failure}");
            }
            ExitCode::from(failure.exit_code())
        }
    }
}

/// Serves until ctrl-c.
async fn run(options: Options) -> Result<(), Failure> {
    let app = GatewayApp::new()
        .gateway::<RoomsGateway>()
        .build()
        .map_err(Failure::runtime)?;
    let router = app.clone().into_router().merge(
        MsgPackTransport::new(MsgPackCodec)
            .at("/msgpack")
            .mount(&app),
    );
    let addr = SocketAddr::new(options.host, options.port);
    let listener = ws_gateway::bind(addr).map_err(|source| Failure::Bind { addr, source })?;
    let local = listener.local_addr().map_err(Failure::runtime)?;
    tracing::info!("JSON at ws://{local}/rooms, MessagePack at ws://{local}/msgpack/rooms");
    let shutdown = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    ws_gateway::serve(listener, router)
        .with_graceful_shutdown(&app, shutdown)
        .grace(Duration::from_secs(5))
        .await
        .map_err(Failure::runtime)
}

/// Why the server did not start or stopped with an error; each has its exit code
/// (`--help` lists them).
#[derive(Debug)]
enum Failure {
    /// The address is in use or not ours to take.
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    /// Anything else, once started.
    Runtime(Box<dyn std::error::Error>),
}

impl Failure {
    fn runtime(err: impl Into<Box<dyn std::error::Error>>) -> Self {
        Self::Runtime(err.into())
    }

    fn exit_code(&self) -> u8 {
        match self {
            Self::Bind { .. } => EXIT_BIND,
            Self::Runtime(_) => EXIT_FAILURE,
        }
    }
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Bind { addr, source } => write!(
                f,
                "cannot listen on {addr}: {source} (set HOST and PORT, or --host and --port)"
            ),
            Self::Runtime(err) => write!(f, "{err}"),
        }
    }
}
