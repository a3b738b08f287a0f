//! [`Client`]: one connected socket, NestJS's `@ConnectedSocket()`.

use std::borrow::Cow;
use std::fmt;
use std::hash::{BuildHasher, Hasher};
use std::net::SocketAddr;
use std::str::FromStr;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, LazyLock};

use serde::Serialize;
use tokio::sync::{Notify, mpsc};

use crate::error::SendError;
use crate::exception::CloseRequest;
use crate::frame::Frame;
use crate::server::{Broadcast, WsServer};

/// The id of a connected client: unique in the process, and across processes with
/// overwhelming probability (its upper half is random per process).
///
/// Displays and serializes as 16 hex digits.
///
/// # Examples
///
/// ```
/// let id: gateway_core::ClientId = "00000000000000ff".parse().unwrap();
/// assert_eq!(id.to_string(), "00000000000000ff");
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ClientId(u64);

impl ClientId {
    pub(crate) fn next() -> Self {
        static PREFIX: LazyLock<u64> = LazyLock::new(|| {
            let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
            hasher.write_u64(u64::from(std::process::id()));
            hasher.finish() << 32
        });
        static COUNTER: AtomicU32 = AtomicU32::new(1);
        Self(*PREFIX | u64::from(COUNTER.fetch_add(1, Ordering::Relaxed)))
    }

    /// The id as a number.
    pub fn as_u64(self) -> u64 {
        self.0
    }
}

impl fmt::Display for ClientId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:016x}", self.0)
    }
}

impl fmt::Debug for ClientId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ClientId({self})")
    }
}

impl FromStr for ClientId {
    type Err = std::num::ParseIntError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        u64::from_str_radix(s, 16).map(Self)
    }
}

impl Serialize for ClientId {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

/// What a connection task receives to write to its socket.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum Outbound {
    /// A text frame.
    Frame(Frame),
    /// Close the connection with this code and reason.
    Close(CloseRequest),
}

/// What the HTTP upgrade request said about a client.
#[derive(Debug, Default)]
#[non_exhaustive]
pub struct Handshake {
    /// The request URI (path and query).
    pub uri: http::Uri,
    /// The request headers.
    pub headers: http::HeaderMap,
    /// The peer address, when the server knows it.
    pub remote_addr: Option<SocketAddr>,
    /// Values attached during the handshake (e.g. by an authenticator), readable by
    /// extractors.
    pub extensions: http::Extensions,
}

impl Handshake {
    /// A handshake with this URI and headers.
    pub fn new(uri: http::Uri, headers: http::HeaderMap) -> Self {
        Self {
            uri,
            headers,
            ..Self::default()
        }
    }
}

/// The receiving end of a client's outbound queue, drained by its connection task.
#[derive(Debug)]
pub struct OutboundQueue {
    pub(crate) rx: mpsc::Receiver<Outbound>,
    pub(crate) overflow: Arc<Overflow>,
}

impl OutboundQueue {
    /// The next frame to write; `None` once every sender is gone.
    pub async fn recv(&mut self) -> Option<Outbound> {
        self.rx.recv().await
    }

    /// The next frame if one is already queued.
    pub fn try_recv(&mut self) -> Option<Outbound> {
        self.rx.try_recv().ok()
    }

    /// A handle that completes once this queue overflowed.
    pub fn overflow_signal(&self) -> OverflowSignal {
        OverflowSignal(Arc::clone(&self.overflow))
    }
}

/// Completes once a client's outbound queue overflowed: the client reads slower than it is
/// sent to and must be disconnected (close code 1008).
#[derive(Debug, Clone)]
pub struct OverflowSignal(Arc<Overflow>);

impl OverflowSignal {
    /// Waits for the overflow.
    pub async fn wait(&self) {
        loop {
            let notified = self.0.notify.notified();
            if self.0.flag.load(Ordering::Acquire) {
                return;
            }
            notified.await;
        }
    }
}

#[derive(Debug, Default)]
pub(crate) struct Overflow {
    flag: AtomicBool,
    notify: Notify,
}

/// The sending end of a client's outbound queue.
#[derive(Clone, Debug)]
pub(crate) struct ClientSink {
    tx: mpsc::Sender<Outbound>,
    overflow: Arc<Overflow>,
}

