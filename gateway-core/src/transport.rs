//! For transport authors: what a wire format and a socket must supply, and the session
//! driver that runs every client on them.
//!
//! A transport is two things:
//!
//! - a [`Transport`]: how it serves the gateways of an [`App`] (an axum router, a tower
//!   layer...), NestJS's `WebSocketAdapter` interface;
//! - a [`Connection`] per client: how its socket reads, writes, flushes and closes, and how
//!   its wire format decodes a message into a [`Request`] and encodes an outgoing
//!   [`Frame`].
//!
//! Everything else is the same for every transport and lives in one place, [`serve`]: the
//! rate limit and nesting limit, dispatch through the pipeline, handlers in flight, reply
//! streams, the outbound queue and its overflow policy, heartbeats and the idle timeout,
//! graceful shutdown, the lifecycle hooks. ws-gateway-axum's JSON and Socket.IO transports and
//! the MessagePack example all run on it.
//!
//! Not to be confused with [`adapter`](crate::adapter), which carries broadcasts between
//! instances (NestJS's `RedisIoAdapter` is both at once; here they are two traits, so any
//! transport works with any broadcast adapter).

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use futures_util::stream::BoxStream;

use crate::app::App;
use crate::exception::CloseRequest;
use crate::filter::Caught;
use crate::frame::Frame;

pub use crate::ack::{AckAnswer, Ask};
pub use crate::args::Attached;
pub use crate::auth::IdentitySlot;
pub use crate::client::{Handshake, Outbound, OutboundQueue, OverflowSignal, ReplyRoute};
pub use crate::connections::{ConnectionGuard, Connections, Refused};
pub use crate::frame::{FrameError, Incoming, exceeds_depth, parse, parse_incoming};
pub use crate::request::Request;
#[cfg(feature = "asyncapi")]
pub use crate::runtime::EventDoc;
pub use crate::runtime::GatewayRuntime;
pub use crate::session::{Session, serve};

/// How a transport serves gateways: the JSON protocol on plain WebSockets
/// (`ws_gateway_axum::JsonTransport`, the default), Socket.IO
/// (`ws_gateway_axum::SocketIoTransport`), or your own wire format.
///
/// NestJS's `WebSocketAdapter` interface maps onto it as follows:
///
/// | NestJS `WebSocketAdapter` | here |
/// |---|---|
/// | `create(port, options)` | [`create`](Self::create): the transport's server, no gateway yet |
/// | `bindClientConnect(server, callback)` | [`bind`](Self::bind): for each connection, [`GatewayRuntime::authenticate`] the handshake, then [`serve`] it |
/// | `bindMessageHandlers(client, handlers, transform)` | [`serve`] (through your [`Connection`]) |
/// | `bindClientDisconnect(client, callback)` | [`serve`], when the connection ends, however it ends |
/// | `close(server)` | [`close`](Self::close) |
///
/// The handlers, guards, pipes, interceptors, exception filters, hooks, rooms and the
/// broadcast adapter all live in the [`GatewayRuntime`]: a transport only moves messages
/// between its wire format and the session, so annotated gateways run unchanged on any
/// transport, and clients of several transports share the same rooms.
///
/// # Examples
///
/// A transport that serves nothing over the network: its "server" is the list of mounted
/// gateways, which a test can drive with [`GatewayRuntime::handle_json`].
///
/// ```
/// use ws_gateway_core::prelude::*;
/// use ws_gateway_core::transport::{GatewayRuntime, Handshake, Transport};
///
/// #[websocket_gateway(path = "/echo")]
/// struct Echo;
///
/// #[websocket_gateway]
/// impl Echo {
///     #[subscribe("echo")]
///     fn echo(&self, data: serde_json::Value) -> serde_json::Value {
///         data
///     }
/// }
///
/// struct Listed;
///
/// impl Transport for Listed {
///     type Server = Vec<GatewayRuntime>;
///
///     fn create(&self, _app: &App) -> Self::Server {
///         Vec::new()
///     }
///
///     fn bind(&self, mut server: Self::Server, gateway: &GatewayRuntime, _app: &App) -> Self::Server {
///         server.push(gateway.clone());
///         server
///     }
/// }
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let app = GatewayApp::new().gateway::<Echo>().build().unwrap();
/// let gateways = Listed.mount(&app);
/// let (client, _queue) = gateways[0].open(Handshake::default(), 16);
/// let answer = gateways[0].handle_json(&client, r#"{"event":"echo","data":[1]}"#).answer().await;
/// assert_eq!(answer.frame().unwrap().as_str(), r#"{"event":"echo","data":[1]}"#);
/// assert_eq!(Listed.close(&app, std::time::Duration::from_secs(1)).await, 0);
/// # }
/// ```
pub trait Transport {
    /// What the transport serves gateways with: an axum `Router`, a tower layer...
    type Server;

