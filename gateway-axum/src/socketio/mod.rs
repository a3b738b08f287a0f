//! [`SocketIoTransport`]: the same gateways served to Socket.IO clients, on socketioxide's
//! Engine.IO server ([engineioxide](https://docs.rs/engineioxide)) and Socket.IO packet
//! parser ([socketioxide-parser-common](https://docs.rs/socketioxide-parser-common)).
//!
//! Each namespace socket becomes an ordinary [`Client`](ws_gateway_core::Client) of the
//! gateway's [`GatewayRuntime`]: rooms, [`WsServer`](ws_gateway_core::WsServer) emits,
//! guards, pipes, interceptors, filters, hooks and the broadcast adapter work unchanged, and
//! one room holds plain-WebSocket and Socket.IO clients alike.
//!
//! - `engine`: the Engine.IO handler, which routes each packet to its namespace's session
//!   and admits namespace CONNECTs;
//! - `connection`: one client in one namespace, as the session driver sees it;
//! - `wire`: the packets to and from the gateway's frames and requests.
//!
//! Why not socketioxide's own namespaces: they write the CONNECT packet themselves, with
//! no way to add the `pid` that socket.io-client's connection state recovery needs, and
//! encode every emit again for each receiver. The Socket.IO layer above the packets is
//! small; the engine and the packet format stay socketioxide's.

mod connection;
mod engine;
mod wire;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::http::StatusCode;
use axum::routing::any;
use engineioxide::config::EngineIoConfig;
use engineioxide::layer::EngineIoLayer;
use ws_gateway_core::App;
pub use ws_gateway_core::SocketIoAuth;
use ws_gateway_core::transport::{GatewayRuntime, Transport};

use engine::Engine;

/// Serves every gateway to Socket.IO clients (cargo feature `socketio`): a gateway's path is
/// its namespace, `#[subscribe("x")]` handles event `x`.
///
/// - A gateway path with parameters (`/rooms/{id}`) is a dynamic namespace: a client of
///   `io("http://host/rooms/42")` is a client of the gateway, its parameters read by
///   [`WsParam`](ws_gateway_core::WsParam) as over plain WebSockets (percent-decoded). A
///   path keeps nothing once its last client left.
/// - A handler's reply under the request's own event answers the client's acknowledgement
///   callback when it passed one (NestJS's semantics), and is emitted under that event when
///   it did not; a [`WsResponse`](ws_gateway_core::WsResponse) under another event is emitted.
/// - A message's first argument is the handler's data (none is no data); every argument is
///   [`Args`](ws_gateway_core::Args) or [`RawArgs`](ws_gateway_core::RawArgs), and a
///   frame of several ([`Client::emit_args`](ws_gateway_core::Client::emit_args), a returned `Args`) is emitted, or answers the
///   callback, with its arguments spread. Data stays raw JSON both ways: the handler
///   receives the arguments as the client wrote them, and the client receives what the
///   handler replies or emits as plain WebSocket clients do (key order and numbers as
///   written). Binary attachments arrive as byte strings (placeholders in the JSON text,
///   [`Request::attachments`](ws_gateway_core::Request::attachments) beside it), and byte
///   strings go out as attachments ([`Frame::binary`](ws_gateway_core::Frame::binary)).
/// - A [volatile](ws_gateway_core::Frame::volatile) frame the engine has no room for is dropped (counted in
///   `gateway_messages_dropped_total`) rather than disconnecting the client.
/// - Errors arrive as an `exception` event whose payload is exactly what the JSON transport
///   sends: `{"status":"error","message":..,"cause":{"pattern":..,"data":..}}`.
/// - Handshake authentication runs the gateway's authenticator on the Socket.IO handshake:
///   its headers, its query and the `auth` payload (`auth.token` is a bearer token, see
///   [`HandshakeRequest::token`](ws_gateway_core::HandshakeRequest::token)). A refused client receives `connect_error` with the
///   reason as `message`, as do clients over the app's connection limits, with request
///   headers over `max_handshake_size`, or from an origin `allowed_origins` refuses
///   (by default, any page but the server's own).
/// - A close requested by a handler, a filter or `client.close(..)` disconnects the socket
///   from the namespace (Socket.IO has no close codes). A connection that joins no
///   namespace within [`SocketIoConfig::connect_timeout`], from its opening or from
///   leaving its last one, is closed.
/// - Connection state recovery ([`Recovery`](ws_gateway_core::Recovery)) works with the
///   unmodified socket.io-client, as with Socket.IO's own server: the CONNECT packet
///   carries the session's `pid`, recorded events carry their offset as their last
///   argument, and a client that reconnects within the window gets `socket.recovered`,
///   its id, rooms and state, and the events it missed. Its CONNECT's `pid` and `offset`
///   are added to the query of its [`Handshake`](ws_gateway_core::Handshake)'s URI, where
///   recovery reads them on every transport.
///
/// [`mount`](Transport::mount) returns a router serving Socket.IO's path
/// (`/socket.io/` unless configured otherwise) and the server's [`SocketIo`] handle: merge the router
/// with the one serving the plain-WebSocket routes, and both kinds of clients are served on
/// one port, sharing one [`App`].
///
/// # Examples
///
/// ```
/// use ws_gateway_axum::prelude::*;
/// use ws_gateway_axum::{SocketIoTransport, Transport};
///
/// #[websocket_gateway(path = "/chat")]
/// struct Chat;
///
/// #[websocket_gateway]
/// impl Chat {
///     /// `socket.emit("ping", 1, (reply) => ...)` gets `"pong"` in its callback.
///     #[subscribe("ping")]
///     fn ping(&self) -> &'static str {
///         "pong"
///     }
/// }
///
/// let app = GatewayApp::new().gateway::<Chat>().build().unwrap();
/// let (socketio, _io) = SocketIoTransport::new().mount(&app);
/// // ws://host/chat for plain WebSocket clients, io("http://host/chat") for Socket.IO ones.
/// let router: axum::Router = app.into_router().merge(socketio);
/// # let _ = router;
/// ```
#[derive(Debug, Clone, Default)]
pub struct SocketIoTransport {
    config: Option<SocketIoConfig>,
}

