//! The benchmark server over Socket.IO: `PORT=3000 cargo run --release -p gateway-bench --bin
//! socketio-bench-server`.
//!
//! The same [`BenchGateway`](gateway_bench::BenchGateway) as `bench-server`, served by our
//! `SocketIoTransport` (socketioxide underneath) as namespace `/` at
//! `/socket.io/`: `42["echo",<data>]` is answered with `42["echo",<data>]`,
//! `42["broadcast",<data>]` sends `42["broadcast",<data>]` to every client. The
//! plain-WebSocket route stays mounted at `/`, as an app serving both would have it.

use ws_gateway_axum::{IntoRouter, SocketIoTransport, Transport};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let app = gateway_bench::app()?;
    let (socketio, _io) = SocketIoTransport::new().mount(&app);
    let listener = ws_gateway_axum::bind(([127, 0, 0, 1], gateway_bench::port()).into())?;
    ws_gateway_axum::serve(listener, app.into_router().merge(socketio)).await?;
    Ok(())
}
