//! [`RedisAdapter`]: the [`Adapter`] that carries operations between instances over a
//! pub/sub [`Driver`]. Everything here (channel names, the wire format, ignoring our own
//! messages, order, request/response) depends on the driver trait only.

use std::borrow::Cow;
use std::collections::{HashMap, HashSet, VecDeque};
use std::fmt;
use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, RwLock, Weak};
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;

use futures_util::StreamExt;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use ws_gateway_core::Frame;
use ws_gateway_core::adapter::{
    AckReplies, Adapter, AdapterError, ClientInfo, LocalServer, Message, Operation, Selection,
    SessionAnswer, SessionClaim, SessionOffer, Stamp,
};

use crate::codec::{self, Incoming};
use crate::config::{AdapterConfig, ChannelMode, RedisConfig};
use crate::driver::{
    ChannelMessage, Driver, Inbox, RedisClusterDriver, RedisDriver, StreamId, Subscription,
};
use crate::error::Error;

/// The log target of the adapter's warnings and notices.
const TARGET: &str = "gateway::redis";

/// How many queued messages go to the driver in one call (one pipeline, for Redis).
const BATCH: usize = 256;

/// How many received messages may wait for the adapter before the driver waits too.
const INBOX_CAPACITY: usize = 4096;

/// How long appended entries are kept to be appended again after the driver reconnects: a
/// Redis that restarted lost what it took just before, which followers may not have read.
/// (Appended twice is applied once: entries carry their sender's sequence number.) Short: what
/// is appended again competes for the stream's room with the outboxes of every instance,
/// appended at the same moment, and a longer span pushed out entries not read yet (10 s at
/// 1,000 operations/s filled a 10,000-entry stream by itself).
const REPLAY_SPAN: Duration = Duration::from_secs(2);

/// The most of the stream's length (`stream_max_len`) appended again after a reconnection:
/// the rest is left to the entries not read yet.
const REPLAY_SHARE: usize = 4;

/// How many requests, waiting for the entries before them, are kept at most.
const MAX_PARKED: usize = 4096;

/// A broadcast adapter over Redis pub/sub: every emit, room operation and disconnect of a
/// gateway reaches the matching clients of every instance of the app, once.
///
/// Redis sits behind a [`Driver`]: [`connect`](Self::connect) uses the [`RedisDriver`];
/// [`with_driver`](Self::with_driver) takes another, such as a
/// [`MemoryDriver`](crate::MemoryDriver) to run several instances in one test without a
/// server. When Redis goes away, local delivery goes on, one warning is logged, what is
/// published meanwhile waits in a bounded outbox ([`RedisConfig::outbox`]), and the driver
/// reconnects with backoff, subscribes again, reads the operations stream on from where it
/// left off and resumes; then the outbox is published, in order.
///
/// Clones are the same instance (same id, same connections): give each app its own
/// [`connect`](Self::connect). The connections close when the last clone is dropped.
///
/// # Examples
///
/// ```
/// use ws_gateway_core::prelude::*;
/// use ws_gateway_redis::{RedisAdapter, RedisConfig};
///
/// #[websocket_gateway(path = "/chat")]
/// struct Chat;
///
/// #[websocket_gateway]
/// impl Chat {
///     #[subscribe("say")]
///     fn say(&self, client: Client, text: String) {
///         // Reaches the members of "lobby" on every instance.
///         client.to("lobby").emit("said", &text).ok();
///     }
/// }
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let redis = RedisAdapter::connect(
///     RedisConfig::new("redis://127.0.0.1:6379").prefix("chat").start_degraded(true),
/// )
/// .await?;
/// let app = GatewayApp::new().adapter(redis).gateway::<Chat>().build()?;
/// # let _ = app;
/// # Ok(())
/// # }
/// ```
pub struct RedisAdapter<D = RedisDriver> {
    inner: Arc<Inner<D>>,
}

impl<D> Clone for RedisAdapter<D> {
    fn clone(&self) -> Self {
        Self {
            inner: Arc::clone(&self.inner),
        }
    }
}

struct Inner<D> {
    core: Arc<Core<D>>,
    tasks: [JoinHandle<()>; 3],
}

impl<D> Drop for Inner<D> {
    fn drop(&mut self) {
        // The tasks hold the core weakly, so dropping the last handle drops the driver (and
        // its connections or subscriptions) right here, not when the tasks next wake.
        for task in &self.tasks {
            task.abort();
        }
    }
}

/// One message for the publisher task.
struct Outgoing {
    lane: Lane,
    payload: Vec<u8>,
    /// Receives how many subscribers the driver reached, or why it failed.
    reply: Option<oneshot::Sender<Result<usize, String>>>,
}

impl Outgoing {
    /// A message for a channel that wants no answer.
    fn channel(channel: String, payload: Vec<u8>) -> Self {
        Self {
            lane: Lane::Channel(channel),
            payload,
            reply: None,
        }
    }
}

/// Where a message goes.
enum Lane {
    /// The prefix's operations stream (classic mode); the publisher task numbers it.
    Entry,
    /// A channel.
    Channel(String),
    /// A channel, carrying the id of the last entry appended before it (a request, an ask).
    Barrier(String),
}

/// The channel names of one prefix.
struct Channels {
    /// `<prefix>:`, the start of every gateway's channel.
    operations: String,
    /// `<prefix>#request`: `fetch_clients` requests, to every instance.
    request: String,
    /// `<prefix>#response#<instance id>`: answers to this instance's requests.
    response: String,
    /// `<prefix>#operations`: the stream of every operation, in classic mode.
    stream: String,
}

impl Channels {
    fn new(prefix: &str, uid: u64) -> Self {
        Self {
            operations: format!("{prefix}:"),
            request: format!("{prefix}#request"),
            response: response_channel(prefix, uid),
            stream: format!("{prefix}#operations"),
        }
    }
}

impl Channels {
    /// `<prefix>:<path>`: a gateway's operations (classic mode), or those that concern no
    /// room (per-room mode: broadcasts, emits by client id).
    fn gateway(&self, path: &str) -> String {
        format!("{}{path}", self.operations)
    }

    /// `<prefix>:<path>#<room>`: a room's operations and requests, in per-room mode.
    fn room(&self, path: &str, room: &str) -> String {
        format!("{}{path}#{room}", self.operations)
    }
}

fn response_channel(prefix: &str, uid: u64) -> String {
    format!("{prefix}#response#{uid:016x}")
}

/// Where the operations of `path` for `selection` go in per-room mode, each with the part of
/// the selection it carries, so that a client matched by several parts is reached by one:
/// a room's part leaves out the members of the rooms before it, the part by client id (on
/// the gateway's channel) the members of every room. A selection of no room goes to the
/// gateway's channel whole. A room's part names no room: its channel does (see
/// `Core::room_of`), which keeps the room's name out of every payload.
fn per_room_routes<'s>(
    channels: &Channels,
    path: &str,
    selection: &'s Selection,
) -> Vec<(String, Cow<'s, Selection>)> {
    match (selection.rooms.as_slice(), selection.clients.is_empty()) {
        ([], _) => vec![(channels.gateway(path), Cow::Borrowed(selection))],
        ([room], true)
            if selection.except_clients.is_empty() && selection.except_rooms.is_empty() =>
        {
            vec![(channels.room(path, room), Cow::Owned(Selection::default()))]
        }
        (rooms, by_id) => {
            let mut routes = Vec::with_capacity(rooms.len() + 1);
            for (i, room) in rooms.iter().enumerate() {
                let mut part = Selection::default();
                part.except_clients.clone_from(&selection.except_clients);
                part.except_rooms = selection.except_rooms.clone();
                part.except_rooms.extend_from_slice(&rooms[..i]);
                routes.push((channels.room(path, room), Cow::Owned(part)));
            }
            if !by_id {
                let mut part = Selection::default();
                part.clients.clone_from(&selection.clients);
                part.except_clients.clone_from(&selection.except_clients);
                part.except_rooms = selection.except_rooms.clone();
                part.except_rooms.extend_from_slice(rooms);
                routes.push((channels.gateway(path), Cow::Owned(part)));
            }
            routes
        }
    }
}

