//! The soak's own `redis-server`, for `--restart-redis-at`: a Redis that other programs on
//! the machine (the shared one on 6379, other test runs) do not use, so that killing it
//! disturbs no one. Started as `gateway-redis/tests/faults.rs` starts its own: a spare
//! port on 127.0.0.1, nothing persisted (a restart comes back empty, as after a crash of
//! a Redis without persistence).

use std::process::Stdio;
use std::time::Duration;

use tokio::process::{Child, Command};
use tokio::time::Instant;

/// A `redis-server` process the soak started, killed when dropped.
pub(crate) struct RedisServer {
    port: u16,
    process: Child,
}

impl RedisServer {
    /// Starts `redis-server` (from `PATH`) on a spare port and waits until it accepts
    /// connections.
    pub(crate) async fn start() -> Result<Self, String> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|listener| listener.local_addr())
            .map_err(|err| format!("no spare port for redis-server: {err}"))?
            .port();
        let process = spawn(port).await?;
        Ok(Self { port, process })
    }

    /// Its URL, for the instances.
    pub(crate) fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Kills it (SIGKILL: a crash, no goodbye to its clients).
    pub(crate) async fn kill(&mut self) -> Result<(), String> {
        self.process
            .kill()
            .await
            .map_err(|err| format!("cannot kill redis-server: {err}"))
    }

    /// Starts it again on the same port, empty.
    pub(crate) async fn restart(&mut self) -> Result<(), String> {
        self.process = spawn(self.port).await?;
        Ok(())
    }
}

async fn spawn(port: u16) -> Result<Child, String> {
    let process = Command::new("redis-server")
        .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
        .args(["--save", "", "--appendonly", "no"])
        .stdout(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .map_err(|err| {
            format!("cannot start redis-server (needed by --restart-redis-at): {err}")
        })?;
    let deadline = Instant::now() + Duration::from_secs(10);
    while tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .is_err()
    {
        if Instant::now() > deadline {
            return Err(format!(
                "redis-server did not listen on port {port} within 10 s"
            ));
        }
        // Polling a port that is not open yet: no event to wait on.
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Ok(process)
}
