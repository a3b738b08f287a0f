//! [`SocketIoTransport`]: the same gateways served to Socket.IO clients, on
//! [socketioxide](https://docs.rs/socketioxide).
//!
//! Each Socket.IO socket becomes an ordinary [`Client`] of the gateway's
//! [`GatewayRuntime`]: rooms, [`WsServer`](ws_gateway_core::WsServer) emits, guards, pipes,
//! interceptors, filters, hooks and the broadcast adapter work unchanged, and one room holds
//! plain-WebSocket and Socket.IO clients alike.

use std::borrow::Cow;
use std::collections::HashMap;
use std::fmt;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::Instant;

use axum::Router;
use axum::body::Bytes;
use axum::extract::ConnectInfo;
use axum::http::StatusCode;
use axum::routing::any;
use futures_util::StreamExt;
use serde::de::{DeserializeSeed, SeqAccess, Visitor};
use serde_json::Value;
use serde_json::value::RawValue;
use socketioxide::adapter::LocalAdapter;
use socketioxide::extract::{AckSender, Event, SocketRef, TryData};
use socketioxide::handler::{ConnectHandler, FromMessageParts, MessageHandler};
use socketioxide::socket::Socket;
use socketioxide::{SendError, SocketError, SocketIo, SocketIoBuilder, SocketIoConfig};
use ws_gateway_core::telemetry::Counter;
use ws_gateway_core::transport::{
    Ask, Attached, Closing, Connection, Decoded, GatewayRuntime, Gone, IdentitySlot, Received,
    Session, Transport,
};
use ws_gateway_core::{
    App, ErrorKind, Frame, Handshake, HandshakeRequest, PathParams, Request, WsException,
};

use crate::handshake;

/// How many received messages may wait for their socket's task before the socket is
/// disconnected as a flood.
const INBOUND_CAPACITY: usize = 1024;

/// How many bytes of received messages may wait for their socket's task before the socket
/// is disconnected as a flood. socketioxide reads on while the session is past its
/// in-flight limit (it has no backpressure to offer), so this is what bounds the memory a
/// client sending large messages faster than they are handled can take.
const INBOUND_BYTES: usize = 4 * 1024 * 1024;

/// Serves every gateway to Socket.IO clients (cargo feature `socketio`): a gateway's path is
/// its namespace, `#[subscribe("x")]` handles event `x`.
///
/// - A gateway path with parameters (`/rooms/{id}`) is a dynamic namespace: a client of
///   `io("http://host/rooms/42")` is a client of the gateway, its parameters read by
///   [`WsParam`](ws_gateway_core::WsParam) as over plain WebSockets (percent-decoded). Each
///   path in use is a namespace of socketioxide's while it has clients: it is deleted when
///   the last one leaves, so that clients cannot grow the server by making up paths.
/// - A handler's reply under the request's own event answers the client's acknowledgement
///   callback when it passed one (NestJS's semantics), and is emitted under that event when
///   it did not; a [`WsResponse`](ws_gateway_core::WsResponse) under another event is emitted.
/// - A message's first argument is the handler's data (none is no data); every argument is
///   [`Args`](ws_gateway_core::Args) or [`RawArgs`](ws_gateway_core::RawArgs), and a
///   frame of several ([`Client::emit_args`](ws_gateway_core::Client::emit_args), a returned `Args`) is emitted, or answers the
///   callback, with its arguments spread. Data stays raw JSON both ways: the handler
///   receives the arguments as the client wrote them, and the client receives what the
///   handler replies or emits as plain WebSocket clients do (key order and numbers as
///   written). Binary attachments arrive as byte strings (placeholders in the JSON text,
///   [`Request::attachments`] beside it), and byte strings go out as attachments
///   ([`Frame::binary`]).
/// - A [volatile](Frame::volatile) frame socketioxide has no room for is dropped (counted in
///   `gateway_messages_dropped_total`) rather than disconnecting the client.
/// - Errors arrive as an `exception` event whose payload is exactly what the JSON transport
///   sends: `{"status":"error","message":..,"cause":{"pattern":..,"data":..}}`.
/// - Handshake authentication runs the gateway's authenticator on the Socket.IO handshake:
///   its headers, its query and the `auth` payload (`auth.token` is a bearer token, see
///   [`HandshakeRequest::token`]). A refused client receives `connect_error` with the
///   reason as `message`, as do clients over the app's connection limits, with request
///   headers over `max_handshake_size`, or from an origin `allowed_origins` refuses
///   (by default, any page but the server's own).
/// - A close requested by a handler, a filter or `client.close(..)` disconnects the socket
///   (Socket.IO has no close codes).
///
/// [`mount`](Transport::mount) returns a router serving Socket.IO's path
/// (`/socket.io/` unless configured otherwise) and socketioxide's handle: merge the router
/// with the one serving the plain-WebSocket routes, and both kinds of clients are served on
/// one port, sharing one [`App`].
///
/// # Examples
///
/// ```
/// use ws_gateway_axum::prelude::*;
/// use ws_gateway_axum::{SocketIoTransport, Transport};
///
/// #[websocket_gateway(path = "/chat")]
/// struct Chat;
///
/// #[websocket_gateway]
/// impl Chat {
///     /// `socket.emit("ping", 1, (reply) => ...)` gets `"pong"` in its callback.
///     #[subscribe("ping")]
///     fn ping(&self) -> &'static str {
///         "pong"
///     }
/// }
///
/// let app = GatewayApp::new().gateway::<Chat>().build().unwrap();
/// let (socketio, _io) = SocketIoTransport::new().mount(&app);
/// // ws://host/chat for plain WebSocket clients, io("http://host/chat") for Socket.IO ones.
/// let router: axum::Router = app.into_router().merge(socketio);
/// # let _ = router;
/// ```
#[derive(Debug, Clone, Default)]
pub struct SocketIoTransport {
    config: Option<SocketIoConfig>,
}