    /// Creates the transport's server, with no gateway mounted yet (NestJS's `create`).
    fn create(&self, app: &App) -> Self::Server;

    /// Mounts one gateway on the server: from now on its connections are admitted,
    /// authenticated and [`serve`]d (NestJS's `bindClientConnect`, `bindMessageHandlers`
    /// and `bindClientDisconnect`).
    fn bind(&self, server: Self::Server, gateway: &GatewayRuntime, app: &App) -> Self::Server;

    /// Creates the server and binds every gateway of the app.
    fn mount(&self, app: &App) -> Self::Server {
        let server = self.create(app);
        app.gateways()
            .iter()
            .fold(server, |server, gateway| self.bind(server, gateway, app))
    }

    /// Closes every connection gracefully (NestJS's `close`): by default
    /// [`App::shutdown`], which every session watches. Resolves with how many were still
    /// open after the deadline.
    fn close(&self, app: &App, grace: Duration) -> impl Future<Output = usize> + Send {
        let app = app.clone();
        async move { app.shutdown(grace).await }
    }
}

/// One client's connection as the session driver ([`serve`]) sees it: a socket that reads,
/// writes, flushes and closes, and a wire format that decodes and encodes.
///
/// Writes are buffered: [`feed`](Self::feed) hands over one frame, [`flush`](Self::flush)
/// sends what was fed. A connection that writes synchronously (Socket.IO's emits) sends in
/// `feed` and flushes nothing.
///
/// # Examples
///
/// A connection over in-memory channels, lines of the JSON protocol in and out:
///
/// ```
/// use std::task::{Context, Poll};
///
/// use ws_gateway_core::prelude::*;
/// use ws_gateway_core::transport::{self, Closing, Connection, Decoded, Gone, Received};
/// use ws_gateway_core::Frame;
/// use tokio::sync::mpsc;
///
/// struct Lines {
///     input: mpsc::UnboundedReceiver<String>,
///     output: mpsc::UnboundedSender<String>,
/// }
///
/// impl Connection for Lines {
///     type Message = String;
///     type Route = ();
///
///     fn poll_recv(&mut self, cx: &mut Context<'_>) -> Poll<Received<String>> {
///         self.input.poll_recv(cx).map(|line| line.map_or(Received::Gone, Received::Message))
///     }
///
///     fn size(&self, line: &String) -> usize {
///         line.len()
///     }
///
///     fn decode<'m>(&self, line: &'m String) -> Decoded<'m, ()> {
///         match transport::parse(line) {
///             Ok(request) => Decoded::Request(request, ()),
///             Err(err) => Decoded::Invalid(err.into()),
///         }
///     }
///
///     async fn feed(&mut self, frame: Frame, _: Option<&()>) -> Result<(), Gone> {
///         self.output.send(frame.as_str().to_owned()).map_err(|_| Gone)
///     }
///
///     async fn flush(&mut self) -> Result<(), Gone> {
///         Ok(())
///     }
///
///     async fn close(&mut self, _: Closing) {}
/// }
///
/// #[websocket_gateway(path = "/lines")]
/// struct Echo;
///
/// #[websocket_gateway]
/// impl Echo {
///     #[subscribe("echo")]
///     fn echo(&self, data: serde_json::Value) -> serde_json::Value {
///         data
///     }
/// }
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let app = GatewayApp::new().gateway::<Echo>().build().unwrap();
/// let (to_server, input) = mpsc::unbounded_channel();
/// let (output, mut from_server) = mpsc::unbounded_channel();
/// let session = transport::Session::new(&app.gateways()[0], &app, Default::default());
/// let served = tokio::spawn(session.serve(Lines { input, output }));
///
/// to_server.send(r#"{"event":"echo","data":1}"#.to_owned()).unwrap();
/// assert_eq!(from_server.recv().await.unwrap(), r#"{"event":"echo","data":1}"#);
/// to_server.send("{oops".to_owned()).unwrap();
/// assert!(from_server.recv().await.unwrap().contains("Malformed JSON"));
/// drop(to_server); // the client goes away: the session ends
/// served.await.unwrap();
/// # }
/// ```
pub trait Connection: Send + 'static {
    /// One message as the socket delivers it (a WebSocket message, a Socket.IO packet).
    type Message: Send + 'static;
    /// Where a reply to a request goes, when not simply to the client: Socket.IO's
    /// acknowledgement callback. `()` for transports whose replies are ordinary messages.
    type Route: Clone + Send + Sync + 'static;

    /// Whether the session pings the client and closes it when silent for the idle
    /// timeout. `false` for transports with heartbeats of their own (Engine.IO's).
    const HEARTBEAT: bool = true;

    /// Whether the session runs connection state recovery's plain protocol on this
    /// connection when the gateway has [`Recovery`](crate::Recovery) on: a `session` frame
    /// first, offsets on delivered frames, `?pid=&offset=` to recover. `false` by default:
    /// a transport says it carries these frames to a client that understands them.
    const RECOVERY: bool = false;

    /// Whether, under recovery, the session sends the `session` frame
    /// (`{"event":"session","data":{"pid":P,"recovered":R}}`) first. `false` for a
    /// transport that tells the client its session its own way in [`open`](Self::open)
    /// (Socket.IO's CONNECT packet, which carries the `pid`).
    const SESSION_FRAME: bool = true;

    /// Called once, before any frame is written: the client the connection serves and,
    /// under recovery, its session. Nothing by default; Socket.IO answers the namespace
    /// CONNECT here, with the client's id and the session's `pid`.
    fn open(&mut self, opening: Opening<'_>) -> impl Future<Output = Result<(), Gone>> + Send {
        let _ = opening;
        std::future::ready(Ok(()))
    }

    /// A way to write frames to the client without a turn of its session, for a transport
    /// whose socket has a writer task of its own (Socket.IO's Engine.IO socket): while
    /// nothing waits in the client's queue, an emit to the client goes straight to it, in
    /// the emitter's task. It writes the frame at once, drops a volatile one it has no room
    /// for, or hands it back to go through the queue and [`feed`](Self::feed) (its buffer
    /// is full, it is closed); questions too if it [asks](Bypass::ask). Asked once, after
    /// [`open`](Self::open) and recovery's missed frames. `None` by default.
    fn bypass(&self) -> Option<impl Bypass> {
        None::<NoBypass>
    }

    /// The next thing that happened on the socket.
    fn poll_recv(&mut self, cx: &mut Context<'_>) -> Poll<Received<Self::Message>>;

    /// The message's size in bytes as it arrived, which the rate limit charges
    /// ([`RateLimit::token_size`](crate::RateLimit::token_size)).
    fn size(&self, message: &Self::Message) -> usize;

    /// The request a message carries, borrowing from it where it can.
    fn decode<'m>(&self, message: &'m Self::Message) -> Decoded<'m, Self::Route>;

    /// Writes one frame, encoded in the wire format; a reply carries the route of the
    /// request it answers.
    fn feed(
        &mut self,
        frame: Frame,
        route: Option<&Self::Route>,
    ) -> impl Future<Output = Result<(), Gone>> + Send;

    /// Writes one frame that asks for an acknowledgement ([`Ask::ack`] is its number,
    /// [`Frame::ack`] too), whose answer is awaited until [`Ask::deadline`]. By default
    /// [`feed`](Self::feed): the frame carries its `"ack"`, and the client's
    /// `{"ack": N, ..}` answer decodes into [`Decoded::Answer`]. A transport with
    /// acknowledgements of its own (Socket.IO's callbacks) sends [`Frame::without_ack`] its
    /// own way and hands its socket's future of the answer to [`Ask::answer_with`]: the
    /// emit that asked polls it, without a turn of the session.
    fn feed_ask(
        &mut self,
        frame: Frame,
        ask: Ask<'_>,
    ) -> impl Future<Output = Result<(), Gone>> + Send {
        let _ = ask;
        self.feed(frame, None)
    }

    /// Sends what was fed.
    fn flush(&mut self) -> impl Future<Output = Result<(), Gone>> + Send;

    /// Sends a heartbeat ping ([`HEARTBEAT`](Self::HEARTBEAT) transports). Nothing by
    /// default.
    fn ping(&mut self) -> impl Future<Output = Result<(), Gone>> + Send {
        std::future::ready(Ok(()))
    }

    /// Ends the connection: the last thing the session does with it. Should not wait long
    /// on a client that stopped reading.
    fn close(&mut self, how: Closing) -> impl Future<Output = ()> + Send;
}

