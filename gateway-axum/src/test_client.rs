//! Integration testing over real sockets: [`TestServer`] serves an app on an ephemeral
//! port, [`TestClient`] is a WebSocket client that speaks the JSON protocol (enable the
//! `test-client` feature, usually in `[dev-dependencies]`).
//!
//! ```
//! use ws_gateway_axum::prelude::*;
//! use ws_gateway_axum::test_client::TestServer;
//!
//! #[websocket_gateway(path = "/echo")]
//! struct Echo;
//!
//! #[websocket_gateway]
//! impl Echo {
//!     #[subscribe("echo")]
//!     fn echo(&self, data: serde_json::Value) -> serde_json::Value {
//!         data
//!     }
//! }
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let server = TestServer::start(GatewayApp::new().gateway::<Echo>().build()?).await?;
//! let mut client = server.connect("/echo").await?;
//! client.emit("echo", &serde_json::json!({"hi": 1})).await?;
//! assert_eq!(client.expect("echo").await?, serde_json::json!({"hi": 1}));
//! # Ok(())
//! # }
//! ```

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde::Serialize;
use serde_json::Value;
use tokio::net::TcpStream;
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};
use ws_gateway_core::App;

use crate::IntoRouter;

/// How long [`TestClient`] waits for a frame by default.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
///
/// assert_eq!(ws_gateway_axum::test_client::DEFAULT_TIMEOUT, Duration::from_secs(5));
/// ```
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);

