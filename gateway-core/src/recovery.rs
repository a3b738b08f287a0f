//! Connection state recovery: a client that dropped comes back within a window with its
//! client id, rooms, identity and per-connection state, and receives every frame it missed,
//! in order, once (Socket.IO's `connectionStateRecovery`, Centrifugo's history and offsets).
//!
//! One [`Recorder`] per gateway keeps, in memory, every frame delivered through an emit, a
//! room or a broadcast for the window (bounded in bytes too), each with its offset and the
//! selection it was sent to, and every session: live ones by their private id, and those of
//! clients that dropped until the window passes. A client that comes back presents its
//! session's private id and the last offset it received; the frames after it that its
//! selection matched (its rooms when it dropped, its id) are written before any live
//! traffic. Frames are numbered and queued to their receivers under one lock, so that the
//! order of the offsets is the order every client receives them in.
//!
//! Across instances (with an adapter that carries sessions, as the Redis adapter does), a
//! client that comes back to another instance gets its session from the one that held it:
//! see [`crate::adapter::SessionClaim`] for how the frames are cut between the two. Frames
//! handed over are recorded again by the new instance, numbered after the last frame it had
//! recorded (`N.1`, `N.2`, ... before `N+1`), so that its offsets keep their order.

use std::collections::VecDeque;
use std::fmt::Write as _;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use rustc_hash::FxHashMap;
use tokio::sync::Notify;

use crate::adapter::{AdapterRef, Selection, SessionAnswer, SessionClaim, SessionOffer, Stamp};
use crate::auth::{AuthenticatorRef, HandshakeRequest};
use crate::client::{Client, ClientId, ClientSink, Handshake, OutboundQueue};
use crate::frame::Frame;
use crate::server::WsServer;
use crate::state::ClientState;

/// Connection state recovery for a gateway: how long a client that dropped may come back
/// and find everything as it left it, and the memory the missed frames may take.
///
/// Switch it on with [`GatewayApp::recover_all`](crate::GatewayApp::recover_all) or, for one
/// gateway, [`GatewayApp::recover`](crate::GatewayApp::recover). The README's wire protocol
/// section says what the client sees: a `session` frame first, an `offset` on every frame
/// delivered through an emit, a room or a broadcast, and `?pid=P&offset=O` to come back.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use ws_gateway_core::prelude::*;
/// use ws_gateway_core::Recovery;
///
/// #[websocket_gateway(path = "/doc-recovery")]
/// struct Chat;
/// #[websocket_gateway]
/// impl Chat {}
///
/// let recovery = Recovery::new(Duration::from_secs(120)).max_bytes(16 << 20);
/// assert_eq!(recovery.window(), Duration::from_secs(120));
/// let app = GatewayApp::new().recover_all(recovery).gateway::<Chat>().build().unwrap();
/// # let _ = app;
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Recovery {
    window: Duration,
    max_bytes: usize,
    max_sessions: usize,
    /// The per-connection state that travels to another instance with a session.
    carried: Vec<Carried>,
}

/// A type of per-connection state that travels with a session to another instance, as JSON.
#[derive(Clone, Copy)]
struct Carried {
    name: &'static str,
    encode: fn(&ClientState) -> Option<Box<serde_json::value::RawValue>>,
    decode: fn(&ClientState, &str) -> bool,
}

impl PartialEq for Carried {
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name
    }
}

impl Eq for Carried {}

impl std::fmt::Debug for Carried {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name)
    }
}

impl Recovery {
    /// Recovery within `window` of a drop (Socket.IO's `maxDisconnectionDuration`), keeping
    /// at most 32 MiB of frames and 10,000 dropped sessions per gateway.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use ws_gateway_core::Recovery;
    ///
    /// let recovery = Recovery::new(Duration::from_secs(120));
    /// assert_eq!(recovery.window(), Duration::from_secs(120));
    /// ```
    pub fn new(window: Duration) -> Self {
        Self {
            window,
            max_bytes: 32 << 20,
            max_sessions: 10_000,
            carried: Vec::new(),
        }
    }

    /// How long after a drop the client may come back.
    ///
    /// # Examples
    ///
    /// ```
    /// # use std::time::Duration;
    /// # use ws_gateway_core::Recovery;
    /// assert_eq!(Recovery::new(Duration::from_secs(5)).window(), Duration::from_secs(5));
    /// ```
    pub fn window(&self) -> Duration {
        self.window
    }

    /// At most this many bytes of frames are kept for clients that may come back, the
    /// oldest dropped first. A client that missed a frame no longer kept gets a fresh
    /// session (`recovered: false`): nothing is replayed with a hole in it.
    ///
    /// # Examples
    ///
    /// ```
    /// # use std::time::Duration;
    /// # use ws_gateway_core::Recovery;
    /// let recovery = Recovery::new(Duration::from_secs(5)).max_bytes(1 << 20);
    /// assert_ne!(recovery, Recovery::new(Duration::from_secs(5)));
    /// ```
    #[must_use]
    pub fn max_bytes(mut self, bytes: usize) -> Self {
        self.max_bytes = bytes;
        self
    }

