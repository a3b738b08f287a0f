//! The request pipeline over real sockets: the order of guards, interceptors, pipes and
//! handler; global, gateway and method scopes; each kind of failure.

use std::sync::{Arc, Mutex};

use serde::Deserialize;
use serde_json::{Value, json};
use validator::Validate;
use ws_gateway_axum::prelude::*;
use ws_gateway_axum::test_client::{TestError, TestServer};
use ws_gateway_core::{
    Caught, Context, ExceptionFilter, FilterContext, Guard, Interceptor, Next, Outcome, Pipe,
    Reply, ValidationPipe,
};

/// What ran, in order.
#[derive(Default)]
struct Journal(Mutex<Vec<String>>);

fn note(cx: &Context<'_>, what: impl Into<String>) {
    if let Some(journal) = cx.providers().get::<Journal>() {
        journal.0.lock().unwrap().push(what.into());
    }
}

struct Allow(&'static str);

impl Guard for Allow {
    async fn can_activate(&self, cx: &Context<'_>) -> Result<bool, WsException> {
        note(cx, format!("guard:{}", self.0));
        Ok(true)
    }
}

/// Denies when the body says `"deny": true`; errs with its own message on `"err": true`.
struct DenyOnFlag;

impl Guard for DenyOnFlag {
    async fn can_activate(&self, cx: &Context<'_>) -> Result<bool, WsException> {
        let body: Value = cx
            .data()
            .and_then(|d| serde_json::from_str(d.get()).ok())
            .unwrap_or(Value::Null);
        if body["err"] == true {
            return Err(WsException::new("Members only"));
        }
        Ok(body["deny"] != true)
    }
}

struct Around(&'static str);

impl Interceptor for Around {
    async fn intercept(&self, cx: &Context<'_>, next: Next<'_>) -> Outcome {
        note(cx, format!("before:{}", self.0));
        let reply = next.run().await;
        note(cx, format!("after:{}", self.0));
        let tag = self.0;
        reply.map(|r| r.map_data(move |data| json!({ tag: data })))
    }
}

/// Answers `"cached"` without calling the handler.
struct Cache;

impl Interceptor for Cache {
    async fn intercept(&self, cx: &Context<'_>, _next: Next<'_>) -> Outcome {
        note(cx, "cache hit");
        Reply::data(cx, "cached")
    }
}

#[derive(Debug, Deserialize, Validate)]
struct Order {
    #[validate(length(min = 1, max = 10))]
    name: String,
    #[validate(nested)]
    address: Address,
    #[validate(nested)]
    items: Vec<Item>,
}

#[derive(Debug, Deserialize, Validate)]
struct Address {
    #[validate(length(min = 2))]
    city: String,
}

#[derive(Debug, Deserialize, Validate)]
struct Item {
    #[validate(length(min = 1, message = "must not be empty"))]
    name: String,
    #[validate(range(min = 1, max = 99))]
    quantity: u32,
}

#[derive(Debug, Deserialize)]
struct Word {
    text: String,
}

/// Records that it ran; a gateway-wide pipe, so it takes any body.
struct Record(&'static str);

impl<T> Pipe<T> for Record {
    fn transform(&self, value: T, cx: &Context<'_>) -> Result<T, WsException> {
        note(cx, format!("pipe:{}", self.0));
        Ok(value)
    }
}

struct Upper;

impl Pipe<Word> for Upper {
    fn transform(&self, value: Word, _: &Context<'_>) -> Result<Word, WsException> {
        Ok(Word {
            text: value.text.to_uppercase(),
        })
    }
}

/// The app's own error type, caught by type.
#[derive(Debug)]
struct Banned(u16);

impl From<Banned> for WsException {
    fn from(_: Banned) -> Self {
        WsException::new("Banned")
    }
}

struct BannedFilter;

impl ExceptionFilter for BannedFilter {
    type Error = Banned;

    fn catch(&self, error: &Banned, cx: &FilterContext<'_>) -> Caught {
        Caught::exception(
            cx,
            &WsException::new("You are banned").with("code", error.0),
        )
        .close(error.0, "banned")
    }
}

/// Catches every WsException of its scope and renames the message.
struct Rename(&'static str);

impl ExceptionFilter for Rename {
    type Error = WsException;

    fn catch(&self, error: &WsException, cx: &FilterContext<'_>) -> Caught {
        Caught::exception(
            cx,
            &WsException::new(format!("{}: {}", self.0, error.message())),
        )
    }
}

#[websocket_gateway(path = "/pipeline")]
struct PipelineGateway;

#[websocket_gateway]
#[use_guards(Allow("gateway"))]
#[use_interceptors(Around("gateway"))]
#[use_pipes(Record("gateway"))]
#[use_filters(Rename("gateway"))]
impl PipelineGateway {
    #[subscribe("order")]
    #[use_guards(Allow("method"))]
    #[use_interceptors(Around("method"))]
    #[use_pipes(Record("method"), Upper)]
    fn order(&self, word: Word, cx_event: Event) -> String {
        let _ = cx_event;
        word.text
    }

    #[subscribe("guarded")]
    #[use_guards(DenyOnFlag)]
    fn guarded(&self, _body: Value) -> &'static str {
        "passed"
    }

    #[subscribe("validate")]
    #[use_pipes(ValidationPipe)]
    fn validate(&self, order: Order) -> usize {
        order.items.len()
    }

    #[subscribe("cached")]
    #[use_interceptors(Cache)]
    fn cached(&self) -> &'static str {
        unreachable!("the cache answers first")
    }

    #[subscribe("ban")]
    #[use_filters(BannedFilter)]
    fn ban(&self, code: u16) -> Result<(), Banned> {
        Err(Banned(code))
    }

    #[subscribe("plain-error")]
    #[use_filters(Rename("method"))]
    fn plain_error(&self) -> Result<(), WsException> {
        Err(WsException::new("boom"))
    }
}

fn app(journal: &Arc<Journal>) -> App {
    GatewayApp::new()
        .provide_arc(journal.clone())
        .use_global_guard(Allow("global"))
        .use_global_interceptor(Around("global"))
        .gateway::<PipelineGateway>()
        .build()
        .unwrap()
}

async fn start() -> (TestServer, Arc<Journal>) {
    let journal = Arc::new(Journal::default());
    (TestServer::start(app(&journal)).await.unwrap(), journal)
}

#[tokio::test]
async fn guards_then_interceptors_then_pipes_then_handler_global_to_method() {
    let (server, journal) = start().await;
    let mut client = server.connect("/pipeline").await.unwrap();
    client.emit("order", &json!({"text": "abc"})).await.unwrap();
    // Interceptors map the reply inner first: method, gateway, then global outermost.
    assert_eq!(
        client.expect("order").await.unwrap(),
        json!({"global": {"gateway": {"method": "ABC"}}})
    );
    assert_eq!(
        *journal.0.lock().unwrap(),
        [
            "guard:global",
            "guard:gateway",
            "guard:method",
            "before:global",
            "before:gateway",
            "before:method",
            "pipe:gateway",
            "pipe:method",
            "after:method",
            "after:gateway",
            "after:global",
        ]
    );
}

#[tokio::test]
async fn a_denying_guard_answers_forbidden_resource() {
    let (server, _) = start().await;
    let mut client = server.connect("/pipeline").await.unwrap();
    client
        .emit("guarded", &json!({"deny": true}))
        .await
        .unwrap();
    let err = client.expect("exception").await.unwrap();
    // The gateway's filter renames every WsException of the gateway.
    assert_eq!(err["message"], "gateway: Forbidden resource");
    assert_eq!(
        err["cause"],
        json!({"pattern": "guarded", "data": {"deny": true}})
    );

    client.emit("guarded", &json!({"err": true})).await.unwrap();
    assert_eq!(
        client.expect("exception").await.unwrap()["message"],
        "gateway: Members only"
    );
    client.emit("guarded", &json!({})).await.unwrap();
    assert_eq!(
        client.expect("guarded").await.unwrap(),
        json!({"global": {"gateway": "passed"}})
    );
}

#[tokio::test]
async fn validation_errors_name_each_field_with_its_path() {
    let (server, _) = start().await;
    let mut client = server.connect("/pipeline").await.unwrap();
    let order = json!({
        "name": "far too long a name",
        "address": {"city": "X"},
        "items": [
            {"name": "ok", "quantity": 1},
            {"name": "ok", "quantity": 100},
            {"name": "", "quantity": 0},
        ],
    });
    client.emit("validate", &order).await.unwrap();
    let err = client.expect("exception").await.unwrap();
    assert_eq!(err["message"], "gateway: Validation failed");
    // The renaming filter built a new exception: the fields are checked on the method
    // without gateway filter below.
    let (server2, _) = start_plain().await;
    let mut client = server2.connect("/plain").await.unwrap();
    client.emit("validate", &order).await.unwrap();
    let err = client.expect("exception").await.unwrap();
    assert_eq!(
        err,
        json!({
            "status": "error",
            "message": "Validation failed",
            "errors": {
                "address.city": ["length must be at least 2"],
                "items[1].quantity": ["must be between 1 and 99"],
                "items[2].name": ["must not be empty"],
                "items[2].quantity": ["must be between 1 and 99"],
                "name": ["length must be between 1 and 10"],
            },
            "cause": {"pattern": "validate", "data": order},
        })
    );
    client
        .emit(
            "validate",
            &json!({"name": "ok", "address": {"city": "Paris"}, "items": []}),
        )
        .await
        .unwrap();
    assert_eq!(client.expect("validate").await.unwrap(), json!(0));
}

#[tokio::test]
async fn pipes_run_on_a_body_written_as_data() {
    let (server, _) = start_plain().await;
    let mut client = server.connect("/plain").await.unwrap();
    let order = json!({"name": "", "address": {"city": "Paris"}, "items": []});
    client.emit("validate_data", &order).await.unwrap();
    let err = client.expect("exception").await.unwrap();
    assert_eq!(err["message"], "Validation failed");
    assert_eq!(
        err["errors"],
        json!({"name": ["length must be between 1 and 10"]})
    );
    let order = json!({"name": "ok", "address": {"city": "Paris"}, "items": []});
    client.emit("validate_data", &order).await.unwrap();
    assert_eq!(client.expect("validate_data").await.unwrap(), json!(0));
}

#[websocket_gateway(path = "/plain")]
struct PlainGateway;

#[websocket_gateway]
impl PlainGateway {
    #[subscribe("validate")]
    #[use_pipes(ValidationPipe)]
    fn validate(&self, order: Order) -> usize {
        order.items.len()
    }

    /// The same body written as `Data<T>`: the pipes run on it all the same.
    #[subscribe("validate_data")]
    #[use_pipes(ValidationPipe)]
    fn validate_data(&self, Data(order): Data<Order>) -> usize {
        order.items.len()
    }
}

async fn start_plain() -> (TestServer, ()) {
    let app = GatewayApp::new().gateway::<PlainGateway>().build().unwrap();
    (TestServer::start(app).await.unwrap(), ())
}

#[tokio::test]
async fn an_interceptor_may_answer_without_the_handler() {
    let (server, journal) = start().await;
    let mut client = server.connect("/pipeline").await.unwrap();
    client.emit("cached", &()).await.unwrap();
    assert_eq!(
        client.expect("cached").await.unwrap(),
        json!({"global": {"gateway": "cached"}})
    );
    assert!(journal.0.lock().unwrap().contains(&"cache hit".to_owned()));
}

#[tokio::test]
async fn a_filter_catches_its_error_type_and_closes_with_its_code() {
    let (server, _) = start().await;
    let mut client = server.connect("/pipeline").await.unwrap();
    client.emit("ban", &4003).await.unwrap();
    assert_eq!(
        client.expect("exception").await.unwrap(),
        json!({"status": "error", "message": "You are banned", "code": 4003, "cause": {"pattern": "ban", "data": 4003}})
    );
    let close = client.expect_close().await.unwrap().unwrap();
    assert_eq!(u16::from(close.code), 4003);
    assert_eq!(close.reason.as_str(), "banned");
}

#[tokio::test]
async fn the_closest_filter_wins() {
    let (server, _) = start().await;
    let mut client = server.connect("/pipeline").await.unwrap();
    client.emit("plain-error", &()).await.unwrap();
    assert_eq!(
        client.expect("exception").await.unwrap()["message"],
        "method: boom"
    );
}

#[tokio::test]
async fn global_filters_see_frames_that_reach_no_handler() {
    let app = GatewayApp::new()
        .use_global_filter(Rename("global"))
        .gateway::<PlainGateway>()
        .build()
        .unwrap();
    let server = TestServer::start(app).await.unwrap();
    let mut client = server.connect("/plain").await.unwrap();
    client.send_text("{oops").await.unwrap();
    let err = client.expect("exception").await.unwrap();
    assert!(
        err["message"]
            .as_str()
            .unwrap()
            .starts_with("global: Malformed JSON")
    );
}

#[derive(Clone, Debug, PartialEq)]
struct Member(String);

struct TokenAuth;

impl ws_gateway_core::Authenticator for TokenAuth {
    type Identity = Member;

    async fn authenticate(
        &self,
        request: &ws_gateway_core::HandshakeRequest<'_>,
    ) -> Result<Member, WsException> {
        match request.token() {
            Some(token) if token.starts_with("ok-") => Ok(Member(token[3..].to_owned())),
            Some(_) => Err(WsException::new("Invalid token")),
            None => Err(WsException::new("Missing token")),
        }
    }
}

#[websocket_gateway(path = "/members")]
struct MembersGateway;

#[websocket_gateway]
impl MembersGateway {
    #[subscribe("whoami")]
    fn whoami(
        &self,
        ws_gateway_core::Identity(member): ws_gateway_core::Identity<Member>,
    ) -> String {
        member.0
    }
}

async fn members_server() -> TestServer {
    let app = GatewayApp::new()
        .authenticate::<MembersGateway>(TokenAuth)
        .gateway::<MembersGateway>()
        .gateway::<PlainGateway>()
        .build()
        .unwrap();
    TestServer::start(app).await.unwrap()
}

#[tokio::test]
async fn authentication_refuses_with_401_before_any_socket() {
    let server = members_server().await;
    for (path, message) in [
        ("/members", "Missing token"),
        ("/members?token=forged", "Invalid token"),
    ] {
        match server.connect(path).await {
            Err(TestError::WebSocket(tokio_tungstenite::tungstenite::Error::Http(response))) => {
                assert_eq!(response.status(), 401);
                let body: Value =
                    serde_json::from_slice(response.body().as_deref().unwrap()).unwrap();
                assert_eq!(body, json!({"status": "error", "message": message}));
            }
            other => panic!("expected 401 for {path}, got {other:?}"),
        }
    }
    assert_eq!(server.app().server("/members").unwrap().client_count(), 0);
    // Gateways without an authenticator stay open.
    server.connect("/plain").await.unwrap();
}

#[tokio::test]
async fn the_identity_reaches_handlers_from_header_query_or_cookie() {
    let server = members_server().await;
    let mut by_query = server.connect("/members?token=ok-ann").await.unwrap();
    by_query.emit("whoami", &()).await.unwrap();
    assert_eq!(by_query.expect("whoami").await.unwrap(), json!("ann"));

    for (header, value) in [
        ("authorization", "Bearer ok-bob"),
        ("cookie", "a=b; token=ok-bob"),
    ] {
        use tokio_tungstenite::tungstenite::client::IntoClientRequest;
        let mut request = server.url("/members").into_client_request().unwrap();
        request.headers_mut().insert(header, value.parse().unwrap());
        let (ws, _) = tokio_tungstenite::connect_async(request).await.unwrap();
        let mut client = ws_gateway_axum::test_client::TestClient::from_stream(ws);
        client.emit("whoami", &()).await.unwrap();
        assert_eq!(client.expect("whoami").await.unwrap(), json!("bob"));
    }
}

/// A `tracing` writer into a shared buffer.
#[derive(Clone, Default)]
struct LogBuffer(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for LogBuffer {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn the_logging_interceptor_logs_event_client_outcome_and_time() {
    // A current-thread test: the server's tasks run on this thread, under this subscriber.
    let logs = LogBuffer::default();
    let writer = logs.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .with_max_level(tracing::Level::INFO)
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let app = GatewayApp::new()
        .use_global_interceptor(ws_gateway_core::LoggingInterceptor)
        .gateway::<PlainGateway>()
        .build()
        .unwrap();
    let server = TestServer::start(app).await.unwrap();
    let mut client = server.connect("/plain").await.unwrap();
    client
        .emit(
            "validate",
            &json!({"name": "ok", "address": {"city": "Paris"}, "items": []}),
        )
        .await
        .unwrap();
    assert_eq!(client.expect("validate").await.unwrap(), json!(0));
    client
        .emit(
            "validate",
            &json!({"name": "", "address": {"city": "Paris"}, "items": []}),
        )
        .await
        .unwrap();
    client.expect("exception").await.unwrap();

    let text = String::from_utf8(logs.0.lock().unwrap().clone()).unwrap();
    let lines: Vec<&str> = text
        .lines()
        .filter(|l| l.contains("gateway::access"))
        .collect();
    assert_eq!(lines.len(), 2, "{text}");
    assert!(lines[0].contains("INFO"), "{}", lines[0]);
    assert!(
        lines[0].contains("handled event=\"validate\""),
        "{}",
        lines[0]
    );
    assert!(lines[0].contains("reply=\"frame\""), "{}", lines[0]);
    assert!(lines[0].contains("elapsed_us="), "{}", lines[0]);
    assert!(lines[0].contains("client="), "{}", lines[0]);
    assert!(lines[1].contains("WARN"), "{}", lines[1]);
    assert!(lines[1].contains("error=Validation failed"), "{}", lines[1]);
}

/// Catches every failure of its scope, whatever its type (NestJS's `@Catch()`).
struct Everything;

impl ExceptionFilter for Everything {
    type Error = ws_gateway_core::Failure;

    fn catch(&self, failure: &ws_gateway_core::Failure, cx: &FilterContext<'_>) -> Caught {
        if failure.kind() == ws_gateway_core::ErrorKind::Validation {
            return Caught::exception(cx, &WsException::new("Check your input"));
        }
        let data = json!({
            "event": cx.event(),
            "kind": failure.kind().as_str(),
            "banned": failure.downcast_ref::<Banned>().map(|b| b.0),
        });
        let caught = Caught::frame(ws_gateway_core::Frame::event("error", &data).unwrap());
        if failure.kind() == ws_gateway_core::ErrorKind::Internal {
            caught.close(1011, "internal error")
        } else {
            caught
        }
    }
}

#[websocket_gateway(path = "/everything")]
struct EverythingGateway;

#[websocket_gateway]
#[use_filters(Everything)]
impl EverythingGateway {
    #[subscribe("ban")]
    fn ban(&self, code: u16) -> Result<(), Banned> {
        Err(Banned(code))
    }

    /// The method's typed filter is closer than the gateway's catch-all.
    #[subscribe("ban_typed")]
    #[use_filters(BannedFilter)]
    fn ban_typed(&self, code: u16) -> Result<(), Banned> {
        Err(Banned(code))
    }

    #[subscribe("validate")]
    #[use_pipes(ValidationPipe)]
    fn validate(&self, order: Order) -> usize {
        order.items.len()
    }

    #[subscribe("panic")]
    fn panic(&self) {
        panic!("a bug");
    }
}

#[tokio::test]
async fn a_catch_all_filter_sees_every_failure_closest_first() {
    let app = GatewayApp::new()
        .gateway::<EverythingGateway>()
        .build()
        .unwrap();
    let server = TestServer::start(app).await.unwrap();
    let mut client = server.connect("/everything").await.unwrap();

    client.emit("ban", &4001).await.unwrap();
    assert_eq!(
        client.expect("error").await.unwrap(),
        json!({"event": "ban", "kind": "handler", "banned": 4001})
    );
    client.emit("nope", &1).await.unwrap();
    assert_eq!(
        client.expect("error").await.unwrap(),
        json!({"event": "nope", "kind": "unknown_event", "banned": null})
    );
    client.send_text("not json").await.unwrap();
    assert_eq!(
        client.expect("error").await.unwrap(),
        json!({"event": null, "kind": "bad_request", "banned": null})
    );
    client
        .emit(
            "validate",
            &json!({"name": "", "address": {"city": "Paris"}, "items": []}),
        )
        .await
        .unwrap();
    assert_eq!(
        client.expect("exception").await.unwrap()["message"],
        "Check your input"
    );
    client.emit("panic", &()).await.unwrap();
    assert_eq!(
        client.expect("error").await.unwrap(),
        json!({"event": "panic", "kind": "internal", "banned": null})
    );
    let close = client.expect_close().await.unwrap().expect("a close frame");
    assert_eq!(u16::from(close.code), 1011);

    // Closest first: the method's typed filter answers before the gateway's catch-all.
    let mut client = server.connect("/everything").await.unwrap();
    client.emit("ban_typed", &4002).await.unwrap();
    assert_eq!(
        client.expect("exception").await.unwrap()["message"],
        "You are banned"
    );
    let close = client.expect_close().await.unwrap().expect("a close frame");
    assert_eq!(u16::from(close.code), 4002);
}