/// What went wrong in a test client.
///
/// # Examples
///
/// Waiting for a frame that never comes:
///
/// ```
/// use std::time::Duration;
/// # use ws_gateway_axum::prelude::*;
/// # use ws_gateway_axum::test_client::{TestError, TestServer};
/// # #[websocket_gateway(path = "/doc-tc-error")] struct Quiet;
/// # #[websocket_gateway] impl Quiet {}
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), TestError> {
/// # let server = TestServer::start(GatewayApp::new().gateway::<Quiet>().build().unwrap()).await?;
/// let client = server.connect("/doc-tc-error").await?;
/// let mut client = client.with_timeout(Duration::from_millis(50));
/// let err = client.recv().await.unwrap_err();
/// assert!(matches!(err, TestError::Timeout(..)));
/// assert_eq!(err.to_string(), "timed out after 50ms waiting for a frame");
/// # Ok(())
/// # }
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TestError {
    /// Nothing arrived in time.
    #[error("timed out after {0:?} waiting for {1}")]
    Timeout(Duration, String),
    /// The server closed the connection.
    #[error("the connection closed: {0:?}")]
    Closed(Option<CloseFrame>),
    /// A WebSocket error.
    #[error(transparent)]
    WebSocket(#[from] tokio_tungstenite::tungstenite::Error),
    /// A frame that is not the JSON protocol.
    #[error("unexpected frame {0:?}")]
    Unexpected(Message),
    /// JSON (de)serialization failed.
    #[error(transparent)]
    Json(#[from] serde_json::Error),
    /// The server could not start.
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

/// An app served on `127.0.0.1` on an ephemeral port, stopped when dropped.
///
/// # Examples
///
/// ```
/// # use ws_gateway_axum::prelude::*;
/// # use ws_gateway_axum::test_client::{TestError, TestServer};
/// # #[websocket_gateway(path = "/doc-tc-server")] struct Served;
/// # #[websocket_gateway] impl Served { #[subscribe("e")] fn e(&self, n: u32) -> u32 { n } }
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), TestError> {
/// let app = GatewayApp::new().gateway::<Served>().build().unwrap();
/// let server = TestServer::start(app).await?;
/// let mut client = server.connect("/doc-tc-server").await?;
/// client.emit("e", &7).await?;
/// assert_eq!(client.expect("e").await?, 7);
/// drop(server);
/// # Ok(())
/// # }
/// ```
#[derive(Debug)]
pub struct TestServer {
    addr: SocketAddr,
    app: App,
    task: JoinHandle<()>,
}

impl TestServer {
    /// Serves the app's router.
    ///
    /// # Errors
    ///
    /// The listener's error.
    ///
    /// # Examples
    ///
    /// ```
    /// # use ws_gateway_axum::prelude::*;
    /// # use ws_gateway_axum::test_client::{TestError, TestServer};
    /// # #[websocket_gateway(path = "/doc-tc-start")] struct Started;
    /// # #[websocket_gateway] impl Started { #[subscribe("e")] fn e(&self, n: u32) -> u32 { n } }
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), TestError> {
    /// let app = GatewayApp::new().gateway::<Started>().build().unwrap();
    /// let server = TestServer::start(app).await?;
    /// let mut client = server.connect("/doc-tc-start").await?;
    /// client.emit("e", &1).await?;
    /// assert_eq!(client.expect("e").await?, 1);
    /// # Ok(())
    /// # }
    /// ```
    pub async fn start(app: App) -> Result<Self, TestError> {
        let router = (&app).into_router();
        Self::start_router(app, router).await
    }

    /// Serves a router built from `app` (with your own routes or layers).
    ///
    /// # Errors
    ///
    /// The listener's error.
    ///
    /// # Examples
    ///
    /// With a route of your own next to the gateways:
    ///
    /// ```
    /// use tokio::io::{AsyncReadExt, AsyncWriteExt};
    ///
    /// # use ws_gateway_axum::prelude::*;
    /// # use ws_gateway_axum::test_client::{TestError, TestServer};
    /// # #[websocket_gateway(path = "/doc-tc-start-router")] struct Routed;
    /// # #[websocket_gateway] impl Routed { #[subscribe("e")] fn e(&self, n: u32) -> u32 { n } }
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), TestError> {
    /// let app = GatewayApp::new().gateway::<Routed>().build().unwrap();
    /// let router = (&app).into_router().route("/health", axum::routing::get(|| async { "ok" }));
    /// let server = TestServer::start_router(app, router).await?;
    ///
    /// let mut tcp = tokio::net::TcpStream::connect(server.addr()).await?;
    /// tcp.write_all(b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").await?;
    /// let mut response = String::new();
    /// tcp.read_to_string(&mut response).await?;
    /// assert!(response.starts_with("HTTP/1.1 200"));
    /// assert!(response.ends_with("ok"));
    /// assert!(server.connect("/doc-tc-start-router").await.is_ok());
    /// # Ok(())
    /// # }
    /// ```
    pub async fn start_router(app: App, router: axum::Router) -> Result<Self, TestError> {
        let listener = crate::bind(SocketAddr::from(([127, 0, 0, 1], 0)))?;
        let addr = listener.local_addr()?;
        let served = app.clone();
        let task = tokio::spawn(async move {
            // Stops accepting when `shutdown` begins the app's shutdown.
            let connections = served.connections().clone();
            let signal = async move { connections.shutting_down().await };
            let grace = std::time::Duration::from_secs(5);
            let serve = crate::serve(listener, router)
                .write_timeout(served.config().write_timeout)
                .with_graceful_shutdown(&served, signal)
                .grace(grace);
            if let Err(err) = serve.await {
                tracing::error!(target: "gateway", "test server failed: {err}");
            }
        });
        Ok(Self { addr, app, task })
    }

    /// Shuts the server down gracefully (see [`Serve::with_graceful_shutdown`](crate::Serve::with_graceful_shutdown)): in-flight handlers get
    /// `grace`, clients are closed with 1001, the listener stops. Returns how many
    /// connections were still open after the deadline.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// # use ws_gateway_axum::prelude::*;
    /// # use ws_gateway_axum::test_client::{TestError, TestServer};
    /// # #[websocket_gateway(path = "/doc-tc-shutdown")] struct Stopping;
    /// # #[websocket_gateway] impl Stopping {}
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), TestError> {
    /// # let server = TestServer::start(GatewayApp::new().gateway::<Stopping>().build().unwrap()).await?;
    /// let mut client = server.connect("/doc-tc-shutdown").await?;
    /// assert_eq!(server.shutdown(Duration::from_secs(1)).await, 0);
    /// let close = client.expect_close().await?.unwrap();
    /// assert_eq!(u16::from(close.code), 1001);
    /// # Ok(())
    /// # }
    /// ```
    pub async fn shutdown(&self, grace: std::time::Duration) -> usize {
        self.app.shutdown(grace).await
    }

    /// The address served.
    ///
    /// # Examples
    ///
    /// ```
    /// # use ws_gateway_axum::prelude::*;
    /// # use ws_gateway_axum::test_client::{TestError, TestServer};
    /// # #[websocket_gateway(path = "/doc-tc-addr")] struct Addressed;
    /// # #[websocket_gateway] impl Addressed {}
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), TestError> {
    /// # let server = TestServer::start(GatewayApp::new().gateway::<Addressed>().build().unwrap()).await?;
    /// let addr = server.addr();
    /// assert!(addr.ip().is_loopback());
    /// assert_ne!(addr.port(), 0);
    /// # Ok(())
    /// # }
    /// ```
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The app served.
    ///
    /// # Examples
    ///
    /// ```
    /// # use ws_gateway_axum::prelude::*;
    /// # use ws_gateway_axum::test_client::{TestError, TestServer};
    /// # #[websocket_gateway(path = "/doc-tc-app")] struct Served;
    /// # #[websocket_gateway] impl Served {}
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), TestError> {
    /// # let server = TestServer::start(GatewayApp::new().gateway::<Served>().build().unwrap()).await?;
    /// let paths: Vec<_> = server.app().gateways().iter().map(|g| g.path()).collect();
    /// assert_eq!(paths, ["/doc-tc-app"]);
    /// # Ok(())
    /// # }
    /// ```
    pub fn app(&self) -> &App {
        &self.app
    }

    /// `ws://127.0.0.1:<port><path>`.
    ///
    /// # Examples
    ///
    /// ```
    /// # use ws_gateway_axum::prelude::*;
    /// # use ws_gateway_axum::test_client::{TestError, TestServer};
    /// # #[websocket_gateway(path = "/doc-tc-url")] struct Located;
    /// # #[websocket_gateway] impl Located {}
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), TestError> {
    /// # let server = TestServer::start(GatewayApp::new().gateway::<Located>().build().unwrap()).await?;
    /// assert_eq!(server.url("/doc-tc-url"), format!("ws://{}/doc-tc-url", server.addr()));
    /// # Ok(())
    /// # }
    /// ```
    pub fn url(&self, path: &str) -> String {
        format!("ws://{}{}", self.addr, path)
    }

    /// Connects a client to the gateway at `path`.
    ///
    /// # Errors
    ///
    /// The handshake's error (an HTTP error status included).
    ///
    /// # Examples
    ///
    /// A path with no gateway answers the handshake with 404:
    ///
    /// ```
    /// use tokio_tungstenite::tungstenite::Error;
    ///
    /// # use ws_gateway_axum::prelude::*;
    /// # use ws_gateway_axum::test_client::{TestError, TestServer};
    /// # #[websocket_gateway(path = "/doc-tc-connect")] struct Reached;
    /// # #[websocket_gateway] impl Reached {}
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), TestError> {
    /// # let server = TestServer::start(GatewayApp::new().gateway::<Reached>().build().unwrap()).await?;
    /// assert!(server.connect("/doc-tc-connect").await.is_ok());
    /// let Err(TestError::WebSocket(Error::Http(response))) = server.connect("/nowhere").await else {
    ///     panic!("connected to no gateway");
    /// };
    /// assert_eq!(response.status(), 404);
    /// # Ok(())
    /// # }
    /// ```
    pub async fn connect(&self, path: &str) -> Result<TestClient, TestError> {
        TestClient::connect(&self.url(path)).await
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A frame received by a [`TestClient`].
///
/// # Examples
///
/// ```
/// # use ws_gateway_axum::prelude::*;
/// # use ws_gateway_axum::test_client::{TestError, TestServer};
/// # #[websocket_gateway(path = "/doc-tc-received")] struct Framed;
/// # #[websocket_gateway] impl Framed { #[subscribe("e")] fn e(&self, n: u32) -> u32 { n } }
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), TestError> {
/// # let server = TestServer::start(GatewayApp::new().gateway::<Framed>().build().unwrap()).await?;
/// let mut client = server.connect("/doc-tc-received").await?;
/// client.emit_with_id("e", &5, "q1").await?;
/// let frame = client.recv().await?;
/// assert_eq!(frame.event, "e");
/// assert_eq!(frame.data, 5);
/// assert_eq!(frame.id, Some(serde_json::json!("q1")));
/// assert_eq!(frame.raw, r#"{"event":"e","data":5,"id":"q1"}"#);
/// # Ok(())
/// # }
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct Received {
    /// The `event` field.
    pub event: String,
    /// The `data` field (`null` when absent).
    pub data: Value,
    /// The `id` field, when present.
    pub id: Option<Value>,
    /// The `ack` field: the server asks for an acknowledgement under this number
    /// (answer it with [`TestClient::answer`]).
    pub ack: Option<u64>,
    /// The frame's text as it arrived.
    pub raw: String,
    /// The `offset` field: the frame's place in the recovery log, on frames delivered
    /// through an emit, a room or a broadcast when the gateway has
    /// [`Recovery`](ws_gateway_core::Recovery) on.
    pub offset: Option<String>,
}

/// A WebSocket client speaking the JSON protocol, for tests.
///
/// # Examples
///
/// Connecting by URL, e.g. to a server started another way:
///
/// ```
/// # use ws_gateway_axum::prelude::*;
/// # use ws_gateway_axum::test_client::{TestClient, TestError, TestServer};
/// # #[websocket_gateway(path = "/doc-tc-client")] struct Clients;
/// # #[websocket_gateway] impl Clients { #[subscribe("e")] fn e(&self, n: u32) -> u32 { n } }
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), TestError> {
/// # let server = TestServer::start(GatewayApp::new().gateway::<Clients>().build().unwrap()).await?;
/// let mut client = TestClient::connect(&server.url("/doc-tc-client")).await?;
/// client.emit("e", &3).await?;
/// assert_eq!(client.expect("e").await?, 3);
/// client.close().await?;
/// # Ok(())
/// # }
/// ```
#[derive(Debug)]
pub struct TestClient {
    ws: WebSocketStream<MaybeTlsStream<TcpStream>>,
    timeout: Duration,
    skipped: VecDeque<Received>,
}

impl TestClient {
    /// Connects to a `ws://` URL.
    ///
    /// # Errors
    ///
    /// The handshake's error.
    ///
    /// # Examples
    ///
    /// ```
    /// # use ws_gateway_axum::prelude::*;
    /// # use ws_gateway_axum::test_client::{TestClient, TestError, TestServer};
    /// # #[websocket_gateway(path = "/doc-tc-client-connect")] struct ByUrl;
    /// # #[websocket_gateway] impl ByUrl { #[subscribe("e")] fn e(&self, n: u32) -> u32 { n } }
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), TestError> {
    /// # let server = TestServer::start(GatewayApp::new().gateway::<ByUrl>().build().unwrap()).await?;
    /// let url = format!("ws://{}/doc-tc-client-connect", server.addr());
    /// let mut client = TestClient::connect(&url).await?;
    /// client.emit("e", &4).await?;
    /// assert_eq!(client.expect("e").await?, 4);
    /// # Ok(())
    /// # }
    /// ```
    pub async fn connect(url: &str) -> Result<Self, TestError> {
        let (ws, _) = tokio_tungstenite::connect_async(url).await?;
        Ok(Self::from_stream(ws))
    }

    /// Wraps a connected stream (e.g. one opened with custom headers).
    ///
    /// # Examples
    ///
    /// A handshake with a header of your own:
    ///
    /// ```
    /// use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    ///
    /// # use ws_gateway_axum::prelude::*;
    /// # use ws_gateway_axum::test_client::{TestClient, TestError, TestServer};
    /// # #[websocket_gateway(path = "/doc-tc-from-stream")] struct Tenants;
    /// # #[websocket_gateway] impl Tenants {
    /// #     #[subscribe("tenant")]
    /// #     fn tenant(&self, client: Client) -> Option<String> {
    /// #         let header = client.handshake().headers.get("x-tenant")?;
    /// #         header.to_str().ok().map(str::to_owned)
    /// #     }
    /// # }
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), TestError> {
    /// # let server = TestServer::start(GatewayApp::new().gateway::<Tenants>().build().unwrap()).await?;
    /// let mut request = server.url("/doc-tc-from-stream").into_client_request()?;
    /// request.headers_mut().insert("x-tenant", "acme".parse().unwrap());
    /// let (ws, _) = tokio_tungstenite::connect_async(request).await?;
    /// let mut client = TestClient::from_stream(ws);
    /// client.emit("tenant", &()).await?;
    /// assert_eq!(client.expect("tenant").await?, "acme");
    /// # Ok(())
    /// # }
    /// ```
    pub fn from_stream(ws: WebSocketStream<MaybeTlsStream<TcpStream>>) -> Self {
        Self {
            ws,
            timeout: DEFAULT_TIMEOUT,
            skipped: VecDeque::new(),
        }
    }

    /// Sets how long to wait for a frame.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// # use ws_gateway_axum::prelude::*;
    /// # use ws_gateway_axum::test_client::{TestError, TestServer};
    /// # #[websocket_gateway(path = "/doc-tc-timeout")] struct Patient;
    /// # #[websocket_gateway] impl Patient {}
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), TestError> {
    /// # let server = TestServer::start(GatewayApp::new().gateway::<Patient>().build().unwrap()).await?;
    /// let client = server.connect("/doc-tc-timeout").await?;
    /// let mut client = client.with_timeout(Duration::from_millis(20));
    /// let err = client.expect("never").await.unwrap_err();
    /// assert_eq!(err.to_string(), r#"timed out after 20ms waiting for event "never""#);
    /// # Ok(())
    /// # }
    /// ```
    #[must_use]
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Sends `{"event": event, "data": data}`.
    ///
    /// # Errors
    ///
    /// The socket's error.
    ///
    /// # Examples
    ///
    /// ```
    /// # use ws_gateway_axum::prelude::*;
    /// # use ws_gateway_axum::test_client::{TestError, TestServer};
    /// # #[websocket_gateway(path = "/doc-tc-emit")] struct Emitted;
    /// # #[websocket_gateway] impl Emitted { #[subscribe("e")] fn e(&self, n: u32) -> u32 { n } }
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), TestError> {
    /// # let server = TestServer::start(GatewayApp::new().gateway::<Emitted>().build().unwrap()).await?;
    /// let mut client = server.connect("/doc-tc-emit").await?;
    /// client.emit("e", &9).await?;
    /// assert_eq!(client.expect("e").await?, 9);
    /// # Ok(())
    /// # }
    /// ```
    pub async fn emit<T: Serialize + ?Sized>(
        &mut self,
        event: &str,
        data: &T,
    ) -> Result<(), TestError> {
        let text = serde_json::to_string(&serde_json::json!({"event": event, "data": data}))?;
        self.send_text(text).await
    }

    /// Sends `{"event": event, "data": data, "id": id}`: the replies carry the same id.
    ///
    /// # Errors
    ///
    /// The socket's error.
    ///
    /// # Examples
    ///
    /// ```
    /// # use ws_gateway_axum::prelude::*;
    /// # use ws_gateway_axum::test_client::{TestError, TestServer};
    /// # #[websocket_gateway(path = "/doc-tc-emit-id")] struct Tagged;
    /// # #[websocket_gateway] impl Tagged { #[subscribe("e")] fn e(&self, n: u32) -> u32 { n } }
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), TestError> {
    /// # let server = TestServer::start(GatewayApp::new().gateway::<Tagged>().build().unwrap()).await?;
    /// let mut client = server.connect("/doc-tc-emit-id").await?;
    /// client.emit_with_id("e", &2, 41).await?;
    /// let frame = client.expect_frame("e").await?;
    /// assert_eq!((frame.data, frame.id), (serde_json::json!(2), Some(serde_json::json!(41))));
    /// # Ok(())
    /// # }
    /// ```
    pub async fn emit_with_id<T: Serialize + ?Sized, I: Serialize>(
        &mut self,
        event: &str,
        data: &T,
        id: I,
    ) -> Result<(), TestError> {
        let text =
            serde_json::to_string(&serde_json::json!({"event": event, "data": data, "id": id}))?;
        self.send_text(text).await
    }

    /// Answers the server's acknowledgement `ack` (a frame's [`Received::ack`]):
    /// `{"ack": ack, "data": data}`.
    ///
    /// # Errors
    ///
    /// [`TestError`] when the data fails to serialize or the socket fails.
    ///
    /// # Examples
    ///
    /// ```
    /// # use ws_gateway_axum::prelude::*;
    /// # use ws_gateway_axum::test_client::{TestError, TestServer};
    /// #[websocket_gateway(path = "/doc-tc-answer")]
    /// struct Asking;
    ///
    /// #[websocket_gateway]
    /// impl Asking {
    ///     #[subscribe("ask")]
    ///     async fn ask(&self, client: Client) -> Result<String, WsException> {
    ///         let name: String = client.emit_with_ack("name?", &()).await?;
    ///         Ok(format!("hello {name}"))
    ///     }
    /// }
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), TestError> {
    /// # let server = TestServer::start(GatewayApp::new().gateway::<Asking>().build().unwrap()).await?;
    /// let mut client = server.connect("/doc-tc-answer").await?;
    /// client.emit("ask", &()).await?;
    /// let question = client.expect_frame("name?").await?;
    /// client.answer(question.ack.unwrap(), &"ann").await?;
    /// assert_eq!(client.expect("ask").await?, "hello ann");
    /// # Ok(())
    /// # }
    /// ```
    pub async fn answer<T: Serialize + ?Sized>(
        &mut self,
        ack: u64,
        data: &T,
    ) -> Result<(), TestError> {
        let text = serde_json::to_string(&serde_json::json!({ "ack": ack, "data": data }))?;
        self.send_text(text).await
    }

    /// Sends a raw text frame.
    ///
    /// # Errors
    ///
    /// The socket's error.
    ///
    /// # Examples
    ///
    /// ```
    /// # use ws_gateway_axum::prelude::*;
    /// # use ws_gateway_axum::test_client::{TestError, TestServer};
    /// # #[websocket_gateway(path = "/doc-tc-send-text")] struct Texted;
    /// # #[websocket_gateway] impl Texted { #[subscribe("e")] fn e(&self, n: u32) -> u32 { n } }
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), TestError> {
    /// # let server = TestServer::start(GatewayApp::new().gateway::<Texted>().build().unwrap()).await?;
    /// let mut client = server.connect("/doc-tc-send-text").await?;
    /// client.send_text(r#"{"event":"e","data":6}"#).await?;
    /// assert_eq!(client.expect("e").await?, 6);
    /// # Ok(())
    /// # }
    /// ```
    pub async fn send_text(&mut self, text: impl Into<String>) -> Result<(), TestError> {
        Ok(self.ws.send(Message::text(text.into())).await?)
    }

    /// Sends a raw binary frame.
    ///
    /// # Errors
    ///
    /// The socket's error.
    ///
    /// # Examples
    ///
    /// The JSON protocol refuses binary frames with an exception:
    ///
    /// ```
    /// # use ws_gateway_axum::prelude::*;
    /// # use ws_gateway_axum::test_client::{TestError, TestServer};
    /// # #[websocket_gateway(path = "/doc-tc-send-binary")] struct Binary;
    /// # #[websocket_gateway] impl Binary { #[subscribe("e")] fn e(&self, n: u32) -> u32 { n } }
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), TestError> {
    /// # let server = TestServer::start(GatewayApp::new().gateway::<Binary>().build().unwrap()).await?;
    /// let mut client = server.connect("/doc-tc-send-binary").await?;
    /// client.send_binary(vec![1, 2, 3]).await?;
    /// let exception = client.expect("exception").await?;
    /// assert_eq!(exception["status"], "error");
    /// # Ok(())
    /// # }
    /// ```
    pub async fn send_binary(&mut self, bytes: impl Into<Vec<u8>>) -> Result<(), TestError> {
        Ok(self.ws.send(Message::binary(bytes.into())).await?)
    }

    /// The next frame: one skipped earlier by [`expect`](Self::expect), else the next to
    /// arrive.
    ///
    /// # Errors
    ///
    /// [`TestError::Timeout`], [`TestError::Closed`], or a frame that is not JSON.
    ///
    /// # Examples
    ///
    /// A frame skipped by [`expect`](Self::expect) is returned first:
    ///
    /// ```
    /// # use ws_gateway_axum::prelude::*;
    /// # use ws_gateway_axum::test_client::{TestError, TestServer};
    /// # #[websocket_gateway(path = "/doc-tc-recv")] struct Pairs;
    /// # #[websocket_gateway] impl Pairs {
    /// #     #[subscribe("a")]
    /// #     fn a(&self, n: u32) -> u32 {
    /// #         n
    /// #     }
    /// #     #[subscribe("b")]
    /// #     fn b(&self, n: u32) -> u32 {
    /// #         n
    /// #     }
    /// # }
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), TestError> {
    /// # let server = TestServer::start(GatewayApp::new().gateway::<Pairs>().build().unwrap()).await?;
    /// let mut client = server.connect("/doc-tc-recv").await?;
    /// client.emit("a", &1).await?;
    /// client.emit("b", &2).await?;
    /// assert_eq!(client.expect("b").await?, 2);
    /// let frame = client.recv().await?;
    /// assert_eq!((frame.event.as_str(), frame.data), ("a", serde_json::json!(1)));
    /// # Ok(())
    /// # }
    /// ```
    pub async fn recv(&mut self) -> Result<Received, TestError> {
        if let Some(frame) = self.skipped.pop_front() {
            return Ok(frame);
        }
        self.recv_from_socket("a frame").await
    }

    async fn recv_from_socket(&mut self, what: &str) -> Result<Received, TestError> {
        loop {
            let next = tokio::time::timeout(self.timeout, self.ws.next())
                .await
                .map_err(|_| TestError::Timeout(self.timeout, what.to_owned()))?;
            match next {
                Some(Ok(Message::Text(text))) => {
                    let mut value: Value = serde_json::from_str(&text)?;
                    let event = match value.get("event").and_then(Value::as_str) {
                        Some(event) => event.to_owned(),
                        None => return Err(TestError::Unexpected(Message::Text(text))),
                    };
                    return Ok(Received {
                        event,
                        data: value
                            .get_mut("data")
                            .map(Value::take)
                            .unwrap_or(Value::Null),
                        id: value.get_mut("id").map(Value::take),
                        ack: value.get("ack").and_then(Value::as_u64),
                        offset: value
                            .get("offset")
                            .and_then(Value::as_str)
                            .map(str::to_owned),
                        raw: text.as_str().to_owned(),
                    });
                }
                Some(Ok(Message::Close(frame))) => return Err(TestError::Closed(frame)),
                Some(Ok(Message::Ping(_) | Message::Pong(_))) => {}
                Some(Ok(other)) => return Err(TestError::Unexpected(other)),
                Some(Err(err)) => return Err(err.into()),
                None => return Err(TestError::Closed(None)),
            }
        }
    }

    /// Waits for a frame of `event` and returns its data; frames of other events that
    /// arrive first are kept for [`recv`](Self::recv).
    ///
    /// # Errors
    ///
    /// [`TestError::Timeout`] or [`TestError::Closed`] before the event arrived.
    ///
    /// # Examples
    ///
    /// ```
    /// # use ws_gateway_axum::prelude::*;
    /// # use ws_gateway_axum::test_client::{TestError, TestServer};
    /// # #[websocket_gateway(path = "/doc-tc-expect")] struct Expected;
    /// # #[websocket_gateway] impl Expected { #[subscribe("e")] fn e(&self, n: u32) -> u32 { n } }
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), TestError> {
    /// # let server = TestServer::start(GatewayApp::new().gateway::<Expected>().build().unwrap()).await?;
    /// let mut client = server.connect("/doc-tc-expect").await?;
    /// client.emit("e", &8).await?;
    /// assert_eq!(client.expect("e").await?, 8);
    /// # Ok(())
    /// # }
    /// ```
    pub async fn expect(&mut self, event: &str) -> Result<Value, TestError> {
        self.expect_frame(event).await.map(|frame| frame.data)
    }

    /// Like [`expect`](Self::expect), returning the whole frame (with its `id`).
    ///
    /// # Errors
    ///
    /// [`TestError::Timeout`] or [`TestError::Closed`] before the event arrived.
    ///
    /// # Examples
    ///
    /// ```
    /// # use ws_gateway_axum::prelude::*;
    /// # use ws_gateway_axum::test_client::{TestError, TestServer};
    /// # #[websocket_gateway(path = "/doc-tc-expect-frame")] struct Whole;
    /// # #[websocket_gateway] impl Whole { #[subscribe("e")] fn e(&self, n: u32) -> u32 { n } }
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), TestError> {
    /// # let server = TestServer::start(GatewayApp::new().gateway::<Whole>().build().unwrap()).await?;
    /// let mut client = server.connect("/doc-tc-expect-frame").await?;
    /// client.emit_with_id("e", &1, "r1").await?;
    /// let frame = client.expect_frame("e").await?;
    /// assert_eq!(frame.id, Some(serde_json::json!("r1")));
    /// # Ok(())
    /// # }
    /// ```
    pub async fn expect_frame(&mut self, event: &str) -> Result<Received, TestError> {
        if let Some(at) = self.skipped.iter().position(|f| f.event == event)
            && let Some(frame) = self.skipped.remove(at)
        {
            return Ok(frame);
        }
        let what = format!("event {event:?}");
        loop {
            let frame = self.recv_from_socket(&what).await?;
            if frame.event == event {
                return Ok(frame);
            }
            self.skipped.push_back(frame);
        }
    }

    /// Waits for the server to close the connection; returns its close frame.
    ///
    /// # Errors
    ///
    /// [`TestError::Timeout`], or a frame that arrived instead.
    ///
    /// # Examples
    ///
    /// ```
    /// # use ws_gateway_axum::prelude::*;
    /// # use ws_gateway_axum::test_client::{TestError, TestServer};
    /// # #[websocket_gateway(path = "/doc-tc-expect-close")] struct Kicks;
    /// # #[websocket_gateway] impl Kicks {
    /// #     #[subscribe("kick")]
    /// #     fn kick(&self, client: Client) {
    /// #         client.close(4001, "kicked");
    /// #     }
    /// # }
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), TestError> {
    /// # let server = TestServer::start(GatewayApp::new().gateway::<Kicks>().build().unwrap()).await?;
    /// let mut client = server.connect("/doc-tc-expect-close").await?;
    /// client.emit("kick", &()).await?;
    /// let close = client.expect_close().await?.unwrap();
    /// assert_eq!((u16::from(close.code), close.reason.as_str()), (4001, "kicked"));
    /// # Ok(())
    /// # }
    /// ```
    pub async fn expect_close(&mut self) -> Result<Option<CloseFrame>, TestError> {
        match self.recv_from_socket("the close frame").await {
            Err(TestError::Closed(frame)) => Ok(frame),
            Err(TestError::WebSocket(
                tokio_tungstenite::tungstenite::Error::ConnectionClosed
                | tokio_tungstenite::tungstenite::Error::Protocol(_),
            )) => Ok(None),
            Err(err) => Err(err),
            Ok(frame) => Err(TestError::Unexpected(Message::text(format!(
                "{{\"event\":{:?}}}",
                frame.event
            )))),
        }
    }

    /// Closes the connection with a close frame.
    ///
    /// # Errors
    ///
    /// The socket's error.
    ///
    /// # Examples
    ///
    /// ```
    /// # use ws_gateway_axum::prelude::*;
    /// # use ws_gateway_axum::test_client::{TestError, TestServer};
    /// # #[websocket_gateway(path = "/doc-tc-close")] struct Closing;
    /// # #[websocket_gateway] impl Closing {}
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), TestError> {
    /// # let server = TestServer::start(GatewayApp::new().gateway::<Closing>().build().unwrap()).await?;
    /// let client = server.connect("/doc-tc-close").await?;
    /// client.close().await?;
    /// # Ok(())
    /// # }
    /// ```
    pub async fn close(mut self) -> Result<(), TestError> {
        self.ws.close(None).await?;
        Ok(())
    }

    /// The underlying stream, e.g. to drop the TCP connection without a close frame.
    ///
    /// # Examples
    ///
    /// The server answers a ping sent on the raw stream:
    ///
    /// ```
    /// use futures_util::{SinkExt, StreamExt};
    /// use tokio_tungstenite::tungstenite::Message;
    ///
    /// # use ws_gateway_axum::prelude::*;
    /// # use ws_gateway_axum::test_client::{TestError, TestServer};
    /// # #[websocket_gateway(path = "/doc-tc-into-inner")] struct Raw;
    /// # #[websocket_gateway] impl Raw {}
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), TestError> {
    /// # let server = TestServer::start(GatewayApp::new().gateway::<Raw>().build().unwrap()).await?;
    /// let client = server.connect("/doc-tc-into-inner").await?;
    /// let mut ws = client.into_inner();
    /// ws.send(Message::Ping(b"hi".to_vec().into())).await?;
    /// let Some(Ok(Message::Pong(payload))) = ws.next().await else { panic!("no pong") };
    /// assert_eq!(&payload[..], b"hi");
    /// # Ok(())
    /// # }
    /// ```
    pub fn into_inner(self) -> WebSocketStream<MaybeTlsStream<TcpStream>> {
        self.ws
    }
}