    /// At most this many sessions of dropped clients are kept, the oldest forgotten first.
    ///
    /// # Examples
    ///
    /// ```
    /// # use std::time::Duration;
    /// # use ws_gateway_core::Recovery;
    /// let recovery = Recovery::new(Duration::from_secs(5)).max_sessions(100);
    /// assert_ne!(recovery, Recovery::new(Duration::from_secs(5)));
    /// ```
    #[must_use]
    pub fn max_sessions(mut self, sessions: usize) -> Self {
        self.max_sessions = sessions;
        self
    }

    /// The per-connection state of type `T` ([`ClientState`]) travels with a session that
    /// moves to another instance (with an adapter that carries sessions, as the Redis
    /// adapter does), as JSON. Within an instance every value stays with its session
    /// whatever its type; across instances only the types named here do, so name every type
    /// your handlers keep. All instances must name the same types.
    ///
    /// # Examples
    ///
    /// ```
    /// # use std::time::Duration;
    /// # use ws_gateway_core::Recovery;
    /// #[derive(Clone, serde::Serialize, serde::Deserialize)]
    /// struct Nickname(String);
    ///
    /// let recovery = Recovery::new(Duration::from_secs(120)).carry::<Nickname>();
    /// assert_ne!(recovery, Recovery::new(Duration::from_secs(120)));
    /// ```
    #[must_use]
    pub fn carry<T>(mut self) -> Self
    where
        T: serde::Serialize + serde::de::DeserializeOwned + Clone + Send + Sync + 'static,
    {
        let carried = Carried {
            name: std::any::type_name::<T>(),
            encode: |state| {
                let value = state.get::<T>()?;
                serde_json::value::to_raw_value(&value).ok()
            },
            decode: |state, json| match serde_json::from_str::<T>(json) {
                Ok(value) => {
                    state.insert(value);
                    true
                }
                Err(_) => false,
            },
        };
        if !self.carried.contains(&carried) {
            self.carried.push(carried);
        }
        self
    }
}

/// How a connection's session began.
pub(crate) struct Opened {
    pub(crate) client: Client,
    pub(crate) queue: OutboundQueue,
    pub(crate) pid: Arc<str>,
    pub(crate) recovered: bool,
    /// Whether the connection asked for a session (`?pid=`), recovered or not.
    pub(crate) claimed: bool,
    /// The frames the client missed, in order: written before anything queued.
    pub(crate) missed: Vec<Frame>,
}

/// A frame's offset: its number, and for a frame handed over by another instance its place
/// after that number (`N.k`, `k >= 1`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord)]
struct Offset {
    seq: u64,
    sub: u32,
}

impl Offset {
    fn at(seq: u64) -> Self {
        Self { seq, sub: 0 }
    }

    /// Reads an offset this log issued: `<tag>-N` or `<tag>-N.k`.
    fn parse(text: &str, tag: &str) -> Option<Self> {
        let text = text.strip_prefix(tag)?.strip_prefix('-')?;
        match text.split_once('.') {
            None => Some(Self::at(text.parse().ok()?)),
            Some((seq, sub)) => Some(Self {
                seq: seq.parse().ok()?,
                sub: sub.parse().ok().filter(|sub| *sub > 0)?,
            }),
        }
    }
}

impl Offset {
    /// The offset as the client sees it: the log's tag (so that an offset another instance
    /// issued is never taken for one of this log's), then `N` or `N.k`.
    fn text(&self, tag: &str) -> String {
        let mut text = String::with_capacity(tag.len() + 24);
        text.push_str(tag);
        text.push('-');
        text.push_str(itoa::Buffer::new().format(self.seq));
        if self.sub > 0 {
            text.push('.');
            text.push_str(itoa::Buffer::new().format(self.sub));
        }
        text
    }
}

/// A frame kept for clients that may come back.
struct Entry {
    offset: Offset,
    at: Instant,
    selection: Selection,
    frame: Frame,
    /// Where the frame stands among its origin's, when other instances received it: a
    /// frame from another instance, or one of ours handed to the adapter.
    stamp: Option<Stamp>,
}

impl Entry {
    fn size(&self) -> usize {
        std::mem::size_of::<Self>()
            + self.frame.as_bytes().len()
            + self
                .selection
                .rooms
                .iter()
                .map(|r| r.len() + 24)
                .sum::<usize>()
            + self
                .selection
                .except_rooms
                .iter()
                .map(|r| r.len() + 24)
                .sum::<usize>()
            + 8 * (self.selection.clients.len() + self.selection.except_clients.len())
    }

    /// Whether a client with this id in these rooms was selected.
    fn selects(&self, id: ClientId, rooms: &[Arc<str>]) -> bool {
        let s = &self.selection;
        let in_any = |names: &[std::borrow::Cow<'static, str>]| {
            names.iter().any(|n| rooms.iter().any(|r| **r == **n))
        };
        let chosen = s.is_everyone() || s.clients.contains(&id) || in_any(&s.rooms);
        chosen && !s.except_clients.contains(&id) && !in_any(&s.except_rooms)
    }
}

enum SessionState {
    /// Connected: `client` is the live connection.
    Live {
        client: Client,
        /// Set when a new connection claims the session: the old one, closing, is saved
        /// whatever the reason it closes.
        taken_over: bool,
        /// Notified once the session is saved (or forgotten) at the old connection's end.
        ended: Arc<Notify>,
    },
    /// Dropped at `since`, recoverable until the window passes.
    Away {
        client: Client,
        rooms: Vec<Arc<str>>,
        since: Instant,
        /// Offered to another instance, which has until then to take it with this token.
        /// A later claim by the owner takes the reservation over (the client tried again).
        reserved: Option<(Instant, u64)>,
    },
}

