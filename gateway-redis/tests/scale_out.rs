//! Several app instances sharing the Redis at 127.0.0.1:6379 (`scripts/test.sh` starts one),
//! each test on its own channel prefix so the tests run in parallel.

// Test helpers live outside `#[test]` fns, where clippy.toml's allowances do not reach.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use serde::Deserialize;
use serde_json::json;
use ws_gateway_axum::prelude::*;
use ws_gateway_axum::test_client::{TestClient, TestServer};
use ws_gateway_redis::{RedisAdapter, RedisConfig};

const REDIS: &str = "redis://127.0.0.1:6379";

#[derive(Deserialize)]
struct Say {
    room: String,
    n: u32,
}

#[websocket_gateway(path = "/rooms")]
struct RoomsGateway;

#[websocket_gateway]
impl RoomsGateway {
    #[subscribe("join")]
    fn join(&self, client: Client, room: String) -> Result<WsResponse<String>, RoomError> {
        client.join(room.clone())?;
        Ok(WsResponse::new("joined", room))
    }

    #[subscribe("say")]
    fn say(&self, client: Client, say: Say) {
        client.to(say.room).emit("said", &say.n).ok();
    }

    #[subscribe("whoami")]
    fn whoami(&self, client: Client) -> String {
        client.id().to_string()
    }
}

fn prefix() -> String {
    common::unique_prefix("gateway-test")
}

async fn instance(prefix: &str) -> TestServer {
    let redis = RedisAdapter::connect(RedisConfig::new(REDIS).prefix(prefix))
        .await
        .expect("a redis-server on 127.0.0.1:6379 (scripts/test.sh starts one)");
    assert!(redis.is_connected());
    let app = GatewayApp::new()
        .adapter(redis)
        .gateway::<RoomsGateway>()
        .build()
        .unwrap();
    TestServer::start(app).await.unwrap()
}

async fn member(server: &TestServer, room: &str) -> TestClient {
    let mut client = server.connect("/rooms").await.unwrap();
    client.emit("join", &room).await.unwrap();
    assert_eq!(client.expect("joined").await.unwrap(), json!(room));
    client
}

/// Asserts that nothing more reaches `clients`: `end` (see [`common::end_everywhere`]) is
/// the next frame each receives.
async fn assert_nothing_more(instances: &[&TestServer], clients: &mut [(&str, &mut TestClient)]) {
    common::end_everywhere(instances, "/rooms").await;
    for (who, client) in clients.iter_mut() {
        let frame = client.recv().await.unwrap();
        assert_eq!(frame.event, "end", "{who} received {}", frame.raw);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_room_message_reaches_members_on_every_instance_once_and_in_order() {
    let prefix = prefix();
    let (a, b, c) = (
        instance(&prefix).await,
        instance(&prefix).await,
        instance(&prefix).await,
    );
    let mut sender = a.connect("/rooms").await.unwrap();
    let mut members = [
        ("member on A", member(&a, "room").await),
        ("member on B", member(&b, "room").await),
        ("member on C", member(&c, "room").await),
    ];
    let mut outsiders = [
        ("outsider on A", member(&a, "elsewhere").await),
        ("outsider on B", b.connect("/rooms").await.unwrap()),
        ("outsider on C", member(&c, "elsewhere").await),
    ];

    for n in 0..200u32 {
        sender
            .emit("say", &json!({"room": "room", "n": n}))
            .await
            .unwrap();
    }
    for (who, client) in &mut members {
        for n in 0..200u32 {
            let got = client.expect("said").await.unwrap();
            assert_eq!(got, json!(n), "{who}: out of order or missing");
        }
    }
    // Exactly once: nothing more arrives, and nothing at all for the others.
    let mut everyone: Vec<(&str, &mut TestClient)> = members
        .iter_mut()
        .chain(outsiders.iter_mut())
        .map(|(who, client)| (*who, client))
        .collect();
    everyone.push(("the sender", &mut sender));
    assert_nothing_more(&[&a, &b, &c], &mut everyone).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_server_handle_reaches_a_client_on_another_instance_by_id() {
    let prefix = prefix();
    let (a, b) = (instance(&prefix).await, instance(&prefix).await);
    let mut client = b.connect("/rooms").await.unwrap();
    client.emit("whoami", &()).await.unwrap();
    let id: ClientId = client
        .expect("whoami")
        .await
        .unwrap()
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    let server = a.app().server("/rooms").unwrap();

    // Not connected to A: nothing delivered locally, delivered on B.
    assert_eq!(server.to_client(id).emit("private", &"psst").unwrap(), 0);
    assert_eq!(client.expect("private").await.unwrap(), json!("psst"));

    // Room operations by id and by room cross instances too.
    assert_eq!(server.to_client(id).join("vip"), 0);
    server.to("vip").emit("vip-only", &1).unwrap();
    assert_eq!(client.expect("vip-only").await.unwrap(), json!(1));
    server.to("vip").leave("vip");
    server.to("vip").emit("vip-only", &2).unwrap();
    assert_nothing_more(
        &[&a, &b],
        &mut [("a client that left the room", &mut client)],
    )
    .await;

    // And so does a disconnect.
    assert!(!server.disconnect(id));
    let close = client.expect_close().await.unwrap();
    assert_eq!(close.map(|c| u16::from(c.code)), Some(1000));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fetch_clients_asks_every_instance() {
    let prefix = prefix();
    let (a, b, c) = (
        instance(&prefix).await,
        instance(&prefix).await,
        instance(&prefix).await,
    );
    let _on_a = a.connect("/rooms").await.unwrap();
    let _on_b = member(&b, "r").await;
    let _on_c = member(&c, "r").await;
    let _also_on_c = member(&c, "s").await;
    let server = a.app().server("/rooms").unwrap();

    let in_r = server.to("r").fetch_clients().await.unwrap();
    assert_eq!(in_r.len(), 2, "{in_r:?}");
    assert!(in_r.iter().all(|c| c.rooms == ["r"]));
    assert_eq!(server.broadcast().fetch_clients().await.unwrap().len(), 4);
    assert_eq!(server.local().fetch_clients().await.unwrap().len(), 1);
}

#[tokio::test]
async fn an_unreachable_redis_fails_at_start_naming_the_url() {
    // Nothing listens on port 1.
    let url = "redis://user:secret@127.0.0.1:1/0";
    let err = RedisAdapter::connect(RedisConfig::new(url))
        .await
        .unwrap_err();
    let message = err.to_string();
    assert!(
        message.contains("redis://user:***@127.0.0.1:1/0"),
        "{message}"
    );
    assert!(!message.contains("secret"), "{message}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_degraded_start_serves_this_instance() {
    let redis = RedisAdapter::connect(
        RedisConfig::new("redis://127.0.0.1:1")
            .prefix(prefix())
            .start_degraded(true),
    )
    .await
    .unwrap();
    assert!(!redis.is_connected());
    let app = GatewayApp::new()
        .adapter(redis)
        .gateway::<RoomsGateway>()
        .build()
        .unwrap();
    let server = TestServer::start(app).await.unwrap();
    let mut sender = server.connect("/rooms").await.unwrap();
    let mut receiver = member(&server, "room").await;
    sender
        .emit("say", &json!({"room": "room", "n": 7}))
        .await
        .unwrap();
    assert_eq!(receiver.expect("said").await.unwrap(), json!(7));
    // fetch_clients says the other instances cannot be asked.
    let server = server.app().server("/rooms").unwrap();
    assert!(server.broadcast().fetch_clients().await.is_err());
}