/// A change for the subscription task (per-room mode), applied in order.
enum Change {
    /// A gateway was attached: subscribe to its channel.
    Gateway(&'static str),
    /// A room's local occupancy changed: subscribe or unsubscribe as it now is.
    Room(&'static str, String),
    /// Answer once every change before it is made.
    Synced(oneshot::Sender<()>),
}

/// What the adapter handle and its two tasks share.
struct Core<D> {
    uid: u64,
    config: AdapterConfig,
    channels: Channels,
    driver: D,
    tx: mpsc::Sender<Outgoing>,
    servers: RwLock<HashMap<&'static str, LocalServer>>,
    pending: Mutex<HashMap<u64, mpsc::UnboundedSender<Vec<ClientInfo>>>>,
    /// Our emits that want acknowledgements, by request, until their timeout.
    asks: Mutex<HashMap<u64, AckReplies>>,
    /// Our session claims and takes waiting for answers, by request.
    sessions: Mutex<HashMap<u64, mpsc::UnboundedSender<SessionReply>>>,
    next_request: AtomicU64,
    /// The outgoing queue overflowed and that was logged.
    overflowing: AtomicBool,
    /// Per-room mode: the rooms that have members here, by gateway path.
    occupied: Mutex<HashSet<(&'static str, String)>>,
    /// Per-room mode: subscription changes, for the subscription task.
    changes: mpsc::UnboundedSender<Change>,
    /// What the receiver task knows of the operations stream.
    reading: Mutex<Reading>,
    /// `gateway_redis_outbox_dropped_total` for this prefix.
    outbox_dropped: metrics::Counter,
}

/// An answer to one of our session claims or takes.
enum SessionReply {
    Offer(u64, SessionAnswer),
    Handed(Option<Vec<Frame>>),
}

/// The receiver's view of the operations stream (classic mode).
#[derive(Default)]
struct Reading {
    /// The id of the last entry applied (or where following began).
    position: StreamId,
    /// Each sender's last entry applied, by its sequence number: an entry appended again
    /// (after a reconnection) is not applied twice.
    applied: HashMap<u64, u64>,
    /// Requests and asks waiting for the entries their sender appended before them.
    parked: Vec<Parked>,
}

/// A request or an ask that arrived before the operations it must see.
struct Parked {
    after: StreamId,
    /// Its sender stops waiting then; so do we.
    deadline: Instant,
    incoming: Incoming,
    channel: String,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // Nothing panics while holding these locks; recover the data if something ever did.
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A random id for this instance.
fn new_uid() -> u64 {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    let now = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    hasher.write_u128(now);
    hasher.write_u32(std::process::id());
    hasher.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
    hasher.finish()
}

impl<D> Core<D> {
    /// Queues a message for the publisher task without waiting.
    fn enqueue(&self, message: Outgoing) -> bool {
        match self.tx.try_send(message) {
            Ok(()) => true,
            Err(mpsc::error::TrySendError::Full(_)) => {
                if !self.overflowing.swap(true, Ordering::Relaxed) {
                    tracing::warn!(
                        target: TARGET,
                        prefix = %self.config.prefix,
                        capacity = self.config.queue_capacity,
                        "the publish queue is full: dropping messages for other instances"
                    );
                }
                false
            }
            Err(mpsc::error::TrySendError::Closed(_)) => false,
        }
    }

    /// Applies what arrived on a subscription or the operations stream.
    fn handle(&self, received: &ChannelMessage) {
        let channel = received.channel.as_str();
        let mut incoming = match codec::decode(&received.payload) {
            Ok(incoming) => incoming,
            Err(err) => {
                tracing::debug!(target: TARGET, channel, "ignored a message: {err}");
                return;
            }
        };
        // Per-room mode: on a room's channel the selection is that room's members, which the
        // channel says and the payload leaves out.
        if let Some(room) = self.room_of(channel) {
            match &mut incoming {
                Incoming::Operation { selection, .. }
                | Incoming::Request { selection, .. }
                | Incoming::Ask { selection, .. } => {
                    selection.rooms = vec![Cow::Owned(room.to_owned())];
                }
                _ => {}
            }
        }
        if let Some(id) = received.id {
            self.read_entry(id, incoming);
            return;
        }
        // A request or an ask waits for the entries its sender appended before it.
        if let Incoming::Request { from, after, .. } | Incoming::Ask { from, after, .. } = &incoming
            && *from != self.uid
            && self.carries_requests(channel)
        {
            let mut reading = lock(&self.reading);
            if *after > reading.position {
                let now = Instant::now();
                reading.parked.retain(|p| p.deadline > now);
                if reading.parked.len() < MAX_PARKED {
                    let wait = match &incoming {
                        Incoming::Ask { timeout, .. } => *timeout,
                        _ => self.config.request_timeout,
                    };
                    reading.parked.push(Parked {
                        after: *after,
                        deadline: now + wait,
                        incoming,
                        channel: channel.to_owned(),
                    });
                } else {
                    tracing::debug!(target: TARGET, "too many requests wait for operations: one ignored");
                }
                return;
            }
        }
        self.dispatch(channel, incoming);
    }

    /// An entry of the operations stream: applied once (unless it is ours), then the
    /// requests that waited for it are answered.
    fn read_entry(&self, id: StreamId, incoming: Incoming) {
        let released = {
            let mut reading = lock(&self.reading);
            reading.position = reading.position.max(id);
            if let Incoming::Entry {
                from,
                seq,
                path,
                selection,
                op,
                stamp,
            } = incoming
                && from != self.uid
            {
                let last = reading.applied.entry(from).or_insert(0);
                if seq > *last {
                    if *last != 0 && seq != *last + 1 {
                        tracing::debug!(target: TARGET, from = %format_args!("{from:016x}"), missed = seq - *last - 1, "operations of an instance are missing from the stream");
                    }
                    *last = seq;
                    // Applied under the lock: the requests released below come after it.
                    if let Some(server) = self.server(&path) {
                        server.apply_stamped(&selection, &op, stamp);
                    }
                } else {
                    tracing::trace!(target: TARGET, seq, "an entry appended again was skipped");
                }
            }
            let position = reading.position;
            let (ready, waiting) = std::mem::take(&mut reading.parked)
                .into_iter()
                .partition::<Vec<_>, _>(|p| p.after <= position);
            reading.parked = waiting;
            ready
        };
        for parked in released {
            self.dispatch(&parked.channel, parked.incoming);
        }
    }

    /// Applies or answers what arrived on a channel.
    fn dispatch(&self, channel: &str, incoming: Incoming) {
        match incoming {
            // Entries come on the stream only.
            Incoming::Entry { .. } => {}
            Incoming::Operation {
                from,
                selection,
                op,
                stamp,
            } => {
                // Our own operation, back from the bus: it was applied locally already.
                if from == self.uid {
                    return;
                }
                let Some(path) = channel.strip_prefix(&self.channels.operations) else {
                    return;
                };
                // Per-room mode: `<path>#<room>`; a path has no `#` (it would be a fragment).
                let path = match self.config.mode {
                    ChannelMode::PerRoom => path.split_once('#').map_or(path, |(path, _)| path),
                    _ => path,
                };
                if let Some(server) = self.server(path) {
                    server.apply_stamped(&selection, &op, stamp);
                }
            }
            Incoming::Request {
                from,
                request,
                path,
                selection,
                ..
            } if self.carries_requests(channel) => {
                if from == self.uid {
                    // Our own request: our clients are already counted by the caller.
                    self.answer(request, Vec::new());
                    return;
                }
                let clients = self
                    .server(&path)
                    .and_then(|server| server.clients(&selection))
                    .unwrap_or_default();
                let payload = codec::encode_response(self.uid, request, &clients);
                self.enqueue(Outgoing::channel(
                    response_channel(&self.config.prefix, from),
                    payload,
                ));
            }
            Incoming::Response {
                from,
                request,
                clients,
            } if channel == self.channels.response => {
                tracing::trace!(target: TARGET, from = %format_args!("{from:016x}"), request, "fetch_clients answer");
                self.answer(request, clients);
            }
            Incoming::Ask {
                from,
                request,
                timeout,
                path,
                selection,
                frame,
                ..
            } if self.carries_requests(channel) => {
                if from == self.uid {
                    // Our own ask: our clients were asked by the caller.
                    if let Some(replies) = lock(&self.asks).get(&request) {
                        replies.sent(0);
                    }
                    return;
                }
                let answers = self
                    .server(&path)
                    .and_then(|server| server.emit_with_ack(&selection, &frame, timeout));
                let sent = answers.as_ref().map_or(0, |answers| answers.sent());
                let channel = response_channel(&self.config.prefix, from);
                self.enqueue(Outgoing::channel(
                    channel.clone(),
                    codec::encode_ack_sent(self.uid, request, sent),
                ));
                if let Some(mut answers) = answers.filter(|_| sent > 0) {
                    // Forwards each answer as it arrives, in order after the count.
                    let (uid, tx) = (self.uid, self.tx.clone());
                    tokio::spawn(async move {
                        while let Some((client, answer)) = answers.next().await {
                            let payload = codec::encode_ack_answer(
                                uid,
                                request,
                                client,
                                answer.as_deref().ok(),
                            );
                            if tx
                                .send(Outgoing::channel(channel.clone(), payload))
                                .await
                                .is_err()
                            {
                                return;
                            }
                        }
                    });
                }
            }
            Incoming::Claim {
                from,
                request,
                path,
                claim,
            } if self.carries_requests(channel) => {
                if from == self.uid {
                    // Our own claim: we hold no session we came to claim.
                    self.session_reply(request, SessionReply::Offer(from, SessionAnswer::NotHere));
                    return;
                }
                let (server, uid, tx) = (self.server(&path), self.uid, self.tx.clone());
                let channel = response_channel(&self.config.prefix, from);
                tokio::spawn(async move {
                    let answer = match server {
                        Some(server) => server.offer_session(&claim).await,
                        None => SessionAnswer::NotHere,
                    };
                    let payload = codec::encode_offer(uid, request, &answer);
                    let _ = tx.send(Outgoing::channel(channel, payload)).await;
                });
            }
            Incoming::Offer {
                from,
                request,
                offer,
            } if channel == self.channels.response => {
                self.session_reply(request, SessionReply::Offer(from, offer));
            }
            Incoming::Take {
                from,
                request,
                path,
                claim,
                token,
                seen,
            } if channel == self.channels.response => {
                let (server, uid, tx) = (self.server(&path), self.uid, self.tx.clone());
                let channel = response_channel(&self.config.prefix, from);
                tokio::spawn(async move {
                    let frames = match server {
                        Some(server) => server.hand_over_session(&claim, token, &seen).await,
                        None => None,
                    };
                    let payload = codec::encode_handed(uid, request, frames.as_deref());
                    let _ = tx.send(Outgoing::channel(channel, payload)).await;
                });
            }
            Incoming::Handed { request, frames } if channel == self.channels.response => {
                self.session_reply(request, SessionReply::Handed(frames));
            }
            Incoming::AckSent { request, count } if channel == self.channels.response => {
                if let Some(replies) = self.ask(request) {
                    replies.sent(count);
                }
            }
            Incoming::AckAnswer {
                request,
                client,
                answer,
            } if channel == self.channels.response => {
                if let Some(replies) = self.ask(request) {
                    match answer {
                        Some(answer) => replies.answer(client, answer),
                        None => replies.gone(client),
                    }
                }
            }
            _ => {}
        }
    }

    /// The room whose channel `channel` is (per-room mode: `<prefix>:<path>#<room>`; a path
    /// has no `#`, it would be a URL fragment).
    fn room_of<'c>(&self, channel: &'c str) -> Option<&'c str> {
        if self.config.mode != ChannelMode::PerRoom {
            return None;
        }
        let (_path, room) = channel
            .strip_prefix(&self.channels.operations)?
            .split_once('#')?;
        Some(room)
    }

    /// Whether requests and asks arriving on `channel` are for us to answer: on the request
    /// channel in classic mode; in per-room mode, on the gateway and room channels, where
    /// they travel with the operations they must see.
    fn carries_requests(&self, channel: &str) -> bool {
        match self.config.mode {
            ChannelMode::PerRoom => channel.starts_with(&self.channels.operations),
            _ => channel == self.channels.request,
        }
    }

    /// Where a request or an ask about `selection` of `path` goes, with the part of the
    /// selection each message carries.
    fn request_routes<'s>(
        &self,
        path: &str,
        selection: &'s Selection,
    ) -> Vec<(String, Cow<'s, Selection>)> {
        match self.config.mode {
            ChannelMode::PerRoom => per_room_routes(&self.channels, path, selection),
            _ => vec![(self.channels.request.clone(), Cow::Borrowed(selection))],
        }
    }

    fn server(&self, path: &str) -> Option<LocalServer> {
        self.servers
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(path)
            .cloned()
    }

    /// Where the answers to our ask `request` go, while the emit still waits for them.
    fn ask(&self, request: u64) -> Option<AckReplies> {
        let mut asks = lock(&self.asks);
        let replies = asks.get(&request)?;
        if replies.is_closed() {
            asks.remove(&request);
            return None;
        }
        Some(replies.clone())
    }

    fn session_reply(&self, request: u64, reply: SessionReply) {
        if let Some(tx) = lock(&self.sessions).get(&request) {
            let _ = tx.send(reply);
        }
    }

    /// Registers a session request's answers, forgotten when the guard drops.
    fn session_request(
        &self,
    ) -> (
        u64,
        mpsc::UnboundedReceiver<SessionReply>,
        SessionGuard<'_, D>,
    ) {
        let request = self.next_request.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = mpsc::unbounded_channel();
        lock(&self.sessions).insert(request, tx);
        (request, rx, SessionGuard(self, request))
    }

    fn answer(&self, request: u64, clients: Vec<ClientInfo>) {
        if let Some(tx) = lock(&self.pending).get(&request) {
            let _ = tx.send(clients);
        }
    }
}

/// A message in the outbox.
struct Queued {
    lane: Lane,
    payload: Bytes,
    reply: Option<oneshot::Sender<Result<usize, String>>>,
    at: Instant,
}

/// The publisher task's state: what waits for the driver, in order, and what was appended
/// lately (to append again after a reconnection).
struct Outbox {
    queue: VecDeque<Queued>,
    bytes: usize,
    /// The last sequence number given to an entry.
    seq: u64,
    /// The id of the last entry appended.
    last: StreamId,
    /// Entries appended within [`REPLAY_SPAN`], with when.
    recent: VecDeque<(Instant, Bytes)>,
    recent_bytes: usize,
    /// The driver's epoch at the last append.
    epoch: Option<u64>,
    /// When the driver last took an append: what was appended in the span before it is
    /// what a restarted Redis may have lost.
    appended_at: Option<Instant>,
    /// Publishing failed since the outbox was last empty.
    failing: Option<String>,
    /// Messages dropped past the bound during this outage (logged once).
    dropped: u64,
}

/// What a queued message costs: its bytes and its bookkeeping.
fn cost(payload: &Bytes) -> usize {
    payload.len() + 64
}

impl Outbox {
    fn new() -> Self {
        Self {
            queue: VecDeque::new(),
            bytes: 0,
            seq: 0,
            last: StreamId::ZERO,
            recent: VecDeque::new(),
            recent_bytes: 0,
            epoch: None,
            appended_at: None,
            failing: None,
            dropped: 0,
        }
    }

