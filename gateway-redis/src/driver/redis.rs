//! [`RedisDriver`]: the [`Driver`] over redis-rs, with its two connections and their
//! reconnection.
//!
//! A connection in subscribe mode can send nothing but (un)subscribe commands, so
//! publishing has its own connection (multiplexed, so a batch goes out as one pipeline, in
//! order). A task per connection brings it back with backoff when it drops; the subscriber
//! then subscribes again to everything it was subscribed to before saying it is up. Each
//! followed stream has a reader connection of its own (`XREAD BLOCK` holds it), which
//! resumes after the last entry it delivered.

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, RwLock};
use std::time::Duration;

use ::redis::aio::{MultiplexedConnection, PubSubSink, PubSubStream};
use ::redis::streams::{StreamRangeReply, StreamReadReply};
use ::redis::{AsyncConnectionConfig, Client, Msg, RedisError, Value};
use bytes::Bytes;
use futures_util::StreamExt;
use tokio::sync::Notify;
use tokio::task::JoinHandle;

use super::{ChannelMessage, Driver, Inbox, StreamId, Subscription};
use crate::config::RedisConfig;
use crate::error::{Error, redact};

/// The log target of the driver's warnings and notices.
const TARGET: &str = "gateway::redis";

/// How long one `XREAD` of a stream reader blocks waiting for entries.
const READ_BLOCK: Duration = Duration::from_secs(1);

/// How many entries one `XREAD` returns at most.
const READ_COUNT: usize = 1024;

/// The [`Driver`] for a Redis server, over [redis-rs](https://docs.rs/redis): the one
/// [`RedisAdapter::connect`](crate::RedisAdapter::connect) makes.
///
/// It holds two connections, as Socket.IO's Redis adapter does: a publisher (commands,
/// pipelined in order) and a subscriber, plus a reader per [followed](Driver::follow)
/// stream. When Redis goes away it logs one warning (target `gateway::redis`), fails what
/// is published meanwhile, reconnects with backoff, subscribes again to everything, reads
/// each stream on from the last entry it delivered, and logs once that delivery resumed.
///
/// Dropping it closes both connections.
///
/// # Examples
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), ws_gateway_redis::Error> {
/// use ws_gateway_redis::driver::{ChannelMessage, Driver, Inbox, Subscription};
/// use ws_gateway_redis::{RedisConfig, RedisDriver};
///
/// let config = RedisConfig::new("redis://127.0.0.1:6379");
/// # let config = config.start_degraded(true);
/// let driver = RedisDriver::connect(&config).await?;
/// let (inbox, _received) = Inbox::channel(64);
/// driver.subscribe(Subscription::Channel("doc-news".into()), inbox).await?;
/// if driver.is_connected() {
///     let counts = driver.publish(&[ChannelMessage::new("doc-news", "hello")]).await?;
///     assert!(counts[0] >= 1); // our own subscription, at least
/// }
/// # Ok(())
/// # }
/// ```
pub struct RedisDriver {
    shared: Arc<Shared>,
    tasks: [JoinHandle<()>; 2],
    /// One per followed stream.
    readers: Mutex<Vec<JoinHandle<()>>>,
}

impl Drop for RedisDriver {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
        for task in lock(&self.readers).iter() {
            task.abort();
        }
    }
}

/// Which connection a health change is about.
#[derive(Clone, Copy, Debug)]
enum Part<'a> {
    Publisher,
    Subscriber,
    /// The reader of this stream.
    Reader(&'a str),
}

#[derive(Debug, Default)]
struct Health {
    publisher: bool,
    subscriber: bool,
    /// Each followed stream's reader: whether it is connected.
    readers: HashMap<String, bool>,
    /// A warning about the current outage was logged.
    warned: bool,
}

impl Health {
    fn all_up(&self) -> bool {
        self.publisher && self.subscriber && self.readers.values().all(|up| *up)
    }
}

#[derive(Default)]
struct Publisher {
    connection: Option<MultiplexedConnection>,
    /// Bumped on each new connection, so that a failure seen on an old one does not
    /// discard its replacement.
    generation: u64,
}

