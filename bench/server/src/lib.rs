//! The gateway the benchmark servers serve: `bench-server` over plain WebSockets (the JSON
//! protocol), `socketio-bench-server` over Socket.IO, both from this one definition.
//!
//! One gateway at `/` with two events and nothing else in the way:
//! - `echo` replies with the same data under `echo`;
//! - `broadcast` sends its data under `broadcast` to every client and replies nothing.
//!
//! The rate limit is off (a load generator sends far more than 1,000 messages a second per
//! connection); every other setting is the default `ConnectionConfig`.

use serde_json::value::RawValue;
use ws_gateway_axum::prelude::*;

/// Echo and broadcast, as in `bench/peers/nest`, `raw-axum` and `raw-socketioxide`.
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

    /// `data` to every client of the gateway, encoded once.
    #[subscribe("broadcast")]
    fn broadcast(&self, data: Box<RawValue>) {
        let _ = self.server.emit("broadcast", &data);
    }
}

/// The app of the benchmark servers: [`BenchGateway`], no rate limit.
///
/// # Errors
///
/// The app's build error (none for this gateway).
pub fn app() -> Result<App, ws_gateway_core::BuildError> {
    let mut config = ws_gateway_core::ConnectionConfig::default();
    config.rate_limit = None;
    GatewayApp::new()
        .gateway::<BenchGateway>()
        .config(config)
        .build()
}

/// The port from the `PORT` environment variable, 3000 without it.
pub fn port() -> u16 {
    std::env::var("PORT")
        .ok()
        .and_then(|p| p.parse().ok())
        .unwrap_or(3000)
}

/// The listener of the hand-written peers (`raw-axum`, `raw-socketioxide`): 127.0.0.1 at
/// [`port`], a backlog of 1024 and `TCP_NODELAY`, as `ws_gateway_axum::bind` and `serve` set up
/// ours, so that the comparison is of the servers alone.
///
/// # Errors
///
/// Creating, binding or listening on the socket failed.
pub fn raw_listener() -> std::io::Result<impl axum::serve::Listener<Addr = std::net::SocketAddr>> {
    use axum::serve::ListenerExt;

    let socket = tokio::net::TcpSocket::new_v4()?;
    socket.set_reuseaddr(true)?;
    socket.bind(std::net::SocketAddr::from(([127, 0, 0, 1], port())))?;
    Ok(socket.listen(1024)?.tap_io(|tcp| {
        let _ = tcp.set_nodelay(true);
    }))
}
