//! Broadcast adapters: how an emit reaches the clients connected to *other* instances of the
//! app, Socket.IO's adapters and NestJS's `RedisIoAdapter`.
//!
//! Every [`WsServer`](crate::WsServer) delivers to its own clients first, then hands the
//! operation to the app's [`Adapter`], once per operation, with the frame already encoded.
//! The adapter ships it to the other instances, and each of them applies it to *its* local
//! clients through the [`LocalServer`] it was given when the app was built. Client ids are
//! unique across instances, so every receiver gets one copy.
//!
//! Without an adapter (the embedded default) everything stays in one process. The Redis
//! adapter lives in the `ws-gateway-redis` crate; write your own by implementing [`Adapter`].

mod handover;
mod local;

use std::borrow::Cow;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use serde_json::value::RawValue;

use crate::ack::{AckEvent, AckSender};
use crate::client::ClientId;
use crate::frame::Frame;

pub use handover::{SessionAnswer, SessionClaim, SessionOffer, Stamp};
pub use local::LocalServer;

/// Which clients of a gateway an operation concerns: the members of any of `rooms`, plus
/// `clients` by id, minus `except_clients` and the members of `except_rooms`. With neither
/// rooms nor clients, every client of the gateway.
///
/// # Examples
///
/// ```
/// use ws_gateway_core::adapter::Selection;
///
/// let everyone = Selection::default();
/// assert!(everyone.is_everyone());
///
/// let mut lobby = Selection::default();
/// lobby.rooms.push("lobby".into());
/// assert!(!lobby.is_everyone());
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Selection {
    /// Rooms whose members are selected.
    pub rooms: Vec<Cow<'static, str>>,
    /// Clients selected by id, wherever they are connected.
    pub clients: Vec<ClientId>,
    /// Clients left out.
    pub except_clients: Vec<ClientId>,
    /// Rooms whose members are left out.
    pub except_rooms: Vec<Cow<'static, str>>,
}

impl Selection {
    /// Whether the selection is every client of the gateway (before exclusions).
    pub fn is_everyone(&self) -> bool {
        self.rooms.is_empty() && self.clients.is_empty()
    }
}

/// What to do to the selected clients.
///
/// # Examples
///
/// ```
/// use ws_gateway_core::{Frame, adapter::Operation};
///
/// let op = Operation::Emit(Frame::event("tick", &1).unwrap());
/// assert!(matches!(op, Operation::Emit(_)));
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Operation {
    /// Send this encoded frame.
    Emit(Frame),
    /// Add them to a room.
    Join(Cow<'static, str>),
    /// Remove them from a room.
    Leave(Cow<'static, str>),
    /// Close their connections with code 1000.
    Disconnect,
}

/// One operation of one gateway, as a [`WsServer`](crate::WsServer) hands it to its
/// adapter after applying it locally.
///
/// ```
/// use ws_gateway_core::Frame;
/// use ws_gateway_core::adapter::{Message, Operation, Selection};
///
/// fn describe(message: &Message<'_>) -> String {
///     let what = match message.op {
///         Operation::Emit(frame) => frame.as_str().to_owned(),
///         _ => "membership".to_owned(),
///     };
///     format!("{} -> {:?}: {what}", message.path, message.selection.rooms)
/// }
/// # let _ = describe;
/// # let _ = (Selection::default(), Operation::Emit(Frame::event("a", &1).unwrap()));
/// ```
#[derive(Clone, Copy, Debug)]
#[non_exhaustive]
pub struct Message<'a> {
    /// The gateway's path: the gateway the receiving instance applies it to.
    pub path: &'static str,
    /// The clients it concerns.
    pub selection: &'a Selection,
    /// What to do.
    pub op: &'a Operation,
    /// With connection state recovery on, an emit's place among the frames of the instance
    /// that sent it: the receiving instance records it with the frame
    /// ([`LocalServer::apply_stamped`]), so that a client moving between instances gets
    /// each frame once.
    pub stamp: Option<Stamp>,
}

/// A client as a membership query returns it.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct ClientInfo {
    /// The client's id.
    pub id: ClientId,
    /// Its rooms, sorted.
    pub rooms: Vec<String>,
}

impl ClientInfo {
    /// A client and its rooms.
    ///
    /// ```
    /// use ws_gateway_core::adapter::ClientInfo;
    ///
    /// let id = "00000000000000ff".parse().unwrap();
    /// let info = ClientInfo::new(id, vec!["a".into()]);
    /// assert_eq!(info.rooms, ["a"]);
    /// ```
    pub fn new(id: ClientId, rooms: Vec<String>) -> Self {
        Self { id, rooms }
    }
}