    /// Queues `outgoing`, numbering it if it is an entry. A message that wants an answer
    /// fails at once with `unavailable`'s reason (the driver is down: an answer would come
    /// too late).
    fn push(&mut self, outgoing: Outgoing, unavailable: Option<&str>) {
        let Outgoing {
            lane,
            mut payload,
            reply,
        } = outgoing;
        let reply = match (unavailable, reply) {
            (Some(reason), Some(reply)) => {
                let _ = reply.send(Err(reason.to_owned()));
                return;
            }
            (_, reply) => reply,
        };
        if matches!(lane, Lane::Entry) && payload.len() >= codec::SEQ.end {
            self.seq += 1;
            payload[codec::SEQ].copy_from_slice(&self.seq.to_be_bytes());
        }
        let payload = Bytes::from(payload);
        self.bytes += cost(&payload);
        self.queue.push_back(Queued {
            lane,
            payload,
            reply,
            at: Instant::now(),
        });
    }

    /// Drops the oldest messages past the bound (bytes, age).
    fn trim<D>(&mut self, core: &Core<D>) {
        let now = Instant::now();
        let mut dropped = 0;
        while let Some(front) = self.queue.front() {
            let old = now.duration_since(front.at) > core.config.outbox_age;
            if !old && self.bytes <= core.config.outbox_bytes {
                break;
            }
            let Some(front) = self.queue.pop_front() else {
                break;
            };
            self.bytes -= cost(&front.payload);
            match front.reply {
                Some(reply) => {
                    let _ = reply.send(Err("the message waited too long for Redis".into()));
                }
                None => dropped += 1,
            }
        }
        if dropped > 0 {
            core.outbox_dropped.increment(dropped);
            if self.dropped == 0 {
                tracing::warn!(
                    target: TARGET,
                    prefix = %core.config.prefix,
                    max_bytes = core.config.outbox_bytes,
                    max_age = ?core.config.outbox_age,
                    "the outbox is over its bound while Redis is unreachable: dropping the oldest messages for other instances"
                );
            }
            self.dropped += dropped;
        }
    }

