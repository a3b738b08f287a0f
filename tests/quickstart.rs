//! The quick start, as a new user meets it: a crate outside the workspace whose
//! `Cargo.toml` names the framework with one line (`ws-gateway`, by path here), whose
//! `main.rs` is the first Rust block of the facade's README (the crate documentation on
//! docs.rs) as written, built with cargo and run; then a real WebSocket client talks to it.

use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

/// Kills the server when the test ends, passed or not.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ sits in the workspace")
        .to_path_buf()
}

/// The first ```` ```rust ```` block of the README (`rust,no_run` included).
fn quick_start(readme: &str) -> String {
    let mut lines = readme.lines();
    lines
        .by_ref()
        .find(|line| line.starts_with("```rust"))
        .expect("the README has a Rust block");
    let code: Vec<&str> = lines.take_while(|line| !line.starts_with("```")).collect();
    code.join("\n") + "\n"
}

/// The `[dependencies]` block of the README, with the framework taken from this checkout.
fn dependencies(readme: &str, facade: &Path) -> String {
    let block = readme
        .split("```toml\n")
        .nth(1)
        .and_then(|rest| rest.split("```").next())
        .expect("the README has a toml block");
    assert_eq!(
        block
            .lines()
            .filter(|l| l.starts_with("ws-gateway"))
            .count(),
        1,
        "one line names the framework"
    );
    block.replace(
        "ws-gateway = \"0.1\"",
        &format!(
            "ws-gateway = {{ path = {:?} }}",
            facade.display().to_string()
        ),
    )
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("an ephemeral port")
}

#[tokio::test(flavor = "multi_thread")]
async fn the_quick_start_builds_and_serves() {
    let root = workspace();
    let readme = std::fs::read_to_string(root.join("gateway/README.md")).expect("the README");
    let dir = root.join("target/quickstart");
    std::fs::create_dir_all(dir.join("src")).expect("the crate's directory");
    let manifest = format!(
        "[package]\nname = \"quickstart\"\nversion = \"0.1.0\"\nedition = \"2024\"\npublish = false\n\n\
         {}\n# Not a member of the framework's workspace.\n[workspace]\n",
        dependencies(&readme, &root.join("gateway"))
    );
    std::fs::write(dir.join("Cargo.toml"), manifest).expect("Cargo.toml");
    let code = quick_start(&readme);
    assert!(
        code.contains("127.0.0.1:3000"),
        "the quick start listens on :3000"
    );
    // Port 3000 may be taken on a test machine: the same code on a free port.
    let port = free_port();
    let code = code.replace("127.0.0.1:3000", &format!("127.0.0.1:{port}"));
    std::fs::write(dir.join("src/main.rs"), code).expect("main.rs");
    // The workspace's lock file, so that the crate builds with the versions tested here.
    std::fs::copy(root.join("Cargo.lock"), dir.join("Cargo.lock")).expect("Cargo.lock");

    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let build = Command::new(&cargo)
        .args(["build", "--quiet", "--manifest-path"])
        .arg(dir.join("Cargo.toml"))
        .env("CARGO_TARGET_DIR", dir.join("target"))
        .env_remove("RUSTFLAGS")
        .status()
        .expect("cargo runs");
    assert!(build.success(), "the quick start builds");

    let server = Command::new(dir.join("target/debug/quickstart"))
        .stdout(Stdio::null())
        .spawn()
        .expect("the quick start starts");
    let _server = Running(server);

    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let deadline = Instant::now() + Duration::from_secs(30);
    let (mut ws, _) = loop {
        match tokio_tungstenite::connect_async(format!("ws://{addr}/chat")).await {
            Ok(connected) => break connected,
            Err(err) if Instant::now() < deadline => {
                let _ = err;
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err(err) => panic!("the quick start never listened on {addr}: {err}"),
        }
    };
    let request = json!({"event": "events", "data": {"hello": 1}});
    ws.send(Message::text(request.to_string()))
        .await
        .expect("sent");
    let reply = tokio::time::timeout(Duration::from_secs(10), ws.next())
        .await
        .expect("a reply in time")
        .expect("the socket stays open")
        .expect("a frame");
    let reply: Value = serde_json::from_str(reply.to_text().expect("text")).expect("JSON");
    assert_eq!(reply, request);
}
