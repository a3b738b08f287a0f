//! The runtime of a WebSocket gateway framework for people who know NestJS gateways:
//! annotate a struct and its methods, get a typed, validated real-time server.
//!
//! ```
//! use ws_gateway_core::prelude::*;
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
//!     /// Answered under another event: `{"event":"identity","data":n}`.
//!     #[subscribe("identity")]
//!     fn identity(&self, n: u32) -> WsResponse<u32> {
//!         WsResponse::new("identity", n)
//!     }
//!
//!     #[handle_connection]
//!     fn hello(&self, client: Client) {
//!         let _ = client.emit("welcome", &client.id());
//!     }
//! }
//!
//! let app = GatewayApp::new().gateway::<ChatGateway>().build().unwrap();
//! assert_eq!(app.gateways()[0].path(), "/chat");
//! ```
//!
//! Serve the [`App`] with `ws-gateway-axum`, which mounts every gateway on an axum `Router`.
//!
//! The wire format is NestJS's `WsAdapter` envelope, JSON text frames
//! `{"event": "...", "data": ...}`; a request may carry an `"id"`, copied into its replies.
//! Errors reach the client as an `exception` event (see [`WsException`]) and never close
//! the socket unless asked to.
//!
//! # Features
//!
//! - `asyncapi`: an AsyncAPI 3.0 document of an app's gateways (`asyncapi::document`), the
//!   JSON Schemas of bodies and replies coming from `schemars`. Off by default: without it,
//!   handlers are not described and schemars is not compiled.
#![cfg_attr(docsrs, feature(doc_cfg))]
#![doc(test(attr(deny(warnings), allow(dead_code, unused_variables))))]

// Lets the macros' `::ws_gateway_core::...` paths resolve inside this crate's own doc tests
// and unit tests.
#[allow(unused_extern_crates)]
extern crate self as ws_gateway_core;

mod ack;
pub mod adapter;
mod app;
mod args;
#[cfg(feature = "asyncapi")]
#[cfg_attr(docsrs, doc(cfg(feature = "asyncapi")))]
pub mod asyncapi;
mod auth;
mod channel;
mod client;
mod config;
mod connections;
mod dispatch;
mod error;
mod exception;
mod extract;
mod factory;
mod failure;
mod filter;
pub mod frame;
mod gateway;
mod guard;
mod inject;
mod interceptor;
mod layers;
mod logging;
mod path_params;
pub mod pipe;
mod pipeline;
pub mod prelude;
mod rate_limit;
mod recovery;
mod registry;
pub mod reply;
mod request;
mod resolve;
mod runtime;
mod server;
mod session;
mod state;
pub mod telemetry;
pub mod transport;

#[doc(hidden)]
pub mod __private;

// Gateway authors: the items a gateway, its handlers, guards, interceptors, pipes and
// filters touch. Transport authors find theirs in `transport`, generated code in
// `__private`.
pub use ack::{Ack, AckError, AckFuture, AckStream};
pub use app::{App, GatewayApp};
pub use args::{Args, RawArgs};
pub use auth::{Authenticator, HandshakeRequest, Identity, SocketIoAuth, UNAUTHORIZED};
pub use client::{Client, ClientId, Handshake, TimedClient, VolatileClient};
pub use config::{ConnectionConfig, ForwardedHeader, Origins, RateLimit, TrustedProxies};
pub use dispatch::{Context, Outcome, Reply};
pub use error::{BoxError, BuildError, RoomError, SendError};
pub use exception::{CloseRequest, ErrorKind, INTERNAL_SERVER_ERROR, WsException};
pub use extract::{ArgSite, Data, Event, FromContext, MessageBody, TryData};
pub use factory::{Dependency, FactoryFn};
pub use failure::Failure;
pub use filter::{Caught, ExceptionFilter, FilterContext};
pub use frame::{BinaryFrame, Frame};
pub use guard::{FORBIDDEN, Guard};
pub use inject::{BuildContext, FromProviders, Inject, Needs, Providers, ServerOf};
pub use interceptor::{Interceptor, Next};
pub use logging::LoggingInterceptor;
pub use path_params::{PathMismatch, PathParams, WsParam};
pub use pipe::{Pipe, ValidationPipe};
pub use recovery::Recovery;
pub use registry::{GatewayDescriptor, registered};
pub use reply::{IntoReply, ReplyTo, WsResponse};
pub use request::{IntoRawJson, Request};
pub use server::{Broadcast, WsServer};
pub use state::ClientState;

/// The JSON Schema crate the AsyncAPI document is built with: derive `JsonSchema` on message
/// bodies and replies to describe them.
#[cfg(feature = "asyncapi")]
#[cfg_attr(docsrs, doc(cfg(feature = "asyncapi")))]
pub use schemars;

pub use ws_gateway_macros::{
    after_init, handle_connection, handle_disconnect, subscribe, use_filters, use_guards,
    use_interceptors, use_pipes, websocket_gateway,
};
