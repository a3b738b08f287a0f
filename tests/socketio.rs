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
use ws_gateway_core::{Authenticator, HandshakeRequest};

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

#[derive(Clone, Debug)]
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

#[tokio::test]
async fn socketio_clients_of_two_instances_share_rooms_through_redis() {
    use ws_gateway_redis::{RedisAdapter, RedisConfig};

    let prefix = format!("sio-test-{}", std::process::id());
    let auth = chat::auth::AuthService::new("sio-redis-secret");
    let mut servers = Vec::new();
    for _ in 0..2 {
        let redis =
            RedisAdapter::connect(RedisConfig::new("redis://127.0.0.1:6379").prefix(&prefix))
                .await
                .expect("Redis listens on 127.0.0.1:6379 (./scripts/test.sh starts it)");
        let app = chat::app_with(auth.clone()).adapter(redis).build().unwrap();
        let router = chat::router(&app, auth.clone());
        servers.push(TestServer::start_router(app, router).await.unwrap());
    }
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

/// A plain WebSocket client of `/sio` in the room `lobby`.
async fn sio_ws_in_lobby(server: &TestServer) -> TestClient {
    let mut client = server.connect("/sio").await.unwrap();
    client.emit("join", "lobby").await.unwrap();
    assert_eq!(client.expect("joined").await.unwrap(), "lobby");
    client
}
