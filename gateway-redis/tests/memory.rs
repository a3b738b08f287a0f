//! The adapter's fan-out, ordering and request/response, between instances of an app in
//! one process connected through a `MemoryBus`: no Redis server involved.
//!
//! Nothing here sleeps or watches a quiet period. "Everything has arrived" is a barrier:
//! [`settle`] makes a `fetch_clients` request from the sending instance, which goes out
//! after everything that instance published, and every instance (the sender included)
//! answers only once it has applied what came before the request. When it returns, each
//! client's queue holds all it will ever get of those messages, duplicates included, and
//! is read without waiting.

// Test helpers live outside `#[test]` fns, where clippy.toml's allowances do not reach.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::convert::Infallible;
use std::time::{Duration, Instant};

use bytes::Bytes;
use serde_json::json;
use ws_gateway_core::adapter::AdapterError;
use ws_gateway_core::prelude::*;
use ws_gateway_core::transport::{Outbound, OutboundQueue};
use ws_gateway_core::{App, Handshake};
use ws_gateway_redis::driver::{ChannelMessage, Driver, Inbox, StreamId, Subscription};
use ws_gateway_redis::{AdapterConfig, MemoryBus, MemoryDriver, RedisAdapter};

/// How long a frame that should arrive may take (generous: it is a failure bound, not a
/// synchronisation).
const WITHIN: Duration = Duration::from_secs(5);

#[websocket_gateway(path = "/mem")]
struct MemGateway;

#[websocket_gateway]
impl MemGateway {}

fn config() -> AdapterConfig {
    AdapterConfig::new().prefix("mem")
}

async fn app_with<D: Driver>(driver: D, config: AdapterConfig) -> App {
    let adapter = RedisAdapter::with_driver(driver, config).await.unwrap();
    GatewayApp::new()
        .adapter(adapter)
        .gateway::<MemGateway>()
        .build()
        .unwrap()
}

async fn instances(bus: &MemoryBus, n: usize) -> Vec<App> {
    let mut apps = Vec::new();
    for _ in 0..n {
        apps.push(app_with(bus.driver(), config()).await);
    }
    apps
}

fn connect(app: &App) -> (Client, OutboundQueue) {
    app.gateways()[0].open(Handshake::default(), 4096)
}

fn member(app: &App, room: &'static str) -> (Client, OutboundQueue) {
    let (client, queue) = connect(app);
    client.join(room).unwrap();
    (client, queue)
}

fn server(app: &App) -> WsServer {
    app.server("/mem").unwrap()
}

/// Returns once every instance has applied everything `app` published before the call
/// (see the file's header). `fetch_clients` answers for each gateway of every instance.
async fn settle(app: &App) {
    tokio::time::timeout(WITHIN, server(app).broadcast().fetch_clients())
        .await
        .expect("the instances answer")
        .expect("the instances answer");
}

/// What is in the queue now, as text (`close <code>` for a close), without waiting.
fn drain(queue: &mut OutboundQueue) -> Vec<String> {
    std::iter::from_fn(|| queue.try_recv())
        .map(|out| match out {
            Outbound::Frame(frame) => frame.as_str().to_owned(),
            Outbound::Close(close) => format!("close {}", close.code),
            other => panic!("unexpected {other:?}"),
        })
        .collect()
}

