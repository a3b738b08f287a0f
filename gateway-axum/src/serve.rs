//! Binding a listener for many handshakes at once, and serving a router on it.

use std::future::{Future, IntoFuture};
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::time::Duration;

use axum::Router;
use axum::serve::{ListenerExt, TapIo};
use gateway_core::App;
use tokio::net::{TcpListener, TcpSocket};

use crate::gate::{Gated, GatedIo};

/// The listen backlog [`bind`] uses. Tokio's default of 128 stalls bursts of WebSocket
/// handshakes.
///
/// # Examples
///
/// ```
/// assert_eq!(gateway_axum::BACKLOG, 1024);
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
/// let listener = gateway_axum::bind("127.0.0.1:0".parse().unwrap())?;
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
/// address is available to gateways (`client.handshake().remote_addr`).
///
/// # Examples
///
/// ```no_run
/// use gateway_axum::prelude::*;
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
/// let listener = gateway_axum::bind("127.0.0.1:3000".parse()?)?;
/// gateway_axum::serve(listener, app.into_router()).await?;
/// # Ok(())
/// # }
/// ```
pub fn serve(listener: TcpListener, router: Router) -> Serve {
    Serve {
        listener,
        router,
        write_timeout: Some(DEFAULT_WRITE_TIMEOUT),
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
    write_timeout: Option<Duration>,
}

impl Serve {
    /// How long a write may wait on a connection's full socket (a peer that does not read
    /// what it is sent). While a write waits the connection is not read; past the timeout
    /// it is closed. Default 10 s; `None` waits forever, still without reading.
    ///
    /// This bounds every protocol on the port, including Socket.IO, whose WebSocket
    /// (engineioxide's tungstenite) would otherwise buffer a pong per ping for a client
    /// that sends pings and never reads. Pass the app's
    /// [`ConnectionConfig::write_timeout`](gateway_core::ConnectionConfig) to keep both
    /// bounds alike.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # use gateway_axum::prelude::*;
    /// # #[websocket_gateway(path = "/chat")] struct Chat;
    /// # #[websocket_gateway] impl Chat {}
    /// # #[tokio::main]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let app = GatewayApp::new().gateway::<Chat>().build()?;
    /// let listener = gateway_axum::bind("127.0.0.1:3000".parse()?)?;
    /// let timeout = app.config().write_timeout;
    /// gateway_axum::serve(listener, app.into_router()).write_timeout(timeout).await?;
    /// # Ok(())
    /// # }
    /// ```
    pub fn write_timeout(mut self, timeout: Option<Duration>) -> Self {
        self.write_timeout = timeout;
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
    /// use gateway_axum::prelude::*;
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
    /// let listener = gateway_axum::bind("127.0.0.1:0".parse()?)?;
    /// let addr = listener.local_addr()?;
    /// let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    /// let server = tokio::spawn(
    ///     gateway_axum::serve(listener, app.clone().into_router())
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
        GracefulShutdown {
            serve: self,
            app: app.clone(),
            signal: Box::pin(signal),
            grace: DEFAULT_GRACE,
        }
    }

    async fn run(self) -> io::Result<()> {
        axum::serve(
            nodelay(self.listener, self.write_timeout),
            self.router
                .into_make_service_with_connect_info::<SocketAddr>(),
        )
        .await
    }
}

impl IntoFuture for Serve {
    type Output = io::Result<()>;
    type IntoFuture = Pin<Box<dyn Future<Output = io::Result<()>> + Send>>;

    fn into_future(self) -> Self::IntoFuture {
        Box::pin(self.run())
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
        axum::serve(
            nodelay(serve.listener, serve.write_timeout),
            serve
                .router
                .into_make_service_with_connect_info::<SocketAddr>(),
        )
        .with_graceful_shutdown(begin)
        .await?;
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