impl SocketIoTransport {
    /// A transport with socketioxide's defaults (path `/socket.io`), the payload limits
    /// taken from the app's [`ConnectionConfig`](ws_gateway_core::ConnectionConfig).
    ///
    /// # Examples
    ///
    /// ```
    /// use ws_gateway_axum::prelude::*;
    /// use ws_gateway_axum::{SocketIoTransport, Transport};
    ///
    /// #[websocket_gateway(path = "/doc-sio-new")]
    /// struct Fresh;
    ///
    /// #[websocket_gateway]
    /// impl Fresh {}
    ///
    /// let app = GatewayApp::new().gateway::<Fresh>().build().unwrap();
    /// let (_router, io) = SocketIoTransport::new().mount(&app);
    /// let engine = &io.config().engine_config;
    /// assert_eq!(engine.req_path, "/socket.io");
    /// assert_eq!(engine.max_payload, app.config().max_message_size as u64);
    /// ```
    pub fn new() -> Self {
        Self::default()
    }

    /// A transport with this socketioxide configuration (path, ping interval and timeout,
    /// payload limits, connect timeout...), used as is.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use ws_gateway_axum::prelude::*;
    /// use ws_gateway_axum::{SocketIoTransport, Transport};
    ///
    /// #[websocket_gateway(path = "/doc-sio-config")]
    /// struct Configured;
    ///
    /// #[websocket_gateway]
    /// impl Configured {}
    ///
    /// let mut config = socketioxide::SocketIoConfig::default();
    /// config.engine_config.req_path = "/io".into();
    /// config.engine_config.ping_interval = Duration::from_millis(300);
    /// config.engine_config.max_payload = 1_000_000;
    /// config.connect_timeout = Duration::from_secs(1);
    ///
    /// let app = GatewayApp::new().gateway::<Configured>().build().unwrap();
    /// let (_router, io) = SocketIoTransport::with_config(config).mount(&app);
    /// let applied = io.config();
    /// assert_eq!(applied.engine_config.req_path, "/io");
    /// assert_eq!(applied.engine_config.ping_interval, Duration::from_millis(300));
    /// assert_eq!(applied.engine_config.max_payload, 1_000_000);
    /// assert_eq!(applied.connect_timeout, Duration::from_secs(1));
    /// ```
    pub fn with_config(config: SocketIoConfig) -> Self {
        Self {
            config: Some(config),
        }
    }
}

impl Transport for SocketIoTransport {
    /// A router serving Socket.IO's path (merge it with your router) and socketioxide's
    /// handle.
    type Server = (Router, SocketIo);

    /// Socket.IO's router and handle, with no namespace yet.
    ///
    /// # Examples
    ///
    /// ```
    /// use ws_gateway_axum::prelude::*;
    /// use ws_gateway_axum::{SocketIoTransport, Transport};
    ///
    /// #[websocket_gateway(path = "/doc-sio-create")]
    /// struct Created;
    ///
    /// #[websocket_gateway]
    /// impl Created {}
    ///
    /// let app = GatewayApp::new().gateway::<Created>().build().unwrap();
    /// let (router, io) = SocketIoTransport::new().create(&app);
    /// assert!(io.of("/doc-sio-create").is_none());
    /// # let _: axum::Router = router;
    /// ```
    fn create(&self, app: &App) -> Self::Server {
        let builder = SocketIo::builder();
        let builder = match &self.config {
            Some(config) => engine_config(builder.with_config(config.clone()), config),
            None => {
                let max = app.config().max_message_size;
                builder
                    .max_payload(u64::try_from(max).unwrap_or(u64::MAX))
                    .ws_max_message_size(max)
                    .ws_max_frame_size(app.config().max_frame_size)
            }
        };
        let (layer, io) = builder.build_layer();
        // Routes, not a fallback: the router survives being merged into another. The layer
        // answers every request under the path; the handler is never reached.
        let path = io
            .config()
            .engine_config
            .req_path
            .trim_end_matches('/')
            .to_owned();
        let unreachable = || std::future::ready(StatusCode::NOT_FOUND);
        let router = Router::new()
            .route(&format!("{path}/"), any(unreachable))
            .route(&path, any(unreachable))
            .layer(layer);
        (router, io)
    }

    /// Serves `gateway` as the namespace of its path.
    ///
    /// # Examples
    ///
    /// ```
    /// use ws_gateway_axum::prelude::*;
    /// use ws_gateway_axum::{SocketIoTransport, Transport};
    ///
    /// #[websocket_gateway(path = "/doc-sio-bind")]
    /// struct Bound;
    ///
    /// #[websocket_gateway]
    /// impl Bound {}
    ///
    /// let app = GatewayApp::new().gateway::<Bound>().build().unwrap();
    /// let transport = SocketIoTransport::new();
    /// let server = transport.create(&app);
    /// let (router, io) = transport.bind(server, &app.gateways()[0], &app);
    /// assert!(io.of("/doc-sio-bind").is_some());
    /// # let _: axum::Router = router;
    /// ```
    fn bind(&self, server: Self::Server, gateway: &GatewayRuntime, app: &App) -> Self::Server {
        // The macro accepts braces in a path only around a parameter.
        let dynamic = gateway.path().contains('{');
        let mounted = Arc::new(Namespace {
            gateway: gateway.clone(),
            app: app.clone(),
            live: dynamic.then(Mutex::default),
        });
        let on_connect = {
            let mounted = Arc::clone(&mounted);
            move |socket: SocketRef, io: SocketIo| {
                connected(&mounted, socket, io);
                std::future::ready(())
            }
        };
        let middleware = move |socket: SocketRef, io: SocketIo, TryData(auth): TryData<Value>| {
            let mounted = Arc::clone(&mounted);
            async move {
                let admitted = admit(&mounted, &socket, auth.ok()).await;
                if admitted.is_err() {
                    mounted.release(&io, socket.ns());
                }
                admitted
            }
        };
        if dynamic {
            // `build` refused paths that conflict, so this cannot fail.
            if let Err(err) = server.1.dyn_ns(gateway.path(), on_connect.with(middleware)) {
                tracing::error!(target: "gateway", path = gateway.path(), "Socket.IO namespace not served: {err}");
            }
        } else {
            server.1.ns(gateway.path(), on_connect.with(middleware));
        }
        server
    }
}

