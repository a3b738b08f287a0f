//! The `RedisDriver` on its own, against a real Redis: what the adapter relies on from a
//! driver (counts, order, prefixes, subscriptions changed at run time and kept across a
//! reconnection). The adapter's logic above it is tested without Redis in `memory.rs`.

// Test helpers live outside `#[test]` fns, where clippy.toml's allowances do not reach.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use tokio::sync::mpsc;
use ws_gateway_redis::driver::{ChannelMessage, Driver, Inbox, Subscription};
use ws_gateway_redis::{Error, RedisConfig, RedisDriver};

use common::{redis_server, spare_port, wait_for};

const REDIS: &str = "redis://127.0.0.1:6379";

fn unique() -> String {
    common::unique_prefix("driver-test")
}

fn message(channel: &str, payload: &str) -> ChannelMessage {
    ChannelMessage::new(channel, payload.to_owned())
}

/// What arrives until a message on `marker`, as `channel=payload`. Redis delivers what one
/// connection publishes in order, so a marker published last arrives last.
async fn until(rx: &mut mpsc::Receiver<ChannelMessage>, marker: &str) -> Vec<String> {
    let mut got = Vec::new();
    loop {
        let received = tokio::time::timeout(Duration::from_secs(5), rx.recv())
            .await
            .expect("a message within 5 s")
            .expect("the driver is alive");
        if received.channel == marker {
            return got;
        }
        got.push(format!(
            "{}={}",
            received.channel,
            String::from_utf8_lossy(&received.payload)
        ));
    }
}

