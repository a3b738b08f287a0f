//! The server that socketio/socket.io-protocol's compliance suite runs against, built with
//! this framework: namespaces `/` and `/custom`, each emitting `auth` on connection with the
//! client's `auth` payload, echoing `message` as `message-back` and `message-with-ack`
//! through the acknowledgement, every argument as sent (binary stays binary).
//!
//! ```text
//! PORT=3000 cargo run -p socketio-compliance --release
//! # then, in a checkout of socketio/socket.io-protocol:
//! cd test-suite && npm ci && npm test
//! ```

use std::time::Duration;

use ws_gateway::prelude::*;
use ws_gateway::socketio::{SocketIo, SocketIoAuth, SocketIoConfig, SocketIoTransport};
use ws_gateway::transport::Transport;
use ws_gateway::{App, BuildError, RawArgs, SendError};

/// The suite's Engine.IO settings: pings every 300 ms, a client silent 200 ms after a ping
/// is gone, payloads up to 1,000,000 bytes, and a namespace CONNECT within 1 s.
pub fn config() -> SocketIoConfig {
    let mut config = SocketIoConfig::default();
    config.engine_config.ping_interval = Duration::from_millis(300);
    config.engine_config.ping_timeout = Duration::from_millis(200);
    config.engine_config.max_payload = 1_000_000;
    config.connect_timeout = Duration::from_secs(1);
    config
}

/// What both namespaces do.
fn greet(client: &Client) {
    let empty = serde_json::json!({});
    let auth = client.handshake().extensions.get::<SocketIoAuth>();
    client
        .emit("auth", auth.map_or(&empty, |SocketIoAuth(auth)| auth))
        .ok();
}

/// The main namespace, `/`.
#[websocket_gateway(path = "/")]
pub struct Main;

#[websocket_gateway]
impl Main {
    #[handle_connection]
    fn connected(&self, client: Client) {
        greet(&client);
    }

    #[subscribe("message")]
    fn message(&self, client: Client, args: RawArgs) -> Result<(), SendError> {
        client.emit_args("message-back", &args)
    }

    /// The reply under the request's event answers its acknowledgement.
    #[subscribe("message-with-ack")]
    fn message_with_ack(&self, args: RawArgs) -> RawArgs {
        args
    }
}

/// The namespace `/custom`, which does the same.
#[websocket_gateway(path = "/custom")]
pub struct Custom;

#[websocket_gateway]
impl Custom {
    #[handle_connection]
    fn connected(&self, client: Client) {
        greet(&client);
    }

    #[subscribe("message")]
    fn message(&self, client: Client, args: RawArgs) -> Result<(), SendError> {
        client.emit_args("message-back", &args)
    }

    #[subscribe("message-with-ack")]
    fn message_with_ack(&self, args: RawArgs) -> RawArgs {
        args
    }
}

/// The app of both namespaces.
///
/// # Errors
///
/// The app failed to build (it does not).
pub fn app() -> Result<App, BuildError> {
    GatewayApp::new()
        .gateway::<Main>()
        .gateway::<Custom>()
        .build()
}

/// The Socket.IO router serving `app` with [`config`], and the server's handle.
pub fn router(app: &App) -> (axum::Router, SocketIo) {
    SocketIoTransport::with_config(config()).mount(app)
}
