//! Connection state recovery over real sockets, the plain WebSocket contract of the README:
//! the `session` frame first, an `offset` on every delivered frame, and a client that drops
//! (its TCP connection cut without a closing handshake) and comes back with
//! `?pid=P&offset=O` within the window keeps its id, rooms, identity and state and receives
//! what it missed, in order, once. Also: a client that never received a frame, a second and
//! third recovery, another identity's attempt, an unknown id, expiry, a clean close, the
//! in-memory bound, a session taken over while its old connection still looks alive, and
//! what the lifecycle hooks see.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::Deserialize;
use serde_json::{Value, json};
use tokio::sync::Notify;
use ws_gateway_axum::prelude::*;
use ws_gateway_axum::test_client::{Received, TestClient, TestServer};
use ws_gateway_core::{Authenticator, HandshakeRequest, Recovery};

/// What the lifecycle hooks saw, in order: `connect <id> <recovered>`, `disconnect <id>`.
#[derive(Default)]
struct Hooks {
    seen: Mutex<Vec<String>>,
    changed: Notify,
}

impl Hooks {
    fn push(&self, entry: String) {
        self.seen.lock().unwrap().push(entry);
        self.changed.notify_waiters();
    }

    async fn wait_for(&self, entry: &str) {
        tokio::time::timeout(Duration::from_secs(5), async {
            loop {
                let changed = self.changed.notified();
                if self.seen.lock().unwrap().iter().any(|e| e == entry) {
                    return;
                }
                changed.await;
            }
        })
        .await
        .unwrap_or_else(|_| panic!("no `{entry}` in {:?}", self.seen.lock().unwrap()));
    }

    fn count(&self, entry: &str) -> usize {
        self.seen
            .lock()
            .unwrap()
            .iter()
            .filter(|e| *e == entry)
            .count()
    }
}

/// The identity is the `token` query parameter.
struct TokenAuth;

impl Authenticator for TokenAuth {
    type Identity = String;

    async fn authenticate(&self, request: &HandshakeRequest<'_>) -> Result<String, WsException> {
        request
            .query_param("token")
            .map(str::to_owned)
            .ok_or_else(|| WsException::new("Missing token"))
    }
}

#[derive(Deserialize)]
struct Say {
    room: String,
    text: String,
}

#[websocket_gateway(path = "/recovery")]
struct RecoveryGateway {
    server: WsServer,
    hooks: Inject<Hooks>,
}

#[websocket_gateway]
impl RecoveryGateway {
    #[handle_connection]
    fn connected(&self, client: Client) {
        self.hooks
            .push(format!("connect {} {}", client.id(), client.recovered()));
    }

    #[handle_disconnect]
    fn disconnected(&self, client: Client) {
        self.hooks.push(format!("disconnect {}", client.id()));
    }

    #[subscribe("join")]
    fn join(&self, client: Client, room: String) -> Result<String, RoomError> {
        client.join(room.clone())?;
        Ok(room)
    }

    /// Sends `said` to everyone in the room, the sender included.
    #[subscribe("say")]
    fn say(&self, say: Say) -> usize {
        self.server
            .to(say.room)
            .emit("said", &say.text)
            .unwrap_or(0)
    }

    /// Keeps a name in the connection's state.
    #[subscribe("name")]
    fn name(&self, client: Client, name: String) -> String {
        client.state().insert(name.clone());
        name
    }

    #[subscribe("whoami")]
    fn whoami(&self, client: Client, Identity(user): Identity<String>) -> Value {
        json!({
            "id": client.id(),
            "user": user,
            "rooms": client.rooms(),
            "name": client.state().get::<String>(),
            "recovered": client.recovered(),
        })
    }
}

fn app(hooks: &Arc<Hooks>, recovery: Recovery) -> App {
    GatewayApp::new()
        .provide_arc(Arc::clone(hooks))
        .authenticate::<RecoveryGateway>(TokenAuth)
        .recover::<RecoveryGateway>(recovery)
        .gateway::<RecoveryGateway>()
        .build()
        .unwrap()
}

async fn start(recovery: Recovery) -> (TestServer, Arc<Hooks>) {
    let hooks = Arc::new(Hooks::default());
    let server = TestServer::start(app(&hooks, recovery)).await.unwrap();
    (server, hooks)
}

fn window() -> Recovery {
    Recovery::new(Duration::from_secs(120))
}

