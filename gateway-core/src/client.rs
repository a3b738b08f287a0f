//! [`Client`]: one connected socket, NestJS's `@ConnectedSocket()`.

use std::borrow::Cow;
use std::fmt;
use std::hash::{BuildHasher, Hasher};
use std::net::SocketAddr;
use std::str::FromStr;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, LazyLock};

use std::time::{Duration, Instant};

use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio::sync::{Notify, mpsc};

use crate::ack::{AckFuture, AckSender, AckStream, AckTable};
use crate::channel::{self, TrySendError};
use crate::error::{RoomError, SendError};
use crate::exception::CloseRequest;
use crate::frame::Frame;
use crate::server::{Broadcast, WsServer};
use crate::state::ClientState;

/// The id of a connected client: unique in the process, and across processes with
/// overwhelming probability (its upper half is random per process).
///
/// Displays and serializes as 16 hex digits.
///
/// # Examples
///
/// ```
/// let id: ws_gateway_core::ClientId = "00000000000000ff".parse().unwrap();
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
    ///
    /// # Examples
    ///
    /// ```
    /// let id: ws_gateway_core::ClientId = "00000000000000ff".parse().unwrap();
    /// assert_eq!(id.as_u64(), 255);
    /// ```
    pub fn as_u64(self) -> u64 {
        self.0
    }

    /// The id with this number ([`as_u64`](Self::as_u64)'s inverse), e.g. as a broadcast
    /// adapter carries it.
    ///
    /// # Examples
    ///
    /// ```
    /// use ws_gateway_core::ClientId;
    ///
    /// let id: ClientId = "00000000000000ff".parse().unwrap();
    /// assert_eq!(ClientId::from_u64(id.as_u64()), id);
    /// ```
    pub fn from_u64(id: u64) -> Self {
        Self(id)
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
///
/// # Examples
///
/// ```
/// # use ws_gateway_core::prelude::*;
/// # #[websocket_gateway(path = "/chat")] struct Chat;
/// # #[websocket_gateway] impl Chat {}
/// # let app = GatewayApp::new().gateway::<Chat>().build().unwrap();
/// # let gw = &app.gateways()[0];
/// use ws_gateway_core::Handshake;
/// use ws_gateway_core::transport::Outbound;
///
/// let (client, mut queue) = gw.open(Handshake::default(), 8);
/// client.emit("hello", &1).unwrap();
/// client.disconnect();
/// match queue.try_recv() {
///     Some(Outbound::Frame(frame)) => assert_eq!(frame.as_str(), r#"{"event":"hello","data":1}"#),
///     other => panic!("expected a frame, got {other:?}"),
/// }
/// assert!(matches!(queue.try_recv(), Some(Outbound::Close(close)) if close.code == 1000));
/// ```
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum Outbound {
    /// A text frame.
    Frame(Frame),
    /// A frame asking for an acknowledgement (its [`Frame::ack`] is the number), awaited
    /// until the instant given: a transport with acknowledgements of its own (Socket.IO)
    /// waits for the answer that long.
    Ask(Frame, Instant),
    /// A reply an [`Ack`](crate::Ack) sends after its handler returned: written as the
    /// reply to the request, through the request's route when it has one.
    Reply(Frame, Option<ReplyRoute>),
    /// Close the connection with this code and reason.
    Close(CloseRequest),
}

/// The route of the request an [`Ack`](crate::Ack) answers
/// ([`Connection::Route`](crate::transport::Connection::Route)), carried through the client's
/// queue back to its session.
#[derive(Clone)]
pub struct ReplyRoute(pub(crate) Arc<dyn crate::request::AnyRoute>);

impl ReplyRoute {
    /// The route, if it is an `R`: a transport gets back the route it gave the request.
    ///
    /// # Examples
    ///
    /// A plain WebSocket request has no route (its reply carries the request's `id`); see
    /// [`Ack`](crate::Ack) for one answered later.
    pub fn downcast_ref<R: 'static>(&self) -> Option<&R> {
        (*self.0).as_any().downcast_ref()
    }
}

impl fmt::Debug for ReplyRoute {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ReplyRoute(..)")
    }
}

/// What the HTTP upgrade request said about a client.
#[derive(Debug, Default)]
#[non_exhaustive]
pub struct Handshake {
    /// The request URI (path and query).
    pub uri: http::Uri,
    /// The request headers, at most
    /// [`max_handshake_size`](crate::ConnectionConfig::max_handshake_size) bytes. The
    /// transports leave out the upgrade's own (`Connection`, `Upgrade`,
    /// `Sec-WebSocket-Key`, `-Version`, `-Extensions`), spent once the socket is open, and
    /// the cookies of a cross-origin request let in by
    /// [`Origins::Any`](crate::Origins::Any).
    pub headers: http::HeaderMap,
    /// The peer address, when the server knows it: behind a reverse proxy, the proxy's.
    pub remote_addr: Option<SocketAddr>,
    /// The client's address: the peer's, or behind one of the
    /// [`trusted_proxies`](crate::ConnectionConfig::trusted_proxies) the address they
    /// forwarded. `max_connections_per_ip` counts it.
    pub client_ip: Option<std::net::IpAddr>,
    /// Values attached during the handshake (e.g. by an authenticator), readable by
    /// extractors.
    pub extensions: http::Extensions,
    /// The values of the `{name}` segments of the gateway path in the client's path
    /// (`id` = `"42"` for `/rooms/42` on `/rooms/{id}`), percent-decoded by the transport;
    /// none on a fixed path. [`WsParam<T>`](crate::WsParam) reads them typed.
    pub path_params: crate::PathParams,
}

