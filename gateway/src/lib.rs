//! WebSocket gateways for axum, the way NestJS writes them: annotate a struct and its
//! methods, get a typed, validated, authenticated real-time server.
//!
//! # Quick start
//!
//! ```toml
//! [dependencies]
//! ws-gateway = "0.1"
//! tokio = { version = "1", features = ["macros", "rt-multi-thread"] }
//! serde_json = "1"
//! ```
//!
//! ```no_run
//! use ws_gateway::prelude::*;
//!
//! #[websocket_gateway(path = "/chat")]
//! pub struct ChatGateway {
//!     server: WsServer,
//! }
//!
//! #[websocket_gateway]
//! impl ChatGateway {
//!     /// `{"event":"events","data":X}` is answered with `{"event":"events","data":X}`.
//!     #[subscribe("events")]
//!     async fn handle_event(&self, data: serde_json::Value) -> serde_json::Value {
//!         data
//!     }
//!
//!     /// Everyone in the room `lobby`, this client included, gets `{"event":"said","data":..}`.
//!     #[subscribe("say")]
//!     fn say(&self, client: Client, text: String) -> Result<(), WsException> {
//!         client.join("lobby")?;
//!         self.server.to("lobby").emit("said", &text)?;
//!         Ok(())
//!     }
//! }
//!
//! #[tokio::main]
//! async fn main() -> Result<(), Box<dyn std::error::Error>> {
//!     let app = GatewayApp::new().build()?;
//!     let listener = ws_gateway::bind("127.0.0.1:3000".parse()?)?;
//!     ws_gateway::serve(listener, app.into_router()).await?;
//!     Ok(())
//! }
//! ```
//!
//! Connect with any WebSocket client and send `{"event":"events","data":{"hello":1}}`.
//!
//! The [`guide`] has a chapter for each page of the NestJS WebSocket documentation
//! (gateways, exception filters, pipes, guards, interceptors, adapters), and for scaling
//! out, testing, limits and deployment.
//!
//! # Features
//!
//! - `socketio`: serve the same gateways to Socket.IO clients ([`socketio`]).
//! - `redis`: span several instances of an app through Redis ([`redis`]).
//! - `test-client`: a WebSocket client and a server on an ephemeral port for tests
//!   ([`test_client`]).
//! - `asyncapi`: an AsyncAPI 3.0 document of the app's gateways (`asyncapi::document`), the
//!   bodies and replies described by the JSON Schemas of their types (derive
//!   `schemars::JsonSchema`; `schemars` is re-exported).
#![cfg_attr(docsrs, feature(doc_cfg))]
#![doc(test(attr(deny(warnings), allow(dead_code, unused_variables))))]

// The macros' `::ws_gateway::...` paths resolve inside this crate's own doc tests.
#[allow(unused_extern_crates)]
extern crate self as ws_gateway;

pub mod guide;
pub mod prelude;

// Gateway authors: everything the runtime offers them, at the root as in ws-gateway-core,
// plus its modules (`pipe`, `reply`, `adapter`, `asyncapi`, `telemetry`, `transport`).
pub use ws_gateway_core::*;

// Serving on axum.
pub use ws_gateway_axum::{
    BACKLOG, Codec, GracefulShutdown, IntoRouter, JsonCodec, JsonTransport, MessageParser, Serve,
    WebSocketTransport, bind, serve,
};

/// Socket.IO clients for the same gateways, on socketioxide.
#[cfg(feature = "socketio")]
#[cfg_attr(docsrs, doc(cfg(feature = "socketio")))]
pub mod socketio {
    pub use ws_gateway_axum::SocketIoTransport;
    /// socketioxide, the Socket.IO server [`SocketIoTransport`] runs on.
    pub use ws_gateway_axum::socketioxide;
}

/// Scale out: one app over several processes through Redis pub/sub.
#[cfg(feature = "redis")]
#[cfg_attr(docsrs, doc(cfg(feature = "redis")))]
pub mod redis {
    pub use ws_gateway_redis::*;
}

/// Integration tests: a server on an ephemeral port and a WebSocket client.
#[cfg(feature = "test-client")]
#[cfg_attr(docsrs, doc(cfg(feature = "test-client")))]
pub mod test_client {
    pub use ws_gateway_axum::test_client::*;
}