struct Session {
    /// The offset the session began at: what a client that never received a frame missed
    /// is everything after it.
    start: Offset,
    /// The offset the client presented when its session moved here from another instance:
    /// presented again, it means the client received nothing here yet (from `start` on).
    moved_from: Option<Arc<str>>,
    state: SessionState,
}

impl Session {
    /// A session whose client is connected, beginning after `start`.
    fn live(start: Offset, client: &Client) -> Self {
        Self {
            start,
            moved_from: None,
            state: SessionState::Live {
                client: client.clone(),
                taken_over: false,
                ended: Arc::new(Notify::new()),
            },
        }
    }
}

struct Log {
    /// What begins every offset this log issues.
    tag: Arc<str>,
    next_seq: u64,
    /// The highest offset no longer kept: a client that last received an earlier one may
    /// have missed a frame that is gone.
    trimmed: Offset,
    entries: VecDeque<Entry>,
    bytes: usize,
    sessions: FxHashMap<Arc<str>, Session>,
    /// The dropped sessions in the order they dropped (entries may be stale: a session that
    /// was recovered, or dropped again later, is checked against `since`).
    away: VecDeque<(Instant, Arc<str>)>,
    /// The highest stamp recorded from each other instance.
    seen: FxHashMap<u64, u64>,
    /// The number of our last frame handed to the adapter.
    published: u64,
    /// Hand-overs waiting for a frame of another instance: its stamp, and whom to wake
    /// once a frame that far is recorded.
    waiting: Vec<(Stamp, Arc<Notify>)>,
}

/// A gateway's recovery log and sessions.
pub(crate) struct Recorder {
    config: Recovery,
    authenticator: Option<AuthenticatorRef>,
    /// This gateway's name in other instances' stamps.
    origin: u64,
    started: Instant,
    log: Mutex<Log>,
    /// The gateway, to release the rooms a dropped session held when it ends.
    server: std::sync::OnceLock<crate::server::WeakServer>,
    /// Connections claiming a session, one at a time for each `pid` (a client that retries
    /// while its first attempt still waits for another instance waits for it).
    claims: Mutex<FxHashMap<Arc<str>, Arc<tokio::sync::Mutex<()>>>>,
    /// Numbers the reservations of sessions offered to other instances.
    next_token: std::sync::atomic::AtomicU64,
}

/// A connection's turn to claim a session (see `Recorder::claims`).
struct ClaimTurn<'a> {
    recorder: &'a Recorder,
    pid: Arc<str>,
    _turn: tokio::sync::OwnedMutexGuard<()>,
}

impl Drop for ClaimTurn<'_> {
    fn drop(&mut self) {
        let mut claims = self
            .recorder
            .claims
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        // Only the map and this turn hold it: nobody waits, forget it.
        if claims
            .get(&self.pid)
            .is_some_and(|m| Arc::strong_count(m) <= 2)
        {
            claims.remove(&self.pid);
        }
    }
}

/// How long an offered session waits for its claimer to take it, and a hand-over for the
/// frames the claimer had received.
const RESERVATION: Duration = Duration::from_secs(30);
const HAND_OVER_WAIT: Duration = Duration::from_secs(20);

/// The lock held while a frame is numbered and queued to its receivers.
pub(crate) struct Recording<'a> {
    log: MutexGuard<'a, Log>,
    recorder: &'a Recorder,
}

impl Recording<'_> {
    /// Numbers `frame` (sent to `selection`) and keeps it: returns the frame with its
    /// `offset`, to be queued to its receivers before this lock is released. `remote` is
    /// `Some` for a frame from another instance, with its stamp if it came with one.
    pub(crate) fn record(
        &mut self,
        selection: &Selection,
        frame: &Frame,
        remote: Option<Option<Stamp>>,
    ) -> Frame {
        let log = &mut *self.log;
        let offset = Offset::at(log.next_seq);
        log.next_seq += 1;
        let stamped = frame.with_offset(&offset.text(&log.tag));
        let stamp = remote.flatten();
        if let Some(stamp) = stamp {
            let seen = log.seen.entry(stamp.origin).or_insert(0);
            *seen = (*seen).max(stamp.seq);
            if !log.waiting.is_empty() {
                log.waiting.retain(|(wanted, waiter)| {
                    let reached = wanted.origin == stamp.origin && wanted.seq <= stamp.seq;
                    if reached {
                        waiter.notify_one();
                    }
                    !reached
                });
            }
        }
        let now = Instant::now();
        log.push(
            Entry {
                offset,
                at: now,
                selection: selection.clone(),
                frame: stamped.clone(),
                stamp,
            },
            &self.recorder.config,
        );
        stamped
    }

    /// The frame just [recorded](Self::record), of ours, is handed to the adapter: its
    /// stamp, for the other instances.
    pub(crate) fn published(&mut self) -> Stamp {
        let log = &mut *self.log;
        let seq = log.next_seq - 1;
        let stamp = Stamp::new(self.recorder.origin, seq);
        log.published = seq;
        if let Some(entry) = log.entries.back_mut()
            && entry.offset == Offset::at(seq)
        {
            entry.stamp = Some(stamp);
        }
        stamp
    }
}

