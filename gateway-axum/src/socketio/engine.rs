//! The Engine.IO handler: socketioxide's engine (engineioxide) carries the packets, this
//! routes them. A namespace CONNECT is admitted and becomes a session of the gateway
//! serving that path; the packets of a namespace go to its session; an acknowledgement
//! answers the emit that asked.

use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, RwLock};

use axum::body::Bytes;
use axum::http::Uri;
use engineioxide::handler::EngineIoHandler;
use engineioxide::socket::{DisconnectReason, Socket};
use rustc_hash::FxHashMap;
use socketioxide_core::Value;
use socketioxide_core::packet::{Packet as SioPacket, PacketData};
use socketioxide_core::parser::{Parse, ParseConfig, ParseError, ParserState};
use socketioxide_parser_common::CommonParser;
use tokio::sync::{Notify, oneshot};
use ws_gateway_core::transport::{GatewayRuntime, Session};
use ws_gateway_core::{App, ErrorKind, HandshakeRequest, PathParams, WsException};

pub(crate) use engineioxide::Str;

use super::connection::{Ended, Inbound, Packet, SocketIoConnection};
use super::wire::{self, Encoded};
use super::{SocketIoAuth, SocketIoConfig};
use crate::handshake;

/// How many received messages may wait for their session before the client is
/// disconnected from the namespace as a flood.
const INBOUND_CAPACITY: usize = 1024;

/// How many bytes of received messages may wait for their session before the client is
/// disconnected from the namespace as a flood. The engine reads on while the session is
/// past its in-flight limit (it has no backpressure to offer), so this is what bounds the
/// memory a client sending large messages faster than they are handled can take.
const INBOUND_BYTES: usize = 4 * 1024 * 1024;

/// What a client is told about a message whose event or arguments could not be read.
const UNREADABLE: &str =
    r#"Invalid message: expected an event name and arguments, socket.emit("event", data)"#;

/// The Engine.IO handler of one Socket.IO server: the gateways it serves, by path. A
/// handle: engineioxide's layer wants its handler `Clone`.
#[derive(Clone)]
pub(crate) struct Engine {
    pub(super) config: Arc<SocketIoConfig>,
    parse: ParseConfig,
    namespaces: Arc<RwLock<Namespaces>>,
}

#[derive(Default)]
struct Namespaces {
    fixed: HashMap<Box<str>, Arc<Namespace>>,
    /// Gateways whose paths have parameters (`/rooms/{id}`): dynamic namespaces.
    dynamic: Vec<Arc<Namespace>>,
}

/// A gateway as its namespace serves it.
pub(super) struct Namespace {
    pub(super) gateway: GatewayRuntime,
    pub(super) app: App,
}

impl fmt::Debug for Engine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let namespaces = self
            .namespaces
            .read()
            .unwrap_or_else(PoisonError::into_inner);
        f.debug_struct("Engine")
            .field("config", &self.config)
            .field("fixed", &namespaces.fixed.keys().collect::<Vec<_>>())
            .field("dynamic", &namespaces.dynamic.len())
            .finish_non_exhaustive()
    }
}

/// What the engine keeps for each of its connections: the state of a binary packet being
/// received, and the namespaces the client joined.
#[derive(Default)]
pub(crate) struct Connected {
    parser: ParserState,
    /// The client's namespaces, by path; usually one.
    links: Mutex<FxHashMap<Str, Arc<Link>>>,
    /// Namespace CONNECTs being admitted.
    admitting: AtomicUsize,
    /// Wakes the connect timeout's task when a namespace is joined, so that it does not
    /// stay for the whole timeout with every connection.
    joined: Notify,
}

impl Connected {
    /// The client's namespaces. No user code runs under the lock, so a poisoned one still
    /// guards a consistent map.
    fn links(&self) -> MutexGuard<'_, FxHashMap<Str, Arc<Link>>> {
        self.links.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn link(&self, ns: &str) -> Option<Arc<Link>> {
        self.links().get(ns).cloned()
    }

    /// No namespace joined or being joined.
    fn idle(&self) -> bool {
        self.admitting.load(Ordering::Acquire) == 0 && self.links().is_empty()
    }
}

