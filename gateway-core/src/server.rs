//! [`WsServer`]: the server handle of one gateway, NestJS's `@WebSocketServer()`, with its
//! clients and rooms.

use std::borrow::Cow;
use std::fmt;
use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};

use rustc_hash::{FxHashMap, FxHashSet};
use serde::Serialize;

use crate::client::{Client, ClientId, Outbound};
use crate::error::SendError;
use crate::frame::Frame;

/// The server handle of a gateway: every connected client of that gateway, and its rooms.
///
/// Cheap to clone; usable from handlers, hooks, spawned tasks and plain axum HTTP handlers.
/// Take it as a gateway field (NestJS's `@WebSocketServer() server`), as a handler argument,
/// or from [`App::server`](crate::App::server).
///
/// A broadcast encodes its frame once and hands the same bytes to every receiver; it never
/// waits for a slow receiver (see [`SendError::QueueFull`]).
///
/// # Examples
///
/// ```
/// use gateway_core::prelude::*;
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
}

#[derive(Default)]
struct State {
    clients: FxHashMap<ClientId, Member>,
    rooms: FxHashMap<Arc<str>, FxHashSet<ClientId>>,
}

struct Member {
    client: Client,
    rooms: Vec<Arc<str>>,
}

impl WsServer {
    pub(crate) fn new(path: &'static str) -> Self {
        Self {
            inner: Arc::new(ServerInner {
                path,
                state: RwLock::default(),
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

    /// The gateway's path.
    pub fn path(&self) -> &'static str {
        self.inner.path
    }

    pub(crate) fn add(&self, client: Client) {
        let id = client.id();
        self.write().clients.insert(
            id,
            Member {
                client,
                rooms: Vec::new(),
            },
        );
    }

    pub(crate) fn remove(&self, id: ClientId) {
        let mut state = self.write();
        if let Some(member) = state.clients.remove(&id) {
            for room in member.rooms {
                state.leave_room(&room, id);
            }
        }
    }

    /// The number of connected clients.
    pub fn client_count(&self) -> usize {
        self.read().clients.len()
    }

    /// The ids of every connected client, sorted.
    pub fn client_ids(&self) -> Vec<ClientId> {
        let mut ids: Vec<_> = self.read().clients.keys().copied().collect();
        ids.sort_unstable();
        ids
    }

    /// The connected client with this id.
    pub fn client(&self, id: ClientId) -> Option<Client> {
        self.read().clients.get(&id).map(|m| m.client.clone())
    }

    /// Adds a client to a room. Nothing happens if the client is unknown or already there.
    pub fn join(&self, id: ClientId, room: impl Into<Cow<'static, str>>) {
        let room = room.into();
        let mut state = self.write();
        let State { clients, rooms } = &mut *state;
        let Some(member) = clients.get_mut(&id) else {
            return;
        };
        if member.rooms.iter().any(|r| **r == *room) {
            return;
        }
        let key = match rooms.get_key_value(&*room) {
            Some((key, _)) => Arc::clone(key),
            None => Arc::from(room.as_ref()),
        };
        rooms.entry(Arc::clone(&key)).or_default().insert(id);
        member.rooms.push(key);
    }

    /// Removes a client from a room.
    pub fn leave(&self, id: ClientId, room: &str) {
        let mut state = self.write();
        let Some(member) = state.clients.get_mut(&id) else {
            return;
        };
        let before = member.rooms.len();
        member.rooms.retain(|r| **r != *room);
        if member.rooms.len() != before {
            state.leave_room(room, id);
        }
    }

    /// The rooms a client is in, sorted.
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

    /// The clients in a room, sorted.
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

    /// The rooms that have at least one member, sorted.
    pub fn rooms(&self) -> Vec<String> {
        let mut rooms: Vec<String> = self.read().rooms.keys().map(|r| r.to_string()).collect();
        rooms.sort_unstable();
        rooms
    }

    /// Closes a client's connection with code 1000. Returns whether the client was connected.
    pub fn disconnect(&self, id: ClientId) -> bool {
        self.client(id).map(|c| c.disconnect()).is_some()
    }

    /// Every client of the gateway, to narrow with [`Broadcast::to`] and
    /// [`Broadcast::except`].
    pub fn broadcast(&self) -> Broadcast {
        Broadcast {
            server: self.clone(),
            rooms: Vec::new(),
            except_clients: Vec::new(),
            except_rooms: Vec::new(),
        }
    }

    /// The members of `room`; chain `.to(...)` for more rooms, `.except(...)` to leave some out.
    pub fn to(&self, room: impl Into<Cow<'static, str>>) -> Broadcast {
        self.broadcast().to(room)
    }

    /// Sends `{"event": event, "data": data}` to every client of the gateway. Returns how
    /// many clients it was queued for.
    ///
    /// # Errors
    ///
    /// [`SendError::Serialize`] when the data fails to serialize.
    pub fn emit<T: Serialize + ?Sized>(&self, event: &str, data: &T) -> Result<usize, SendError> {
        self.broadcast().emit(event, data)
    }
}

impl State {
    fn leave_room(&mut self, room: &str, id: ClientId) {
        if let Some(members) = self.rooms.get_mut(room) {
            members.remove(&id);
            if members.is_empty() {
                self.rooms.remove(room);
            }
        }
    }
}

impl fmt::Debug for WsServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WsServer")
            .field("path", &self.inner.path)
            .field("clients", &self.client_count())
            .finish()
    }
}

/// A selection of a gateway's clients to send one frame to, Socket.IO's broadcast operator.
///
/// # Examples
///
/// ```
/// # fn demo(server: gateway_core::WsServer, sender: gateway_core::Client) {
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
    rooms: Vec<Cow<'static, str>>,
    except_clients: Vec<ClientId>,
    except_rooms: Vec<Cow<'static, str>>,
}

