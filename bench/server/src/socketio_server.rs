//! The benchmark server over Socket.IO: `PORT=3000 cargo run --release -p gateway-bench --bin
//! socketio-bench-server` (`-- --help`: the options and exit codes).
//!
//! The same [`BenchGateway`](gateway_bench::BenchGateway) as `bench-server`, served by our
//! `SocketIoTransport` (socketioxide underneath) as namespace `/` at
//! `/socket.io/`: `42["echo",<data>]` is answered with `42["echo",<data>]`,
//! `42["broadcast",<data>]` sends `42["broadcast",<data>]` to every client,
//! `42["ask",<data>]` sends `42<N>["question",<data>]` to every other client, which
//! answers `43<N>[..]`, and replies `42["ask",{"answers":<count>,"ask":<data>}]`. The
//! plain-WebSocket route stays mounted at `/`, as an app serving both would have it. With
//! `--redis`, `join` and `say` share rooms with the other instances (`--per-room`: a channel
//! per room).

use std::process::ExitCode;

use gateway_bench::{Failure, ScaleOutOptions};
use ws_gateway_axum::{IntoRouter, SocketIoTransport, Transport};

#[tokio::main]
async fn main() -> ExitCode {
    let options: ScaleOutOptions = gateway_bench::command_line(
        "socketio-bench-server",
        "The benchmark gateway over Socket.IO: echo, broadcast, ask, join and say on namespace / at http://127.0.0.1:PORT/socket.io/",
    );
    gateway_bench::exit("socketio-bench-server", run(&options).await)
}

async fn run(options: &ScaleOutOptions) -> Result<(), Failure> {
    let addr = options.server.addr();
    let listener = ws_gateway_axum::bind(addr).map_err(|source| Failure::Bind { addr, source })?;
    let app = gateway_bench::scale_out_app(options).await?;
    let (socketio, _io) = SocketIoTransport::new().mount(&app);
    ws_gateway_axum::serve(listener, app.into_router().merge(socketio))
        .await
        .map_err(Failure::runtime)
}
