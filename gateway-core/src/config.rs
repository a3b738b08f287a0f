//! [`ConnectionConfig`]: per-connection buffer sizes and limits.

use std::net::IpAddr;
use std::time::Duration;

use ipnet::IpNet;

/// Per-connection settings, applied on every upgrade.
///
/// The defaults are small on purpose: axum's own defaults (128 KiB read and write buffers,
/// zero-filled on every read) make a server 2-3x slower and about 20x larger per connection
/// than 4 KiB buffers.
///
/// # Examples
///
/// ```
/// let mut config = ws_gateway_core::ConnectionConfig::default();
/// config.max_message_size = 16 * 1024;
/// config.max_frame_size = 16 * 1024;
/// assert_eq!(config.read_buffer_size, 4096);
/// let app = ws_gateway_core::GatewayApp::new().config(config);
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
    ///
    /// The address is the TCP peer's, or behind [`trusted_proxies`](Self::trusted_proxies)
    /// the client's they forward. When set, a server that does not know the peer (plain
    /// `axum::serve(listener, router)`, without `ConnectInfo`) refuses every upgrade with
    /// HTTP 500 rather than silently counting nobody: serve with `ws_gateway_axum::serve`, or
    /// `router.into_make_service_with_connect_info::<SocketAddr>()`.
    pub max_connections_per_ip: Option<usize>,
    /// Reverse proxies (load balancers, ingress) whose forwarded-for header names the
    /// client: when the TCP peer is one of them, the client's address is read from the
    /// header (the last hop not itself a trusted proxy), for `max_connections_per_ip` and
    /// [`Handshake::client_ip`](crate::Handshake::client_ip). Default `None`: forwarded
    /// headers are ignored, as a client can write them.
    pub trusted_proxies: Option<TrustedProxies>,
    /// Bytes of request headers (names and values) an upgrade may bring: the connection
    /// keeps them, in its [`Handshake`](crate::Handshake), for as long as it lives (the
    /// upgrade's own, `Sec-WebSocket-Key` and the like, are not counted nor kept). More get
    /// HTTP 431 before the upgrade. Default 16 KiB, as `ws_gateway_axum::serve` bounds the
    /// whole request head; this bound holds under any server.
    pub max_handshake_size: usize,
    /// How often the server pings each client. Default 25 s (Socket.IO's `pingInterval`).
    pub ping_interval: Option<Duration>,
    /// A client that sends nothing (not even a pong) for this long is closed with code 1001
    /// and its `handle_disconnect` runs. Default 60 s.
    pub idle_timeout: Option<Duration>,
    /// Browser origins allowed to connect (the `Origin` header), against cross-site
    /// WebSocket hijacking; others get HTTP 403 before the upgrade. Requests without an
    /// `Origin` (non-browser clients) are allowed. Default [`Origins::SameOrigin`].
    pub allowed_origins: Origins,
    /// How long a write to a client may wait on a full socket (a client that stopped
    /// reading). Meanwhile the client is not read; past it the connection closes with code
    /// 1008. `None`: wait as long as the outbound queue has room. Default 10 s.
    pub write_timeout: Option<Duration>,
    /// How long closing a connection may take: writing the close frame, then reading and
    /// discarding what the client still sends until it closes its side, so that the close
    /// frame reaches it instead of a TCP reset. Default 1 s.
    pub close_timeout: Duration,
    /// How long [`Client::emit_with_ack`](crate::Client::emit_with_ack) and
    /// [`Broadcast::emit_with_ack`](crate::Broadcast::emit_with_ack) wait for answers when the
    /// emit sets no [`timeout`](crate::Broadcast::timeout). Default 5 s (socketioxide's
    /// `ack_timeout`).
    pub ack_timeout: Duration,
}