pub(super) type EngineSocket = Arc<Socket<Connected>>;

/// The client's place in one namespace, shared by the engine (which delivers its packets)
/// and its session.
pub(super) struct Link {
    inbound: flume::Sender<Inbound>,
    /// Bytes of the messages in `inbound`, at most [`INBOUND_BYTES`].
    pub(super) queued: AtomicUsize,
    /// How the namespace ended for the client, read by its session once `inbound` is
    /// drained (the messages sent before it are handled first).
    pub(super) ended: Mutex<Option<Ended>>,
    /// Too much waited in `inbound`: the session refuses the client at once.
    pub(super) refused: AtomicBool,
    /// Acknowledgements the server asked for, by number, waiting for their answer.
    asks: Mutex<FxHashMap<i64, oneshot::Sender<Value>>>,
    next_ask: AtomicI64,
}

impl Link {
    pub(super) fn new() -> (Arc<Self>, flume::Receiver<Inbound>) {
        let (inbound, receiver) = flume::bounded(INBOUND_CAPACITY);
        let link = Arc::new(Self {
            inbound,
            queued: AtomicUsize::new(0),
            ended: Mutex::new(None),
            refused: AtomicBool::new(false),
            asks: Mutex::new(FxHashMap::default()),
            next_ask: AtomicI64::new(1),
        });
        (link, receiver)
    }

    /// Hands a message to the session, or refuses the client when too much waits.
    fn deliver(&self, packet: Packet) -> bool {
        let size = packet.size();
        let queued = self.queued.fetch_add(size, Ordering::AcqRel) + size;
        if queued <= INBOUND_BYTES && self.inbound.try_send(Inbound::Packet(packet)).is_ok() {
            return true;
        }
        self.queued.fetch_sub(size, Ordering::AcqRel);
        tracing::debug!(target: "gateway::rejection", "too many Socket.IO messages waiting (a count of {INBOUND_CAPACITY} or {INBOUND_BYTES} bytes), disconnecting");
        self.refused.store(true, Ordering::Release);
        let _ = self.inbound.try_send(Inbound::Wake);
        false
    }

    /// The end of the namespace for the session, after what is queued.
    fn end(&self, how: Ended) {
        *self.ended.lock().unwrap_or_else(PoisonError::into_inner) = Some(how);
        let _ = self.inbound.try_send(Inbound::Wake);
    }

    /// A number for an acknowledgement to ask for, and the answer's receiver.
    pub(super) fn ask(self: &Arc<Self>) -> (i64, AskGuard) {
        let id = self.next_ask.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = oneshot::channel();
        self.asks
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(id, tx);
        (
            id,
            AskGuard {
                link: Arc::downgrade(self),
                id,
                answer: rx,
            },
        )
    }

    fn answer(&self, id: i64, value: Value) {
        let waiting = self
            .asks
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&id);
        match waiting {
            Some(tx) => {
                let _ = tx.send(value);
            }
            None => {
                tracing::debug!(target: "gateway", ack = id, "an acknowledgement nothing waits for");
            }
        }
    }
}

/// The receiver of one acknowledgement's answer; forgets the number when dropped (answered
/// or not), so that unanswered questions leave nothing behind.
pub(super) struct AskGuard {
    link: std::sync::Weak<Link>,
    id: i64,
    pub(super) answer: oneshot::Receiver<Value>,
}

impl Drop for AskGuard {
    fn drop(&mut self) {
        if let Some(link) = self.link.upgrade() {
            link.asks
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .remove(&self.id);
        }
    }
}

/// Why a packet was not sent.
pub(super) enum Unsent {
    /// The connection's buffer is full: the packet comes back.
    Full(Encoded),
    /// The connection is closed.
    Closed,
}

