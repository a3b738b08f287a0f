//! socketioxide 0.18 with socketioxide-redis, the peer of our Redis scale-out:
//! `PORT=3000 cargo run --release -p gateway-bench --bin raw-socketioxide-redis -- --redis
//! redis://127.0.0.1:6379` (`-- --help`: the options and exit codes).
//!
//! Namespace `/` at `/socket.io/`, as `raw-socketioxide`, with socketioxide-redis's
//! `RedisAdapter` (the `redis` driver, RESP3, default prefix `socket.io`): every instance
//! subscribes to the namespace's request channel and receives every other instance's room
//! emits. Its stream buffer is raised from 1,024 to [`STREAM_BUFFER`], the size of our
//! adapter's queue: at the default, a burst of emits from the other instances overflows it
//! and the adapter drops them ("redis pubsub channel full"). `join` puts the socket in the room its data names and emits the name back under
//! `join`; `say` `{"room":..,"msg":..}` emits `msg` (raw JSON, no DOM) under `room` to every
//! member of the room, on every instance, and answers nothing. No limits, no hooks.

use std::convert::Infallible;
use std::process::ExitCode;

use gateway_bench::{Failure, RedisServerOptions, Say};
use socketioxide::SocketIo;
use socketioxide::adapter::Adapter;
use socketioxide::extract::{Data, SocketRef};
use socketioxide::handler::ConnectHandler;
use socketioxide_redis::drivers::redis::redis_client as redis;
use socketioxide_redis::{RedisAdapter, RedisAdapterConfig, RedisAdapterCtr};

/// How many messages from Redis the adapter holds before it drops them: as many as our
/// `RedisAdapter` queues (`AdapterConfig::queue_capacity`'s default).
const STREAM_BUFFER: usize = 65_536;

#[tokio::main]
async fn main() -> ExitCode {
    let options: RedisServerOptions = gateway_bench::command_line(
        "raw-socketioxide-redis",
        "socketioxide with socketioxide-redis, by hand: join and say on namespace / at http://127.0.0.1:PORT/socket.io/",
    );
    gateway_bench::exit("raw-socketioxide-redis", run(&options).await)
}

async fn run(options: &RedisServerOptions) -> Result<(), Failure> {
    let addr = options.server.addr();
    let listener =
        gateway_bench::raw_listener(addr).map_err(|source| Failure::Bind { addr, source })?;
    let url = resp3(&options.redis);
    let redis_failure = |source: redis::RedisError| Failure::Redis {
        url: options.redis.clone(),
        source: source.into(),
    };
    let client = redis::Client::open(url.as_str()).map_err(redis_failure)?;
    let config = RedisAdapterConfig::new().with_stream_buffer(STREAM_BUFFER);
    let adapter = RedisAdapterCtr::new_with_redis_config(&client, config)
        .await
        .map_err(redis_failure)?;
    let (layer, io) = SocketIo::builder()
        .with_adapter::<RedisAdapter<_>>(adapter)
        .build_layer();
    io.ns("/", on_connect.with(register))
        .await
        .map_err(Failure::runtime)?;
    axum::serve(listener, axum::Router::new().layer(layer))
        .await
        .map_err(Failure::runtime)
}

/// `url` asking for RESP3, which socketioxide-redis's driver needs (push messages on the
/// connection that publishes).
fn resp3(url: &str) -> String {
    if url.contains("protocol=") {
        url.to_owned()
    } else if url.contains('?') {
        format!("{url}&protocol=resp3")
    } else {
        format!("{url}?protocol=resp3")
    }
}

/// Nothing: the handlers are registered by [`register`], the connect middleware.
async fn on_connect<A: Adapter>(_: SocketRef<A>) {}

/// The event handlers, registered in a connect middleware rather than in the connect
/// handler as `raw-socketioxide` does: socketioxide spawns an `async` connect handler after
/// sending the connect packet, so a `join` sent as soon as the client is connected could be
/// read before the handlers exist, and be dropped. A middleware runs before the packet.
async fn register<A: Adapter>(socket: SocketRef<A>) -> Result<(), Infallible> {
    socket.on("join", on_join);
    socket.on("say", on_say);
    Ok(())
}

/// In the room, then its name back: the room's emits from every instance reach the socket
/// from then on (every instance receives every request of the namespace).
async fn on_join<A: Adapter>(socket: SocketRef<A>, Data((room,)): Data<(String,)>) {
    socket.join(room.clone());
    let _ = socket.emit("join", &room);
}

/// `msg` to the room's members here and, through Redis, on the other instances.
async fn on_say<A: Adapter>(io: SocketIo<A>, Data((say,)): Data<(Say,)>) {
    let _ = io.to(say.room).emit("room", &say.msg).await;
}