/// A connection and its session frame.
struct Connected {
    client: TestClient,
    pid: String,
    recovered: bool,
}

async fn connect(server: &TestServer, query: &str) -> Connected {
    let url = format!("{}?{query}", server.url("/recovery"));
    let mut client = TestClient::connect(&url).await.unwrap();
    let first = client.recv().await.unwrap();
    assert_eq!(first.event, "session", "the first frame: {first:?}");
    assert!(first.offset.is_none(), "{first:?}");
    let pid = first.data["pid"].as_str().unwrap().to_owned();
    assert_eq!(pid.len(), 32, "{first:?}");
    Connected {
        client,
        pid,
        recovered: first.data["recovered"].as_bool().unwrap(),
    }
}

async fn request(client: &mut TestClient, event: &str, data: Value) -> Value {
    client.emit_with_id(event, &data, event).await.unwrap();
    let reply = client.expect_frame(event).await.unwrap();
    // A direct reply is not delivered through an emit: no offset.
    assert!(reply.offset.is_none(), "{reply:?}");
    assert_eq!(reply.id, Some(json!(event)));
    reply.data
}

/// The next `said` frame, with its offset.
async fn said(client: &mut TestClient) -> (String, String) {
    let Received { data, offset, .. } = client.expect_frame("said").await.unwrap();
    let offset = offset.expect("a delivered frame carries an offset");
    (data.as_str().unwrap().to_owned(), offset)
}

/// The TCP connection cut without a closing handshake, as a network fault does.
fn cut(client: TestClient) {
    drop(client.into_inner());
}

/// Alice and Bob in `room`, and Alice's client id.
async fn pair(server: &TestServer, room: &str) -> (Connected, Connected, String) {
    let mut alice = connect(server, "token=alice").await;
    let mut bob = connect(server, "token=bob").await;
    for c in [&mut alice.client, &mut bob.client] {
        request(c, "join", json!(room)).await;
    }
    let me = request(&mut alice.client, "whoami", json!(null)).await;
    let id = me["id"].as_str().unwrap().to_owned();
    (alice, bob, id)
}

/// Cuts `client`'s connection and waits until the server saw client `id` go.
async fn drop_connection(client: TestClient, hooks: &Hooks, id: &str) {
    cut(client);
    hooks.wait_for(&format!("disconnect {id}")).await;
}

async fn say(client: &mut TestClient, room: &str, text: &str) {
    request(client, "say", json!({"room": room, "text": text})).await;
}

#[tokio::test]
async fn a_dropped_client_recovers_its_session_and_every_missed_frame() {
    let (server, hooks) = start(window()).await;
    let mut alice = connect(&server, "token=alice").await;
    assert!(!alice.recovered);
    let mut bob = connect(&server, "token=bob").await;
    for c in [&mut alice.client, &mut bob.client] {
        request(c, "join", json!("lobby")).await;
    }
    request(&mut alice.client, "name", json!("Alice L.")).await;
    let before = request(&mut alice.client, "whoami", json!(null)).await;

    say(&mut bob.client, "lobby", "one").await;
    let (text, offset) = said(&mut alice.client).await;
    assert_eq!(text, "one");
    cut(alice.client);
    let id = before["id"].as_str().unwrap();
    hooks.wait_for(&format!("disconnect {id}")).await;

    // Missed: two room frames, and one emitted to alice alone by id.
    say(&mut bob.client, "lobby", "two").await;
    say(&mut bob.client, "lobby", "three").await;
    let server_handle = server.app().server("/recovery").unwrap();
    let alice_id: ClientId = id.parse().unwrap();
    server_handle
        .to_client(alice_id)
        .emit("said", &"four (to alice)")
        .unwrap();

    let mut back = connect(
        &server,
        &format!("token=alice&pid={}&offset={offset}", alice.pid),
    )
    .await;
    assert!(back.recovered);
    assert_eq!(back.pid, alice.pid);
    let mut offsets = vec![offset];
    for expected in ["two", "three", "four (to alice)"] {
        let (text, offset) = said(&mut back.client).await;
        assert_eq!(text, expected);
        offsets.push(offset);
    }
    let numbers: Vec<_> = offsets.iter().map(|o| offset_parts(o)).collect();
    assert!(numbers.windows(2).all(|w| w[0] < w[1]), "{offsets:?}");

    // The same client: id, identity, rooms and state kept; the hook saw it recovered.
    let after = request(&mut back.client, "whoami", json!(null)).await;
    assert_eq!(after["id"], before["id"]);
    assert_eq!(after["user"], "alice");
    assert_eq!(after["rooms"], json!(["lobby"]));
    assert_eq!(after["name"], "Alice L.");
    assert_eq!(after["recovered"], true);
    assert_eq!(hooks.count(&format!("connect {id} true")), 1);

    // Then live traffic, each frame once: nothing replayed twice.
    say(&mut bob.client, "lobby", "five").await;
    assert_eq!(said(&mut back.client).await.0, "five");
    request(&mut back.client, "whoami", json!(null)).await;
}

