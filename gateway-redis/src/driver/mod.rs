//! The seam between the adapter and its backend: the [`Driver`] trait, what crosses it
//! ([`ChannelMessage`], [`Subscription`], [`Inbox`], [`StreamId`]), and the drivers this crate
//! ships, [`RedisDriver`] (redis-rs), [`RedisClusterDriver`] and [`MemoryDriver`] (an
//! in-process [`MemoryBus`]).
//!
//! Everything the adapter promises (fan-out to every instance, each instance ignoring its
//! own messages, order per sender, `fetch_clients` with a timeout) lives in the adapter and
//! relies only on what this trait promises, so it is tested once, on the in-memory bus,
//! and each driver is tested on its own against its backend. socketioxide-redis draws the
//! same line (`crates/socketioxide-redis/src/drivers/mod.rs`).

mod cluster;
mod memory;
mod redis;

use std::fmt;
use std::future::Future;
use std::str::FromStr;

use bytes::Bytes;
use tokio::sync::mpsc;

pub use self::cluster::RedisClusterDriver;
pub use self::memory::{MemoryBus, MemoryDriver};
pub use self::redis::RedisDriver;

/// A pub/sub backend for [`RedisAdapter`](crate::RedisAdapter): publishes payloads on
/// named channels and delivers what its subscriptions receive.
///
/// One driver value is one instance's connection: give each adapter its own. What a
/// driver must guarantee, and the adapter builds on:
///
/// - **Order.** Messages of one [`publish`](Self::publish) call, and of calls made one
///   after the other, reach each subscriber in that order. The adapter makes one call at a
///   time, from one task.
/// - **Everyone, once.** A message reaches every subscription matching its channel, the
///   publishing driver's own included, once per matching subscription, and the count
///   `publish` returns says how many that was: the adapter waits for that many answers to
///   a request.
/// - **One inbox, in order.** What arrives for subscriptions sharing an [`Inbox`] goes
///   into it in the order the driver received it (the adapter gives one inbox to all of
///   its subscriptions, so a room operation and a later request from one instance are
///   applied in that order).
/// - **Subscriptions survive.** A driver that reconnects keeps every subscription it
///   accepted and makes it again before it reports itself [connected](Self::is_connected).
///   While disconnected it may drop messages (that is what pub/sub does), never replay them.
///
/// Besides channels, a driver may carry **streams** ([`append`](Self::append),
/// [`follow`](Self::follow)): an append-only log that a follower reads from where it left
/// off, so that what is appended while a follower is cut off reaches it once it is back
/// (Redis Streams: `XADD`, `XREAD`). The adapter's classic mode carries operations on one.
/// A driver without streams inherits defaults that carry them on a channel, with a
/// channel's losses; every instance of an app must then use such a driver. A driver that
/// wraps another forwards `append`, `follow` and `epoch` too.
///
/// Subscriptions can change at any time, not just at start: the per-room mode (a channel per
/// room, subscribed when its first local member joins) needs nothing more from this trait
/// than [`subscribe`](Self::subscribe) and [`unsubscribe`](Self::unsubscribe) at run time.
/// A driver decides how a channel is carried: [`RedisClusterDriver`] makes every channel a
/// sharded one (`SSUBSCRIBE`).
///
/// # Examples
///
/// A driver that wraps another and counts what it publishes, on the in-memory bus:
///
/// ```
/// use std::sync::atomic::{AtomicUsize, Ordering};
/// use ws_gateway_redis::driver::{ChannelMessage, Driver, Inbox, MemoryBus, MemoryDriver, Subscription};
///
/// struct Counting {
///     inner: MemoryDriver,
///     published: AtomicUsize,
/// }
///
/// impl Driver for Counting {
///     type Error = <MemoryDriver as Driver>::Error;
///
///     async fn publish(&self, messages: &[ChannelMessage]) -> Result<Vec<usize>, Self::Error> {
///         self.published.fetch_add(messages.len(), Ordering::Relaxed);
///         self.inner.publish(messages).await
///     }
///
///     async fn subscribe(&self, subscription: Subscription, inbox: Inbox) -> Result<(), Self::Error> {
///         self.inner.subscribe(subscription, inbox).await
///     }
///
///     async fn unsubscribe(&self, subscription: &Subscription) -> Result<(), Self::Error> {
///         self.inner.unsubscribe(subscription).await
///     }
/// }
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let bus = MemoryBus::new();
/// let driver = Counting { inner: bus.driver(), published: AtomicUsize::new(0) };
/// let (inbox, mut received) = Inbox::channel(8);
/// driver.subscribe(Subscription::Channel("news".into()), inbox).await.unwrap();
///
/// let counts = driver.publish(&[ChannelMessage::new("news", "hello")]).await.unwrap();
/// assert_eq!(counts, [1]); // one subscription received it
/// assert_eq!(received.recv().await.unwrap().payload, "hello");
/// assert_eq!(driver.published.load(Ordering::Relaxed), 1);
/// # }
/// ```
pub trait Driver: Send + Sync + 'static {
    /// Why an operation failed.
    type Error: std::error::Error + Send + Sync + 'static;

    /// Publishes `messages` in order and returns, for each, how many subscriptions received
    /// it (Redis `PUBLISH`'s answer).
    ///
    /// # Errors
    ///
    /// The backend is unreachable or refused: none of `messages` can be assumed delivered.
    fn publish(
        &self,
        messages: &[ChannelMessage],
    ) -> impl Future<Output = Result<Vec<usize>, Self::Error>> + Send;

    /// Delivers what is published on `subscription` to `inbox` from now on. Subscribing
    /// again to the same subscription replaces its inbox.
    ///
    /// A driver that reconnects accepts a subscription while disconnected and makes it
    /// when it is connected again.
    ///
    /// # Errors
    ///
    /// The backend refused the subscription (it is then not kept).
    fn subscribe(
        &self,
        subscription: Subscription,
        inbox: Inbox,
    ) -> impl Future<Output = Result<(), Self::Error>> + Send;

    /// Stops delivering what is published on `subscription`. Unsubscribing from something
    /// never subscribed to is not an error.
    ///
    /// # Errors
    ///
    /// The backend refused (the driver forgets the subscription anyway, so it is not made
    /// again on reconnection).
    fn unsubscribe(
        &self,
        subscription: &Subscription,
    ) -> impl Future<Output = Result<(), Self::Error>> + Send;

    /// Appends `payloads` to the stream `stream`, in order, keeping about its last `max_len`
    /// entries, and returns each entry's id (Redis: a pipeline of
    /// `XADD <stream> MAXLEN ~ <max_len> * d <payload>`).
    ///
    /// The default, for a backend without streams, publishes them on the channel named
    /// `stream` and returns [`StreamId::ZERO`] for each.
    ///
    /// # Errors
    ///
    /// The backend is unreachable or refused: none of `payloads` can be assumed appended.
    fn append(
        &self,
        stream: &str,
        payloads: &[Bytes],
        max_len: usize,
    ) -> impl Future<Output = Result<Vec<StreamId>, Self::Error>> + Send {
        let _ = max_len;
        let messages: Vec<ChannelMessage> = payloads
            .iter()
            .map(|payload| ChannelMessage::new(stream, payload.clone()))
            .collect();
        async move {
            self.publish(&messages).await?;
            Ok(vec![StreamId::ZERO; messages.len()])
        }
    }

    /// Delivers every entry appended to `stream` after the one it returns (its last entry
    /// when followed) to `inbox`, in order, each as a [`ChannelMessage`] whose channel is
    /// `stream` and whose [`id`](ChannelMessage::id) is the entry's. A driver that
    /// reconnects resumes after the last entry it delivered, so entries appended while it
    /// was cut off are delivered too (as long as the stream still holds them).
    ///
    /// The default, for a backend without streams, subscribes to the channel named
    /// `stream` and returns [`StreamId::ZERO`].
    ///
    /// # Errors
    ///
    /// The backend refused.
    fn follow(
        &self,
        stream: &str,
        inbox: Inbox,
    ) -> impl Future<Output = Result<StreamId, Self::Error>> + Send {
        let subscription = Subscription::Channel(stream.to_owned());
        async move {
            self.subscribe(subscription, inbox).await?;
            Ok(StreamId::ZERO)
        }
    }

    /// A number that changes each time the driver's connection for publishing is made
    /// again: after a change, the backend may be a restarted server that lost what was
    /// appended just before. The default, for backends that never disconnect, is `0`.
    fn epoch(&self) -> u64 {
        0
    }

    /// Whether messages can cross to other instances right now. The default, for backends
    /// that never disconnect, is `true`.
    fn is_connected(&self) -> bool {
        true
    }
}

