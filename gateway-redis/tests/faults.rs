//! Redis lost while running: the test starts its own `redis-server` on a spare port, kills
//! it, checks that local delivery goes on, starts it again and waits for cross-instance
//! delivery to resume, without restarting the app.
//!
//! Every check is on exact sequences: a message lost, repeated or replayed from the outage
//! fails the test. "Nothing more will arrive" is established without watching a quiet
//! period: [`settle`] makes a `fetch_clients` request from the sending instance, which
//! goes out after what it published and which every instance answers only after applying
//! what came before it; then [`until_end`] has each instance emit a local `end` frame,
//! queued behind anything those messages put in its clients' queues.

// Test helpers live outside `#[test]` fns, where clippy.toml's allowances do not reach.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use serde::Deserialize;
use serde_json::{Value, json};
use ws_gateway_axum::prelude::*;
use ws_gateway_axum::test_client::{TestClient, TestServer};
use ws_gateway_redis::{RedisAdapter, RedisConfig};

use common::{redis_server, spare_port, wait_for};

#[derive(Deserialize)]
struct Say {
    room: String,
    n: u32,
}

#[websocket_gateway(path = "/faults")]
struct FaultsGateway;

#[websocket_gateway]
impl FaultsGateway {
    #[subscribe("join")]
    fn join(&self, client: Client, room: String) -> Result<WsResponse<String>, RoomError> {
        client.join(room.clone())?;
        Ok(WsResponse::new("joined", room))
    }

    #[subscribe("say")]
    fn say(&self, client: Client, say: Say) {
        client.to(say.room).emit("said", &say.n).ok();
    }
}

async fn instance(url: &str) -> (TestServer, RedisAdapter) {
    let redis = RedisAdapter::connect(
        RedisConfig::new(url)
            .prefix("faults")
            .reconnect_backoff(Duration::from_millis(20), Duration::from_millis(200)),
    )
    .await
    .unwrap();
    let app = GatewayApp::new()
        .adapter(redis.clone())
        .gateway::<FaultsGateway>()
        .build()
        .unwrap();
    (TestServer::start(app).await.unwrap(), redis)
}

async fn member(server: &TestServer) -> TestClient {
    let mut client = server.connect("/faults").await.unwrap();
    client.emit("join", &"room").await.unwrap();
    client.expect("joined").await.unwrap();
    client
}

async fn say(client: &mut TestClient, numbers: impl IntoIterator<Item = u32>) {
    for n in numbers {
        client
            .emit("say", &json!({"room": "room", "n": n}))
            .await
            .unwrap();
    }
}

/// Receives `said` frames until `numbers` arrived, failing on anything else.
async fn expect_said(client: &mut TestClient, numbers: impl IntoIterator<Item = u32>, who: &str) {
    for n in numbers {
        let frame = client.recv().await.unwrap();
        assert_eq!(
            (frame.event.as_str(), frame.data),
            ("said", json!(n)),
            "{who}"
        );
    }
}

/// Returns once every instance applied what `server`'s instance published before.
async fn settle(server: &TestServer) {
    let server = server.app().server("/faults").unwrap();
    server.broadcast().fetch_clients().await.unwrap();
}

/// Has each instance emit `end` to its own clients once everything published was applied
/// ([`common::end_everywhere`]), then returns what each of `clients` received before it,
/// as numbers.
async fn until_end(
    instances: &[&TestServer],
    clients: &mut [(&str, &mut TestClient)],
) -> Vec<Vec<u64>> {
    common::end_everywhere(instances, "/faults", &["room"]).await;
    let mut all = Vec::new();
    for (who, client) in clients.iter_mut() {
        let mut numbers = Vec::new();
        loop {
            let frame = client.recv().await.unwrap();
            match (frame.event.as_str(), &frame.data) {
                ("end", _) => break,
                ("said", Value::Number(n)) => numbers.push(n.as_u64().unwrap()),
                _ => panic!("{who}: unexpected {}", frame.raw),
            }
        }
        all.push(numbers);
    }
    all
}

fn range(numbers: std::ops::Range<u64>) -> Vec<u64> {
    numbers.collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_lost_while_running_then_back() {
    let _ = tracing_subscriber::fmt().with_test_writer().try_init();
    let port = spare_port();
    let url = format!("redis://127.0.0.1:{port}");
    let mut redis_process = redis_server(port).await;
    let (a, redis_a) = instance(&url).await;
    let (b, redis_b) = instance(&url).await;

    let mut sender = a.connect("/faults").await.unwrap();
    let mut remote_sender = b.connect("/faults").await.unwrap();
    let mut local = member(&a).await;
    let mut remote = member(&b).await;

    // Connected: one message, once, on both instances.
    say(&mut sender, [1]).await;
    // Received locally: A handled it, and published it, before the barrier below.
    expect_said(&mut local, [1], "local member").await;
    let got = until_end(
        &[&a, &b],
        &mut [
            ("local member", &mut local),
            ("remote member", &mut remote),
            ("sender", &mut sender),
        ],
    )
    .await;
    assert_eq!(got, [vec![], vec![1], vec![]]);

    // Redis dies: local delivery goes on.
    redis_process.kill().await.unwrap();
    say(&mut sender, 2..=4).await;
    expect_said(&mut local, 2..=4, "local member during the outage").await;
    // Both adapters notice (the subscriber connection closes).
    wait_for("both adapters see the outage", || {
        !redis_a.is_connected() && !redis_b.is_connected()
    })
    .await;

    // Redis is back on the same port: both reconnect and resubscribe by themselves, and
    // say so once both of their connections are up again.
    let _redis_process = redis_server(port).await;
    wait_for("both adapters reconnect", || {
        redis_a.is_connected() && redis_b.is_connected()
    })
    .await;

    // A -> B: exactly what was said since, none of the outage's, nothing twice.
    say(&mut sender, 3000..3050).await;
    expect_said(&mut local, 3000..3050, "local member").await;
    settle(&a).await;
    // B -> A too.
    say(&mut remote_sender, 4000..4050).await;
    expect_said(&mut remote, 3000..3050, "remote member").await;
    expect_said(&mut remote, 4000..4050, "remote member").await;
    let got = until_end(
        &[&a, &b],
        &mut [
            ("local member", &mut local),
            ("remote member", &mut remote),
            ("sender", &mut sender),
            ("remote sender", &mut remote_sender),
        ],
    )
    .await;
    assert_eq!(got, [range(4000..4050), vec![], vec![], vec![]]);
}
