//! [`RedisAdapter`]: the [`Adapter`] that carries operations between instances through
//! Redis pub/sub.

use std::collections::HashMap;
use std::fmt;
use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, RwLock};
use std::time::SystemTime;

use gateway_core::adapter::{Adapter, AdapterError, ClientInfo, LocalServer, Message, Selection};
use redis::Msg;
use tokio::sync::{Notify, mpsc, oneshot};
use tokio::task::JoinHandle;

use crate::codec::{self, Incoming};
use crate::config::RedisConfig;
use crate::driver::{self, Outgoing};
use crate::error::{Error, redact};

/// The log target of the adapter's warnings and notices.
pub(crate) const TARGET: &str = "gateway::redis";

/// A broadcast adapter over Redis pub/sub: every emit, room operation and disconnect of a
/// gateway reaches the matching clients of every instance of the app, once.
///
/// It holds two connections, as Socket.IO's Redis adapter does: a publisher (commands,
/// pipelined in order) and a subscriber (a connection in subscribe mode can send nothing
/// else). When Redis goes away, local delivery goes on, one warning is logged, and the
/// adapter reconnects with backoff, subscribes again and resumes; what was published in
/// between is not delivered to the other instances.
///
/// Clones are the same instance (same id, same connections): give each app its own
/// [`connect`](Self::connect). The connections close when the last clone is dropped.
///
/// # Examples
///
/// ```
/// use gateway_core::prelude::*;
/// use gateway_redis::{RedisAdapter, RedisConfig};
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
#[derive(Clone)]
pub struct RedisAdapter {
    inner: Arc<Inner>,
}

struct Inner {
    shared: Arc<Shared>,
    tasks: Vec<JoinHandle<()>>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

/// Which connection a health change is about.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Part {
    Publisher,
    Subscriber,
}

#[derive(Debug)]
struct Health {
    publisher: bool,
    subscriber: bool,
    /// A warning about the current outage was logged.
    warned: bool,
}

/// What the adapter handle and its two tasks share.
pub(crate) struct Shared {
    pub(crate) uid: u64,
    pub(crate) config: RedisConfig,
    /// The URL with its password redacted, for messages.
    pub(crate) url: String,
    /// `<prefix>:`, the start of every gateway's channel.
    op_prefix: String,
    pub(crate) request_channel: String,
    pub(crate) response_channel: String,
    pub(crate) tx: mpsc::Sender<Outgoing>,
    servers: RwLock<HashMap<&'static str, LocalServer>>,
    pending: Mutex<HashMap<u64, mpsc::UnboundedSender<Vec<ClientInfo>>>>,
    next_request: AtomicU64,
    health: Mutex<Health>,
    /// Messages that could not reach Redis during the current outage.
    pub(crate) dropped: AtomicU64,
    /// The outgoing queue overflowed and that was logged.
    pub(crate) overflowing: AtomicBool,
    /// Set (and `publisher_wake` notified) when the subscriber lost Redis: the publisher's
    /// connection is then suspect too, though it only finds out when it next writes.
    pub(crate) publisher_stale: AtomicBool,
    pub(crate) publisher_wake: Notify,
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

impl Shared {
    /// The pattern matching every gateway channel of the prefix.
    pub(crate) fn pattern(&self) -> String {
        format!("{}*", glob_escape(&self.op_prefix))
    }

    fn response_channel_of(&self, uid: u64) -> String {
        format!("{}#response#{uid:016x}", self.config.prefix)
    }

    pub(crate) fn is_connected(&self) -> bool {
        let health = lock(&self.health);
        health.publisher && health.subscriber
    }

