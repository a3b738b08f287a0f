//! [`WebSocketAdapter`]: how a transport serves the gateways of an [`App`], NestJS's
//! `WebSocketAdapter` interface.
//!
//! Not to be confused with [`adapter`](crate::adapter), which carries broadcasts between
//! instances (NestJS's `RedisIoAdapter` is both at once; here they are two traits, so any
//! transport works with any broadcast adapter).

use std::future::Future;
use std::time::Duration;

use crate::app::App;
use crate::runtime::GatewayRuntime;

/// A transport that serves gateways: the JSON protocol on plain WebSockets
/// (`gateway_axum::JsonAdapter`, the default), Socket.IO (`gateway_axum::SocketIoAdapter`),
/// or your own wire format.
///
/// NestJS's interface maps onto it as follows:
///
/// | NestJS `WebSocketAdapter` | here |
/// |---|---|
/// | `create(port, options)` | [`create`](Self::create): the transport's server, no gateway yet |
/// | `bindClientConnect(server, callback)` | [`bind`](Self::bind), then for each connection: [`GatewayRuntime::authenticate`] the handshake, [`open`](GatewayRuntime::open) a client, [`connect`](GatewayRuntime::connect) it (runs `#[handle_connection]`) |
/// | `bindMessageHandlers(client, handlers, transform)` | for each message: [`dispatch`](GatewayRuntime::dispatch) (or [`dispatch_text`](GatewayRuntime::dispatch_text)), send the [`Reply`](crate::Reply), [`catch`](GatewayRuntime::catch) failures; drain the client's [`OutboundQueue`](crate::OutboundQueue) |
/// | `bindClientDisconnect(client, callback)` | when the connection ends, however it ends: [`disconnect`](GatewayRuntime::disconnect) (runs `#[handle_disconnect]`, leaves the rooms) |
/// | `close(server)` | [`close`](Self::close) |
///
/// The handlers, guards, pipes, interceptors, exception filters, hooks, rooms and the
/// broadcast adapter all live in the [`GatewayRuntime`]: an adapter only moves messages
/// between its wire format and the runtime, so annotated gateways run unchanged on any
/// adapter, and clients of several adapters share the same rooms. Outgoing messages are
/// [`Frame`](crate::Frame)s, JSON `{"event":..,"data":..}`; split one with
/// [`IncomingFrame::parse`](crate::IncomingFrame::parse) to re-encode it.
///
/// # Examples
///
/// An adapter that serves nothing over the network but drives each gateway with lines of
/// text, to show the calls a transport makes:
///
/// ```
/// use gateway_core::prelude::*;
/// use gateway_core::{GatewayRuntime, Handshake, WebSocketAdapter};
///
/// #[websocket_gateway(path = "/echo")]
/// struct Echo;
///
/// #[websocket_gateway]
/// impl Echo {
///     #[subscribe("echo")]
///     fn echo(&self, data: serde_json::Value) -> serde_json::Value {
///         data
///     }
/// }
///
/// /// Its "server" is the list of mounted gateways.
/// struct LineAdapter;
///
/// impl WebSocketAdapter for LineAdapter {
///     type Server = Vec<GatewayRuntime>;
///
///     fn create(&self, _app: &App) -> Self::Server {
///         Vec::new()
///     }
///
///     fn bind(&self, mut server: Self::Server, gateway: &GatewayRuntime, _app: &App) -> Self::Server {
///         server.push(gateway.clone());
///         server
///     }
/// }
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let app = GatewayApp::new().gateway::<Echo>().build().unwrap();
/// let gateways = LineAdapter.mount(&app);
/// let gateway = &gateways[0];
///
/// // One connection: open, connect, a message, disconnect.
/// let (client, _queue) = gateway.open(Handshake::default(), 16);
/// gateway.connect(&client).await.unwrap();
/// let outcome = gateway.dispatch_text(&client, r#"{"event":"echo","data":[1]}"#).outcome().await;
/// match outcome {
///     Ok(Reply::Frame(frame)) => assert_eq!(frame.as_str(), r#"{"event":"echo","data":[1]}"#),
///     other => panic!("{other:?}"),
/// }
/// gateway.disconnect(&client).await;
/// assert_eq!(LineAdapter.close(&app, std::time::Duration::from_secs(1)).await, 0);
/// # }
/// ```
pub trait WebSocketAdapter {
    /// What the adapter serves gateways with: an axum `Router`, a tower layer, a listener...
    type Server;

    /// Creates the transport's server, with no gateway mounted yet (NestJS's `create`).
    fn create(&self, app: &App) -> Self::Server;

    /// Mounts one gateway on the server: from now on its connections are authenticated,
    /// opened and connected, their messages dispatched and answered, and their ends
    /// disconnected, as the table above says (NestJS's `bindClientConnect`,
    /// `bindMessageHandlers` and `bindClientDisconnect`).
    fn bind(&self, server: Self::Server, gateway: &GatewayRuntime, app: &App) -> Self::Server;

    /// Creates the server and binds every gateway of the app.
    fn mount(&self, app: &App) -> Self::Server {
        let server = self.create(app);
        app.gateways()
            .iter()
            .fold(server, |server, gateway| self.bind(server, gateway, app))
    }

    /// Closes every connection gracefully (NestJS's `close`): by default
    /// [`App::shutdown`], which every connection of every adapter watches when it admits
    /// its connections through [`App::connections`]. Resolves with how many were still
    /// open after the deadline.
    fn close(&self, app: &App, grace: Duration) -> impl Future<Output = usize> + Send {
        let app = app.clone();
        async move { app.shutdown(grace).await }
    }
}
