//! [`Connections`]: the live connections of an app, its connection limits and its graceful
//! shutdown, shared by every gateway and every transport.

use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use rustc_hash::FxHashMap;
use tokio::sync::{Notify, watch};

/// The live connections of an app: counted against the limits of its
/// [`ConnectionConfig`](crate::ConnectionConfig), and told when the app shuts down.
///
/// Transports call [`admit`](Self::admit) before upgrading a connection and keep the
/// [`ConnectionGuard`] for as long as it lives; they stop reading and close with code 1001
/// once [`shutting_down`](Self::shutting_down) resolves, finishing in-flight handlers until
/// the [`deadline`](Self::deadline).
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use ws_gateway_core::transport::Connections;
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let connections = Connections::new(Some(2), Some(1));
/// let ip = "10.0.0.1".parse().unwrap();
/// let first = connections.admit(Some(ip)).unwrap();
/// assert!(connections.admit(Some(ip)).is_err()); // one per IP
/// assert!(connections.admit(None).is_err()); // no address, no per-IP count: refused
/// let other = connections.admit("10.0.0.2".parse().ok()).unwrap();
/// assert!(connections.admit("10.0.0.3".parse().ok()).is_err()); // two in all
/// assert_eq!(connections.live(), 2);
/// drop((first, other));
///
/// connections.begin_shutdown(Duration::from_secs(1));
/// assert!(connections.admit(None).is_err()); // shutting down
/// assert_eq!(connections.wait_closed(Duration::from_secs(1)).await, 0);
/// # }
/// ```
#[derive(Clone)]
pub struct Connections {
    inner: Arc<Inner>,
}

struct Inner {
    max_total: Option<usize>,
    max_per_ip: Option<usize>,
    live: AtomicUsize,
    per_ip: Mutex<FxHashMap<IpAddr, usize>>,
    /// Notified when `live` drops to zero.
    closed: Notify,
    shutdown: watch::Sender<bool>,
    stopping: AtomicBool,
    deadline: OnceLock<Instant>,
}

/// Why a connection was not admitted.
///
/// ```
/// use ws_gateway_core::transport::{Connections, Refused};
///
/// let connections = Connections::new(Some(0), None);
/// assert_eq!(connections.admit(None).unwrap_err(), Refused::ServerFull);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Refused {
    /// The instance has `max_connections` connections (HTTP 503).
    #[error("Too many connections on this server: try again later")]
    ServerFull,
    /// This IP address has `max_connections_per_ip` connections (HTTP 429).
    #[error("Too many connections from your address")]
    TooManyFromAddress,
    /// The app is shutting down (HTTP 503).
    #[error("The server is shutting down")]
    ShuttingDown,
    /// `max_connections_per_ip` is set but the transport does not know the peer's address
    /// (HTTP 500): a server misconfiguration, refused rather than silently not counted.
    #[error(
        "max_connections_per_ip is set but the peer address is unknown: serve with \
         ws_gateway_axum::serve, or router.into_make_service_with_connect_info::<SocketAddr>()"
    )]
    UnknownAddress,
}

/// Holds one admitted connection's place; dropping it releases the place.
///
/// ```
/// let connections = ws_gateway_core::transport::Connections::new(Some(1), None);
/// let guard = connections.admit(None).unwrap();
/// assert!(connections.admit(None).is_err());
/// drop(guard);
/// assert!(connections.admit(None).is_ok());
/// ```
#[derive(Debug)]
#[must_use = "the connection is released when the guard drops"]
pub struct ConnectionGuard {
    connections: Connections,
    ip: Option<IpAddr>,
}

impl Connections {
    /// A tracker with these limits (`None`: unlimited).
    ///
    /// ```
    /// let unlimited = ws_gateway_core::transport::Connections::new(None, None);
    /// let guards: Vec<_> = (0..100).map(|_| unlimited.admit(None).unwrap()).collect();
    /// assert_eq!(unlimited.live(), 100);
    /// # drop(guards);
    /// ```
    pub fn new(max_total: Option<usize>, max_per_ip: Option<usize>) -> Self {
        Self {
            inner: Arc::new(Inner {
                max_total,
                max_per_ip,
                live: AtomicUsize::new(0),
                per_ip: Mutex::default(),
                closed: Notify::new(),
                shutdown: watch::channel(false).0,
                stopping: AtomicBool::new(false),
                deadline: OnceLock::new(),
            }),
        }
    }

    /// Counts a new connection from `ip`, or says why it may not open.
    ///
    /// # Errors
    ///
    /// [`Refused`]: a limit is reached, or the app is shutting down.
    ///
    /// # Examples
    ///
    /// ```
    /// use ws_gateway_core::transport::{Connections, Refused};
    ///
    /// let connections = Connections::new(None, Some(1));
    /// let a = "10.0.0.1".parse().ok();
    /// let _first = connections.admit(a).unwrap();
    /// assert_eq!(connections.admit(a).unwrap_err(), Refused::TooManyFromAddress);
    /// assert!(connections.admit("10.0.0.2".parse().ok()).is_ok());
    /// // Without the peer's address, the per-IP limit cannot apply: refused, never ignored.
    /// assert_eq!(connections.admit(None).unwrap_err(), Refused::UnknownAddress);
    /// ```
    pub fn admit(&self, ip: Option<IpAddr>) -> Result<ConnectionGuard, Refused> {
        let inner = &*self.inner;
        if inner.stopping.load(Ordering::Acquire) {
            return Err(Refused::ShuttingDown);
        }
        let previous = inner.live.fetch_add(1, Ordering::AcqRel);
        if inner.max_total.is_some_and(|max| previous >= max) {
            self.release_count();
            return Err(Refused::ServerFull);
        }
        if inner.max_per_ip.is_some() && ip.is_none() {
            self.release_count();
            return Err(Refused::UnknownAddress);
        }
        if let (Some(ip), Some(max)) = (ip, inner.max_per_ip) {
            let mut per_ip = inner.per_ip.lock().unwrap_or_else(|e| e.into_inner());
            let count = per_ip.entry(ip).or_insert(0);
            if *count >= max {
                drop(per_ip);
                self.release_count();
                return Err(Refused::TooManyFromAddress);
            }
            *count += 1;
        }
        Ok(ConnectionGuard {
            connections: self.clone(),
            ip: ip.filter(|_| inner.max_per_ip.is_some()),
        })
    }

