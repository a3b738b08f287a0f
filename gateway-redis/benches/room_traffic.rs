//! What each instance receives from Redis, classic vs per-room mode (issue 16): four
//! instances of an app, 200 rooms spread over them (each room's members on one or two
//! instances), 100 room emits per room, each from a member (`client.to(room)`: the
//! others), as a chat sends them.
//!
//! Run: `cargo bench -p ws-gateway-redis --bench room_traffic` (Redis on 127.0.0.1:6379, or
//! set `REDIS_URL`). Each instance reaches Redis through its own counting TCP proxy, so the
//! figures are the bytes Redis wrote to that instance's connections (subscriber and
//! publisher: pushed messages, command replies), RESP framing included, counted from just
//! before the first emit until every member received every emit. Printed per mode and per
//! spread (the share of rooms whose members are on two instances), with the ratio.

#![allow(
    missing_docs,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::print_stdout,
    clippy::print_stderr
)]

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use ws_gateway_core::prelude::*;
use ws_gateway_core::transport::Outbound;
use ws_gateway_core::{App, Handshake};
use ws_gateway_redis::{ChannelMode, RedisAdapter, RedisConfig};

const ROOMS: usize = 200;
const EMITS_PER_ROOM: usize = 100;
const MEMBERS_PER_HOST: usize = 2;

static RUN: AtomicU64 = AtomicU64::new(0);

#[websocket_gateway(path = "/traffic")]
struct Traffic;

#[websocket_gateway]
impl Traffic {}

/// A TCP proxy to `upstream` on a port of its own; counts the bytes from upstream.
async fn counting_proxy(upstream: String) -> (u16, Arc<AtomicU64>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let received = Arc::new(AtomicU64::new(0));
    let counter = Arc::clone(&received);
    tokio::spawn(async move {
        loop {
            let Ok((client, _)) = listener.accept().await else {
                return;
            };
            let server = TcpStream::connect(&upstream).await.unwrap();
            let (mut client_read, mut client_write) = client.into_split();
            let (mut server_read, mut server_write) = server.into_split();
            tokio::spawn(async move {
                let _ = tokio::io::copy(&mut client_read, &mut server_write).await;
            });
            let counter = Arc::clone(&counter);
            tokio::spawn(async move {
                let mut buf = vec![0; 64 * 1024];
                loop {
                    match server_read.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => {
                            counter.fetch_add(n as u64, Ordering::Relaxed);
                            if client_write.write_all(&buf[..n]).await.is_err() {
                                return;
                            }
                        }
                    }
                }
            });
        }
    });
    (port, received)
}

/// The instances (of `instances`) hosting room `room`: one, or two for the first
/// `two_hosts` of every 100.
fn hosts(instances: usize, room: usize, two_hosts: usize) -> Vec<usize> {
    let first = room % instances;
    if room % 100 < two_hosts {
        vec![first, (first + 1) % instances]
    } else {
        vec![first]
    }
}

/// Bytes each instance received from Redis during the emits.
async fn run(upstream: &str, instances: usize, mode: ChannelMode, two_hosts: usize) -> Vec<u64> {
    // Short, as an app's would be (it is in every channel name), and this run's own.
    let prefix = format!("rt{}", RUN.fetch_add(1, Ordering::Relaxed));
    let mut apps: Vec<App> = Vec::new();
    let mut counters = Vec::new();
    for _ in 0..instances {
        let (port, received) = counting_proxy(upstream.to_owned()).await;
        let config = RedisConfig::new(format!("redis://127.0.0.1:{port}")).prefix(prefix.clone());
        let config = if mode == ChannelMode::PerRoom {
            config.per_room()
        } else {
            config
        };
        let redis = RedisAdapter::connect(config).await.unwrap();
        apps.push(
            GatewayApp::new()
                .adapter(redis)
                .gateway::<Traffic>()
                .build()
                .unwrap(),
        );
        counters.push(received);
    }
    // Members, their queues drained by counting tasks.
    let delivered = Arc::new(AtomicU64::new(0));
    let mut senders = Vec::new();
    let mut clients = Vec::new();
    let mut expected = 0u64;
    for room in 0..ROOMS {
        let hosts = hosts(instances, room, two_hosts);
        // Every member but the sender receives each emit.
        expected += ((hosts.len() * MEMBERS_PER_HOST - 1) * EMITS_PER_ROOM) as u64;
        for host in hosts {
            for _ in 0..MEMBERS_PER_HOST {
                let (client, mut queue) = apps[host].gateways()[0].open(Handshake::default(), 1024);
                client.join_synced(format!("room-{room}")).await.unwrap();
                let delivered = Arc::clone(&delivered);
                tokio::spawn(async move {
                    while let Some(out) = queue.recv().await {
                        if matches!(out, Outbound::Frame(_)) {
                            delivered.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                });
                if senders.len() == room {
                    senders.push(client.clone());
                }
                clients.push(client);
            }
        }
    }
    for app in &apps {
        app.server("/traffic").unwrap().synced().await;
    }
    let before: Vec<u64> = counters.iter().map(|c| c.load(Ordering::Relaxed)).collect();
    let text = "x".repeat(100);
    for n in 0..EMITS_PER_ROOM {
        for (room, sender) in senders.iter().enumerate() {
            sender
                .to(format!("room-{room}"))
                .emit("said", &(n, &text))
                .unwrap();
        }
        // Paced, so that the publish queues never overflow.
        tokio::task::yield_now().await;
    }
    let deadline = Instant::now() + Duration::from_secs(120);
    while delivered.load(Ordering::Relaxed) < expected {
        assert!(Instant::now() < deadline, "not every emit was delivered");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // What is still on its way to the instances (the senders' own copies) arrives with
    // the replies to one request per instance.
    for app in &apps {
        let _ = app
            .server("/traffic")
            .unwrap()
            .broadcast()
            .fetch_clients()
            .await;
    }
    let got = counters
        .iter()
        .zip(before)
        .map(|(c, before)| c.load(Ordering::Relaxed) - before)
        .collect();
    drop(clients);
    got
}

fn mib(bytes: u64) -> String {
    format!("{:.2} MiB", bytes as f64 / (1024.0 * 1024.0))
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let url = std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into());
    let upstream = url
        .trim_start_matches("redis://")
        .trim_end_matches('/')
        .to_owned();
    println!(
        "{ROOMS} rooms, {EMITS_PER_ROOM} emits per room from a member (100-byte text), \
         {MEMBERS_PER_HOST} members per hosting instance; bytes each instance received from Redis"
    );
    println!(
        "| instances | rooms on two instances | mode | per instance (min..max) | total | per-room / classic |"
    );
    println!("|---|---|---|---|---|---|");
    for (instances, two_hosts) in [(4, 0), (4, 25), (4, 50), (4, 100), (8, 50)] {
        let classic = run(&upstream, instances, ChannelMode::Classic, two_hosts).await;
        let per_room = run(&upstream, instances, ChannelMode::PerRoom, two_hosts).await;
        let total = |v: &[u64]| v.iter().sum::<u64>();
        let range = |v: &[u64]| {
            format!(
                "{}..{}",
                mib(*v.iter().min().unwrap()),
                mib(*v.iter().max().unwrap())
            )
        };
        let ratio = total(&per_room) as f64 / total(&classic) as f64;
        println!(
            "| {instances} | {two_hosts}% | classic | {} | {} | |",
            range(&classic),
            mib(total(&classic))
        );
        println!(
            "| {instances} | {two_hosts}% | per-room | {} | {} | {:.1}% |",
            range(&per_room),
            mib(total(&per_room)),
            ratio * 100.0
        );
    }
}
