//! [`WsServer`]: the server handle of one gateway, NestJS's `@WebSocketServer()`, with its
//! clients and rooms.

use std::borrow::Cow;
use std::fmt;
use std::sync::{Arc, OnceLock, RwLock, RwLockReadGuard, RwLockWriteGuard, Weak};
use std::time::{Duration, Instant};

use rustc_hash::{FxHashMap, FxHashSet};
use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio::sync::mpsc;

use crate::ack::{AckSender, AckStream};
use crate::adapter::{
    AdapterError, AdapterRef, ClientInfo, LocalServer, Message, Operation, Selection, Stamp,
};
use crate::client::{Client, ClientId, Outbound};
use crate::error::{RoomError, SendError};
use crate::frame::Frame;
use crate::recovery::{Recorder, Recording};

/// Where an operation applied to this instance's clients comes from.
#[derive(Clone, Copy)]
enum Source {
    /// An emit, a join... made here: handed to the adapter after, unless `publish` is off
    /// (a [`local`](Broadcast::local) broadcast).
    Here { publish: bool },
    /// Published by another instance, with its stamp when it has one.
    Remote(Option<Stamp>),
}

/// The server handle of a gateway: every connected client of that gateway, and its rooms.
///
/// Cheap to clone; usable from handlers, hooks, spawned tasks and plain axum HTTP handlers.
/// Take it as a gateway field (NestJS's `@WebSocketServer() server`), as a handler argument,
/// or from [`App::server`](crate::App::server).
///
/// A broadcast encodes its frame once and hands the same bytes to every receiver; it never
/// waits for a slow receiver (see [`SendError::QueueFull`]). With an
/// [adapter](crate::GatewayApp::adapter), every emit, room operation and disconnect also
/// reaches the matching clients of the other instances, once, with the same bytes.
///
/// The queries ([`client_count`](Self::client_count), [`room_members`](Self::room_members),
/// [`rooms_of`](Self::rooms_of), ...) answer for this instance;
/// [`Broadcast::fetch_clients`] asks every instance.
///
/// # Examples
///
/// ```
/// use ws_gateway_core::prelude::*;
///
/// #[websocket_gateway(path = "/news")]
/// struct NewsGateway {
///     server: WsServer,
/// }
///
/// #[websocket_gateway]
/// impl NewsGateway {
///     #[subscribe("publish")]
///     fn publish(&self, headline: String) -> usize {
///         // Everyone in the room "breaking" receives {"event":"headline","data":...}.
///         self.server.to("breaking").emit("headline", &headline).unwrap_or(0)
///     }
/// }
/// ```
#[derive(Clone)]
pub struct WsServer {
    inner: Arc<ServerInner>,
}

struct ServerInner {
    path: &'static str,
    state: RwLock<State>,
    adapter: OnceLock<AdapterRef>,
    /// [`ConnectionConfig::ack_timeout`](crate::ConnectionConfig::ack_timeout), set at build.
    ack_timeout: OnceLock<Duration>,
    /// Connection state recovery, when the app switched it on for this gateway.
    recorder: OnceLock<Arc<Recorder>>,
}

#[derive(Default)]
struct State {
    clients: FxHashMap<ClientId, Member>,
    rooms: FxHashMap<Arc<str>, FxHashSet<ClientId>>,
    limits: RoomLimits,
    /// Rooms held for clients that dropped and may recover (connection state recovery), by
    /// how many: still occupied for the adapter, so that what other instances send to them
    /// keeps arriving here to be kept for those clients.
    held: FxHashMap<Arc<str>, usize>,
}

struct Member {
    client: Client,
    /// A set, so that joining and leaving cost the same whatever the client's room count.
    rooms: FxHashSet<Arc<str>>,
}

/// The room bounds of [`ConnectionConfig`](crate::ConnectionConfig), applied to every join,
/// local or from another instance.
#[derive(Clone, Copy, Debug)]
pub(crate) struct RoomLimits {
    pub(crate) per_client: usize,
    pub(crate) name_len: usize,
}

impl RoomLimits {
    pub(crate) fn of(config: &crate::ConnectionConfig) -> Self {
        Self {
            per_client: config.max_rooms_per_client,
            name_len: config.max_room_name_len,
        }
    }
}

impl Default for RoomLimits {
    fn default() -> Self {
        Self::of(&crate::ConnectionConfig::default())
    }
}

/// A server handle that does not keep the server alive (adapters hold these).
#[derive(Clone)]
pub(crate) struct WeakServer(Weak<ServerInner>);

impl WeakServer {
    pub(crate) fn upgrade(&self) -> Option<WsServer> {
        self.0.upgrade().map(|inner| WsServer { inner })
    }
}

impl WsServer {
    pub(crate) fn new(path: &'static str) -> Self {
        Self {
            inner: Arc::new(ServerInner {
                path,
                state: RwLock::default(),
                adapter: OnceLock::new(),
                ack_timeout: OnceLock::new(),
                recorder: OnceLock::new(),
            }),
        }
    }

    fn read(&self) -> RwLockReadGuard<'_, State> {
        // No code panics while holding the lock; recover the data if one ever did.
        self.inner.state.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write(&self) -> RwLockWriteGuard<'_, State> {
        self.inner.state.write().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn downgrade(&self) -> WeakServer {
        WeakServer(Arc::downgrade(&self.inner))
    }

    /// Connects the server to the app's adapter (once; later calls are ignored).
    pub(crate) fn attach_adapter(&self, adapter: &AdapterRef) {
        if self.inner.adapter.set(adapter.clone()).is_ok() {
            adapter.attach(LocalServer::new(self));
        }
    }

    /// Applies the app's room bounds (at build, before any client connects).
    pub(crate) fn limit_rooms(&self, limits: RoomLimits) {
        self.write().limits = limits;
    }

    /// Applies the app's acknowledgement timeout (at build; later calls are ignored).
    pub(crate) fn set_ack_timeout(&self, timeout: Duration) {
        let _ = self.inner.ack_timeout.set(timeout);
    }

    /// How long an emit with acknowledgement waits when it does not say.
    pub(crate) fn ack_timeout(&self) -> Duration {
        self.inner
            .ack_timeout
            .get()
            .copied()
            .unwrap_or(crate::ack::DEFAULT_ACK_TIMEOUT)
    }

    pub(crate) fn adapter(&self) -> Option<&AdapterRef> {
        self.inner.adapter.get()
    }

    /// Tells the adapter that `room` got its first member here or lost its last. Called
    /// with the state still locked, so the adapter hears the changes in their order.
    fn room_changed(&self, room: &str, occupied: bool) {
        if let Some(adapter) = self.adapter() {
            adapter.room_changed(self.inner.path, room, occupied);
        }
    }