#[tokio::test]
async fn channels_and_prefixes_deliver_once_in_order_and_are_counted() {
    let p = unique();
    let config = RedisConfig::new(REDIS);
    let (a, b) = (
        RedisDriver::connect(&config).await.unwrap(),
        RedisDriver::connect(&config).await.unwrap(),
    );
    let (a_inbox, mut a_rx) = Inbox::channel(64);
    let (b_inbox, mut b_rx) = Inbox::channel(64);
    let marker = format!("{p}#marker");
    for subscription in [
        Subscription::Prefix(format!("{p}:")),
        Subscription::Channel(format!("{p}#request")),
        Subscription::Channel(marker.clone()),
        // Glob characters in a prefix are literal.
        Subscription::Prefix(format!("{p}[*]:")),
    ] {
        a.subscribe(subscription, a_inbox.clone()).await.unwrap();
    }
    b.subscribe(Subscription::Prefix(format!("{p}:")), b_inbox.clone())
        .await
        .unwrap();
    b.subscribe(Subscription::Channel(marker.clone()), b_inbox)
        .await
        .unwrap();

    let batch = [
        message(&format!("{p}:/x"), "1"),
        message(&format!("{p}#request"), "2"),
        message(&format!("{p}:/y"), "3"),
        message(&format!("{p}[*]:z"), "4"),
        message(&format!("{p}*:z"), "5"),
        message(&marker, ""),
    ];
    let counts = b.publish(&batch).await.unwrap();
    assert_eq!(counts, [2, 1, 2, 1, 0, 2]);
    assert_eq!(
        until(&mut a_rx, &marker).await,
        [
            format!("{p}:/x=1"),
            format!("{p}#request=2"),
            format!("{p}:/y=3"),
            format!("{p}[*]:z=4")
        ]
    );
    assert_eq!(
        until(&mut b_rx, &marker).await,
        [format!("{p}:/x=1"), format!("{p}:/y=3")]
    );

    // Unsubscribed at run time: no longer counted, no longer delivered.
    a.unsubscribe(&Subscription::Prefix(format!("{p}:")))
        .await
        .unwrap();
    a.unsubscribe(&Subscription::Channel(format!("{p}#never")))
        .await
        .unwrap();
    let counts = b
        .publish(&[message(&format!("{p}:/x"), "6"), message(&marker, "")])
        .await
        .unwrap();
    assert_eq!(counts, [1, 2]);
    assert_eq!(until(&mut a_rx, &marker).await, Vec::<String>::new());
    assert_eq!(until(&mut b_rx, &marker).await, [format!("{p}:/x=6")]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscriptions_made_before_and_during_an_outage_are_made_again() {
    let port = spare_port();
    let mut redis_process = redis_server(port).await;
    let config = RedisConfig::new(format!("redis://127.0.0.1:{port}"))
        .reconnect_backoff(Duration::from_millis(20), Duration::from_millis(200));
    let driver = RedisDriver::connect(&config).await.unwrap();
    let (inbox, mut rx) = Inbox::channel(64);
    let marker = Subscription::Channel("marker".into());
    driver.subscribe(marker, inbox.clone()).await.unwrap();
    driver
        .subscribe(Subscription::Channel("before".into()), inbox.clone())
        .await
        .unwrap();

    redis_process.kill().await.unwrap();
    wait_for("the driver sees the outage", || !driver.is_connected()).await;
    // Accepted while disconnected; publishing fails at once rather than queueing.
    driver
        .subscribe(Subscription::Prefix("during:".into()), inbox)
        .await
        .unwrap();
    match driver.publish(&[message("before", "lost")]).await {
        Err(err @ Error::Unavailable { .. }) => {
            assert!(err.to_string().contains(&format!("127.0.0.1:{port}")));
        }
        other => panic!("{other:?}"),
    }

    let _redis_process = redis_server(port).await;
    wait_for("the driver reconnects", || driver.is_connected()).await;
    let counts = driver
        .publish(&[
            message("before", "1"),
            message("during:x", "2"),
            message("marker", ""),
        ])
        .await
        .unwrap();
    assert_eq!(counts, [1, 1, 1]);
    assert_eq!(until(&mut rx, "marker").await, ["before=1", "during:x=2"]);
}

/// The `RedisClusterDriver` against the cluster on 7000-7002: sharded channels on several
/// shards, counted, in order per channel, changed at run time; no prefixes.
#[tokio::test]
async fn cluster_channels_are_sharded_counted_and_in_order_per_channel() {
    use ws_gateway_redis::RedisClusterDriver;

    let p = unique();
    let config = RedisConfig::cluster(common::CLUSTER);
    let (a, b) = (
        RedisClusterDriver::connect(&config).await.unwrap(),
        RedisClusterDriver::connect(&config).await.unwrap(),
    );
    let (a_inbox, mut a_rx) = Inbox::channel(64);
    let (b_inbox, mut b_rx) = Inbox::channel(64);
    // Three channels on different slots (so, most likely, on different shards).
    let channels: Vec<String> = ["x", "y", "z"].iter().map(|c| format!("{p}:{c}")).collect();
    for channel in &channels {
        let subscription = Subscription::Channel(channel.clone());
        a.subscribe(subscription, a_inbox.clone()).await.unwrap();
    }
    b.subscribe(Subscription::Channel(channels[0].clone()), b_inbox)
        .await
        .unwrap();
    let refused = a
        .subscribe(Subscription::Prefix(format!("{p}:")), a_inbox)
        .await
        .unwrap_err();
    assert!(refused.to_string().contains("per-room"), "{refused}");

    let (x, y, z) = (&channels[0], &channels[1], &channels[2]);
    let batch = [
        message(x, "1"),
        message(y, "2"),
        message(x, "3"),
        message(z, "4"),
        message(y, "5"),
    ];
    assert_eq!(b.publish(&batch).await.unwrap(), [2, 1, 2, 1, 1]);
    let mut got = std::collections::BTreeMap::<String, Vec<String>>::new();
    for _ in 0..batch.len() {
        let received = tokio::time::timeout(Duration::from_secs(5), a_rx.recv())
            .await
            .expect("a message within 5 s")
            .unwrap();
        let payload = String::from_utf8_lossy(&received.payload).into_owned();
        got.entry(received.channel).or_default().push(payload);
    }
    let expected = [(x, vec!["1", "3"]), (y, vec!["2", "5"]), (z, vec!["4"])];
    let expected: std::collections::BTreeMap<String, Vec<String>> = expected
        .into_iter()
        .map(|(c, v)| (c.clone(), v.into_iter().map(String::from).collect()))
        .collect();
    assert_eq!(got, expected);
    // B subscribed to one of them: its messages only, in order.
    for n in ["1", "3"] {
        let received = tokio::time::timeout(Duration::from_secs(5), b_rx.recv())
            .await
            .expect("a message within 5 s")
            .unwrap();
        assert_eq!(
            (received.channel.as_str(), &*received.payload),
            (x.as_str(), n.as_bytes())
        );
    }

    // Unsubscribed at run time: no longer counted.
    a.unsubscribe(&Subscription::Channel(x.clone()))
        .await
        .unwrap();
    assert_eq!(b.publish(&[message(x, "6")]).await.unwrap(), [1]);
    let received = tokio::time::timeout(Duration::from_secs(5), b_rx.recv())
        .await
        .expect("a message within 5 s")
        .unwrap();
    assert_eq!(&*received.payload, b"6");
}
