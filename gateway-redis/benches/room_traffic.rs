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
//!
//! With `REDIS_CLUSTER=127.0.0.1:7000,127.0.0.1:7001,127.0.0.1:7002` (the test script's
//! cluster) it also runs on a Redis Cluster (per-room mode, the only one there), where an
//! instance talks to every shard and a proxy cannot stand in the way of the redirections:
//! there the figures are what each shard wrote in all (`INFO stats`' `total_net_output_bytes`, before and after), so the total over
//! the shards divided by the instances is what an instance received on average.

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

/// Where the instances reach Redis, and what is counted.
enum Backend<'a> {
    /// One Redis at this address: bytes per instance, through a proxy each.
    Single(&'a str),
    /// A Redis Cluster of these nodes: bytes per shard, from the shards' own counters.
    Cluster(&'a [String]),
}

fn traffic_app(adapter: impl ws_gateway_core::adapter::Adapter) -> App {
    GatewayApp::new()
        .adapter(adapter)
        .gateway::<Traffic>()
        .build()
        .unwrap()
}

/// What a shard wrote to its clients so far.
async fn net_output(node: &str) -> u64 {
    let client = redis::Client::open(format!("redis://{node}")).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let info: String = redis::cmd("INFO")
        .arg("stats")
        .query_async(&mut conn)
        .await
        .unwrap();
    info.lines()
        .find_map(|line| line.strip_prefix("total_net_output_bytes:"))
        .and_then(|n| n.trim().parse().ok())
        .unwrap()
}

/// Bytes each instance (one Redis) or each shard (a cluster) sent during the emits.
async fn run(
    backend: &Backend<'_>,
    instances: usize,
    mode: ChannelMode,
    two_hosts: usize,
) -> Vec<u64> {
    // Short, as an app's would be (it is in every channel name), and this run's own.
    let prefix = format!("rt{}", RUN.fetch_add(1, Ordering::Relaxed));
    let mut apps: Vec<App> = Vec::new();
    let mut counters = Vec::new();
    for _ in 0..instances {
        let app = match backend {
            Backend::Single(upstream) => {
                let (port, received) = counting_proxy((*upstream).to_owned()).await;
                counters.push(received);
                let config =
                    RedisConfig::new(format!("redis://127.0.0.1:{port}")).prefix(prefix.clone());
                let config = if mode == ChannelMode::PerRoom {
                    config.per_room()
                } else {
                    config
                };
                traffic_app(RedisAdapter::connect(config).await.unwrap())
            }
            Backend::Cluster(nodes) => {
                let config = RedisConfig::cluster(nodes.iter().map(|n| format!("redis://{n}")))
                    .prefix(prefix.clone());
                let config = if mode == ChannelMode::PerRoom {
                    config.per_room()
                } else {
                    config
                };
                traffic_app(RedisAdapter::connect_cluster(config).await.unwrap())
            }
        };
        apps.push(app);
    }
    let shards = match backend {
        Backend::Single(_) => Vec::new(),
        Backend::Cluster(nodes) => nodes.to_vec(),
    };
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
    let mut shards_before = Vec::new();
    for node in &shards {
        shards_before.push(net_output(node).await);
    }
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
    let mut got: Vec<u64> = counters
        .iter()
        .zip(before)
        .map(|(c, before)| c.load(Ordering::Relaxed) - before)
        .collect();
    for (node, before) in shards.iter().zip(shards_before) {
        got.push(net_output(node).await - before);
    }
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
    let mut classic_totals = std::collections::HashMap::new();
    for (instances, two_hosts) in [(4, 0), (4, 25), (4, 50), (4, 100), (8, 50)] {
        let backend = Backend::Single(&upstream);
        let classic = run(&backend, instances, ChannelMode::Classic, two_hosts).await;
        let per_room = run(&backend, instances, ChannelMode::PerRoom, two_hosts).await;
        let total = |v: &[u64]| v.iter().sum::<u64>();
        let range = |v: &[u64]| {
            format!(
                "{}..{}",
                mib(*v.iter().min().unwrap()),
                mib(*v.iter().max().unwrap())
            )
        };
        let ratio = total(&per_room) as f64 / total(&classic) as f64;
        classic_totals.insert((instances, two_hosts), total(&classic));
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
    let Ok(nodes) = std::env::var("REDIS_CLUSTER") else {
        return;
    };
    let nodes: Vec<String> = nodes.split(',').map(str::to_owned).collect();
    println!();
    println!(
        "Redis Cluster of {} shards (per-room mode, the only one on a cluster): bytes each shard \
         wrote to the instances",
        nodes.len()
    );
    println!(
        "| instances | rooms on two instances | per shard | total | per instance (average) | total / one Redis classic |"
    );
    println!("|---|---|---|---|---|---|");
    for (instances, two_hosts) in [(4, 0), (4, 25), (4, 50), (4, 100)] {
        let bytes = run(
            &Backend::Cluster(&nodes),
            instances,
            ChannelMode::PerRoom,
            two_hosts,
        )
        .await;
        let total: u64 = bytes.iter().sum();
        let shards = bytes
            .iter()
            .map(|b| mib(*b))
            .collect::<Vec<_>>()
            .join(" / ");
        let ratio = classic_totals
            .get(&(instances, two_hosts))
            .map_or(String::new(), |classic| {
                format!("{:.1}%", total as f64 * 100.0 / *classic as f64)
            });
        println!(
            "| {instances} | {two_hosts}% | {shards} | {} | {} | {ratio} |",
            mib(total),
            mib(total / instances as u64),
        );
    }
}