impl Log {
    fn push(&mut self, entry: Entry, config: &Recovery) {
        let now = entry.at;
        self.bytes += entry.size();
        self.entries.push_back(entry);
        self.trim(now, config);
    }

    fn trim(&mut self, now: Instant, config: &Recovery) {
        while let Some(front) = self.entries.front() {
            let expired = now.duration_since(front.at) > config.window;
            if !expired && self.bytes <= config.max_bytes {
                break;
            }
            self.trimmed = front.offset;
            self.bytes -= front.size();
            self.entries.pop_front();
        }
        if self.entries.is_empty() && self.entries.capacity() > 1024 {
            self.entries.shrink_to_fit();
        }
    }

    /// Forgets dropped sessions whose window passed, and the oldest past the bound; returns
    /// the rooms they held.
    fn expire(&mut self, now: Instant, config: &Recovery) -> Vec<Arc<str>> {
        let mut released = Vec::new();
        while let Some((since, pid)) = self.away.front() {
            let over = self.away.len() > config.max_sessions;
            if !over && now.duration_since(*since) <= config.window {
                break;
            }
            let (since, pid) = (*since, Arc::clone(pid));
            self.away.pop_front();
            if let Some(Session {
                state: SessionState::Away { since: at, .. },
                ..
            }) = self.sessions.get(&pid)
                && *at == since
                && let Some(Session {
                    state: SessionState::Away { rooms, .. },
                    ..
                }) = self.sessions.remove(&pid)
            {
                released.extend(rooms);
            }
        }
        released
    }

    /// The entries after `after` that selected the client.
    fn missed(
        &self,
        after: Offset,
        id: ClientId,
        rooms: &[Arc<str>],
    ) -> impl Iterator<Item = &Entry> {
        let first = self.entries.partition_point(|e| e.offset <= after);
        self.entries
            .range(first..)
            .filter(move |e| e.selects(id, rooms))
    }

    /// Where a session's client last was: `offset` as the client sent it (`None`: it
    /// received nothing), if this log issued it and still holds what follows it.
    fn resume_point(&self, session: &Session, offset: Option<&str>) -> Option<Offset> {
        let after = match offset {
            None => session.start,
            // What the client had when its session moved here: it received nothing since.
            Some(offset) if session.moved_from.as_deref() == Some(offset) => session.start,
            // An offset this gateway never issued is no offset of this session.
            Some(offset) => Offset::parse(offset, &self.tag).filter(|o| o.seq < self.next_seq)?,
        };
        (after >= self.trimmed).then_some(after)
    }

    /// What this instance received from every instance: other ones' highest stamps, and
    /// its own last frame handed to the adapter.
    fn seen(&self, origin: u64) -> Vec<Stamp> {
        let mut seen: Vec<Stamp> = self
            .seen
            .iter()
            .map(|(&origin, &seq)| Stamp::new(origin, seq))
            .collect();
        if self.published > 0 {
            seen.push(Stamp::new(origin, self.published));
        }
        seen
    }

    /// The first of `stamps` (of other instances than `own`) not recorded yet.
    fn unmet<'s>(&self, stamps: &'s [Stamp], own: u64) -> Option<&'s Stamp> {
        stamps.iter().find(|stamp| {
            stamp.origin != own && self.seen.get(&stamp.origin).is_none_or(|s| *s < stamp.seq)
        })
    }
}

/// What a connection asked to recover.
pub(crate) struct Claim<'a> {
    pub(crate) pid: &'a str,
    /// The last offset received; `None` when the client received none.
    pub(crate) offset: Option<&'a str>,
}

impl Claim<'_> {
    /// The `pid` and `offset` query parameters of a handshake.
    pub(crate) fn of(handshake: &Handshake) -> Option<Claim<'_>> {
        let query = handshake.uri.query()?;
        let mut pid = None;
        let mut offset = None;
        for pair in query.split('&') {
            match pair.split_once('=') {
                Some(("pid", value)) => pid = Some(value),
                Some(("offset", value)) => offset = Some(value),
                _ => {}
            }
        }
        pid.filter(|p| !p.is_empty()).map(|pid| Claim {
            pid,
            offset: offset.filter(|o| !o.is_empty()),
        })
    }
}

impl Recorder {
    pub(crate) fn new(config: Recovery, authenticator: Option<AuthenticatorRef>) -> Self {
        let mut origin = [0u8; 8];
        if getrandom::fill(&mut origin).is_err() {
            origin = u64::from_str_radix(&new_pid()[..16], 16)
                .unwrap_or_default()
                .to_be_bytes();
        }
        Self {
            config,
            authenticator,
            origin: u64::from_be_bytes(origin),
            started: Instant::now(),
            log: Mutex::new(Log {
                tag: Arc::from(format!("{:08x}", u64::from_be_bytes(origin) >> 32)),
                next_seq: 1,
                trimmed: Offset::default(),
                entries: VecDeque::new(),
                bytes: 0,
                sessions: FxHashMap::default(),
                away: VecDeque::new(),
                seen: FxHashMap::default(),
                published: 0,
                waiting: Vec::new(),
            }),
            server: std::sync::OnceLock::new(),
            claims: Mutex::default(),
            next_token: std::sync::atomic::AtomicU64::new(1),
        }
    }