    /// Fails every queued message that wants an answer (publishing is failing: answers
    /// would come too late), keeping the others in order.
    fn fail_replies(&mut self, reason: &str) {
        let mut kept = VecDeque::with_capacity(self.queue.len());
        for queued in self.queue.drain(..) {
            match queued.reply {
                Some(reply) => {
                    self.bytes -= cost(&queued.payload);
                    let _ = reply.send(Err(reason.to_owned()));
                }
                None => kept.push_back(queued),
            }
        }
        self.queue = kept;
    }

    fn pop(&mut self) -> Option<Queued> {
        let queued = self.queue.pop_front()?;
        self.bytes -= cost(&queued.payload);
        Some(queued)
    }

    /// Publishes everything queued, in order, a batch per driver call.
    async fn flush<D: Driver>(&mut self, core: &Core<D>) -> Result<(), String> {
        while let Some(front) = self.queue.front() {
            let entries = matches!(front.lane, Lane::Entry);
            let n = self
                .queue
                .iter()
                .take(BATCH)
                .take_while(|q| matches!(q.lane, Lane::Entry) == entries)
                .count();
            if entries {
                self.replay(core).await?;
                let payloads: Vec<Bytes> = self
                    .queue
                    .iter()
                    .take(n)
                    .map(|q| q.payload.clone())
                    .collect();
                self.append(core, &payloads).await?;
                let now = Instant::now();
                for _ in 0..n {
                    if let Some(queued) = self.pop() {
                        self.recent_bytes += cost(&queued.payload);
                        self.recent.push_back((now, queued.payload));
                    }
                }
                self.trim_recent(core, now);
            } else {
                let messages: Vec<ChannelMessage> = self
                    .queue
                    .iter()
                    .take(n)
                    .map(|q| match &q.lane {
                        Lane::Barrier(channel) if q.payload.len() >= codec::AFTER.end => {
                            let mut payload = q.payload.to_vec();
                            payload[codec::AFTER].copy_from_slice(&self.last.to_bytes());
                            ChannelMessage::new(channel.clone(), payload)
                        }
                        Lane::Channel(channel) | Lane::Barrier(channel) => {
                            ChannelMessage::new(channel.clone(), q.payload.clone())
                        }
                        Lane::Entry => ChannelMessage::new(String::new(), Bytes::new()),
                    })
                    .collect();
                let counts = core
                    .driver
                    .publish(&messages)
                    .await
                    .map_err(|err| err.to_string())?;
                let mut counts = counts.into_iter();
                for _ in 0..n {
                    let count = counts
                        .next()
                        .ok_or_else(|| "the driver did not say who received it".to_owned());
                    if let Some(Queued {
                        reply: Some(reply), ..
                    }) = self.pop()
                    {
                        let _ = reply.send(count);
                    }
                }
            }
        }
        Ok(())
    }

    /// Appends `payloads` to the prefix's stream, keeping the id of the last one.
    async fn append<D: Driver>(
        &mut self,
        core: &Core<D>,
        payloads: &[Bytes],
    ) -> Result<(), String> {
        let ids = core
            .driver
            .append(&core.channels.stream, payloads, core.config.stream_max_len)
            .await
            .map_err(|err| err.to_string())?;
        if let Some(last) = ids.iter().max() {
            self.last = self.last.max(*last);
        }
        self.appended_at = Some(Instant::now());
        Ok(())
    }

    /// After the driver reconnected, appends again what was appended within
    /// [`REPLAY_SPAN`] before the last append Redis took (however long the outage lasted):
    /// a Redis that restarted may have lost it before every follower read it. Followers
    /// skip what they applied already.
    async fn replay<D: Driver>(&mut self, core: &Core<D>) -> Result<(), String> {
        let epoch = core.driver.epoch();
        if self.epoch == Some(epoch) {
            return Ok(());
        }
        self.trim_recent(core, self.appended_at.unwrap_or_else(Instant::now));
        if self.epoch.is_some() && !self.recent.is_empty() {
            let most = (core.config.stream_max_len / REPLAY_SHARE).max(1);
            let skip = self.recent.len().saturating_sub(most);
            let payloads: Vec<Bytes> = self
                .recent
                .iter()
                .skip(skip)
                .map(|(_, p)| p.clone())
                .collect();
            self.append(core, &payloads).await?;
            tracing::debug!(target: TARGET, entries = payloads.len(), "appended the latest entries again after a reconnection");
        }
        self.epoch = Some(epoch);
        Ok(())
    }