/// Sends an encoded packet, now or not at all.
pub(super) fn send(socket: &EngineSocket, packet: Encoded) -> Result<(), Unsent> {
    use tokio::sync::mpsc::error::TrySendError;
    let Encoded { text, attachments } = packet;
    match attachments {
        None => socket.emit(text).map_err(|err| match err {
            TrySendError::Full(text) => Unsent::Full(Encoded {
                text,
                attachments: None,
            }),
            TrySendError::Closed(_) => Unsent::Closed,
        }),
        Some(attachments) => match socket.reserve() {
            Ok(permit) => {
                permit.emit_many(text, attachments);
                Ok(())
            }
            Err(TrySendError::Full(())) => Err(Unsent::Full(Encoded {
                text,
                attachments: Some(attachments),
            })),
            Err(TrySendError::Closed(())) => Err(Unsent::Closed),
        },
    }
}

impl Engine {
    pub(super) fn new(config: SocketIoConfig, max_message_size: usize) -> Self {
        let mut parse = ParseConfig::default();
        // Attachments are part of a message: no more of them than a message may hold.
        parse.max_incoming_binary_buf_size =
            parse.max_incoming_binary_buf_size.min(max_message_size);
        Self {
            config: Arc::new(config),
            parse,
            namespaces: Arc::default(),
        }
    }

    pub(super) fn add(&self, gateway: &GatewayRuntime, app: &App) {
        // The macro accepts braces in a path only around a parameter.
        let dynamic = gateway.path().contains('{');
        let namespace = Arc::new(Namespace {
            gateway: gateway.clone(),
            app: app.clone(),
        });
        let mut namespaces = self
            .namespaces
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        if dynamic {
            namespaces.dynamic.push(namespace);
        } else {
            namespaces.fixed.insert(gateway.path().into(), namespace);
        }
    }

    /// The paths served, as the gateways declare them.
    pub(super) fn paths(&self) -> Vec<String> {
        let namespaces = self
            .namespaces
            .read()
            .unwrap_or_else(PoisonError::into_inner);
        let mut paths: Vec<String> = namespaces
            .fixed
            .keys()
            .map(|path| path.to_string())
            .chain(
                namespaces
                    .dynamic
                    .iter()
                    .map(|ns| ns.gateway.path().to_owned()),
            )
            .collect();
        paths.sort();
        paths
    }

    /// The namespace serving `path`, and its path parameters.
    pub(super) fn find(&self, path: &str) -> Option<(Arc<Namespace>, Result<PathParams, String>)> {
        let namespaces = self
            .namespaces
            .read()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(namespace) = namespaces.fixed.get(path) {
            return Some((Arc::clone(namespace), Ok(PathParams::default())));
        }
        namespaces.dynamic.iter().find_map(|namespace| {
            match PathParams::matching(namespace.gateway.path(), path) {
                Ok(params) => Some((Arc::clone(namespace), Ok(params))),
                Err(ws_gateway_core::PathMismatch::NotMatching { .. }) => None,
                Err(err) => Some((Arc::clone(namespace), Err(err.to_string()))),
            }
        })
    }

    /// Closes the connection if it joins no namespace within the connect timeout
    /// (Socket.IO's `connectTimeout`), from its opening or from when it left its last one.
    fn watch(&self, socket: &EngineSocket) {
        // Also called from a connection's drop, which may run as the runtime shuts down.
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let timeout = self.config.connect_timeout;
        let socket = Arc::clone(socket);
        runtime.spawn(async move {
            tokio::select! {
                () = tokio::time::sleep(timeout) => {
                    if socket.data.idle() {
                        tracing::debug!(target: "gateway::rejection", sid = %socket.id, "no namespace joined in time, closing");
                        socket.close(DisconnectReason::TransportClose);
                    }
                }
                () = socket.data.joined.notified() => {}
                () = socket.closed() => {}
            }
        });
    }

    /// A packet read from a text message or completed by an attachment: routed, or the
    /// connection closed when it was not a packet.
    fn decoded(self: &Arc<Self>, decoded: Result<SioPacket, ParseError>, socket: &EngineSocket) {
        match decoded {
            Ok(packet) => self.route(packet, socket),
            Err(ParseError::NeedsMoreBinaryData) => {}
            Err(err) => {
                tracing::debug!(target: "gateway::rejection", sid = %socket.id, "unreadable Socket.IO packet, closing: {err}");
                socket.close(DisconnectReason::PacketParsingError);
            }
        }
    }