/// Which browser pages may open a connection: [`ConnectionConfig::allowed_origins`].
///
/// A browser sends the page's origin with every WebSocket handshake, and sends the site's
/// cookies along whichever page opened it; without this check, any page a logged-in user
/// visits could connect as that user (cross-site WebSocket hijacking).
///
/// # Examples
///
/// ```
/// use ws_gateway_core::{ConnectionConfig, Origins};
///
/// let mut config = ConnectionConfig::default();
/// assert_eq!(config.allowed_origins, Origins::SameOrigin);
/// config.allowed_origins = Origins::only(["https://chat.example", "https://admin.chat.example"]);
/// assert!(config.allowed_origins.allows("https://chat.example", Some("ws.chat.example")));
/// assert!(!config.allowed_origins.allows("https://evil.example", Some("ws.chat.example")));
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum Origins {
    /// The `Origin` must name the host the request was sent to (its `Host` header, with
    /// the port): pages served by this server. Phoenix's `check_origin` default. Behind a
    /// proxy that rewrites `Host`, list the public origins with [`Origins::Only`].
    #[default]
    SameOrigin,
    /// These origins only, e.g. `"https://chat.example"` (scheme, host and port if not
    /// the scheme's default), compared without regard to case.
    Only(Vec<String>),
    /// Any page. A cross-origin request then carries no cookie into the handshake:
    /// authenticators see no `Cookie` header (so no `token` cookie) and the connection
    /// keeps none, since any page can make a browser send them. Send a token another way
    /// (the `token` query parameter, Socket.IO's `auth`), or list the origins instead.
    Any,
}

impl Origins {
    /// [`Origins::Only`] these origins.
    ///
    /// # Examples
    ///
    /// ```
    /// let origins = ws_gateway_core::Origins::only(["https://chat.example"]);
    /// assert_eq!(origins, ws_gateway_core::Origins::Only(vec!["https://chat.example".into()]));
    /// ```
    pub fn only<S: Into<String>>(origins: impl IntoIterator<Item = S>) -> Self {
        Self::Only(origins.into_iter().map(Into::into).collect())
    }

    /// Whether a request with this `Origin` header, sent to `host` (its `Host` header), may
    /// connect. [`Origins::Any`] allows everything (see there for what happens to cookies).
    ///
    /// # Examples
    ///
    /// ```
    /// use ws_gateway_core::Origins;
    ///
    /// let same = Origins::SameOrigin;
    /// assert!(same.allows("http://localhost:3000", Some("localhost:3000")));
    /// assert!(same.allows("https://Chat.Example", Some("chat.example:443")));
    /// assert!(!same.allows("http://localhost:8080", Some("localhost:3000")));
    /// assert!(!same.allows("https://evil.example", Some("chat.example")));
    /// assert!(!same.allows("null", Some("chat.example"))); // sandboxed pages, files
    /// assert!(!same.allows("https://chat.example", None));
    /// ```
    pub fn allows(&self, origin: &str, host: Option<&str>) -> bool {
        match self {
            Self::Any => true,
            Self::Only(allowed) => allowed.iter().any(|a| a.eq_ignore_ascii_case(origin)),
            Self::SameOrigin => host.is_some_and(|host| same_origin(origin, host)),
        }
    }
}

/// Whether `origin` (`scheme://host[:port]`) names `host` (`host[:port]`), default ports
/// filled in from the origin's scheme.
fn same_origin(origin: &str, host: &str) -> bool {
    let (Ok(origin), Ok(host)) = (
        origin.parse::<http::Uri>(),
        host.parse::<http::uri::Authority>(),
    ) else {
        return false;
    };
    let (Some(scheme), Some(authority)) = (origin.scheme_str(), origin.authority()) else {
        return false;
    };
    let default_port = match scheme.to_ascii_lowercase().as_str() {
        "http" | "ws" => 80,
        "https" | "wss" => 443,
        _ => return false,
    };
    authority.host().eq_ignore_ascii_case(host.host())
        && authority.port_u16().unwrap_or(default_port) == host.port_u16().unwrap_or(default_port)
}

/// The reverse proxies of [`ConnectionConfig::trusted_proxies`], and the header they write
/// the client's address in.
///
/// # Examples
///
/// Behind nginx or a cloud load balancer on the private network, which append the peer
/// they saw to `X-Forwarded-For`:
///
/// ```
/// use ws_gateway_core::{ConnectionConfig, ForwardedHeader, TrustedProxies};
///
/// let mut config = ConnectionConfig::default();
/// config.max_connections_per_ip = Some(20);
/// config.trusted_proxies = Some(TrustedProxies::new(["10.0.0.0/8".parse().unwrap()]));
/// let proxies = config.trusted_proxies.as_ref().unwrap();
/// assert_eq!(proxies.header, ForwardedHeader::XForwardedFor);
/// assert!(proxies.trusts("10.1.2.3".parse().unwrap()));
/// assert!(!proxies.trusts("203.0.113.9".parse().unwrap()));
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct TrustedProxies {
    /// The proxies' addresses: single addresses (`10.0.0.7/32`) or networks (`10.0.0.0/8`).
    pub networks: Vec<IpNet>,
    /// The header they write. Only that one is read: a header the proxies pass through
    /// untouched is the client's to write.
    pub header: ForwardedHeader,
}

