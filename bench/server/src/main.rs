//! The benchmark server built with our macros: `PORT=3000 cargo run --release -p
//! gateway-bench --bin bench-server` (`-- --help`: the options and exit codes).
//!
//! [`BenchGateway`](gateway_bench::BenchGateway) at `/` over plain WebSockets: `echo` replies
//! `{"event":"echo","data":<the same data>}`, `broadcast` sends
//! `{"event":"broadcast","data":<data>}` to every client and replies nothing, `ask` sends
//! `{"event":"question","data":<data>,"ack":N}` to every other client, which answers
//! `{"ack":N,"data":..}`, and replies `{"event":"ask","data":{"answers":<count>,"ask":<data>}}`;
//! `join` and `say` share rooms with the other instances when `--redis` names a Redis
//! (`--per-room`: a channel per room), as `bench/scale_out.sh` runs it.

use std::process::ExitCode;

use gateway_bench::{Failure, ScaleOutOptions};
use ws_gateway_axum::IntoRouter;

#[tokio::main]
async fn main() -> ExitCode {
    let options: ScaleOutOptions = gateway_bench::command_line(
        "bench-server",
        "The benchmark gateway over plain WebSockets: echo, broadcast, ask, join and say at ws://127.0.0.1:PORT/",
    );
    gateway_bench::exit("bench-server", run(&options).await)
}

async fn run(options: &ScaleOutOptions) -> Result<(), Failure> {
    let addr = options.server.addr();
    let listener = ws_gateway_axum::bind(addr).map_err(|source| Failure::Bind { addr, source })?;
    let app = gateway_bench::scale_out_app(options).await?;
    ws_gateway_axum::serve(listener, app.into_router())
        .await
        .map_err(Failure::runtime)
}
