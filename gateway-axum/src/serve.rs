//! Binding a listener for many handshakes at once, and serving a router on it.

use std::convert::Infallible;
use std::future::{Future, IntoFuture};
use std::io;
use std::net::SocketAddr;
use std::pin::{Pin, pin};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::Request;
use axum::serve::{Listener, ListenerExt, TapIo};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::{TcpListener, TcpSocket};
use tokio::sync::{mpsc, watch};
use tower_service::Service as _;
use ws_gateway_core::App;

use crate::gate::{Gated, GatedIo};

/// The listen backlog [`bind`] uses. Tokio's default of 128 stalls bursts of WebSocket
/// handshakes.
///
/// # Examples
///
/// ```
/// assert_eq!(ws_gateway_axum::BACKLOG, 1024);
/// ```
pub const BACKLOG: u32 = 1024;

/// Binds a TCP listener with a backlog of [`BACKLOG`] and `SO_REUSEADDR`.
///
/// Must be called inside a tokio runtime.
///
/// # Errors
///
/// The socket's error, e.g. the address is in use.
///
/// # Examples
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> std::io::Result<()> {
/// let listener = ws_gateway_axum::bind("127.0.0.1:0".parse().unwrap())?;
/// assert!(listener.local_addr()?.port() > 0);
/// # Ok(())
/// # }
/// ```
pub fn bind(addr: SocketAddr) -> io::Result<TcpListener> {
    let socket = if addr.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(BACKLOG)
}

/// Serves `router` on `listener`, axum's way: await it, or add graceful shutdown with
/// [`Serve::with_graceful_shutdown`]. Every connection gets `TCP_NODELAY`, and the peer
/// address is available to gateways (`client.handshake().remote_addr`) and to axum's
/// `ConnectInfo<SocketAddr>` extractor.
///
/// Unlike plain `axum::serve`, the request head is bounded (HTTP/1.1, hyper's server):
/// a client has [`header_read_timeout`](Serve::header_read_timeout) (10 s) to send it,
/// at most [`max_header_size`](Serve::max_header_size) bytes (16 KiB; more get HTTP 431)
/// and 100 headers, so connections that send nothing, or headers that never end, are
/// closed and cost a bounded amount of memory meanwhile.
///
/// # Examples
///
/// ```no_run
/// use ws_gateway_axum::prelude::*;
///
/// #[websocket_gateway(path = "/chat")]
/// struct Chat;
///
/// #[websocket_gateway]
/// impl Chat {}
///
/// # #[tokio::main]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let app = GatewayApp::new().gateway::<Chat>().build()?;
/// let listener = ws_gateway_axum::bind("127.0.0.1:3000".parse()?)?;
/// ws_gateway_axum::serve(listener, app.into_router()).await?;
/// # Ok(())
/// # }
/// ```
pub fn serve(listener: TcpListener, router: Router) -> Serve {
    Serve {
        listener,
        router,
        head: RequestHead::default(),
        write_timeout: None,
    }
}

/// How long a connection's writes may wait on a full socket, unless
/// [`Serve::write_timeout`] says otherwise: `ConnectionConfig::write_timeout`'s default.
const DEFAULT_WRITE_TIMEOUT: Duration = Duration::from_secs(10);

/// A server, ready to run: await it (see [`serve`]).
#[must_use = "a server does nothing until awaited"]
#[derive(Debug)]
pub struct Serve {
    listener: TcpListener,
    router: Router,
    head: RequestHead,
    /// `None` until chosen: then the app's (with a graceful shutdown) or the default.
    write_timeout: Option<Option<Duration>>,
}

/// The bounds on a request head (see [`serve`]).
#[derive(Clone, Copy, Debug)]
struct RequestHead {
    read_timeout: Option<Duration>,
    max_size: usize,
}

impl Default for RequestHead {
    fn default() -> Self {
        Self {
            read_timeout: Some(Duration::from_secs(10)),
            max_size: 16 * 1024,
        }
    }
}

impl Serve {
    /// How long a write may wait on a connection's full socket (a peer that does not read
    /// what it is sent). While a write waits the connection is not read; past the timeout
    /// it is closed. Default 10 s; `None` waits forever, still without reading.
    ///
    /// This bounds every protocol on the port, including Socket.IO, whose WebSocket
    /// (engineioxide's tungstenite) would otherwise buffer a pong per ping for a client
    /// that sends pings and never reads. Unless set here,
    /// [`with_graceful_shutdown`](Self::with_graceful_shutdown) takes the app's
    /// [`ConnectionConfig::write_timeout`](ws_gateway_core::ConnectionConfig), so that both
    /// bounds are alike; awaited directly, pass it here.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # use ws_gateway_axum::prelude::*;
    /// # #[websocket_gateway(path = "/chat")] struct Chat;
    /// # #[websocket_gateway] impl Chat {}
    /// # #[tokio::main]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let app = GatewayApp::new().gateway::<Chat>().build()?;
    /// let listener = ws_gateway_axum::bind("127.0.0.1:3000".parse()?)?;
    /// let timeout = app.config().write_timeout;
    /// ws_gateway_axum::serve(listener, app.into_router()).write_timeout(timeout).await?;
    /// # Ok(())
    /// # }
    /// ```
    pub fn write_timeout(mut self, timeout: Option<Duration>) -> Self {
        self.write_timeout = Some(timeout);
        self
    }

    /// How long a client has to send a request head, from the moment the connection
    /// opens or its previous request ends (an idle keep-alive connection is closed after
    /// it too); `None` for no limit. A connection still sending is closed. Default 10 s.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # use ws_gateway_axum::prelude::*;
    /// # #[websocket_gateway(path = "/chat")] struct Chat;
    /// # #[websocket_gateway] impl Chat {}
    /// # #[tokio::main]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let app = GatewayApp::new().gateway::<Chat>().build()?;
    /// let listener = ws_gateway_axum::bind("0.0.0.0:3000".parse()?)?;
    /// ws_gateway_axum::serve(listener, app.into_router())
    ///     .header_read_timeout(std::time::Duration::from_secs(5))
    ///     .await?;
    /// # Ok(())
    /// # }
    /// ```
    pub fn header_read_timeout(mut self, timeout: impl Into<Option<Duration>>) -> Self {
        self.head.read_timeout = timeout.into();
        self
    }

    /// The largest request head accepted, in bytes (the request line and every header);
    /// a larger one gets HTTP 431 and the connection is closed. Default 16 KiB (Node.js's
    /// default). A WebSocket connection keeps its headers for as long as it lives, within
    /// [`ConnectionConfig::max_handshake_size`](ws_gateway_core::ConnectionConfig::max_handshake_size).
    ///
    /// # Panics
    ///
    /// If `max` is under 1 KiB: no browser's request would fit.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # use ws_gateway_axum::prelude::*;
    /// # #[websocket_gateway(path = "/chat")] struct Chat;
    /// # #[websocket_gateway] impl Chat {}
    /// # #[tokio::main]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let app = GatewayApp::new().gateway::<Chat>().build()?;
    /// let listener = ws_gateway_axum::bind("0.0.0.0:3000".parse()?)?;
    /// ws_gateway_axum::serve(listener, app.into_router())
    ///     .max_header_size(32 * 1024)
    ///     .await?;
    /// # Ok(())
    /// # }
    /// ```
    pub fn max_header_size(mut self, max: usize) -> Self {
        assert!(
            max >= 1024,
            "max_header_size must be at least 1 KiB, got {max}"
        );
        self.head.max_size = max;
        self
    }

    /// Shuts down gracefully when `signal` resolves: no new connection is accepted, every
    /// connection of `app` stops reading, gets what is queued for it and the replies of its
    /// handlers in flight, then is closed with code 1001 (Socket.IO clients are
    /// disconnected); connections still open after the grace period (10 s unless
    /// [`grace`](GracefulShutdown::grace) says otherwise) are closed anyway. Resolves once
    /// every connection is closed.
    ///
    /// # Examples
    ///
    /// ```
    /// use futures_util::StreamExt;
    /// use ws_gateway_axum::prelude::*;
    /// use tokio_tungstenite::tungstenite::Message;
    ///
    /// #[websocket_gateway(path = "/doc-graceful")]
    /// struct Chat;
    ///
    /// #[websocket_gateway]
    /// impl Chat {}
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let app = GatewayApp::new().gateway::<Chat>().build()?;
    /// let listener = ws_gateway_axum::bind("127.0.0.1:0".parse()?)?;
    /// let addr = listener.local_addr()?;
    /// let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    /// let server = tokio::spawn(
    ///     ws_gateway_axum::serve(listener, app.clone().into_router())
    ///         .with_graceful_shutdown(&app, async move { let _ = stopped.await; })
    ///         .grace(std::time::Duration::from_secs(5))
    ///         .into_future(),
    /// );
    /// let (mut client, _) = tokio_tungstenite::connect_async(format!("ws://{addr}/doc-graceful")).await?;
    ///
    /// stop.send(()).unwrap();
    /// // The client is told that the server is going away, then the server stops.
    /// let Some(Ok(Message::Close(Some(close)))) = client.next().await else { panic!("no close frame") };
    /// assert_eq!(u16::from(close.code), 1001);
    /// server.await??;
    /// # Ok(())
    /// # }
    /// ```
    pub fn with_graceful_shutdown<F>(self, app: &App, signal: F) -> GracefulShutdown
    where
        F: Future<Output = ()> + Send + 'static,
    {
        let mut serve = self;
        serve.write_timeout = serve.write_timeout.or(Some(app.config().write_timeout));
        GracefulShutdown {
            serve,
            app: app.clone(),
            signal: Box::pin(signal),
            grace: DEFAULT_GRACE,
        }
    }

    /// Accepts connections until `stop` resolves, then waits until every HTTP connection
    /// is done (idle ones are closed; upgraded ones are the app's).
    async fn run(self, stop: impl Future<Output = ()>) -> io::Result<()> {
        let Self {
            listener,
            router,
            head,
            write_timeout,
        } = self;
        // Turns the router's handlers into services once, as `into_make_service` does: a
        // layer around a handler would otherwise be applied again on every request (and
        // socketioxide's layer builds its engine, its sessions, each time).
        let router = router.with_state(());
        let write_timeout = write_timeout.unwrap_or(Some(DEFAULT_WRITE_TIMEOUT));
        let mut listener = nodelay(listener, write_timeout);
        let mut http = http1::Builder::new();
        http.timer(TokioTimer::new())
            .header_read_timeout(head.read_timeout)
            .max_header_size(head.max_size);
        // Connections watch `stopping` for the signal, and hold `done` until they end.
        let (stopping, _) = watch::channel(false);
        let (done, mut all_done) = mpsc::channel::<()>(1);
        let mut stop = pin!(stop);
        loop {
            let (tcp, peer) = tokio::select! {
                accepted = listener.accept() => accepted,
                () = &mut stop => break,
            };
            let service = Peer {
                router: router.clone(),
                peer,
            };
            let connection = http
                .serve_connection(TokioIo::new(tcp), service)
                .with_upgrades();
            let mut stopping = stopping.subscribe();
            let done = done.clone();
            tokio::spawn(async move {
                let mut connection = pin!(connection);
                let result = tokio::select! {
                    result = connection.as_mut() => result,
                    () = async { let _ = stopping.wait_for(|stop| *stop).await; } => {
                        connection.as_mut().graceful_shutdown();
                        connection.await
                    }
                };
                if let Err(err) = result {
                    tracing::trace!(target: "gateway", "connection from {peer} ended: {err}");
                }
                drop(done);
            });
        }
        drop(listener);
        stopping.send_replace(true);
        drop(done);
        let _ = all_done.recv().await;
        Ok(())
    }
}

/// The router, as hyper's service for one connection: each request carries the peer's
/// address as axum's `ConnectInfo`.
#[derive(Clone)]
struct Peer {
    router: Router,
    peer: SocketAddr,
}

impl hyper::service::Service<Request<Incoming>> for Peer {
    type Response = axum::response::Response;
    type Error = Infallible;
    type Future = axum::routing::future::RouteFuture<Infallible>;

    fn call(&self, mut request: Request<Incoming>) -> Self::Future {
        request.extensions_mut().insert(ConnectInfo(self.peer));
        // A `Router` is always ready.
        self.router.clone().call(request.map(Body::new))
    }
}

impl IntoFuture for Serve {
    type Output = io::Result<()>;
    type IntoFuture = Pin<Box<dyn Future<Output = io::Result<()>> + Send>>;

    fn into_future(self) -> Self::IntoFuture {
        Box::pin(self.run(std::future::pending()))
    }
}

/// How long connections get to finish when a graceful shutdown begins, unless
/// [`GracefulShutdown::grace`] says otherwise.
const DEFAULT_GRACE: Duration = Duration::from_secs(10);

/// A server that shuts down gracefully: see [`Serve::with_graceful_shutdown`].
#[must_use = "a server does nothing until awaited"]
pub struct GracefulShutdown {
    serve: Serve,
    app: App,
    signal: Pin<Box<dyn Future<Output = ()> + Send>>,
    grace: Duration,
}

impl GracefulShutdown {
    /// How long connections get to finish once the signal fired. Default 10 s.
    ///
    /// # Examples
    ///
    /// See [`Serve::with_graceful_shutdown`].
    pub fn grace(mut self, grace: Duration) -> Self {
        self.grace = grace;
        self
    }

    async fn run(self) -> io::Result<()> {
        let Self {
            serve,
            app,
            signal,
            grace,
        } = self;
        let connections = app.connections().clone();
        let begin = async move {
            signal.await;
            tracing::info!(target: "gateway", "shutting down: closing {} connections", connections.live());
            connections.begin_shutdown(grace);
        };
        serve.run(begin).await?;
        let left = app.shutdown(grace).await;
        if left > 0 {
            tracing::warn!(target: "gateway", "{left} connections still open after the shutdown deadline");
        }
        Ok(())
    }
}

impl IntoFuture for GracefulShutdown {
    type Output = io::Result<()>;
    type IntoFuture = Pin<Box<dyn Future<Output = io::Result<()>> + Send>>;

    fn into_future(self) -> Self::IntoFuture {
        Box::pin(self.run())
    }
}

impl std::fmt::Debug for GracefulShutdown {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GracefulShutdown")
            .field("serve", &self.serve)
            .field("grace", &self.grace)
            .finish_non_exhaustive()
    }
}

/// The listener, with `TCP_NODELAY` on every accepted connection (frames are small and
/// latency matters more than packet count), each connection [`Gated`].
fn nodelay(
    listener: TcpListener,
    write_timeout: Option<Duration>,
) -> TapIo<Gated, fn(&mut GatedIo)> {
    Gated::new(listener, write_timeout).tap_io(set_nodelay)
}

fn set_nodelay(io: &mut GatedIo) {
    if let Err(err) = io.tcp().set_nodelay(true) {
        tracing::trace!(target: "gateway", "failed to set TCP_NODELAY: {err}");
    }
}