    /// Resolves once the app's adapter made every room change of this instance so far
    /// effective: room emits other instances publish from then on reach the members here
    /// ([`Client::join_synced`] is a join followed by this). Ready at once without an
    /// adapter that subscribes per room.
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
    /// # use ws_gateway_core::Handshake;
    /// let (a, _a_queue) = gw.open(Handshake::default(), 8);
    /// let (b, _b_queue) = gw.open(Handshake::default(), 8);
    /// a.join("red").unwrap();
    /// b.join("blue").unwrap();
    /// gw.server().synced().await; // both rooms reachable from every instance
    /// # }
    /// ```
    pub async fn synced(&self) {
        if let Some(adapter) = self.adapter() {
            adapter.synced().await;
        }
    }

    /// The gateway's path.
    ///
    /// # Examples
    ///
    /// ```
    /// # use ws_gateway_core::prelude::*;
    /// # #[websocket_gateway(path = "/chat")] struct Chat;
    /// # #[websocket_gateway] impl Chat {}
    /// let app = GatewayApp::new().gateway::<Chat>().build().unwrap();
    /// assert_eq!(app.server("/chat").unwrap().path(), "/chat");
    /// ```
    pub fn path(&self) -> &'static str {
        self.inner.path
    }

    pub(crate) fn add(&self, client: Client) {
        let id = client.id();
        self.write().clients.insert(
            id,
            Member {
                client,
                rooms: FxHashSet::default(),
            },
        );
    }

    /// Switches connection state recovery on (once; later calls are ignored).
    pub(crate) fn enable_recovery(&self, recorder: Recorder) {
        recorder.attach(self.downgrade());
        let _ = self.inner.recorder.set(Arc::new(recorder));
    }

    /// The gateway's recovery log and sessions, when recovery is on.
    pub(crate) fn recorder(&self) -> Option<&Arc<Recorder>> {
        self.inner.recorder.get()
    }

    /// Removes a client that may recover, returning its rooms, which stay held (occupied
    /// for the adapter) until [`release_rooms`](Self::release_rooms).
    pub(crate) fn remove_returning_rooms(&self, id: ClientId) -> Vec<Arc<str>> {
        let mut state = self.write();
        let Some(member) = state.clients.remove(&id) else {
            return Vec::new();
        };
        let rooms: Vec<Arc<str>> = member.rooms.into_iter().collect();
        for room in &rooms {
            *state.held.entry(Arc::clone(room)).or_insert(0) += 1;
            state.leave_room(room, id);
        }
        rooms
    }

    /// A dropped client recovered (after joining its rooms again) or will not: the rooms
    /// it held are released, and a room nobody is in here any more is reported empty.
    pub(crate) fn release_rooms(&self, rooms: &[Arc<str>]) {
        let mut state = self.write();
        for room in rooms {
            let Some(count) = state.held.get_mut(room) else {
                continue;
            };
            *count -= 1;
            if *count == 0 {
                state.held.remove(room);
                state.held.shrink_if_sparse();
                if !state.rooms.contains_key(room) {
                    self.room_changed(room, false);
                }
            }
        }
    }

    pub(crate) fn remove(&self, id: ClientId) {
        let mut state = self.write();
        if let Some(member) = state.clients.remove(&id) {
            for room in member.rooms {
                if state.leave_room(&room, id) {
                    self.room_changed(&room, false);
                }
            }
        }
    }

    /// The number of clients connected to this instance.
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
    /// # use ws_gateway_core::Handshake;
    /// let server = gw.server();
    /// assert_eq!(server.client_count(), 0);
    /// let (a, _a_queue) = gw.open(Handshake::default(), 8);
    /// let (b, _b_queue) = gw.open(Handshake::default(), 8);
    /// assert_eq!(server.client_count(), 2);
    /// gw.disconnect(&a).await;
    /// assert_eq!(server.client_count(), 1);
    /// # }
    /// ```
    pub fn client_count(&self) -> usize {
        self.read().clients.len()
    }

    /// The ids of every client connected to this instance, sorted.
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
    /// let mut expected = vec![a.id(), b.id()];
    /// expected.sort();
    /// assert_eq!(gw.server().client_ids(), expected);
    /// ```
    pub fn client_ids(&self) -> Vec<ClientId> {
        let mut ids: Vec<_> = self.read().clients.keys().copied().collect();
        ids.sort_unstable();
        ids
    }

    /// The client with this id, if it is connected to this instance.
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
    /// let server = gw.server();
    /// assert_eq!(server.client(a.id()).map(|c| c.id()), Some(a.id()));
    ///
    /// let stranger: ClientId = "0000000000000000".parse().unwrap();
    /// assert!(server.client(stranger).is_none());
    /// ```
    pub fn client(&self, id: ClientId) -> Option<Client> {
        self.read().clients.get(&id).map(|m| m.client.clone())
    }

    /// Adds a client of this instance to a room. Nothing happens if the client is unknown
    /// or already there; `server.to_client(id).join(room)` reaches every instance.
    ///
    /// # Errors
    ///
    /// [`RoomError`] when the name is longer than
    /// [`max_room_name_len`](crate::ConnectionConfig::max_room_name_len) or the client is in
    /// [`max_rooms_per_client`](crate::ConnectionConfig::max_rooms_per_client) rooms already;
    /// nothing is joined.
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
    /// gw.server().join(a.id(), "vip").unwrap();
    /// assert_eq!(a.rooms(), ["vip"]);
    /// ```
    pub fn join(&self, id: ClientId, room: impl Into<Cow<'static, str>>) -> Result<(), RoomError> {
        let room = room.into();
        let mut state = self.write();
        if state.join(id, &room)? == Joined::Opened {
            self.room_changed(&room, true);
        }
        Ok(())
    }

    /// Whether a client of this instance is in a room, without listing its rooms.
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
    /// a.join("vip").unwrap();
    /// assert!(gw.server().is_in(a.id(), "vip"));
    /// assert!(!gw.server().is_in(a.id(), "lobby"));
    /// ```
    pub fn is_in(&self, id: ClientId, room: &str) -> bool {
        self.read()
            .clients
            .get(&id)
            .is_some_and(|member| member.rooms.contains(room))
    }

    /// Removes a client of this instance from a room.
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
    /// a.join("vip").unwrap();
    /// gw.server().leave(a.id(), "vip");
    /// assert!(a.rooms().is_empty());
    /// ```
    pub fn leave(&self, id: ClientId, room: &str) {
        let mut state = self.write();
        if state.leave(id, room) {
            self.room_changed(room, false);
        }
    }

    /// The rooms a client of this instance is in, sorted.
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
    /// a.join("b").unwrap();
    /// a.join("a").unwrap();
    /// assert_eq!(gw.server().rooms_of(a.id()), ["a", "b"]);
    /// ```
    pub fn rooms_of(&self, id: ClientId) -> Vec<String> {
        let state = self.read();
        let mut rooms: Vec<String> = state
            .clients
            .get(&id)
            .map(|m| m.rooms.iter().map(|r| r.to_string()).collect())
            .unwrap_or_default();
        rooms.sort_unstable();
        rooms
    }

    /// The clients of this instance in a room, sorted.
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
    /// a.join("lobby").unwrap();
    /// assert_eq!(gw.server().room_members("lobby"), [a.id()]);
    /// assert!(gw.server().room_members("nowhere").is_empty());
    /// ```
    pub fn room_members(&self, room: &str) -> Vec<ClientId> {
        let mut ids: Vec<_> = self
            .read()
            .rooms
            .get(room)
            .map(|m| m.iter().copied().collect())
            .unwrap_or_default();
        ids.sort_unstable();
        ids
    }

    /// How many clients of this instance are in a room.
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
    /// a.join("lobby").unwrap();
    /// b.join("lobby").unwrap();
    /// assert_eq!(gw.server().room_size("lobby"), 2);
    /// assert_eq!(gw.server().room_size("nowhere"), 0);
    /// ```
    pub fn room_size(&self, room: &str) -> usize {
        self.read().rooms.get(room).map_or(0, FxHashSet::len)
    }

    /// The rooms that have at least one member on this instance, sorted.
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
    /// a.join("y").unwrap();
    /// a.join("x").unwrap();
    /// assert_eq!(gw.server().rooms(), ["x", "y"]);
    /// a.leave("x"); // a room without members is gone
    /// assert_eq!(gw.server().rooms(), ["y"]);
    /// ```
    pub fn rooms(&self) -> Vec<String> {
        let mut rooms: Vec<String> = self.read().rooms.keys().map(|r| r.to_string()).collect();
        rooms.sort_unstable();
        rooms
    }

    /// Closes a client's connection with code 1000, on whichever instance it is connected
    /// to. Returns whether it was connected to this one.
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
    /// let (a, mut a_queue) = gw.open(Handshake::default(), 8);
    /// assert!(gw.server().disconnect(a.id()));
    /// assert!(matches!(a_queue.try_recv(), Some(Outbound::Close(close)) if close.code == 1000));
    ///
    /// let stranger: ClientId = "0000000000000000".parse().unwrap();
    /// assert!(!gw.server().disconnect(stranger));
    /// ```
    pub fn disconnect(&self, id: ClientId) -> bool {
        self.to_client(id).disconnect() == 1
    }

    /// Every client of the gateway, on every instance, to narrow with [`Broadcast::to`]
    /// and [`Broadcast::except`].
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
    /// let server = gw.server();
    /// assert_eq!(server.broadcast().emit("news", &1).unwrap(), 2);
    /// assert_eq!(server.broadcast().except(a.id()).emit("news", &2).unwrap(), 1);
    /// ```
    pub fn broadcast(&self) -> Broadcast {
        Broadcast {
            server: self.clone(),
            selection: Selection::default(),
            local: false,
            timeout: None,
            volatile: false,
        }
    }

    /// Every client of the gateway connected to *this* instance, Socket.IO's `io.local`:
    /// nothing is sent to the adapter.
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
    /// // Reaches the clients of this process only, even with a Redis adapter.
    /// assert_eq!(gw.server().local().emit("cache-cleared", &()).unwrap(), 1);
    /// ```
    pub fn local(&self) -> Broadcast {
        self.broadcast().local()
    }

    /// The members of `room`; chain `.to(...)` for more rooms, `.except(...)` to leave some out.
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
    /// let (a, mut a_queue) = gw.open(Handshake::default(), 8);
    /// let (b, mut b_queue) = gw.open(Handshake::default(), 8);
    /// a.join("lobby").unwrap();
    /// assert_eq!(gw.server().to("lobby").emit("message", &"hi").unwrap(), 1);
    /// assert!(a_queue.try_recv().is_some());
    /// assert!(b_queue.try_recv().is_none());
    /// ```
    pub fn to(&self, room: impl Into<Cow<'static, str>>) -> Broadcast {
        self.broadcast().to(room)
    }

    /// One client by id, on whichever instance it is connected to.
    ///
    /// # Examples
    ///
    /// ```
    /// # fn demo(server: ws_gateway_core::WsServer, id: ws_gateway_core::ClientId) {
    /// // Reaches the client even when it is connected to another instance.
    /// server.to_client(id).emit("private", &"psst").ok();
    /// # }
    /// ```
    pub fn to_client(&self, id: ClientId) -> Broadcast {
        self.broadcast().to_client(id)
    }

    /// Sends `{"event": event, "data": data}` to every client of the gateway. Returns how
    /// many clients of this instance it was queued for.
    ///
    /// # Errors
    ///
    /// [`SendError::Serialize`] when the data fails to serialize.
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
    /// let (a, mut a_queue) = gw.open(Handshake::default(), 8);
    /// let (b, mut b_queue) = gw.open(Handshake::default(), 8);
    /// assert_eq!(gw.server().emit("news", &"hello").unwrap(), 2);
    /// for queue in [&mut a_queue, &mut b_queue] {
    ///     let Some(Outbound::Frame(frame)) = queue.try_recv() else { panic!("no frame") };
    ///     assert_eq!(frame.as_str(), r#"{"event":"news","data":"hello"}"#);
    /// }
    ///
    /// // JSON object keys must be strings.
    /// let bad = std::collections::BTreeMap::from([((1, 2), "x")]);
    /// assert!(matches!(gw.server().emit("news", &bad), Err(SendError::Serialize(_))));
    /// ```
    pub fn emit<T: Serialize + ?Sized>(&self, event: &str, data: &T) -> Result<usize, SendError> {
        self.broadcast().emit(event, data)
    }

    /// Applies an operation another instance published (with its [`Stamp`], when it has
    /// one) to the matching clients of this instance. Returns how many it applied to.
    pub(crate) fn apply_remote(
        &self,
        selection: &Selection,
        op: &Operation,
        stamp: Option<Stamp>,
    ) -> usize {
        self.apply(selection, op, Source::Remote(stamp))
    }

    /// Applies an operation to the matching clients of this instance, and, when it comes
    /// from here and concerns clients that may be elsewhere, hands it to the adapter.
    /// Returns how many local clients it applied to.
    fn apply(&self, selection: &Selection, op: &Operation, source: Source) -> usize {
        // Handed to the adapter when it comes from here and may concern other instances.
        let publishes = |all_here: bool| {
            matches!(source, Source::Here { publish: true })
                && !all_here
                && self.adapter().is_some()
        };
        match op {
            Operation::Emit(frame) => {
                // With recovery, the frame is numbered and kept, queued to its receivers and
                // handed to the adapter under the recorder's lock, so that every client sees
                // offsets in order and every instance receives this one's frames in the
                // order of their numbers.
                let mut recording = self.recorder().map(|r| r.recording());
                let stamped;
                let frame = match &mut recording {
                    Some(recording) => {
                        let remote = match source {
                            Source::Remote(stamp) => Some(stamp),
                            Source::Here { .. } => None,
                        };
                        stamped = recording.record(selection, frame, remote);
                        &stamped
                    }
                    None => frame,
                };
                // One slot for every receiver's copy: a Socket.IO receiver encodes the frame
                // for all of them.
                let frame = frame.clone().shared();
                let (sent, all_here) = {
                    let state = self.read();
                    let mut sent = 0;
                    state.visit(selection, |member| {
                        if member
                            .client
                            .sink()
                            .send(Outbound::Frame(frame.clone()))
                            .is_ok()
                        {
                            sent += 1;
                        }
                    });
                    (sent, state.all_targets_here(selection))
                };
                if publishes(all_here) {
                    let stamp = recording.as_mut().map(Recording::published);
                    self.publish(selection, op, stamp);
                }
                sent
            }
            _ => {
                let (applied, all_here) = self.apply_membership(selection, op);
                if publishes(all_here) {
                    self.publish(selection, op, None);
                }
                applied
            }
        }
    }

    fn publish(&self, selection: &Selection, op: &Operation, stamp: Option<Stamp>) {
        if let Some(adapter) = self.adapter() {
            adapter.publish(&Message {
                path: self.path(),
                selection,
                op,
                stamp,
            });
        }
    }

    /// Applies a join, a leave or a disconnect to the matching clients of this instance.
    /// Returns how many it applied to, and whether every client it concerns is here.
    fn apply_membership(&self, selection: &Selection, op: &Operation) -> (usize, bool) {
        match op {
            Operation::Emit(_) => (0, false),
            Operation::Disconnect => {
                let state = self.read();
                let mut closed = 0;
                state.visit(selection, |member| {
                    member.client.disconnect();
                    closed += 1;
                });
                (closed, state.all_targets_here(selection))
            }
            Operation::Join(room) | Operation::Leave(room) => {
                let mut state = self.write();
                let mut ids = Vec::new();
                state.visit(selection, |member| ids.push(member.client.id()));
                let mut applied = 0;
                for &id in &ids {
                    if matches!(op, Operation::Join(_)) {
                        match state.join(id, room) {
                            Ok(joined) => {
                                applied += 1;
                                if joined == Joined::Opened {
                                    self.room_changed(room, true);
                                }
                            }
                            Err(err) => {
                                tracing::debug!(target: "gateway::rejection", client = %id, "{err}");
                            }
                        }
                    } else {
                        if state.leave(id, room) {
                            self.room_changed(room, false);
                        }
                        applied += 1;
                    }
                }
                (applied, state.all_targets_here(selection))
            }
        }
    }

    /// Sends `frame` asking for an acknowledgement to the matching clients of this instance,
    /// under one number (so encoded once), their answers to `tx`. Returns how many it was
    /// sent to, and whether every client it concerns is connected here.
    pub(crate) fn ask_local(
        &self,
        selection: &Selection,
        frame: &Frame,
        deadline: Instant,
        tx: &AckSender,
    ) -> (usize, bool) {
        let ack = crate::ack::next_ack();
        let asked = frame.with_ack(ack).shared();
        let state = self.read();
        let mut sent = 0;
        state.visit(selection, |member| {
            if member.client.ask(&asked, ack, deadline, tx).is_ok() {
                sent += 1;
            }
        });
        (sent, state.all_targets_here(selection))
    }

    /// The matching clients of this instance.
    pub(crate) fn local_clients(&self, selection: &Selection) -> Vec<ClientInfo> {
        let state = self.read();
        let mut clients = Vec::new();
        state.visit(selection, |member| {
            let mut rooms: Vec<String> = member.rooms.iter().map(|r| r.to_string()).collect();
            rooms.sort_unstable();
            clients.push(ClientInfo::new(member.client.id(), rooms));
        });
        clients
    }
}