impl Handshake {
    /// A handshake with this URI and headers.
    ///
    /// # Examples
    ///
    /// ```
    /// use ws_gateway_core::Handshake;
    ///
    /// let mut headers = http::HeaderMap::new();
    /// headers.insert("user-agent", "demo".parse().unwrap());
    /// let handshake = Handshake::new("/chat?room=a".parse().unwrap(), headers);
    /// assert_eq!(handshake.uri.query(), Some("room=a"));
    /// assert_eq!(handshake.headers["user-agent"], "demo");
    /// assert!(handshake.remote_addr.is_none());
    /// ```
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
    rx: channel::Receiver<Outbound>,
    overflow: Arc<Overflow>,
}

impl OutboundQueue {
    /// Frames sent to the client go through `bypass` while nothing waits in the queue and
    /// the session wrote everything it took ([`Connection::bypass`](crate::transport::Connection::bypass)).
    pub(crate) fn set_bypass(&mut self, bypass: crate::channel::Bypass<Outbound>) {
        self.rx.set_bypass(bypass);
    }

    /// Everything taken from the queue was written.
    pub(crate) fn settle(&mut self) {
        self.rx.settle();
    }

    /// The next frame to write; `None` once every sender is gone.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// # use ws_gateway_core::prelude::*;
    /// # #[websocket_gateway(path = "/chat")] struct Chat;
    /// # #[websocket_gateway] impl Chat {}
    /// # let app = GatewayApp::new().gateway::<Chat>().build().unwrap();
    /// # let gw = &app.gateways()[0];
    /// use ws_gateway_core::Handshake;
    /// use ws_gateway_core::transport::Outbound;
    ///
    /// let (client, mut queue) = gw.open(Handshake::default(), 8);
    /// client.emit("tick", &1).unwrap();
    /// assert!(matches!(queue.recv().await, Some(Outbound::Frame(_))));
    ///
    /// // Once the client is disconnected and dropped, the queue ends.
    /// gw.disconnect(&client).await;
    /// drop(client);
    /// assert!(queue.recv().await.is_none());
    /// # }
    /// ```
    pub async fn recv(&mut self) -> Option<Outbound> {
        std::future::poll_fn(|cx| self.rx.poll_recv(cx)).await
    }

    /// The next frame if one is already queued.
    ///
    /// # Examples
    ///
    /// ```
    /// # use ws_gateway_core::prelude::*;
    /// # #[websocket_gateway(path = "/chat")] struct Chat;
    /// # #[websocket_gateway] impl Chat {}
    /// # let app = GatewayApp::new().gateway::<Chat>().build().unwrap();
    /// # let gw = &app.gateways()[0];
    /// use ws_gateway_core::Handshake;
    ///
    /// let (client, mut queue) = gw.open(Handshake::default(), 8);
    /// assert!(queue.try_recv().is_none());
    /// client.emit("tick", &1).unwrap();
    /// assert!(queue.try_recv().is_some());
    /// ```
    pub fn try_recv(&mut self) -> Option<Outbound> {
        self.rx.try_recv()
    }

    /// A handle that completes once this queue overflowed.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// # use ws_gateway_core::prelude::*;
    /// # #[websocket_gateway(path = "/chat")] struct Chat;
    /// # #[websocket_gateway] impl Chat {}
    /// # let app = GatewayApp::new().gateway::<Chat>().build().unwrap();
    /// # let gw = &app.gateways()[0];
    /// use ws_gateway_core::{Handshake, SendError};
    ///
    /// // A queue of one frame that nobody drains.
    /// let (client, queue) = gw.open(Handshake::default(), 1);
    /// let overflow = queue.overflow_signal();
    /// client.emit("a", &1).unwrap();
    /// assert!(matches!(client.emit("b", &2), Err(SendError::QueueFull)));
    /// overflow.wait().await; // completes: the client must be disconnected
    /// # }
    /// ```
    pub fn overflow_signal(&self) -> OverflowSignal {
        OverflowSignal(Arc::clone(&self.overflow))
    }
}

/// Completes once a client's outbound queue overflowed: the client reads slower than it is
/// sent to and must be disconnected (close code 1008).
#[derive(Debug, Clone)]
pub struct OverflowSignal(Arc<Overflow>);