/// Why an adapter could not answer a query.
///
/// ```
/// use std::time::Duration;
/// use ws_gateway_core::adapter::AdapterError;
///
/// let err = AdapterError::Timeout { missing: 1, timeout: Duration::from_secs(2) };
/// assert_eq!(err.to_string(), "1 instance(s) did not answer within 2s");
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AdapterError {
    /// The adapter's backend is unreachable right now.
    #[error("the broadcast adapter is unavailable: {0}")]
    Unavailable(String),
    /// Some instances did not answer in time.
    #[error("{missing} instance(s) did not answer within {timeout:?}")]
    Timeout {
        /// How many answers were missing.
        missing: usize,
        /// How long the query waited.
        timeout: std::time::Duration,
    },
    /// Any other failure of the adapter.
    #[error(transparent)]
    Other(Box<dyn std::error::Error + Send + Sync>),
}

/// Carries a gateway's operations to the other instances of the app, and theirs to it.
///
/// Give one to [`GatewayApp::adapter`](crate::GatewayApp::adapter); the app
/// [attaches](Self::attach) every gateway to it when it is built.
///
/// # Examples
///
/// An adapter that counts what would leave the process:
///
/// ```
/// use std::sync::atomic::{AtomicUsize, Ordering};
/// use ws_gateway_core::adapter::{Adapter, LocalServer, Message};
///
/// #[derive(Default)]
/// struct Counting(AtomicUsize);
///
/// impl Adapter for Counting {
///     fn attach(&self, _server: LocalServer) {}
///
///     fn publish(&self, _message: &Message<'_>) {
///         self.0.fetch_add(1, Ordering::Relaxed);
///     }
/// }
///
/// let _app = ws_gateway_core::GatewayApp::new().adapter(Counting::default());
/// ```
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a broadcast adapter",
    label = "not an `Adapter`",
    note = "use `ws_gateway_redis::RedisAdapter`, or implement `ws_gateway_core::adapter::Adapter` (attach, publish) for this type"
)]
pub trait Adapter: Send + Sync + 'static {
    /// Called once for each gateway when the app is built: keep `server` to apply the
    /// operations other instances send for its path.
    fn attach(&self, server: LocalServer);

    /// Called after every operation that may concern clients on other instances, once it
    /// was applied locally. Runs on the emitting task: queue the message and return.
    fn publish(&self, message: &Message<'_>);

    /// The clients of gateway `path` matching `selection` on the *other* instances,
    /// Socket.IO's `fetchSockets`. The default answers that there are none.
    ///
    /// # Errors
    ///
    /// [`AdapterError`] when the other instances cannot be asked or do not answer in time.
    fn fetch_clients(
        &self,
        path: &'static str,
        selection: &Selection,
    ) -> impl Future<Output = Result<Vec<ClientInfo>, AdapterError>> + Send {
        let _ = (path, selection);
        async { Ok(Vec::new()) }
    }

    /// Sends an emit that asks for acknowledgements to the matching clients of the *other*
    /// instances, and reports to `replies` what happens there: how many instances were
    /// asked ([`AckReplies::asked`], once), how many clients each sent it to
    /// ([`AckReplies::sent`], once per instance), and every answer as it arrives. The
    /// operation is [`Operation::Emit`] of the frame without its `ack`: each instance asks
    /// its clients under a number of its own ([`LocalServer::emit_with_ack`]). Runs on the
    /// emitting task: queue the work and return. Answers after `timeout` are not awaited.
    ///
    /// The default asks no other instance: only this instance's clients are asked.
    fn emit_with_ack(&self, message: &Message<'_>, timeout: Duration, replies: AckReplies) {
        let _ = (message, timeout);
        replies.asked(0);
    }

    /// Room `room` of gateway `path` got its first member on this instance (`occupied`),
    /// or lost its last one: what an adapter that subscribes per room (as
    /// `ws-gateway-redis`'s per-room mode does) needs to know. The default ignores it.
    ///
    /// Called with the gateway's membership locked, in the order the changes happen, so
    /// that a room emptied and filled again is never reported out of order: record the
    /// change and return, without waiting and without calling back into the server.
    fn room_changed(&self, path: &'static str, room: &str, occupied: bool) {
        let _ = (path, room, occupied);
    }

    /// Resolves once every [`room_changed`](Self::room_changed) reported so far has taken
    /// effect: from then on, what other instances send to those rooms reaches this
    /// instance. [`Client::join_synced`](crate::Client::join_synced) awaits it. The default
    /// is ready at once (an adapter that sends everything everywhere has nothing to wait
    /// for).
    fn synced(&self) -> impl Future<Output = ()> + Send {
        async {}
    }

    /// Connection state recovery across instances, on the instance a client came back to:
    /// asks the other instances whether one holds the session `claim` names for gateway
    /// `path`; the one that does answers with
    /// [`LocalServer::offer_session`](LocalServer::offer_session), which reserves the
    /// session for this claim. Return its offer with [`holder`](SessionOffer::holder) set
    /// to whatever [`take_session`](Self::take_session) needs to reach that instance, or
    /// `Ok(None)` when every instance answered that it does not hold it. The default: no
    /// other instance holds sessions.
    ///
    /// # Errors
    ///
    /// [`AdapterError`] when the other instances cannot be asked or do not all answer in
    /// time: the connection is then closed with 1013 (try again later) rather than given a
    /// fresh session, so that a session held elsewhere is recovered once they can be.
    fn claim_session(
        &self,
        path: &'static str,
        claim: &SessionClaim,
    ) -> impl Future<Output = Result<Option<SessionOffer>, AdapterError>> + Send {
        let _ = (path, claim);
        async { Ok(None) }
    }

    /// Then, once this instance took the client in: asks the holder of `offer` for the
    /// frames the client missed, up to what this instance had received from each instance
    /// then (`seen`); the holder answers with
    /// [`LocalServer::hand_over_session`](LocalServer::hand_over_session). `None` when it
    /// does not answer (the client then starts a fresh session). The default: `None`.
    fn take_session(
        &self,
        path: &'static str,
        offer: &SessionOffer,
        claim: &SessionClaim,
        seen: &[Stamp],
    ) -> impl Future<Output = Option<Vec<Frame>>> + Send {
        let _ = (path, offer, claim, seen);
        async { None }
    }
}