    fn trim_recent<D>(&mut self, core: &Core<D>, now: Instant) {
        while let Some((at, payload)) = self.recent.front() {
            if now.saturating_duration_since(*at) <= REPLAY_SPAN
                && self.recent_bytes <= core.config.outbox_bytes
            {
                break;
            }
            self.recent_bytes -= cost(payload);
            self.recent.pop_front();
        }
    }
}

/// The publisher task: hands queued messages to the driver in order, a batch at a time,
/// one call after the other (which is what the driver's ordering promise is about). When
/// the driver fails, what was queued stays in the outbox, in order, and is published once
/// it is back, within the outbox's bound.
async fn run_publisher<D: Driver>(core: Weak<Core<D>>, mut rx: mpsc::Receiver<Outgoing>) {
    let mut outbox = Outbox::new();
    let mut delay = RETRY_MIN;
    loop {
        if outbox.queue.is_empty() {
            let Some(first) = rx.recv().await else {
                return;
            };
            outbox.push(first, None);
        }
        while outbox.queue.len() < BATCH {
            let Ok(next) = rx.try_recv() else {
                break;
            };
            outbox.push(next, None);
        }
        let Some(strong) = core.upgrade() else {
            return;
        };
        outbox.trim(&strong);
        match outbox.flush(&strong).await {
            Ok(()) => {
                strong.overflowing.store(false, Ordering::Relaxed);
                delay = RETRY_MIN;
                if outbox.failing.take().is_some() {
                    tracing::info!(
                        target: TARGET,
                        prefix = %strong.config.prefix,
                        dropped = outbox.dropped,
                        "the outbox is published: what this instance sent while Redis was unreachable reached the other instances ({} dropped past the bound)",
                        outbox.dropped
                    );
                    outbox.dropped = 0;
                }
            }
            Err(reason) => {
                tracing::debug!(target: TARGET, queued = outbox.queue.len(), "publishing failed, kept in the outbox: {reason}");
                outbox.fail_replies(&reason);
                outbox.failing = Some(reason);
                // Wait before trying again, taking in what is emitted meanwhile; once the
                // driver says it is back, try at once.
                let retry = tokio::time::sleep(delay);
                tokio::pin!(retry);
                delay = (delay * 2).min(RETRY_MAX);
                loop {
                    tokio::select! {
                        () = &mut retry => break,
                        next = rx.recv() => match next {
                            Some(next) => {
                                if strong.driver.is_connected() {
                                    outbox.push(next, None);
                                    break;
                                }
                                outbox.push(next, outbox.failing.clone().as_deref());
                                outbox.trim(&strong);
                            }
                            None => return,
                        },
                    }
                }
            }
        }
    }
}

/// The delays between attempts to publish the outbox: doubling from the first to the last.
const RETRY_MIN: Duration = Duration::from_millis(50);
const RETRY_MAX: Duration = Duration::from_secs(1);

/// The receiver task: applies what the driver delivers, in the order it delivers it.
async fn run_receiver<D: Driver>(core: Weak<Core<D>>, mut inbox: mpsc::Receiver<ChannelMessage>) {
    while let Some(received) = inbox.recv().await {
        let Some(core) = core.upgrade() else {
            return;
        };
        core.handle(&received);
    }
}

/// The subscription task (per-room mode): makes the subscriptions the gateways and the
/// rooms with local members need, one change after the other, so that a
/// [`Change::Synced`] answered means every change before it is in effect.
async fn run_subscriptions<D: Driver>(
    core: Weak<Core<D>>,
    mut changes: mpsc::UnboundedReceiver<Change>,
    inbox: Inbox,
) {
    let mut subscribed = HashSet::new();
    while let Some(change) = changes.recv().await {
        let Some(core) = core.upgrade() else {
            return;
        };
        let (channel, wanted) = match change {
            Change::Synced(done) => {
                let _ = done.send(());
                continue;
            }
            Change::Gateway(path) => (core.channels.gateway(path), true),
            Change::Room(path, room) => {
                // As the room is now, not as it was when queued: a room emptied and filled
                // again meanwhile stays subscribed.
                let wanted = lock(&core.occupied).contains(&(path, room.clone()));
                (core.channels.room(path, &room), wanted)
            }
        };
        if wanted == subscribed.contains(&channel) {
            continue;
        }
        let subscription = Subscription::Channel(channel.clone());
        let result = if wanted {
            core.driver.subscribe(subscription, inbox.clone()).await
        } else {
            core.driver.unsubscribe(&subscription).await
        };
        match result {
            Ok(()) if wanted => {
                subscribed.insert(channel);
            }
            Ok(()) => {
                subscribed.remove(&channel);
            }
            Err(err) => {
                let action = if wanted {
                    "subscribe to"
                } else {
                    "unsubscribe from"
                };
                tracing::warn!(target: TARGET, channel, "cannot {action} a channel: {err}");
                if !wanted {
                    // The driver forgets it anyway.
                    subscribed.remove(&channel);
                }
            }
        }
    }
}

/// Forgets a session claim or take however its future ends.
struct SessionGuard<'a, D>(&'a Core<D>, u64);

impl<D> Drop for SessionGuard<'_, D> {
    fn drop(&mut self) {
        lock(&self.0.sessions).remove(&self.1);
    }
}

/// Forgets a pending request however its future ends.
struct PendingGuard<'a, D>(&'a Core<D>, u64);

impl<D> Drop for PendingGuard<'_, D> {
    fn drop(&mut self) {
        lock(&self.0.pending).remove(&self.1);
    }
}

impl RedisAdapter<RedisDriver> {
    /// Connects to Redis (a [`RedisDriver`]) and starts the adapter, to give to
    /// [`GatewayApp::adapter`](ws_gateway_core::GatewayApp::adapter). Must be called inside a
    /// tokio runtime: the connections live in background tasks.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidUrl`]; and [`Error::Connect`] or [`Error::Timeout`] when Redis cannot
    /// be reached, unless the config [starts degraded](RedisConfig::start_degraded);
    /// [`Error::Command`] if Redis refuses the subscriptions. Every message names the URL
    /// (password redacted).
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// use ws_gateway_redis::{RedisAdapter, RedisConfig};
    ///
    /// // Nothing listens on port 1.
    /// let err = RedisAdapter::connect(RedisConfig::new("redis://127.0.0.1:1")).await.unwrap_err();
    /// assert!(err.to_string().contains("redis://127.0.0.1:1"));
    ///
    /// // Asked to, it starts anyway and keeps trying in the background.
    /// let degraded = RedisAdapter::connect(
    ///     RedisConfig::new("redis://127.0.0.1:1").start_degraded(true),
    /// )
    /// .await
    /// .unwrap();
    /// assert!(!degraded.is_connected());
    /// # }
    /// ```
    pub async fn connect(config: RedisConfig) -> Result<Self, Error> {
        let driver = RedisDriver::connect(&config).await?;
        Self::with_driver(driver, config.adapter).await
    }
}

impl RedisAdapter<RedisClusterDriver> {
    /// Connects to a Redis Cluster (a [`RedisClusterDriver`], sharded pub/sub) and starts
    /// the adapter in [per-room mode](ChannelMode::PerRoom), whatever the config's mode:
    /// each room's channel lives on the shard of its slot, and each instance subscribes to
    /// the rooms its clients are in. Give it a [`RedisConfig::cluster`].
    ///
    /// # Errors
    ///
    /// As [`connect`](RedisAdapter::connect), naming the seed nodes.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), ws_gateway_redis::Error> {
    /// use ws_gateway_redis::{RedisAdapter, RedisConfig};
    ///
    /// let nodes = ["redis://10.0.0.1:6379", "redis://10.0.0.2:6379", "redis://10.0.0.3:6379"];
    /// let redis = RedisAdapter::connect_cluster(RedisConfig::cluster(nodes).prefix("chat")).await?;
    /// # let _ = redis;
    /// # Ok(())
    /// # }
    /// ```
    pub async fn connect_cluster(config: RedisConfig) -> Result<Self, Error> {
        let driver = RedisClusterDriver::connect(&config).await?;
        Self::with_driver(driver, config.adapter.per_room()).await
    }
}

impl<D: Driver> RedisAdapter<D> {
    /// Starts an adapter over `driver`: subscribes to this prefix's channels and spawns the
    /// tasks that publish and apply. Must be called inside a tokio runtime.
    ///
    /// With a [`MemoryDriver`](crate::MemoryDriver) per instance, several instances of an
    /// app run in one process, with no Redis, through the very code that serves them over
    /// Redis: see [`MemoryBus`](crate::MemoryBus) for an example.
    ///
    /// # Errors
    ///
    /// The driver refused a subscription.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// use ws_gateway_redis::{AdapterConfig, MemoryBus, RedisAdapter};
    ///
    /// let bus = MemoryBus::new();
    /// let a = RedisAdapter::with_driver(bus.driver(), AdapterConfig::new().prefix("app")).await?;
    /// let b = RedisAdapter::with_driver(bus.driver(), AdapterConfig::new().prefix("app")).await?;
    /// assert_ne!(a.instance_id(), b.instance_id());
    /// assert!(a.is_connected()); // the bus is always up
    /// # Ok(())
    /// # }
    /// ```
    pub async fn with_driver(driver: D, config: AdapterConfig) -> Result<Self, D::Error> {
        let uid = new_uid();
        let channels = Channels::new(&config.prefix, uid);
        let prefix_label = config.prefix.clone();
        let (inbox, received) = Inbox::channel(INBOX_CAPACITY);
        let mut reading = Reading::default();
        if config.mode == ChannelMode::Classic {
            // One stream carries every gateway's operations, so gateways attached later
            // need nothing more; requests have their channel.
            driver
                .subscribe(
                    Subscription::Channel(channels.request.clone()),
                    inbox.clone(),
                )
                .await?;
            reading.position = driver.follow(&channels.stream, inbox.clone()).await?;
        }
        // Per-room mode: the gateways' and rooms' channels are subscribed as gateways are
        // attached and rooms get members, by the subscription task.
        driver
            .subscribe(
                Subscription::Channel(channels.response.clone()),
                inbox.clone(),
            )
            .await?;
        let (tx, rx) = mpsc::channel(config.queue_capacity);
        let (changes, changes_rx) = mpsc::unbounded_channel();
        let core = Arc::new(Core {
            uid,
            config,
            channels,
            driver,
            tx,
            servers: RwLock::default(),
            pending: Mutex::default(),
            asks: Mutex::default(),
            sessions: Mutex::default(),
            next_request: AtomicU64::new(0),
            overflowing: AtomicBool::new(false),
            occupied: Mutex::default(),
            changes,
            reading: Mutex::new(reading),
            outbox_dropped: metrics::counter!(
                ws_gateway_core::telemetry::REDIS_OUTBOX_DROPPED,
                "prefix" => prefix_label
            ),
        });
        let tasks = [
            tokio::spawn(run_publisher(Arc::downgrade(&core), rx)),
            tokio::spawn(run_receiver(Arc::downgrade(&core), received)),
            tokio::spawn(run_subscriptions(Arc::downgrade(&core), changes_rx, inbox)),
        ];
        tracing::debug!(target: TARGET, prefix = %core.config.prefix, uid = %format_args!("{uid:016x}"), "adapter started");
        Ok(Self {
            inner: Arc::new(Inner { core, tasks }),
        })
    }