impl OverflowSignal {
    /// Whether the queue overflowed already.
    ///
    /// # Examples
    ///
    /// ```
    /// # use ws_gateway_core::prelude::*;
    /// # #[websocket_gateway(path = "/chat")] struct Chat;
    /// # #[websocket_gateway] impl Chat {}
    /// # let app = GatewayApp::new().gateway::<Chat>().build().unwrap();
    /// # let gw = &app.gateways()[0];
    /// use ws_gateway_core::Handshake;
    ///
    /// let (client, queue) = gw.open(Handshake::default(), 1);
    /// let overflow = queue.overflow_signal();
    /// client.emit("a", &1).unwrap();
    /// assert!(!overflow.has_overflowed());
    /// client.emit("b", &2).unwrap_err(); // the queue holds one frame
    /// assert!(overflow.has_overflowed());
    /// ```
    pub fn has_overflowed(&self) -> bool {
        self.0.flag.load(Ordering::Acquire)
    }

    /// Waits for the overflow.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// # use ws_gateway_core::prelude::*;
    /// # #[websocket_gateway(path = "/chat")] struct Chat;
    /// # #[websocket_gateway] impl Chat {}
    /// # let app = GatewayApp::new().gateway::<Chat>().build().unwrap();
    /// # let gw = &app.gateways()[0];
    /// use ws_gateway_core::Handshake;
    ///
    /// let (client, queue) = gw.open(Handshake::default(), 1);
    /// let overflow = queue.overflow_signal();
    /// let watcher = tokio::spawn(async move {
    ///     overflow.wait().await;
    ///     "overflowed"
    /// });
    /// client.emit("a", &1).unwrap();
    /// client.emit("b", &2).unwrap_err(); // the queue holds one frame
    /// assert_eq!(watcher.await.unwrap(), "overflowed");
    /// # }
    /// ```
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
    tx: channel::Sender<Outbound>,
    overflow: Arc<Overflow>,
    /// `gateway_messages_dropped_total`.
    dropped: metrics::Counter,
}

impl ClientSink {
    pub(crate) fn channel(capacity: usize, dropped: metrics::Counter) -> (Self, OutboundQueue) {
        // The queue allocates as frames arrive: an idle client's is one small allocation
        // (tokio's mpsc allocates a 32-slot block up front).
        let (tx, rx) = channel::bounded(capacity);
        let overflow = Arc::new(Overflow::default());
        (
            Self {
                tx,
                overflow: Arc::clone(&overflow),
                dropped,
            },
            OutboundQueue { rx, overflow },
        )
    }