/// What [`State::join`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Joined {
    /// The client is unknown, or in the room already.
    Unchanged,
    /// The client joined a room that had members here.
    Added,
    /// The client is the room's first member here.
    Opened,
}

impl State {
    /// Adds `id` to `room` within the bounds. Hash lookups only: the cost does not grow
    /// with the client's room count.
    fn join(&mut self, id: ClientId, room: &str) -> Result<Joined, RoomError> {
        let State {
            clients,
            rooms,
            limits,
            held,
        } = self;
        if room.len() > limits.name_len {
            return Err(RoomError::NameTooLong {
                len: room.len(),
                max: limits.name_len,
            });
        }
        let Some(member) = clients.get_mut(&id) else {
            return Ok(Joined::Unchanged);
        };
        if member.rooms.contains(room) {
            return Ok(Joined::Unchanged);
        }
        if member.rooms.len() >= limits.per_client {
            return Err(RoomError::TooManyRooms {
                max: limits.per_client,
            });
        }
        let (key, joined) = match rooms.get_key_value(room) {
            Some((key, _)) => (Arc::clone(key), Joined::Added),
            // Held for a dropped client: the adapter already has it as occupied.
            None if held.contains_key(room) => (Arc::from(room), Joined::Added),
            None => (Arc::from(room), Joined::Opened),
        };
        rooms.entry(Arc::clone(&key)).or_default().insert(id);
        member.rooms.insert(key);
        Ok(joined)
    }