    /// This instance's id, carried by every message it publishes (16 hex digits).
    pub fn instance_id(&self) -> String {
        format!("{:016x}", self.inner.core.uid)
    }

    /// Whether the driver is connected right now (for Redis: both connections are up).
    /// Cross-instance delivery works only then; local delivery always does.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[allow(dead_code)]
    /// # async fn demo(redis: ws_gateway_redis::RedisAdapter) {
    /// if !redis.is_connected() {
    ///     tracing::warn!("serving this instance's clients only");
    /// }
    /// # }
    /// ```
    pub fn is_connected(&self) -> bool {
        self.inner.core.driver.is_connected()
    }

    /// The driver this adapter publishes and subscribes through.
    pub fn driver(&self) -> &D {
        &self.inner.core.driver
    }
}

impl<D: fmt::Debug> fmt::Debug for RedisAdapter<D> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let core = &self.inner.core;
        f.debug_struct("RedisAdapter")
            .field("driver", &core.driver)
            .field("prefix", &core.config.prefix)
            .field("instance_id", &format_args!("{:016x}", core.uid))
            .finish()
    }
}

impl<D: Driver> Adapter for RedisAdapter<D> {
    fn attach(&self, server: LocalServer) {
        self.inner
            .core
            .servers
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(server.path(), server.clone());
        let core = &self.inner.core;
        if core.config.mode == ChannelMode::PerRoom {
            let _ = core.changes.send(Change::Gateway(server.path()));
        }
    }

    fn publish(&self, message: &Message<'_>) {
        let core = &self.inner.core;
        if core.config.mode == ChannelMode::PerRoom {
            for (channel, selection) in
                per_room_routes(&core.channels, message.path, message.selection)
            {
                let payload =
                    codec::encode_operation(core.uid, &selection, message.op, message.stamp);
                core.enqueue(Outgoing::channel(channel, payload));
            }
            return;
        }
        let payload = codec::encode_entry(
            core.uid,
            message.path,
            message.selection,
            message.op,
            message.stamp,
        );
        core.enqueue(Outgoing {
            lane: Lane::Entry,
            payload,
            reply: None,
        });
    }

    fn room_changed(&self, path: &'static str, room: &str, occupied: bool) {
        let core = &self.inner.core;
        if core.config.mode != ChannelMode::PerRoom {
            return;
        }
        {
            let mut rooms = lock(&core.occupied);
            if occupied {
                rooms.insert((path, room.to_owned()));
            } else {
                rooms.remove(&(path, room.to_owned()));
            }
        }
        let _ = core.changes.send(Change::Room(path, room.to_owned()));
    }

    /// Per-room mode: resolves once every subscription the rooms changed so far need is
    /// acknowledged by Redis (or recorded, while Redis is unreachable).
    async fn synced(&self) {
        let core = &self.inner.core;
        if core.config.mode != ChannelMode::PerRoom {
            return;
        }
        let (done, synced) = oneshot::channel();
        if core.changes.send(Change::Synced(done)).is_ok() {
            let _ = synced.await;
        }
    }

    /// Publishes the ask where every instance it may concern listens (the request channel
    /// in classic mode; in per-room mode the channels of the selection's rooms, or the
    /// gateway's): the number of subscribers the publishes reached is the number of
    /// instances to hear from (this one included when it listens, which reports that it
    /// sent to nobody: its clients were asked by the caller).
    fn emit_with_ack(&self, message: &Message<'_>, timeout: Duration, replies: AckReplies) {
        let core = &self.inner.core;
        let (Operation::Emit(frame), Ok(runtime)) =
            (message.op, tokio::runtime::Handle::try_current())
        else {
            replies.asked(0);
            return;
        };
        let request = core.next_request.fetch_add(1, Ordering::Relaxed);
        lock(&core.asks).insert(request, replies.clone());
        let mut receivers = Vec::new();
        for (channel, selection) in core.request_routes(message.path, message.selection) {
            let payload =
                codec::encode_ask(core.uid, request, timeout, message.path, &selection, frame);
            let (reply, receiver) = oneshot::channel();
            if core.enqueue(Outgoing {
                lane: Lane::Barrier(channel),
                payload,
                reply: Some(reply),
            }) {
                receivers.push(receiver);
            }
        }
        if receivers.is_empty() {
            lock(&core.asks).remove(&request);
            replies.asked(0);
            return;
        }
        let deadline = tokio::time::Instant::now() + timeout;
        let core = Arc::downgrade(core);
        runtime.spawn(async move {
            let mut instances = 0;
            for receiver in receivers {
                if let Ok(Ok(Ok(count))) = tokio::time::timeout_at(deadline, receiver).await {
                    instances += count;
                }
            }
            replies.asked(instances);
            drop(replies);
            tokio::time::sleep_until(deadline).await;
            if let Some(core) = core.upgrade() {
                lock(&core.asks).remove(&request);
            }
        });
    }

    /// Asks every instance (where requests go: the request channel, or in per-room mode
    /// the gateway's channel) for the session; the first offer wins, the others answer
    /// that they do not hold it.
    async fn claim_session(
        &self,
        path: &'static str,
        claim: &SessionClaim,
    ) -> Result<Option<SessionOffer>, AdapterError> {
        let core = &*self.inner.core;
        let timeout = core.config.request_timeout;
        let deadline = tokio::time::Instant::now() + timeout;
        let (request, mut replies, _guard) = core.session_request();
        let Some((channel, _)) = core
            .request_routes(path, &Selection::default())
            .into_iter()
            .next()
        else {
            return Ok(None);
        };
        let (reply, receiver) = oneshot::channel();
        if !core.enqueue(Outgoing {
            lane: Lane::Channel(channel),
            payload: codec::encode_claim(core.uid, request, path, claim),
            reply: Some(reply),
        }) {
            return Err(AdapterError::Unavailable(
                "cannot queue a session claim: the publish queue is full".into(),
            ));
        }
        let expected = match tokio::time::timeout_at(deadline, receiver).await {
            Ok(Ok(Ok(count))) => count,
            Ok(Ok(Err(reason))) => return Err(AdapterError::Unavailable(reason)),
            Ok(Err(_)) => return Err(AdapterError::Unavailable("the adapter stopped".into())),
            Err(_) => {
                return Err(AdapterError::Unavailable(format!(
                    "the claim could not be published within {timeout:?}"
                )));
            }
        };
        let mut busy = false;
        for answered in 0..expected {
            match tokio::time::timeout_at(deadline, replies.recv()).await {
                Ok(Some(SessionReply::Offer(from, SessionAnswer::Offered(offer)))) => {
                    return Ok(Some(offer.holder(from)));
                }
                Ok(Some(SessionReply::Offer(_, SessionAnswer::Busy))) => busy = true,
                Ok(Some(_)) => {}
                Ok(None) => return Err(AdapterError::Unavailable("the adapter stopped".into())),
                Err(_) => {
                    return Err(AdapterError::Timeout {
                        missing: expected - answered,
                        timeout,
                    });
                }
            }
        }
        if busy {
            return Err(AdapterError::Unavailable(
                "the session is still connected to, or being taken in by, another instance".into(),
            ));
        }
        Ok(None)
    }

