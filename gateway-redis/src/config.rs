//! [`RedisConfig`]: where Redis is and how the adapter behaves; [`AdapterConfig`]: the part
//! that does not depend on Redis, for an adapter over another [driver](crate::driver).

use std::time::Duration;

/// Which channels the instances of an app talk on: set with
/// [`AdapterConfig::per_room`] or [`RedisConfig::per_room`]. Every instance of an app uses
/// the same mode.
///
/// # Examples
///
/// ```
/// use ws_gateway_redis::{ChannelMode, RedisConfig};
///
/// let config = RedisConfig::new("redis://127.0.0.1:6379").per_room();
/// assert_eq!(config.mode(), ChannelMode::PerRoom);
/// assert_eq!(RedisConfig::new("redis://h").mode(), ChannelMode::Classic);
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum ChannelMode {
    /// Every operation on one stream, `<prefix>#operations` (Redis Streams, as Socket.IO's
    /// Redis Streams adapter does), that every instance reads: every instance receives
    /// every operation, and one cut off from Redis for a while reads on from where it left
    /// off. The default.
    #[default]
    Classic,
    /// A channel per room, `<prefix>:<path>#<room>`, that an instance subscribes to while
    /// it has a member in the room, beside the gateway's channel (broadcasts, emits by
    /// client id) and its own (answers): an instance receives the room traffic of its
    /// members' rooms only. Socket.IO's sharded adapter; on a Redis Cluster the channels
    /// are sharded (`SSUBSCRIBE`/`SPUBLISH`), so each shard carries its rooms only.
    PerRoom,
}

/// How the adapter behaves whatever carries its messages: channel names, the
/// `fetch_clients` timeout, the outgoing queue. Pass it to
/// [`RedisAdapter::with_driver`](crate::RedisAdapter::with_driver); a [`RedisConfig`]
/// holds one and has the same settings.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use ws_gateway_redis::AdapterConfig;
///
/// let config = AdapterConfig::new()
///     .prefix("chat")                                 // channels chat:/path, chat#request, ...
///     .request_timeout(Duration::from_millis(500));  // fetch_clients waits this long
/// # let _ = config;
/// ```
#[derive(Clone, Debug)]
#[must_use = "an AdapterConfig does nothing until passed to `RedisAdapter::with_driver`"]
pub struct AdapterConfig {
    pub(crate) prefix: String,
    pub(crate) request_timeout: Duration,
    pub(crate) queue_capacity: usize,
    pub(crate) mode: ChannelMode,
    pub(crate) outbox_bytes: usize,
    pub(crate) outbox_age: Duration,
    pub(crate) stream_max_len: usize,
}

impl Default for AdapterConfig {
    fn default() -> Self {
        Self {
            prefix: "gateway".into(),
            request_timeout: Duration::from_secs(5),
            queue_capacity: 65_536,
            mode: ChannelMode::Classic,
            outbox_bytes: 64 << 20,
            outbox_age: Duration::from_secs(60),
            stream_max_len: 10_000,
        }
    }
}

impl AdapterConfig {
    /// Channel prefix `gateway`, every other setting at its default.
    pub fn new() -> Self {
        Self::default()
    }

