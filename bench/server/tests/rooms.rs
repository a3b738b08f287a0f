//! The `join` and `say` events of the servers the scale-out benchmark runs
//! (`bench/scale_out.sh`), two instances of each on the Redis at 127.0.0.1:6379, over real
//! sockets: a room's emits from one instance reach its members on the other, and nobody
//! else.

// Helpers of tests: a test fails by panicking.
#![allow(clippy::expect_used)]

mod support;

use std::sync::atomic::{AtomicU32, Ordering};

use futures_util::SinkExt;
use serde_json::json;
use tokio_tungstenite::tungstenite::Message;

use support::{Wire, Ws, start_with};

const REDIS_URL: &str = "redis://127.0.0.1:6379";

/// A name of its own for each test, for our instances' channel prefix and the rooms, so
/// that tests running at once do not hear each other.
fn unique() -> String {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    format!(
        "bench-test-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

/// Sends `join` for `room` and waits for the server's answer, which carries the room.
async fn join(wire: Wire, ws: &mut Ws, room: &str) {
    ws.send(Message::text(wire.event("join", &json!(room))))
        .await
        .expect("send the join");
    let (event, data, _) = wire.parse(&wire.next(ws).await);
    assert_eq!((event.as_str(), data), ("join", json!(room)));
}

/// A member of room 1 and one of room 2 on instance B, a sender on instance A: each emit to
/// room 1 reaches the first, in order; the second's first frame is the emit to room 2 sent
/// after all of them, so none of room 1's reached it.
async fn room_emits_cross_instances(binary: &str, wire: Wire, args: &[&str], name: &str) {
    let (r1, r2) = (format!("{name}-1"), format!("{name}-2"));
    let a = start_with(binary, args).await;
    let b = start_with(binary, args).await;
    let mut member = wire.connect(b.port).await;
    join(wire, &mut member, &r1).await;
    let mut outsider = wire.connect(b.port).await;
    join(wire, &mut outsider, &r2).await;
    let mut sender = wire.connect(a.port).await;
    for s in 1..=3 {
        let say = json!({ "room": r1, "msg": { "s": s, "text": "hello" } });
        sender
            .send(Message::text(wire.event("say", &say)))
            .await
            .expect("send the say");
        let (event, data, _) = wire.parse(&wire.next(&mut member).await);
        assert_eq!((event.as_str(), &data), ("room", &say["msg"]), "{binary}");
    }
    let say = json!({ "room": r2, "msg": { "s": 0, "text": "last" } });
    sender
        .send(Message::text(wire.event("say", &say)))
        .await
        .expect("send the say");
    let (event, data, _) = wire.parse(&wire.next(&mut outsider).await);
    assert_eq!((event.as_str(), &data), ("room", &say["msg"]), "{binary}");
}

#[tokio::test]
async fn the_gateway_classic_shares_rooms_across_instances() {
    let name = unique();
    room_emits_cross_instances(
        env!("CARGO_BIN_EXE_bench-server"),
        Wire::Json,
        &["--redis", REDIS_URL, "--redis-prefix", &name],
        &name,
    )
    .await;
}

#[tokio::test]
async fn the_gateway_per_room_shares_rooms_across_instances() {
    let name = unique();
    room_emits_cross_instances(
        env!("CARGO_BIN_EXE_bench-server"),
        Wire::Json,
        &["--redis", REDIS_URL, "--per-room", "--redis-prefix", &name],
        &name,
    )
    .await;
}

#[tokio::test]
async fn the_gateway_over_socketio_shares_rooms_across_instances() {
    let name = unique();
    room_emits_cross_instances(
        env!("CARGO_BIN_EXE_socketio-bench-server"),
        Wire::SocketIo,
        &["--redis", REDIS_URL, "--redis-prefix", &name],
        &name,
    )
    .await;
}

#[tokio::test]
async fn socketioxide_redis_shares_rooms_across_instances() {
    // Its channels' prefix is socketioxide-redis's default; the rooms are the test's own.
    room_emits_cross_instances(
        env!("CARGO_BIN_EXE_raw-socketioxide-redis"),
        Wire::SocketIo,
        &["--redis", REDIS_URL],
        &unique(),
    )
    .await;
}