    /// Asks the holder for the frames, on its response channel.
    async fn take_session(
        &self,
        path: &'static str,
        offer: &SessionOffer,
        claim: &SessionClaim,
        seen: &[Stamp],
    ) -> Option<Vec<Frame>> {
        let core = &*self.inner.core;
        // The holder may wait for frames the claimer had (twenty seconds at most), and its
        // answer may wait in its outbox while Redis is unreachable or behind a backlog:
        // long, but shorter than the holder's reservation (30 s). A client that gives up
        // meanwhile tries again; its next attempt takes the reservation over.
        let deadline = tokio::time::Instant::now() + Duration::from_secs(25);
        let (request, mut replies, _guard) = core.session_request();
        if !core.enqueue(Outgoing::channel(
            response_channel(&core.config.prefix, offer.holder),
            codec::encode_take(core.uid, request, path, claim, offer.token, seen),
        )) {
            return None;
        }
        loop {
            match tokio::time::timeout_at(deadline, replies.recv()).await {
                Ok(Some(SessionReply::Handed(frames))) => return frames,
                Ok(Some(_)) => {}
                Ok(None) | Err(_) => return None,
            }
        }
    }

    async fn fetch_clients(
        &self,
        path: &'static str,
        selection: &Selection,
    ) -> Result<Vec<ClientInfo>, AdapterError> {
        let core = &*self.inner.core;
        let timeout = core.config.request_timeout;
        let deadline = tokio::time::Instant::now() + timeout;
        let request = core.next_request.fetch_add(1, Ordering::Relaxed);
        let (answers_tx, mut answers) = mpsc::unbounded_channel();
        lock(&core.pending).insert(request, answers_tx);
        let _guard = PendingGuard(core, request);

        let mut receivers = Vec::new();
        for (channel, selection) in core.request_routes(path, selection) {
            let (reply, receiver) = oneshot::channel();
            if !core.enqueue(Outgoing {
                lane: Lane::Barrier(channel),
                payload: codec::encode_request(core.uid, request, path, &selection),
                reply: Some(reply),
            }) {
                return Err(AdapterError::Unavailable(
                    "cannot queue a request: the publish queue is full".into(),
                ));
            }
            receivers.push(receiver);
        }
        // Every subscriber of the channels answers, this instance included (with nothing),
        // so the driver's count of receivers is the number of answers to wait for.
        let mut expected = 0;
        for receiver in receivers {
            expected += match tokio::time::timeout_at(deadline, receiver).await {
                Ok(Ok(Ok(count))) => count,
                Ok(Ok(Err(reason))) => return Err(AdapterError::Unavailable(reason)),
                Ok(Err(_)) => {
                    return Err(AdapterError::Unavailable("the adapter stopped".into()));
                }
                Err(_) => {
                    return Err(AdapterError::Unavailable(format!(
                        "the request could not be published within {timeout:?}"
                    )));
                }
            };
        }
        let mut clients = Vec::new();
        let mut answered = 0;
        while answered < expected {
            match tokio::time::timeout_at(deadline, answers.recv()).await {
                Ok(Some(some)) => {
                    answered += 1;
                    clients.extend(some);
                }
                Ok(None) => break,
                Err(_) => {
                    return Err(AdapterError::Timeout {
                        missing: expected - answered,
                        timeout,
                    });
                }
            }
        }
        Ok(clients)
    }
}

#[cfg(test)]
mod tests {
    use std::future::Future;
    use std::io;
    use std::time::Duration;

    use ws_gateway_core::adapter::Operation;
    use ws_gateway_core::prelude::*;
    use ws_gateway_core::{App, Frame, Handshake};

    use super::*;
    use crate::driver::{MemoryBus, MemoryDriver};

    #[websocket_gateway(path = "/unit")]
    struct Unit;

    #[websocket_gateway]
    impl Unit {}

    fn app(adapter: RedisAdapter<impl Driver>) -> App {
        GatewayApp::new()
            .adapter(adapter)
            .gateway::<Unit>()
            .build()
            .unwrap()
    }

    /// A driver whose every call goes through `on_publish`, subscriptions accepted or not.
    struct Scripted<F> {
        on_publish: F,
        refuse_subscriptions: bool,
    }

    impl<F, Fut> Driver for Scripted<F>
    where
        F: Fn(usize) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<Vec<usize>, io::Error>> + Send,
    {
        type Error = io::Error;

        fn publish(
            &self,
            messages: &[ChannelMessage],
        ) -> impl Future<Output = Result<Vec<usize>, io::Error>> + Send {
            (self.on_publish)(messages.len())
        }

        async fn subscribe(&self, _: Subscription, _: Inbox) -> Result<(), io::Error> {
            if self.refuse_subscriptions {
                return Err(io::Error::other("NOPERM this user has no permissions"));
            }
            Ok(())
        }

        async fn unsubscribe(&self, _: &Subscription) -> Result<(), io::Error> {
            Ok(())
        }
    }

    fn scripted<F, Fut>(on_publish: F) -> Scripted<F>
    where
        F: Fn(usize) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<Vec<usize>, io::Error>> + Send,
    {
        Scripted {
            on_publish,
            refuse_subscriptions: false,
        }
    }

    async fn fetch(app: &App) -> Result<Vec<ClientInfo>, AdapterError> {
        app.server("/unit")
            .unwrap()
            .broadcast()
            .fetch_clients()
            .await
    }

    #[tokio::test]
    async fn a_refused_subscription_fails_the_start() {
        let mut driver = scripted(|n| async move { Ok(vec![0; n]) });
        driver.refuse_subscriptions = true;
        let Err(err) = RedisAdapter::with_driver(driver, AdapterConfig::new()).await else {
            panic!("started");
        };
        assert!(err.to_string().contains("NOPERM"), "{err}");
    }

    #[tokio::test]
    async fn a_failed_publish_makes_fetch_clients_unavailable_with_the_drivers_reason() {
        let driver = scripted(|_| async { Err(io::Error::other("Redis at r://h is down")) });
        let adapter = RedisAdapter::with_driver(driver, AdapterConfig::new())
            .await
            .unwrap();
        let app = app(adapter);
        // Operations are dropped quietly; local delivery is not affected.
        let (client, mut queue) = app.gateways()[0].open(Handshake::default(), 8);
        assert_eq!(
            app.server("/unit").unwrap().emit("e", &1).unwrap(),
            1,
            "local delivery"
        );
        assert!(queue.try_recv().is_some());
        match fetch(&app).await {
            Err(AdapterError::Unavailable(reason)) => {
                assert_eq!(reason, "Redis at r://h is down");
            }
            other => panic!("{other:?}"),
        }
        drop(client);
    }

    #[tokio::test]
    async fn a_driver_that_does_not_count_fails_the_request_instead_of_hanging() {
        let driver = scripted(|_| async { Ok(Vec::new()) });
        let adapter = RedisAdapter::with_driver(driver, AdapterConfig::new())
            .await
            .unwrap();
        let app = app(adapter);
        match fetch(&app).await {
            Err(AdapterError::Unavailable(reason)) => {
                assert!(reason.contains("did not say"), "{reason}");
            }
            other => panic!("{other:?}"),
        }
    }

    #[tokio::test]
    async fn a_full_queue_drops_instead_of_blocking_the_emitter() {
        // The driver never finishes publishing: the first message is taken by the task,
        // the second fills the queue of one, the rest are dropped.
        let driver = scripted(|_| std::future::pending());
        let config = AdapterConfig::new()
            .queue_capacity(1)
            .request_timeout(Duration::from_secs(30));
        let adapter = RedisAdapter::with_driver(driver, config).await.unwrap();
        let app = app(adapter);
        let server = app.server("/unit").unwrap();
        let emitted = async {
            for n in 0..100 {
                server.emit("e", &n).unwrap();
                // Let the publisher task take the first one.
                tokio::task::yield_now().await;
            }
        };
        tokio::time::timeout(Duration::from_secs(5), emitted)
            .await
            .expect("emitting never waits for the driver");
        match fetch(&app).await {
            Err(AdapterError::Unavailable(reason)) => {
                assert!(reason.contains("queue is full"), "{reason}");
            }
            other => panic!("{other:?}"),
        }
    }