impl ClientSink {
    pub(crate) fn channel(capacity: usize) -> (Self, OutboundQueue) {
        let (tx, rx) = mpsc::channel(capacity.max(1));
        let overflow = Arc::new(Overflow::default());
        (
            Self {
                tx,
                overflow: Arc::clone(&overflow),
            },
            OutboundQueue { rx, overflow },
        )
    }

    pub(crate) fn send(&self, out: Outbound) -> Result<(), SendError> {
        match self.tx.try_send(out) {
            Ok(()) => Ok(()),
            Err(mpsc::error::TrySendError::Closed(_)) => Err(SendError::Disconnected),
            Err(mpsc::error::TrySendError::Full(_)) => {
                if !self.overflow.flag.swap(true, Ordering::AcqRel) {
                    self.overflow.notify.notify_one();
                }
                Err(SendError::QueueFull)
            }
        }
    }
}

/// A connected client, NestJS's `@ConnectedSocket()`: its id, a way to send to it, its rooms.
///
/// Cheap to clone. As a handler argument it is the client that sent the message:
///
/// ```
/// use gateway_core::prelude::*;
///
/// #[websocket_gateway(path = "/rooms")]
/// struct RoomsGateway;
///
/// #[websocket_gateway]
/// impl RoomsGateway {
///     #[subscribe("join")]
///     fn join(&self, client: Client, room: String) -> WsResponse<String> {
///         client.join(room.clone());
///         WsResponse::new("joined", room)
///     }
/// }
/// ```
#[derive(Clone)]
pub struct Client {
    inner: Arc<ClientInner>,
}

struct ClientInner {
    id: ClientId,
    sink: ClientSink,
    server: WsServer,
    handshake: Handshake,
}

impl Client {
    pub(crate) fn new(server: WsServer, sink: ClientSink, handshake: Handshake) -> Self {
        Self {
            inner: Arc::new(ClientInner {
                id: ClientId::next(),
                sink,
                server,
                handshake,
            }),
        }
    }

    pub(crate) fn sink(&self) -> &ClientSink {
        &self.inner.sink
    }

    /// The client's id.
    pub fn id(&self) -> ClientId {
        self.inner.id
    }

    /// The server handle of the gateway the client is connected to.
    pub fn server(&self) -> &WsServer {
        &self.inner.server
    }

    /// The upgrade request the client connected with.
    pub fn handshake(&self) -> &Handshake {
        &self.inner.handshake
    }

    /// Sends `{"event": event, "data": data}` to this client.
    ///
    /// # Errors
    ///
    /// [`SendError`] when the data fails to serialize, the client is gone, or its queue is
    /// full.
    pub fn emit<T: Serialize + ?Sized>(&self, event: &str, data: &T) -> Result<(), SendError> {
        self.send_frame(Frame::event(event, data)?)
    }

    /// Sends an encoded frame to this client.
    ///
    /// # Errors
    ///
    /// [`SendError`] when the client is gone or its queue is full.
    pub fn send_frame(&self, frame: Frame) -> Result<(), SendError> {
        self.inner.sink.send(Outbound::Frame(frame))
    }

    /// Adds the client to a room (nothing happens if it is already in it).
    pub fn join(&self, room: impl Into<Cow<'static, str>>) {
        self.inner.server.join(self.id(), room);
    }

    /// Removes the client from a room.
    pub fn leave(&self, room: &str) {
        self.inner.server.leave(self.id(), room);
    }

    /// The rooms the client is in, sorted.
    pub fn rooms(&self) -> Vec<String> {
        self.inner.server.rooms_of(self.id())
    }

    /// Every other client of the gateway: `client.broadcast().emit(...)` sends to all but
    /// this one.
    pub fn broadcast(&self) -> Broadcast {
        self.inner.server.broadcast().except(self.id())
    }

    /// The members of `room` except this client, Socket.IO's `socket.to(room)`.
    pub fn to(&self, room: impl Into<Cow<'static, str>>) -> Broadcast {
        self.broadcast().to(room)
    }

    /// Closes the connection with code 1000 (normal closure).
    pub fn disconnect(&self) {
        self.close(1000, "");
    }

    /// Closes the connection with this code and reason.
    pub fn close(&self, code: u16, reason: impl Into<Cow<'static, str>>) {
        // A full queue means the client is being disconnected already.
        let _ = self.inner.sink.send(Outbound::Close(CloseRequest {
            code,
            reason: reason.into(),
        }));
    }
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("id", &self.inner.id)
            .field("path", &self.inner.server.path())
            .finish_non_exhaustive()
    }
}