/// Where what arrives goes, keyed as Redis names it in a message.
#[derive(Default)]
struct Routes {
    channels: HashMap<String, Inbox>,
    /// Keyed by glob pattern.
    patterns: HashMap<String, Inbox>,
}

/// What a subscription is on the wire.
#[derive(Clone, Copy)]
enum Kind {
    Channel,
    Pattern,
}

/// A [`Subscription`] as Redis sees it.
fn redis_name(subscription: &Subscription) -> (Kind, String) {
    match subscription {
        Subscription::Channel(name) => (Kind::Channel, name.clone()),
        Subscription::Prefix(prefix) => (Kind::Pattern, format!("{}*", glob_escape(prefix))),
    }
}

/// `prefix` with Redis glob characters escaped.
fn glob_escape(prefix: &str) -> String {
    let mut out = String::with_capacity(prefix.len());
    for c in prefix.chars() {
        if matches!(c, '*' | '?' | '[' | ']' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// Whether `err` means the connection is gone (rather than Redis refusing a command on a
/// healthy one).
fn connection_lost(err: &RedisError) -> bool {
    err.is_io_error() || err.is_unrecoverable_error()
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // Nothing panics while holding these locks; recover the data if something ever did.
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Delays between reconnection attempts: doubling from `min` to `max`.
struct Backoff {
    min: Duration,
    max: Duration,
    next: Duration,
}

impl Backoff {
    fn new(min: Duration, max: Duration) -> Self {
        Self {
            min,
            max,
            next: min,
        }
    }

    fn next(&mut self) -> Duration {
        let delay = self.next;
        self.next = (self.next * 2).min(self.max);
        delay
    }

    fn reset(&mut self) {
        self.next = self.min;
    }
}

/// What the driver handle and its two tasks share.
struct Shared {
    client: Client,
    /// The URL with its password redacted, for messages.
    url: String,
    connect_timeout: Duration,
    backoff_min: Duration,
    backoff_max: Duration,
    publisher: Mutex<Publisher>,
    /// Notified when the publisher connection is lost, to wake the task that reconnects it.
    publisher_lost: Notify,
    /// The subscriber connection's command half, `None` while it is down. An async lock:
    /// a subscription is recorded and sent under it, and a reconnection replays every
    /// recorded one under it, so none made meanwhile is missed.
    subscriber: tokio::sync::Mutex<Option<PubSubSink>>,
    routes: RwLock<Routes>,
    health: Mutex<Health>,
    /// Messages that could not reach Redis during the current outage.
    dropped: AtomicU64,
}

impl Shared {
    /// Runs `pipe` (`count` messages) on the publisher connection. Fails at once, without
    /// queueing, while the publisher is disconnected (the adapter's outbox keeps them); a
    /// lost connection is reported for reconnection. Failed messages count as dropped.
    async fn publish_pipeline<T: ::redis::FromRedisValue>(
        &self,
        pipe: &::redis::Pipeline,
        count: usize,
    ) -> Result<T, Error> {
        let (connection, generation) = {
            let publisher = lock(&self.publisher);
            (publisher.connection.clone(), publisher.generation)
        };
        let Some(mut connection) = connection else {
            self.dropped.fetch_add(count as u64, Ordering::Relaxed);
            return Err(Error::Unavailable {
                url: self.url.clone(),
            });
        };
        match pipe.query_async::<T>(&mut connection).await {
            Ok(reply) => Ok(reply),
            Err(err) => {
                self.dropped.fetch_add(count as u64, Ordering::Relaxed);
                if connection_lost(&err) {
                    self.publisher_failed(generation, &err);
                }
                Err(self.command_error(err))
            }
        }
    }

    fn connect_error(&self, err: RedisError) -> Error {
        Error::Connect {
            url: self.url.clone(),
            source: Box::new(err),
        }
    }

    fn timeout_error(&self) -> Error {
        Error::Timeout {
            url: self.url.clone(),
            timeout: self.connect_timeout,
        }
    }

    fn command_error(&self, err: RedisError) -> Error {
        Error::Command {
            url: self.url.clone(),
            source: Box::new(err),
        }
    }

    fn routes(&self) -> std::sync::RwLockReadGuard<'_, Routes> {
        self.routes.read().unwrap_or_else(PoisonError::into_inner)
    }

    fn routes_mut(&self) -> std::sync::RwLockWriteGuard<'_, Routes> {
        self.routes.write().unwrap_or_else(PoisonError::into_inner)
    }

    fn is_connected(&self) -> bool {
        lock(&self.health).all_up()
    }

    /// A connection was lost or could not be made: warn once per outage.
    fn down(&self, part: Part<'_>, reason: &dyn fmt::Display) {
        let publisher_too = match part {
            // One outage, one warning, one "resumed": when the subscriber loses Redis the
            // publisher's connection is suspect too (it would only find out on its next
            // write), so it is replaced as well.
            Part::Subscriber => lock(&self.publisher).connection.take().is_some(),
            Part::Publisher | Part::Reader(_) => false,
        };
        if publisher_too {
            self.publisher_lost.notify_one();
        }
        let mut health = lock(&self.health);
        match part {
            Part::Publisher => health.publisher = false,
            Part::Subscriber => {
                health.subscriber = false;
                if publisher_too {
                    health.publisher = false;
                }
            }
            Part::Reader(stream) => {
                health.readers.insert(stream.to_owned(), false);
            }
        }
        if health.warned {
            tracing::debug!(target: TARGET, url = %self.url, ?part, "Redis still unreachable: {reason}");
        } else {
            health.warned = true;
            tracing::warn!(
                target: TARGET,
                url = %self.url,
                ?part,
                "lost the connection to Redis ({reason}): delivering to this instance's clients only, reconnecting"
            );
        }
    }

    /// A connection is (back) up: say so once all are.
    fn up(&self, part: Part<'_>) {
        let mut health = lock(&self.health);
        match part {
            Part::Publisher => health.publisher = true,
            Part::Subscriber => health.subscriber = true,
            Part::Reader(stream) => match health.readers.entry(stream.to_owned()) {
                Entry::Occupied(mut up) => *up.get_mut() = true,
                Entry::Vacant(slot) => {
                    slot.insert(true);
                }
            },
        }
        if health.all_up() && health.warned {
            health.warned = false;
            let failed = self.dropped.swap(0, Ordering::Relaxed);
            tracing::info!(
                target: TARGET,
                url = %self.url,
                failed,
                "reconnected to Redis: cross-instance delivery resumed ({failed} message(s) failed to publish meanwhile; the adapter's outbox publishes them now)"
            );
        }
    }

    /// Opens a connection for a stream reader: its answers may take the whole block time.
    async fn connect_reader(&self) -> Result<MultiplexedConnection, Error> {
        self.connect_multiplexed(self.connect_timeout + READ_BLOCK)
            .await
    }

    /// Opens a publisher connection.
    async fn connect_publisher(&self) -> Result<MultiplexedConnection, Error> {
        self.connect_multiplexed(self.connect_timeout).await
    }

    /// Opens a multiplexed connection within the connect timeout, whose answers may take
    /// `response_timeout`.
    async fn connect_multiplexed(
        &self,
        response_timeout: Duration,
    ) -> Result<MultiplexedConnection, Error> {
        let timeout = self.connect_timeout;
        let config = AsyncConnectionConfig::new()
            .set_connection_timeout(Some(timeout))
            .set_response_timeout(Some(response_timeout));
        match tokio::time::timeout(
            timeout,
            self.client
                .get_multiplexed_async_connection_with_config(&config),
        )
        .await
        {
            Ok(Ok(connection)) => Ok(connection),
            Ok(Err(err)) => Err(self.connect_error(err)),
            Err(_) => Err(self.timeout_error()),
        }
    }

    /// The publisher connection's generation: bumped on each new connection.
    fn epoch(&self) -> u64 {
        lock(&self.publisher).generation
    }

    fn set_publisher(&self, connection: MultiplexedConnection) {
        let mut publisher = lock(&self.publisher);
        publisher.connection = Some(connection);
        publisher.generation += 1;
    }

    /// The publisher connection of `generation` failed: drop it (unless it was replaced
    /// already) and have it reconnected.
    fn publisher_failed(&self, generation: u64, err: &RedisError) {
        let lost = {
            let mut publisher = lock(&self.publisher);
            publisher.generation == generation && publisher.connection.take().is_some()
        };
        if lost {
            self.down(Part::Publisher, err);
            self.publisher_lost.notify_one();
        }
    }

    /// Opens a subscriber connection and makes every recorded subscription on it, one
    /// command per subscription so that each reply acknowledges exactly its own command.
    async fn connect_subscriber(&self) -> Result<PubSubStream, Error> {
        let timeout = self.connect_timeout;
        let (mut sink, stream) =
            match tokio::time::timeout(timeout, self.client.get_async_pubsub()).await {
                Ok(Ok(pubsub)) => pubsub.split(),
                Ok(Err(err)) => return Err(self.connect_error(err)),
                Err(_) => return Err(self.timeout_error()),
            };
        // Locked only now, so that `subscribe` never waits for a connection attempt; what
        // it records meanwhile is in the routes read below.
        let mut slot = self.subscriber.lock().await;
        let resubscribe = async {
            let (channels, patterns): (Vec<String>, Vec<String>) = {
                let routes = self.routes();
                (
                    routes.channels.keys().cloned().collect(),
                    routes.patterns.keys().cloned().collect(),
                )
            };
            for pattern in &patterns {
                sink.psubscribe(pattern).await?;
            }
            for channel in &channels {
                sink.subscribe(channel).await?;
            }
            Ok::<_, RedisError>(())
        };
        match tokio::time::timeout(timeout, resubscribe).await {
            Ok(Ok(())) => {
                *slot = Some(sink);
                Ok(stream)
            }
            Ok(Err(err)) => Err(self.connect_error(err)),
            Err(_) => Err(self.timeout_error()),
        }
    }

    /// Hands a message to the inbox of the subscription it arrived for.
    async fn route(&self, msg: &Msg) {
        let inbox = {
            let routes = self.routes();
            if msg.from_pattern() {
                msg.get_pattern::<String>()
                    .ok()
                    .and_then(|pattern| routes.patterns.get(&pattern).cloned())
            } else {
                routes.channels.get(msg.get_channel_name()).cloned()
            }
        };
        let channel = msg.get_channel_name();
        match inbox {
            Some(inbox) => {
                let payload = Bytes::copy_from_slice(msg.get_payload_bytes());
                if !inbox.deliver(ChannelMessage::new(channel, payload)).await {
                    tracing::trace!(target: TARGET, channel, "the subscriber is gone");
                }
            }
            // Unsubscribed a moment ago; Redis had already sent it.
            None => tracing::trace!(target: TARGET, channel, "no subscription for a message"),
        }
    }
}

/// The subscriber task: routes what arrives, reconnects and resubscribes when the
/// connection drops.
async fn run_subscriber(
    shared: Arc<Shared>,
    mut stream: Option<PubSubStream>,
    mut backoff: Backoff,
) {
    loop {
        match stream.take() {
            Some(mut messages) => {
                while let Some(msg) = messages.next().await {
                    shared.route(&msg).await;
                }
                *shared.subscriber.lock().await = None;
                shared.down(Part::Subscriber, &"the subscription connection closed");
            }
            None => {
                tokio::time::sleep(backoff.next()).await;
                match shared.connect_subscriber().await {
                    Ok(messages) => {
                        backoff.reset();
                        shared.up(Part::Subscriber);
                        stream = Some(messages);
                    }
                    Err(err) => shared.down(Part::Subscriber, &err),
                }
            }
        }
    }
}

/// The publisher task: waits for the publisher connection to be lost, then reconnects it
/// with backoff. (Publishing itself happens in [`RedisDriver::publish`].)
async fn run_publisher(shared: Arc<Shared>, mut backoff: Backoff) {
    loop {
        shared.publisher_lost.notified().await;
        while lock(&shared.publisher).connection.is_none() {
            tokio::time::sleep(backoff.next()).await;
            match shared.connect_publisher().await {
                Ok(connection) => {
                    shared.set_publisher(connection);
                    backoff.reset();
                    shared.up(Part::Publisher);
                }
                Err(err) => shared.down(Part::Publisher, &err),
            }
        }
    }
}

/// The id of the last entry of `stream` (`0-0` when it has none).
async fn last_entry(
    connection: &mut MultiplexedConnection,
    stream: &str,
) -> Result<StreamId, RedisError> {
    let reply: StreamRangeReply = ::redis::cmd("XREVRANGE")
        .arg(stream)
        .arg("+")
        .arg("-")
        .arg("COUNT")
        .arg(1)
        .query_async(connection)
        .await?;
    Ok(reply
        .ids
        .first()
        .and_then(|entry| entry.id.parse().ok())
        .unwrap_or(StreamId::ZERO))
}

/// A stream reader's task: `XREAD`s the entries after `last` and hands them to `inbox` in
/// order; when the connection drops, connects again with backoff and reads on from the last
/// entry it delivered, so that nothing appended meanwhile is skipped. (`last` is `None`
/// when the stream could not be read at start: it is its last entry once it can.)
async fn run_reader(
    shared: Arc<Shared>,
    stream: String,
    inbox: Inbox,
    mut connection: Option<MultiplexedConnection>,
    mut last: Option<StreamId>,
    mut backoff: Backoff,
) {
    loop {
        let Some(mut reader) = connection.take() else {
            tokio::time::sleep(backoff.next()).await;
            match shared.connect_reader().await {
                Ok(reader) => {
                    backoff.reset();
                    shared.up(Part::Reader(&stream));
                    connection = Some(reader);
                }
                Err(err) => shared.down(Part::Reader(&stream), &err),
            }
            continue;
        };
        let after = match last {
            Some(after) => after,
            None => match last_entry(&mut reader, &stream).await {
                Ok(after) => *last.insert(after),
                Err(err) => {
                    shared.down(Part::Reader(&stream), &err);
                    continue;
                }
            },
        };
        let read: Result<Option<StreamReadReply>, RedisError> = ::redis::cmd("XREAD")
            .arg("COUNT")
            .arg(READ_COUNT)
            .arg("BLOCK")
            .arg(u64::try_from(READ_BLOCK.as_millis()).unwrap_or(1000))
            .arg("STREAMS")
            .arg(&stream)
            .arg(after.to_string())
            .query_async(&mut reader)
            .await;
        match read {
            Ok(reply) => {
                for entry in reply.into_iter().flat_map(|r| r.keys).flat_map(|k| k.ids) {
                    let Ok(id) = entry.id.parse::<StreamId>() else {
                        continue;
                    };
                    last = Some(after.max(id));
                    let payload = match entry.map.get("d") {
                        Some(Value::BulkString(bytes)) => Bytes::copy_from_slice(bytes),
                        _ => {
                            tracing::debug!(target: TARGET, stream, %id, "ignored an entry without a `d` field");
                            continue;
                        }
                    };
                    if !inbox
                        .deliver(ChannelMessage::entry(&stream, id, payload))
                        .await
                    {
                        // The follower is gone.
                        return;
                    }
                }
                connection = Some(reader);
            }
            Err(err) if connection_lost(&err) || err.is_timeout() => {
                shared.down(Part::Reader(&stream), &err);
            }
            Err(err) => {
                // Refused (a key of another type, say): said, and tried again later.
                tracing::warn!(target: TARGET, stream, "cannot read the stream: {err}");
                tokio::time::sleep(backoff.next()).await;
                connection = Some(reader);
            }
        }
    }
}

impl RedisDriver {
    /// Connects the publisher and the subscriber to the Redis of `config`. Only the
    /// connection settings are read (URL, [start_degraded](RedisConfig::start_degraded),
    /// timeouts, backoff). Must be called inside a tokio runtime: each connection has a
    /// background task.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidUrl`]; and [`Error::Connect`] or [`Error::Timeout`] when Redis cannot
    /// be reached, unless the config [starts degraded](RedisConfig::start_degraded). Every
    /// message names the URL (password redacted).
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// use ws_gateway_redis::{RedisConfig, RedisDriver};
    ///
    /// // Nothing listens on port 1.
    /// let err = RedisDriver::connect(&RedisConfig::new("redis://127.0.0.1:1")).await.unwrap_err();
    /// assert!(err.to_string().contains("redis://127.0.0.1:1"));
    /// # }
    /// ```
    pub async fn connect(config: &RedisConfig) -> Result<Self, Error> {
        let url = redact(&config.url);
        let client = Client::open(config.url.as_str()).map_err(|source| Error::InvalidUrl {
            url: url.clone(),
            source: Box::new(source),
        })?;
        let shared = Arc::new(Shared {
            client,
            url,
            connect_timeout: config.connect_timeout,
            backoff_min: config.backoff_min,
            backoff_max: config.backoff_max,
            publisher: Mutex::default(),
            publisher_lost: Notify::new(),
            subscriber: tokio::sync::Mutex::new(None),
            routes: RwLock::default(),
            health: Mutex::default(),
            dropped: AtomicU64::new(0),
        });
        let connections = async {
            let publisher = shared.connect_publisher().await?;
            let subscriber = shared.connect_subscriber().await?;
            Ok::<_, Error>((publisher, subscriber))
        };
        let stream = match connections.await {
            Ok((publisher, stream)) => {
                shared.set_publisher(publisher);
                shared.up(Part::Publisher);
                shared.up(Part::Subscriber);
                Some(stream)
            }
            Err(err) if config.start_degraded => {
                shared.down(Part::Publisher, &err);
                // Have the publisher task start connecting at once.
                shared.publisher_lost.notify_one();
                None
            }
            Err(err) => return Err(err),
        };
        let backoff = || Backoff::new(shared.backoff_min, shared.backoff_max);
        let tasks = [
            tokio::spawn(run_publisher(Arc::clone(&shared), backoff())),
            tokio::spawn(run_subscriber(Arc::clone(&shared), stream, backoff())),
        ];
        Ok(Self {
            shared,
            tasks,
            readers: Mutex::default(),
        })
    }
}

impl fmt::Debug for RedisDriver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisDriver")
            .field("url", &self.shared.url)
            .field("connected", &self.shared.is_connected())
            .finish()
    }
}