/// `config`'s Engine.IO settings, on the builder: socketioxide's `build_layer` replaces the
/// Engine.IO half of the configuration that `with_config` set by the builder's own, so that
/// without this the path, heartbeat and limits of the configuration would be ignored.
fn engine_config(builder: SocketIoBuilder, config: &SocketIoConfig) -> SocketIoBuilder {
    use socketioxide::TransportType::{Polling, Websocket};
    let engine = &config.engine_config;
    let builder = builder
        .req_path(engine.req_path.clone())
        .ping_interval(engine.ping_interval)
        .ping_timeout(engine.ping_timeout)
        .upgrade_timeout(engine.upgrade_timeout)
        .max_buffer_size(engine.max_buffer_size)
        .max_payload(engine.max_payload)
        .ws_read_buffer_size(engine.ws_read_buffer_size)
        .ws_max_message_size(engine.ws_max_message_size)
        .ws_max_frame_size(engine.ws_max_frame_size);
    match (
        engine.allowed_transport(Polling),
        engine.allowed_transport(Websocket),
    ) {
        (true, false) => builder.transports([Polling]),
        (false, true) => builder.transports([Websocket]),
        _ => builder,
    }
}

/// A gateway as its namespace serves it.
struct Namespace {
    gateway: GatewayRuntime,
    app: App,
    /// For a path with parameters: the clients of each of its namespaces (`/rooms/42`),
    /// counted from their connect middleware to the end of their session. socketioxide
    /// keeps the namespace of every path a client asked for; the last one out deletes it.
    live: Option<Mutex<HashMap<Box<str>, usize>>>,
}

impl Namespace {
    /// One more client of namespace `path`, from its connect middleware on.
    fn enter(&self, path: &str) {
        if let Some(live) = &self.live {
            let mut live = live.lock().unwrap_or_else(PoisonError::into_inner);
            *live.entry(path.into()).or_default() += 1;
        }
    }

    /// A client of namespace `path` is gone (or was refused): the namespace is deleted
    /// when it was the last. Under the lock, so that no client enters it meanwhile; one
    /// that socketioxide routed to it just before is disconnected by [`connected`].
    fn release(&self, io: &SocketIo, path: &str) {
        let Some(live) = &self.live else {
            return;
        };
        let mut live = live.lock().unwrap_or_else(PoisonError::into_inner);
        let Some(count) = live.get_mut(path) else {
            return;
        };
        *count = count.saturating_sub(1);
        if *count == 0 {
            live.remove(path);
            io.delete_ns(path);
        }
    }
}

/// What the connect middleware hands to the connect handler, through the socket's
/// extensions (which want `Clone`).
#[derive(Clone)]
struct Admitted(Arc<Mutex<Option<Admission>>>);

/// The connection's place under the app's limits, its address, its identity and its path
/// parameters.
struct Admission {
    admitted: handshake::Admitted,
    identity: Option<IdentitySlot>,
    path_params: PathParams,
    auth: Option<Value>,
}

/// The `auth` payload of a Socket.IO client's namespace CONNECT (`io(url, { auth })`), in
/// its [`Handshake`]'s extensions; absent when the client sent none.
///
/// # Examples
///
/// ```
/// use ws_gateway_axum::prelude::*;
/// use ws_gateway_axum::SocketIoAuth;
///
/// #[websocket_gateway(path = "/doc-sio-auth")]
/// struct Greeter;
///
/// #[websocket_gateway]
/// impl Greeter {
///     /// Tells each client what it sent as `auth` (`{}` for nothing).
///     #[handle_connection]
///     fn connected(&self, client: Client) {
///         let auth = client.handshake().extensions.get::<SocketIoAuth>();
///         let empty = serde_json::json!({});
///         client.emit("auth", auth.map_or(&empty, |SocketIoAuth(auth)| auth)).ok();
///     }
/// }
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct SocketIoAuth(pub Value);

/// The connect middleware: every refusal happens here, so that the client receives
/// `connect_error` and never joins the namespace.
async fn admit(mounted: &Namespace, socket: &SocketRef, auth: Option<Value>) -> Result<(), String> {
    mounted.enter(socket.ns());
    let path_params = match mounted.live {
        Some(_) => PathParams::matching(mounted.gateway.path(), socket.ns())
            .map_err(|err| err.to_string())?,
        None => PathParams::default(),
    };
    let parts = socket.req_parts();
    let admitted = handshake::admit(&mounted.app, parts).map_err(|refusal| refusal.to_string())?;
    let stripped;
    let headers = if admitted.drop_cookies {
        stripped = handshake::without_cookies(&parts.headers);
        &stripped
    } else {
        &parts.headers
    };
    let request = HandshakeRequest::new(&parts.uri, headers).with_auth_payload(auth.as_ref());
    let auth = auth.clone();
    let identity = mounted
        .gateway
        .authenticate(&request)
        .await
        .map_err(|err| err.message().to_owned())?;
    socket
        .extensions
        .insert(Admitted(Arc::new(Mutex::new(Some(Admission {
            admitted,
            identity,
            path_params,
            auth,
        })))));
    Ok(())
}

