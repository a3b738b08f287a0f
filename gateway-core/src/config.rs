//! [`ConnectionConfig`]: per-connection buffer sizes and limits.

use std::time::Duration;

/// Per-connection settings, applied on every upgrade.
///
/// The defaults are small on purpose: axum's own defaults (128 KiB read and write buffers,
/// zero-filled on every read) make a server 2-3x slower and about 20x larger per connection
/// than 4 KiB buffers.
///
/// # Examples
///
/// ```
/// let mut config = gateway_core::ConnectionConfig::default();
/// config.max_message_size = 16 * 1024;
/// config.max_frame_size = 16 * 1024;
/// assert_eq!(config.read_buffer_size, 4096);
/// let app = gateway_core::GatewayApp::new().config(config);
/// # let _ = app;
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct ConnectionConfig {
    /// Read buffer capacity of each socket. Default 4 KiB.
    pub read_buffer_size: usize,
    /// Bytes buffered before a write reaches the socket. Default 4 KiB.
    pub write_buffer_size: usize,
    /// Largest message accepted from a client; a larger one closes the connection with
    /// code 1009. Default 64 KiB.
    pub max_message_size: usize,
    /// Largest frame accepted from a client. Default 64 KiB.
    pub max_frame_size: usize,
    /// Frames that may wait in a client's outbound queue; a client that lets it fill is
    /// disconnected with code 1008. Default 1024.
    pub outbound_queue: usize,
    /// Deepest nesting of arrays and objects accepted in a message; a deeper one gets an
    /// exception frame. Default 64.
    pub max_json_depth: usize,
    /// Requests of one client whose handlers may run at once (async handlers, guards,
    /// interceptors, reply streams). Past it the client is not read until one finishes:
    /// backpressure, never an unbounded queue. Default 64.
    pub max_in_flight: usize,
    /// Rooms one client may be in at once (Centrifugo's `client_channel_limit`); a join past
    /// it returns [`RoomError::TooManyRooms`](crate::RoomError), an `exception` frame when a
    /// handler returns it, and joins nothing. Default 128.
    pub max_rooms_per_client: usize,
    /// Longest room name, in bytes (Centrifugo's `channel_max_length`); a join of a longer
    /// one returns [`RoomError::NameTooLong`](crate::RoomError) and joins nothing.
    /// Default 255.
    pub max_room_name_len: usize,
    /// Longest event name a client may send, in bytes; a longer one gets an `exception`
    /// frame that does not repeat it. Default 128.
    pub max_event_name_len: usize,
    /// Longest request id a client may send, in bytes of JSON (`"abc"` is 5); a longer one
    /// gets an `exception` frame that does not repeat it. Default 64.
    pub max_id_len: usize,
    /// Messages a client may send, per second, with bursts; `None` for no limit. Default
    /// 1,000 per second, bursts of 2,000.
    pub rate_limit: Option<RateLimit>,
    /// Connections this instance accepts, over every gateway; more get HTTP 503 before the
    /// upgrade. Default 100,000.
    pub max_connections: Option<usize>,
    /// Connections accepted from one IP address; more get HTTP 429 before the upgrade.
    /// Default `None` (clients behind one NAT share an address).
    pub max_connections_per_ip: Option<usize>,
    /// How often the server pings each client. Default 25 s (Socket.IO's `pingInterval`).
    pub ping_interval: Option<Duration>,
    /// A client that sends nothing (not even a pong) for this long is closed with code 1001
    /// and its `handle_disconnect` runs. Default 60 s.
    pub idle_timeout: Option<Duration>,
    /// Browser origins allowed to connect (`Origin` header, e.g. `"https://chat.example"`);
    /// others get HTTP 403 before the upgrade, against cross-site WebSocket hijacking.
    /// Requests without an `Origin` (non-browser clients) are allowed. Default `None`: any.
    pub allowed_origins: Option<Vec<String>>,
    /// How long a write to a client may wait on a full socket (a client that stopped
    /// reading). Meanwhile the client is not read; past it the connection closes with code
    /// 1008. `None`: wait as long as the outbound queue has room. Default 10 s.
    pub write_timeout: Option<Duration>,
    /// How long closing a connection may take: writing the close frame, then reading and
    /// discarding what the client still sends until it closes its side, so that the close
    /// frame reaches it instead of a TCP reset. Default 1 s.
    pub close_timeout: Duration,
}

/// A per-connection token bucket: `per_second` tokens a second, at most `burst` saved up.
/// Every message takes a token, and so does the exception frame answering a message that
/// found none: a client over the limit runs into debt, and once it owes `close_after`
/// tokens the connection closes with code 1008. A client back under the limit pays its
/// debt off; one that stays over it is closed, however its messages are spaced.
///
/// # Examples
///
/// ```
/// let mut config = gateway_core::ConnectionConfig::default();
/// config.rate_limit = Some(gateway_core::RateLimit::new(10, 20));
/// assert_eq!(config.rate_limit.unwrap().close_after, 100);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct RateLimit {
    /// Sustained messages per second.
    pub per_second: u32,
    /// Messages that may arrive at once.
    pub burst: u32,
    /// Tokens a client over the limit may owe (one per rejected message) before the
    /// connection closes.
    pub close_after: u32,
}

impl RateLimit {
    /// `per_second` with bursts of `burst`; closes once 100 tokens are owed.
    ///
    /// # Examples
    ///
    /// ```
    /// use gateway_core::RateLimit;
    ///
    /// let limit = RateLimit::new(5, 10);
    /// assert_eq!((limit.per_second, limit.burst, limit.close_after), (5, 10, 100));
    /// ```
    pub fn new(per_second: u32, burst: u32) -> Self {
        Self {
            per_second,
            burst,
            close_after: 100,
        }
    }
}

impl Default for ConnectionConfig {
    fn default() -> Self {
        Self {
            read_buffer_size: 4 * 1024,
            write_buffer_size: 4 * 1024,
            max_message_size: 64 * 1024,
            max_frame_size: 64 * 1024,
            outbound_queue: 1024,
            max_json_depth: 64,
            max_in_flight: 64,
            max_rooms_per_client: 128,
            max_room_name_len: 255,
            max_event_name_len: 128,
            max_id_len: 64,
            rate_limit: Some(RateLimit::new(1_000, 2_000)),
            max_connections: Some(100_000),
            max_connections_per_ip: None,
            ping_interval: Some(Duration::from_secs(25)),
            idle_timeout: Some(Duration::from_secs(60)),
            allowed_origins: None,
            write_timeout: Some(Duration::from_secs(10)),
            close_timeout: Duration::from_secs(1),
        }
    }
}
