//! The integration tests of the gateway workspace live beside this file, one target per
//! topic (`chat_roundtrip.rs`, `protocol.rs`, `lifecycle.rs`, `pipeline.rs`, ...); the
//! compile-fail and pass cases of the macros are under `ui/`. Run them all with
//! `./scripts/test.sh`, which also starts what they need.
//!
//! What several targets share lives here.

use std::net::SocketAddr;
use std::time::Duration;

use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// `POST path` with a JSON body to `addr` over a plain TCP socket (`connection: close`):
/// the status and the body (`null` when it is not JSON). Panics when no answer comes
/// within 30 s.
///
/// # Panics
///
/// When the server cannot be reached, does not answer in time, or answers no HTTP.
#[expect(clippy::unwrap_used, clippy::expect_used, reason = "a test helper")]
pub async fn post_json(addr: SocketAddr, path: &str, body: &Value) -> (u16, Value) {
    let body = body.to_string();
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let request = format!(
        "POST {path} HTTP/1.1\r\nhost: localhost\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut response = String::new();
    tokio::time::timeout(
        Duration::from_secs(30),
        stream.read_to_string(&mut response),
    )
    .await
    .expect("no answer within 30 s")
    .unwrap();
    let status = response[9..12].parse().unwrap();
    let (_, body) = response.split_once("\r\n\r\n").unwrap();
    (status, serde_json::from_str(body).unwrap_or(Value::Null))
}

/// A TCP proxy in front of a server that can take its clients offline, as a network fault
/// does: [`cut`](Self::cut) drops every connection it carries (no closing handshake reaches
/// either side) and refuses new ones until [`restore`](Self::restore).
pub struct CutProxy {
    addr: SocketAddr,
    state: std::sync::Arc<ProxyState>,
    accept: tokio::task::JoinHandle<()>,
}

#[derive(Default)]
struct ProxyState {
    offline: std::sync::atomic::AtomicBool,
    links: std::sync::Mutex<Vec<tokio::task::AbortHandle>>,
}

impl CutProxy {
    /// A proxy on a free port of 127.0.0.1 forwarding to `target`.
    ///
    /// # Panics
    ///
    /// When no port is free.
    #[expect(clippy::unwrap_used, reason = "a test helper")]
    pub async fn start(target: SocketAddr) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let state = std::sync::Arc::new(ProxyState::default());
        let shared = std::sync::Arc::clone(&state);
        let accept = tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                if shared.offline.load(std::sync::atomic::Ordering::SeqCst) {
                    drop(inbound);
                    continue;
                }
                let link = tokio::spawn(async move {
                    if let Ok(mut outbound) = tokio::net::TcpStream::connect(target).await {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                    }
                });
                let mut links = shared.links.lock().unwrap();
                links.retain(|l| !l.is_finished());
                links.push(link.abort_handle());
            }
        });
        Self {
            addr,
            state,
            accept,
        }
    }

    /// The address clients connect to.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Drops every connection and refuses new ones.
    ///
    /// # Panics
    ///
    /// Never in practice (a poisoned lock).
    #[expect(clippy::unwrap_used, reason = "a test helper")]
    pub fn cut(&self) {
        self.state
            .offline
            .store(true, std::sync::atomic::Ordering::SeqCst);
        for link in self.state.links.lock().unwrap().drain(..) {
            link.abort();
        }
    }

    /// Accepts connections again.
    pub fn restore(&self) {
        self.state
            .offline
            .store(false, std::sync::atomic::Ordering::SeqCst);
    }
}

impl Drop for CutProxy {
    fn drop(&mut self) {
        self.accept.abort();
        self.cut();
    }
}

/// A node script driven over stdin/stdout, one JSON object per line each way.
pub struct NodeScript {
    _child: tokio::process::Child,
    stdin: tokio::process::ChildStdin,
    lines: tokio::io::Lines<tokio::io::BufReader<tokio::process::ChildStdout>>,
    backlog: std::collections::VecDeque<Value>,
}

impl NodeScript {
    /// Runs `node <script>` in `tests/node`, whose `node_modules` `npm ci` installed.
    ///
    /// # Panics
    ///
    /// When the packages are not installed or node cannot be run.
    #[expect(clippy::unwrap_used, clippy::expect_used, reason = "a test helper")]
    pub fn spawn(script: &str) -> Self {
        use tokio::io::AsyncBufReadExt;
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("node");
        assert!(
            dir.join("node_modules/ws").is_dir(),
            "run `npm ci` in {} (./scripts/test.sh does)",
            dir.display()
        );
        let mut child = tokio::process::Command::new("node")
            .arg(script)
            .current_dir(&dir)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .expect("node must be installed");
        let stdin = child.stdin.take().unwrap();
        let lines = tokio::io::BufReader::new(child.stdout.take().unwrap()).lines();
        Self {
            _child: child,
            stdin,
            lines,
            backlog: std::collections::VecDeque::new(),
        }
    }

    /// Writes one command.
    ///
    /// # Panics
    ///
    /// When the script exited.
    #[expect(clippy::unwrap_used, reason = "a test helper")]
    pub async fn send(&mut self, command: Value) {
        let line = format!("{command}\n");
        self.stdin.write_all(line.as_bytes()).await.unwrap();
        self.stdin.flush().await.unwrap();
    }

    /// The first report matching `pred` within `timeout`; the others stay for later calls.
    ///
    /// # Panics
    ///
    /// When none comes in time, the script exits, or writes a line that is not JSON.
    #[expect(clippy::unwrap_used, clippy::expect_used, reason = "a test helper")]
    pub async fn next_where(&mut self, timeout: Duration, pred: impl Fn(&Value) -> bool) -> Value {
        if let Some(at) = self.backlog.iter().position(&pred) {
            return self.backlog.remove(at).unwrap();
        }
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let line = tokio::time::timeout_at(deadline, self.lines.next_line())
                .await
                .unwrap_or_else(|_| panic!("timed out; reports so far: {:?}", self.backlog))
                .unwrap()
                .expect("the node script exited");
            let report: Value =
                serde_json::from_str(&line).unwrap_or_else(|_| panic!("not JSON: {line}"));
            if pred(&report) {
                return report;
            }
            self.backlog.push_back(report);
        }
    }

    /// Every report read so far and not yet returned.
    pub fn backlog(&self) -> &std::collections::VecDeque<Value> {
        &self.backlog
    }
}
