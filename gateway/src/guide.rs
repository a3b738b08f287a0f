//! The guide: one chapter per page of the NestJS WebSocket documentation, then what
//! running it in production asks for. Every code block is compiled and run as a test: the
//! examples start a server on an ephemeral port and talk to it with
//! [`test_client`](crate::test_client), asserting the frames the text describes.
//!
//! From NestJS, in the order of its documentation:
//!
//! - [`gateways`]: `@WebSocketGateway` and `@SubscribeMessage`, handler arguments, replies,
//!   `@WebSocketServer`, rooms, lifecycle hooks, injection, registration and the wire
//!   protocol.
//! - [`exception_filters`]: `WsException`, your own error types, `@Catch` filters.
//! - [`pipes`]: `ValidationPipe` and your own pipes.
//! - [`guards`]: `CanActivate`, and authentication at the handshake.
//! - [`interceptors`]: code around a handler, mapping replies, answering early.
//! - [`adapters`]: plain WebSocket, Socket.IO, your own wire format, mounting on axum.

#[doc = include_str!("../guide/gateways.md")]
pub mod gateways {}

#[doc = include_str!("../guide/exception_filters.md")]
pub mod exception_filters {}

#[doc = include_str!("../guide/pipes.md")]
pub mod pipes {}

#[doc = include_str!("../guide/guards.md")]
pub mod guards {}

#[doc = include_str!("../guide/interceptors.md")]
pub mod interceptors {}

#[doc = include_str!("../guide/adapters.md")]
pub mod adapters {}