    /// Removes `id` from `room`; `true` if that emptied the room.
    fn leave(&mut self, id: ClientId, room: &str) -> bool {
        let Some(member) = self.clients.get_mut(&id) else {
            return false;
        };
        if member.rooms.remove(room) {
            member.rooms.shrink_if_sparse();
            return self.leave_room(room, id);
        }
        false
    }

    /// Removes `id` from the members of `room`; `true` if that emptied the room (and no
    /// dropped client holds it).
    fn leave_room(&mut self, room: &str, id: ClientId) -> bool {
        if let Some(members) = self.rooms.get_mut(room) {
            members.remove(&id);
            members.shrink_if_sparse();
            if members.is_empty() {
                self.rooms.remove(room);
                self.rooms.shrink_if_sparse();
                return !self.held.contains_key(room);
            }
        }
        false
    }

    /// Calls `f` once for every member the selection matches.
    fn visit(&self, selection: &Selection, mut f: impl FnMut(&Member)) {
        let excluded = |id: &ClientId| {
            selection.except_clients.contains(id)
                || selection.except_rooms.iter().any(|room| {
                    self.rooms
                        .get(&**room)
                        .is_some_and(|members| members.contains(id))
                })
        };
        let mut deliver = |id: &ClientId| {
            if !excluded(id)
                && let Some(member) = self.clients.get(id)
            {
                f(member);
            }
        };
        let room_members = |room: &Cow<'static, str>| self.rooms.get(&**room).into_iter().flatten();
        match (selection.rooms.as_slice(), selection.clients.as_slice()) {
            ([], []) => {
                // Everyone: walk the members themselves rather than looking each id up.
                for (id, member) in &self.clients {
                    if !excluded(id) {
                        f(member);
                    }
                }
            }
            ([room], []) => room_members(room).for_each(&mut deliver),
            ([], [id]) => deliver(id),
            (rooms, ids) => {
                let mut seen = FxHashSet::default();
                for id in rooms.iter().flat_map(room_members).chain(ids) {
                    if seen.insert(*id) {
                        deliver(id);
                    }
                }
            }
        }
    }

