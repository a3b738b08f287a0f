//! Redis lost while running: the test starts its own `redis-server` on a spare port, kills
//! it, checks that local delivery goes on, starts it again and waits for cross-instance
//! delivery to resume, without restarting the app.

// Test helpers live outside `#[test]` fns, where clippy.toml's allowances do not reach.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::TcpListener;
use std::process::Stdio;
use std::time::Duration;

use gateway_axum::prelude::*;
use gateway_axum::test_client::{TestClient, TestError, TestServer};
use gateway_redis::{RedisAdapter, RedisConfig};
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::process::{Child, Command};
use tokio::time::Instant;

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
    fn join(&self, client: Client, room: String) -> WsResponse<String> {
        client.join(room.clone());
        WsResponse::new("joined", room)
    }

    #[subscribe("say")]
    fn say(&self, client: Client, say: Say) {
        client.to(say.room).emit("said", &say.n).ok();
    }
}

fn spare_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

/// Starts `redis-server` on `port` and waits until it answers.
async fn redis_server(port: u16) -> Child {
    let child = Command::new("redis-server")
        .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
        .args(["--save", "", "--appendonly", "no"])
        .stdout(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("redis-server on PATH (scripts/test.sh installs it)");
    let deadline = Instant::now() + Duration::from_secs(10);
    while tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .is_err()
    {
        assert!(Instant::now() < deadline, "redis-server did not start");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    child
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

async fn say(client: &mut TestClient, n: u32) {
    client
        .emit("say", &json!({"room": "room", "n": n}))
        .await
        .unwrap();
}

/// Says 1000, 1001, ... from `sender` until `receiver` gets one of them, or the deadline.
async fn until_delivered(sender: &mut TestClient, receiver: TestClient) -> TestClient {
    let mut receiver = receiver.with_timeout(Duration::from_millis(100));
    let deadline = Instant::now() + Duration::from_secs(30);
    for n in 1000.. {
        assert!(
            Instant::now() < deadline,
            "cross-instance delivery did not resume"
        );
        say(sender, n).await;
        match receiver.expect("said").await {
            Ok(Value::Number(got)) if got.as_u64() >= Some(1000) => break,
            Ok(other) => panic!("unexpected {other}"),
            Err(TestError::Timeout(..)) => {}
            Err(err) => panic!("{err}"),
        }
    }
    receiver.with_timeout(gateway_axum::test_client::DEFAULT_TIMEOUT)
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
    let mut local = member(&a).await;
    let mut remote = member(&b).await;
    say(&mut sender, 1).await;
    assert_eq!(local.expect("said").await.unwrap(), json!(1));
    assert_eq!(remote.expect("said").await.unwrap(), json!(1));

    // Redis dies: local delivery goes on.
    redis_process.kill().await.unwrap();
    for n in 2..=4 {
        say(&mut sender, n).await;
        assert_eq!(local.expect("said").await.unwrap(), json!(n));
    }
    // Both adapters notice (the subscriber connection closes).
    let deadline = Instant::now() + Duration::from_secs(10);
    while redis_a.is_connected() || redis_b.is_connected() {
        assert!(Instant::now() < deadline, "the outage went unnoticed");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    // Redis is back on the same port: both reconnect and resubscribe by themselves.
    let _redis_process = redis_server(port).await;
    let remote = until_delivered(&mut sender, remote).await;
    let mut remote = remote;
    // And the other direction too.
    let mut remote_sender = b.connect("/faults").await.unwrap();
    let mut local = local.with_timeout(Duration::from_millis(100));
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        assert!(Instant::now() < deadline, "B -> A did not resume");
        say(&mut remote_sender, 2000).await;
        match local.expect("said").await {
            Ok(got) if got == json!(2000) => break,
            Ok(_) | Err(TestError::Timeout(..)) => {}
            Err(err) => panic!("{err}"),
        }
    }
    assert!(redis_a.is_connected() && redis_b.is_connected());
    // Delivery after recovery is ordinary: one message, once.
    say(&mut sender, 3000).await;
    loop {
        let got = remote.expect("said").await.unwrap();
        if got == json!(3000) {
            break;
        }
        assert!(got.as_u64() < Some(3000), "{got}");
    }
}
