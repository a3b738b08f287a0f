//! The chat example's AsyncAPI document, validated by the official AsyncAPI parser
//! (npm's `@asyncapi/parser`, run by node from `tests/asyncapi`; `./scripts/test.sh` runs
//! `npm ci` there): the document the library builds, and the file `chat asyncapi >
//! asyncapi.json` writes.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, SystemTime};

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
        "events", "identity", "join", "leave", "message", "whoami", "history", "poll",
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
    // `poll`: the question bounded as `ValidationPipe` checks it, the reply with its answers.
    let ask = &doc["components"]["schemas"]["AskPoll"];
    assert_eq!(ask["properties"]["question"]["minLength"], 1);
    assert_eq!(ask["properties"]["question"]["maxLength"], 200);
    let result = &doc["components"]["messages"]["chat.poll.reply"]["payload"]["properties"];
    assert_eq!(result["data"]["$ref"], "#/components/schemas/PollResult");
    let answers = &doc["components"]["schemas"]["PollResult"]["properties"]["answers"];
    assert_eq!(answers["items"]["$ref"], "#/components/schemas/PollAnswer");
    // The server's `question`, sent with an acknowledgement number, and the answer it awaits.
    let question = &doc["operations"]["chat.question"];
    assert_eq!(question["action"], "send");
    assert_eq!(
        question["reply"]["messages"][0]["$ref"],
        "#/channels/chat/messages/question.answer"
    );
    let sent = &doc["components"]["messages"]["chat.question"]["payload"];
    assert_eq!(sent["properties"]["event"]["const"], "question");
    assert_eq!(
        sent["properties"]["data"]["$ref"],
        "#/components/schemas/Question"
    );
    assert_eq!(sent["properties"]["ack"]["type"], "integer");
    assert_eq!(
        doc["components"]["schemas"]["Question"]["required"],
        serde_json::json!(["question", "from"])
    );
    let answer = &doc["components"]["messages"]["chat.question.answer"]["payload"];
    assert_eq!(answer["required"], serde_json::json!(["ack"]));
    // The password hash is not part of the reply's schema either.
    let user = &doc["components"]["schemas"]["User"];
    assert!(user["properties"].get("password_hash").is_none(), "{user}");
}