    /// Waits for the turn of a connection claiming session `pid`.
    async fn claim_turn(&self, pid: &str) -> ClaimTurn<'_> {
        let (pid, turn) = {
            let mut claims = self.claims.lock().unwrap_or_else(PoisonError::into_inner);
            match claims.get_key_value(pid) {
                Some((pid, turn)) => (Arc::clone(pid), Arc::clone(turn)),
                None => {
                    let (pid, turn): (Arc<str>, _) = (Arc::from(pid), Arc::default());
                    claims.insert(Arc::clone(&pid), Arc::clone(&turn));
                    (pid, turn)
                }
            }
        };
        ClaimTurn {
            recorder: self,
            pid,
            _turn: turn.lock_owned().await,
        }
    }

    pub(crate) fn attach(&self, server: crate::server::WeakServer) {
        let _ = self.server.set(server);
    }

    /// The rooms of dropped sessions that ended are no longer held for them. Called with
    /// the log locked (the recorder's lock comes before the server's).
    fn release(&self, rooms: &[Arc<str>]) {
        if rooms.is_empty() {
            return;
        }
        if let Some(server) = self
            .server
            .get()
            .and_then(crate::server::WeakServer::upgrade)
        {
            server.release_rooms(rooms);
        }
    }

    /// [`Log::expire`], releasing the rooms of the sessions it forgets.
    fn expire(&self, log: &mut Log, now: Instant) {
        let released = log.expire(now, &self.config);
        self.release(&released);
    }

    pub(crate) fn config(&self) -> Recovery {
        self.config.clone()
    }

    fn lock(&self) -> MutexGuard<'_, Log> {
        // Nothing panics while holding the lock; recover the data if something ever did.
        self.log.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The lock to number and queue a frame under.
    pub(crate) fn recording(&self) -> Recording<'_> {
        Recording {
            log: self.lock(),
            recorder: self,
        }
    }

    /// Opens a connection's session: the one its `pid` names when it may recover it (here,
    /// or handed over by the instance that holds it), else a fresh one. A session still
    /// live (its old connection not yet seen to drop) is taken over: the old connection is
    /// closed and saved first.
    pub(crate) async fn open(
        &self,
        server: &WsServer,
        handshake: Handshake,
        queue_capacity: usize,
        dropped: metrics::Counter,
    ) -> Result<Opened, crate::adapter::AdapterError> {
        let claim = Claim::of(&handshake).map(|c| (c.pid.to_owned(), c.offset.map(str::to_owned)));
        let claimed = claim.is_some();
        let _turn = match &claim {
            Some((pid, _)) => Some(self.claim_turn(pid).await),
            None => None,
        };
        if let Some((pid, _)) = &claim {
            self.take_over(pid, &handshake).await;
            // Its old connection did not end in time: not a fresh session (that would lose
            // this one), the client tries again.
            let still_live = matches!(
                self.lock().sessions.get(pid.as_str()).map(|s| &s.state),
                Some(SessionState::Live { client, .. }) if self.same_identity(client, &handshake)
            );
            if still_live {
                return Err(crate::adapter::AdapterError::Unavailable(
                    "the session's old connection has not ended yet".into(),
                ));
            }
        }
        let elsewhere = claim
            .as_ref()
            .is_some_and(|(pid, _)| !self.lock().sessions.contains_key(pid.as_str()));
        let mut handshake = handshake;
        if let (true, Some((pid, offset)), Some(adapter)) = (elsewhere, &claim, server.adapter()) {
            match self
                .open_handed_over(
                    server,
                    adapter,
                    handshake,
                    pid,
                    offset.as_deref(),
                    queue_capacity,
                    dropped.clone(),
                )
                .await
            {
                Ok(opened) => return Ok(opened),
                Err(Unopened::Fresh(back)) => handshake = *back,
                Err(Unopened::Unavailable(err)) => return Err(err),
            }
        }
        let mut log = self.lock();
        self.expire(&mut log, Instant::now());
        let (sink, queue) = ClientSink::channel(queue_capacity, dropped);
        let recovered = claim.and_then(|(pid, offset)| {
            self.recoverable(&mut log, &pid, offset.as_deref(), &handshake)
        });
        let mut moved_from = None;
        let (client, pid, start, missed) = match recovered {
            Some(Recovered {
                pid,
                start,
                moved_from: moved,
                old,
                rooms,
                missed,
            }) => {
                moved_from = moved;
                let state = old.state().take();
                let client = Client::resumed(server.clone(), old.id(), sink, handshake, state);
                server.add(client.clone());
                join_all(server, &client, rooms.iter().map(|r| r.to_string()));
                server.release_rooms(&rooms);
                (client, pid, start, Some(missed))
            }
            None => {
                let client = Client::new(server.clone(), sink, handshake);
                server.add(client.clone());
                (client, new_pid(), Offset::at(log.next_seq - 1), None)
            }
        };
        let mut session = Session::live(start, &client);
        session.moved_from = moved_from;
        log.sessions.insert(Arc::clone(&pid), session);
        Ok(Opened {
            client,
            queue,
            pid,
            recovered: missed.is_some(),
            claimed,
            missed: missed.unwrap_or_default(),
        })
    }

    /// Recovers a session another instance holds: claims it there, takes the client in
    /// (from now on it receives its live traffic here), then takes the frames it missed
    /// until then. The handshake back when no instance hands it over.
    #[allow(clippy::too_many_arguments)]
    async fn open_handed_over(
        &self,
        server: &WsServer,
        adapter: &AdapterRef,
        handshake: Handshake,
        pid: &str,
        offset: Option<&str>,
        queue_capacity: usize,
        dropped: metrics::Counter,
    ) -> Result<Opened, Unopened> {
        let claim = SessionClaim::of(&handshake, pid, offset, self.started.elapsed());
        let offer = match adapter.claim_session(server.path(), &claim).await {
            Ok(Some(offer)) => offer,
            Ok(None) => return Err(Unopened::Fresh(Box::new(handshake))),
            Err(err) => {
                tracing::debug!(target: "gateway", "a session could not be claimed from the other instances: {err}");
                return Err(Unopened::Unavailable(err));
            }
        };
        // Frames the client received from the holder may not have reached this instance
        // yet: taken in before they do, it would get them again, live.
        if !self.received(&offer.received).await {
            tracing::debug!(target: "gateway", client = %offer.client, "this instance did not receive in time what the instance holding a session had");
            return Err(Unopened::Unavailable(
                crate::adapter::AdapterError::Unavailable(
                    "this instance lags behind the one holding the session".into(),
                ),
            ));
        }
        let (sink, queue) = ClientSink::channel(queue_capacity, dropped);
        let pid: Arc<str> = Arc::from(pid);
        let (client, seen, start) = {
            let mut log = self.lock();
            let state = ClientState::default();
            for (name, json) in &offer.state {
                let carried = self.config.carried.iter().find(|c| c.name == name);
                if !carried.is_some_and(|c| (c.decode)(&state, json.get())) {
                    tracing::debug!(target: "gateway", state = %name, "per-connection state handed over was not taken: `Recovery::carry` does not name it, or it did not deserialize");
                }
            }
            let client = Client::resumed(server.clone(), offer.client, sink, handshake, state);
            server.add(client.clone());
            join_all(server, &client, offer.rooms.iter().cloned());
            let start = Offset::at(log.next_seq - 1);
            let mut session = Session::live(start, &client);
            session.moved_from = offset.map(Arc::from);
            log.sessions.insert(Arc::clone(&pid), session);
            (client, log.seen(self.origin), start)
        };
        let frames = adapter
            .take_session(server.path(), &offer, &claim, &seen)
            .await;
        let mut log = self.lock();
        let Some(frames) = frames else {
            // The holder did not answer in time: it may still hold the session (it keeps it
            // reserved a while, then offers it again), so the client tries again.
            tracing::debug!(target: "gateway", client = %client.id(), "the instance holding a session did not hand it over in time");
            log.sessions.remove(&pid);
            drop(log);
            server.remove(client.id());
            return Err(Unopened::Unavailable(
                crate::adapter::AdapterError::Unavailable(
                    "the instance holding the session did not hand it over in time".into(),
                ),
            ));
        };
        // Recorded again here, numbered after the last frame recorded before the client
        // came in and before those recorded since.
        let at = log.entries.partition_point(|e| e.offset.seq <= start.seq);
        // After the frames of clients handed over at the same number before: offsets stay
        // unique and in order (the log is searched by them).
        let taken = match at.checked_sub(1).and_then(|i| log.entries.get(i)) {
            Some(entry) if entry.offset.seq == start.seq => entry.offset.sub,
            _ => 0,
        };
        let selection = Selection {
            clients: vec![client.id()],
            ..Selection::default()
        };
        let now = Instant::now();
        let mut missed = Vec::with_capacity(frames.len());
        for (k, frame) in frames.into_iter().enumerate() {
            let offset = Offset {
                seq: start.seq,
                sub: u32::try_from(k + 1).map_or(u32::MAX, |k| taken.saturating_add(k)),
            };
            let stamped = frame.without_offset().with_offset(&offset.text(&log.tag));
            let entry = Entry {
                offset,
                at: now,
                selection: selection.clone(),
                frame: stamped.clone(),
                stamp: None,
            };
            log.bytes += entry.size();
            log.entries.insert(at + k, entry);
            missed.push(stamped);
        }
        log.trim(now, &self.config);
        tracing::debug!(target: "gateway", client = %client.id(), missed = missed.len(), "a session was handed over by another instance");
        Ok(Opened {
            client,
            queue,
            pid,
            recovered: true,
            claimed: true,
            missed,
        })
    }

    /// The handshake a claim from another instance describes, authenticated here: `None`
    /// when it does not parse or fails authentication.
    async fn claimant(&self, claim: &SessionClaim) -> Option<Handshake> {
        let mut handshake = claim.handshake()?;
        if let Some(auth) = &self.authenticator {
            let payload = handshake
                .extensions
                .get::<crate::SocketIoAuth>()
                .map(|crate::SocketIoAuth(auth)| auth);
            let request = HandshakeRequest::new(&handshake.uri, &handshake.headers)
                .with_auth_payload(payload);
            let identity = auth.0.authenticate(&request).await.ok()?;
            identity(&mut handshake.extensions);
        }
        Some(handshake)
    }

    /// Another instance claims a session: reserves it for that claim and offers its client's
    /// id and rooms, if this gateway holds it, its client dropped (an open connection for it
    /// is closed first) and the claim authenticates as its owner.
    pub(crate) async fn offer(&self, claim: &SessionClaim) -> SessionAnswer {
        match self.offer_here(claim).await {
            Ok(Some(offer)) => SessionAnswer::Offered(offer),
            Ok(None) => SessionAnswer::NotHere,
            Err(Busy) => SessionAnswer::Busy,
        }
    }

    async fn offer_here(&self, claim: &SessionClaim) -> Result<Option<SessionOffer>, Busy> {
        if !self.lock().sessions.contains_key(claim.pid.as_str()) {
            return Ok(None);
        }
        let Some(handshake) = self.claimant(claim).await else {
            return Ok(None);
        };
        self.take_over(&claim.pid, &handshake).await;
        let mut log = self.lock();
        let now = Instant::now();
        self.expire(&mut log, now);
        let Some(session) = log.sessions.get(claim.pid.as_str()) else {
            return Ok(None);
        };
        let (client, reserved) = match &session.state {
            SessionState::Away {
                client, reserved, ..
            } => (client, reserved),
            // Still connected here (its close did not end in time), or being taken in here.
            SessionState::Live { client, .. } => {
                return if self.same_identity(client, &handshake) {
                    Err(Busy)
                } else {
                    Ok(None)
                };
            }
        };
        if !self.same_identity(client, &handshake) {
            return Ok(None);
        }
        if reserved.is_some() {
            tracing::debug!(target: "gateway", client = %client.id(), "a session offered before is offered again: the client tried again");
        }
        if log.resume_point(session, claim.offset.as_deref()).is_none() {
            tracing::debug!(target: "gateway", client = %client.id(), "a session could not be handed over: frames it missed are no longer kept");
            let forgotten = log.sessions.remove(claim.pid.as_str());
            if let Some(Session {
                state: SessionState::Away { client, rooms, .. },
                ..
            }) = forgotten
            {
                client.state().clear();
                self.release(&rooms);
            }
            return Ok(None);
        }
        let Some(Session {
            state:
                SessionState::Away {
                    client,
                    rooms,
                    reserved,
                    ..
                },
            ..
        }) = log.sessions.get_mut(claim.pid.as_str())
        else {
            return Ok(None);
        };
        let token = self
            .next_token
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        *reserved = Some((now + RESERVATION, token));
        let state = self
            .config
            .carried
            .iter()
            .filter_map(|c| Some((c.name.to_owned(), (c.encode)(client.state())?)))
            .collect();
        let offer = SessionOffer::new(client.id(), rooms.iter().map(|r| r.to_string()).collect())
            .state(state)
            .token(token);
        Ok(Some(offer.received(log.seen(self.origin))))
    }

    /// The claimer of a session this gateway offered took its client in, having received
    /// `seen` from each instance: once this one has received as much (twenty seconds at most:
    /// they are on their way, behind a backlog at worst),
    /// hands over the frames the client missed until then and forgets the session.
    pub(crate) async fn hand_over(
        &self,
        claim: &SessionClaim,
        token: u64,
        seen: &[Stamp],
    ) -> Option<Vec<Frame>> {
        if !self.received(seen).await {
            tracing::debug!(target: "gateway", "a hand-over did not receive every frame the claimer had: handing over what is here");
        }
        let mut log = self.lock();
        let now = Instant::now();
        let session = log.sessions.get(claim.pid.as_str())?;
        let SessionState::Away {
            reserved: Some((until, reserved_for)),
            ..
        } = &session.state
        else {
            return None;
        };
        // Offered to a later attempt meanwhile, or too late: that attempt takes it.
        if *until < now || *reserved_for != token {
            return None;
        }
        let after = log.resume_point(session, claim.offset.as_deref())?;
        let session = log.sessions.remove(claim.pid.as_str())?;
        let SessionState::Away { client, rooms, .. } = session.state else {
            return None;
        };
        let seen: FxHashMap<u64, u64> = seen.iter().map(|s| (s.origin, s.seq)).collect();
        // Frames of an instance the claimer never heard from that were recorded here
        // before it began recording never reached it.
        let before_claimer = now.checked_sub(claim.recording_for);
        let frames = log
            .missed(after, client.id(), &rooms)
            .filter(|entry| match entry.stamp {
                None => true,
                Some(stamp) => match seen.get(&stamp.origin) {
                    Some(last) => stamp.seq <= *last,
                    None => before_claimer.is_some_and(|t| entry.at < t),
                },
            })
            .map(|entry| entry.frame.clone())
            .collect();
        client.state().clear();
        self.release(&rooms);
        Some(frames)
    }

    /// Waits until this gateway has recorded `stamps` (the frames of other instances up to
    /// there), [`HAND_OVER_WAIT`] at most: whether it has.
    async fn received(&self, stamps: &[Stamp]) -> bool {
        let deadline = tokio::time::Instant::now() + HAND_OVER_WAIT;
        // Woken only by the frame it waits for (each frame scans the few waiting).
        let waiter = Arc::new(Notify::new());
        loop {
            {
                let mut log = self.lock();
                let Some(&unmet) = log.unmet(stamps, self.origin) else {
                    return true;
                };
                log.waiting.push((unmet, Arc::clone(&waiter)));
            }
            if tokio::time::timeout_at(deadline, waiter.notified())
                .await
                .is_err()
            {
                self.lock()
                    .waiting
                    .retain(|(_, w)| !Arc::ptr_eq(w, &waiter));
                return false;
            }
        }
    }

    /// Whether `handshake` may recover a session opened by `owner`.
    fn same_identity(&self, owner: &Client, handshake: &Handshake) -> bool {
        match &self.authenticator {
            None => true,
            Some(auth) => auth
                .0
                .same_identity(&owner.handshake().extensions, &handshake.extensions),
        }
    }

    /// Closes the live connection of the session `pid` names, if it is live and this
    /// handshake may recover it, and waits (a few seconds at most) until it is saved.
    async fn take_over(&self, pid: &str, handshake: &Handshake) {
        let ended = {
            let mut log = self.lock();
            let Some(session) = log.sessions.get_mut(pid) else {
                return;
            };
            let SessionState::Live {
                client,
                taken_over,
                ended,
            } = &mut session.state
            else {
                return;
            };
            if !self.same_identity(client, handshake) {
                return;
            }
            *taken_over = true;
            client.close(1001, "session resumed by another connection");
            Arc::clone(ended)
        };
        let notified = ended.notified();
        tokio::pin!(notified);
        // Registered before the state is read again, so that a save in between is not missed.
        notified.as_mut().enable();
        let still_live = matches!(
            self.lock().sessions.get(pid).map(|s| &s.state),
            Some(SessionState::Live { .. })
        );
        if still_live {
            let _ = tokio::time::timeout(Duration::from_secs(5), notified).await;
        }
    }

    /// Takes the session `pid` names out of the log, with the frames its client missed, if
    /// this handshake may recover it and nothing it missed is gone.
    fn recoverable(
        &self,
        log: &mut Log,
        pid: &str,
        offset: Option<&str>,
        handshake: &Handshake,
    ) -> Option<Recovered> {
        let session = log.sessions.get(pid)?;
        let SessionState::Away { client: old, .. } = &session.state else {
            return None;
        };
        // A stranger's attempt reveals nothing and spoils nothing: the session stays.
        if !self.same_identity(old, handshake) {
            tracing::debug!(target: "gateway::rejection", "a session was claimed by another identity");
            return None;
        }
        let after = log.resume_point(session, offset);
        let (pid, session) = log.sessions.remove_entry(pid)?;
        let SessionState::Away {
            client: old, rooms, ..
        } = session.state
        else {
            return None;
        };
        let Some(after) = after else {
            tracing::debug!(target: "gateway", client = %old.id(), "a session could not be recovered: frames it missed are no longer kept");
            old.state().clear();
            self.release(&rooms);
            return None;
        };
        let missed = log
            .missed(after, old.id(), &rooms)
            .map(|e| e.frame.clone())
            .collect();
        Some(Recovered {
            pid,
            start: session.start,
            moved_from: session.moved_from,
            old,
            rooms,
            missed,
        })
    }

    /// The end of a connection's session: saved for recovery when it dropped (or was taken
    /// over), forgotten when it left on purpose. The client leaves its rooms here, under the
    /// lock, so that every frame sent to them from now on is kept for it.
    pub(crate) fn end(&self, server: &WsServer, client: &Client, pid: &str, dropped: bool) {
        let mut log = self.lock();
        let now = Instant::now();
        let Some(session) = log.sessions.get_mut(pid) else {
            server.remove(client.id());
            return;
        };
        let SessionState::Live {
            taken_over, ended, ..
        } = &session.state
        else {
            server.remove(client.id());
            return;
        };
        let ended = Arc::clone(ended);
        if dropped || *taken_over {
            let rooms = server.remove_returning_rooms(client.id());
            session.state = SessionState::Away {
                client: client.clone(),
                rooms,
                since: now,
                reserved: None,
            };
            log.away.push_back((now, Arc::from(pid)));
            self.expire(&mut log, now);
        } else {
            server.remove(client.id());
            log.sessions.remove(pid);
            client.state().clear();
        }
        drop(log);
        ended.notify_waiters();
    }
}

