//! Lifecycle hooks with NestJS's meaning, dependency injection, the server handle used
//! from plain HTTP handlers, and several gateways side by side.

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::Notify;
use ws_gateway_axum::prelude::*;
use ws_gateway_axum::test_client::{TestError, TestServer};

/// What the hooks saw.
#[derive(Default)]
struct Journal {
    initialized: AtomicBool,
    /// `after_init` waits until the test opens this gate.
    gate_open: AtomicBool,
    gate: Notify,
    /// What `handle_connection` saw of `initialized`.
    connected_after_init: Mutex<Vec<bool>>,
    connected: Mutex<Vec<ClientId>>,
    disconnected: Mutex<Vec<ClientId>>,
    changed: Notify,
}

impl Journal {
    async fn wait_disconnected(&self, id: ClientId) {
        loop {
            let changed = self.changed.notified();
            if self.disconnected.lock().unwrap().contains(&id) {
                return;
            }
            changed.await;
        }
    }
}

#[websocket_gateway(path = "/life")]
struct LifeGateway {
    journal: Inject<Journal>,
}

#[websocket_gateway]
impl LifeGateway {
    #[subscribe("whoami")]
    fn whoami(&self, client: Client) -> ClientId {
        client.id()
    }

    #[subscribe("initialized")]
    fn initialized(&self) -> bool {
        self.journal.initialized.load(Ordering::SeqCst)
    }

    #[after_init]
    async fn init(&self, server: WsServer) {
        loop {
            let opened = self.journal.gate.notified();
            if self.journal.gate_open.load(Ordering::SeqCst) {
                break;
            }
            opened.await;
        }
        assert_eq!(server.path(), "/life");
        self.journal.initialized.store(true, Ordering::SeqCst);
    }

    #[handle_connection]
    fn connect(&self, client: Client) -> Result<(), WsException> {
        if client.handshake().uri.query() == Some("deny") {
            return Err(WsException::new("Not today"));
        }
        self.journal.connected.lock().unwrap().push(client.id());
        let initialized = self.journal.initialized.load(Ordering::SeqCst);
        self.journal
            .connected_after_init
            .lock()
            .unwrap()
            .push(initialized);
        Ok(())
    }

    #[handle_disconnect]
    async fn disconnect(&self, client: Client) {
        self.journal.disconnected.lock().unwrap().push(client.id());
        self.journal.changed.notify_waiters();
    }
}

#[websocket_gateway(path = "/other")]
struct OtherGateway {
    server: WsServer,
}

#[websocket_gateway]
impl OtherGateway {
    #[subscribe("shout")]
    fn shout(&self, text: String) -> usize {
        self.server.emit("shout", &text).unwrap()
    }
}

/// Lets `after_init` finish.
fn open_gate(journal: &Journal) {
    journal.gate_open.store(true, Ordering::SeqCst);
    journal.gate.notify_waiters();
}

/// An app whose `after_init` has finished.
fn app(journal: &std::sync::Arc<Journal>) -> App {
    open_gate(journal);
    gated_app(journal)
}

/// An app whose `after_init` waits for [`open_gate`].
fn gated_app(journal: &std::sync::Arc<Journal>) -> App {
    GatewayApp::new()
        .provide_arc(journal.clone())
        .gateway::<LifeGateway>()
        .gateway::<OtherGateway>()
        .build()
        .unwrap()
}

#[tokio::test]
async fn after_init_runs_before_the_first_message() {
    let journal = std::sync::Arc::new(Journal::default());
    let server = TestServer::start(gated_app(&journal)).await.unwrap();
    let mut client = server.connect("/life").await.unwrap();
    client.emit("initialized", &()).await.unwrap();
    // The connection is open and its message sent while `after_init` still waits: neither
    // `handle_connection` nor the handler may run yet.
    let gateway = server.app().server("/life").unwrap();
    tokio::time::timeout(std::time::Duration::from_secs(5), async {
        while gateway.client_count() == 0 {
            tokio::task::yield_now().await;
        }
    })
    .await
    .unwrap();
    assert!(journal.connected.lock().unwrap().is_empty());
    open_gate(&journal);
    assert_eq!(client.expect("initialized").await.unwrap(), json!(true));
    assert_eq!(*journal.connected_after_init.lock().unwrap(), [true]);
}

#[tokio::test]
async fn connect_and_disconnect_hooks_run_for_each_client() {
    let journal = std::sync::Arc::new(Journal::default());
    let server = TestServer::start(app(&journal)).await.unwrap();
    let mut client = server.connect("/life").await.unwrap();
    client.emit("whoami", &()).await.unwrap();
    let id: ClientId = client
        .expect("whoami")
        .await
        .unwrap()
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(journal.connected.lock().unwrap().contains(&id));
    client.close().await.unwrap();
    journal.wait_disconnected(id).await;
    assert_eq!(server.app().server("/life").unwrap().client_count(), 0);
}