    /// The channel prefix (default `gateway`): gateway `/chat` uses channel
    /// `<prefix>:/chat`. Instances of one app share a prefix; different apps on one bus
    /// use different ones, and no prefix should be another one followed by `:`.
    pub fn prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }

    /// How long [`fetch_clients`](ws_gateway_core::Broadcast::fetch_clients) waits for the
    /// other instances to answer (default 5 s).
    pub fn request_timeout(mut self, timeout: Duration) -> Self {
        self.request_timeout = timeout;
        self
    }

    /// How many outgoing messages may wait for the driver (default 65,536); beyond that
    /// they are dropped with a warning rather than slowing the emitting task.
    pub fn queue_capacity(mut self, capacity: usize) -> Self {
        self.queue_capacity = capacity.max(1);
        self
    }

    /// Channels per room ([`ChannelMode::PerRoom`]) instead of one per gateway: each
    /// instance receives only the room traffic its clients need.
    pub fn per_room(self) -> Self {
        self.mode(ChannelMode::PerRoom)
    }

    /// The [`ChannelMode`] (default [`Classic`](ChannelMode::Classic)).
    pub fn mode(mut self, mode: ChannelMode) -> Self {
        self.mode = mode;
        self
    }

    /// How much the outbox keeps while the driver cannot publish (Redis unreachable): at
    /// most `max_bytes` of messages, none older than `max_age` (defaults 64 MiB and 60 s).
    /// Kept messages are published in order once the driver is back; past either bound the
    /// oldest are dropped, counted in
    /// [`REDIS_OUTBOX_DROPPED`](ws_gateway_core::telemetry::REDIS_OUTBOX_DROPPED) and
    /// logged once per outage.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use ws_gateway_redis::AdapterConfig;
    ///
    /// // Ride out a minute without Redis, in at most 16 MiB.
    /// let config = AdapterConfig::new().outbox(16 << 20, Duration::from_secs(60));
    /// # let _ = config;
    /// ```
    pub fn outbox(mut self, max_bytes: usize, max_age: Duration) -> Self {
        self.outbox_bytes = max_bytes;
        self.outbox_age = max_age;
        self
    }

    /// About how many entries the operations stream keeps (classic mode; default 10,000):
    /// `XADD ... MAXLEN ~ <len>`. An instance cut off for longer than that many operations
    /// take misses the oldest of them, and so do all instances after a Redis outage longer
    /// than that (their outboxes are appended at once, after the last 2 s before the outage,
    /// appended again for the followers that had not read them: at most a quarter of this
    /// length): size it to your peak operations per second (all instances together) times
    /// the longest outage to survive plus 2 s (10,000 is 48 s at 200/s; at 5,000/s, 100,000
    /// is 18 s).
    ///
    /// # Examples
    ///
    /// ```
    /// let config = ws_gateway_redis::AdapterConfig::new().stream_max_len(100_000);
    /// # let _ = config;
    /// ```
    pub fn stream_max_len(mut self, len: usize) -> Self {
        self.stream_max_len = len.max(1);
        self
    }
}

/// How to reach Redis and how the adapter behaves; pass it to
/// [`RedisAdapter::connect`](crate::RedisAdapter::connect).
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use ws_gateway_redis::RedisConfig;
///
/// let config = RedisConfig::new("redis://127.0.0.1:6379")
///     .prefix("chat")                              // channels chat:/path, chat#request, ...
///     .start_degraded(true)                        // start even if Redis is down
///     .request_timeout(Duration::from_secs(2));    // fetch_clients waits this long
/// assert_eq!(config.url(), "redis://127.0.0.1:6379");
/// ```
#[derive(Clone, Debug)]
#[must_use = "a RedisConfig does nothing until passed to `RedisAdapter::connect`"]
pub struct RedisConfig {
    pub(crate) url: String,
    /// The cluster's seed nodes, for [`RedisAdapter::connect_cluster`](crate::RedisAdapter::connect_cluster).
    pub(crate) nodes: Vec<String>,
    pub(crate) start_degraded: bool,
    pub(crate) connect_timeout: Duration,
    pub(crate) backoff_min: Duration,
    pub(crate) backoff_max: Duration,
    pub(crate) adapter: AdapterConfig,
}

impl RedisConfig {
    /// Redis at `url` (`redis://[user:password@]host[:port][/db]`, or `rediss://` when the
    /// `redis` crate's TLS feature is enabled), channel prefix `gateway`, every other
    /// setting at its default.
    pub fn new(url: impl Into<String>) -> Self {
        let url = url.into();
        Self {
            nodes: vec![url.clone()],
            url,
            start_degraded: false,
            connect_timeout: Duration::from_secs(5),
            backoff_min: Duration::from_millis(100),
            backoff_max: Duration::from_secs(5),
            adapter: AdapterConfig::default(),
        }
    }

