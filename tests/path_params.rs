//! Gateway paths with parameters over plain WebSockets: `ws://host/rooms/42` is a client
//! of the gateway at `/rooms/{id}`, its parameters read by `WsParam` in handlers, guards
//! and `#[handle_connection]`; the gateway's rooms span all its paths. (Socket.IO clients
//! of the same gateway: `tests/socketio.rs`.)

use serde::Deserialize;
use serde_json::json;
use tokio_tungstenite::tungstenite::Error;
use ws_gateway_axum::prelude::*;
use ws_gateway_axum::test_client::{TestError, TestServer};
use ws_gateway_axum::{JsonTransport, Transport};

#[derive(Clone, Debug, Deserialize)]
struct Room {
    id: u64,
}

/// Room 0 is read-only.
struct NotRoomZero;

impl Guard for NotRoomZero {
    async fn can_activate(&self, cx: &Context<'_>) -> Result<bool, WsException> {
        Ok(WsParam::<Room>::get(cx)?.id != 0)
    }
}

#[websocket_gateway(path = "/rooms/{id}")]
struct RoomGateway {
    server: WsServer,
}

#[websocket_gateway]
impl RoomGateway {
    /// Every client joins the room of its path, by the parameter as text: any path is
    /// welcome here, `u64` or not.
    #[handle_connection]
    fn connected(&self, client: Client, WsParam(id): WsParam<String>) -> Result<(), WsException> {
        client.join(format!("room:{id}"))?;
        client.emit("welcome", &id)?;
        Ok(())
    }

    /// A single value.
    #[subscribe("id")]
    fn id(&self, WsParam(id): WsParam<u64>) -> u64 {
        id
    }

    /// A struct, by name.
    #[subscribe("room")]
    async fn room(&self, WsParam(room): WsParam<Room>) -> u64 {
        room.id
    }

    /// A tuple, by position, and the raw values in the handshake.
    #[subscribe("raw")]
    fn raw(&self, client: Client, WsParam((id,)): WsParam<(String,)>) -> serde_json::Value {
        let params = &client.handshake().path_params;
        json!({"id": id, "get": params.get("id"), "len": params.len()})
    }

    /// Everyone on the sender's path hears it, nobody on another.
    #[subscribe("say")]
    fn say(&self, WsParam(id): WsParam<String>, text: String) -> Result<usize, WsException> {
        Ok(self.server.to(format!("room:{id}")).emit("said", &text)?)
    }

    #[subscribe("write")]
    #[use_guards(NotRoomZero)]
    fn write(&self) -> &'static str {
        "written"
    }
}

#[derive(Clone, Debug, Deserialize)]
struct FilePath {
    tenant: String,
    path: String,
}

/// A parameter and a wildcard; a hook that refuses what does not fit.
#[websocket_gateway(path = "/t/{tenant}/files/{*path}")]
struct FileGateway;

#[websocket_gateway]
impl FileGateway {
    /// Tenants are numbers here: `/t/acme/...` is turned away.
    #[handle_connection]
    fn connected(&self, WsParam((tenant, _)): WsParam<(u32, String)>) {
        let _ = tenant;
    }

    #[subscribe("open")]
    fn open(&self, WsParam(file): WsParam<FilePath>) -> String {
        format!("{}:{}", file.tenant, file.path)
    }
}

/// A fixed path beside `/rooms/{id}`: it takes precedence, on both transports.
#[websocket_gateway(path = "/rooms/lobby")]
struct LobbyGateway;

#[websocket_gateway]
impl LobbyGateway {
    #[subscribe("id")]
    fn id(&self) -> &'static str {
        "the lobby"
    }
}

fn app() -> App {
    GatewayApp::new()
        .gateway::<RoomGateway>()
        .gateway::<FileGateway>()
        .gateway::<LobbyGateway>()
        .build()
        .unwrap()
}

#[tokio::test]
async fn the_parameter_of_the_path_reaches_hooks_handlers_and_the_handshake() {
    let server = TestServer::start(app()).await.unwrap();
    let mut client = server.connect("/rooms/42").await.unwrap();
    assert_eq!(client.expect("welcome").await.unwrap(), "42");

    client.emit("id", &()).await.unwrap();
    assert_eq!(client.expect("id").await.unwrap(), 42);
    client.emit("room", &()).await.unwrap();
    assert_eq!(client.expect("room").await.unwrap(), 42);
    client.emit("raw", &()).await.unwrap();
    assert_eq!(
        client.expect("raw").await.unwrap(),
        json!({"id": "42", "get": "42", "len": 1})
    );
}

#[tokio::test]
async fn values_are_percent_decoded() {
    let server = TestServer::start(app()).await.unwrap();
    let mut client = server.connect("/rooms/r%C3%A9union%201").await.unwrap();
    assert_eq!(client.expect("welcome").await.unwrap(), "réunion 1");

    let mut file = server.connect("/t/7/files/a/b%2Fc.txt").await.unwrap();
    file.emit("open", &()).await.unwrap();
    assert_eq!(file.expect("open").await.unwrap(), "7:a/b/c.txt");
}

