//! Binding a listener for many handshakes at once, and serving a router on it.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use axum::Router;
use axum::serve::ListenerExt;
use gateway_core::App;
use tokio::net::{TcpListener, TcpSocket};

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

/// Serves `router` on `listener` with `TCP_NODELAY` on every connection and the peer address
/// available to gateways (`client.handshake().remote_addr`).
///
/// # Errors
///
/// An I/O error of the listener.
///
/// # Examples
///
/// A gateway handler sees the peer's address:
///
/// ```
/// use futures_util::{SinkExt, StreamExt};
/// use gateway_axum::prelude::*;
/// use tokio_tungstenite::tungstenite::Message;
///
/// #[websocket_gateway(path = "/doc-serve")]
/// struct Peer;
///
/// #[websocket_gateway]
/// impl Peer {
///     #[subscribe("peer")]
///     fn peer(&self, client: Client) -> bool {
///         client.handshake().remote_addr.is_some()
///     }
/// }
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let app = GatewayApp::new().gateway::<Peer>().build().unwrap();
/// let listener = gateway_axum::bind("127.0.0.1:0".parse().unwrap()).unwrap();
/// let addr = listener.local_addr().unwrap();
/// tokio::spawn(gateway_axum::serve(listener, app.into_router()));
///
/// let (mut ws, _) = tokio_tungstenite::connect_async(format!("ws://{addr}/doc-serve"))
///     .await
///     .unwrap();
/// ws.send(Message::text(r#"{"event":"peer"}"#)).await.unwrap();
/// let Some(Ok(Message::Text(reply))) = ws.next().await else { panic!("no reply") };
/// let reply: serde_json::Value = serde_json::from_str(&reply).unwrap();
/// assert_eq!(reply, serde_json::json!({"event": "peer", "data": true}));
/// # }
/// ```
pub async fn serve(listener: TcpListener, router: Router) -> io::Result<()> {
    let listener = listener.tap_io(|tcp| {
        if let Err(err) = tcp.set_nodelay(true) {
            tracing::trace!(target: "gateway", "failed to set TCP_NODELAY: {err}");
        }
    });
    axum::serve(
        listener,
        router.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .await
}

/// Like [`serve`], with a graceful shutdown when `signal` resolves: the listener stops
/// accepting, every WebSocket client's in-flight handlers get until `grace` to finish, then
/// it is closed with code 1001 and its `handle_disconnect` runs. Resolves once every
/// connection is closed (or a second after the deadline).
///
/// # Errors
///
/// An I/O error of the listener.
///
/// # Examples
///
/// ```no_run
/// # async fn run(app: gateway_core::App) -> std::io::Result<()> {
/// use std::time::Duration;
/// use gateway_axum::IntoRouter;
///
/// let router = app.clone().into_router();
/// let listener = gateway_axum::bind("127.0.0.1:3000".parse().unwrap())?;
/// let ctrl_c = async {
///     let _ = tokio::signal::ctrl_c().await;
/// };
/// gateway_axum::serve_with_shutdown(listener, router, &app, ctrl_c, Duration::from_secs(10)).await
/// # }
/// ```
pub async fn serve_with_shutdown(
    listener: TcpListener,
    router: Router,
    app: &App,
    signal: impl Future<Output = ()> + Send + 'static,
    grace: Duration,
) -> io::Result<()> {
    let connections = app.connections().clone();
    let listener = listener.tap_io(|tcp| {
        if let Err(err) = tcp.set_nodelay(true) {
            tracing::trace!(target: "gateway", "failed to set TCP_NODELAY: {err}");
        }
    });
    let begin = async move {
        signal.await;
        tracing::info!(target: "gateway", "shutting down: closing {} connections", connections.live());
        connections.begin_shutdown(grace);
    };
    axum::serve(
        listener,
        router.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(begin)
    .await?;
    let left = app.shutdown(grace).await;
    if left > 0 {
        tracing::warn!(target: "gateway", "{left} connections still open after the shutdown deadline");
    }
    Ok(())
}