impl Driver for RedisDriver {
    type Error = Error;

    /// One pipeline of `PUBLISH`es. Fails at once, without queueing, while the publisher
    /// is disconnected: the adapter's outbox keeps them until Redis is back.
    async fn publish(&self, messages: &[ChannelMessage]) -> Result<Vec<usize>, Error> {
        if messages.is_empty() {
            return Ok(Vec::new());
        }
        let mut pipe = ::redis::pipe();
        for message in messages {
            pipe.cmd("PUBLISH")
                .arg(&message.channel)
                .arg(&*message.payload);
        }
        let counts: Vec<i64> = self.shared.publish_pipeline(&pipe, messages.len()).await?;
        Ok(counts
            .into_iter()
            .map(|count| usize::try_from(count).unwrap_or(0))
            .collect())
    }

    /// `SUBSCRIBE`, or `PSUBSCRIBE` for a prefix. While disconnected the subscription is
    /// recorded and made on reconnection.
    async fn subscribe(&self, subscription: Subscription, inbox: Inbox) -> Result<(), Error> {
        let shared = &*self.shared;
        let (kind, name) = redis_name(&subscription);
        let mut slot = shared.subscriber.lock().await;
        {
            let mut routes = shared.routes_mut();
            let routes = match kind {
                Kind::Channel => &mut routes.channels,
                Kind::Pattern => &mut routes.patterns,
            };
            routes.insert(name.clone(), inbox);
        }
        let Some(sink) = slot.as_mut() else {
            return Ok(());
        };
        let sent = tokio::time::timeout(shared.connect_timeout, async {
            match kind {
                Kind::Channel => sink.subscribe(&name).await,
                Kind::Pattern => sink.psubscribe(&name).await,
            }
        })
        .await;
        match sent {
            Ok(Ok(())) => Ok(()),
            // The subscriber task sees the connection close and resubscribes, this one
            // included. (No answer in time means the same: nothing else answers there.)
            Ok(Err(err)) if connection_lost(&err) => Ok(()),
            Err(_) => Ok(()),
            Ok(Err(err)) => {
                let mut routes = shared.routes_mut();
                match kind {
                    Kind::Channel => routes.channels.remove(&name),
                    Kind::Pattern => routes.patterns.remove(&name),
                };
                Err(shared.command_error(err))
            }
        }
    }

