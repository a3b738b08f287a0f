//! Scale a gateway app out over several processes through Redis pub/sub, as NestJS's
//! `RedisIoAdapter` does for Socket.IO.
//!
//! Give every instance of the app a [`RedisAdapter`] on the same Redis and the same
//! [prefix](RedisConfig::prefix): every emit, broadcast, room operation and disconnect of a
//! [`WsServer`](gateway_core::WsServer) then reaches the matching clients on every
//! instance, exactly once, and [`fetch_clients`](gateway_core::Broadcast::fetch_clients)
//! asks every instance.
//!
//! ```
//! use gateway_core::prelude::*;
//! use gateway_redis::{RedisAdapter, RedisConfig};
//!
//! #[websocket_gateway(path = "/chat")]
//! struct Chat;
//!
//! #[websocket_gateway]
//! impl Chat {
//!     #[subscribe("join")]
//!     fn join(&self, client: Client, room: String) {
//!         client.join(room);
//!     }
//!
//!     #[subscribe("say")]
//!     fn say(&self, client: Client, text: String) {
//!         client.to("lobby").emit("said", &text).ok(); // members on every instance
//!     }
//! }
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let url = std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into());
//! let config = RedisConfig::new(url).prefix("chat");
//! # let config = config.start_degraded(true);
//! let app = GatewayApp::new()
//!     .adapter(RedisAdapter::connect(config).await?) // fails naming the URL if unreachable
//!     .gateway::<Chat>()
//!     .build()?;
//! # let _ = app;
//! # Ok(())
//! # }
//! ```
//!
//! # How it works
//!
//! - Each instance delivers to its own clients first, then publishes the operation once,
//!   with the frame already encoded, on channel `<prefix>:<gateway path>`: a 14-byte header
//!   (version, instance id, kind, selection length), the selection as JSON (absent for a
//!   plain broadcast), and the frame's bytes, which receivers pass on without parsing.
//! - Each instance subscribes to `<prefix>:*` and ignores what carries its own id, so no
//!   client receives a message twice. Operations from one instance are published in order
//!   on one connection and applied in order, so order per sender holds.
//! - `fetch_clients` publishes a request on `<prefix>#request`; every subscriber answers on
//!   `<prefix>#response#<instance id>`, and the request waits for as many answers as
//!   `PUBLISH` reported receivers, up to [`RedisConfig::request_timeout`].
//! - Two connections, as the Socket.IO adapter's docs explain: a connection in subscribe
//!   mode can send no other command, so publishing uses its own (multiplexed, pipelined).
//!
//! # When Redis goes away
//!
//! Local delivery never waits for Redis: [`publish`](gateway_core::adapter::Adapter::publish)
//! only queues. If Redis is lost while running, one warning is logged (target
//! `gateway::redis`), what is published meanwhile is dropped for the other instances, and
//! both connections are re-established with backoff ([`RedisConfig::reconnect_backoff`]);
//! the subscriber subscribes again, an info line says delivery resumed. No restart needed.
//!
//! At start, an unreachable Redis is an [`Error`] naming the URL, unless
//! [`RedisConfig::start_degraded`] asks to start anyway.
//!
//! # Why redis-rs
//!
//! [redis-rs](https://docs.rs/redis) (the `redis` crate) is the most used async Redis client
//! for Rust, maintained under the redis-rs organisation with releases every few weeks. With
//! default features off and `tokio-comp` on it is small, its split `PubSub`
//! (`into_on_message`) is exactly the dedicated subscriber connection this adapter needs, and
//! its `MultiplexedConnection` pipelines publishes in order. `fred` would do as well; it brings
//! its own reconnection policy, but the adapter must know when a connection drops anyway (to
//! warn once, drop rather than buffer, and resubscribe), so redis-rs's plainer model fits.

#![doc(test(attr(deny(warnings))))]

mod adapter;
mod codec;
mod config;
mod driver;
mod error;

pub use adapter::RedisAdapter;
pub use config::RedisConfig;
pub use error::Error;