/// The Socket.IO server's settings: Engine.IO's (path, heartbeat, payload limits,
/// transports) and how long a connection may stay without a namespace. The defaults are
/// socketioxide's (and Socket.IO's): path `/socket.io`, a ping every 25 s answered within
/// 20 s, a connect timeout of 45 s.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use ws_gateway_axum::SocketIoConfig;
///
/// let config = SocketIoConfig::default();
/// assert_eq!(config.engine_config.req_path, "/socket.io");
/// assert_eq!(config.connect_timeout, Duration::from_secs(45));
/// ```
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct SocketIoConfig {
    /// The Engine.IO server's settings (engineioxide's).
    pub engine_config: EngineIoConfig,
    /// How long a connection may stay without joining a namespace before it is closed
    /// (Socket.IO's `connectTimeout`). Default 45 s, as Socket.IO's.
    pub connect_timeout: Duration,
}

impl Default for SocketIoConfig {
    fn default() -> Self {
        Self {
            engine_config: EngineIoConfig {
                req_path: "/socket.io".into(),
                ..EngineIoConfig::default()
            },
            connect_timeout: Duration::from_secs(45),
        }
    }
}

/// A handle to a mounted Socket.IO server: its settings and the namespaces it serves.
///
/// # Examples
///
/// ```
/// use ws_gateway_axum::prelude::*;
/// use ws_gateway_axum::{SocketIoTransport, Transport};
///
/// #[websocket_gateway(path = "/doc-sio-handle")]
/// struct Handled;
///
/// #[websocket_gateway]
/// impl Handled {}
///
/// let app = GatewayApp::new().gateway::<Handled>().build().unwrap();
/// let (_router, io) = SocketIoTransport::new().mount(&app);
/// assert_eq!(io.namespaces(), ["/doc-sio-handle"]);
/// assert!(io.serves("/doc-sio-handle") && !io.serves("/elsewhere"));
/// ```
#[derive(Clone, Debug)]
pub struct SocketIo(Engine);

impl SocketIo {
    /// The settings the server runs with.
    pub fn config(&self) -> &SocketIoConfig {
        &self.0.config
    }

    /// The namespaces served, as their gateways' paths (`/rooms/{id}` for a dynamic one).
    pub fn namespaces(&self) -> Vec<String> {
        self.0.paths()
    }

    /// Whether a client connecting to namespace `path` (`/rooms/42`) reaches a gateway.
    pub fn serves(&self, path: &str) -> bool {
        self.0.find(path).is_some()
    }
}

impl SocketIoTransport {
    /// A transport with Engine.IO's defaults (path `/socket.io`), the payload limits and
    /// the buffer of each connection taken from the app's
    /// [`ConnectionConfig`](ws_gateway_core::ConnectionConfig) (`max_message_size`,
    /// `max_frame_size`; `outbound_queue` frames, since emits to a Socket.IO client go
    /// straight to its Engine.IO socket).
    ///
    /// # Examples
    ///
    /// ```
    /// use ws_gateway_axum::prelude::*;
    /// use ws_gateway_axum::{SocketIoTransport, Transport};
    ///
    /// #[websocket_gateway(path = "/doc-sio-new")]
    /// struct Fresh;
    ///
    /// #[websocket_gateway]
    /// impl Fresh {}
    ///
    /// let app = GatewayApp::new().gateway::<Fresh>().build().unwrap();
    /// let (_router, io) = SocketIoTransport::new().mount(&app);
    /// let engine = &io.config().engine_config;
    /// assert_eq!(engine.req_path, "/socket.io");
    /// assert_eq!(engine.max_payload, app.config().max_message_size as u64);
    /// assert_eq!(engine.max_buffer_size, app.config().outbound_queue);
    /// ```
    pub fn new() -> Self {
        Self::default()
    }