    /// Whether the selection names clients only, all connected here.
    fn all_targets_here(&self, selection: &Selection) -> bool {
        selection.rooms.is_empty()
            && !selection.clients.is_empty()
            && selection
                .clients
                .iter()
                .all(|id| self.clients.contains_key(id))
    }
}

/// Gives memory back once a set or map is mostly empty (clients that joined many rooms and
/// left them): amortized O(1), as three quarters of the capacity must be unused first.
trait Sparse {
    fn shrink_if_sparse(&mut self);
}

impl<T: Eq + std::hash::Hash, S: std::hash::BuildHasher> Sparse
    for std::collections::HashSet<T, S>
{
    fn shrink_if_sparse(&mut self) {
        if self.capacity() > 64 && self.len() < self.capacity() / 4 {
            self.shrink_to_fit();
        }
    }
}

impl<K: Eq + std::hash::Hash, V, S: std::hash::BuildHasher> Sparse
    for std::collections::HashMap<K, V, S>
{
    fn shrink_if_sparse(&mut self) {
        if self.capacity() > 64 && self.len() < self.capacity() / 4 {
            self.shrink_to_fit();
        }
    }
}

impl fmt::Debug for WsServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WsServer")
            .field("path", &self.inner.path)
            .field("clients", &self.client_count())
            .field("adapter", &self.adapter().is_some())
            .finish()
    }
}

/// A selection of a gateway's clients to send one frame to, Socket.IO's broadcast operator.
///
/// It reaches every instance of the app unless narrowed with [`local`](Self::local).
///
/// # Examples
///
/// ```
/// # fn demo(server: ws_gateway_core::WsServer, sender: ws_gateway_core::Client) {
/// // Members of "a" or "b", except the sender and the members of "muted".
/// server
///     .to("a")
///     .to("b")
///     .except(sender.id())
///     .except_room("muted")
///     .emit("message", &"hi")
///     .ok();
/// # }
/// ```
#[derive(Clone, Debug)]
#[must_use = "a broadcast sends nothing until `emit` is called"]
pub struct Broadcast {
    server: WsServer,
    selection: Selection,
    local: bool,
    timeout: Option<Duration>,
    volatile: bool,
}

impl Broadcast {
    /// Narrows the selection to members of `room` (several calls: members of any of them,
    /// and of any client added with [`to_client`](Self::to_client)).
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
    /// let (c, _c_queue) = gw.open(Handshake::default(), 8);
    /// a.join("x").unwrap();
    /// a.join("y").unwrap();
    /// b.join("y").unwrap();
    /// // Members of "x" or "y", each once: a and b, not c.
    /// assert_eq!(gw.server().to("x").to("y").emit("m", &0).unwrap(), 2);
    /// ```
    pub fn to(mut self, room: impl Into<Cow<'static, str>>) -> Self {
        self.selection.rooms.push(room.into());
        self
    }

    /// Adds one client by id, on whichever instance it is connected to.
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
    /// // The members of "staff", plus b.
    /// a.join("staff").unwrap();
    /// let sent = gw.server().to("staff").to_client(b.id()).emit("notice", &"hi").unwrap();
    /// assert_eq!(sent, 2);
    /// ```
    pub fn to_client(mut self, id: ClientId) -> Self {
        self.selection.clients.push(id);
        self
    }

    /// Leaves one client out.
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
    /// let (a, mut a_queue) = gw.open(Handshake::default(), 8);
    /// let (b, mut b_queue) = gw.open(Handshake::default(), 8);
    /// assert_eq!(gw.server().broadcast().except(a.id()).emit("m", &0).unwrap(), 1);
    /// assert!(a_queue.try_recv().is_none());
    /// assert!(b_queue.try_recv().is_some());
    /// ```
    pub fn except(mut self, id: ClientId) -> Self {
        self.selection.except_clients.push(id);
        self
    }

    /// Leaves out every member of `room`.
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
    /// let (a, mut a_queue) = gw.open(Handshake::default(), 8);
    /// let (b, mut b_queue) = gw.open(Handshake::default(), 8);
    /// b.join("muted").unwrap();
    /// assert_eq!(gw.server().broadcast().except_room("muted").emit("m", &0).unwrap(), 1);
    /// assert!(a_queue.try_recv().is_some());
    /// assert!(b_queue.try_recv().is_none());
    /// ```
    pub fn except_room(mut self, room: impl Into<Cow<'static, str>>) -> Self {
        self.selection.except_rooms.push(room.into());
        self
    }

    /// Restricts the operation to the clients of this instance: the adapter is not told.
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
    /// a.join("lobby").unwrap();
    /// // The members of "lobby" connected to this instance; other instances are not told.
    /// assert_eq!(gw.server().to("lobby").local().emit("m", &0).unwrap(), 1);
    /// ```
    pub fn local(mut self) -> Self {
        self.local = true;
        self
    }

    /// Makes the emits volatile: dropped for a client whose outbound queue is full (counted in
    /// `gateway_messages_dropped_total`) instead of disconnecting it, on every instance
    /// (Socket.IO's `io.to(room).volatile.emit(..)`).
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
    /// // A reader that keeps up, and one whose queue of one frame nobody drains.
    /// let (fast, mut fast_queue) = gw.open(Handshake::default(), 8);
    /// let (slow, slow_queue) = gw.open(Handshake::default(), 1);
    /// assert_eq!(gw.server().broadcast().volatile().emit("pos", &1).unwrap(), 2);
    /// assert_eq!(gw.server().broadcast().volatile().emit("pos", &2).unwrap(), 1);
    /// assert!(!slow_queue.overflow_signal().has_overflowed()); // still connected
    /// # let _ = (fast, slow, fast_queue.try_recv());
    /// ```
    pub fn volatile(mut self) -> Self {
        self.volatile = true;
        self
    }