impl Broadcast {
    /// Narrows the selection to members of `room` (several calls: members of any of them).
    pub fn to(mut self, room: impl Into<Cow<'static, str>>) -> Self {
        self.rooms.push(room.into());
        self
    }

    /// Leaves one client out.
    pub fn except(mut self, id: ClientId) -> Self {
        self.except_clients.push(id);
        self
    }

    /// Leaves out every member of `room`.
    pub fn except_room(mut self, room: impl Into<Cow<'static, str>>) -> Self {
        self.except_rooms.push(room.into());
        self
    }

    /// Sends `{"event": event, "data": data}` to the selected clients, encoded once.
    /// Returns how many clients it was queued for.
    ///
    /// # Errors
    ///
    /// [`SendError::Serialize`] when the data fails to serialize.
    pub fn emit<T: Serialize + ?Sized>(&self, event: &str, data: &T) -> Result<usize, SendError> {
        Ok(self.send_frame(&Frame::event(event, data)?))
    }

    /// Sends an encoded frame to the selected clients. Returns how many clients it was
    /// queued for; a client whose queue is full is skipped and disconnected.
    pub fn send_frame(&self, frame: &Frame) -> usize {
        let state = self.server.read();
        let excluded = |id: &ClientId| {
            self.except_clients.contains(id)
                || self.except_rooms.iter().any(|room| {
                    state
                        .rooms
                        .get(&**room)
                        .is_some_and(|members| members.contains(id))
                })
        };
        let mut sent = 0;
        let mut deliver = |member: &Member| {
            if !excluded(&member.client.id())
                && member
                    .client
                    .sink()
                    .send(Outbound::Frame(frame.clone()))
                    .is_ok()
            {
                sent += 1;
            }
        };
        match self.rooms.as_slice() {
            [] => state.clients.values().for_each(&mut deliver),
            [room] => {
                for id in state.rooms.get(&**room).into_iter().flatten() {
                    if let Some(member) = state.clients.get(id) {
                        deliver(member);
                    }
                }
            }
            rooms => {
                let mut seen = FxHashSet::default();
                for room in rooms {
                    for id in state.rooms.get(&**room).into_iter().flatten() {
                        if seen.insert(*id) {
                            if let Some(member) = state.clients.get(id) {
                                deliver(member);
                            }
                        }
                    }
                }
            }
        }
        sent
    }
}