fn remote_addr(socket: &SocketRef) -> Option<SocketAddr> {
    socket
        .req_parts()
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(addr)| *addr)
}

/// What the socket's message handler hands to the session.
enum Inbound {
    Packet(Packet),
    /// The socket disconnected.
    Gone,
}

/// One received message.
enum Packet {
    /// A message, with what is needed to answer it.
    Message {
        event: String,
        /// Every argument, a JSON array, byte strings as placeholders.
        args: Box<RawValue>,
        /// The first argument, the handler's data.
        data: Option<Box<RawValue>>,
        /// The binary attachments the placeholders stand for.
        attachments: Vec<Bytes>,
        ack: Option<Ack>,
    },
    /// A message that could not be read: answered with this exception, as the JSON
    /// transport answers a malformed frame.
    Unreadable(WsException),
}

impl Packet {
    /// The bytes of the message's event and data.
    fn size(&self) -> usize {
        match self {
            Packet::Message {
                event,
                args,
                attachments,
                ..
            } => event.len() + args.get().len() + attachments.iter().map(Bytes::len).sum::<usize>(),
            Packet::Unreadable(_) => 0,
        }
    }
}

/// The client's acknowledgement callback: answered once, by the first reply under the
/// request's own event (NestJS's semantics).
#[derive(Clone)]
struct Ack(Arc<AckSlot>);

struct AckSlot {
    event: String,
    sender: Mutex<Option<AckSender>>,
}

impl Ack {
    /// The callback, if `event` is the request's and it was not answered yet.
    fn take_for(&self, event: &str) -> Option<AckSender> {
        if self.0.event != event {
            return None;
        }
        self.0
            .sender
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take()
    }
}

/// The socket's message handler. socketioxide calls it in the socket's read loop as each
/// message arrives, so that the session receives them in order; it spawns no task of its
/// own (socketioxide's closure handlers spawn one per message).
struct OnMessage {
    inbound: flume::Sender<Inbound>,
    /// Bytes of the messages in `inbound`, at most [`INBOUND_BYTES`].
    queued: Arc<AtomicUsize>,
}

/// The handler kind of [`OnMessage`], for [`MessageHandler`]'s type parameter.
struct Direct;

impl MessageHandler<LocalAdapter, Direct> for OnMessage {
    fn call(
        &self,
        socket: Arc<Socket<LocalAdapter>>,
        mut value: socketioxide::handler::Value,
        ack_id: Option<i64>,
    ) {
        let packet = match read_message(&socket, &mut value, &ack_id) {
            Some(Message {
                event,
                args,
                data,
                attachments,
            }) => {
                let ack = ack_id
                    .is_some()
                    .then(|| AckSender::from_message_parts(&socket, &mut value, &ack_id))
                    .and_then(Result::ok)
                    .map(|sender| {
                        Ack(Arc::new(AckSlot {
                            event: event.clone(),
                            sender: Mutex::new(Some(sender)),
                        }))
                    });
                Packet::Message {
                    event,
                    args,
                    data,
                    attachments,
                    ack,
                }
            }
            None => {
                Packet::Unreadable(WsException::new(UNREADABLE).with_kind(ErrorKind::BadRequest))
            }
        };
        let size = packet.size();
        let queued = self.queued.fetch_add(size, Ordering::AcqRel) + size;
        if queued > INBOUND_BYTES || self.inbound.try_send(Inbound::Packet(packet)).is_err() {
            self.queued.fetch_sub(size, Ordering::AcqRel);
            tracing::debug!(target: "gateway::rejection", "too many Socket.IO messages waiting (a count of {INBOUND_CAPACITY} or {INBOUND_BYTES} bytes), disconnecting");
            let _ = socket.disconnect();
        }
    }
}

/// What a client is told about a message whose event or arguments could not be read.
const UNREADABLE: &str =
    r#"Invalid message: expected an event name and arguments, socket.emit("event", data)"#;

/// A message as read: its event, every argument verbatim (key order and numbers kept, no
/// DOM built), the first one, and the binary attachments.
struct Message {
    event: String,
    args: Box<RawValue>,
    data: Option<Box<RawValue>>,
    attachments: Vec<Bytes>,
}

fn read_message(
    socket: &Arc<Socket<LocalAdapter>>,
    value: &mut socketioxide::handler::Value,
    ack_id: &Option<i64>,
) -> Option<Message> {
    use socketioxide::handler::Value as Packet;
    if let Packet::Str(text, binaries) = value
        && let Some((event, args, data)) = read_args(text.as_str())
    {
        // Placeholders (`{"_placeholder":true,"num":N}`) stay in the text: the attachments
        // go beside it, as the gateway's requests carry them.
        let attachments = binaries.take().map(Vec::from).unwrap_or_default();
        return Some(Message {
            event,
            args,
            data,
            attachments,
        });
    }
    // An argument serde_json refuses to borrow (nested beyond its recursion limit): read
    // as before, into a `Value`, as the one argument.
    let Event(event) = Event::from_message_parts(socket, value, ack_id).ok()?;
    let TryData(data) = match TryData::<Value>::from_message_parts(socket, value, ack_id) {
        Ok(data) => data,
        Err(never) => match never {},
    };
    let data = data.ok()?;
    let args = serde_json::value::to_raw_value(&[&data]).ok()?;
    let data = serde_json::value::to_raw_value(&data).ok()?;
    Some(Message {
        event,
        args,
        data: Some(data),
        attachments: Vec::new(),
    })
}