    pub(crate) fn send(&self, out: Outbound) -> Result<(), SendError> {
        match self.tx.try_send(out) {
            Ok(()) => Ok(()),
            Err(TrySendError::Disconnected(_)) => Err(SendError::Disconnected),
            Err(TrySendError::Dropped) => {
                self.dropped.increment(1);
                Err(SendError::Dropped)
            }
            Err(TrySendError::Full(Outbound::Frame(frame))) if frame.is_volatile() => {
                self.dropped.increment(1);
                Err(SendError::Dropped)
            }
            Err(TrySendError::Full(_)) => {
                if !self.overflow.flag.swap(true, Ordering::AcqRel) {
                    // Every waiter: the connection loop and a blocked write may both wait.
                    self.overflow.notify.notify_waiters();
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
/// use ws_gateway_core::prelude::*;
///
/// #[websocket_gateway(path = "/rooms")]
/// struct RoomsGateway;
///
/// #[websocket_gateway]
/// impl RoomsGateway {
///     #[subscribe("join")]
///     fn join(&self, client: Client, room: String) -> Result<WsResponse<String>, RoomError> {
///         client.join(room.clone())?;
///         Ok(WsResponse::new("joined", room))
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
    state: ClientState,
    acks: AckTable,
    /// Whether this connection recovered a session (see [`Recovery`](crate::Recovery)).
    recovered: bool,
}

impl Client {
    pub(crate) fn new(server: WsServer, sink: ClientSink, handshake: Handshake) -> Self {
        Self {
            inner: Arc::new(ClientInner {
                id: ClientId::next(),
                sink,
                server,
                handshake,
                state: ClientState::default(),
                acks: AckTable::default(),
                recovered: false,
            }),
        }
    }

    /// The client of a connection that recovered the session of client `id`: its id and
    /// state, on a new socket.
    pub(crate) fn resumed(
        server: WsServer,
        id: ClientId,
        sink: ClientSink,
        handshake: Handshake,
        state: ClientState,
    ) -> Self {
        Self {
            inner: Arc::new(ClientInner {
                id,
                sink,
                server,
                handshake,
                state,
                acks: AckTable::default(),
                recovered: true,
            }),
        }
    }

    pub(crate) fn sink(&self) -> &ClientSink {
        &self.inner.sink
    }

    pub(crate) fn acks(&self) -> &AckTable {
        &self.inner.acks
    }

    /// Queues `asked` (a frame asking under `ack`) after registering `tx` for the answer.
    pub(crate) fn ask(
        &self,
        asked: &Frame,
        ack: u64,
        deadline: Instant,
        tx: &AckSender,
    ) -> Result<(), SendError> {
        if !self.inner.acks.register(ack, tx.clone()) {
            return Err(SendError::Disconnected);
        }
        self.inner
            .sink
            .send(Outbound::Ask(asked.clone(), deadline))
            .inspect_err(|_| self.inner.acks.forget(ack))
    }

    /// The client's id.
    ///
    /// # Examples
    ///
    /// ```
    /// # use ws_gateway_core::prelude::*;
    /// # #[websocket_gateway(path = "/chat")] struct Chat;
    /// # #[websocket_gateway] impl Chat {}
    /// # let app = GatewayApp::new().gateway::<Chat>().build().unwrap();
    /// # let gw = &app.gateways()[0];
    /// # use ws_gateway_core::Handshake;
    /// let (a, _a_queue) = gw.open(Handshake::default(), 8);
    /// let (b, _b_queue) = gw.open(Handshake::default(), 8);
    /// assert_ne!(a.id(), b.id());
    /// assert_eq!(gw.server().client(a.id()).unwrap().id(), a.id());
    /// ```
    pub fn id(&self) -> ClientId {
        self.inner.id
    }

    /// The server handle of the gateway the client is connected to.
    ///
    /// # Examples
    ///
    /// ```
    /// # use ws_gateway_core::prelude::*;
    /// # #[websocket_gateway(path = "/chat")] struct Chat;
    /// # #[websocket_gateway] impl Chat {}
    /// # let app = GatewayApp::new().gateway::<Chat>().build().unwrap();
    /// # let gw = &app.gateways()[0];
    /// # use ws_gateway_core::Handshake;
    /// let (client, _queue) = gw.open(Handshake::default(), 8);
    /// assert_eq!(client.server().path(), "/chat");
    /// assert_eq!(client.server().client_ids(), [client.id()]);
    /// ```
    pub fn server(&self) -> &WsServer {
        &self.inner.server
    }

    /// The upgrade request the client connected with.
    ///
    /// # Examples
    ///
    /// ```
    /// # use ws_gateway_core::prelude::*;
    /// # #[websocket_gateway(path = "/chat")] struct Chat;
    /// # #[websocket_gateway] impl Chat {}
    /// # let app = GatewayApp::new().gateway::<Chat>().build().unwrap();
    /// # let gw = &app.gateways()[0];
    /// use ws_gateway_core::Handshake;
    ///
    /// let handshake = Handshake::new("/chat?token=abc".parse().unwrap(), http::HeaderMap::new());
    /// let (client, _queue) = gw.open(handshake, 8);
    /// assert_eq!(client.handshake().uri.query(), Some("token=abc"));
    /// ```
    pub fn handshake(&self) -> &Handshake {
        &self.inner.handshake
    }

    /// What the app keeps for this connection, by type: see [`ClientState`]. Dropped when the
    /// connection ends, after `#[handle_disconnect]`.
    ///
    /// # Examples
    ///
    /// ```
    /// # use ws_gateway_core::prelude::*;
    /// # #[websocket_gateway(path = "/chat")] struct Chat;
    /// # #[websocket_gateway] impl Chat {}
    /// # let app = GatewayApp::new().gateway::<Chat>().build().unwrap();
    /// # let gw = &app.gateways()[0];
    /// # use ws_gateway_core::Handshake;
    /// let (client, _queue) = gw.open(Handshake::default(), 8);
    /// client.state().insert(String::from("alice"));
    /// // Every handle of the client sees the same state.
    /// let again = gw.server().client(client.id()).unwrap();
    /// assert_eq!(again.state().get::<String>().as_deref(), Some("alice"));
    /// ```
    pub fn state(&self) -> &ClientState {
        &self.inner.state
    }

    /// Whether this connection recovered the session of a client that dropped (see
    /// [`Recovery`](crate::Recovery)): it kept its id, rooms, identity and state, and
    /// received what it missed. `#[handle_connection]` runs for a recovered connection too;
    /// it may skip what it did the first time (announcing the user, joining rooms).
    ///
    /// # Examples
    ///
    /// ```
    /// # use ws_gateway_core::prelude::*;
    /// # #[websocket_gateway(path = "/chat")] struct Chat;
    /// # #[websocket_gateway] impl Chat {}
    /// # let app = GatewayApp::new().gateway::<Chat>().build().unwrap();
    /// # let gw = &app.gateways()[0];
    /// # use ws_gateway_core::Handshake;
    /// let (client, _queue) = gw.open(Handshake::default(), 8);
    /// assert!(!client.recovered());
    /// ```
    pub fn recovered(&self) -> bool {
        self.inner.recovered
    }

    /// Sends `{"event": event, "data": data}` to this client.
    ///
    /// # Errors
    ///
    /// [`SendError`] when the data fails to serialize, the client is gone, or its queue is
    /// full.
    ///
    /// # Examples
    ///
    /// ```
    /// # use ws_gateway_core::prelude::*;
    /// # #[websocket_gateway(path = "/chat")] struct Chat;
    /// # #[websocket_gateway] impl Chat {}
    /// # let app = GatewayApp::new().gateway::<Chat>().build().unwrap();
    /// # let gw = &app.gateways()[0];
    /// use ws_gateway_core::{Handshake, SendError};
    /// use ws_gateway_core::transport::Outbound;
    ///
    /// let (client, mut queue) = gw.open(Handshake::default(), 8);
    /// client.emit("welcome", &"hi").unwrap();
    /// let Some(Outbound::Frame(frame)) = queue.try_recv() else { panic!("no frame") };
    /// assert_eq!(frame.as_str(), r#"{"event":"welcome","data":"hi"}"#);
    ///
    /// // Once its connection task is gone, sending fails.
    /// drop(queue);
    /// assert!(matches!(client.emit("welcome", &"hi"), Err(SendError::Disconnected)));
    /// ```
    pub fn emit<T: Serialize + ?Sized>(&self, event: &str, data: &T) -> Result<(), SendError> {
        self.send_frame(Frame::event(event, data)?)
    }

    /// Sends `{"event": event, "data": data, "ack": N}` to this client and waits for its
    /// answer, at most [`ack_timeout`](crate::ConnectionConfig::ack_timeout) (see
    /// [`timeout`](Self::timeout) for another): Socket.IO's `emitWithAck`. A plain WebSocket
    /// client answers `{"ack": N, "data": answer}`, a Socket.IO client with its callback.
    ///
    /// The event is sent at once; the returned future resolves to the answer as a `T`.
    ///
    /// # Errors
    ///
    /// [`AckError`](crate::AckError): no answer in time, the client disconnected first, the
    /// answer is not a `T`, or the event could not be sent.
    ///
    /// # Examples
    ///
    /// ```
    /// use ws_gateway_core::prelude::*;
    ///
    /// #[websocket_gateway(path = "/doc-emit-with-ack")]
    /// struct Quiz;
    ///
    /// #[websocket_gateway]
    /// impl Quiz {
    ///     /// Asks the client, and tells it what it answered.
    ///     #[subscribe("start")]
    ///     async fn start(&self, client: Client) -> Result<String, WsException> {
    ///         let answer: u32 = client.emit_with_ack("question", &"6 x 7?").await?;
    ///         Ok(format!("you said {answer}"))
    ///     }
    /// }
    /// ```
    pub fn emit_with_ack<T: DeserializeOwned>(
        &self,
        event: &str,
        data: &(impl Serialize + ?Sized),
    ) -> AckFuture<T> {
        self.timeout(self.inner.server.ack_timeout())
            .emit_with_ack(event, data)
    }

    /// This client, waiting `timeout` for answers: `client.timeout(d).emit_with_ack(..)`,
    /// Socket.IO's `socket.timeout(ms).emitWithAck(..)`.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// # use ws_gateway_core::prelude::*;
    /// # #[websocket_gateway(path = "/chat")] struct Chat;
    /// # #[websocket_gateway] impl Chat {}
    /// # let app = GatewayApp::new().gateway::<Chat>().build().unwrap();
    /// # let gw = &app.gateways()[0];
    /// use std::time::Duration;
    /// use ws_gateway_core::{AckError, Handshake};
    ///
    /// let (client, _queue) = gw.open(Handshake::default(), 8);
    /// // Nobody answers: the queue is never read.
    /// let answer = client.timeout(Duration::from_millis(10)).emit_with_ack::<String>("q", &1).await;
    /// assert!(matches!(answer, Err(AckError::Timeout(_))));
    /// # }
    /// ```
    pub fn timeout(&self, timeout: Duration) -> TimedClient<'_> {
        TimedClient {
            client: self,
            timeout,
        }
    }

    /// Sends an encoded frame to this client.
    ///
    /// # Errors
    ///
    /// [`SendError`] when the client is gone or its queue is full.
    ///
    /// # Examples
    ///
    /// ```
    /// # use ws_gateway_core::prelude::*;
    /// # #[websocket_gateway(path = "/chat")] struct Chat;
    /// # #[websocket_gateway] impl Chat {}
    /// # let app = GatewayApp::new().gateway::<Chat>().build().unwrap();
    /// # let gw = &app.gateways()[0];
    /// use ws_gateway_core::{Frame, Handshake};
    /// use ws_gateway_core::transport::Outbound;
    ///
    /// let (client, mut queue) = gw.open(Handshake::default(), 8);
    /// let frame = Frame::event("tick", &1).unwrap(); // encode once, send to many
    /// client.send_frame(frame.clone()).unwrap();
    /// assert!(matches!(queue.try_recv(), Some(Outbound::Frame(sent)) if sent == frame));
    /// ```
    pub fn send_frame(&self, frame: Frame) -> Result<(), SendError> {
        if let Some(recorder) = self.inner.server.recorder() {
            // Numbered and queued under the recorder's lock: offsets in the order received.
            let mut recording = recorder.recording();
            let selection = crate::adapter::Selection {
                clients: vec![self.id()],
                ..Default::default()
            };
            let frame = recording.record(&selection, &frame, None);
            return self.inner.sink.send(Outbound::Frame(frame));
        }
        self.inner.sink.send(Outbound::Frame(frame))
    }

    /// Sends `{"event": event, "args": [..]}`: an event with several arguments (Socket.IO's
    /// `socket.emit(event, a, b)`), from a tuple, an array, a `Vec`,
    /// [`Args`](crate::Args) or [`RawArgs`](crate::RawArgs). Byte strings among them go to
    /// Socket.IO clients as binary attachments (see [`Frame::args`]).
    ///
    /// # Errors
    ///
    /// [`SendError`] when the arguments fail to serialize or are not a sequence, the client
    /// is gone or its queue is full.
    ///
    /// # Examples
    ///
    /// ```
    /// # use ws_gateway_core::prelude::*;
    /// # #[websocket_gateway(path = "/chat")] struct Chat;
    /// # #[websocket_gateway] impl Chat {}
    /// # let app = GatewayApp::new().gateway::<Chat>().build().unwrap();
    /// # let gw = &app.gateways()[0];
    /// use ws_gateway_core::Handshake;
    /// use ws_gateway_core::transport::Outbound;
    ///
    /// let (client, mut queue) = gw.open(Handshake::default(), 8);
    /// client.emit_args("moved", &("north", 3)).unwrap();
    /// let Some(Outbound::Frame(frame)) = queue.try_recv() else { panic!("no frame") };
    /// assert_eq!(frame.as_str(), r#"{"event":"moved","args":["north",3]}"#);
    /// ```
    pub fn emit_args<T: Serialize + ?Sized>(&self, event: &str, args: &T) -> Result<(), SendError> {
        self.send_frame(Frame::args(event, args)?)
    }

    /// This client, for emits that are dropped rather than disconnecting it when its
    /// outbound queue is full: Socket.IO's `socket.volatile.emit(..)`, for data that the
    /// next emit makes stale (positions, typing indicators).
    ///
    /// # Examples
    ///
    /// ```
    /// # use ws_gateway_core::prelude::*;
    /// # #[websocket_gateway(path = "/chat")] struct Chat;
    /// # #[websocket_gateway] impl Chat {}
    /// # let app = GatewayApp::new().gateway::<Chat>().build().unwrap();
    /// # let gw = &app.gateways()[0];
    /// use ws_gateway_core::Handshake;
    ///
    /// // A queue of one frame that nobody drains.
    /// let (client, queue) = gw.open(Handshake::default(), 1);
    /// assert!(client.volatile().emit("pos", &[1, 2]).unwrap());
    /// assert!(!client.volatile().emit("pos", &[1, 3]).unwrap()); // dropped
    /// assert!(!queue.overflow_signal().has_overflowed()); // still connected
    /// ```
    pub fn volatile(&self) -> VolatileClient<'_> {
        VolatileClient { client: self }
    }

    /// Adds the client to a room (nothing happens if it is already in it).
    ///
    /// # Examples
    ///
    /// ```
    /// # use ws_gateway_core::prelude::*;
    /// # #[websocket_gateway(path = "/chat")] struct Chat;
    /// # #[websocket_gateway] impl Chat {}
    /// # let app = GatewayApp::new().gateway::<Chat>().build().unwrap();
    /// # let gw = &app.gateways()[0];
    /// # use ws_gateway_core::Handshake;
    /// let (client, _queue) = gw.open(Handshake::default(), 8);
    /// client.join("lobby").unwrap();
    /// client.join("lobby").unwrap(); // already there: nothing changes
    /// assert_eq!(client.rooms(), ["lobby"]);
    /// assert_eq!(gw.server().room_members("lobby"), [client.id()]);
    /// ```
    ///
    /// # Errors
    ///
    /// [`RoomError`] past the bounds of [`ConnectionConfig`](crate::ConnectionConfig): a name
    /// longer than `max_room_name_len` bytes, or a client in `max_rooms_per_client` rooms
    /// already. Nothing is joined; returned from a handler (`client.join(room)?`), the
    /// client gets an `exception` frame saying which bound it hit.
    pub fn join(&self, room: impl Into<Cow<'static, str>>) -> Result<(), RoomError> {
        self.inner.server.join(self.id(), room)
    }

    /// [`join`](Self::join), then waits until what other instances send to the room
    /// reaches this client: Socket.IO's `await socket.join(room)`.
    ///
    /// [`join`](Self::join) makes the client a member at once, here; an adapter that
    /// subscribes per room (`ws-gateway-redis`'s per-room mode) subscribes to the room's
    /// channel in the background, and until that is acknowledged, a room emit from
    /// another instance can miss the client. Once this resolves, every room emit
    /// published after it reaches the client. Without such an adapter it is ready at once;
    /// while the adapter's backend is unreachable it does not wait (nothing crosses
    /// instances then anyway).
    ///
    /// # Errors
    ///
    /// The [`RoomError`]s of [`join`](Self::join); nothing is joined.
    ///
    /// # Examples
    ///
    /// ```
    /// use ws_gateway_core::prelude::*;
    ///
    /// #[websocket_gateway(path = "/doc-join-synced")]
    /// struct Chat;
    ///
    /// #[websocket_gateway]
    /// impl Chat {
    ///     /// The reply reaches the client once room emits from any instance do.
    ///     #[subscribe("join")]
    ///     async fn join(&self, client: Client, room: String) -> Result<String, RoomError> {
    ///         client.join_synced(room.clone()).await?;
    ///         Ok(room)
    ///     }
    /// }
    /// ```
    pub async fn join_synced(&self, room: impl Into<Cow<'static, str>>) -> Result<(), RoomError> {
        self.join(room)?;
        self.inner.server.synced().await;
        Ok(())
    }

    /// Whether the client is in a room; unlike [`rooms`](Self::rooms), nothing is copied.
    ///
    /// # Examples
    ///
    /// ```
    /// # use ws_gateway_core::prelude::*;
    /// # #[websocket_gateway(path = "/chat")] struct Chat;
    /// # #[websocket_gateway] impl Chat {}
    /// # let app = GatewayApp::new().gateway::<Chat>().build().unwrap();
    /// # let gw = &app.gateways()[0];
    /// # use ws_gateway_core::Handshake;
    /// let (client, _queue) = gw.open(Handshake::default(), 8);
    /// client.join("lobby").unwrap();
    /// assert!(client.is_in("lobby"));
    /// assert!(!client.is_in("kitchen"));
    /// ```
    pub fn is_in(&self, room: &str) -> bool {
        self.inner.server.is_in(self.id(), room)
    }

    /// Removes the client from a room.
    ///
    /// # Examples
    ///
    /// ```
    /// # use ws_gateway_core::prelude::*;
    /// # #[websocket_gateway(path = "/chat")] struct Chat;
    /// # #[websocket_gateway] impl Chat {}
    /// # let app = GatewayApp::new().gateway::<Chat>().build().unwrap();
    /// # let gw = &app.gateways()[0];
    /// # use ws_gateway_core::Handshake;
    /// let (client, _queue) = gw.open(Handshake::default(), 8);
    /// client.join("a").unwrap();
    /// client.join("b").unwrap();
    /// client.leave("a");
    /// assert_eq!(client.rooms(), ["b"]);
    /// assert_eq!(gw.server().room_size("a"), 0);
    /// ```
    pub fn leave(&self, room: &str) {
        self.inner.server.leave(self.id(), room);
    }

    /// The rooms the client is in, sorted.
    ///
    /// # Examples
    ///
    /// ```
    /// # use ws_gateway_core::prelude::*;
    /// # #[websocket_gateway(path = "/chat")] struct Chat;
    /// # #[websocket_gateway] impl Chat {}
    /// # let app = GatewayApp::new().gateway::<Chat>().build().unwrap();
    /// # let gw = &app.gateways()[0];
    /// # use ws_gateway_core::Handshake;
    /// let (client, _queue) = gw.open(Handshake::default(), 8);
    /// assert!(client.rooms().is_empty());
    /// client.join("zebra").unwrap();
    /// client.join("apple").unwrap();
    /// assert_eq!(client.rooms(), ["apple", "zebra"]);
    /// ```
    pub fn rooms(&self) -> Vec<String> {
        self.inner.server.rooms_of(self.id())
    }

    /// Every other client of the gateway: `client.broadcast().emit(...)` sends to all but
    /// this one.
    ///
    /// # Examples
    ///
    /// ```
    /// # use ws_gateway_core::prelude::*;
    /// # #[websocket_gateway(path = "/chat")] struct Chat;
    /// # #[websocket_gateway] impl Chat {}
    /// # let app = GatewayApp::new().gateway::<Chat>().build().unwrap();
    /// # let gw = &app.gateways()[0];
    /// # use ws_gateway_core::Handshake;
    /// let (alice, mut alice_queue) = gw.open(Handshake::default(), 8);
    /// let (bob, mut bob_queue) = gw.open(Handshake::default(), 8);
    /// assert_eq!(alice.broadcast().emit("hello", &"from alice").unwrap(), 1);
    /// assert!(bob_queue.try_recv().is_some());
    /// assert!(alice_queue.try_recv().is_none());
    /// ```
    pub fn broadcast(&self) -> Broadcast {
        self.inner.server.broadcast().except(self.id())
    }

    /// The members of `room` except this client, Socket.IO's `socket.to(room)`.
    ///
    /// # Examples
    ///
    /// ```
    /// # use ws_gateway_core::prelude::*;
    /// # #[websocket_gateway(path = "/chat")] struct Chat;
    /// # #[websocket_gateway] impl Chat {}
    /// # let app = GatewayApp::new().gateway::<Chat>().build().unwrap();
    /// # let gw = &app.gateways()[0];
    /// # use ws_gateway_core::Handshake;
    /// let (alice, mut alice_queue) = gw.open(Handshake::default(), 8);
    /// let (bob, mut bob_queue) = gw.open(Handshake::default(), 8);
    /// let (carol, mut carol_queue) = gw.open(Handshake::default(), 8);
    /// alice.join("room").unwrap();
    /// bob.join("room").unwrap();
    /// assert_eq!(alice.to("room").emit("message", &"hi").unwrap(), 1); // bob only
    /// assert!(bob_queue.try_recv().is_some());
    /// assert!(alice_queue.try_recv().is_none());
    /// assert!(carol_queue.try_recv().is_none());
    /// ```
    pub fn to(&self, room: impl Into<Cow<'static, str>>) -> Broadcast {
        self.broadcast().to(room)
    }

    /// Closes the connection with code 1000 (normal closure).
    ///
    /// # Examples
    ///
    /// ```
    /// # use ws_gateway_core::prelude::*;
    /// # #[websocket_gateway(path = "/chat")] struct Chat;
    /// # #[websocket_gateway] impl Chat {}
    /// # let app = GatewayApp::new().gateway::<Chat>().build().unwrap();
    /// # let gw = &app.gateways()[0];
    /// use ws_gateway_core::Handshake;
    /// use ws_gateway_core::transport::Outbound;
    ///
    /// let (client, mut queue) = gw.open(Handshake::default(), 8);
    /// client.disconnect();
    /// let Some(Outbound::Close(close)) = queue.try_recv() else { panic!("no close") };
    /// assert_eq!(close.code, 1000);
    /// ```
    pub fn disconnect(&self) {
        self.close(1000, "");
    }

    /// Closes the connection with this code and reason.
    ///
    /// # Examples
    ///
    /// ```
    /// # use ws_gateway_core::prelude::*;
    /// # #[websocket_gateway(path = "/chat")] struct Chat;
    /// # #[websocket_gateway] impl Chat {}
    /// # let app = GatewayApp::new().gateway::<Chat>().build().unwrap();
    /// # let gw = &app.gateways()[0];
    /// use ws_gateway_core::Handshake;
    /// use ws_gateway_core::transport::Outbound;
    ///
    /// let (client, mut queue) = gw.open(Handshake::default(), 8);
    /// client.close(4001, "kicked");
    /// let Some(Outbound::Close(close)) = queue.try_recv() else { panic!("no close") };
    /// assert_eq!((close.code, &*close.reason), (4001, "kicked"));
    /// ```
    pub fn close(&self, code: u16, reason: impl Into<Cow<'static, str>>) {
        // A full queue means the client is being disconnected already.
        let _ = self.inner.sink.send(Outbound::Close(CloseRequest {
            code,
            reason: reason.into(),
        }));
    }
}

/// A [`Client`] whose emits are dropped when its queue is full: see [`Client::volatile`].
#[derive(Debug, Clone, Copy)]
pub struct VolatileClient<'a> {
    client: &'a Client,
}

impl VolatileClient<'_> {
    /// [`Client::emit`], dropped if the client's queue is full: `Ok(false)` then (counted
    /// in `gateway_messages_dropped_total`).
    ///
    /// # Errors
    ///
    /// [`SendError`] when the data fails to serialize or the client is gone.
    ///
    /// # Examples
    ///
    /// See [`Client::volatile`].
    pub fn emit<T: Serialize + ?Sized>(&self, event: &str, data: &T) -> Result<bool, SendError> {
        self.send_frame(Frame::event(event, data)?)
    }

