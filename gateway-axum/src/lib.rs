//! Serves [ws-gateway-core](ws_gateway_core) gateways on axum: one call mounts every registered
//! gateway on a WebSocket upgrade route at its path.
//!
//! ```no_run
//! use ws_gateway_axum::prelude::*;
//!
//! #[websocket_gateway(path = "/echo")]
//! struct EchoGateway;
//!
//! #[websocket_gateway]
//! impl EchoGateway {
//!     #[subscribe("echo")]
//!     fn echo(&self, data: serde_json::Value) -> serde_json::Value {
//!         data
//!     }
//! }
//!
//! #[tokio::main]
//! async fn main() -> Result<(), Box<dyn std::error::Error>> {
//!     let app = GatewayApp::new().build()?;
//!     let router = app.into_router().route("/health", axum::routing::get(|| async { "ok" }));
//!     let listener = ws_gateway_axum::bind("127.0.0.1:3000".parse()?)?;
//!     ws_gateway_axum::serve(listener, router).await?;
//!     Ok(())
//! }
//! ```
//!
//! Every upgrade gets the buffer sizes and limits of the app's
//! [`ConnectionConfig`](ws_gateway_core::ConnectionConfig) (4 KiB buffers by default, not
//! axum's 128 KiB), and [`bind`] listens with a backlog of 1024 so bursts of handshakes do
//! not stall.
#![doc(test(attr(deny(warnings), allow(dead_code, unused_variables))))]

mod client_script;
mod codec;
mod gate;
mod handshake;
pub mod prelude;
mod router;
mod serve;
mod socket;
#[cfg(feature = "socketio")]
mod socketio;
#[cfg(feature = "test-client")]
pub mod test_client;
mod upgrade;

pub use client_script::{CLIENT_SCRIPT, CLIENT_TYPES, client_routes};
pub use codec::{Codec, JsonCodec, MessageParser};
/// engineioxide, socketioxide's Engine.IO server, which [`SocketIoTransport`] runs on
/// ([`SocketIoConfig::engine_config`] is its configuration).
#[cfg(feature = "socketio")]
pub use engineioxide;
pub use router::{IntoRouter, JsonTransport, WebSocketTransport};
pub use serve::{BACKLOG, GracefulShutdown, Serve, bind, serve};
#[cfg(feature = "socketio")]
pub use socketio::{SocketIo, SocketIoAuth, SocketIoConfig, SocketIoTransport};
/// The runtime the gateways are built with: gateways, handlers and the pipeline
/// (`ws_gateway_core::prelude`), the transport traits (`ws_gateway_core::transport`).
pub use ws_gateway_core;
pub use ws_gateway_core::transport::Transport;