    /// How long [`emit_with_ack`](Self::emit_with_ack) waits for answers, instead of
    /// [`ack_timeout`](crate::ConnectionConfig::ack_timeout): Socket.IO's
    /// `io.timeout(ms)`. See [`AckStream`] for an example.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// Sends `{"event": event, "data": data, "ack": N}` to the selected clients of every
    /// instance and collects their answers: Socket.IO's broadcast `emitWithAck`, with who
    /// answered what, as each answer arrives.
    ///
    /// Encoded once per instance (one `N` for all its receivers). The stream ends when
    /// every client that was sent the event answered (or left), or when the timeout
    /// passed; [`AckStream::unanswered`] then says how many did not answer. Across
    /// instances, each one reports how many clients it sent to and forwards their answers
    /// (through an adapter that supports it, as `ws-gateway-redis` does).
    ///
    /// # Errors
    ///
    /// [`SendError::Serialize`] when the data fails to serialize.
    ///
    /// # Examples
    ///
    /// ```
    /// use futures_util::StreamExt;
    /// use ws_gateway_core::prelude::*;
    ///
    /// #[websocket_gateway(path = "/doc-room-acks")]
    /// struct Polls {
    ///     server: WsServer,
    /// }
    ///
    /// #[websocket_gateway]
    /// impl Polls {
    ///     /// Asks every other member of the room; answers with the tally.
    ///     #[subscribe("poll")]
    ///     async fn poll(&self, client: Client, room: String) -> Result<serde_json::Value, WsException> {
    ///         let mut answers = client
    ///             .to(room)
    ///             .timeout(std::time::Duration::from_secs(2))
    ///             .emit_with_ack::<bool>("question", &"pizza tonight?")?;
    ///         let mut yes = 0;
    ///         while let Some((_who, answer)) = answers.next().await {
    ///             yes += usize::from(answer.unwrap_or(false));
    ///         }
    ///         Ok(serde_json::json!({ "yes": yes, "unanswered": answers.unanswered() }))
    ///     }
    /// }
    /// ```
    pub fn emit_with_ack<T: DeserializeOwned>(
        &self,
        event: &str,
        data: &(impl Serialize + ?Sized),
    ) -> Result<AckStream<T>, SendError> {
        Ok(self.ask_frame(&Frame::event(event, data)?))
    }

    /// [`emit_with_ack`](Self::emit_with_ack) of an encoded frame (without `ack`).
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
    ///
    /// let (_a, _a_queue) = gw.open(Handshake::default(), 8);
    /// let frame = Frame::event("ping", &()).unwrap();
    /// let answers = gw.server().broadcast().ask_frame::<String>(&frame);
    /// assert_eq!(answers.sent(), 1);
    /// ```
    pub fn ask_frame<T>(&self, frame: &Frame) -> AckStream<T> {
        let timeout = self.timeout.unwrap_or_else(|| self.server.ack_timeout());
        let deadline = Instant::now() + timeout;
        let (tx, rx) = mpsc::unbounded_channel();
        let (sent, all_here) = self.server.ask_local(&self.selection, frame, deadline, &tx);
        let adapter = (!self.local && !all_here)
            .then(|| self.server.adapter())
            .flatten();
        if let Some(adapter) = adapter {
            adapter.emit_with_ack(
                &Message {
                    path: self.server.path(),
                    selection: &self.selection,
                    op: &Operation::Emit(frame.clone()),
                    stamp: None,
                },
                timeout,
                crate::adapter::AckReplies::new(tx),
            );
        }
        AckStream::new(rx, sent, timeout, deadline, adapter.is_some())
    }

    /// The clients selected.
    ///
    /// # Examples
    ///
    /// ```
    /// # use ws_gateway_core::prelude::*;
    /// # #[websocket_gateway(path = "/chat")] struct Chat;
    /// # #[websocket_gateway] impl Chat {}
    /// # let app = GatewayApp::new().gateway::<Chat>().build().unwrap();
    /// let server = app.server("/chat").unwrap();
    /// let muted = server.to("lobby").except_room("muted");
    /// assert_eq!(muted.selection().rooms, ["lobby"]);
    /// assert_eq!(muted.selection().except_rooms, ["muted"]);
    /// assert!(server.broadcast().selection().is_everyone());
    /// ```
    pub fn selection(&self) -> &Selection {
        &self.selection
    }

    /// Sends `{"event": event, "data": data}` to the selected clients, encoded once.
    /// Returns how many clients of this instance it was queued for.
    ///
    /// # Errors
    ///
    /// [`SendError::Serialize`] when the data fails to serialize.
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
    /// let (a, mut a_queue) = gw.open(Handshake::default(), 8);
    /// a.join("lobby").unwrap();
    /// assert_eq!(gw.server().to("lobby").emit("message", &"hi").unwrap(), 1);
    /// let Some(Outbound::Frame(frame)) = a_queue.try_recv() else { panic!("no frame") };
    /// assert_eq!(frame.as_str(), r#"{"event":"message","data":"hi"}"#);
    /// ```
    pub fn emit<T: Serialize + ?Sized>(&self, event: &str, data: &T) -> Result<usize, SendError> {
        Ok(self.send_frame(&Frame::event(event, data)?))
    }

    /// Sends `{"event": event, "args": [..]}`, an event with several arguments, to the
    /// selected clients (see [`Client::emit_args`](crate::Client::emit_args)). Returns how
    /// many clients of this instance it was queued for.
    ///
    /// # Errors
    ///
    /// [`SendError::Serialize`] when the arguments fail to serialize or are not a sequence.
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
    /// let (a, mut a_queue) = gw.open(Handshake::default(), 8);
    /// a.join("lobby").unwrap();
    /// assert_eq!(gw.server().to("lobby").emit_args("said", &("ann", "hi")).unwrap(), 1);
    /// let Some(Outbound::Frame(frame)) = a_queue.try_recv() else { panic!("no frame") };
    /// assert_eq!(frame.as_str(), r#"{"event":"said","args":["ann","hi"]}"#);
    /// ```
    pub fn emit_args<T: Serialize + ?Sized>(
        &self,
        event: &str,
        args: &T,
    ) -> Result<usize, SendError> {
        Ok(self.send_frame(&Frame::args(event, args)?))
    }

    /// Sends an encoded frame to the selected clients. Returns how many clients of this
    /// instance it was queued for; a client whose queue is full is skipped and
    /// disconnected.
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
    /// let (a, mut a_queue) = gw.open(Handshake::default(), 8);
    /// let (b, mut b_queue) = gw.open(Handshake::default(), 8);
    /// let frame = Frame::event("tick", &1).unwrap();
    /// assert_eq!(gw.server().broadcast().send_frame(&frame), 2);
    /// // Both receive the same bytes.
    /// for queue in [&mut a_queue, &mut b_queue] {
    ///     assert!(matches!(queue.try_recv(), Some(Outbound::Frame(sent)) if sent == frame));
    /// }
    /// ```
    pub fn send_frame(&self, frame: &Frame) -> usize {
        let frame = if self.volatile {
            frame.clone().volatile()
        } else {
            frame.clone()
        };
        self.run(&Operation::Emit(frame))
    }

    /// Adds the selected clients to `room`, Socket.IO's `socketsJoin`. Returns how many
    /// clients of this instance it concerned.
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
    /// a.join("lobby").unwrap();
    /// // Everyone in "lobby" also joins "game-1".
    /// assert_eq!(gw.server().to("lobby").join("game-1"), 1);
    /// assert_eq!(a.rooms(), ["game-1", "lobby"]);
    /// assert!(b.rooms().is_empty());
    /// ```
    pub fn join(&self, room: impl Into<Cow<'static, str>>) -> usize {
        self.run(&Operation::Join(room.into()))
    }