/// The id of a stream entry, as Redis writes it: `<milliseconds>-<sequence>`. Ids grow
/// along a stream, so they compare in its order.
///
/// # Examples
///
/// ```
/// use ws_gateway_redis::driver::StreamId;
///
/// let id: StreamId = "1700000000000-3".parse().unwrap();
/// assert_eq!(id, StreamId::new(1_700_000_000_000, 3));
/// assert!(id > StreamId::ZERO);
/// assert_eq!(id.to_string(), "1700000000000-3");
/// assert!("3".parse::<StreamId>().is_err());
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct StreamId {
    ms: u64,
    seq: u64,
}

impl StreamId {
    /// `0-0`, before every entry.
    pub const ZERO: Self = Self { ms: 0, seq: 0 };

    /// The id `<ms>-<seq>`.
    pub const fn new(ms: u64, seq: u64) -> Self {
        Self { ms, seq }
    }

    /// The id as 16 big-endian bytes, as the adapter's wire format carries it.
    pub(crate) fn to_bytes(self) -> [u8; 16] {
        let mut bytes = [0; 16];
        bytes[..8].copy_from_slice(&self.ms.to_be_bytes());
        bytes[8..].copy_from_slice(&self.seq.to_be_bytes());
        bytes
    }

    pub(crate) fn from_bytes(bytes: [u8; 16]) -> Self {
        let mut half = [0; 8];
        half.copy_from_slice(&bytes[..8]);
        let ms = u64::from_be_bytes(half);
        half.copy_from_slice(&bytes[8..]);
        Self {
            ms,
            seq: u64::from_be_bytes(half),
        }
    }
}

