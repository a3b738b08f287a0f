//! The Socket.IO adapter against the real JavaScript client: npm's `socket.io-client`, run
//! by node (`tests/node/sio_client.mjs`, installed with `npm ci` in `tests/node`, which
//! `./scripts/test.sh` does), next to plain WebSocket clients of the same app.

use std::collections::VecDeque;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use futures_util::StreamExt;
use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, Lines};
use tokio::process::{Child, ChildStdin, ChildStdout, Command};
use ws_gateway_axum::prelude::*;
use ws_gateway_axum::test_client::{TestClient, TestServer};
use ws_gateway_axum::{SocketIoTransport, Transport};
use ws_gateway_core::{Args, Authenticator, HandshakeRequest, SendError};

const TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, Deserialize)]
struct Sum {
    a: i64,
    b: i64,
}

#[derive(Debug, Deserialize)]
struct Shout {
    room: String,
    text: String,
}

/// The gateway both kinds of clients talk to.
#[websocket_gateway(path = "/sio")]
struct SioGateway {
    server: WsServer,
}

#[websocket_gateway]
impl SioGateway {
    #[subscribe("echo")]
    async fn echo(&self, data: Value) -> Value {
        data
    }

    /// The data as the client wrote it (no DOM built, key order kept).
    #[subscribe("echo_raw")]
    fn echo_raw(&self, data: Box<RawValue>) -> Box<RawValue> {
        data
    }

    #[subscribe("add")]
    fn add(&self, body: Sum) -> i64 {
        body.a + body.b
    }

    /// Replies under another event: emitted, not an acknowledgement.
    #[subscribe("join")]
    fn join(&self, client: Client, room: String) -> Result<WsResponse<String>, RoomError> {
        client.join(room.clone())?;
        Ok(WsResponse::new("joined", room))
    }

    /// Everyone in the room, the sender included, receives `shout`.
    #[subscribe("shout")]
    fn shout(&self, body: Shout) -> usize {
        self.server
            .to(body.room)
            .emit("shout", &body.text)
            .unwrap_or(0)
    }

    /// Asks the sender `question` and replies with its answer, or why there is none.
    #[subscribe("ask")]
    async fn ask(&self, client: Client, timeout_ms: u64) -> Value {
        let answer = client
            .timeout(Duration::from_millis(timeout_ms))
            .emit_with_ack::<Value>("question", &json!({"q": "ready?"}))
            .await;
        match answer {
            Ok(answer) => json!({ "answer": answer }),
            Err(err) => json!({ "error": err.to_string() }),
        }
    }

    /// Asks every other member of the room; replies with the answers and how many did not.
    #[subscribe("poll")]
    async fn poll(&self, client: Client, room: String) -> Result<Value, WsException> {
        let mut answers = client
            .to(room)
            .timeout(Duration::from_secs(2))
            .emit_with_ack::<Value>("vote", &"pick one")?;
        let mut got = Vec::new();
        while let Some((_, answer)) = answers.next().await {
            got.push(answer.map_err(WsException::from)?);
        }
        got.sort_by_key(Value::to_string);
        Ok(json!({"answers": got, "unanswered": answers.unanswered()}))
    }

    /// Asks every other member of the room, waiting as long as it takes; replies with each
    /// answer or why there is none.
    #[subscribe("tally")]
    async fn tally(&self, client: Client, room: String) -> Result<Value, WsException> {
        let mut answers = client
            .to(room)
            .timeout(Duration::from_secs(600))
            .emit_with_ack::<Value>("vote", &"pick one")?;
        let mut got = Vec::new();
        while let Some((_, answer)) = answers.next().await {
            got.push(answer.unwrap_or_else(|err| json!({ "error": err.to_string() })));
        }
        Ok(json!({"answers": got, "unanswered": answers.unanswered()}))
    }

    /// Answers the client's callback from a spawned task; the return value is not sent.
    #[subscribe("later")]
    fn later(&self, ack: Ack, n: u32) -> u32 {
        tokio::spawn(async move {
            tokio::task::yield_now().await;
            ack.send(&json!({"done": n})).ok();
        });
        0
    }

    /// Emits first, then replies: the client sees them in that order.
    #[subscribe("count")]
    fn count(&self, client: Client, n: u32) -> u32 {
        for i in 0..n {
            let _ = client.emit("tick", &i);
        }
        n
    }

    #[subscribe("fail")]
    fn fail(&self) -> Result<(), WsException> {
        Err(WsException::new("Nope").with("code", 42))
    }

    #[subscribe("kick")]
    fn kick(&self) -> Result<(), WsException> {
        Err(WsException::new("Kicked").close(4000, "kicked"))
    }

    #[handle_connection]
    fn connected(&self, client: Client) {
        let _ = client.emit("welcome", &"hello");
    }
}

#[derive(Clone, Debug, PartialEq)]
struct User(String);

/// Accepts the token "letmein" only.
struct StaticToken;

impl Authenticator for StaticToken {
    type Identity = User;

    async fn authenticate(&self, request: &HandshakeRequest<'_>) -> Result<User, WsException> {
        match request.token() {
            Some("letmein") => Ok(User("admin".into())),
            Some(_) => Err(WsException::new("Invalid token")),
            None => Err(WsException::new("Missing token")),
        }
    }
}

#[websocket_gateway(path = "/sio-auth")]
struct AuthedGateway;

#[websocket_gateway]
impl AuthedGateway {
    #[subscribe("whoami")]
    fn whoami(&self, Identity(user): Identity<User>) -> String {
        user.0
    }
}

/// Serves `app` to plain WebSocket and Socket.IO clients on one port.
async fn serve(app: App) -> TestServer {
    let (socketio, _io) = SocketIoTransport::new().mount(&app);
    // Merged either way round, with routes added after: Socket.IO's path is a route.
    let router = socketio
        .merge((&app).into_router())
        .route("/health", axum::routing::get(|| async { "ok" }));
    TestServer::start_router(app, router).await.unwrap()
}

async fn sio_server() -> TestServer {
    serve(GatewayApp::new().gateway::<SioGateway>().build().unwrap()).await
}

fn http_url(server: &TestServer, namespace: &str) -> String {
    format!("http://{}{namespace}", server.addr())
}

/// One `node sio_client.mjs` process: a socket.io-client driven over stdin/stdout.
struct Node {
    child: Child,
    stdin: ChildStdin,
    lines: Lines<BufReader<ChildStdout>>,
    /// Reports read while looking for another one.
    backlog: VecDeque<Value>,
}

impl Node {
    fn spawn() -> Self {
        let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("node");
        assert!(
            dir.join("node_modules/socket.io-client").is_dir(),
            "socket.io-client is not installed: run `npm ci` in {} (./scripts/test.sh does)",
            dir.display()
        );
        let mut child = Command::new("node")
            .arg("sio_client.mjs")
            .current_dir(&dir)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .expect("node must be installed to run the Socket.IO tests");
        let stdin = child.stdin.take().unwrap();
        let lines = BufReader::new(child.stdout.take().unwrap()).lines();
        Self {
            child,
            stdin,
            lines,
            backlog: VecDeque::new(),
        }
    }

    /// A client connected to `url` (`http://host/namespace`), or its `connect_error`.
    async fn open(url: &str, auth: Value, transports: Option<&[&str]>) -> (Self, Value) {
        let mut node = Self::spawn();
        node.send(json!({"cmd": "connect", "url": url, "auth": auth, "transports": transports}))
            .await;
        let first = node
            .next_where(|r| r["type"] == "connect" || r["type"] == "connect_error")
            .await;
        (node, first)
    }

    /// A client connected to `url` over the default transports (polling, then upgrade).
    async fn connect(url: &str) -> Self {
        let (node, first) = Self::open(url, json!({}), None).await;
        assert_eq!(first["type"], "connect", "{first}");
        node
    }