    /// Removes the selected clients from `room`, Socket.IO's `socketsLeave`. Returns how
    /// many clients of this instance it concerned.
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
    /// a.join("game-1").unwrap();
    /// b.join("game-1").unwrap();
    /// // Everyone leaves "game-1": the room is gone.
    /// assert_eq!(gw.server().to("game-1").leave("game-1"), 2);
    /// assert!(gw.server().rooms().is_empty());
    /// ```
    pub fn leave(&self, room: impl Into<Cow<'static, str>>) -> usize {
        self.run(&Operation::Leave(room.into()))
    }

    /// Closes the selected clients' connections with code 1000. Returns how many clients of
    /// this instance it closed.
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
    /// let (a, mut a_queue) = gw.open(Handshake::default(), 8);
    /// let (b, mut b_queue) = gw.open(Handshake::default(), 8);
    /// a.join("banned").unwrap();
    /// assert_eq!(gw.server().to("banned").disconnect(), 1);
    /// assert!(matches!(a_queue.try_recv(), Some(Outbound::Close(close)) if close.code == 1000));
    /// assert!(b_queue.try_recv().is_none());
    /// ```
    pub fn disconnect(&self) -> usize {
        self.run(&Operation::Disconnect)
    }

    /// The selected clients of every instance with their rooms, sorted by id, Socket.IO's
    /// `fetchSockets`. Counts across instances are its length.
    ///
    /// # Errors
    ///
    /// [`AdapterError`] when the other instances cannot be asked or do not all answer in
    /// time.
    ///
    /// # Examples
    ///
    /// ```
    /// # async fn demo(server: ws_gateway_core::WsServer) -> Result<(), ws_gateway_core::adapter::AdapterError> {
    /// let in_lobby = server.to("lobby").fetch_clients().await?.len();
    /// # let _ = in_lobby;
    /// # Ok(())
    /// # }
    /// ```
    pub async fn fetch_clients(&self) -> Result<Vec<ClientInfo>, AdapterError> {
        let mut clients = self.server.local_clients(&self.selection);
        if !self.local
            && let Some(adapter) = self.server.adapter().cloned()
        {
            clients.extend(
                adapter
                    .fetch_clients(self.server.path(), &self.selection)
                    .await?,
            );
        }
        clients.sort_by_key(|c| c.id);
        clients.dedup_by_key(|c| c.id);
        Ok(clients)
    }