    fn release_count(&self) {
        if self.inner.live.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.inner.closed.notify_waiters();
        }
    }

    /// The number of open connections.
    ///
    /// ```
    /// let connections = ws_gateway_core::transport::Connections::new(None, None);
    /// let guard = connections.admit(None).unwrap();
    /// assert_eq!(connections.live(), 1);
    /// drop(guard);
    /// assert_eq!(connections.live(), 0);
    /// ```
    pub fn live(&self) -> usize {
        self.inner.live.load(Ordering::Acquire)
    }

    /// Starts a graceful shutdown: no new connection is admitted, and every open one is
    /// told to finish its in-flight handlers within `grace` and close with code 1001.
    /// Later calls keep the first deadline.
    ///
    /// ```
    /// use std::time::Duration;
    /// use ws_gateway_core::transport::{Connections, Refused};
    ///
    /// let connections = Connections::new(None, None);
    /// connections.begin_shutdown(Duration::from_secs(5));
    /// let first = connections.deadline().unwrap();
    /// connections.begin_shutdown(Duration::from_secs(60));
    /// assert_eq!(connections.deadline(), Some(first));
    /// assert_eq!(connections.admit(None).unwrap_err(), Refused::ShuttingDown);
    /// ```
    pub fn begin_shutdown(&self, grace: Duration) {
        let _ = self.inner.deadline.set(Instant::now() + grace);
        self.inner.stopping.store(true, Ordering::Release);
        self.inner.shutdown.send_replace(true);
    }

    /// Whether [`begin_shutdown`](Self::begin_shutdown) was called.
    ///
    /// ```
    /// let connections = ws_gateway_core::transport::Connections::new(None, None);
    /// assert!(!connections.is_shutting_down());
    /// connections.begin_shutdown(std::time::Duration::ZERO);
    /// assert!(connections.is_shutting_down());
    /// ```
    pub fn is_shutting_down(&self) -> bool {
        self.inner.stopping.load(Ordering::Acquire)
    }

    /// Resolves once the shutdown begins (never, if it does not).
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let connections = ws_gateway_core::transport::Connections::new(None, None);
    /// let waiting = tokio::spawn({
    ///     let connections = connections.clone();
    ///     async move { connections.shutting_down().await }
    /// });
    /// connections.begin_shutdown(std::time::Duration::from_secs(1));
    /// waiting.await.unwrap();
    /// # }
    /// ```
    pub async fn shutting_down(&self) {
        let mut rx = self.inner.shutdown.subscribe();
        let _ = rx.wait_for(|stopping| *stopping).await;
    }

    /// When in-flight work must be done, once the shutdown began.
    ///
    /// ```
    /// let connections = ws_gateway_core::transport::Connections::new(None, None);
    /// assert!(connections.deadline().is_none());
    /// connections.begin_shutdown(std::time::Duration::from_secs(10));
    /// assert!(connections.deadline().unwrap() > std::time::Instant::now());
    /// ```
    pub fn deadline(&self) -> Option<Instant> {
        self.inner.deadline.get().copied()
    }

    /// Waits until every connection is closed, at most `timeout`. Returns how many are
    /// still open.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// use std::time::Duration;
    ///
    /// let connections = ws_gateway_core::transport::Connections::new(None, None);
    /// let guard = connections.admit(None).unwrap();
    /// // Still open after the timeout:
    /// assert_eq!(connections.wait_closed(Duration::from_millis(10)).await, 1);
    /// tokio::spawn(async move { drop(guard) });
    /// assert_eq!(connections.wait_closed(Duration::from_secs(5)).await, 0);
    /// # }
    /// ```
    pub async fn wait_closed(&self, timeout: Duration) -> usize {
        let wait = async {
            loop {
                let closed = self.inner.closed.notified();
                if self.live() == 0 {
                    return;
                }
                closed.await;
            }
        };
        let _ = tokio::time::timeout(timeout, wait).await;
        self.live()
    }
}

impl std::fmt::Debug for Connections {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connections")
            .field("live", &self.live())
            .field("max_total", &self.inner.max_total)
            .field("max_per_ip", &self.inner.max_per_ip)
            .field("shutting_down", &self.is_shutting_down())
            .finish()
    }
}

impl Drop for ConnectionGuard {
    fn drop(&mut self) {
        if let Some(ip) = self.ip {
            let mut per_ip = self
                .connections
                .inner
                .per_ip
                .lock()
                .unwrap_or_else(|e| e.into_inner());
            if let Some(count) = per_ip.get_mut(&ip) {
                *count -= 1;
                if *count == 0 {
                    per_ip.remove(&ip);
                }
            }
        }
        self.connections.release_count();
    }
}