/// A way to write to the client without a turn of its session: see
/// [`Connection::bypass`].
pub trait Bypass: Send + Sync + 'static {
    /// Writes `frame` at once, or says why not.
    fn write(&self, frame: Frame) -> Result<(), Unwritten>;

    /// Writes a frame asking for an acknowledgement at once, as
    /// [`Connection::feed_ask`] would, or hands it back to go through the queue (the
    /// default).
    fn ask(&self, frame: Frame, ask: Ask<'_>) -> Result<(), Unwritten> {
        let _ = ask;
        Err(Unwritten::Back(frame))
    }
}

/// A frame a [`Bypass`] did not write.
#[derive(Debug)]
pub enum Unwritten {
    /// A [volatile](Frame::volatile) frame with no room for it: dropped, and counted in
    /// `gateway_messages_dropped_total` by the session.
    Dropped,
    /// Not now: the frame goes through the client's queue and [`Connection::feed`].
    Back(Frame),
}

/// [`Connection::bypass`]'s default: none.
enum NoBypass {}

impl Bypass for NoBypass {
    fn write(&self, _: Frame) -> Result<(), Unwritten> {
        match *self {}
    }
}

impl Unwritten {
    /// What the queue's bypass makes of it: dropped, or back as `f` of the frame.
    pub(crate) fn map<T>(self, f: impl FnOnce(Frame) -> T) -> crate::channel::Bypassed<T> {
        match self {
            Self::Dropped => crate::channel::Bypassed::Dropped,
            Self::Back(frame) => crate::channel::Bypassed::Back(f(frame)),
        }
    }
}