/// Reads `["event", arg, ...]` in one pass: the event, the arguments as their own JSON
/// array `[arg, ...]`, and the first one, each argument copied verbatim. The arguments are
/// checked once, by this pass: the copies are written from what it read, not parsed again.
fn read_args(text: &str) -> Option<(String, Box<RawValue>, Option<Box<RawValue>>)> {
    /// The event, the first argument, the others.
    type Read<'de> = (Cow<'de, str>, Option<&'de RawValue>, Vec<&'de RawValue>);

    struct Args;

    impl<'de> Visitor<'de> for Args {
        type Value = Read<'de>;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str(r#"["event", ...args]"#)
        }

        fn visit_seq<S: SeqAccess<'de>>(self, mut seq: S) -> Result<Self::Value, S::Error> {
            let event: Cow<'de, str> = seq
                .next_element::<EventName<'de>>()?
                .ok_or_else(|| serde::de::Error::invalid_length(0, &self))?
                .0;
            let first = seq.next_element::<&'de RawValue>()?;
            // One argument, the usual message, without a `Vec`.
            let mut rest = Vec::new();
            if first.is_some() {
                while let Some(arg) = seq.next_element::<&'de RawValue>()? {
                    rest.push(arg);
                }
            }
            Ok((event, first, rest))
        }
    }

    impl<'de> DeserializeSeed<'de> for Args {
        type Value = Read<'de>;

        fn deserialize<D: serde::Deserializer<'de>>(self, de: D) -> Result<Self::Value, D::Error> {
            de.deserialize_seq(self)
        }
    }

    let mut de = serde_json::Deserializer::from_str(text);
    let (event, first, rest) = Args.deserialize(&mut de).ok()?;
    de.end().ok()?;
    // `to_raw_value` writes the arguments read, verbatim, and takes the text as it is.
    let args = match first {
        None => serde_json::value::to_raw_value::<[&RawValue]>(&[]),
        Some(first) if rest.is_empty() => serde_json::value::to_raw_value(&[first]),
        Some(first) => {
            let mut all = Vec::with_capacity(rest.len() + 1);
            all.push(first);
            all.extend(rest);
            serde_json::value::to_raw_value(&all)
        }
    }
    .ok()?;
    Some((event.into_owned(), args, first.map(RawValue::to_owned)))
}

/// An event name, borrowed when it has no escapes.
struct EventName<'a>(Cow<'a, str>);

impl<'de> serde::Deserialize<'de> for EventName<'de> {
    fn deserialize<D: serde::Deserializer<'de>>(de: D) -> Result<Self, D::Error> {
        struct Name;

        impl<'de> Visitor<'de> for Name {
            type Value = Cow<'de, str>;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an event name")
            }

            fn visit_borrowed_str<E: serde::de::Error>(
                self,
                name: &'de str,
            ) -> Result<Self::Value, E> {
                Ok(Cow::Borrowed(name))
            }

            fn visit_str<E: serde::de::Error>(self, name: &str) -> Result<Self::Value, E> {
                Ok(Cow::Owned(name.to_owned()))
            }
        }

        de.deserialize_str(Name).map(EventName)
    }
}

