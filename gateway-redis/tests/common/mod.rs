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

/// Starts a `redis-server` cluster node on `port`, its cluster state in `dir` (kept across
/// a restart in the same `dir`), and waits until it accepts connections.
pub(crate) async fn cluster_node(port: u16, dir: &std::path::Path) -> Child {
    std::fs::create_dir_all(dir).unwrap();
    let child = Command::new("redis-server")
        .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
        .args(["--save", "", "--appendonly", "no"])
        .args([
            "--cluster-enabled",
            "yes",
            "--cluster-config-file",
            "nodes.conf",
        ])
        .arg("--dir")
        .arg(dir)
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

/// Makes the nodes on `ports` one cluster of masters and waits until every node says it is
/// ok.
pub(crate) async fn create_cluster(ports: &[u16]) {
    let status = Command::new("redis-cli")
        .arg("--cluster")
        .arg("create")
        .args(ports.iter().map(|port| format!("127.0.0.1:{port}")))
        .arg("--cluster-yes")
        .stdout(Stdio::null())
        .status()
        .await
        .expect("redis-cli on PATH");
    assert!(status.success(), "redis-cli --cluster create failed");
    for port in ports {
        wait_for_cluster_ok(*port).await;
    }
}

/// Waits until the node on `port` reports `cluster_state:ok`.
pub(crate) async fn wait_for_cluster_ok(port: u16) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let info = Command::new("redis-cli")
            .args(["-p", &port.to_string(), "cluster", "info"])
            .output()
            .await
            .expect("redis-cli on PATH");
        if String::from_utf8_lossy(&info.stdout).contains("cluster_state:ok") {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "the cluster is not ok within 30 s"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
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

/// Where the scale-out tests run: a single Redis in each channel mode, and the Redis
/// Cluster (per-room mode, sharded pub/sub) that `scripts/test.sh` starts on 7000-7002.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Backend {
    Classic,
    PerRoom,
    Cluster,
}

/// The single Redis `scripts/test.sh` starts.
pub(crate) const REDIS: &str = "redis://127.0.0.1:6379";

/// The seed nodes of the cluster `scripts/test.sh` starts.
pub(crate) const CLUSTER: [&str; 3] = [
    "redis://127.0.0.1:7000",
    "redis://127.0.0.1:7001",
    "redis://127.0.0.1:7002",
];

impl Backend {
    /// `app` with a connected Redis adapter of this backend, on channel prefix `prefix`.
    pub(crate) async fn adapter(
        self,
        app: ws_gateway_core::GatewayApp,
        prefix: &str,
    ) -> ws_gateway_core::GatewayApp {
        use ws_gateway_redis::{RedisAdapter, RedisConfig};
        match self {
            Self::Classic | Self::PerRoom => {
                let mut config = RedisConfig::new(REDIS).prefix(prefix);
                if self == Self::PerRoom {
                    config = config.per_room();
                }
                let redis = RedisAdapter::connect(config)
                    .await
                    .expect("a redis-server on 127.0.0.1:6379 (scripts/test.sh starts one)");
                assert!(redis.is_connected());
                app.adapter(redis)
            }
            Self::Cluster => {
                let redis =
                    RedisAdapter::connect_cluster(RedisConfig::cluster(CLUSTER).prefix(prefix))
                        .await
                        .expect(
                            "a Redis Cluster on 127.0.0.1:7000-7002 (scripts/test.sh starts one)",
                        );
                assert!(redis.is_connected());
                app.adapter(redis)
            }
        }
    }
}

/// Runs each named `async fn(Backend)` as three tests, one per [`Backend`]:
/// `name::classic`, `name::per_room`, `name::cluster`.
#[macro_export]
macro_rules! on_every_backend {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn classic() {
                super::$name($crate::common::Backend::Classic).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn per_room() {
                super::$name($crate::common::Backend::PerRoom).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn cluster() {
                super::$name($crate::common::Backend::Cluster).await;
            }
        }
    )*};
}

/// Once every instance applied what every instance published before (a `fetch_clients`
/// round trip from each, which the others answer in order after everything it published
/// earlier on the same channels: the gateway's, and in per-room mode each of `rooms`'),
/// has each instance emit `end` to its own clients of `path`: a client's frames before its
/// `end` are all it will ever get of that traffic.
pub(crate) async fn end_everywhere(
    instances: &[&ws_gateway_axum::test_client::TestServer],
    path: &str,
    rooms: &[&str],
) {
    for instance in instances {
        let server = instance.app().server(path).unwrap();
        server.broadcast().fetch_clients().await.unwrap();
        for room in rooms {
            server.to(room.to_string()).fetch_clients().await.unwrap();
        }
    }
    for instance in instances {
        let server = instance.app().server(path).unwrap();
        server.local().emit("end", &()).unwrap();
    }
}