    fn route(self: &Arc<Self>, packet: SioPacket, socket: &EngineSocket) {
        let SioPacket { inner, ns } = packet;
        match inner {
            PacketData::Connect(auth) => self.connect(ns, auth, socket),
            PacketData::Event(value, ack) | PacketData::BinaryEvent(value, ack) => {
                // Packets of a namespace the client is not in are ignored, as socketioxide
                // does.
                if let Some(link) = socket.data.link(&ns)
                    && !link.deliver(message(value, ack))
                {
                    self.leave(socket, &ns, &link);
                }
            }
            PacketData::EventAck(value, id) | PacketData::BinaryAck(value, id) => {
                if let Some(link) = socket.data.link(&ns) {
                    link.answer(id, value);
                }
            }
            PacketData::Disconnect => {
                if let Some(link) = socket.data.link(&ns) {
                    self.leave(socket, &ns, &link);
                    link.end(Ended::Left);
                }
            }
            PacketData::ConnectError(_) => {
                tracing::debug!(target: "gateway::rejection", sid = %socket.id, "a CONNECT_ERROR from a client, closing");
                socket.close(DisconnectReason::PacketParsingError);
            }
        }
    }

    /// The client is out of namespace `ns`: its packets there are no longer delivered.
    pub(super) fn leave(&self, socket: &EngineSocket, ns: &str, link: &Arc<Link>) {
        let mut links = socket.data.links();
        if links
            .get(ns)
            .is_some_and(|current| Arc::ptr_eq(current, link))
        {
            links.remove(ns);
            if links.is_empty() {
                drop(links);
                self.watch(socket);
            }
        }
    }

    /// A namespace CONNECT: admitted, then served by the gateway of that path.
    fn connect(self: &Arc<Self>, ns: Str, auth: Option<Value>, socket: &EngineSocket) {
        let Some((namespace, params)) = self.find(&ns) else {
            let _ = send(socket, wire::connect_error_packet(&ns, "Invalid namespace"));
            return;
        };
        if socket.data.link(&ns).is_some() {
            tracing::debug!(target: "gateway::rejection", ns = %ns.as_str(), "a second CONNECT to a namespace already joined, ignored");
            return;
        }
        let auth = auth.and_then(|auth| match auth {
            Value::Str(text, _) => serde_json::from_str::<serde_json::Value>(text.as_str()).ok(),
            Value::Bytes(_) => None,
        });
        socket.data.admitting.fetch_add(1, Ordering::AcqRel);
        let engine = Arc::clone(self);
        let socket = Arc::clone(socket);
        tokio::spawn(async move {
            let admitted = admit(&namespace, &socket, params, auth).await;
            socket.data.admitting.fetch_sub(1, Ordering::AcqRel);
            match admitted {
                Err(reason) => {
                    let _ = send(&socket, wire::connect_error_packet(&ns, &reason));
                    if socket.data.idle() {
                        engine.watch(&socket);
                    }
                }
                // A task of its own, built outside any future so that it holds the
                // session's serving and nothing beside it (the session, the admission).
                Ok(session) => {
                    if let Some(served) = engine.serve(&namespace, socket, ns, session) {
                        tokio::spawn(served);
                    }
                }
            }
        });
    }

    /// The admitted client's session in namespace `ns`, to run until it ends (`None` when
    /// the connection closed or joined `ns` meanwhile). The client leaves the namespace
    /// when the session drops its connection.
    fn serve(
        &self,
        namespace: &Namespace,
        socket: EngineSocket,
        ns: Str,
        session: Session,
    ) -> Option<impl Future<Output = ()> + Send + use<>> {
        let (link, inbound) = Link::new();
        {
            let mut links = socket.data.links();
            if socket.is_closed() || links.contains_key(&ns) {
                return None;
            }
            links.insert(ns.clone(), Arc::clone(&link));
        }
        socket.data.joined.notify_waiters();
        let connection = SocketIoConnection::new(
            self.clone(),
            socket,
            ns,
            link,
            inbound,
            namespace.gateway.metrics().messages_dropped.clone(),
        );
        Some(session.serve(connection))
    }
}