#[tokio::test]
async fn a_client_that_received_nothing_recovers_without_an_offset() {
    let (server, hooks) = start(window()).await;
    let (alice, mut bob, id) = pair(&server, "lobby").await;
    drop_connection(alice.client, &hooks, &id).await;
    say(&mut bob.client, "lobby", "while away").await;

    let mut back = connect(&server, &format!("token=alice&pid={}", alice.pid)).await;
    assert!(back.recovered, "socket.io #5538: no event received yet");
    assert_eq!(said(&mut back.client).await.0, "while away");
}

#[tokio::test]
async fn a_client_recovers_again_and_again() {
    let (server, hooks) = start(window()).await;
    let mut alice = connect(&server, "token=alice").await;
    let mut bob = connect(&server, "token=bob").await;
    for c in [&mut alice.client, &mut bob.client] {
        request(c, "join", json!("lobby")).await;
    }
    let id = request(&mut alice.client, "whoami", json!(null)).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    say(&mut bob.client, "lobby", "m0").await;
    let (_, mut offset) = said(&mut alice.client).await;
    let pid = alice.pid.clone();
    let mut client = alice.client;
    for round in 1..=3 {
        cut(client);
        let drops = hooks.count(&format!("disconnect {id}"));
        hooks.wait_for(&format!("disconnect {id}")).await;
        assert!(drops <= round);
        say(&mut bob.client, "lobby", &format!("m{round}")).await;
        let mut back = connect(&server, &format!("token=alice&pid={pid}&offset={offset}")).await;
        assert!(back.recovered, "round {round}");
        assert_eq!(back.pid, pid);
        let (text, next) = said(&mut back.client).await;
        assert_eq!(text, format!("m{round}"));
        offset = next;
        client = back.client;
        // Wait for this round's disconnect to be counted before the next cut.
        while hooks.count(&format!("disconnect {id}")) < round {
            hooks.wait_for(&format!("disconnect {id}")).await;
        }
    }
    let me = request(&mut client, "whoami", json!(null)).await;
    assert_eq!(me["id"], json!(id));
    assert_eq!(hooks.count(&format!("connect {id} true")), 3);
}

#[tokio::test]
async fn another_identity_gets_a_fresh_session_and_spoils_nothing() {
    let (server, hooks) = start(window()).await;
    let (alice, mut bob, id) = pair(&server, "secret").await;
    drop_connection(alice.client, &hooks, &id).await;
    say(&mut bob.client, "secret", "for alice's eyes").await;

    // Mallory holds alice's pid: a fresh session, a new pid, nothing of alice's.
    let mut mallory = connect(&server, &format!("token=mallory&pid={}", alice.pid)).await;
    assert!(!mallory.recovered);
    assert_ne!(mallory.pid, alice.pid);
    let me = request(&mut mallory.client, "whoami", json!(null)).await;
    assert_ne!(me["id"], id);
    assert_eq!(me["rooms"], json!([]));
    // Nothing was replayed to mallory: her next frame is her own request's reply.
    mallory.client.emit_with_id("whoami", &(), 9).await.unwrap();
    assert_eq!(mallory.client.recv().await.unwrap().id, Some(json!(9)));

    // An unknown pid: a fresh session too.
    let unknown = connect(&server, "token=alice&pid=00000000000000000000000000000000").await;
    assert!(!unknown.recovered);

    // Alice still recovers.
    let mut back = connect(&server, &format!("token=alice&pid={}", alice.pid)).await;
    assert!(back.recovered);
    assert_eq!(said(&mut back.client).await.0, "for alice's eyes");
}