/// What a frame carries after its event: one argument, `data`, or several, `args`.
#[derive(Debug, Clone, Copy)]
enum Payload<'a> {
    Data(&'a RawValue),
    Args(&'a RawValue),
}

/// A frame's event and payload, as the JSON text the frame holds (with placeholders for a
/// frame with binary attachments). The frames the gateway encodes,
/// `{"event":"name","data":...}` and `{"event":"name","args":[...]}`, are split without
/// parsing their event and with one pass over their data; any other envelope is parsed.
fn split_frame(text: &str) -> Option<(Cow<'_, str>, Payload<'_>)> {
    let fast = text.strip_prefix(r#"{"event":""#).and_then(|rest| {
        let end = rest.find(['"', '\\'])?;
        let (event, rest) = rest.split_at(end);
        let (args, rest) = match rest.strip_prefix(r#"","data":"#) {
            Some(rest) => (false, rest),
            None => (true, rest.strip_prefix(r#"","args":"#)?),
        };
        // Fails on a frame with more fields after `data` (an `id`), parsed below.
        let data = serde_json::from_str::<&RawValue>(rest.strip_suffix('}')?).ok()?;
        let payload = if args {
            Payload::Args(data)
        } else {
            Payload::Data(data)
        };
        Some((Cow::Borrowed(event), payload))
    });
    if fast.is_some() {
        return fast;
    }
    #[derive(serde::Deserialize)]
    struct Envelope<'a> {
        #[serde(borrow)]
        event: Cow<'a, str>,
        #[serde(borrow, default)]
        data: Option<&'a RawValue>,
        #[serde(borrow, default)]
        args: Option<&'a RawValue>,
    }
    let envelope: Envelope<'_> = serde_json::from_str(text).ok()?;
    let payload = match (envelope.args, envelope.data) {
        (Some(args), _) => Payload::Args(args),
        (None, Some(data)) => Payload::Data(data),
        (None, None) => Payload::Data(RawValue::NULL),
    };
    Some((envelope.event, payload))
}

/// A [shared](Frame::shared) frame split for Socket.IO once, for all its receivers: its
/// event, its payload, its attachments, so that a receiver's emit does not parse the frame.
struct Prepared {
    event: Box<str>,
    payload: Box<RawValue>,
    attachments: Vec<Bytes>,
    /// The payload is the event's arguments, spread.
    spread: bool,
}

/// The [`Prepared`] form of an acknowledgement's frame, without its `ack` field: its own
/// type, so that it is never taken for the frame's plain one.
struct PreparedAsk(Option<Prepared>);

impl Prepared {
    fn of(frame: &Frame) -> Option<Self> {
        let (text, attachments) = match frame.binary() {
            Some(binary) => (binary.as_str(), binary.attachments()),
            None => (frame.as_str(), &[][..]),
        };
        let (event, payload) = split_frame(text)?;
        let (payload, spread) = match payload {
            Payload::Data(data) => (data, false),
            Payload::Args(args) => (args, true),
        };
        Some(Self {
            event: event.into(),
            payload: payload.to_owned(),
            attachments: attachments.to_vec(),
            spread,
        })
    }

    fn emission(&self) -> (Cow<'_, str>, Attached<'_>) {
        let payload = if self.spread {
            Attached::spread(&self.payload, &self.attachments)
        } else {
            Attached::new(&self.payload, &self.attachments)
        };
        (Cow::Borrowed(&self.event), payload)
    }
}

/// A frame as Socket.IO sends it: its event, and its payload with the binary attachments
/// the placeholders in it stand for. A shared frame is split once, by its first receiver.
fn prepared_emission(frame: &Frame) -> Option<(Cow<'_, str>, Attached<'_>)> {
    match frame.prepared(Prepared::of) {
        Some(prepared) => prepared.as_ref().map(Prepared::emission),
        None => emission(frame),
    }
}

/// A frame as Socket.IO sends it: its event, and its payload with the binary attachments
/// the placeholders in it stand for.
fn emission(frame: &Frame) -> Option<(Cow<'_, str>, Attached<'_>)> {
    let (text, attachments) = match frame.binary() {
        Some(binary) => (binary.as_str(), binary.attachments()),
        None => (frame.as_str(), &[][..]),
    };
    let (event, payload) = split_frame(text)?;
    let payload = match payload {
        Payload::Data(data) => Attached::new(data, attachments),
        Payload::Args(args) => Attached::spread(args, attachments),
    };
    Some((event, payload))
}

/// The connect handler: binds the socket's messages and disconnect to a session.
fn connected(namespace: &Arc<Namespace>, socket: SocketRef, io: SocketIo) {
    let admitted = socket
        .extensions
        .get::<Admitted>()
        .and_then(|Admitted(slot)| slot.lock().unwrap_or_else(PoisonError::into_inner).take());
    socket.extensions.remove::<Admitted>();
    let Some(Admission {
        admitted,
        identity,
        path_params,
        auth,
    }) = admitted
    else {
        // The middleware always stores it; without it the socket was not admitted.
        let _ = socket.disconnect();
        return;
    };
    // The namespace was deleted (its last client left) between socketioxide routing this
    // socket to it and the middleware counting it: its messages would reach nobody.
    if namespace.live.is_some()
        && io
            .of(socket.ns())
            .and_then(|ns| ns.get_socket(socket.id))
            .is_none()
    {
        let _ = socket.clone().disconnect();
        namespace.release(&io, socket.ns());
        return;
    }
    let (inbound_tx, inbound) = flume::bounded(INBOUND_CAPACITY);
    let queued = Arc::new(AtomicUsize::new(0));
    socket.on_fallback(OnMessage {
        inbound: inbound_tx.clone(),
        queued: Arc::clone(&queued),
    });
    socket.on_disconnect(move || {
        // A full channel means the session is behind; the socket being gone shows on emit.
        let _ = inbound_tx.try_send(Inbound::Gone);
        std::future::ready(())
    });
    let mut handshake = Handshake::new(
        socket.req_parts().uri.clone(),
        handshake::detach_headers(&socket.req_parts().headers, admitted.drop_cookies),
    );
    handshake.remote_addr = remote_addr(&socket);
    handshake.client_ip = admitted.client_ip;
    handshake.path_params = path_params;
    if let Some(auth) = auth {
        handshake.extensions.insert(SocketIoAuth(auth));
    }
    if let Some(store) = identity {
        store(&mut handshake.extensions);
    }
    let session =
        Session::new(&namespace.gateway, &namespace.app, handshake).admitted(admitted.guard);
    let dropped = namespace.gateway.metrics().messages_dropped.clone();
    let namespace = Arc::clone(namespace);
    tokio::spawn(async move {
        let path = namespace.live.is_some().then(|| socket.ns().to_owned());
        session
            .serve(SocketIoConnection {
                socket,
                inbound: inbound.into_stream(),
                queued,
                dropped,
            })
            .await;
        if let Some(path) = path {
            namespace.release(&io, &path);
        }
    });
}

/// One Socket.IO client as the session driver sees it: messages from the socket's
/// handler, emits and acknowledgements to it.
struct SocketIoConnection {
    socket: SocketRef,
    inbound: flume::r#async::RecvStream<'static, Inbound>,
    /// Bytes of the messages in `inbound` (see [`OnMessage`]).
    queued: Arc<AtomicUsize>,
    /// `gateway_messages_dropped_total`, for volatile frames socketioxide has no room for.
    dropped: Counter,
}

/// The arguments of a Socket.IO acknowledgement, each kept as JSON text (no DOM is built:
/// the answer passes verbatim, as on the JSON protocol): socketioxide hands a tuple type all
/// of them (any other type only the first).
enum AnswerArgs {
    None,
    One(Box<RawValue>),
    Many(Vec<Box<RawValue>>),
}

impl AnswerArgs {
    /// The answer as the session sees it: the argument when there is one, `null` for none,
    /// the array of arguments for several (`callback(a, b)` answers `[a, b]`).
    fn into_json(self) -> Option<Box<RawValue>> {
        match self {
            Self::None => Some(RawValue::NULL.to_owned()),
            Self::One(arg) => Some(arg),
            Self::Many(args) => {
                let mut array = String::from("[");
                for (i, arg) in args.iter().enumerate() {
                    if i > 0 {
                        array.push(',');
                    }
                    array.push_str(arg.get());
                }
                array.push(']');
                RawValue::from_string(array).ok()
            }
        }
    }
}

impl<'de> serde::Deserialize<'de> for AnswerArgs {
    fn deserialize<D: serde::Deserializer<'de>>(de: D) -> Result<Self, D::Error> {
        struct Args;

        impl<'de> Visitor<'de> for Args {
            type Value = AnswerArgs;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("the arguments of an acknowledgement")
            }

            fn visit_seq<S: SeqAccess<'de>>(self, mut seq: S) -> Result<Self::Value, S::Error> {
                // One argument, the usual answer, without a `Vec`.
                let Some(first) = seq.next_element::<Box<RawValue>>()? else {
                    return Ok(AnswerArgs::None);
                };
                let Some(second) = seq.next_element::<Box<RawValue>>()? else {
                    return Ok(AnswerArgs::One(first));
                };
                let mut args = vec![first, second];
                while let Some(arg) = seq.next_element()? {
                    args.push(arg);
                }
                Ok(AnswerArgs::Many(args))
            }
        }

        de.deserialize_tuple(usize::MAX, Args)
    }
}