#[tokio::test]
async fn a_path_that_does_not_fit_is_a_bad_request_and_the_socket_stays() {
    let server = TestServer::start(app()).await.unwrap();
    let mut client = server.connect("/rooms/abc").await.unwrap();
    assert_eq!(client.expect("welcome").await.unwrap(), "abc");
    client.emit("id", &()).await.unwrap();
    let err = client.expect("exception").await.unwrap();
    assert_eq!(
        err["message"],
        "Invalid path parameters: `id`: cannot parse u64: invalid digit found in string"
    );
    // Decoded once, and the same answer every time.
    client.emit("room", &()).await.unwrap();
    let err = client.expect("exception").await.unwrap();
    assert_eq!(
        err["message"],
        "Invalid path parameters: `id`: cannot parse u64: invalid digit found in string"
    );
    client.emit("raw", &()).await.unwrap();
    assert_eq!(client.expect("raw").await.unwrap()["id"], "abc");
}

#[tokio::test]
async fn a_hook_that_cannot_read_the_path_refuses_the_client() {
    let server = TestServer::start(app()).await.unwrap();
    let mut client = server.connect("/t/acme/files/x").await.unwrap();
    let err = client.expect("exception").await.unwrap();
    assert_eq!(
        err["message"],
        "Invalid path parameters: `tenant`: cannot parse u32: invalid digit found in string"
    );
    let close = client.expect_close().await.unwrap().expect("a close frame");
    assert_eq!(u16::from(close.code), 1008);
}

#[tokio::test]
async fn a_guard_reads_the_parameters_too() {
    let server = TestServer::start(app()).await.unwrap();
    let mut zero = server.connect("/rooms/0").await.unwrap();
    zero.emit("write", &()).await.unwrap();
    assert_eq!(
        zero.expect("exception").await.unwrap()["message"],
        "Forbidden resource"
    );
    let mut one = server.connect("/rooms/1").await.unwrap();
    one.emit("write", &()).await.unwrap();
    assert_eq!(one.expect("write").await.unwrap(), "written");
}

/// One gateway and one server for every path: a room per path is how to reach one path's
/// clients, and the server handle counts them all.
#[tokio::test]
async fn rooms_and_the_server_span_every_path_of_the_gateway() {
    let server = TestServer::start(app()).await.unwrap();
    let mut a1 = server.connect("/rooms/1").await.unwrap();
    let mut b1 = server.connect("/rooms/1").await.unwrap();
    let mut c2 = server.connect("/rooms/2").await.unwrap();
    for client in [&mut a1, &mut b1, &mut c2] {
        client.expect("welcome").await.unwrap();
    }
    let rooms = server.app().server("/rooms/{id}").unwrap();
    assert_eq!(rooms.client_count(), 3);
    assert_eq!(rooms.room_members("room:1").len(), 2);

    a1.emit("say", &"hi one").await.unwrap();
    assert_eq!(a1.expect("said").await.unwrap(), "hi one");
    assert_eq!(b1.expect("said").await.unwrap(), "hi one");
    assert_eq!(a1.expect("say").await.unwrap(), 2);
    c2.emit("say", &"hi two").await.unwrap();
    // c2's own broadcast is the first `said` it sees: it did not hear room 1.
    assert_eq!(c2.expect("said").await.unwrap(), "hi two");
    assert_eq!(c2.expect("say").await.unwrap(), 1);

    rooms.emit("all", &"everyone").unwrap();
    for client in [&mut a1, &mut b1, &mut c2] {
        assert_eq!(client.expect("all").await.unwrap(), "everyone");
    }
}

#[tokio::test]
async fn a_fixed_path_wins_over_a_parameter_and_other_paths_are_not_routed() {
    let server = TestServer::start(app()).await.unwrap();
    let mut lobby = server.connect("/rooms/lobby").await.unwrap();
    lobby.emit("id", &()).await.unwrap();
    assert_eq!(lobby.expect("id").await.unwrap(), "the lobby");

    for path in ["/rooms", "/rooms/", "/rooms/1/2", "/t/1/files"] {
        let Err(TestError::WebSocket(Error::Http(response))) = server.connect(path).await else {
            panic!("{path} was routed");
        };
        assert_eq!(response.status(), 404, "{path}");
    }
}

#[tokio::test]
async fn a_value_that_is_not_utf8_is_refused_before_the_upgrade() {
    let server = TestServer::start(app()).await.unwrap();
    let Err(TestError::WebSocket(Error::Http(response))) = server.connect("/rooms/%FF").await
    else {
        panic!("upgraded");
    };
    assert_eq!(response.status(), 400);
    let body = String::from_utf8(response.body().clone().unwrap_or_default()).unwrap();
    assert!(body.contains("Invalid UTF-8 in `id`"), "{body}");
}

/// A prefix of the transport may have parameters of its own: they come first.
#[tokio::test]
async fn a_prefix_adds_its_parameters() {
    #[derive(Clone, Deserialize)]
    struct Item {
        version: u8,
        id: String,
    }

    #[websocket_gateway(path = "/items/{id}")]
    struct ItemGateway;

    #[websocket_gateway]
    impl ItemGateway {
        #[subscribe("item")]
        fn item(&self, WsParam(item): WsParam<Item>) -> String {
            format!("v{} {}", item.version, item.id)
        }
    }

    let app = GatewayApp::new().gateway::<ItemGateway>().build().unwrap();
    let router: axum::Router = JsonTransport::default().at("/v/{version}").mount(&app);
    let server = TestServer::start_router(app, router).await.unwrap();
    let mut client = server.connect("/v/2/items/x").await.unwrap();
    client.emit("item", &()).await.unwrap();
    assert_eq!(client.expect("item").await.unwrap(), "v2 x");
}