#[tokio::test]
async fn a_session_expires_after_its_window() {
    let (server, hooks) = start(Recovery::new(Duration::from_millis(200))).await;
    let mut alice = connect(&server, "token=alice").await;
    let id = request(&mut alice.client, "whoami", json!(null)).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    drop_connection(alice.client, &hooks, &id).await;
    // Not a timing assertion: past the window, however slow the machine, it is expired.
    tokio::time::sleep(Duration::from_millis(600)).await;
    let mut late = connect(&server, &format!("token=alice&pid={}", alice.pid)).await;
    assert!(!late.recovered);
    assert_ne!(late.pid, alice.pid);
    let me = request(&mut late.client, "whoami", json!(null)).await;
    assert_ne!(me["id"], id);
    // The disconnect hook ran once, when the socket closed; nothing more at expiry.
    assert_eq!(hooks.count(&format!("disconnect {}", id)), 1);
}

#[tokio::test]
async fn a_client_that_closes_cleanly_leaves_for_good() {
    let (server, hooks) = start(window()).await;
    let mut alice = connect(&server, "token=alice").await;
    let id = request(&mut alice.client, "whoami", json!(null)).await["id"].clone();
    alice.client.close().await.unwrap();
    hooks
        .wait_for(&format!("disconnect {}", id.as_str().unwrap()))
        .await;
    let back = connect(&server, &format!("token=alice&pid={}", alice.pid)).await;
    assert!(!back.recovered);
}

#[tokio::test]
async fn past_the_memory_bound_a_client_gets_a_fresh_session() {
    let (server, hooks) = start(window().max_bytes(4096)).await;
    let (alice, mut bob, id) = pair(&server, "lobby").await;
    drop_connection(alice.client, &hooks, &id).await;
    // About 100 × 150 bytes: far past the 4 KiB kept.
    let text = "x".repeat(100);
    for _ in 0..100 {
        say(&mut bob.client, "lobby", &text).await;
    }
    let mut back = connect(&server, &format!("token=alice&pid={}", alice.pid)).await;
    assert!(!back.recovered, "a replay with a hole in it is no recovery");
    let me = request(&mut back.client, "whoami", json!(null)).await;
    assert_ne!(me["id"], id);
    assert_eq!(me["rooms"], json!([]));
}

#[tokio::test]
async fn a_session_whose_old_connection_still_looks_alive_is_taken_over() {
    let (server, _hooks) = start(window()).await;
    takes_over(&server, &server).await;
}

/// Alice connected to `first` (never cut: a phone that changed networks, the server has not
/// noticed yet) comes back to `second`: the new connection takes the session over and the
/// old one is closed with 1001.
async fn takes_over(first: &TestServer, second: &TestServer) {
    let (mut alice, mut bob, id) = pair(first, "lobby").await;
    say(&mut bob.client, "lobby", "before").await;
    let (_, offset) = said(&mut alice.client).await;
    let mut back = connect(
        second,
        &format!("token=alice&pid={}&offset={offset}", alice.pid),
    )
    .await;
    assert!(back.recovered);
    let close = alice
        .client
        .expect_close()
        .await
        .unwrap()
        .expect("a close frame");
    assert_eq!(u16::from(close.code), 1001);
    let me = request(&mut back.client, "whoami", json!(null)).await;
    assert_eq!(me["id"], id);
    assert_eq!(me["rooms"], json!(["lobby"]));
    say(&mut bob.client, "lobby", "after").await;
    assert_eq!(said(&mut back.client).await.0, "after");
}

// Across instances: two apps sharing a Redis (classic mode), a client that dropped from one
// comes back to the other.

/// An instance of the recovery app on the Redis at 127.0.0.1:6379 under `prefix`.
async fn instance(prefix: &str) -> (TestServer, Arc<Hooks>) {
    instance_with(ws_gateway_redis::RedisConfig::new("redis://127.0.0.1:6379").prefix(prefix)).await
}

async fn instance_with(config: ws_gateway_redis::RedisConfig) -> (TestServer, Arc<Hooks>) {
    let redis = ws_gateway_redis::RedisAdapter::connect(config)
        .await
        .expect("Redis listens on 127.0.0.1:6379 (./scripts/test.sh starts it)");
    instance_on(redis).await
}

