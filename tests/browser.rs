//! The chat page in headless Chromium: two pages log in, join a room, chat, one sees a
//! validation error under its input, one asks a quick poll that the other answers, and one
//! goes offline, misses messages and shows each once when it is back. Driven by npm's
//! `playwright-core` from `tests/browser` (`./scripts/test.sh` installs Debian's chromium and
//! runs `npm ci`).
//! Screenshots land in `target/e2e/`.

use std::path::Path;

use chat::auth::AuthService;
use ws_gateway_axum::test_client::TestServer;

#[tokio::test]
async fn two_pages_chat_in_chromium() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("browser");
    assert!(
        dir.join("node_modules/playwright-core").exists(),
        "run `npm ci` in {} (./scripts/test.sh does)",
        dir.display()
    );
    let chromium = std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    assert!(
        Path::new(&chromium).exists(),
        "install Chromium (`apt-get install chromium`; ./scripts/test.sh does) or set CHROMIUM"
    );
    let shots = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/e2e");
    std::fs::create_dir_all(&shots).unwrap();

    let auth = AuthService::new("browser-secret");
    let app = chat::app_with(auth.clone()).build().unwrap();
    let router = chat::router(&app, auth);
    let server = TestServer::start_router(app, router).await.unwrap();
    let base = format!("http://{}/", server.addr());

    let out = tokio::process::Command::new("node")
        .arg("chat.mjs")
        .arg(&base)
        .arg(&shots)
        .env("CHROMIUM", &chromium)
        .current_dir(&dir)
        .output()
        .await
        .expect("node runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains(r#""ok":true"#), "{stdout}");
    assert!(
        stdout.contains("text length must be between 1 and 500"),
        "{stdout}"
    );
    assert!(stdout.contains("bob: Yes please"), "{stdout}");
    assert!(stdout.contains("nothing missed"), "{stdout}");
    for page in ["alice.png", "bob.png"] {
        let size = std::fs::metadata(shots.join(page)).unwrap().len();
        assert!(size > 1000, "{page} is {size} bytes");
    }
}