/// A frame as the server encodes it.
fn frame(event: &str, data: serde_json::Value) -> String {
    format!(r#"{{"event":"{event}","data":{data}}}"#)
}

fn said(range: std::ops::Range<u32>) -> Vec<String> {
    range.map(|n| frame("said", json!(n))).collect()
}

#[tokio::test]
async fn a_room_message_reaches_members_on_every_instance_once_and_in_order() {
    let bus = MemoryBus::new();
    let apps = instances(&bus, 3).await;
    let (sender, mut sender_queue) = connect(&apps[0]);
    let mut members = vec![
        ("member on A", member(&apps[0], "room")),
        ("member on B", member(&apps[1], "room")),
        ("member on C", member(&apps[2], "room")),
        ("second member on C", member(&apps[2], "room")),
    ];
    let mut outsiders = vec![
        ("outsider on A", member(&apps[0], "elsewhere")),
        ("outsider on B", connect(&apps[1])),
        ("outsider on C", member(&apps[2], "elsewhere")),
    ];

    for n in 0..200u32 {
        sender.to("room").emit("said", &n).unwrap();
    }
    settle(&apps[0]).await;

    // The member on A is reached locally and must not get A's own messages again when the
    // bus hands them back to A; the others are reached through the bus, once each.
    for (who, (_, queue)) in &mut members {
        assert_eq!(drain(queue), said(0..200), "{who}");
    }
    for (who, (_, queue)) in &mut outsiders {
        assert_eq!(drain(queue), Vec::<String>::new(), "{who}");
    }
    assert_eq!(drain(&mut sender_queue), Vec::<String>::new(), "the sender");
}

#[tokio::test]
async fn order_holds_per_sender_when_two_instances_emit_at_once() {
    let bus = MemoryBus::new();
    let apps = instances(&bus, 3).await;
    let (on_a, _) = connect(&apps[0]);
    let (on_b, _) = connect(&apps[1]);
    let mut receivers = vec![
        ("member on A", member(&apps[0], "room")),
        ("member on C", member(&apps[2], "room")),
    ];

    for n in 0..300u32 {
        on_a.to("room").emit("a", &n).unwrap();
        on_b.to("room").emit("b", &n).unwrap();
    }
    settle(&apps[0]).await;
    settle(&apps[1]).await;

    for (who, (_, queue)) in &mut receivers {
        // Each sender's frames in its order, whatever the interleaving of the two.
        let (mut from_a, mut from_b) = (Vec::new(), Vec::new());
        for got in drain(queue) {
            let got: serde_json::Value = serde_json::from_str(&got).unwrap();
            match got["event"].as_str().unwrap() {
                "a" => from_a.push(got["data"].as_u64().unwrap()),
                "b" => from_b.push(got["data"].as_u64().unwrap()),
                other => panic!("{who}: unexpected {other}"),
            }
        }
        let expected: Vec<u64> = (0..300).collect();
        assert_eq!(from_a, expected, "{who}: A's frames");
        assert_eq!(from_b, expected, "{who}: B's frames");
    }
}

#[tokio::test]
async fn room_operations_and_disconnects_by_id_cross_instances_in_order() {
    let bus = MemoryBus::new();
    let apps = instances(&bus, 2).await;
    let (client, mut queue) = connect(&apps[1]);
    let id = client.id();
    let a = server(&apps[0]);

    // Not connected to A: delivered on B. Each operation is applied before the next one
    // from A, so the join takes effect before the emit to the room.
    assert_eq!(a.to_client(id).emit("private", &"psst").unwrap(), 0);
    assert_eq!(a.to_client(id).join("vip"), 0);
    a.to("vip").emit("vip-only", &1).unwrap();
    a.to("vip").leave("vip");
    a.to("vip").emit("vip-only", &2).unwrap();
    settle(&apps[0]).await;
    assert_eq!(
        drain(&mut queue),
        [frame("private", json!("psst")), frame("vip-only", json!(1))]
    );
    assert!(client.rooms().is_empty());

    assert!(!a.disconnect(id));
    settle(&apps[0]).await;
    assert_eq!(drain(&mut queue), ["close 1000"]);
}

#[tokio::test]
async fn fetch_clients_asks_every_instance_and_sees_earlier_operations() {
    let bus = MemoryBus::new();
    let apps = instances(&bus, 3).await;
    let (_on_a, _a_queue) = connect(&apps[0]);
    let (on_b, _b_queue) = member(&apps[1], "r");
    let (on_c, _c_queue) = member(&apps[2], "r");
    let (_also_on_c, _c2_queue) = member(&apps[2], "s");
    let a = server(&apps[0]);

    let mut in_r = a.to("r").fetch_clients().await.unwrap();
    in_r.sort_by_key(|c| c.id);
    let mut expected = vec![on_b.id(), on_c.id()];
    expected.sort();
    assert_eq!(in_r.iter().map(|c| c.id).collect::<Vec<_>>(), expected);
    assert!(in_r.iter().all(|c| c.rooms == ["r"]));
    assert_eq!(a.broadcast().fetch_clients().await.unwrap().len(), 4);
    assert_eq!(a.local().fetch_clients().await.unwrap().len(), 1);
    let except_c = a.broadcast().except_room("s").fetch_clients().await;
    assert_eq!(except_c.unwrap().len(), 3);

    // A join sent from A just before the request is applied on B before B answers.
    a.to_client(on_b.id()).join("late");
    let in_late = a.to("late").fetch_clients().await.unwrap();
    assert_eq!(in_late.len(), 1);
    assert_eq!(in_late[0].id, on_b.id());
    assert_eq!(in_late[0].rooms, ["late", "r"]);
}

/// A [`MemoryDriver`] whose instance never answers requests: it receives them (and is
/// counted among the receivers) but its answers are lost, as if it hung.
struct Silent(MemoryDriver);

impl Driver for Silent {
    type Error = Infallible;

    async fn publish(&self, messages: &[ChannelMessage]) -> Result<Vec<usize>, Infallible> {
        let answer = |m: &ChannelMessage| m.channel.contains("#response#");
        let kept: Vec<ChannelMessage> = messages.iter().filter(|m| !answer(m)).cloned().collect();
        let mut counts = self.0.publish(&kept).await?.into_iter();
        Ok(messages
            .iter()
            .map(|m| if answer(m) { 0 } else { counts.next().unwrap() })
            .collect())
    }

    async fn subscribe(&self, subscription: Subscription, inbox: Inbox) -> Result<(), Infallible> {
        self.0.subscribe(subscription, inbox).await
    }

    async fn unsubscribe(&self, subscription: &Subscription) -> Result<(), Infallible> {
        self.0.unsubscribe(subscription).await
    }

    // A wrapper forwards the streams too: the defaults would carry them on channels,
    // where the other instances' entries are not.
    async fn append(
        &self,
        stream: &str,
        payloads: &[Bytes],
        max_len: usize,
    ) -> Result<Vec<StreamId>, Infallible> {
        self.0.append(stream, payloads, max_len).await
    }

    async fn follow(&self, stream: &str, inbox: Inbox) -> Result<StreamId, Infallible> {
        self.0.follow(stream, inbox).await
    }
}

#[tokio::test]
async fn a_silent_instance_makes_fetch_clients_time_out() {
    let bus = MemoryBus::new();
    let timeout = Duration::from_millis(200);
    let asking = app_with(bus.driver(), config().request_timeout(timeout)).await;
    let answering = app_with(bus.driver(), config()).await;
    let silent = app_with(Silent(bus.driver()), config()).await;
    let (_b, _b_queue) = member(&answering, "r");
    let (_c, _c_queue) = member(&silent, "r");

    let started = Instant::now();
    match server(&asking).to("r").fetch_clients().await {
        Err(AdapterError::Timeout {
            missing,
            timeout: waited,
        }) => {
            assert_eq!((missing, waited), (1, timeout));
        }
        other => panic!("expected a timeout, got {other:?}"),
    }
    assert!(started.elapsed() >= timeout);

    // The silent instance still gets operations; only its answers are lost.
    let (sender, _) = connect(&asking);
    let (_listener, mut queue) = member(&silent, "r2");
    sender.to("r2").emit("said", &1).unwrap();
    let got = tokio::time::timeout(WITHIN, queue.recv()).await.unwrap();
    let Some(Outbound::Frame(got)) = got else {
        panic!("member on the silent instance: {got:?}");
    };
    assert_eq!(got.as_str(), said(1..2)[0]);
}

#[tokio::test]
async fn an_instance_that_is_gone_is_not_waited_for() {
    let bus = MemoryBus::new();
    let mut apps = instances(&bus, 3).await;
    let (_b, _b_queue) = member(&apps[1], "r");
    {
        let (c, c_queue) = member(&apps[2], "r");
        let a = server(&apps[0]);
        assert_eq!(a.to("r").fetch_clients().await.unwrap().len(), 2);
        // As its connection task would when the socket closes: a registered client keeps
        // its server, and so the adapter, alive.
        apps[2].gateways()[0].disconnect(&c).await;
        drop((c, c_queue));
    }
    // Dropping the app drops its adapter and with it the driver's subscriptions, as a
    // closed Redis connection takes its subscriptions along.
    drop(apps.pop());

    let a = server(&apps[0]);
    let started = Instant::now();
    let in_r = a.to("r").fetch_clients().await.unwrap();
    assert_eq!(in_r.len(), 1);
    // Answered, not timed out (the default request timeout is 5 s).
    assert!(started.elapsed() < Duration::from_secs(5));
}

#[tokio::test]
async fn different_prefixes_on_one_bus_do_not_meet() {
    let bus = MemoryBus::new();
    let chat = app_with(bus.driver(), AdapterConfig::new().prefix("chat")).await;
    let other = app_with(bus.driver(), AdapterConfig::new().prefix("other")).await;
    let chat_peer = app_with(bus.driver(), AdapterConfig::new().prefix("chat")).await;
    let (sender, _) = connect(&chat);
    let (in_other_app, mut other_queue) = member(&other, "room");
    let (in_chat_app, mut peer_queue) = member(&chat_peer, "room");

    sender.to("room").emit("said", &0).unwrap();
    settle(&chat).await;
    assert_eq!(drain(&mut peer_queue), said(0..1));
    // Each app's requests reach its own instances only: the member of the other app is
    // not among chat's clients, and the other app waits for no answer from chat's.
    let in_chat = server(&chat).to("room").fetch_clients().await.unwrap();
    assert_eq!(
        in_chat.iter().map(|c| c.id).collect::<Vec<_>>(),
        [in_chat_app.id()]
    );
    let in_other = server(&other).to("room").fetch_clients().await.unwrap();
    assert_eq!(
        in_other.iter().map(|c| c.id).collect::<Vec<_>>(),
        [in_other_app.id()]
    );
    // And chat's message did not reach it: the bus had handed it to every matching inbox
    // before chat settled, and the other app's own request lands in its inbox after that,
    // so once the other app settles it has applied anything it got.
    settle(&other).await;
    assert_eq!(drain(&mut other_queue), Vec::<String>::new());
}

/// Per-room mode subscribes to a room's channel while the instance has a member in it, and
/// to nothing else but its gateway's channel and its answers: a room emit reaches only the
/// instances with members, and reaches them once.
#[tokio::test]
async fn per_room_mode_subscribes_while_a_room_has_local_members() {
    let bus = MemoryBus::new();
    let mut apps = Vec::new();
    for _ in 0..3 {
        apps.push(app_with(bus.driver(), config().per_room()).await);
    }
    for app in &apps {
        server(app).synced().await;
    }
    // Each instance: its answers' channel and the gateway's.
    assert_eq!(format!("{bus:?}"), "MemoryBus { subscriptions: 6 }");

    let (member_b, mut to_b) = connect(&apps[1]);
    member_b.join_synced("room").await.unwrap();
    let (_other, mut to_c) = member(&apps[2], "elsewhere");
    server(&apps[2]).synced().await;
    assert_eq!(format!("{bus:?}"), "MemoryBus { subscriptions: 8 }");

    server(&apps[0]).to("room").emit("m", &1).unwrap();
    let got = tokio::time::timeout(WITHIN, to_b.recv()).await.unwrap();
    assert!(matches!(got, Some(Outbound::Frame(f)) if f.as_str() == r#"{"event":"m","data":1}"#));
    // The room's barrier reaches B only (the one subscriber): nothing else for anyone.
    let in_room = server(&apps[0]).to("room").fetch_clients().await.unwrap();
    assert_eq!(in_room.len(), 1);
    assert!(to_b.try_recv().is_none());
    assert!(to_c.try_recv().is_none());

    // The last member leaves: the subscription goes.
    member_b.leave("room");
    server(&apps[1]).synced().await;
    assert_eq!(format!("{bus:?}"), "MemoryBus { subscriptions: 7 }");
    let in_room = server(&apps[0]).to("room").fetch_clients().await.unwrap();
    assert!(in_room.is_empty());
}