/// An instance of the recovery app on `adapter`.
async fn instance_on(adapter: impl ws_gateway_core::adapter::Adapter) -> (TestServer, Arc<Hooks>) {
    let hooks = Arc::new(Hooks::default());
    let app = GatewayApp::new()
        .provide_arc(Arc::clone(&hooks))
        .adapter(adapter)
        .authenticate::<RecoveryGateway>(TokenAuth)
        // The name (a `String` in the connection's state) travels with the session.
        .recover::<RecoveryGateway>(window().carry::<String>())
        .gateway::<RecoveryGateway>()
        .build()
        .unwrap();
    (TestServer::start(app).await.unwrap(), hooks)
}

fn prefix(test: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("recovery-{test}-{nanos}")
}

/// An offset of one instance as its parts, `<tag>-N` or `<tag>-N.k`, to check their order
/// (an offset is opaque to clients; this is what this version writes).
fn offset_parts(offset: &str) -> (u64, u32) {
    let (_tag, offset) = offset.split_once('-').expect("an offset is <tag>-N");
    match offset.split_once('.') {
        Some((n, k)) => (n.parse().unwrap(), k.parse().unwrap()),
        None => (offset.parse().unwrap(), 0),
    }
}

#[tokio::test]
async fn a_client_that_dropped_from_one_instance_recovers_on_another() {
    let prefix = prefix("move");
    let (a, hooks_a) = instance(&prefix).await;
    let (b, hooks_b) = instance(&prefix).await;
    let (mut alice, mut bob, id) = pair(&a, "lobby").await;
    let mut carol = connect(&b, "token=carol").await;
    request(&mut carol.client, "join", json!("lobby")).await;
    request(&mut alice.client, "name", json!("Alice L.")).await;
    let alice_pid = alice.pid;
    // Alice drops before receiving anything: she comes back without an offset.
    cut(alice.client);
    hooks_a.wait_for(&format!("disconnect {id}")).await;
    say(&mut bob.client, "lobby", "one").await;

    // Missed, from both instances: a room emit from each, and one by id from B.
    say(&mut bob.client, "lobby", "two").await;
    say(&mut carol.client, "lobby", "three").await;
    let alice_id: ClientId = id.parse().unwrap();
    b.app()
        .server("/recovery")
        .unwrap()
        .to_client(alice_id)
        .emit("said", &"four (to alice)")
        .unwrap();

    let mut back = connect(&b, &format!("token=alice&pid={alice_pid}")).await;
    assert!(back.recovered, "recovered on the other instance");
    assert_eq!(back.pid, alice_pid);
    let mut offsets = Vec::new();
    for expected in ["one", "two", "three", "four (to alice)"] {
        let (text, offset) = said(&mut back.client).await;
        assert_eq!(text, expected);
        offsets.push(offset);
    }
    let me = request(&mut back.client, "whoami", json!(null)).await;
    assert_eq!(me["id"], json!(id), "the same client id");
    assert_eq!(me["user"], json!("alice"));
    assert_eq!(me["rooms"], json!(["lobby"]));
    assert_eq!(me["name"], json!("Alice L."), "the state carried");
    assert_eq!(me["recovered"], json!(true));
    hooks_b.wait_for(&format!("connect {id} true")).await;

    // Live traffic from both instances, once each, after what was missed.
    say(&mut bob.client, "lobby", "five").await;
    let (text, offset) = said(&mut back.client).await;
    assert_eq!(text, "five");
    offsets.push(offset);
    say(&mut carol.client, "lobby", "six").await;
    let (text, offset) = said(&mut back.client).await;
    assert_eq!(text, "six");
    offsets.push(offset);
    let parts: Vec<_> = offsets.iter().map(|o| offset_parts(o)).collect();
    assert!(parts.windows(2).all(|w| w[0] < w[1]), "{offsets:?}");

    // And back to A, from an offset B issued for a frame A handed over.
    let handed_over = &offsets[1];
    cut(back.client);
    hooks_b.wait_for(&format!("disconnect {id}")).await;
    say(&mut carol.client, "lobby", "seven").await;
    let mut again = connect(
        &a,
        &format!("token=alice&pid={alice_pid}&offset={handed_over}"),
    )
    .await;
    assert!(again.recovered);
    for expected in ["three", "four (to alice)", "five", "six", "seven"] {
        assert_eq!(said(&mut again.client).await.0, expected);
    }
    let me = request(&mut again.client, "whoami", json!(null)).await;
    assert_eq!(
        (me["id"].clone(), me["rooms"].clone()),
        (json!(id), json!(["lobby"]))
    );
}