    async fn send(&mut self, command: Value) {
        self.send_line(&command.to_string()).await;
    }

    /// A command written as is (a `Value` would sort its keys).
    async fn send_line(&mut self, command: &str) {
        let line = format!("{command}\n");
        self.stdin.write_all(line.as_bytes()).await.unwrap();
        self.stdin.flush().await.unwrap();
    }

    async fn emit(&mut self, event: &str, args: Value, ack: bool) {
        self.send(json!({"cmd": "emit", "event": event, "args": args, "ack": ack}))
            .await;
    }

    async fn next(&mut self) -> Value {
        if let Some(report) = self.backlog.pop_front() {
            return report;
        }
        let line = tokio::time::timeout(TIMEOUT, self.lines.next_line())
            .await
            .expect("timed out waiting for the node client")
            .unwrap()
            .expect("the node client exited");
        serde_json::from_str(&line).unwrap_or_else(|_| panic!("not JSON: {line}"))
    }

    /// The first report matching `pred`; the others stay for later calls.
    async fn next_where(&mut self, pred: impl Fn(&Value) -> bool) -> Value {
        let mut skipped = VecDeque::new();
        let deadline = tokio::time::Instant::now() + TIMEOUT;
        loop {
            assert!(
                tokio::time::Instant::now() < deadline,
                "timed out; got {skipped:?}"
            );
            let report = self.next().await;
            if pred(&report) {
                skipped.extend(self.backlog.drain(..));
                self.backlog = skipped;
                return report;
            }
            skipped.push_back(report);
        }
    }

    /// The arguments of the next `event` the server emitted.
    async fn expect_event(&mut self, event: &str) -> Value {
        self.next_where(|r| r["type"] == "event" && r["event"] == event)
            .await["args"]
            .take()
    }

    /// The arguments of the acknowledgement of `event`.
    async fn expect_ack(&mut self, event: &str) -> Value {
        self.next_where(|r| r["type"] == "ack" && r["event"] == event)
            .await["args"]
            .take()
    }

    async fn close(mut self) {
        self.send(json!({"cmd": "close"})).await;
        let _ = tokio::time::timeout(TIMEOUT, self.child.wait()).await;
    }
}

/// `name`, signed in, as a plain WebSocket client of the chat example's `/chat`, in `lobby`.
async fn ws_in_lobby(
    server: &TestServer,
    auth: &chat::auth::AuthService,
    name: &str,
) -> TestClient {
    let token = auth.issue(name).unwrap();
    let url = format!("{}?token={token}", server.url("/chat"));
    let mut client = TestClient::connect(&url).await.unwrap();
    client
        .emit("join", &json!({"room": "lobby"}))
        .await
        .unwrap();
    client.expect("joined").await.unwrap();
    client
}

