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

use std::collections::VecDeque;
use std::fmt::Write as _;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use rustc_hash::FxHashMap;
use tokio::sync::Notify;

use crate::adapter::Selection;
use crate::auth::AuthenticatorRef;
use crate::client::{Client, ClientId, ClientSink, Handshake, OutboundQueue};
use crate::frame::Frame;
use crate::server::WsServer;

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
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Recovery {
    window: Duration,
    max_bytes: usize,
    max_sessions: usize,
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

/// A frame kept for clients that may come back.
struct Entry {
    seq: u64,
    at: Instant,
    selection: Selection,
    frame: Frame,
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
    },
}

struct Session {
    /// The offset the session began at: what a client that never received a frame missed
    /// is everything after it.
    start: u64,
    state: SessionState,
}

struct Log {
    next_seq: u64,
    /// The highest offset no longer kept: a client that last received an earlier one may
    /// have missed a frame that is gone.
    trimmed: u64,
    entries: VecDeque<Entry>,
    bytes: usize,
    sessions: FxHashMap<Arc<str>, Session>,
    /// The dropped sessions in the order they dropped (entries may be stale: a session that
    /// was recovered, or dropped again later, is checked against `since`).
    away: VecDeque<(Instant, Arc<str>)>,
}

/// A gateway's recovery log and sessions.
pub(crate) struct Recorder {
    config: Recovery,
    authenticator: Option<AuthenticatorRef>,
    log: Mutex<Log>,
}

/// The lock held while a frame is numbered and queued to its receivers.
pub(crate) struct Recording<'a> {
    log: MutexGuard<'a, Log>,
    config: &'a Recovery,
}

impl Recording<'_> {
    /// Numbers `frame` (sent to `selection`) and keeps it: returns the frame with its
    /// `offset`, to be queued to its receivers before this lock is released.
    pub(crate) fn record(&mut self, selection: &Selection, frame: &Frame) -> Frame {
        let log = &mut *self.log;
        let seq = log.next_seq;
        log.next_seq += 1;
        let mut offset = itoa::Buffer::new();
        let stamped = frame.with_offset(offset.format(seq));
        let now = Instant::now();
        let entry = Entry {
            seq,
            at: now,
            selection: selection.clone(),
            frame: stamped.clone(),
        };
        log.bytes += entry.size();
        log.entries.push_back(entry);
        log.trim(now, self.config);
        stamped
    }
}

impl Log {
    fn trim(&mut self, now: Instant, config: &Recovery) {
        while let Some(front) = self.entries.front() {
            let expired = now.duration_since(front.at) > config.window;
            if !expired && self.bytes <= config.max_bytes {
                break;
            }
            self.trimmed = front.seq;
            self.bytes -= front.size();
            self.entries.pop_front();
        }
        if self.entries.is_empty() && self.entries.capacity() > 1024 {
            self.entries.shrink_to_fit();
        }
    }

    /// Forgets dropped sessions whose window passed, and the oldest past the bound.
    fn expire(&mut self, now: Instant, config: &Recovery) {
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
            {
                self.sessions.remove(&pid);
            }
        }
    }

    /// The frames after `after` that selected the client.
    fn missed(&self, after: u64, id: ClientId, rooms: &[Arc<str>]) -> Vec<Frame> {
        let first = self.entries.partition_point(|e| e.seq <= after);
        self.entries
            .range(first..)
            .filter(|e| e.selects(id, rooms))
            .map(|e| e.frame.clone())
            .collect()
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
        Self {
            config,
            authenticator,
            log: Mutex::new(Log {
                next_seq: 1,
                trimmed: 0,
                entries: VecDeque::new(),
                bytes: 0,
                sessions: FxHashMap::default(),
                away: VecDeque::new(),
            }),
        }
    }

    pub(crate) fn config(&self) -> Recovery {
        self.config
    }

    fn lock(&self) -> MutexGuard<'_, Log> {
        // Nothing panics while holding the lock; recover the data if something ever did.
        self.log.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The lock to number and queue a frame under.
    pub(crate) fn recording(&self) -> Recording<'_> {
        Recording {
            log: self.lock(),
            config: &self.config,
        }
    }

    /// Opens a connection's session: the one its `pid` names when it may recover it, else a
    /// fresh one. A session still live (its old connection not yet seen to drop) is taken
    /// over: the old connection is closed and saved first.
    pub(crate) async fn open(
        &self,
        server: &WsServer,
        handshake: Handshake,
        queue_capacity: usize,
        dropped: metrics::Counter,
    ) -> Opened {
        let claim = Claim::of(&handshake).map(|c| (c.pid.to_owned(), c.offset.map(str::to_owned)));
        let claimed = claim.is_some();
        if let Some((pid, _)) = &claim {
            self.take_over(pid, &handshake).await;
        }
        let mut log = self.lock();
        log.expire(Instant::now(), &self.config);
        let (sink, queue) = ClientSink::channel(queue_capacity, dropped);
        let recovered = claim.and_then(|(pid, offset)| {
            self.recoverable(&mut log, &pid, offset.as_deref(), &handshake)
        });
        let (client, pid, start, missed) = match recovered {
            Some(Recovered {
                pid,
                start,
                old,
                rooms,
                missed,
            }) => {
                let state = old.state().take();
                let client = Client::resumed(server.clone(), old.id(), sink, handshake, state);
                server.add(client.clone());
                for room in &rooms {
                    if let Err(err) = server.join(client.id(), room.to_string()) {
                        tracing::debug!(target: "gateway::rejection", client = %client.id(), "a recovered room was refused: {err}");
                    }
                }
                (client, pid, start, Some(missed))
            }
            None => {
                let client = Client::new(server.clone(), sink, handshake);
                server.add(client.clone());
                (client, new_pid(), log.next_seq - 1, None)
            }
        };
        log.sessions.insert(
            Arc::clone(&pid),
            Session {
                start,
                state: SessionState::Live {
                    client: client.clone(),
                    taken_over: false,
                    ended: Arc::new(Notify::new()),
                },
            },
        );
        Opened {
            client,
            queue,
            pid,
            recovered: missed.is_some(),
            claimed,
            missed: missed.unwrap_or_default(),
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
        let after = match offset {
            None => Some(session.start),
            // An offset this gateway never issued is no offset of this session.
            Some(offset) => offset.parse::<u64>().ok().filter(|o| *o < log.next_seq),
        };
        let (pid, session) = log.sessions.remove_entry(pid)?;
        let SessionState::Away {
            client: old, rooms, ..
        } = session.state
        else {
            return None;
        };
        let Some(after) = after.filter(|after| *after >= log.trimmed) else {
            tracing::debug!(target: "gateway", client = %old.id(), "a session could not be recovered: frames it missed are no longer kept");
            old.state().clear();
            return None;
        };
        let missed = log.missed(after, old.id(), &rooms);
        Some(Recovered {
            pid,
            start: session.start,
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
            };
            log.away.push_back((now, Arc::from(pid)));
            log.expire(now, &self.config);
        } else {
            server.remove(client.id());
            log.sessions.remove(pid);
            client.state().clear();
        }
        drop(log);
        ended.notify_waiters();
    }
}

/// A session taken out of the log to be recovered.
struct Recovered {
    pid: Arc<str>,
    start: u64,
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