/// Where an [`Adapter`] reports what the other instances did with an emit that asks for
/// acknowledgements ([`Adapter::emit_with_ack`]). Cheap to clone; once every clone is
/// dropped, the emit stops waiting for other instances.
///
/// # Examples
///
/// An adapter for a fleet of one more instance, where one client answers `"hi"`:
///
/// ```
/// use std::time::Duration;
/// use ws_gateway_core::adapter::{AckReplies, Adapter, LocalServer, Message};
///
/// struct Scripted;
///
/// impl Adapter for Scripted {
///     fn attach(&self, _server: LocalServer) {}
///     fn publish(&self, _message: &Message<'_>) {}
///
///     fn emit_with_ack(&self, _message: &Message<'_>, _timeout: Duration, replies: AckReplies) {
///         replies.asked(1);
///         replies.sent(1);
///         let client = "00000000000000aa".parse().unwrap();
///         replies.answer(client, serde_json::value::to_raw_value("hi").unwrap());
///     }
/// }
/// # let _ = ws_gateway_core::GatewayApp::new().adapter(Scripted);
/// ```
#[derive(Clone, Debug)]
pub struct AckReplies {
    tx: AckSender,
}

impl AckReplies {
    pub(crate) fn new(tx: AckSender) -> Self {
        Self { tx }
    }

    /// This many other instances were asked (the number of subscribers a publish reached):
    /// the emit waits for a [`sent`](Self::sent) report from each.
    pub fn asked(&self, instances: usize) {
        let _ = self.tx.send(AckEvent::Asked(instances));
    }

    /// One instance sent the event to this many of its clients.
    pub fn sent(&self, clients: usize) {
        let _ = self.tx.send(AckEvent::Sent(clients));
    }

    /// A client of another instance answered.
    pub fn answer(&self, client: ClientId, data: Box<RawValue>) {
        let _ = self.tx.send(AckEvent::Answer(client, data));
    }

    /// A client of another instance disconnected before it answered.
    pub fn gone(&self, client: ClientId) {
        let _ = self.tx.send(AckEvent::Gone(client));
    }

    /// Whether the emit stopped waiting (timed out, or dropped): forwarding more is useless.
    pub fn is_closed(&self) -> bool {
        self.tx.is_closed()
    }
}

