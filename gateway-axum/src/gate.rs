//! [`Gated`]: every connection [`serve`](crate::serve) accepts stops being read while its
//! writes wait on a full socket, and fails once that lasted the write timeout.
//!
//! A bound below every protocol on the port, for code that is not ours: engineioxide
//! (Socket.IO) runs tungstenite with an unbounded write buffer and keeps reading while its
//! writes are blocked, so a client that sends WebSocket pings and never reads makes the
//! server buffer a pong per ping (+117 MB per connection). Refusing to read while the
//! socket cannot take what is already written stops that from below: the client's pings
//! wait in its own socket, and a client that never reads again is cut off.

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use axum::serve::Listener;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::Sleep;

/// A listener whose connections are [`GatedIo`].
pub(crate) struct Gated {
    listener: TcpListener,
    write_timeout: Option<Duration>,
}

impl Gated {
    pub(crate) fn new(listener: TcpListener, write_timeout: Option<Duration>) -> Self {
        Self {
            listener,
            write_timeout,
        }
    }
}

impl Listener for Gated {
    type Io = GatedIo;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (GatedIo, SocketAddr) {
        let (tcp, addr) = Listener::accept(&mut self.listener).await;
        (GatedIo::new(tcp, self.write_timeout), addr)
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        self.listener.local_addr()
    }
}

/// A TCP stream that is not read while a write to it waits (the peer does not read what
/// it is sent), and whose reads fail once a write waited `write_timeout`.
///
/// Whoever waits on the write is woken by the socket when it drains, writes, and wakes
/// the parked reader.
pub(crate) struct GatedIo {
    tcp: TcpStream,
    write_timeout: Option<Duration>,
    /// The last write returned `Pending`: the socket's send buffer is full.
    write_waits: bool,
    /// The reader parked while the write waits.
    parked: Option<Waker>,
    /// Since when the reader is parked, created when it parks.
    stalled: Option<Pin<Box<Sleep>>>,
    /// The waiting writer, woken when the connection is cut off.
    writer: Option<Waker>,
    /// The write timeout passed: every read and write fails, so that whoever holds either
    /// half lets the connection go.
    cut_off: bool,
}

impl GatedIo {
    fn new(tcp: TcpStream, write_timeout: Option<Duration>) -> Self {
        Self {
            tcp,
            write_timeout,
            write_waits: false,
            parked: None,
            stalled: None,
            writer: None,
            cut_off: false,
        }
    }

    /// The TCP stream, for socket options.
    pub(crate) fn tcp(&self) -> &TcpStream {
        &self.tcp
    }

    /// Records how a write went: a write that went through unparks the reader.
    fn wrote<T>(&mut self, polled: Poll<T>, cx: &Context<'_>) -> Poll<T> {
        if polled.is_pending() {
            self.write_waits = true;
            self.writer = Some(cx.waker().clone());
        } else if std::mem::take(&mut self.write_waits) {
            self.stalled = None;
            if let Some(reader) = self.parked.take() {
                reader.wake();
            }
        }
        polled
    }

    /// Whether the connection was cut off: the error every read and write then returns.
    fn check(&self) -> io::Result<()> {
        if self.cut_off {
            Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "write timed out: the peer does not read",
            ))
        } else {
            Ok(())
        }
    }
}

impl AsyncRead for GatedIo {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = &mut *self;
        this.check()?;
        if this.write_waits {
            this.parked = Some(cx.waker().clone());
            let Some(timeout) = this.write_timeout else {
                return Poll::Pending;
            };
            let stalled = this
                .stalled
                .get_or_insert_with(|| Box::pin(tokio::time::sleep(timeout)));
            return match stalled.as_mut().poll(cx) {
                Poll::Ready(()) => {
                    tracing::debug!(target: "gateway::rejection", "the peer does not read, closing");
                    this.cut_off = true;
                    if let Some(writer) = this.writer.take() {
                        writer.wake();
                    }
                    Poll::Ready(this.check())
                }
                Poll::Pending => Poll::Pending,
            };
        }
        Pin::new(&mut this.tcp).poll_read(cx, buf)
    }
}

impl AsyncWrite for GatedIo {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.check()?;
        let polled = Pin::new(&mut self.tcp).poll_write(cx, buf);
        self.wrote(polled, cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        self.check()?;
        let polled = Pin::new(&mut self.tcp).poll_write_vectored(cx, bufs);
        self.wrote(polled, cx)
    }

    fn is_write_vectored(&self) -> bool {
        self.tcp.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.tcp).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let polled = Pin::new(&mut self.tcp).poll_shutdown(cx);
        // Once shut down, nothing more is written: nothing for the reader to wait for.
        self.wrote(polled, cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// A gated server side and its peer, connected over loopback.
    async fn pair(write_timeout: Option<Duration>) -> (GatedIo, TcpStream) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let peer = TcpStream::connect(listener.local_addr().unwrap());
        let (peer, accepted) = tokio::join!(peer, listener.accept());
        (
            GatedIo::new(accepted.unwrap().0, write_timeout),
            peer.unwrap(),
        )
    }

    #[tokio::test]
    async fn a_peer_that_does_not_read_is_not_read_then_cut_off() {
        let (mut gated, mut peer) = pair(Some(Duration::from_millis(50))).await;
        peer.write_all(b"hello").await.unwrap();
        let mut hello = [0; 5];
        gated.read_exact(&mut hello).await.unwrap();
        // Fill the socket: the peer reads nothing.
        let chunk = vec![0; 64 * 1024];
        while tokio::time::timeout(Duration::from_millis(100), gated.write(&chunk))
            .await
            .is_ok()
        {}
        peer.write_all(b"more").await.unwrap();
        let mut more = [0; 4];
        let read = gated.read(&mut more).await;
        assert_eq!(read.unwrap_err().kind(), io::ErrorKind::TimedOut);
        let write = gated.write(b"x").await;
        assert_eq!(write.unwrap_err().kind(), io::ErrorKind::TimedOut);
    }

    #[tokio::test]
    async fn a_write_that_goes_through_unparks_the_reader() {
        let (mut gated, mut peer) = pair(None).await;
        gated.write_waits = true;
        peer.write_all(b"x").await.unwrap();
        let mut byte = [0; 1];
        let parked = tokio::time::timeout(Duration::from_millis(50), gated.read(&mut byte));
        assert!(parked.await.is_err(), "read while the write waits");
        gated.write_all(b"y").await.unwrap();
        gated.read_exact(&mut byte).await.unwrap();
        assert_eq!(&byte, b"x");
    }
}