    /// `UNSUBSCRIBE`, or `PUNSUBSCRIBE` for a prefix.
    async fn unsubscribe(&self, subscription: &Subscription) -> Result<(), Error> {
        let shared = &*self.shared;
        let (kind, name) = redis_name(subscription);
        let mut slot = shared.subscriber.lock().await;
        let known = {
            let mut routes = shared.routes_mut();
            match kind {
                Kind::Channel => routes.channels.remove(&name),
                Kind::Pattern => routes.patterns.remove(&name),
            }
            .is_some()
        };
        let Some(sink) = slot.as_mut().filter(|_| known) else {
            return Ok(());
        };
        let sent = tokio::time::timeout(shared.connect_timeout, async {
            match kind {
                Kind::Channel => sink.unsubscribe(&name).await,
                Kind::Pattern => sink.punsubscribe(&name).await,
            }
        })
        .await;
        match sent {
            Ok(Err(err)) if !connection_lost(&err) => Err(shared.command_error(err)),
            // A lost connection took the subscription with it, and it is no longer
            // recorded, so the reconnection does not make it again.
            _ => Ok(()),
        }
    }

    /// A pipeline of `XADD <stream> MAXLEN ~ <max_len> * d <payload>` on the publisher
    /// connection. Fails at once while it is disconnected.
    async fn append(
        &self,
        stream: &str,
        payloads: &[Bytes],
        max_len: usize,
    ) -> Result<Vec<StreamId>, Error> {
        if payloads.is_empty() {
            return Ok(Vec::new());
        }
        let mut pipe = ::redis::pipe();
        for payload in payloads {
            pipe.cmd("XADD")
                .arg(stream)
                .arg("MAXLEN")
                .arg("~")
                .arg(max_len)
                .arg("*")
                .arg("d")
                .arg(&**payload);
        }
        let ids: Vec<String> = self.shared.publish_pipeline(&pipe, payloads.len()).await?;
        Ok(ids
            .iter()
            .map(|id| id.parse().unwrap_or(StreamId::ZERO))
            .collect())
    }