    /// A Redis Cluster reached through any of `nodes` (seed URLs, `redis://host:port`), for
    /// [`RedisAdapter::connect_cluster`](crate::RedisAdapter::connect_cluster), in
    /// [per-room mode](ChannelMode::PerRoom).
    ///
    /// # Examples
    ///
    /// ```
    /// use ws_gateway_redis::{ChannelMode, RedisConfig};
    ///
    /// let config = RedisConfig::cluster(["redis://10.0.0.1:6379", "redis://10.0.0.2:6379"]);
    /// assert_eq!(config.url(), "redis://10.0.0.1:6379");
    /// assert_eq!(config.mode(), ChannelMode::PerRoom);
    /// ```
    pub fn cluster<S: Into<String>>(nodes: impl IntoIterator<Item = S>) -> Self {
        let nodes: Vec<String> = nodes.into_iter().map(Into::into).collect();
        let mut config = Self::new(nodes.first().cloned().unwrap_or_default()).per_room();
        config.nodes = nodes;
        config
    }

    /// The URL given to [`new`](Self::new) (the first node of a [cluster](Self::cluster)).
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Channels per room ([`ChannelMode::PerRoom`]) instead of one per gateway.
    pub fn per_room(mut self) -> Self {
        self.adapter = self.adapter.per_room();
        self
    }

    /// The [`ChannelMode`] (default [`Classic`](ChannelMode::Classic); a
    /// [cluster](Self::cluster) is always [`PerRoom`](ChannelMode::PerRoom)).
    pub fn mode(&self) -> ChannelMode {
        self.adapter.mode
    }

    /// The channel prefix (default `gateway`): gateway `/chat` uses channel
    /// `<prefix>:/chat`. Instances of one app share a prefix; different apps on one Redis
    /// use different ones, and no prefix should be another one followed by `:`.
    pub fn prefix(mut self, prefix: impl Into<String>) -> Self {
        self.adapter = self.adapter.prefix(prefix);
        self
    }

    /// Whether [`connect`](crate::RedisAdapter::connect) succeeds when Redis cannot be
    /// reached (default `false`: it fails naming the URL). A degraded adapter delivers
    /// locally and keeps trying to connect in the background.
    pub fn start_degraded(mut self, yes: bool) -> Self {
        self.start_degraded = yes;
        self
    }

    /// How long one connection attempt may take (default 5 s).
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// How long [`fetch_clients`](ws_gateway_core::Broadcast::fetch_clients) waits for the
    /// other instances to answer (default 5 s).
    pub fn request_timeout(mut self, timeout: Duration) -> Self {
        self.adapter = self.adapter.request_timeout(timeout);
        self
    }

    /// The delay between reconnection attempts: `min` at first, doubling up to `max`
    /// (defaults 100 ms and 5 s).
    pub fn reconnect_backoff(mut self, min: Duration, max: Duration) -> Self {
        self.backoff_min = min;
        self.backoff_max = max.max(min);
        self
    }

    /// How many outgoing messages may wait for the publisher connection (default 65,536);
    /// beyond that they are dropped with a warning rather than slowing the emitting task.
    pub fn queue_capacity(mut self, capacity: usize) -> Self {
        self.adapter = self.adapter.queue_capacity(capacity);
        self
    }

    /// How much the outbox keeps while Redis is unreachable (defaults 64 MiB and 60 s):
    /// see [`AdapterConfig::outbox`].
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use ws_gateway_redis::RedisConfig;
    ///
    /// let config = RedisConfig::new("redis://127.0.0.1:6379").outbox(8 << 20, Duration::from_secs(30));
    /// # let _ = config;
    /// ```
    pub fn outbox(mut self, max_bytes: usize, max_age: Duration) -> Self {
        self.adapter = self.adapter.outbox(max_bytes, max_age);
        self
    }

    /// About how many entries the operations stream keeps (default 10,000): see
    /// [`AdapterConfig::stream_max_len`].
    ///
    /// # Examples
    ///
    /// ```
    /// let config = ws_gateway_redis::RedisConfig::new("redis://h").stream_max_len(50_000);
    /// # let _ = config;
    /// ```
    pub fn stream_max_len(mut self, len: usize) -> Self {
        self.adapter = self.adapter.stream_max_len(len);
        self
    }
}
