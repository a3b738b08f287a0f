//! Binding a listener for many handshakes at once, and serving a router on it.

use std::io;
use std::net::SocketAddr;

use axum::Router;
use axum::serve::ListenerExt;
use tokio::net::{TcpListener, TcpSocket};

/// The listen backlog [`bind`] uses. Tokio's default of 128 stalls bursts of WebSocket
/// handshakes.
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