    /// A transport with these settings (path, ping interval and timeout, payload limits,
    /// connect timeout...), used as they are.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use ws_gateway_axum::prelude::*;
    /// use ws_gateway_axum::{SocketIoConfig, SocketIoTransport, Transport};
    ///
    /// #[websocket_gateway(path = "/doc-sio-config")]
    /// struct Configured;
    ///
    /// #[websocket_gateway]
    /// impl Configured {}
    ///
    /// let mut config = SocketIoConfig::default();
    /// config.engine_config.req_path = "/io".into();
    /// config.engine_config.ping_interval = Duration::from_millis(300);
    /// config.engine_config.max_payload = 1_000_000;
    /// config.connect_timeout = Duration::from_secs(1);
    ///
    /// let app = GatewayApp::new().gateway::<Configured>().build().unwrap();
    /// let (_router, io) = SocketIoTransport::with_config(config).mount(&app);
    /// let applied = io.config();
    /// assert_eq!(applied.engine_config.req_path, "/io");
    /// assert_eq!(applied.engine_config.ping_interval, Duration::from_millis(300));
    /// assert_eq!(applied.engine_config.max_payload, 1_000_000);
    /// assert_eq!(applied.connect_timeout, Duration::from_secs(1));
    /// ```
    pub fn with_config(config: SocketIoConfig) -> Self {
        Self {
            config: Some(config),
        }
    }
}

impl Transport for SocketIoTransport {
    /// A router serving Socket.IO's path (merge it with your router) and the server's
    /// handle.
    type Server = (Router, SocketIo);

    /// Socket.IO's router and handle, with no namespace yet.
    ///
    /// # Examples
    ///
    /// ```
    /// use ws_gateway_axum::prelude::*;
    /// use ws_gateway_axum::{SocketIoTransport, Transport};
    ///
    /// #[websocket_gateway(path = "/doc-sio-create")]
    /// struct Created;
    ///
    /// #[websocket_gateway]
    /// impl Created {}
    ///
    /// let app = GatewayApp::new().gateway::<Created>().build().unwrap();
    /// let (router, io) = SocketIoTransport::new().create(&app);
    /// assert!(io.namespaces().is_empty());
    /// # let _: axum::Router = router;
    /// ```
    fn create(&self, app: &App) -> Self::Server {
        let config = self.config.clone().unwrap_or_else(|| {
            let max = app.config().max_message_size;
            let mut config = SocketIoConfig::default();
            config.engine_config.max_payload = u64::try_from(max).unwrap_or(u64::MAX);
            config.engine_config.ws_max_message_size = max;
            config.engine_config.ws_max_frame_size = app.config().max_frame_size;
            // Emits go straight to the engine socket's buffer: it is the client's queue.
            config.engine_config.max_buffer_size = app.config().outbound_queue;
            config
        });
        let engine = Engine::new(config, app.config().max_message_size);
        let path = engine
            .config
            .engine_config
            .req_path
            .trim_end_matches('/')
            .to_owned();
        let layer = EngineIoLayer::from_config(
            Arc::new(engine.clone()),
            engine.config.engine_config.clone(),
        );
        // Routes, not a fallback: the router survives being merged into another. The layer
        // answers every request under the path; the handler is never reached.
        let unreachable = || std::future::ready(StatusCode::NOT_FOUND);
        let router = Router::new()
            .route(&format!("{path}/"), any(unreachable))
            .route(&path, any(unreachable))
            .layer(layer);
        (router, SocketIo(engine))
    }

    /// Serves `gateway` as the namespace of its path.
    ///
    /// # Examples
    ///
    /// ```
    /// use ws_gateway_axum::prelude::*;
    /// use ws_gateway_axum::{SocketIoTransport, Transport};
    ///
    /// #[websocket_gateway(path = "/doc-sio-bind")]
    /// struct Bound;
    ///
    /// #[websocket_gateway]
    /// impl Bound {}
    ///
    /// let app = GatewayApp::new().gateway::<Bound>().build().unwrap();
    /// let transport = SocketIoTransport::new();
    /// let server = transport.create(&app);
    /// let (router, io) = transport.bind(server, &app.gateways()[0], &app);
    /// assert!(io.serves("/doc-sio-bind"));
    /// # let _: axum::Router = router;
    /// ```
    fn bind(&self, server: Self::Server, gateway: &GatewayRuntime, app: &App) -> Self::Server {
        server.1.0.add(gateway, app);
        server
    }
}
