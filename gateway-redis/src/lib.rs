//! Scale a gateway app out over several processes through Redis pub/sub, as NestJS's
//! `RedisIoAdapter` does for Socket.IO.
//!
//! Give every instance of the app a [`RedisAdapter`] on the same Redis and the same
//! [prefix](RedisConfig::prefix): every emit, broadcast, room operation and disconnect of a
//! [`WsServer`](ws_gateway_core::WsServer) then reaches the matching clients on every
//! instance, exactly once, and [`fetch_clients`](ws_gateway_core::Broadcast::fetch_clients)
//! asks every instance.
//!
//! ```
//! use ws_gateway_core::prelude::*;
//! use ws_gateway_redis::{RedisAdapter, RedisConfig};
//!
//! #[websocket_gateway(path = "/chat")]
//! struct Chat;
//!
//! #[websocket_gateway]
//! impl Chat {
//!     #[subscribe("join")]
//!     fn join(&self, client: Client, room: String) -> Result<(), RoomError> {
//!         client.join(room)
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
//! - Each instance delivers to its own clients first, then appends the operation once, with
//!   the frame already encoded, to the Redis stream `<prefix>#operations` (`XADD ... MAXLEN
//!   ~ 10000`, [`RedisConfig::stream_max_len`]), as Socket.IO's Redis Streams adapter does:
//!   a header (version, instance id, kind, the instance's sequence number, the gateway's
//!   path), the selection as JSON (absent for a plain broadcast), and the frame's bytes,
//!   which receivers pass on without parsing.
//! - Each instance reads the stream (`XREAD BLOCK` from the last entry it read) and skips
//!   what carries its own id, so no client receives a message twice. Operations from one
//!   instance are appended in order, one batch after the other, and applied in order, so
//!   order per sender holds; an entry appended twice (see below) is applied once, by its
//!   sequence number.
//! - `fetch_clients` publishes a request on `<prefix>#request`; every subscriber answers on
//!   `<prefix>#response#<instance id>`, and the request waits for as many answers as there
//!   were subscribers to the request (`PUBLISH`'s count), up to
//!   [`RedisConfig::request_timeout`]. The request names the last entry its sender appended
//!   before it, and is answered once that entry was applied: it sees every operation before
//!   it.
//! - Three connections: a connection in subscribe mode can send no other command, and a
//!   blocking `XREAD` holds its connection, so publishing and appending use their own
//!   (multiplexed, pipelined).
//!
//! # Per-room channels, and Redis Cluster
//!
//! In [per-room mode](ChannelMode::PerRoom) (`RedisConfig::per_room()`) each room has a
//! channel, `<prefix>:<path>#<room>`, which an instance subscribes to while it has a member
//! in the room (the core reports a room's first member and its last through
//! [`Adapter::room_changed`](ws_gateway_core::adapter::Adapter::room_changed)); room emits
//! are published there, so an instance receives only its members' rooms. Broadcasts and
//! emits by client id go on `<prefix>:<path>`, answers on the instance's own channel, and
//! `fetch_clients` and acknowledgements with the operations they concern, so they still see
//! every operation before them on the same channel. An emit to several rooms is published on
//! each, each copy leaving out the members of the rooms before it: once per client.
//!
//! What "joined" guarantees: [`Client::join`](ws_gateway_core::Client::join) is immediate
//! here, and the subscription follows; [`Client::join_synced`](ws_gateway_core::Client::join_synced)
//! resolves once Redis acknowledged it, and every room emit published after that reaches the
//! client. Order per sender holds per channel.
//!
//! On a Redis Cluster, [`RedisAdapter::connect_cluster`] uses the [`RedisClusterDriver`]:
//! sharded pub/sub (`SSUBSCRIBE`/`SPUBLISH`), each channel on the shard of its slot.
//!
//! ```no_run
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), ws_gateway_redis::Error> {
//! use ws_gateway_redis::{RedisAdapter, RedisConfig};
//!
//! // One Redis, per-room channels:
//! let single = RedisAdapter::connect(RedisConfig::new("redis://127.0.0.1:6379").per_room()).await?;
//! // A cluster (always per-room):
//! let nodes = ["redis://127.0.0.1:7000", "redis://127.0.0.1:7001", "redis://127.0.0.1:7002"];
//! let cluster = RedisAdapter::connect_cluster(RedisConfig::cluster(nodes)).await?;
//! # let _ = (single, cluster);
//! # Ok(())
//! # }
//! ```
//!
//! All of that is written against the [`Driver`](driver::Driver) trait (publish, subscribe,
//! unsubscribe); [`RedisDriver`] (one Redis) and [`RedisClusterDriver`] are the Redis
//! implementations, [`MemoryDriver`] an in-process one.
//!
//! # Testing scale-out without Redis
//!
//! A [`MemoryBus`] stands in for the Redis server: give each instance's adapter its own
//! [`MemoryDriver`] from one bus, and the instances reach each other's clients exactly as
//! they would over Redis (same adapter code, same wire format), with no server to start.
//!
//! ```
//! use ws_gateway_core::prelude::*;
//! use ws_gateway_core::Handshake;
//! use ws_gateway_core::transport::Outbound;
//! use ws_gateway_redis::{AdapterConfig, MemoryBus, RedisAdapter};
//!
//! #[websocket_gateway(path = "/chat")]
//! struct Chat;
//!
//! #[websocket_gateway]
//! impl Chat {}
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let bus = MemoryBus::new();
//! let mut apps = Vec::new();
//! for _ in 0..2 {
//!     let adapter = RedisAdapter::with_driver(bus.driver(), AdapterConfig::new()).await?;
//!     apps.push(GatewayApp::new().adapter(adapter).gateway::<Chat>().build()?);
//! }
//! let (alice, _) = apps[0].gateways()[0].open(Handshake::default(), 8);
//! let (bob, mut to_bob) = apps[1].gateways()[0].open(Handshake::default(), 8);
//! bob.join("lobby").unwrap();
//!
//! alice.to("lobby").emit("said", &"hi from the other instance")?;
//! let Some(Outbound::Frame(frame)) = to_bob.recv().await else { panic!("nothing for bob") };
//! assert_eq!(frame.as_str(), r#"{"event":"said","data":"hi from the other instance"}"#);
//!
//! // fetch_clients asks the other instance too.
//! let in_lobby = apps[0].server("/chat").unwrap().to("lobby").fetch_clients().await?;
//! assert_eq!(in_lobby.len(), 1);
//! # Ok(())
//! # }
//! ```
//!
//! # When Redis goes away
//!
//! Local delivery never waits for Redis: [`publish`](ws_gateway_core::adapter::Adapter::publish)
//! only queues. If Redis is lost while running, one warning is logged (target
//! `gateway::redis`), and the connections are re-established with backoff
//! ([`RedisConfig::reconnect_backoff`]); the subscriber subscribes again, an info line says
//! delivery resumed. No restart needed. Nothing is lost meanwhile:
//!
//! - What this instance publishes while Redis is unreachable waits in a bounded **outbox**
//!   and is published, in order, once Redis is back. Past the bound
//!   ([`RedisConfig::outbox`]: 64 MiB and 60 s by default) the oldest messages are dropped,
//!   counted in `gateway_redis_outbox_dropped_total` and logged once per outage.
//! - What other instances append while this one is cut off stays in the stream, and its
//!   reader reads on from the last entry it read.
//! - A Redis that restarts without persistence loses what it took just before it died,
//!   perhaps before every reader read it: after a reconnection each instance appends its
//!   entries of the last 2 s again (at most a quarter of the stream's length, so that they
//!   leave room for what was not read yet), and readers skip those they applied already.
//!
//! Measured: a 5 s Redis restart while one instance sends 200 messages a second to a room
//! with a member on the other loses 0 of 1,600 and duplicates 0 (the `faults` test; over
//! pub/sub alone, 1,263 were lost). In [per-room mode](ChannelMode::PerRoom) operations stay
//! on pub/sub channels: the outbox keeps what is published during an outage, but a
//! subscriber still misses what is published before it subscribed again.
//! Requests (`fetch_clients`, acknowledgements across instances) fail while Redis is
//! unreachable rather than wait.
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
pub mod driver;
mod error;

pub use adapter::RedisAdapter;
pub use config::{AdapterConfig, ChannelMode, RedisConfig};
pub use driver::{MemoryBus, MemoryDriver, RedisClusterDriver, RedisDriver};
pub use error::Error;