type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// The object-safe face of [`Adapter`], for storage.
trait ErasedAdapter: Send + Sync {
    fn attach(&self, server: LocalServer);
    fn publish(&self, message: &Message<'_>);
    fn fetch_clients<'a>(
        &'a self,
        path: &'static str,
        selection: &'a Selection,
    ) -> BoxFuture<'a, Result<Vec<ClientInfo>, AdapterError>>;
    fn emit_with_ack(&self, message: &Message<'_>, timeout: Duration, replies: AckReplies);
    fn room_changed(&self, path: &'static str, room: &str, occupied: bool);
    fn synced(&self) -> BoxFuture<'_, ()>;
    fn claim_session<'a>(
        &'a self,
        path: &'static str,
        claim: &'a SessionClaim,
    ) -> BoxFuture<'a, Result<Option<SessionOffer>, AdapterError>>;
    fn take_session<'a>(
        &'a self,
        path: &'static str,
        offer: &'a SessionOffer,
        claim: &'a SessionClaim,
        seen: &'a [Stamp],
    ) -> BoxFuture<'a, Option<Vec<Frame>>>;
}

impl<A: Adapter> ErasedAdapter for A {
    fn attach(&self, server: LocalServer) {
        Adapter::attach(self, server);
    }

    fn publish(&self, message: &Message<'_>) {
        Adapter::publish(self, message);
    }

    fn fetch_clients<'a>(
        &'a self,
        path: &'static str,
        selection: &'a Selection,
    ) -> BoxFuture<'a, Result<Vec<ClientInfo>, AdapterError>> {
        Box::pin(Adapter::fetch_clients(self, path, selection))
    }

    fn emit_with_ack(&self, message: &Message<'_>, timeout: Duration, replies: AckReplies) {
        Adapter::emit_with_ack(self, message, timeout, replies);
    }

    fn room_changed(&self, path: &'static str, room: &str, occupied: bool) {
        Adapter::room_changed(self, path, room, occupied);
    }

    fn synced(&self) -> BoxFuture<'_, ()> {
        Box::pin(Adapter::synced(self))
    }

    fn claim_session<'a>(
        &'a self,
        path: &'static str,
        claim: &'a SessionClaim,
    ) -> BoxFuture<'a, Result<Option<SessionOffer>, AdapterError>> {
        Box::pin(Adapter::claim_session(self, path, claim))
    }

    fn take_session<'a>(
        &'a self,
        path: &'static str,
        offer: &'a SessionOffer,
        claim: &'a SessionClaim,
        seen: &'a [Stamp],
    ) -> BoxFuture<'a, Option<Vec<Frame>>> {
        Box::pin(Adapter::take_session(self, path, offer, claim, seen))
    }
}

/// A shared, type-erased adapter.
#[derive(Clone)]
pub(crate) struct AdapterRef(Arc<dyn ErasedAdapter>);

impl AdapterRef {
    pub(crate) fn new(adapter: impl Adapter) -> Self {
        Self(Arc::new(adapter))
    }

    pub(crate) fn attach(&self, server: LocalServer) {
        self.0.attach(server);
    }

    pub(crate) fn publish(&self, message: &Message<'_>) {
        self.0.publish(message);
    }

    pub(crate) async fn fetch_clients(
        &self,
        path: &'static str,
        selection: &Selection,
    ) -> Result<Vec<ClientInfo>, AdapterError> {
        self.0.fetch_clients(path, selection).await
    }

    pub(crate) fn emit_with_ack(
        &self,
        message: &Message<'_>,
        timeout: Duration,
        replies: AckReplies,
    ) {
        self.0.emit_with_ack(message, timeout, replies);
    }

    pub(crate) fn room_changed(&self, path: &'static str, room: &str, occupied: bool) {
        self.0.room_changed(path, room, occupied);
    }

    pub(crate) async fn synced(&self) {
        self.0.synced().await;
    }

    pub(crate) async fn claim_session(
        &self,
        path: &'static str,
        claim: &SessionClaim,
    ) -> Result<Option<SessionOffer>, AdapterError> {
        self.0.claim_session(path, claim).await
    }

    pub(crate) async fn take_session(
        &self,
        path: &'static str,
        offer: &SessionOffer,
        claim: &SessionClaim,
        seen: &[Stamp],
    ) -> Option<Vec<Frame>> {
        self.0.take_session(path, offer, claim, seen).await
    }
}

impl fmt::Debug for AdapterRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("AdapterRef")
    }
}