    /// Starts a reader for `stream` on a connection of its own, from its last entry now
    /// (or, while Redis is unreachable, from the last entry when it is reached).
    async fn follow(&self, stream: &str, inbox: Inbox) -> Result<StreamId, Error> {
        let shared = &self.shared;
        let (connection, start) = match shared.connect_reader().await {
            Ok(mut connection) => match last_entry(&mut connection, stream).await {
                Ok(last) => {
                    shared.up(Part::Reader(stream));
                    (Some(connection), Some(last))
                }
                Err(err) if !connection_lost(&err) => return Err(shared.command_error(err)),
                Err(err) => {
                    shared.down(Part::Reader(stream), &err);
                    (None, None)
                }
            },
            Err(err) => {
                shared.down(Part::Reader(stream), &err);
                (None, None)
            }
        };
        let backoff = Backoff::new(shared.backoff_min, shared.backoff_max);
        let task = tokio::spawn(run_reader(
            Arc::clone(shared),
            stream.to_owned(),
            inbox,
            connection,
            start,
            backoff,
        ));
        lock(&self.readers).push(task);
        Ok(start.unwrap_or(StreamId::ZERO))
    }

    fn epoch(&self) -> u64 {
        self.shared.epoch()
    }

    fn is_connected(&self) -> bool {
        self.shared.is_connected()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_its_maximum_and_resets() {
        let mut backoff = Backoff::new(Duration::from_millis(100), Duration::from_millis(350));
        let delays: Vec<_> = (0..4).map(|_| backoff.next().as_millis()).collect();
        assert_eq!(delays, [100, 200, 350, 350]);
        backoff.reset();
        assert_eq!(backoff.next().as_millis(), 100);
    }

    #[test]
    fn glob_characters_in_prefixes_are_escaped() {
        assert_eq!(glob_escape("app"), "app");
        assert_eq!(glob_escape("a*b?[c]\\"), "a\\*b\\?\\[c\\]\\\\");
        let (_, pattern) = redis_name(&Subscription::Prefix("a*:".into()));
        assert_eq!(pattern, "a\\*:*");
    }
}
