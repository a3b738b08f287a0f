//! The guide: one chapter per page of the NestJS WebSocket documentation, then what
//! running it in production asks for. Every code block is compiled and run as a test: the
//! examples start a server on an ephemeral port and talk to it with
//! [`test_client`](crate::test_client), asserting the frames the text describes.
//!
//! From NestJS, in the order of its documentation:
//!
//! - [`gateways`]: `@WebSocketGateway` and `@SubscribeMessage`, handler arguments, replies,
//!   `@WebSocketServer`, rooms, lifecycle hooks, per-connection state, injection,
//!   registration and the wire protocol.
//! - [`exception_filters`]: `WsException`, your own error types, `@Catch` filters (typed,
//!   and catching everything).
//! - [`pipes`]: `ValidationPipe` and your own pipes.
//! - [`guards`]: `CanActivate`, and authentication at the handshake.
//! - [`interceptors`]: code around a handler, mapping replies, answering early.
//! - [`adapters`]: plain WebSocket, Socket.IO, your own wire format, mounting on axum.
//!
//! Then what production asks for:
//!
//! - [`scaling_out`]: several instances through Redis (NestJS's `RedisIoAdapter`), what
//!   crosses instances, the guarantees, Redis faults.
//! - [`recovery`]: reconnecting clients: what they are today, rejoining rooms, missed
//!   messages, noticing dead peers.
//! - [`testing`]: handlers as methods, a real server and client, several instances in one
//!   process.
//! - [`limits`]: every bound, its default and what the client sees; graceful shutdown.
//! - [`deployment`]: nginx, cloud load balancers, sticky sessions, forwarded addresses,
//!   origins, health checks, SIGTERM.
//! - [`observability`]: logs and spans, Prometheus metrics, the AsyncAPI document.

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

// Production: more than one instance, clients that come back, tests, bounds, proxies,
// telemetry. The links to feature-gated items (`redis`, `test_client`) resolve on docs.rs
// (every feature on); without those features they have no target, which is no error.

#[doc = include_str!("../guide/scaling_out.md")]
#[cfg_attr(not(feature = "redis"), allow(rustdoc::broken_intra_doc_links))]
pub mod scaling_out {}

#[doc = include_str!("../guide/recovery.md")]
pub mod recovery {}

#[doc = include_str!("../guide/testing.md")]
#[cfg_attr(
    not(all(feature = "redis", feature = "test-client")),
    allow(rustdoc::broken_intra_doc_links)
)]
pub mod testing {}

#[doc = include_str!("../guide/limits.md")]
pub mod limits {}

#[doc = include_str!("../guide/deployment.md")]
pub mod deployment {}

#[doc = include_str!("../guide/observability.md")]
pub mod observability {}