/// A session claimed here is still connected, or being taken in: ask again shortly.
struct Busy;

/// Why a session held elsewhere was not opened.
enum Unopened {
    /// No instance handed it over: a fresh session, with this handshake.
    Fresh(Box<Handshake>),
    /// The other instances could not be asked.
    Unavailable(crate::adapter::AdapterError),
}

/// Puts a recovered client back in its rooms.
fn join_all(server: &WsServer, client: &Client, rooms: impl Iterator<Item = String>) {
    for room in rooms {
        if let Err(err) = server.join(client.id(), room) {
            tracing::debug!(target: "gateway::rejection", client = %client.id(), "a recovered room was refused: {err}");
        }
    }
}

/// A session taken out of the log to be recovered.
struct Recovered {
    pid: Arc<str>,
    start: Offset,
    moved_from: Option<Arc<str>>,
    old: Client,
    rooms: Vec<Arc<str>>,
    missed: Vec<Frame>,
}

/// A session's private id: 128 random bits, as hex.
fn new_pid() -> Arc<str> {
    let mut bytes = [0u8; 16];
    if getrandom::fill(&mut bytes).is_err() {
        // No entropy source answered: std's hasher keys are random per process, and a
        // counter keeps every id distinct.
        use std::hash::{BuildHasher, Hasher};
        static COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        for half in bytes.chunks_mut(8) {
            let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
            hasher.write_u64(n);
            half.copy_from_slice(&hasher.finish().to_le_bytes());
        }
    }
    let mut pid = String::with_capacity(32);
    for b in bytes {
        let _ = write!(pid, "{b:02x}");
    }
    Arc::from(pid)
}
