//! Several app instances sharing a Redis, each test on its own channel prefix so the tests
//! run in parallel, and each test three times ([`common::Backend`]): the single Redis at
//! 127.0.0.1:6379 in classic and in per-room mode, and the Redis Cluster on 7000-7002 in
//! per-room mode (`scripts/test.sh` starts both).

// Test helpers live outside `#[test]` fns, where clippy.toml's allowances do not reach.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use serde::Deserialize;
use serde_json::json;
use ws_gateway_axum::prelude::*;
use ws_gateway_axum::test_client::{TestClient, TestServer};
use ws_gateway_core::Handshake;
use ws_gateway_core::transport::Outbound;
use ws_gateway_redis::{RedisAdapter, RedisConfig};

use common::Backend;

#[derive(Deserialize)]
struct Say {
    room: String,
    n: u32,
}

#[websocket_gateway(path = "/rooms")]
struct RoomsGateway;

#[websocket_gateway]
impl RoomsGateway {
    /// Answers once room emits from every instance reach the client.
    #[subscribe("join")]
    async fn join(&self, client: Client, room: String) -> Result<WsResponse<String>, RoomError> {
        client.join_synced(room.clone()).await?;
        Ok(WsResponse::new("joined", room))
    }

    #[subscribe("say-to-both")]
    fn say_to_both(&self, client: Client, n: u32) {
        client.to("a").to("b").emit("said", &n).ok();
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

async fn instance(backend: Backend, prefix: &str) -> TestServer {
    let app = backend.adapter(GatewayApp::new(), prefix).await;
    let app = app.gateway::<RoomsGateway>().build().unwrap();
    let server = TestServer::start(app).await.unwrap();
    // Per-room mode subscribes to the gateway's channel once the app attached it.
    server.app().server("/rooms").unwrap().synced().await;
    server
}

/// Three instances on one prefix.
async fn three(backend: Backend) -> (TestServer, TestServer, TestServer) {
    let prefix = prefix();
    (
        instance(backend, &prefix).await,
        instance(backend, &prefix).await,
        instance(backend, &prefix).await,
    )
}

async fn member(server: &TestServer, room: &str) -> TestClient {
    let mut client = server.connect("/rooms").await.unwrap();
    client.emit("join", &room).await.unwrap();
    assert_eq!(client.expect("joined").await.unwrap(), json!(room));
    client
}

/// Asserts that nothing more reaches `clients`: `end` (see [`common::end_everywhere`]) is
/// the next frame each receives.
async fn assert_nothing_more(
    instances: &[&TestServer],
    rooms: &[&str],
    clients: &mut [(&str, &mut TestClient)],
) {
    common::end_everywhere(instances, "/rooms", rooms).await;
    for (who, client) in clients.iter_mut() {
        let frame = client.recv().await.unwrap();
        assert_eq!(frame.event, "end", "{who} received {}", frame.raw);
    }
}

on_every_backend!(
    a_room_message_reaches_members_on_every_instance_once_and_in_order,
    a_client_in_two_selected_rooms_gets_one_copy,
    a_room_emit_right_after_a_synced_join_reaches_the_new_member,
    the_server_handle_reaches_a_client_on_another_instance_by_id,
    fetch_clients_asks_every_instance,
);

async fn a_room_message_reaches_members_on_every_instance_once_and_in_order(backend: Backend) {
    let (a, b, c) = three(backend).await;
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
    assert_nothing_more(&[&a, &b, &c], &["room", "elsewhere"], &mut everyone).await;
}

/// `to("a").to("b")` reaches a member of both rooms once, wherever it is; per-room mode
/// publishes on both rooms' channels, each copy leaving out what the other carries.
async fn a_client_in_two_selected_rooms_gets_one_copy(backend: Backend) {
    let (a, b, c) = three(backend).await;
    let mut sender = a.connect("/rooms").await.unwrap();
    let mut in_both = member(&b, "a").await;
    in_both.emit("join", &"b").await.unwrap();
    in_both.expect("joined").await.unwrap();
    let mut in_b = member(&c, "b").await;
    let mut in_a_here = member(&a, "a").await;
    for n in 0..20u32 {
        sender.emit("say-to-both", &n).await.unwrap();
    }
    for (who, client) in [
        ("member of both on B", &mut in_both),
        ("member of b on C", &mut in_b),
        ("member of a on A", &mut in_a_here),
    ] {
        for n in 0..20u32 {
            assert_eq!(client.expect("said").await.unwrap(), json!(n), "{who}");
        }
    }
    assert_nothing_more(
        &[&a, &b, &c],
        &["a", "b"],
        &mut [
            ("member of both on B", &mut in_both),
            ("member of b on C", &mut in_b),
            ("member of a on A", &mut in_a_here),
            ("the sender", &mut sender),
        ],
    )
    .await;
}

/// What "joined" guarantees: once [`Client::join_synced`] resolved, a room emit from
/// another instance reaches the client, even when it is the room's first member on its
/// instance (per-room mode subscribes to the room's channel right then). Fresh rooms, so
/// every join races a subscription; in-process clients, so the emit follows the join as
/// closely as it can (with a plain `join`, per-room mode loses most of these).
async fn a_room_emit_right_after_a_synced_join_reaches_the_new_member(backend: Backend) {
    let prefix = prefix();
    let (a, b) = (
        instance(backend, &prefix).await,
        instance(backend, &prefix).await,
    );
    let server = a.app().server("/rooms").unwrap();
    let (client, mut queue) = b.app().gateways()[0].open(Handshake::default(), 256);
    for n in 0..100u32 {
        let room = format!("fresh-{n}");
        client.join_synced(room.clone()).await.unwrap();
        server.to(room).emit("said", &n).unwrap();
        let got = tokio::time::timeout(std::time::Duration::from_secs(10), queue.recv()).await;
        let Ok(Some(Outbound::Frame(frame))) = got else {
            panic!("the emit right after join {n} was lost");
        };
        assert_eq!(frame.as_str(), format!(r#"{{"event":"said","data":{n}}}"#));
    }
}

async fn the_server_handle_reaches_a_client_on_another_instance_by_id(backend: Backend) {
    let prefix = prefix();
    let (a, b) = (
        instance(backend, &prefix).await,
        instance(backend, &prefix).await,
    );
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

    // Room operations by id and by room cross instances too. A join made from another
    // instance takes effect there when that instance applies it (and, per room, has
    // subscribed): until then `fetch_clients` does not list the client.
    assert_eq!(server.to_client(id).join("vip"), 0);
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(30);
    while server.to("vip").fetch_clients().await.unwrap().is_empty() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "B never listed the client in vip"
        );
        tokio::task::yield_now().await;
    }
    server.to("vip").emit("vip-only", &1).unwrap();
    assert_eq!(client.expect("vip-only").await.unwrap(), json!(1));
    server.to("vip").leave("vip");
    server.to("vip").emit("vip-only", &2).unwrap();
    assert_nothing_more(
        &[&a, &b],
        &["vip"],
        &mut [("a client that left the room", &mut client)],
    )
    .await;

    // And so does a disconnect.
    assert!(!server.disconnect(id));
    let close = client.expect_close().await.unwrap();
    assert_eq!(close.map(|c| u16::from(c.code)), Some(1000));
}

async fn fetch_clients_asks_every_instance(backend: Backend) {
    let (a, b, c) = three(backend).await;
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

#[tokio::test]
async fn a_cluster_adapter_needs_no_pattern_and_refuses_an_unreachable_cluster() {
    let err = RedisAdapter::connect_cluster(RedisConfig::cluster(["redis://:pw@127.0.0.1:1"]))
        .await
        .unwrap_err();
    let message = err.to_string();
    assert!(message.contains("redis://:***@127.0.0.1:1"), "{message}");
}
