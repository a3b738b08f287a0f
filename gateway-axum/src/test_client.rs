//! Integration testing over real sockets: [`TestServer`] serves an app on an ephemeral
//! port, [`TestClient`] is a WebSocket client that speaks the JSON protocol (enable the
//! `test-client` feature, usually in `[dev-dependencies]`).
//!
//! ```
//! use gateway_axum::prelude::*;
//! use gateway_axum::test_client::TestServer;
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
use gateway_core::App;
use serde::Serialize;
use serde_json::Value;
use tokio::net::TcpStream;
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use crate::IntoRouter;

/// How long [`TestClient`] waits for a frame by default.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);

/// What went wrong in a test client.
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
    pub async fn start(app: App) -> Result<Self, TestError> {
        let router = (&app).into_router();
        Self::start_router(app, router).await
    }

    /// Serves a router built from `app` (with your own routes or layers).
    ///
    /// # Errors
    ///
    /// The listener's error.
    pub async fn start_router(app: App, router: axum::Router) -> Result<Self, TestError> {
        let listener = crate::bind(SocketAddr::from(([127, 0, 0, 1], 0)))?;
        let addr = listener.local_addr()?;
        let served = app.clone();
        let task = tokio::spawn(async move {
            // Stops accepting when `shutdown` begins the app's shutdown.
            let connections = served.connections().clone();
            let signal = async move { connections.shutting_down().await };
            let grace = std::time::Duration::from_secs(5);
            if let Err(err) =
                crate::serve_with_shutdown(listener, router, &served, signal, grace).await
            {
                tracing::error!(target: "gateway", "test server failed: {err}");
            }
        });
        Ok(Self { addr, app, task })
    }

    /// Shuts the server down gracefully (see `serve_with_shutdown`): in-flight handlers get
    /// `grace`, clients are closed with 1001, the listener stops. Returns how many
    /// connections were still open after the deadline.
    pub async fn shutdown(&self, grace: std::time::Duration) -> usize {
        self.app.shutdown(grace).await
    }

    /// The address served.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The app served.
    pub fn app(&self) -> &App {
        &self.app
    }

    /// `ws://127.0.0.1:<port><path>`.
    pub fn url(&self, path: &str) -> String {
        format!("ws://{}{}", self.addr, path)
    }

    /// Connects a client to the gateway at `path`.
    ///
    /// # Errors
    ///
    /// The handshake's error (an HTTP error status included).
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
#[derive(Clone, Debug, PartialEq)]
pub struct Received {
    /// The `event` field.
    pub event: String,
    /// The `data` field (`null` when absent).
    pub data: Value,
    /// The `id` field, when present.
    pub id: Option<Value>,
    /// The frame's text as it arrived.
    pub raw: String,
}

/// A WebSocket client speaking the JSON protocol, for tests.
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
    pub async fn connect(url: &str) -> Result<Self, TestError> {
        let (ws, _) = tokio_tungstenite::connect_async(url).await?;
        Ok(Self::from_stream(ws))
    }

    /// Wraps a connected stream (e.g. one opened with custom headers).
    pub fn from_stream(ws: WebSocketStream<MaybeTlsStream<TcpStream>>) -> Self {
        Self {
            ws,
            timeout: DEFAULT_TIMEOUT,
            skipped: VecDeque::new(),
        }
    }

    /// Sets how long to wait for a frame.
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

    /// Sends a raw text frame.
    ///
    /// # Errors
    ///
    /// The socket's error.
    pub async fn send_text(&mut self, text: impl Into<String>) -> Result<(), TestError> {
        Ok(self.ws.send(Message::text(text.into())).await?)
    }

    /// Sends a raw binary frame.
    ///
    /// # Errors
    ///
    /// The socket's error.
    pub async fn send_binary(&mut self, bytes: impl Into<Vec<u8>>) -> Result<(), TestError> {
        Ok(self.ws.send(Message::binary(bytes.into())).await?)
    }

    /// The next frame: one skipped earlier by [`expect`](Self::expect), else the next to
    /// arrive.
    ///
    /// # Errors
    ///
    /// [`TestError::Timeout`], [`TestError::Closed`], or a frame that is not JSON.
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
    pub async fn expect(&mut self, event: &str) -> Result<Value, TestError> {
        self.expect_frame(event).await.map(|frame| frame.data)
    }

    /// Like [`expect`](Self::expect), returning the whole frame (with its `id`).
    ///
    /// # Errors
    ///
    /// [`TestError::Timeout`] or [`TestError::Closed`] before the event arrived.
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
    pub async fn close(mut self) -> Result<(), TestError> {
        self.ws.close(None).await?;
        Ok(())
    }

    /// The underlying stream, e.g. to drop the TCP connection without a close frame.
    pub fn into_inner(self) -> WebSocketStream<MaybeTlsStream<TcpStream>> {
        self.ws
    }
}