    /// [`Client::emit_args`], dropped if the client's queue is full: `Ok(false)` then.
    ///
    /// # Errors
    ///
    /// [`SendError`] when the arguments fail to serialize or the client is gone.
    ///
    /// # Examples
    ///
    /// See [`Client::volatile`].
    pub fn emit_args<T: Serialize + ?Sized>(
        &self,
        event: &str,
        args: &T,
    ) -> Result<bool, SendError> {
        self.send_frame(Frame::args(event, args)?)
    }

    /// Sends `frame`, made volatile: `Ok(false)` if it was dropped.
    ///
    /// # Errors
    ///
    /// [`SendError::Disconnected`] when the client is gone.
    ///
    /// # Examples
    ///
    /// See [`Client::volatile`].
    pub fn send_frame(&self, frame: Frame) -> Result<bool, SendError> {
        match self.client.send_frame(frame.volatile()) {
            Ok(()) => Ok(true),
            Err(SendError::Dropped) => Ok(false),
            Err(err) => Err(err),
        }
    }
}

/// A client and how long to wait for its answers: [`Client::timeout`].
#[derive(Debug)]
#[must_use = "sends nothing until `emit_with_ack` is called"]
pub struct TimedClient<'a> {
    client: &'a Client,
    timeout: Duration,
}

impl TimedClient<'_> {
    /// [`Client::emit_with_ack`], waiting this long.
    ///
    /// # Errors
    ///
    /// As [`Client::emit_with_ack`]'s.
    ///
    /// # Examples
    ///
    /// See [`Client::timeout`].
    pub fn emit_with_ack<T: DeserializeOwned>(
        &self,
        event: &str,
        data: &(impl Serialize + ?Sized),
    ) -> AckFuture<T> {
        let frame = match Frame::event(event, data) {
            Ok(frame) => frame,
            Err(err) => return AckFuture::failed(err.into()),
        };
        let ack = crate::ack::next_ack();
        let (tx, rx) = mpsc::unbounded_channel();
        let deadline = Instant::now() + self.timeout;
        match self.client.ask(&frame.with_ack(ack), ack, deadline, &tx) {
            Ok(()) => AckFuture::asked(AckStream::new(rx, 1, self.timeout, deadline, false)),
            Err(err) => AckFuture::failed(err),
        }
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