/// A received event, with what is needed to answer it.
fn message(value: Value, ack: Option<i64>) -> Packet {
    let unreadable =
        || Packet::Unreadable(WsException::new(UNREADABLE).with_kind(ErrorKind::BadRequest));
    let Value::Str(text, attachments) = value else {
        return unreadable();
    };
    match wire::read_args(text.as_str()) {
        Some(read) => Packet::Message {
            // Placeholders (`{"_placeholder":true,"num":N}`) stay in the text: the
            // attachments go beside it, as the gateway's requests carry them.
            attachments: attachments.map(Vec::from).unwrap_or_default(),
            ack: ack.map(|id| super::connection::Ack::new(&read.event, id)),
            event: read.event,
            args: read.args,
            data: read.first,
        },
        None => unreadable(),
    }
}

/// Admits a namespace CONNECT: every refusal happens here, so that the client receives
/// `connect_error` and never joins the namespace.
async fn admit(
    namespace: &Namespace,
    socket: &EngineSocket,
    params: Result<PathParams, String>,
    auth: Option<serde_json::Value>,
) -> Result<Session, String> {
    let path_params = params?;
    let parts = &socket.req_parts;
    let admitted =
        handshake::admit(&namespace.app, parts).map_err(|refusal| refusal.to_string())?;
    let stripped;
    let headers = if admitted.drop_cookies {
        stripped = handshake::without_cookies(&parts.headers);
        &stripped
    } else {
        &parts.headers
    };
    let request = HandshakeRequest::new(&parts.uri, headers).with_auth_payload(auth.as_ref());
    let identity = namespace
        .gateway
        .authenticate(&request)
        .await
        .map_err(|err| err.message().to_owned())?;
    let uri = recovery_uri(&parts.uri, auth.as_ref());
    let mut handshake = handshake::handshake_of(uri, parts, &admitted, path_params);
    if let Some(auth) = auth {
        handshake.extensions.insert(SocketIoAuth(auth));
    }
    if let Some(store) = identity {
        store(&mut handshake.extensions);
    }
    Ok(Session::new(&namespace.gateway, &namespace.app, handshake).admitted(admitted.guard))
}

/// The handshake's URI, with the `pid` and `offset` a reconnecting socket.io-client puts in
/// its CONNECT's `auth` added to the query, where connection state recovery reads them on
/// every transport. Values that are not a session's are left out.
fn recovery_uri(uri: &Uri, auth: Option<&serde_json::Value>) -> Uri {
    let field = |name: &str| {
        auth.and_then(|auth| auth.get(name))
            .and_then(serde_json::Value::as_str)
            .filter(|value| {
                !value.is_empty()
                    && value.len() <= 64
                    && value
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
            })
    };
    let Some(pid) = field("pid") else {
        return uri.clone();
    };
    let mut query = match uri.query() {
        Some(query) => format!("{query}&pid={pid}"),
        None => format!("pid={pid}"),
    };
    if let Some(offset) = field("offset") {
        query.push_str("&offset=");
        query.push_str(offset);
    }
    format!("{}?{query}", uri.path())
        .parse()
        .unwrap_or_else(|_| uri.clone())
}

impl EngineIoHandler for Engine {
    type Data = Connected;

    fn on_connect(self: Arc<Self>, socket: EngineSocket) {
        self.watch(&socket);
    }

    fn on_disconnect(&self, socket: EngineSocket, reason: DisconnectReason) {
        tracing::trace!(target: "gateway", sid = %socket.id, ?reason, "Engine.IO connection closed");
        let links = std::mem::take(&mut *socket.data.links());
        for link in links.into_values() {
            link.end(Ended::Gone);
        }
    }

    fn on_message(self: &Arc<Self>, msg: Str, socket: EngineSocket) {
        let decoded = CommonParser.decode_str(&self.parse, &socket.data.parser, msg);
        self.decoded(decoded, &socket);
    }

    fn on_binary(self: &Arc<Self>, data: Bytes, socket: EngineSocket) {
        let decoded = CommonParser.decode_bin(&self.parse, &socket.data.parser, data);
        self.decoded(decoded, &socket);
    }
}

impl fmt::Debug for Connected {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Connected").finish_non_exhaustive()
    }
}