#[tokio::test]
async fn frames_sent_from_both_instances_during_a_move_arrive_once_each_in_order() {
    let prefix = prefix("flood");
    let (a, hooks_a) = instance(&prefix).await;
    let (b, _hooks_b) = instance(&prefix).await;
    let (alice, _bob, id) = pair(&a, "lobby").await;
    let pid = alice.pid;
    cut(alice.client);
    hooks_a.wait_for(&format!("disconnect {id}")).await;

    // Both instances emit numbered frames to the room while Alice comes back to B.
    const EACH: usize = 600;
    let senders: Vec<_> = [("a", &a), ("b", &b)]
        .into_iter()
        .map(|(name, server)| {
            let server = server.app().server("/recovery").unwrap();
            tokio::spawn(async move {
                for n in 0..EACH {
                    server
                        .to("lobby")
                        .emit("said", &format!("{name}{n}"))
                        .unwrap();
                    if n % 5 == 0 {
                        tokio::time::sleep(Duration::from_millis(1)).await;
                    }
                }
            })
        })
        .collect();
    // (A pause only to land the move in the middle of the traffic, not to wait for it.)
    tokio::time::sleep(Duration::from_millis(40)).await;
    let mut back = connect(&b, &format!("token=alice&pid={pid}")).await;
    assert!(back.recovered);
    for sender in senders {
        sender.await.unwrap();
    }
    let mut next = [0usize; 2];
    let mut last_offset = (0, 0);
    while next != [EACH, EACH] {
        let (text, offset) = said(&mut back.client).await;
        let (which, n) = text.split_at(1);
        let (slot, n) = (usize::from(which == "b"), n.parse::<usize>().unwrap());
        assert_eq!(
            n, next[slot],
            "{text} after {next:?}: lost, repeated or out of order"
        );
        next[slot] += 1;
        let parts = offset_parts(&offset);
        assert!(parts > last_offset, "{offset} after {last_offset:?}");
        last_offset = parts;
    }
}

#[tokio::test]
async fn another_identity_cannot_take_a_session_from_another_instance() {
    let prefix = prefix("stranger");
    let (a, hooks_a) = instance(&prefix).await;
    let (b, _hooks_b) = instance(&prefix).await;
    let (alice, mut bob, id) = pair(&a, "lobby").await;
    cut(alice.client);
    hooks_a.wait_for(&format!("disconnect {id}")).await;
    say(&mut bob.client, "lobby", "secret").await;

    let mut mallory = connect(&b, &format!("token=mallory&pid={}", alice.pid)).await;
    assert!(!mallory.recovered);
    assert_ne!(mallory.pid, alice.pid);
    let me = request(&mut mallory.client, "whoami", json!(null)).await;
    assert_ne!(me["id"], json!(id));
    assert_eq!(me["rooms"], json!([]));

    let mut back = connect(&b, &format!("token=alice&pid={}", alice.pid)).await;
    assert!(back.recovered, "the owner still recovers");
    assert_eq!(said(&mut back.client).await.0, "secret");
}

#[tokio::test]
async fn a_session_still_open_on_one_instance_is_taken_over_from_another() {
    let prefix = prefix("takeover");
    let (a, _hooks_a) = instance(&prefix).await;
    let (b, _hooks_b) = instance(&prefix).await;
    takes_over(&a, &b).await;
}

#[tokio::test]
async fn with_per_room_channels_a_dropped_clients_rooms_stay_subscribed_for_it() {
    let prefix = prefix("per-room");
    let config = || {
        ws_gateway_redis::RedisConfig::new("redis://127.0.0.1:6379")
            .prefix(&prefix)
            .per_room()
    };
    let (a, hooks_a) = instance_with(config()).await;
    let (b, _hooks_b) = instance_with(config()).await;
    // Alice is the room's only member on A; Carol is on B.
    let mut alice = connect(&a, "token=alice").await;
    request(&mut alice.client, "join", json!("solo")).await;
    let me = request(&mut alice.client, "whoami", json!(null)).await;
    let id = me["id"].as_str().unwrap().to_owned();
    let mut carol = connect(&b, "token=carol").await;
    request(&mut carol.client, "join", json!("solo")).await;
    a.app().server("/recovery").unwrap().synced().await;
    b.app().server("/recovery").unwrap().synced().await;
    cut(alice.client);
    hooks_a.wait_for(&format!("disconnect {id}")).await;

    // What B sends the room while Alice is away still reaches A, to be kept for her.
    say(&mut carol.client, "solo", "while away").await;
    let mut back = connect(&a, &format!("token=alice&pid={}", alice.pid)).await;
    assert!(back.recovered);
    assert_eq!(said(&mut back.client).await.0, "while away");
    say(&mut carol.client, "solo", "live").await;
    assert_eq!(said(&mut back.client).await.0, "live");
}