    fn run(&self, op: &Operation) -> usize {
        self.server.apply(
            &self.selection,
            op,
            Source::Here {
                publish: !self.local,
            },
        )
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;
    use crate::adapter::Adapter;
    use crate::client::{ClientSink, Handshake, OutboundQueue};

    /// Instances of one app in one process: what one publishes, the others apply.
    #[derive(Clone, Default)]
    struct Bus {
        servers: Arc<Mutex<Vec<(usize, LocalServer)>>>,
        published: Arc<Mutex<Vec<(usize, Selection, Operation)>>>,
        /// What `room_changed` reported: instance, room, occupied.
        rooms: Arc<Mutex<Vec<(usize, String, bool)>>>,
    }

    struct Instance {
        bus: Bus,
        me: usize,
    }

    impl Adapter for Instance {
        fn attach(&self, server: LocalServer) {
            self.bus.servers.lock().unwrap().push((self.me, server));
        }

        fn publish(&self, message: &Message<'_>) {
            self.bus.published.lock().unwrap().push((
                self.me,
                message.selection.clone(),
                message.op.clone(),
            ));
            let servers = self.bus.servers.lock().unwrap().clone();
            for (instance, server) in servers {
                if instance != self.me && server.path() == message.path {
                    server.apply(message.selection, message.op);
                }
            }
        }

        async fn fetch_clients(
            &self,
            path: &'static str,
            selection: &Selection,
        ) -> Result<Vec<ClientInfo>, AdapterError> {
            let servers = self.bus.servers.lock().unwrap().clone();
            Ok(servers
                .iter()
                .filter(|(i, s)| *i != self.me && s.path() == path)
                .flat_map(|(_, s)| s.clients(selection).unwrap_or_default())
                .collect())
        }

        fn room_changed(&self, path: &'static str, room: &str, occupied: bool) {
            assert_eq!(path, "/t");
            let change = (self.me, room.to_owned(), occupied);
            self.bus.rooms.lock().unwrap().push(change);
        }
    }

    #[test]
    fn the_adapter_hears_of_a_rooms_first_and_last_member_on_each_instance() {
        let (bus, servers) = instances(2);
        let (a, _a_rx) = connect(&servers[0]);
        let (b, _b_rx) = connect(&servers[0]);
        let (c, _c_rx) = connect(&servers[1]);
        a.join("r").unwrap();
        b.join("r").unwrap(); // not the first: nothing reported
        a.leave("r"); // not the last
        // From another instance: c is the first member of "s" on instance 1.
        servers[0].to_client(c.id()).join("s");
        b.join("s").unwrap();
        servers[0].leave(b.id(), "r"); // the last of "r" on instance 0
        servers[1].remove(c.id()); // disconnected: the last of "s" on instance 1
        servers[0].to("s").leave("s"); // b, the last of "s" on instance 0
        let expected = [
            (0, "r", true),
            (1, "s", true),
            (0, "s", true),
            (0, "r", false),
            (1, "s", false),
            (0, "s", false),
        ];
        let got = bus.rooms.lock().unwrap().clone();
        let got: Vec<(usize, &str, bool)> =
            got.iter().map(|(i, r, o)| (*i, r.as_str(), *o)).collect();
        assert_eq!(got, expected);
    }

    fn instances(n: usize) -> (Bus, Vec<WsServer>) {
        let bus = Bus::default();
        let servers = (0..n)
            .map(|me| {
                let server = WsServer::new("/t");
                server.attach_adapter(&AdapterRef::new(Instance {
                    bus: bus.clone(),
                    me,
                }));
                server
            })
            .collect();
        (bus, servers)
    }

    fn connect(server: &WsServer) -> (Client, OutboundQueue) {
        let (sink, queue) = ClientSink::channel(16, metrics::Counter::noop());
        let client = Client::new(server.clone(), sink, Handshake::default());
        server.add(client.clone());
        (client, queue)
    }

    fn frames(queue: &mut OutboundQueue) -> Vec<String> {
        std::iter::from_fn(|| queue.try_recv())
            .map(|out| match out {
                Outbound::Frame(frame) | Outbound::Ask(frame, _) | Outbound::Reply(frame, _) => {
                    frame.as_str().to_owned()
                }
                Outbound::Close(close) => format!("close {}", close.code),
            })
            .collect()
    }

    #[test]
    fn room_emit_reaches_members_of_every_instance_once() {
        let (bus, servers) = instances(3);
        let (a, mut a_rx) = connect(&servers[0]);
        let (b, mut b_rx) = connect(&servers[1]);
        let (c, mut c_rx) = connect(&servers[2]);
        let (_d, mut d_rx) = connect(&servers[2]);
        for client in [&a, &b, &c] {
            client.join("room").unwrap();
        }
        assert_eq!(a.to("room").emit("m", &1).unwrap(), 0);
        assert_eq!(a.to("room").emit("m", &2).unwrap(), 0);
        assert!(frames(&mut a_rx).is_empty());
        let expected = [r#"{"event":"m","data":1}"#, r#"{"event":"m","data":2}"#];
        assert_eq!(frames(&mut b_rx), expected);
        assert_eq!(frames(&mut c_rx), expected);
        assert!(frames(&mut d_rx).is_empty());
        // One message per emit, whatever the number of receivers.
        assert_eq!(bus.published.lock().unwrap().len(), 2);
    }

    #[test]
    fn exclusions_apply_on_every_instance() {
        let (_, servers) = instances(2);
        let (a, mut a_rx) = connect(&servers[0]);
        let (b, mut b_rx) = connect(&servers[1]);
        let (c, mut c_rx) = connect(&servers[1]);
        b.join("muted").unwrap();
        servers[0]
            .broadcast()
            .except(a.id())
            .except_room("muted")
            .emit("m", &0)
            .unwrap();
        assert!(frames(&mut a_rx).is_empty());
        assert!(frames(&mut b_rx).is_empty());
        assert_eq!(frames(&mut c_rx), [r#"{"event":"m","data":0}"#]);
        c.broadcast().emit("n", &0).unwrap();
        assert_eq!(frames(&mut a_rx).len(), 1);
        assert_eq!(frames(&mut b_rx).len(), 1);
        assert!(frames(&mut c_rx).is_empty());
    }

    #[test]
    fn a_client_is_reached_by_id_and_local_ones_are_not_published() {
        let (bus, servers) = instances(2);
        let (a, mut a_rx) = connect(&servers[0]);
        let (b, mut b_rx) = connect(&servers[1]);
        assert_eq!(servers[0].to_client(a.id()).emit("x", &1).unwrap(), 1);
        assert!(bus.published.lock().unwrap().is_empty());
        assert_eq!(servers[0].to_client(b.id()).emit("x", &2).unwrap(), 0);
        assert_eq!(bus.published.lock().unwrap().len(), 1);
        assert_eq!(frames(&mut a_rx), [r#"{"event":"x","data":1}"#]);
        assert_eq!(frames(&mut b_rx), [r#"{"event":"x","data":2}"#]);
        // `local()` never leaves the process.
        assert_eq!(servers[0].local().emit("y", &3).unwrap(), 1);
        assert!(frames(&mut b_rx).is_empty());
        assert_eq!(bus.published.lock().unwrap().len(), 1);
    }

    #[test]
    fn rooms_and_a_room_plus_a_client_deduplicate() {
        let (_, servers) = instances(1);
        let (a, mut a_rx) = connect(&servers[0]);
        a.join("x").unwrap();
        a.join("y").unwrap();
        let sent = servers[0].to("x").to("y").to_client(a.id()).emit("m", &0);
        assert_eq!(sent.unwrap(), 1);
        assert_eq!(frames(&mut a_rx).len(), 1);
        assert_eq!(servers[0].room_size("x"), 1);
    }

    #[test]
    fn join_leave_and_disconnect_cross_instances() {
        let (_, servers) = instances(2);
        let (_a, _) = connect(&servers[0]);
        let (b, mut b_rx) = connect(&servers[1]);
        assert_eq!(servers[0].to_client(b.id()).join("vip"), 0);
        assert_eq!(b.rooms(), ["vip"]);
        servers[0].to("vip").leave("vip");
        assert!(b.rooms().is_empty());
        assert!(!servers[0].disconnect(b.id()));
        assert_eq!(frames(&mut b_rx), ["close 1000"]);
    }

    #[tokio::test]
    async fn fetch_clients_asks_every_instance() {
        let (_, servers) = instances(3);
        let (a, _) = connect(&servers[0]);
        let (b, _) = connect(&servers[1]);
        let (_c, _) = connect(&servers[2]);
        a.join("r").unwrap();
        b.join("r").unwrap();
        let mut expected = vec![
            ClientInfo::new(a.id(), vec!["r".into()]),
            ClientInfo::new(b.id(), vec!["r".into()]),
        ];
        expected.sort_by_key(|c| c.id);
        assert_eq!(servers[2].to("r").fetch_clients().await.unwrap(), expected);
        assert_eq!(
            servers[2].broadcast().fetch_clients().await.unwrap().len(),
            3
        );
        assert_eq!(servers[2].local().fetch_clients().await.unwrap().len(), 1);
    }

    #[test]
    fn room_bounds_hold_for_joins_from_every_instance() {
        let (_, servers) = instances(2);
        for server in &servers {
            server.limit_rooms(RoomLimits {
                per_client: 2,
                name_len: 8,
            });
        }
        let (b, _) = connect(&servers[1]);
        b.join("a").unwrap();
        // From the other instance: applied there, within the bounds.
        assert_eq!(servers[0].to_client(b.id()).join("b"), 0);
        assert_eq!(b.rooms(), ["a", "b"]);
        servers[0].to_client(b.id()).join("c");
        assert_eq!(servers[1].to_client(b.id()).join("d"), 0);
        assert_eq!(b.rooms(), ["a", "b"]);
        assert_eq!(b.join("e"), Err(RoomError::TooManyRooms { max: 2 }));
        // Already in: not a new room.
        assert_eq!(b.join("a"), Ok(()));
        b.leave("a");
        assert_eq!(
            b.join("123456789"),
            Err(RoomError::NameTooLong { len: 9, max: 8 })
        );
        assert_eq!(b.join("12345678"), Ok(()));
        assert!(b.is_in("12345678"));
        assert_eq!(servers[1].rooms(), ["12345678", "b"]);
    }

    #[test]
    fn emptied_room_sets_give_memory_back() {
        let server = WsServer::new("/shrink");
        server.limit_rooms(RoomLimits {
            per_client: 10_000,
            name_len: 16,
        });
        let (a, _) = connect(&server);
        for i in 0..5_000 {
            a.join(format!("r{i}")).unwrap();
        }
        for i in 0..5_000 {
            a.leave(&format!("r{i}"));
        }
        let state = server.read();
        assert!(state.rooms.capacity() < 1_000, "{}", state.rooms.capacity());
        assert!(state.clients[&a.id()].rooms.capacity() < 1_000);
    }

    #[test]
    fn without_an_adapter_everything_is_local() {
        let server = WsServer::new("/solo");
        let (a, mut a_rx) = connect(&server);
        a.join("r").unwrap();
        assert_eq!(server.to("r").emit("m", &1).unwrap(), 1);
        assert_eq!(frames(&mut a_rx).len(), 1);
        // A LocalServer does not keep the server alive (its clients do, until they leave).
        let weak = LocalServer::new(&server);
        server.remove(a.id());
        drop((a, server));
        assert!(
            weak.apply(&Selection::default(), &Operation::Disconnect)
                .is_none()
        );
    }
}