/// Waits until the gateway at `path` has `n` clients.
async fn wait_for_clients(server: &TestServer, path: &str, n: usize) {
    let ws = server.app().server(path).unwrap();
    let deadline = tokio::time::Instant::now() + TIMEOUT;
    while ws.client_count() != n {
        assert!(
            tokio::time::Instant::now() < deadline,
            "{} clients, expected {n}",
            ws.client_count()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn the_handlers_value_answers_the_ack() {
    let server = sio_server().await;
    let mut node = Node::connect(&http_url(&server, "/sio")).await;
    assert_eq!(node.expect_event("welcome").await, json!(["hello"]));

    node.emit("echo", json!([{"a": [1, 2]}]), true).await;
    assert_eq!(node.expect_ack("echo").await, json!([{"a": [1, 2]}]));

    node.emit("add", json!([{"a": 2, "b": 3}]), true).await;
    assert_eq!(node.expect_ack("add").await, json!([5]));

    // Without a callback, the reply is emitted under the request's event.
    node.emit("add", json!([{"a": 1, "b": 1}]), false).await;
    assert_eq!(node.expect_event("add").await, json!([2]));

    // WsResponse under another event is emitted.
    node.emit("join", json!(["lobby"]), false).await;
    assert_eq!(node.expect_event("joined").await, json!(["lobby"]));
    node.close().await;
}

/// The data reaches the handler, and its reply the client, as written: the keys in their
/// order (JavaScript keeps it), as plain WebSocket clients get them.
#[tokio::test]
async fn data_round_trips_verbatim() {
    let server = sio_server().await;
    let (mut node, first) =
        Node::open(&http_url(&server, "/sio"), json!({}), Some(&["websocket"])).await;
    assert_eq!(first["type"], "connect", "{first}");
    let data = r#"{"b":1,"a":[2.5,{"d":"x","c":null}]}"#;
    node.send_line(&format!(
        r#"{{"cmd":"emit","event":"echo_raw","args":[{data}],"ack":true}}"#
    ))
    .await;
    let ack = node
        .next_where(|r| r["type"] == "ack" && r["event"] == "echo_raw")
        .await;
    assert_eq!(ack["raw"], format!("[{data}]"));
    // Emitted rather than acknowledged; the arguments after the first are ignored.
    node.send_line(&format!(
        r#"{{"cmd":"emit","event":"echo_raw","args":[{data},{{"z":0,"y":1}}],"ack":false}}"#
    ))
    .await;
    let event = node
        .next_where(|r| r["type"] == "event" && r["event"] == "echo_raw")
        .await;
    assert_eq!(event["raw"], format!("[{data}]"));

    let mut ws = server.connect("/sio").await.unwrap();
    ws.expect("welcome").await.unwrap();
    let text = format!(r#"{{"event":"echo_raw","data":{data}}}"#);
    ws.send_text(text.clone()).await.unwrap();
    assert_eq!(ws.expect_frame("echo_raw").await.unwrap().raw, text);
    node.close().await;
}

#[tokio::test]
async fn frames_emitted_by_the_handler_come_before_its_reply() {
    let server = sio_server().await;
    let (mut node, first) =
        Node::open(&http_url(&server, "/sio"), json!({}), Some(&["websocket"])).await;
    assert_eq!(first["type"], "connect", "{first}");
    node.emit("count", json!([3]), true).await;
    let mut seen = Vec::new();
    while seen.len() < 4 {
        let report = node.next().await;
        match (report["type"].as_str(), report["event"].as_str()) {
            (Some("event"), Some("tick")) => seen.push(report["args"][0].clone()),
            (Some("ack"), Some("count")) => seen.push(json!({"ack": report["args"][0]})),
            _ => {}
        }
    }
    assert_eq!(seen, vec![json!(0), json!(1), json!(2), json!({"ack": 3})]);
    node.close().await;
}

#[tokio::test]
async fn room_broadcasts_reach_socketio_clients() {
    let server = sio_server().await;
    let url = http_url(&server, "/sio");
    let mut alice = Node::connect(&url).await;
    let mut bob = Node::connect(&url).await;
    let mut outsider = Node::connect(&url).await;
    for node in [&mut alice, &mut bob] {
        node.emit("join", json!(["r1"]), false).await;
        assert_eq!(node.expect_event("joined").await, json!(["r1"]));
    }
    alice
        .emit("shout", json!([{"room": "r1", "text": "hi"}]), true)
        .await;
    assert_eq!(alice.expect_ack("shout").await, json!([2]));
    assert_eq!(alice.expect_event("shout").await, json!(["hi"]));
    assert_eq!(bob.expect_event("shout").await, json!(["hi"]));

    // The server handle reaches them too.
    let sent = server
        .app()
        .server("/sio")
        .unwrap()
        .to("r1")
        .emit("news", &json!({"n": 1}))
        .unwrap();
    assert_eq!(sent, 2);
    assert_eq!(bob.expect_event("news").await, json!([{"n": 1}]));

    // The outsider got neither.
    outsider.emit("echo", json!(["last"]), true).await;
    outsider.expect_ack("echo").await;
    assert!(
        !outsider
            .backlog
            .iter()
            .any(|r| r["event"] == "shout" || r["event"] == "news"),
        "{:?}",
        outsider.backlog
    );
    for node in [alice, bob, outsider] {
        node.close().await;
    }
}

#[tokio::test]
async fn exceptions_carry_the_json_adapters_payload() {
    let server = sio_server().await;
    let mut node = Node::connect(&http_url(&server, "/sio")).await;
    let mut ws = server.connect("/sio").await.unwrap();

    let cases = [
        ("add", json!({"a": "x", "b": 1})),
        ("fail", Value::Null),
        ("nope", json!([1])),
    ];
    for (event, data) in cases {
        let args = if data.is_null() {
            json!([])
        } else {
            json!([data])
        };
        node.emit(event, args, true).await;
        let from_sio = node.expect_event("exception").await;
        ws.emit(event, &data).await.unwrap();
        let from_ws = ws.expect("exception").await.unwrap();
        assert_eq!(from_sio, json!([from_ws]), "{event}");
    }

    // A validation failure, spelled out.
    node.emit("add", json!([{"a": 1}]), true).await;
    let exception = node.expect_event("exception").await;
    assert_eq!(exception[0]["status"], "error");
    assert!(
        exception[0]["message"]
            .as_str()
            .unwrap()
            .starts_with("Invalid message body: missing field `b`"),
        "{exception}"
    );
    assert_eq!(
        exception[0]["cause"],
        json!({"pattern": "add", "data": {"a": 1}})
    );

    // An exception that asks to close disconnects the socket, after the exception.
    node.emit("kick", json!([]), false).await;
    assert_eq!(node.expect_event("exception").await[0]["message"], "Kicked");
    let gone = node.next_where(|r| r["type"] == "disconnect").await;
    assert_eq!(gone["reason"], "io server disconnect");
    wait_for_clients(&server, "/sio", 1).await;
    ws.close().await.unwrap();
}

#[tokio::test]
async fn handshake_auth_reads_the_auth_payload() {
    let app = GatewayApp::new()
        .gateway::<AuthedGateway>()
        .authenticate::<AuthedGateway>(StaticToken)
        .build()
        .unwrap();
    let server = serve(app).await;
    let url = http_url(&server, "/sio-auth");

    let (node, refused) = Node::open(&url, json!({}), None).await;
    assert_eq!(
        refused,
        json!({"type": "connect_error", "message": "Missing token"})
    );
    node.close().await;

    let (node, refused) = Node::open(&url, json!({"token": "guess"}), Some(&["websocket"])).await;
    assert_eq!(
        refused,
        json!({"type": "connect_error", "message": "Invalid token"})
    );
    node.close().await;
    wait_for_clients(&server, "/sio-auth", 0).await;

    let (mut node, accepted) = Node::open(&url, json!({"token": "letmein"}), None).await;
    assert_eq!(accepted["type"], "connect", "{accepted}");
    node.emit("whoami", json!([]), true).await;
    assert_eq!(node.expect_ack("whoami").await, json!(["admin"]));

    // The query string works as on the plain WebSocket route.
    let (mut by_query, accepted) =
        Node::open(&format!("{url}?token=letmein"), json!({}), None).await;
    assert_eq!(accepted["type"], "connect", "{accepted}");
    by_query.emit("whoami", json!([]), true).await;
    assert_eq!(by_query.expect_ack("whoami").await, json!(["admin"]));
    node.close().await;
    by_query.close().await;
}

#[tokio::test]
async fn socketio_and_plain_ws_clients_share_a_room() {
    let server = sio_server().await;
    let mut sio = Node::connect(&http_url(&server, "/sio")).await;
    let mut ws = server.connect("/sio").await.unwrap();
    assert_eq!(ws.expect("welcome").await.unwrap(), json!("hello"));

    sio.emit("join", json!(["mixed"]), false).await;
    assert_eq!(sio.expect_event("joined").await, json!(["mixed"]));
    ws.emit("join", &"mixed").await.unwrap();
    assert_eq!(ws.expect("joined").await.unwrap(), json!("mixed"));

    // ws -> room: the Socket.IO client receives it.
    ws.emit("shout", &json!({"room": "mixed", "text": "from ws"}))
        .await
        .unwrap();
    assert_eq!(ws.expect("shout").await.unwrap(), json!("from ws"));
    assert_eq!(ws.expect("shout").await.unwrap(), json!(2), "the reply");
    assert_eq!(sio.expect_event("shout").await, json!(["from ws"]));

    // Socket.IO -> room: the plain client receives it.
    sio.emit(
        "shout",
        json!([{"room": "mixed", "text": "from sio"}]),
        true,
    )
    .await;
    assert_eq!(sio.expect_ack("shout").await, json!([2]));
    assert_eq!(sio.expect_event("shout").await, json!(["from sio"]));
    assert_eq!(ws.expect("shout").await.unwrap(), json!("from sio"));

    let members = server
        .app()
        .server("/sio")
        .unwrap()
        .room_members("mixed")
        .len();
    assert_eq!(members, 2);

    // Leaving: handle_disconnect runs, the room forgets the Socket.IO client.
    sio.close().await;
    wait_for_clients(&server, "/sio", 1).await;
    let members = server
        .app()
        .server("/sio")
        .unwrap()
        .room_members("mixed")
        .len();
    assert_eq!(members, 1);
    ws.close().await.unwrap();
}

#[tokio::test]
async fn the_chat_example_serves_socketio_on_its_namespace() {
    let auth =
        chat::auth::AuthService::new("sio-secret").with_users([("alice", "a"), ("bob", "b")]);
    let app = chat::app_with(auth.clone()).build().unwrap();
    // As main.rs composes it: more routes merged after.
    let router = chat::router(&app, auth.clone())
        .merge(axum::Router::new().route("/metrics", axum::routing::get(|| async { "" })));
    let server = TestServer::start_router(app, router).await.unwrap();

    let token = auth.issue("alice").unwrap();
    let (mut alice, first) =
        Node::open(&http_url(&server, "/chat"), json!({ "token": token }), None).await;
    assert_eq!(first["type"], "connect", "{first}");
    alice.emit("join", json!([{"room": "lobby"}]), false).await;
    assert_eq!(
        alice.expect_event("joined").await,
        json!([{"room": "lobby"}])
    );

    let mut bob = ws_in_lobby(&server, &auth, "bob").await;
    bob.emit("message", &json!({"room": "lobby", "text": "hi alice"}))
        .await
        .unwrap();
    let message = alice.expect_event("message").await;
    assert_eq!(message[0]["text"], "hi alice");
    assert_eq!(message[0]["from"], "bob");

    // Without a token: refused before connecting.
    let (refused, first) = Node::open(&http_url(&server, "/chat"), json!({}), None).await;
    assert_eq!(first["type"], "connect_error", "{first}");
    refused.close().await;
    alice.close().await;
}

/// The chat example's `events` (a `serde_json::Value` body, the example built with
/// `preserve_order`) answers socket.io-client with the keys in the order it sent them, as
/// JavaScript shows them (`raw` is the client's `JSON.stringify`).
#[tokio::test]
async fn the_chat_examples_events_keeps_the_clients_key_order() {
    let auth = chat::auth::AuthService::new("sio-order-secret").with_users([("alice", "a")]);
    let app = chat::app_with(auth.clone()).build().unwrap();
    let router = chat::router(&app, auth.clone());
    let server = TestServer::start_router(app, router).await.unwrap();
    let token = auth.issue("alice").unwrap();
    let (mut node, first) =
        Node::open(&http_url(&server, "/chat"), json!({ "token": token }), None).await;
    assert_eq!(first["type"], "connect", "{first}");
    for data in [
        r#"{"test":"test","n":[1,2,3]}"#,
        r#"{"z":{"b":1,"a":[{"y":2,"x":{"d":null,"c":"x"}}]},"m":-1.5,"a":true}"#,
    ] {
        node.send_line(&format!(
            r#"{{"cmd":"emit","event":"events","args":[{data}],"ack":true}}"#
        ))
        .await;
        let ack = node
            .next_where(|r| r["type"] == "ack" && r["event"] == "events")
            .await;
        assert_eq!(ack["raw"], format!("[{data}]"));
        // Without a callback, emitted back under `events`.
        node.send_line(&format!(
            r#"{{"cmd":"emit","event":"events","args":[{data}],"ack":false}}"#
        ))
        .await;
        let event = node
            .next_where(|r| r["type"] == "event" && r["event"] == "events")
            .await;
        assert_eq!(event["raw"], format!("[{data}]"));
    }
    node.close().await;
}

/// Two chat instances on the Redis at 127.0.0.1:6379 under `prefix`.
async fn chat_instances(prefix: &str, auth: &chat::auth::AuthService) -> Vec<TestServer> {
    use ws_gateway_redis::{RedisAdapter, RedisConfig};

    let mut servers = Vec::new();
    for _ in 0..2 {
        let redis =
            RedisAdapter::connect(RedisConfig::new("redis://127.0.0.1:6379").prefix(prefix))
                .await
                .expect("Redis listens on 127.0.0.1:6379 (./scripts/test.sh starts it)");
        let app = chat::app_with(auth.clone()).adapter(redis).build().unwrap();
        let router = chat::router(&app, auth.clone());
        servers.push(TestServer::start_router(app, router).await.unwrap());
    }
    servers
}

#[tokio::test]
async fn socketio_clients_of_two_instances_share_rooms_through_redis() {
    let prefix = format!("sio-test-{}", std::process::id());
    let auth = chat::auth::AuthService::new("sio-redis-secret");
    let servers = chat_instances(&prefix, &auth).await;
    let (a, b) = (&servers[0], &servers[1]);

    // Alice: Socket.IO on instance A, websocket transport only (no sticky sessions needed).
    let token = auth.issue("alice").unwrap();
    let (mut alice, first) = Node::open(
        &http_url(a, "/chat"),
        json!({ "token": token }),
        Some(&["websocket"]),
    )
    .await;
    assert_eq!(first["type"], "connect", "{first}");
    alice.emit("join", json!([{"room": "lobby"}]), false).await;
    alice.expect_event("joined").await;

    // Bob: plain WebSocket on instance B.
    let mut bob = ws_in_lobby(b, &auth, "bob").await;

    bob.emit("message", &json!({"room": "lobby", "text": "from B"}))
        .await
        .unwrap();
    let message = alice.expect_event("message").await;
    assert_eq!(message[0]["text"], "from B");
    assert_eq!(message[0]["from"], "bob");
    assert_eq!(bob.expect("message").await.unwrap()["text"], "from B");

    alice
        .emit(
            "message",
            json!([{"room": "lobby", "text": "from A"}]),
            false,
        )
        .await;
    assert_eq!(bob.expect("message").await.unwrap()["text"], "from A");
    assert_eq!(alice.expect_event("message").await[0]["text"], "from A");
    alice.close().await;
}

#[tokio::test]
async fn the_rate_limit_applies_to_socketio_clients() {
    let mut limit = ws_gateway_core::RateLimit::new(1, 3);
    limit.close_after = 3;
    let mut config = ws_gateway_core::ConnectionConfig::default();
    config.rate_limit = Some(limit);
    let app = GatewayApp::new()
        .gateway::<SioGateway>()
        .config(config)
        .build()
        .unwrap();
    let server = serve(app).await;
    let mut node = Node::connect(&http_url(&server, "/sio")).await;

    // A burst of three passes.
    for _ in 0..3 {
        node.emit("add", json!([{"a": 1, "b": 2}]), true).await;
    }
    for _ in 0..3 {
        assert_eq!(node.expect_ack("add").await, json!([3]));
    }
    // The next two are answered with an exception, the third in a row disconnects.
    for _ in 0..2 {
        node.emit("add", json!([{"a": 1, "b": 2}]), true).await;
        let exception = node.expect_event("exception").await;
        assert_eq!(
            exception[0]["message"],
            "Rate limit exceeded: at most 1 messages per second"
        );
        assert_eq!(exception[0]["cause"]["pattern"], "add");
    }
    node.emit("add", json!([{"a": 1, "b": 2}]), true).await;
    let gone = node.next_where(|r| r["type"] == "disconnect").await;
    assert_eq!(gone["reason"], "io server disconnect");
    wait_for_clients(&server, "/sio", 0).await;
}

#[tokio::test]
async fn a_socketio_client_answers_the_servers_ack_with_its_callback() {
    let server = sio_server().await;
    let mut node = Node::connect(&http_url(&server, "/sio")).await;
    node.send(json!({"cmd": "answer", "event": "question", "args": [{"ok": true}]}))
        .await;
    node.next_where(|r| r["type"] == "answering").await;
    node.emit("ask", json!([5000]), true).await;
    let asked = node
        .next_where(|r| r["type"] == "event" && r["event"] == "question")
        .await;
    // The question as the client's handler sees it: the data, then the callback.
    assert_eq!(
        (asked["args"].clone(), asked["ack"].clone()),
        (json!([{"q": "ready?"}]), json!(true))
    );
    assert_eq!(
        node.expect_ack("ask").await,
        json!([{"answer": {"ok": true}}])
    );

    // Several arguments answer as their array.
    node.send(json!({"cmd": "answer", "event": "question", "args": [1, "two", [3]]}))
        .await;
    node.next_where(|r| r["type"] == "answering").await;
    node.emit("ask", json!([5000]), true).await;
    assert_eq!(
        node.expect_ack("ask").await,
        json!([{"answer": [1, "two", [3]]}])
    );

    // No argument answers `null`.
    node.send(json!({"cmd": "answer", "event": "question", "args": []}))
        .await;
    node.next_where(|r| r["type"] == "answering").await;
    node.emit("ask", json!([5000]), true).await;
    assert_eq!(node.expect_ack("ask").await, json!([{"answer": null}]));
    node.close().await;
}

#[tokio::test]
async fn a_silent_socketio_client_times_out() {
    let server = sio_server().await;
    let mut node = Node::connect(&http_url(&server, "/sio")).await;
    node.emit("ask", json!([50]), true).await;
    assert_eq!(
        node.expect_ack("ask").await,
        json!([{"error": "no answer within 50ms"}])
    );
    node.close().await;
}

#[tokio::test]
async fn socketio_and_plain_ws_clients_answer_one_room_ask() {
    let server = sio_server().await;
    let mut asker = sio_ws_in_lobby(&server).await;
    let mut node = Node::connect(&http_url(&server, "/sio")).await;
    node.send(json!({"cmd": "answer", "event": "vote", "args": ["from socket.io"]}))
        .await;
    node.next_where(|r| r["type"] == "answering").await;
    node.emit("join", json!(["lobby"]), false).await;
    node.expect_event("joined").await;
    let mut plain = sio_ws_in_lobby(&server).await;
    wait_for_clients(&server, "/sio", 3).await;

    asker.emit("poll", "lobby").await.unwrap();
    let asked = plain.expect_frame("vote").await.unwrap();
    plain.answer(asked.ack.unwrap(), &"from ws").await.unwrap();
    assert_eq!(
        asker.expect("poll").await.unwrap(),
        json!({"answers": ["from socket.io", "from ws"], "unanswered": 0})
    );
    node.close().await;
}

#[tokio::test]
async fn a_socketio_member_that_leaves_before_answering_is_reported_at_once() {
    let server = sio_server().await;
    let mut asker = sio_ws_in_lobby(&server).await;
    let mut node = Node::connect(&http_url(&server, "/sio")).await;
    node.emit("join", json!(["lobby"]), false).await;
    node.expect_event("joined").await;
    wait_for_clients(&server, "/sio", 2).await;

    // The tally waits 600 s: only the departure can end it in time.
    asker.emit("tally", "lobby").await.unwrap();
    let asked = node
        .next_where(|r| r["type"] == "event" && r["event"] == "vote")
        .await;
    assert_eq!(asked["ack"], json!(true));
    node.close().await;
    assert_eq!(
        asker.expect("tally").await.unwrap(),
        json!({
            "answers": [{"error": "the client disconnected before it answered"}],
            "unanswered": 0,
        })
    );
}

/// A plain WebSocket client of `/sio` in the room `lobby`.
async fn sio_ws_in_lobby(server: &TestServer) -> TestClient {
    let mut client = server.connect("/sio").await.unwrap();
    client.emit("join", "lobby").await.unwrap();
    assert_eq!(client.expect("joined").await.unwrap(), "lobby");
    client
}

#[tokio::test]
async fn a_handler_answers_the_socketio_callback_later_through_ack() {
    let server = sio_server().await;
    let mut node = Node::connect(&http_url(&server, "/sio")).await;
    node.emit("later", json!([3]), true).await;
    assert_eq!(node.expect_ack("later").await, json!([{"done": 3}]));
    // Nothing else came: not the return value as an event either.
    node.emit("echo", json!(["after"]), true).await;
    loop {
        let next = node.next().await;
        assert!(next["event"] != "later", "{next}");
        if next["type"] == "ack" {
            assert_eq!(next["args"], json!(["after"]));
            break;
        }
    }
    node.close().await;
}

#[derive(Clone, Debug, Deserialize)]
struct SioRoom {
    id: u64,
}

/// A gateway path with a parameter: a dynamic namespace for Socket.IO clients.
#[websocket_gateway(path = "/sio-rooms/{id}")]
struct SioRoomGateway {
    server: WsServer,
}

#[websocket_gateway]
impl SioRoomGateway {
    #[handle_connection]
    fn connected(&self, client: Client, WsParam(id): WsParam<String>) -> Result<(), WsException> {
        client.join(format!("room:{id}"))?;
        client.emit("welcome", &id)?;
        Ok(())
    }

    #[subscribe("id")]
    fn id(&self, WsParam(room): WsParam<SioRoom>) -> u64 {
        room.id
    }

    /// Everyone on the sender's path hears it, whatever their transport.
    #[subscribe("say")]
    fn say(&self, WsParam(id): WsParam<String>, text: String) -> Result<usize, WsException> {
        Ok(self.server.to(format!("room:{id}")).emit("said", &text)?)
    }
}

/// The gateway at `/sio-rooms/{id}` to both kinds of clients, and the Socket.IO handle.
async fn rooms_server() -> (TestServer, ws_gateway_axum::SocketIo) {
    let app = GatewayApp::new()
        .gateway::<SioRoomGateway>()
        .build()
        .unwrap();
    let (socketio, io) = SocketIoTransport::new().mount(&app);
    let router = socketio.merge((&app).into_router());
    (TestServer::start_router(app, router).await.unwrap(), io)
}

#[tokio::test]
async fn a_path_with_parameters_is_a_dynamic_namespace_with_the_same_values() {
    let (server, _io) = rooms_server().await;
    for (path, id) in [
        ("/sio-rooms/42", "42"),
        ("/sio-rooms/r%C3%A9union%201", "réunion 1"),
    ] {
        let mut node = Node::connect(&http_url(&server, path)).await;
        let mut ws = server.connect(path).await.unwrap();
        assert_eq!(node.expect_event("welcome").await, json!([id]), "{path}");
        assert_eq!(ws.expect("welcome").await.unwrap(), id, "{path}");

        node.emit("id", json!([]), true).await;
        let from_sio = node
            .next_where(|r| r["event"] == "id" || r["event"] == "exception")
            .await["args"]
            .take();
        ws.emit("id", &()).await.unwrap();
        let from_ws = ws.recv().await.unwrap();
        if id == "42" {
            assert_eq!(from_sio, json!([42]));
            assert_eq!(from_ws.data, 42);
        } else {
            // The same exception on both transports.
            assert_eq!(from_ws.event, "exception");
            assert_eq!(from_sio, json!([from_ws.data]));
            assert_eq!(
                from_ws.data["message"],
                "Invalid path parameters: `id`: cannot parse u64: invalid digit found in string"
            );
        }
        node.close().await;
    }
}

#[tokio::test]
async fn socketio_and_ws_clients_of_one_path_share_its_room_only() {
    let (server, _io) = rooms_server().await;
    let mut sio1 = Node::connect(&http_url(&server, "/sio-rooms/1")).await;
    let mut sio2 = Node::connect(&http_url(&server, "/sio-rooms/2")).await;
    let mut ws1 = server.connect("/sio-rooms/1").await.unwrap();
    let mut ws2 = server.connect("/sio-rooms/2").await.unwrap();
    sio1.expect_event("welcome").await;
    sio2.expect_event("welcome").await;
    ws1.expect("welcome").await.unwrap();
    ws2.expect("welcome").await.unwrap();
    let rooms = server.app().server("/sio-rooms/{id}").unwrap();
    assert_eq!(rooms.client_count(), 4);

    sio1.emit("say", json!(["one"]), true).await;
    assert_eq!(sio1.expect_ack("say").await, json!([2]));
    assert_eq!(sio1.expect_event("said").await, json!(["one"]));
    assert_eq!(ws1.expect("said").await.unwrap(), "one");

    ws2.emit("say", &"two").await.unwrap();
    assert_eq!(ws2.expect("said").await.unwrap(), "two");
    assert_eq!(ws2.expect("say").await.unwrap(), 2);
    assert_eq!(sio2.expect_event("said").await, json!(["two"]));
    // Path 1 heard nothing of path 2: its next `said` is the next one said on path 1.
    ws1.emit("say", &"one again").await.unwrap();
    assert_eq!(ws1.expect("said").await.unwrap(), "one again");
    assert_eq!(sio1.expect_event("said").await, json!(["one again"]));
    for node in [sio1, sio2] {
        node.close().await;
    }
}

/// A path with parameters keeps nothing per path: made-up paths, refused ones included,
/// leave the server as it was, and a path is served again after its last client left.
#[tokio::test]
async fn the_paths_of_a_dynamic_namespace_leave_nothing_behind() {
    let (server, io) = rooms_server().await;
    assert_eq!(io.namespaces(), ["/sio-rooms/{id}"]);
    assert!(io.serves("/sio-rooms/5") && !io.serves("/elsewhere"));
    let url = http_url(&server, "/sio-rooms/5");
    let mut first = Node::connect(&url).await;
    let mut second = Node::connect(&url).await;
    first.expect_event("welcome").await;
    second.expect_event("welcome").await;

    first.close().await;
    wait_for_clients(&server, "/sio-rooms/{id}", 1).await;
    second.say_and_hear().await;
    second.close().await;
    wait_for_clients(&server, "/sio-rooms/{id}", 0).await;

    // Refused: a value that is not UTF-8 once percent-decoded.
    let (refused, first) = Node::open(&http_url(&server, "/sio-rooms/%FF"), json!({}), None).await;
    assert_eq!(
        first,
        json!({"type": "connect_error", "message": "path parameter `id` is not UTF-8 once percent-decoded"})
    );
    refused.close().await;
    // A path no gateway serves.
    let (stray, first) = Node::open(&http_url(&server, "/elsewhere"), json!({}), None).await;
    assert_eq!(
        first,
        json!({"type": "connect_error", "message": "Invalid namespace"})
    );
    stray.close().await;
    assert_eq!(io.namespaces(), ["/sio-rooms/{id}"]);

    // The path is served again.
    let mut again = Node::connect(&url).await;
    assert_eq!(again.expect_event("welcome").await, json!(["5"]));
    again.say_and_hear().await;
    again.close().await;
}

impl Node {
    /// Says something on the client's path and hears it back: the session is served.
    async fn say_and_hear(&mut self) {
        self.emit("say", json!(["anyone?"]), true).await;
        assert_eq!(self.expect_ack("say").await, json!([1]));
        assert_eq!(self.expect_event("said").await, json!(["anyone?"]));
    }
}

/// The chat example's quick poll, answered by two plain WebSocket members and a Socket.IO
/// member (with its callback), while one member stays silent: the asker gets the three
/// answers as sent, named, and one unanswered, after the poll's timeout.
#[tokio::test]
async fn a_chat_poll_is_answered_over_both_transports_and_counts_the_silent() {
    let auth = chat::auth::AuthService::new("sio-poll-secret");
    let app = chat::app_with(auth.clone()).build().unwrap();
    let router = chat::router(&app, auth.clone());
    let server = TestServer::start_router(app, router).await.unwrap();

    let mut alice = ws_in_lobby(&server, &auth, "alice").await;
    let mut bob = ws_in_lobby(&server, &auth, "bob").await;
    let mut carol = ws_in_lobby(&server, &auth, "carol").await;
    let mut erin = ws_in_lobby(&server, &auth, "erin").await;
    let token = auth.issue("dave").unwrap();
    let (mut dave, first) =
        Node::open(&http_url(&server, "/chat"), json!({ "token": token }), None).await;
    assert_eq!(first["type"], "connect", "{first}");
    // As a line of text: keys in an order serde_json would not choose.
    dave.send_line(r#"{"cmd":"answer","event":"question","args":[{"z":"sio","a":1}]}"#)
        .await;
    dave.next_where(|r| r["type"] == "answering").await;
    dave.emit("join", json!([{"room": "lobby"}]), false).await;
    dave.expect_event("joined").await;

    let asked = std::time::Instant::now();
    alice
        .send_text(r#"{"event":"poll","data":{"room":"lobby","question":"Lunch?"},"id":"p1"}"#)
        .await
        .unwrap();
    let question = json!({"question": "Lunch?", "from": "alice"});
    let to_bob = bob.expect_frame("question").await.unwrap();
    let to_carol = carol.expect_frame("question").await.unwrap();
    assert_eq!((&to_bob.data, &to_carol.data), (&question, &question));
    let heard = dave
        .next_where(|r| r["type"] == "event" && r["event"] == "question")
        .await;
    assert_eq!(
        (heard["args"].clone(), heard["ack"].clone()),
        (json!([question]), json!(true))
    );
    assert!(erin.expect_frame("question").await.unwrap().ack.is_some());
    bob.answer(to_bob.ack.unwrap(), &"pizza").await.unwrap();
    carol
        .send_text(format!(
            r#"{{"ack":{},"data":{{"z":"ws","a":[2]}}}}"#,
            to_carol.ack.unwrap()
        ))
        .await
        .unwrap();

    let result = alice.expect_frame("poll").await.unwrap();
    assert!(
        asked.elapsed() >= chat::chat::POLL_TIMEOUT,
        "erin never answered"
    );
    assert_eq!(result.id, Some(json!("p1")));
    assert_eq!(result.data["unanswered"], 1);
    // By arrival, which three sockets do not fix: compare by name, and the raw text for
    // each answer exactly as sent.
    let mut answers = result.data["answers"].as_array().unwrap().clone();
    answers.sort_by_key(|answer| answer["from"].as_str().unwrap().to_owned());
    assert_eq!(
        answers,
        [
            json!({"from": "bob", "answer": "pizza"}),
            json!({"from": "carol", "answer": {"z": "ws", "a": [2]}}),
            json!({"from": "dave", "answer": {"z": "sio", "a": 1}}),
        ]
    );
    for raw in [
        r#"{"from":"carol","answer":{"z":"ws","a":[2]}}"#,
        r#"{"from":"dave","answer":{"z":"sio","a":1}}"#,
    ] {
        assert!(result.raw.contains(raw), "{raw} in {}", result.raw);
    }
    dave.close().await;
}

// Socket.IO's data model: every argument, binary attachments, several answer arguments.

#[derive(Debug, Deserialize)]
struct Upload {
    name: String,
    data: bytes::Bytes,
}

#[websocket_gateway(path = "/data")]
struct DataGateway;

#[websocket_gateway]
impl DataGateway {
    /// Two arguments in, two out through the callback (`cb(n, name)`).
    #[subscribe("pair")]
    fn pair(&self, Args((name, n)): Args<(String, u32)>) -> Args<(u32, String)> {
        Args((n * 2, name))
    }

    /// How many arguments came; over plain WebSockets `data` is one, `args` several.
    #[subscribe("count_args")]
    fn count_args(&self, Args(args): Args<Vec<Value>>) -> usize {
        args.len()
    }

    /// A byte string among the arguments arrives as bytes; goes back as an attachment,
    /// emitted with several arguments and through the callback.
    #[subscribe("upload")]
    fn upload(
        &self,
        client: Client,
        Args((name, file)): Args<(String, bytes::Bytes)>,
    ) -> Result<Args<(String, usize, bytes::Bytes)>, SendError> {
        client.emit_args("uploaded", &(&name, file.clone()))?;
        Ok(Args((name, file.len(), file)))
    }

    /// A byte string inside a body.
    #[subscribe("upload_body")]
    fn upload_body(&self, body: Upload) -> (String, Vec<u8>) {
        (body.name, body.data.to_vec())
    }
}

async fn data_server() -> TestServer {
    serve(GatewayApp::new().gateway::<DataGateway>().build().unwrap()).await
}

fn bin(bytes: &[u8]) -> Value {
    json!({ "$bin": bytes })
}

#[tokio::test]
async fn every_argument_reaches_the_handler_and_the_callback_gets_several() {
    let server = data_server().await;
    let mut node = Node::connect(&http_url(&server, "/data")).await;
    node.emit("pair", json!(["ann", 21]), true).await;
    assert_eq!(node.expect_ack("pair").await, json!([42, "ann"]));
    node.emit("count_args", json!([1, "two", {"three": 3}]), true)
        .await;
    assert_eq!(node.expect_ack("count_args").await, json!([3]));
    node.emit("count_args", json!([]), true).await;
    assert_eq!(node.expect_ack("count_args").await, json!([0]));
    // Arguments that do not fit: a precise exception, the socket stays.
    node.emit("pair", json!(["ann"]), true).await;
    let err = node.expect_event("exception").await;
    let message = err[0]["message"].as_str().unwrap();
    assert!(
        message.starts_with("Invalid message arguments: invalid length 1"),
        "{message}"
    );
    node.emit("pair", json!(["bob", 1]), true).await;
    assert_eq!(node.expect_ack("pair").await, json!([2, "bob"]));
    node.close().await;
}

#[tokio::test]
async fn binary_attachments_arrive_as_bytes_and_go_out_as_attachments() {
    let server = data_server().await;
    for transports in [None, Some(&["websocket"][..])] {
        let (mut node, first) =
            Node::open(&http_url(&server, "/data"), json!({}), transports).await;
        assert_eq!(first["type"], "connect", "{first}");
        let file = [0u8, 1, 2, 254, 255];
        node.emit("upload", json!(["a.bin", bin(&file)]), true)
            .await;
        // Emitted with two arguments, the second a Buffer again.
        assert_eq!(
            node.expect_event("uploaded").await,
            json!(["a.bin", bin(&file)])
        );
        assert_eq!(
            node.expect_ack("upload").await,
            json!(["a.bin", 5, bin(&file)])
        );
        node.emit(
            "upload_body",
            json!([{"name": "b", "data": bin(&[9, 8])}]),
            true,
        )
        .await;
        // A `Vec<u8>` without serde_bytes serializes as a sequence: numbers.
        assert_eq!(node.expect_ack("upload_body").await, json!([["b", [9, 8]]]));
        node.close().await;
    }
}

#[tokio::test]
async fn plain_websocket_clients_send_one_argument_or_several_and_get_args_arrays() {
    let server = data_server().await;
    let mut ws = server.connect("/data").await.unwrap();
    ws.send_text(r#"{"event":"count_args","data":[1,2]}"#)
        .await
        .unwrap();
    assert_eq!(ws.expect("count_args").await.unwrap(), json!(1));
    ws.send_text(r#"{"event":"count_args"}"#).await.unwrap();
    assert_eq!(ws.expect("count_args").await.unwrap(), json!(0));
    // Bytes are numbers on the JSON protocol; several arguments an `args` array.
    ws.send_text(r#"{"event":"upload_body","data":{"name":"c","data":[7]}}"#)
        .await
        .unwrap();
    assert_eq!(ws.expect("upload_body").await.unwrap(), json!(["c", [7]]));
    ws.send_text(r#"{"event":"pair","data":"ann"}"#)
        .await
        .unwrap();
    let err = ws.expect("exception").await.unwrap();
    assert!(
        err["message"]
            .as_str()
            .unwrap()
            .starts_with("Invalid message arguments"),
        "{err}"
    );
    // Several arguments from a plain client: `args`, as the server sends them.
    ws.send_text(r#"{"event":"pair","args":["ann",2]}"#)
        .await
        .unwrap();
    let reply = ws.expect_frame("pair").await.unwrap();
    let reply: Value = serde_json::from_str(&reply.raw).unwrap();
    assert_eq!(reply["args"], json!([4, "ann"]), "{reply}"); // `pair` doubles n
    ws.send_text(r#"{"event":"count_args","args":[1,"two",null]}"#)
        .await
        .unwrap();
    assert_eq!(ws.expect("count_args").await.unwrap(), json!(3));
    // `data` is the first argument for a one-argument handler.
    ws.send_text(r#"{"event":"upload_body","args":[{"name":"d","data":[8]}]}"#)
        .await
        .unwrap();
    assert_eq!(ws.expect("upload_body").await.unwrap(), json!(["d", [8]]));
    for (bad, message) in [
        (
            r#"{"event":"pair","args":3}"#,
            r#"Invalid frame: "args" must be an array of the event's arguments"#,
        ),
        (
            r#"{"event":"pair","data":1,"args":[1]}"#,
            r#"Invalid frame: send either "data" (one argument) or "args" (several), not both"#,
        ),
    ] {
        ws.send_text(bad).await.unwrap();
        let err = ws.expect("exception").await.unwrap();
        assert_eq!(err["message"], json!(message), "{bad}");
    }
    // The connection survives all of it.
    ws.send_text(r#"{"event":"count_args","data":1}"#)
        .await
        .unwrap();
    assert_eq!(ws.expect("count_args").await.unwrap(), json!(1));
}

#[websocket_gateway(path = "/volatile")]
struct VolatileGateway;

#[websocket_gateway]
impl VolatileGateway {
    /// Emits `n` volatile positions while the session is busy here (a sync handler runs
    /// in the session's task, which drains the queue only once it returns): those past the
    /// queue's capacity are dropped. Replies with how many were.
    #[subscribe("burst")]
    fn burst(&self, client: Client, n: u32) -> usize {
        (0..n)
            .filter(|i| !client.volatile().emit("pos", i).unwrap_or(true))
            .count()
    }

    /// The same with ordinary emits: the queue overflows and the client is disconnected.
    #[subscribe("flood")]
    fn flood(&self, client: Client, n: u32) {
        for i in 0..n {
            let _ = client.emit("pos", &i);
        }
    }
}

#[tokio::test]
async fn volatile_emits_are_dropped_for_a_full_queue_instead_of_closing() {
    let mut config = ws_gateway_core::ConnectionConfig::default();
    config.outbound_queue = 8;
    let app = GatewayApp::new()
        .config(config)
        .gateway::<VolatileGateway>()
        .build()
        .unwrap();
    let server = serve(app).await;

    let mut ws = server.connect("/volatile").await.unwrap();
    ws.emit("burst", &20).await.unwrap();
    for i in 0..8 {
        assert_eq!(ws.expect("pos").await.unwrap(), json!(i));
    }
    assert_eq!(ws.expect("burst").await.unwrap(), json!(12));
    // Still connected, the queue drained.
    ws.emit("burst", &3).await.unwrap();
    for i in 0..3 {
        assert_eq!(ws.expect("pos").await.unwrap(), json!(i));
    }
    assert_eq!(ws.expect("burst").await.unwrap(), json!(0));
    // Ordinary emits past the queue close the slow consumer (1008).
    ws.emit("flood", &20).await.unwrap();
    let close = ws.expect_close().await.unwrap();
    assert_eq!(close.map(|c| u16::from(c.code)), Some(1008));

    // A Socket.IO client too. Its emits go straight to its Engine.IO socket, whose buffer
    // (`outbound_queue` frames) its own task drains meanwhile: of a burst far past it,
    // some are dropped; the others arrive, in order, and so does the reply.
    let mut node = Node::connect(&http_url(&server, "/volatile")).await;
    const BURST: u64 = 10_000;
    node.emit("burst", json!([BURST]), true).await;
    let mut received = 0;
    let mut last = -1;
    let dropped = loop {
        let report = node.next().await;
        match (report["type"].as_str(), report["event"].as_str()) {
            (Some("event"), Some("pos")) => {
                let at = report["args"][0].as_i64().unwrap();
                assert!(at > last, "in order: {at} after {last}");
                last = at;
                received += 1;
            }
            (Some("ack"), Some("burst")) => break report["args"][0].as_u64().unwrap(),
            _ => panic!("unexpected: {report}"),
        }
    };
    assert!(
        dropped > 0,
        "{BURST} emits into a buffer of 8: some are dropped"
    );
    assert_eq!(received + dropped, BURST);
    node.emit("burst", json!([1]), true).await;
    assert_eq!(node.expect_event("pos").await, json!([0]));
    assert_eq!(node.expect_ack("burst").await, json!([0]));
    node.close().await;
}

// The compliance server (examples/socketio-compliance), with the real client.

async fn compliance_server() -> (TestServer, ws_gateway_axum::SocketIo) {
    let app = socketio_compliance::app().unwrap();
    let (router, io) = socketio_compliance::router(&app);
    (TestServer::start_router(app, router).await.unwrap(), io)
}

#[tokio::test]
async fn the_compliance_server_echoes_every_argument_as_sent() {
    let (server, io) = compliance_server().await;
    // The Engine.IO settings reach the engine.
    let config = io.config();
    assert_eq!(
        config.engine_config.ping_interval,
        Duration::from_millis(300)
    );
    assert_eq!(
        config.engine_config.ping_timeout,
        Duration::from_millis(200)
    );
    assert_eq!(config.engine_config.max_payload, 1_000_000);
    assert_eq!(config.connect_timeout, Duration::from_secs(1));

    for namespace in ["/", "/custom"] {
        let (mut node, first) = Node::open(
            &http_url(&server, namespace),
            json!({"token": "123"}),
            Some(&["websocket"]),
        )
        .await;
        assert_eq!(first["type"], "connect", "{first}");
        assert_eq!(node.expect_event("auth").await, json!([{"token": "123"}]));
        let args = json!([1, "2", {"3": [true]}, bin(&[1, 2, 3]), [bin(&[4])]]);
        node.emit("message", args.clone(), false).await;
        assert_eq!(node.expect_event("message-back").await, args);
        node.emit("message-with-ack", args.clone(), true).await;
        assert_eq!(node.expect_ack("message-with-ack").await, args);
        // Numbers and key order as the client wrote them.
        let raw = r#"[{"b":1.50,"a":[]},"x"]"#;
        node.send_line(&format!(
            r#"{{"cmd":"emit","event":"message","args":{raw},"ack":false}}"#
        ))
        .await;
        let back = node
            .next_where(|r| r["type"] == "event" && r["event"] == "message-back")
            .await;
        assert_eq!(back["raw"], r#"[{"b":1.5,"a":[]},"x"]"#);
        node.close().await;
    }
}

#[tokio::test]
async fn the_compliance_server_sends_empty_auth_and_closes_without_connect() {
    let (server, _io) = compliance_server().await;
    let mut node = Node::connect(&http_url(&server, "/custom")).await;
    assert_eq!(node.expect_event("auth").await, json!([{}]));
    node.close().await;

    // An Engine.IO connection that answers its pings but never joins a namespace is
    // closed (after 1 s; the default would be 45 s, past this test's timeout).
    let url = format!(
        "ws://{}/socket.io/?EIO=4&transport=websocket",
        server.addr()
    );
    use futures_util::SinkExt;
    use tokio_tungstenite::tungstenite::Message;
    let (mut ws, _) = tokio_tungstenite::connect_async(&url).await.unwrap();
    let open = ws.next().await.unwrap().unwrap();
    assert!(open.to_text().unwrap().starts_with("0{"), "{open:?}");
    let closed = tokio::time::timeout(TIMEOUT, async {
        while let Some(Ok(message)) = ws.next().await {
            match message {
                Message::Text(ping) if ping.as_str() == "2" => {
                    ws.send(Message::Text("3".into())).await.unwrap();
                }
                Message::Close(_) => break,
                _ => {}
            }
        }
    })
    .await;
    assert!(closed.is_ok(), "still open without a namespace");
}

// Connection state recovery with the unmodified socket.io-client (the chat example recovers
// within 2 minutes).

/// The texts of the next `n` `message` events, each checked to end with its offset (a
/// string, Socket.IO's last argument under recovery).
async fn messages(node: &mut Node, n: usize) -> Vec<String> {
    let mut texts = Vec::new();
    for _ in 0..n {
        let args = node.expect_event("message").await;
        let args = args.as_array().unwrap();
        assert_eq!(args.len(), 2, "the message and its offset: {args:?}");
        assert!(args[1].is_string(), "an offset last: {args:?}");
        texts.push(args[0]["text"].as_str().unwrap().to_owned());
    }
    texts
}

/// Bob says each of `texts` in the lobby, and hears them back: the server handled them.
async fn bob_says(bob: &mut TestClient, texts: &[&str]) {
    for text in texts {
        bob.emit("message", &json!({"room": "lobby", "text": text}))
            .await
            .unwrap();
        assert_eq!(bob.expect("message").await.unwrap()["text"], *text);
    }
}

/// Alice on Socket.IO in the lobby of the chat at `server`, no automatic reconnection: the
/// test drops and reconnects her itself.
async fn alice_in_lobby(server: &TestServer, auth: &chat::auth::AuthService) -> (Node, String) {
    let token = auth.issue("alice").unwrap();
    let (mut alice, first) = Node::open(
        &http_url(server, "/chat"),
        json!({ "token": token }),
        Some(&["websocket"]),
    )
    .await;
    assert_eq!(first["type"], "connect", "{first}");
    assert_eq!(first["recovered"], false);
    alice.emit("join", json!([{"room": "lobby"}]), false).await;
    alice.expect_event("joined").await;
    (alice, first["id"].as_str().unwrap().to_owned())
}

/// Drops Alice's connection and waits until the server saw her go.
async fn drop_alice(alice: &mut Node, server: &TestServer) {
    alice.send(json!({"cmd": "drop"})).await;
    let gone = alice.next_where(|r| r["type"] == "disconnect").await;
    // The client closed its Engine.IO connection; no DISCONNECT went out.
    assert_eq!(gone["reason"], "forced close");
    wait_for_clients(server, "/chat", 1).await;
}

/// Reconnects Alice (to `url` if given) and checks she recovered as the client `id`.
async fn alice_recovers(alice: &mut Node, id: &str, url: Option<String>) {
    alice.send(json!({"cmd": "reconnect", "url": url})).await;
    let back = alice
        .next_where(|r| r["type"] == "connect" || r["type"] == "connect_error")
        .await;
    assert_eq!(back["type"], "connect", "{back}");
    assert_eq!(back["recovered"], true, "socket.recovered: {back}");
    assert_eq!(back["id"], id, "the same socket.id");
}

#[tokio::test]
async fn socketio_clients_recover_with_the_unmodified_client_again_and_again() {
    let auth = chat::auth::AuthService::new("sio-recover-secret");
    let app = chat::app_with(auth.clone()).build().unwrap();
    let router = chat::router(&app, auth.clone());
    let server = TestServer::start_router(app, router).await.unwrap();
    let (mut alice, id) = alice_in_lobby(&server, &auth).await;
    let mut bob = ws_in_lobby(&server, &auth, "bob").await;

    // A drop before any event with an offset reached Alice (socket.io #5538).
    drop_alice(&mut alice, &server).await;
    bob_says(&mut bob, &["one"]).await;
    alice_recovers(&mut alice, &id, None).await;
    assert_eq!(messages(&mut alice, 1).await, ["one"]);

    // Again, twice (socket.io #4880): each time every missed message, once, in order,
    // then live traffic.
    for round in ["a", "b"] {
        drop_alice(&mut alice, &server).await;
        let missed: Vec<String> = (1..=3).map(|n| format!("{round}{n}")).collect();
        let missed: Vec<&str> = missed.iter().map(String::as_str).collect();
        bob_says(&mut bob, &missed).await;
        alice_recovers(&mut alice, &id, None).await;
        assert_eq!(messages(&mut alice, 3).await, missed, "round {round}");
        let live = format!("{round} live");
        bob_says(&mut bob, &[&live]).await;
        assert_eq!(messages(&mut alice, 1).await, [live], "round {round}");
    }
    // Still in the lobby, as herself: her own message reaches Bob.
    alice
        .emit("message", json!([{"room": "lobby", "text": "back"}]), false)
        .await;
    let heard = bob.expect("message").await.unwrap();
    assert_eq!(
        (&heard["text"], &heard["from"]),
        (&json!("back"), &json!("alice"))
    );
    alice.close().await;
}

#[tokio::test]
async fn a_socketio_client_recovers_on_another_instance_through_redis() {
    let prefix = format!("sio-recover-{}", std::process::id());
    let auth = chat::auth::AuthService::new("sio-recover-redis-secret");
    let servers = chat_instances(&prefix, &auth).await;
    let (a, b) = (&servers[0], &servers[1]);
    let (mut alice, id) = alice_in_lobby(a, &auth).await;
    // Bob on B: his messages reach Alice on A through Redis.
    let mut bob = ws_in_lobby(b, &auth, "bob").await;
    bob_says(&mut bob, &["before"]).await;
    assert_eq!(messages(&mut alice, 1).await, ["before"]);

    alice.send(json!({"cmd": "drop"})).await;
    alice.next_where(|r| r["type"] == "disconnect").await;
    wait_for_clients(a, "/chat", 0).await;
    bob_says(&mut bob, &["while away 1", "while away 2"]).await;
    // Alice comes back on B.
    alice_recovers(&mut alice, &id, Some(http_url(b, "/chat"))).await;
    assert_eq!(
        messages(&mut alice, 2).await,
        ["while away 1", "while away 2"]
    );
    bob_says(&mut bob, &["live"]).await;
    assert_eq!(messages(&mut alice, 1).await, ["live"]);
    wait_for_clients(b, "/chat", 2).await;
    alice.close().await;
}
