//! Rooms (issue 13, item 2): a client can be in a bounded number of rooms, each with a
//! bounded name; past either bound its `join` gets an `exception` frame and joins nothing.
//! Driven through the chat example's own `join` handler, over real sockets.

use std::time::{Duration, Instant};

use chat::auth::AuthService;
use serde_json::{Value, json};
use ws_gateway_axum::test_client::{Received, TestClient, TestServer};
use ws_gateway_core::{ConnectionConfig, RateLimit};

use crate::common::rss_kib;

const SECRET: &str = "hostile-rooms-secret";

fn auth() -> AuthService {
    AuthService::new(SECRET).with_users([("mallory", "x"), ("alice", "y")])
}

async fn chat_server(config: ConnectionConfig) -> TestServer {
    let app = chat::app_with(auth()).config(config).build().unwrap();
    let router = chat::router(&app, auth());
    TestServer::start_router(app, router).await.unwrap()
}

async fn connect_as(server: &TestServer, user: &str) -> TestClient {
    let token = auth().issue(user).unwrap();
    let mut client = TestClient::connect(&format!("{}?token={token}", server.url("/chat")))
        .await
        .unwrap()
        .with_timeout(Duration::from_secs(60));
    // The chat has recovery on: every connection begins with its session.
    client.expect("session").await.unwrap();
    client
}

/// The next frame's event and data.
async fn next(client: &mut TestClient) -> (String, Value) {
    let Received { event, data, .. } = client.recv().await.unwrap();
    (event, data)
}

#[tokio::test]
async fn joins_past_the_room_bound_get_an_exception_and_join_nothing() {
    let _alone = crate::common::alone().await;
    let server = chat_server(ConnectionConfig::default()).await;
    let max = ConnectionConfig::default().max_rooms_per_client;
    let mut mallory = connect_as(&server, "mallory").await;
    let total = max + 20;
    for i in 0..total {
        mallory
            .emit("join", &json!({ "room": format!("r{i}") }))
            .await
            .unwrap();
    }
    // The chat puts each client in its user's room (`@mallory`) as it connects: that one
    // counts too.
    let joinable = max - 1;
    for i in 0..total {
        let (event, data) = next(&mut mallory).await;
        if i < joinable {
            assert_eq!(
                (event.as_str(), &data["room"]),
                ("joined", &json!(format!("r{i}")))
            );
        } else {
            assert_eq!(
                event, "exception",
                "join {i} past the bound of {max}: {data}"
            );
            assert_eq!(
                data["message"],
                format!("Too many rooms: a client may be in at most {max}; leave one first")
            );
        }
    }
    let server_rooms = server.app().server("/chat").unwrap();
    let id = server_rooms.client_ids()[0];
    assert_eq!(server_rooms.rooms_of(id).len(), max);
    // Leaving one makes room for another.
    mallory
        .emit("leave", &json!({ "room": "r0" }))
        .await
        .unwrap();
    assert_eq!(next(&mut mallory).await.0, "left");
    mallory
        .emit("join", &json!({ "room": "again" }))
        .await
        .unwrap();
    assert_eq!(next(&mut mallory).await.0, "joined");
    // Joining a room it is in already is not a new room.
    mallory
        .emit("join", &json!({ "room": "again" }))
        .await
        .unwrap();
    assert_eq!(next(&mut mallory).await.0, "joined");
}

#[tokio::test]
async fn a_long_room_name_gets_an_exception_and_joins_nothing() {
    let _alone = crate::common::alone().await;
    let server = chat_server(ConnectionConfig::default()).await;
    let max = ConnectionConfig::default().max_room_name_len;
    let mut mallory = connect_as(&server, "mallory").await;
    let name = "n".repeat(60_000);
    mallory
        .emit("join", &json!({ "room": name }))
        .await
        .unwrap();
    let (event, data) = next(&mut mallory).await;
    assert_eq!(event, "exception", "{}", &data.to_string()[..200]);
    assert_eq!(
        data["message"],
        format!("Room name too long: 60000 bytes, at most {max}")
    );
    // At the bound exactly, it joins.
    let name = "n".repeat(max);
    mallory
        .emit("join", &json!({ "room": name }))
        .await
        .unwrap();
    assert_eq!(next(&mut mallory).await.0, "joined");
    let rooms = server.app().server("/chat").unwrap().rooms();
    assert_eq!(rooms, [chat::chat::user_room("mallory"), name]);
}

/// The issue's attack, scaled down: clients joining rooms of 60,000-character names as fast
/// as the rate limit lets them, while another client echoes. Memory stays bounded; the
/// echo latencies are printed, not asserted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn long_room_names_keep_memory_bounded() {
    let _alone = crate::common::alone().await;
    const ATTACKERS: usize = 4;
    const JOINS: usize = 500;
    // A token per join whatever its size: under the default 4 KiB a token, these 60 KB
    // joins would spend the rate limit and close the attackers long before 500 joins, and
    // here the rooms are the point.
    let mut config = ConnectionConfig::default();
    let mut limit = RateLimit::new(1_000, 2_000);
    limit.token_size = 64 * 1024;
    config.rate_limit = Some(limit);
    let server = chat_server(config).await;
    let mut alice = connect_as(&server, "alice").await;
    alice.emit("events", &1).await.unwrap();
    next(&mut alice).await;
    let before = rss_kib();
    let mut attackers = Vec::new();
    for a in 0..ATTACKERS {
        let mut mallory = connect_as(&server, "mallory").await;
        attackers.push(tokio::spawn(async move {
            let (mut tx, mut rx) = (0, 0);
            while rx < JOINS {
                while tx < JOINS && tx - rx < 64 {
                    let room = format!("{a}-{tx}-{}", "n".repeat(60_000));
                    mallory
                        .emit("join", &json!({ "room": room }))
                        .await
                        .unwrap();
                    tx += 1;
                }
                next(&mut mallory).await;
                rx += 1;
            }
            mallory
        }));
    }
    let mut latencies = Vec::new();
    // Alice probes at most 200 times a second: unpaced, on a loaded machine where the
    // attack lasts long, her own round trips would outrun the rate limit of 1,000 a second.
    let mut pace = tokio::time::interval(Duration::from_millis(5));
    while !attackers.iter().all(|a| a.is_finished()) {
        pace.tick().await;
        let sent = Instant::now();
        alice.emit("events", &1).await.unwrap();
        next(&mut alice).await;
        latencies.push(sent.elapsed());
    }
    let mut kept = Vec::new();
    for attacker in attackers {
        kept.push(attacker.await.unwrap());
    }
    let grown = rss_kib().saturating_sub(before);
    latencies.sort();
    let p99 = latencies
        .get(latencies.len() * 99 / 100)
        .copied()
        .unwrap_or_default();
    eprintln!(
        "rooms: {ATTACKERS} clients x {JOINS} joins of 60,000-byte names: RSS +{grown} KiB, \
         other client's echo p99 {p99:?} over {} echoes",
        latencies.len()
    );
    assert!(
        grown < 10 * 1024 * ATTACKERS as u64,
        "RSS grew by {grown} KiB under {ATTACKERS} attacking connections"
    );
    drop(kept);
}