    #[tokio::test]
    async fn garbage_on_the_channels_is_ignored() {
        let bus = MemoryBus::new();
        let adapter = RedisAdapter::with_driver(bus.driver(), AdapterConfig::new())
            .await
            .unwrap();
        let app = app(adapter);
        let (_client, mut queue) = app.gateways()[0].open(Handshake::default(), 8);
        let stranger = bus.driver();
        // Where an answer to a request from instance 1 would go.
        let (answers, mut answered) = Inbox::channel(8);
        let answers_to_1 = Subscription::Channel(response_channel("gateway", 1));
        stranger.subscribe(answers_to_1, answers).await.unwrap();
        let garbage = [
            ChannelMessage::new("gateway:/unit", &b"\x01\0"[..]),
            ChannelMessage::new("gateway#request", "not ours"),
            ChannelMessage::new(
                "gateway:/unit",
                codec::encode_request(1, 2, "/unit", &Selection::default()),
            ),
        ];
        // The gateway channel is nobody's in classic mode (operations are on the stream).
        assert_eq!(stranger.publish(&garbage).await.unwrap(), [0, 1, 0]);
        let frame = Frame::event("ok", &1).unwrap();
        let mut valid = codec::encode_entry(
            7,
            "/unit",
            &Selection::default(),
            &Operation::Emit(frame),
            None,
        );
        valid[codec::SEQ].copy_from_slice(&1u64.to_be_bytes());
        // Garbage on the stream too, then the valid entry.
        stranger
            .append(
                "gateway#operations",
                &[Bytes::from_static(b"\x01"), Bytes::from(valid)],
                10,
            )
            .await
            .unwrap();
        // Still running: the valid operation that followed is applied, and requests work.
        let got = tokio::time::timeout(Duration::from_secs(5), queue.recv()).await;
        assert!(matches!(
            got,
            Ok(Some(ws_gateway_core::transport::Outbound::Frame(_)))
        ));
        assert_eq!(fetch(&app).await.unwrap().len(), 1); // the local client
        // A request on a gateway channel is not a request: it was not answered (an answer
        // would have been published before the request `fetch` just made).
        assert!(answered.try_recv().is_err());
    }

    /// A [`MemoryDriver`] that can be taken down: publishing and appending fail while it
    /// is, and its epoch changes when it comes back, as a reconnected Redis driver's does.
    #[derive(Clone, Default)]
    struct Flaky {
        down: Arc<AtomicBool>,
        epoch: Arc<AtomicU64>,
    }

    struct FlakyDriver(MemoryDriver, Flaky);

    impl Flaky {
        fn set_down(&self, down: bool) {
            if !down {
                self.epoch.fetch_add(1, Ordering::SeqCst);
            }
            self.down.store(down, Ordering::SeqCst);
        }

        fn check(&self) -> Result<(), io::Error> {
            match self.down.load(Ordering::SeqCst) {
                true => Err(io::Error::other("down")),
                false => Ok(()),
            }
        }
    }

    impl Driver for FlakyDriver {
        type Error = io::Error;

        async fn publish(&self, messages: &[ChannelMessage]) -> Result<Vec<usize>, io::Error> {
            self.1.check()?;
            Ok(self.0.publish(messages).await.unwrap_or_default())
        }

        async fn subscribe(
            &self,
            subscription: Subscription,
            inbox: Inbox,
        ) -> Result<(), io::Error> {
            let _ = self.0.subscribe(subscription, inbox).await;
            Ok(())
        }

        async fn unsubscribe(&self, subscription: &Subscription) -> Result<(), io::Error> {
            let _ = self.0.unsubscribe(subscription).await;
            Ok(())
        }

        async fn append(
            &self,
            stream: &str,
            payloads: &[Bytes],
            max_len: usize,
        ) -> Result<Vec<StreamId>, io::Error> {
            self.1.check()?;
            Ok(self
                .0
                .append(stream, payloads, max_len)
                .await
                .unwrap_or_default())
        }

        async fn follow(&self, stream: &str, inbox: Inbox) -> Result<StreamId, io::Error> {
            Ok(self.0.follow(stream, inbox).await.unwrap_or_default())
        }

        fn epoch(&self) -> u64 {
            self.1.epoch.load(Ordering::SeqCst)
        }

        fn is_connected(&self) -> bool {
            !self.1.down.load(Ordering::SeqCst)
        }
    }

    /// Two instances on one bus, the first over a [`Flaky`] driver; a member of the
    /// second's and its queue.
    async fn flaky_pair(
        config: AdapterConfig,
    ) -> (
        App,
        App,
        Flaky,
        ws_gateway_core::transport::OutboundQueue,
        Client,
    ) {
        let bus = MemoryBus::new();
        let flaky = Flaky::default();
        let a = RedisAdapter::with_driver(FlakyDriver(bus.driver(), flaky.clone()), config)
            .await
            .unwrap();
        let b = RedisAdapter::with_driver(bus.driver(), AdapterConfig::new())
            .await
            .unwrap();
        let (a, b) = (app(a), app(b));
        let (member, queue) = b.gateways()[0].open(Handshake::default(), 4096);
        (a, b, flaky, queue, member)
    }

    async fn received(
        queue: &mut ws_gateway_core::transport::OutboundQueue,
        until: u32,
    ) -> Vec<u32> {
        let mut got = Vec::new();
        loop {
            let next = tokio::time::timeout(Duration::from_secs(5), queue.recv()).await;
            let Ok(Some(ws_gateway_core::transport::Outbound::Frame(frame))) = next else {
                panic!("no frame after {got:?}");
            };
            let value: serde_json::Value = serde_json::from_str(frame.as_str()).unwrap();
            let n = u32::try_from(value["data"].as_u64().unwrap()).unwrap();
            got.push(n);
            if n == until {
                return got;
            }
        }
    }

    #[tokio::test]
    async fn what_is_emitted_while_the_driver_is_down_arrives_once_in_order_when_it_is_back() {
        let (a, _b, flaky, mut queue, _member) = flaky_pair(AdapterConfig::new()).await;
        let server = a.server("/unit").unwrap();
        server.emit("n", &100).unwrap();
        assert_eq!(received(&mut queue, 100).await, [100]);
        flaky.set_down(true);
        for n in 0..10 {
            server.emit("n", &n).unwrap();
        }
        // Let the publisher fail at least once before the driver is back.
        while a
            .server("/unit")
            .unwrap()
            .broadcast()
            .fetch_clients()
            .await
            .is_ok()
        {
            tokio::task::yield_now().await;
        }
        flaky.set_down(false);
        for n in 10..20 {
            server.emit("n", &n).unwrap();
        }
        // 100 was appended again after the reconnection (the Redis that took it may have
        // lost it), and skipped: it was applied already.
        assert_eq!(received(&mut queue, 19).await, (0..20).collect::<Vec<_>>());
        assert!(queue.try_recv().is_none());
    }

    #[tokio::test]
    async fn past_its_bound_the_outbox_drops_the_oldest() {
        let config = AdapterConfig::new().outbox(1000, Duration::from_secs(60));
        let (a, _b, flaky, mut queue, _member) = flaky_pair(config).await;
        let server = a.server("/unit").unwrap();
        flaky.set_down(true);
        for n in 0..100 {
            server.emit("n", &n).unwrap();
            tokio::task::yield_now().await;
        }
        flaky.set_down(false);
        let got = received(&mut queue, 99).await;
        // The newest, in order, within 1000 bytes (a message costs its bytes and 64 more).
        assert!(got.len() < 100 && got.len() > 1, "{got:?}");
        assert_eq!(got, (100 - got.len() as u32..100).collect::<Vec<_>>());
    }

    #[tokio::test]
    async fn dropping_the_adapter_ends_its_subscriptions_at_once() {
        let bus = MemoryBus::new();
        let adapter = RedisAdapter::with_driver(bus.driver(), AdapterConfig::new())
            .await
            .unwrap();
        assert_eq!(format!("{bus:?}"), "MemoryBus { subscriptions: 2 }");
        let debug = format!("{adapter:?}");
        assert!(
            debug.starts_with("RedisAdapter { driver: MemoryDriver"),
            "{debug}"
        );
        let _: &MemoryDriver = adapter.driver();
        drop(adapter);
        assert_eq!(format!("{bus:?}"), "MemoryBus { subscriptions: 0 }");
    }
}
