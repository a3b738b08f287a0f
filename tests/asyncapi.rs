//! The chat example's AsyncAPI document, validated by the official AsyncAPI parser
//! (npm's `@asyncapi/parser`, run by node from `tests/asyncapi`; `./scripts/test.sh` runs
//! `npm ci` there).

use std::path::Path;
use std::process::Stdio;

use chat::auth::AuthService;
use tokio::io::AsyncWriteExt;

fn document() -> serde_json::Value {
    let app = chat::app_with(AuthService::new("asyncapi-secret"))
        .build()
        .unwrap();
    chat::asyncapi(&app)
}

#[test]
fn the_document_describes_every_event_with_its_types() {
    let doc = document();
    assert_eq!(doc["asyncapi"], "3.0.0");
    assert_eq!(doc["channels"]["chat"]["address"], "/chat");
    assert_eq!(doc["channels"]["auth"]["address"], "/auth");
    for event in [
        "events", "identity", "join", "leave", "message", "whoami", "history",
    ] {
        let operation = &doc["operations"][format!("chat.{event}")];
        assert_eq!(operation["action"], "receive", "{event}");
    }
    let message = &doc["components"]["messages"]["chat.message"]["payload"]["properties"];
    assert_eq!(message["event"]["const"], "message");
    assert_eq!(message["data"]["$ref"], "#/components/schemas/SendMessage");
    let send = &doc["components"]["schemas"]["SendMessage"];
    assert_eq!(send["properties"]["text"]["minLength"], 1);
    assert_eq!(send["properties"]["text"]["maxLength"], 500);
    // `message` answers nothing: no reply; `join` answers `{"room": ...}`.
    assert!(doc["operations"]["chat.message"].get("reply").is_none());
    let joined = &doc["components"]["messages"]["chat.join.reply"]["payload"]["properties"];
    assert_eq!(joined["data"]["$ref"], "#/components/schemas/RoomRef");
    // The password hash is not part of the reply's schema either.
    let user = &doc["components"]["schemas"]["User"];
    assert!(user["properties"].get("password_hash").is_none(), "{user}");
}

#[tokio::test]
async fn the_official_parser_accepts_the_document() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("asyncapi");
    assert!(
        dir.join("node_modules/@asyncapi/parser").exists(),
        "run `npm ci` in {} (./scripts/test.sh does)",
        dir.display()
    );
    let mut node = tokio::process::Command::new("node")
        .arg("validate.mjs")
        .current_dir(&dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("node runs");
    let text = serde_json::to_vec(&document()).unwrap();
    let mut stdin = node.stdin.take().unwrap();
    stdin.write_all(&text).await.unwrap();
    drop(stdin);
    let out = node.wait_with_output().await.unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains(r#""valid":true"#), "{stdout}");
}