/// What [`Connection::open`] is told: the client, and its recovery session if it has one.
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub struct Opening<'a> {
    /// The client the connection serves (recovered: the client it served before).
    pub client: &'a crate::Client,
    /// The session's private id (`pid`) and whether it was recovered, under recovery.
    pub session: Option<(&'a str, bool)>,
}

/// What a [`Connection`]'s socket produced.
#[derive(Debug)]
pub enum Received<M> {
    /// A message, to [`decode`](Connection::decode).
    Message(M),
    /// A sign of life that is no message (a ping or a pong): resets the idle timeout.
    Alive,
    /// The client closed the connection (a close frame).
    Closed,
    /// The socket failed or ended without a close.
    Gone,
    /// The client broke the protocol or a limit (a message over the size limit, invalid
    /// UTF-8...): the session closes it with this code and reason.
    Refused(CloseRequest),
}

/// What a message decoded into.
#[derive(Debug)]
#[non_exhaustive]
pub enum Decoded<'m, R> {
    /// A request, and where its replies go.
    Request(Request<'m>, R),
    /// The answer to an acknowledgement the server asked for
    /// ([`Client::emit_with_ack`](crate::Client::emit_with_ack)): handed to the emit that
    /// asked, or ignored (and counted) when nothing waits for its number.
    Answer(AckAnswer<'m>),
    /// Not a request of this wire format: the client is answered with this exception
    /// (through the exception filters), and the connection stays open.
    Invalid(crate::WsException),
}

/// The socket is gone: writing failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("the connection is gone")]
pub struct Gone;

/// How a session ends its connection, passed to [`Connection::close`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Closing {
    /// The server closes, with this code and reason.
    Server(CloseRequest),
    /// The client closed: complete the closing handshake if the protocol has one.
    Client,
    /// The socket is gone: nothing to send.
    Gone,
}