impl TrustedProxies {
    /// Trusts these networks' `X-Forwarded-For`.
    ///
    /// # Examples
    ///
    /// ```
    /// let proxies = ws_gateway_core::TrustedProxies::new(["127.0.0.1/32".parse().unwrap()]);
    /// assert!(proxies.trusts("127.0.0.1".parse().unwrap()));
    /// ```
    pub fn new(networks: impl IntoIterator<Item = IpNet>) -> Self {
        Self {
            networks: networks.into_iter().collect(),
            header: ForwardedHeader::XForwardedFor,
        }
    }

    /// Reads this header instead.
    ///
    /// # Examples
    ///
    /// ```
    /// use ws_gateway_core::{ForwardedHeader, TrustedProxies};
    ///
    /// let proxies = TrustedProxies::new(["10.0.0.0/8".parse().unwrap()])
    ///     .header(ForwardedHeader::Forwarded);
    /// assert_eq!(proxies.header, ForwardedHeader::Forwarded);
    /// ```
    #[must_use]
    pub fn header(mut self, header: ForwardedHeader) -> Self {
        self.header = header;
        self
    }

    /// Whether `ip` is one of the proxies.
    ///
    /// # Examples
    ///
    /// ```
    /// let proxies = ws_gateway_core::TrustedProxies::new(["fd00::/8".parse().unwrap()]);
    /// assert!(proxies.trusts("fd00::1".parse().unwrap()));
    /// assert!(!proxies.trusts("::1".parse().unwrap()));
    /// ```
    pub fn trusts(&self, ip: IpAddr) -> bool {
        let ip = ip.to_canonical();
        self.networks.iter().any(|net| net.contains(&ip))
    }
}

/// The header trusted proxies write the client's address in.
///
/// # Examples
///
/// ```
/// assert_eq!(ws_gateway_core::ForwardedHeader::default(), ws_gateway_core::ForwardedHeader::XForwardedFor);
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum ForwardedHeader {
    /// `X-Forwarded-For: client, proxy1, proxy2` (nginx, HAProxy, most load balancers).
    #[default]
    XForwardedFor,
    /// RFC 7239 `Forwarded: for=client, for=proxy1`.
    Forwarded,
}

/// A per-connection token bucket: `per_second` tokens a second, at most `burst` saved up.
/// Every message takes a token per started `token_size` bytes (one for most messages: a
/// 60 KiB message takes 15 at the default 4 KiB, so the limit bounds bytes as well as
/// messages), and the exception frame answering a message that found none takes one: a client over the limit runs into debt, and once it owes `close_after`
/// tokens the connection closes with code 1008. A client back under the limit pays its
/// debt off; one that stays over it is closed, however its messages are spaced.
///
/// # Examples
///
/// ```
/// let mut config = ws_gateway_core::ConnectionConfig::default();
/// config.rate_limit = Some(ws_gateway_core::RateLimit::new(10, 20));
/// assert_eq!(config.rate_limit.unwrap().close_after, 100);
/// assert_eq!(config.rate_limit.unwrap().token_size, 4096);
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
    /// Bytes of a message that one token pays for (the message as it arrived on the wire).
    pub token_size: u32,
}

impl RateLimit {
    /// `per_second` with bursts of `burst`; closes once 100 tokens are owed.
    ///
    /// # Examples
    ///
    /// ```
    /// use ws_gateway_core::RateLimit;
    ///
    /// let limit = RateLimit::new(5, 10);
    /// assert_eq!((limit.per_second, limit.burst, limit.close_after), (5, 10, 100));
    /// ```
    pub fn new(per_second: u32, burst: u32) -> Self {
        Self {
            per_second,
            burst,
            close_after: 100,
            token_size: 4096,
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
            trusted_proxies: None,
            max_handshake_size: 16 * 1024,
            ping_interval: Some(Duration::from_secs(25)),
            idle_timeout: Some(Duration::from_secs(60)),
            allowed_origins: Origins::SameOrigin,
            write_timeout: Some(Duration::from_secs(10)),
            close_timeout: Duration::from_secs(1),
            ack_timeout: crate::ack::DEFAULT_ACK_TIMEOUT,
        }
    }
}