impl Connection for SocketIoConnection {
    type Message = Packet;
    type Route = Option<Ack>;

    /// Engine.IO pings the client and times it out.
    const HEARTBEAT: bool = false;

    fn poll_recv(&mut self, cx: &mut Context<'_>) -> Poll<Received<Packet>> {
        self.inbound
            .poll_next_unpin(cx)
            .map(|inbound| match inbound {
                Some(Inbound::Packet(packet)) => {
                    self.queued.fetch_sub(packet.size(), Ordering::AcqRel);
                    Received::Message(packet)
                }
                Some(Inbound::Gone) | None => Received::Gone,
            })
    }

    fn size(&self, packet: &Packet) -> usize {
        packet.size()
    }

    fn decode<'m>(&self, packet: &'m Packet) -> Decoded<'m, Option<Ack>> {
        match packet {
            Packet::Message {
                event,
                args,
                data,
                attachments,
                ack,
            } => {
                let mut request = Request::new(event.as_str()).with_args(&**args);
                if !attachments.is_empty() {
                    request = request.with_attachments(&attachments[..]);
                }
                if let Some(data) = data {
                    request = request.with_data(&**data);
                }
                Decoded::Request(request, ack.clone())
            }
            Packet::Unreadable(err) => Decoded::Invalid(err.clone()),
        }
    }

    /// Emits the frame with socketioxide's acknowledgement, and hands socketioxide's
    /// future of the answer to the emit that asked ([`Ask::answer_with`]): the client's
    /// callback answers straight to it, without a turn of this session. The event and
    /// payload of a room's question are split once, for all its receivers.
    async fn feed_ask(&mut self, frame: Frame, ask: Ask<'_>) -> Result<(), Gone> {
        let plain;
        let sent = match frame.prepared(|frame| PreparedAsk(Prepared::of(&frame.without_ack()))) {
            Some(PreparedAsk(prepared)) => prepared.as_ref().map(Prepared::emission),
            None => {
                plain = frame.without_ack();
                emission(&plain)
            }
        };
        let Some((event, payload)) = sent else {
            return Ok(());
        };
        let timeout = ask.deadline().saturating_duration_since(Instant::now());
        let answer = self
            .socket
            .timeout(timeout)
            .emit_with_ack::<_, AnswerArgs>(&*event, &payload)
            .map_err(|err| {
                tracing::debug!(target: "gateway", "Socket.IO send failed: {err}");
                Gone
            })?;
        ask.answer_with(async move { answer.await.ok().and_then(AnswerArgs::into_json) });
        Ok(())
    }

    /// Emits one frame: as the acknowledgement of the request it answers when it is
    /// under the request's event and the client asked for one, else as
    /// `socket.emit(event, data)`.
    async fn feed(&mut self, frame: Frame, route: Option<&Option<Ack>>) -> Result<(), Gone> {
        let Some((event, payload)) = prepared_emission(&frame) else {
            return Ok(());
        };
        let ack = route
            .and_then(Option::as_ref)
            .and_then(|ack| ack.take_for(&event));
        // `&RawValue` goes through socketioxide's encoder verbatim; placeholders become
        // binary attachments, an `args` array the event's arguments.
        let sent = match ack {
            Some(ack) => ack.send(&payload),
            None => self.socket.emit(&*event, &payload),
        };
        match sent {
            Ok(()) => Ok(()),
            // socketioxide's own buffer is full: a volatile frame is dropped, as it is when
            // the client's queue is.
            Err(SendError::Socket(SocketError::InternalChannelFull)) if frame.is_volatile() => {
                self.dropped.increment(1);
                Ok(())
            }
            Err(err) => {
                tracing::debug!(target: "gateway", "Socket.IO send failed: {err}");
                Err(Gone)
            }
        }
    }

    async fn flush(&mut self) -> Result<(), Gone> {
        Ok(())
    }

    /// Socket.IO has no close codes: a close disconnects the socket.
    async fn close(&mut self, how: Closing) {
        if let Closing::Server(_) = how {
            let _ = self.socket.clone().disconnect();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(text: &str) -> Option<(String, String, Option<String>)> {
        read_args(text).map(|(event, args, first)| {
            (
                event,
                args.get().to_owned(),
                first.map(|first| first.get().to_owned()),
            )
        })
    }

    #[test]
    fn every_argument_is_read_verbatim() {
        assert_eq!(
            args(r#"["echo",{"b":1,"a":2.50}]"#),
            Some((
                "echo".into(),
                r#"[{"b":1,"a":2.50}]"#.into(),
                Some(r#"{"b":1,"a":2.50}"#.into())
            ))
        );
        assert_eq!(
            args(r#"["e",[1, 2],"x",{"y":[]}] "#),
            Some((
                "e".into(),
                r#"[[1, 2],"x",{"y":[]}]"#.into(),
                Some("[1, 2]".into())
            ))
        );
        assert_eq!(args(r#"["e"]"#), Some(("e".into(), "[]".into(), None)));
        assert_eq!(
            args(r#"["e", null]"#),
            Some(("e".into(), "[null]".into(), Some("null".into())))
        );
        assert_eq!(
            args(r#"["a\"b",1]"#),
            Some(("a\"b".into(), "[1]".into(), Some("1".into())))
        );
        assert_eq!(args("[]"), None);
        assert_eq!(args("[1,2]"), None);
        assert_eq!(args(r#"["e",1"#), None);
    }

    fn split(text: &str) -> Option<(String, String, bool)> {
        split_frame(text).map(|(event, payload)| match payload {
            Payload::Data(data) => (event.into_owned(), data.get().to_owned(), false),
            Payload::Args(args) => (event.into_owned(), args.get().to_owned(), true),
        })
    }

    #[test]
    fn frames_split_into_event_and_verbatim_data() {
        let data = RawValue::from_string(r#"{"b":1,"a":2.50}"#.into()).unwrap();
        let frame = Frame::event("echo", &data).unwrap();
        assert_eq!(
            split(frame.as_str()),
            Some(("echo".into(), r#"{"b":1,"a":2.50}"#.into(), false))
        );
        let escaped = Frame::event("a\"b", &[1]).unwrap();
        assert_eq!(
            split(escaped.as_str()),
            Some(("a\"b".into(), "[1]".into(), false))
        );
        let several = Frame::args("e", &(1, "x")).unwrap();
        assert_eq!(
            split(several.as_str()),
            Some(("e".into(), r#"[1,"x"]"#.into(), true))
        );
        // Envelopes in another shape are parsed.
        for (text, event, data, args) in [
            (r#"{"event":"e","data":1,"id":7}"#, "e", "1", false),
            (r#"{"data":[1],"event":"e"}"#, "e", "[1]", false),
            (r#"{ "event": "e" }"#, "e", "null", false),
            (
                r#"{"event":"e","data":{"x":"}"}}"#,
                "e",
                r#"{"x":"}"}"#,
                false,
            ),
            (r#"{"event":"e","args":[1],"id":7}"#, "e", "[1]", true),
        ] {
            assert_eq!(
                split(text),
                Some((event.into(), data.into(), args)),
                "{text}"
            );
        }
        assert_eq!(split("[1]"), None);
    }

    #[test]
    fn binary_frames_are_sent_with_placeholders_and_attachments() {
        let frame = Frame::args("file", &("a.bin", Bytes::from_static(&[1, 2]))).unwrap();
        let (event, payload) = emission(&frame).unwrap();
        assert_eq!(event, "file");
        // Through serde_json (no binary support) the bytes are numbers again.
        assert_eq!(
            serde_json::to_string(&payload).unwrap(),
            r#"["a.bin",[1,2]]"#
        );
        // socket.io-client receives them as binary attachments: tests/socketio_data.rs.
    }

    #[test]
    fn a_shared_frame_is_split_once_for_all_its_receivers() {
        let frame = Frame::args("pair", &(1, Bytes::from_static(&[7])))
            .unwrap()
            .shared();
        let receiver = frame.clone();
        let (event, payload) = prepared_emission(&frame).unwrap();
        let (again, same) = prepared_emission(&receiver).unwrap();
        assert_eq!(event, "pair");
        // The second receiver reads the first one's split, not a split of its own.
        assert!(std::ptr::eq(event.as_ptr(), again.as_ptr()));
        assert_eq!(serde_json::to_string(&payload).unwrap(), "[1,[7]]");
        assert_eq!(serde_json::to_string(&same).unwrap(), "[1,[7]]");
        // A frame for one receiver is split where it is, as before.
        let single = Frame::event("tick", &2).unwrap();
        let (event, payload) = prepared_emission(&single).unwrap();
        assert_eq!(
            (&*event, serde_json::to_string(&payload).unwrap()),
            ("tick", "2".into())
        );
    }

    #[test]
    fn acknowledgement_answers_are_kept_as_written() {
        let answer = |text: &str| {
            serde_json::from_str::<AnswerArgs>(text)
                .unwrap()
                .into_json()
                .map(|data| data.get().to_owned())
        };
        assert_eq!(
            answer(r#"[{"z":1,"a":2.50}]"#).unwrap(),
            r#"{"z":1,"a":2.50}"#
        );
        assert_eq!(answer("[]").unwrap(), "null");
        assert_eq!(
            answer(r#"[1, "two",{"b":[3],"a":0}]"#).unwrap(),
            r#"[1,"two",{"b":[3],"a":0}]"#
        );
    }
}