    /// A connection was lost or could not be made: warn once per outage.
    pub(crate) fn down(&self, part: Part, reason: &dyn fmt::Display) {
        let mut health = lock(&self.health);
        match part {
            Part::Publisher => health.publisher = false,
            Part::Subscriber => {
                health.subscriber = false;
                // One outage, one warning, one "resumed": reconnect the publisher as well
                // rather than let it fail on its next write.
                if health.publisher {
                    health.publisher = false;
                    self.publisher_stale.store(true, Ordering::Relaxed);
                    self.publisher_wake.notify_one();
                }
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

    /// A connection is (back) up: say so once both are.
    pub(crate) fn up(&self, part: Part) {
        let mut health = lock(&self.health);
        match part {
            Part::Publisher => health.publisher = true,
            Part::Subscriber => health.subscriber = true,
        }
        if health.publisher && health.subscriber && health.warned {
            health.warned = false;
            let dropped = self.dropped.swap(0, Ordering::Relaxed);
            tracing::info!(
                target: TARGET,
                url = %self.url,
                dropped,
                "reconnected to Redis: cross-instance delivery resumed ({dropped} message(s) published meanwhile were not delivered to other instances)"
            );
        }
    }

    /// Queues a message for the publisher without waiting.
    pub(crate) fn enqueue(&self, message: Outgoing) -> bool {
        match self.tx.try_send(message) {
            Ok(()) => true,
            Err(mpsc::error::TrySendError::Full(_)) => {
                if !self.overflowing.swap(true, Ordering::Relaxed) {
                    tracing::warn!(
                        target: TARGET,
                        url = %self.url,
                        capacity = self.config.queue_capacity,
                        "the Redis publish queue is full: dropping messages for other instances"
                    );
                }
                false
            }
            Err(mpsc::error::TrySendError::Closed(_)) => false,
        }
    }

    /// Applies what arrived on the subscription.
    pub(crate) fn handle(&self, msg: &Msg) {
        let channel = msg.get_channel_name();
        let incoming = match codec::decode(msg.get_payload_bytes()) {
            Ok(incoming) => incoming,
            Err(err) => {
                tracing::debug!(target: TARGET, channel, "ignored a message: {err}");
                return;
            }
        };
        match incoming {
            Incoming::Operation {
                from,
                selection,
                op,
            } => {
                if from == self.uid {
                    return;
                }
                let Some(path) = channel.strip_prefix(&self.op_prefix) else {
                    return;
                };
                let server = self.server(path);
                if let Some(server) = server {
                    server.apply(&selection, &op);
                }
            }
            Incoming::Request {
                from,
                request,
                path,
                selection,
            } if channel == self.request_channel => {
                if from == self.uid {
                    // Our own request: our clients are already counted by the caller.
                    self.answer(request, Vec::new());
                    return;
                }
                let clients = self
                    .server(&path)
                    .and_then(|server| server.clients(&selection))
                    .unwrap_or_default();
                self.enqueue(Outgoing {
                    channel: self.response_channel_of(from),
                    payload: codec::encode_response(self.uid, request, &clients),
                    reply: None,
                });
            }
            Incoming::Response {
                from,
                request,
                clients,
            } if channel == self.response_channel => {
                tracing::trace!(target: TARGET, from = %format_args!("{from:016x}"), request, "fetch_clients answer");
                self.answer(request, clients);
            }
            _ => {}
        }
    }

    fn server(&self, path: &str) -> Option<LocalServer> {
        self.servers
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(path)
            .cloned()
    }

    fn answer(&self, request: u64, clients: Vec<ClientInfo>) {
        if let Some(tx) = lock(&self.pending).get(&request) {
            let _ = tx.send(clients);
        }
    }
}

/// Forgets a pending request however its future ends.
struct PendingGuard<'a>(&'a Shared, u64);

impl Drop for PendingGuard<'_> {
    fn drop(&mut self) {
        lock(&self.0.pending).remove(&self.1);
    }
}

impl RedisAdapter {
    /// Connects the publisher and the subscriber to Redis, to give to
    /// [`GatewayApp::adapter`](gateway_core::GatewayApp::adapter). Must be called inside a
    /// tokio runtime: the connections live in two background tasks.
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
    /// use gateway_redis::{RedisAdapter, RedisConfig};
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
        let url = redact(&config.url);
        let client =
            redis::Client::open(config.url.as_str()).map_err(|source| Error::InvalidUrl {
                url: url.clone(),
                source: Box::new(source),
            })?;
        let uid = new_uid();
        let (tx, rx) = mpsc::channel(config.queue_capacity);
        let shared = Arc::new(Shared {
            uid,
            op_prefix: format!("{}:", config.prefix),
            request_channel: format!("{}#request", config.prefix),
            response_channel: format!("{}#response#{uid:016x}", config.prefix),
            url,
            tx,
            servers: RwLock::default(),
            pending: Mutex::default(),
            next_request: AtomicU64::new(0),
            health: Mutex::new(Health {
                publisher: false,
                subscriber: false,
                warned: false,
            }),
            dropped: AtomicU64::new(0),
            overflowing: AtomicBool::new(false),
            publisher_stale: AtomicBool::new(false),
            publisher_wake: Notify::new(),
            config,
        });
        let connections = async {
            let publisher = driver::connect_publisher(&client, &shared).await?;
            let subscriber = driver::connect_subscriber(&client, &shared).await?;
            Ok::<_, Error>((publisher, subscriber))
        };
        let (publisher, subscriber) = match connections.await {
            Ok((publisher, subscriber)) => {
                shared.up(Part::Publisher);
                shared.up(Part::Subscriber);
                (Some(publisher), Some(subscriber))
            }
            Err(err) if shared.config.start_degraded => {
                shared.down(Part::Publisher, &err);
                (None, None)
            }
            Err(err) => return Err(err),
        };
        let tasks = vec![
            tokio::spawn(driver::run_publisher(
                client.clone(),
                Arc::clone(&shared),
                rx,
                publisher,
            )),
            tokio::spawn(driver::run_subscriber(
                client,
                Arc::clone(&shared),
                subscriber,
            )),
        ];
        tracing::debug!(target: TARGET, url = %shared.url, uid = %format_args!("{uid:016x}"), "Redis adapter started");
        Ok(Self {
            inner: Arc::new(Inner { shared, tasks }),
        })
    }