/// An adapter whose other instances cannot be asked right now (their Redis is down).
struct Unreachable;

impl ws_gateway_core::adapter::Adapter for Unreachable {
    fn attach(&self, _server: ws_gateway_core::adapter::LocalServer) {}

    fn publish(&self, _message: &ws_gateway_core::adapter::Message<'_>) {}

    async fn claim_session(
        &self,
        _path: &'static str,
        _claim: &ws_gateway_core::adapter::SessionClaim,
    ) -> Result<
        Option<ws_gateway_core::adapter::SessionOffer>,
        ws_gateway_core::adapter::AdapterError,
    > {
        Err(ws_gateway_core::adapter::AdapterError::Unavailable(
            "Redis is unreachable".into(),
        ))
    }
}

#[tokio::test]
async fn a_claim_the_other_instances_cannot_answer_is_closed_to_try_again() {
    let hooks = Arc::new(Hooks::default());
    let app = GatewayApp::new()
        .provide_arc(Arc::clone(&hooks))
        .adapter(Unreachable)
        .authenticate::<RecoveryGateway>(TokenAuth)
        .recover::<RecoveryGateway>(window())
        .gateway::<RecoveryGateway>()
        .build()
        .unwrap();
    let server = TestServer::start(app).await.unwrap();
    // A pid this instance does not know may be held by another: not a fresh session but
    // 1013, so that the client comes back once the others can be asked.
    let url = format!(
        "{}?token=alice&pid={}",
        server.url("/recovery"),
        "ab".repeat(16)
    );
    let mut client = TestClient::connect(&url).await.unwrap();
    let close = client.expect_close().await.unwrap().expect("a close frame");
    assert_eq!(u16::from(close.code), 1013);
    assert!(
        !hooks
            .seen
            .lock()
            .unwrap()
            .iter()
            .any(|e| e.starts_with("connect")),
        "no connection hook ran"
    );
    // Without a claim, a connection opens as usual.
    let fresh = connect(&server, "token=alice").await;
    assert!(!fresh.recovered);
}

/// A Redis driver whose reading of the operations stream can be held back: an instance
/// that lags behind the others, as one does after a Redis outage while their backlog
/// comes in.
struct Lagging {
    redis: ws_gateway_redis::RedisDriver,
    held: tokio::sync::watch::Sender<bool>,
}

impl ws_gateway_redis::driver::Driver for Lagging {
    type Error = ws_gateway_redis::Error;

    fn publish(
        &self,
        messages: &[ws_gateway_redis::driver::ChannelMessage],
    ) -> impl Future<Output = Result<Vec<usize>, Self::Error>> + Send {
        self.redis.publish(messages)
    }

    fn subscribe(
        &self,
        subscription: ws_gateway_redis::driver::Subscription,
        inbox: ws_gateway_redis::driver::Inbox,
    ) -> impl Future<Output = Result<(), Self::Error>> + Send {
        self.redis.subscribe(subscription, inbox)
    }

    fn unsubscribe(
        &self,
        subscription: &ws_gateway_redis::driver::Subscription,
    ) -> impl Future<Output = Result<(), Self::Error>> + Send {
        self.redis.unsubscribe(subscription)
    }

    fn append(
        &self,
        stream: &str,
        payloads: &[bytes::Bytes],
        max_len: usize,
    ) -> impl Future<Output = Result<Vec<ws_gateway_redis::driver::StreamId>, Self::Error>> + Send
    {
        self.redis.append(stream, payloads, max_len)
    }

    fn follow(
        &self,
        stream: &str,
        inbox: ws_gateway_redis::driver::Inbox,
    ) -> impl Future<Output = Result<ws_gateway_redis::driver::StreamId, Self::Error>> + Send {
        let (relay, mut relayed) = ws_gateway_redis::driver::Inbox::channel(4096);
        let mut held = self.held.subscribe();
        tokio::spawn(async move {
            while let Some(entry) = relayed.recv().await {
                let _ = held.wait_for(|held| !held).await;
                if !inbox.deliver(entry).await {
                    return;
                }
            }
        });
        self.redis.follow(stream, relay)
    }

