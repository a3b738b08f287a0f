#![doc = include_str!("../README.md")]
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
    BACKLOG, CLIENT_SCRIPT, CLIENT_TYPES, Codec, GracefulShutdown, IntoRouter, JsonCodec,
    JsonTransport, MessageParser, Serve, WebSocketTransport, bind, client_routes, serve,
};

/// Socket.IO clients for the same gateways, on socketioxide.
#[cfg(feature = "socketio")]
#[cfg_attr(docsrs, doc(cfg(feature = "socketio")))]
pub mod socketio {
    /// engineioxide, socketioxide's Engine.IO server, which [`SocketIoTransport`] runs on.
    pub use ws_gateway_axum::engineioxide;
    pub use ws_gateway_axum::{SocketIo, SocketIoAuth, SocketIoConfig, SocketIoTransport};
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