/// What the client receives for one request, once the whole pipeline (guards,
/// interceptors, pipes, the handler, exception filters) has run.
#[non_exhaustive]
pub enum Answer {
    /// Nothing.
    Nothing,
    /// One frame.
    Frame(Frame),
    /// Frames as they come (a handler that returned a stream); each item is an answer of
    /// its own, failures already caught.
    Stream(BoxStream<'static, Answer>),
    /// Close the connection, after sending the frame if there is one.
    Close(Option<Frame>, CloseRequest),
}

impl Answer {
    /// The frame the answer sends, if it is one (or closes after one).
    ///
    /// # Examples
    ///
    /// ```
    /// use ws_gateway_core::{Frame, transport::Answer};
    ///
    /// let frame = Frame::event("e", &1).unwrap();
    /// assert_eq!(Answer::Frame(frame.clone()).frame(), Some(&frame));
    /// assert!(Answer::Nothing.frame().is_none());
    /// ```
    pub fn frame(&self) -> Option<&Frame> {
        match self {
            Answer::Frame(frame) | Answer::Close(Some(frame), _) => Some(frame),
            _ => None,
        }
    }

    /// The close the answer asks for, if any.
    ///
    /// # Examples
    ///
    /// ```
    /// use ws_gateway_core::{CloseRequest, transport::Answer};
    ///
    /// let close = CloseRequest { code: 4000, reason: "bye".into() };
    /// assert_eq!(Answer::Close(None, close.clone()).close_request(), Some(&close));
    /// ```
    pub fn close_request(&self) -> Option<&CloseRequest> {
        match self {
            Answer::Close(_, close) => Some(close),
            _ => None,
        }
    }
}

impl From<Caught> for Answer {
    fn from(caught: Caught) -> Self {
        match caught.into_parts() {
            (frame, Some(close)) => Answer::Close(frame, close),
            (Some(frame), None) => Answer::Frame(frame),
            (None, None) => Answer::Nothing,
        }
    }
}

impl std::fmt::Debug for Answer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Nothing => f.write_str("Nothing"),
            Self::Frame(frame) => f.debug_tuple("Frame").field(frame).finish(),
            Self::Stream(_) => f.write_str("Stream(..)"),
            Self::Close(frame, close) => f.debug_tuple("Close").field(frame).field(close).finish(),
        }
    }
}

/// A request in the pipeline: answered at once (sync handlers without guards or
/// interceptors, the common case), or later.
#[must_use = "a request is answered only when its answer is sent"]
pub enum Handled {
    /// The answer, computed on the spot.
    Ready(Answer),
    /// The answer, when the future resolves.
    Pending(Pin<Box<dyn Future<Output = Answer> + Send>>),
}

impl Handled {
    /// Waits for the answer.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// use ws_gateway_core::transport::{Answer, Handled};
    ///
    /// assert!(matches!(Handled::Ready(Answer::Nothing).answer().await, Answer::Nothing));
    /// # }
    /// ```
    pub async fn answer(self) -> Answer {
        match self {
            Handled::Ready(answer) => answer,
            Handled::Pending(future) => future.await,
        }
    }
}

impl std::fmt::Debug for Handled {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Ready(answer) => f.debug_tuple("Ready").field(answer).finish(),
            Self::Pending(_) => f.write_str("Pending(..)"),
        }
    }
}