    fn epoch(&self) -> u64 {
        self.redis.epoch()
    }

    fn is_connected(&self) -> bool {
        self.redis.is_connected()
    }
}

#[tokio::test]
async fn a_client_that_moves_to_a_lagging_instance_gets_nothing_twice() {
    let prefix = prefix("lagging");
    let (a, hooks_a) = instance(&prefix).await;
    // B reads the others' operations late whenever `held` says so.
    let held = tokio::sync::watch::Sender::new(false);
    let redis = ws_gateway_redis::RedisConfig::new("redis://127.0.0.1:6379");
    let lagging = Lagging {
        redis: ws_gateway_redis::RedisDriver::connect(&redis)
            .await
            .unwrap(),
        held: held.clone(),
    };
    let adapter = ws_gateway_redis::RedisAdapter::with_driver(
        lagging,
        ws_gateway_redis::AdapterConfig::new().prefix(&prefix),
    )
    .await
    .unwrap();
    let (b, _hooks_b) = instance_on(adapter).await;
    let (mut alice, mut bob, id) = pair(&a, "lobby").await;
    a.app().server("/recovery").unwrap().synced().await;
    b.app().server("/recovery").unwrap().synced().await;

    // Alice gets a frame on A that B has not read yet, then drops and comes back to B.
    held.send_replace(true);
    say(&mut bob.client, "lobby", "before").await;
    let (text, offset) = said(&mut alice.client).await;
    assert_eq!(text, "before");
    drop_connection(alice.client, &hooks_a, &id).await;
    let back = tokio::spawn({
        let url = format!("token=alice&pid={}&offset={offset}", alice.pid);
        let b = b.url("/recovery");
        async move {
            let url = format!("{b}?{url}");
            let mut client = TestClient::connect(&url).await.unwrap();
            let first = client.recv().await.unwrap();
            (client, first)
        }
    });
    // B lags a while behind A (it would take Alice in meanwhile, and give her "before"
    // again once it reads it), then catches up.
    tokio::time::sleep(Duration::from_millis(300)).await;
    held.send_replace(false);
    let (mut back, first) = tokio::time::timeout(Duration::from_secs(10), back)
        .await
        .expect("recovered within 10 s")
        .unwrap();
    assert_eq!(first.event, "session");
    assert_eq!(first.data["recovered"], json!(true), "{first:?}");
    say(&mut bob.client, "lobby", "after").await;
    assert_eq!(said(&mut back).await.0, "after", "nothing Alice had, twice");
}

#[tokio::test]
async fn clients_handed_over_at_the_same_moment_each_recover_again_exactly() {
    let prefix = prefix("handed-together");
    let (a, hooks_a) = instance(&prefix).await;
    let (b, hooks_b) = instance(&prefix).await;
    let (alice, mut bob, alice_id) = pair(&a, "lobby").await;
    let mut dave = connect(&a, "token=dave").await;
    request(&mut dave.client, "join", json!("lobby")).await;
    let dave_id = request(&mut dave.client, "whoami", json!(null)).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    drop_connection(alice.client, &hooks_a, &alice_id).await;
    drop_connection(dave.client, &hooks_a, &dave_id).await;
    for text in ["one", "two", "three"] {
        say(&mut bob.client, "lobby", text).await;
    }

    // Both come back to B, one after the other, with nothing recorded there in between:
    // their handed-over frames are numbered after the same frame of B's.
    let mut alice_back = connect(&b, &format!("token=alice&pid={}", alice.pid)).await;
    assert_eq!(said(&mut alice_back.client).await.0, "one");
    let (text, second) = said(&mut alice_back.client).await;
    assert_eq!(text, "two");
    let mut dave_back = connect(&b, &format!("token=dave&pid={}", dave.pid)).await;
    for expected in ["one", "two", "three"] {
        assert_eq!(said(&mut dave_back.client).await.0, expected);
    }
    // Alice drops having read two of them: she gets the third again, no more, no less.
    drop_connection(alice_back.client, &hooks_b, &alice_id).await;
    let mut again = connect(
        &b,
        &format!("token=alice&pid={}&offset={second}", alice.pid),
    )
    .await;
    assert!(again.recovered);
    say(&mut bob.client, "lobby", "four").await;
    for expected in ["three", "four"] {
        assert_eq!(said(&mut again.client).await.0, expected);
    }
}