    /// This instance's id, carried by every message it publishes (16 hex digits).
    pub fn instance_id(&self) -> String {
        format!("{:016x}", self.inner.shared.uid)
    }

    /// Whether both connections are up right now. Cross-instance delivery works only then;
    /// local delivery always does.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[allow(dead_code)]
    /// # async fn demo(redis: gateway_redis::RedisAdapter) {
    /// if !redis.is_connected() {
    ///     tracing::warn!("serving this instance's clients only");
    /// }
    /// # }
    /// ```
    pub fn is_connected(&self) -> bool {
        self.inner.shared.is_connected()
    }
}

impl fmt::Debug for RedisAdapter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let shared = &self.inner.shared;
        f.debug_struct("RedisAdapter")
            .field("url", &shared.url)
            .field("prefix", &shared.config.prefix)
            .field("instance_id", &self.instance_id())
            .field("connected", &shared.is_connected())
            .finish()
    }
}

impl Adapter for RedisAdapter {
    fn attach(&self, server: LocalServer) {
        self.inner
            .shared
            .servers
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(server.path(), server);
    }

    fn publish(&self, message: &Message<'_>) {
        let shared = &self.inner.shared;
        let payload = codec::encode_operation(shared.uid, message.selection, message.op);
        if !shared.enqueue(Outgoing {
            channel: format!("{}{}", shared.op_prefix, message.path),
            payload,
            reply: None,
        }) {
            shared.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }

    async fn fetch_clients(
        &self,
        path: &'static str,
        selection: &Selection,
    ) -> Result<Vec<ClientInfo>, AdapterError> {
        let shared = &*self.inner.shared;
        let timeout = shared.config.request_timeout;
        let deadline = tokio::time::Instant::now() + timeout;
        let request = shared.next_request.fetch_add(1, Ordering::Relaxed);
        let (answers_tx, mut answers) = mpsc::unbounded_channel();
        lock(&shared.pending).insert(request, answers_tx);
        let _guard = PendingGuard(shared, request);

        let (reply, receivers) = oneshot::channel();
        if !shared.enqueue(Outgoing {
            channel: shared.request_channel.clone(),
            payload: codec::encode_request(shared.uid, request, path, selection),
            reply: Some(reply),
        }) {
            return Err(AdapterError::Unavailable(format!(
                "cannot queue a request to Redis at {}",
                shared.url
            )));
        }
        // Every subscriber of the request channel answers, this instance included (with
        // nothing), so PUBLISH's count is the number of answers to wait for.
        let expected = match tokio::time::timeout_at(deadline, receivers).await {
            Ok(Ok(Ok(count))) => usize::try_from(count).unwrap_or(0),
            Ok(Ok(Err(reason))) => return Err(AdapterError::Unavailable(reason)),
            Ok(Err(_)) => {
                return Err(AdapterError::Unavailable("the adapter stopped".into()));
            }
            Err(_) => {
                return Err(AdapterError::Unavailable(format!(
                    "Redis at {} did not accept the request within {timeout:?}",
                    shared.url
                )));
            }
        };
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
    use super::glob_escape;

    #[test]
    fn glob_characters_in_prefixes_are_escaped() {
        assert_eq!(glob_escape("app"), "app");
        assert_eq!(glob_escape("a*b?[c]\\"), "a\\*b\\?\\[c\\]\\\\");
    }
}