/// What the validator reads.
enum Input<'a> {
    /// This text, on its standard input.
    Stdin(&'a [u8]),
    /// This file, named as its argument.
    File(&'a Path),
}

/// Runs `tests/asyncapi/validate.mjs` on `input` and fails unless the official parser
/// accepts it as an AsyncAPI document in JSON.
async fn validate(input: Input<'_>) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("asyncapi");
    assert!(
        dir.join("node_modules/@asyncapi/parser").exists(),
        "run `npm ci` in {} (./scripts/test.sh does)",
        dir.display()
    );
    let mut command = tokio::process::Command::new("node");
    command
        .arg("validate.mjs")
        .current_dir(&dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if let Input::File(file) = input {
        command.arg(file);
    }
    let mut node = command.spawn().expect("node runs");
    let mut stdin = node.stdin.take().unwrap();
    if let Input::Stdin(text) = input {
        stdin.write_all(text).await.unwrap();
    }
    drop(stdin);
    let out = tokio::time::timeout(Duration::from_secs(60), node.wait_with_output())
        .await
        .expect("the validator finishes within a minute")
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains(r#""valid":true"#), "{stdout}");
}

#[tokio::test]
async fn the_official_parser_accepts_the_document() {
    validate(Input::Stdin(&serde_json::to_vec(&document()).unwrap())).await;
}

/// The chat binary `cargo test --workspace` (`./scripts/test.sh`) builds beside this test,
/// in the same `target/<profile>/` and with the same features (the chat package's own tests
/// need it). Run alone (`cargo test -p gateway-tests`), this test refuses a binary older
/// than the sources it is built from rather than validate a stale one.
fn chat_binary() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    // target/<profile>/deps/asyncapi-<hash>
    let profile_dir = exe.parent().and_then(Path::parent).unwrap();
    let binary = profile_dir.join(format!("chat{}", std::env::consts::EXE_SUFFIX));
    let build = "build it with `cargo build -p chat`, or run `cargo test --workspace`";
    let built = std::fs::metadata(&binary)
        .and_then(|meta| meta.modified())
        .unwrap_or_else(|err| panic!("no chat binary at {}: {err}; {build}", binary.display()));
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    // What the binary is compiled from: the chat package and the framework crates.
    let sources = [
        "examples/chat/Cargo.toml",
        "examples/chat/src",
        "examples/chat/static",
        "gateway/Cargo.toml",
        "gateway/src",
        "gateway-core/Cargo.toml",
        "gateway-core/src",
        "gateway-axum/Cargo.toml",
        "gateway-axum/src",
        "gateway-macros/Cargo.toml",
        "gateway-macros/src",
        "gateway-redis/Cargo.toml",
        "gateway-redis/src",
    ];
    for source in sources {
        let (modified, path) = newest_file(&root.join(source));
        assert!(
            modified <= built,
            "the chat binary {} is older than {}; {build}",
            binary.display(),
            path.display()
        );
    }
    binary
}

/// `path` itself if it is a file, else the most recently modified file under it, with when.
fn newest_file(path: &Path) -> (SystemTime, PathBuf) {
    let meta = std::fs::metadata(path).unwrap();
    if !meta.is_dir() {
        return (meta.modified().unwrap(), path.to_owned());
    }
    std::fs::read_dir(path)
        .unwrap()
        .map(|entry| newest_file(&entry.unwrap().path()))
        .max()
        .unwrap_or((SystemTime::UNIX_EPOCH, path.to_owned()))
}

/// `chat asyncapi > asyncapi.json`, as a shell runs it: standard output to a file, logging
/// on. The file must be the document itself, and one the official parser accepts.
#[tokio::test]
async fn the_official_parser_accepts_what_chat_asyncapi_writes() {
    let file = Path::new(env!("CARGO_TARGET_TMPDIR")).join("chat-asyncapi.json");
    let status = tokio::process::Command::new(chat_binary())
        .arg("asyncapi")
        .env("RUST_LOG", "debug")
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&file).unwrap())
        .stderr(Stdio::null())
        .status();
    let status = tokio::time::timeout(Duration::from_secs(60), status)
        .await
        .expect("chat asyncapi exits within a minute")
        .unwrap();
    assert!(status.success(), "{status}");
    let written: serde_json::Value = serde_json::from_slice(&std::fs::read(&file).unwrap())
        .expect("the file is one JSON document");
    assert_eq!(written, document());
    validate(Input::File(&file)).await;
}

/// A gateway path with parameters, for the document's channel `parameters`.
#[ws_gateway_core::websocket_gateway(path = "/t/{tenant}/rooms/{id}")]
struct TenantRooms;

#[ws_gateway_core::websocket_gateway]
impl TenantRooms {
    #[subscribe("which")]
    fn which(&self, ws_gateway_core::WsParam(id): ws_gateway_core::WsParam<u64>) -> u64 {
        id
    }
}

/// The address keeps the gateway path, each of its parameters declared in the channel's
/// `parameters`, as AsyncAPI 3 describes them; the official parser accepts the document.
#[tokio::test]
async fn a_path_with_parameters_is_an_address_with_parameters() {
    use ws_gateway_core::asyncapi::{Info, document};

    let app = ws_gateway_core::GatewayApp::new()
        .gateway::<TenantRooms>()
        .build()
        .unwrap();
    let doc = document(&app, &Info::new("Rooms", "1.0.0"));
    let channel = &doc["channels"]["t.tenant.rooms.id"];
    assert_eq!(channel["address"], "/t/{tenant}/rooms/{id}");
    let parameters = channel["parameters"].as_object().unwrap();
    assert_eq!(parameters.len(), 2);
    assert!(
        parameters["id"]["description"]
            .as_str()
            .unwrap()
            .starts_with("The `id` segment"),
        "{channel}"
    );
    assert_eq!(
        doc["operations"]["t.tenant.rooms.id.which"]["channel"]["$ref"],
        "#/channels/t.tenant.rooms.id"
    );
    validate(Input::Stdin(&serde_json::to_vec(&doc).unwrap())).await;
}