impl fmt::Display for StreamId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.ms, self.seq)
    }
}

/// A string that is not `<milliseconds>-<sequence>`.
///
/// ```
/// assert!("x-1".parse::<ws_gateway_redis::driver::StreamId>().is_err());
/// ```
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a stream id (`<milliseconds>-<sequence>`): {0:?}")]
pub struct InvalidStreamId(String);

impl FromStr for StreamId {
    type Err = InvalidStreamId;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let invalid = || InvalidStreamId(s.to_owned());
        let (ms, seq) = s.split_once('-').ok_or_else(invalid)?;
        Ok(Self {
            ms: ms.parse().map_err(|_| invalid())?,
            seq: seq.parse().map_err(|_| invalid())?,
        })
    }
}

/// What a subscription listens to.
///
/// Non-exhaustive so that kinds can be added; a driver answers a kind it does not support
/// with an error ([`RedisClusterDriver`], whose channels are sharded, has no prefixes).
///
/// # Examples
///
/// ```
/// use ws_gateway_redis::driver::Subscription;
///
/// let gateways = Subscription::Prefix("app:".into());
/// assert!(gateways.matches("app:/chat"));
/// assert!(!gateways.matches("app#request"));
/// assert!(Subscription::Channel("app#request".into()).matches("app#request"));
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Subscription {
    /// The channel with exactly this name.
    Channel(String),
    /// Every channel whose name starts with this string (Redis: `PSUBSCRIBE`, the prefix
    /// with its glob characters escaped, followed by `*`).
    Prefix(String),
}

impl Subscription {
    /// Whether a message published on `channel` reaches this subscription.
    pub fn matches(&self, channel: &str) -> bool {
        match self {
            Self::Channel(name) => name == channel,
            Self::Prefix(prefix) => channel.starts_with(prefix.as_str()),
        }
    }
}

/// A payload on a named channel: what the adapter publishes and what a subscription
/// receives. The payload is opaque to drivers.
///
/// # Examples
///
/// ```
/// use ws_gateway_redis::driver::ChannelMessage;
///
/// let message = ChannelMessage::new("app:/chat", vec![1, 2, 3]);
/// assert_eq!(message.channel, "app:/chat");
/// assert_eq!(message.payload.len(), 3);
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct ChannelMessage {
    /// The channel's name.
    pub channel: String,
    /// The bytes, shared rather than copied when one message reaches several subscribers.
    pub payload: Bytes,
    /// The entry's id, for what a followed stream delivers ([`Driver::follow`]); `None` on
    /// a channel.
    pub id: Option<StreamId>,
}

impl ChannelMessage {
    /// A message for `channel`.
    pub fn new(channel: impl Into<String>, payload: impl Into<Bytes>) -> Self {
        Self {
            channel: channel.into(),
            payload: payload.into(),
            id: None,
        }
    }

    /// An entry `id` of `stream`, as [`Driver::follow`] delivers it.
    ///
    /// ```
    /// use ws_gateway_redis::driver::{ChannelMessage, StreamId};
    ///
    /// let entry = ChannelMessage::entry("app#operations", StreamId::new(1, 0), "x");
    /// assert_eq!(entry.id, Some(StreamId::new(1, 0)));
    /// ```
    pub fn entry(stream: impl Into<String>, id: StreamId, payload: impl Into<Bytes>) -> Self {
        Self {
            channel: stream.into(),
            payload: payload.into(),
            id: Some(id),
        }
    }
}

/// Where a driver puts what a subscription receives: the sending half of a bounded queue
/// that the adapter drains. A full inbox makes the driver wait, rather than drop.
///
/// # Examples
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// use ws_gateway_redis::driver::{ChannelMessage, Inbox};
///
/// let (inbox, mut received) = Inbox::channel(4);
/// assert!(inbox.deliver(ChannelMessage::new("c", "x")).await);
/// assert_eq!(received.recv().await.unwrap().channel, "c");
///
/// drop(received); // the adapter is gone
/// assert!(!inbox.deliver(ChannelMessage::new("c", "y")).await);
/// # }
/// ```
#[derive(Clone, Debug)]
pub struct Inbox(mpsc::Sender<ChannelMessage>);

impl Inbox {
    /// An inbox holding up to `capacity` undelivered messages (at least one), and its
    /// receiving half: what a driver's test reads, what the adapter drains.
    pub fn channel(capacity: usize) -> (Self, mpsc::Receiver<ChannelMessage>) {
        let (tx, rx) = mpsc::channel(capacity.max(1));
        (Self(tx), rx)
    }

    /// Puts `message` in the inbox, waiting while it is full. Returns `false` once the
    /// receiving side is gone (the driver may then forget the subscription).
    pub async fn deliver(&self, message: ChannelMessage) -> bool {
        self.0.send(message).await.is_ok()
    }

    /// Whether the receiving side is gone.
    pub fn is_closed(&self) -> bool {
        self.0.is_closed()
    }
}
