//! The benchmark server built with our macros: `PORT=3000 cargo run --release -p
//! gateway-bench --bin bench-server` (`-- --help`: the options and exit codes).
//!
//! [`BenchGateway`](gateway_bench::BenchGateway) at `/` over plain WebSockets: `echo` replies
//! `{"event":"echo","data":<the same data>}`, `broadcast` sends
//! `{"event":"broadcast","data":<data>}` to every client and replies nothing, `ask` sends
//! `{"event":"question","data":<data>,"ack":N}` to every other client, which answers
//! `{"ack":N,"data":..}`, and replies `{"event":"ask","data":{"answers":<count>,"ask":<data>}}`.

use std::process::ExitCode;
use std::time::Duration;

use clap::{CommandFactory, FromArgMatches, Parser};
use gateway_bench::{Failure, ServerOptions};
use ws_gateway_axum::IntoRouter;

/// The benchmark gateway's command line: the servers' own, and recovery.
#[derive(Debug, Parser)]
#[command(version, after_help = gateway_bench::AFTER_HELP)]
struct Options {
    #[command(flatten)]
    server: ServerOptions,
    /// Connection state recovery with this window in seconds (off when absent): every
    /// delivered frame is numbered and kept, as `bench/run.sh --recovery` measures.
    #[arg(long, env = "RECOVERY_SECS")]
    recovery: Option<u64>,
}

#[tokio::main]
async fn main() -> ExitCode {
    let matches = Options::command()
        .name("bench-server")
        .about("The benchmark gateway over plain WebSockets: echo and broadcast at ws://127.0.0.1:PORT/")
        .get_matches();
    let options = Options::from_arg_matches(&matches).unwrap_or_else(|err| err.exit());
    gateway_bench::exit("bench-server", run(&options).await)
}

async fn run(options: &Options) -> Result<(), Failure> {
    let addr = options.server.addr();
    let window = options.recovery.map(Duration::from_secs);
    let app = gateway_bench::app_with_recovery(window).map_err(Failure::runtime)?;
    let listener = ws_gateway_axum::bind(addr).map_err(|source| Failure::Bind { addr, source })?;
    ws_gateway_axum::serve(listener, app.into_router())
        .await
        .map_err(Failure::runtime)
}