#[tokio::test]
async fn disconnect_runs_after_an_abrupt_tcp_close() {
    let journal = std::sync::Arc::new(Journal::default());
    let server = TestServer::start(app(&journal)).await.unwrap();
    let mut client = server.connect("/life").await.unwrap();
    client.emit("whoami", &()).await.unwrap();
    let id: ClientId = client
        .expect("whoami")
        .await
        .unwrap()
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    // Drop the TCP stream without a close frame.
    drop(client.into_inner());
    tokio::time::timeout(
        std::time::Duration::from_secs(5),
        journal.wait_disconnected(id),
    )
    .await
    .expect("handle_disconnect after an abrupt close");
}

#[tokio::test]
async fn handle_connection_may_reject_a_client() {
    let journal = std::sync::Arc::new(Journal::default());
    let server = TestServer::start(app(&journal)).await.unwrap();
    let mut client = server.connect("/life?deny").await.unwrap();
    let err = client.expect("exception").await.unwrap();
    assert_eq!(err, json!({"status": "error", "message": "Not today"}));
    let close = client.expect_close().await.unwrap().unwrap();
    assert_eq!(u16::from(close.code), 1008);
    assert_eq!(close.reason.as_str(), "Not today");
    assert!(journal.connected.lock().unwrap().is_empty());
}

#[tokio::test]
async fn gateways_on_different_paths_work_side_by_side() {
    let journal = std::sync::Arc::new(Journal::default());
    let server = TestServer::start(app(&journal)).await.unwrap();
    let mut life = server.connect("/life").await.unwrap();
    let mut other_a = server.connect("/other").await.unwrap();
    let mut other_b = server.connect("/other").await.unwrap();
    other_a.emit("shout", &"hey").await.unwrap();
    // Both clients of /other receive the broadcast; the reply says two were reached.
    assert_eq!(other_a.expect("shout").await.unwrap(), json!("hey"));
    assert_eq!(other_a.expect("shout").await.unwrap(), json!(2));
    assert_eq!(other_b.expect("shout").await.unwrap(), json!("hey"));
    // The /life client got nothing: its next frame answers its own request.
    life.emit("whoami", &()).await.unwrap();
    assert_eq!(life.recv().await.unwrap().event, "whoami");
}

#[tokio::test]
async fn the_server_handle_pushes_from_an_http_handler() {
    let journal = std::sync::Arc::new(Journal::default());
    let app = app(&journal);
    let other = app.server_of::<OtherGateway>().unwrap();
    let router = app.clone().into_router().route(
        "/notify",
        axum::routing::post(move |body: String| {
            let other = other.clone();
            async move { other.emit("notice", &body).unwrap().to_string() }
        }),
    );
    let server = TestServer::start_router(app, router).await.unwrap();
    let mut client = server.connect("/other").await.unwrap();

    let mut http = tokio::net::TcpStream::connect(server.addr()).await.unwrap();
    http.write_all(b"POST /notify HTTP/1.1\r\nHost: test\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello")
        .await
        .unwrap();
    let mut response = String::new();
    http.read_to_string(&mut response).await.unwrap();
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    assert!(response.ends_with("\r\n\r\n1"), "{response}");
    assert_eq!(client.expect("notice").await.unwrap(), json!("hello"));
}

#[tokio::test]
async fn an_unknown_path_is_not_a_gateway() {
    let journal = std::sync::Arc::new(Journal::default());
    let server = TestServer::start(app(&journal)).await.unwrap();
    let err = server.connect("/missing").await.unwrap_err();
    match err {
        TestError::WebSocket(tokio_tungstenite::tungstenite::Error::Http(response)) => {
            assert_eq!(response.status(), 404);
        }
        other => panic!("expected a 404, got {other:?}"),
    }
}

#[test]
fn a_missing_provider_fails_build_naming_gateway_field_and_type() {
    let err = GatewayApp::new()
        .gateway::<LifeGateway>()
        .build()
        .unwrap_err()
        .to_string();
    assert_eq!(
        err,
        "can't resolve dependencies of LifeGateway: field `journal` needs `lifecycle::Journal`, \
         which was not provided; add `.provide(...)` with a `lifecycle::Journal` to the GatewayApp builder"
    );
}

#[tokio::test]
async fn handlers_are_plain_methods_callable_without_a_socket() {
    let journal = Journal::default();
    journal.initialized.store(true, Ordering::SeqCst);
    let gateway = LifeGateway {
        journal: Inject::new(journal),
    };
    assert!(gateway.initialized());

    // A handler's effects, through a server handle and a client opened without a socket.
    let app = app(&std::sync::Arc::new(Journal::default()));
    let runtime = app
        .gateways()
        .iter()
        .find(|gateway| gateway.path() == "/other")
        .unwrap();
    let (_client, mut queue) = runtime.open(ws_gateway_core::Handshake::default(), 8);
    let other = OtherGateway {
        server: app.server("/other").unwrap(),
    };
    assert_eq!(other.shout("hi".to_owned()), 1);
    let Some(ws_gateway_core::transport::Outbound::Frame(frame)) = queue.try_recv() else {
        panic!("nothing was sent to the client");
    };
    assert_eq!(frame.as_str(), r#"{"event":"shout","data":"hi"}"#);
}
