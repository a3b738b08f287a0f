//! What the Redis tests share: a private `redis-server` for the tests that take Redis away,
//! unique channel prefixes, waiting for a condition.

// Each test target uses part of this module.
#![allow(dead_code)]

use std::net::TcpListener;
use std::process::Stdio;
use std::time::Duration;

use tokio::process::{Child, Command};
use tokio::time::Instant;

/// A port nothing listens on right now.
pub(crate) fn spare_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

/// Starts `redis-server` on `port` and waits until it accepts connections.
pub(crate) async fn redis_server(port: u16) -> Child {
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

/// Polls `condition` every 20 ms until it holds, failing with `what` after 30 s.
pub(crate) async fn wait_for(what: &str, mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !condition() {
        assert!(Instant::now() < deadline, "{what}: not within 30 s");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A channel prefix no other test (nor another run of this one) uses: `<what>-<hex>`.
pub(crate) fn unique_prefix(what: &str) -> String {
    use std::hash::{BuildHasher, Hasher};
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos(),
    );
    format!("{what}-{:016x}", hasher.finish())
}

/// Once every instance applied what every instance published before (a `fetch_clients`
/// round trip from each, which the others answer in order after everything it published
/// earlier), has each instance emit `end` to its own clients of `path`: a client's frames
/// before its `end` are all it will ever get of that traffic.
pub(crate) async fn end_everywhere(
    instances: &[&ws_gateway_axum::test_client::TestServer],
    path: &str,
) {
    for instance in instances {
        let server = instance.app().server(path).unwrap();
        server.broadcast().fetch_clients().await.unwrap();
    }
    for instance in instances {
        let server = instance.app().server(path).unwrap();
        server.local().emit("end", &()).unwrap();
    }
}
