//! [`RedisClusterDriver`]: the [`Driver`] for a Redis Cluster, over redis-rs's cluster
//! connection, with sharded pub/sub (Redis 7: `SPUBLISH`, `SSUBSCRIBE`).
//!
//! redis-rs routes each command to the shard of its channel's slot, keeps a connection per
//! shard and hands what the shards push to one channel (RESP3). What it does not do is say
//! when a shard is gone and back, which the adapter must know (warn once, drop rather than
//! buffer, subscribe again): a health task here pings every primary, and when all answer
//! again after an outage, makes every subscription again before saying it is up.

use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, RwLock};
use std::time::Duration;

use ::redis::cluster::{ClusterClient, ClusterClientBuilder};
use ::redis::cluster_async::ClusterConnection;
use ::redis::cluster_routing::{MultipleNodeRoutingInfo, RoutingInfo, Slot};
use ::redis::{Msg, ProtocolVersion, PushInfo, PushKind, RedisError};
use bytes::Bytes;
use tokio::sync::{Notify, mpsc};
use tokio::task::JoinHandle;

use super::{ChannelMessage, Driver, Inbox, Subscription};
use crate::config::RedisConfig;
use crate::error::{Error, redact};

/// The log target of the driver's warnings and notices.
const TARGET: &str = "gateway::redis";

/// How often a healthy cluster is pinged, to notice a shard that went away without closing
/// a connection we read from.
const HEALTH_INTERVAL: Duration = Duration::from_secs(1);

/// The [`Driver`] for a Redis Cluster (Redis 7 or later): publishes with `SPUBLISH` and
/// subscribes with `SSUBSCRIBE`, so a channel lives on the one shard that owns its slot and
/// each shard carries only its channels' traffic. The one
/// [`RedisAdapter::connect_cluster`](crate::RedisAdapter::connect_cluster) makes, for the
/// adapter's [per-room mode](crate::ChannelMode::PerRoom).
///
/// Sharded pub/sub has no patterns: [`Subscription::Prefix`] is refused (classic mode needs
/// [`RedisDriver`](crate::RedisDriver)). Messages of one channel are published in order;
/// channels on different shards are independent.
///
/// When a shard goes away it logs one warning (target `gateway::redis`) and fails what is
/// published meanwhile; once every primary answers again it subscribes again to every
/// channel and logs that delivery resumed. Dropping it closes its connections.
///
/// # Examples
///
/// ```no_run
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), ws_gateway_redis::Error> {
/// use ws_gateway_redis::driver::{ChannelMessage, Driver, Inbox, Subscription};
/// use ws_gateway_redis::{RedisClusterDriver, RedisConfig};
///
/// let config = RedisConfig::cluster(["redis://127.0.0.1:7000", "redis://127.0.0.1:7001"]);
/// let driver = RedisClusterDriver::connect(&config).await?;
/// let (inbox, mut received) = Inbox::channel(64);
/// driver.subscribe(Subscription::Channel("doc-news".into()), inbox).await?;
/// let counts = driver.publish(&[ChannelMessage::new("doc-news", "hello")]).await?;
/// assert_eq!(counts, [1]);
/// assert_eq!(received.recv().await.unwrap().payload, "hello");
/// # Ok(())
/// # }
/// ```
pub struct RedisClusterDriver {
    shared: Arc<Shared>,
    tasks: [JoinHandle<()>; 2],
}

impl Drop for RedisClusterDriver {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

/// What the driver handle and its two tasks share.
struct Shared {
    client: ClusterClient,
    /// The seed URLs, passwords redacted, for messages.
    url: String,
    connect_timeout: Duration,
    backoff_min: Duration,
    backoff_max: Duration,
    /// `None` until the first connection succeeds (a degraded start).
    connection: Mutex<Option<ClusterConnection>>,
    /// Where each subscribed channel's messages go.
    routes: RwLock<HashMap<String, Inbox>>,
    /// Held while subscribing, unsubscribing or resubscribing, so a resubscription never
    /// makes a subscription that was just dropped.
    subscribing: tokio::sync::Mutex<()>,
    connected: AtomicBool,
    /// Wakes the health task at once (a connection closed, a command failed).
    check: Notify,
    /// Messages not published since the outage began.
    dropped: AtomicU64,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // Nothing panics while holding these locks; recover the data if something ever did.
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Whether `err` means a shard is unreachable (rather than Redis refusing a command).
fn connection_lost(err: &RedisError) -> bool {
    err.is_io_error()
        || err.is_unrecoverable_error()
        || err.is_connection_dropped()
        || err.is_timeout()
        || err.is_cluster_error()
}

impl Shared {
    fn connection(&self) -> Option<ClusterConnection> {
        lock(&self.connection).clone()
    }

    fn routes(&self) -> std::sync::RwLockReadGuard<'_, HashMap<String, Inbox>> {
        self.routes.read().unwrap_or_else(PoisonError::into_inner)
    }

    fn routes_mut(&self) -> std::sync::RwLockWriteGuard<'_, HashMap<String, Inbox>> {
        self.routes.write().unwrap_or_else(PoisonError::into_inner)
    }

    fn command_error(&self, err: RedisError) -> Error {
        Error::Command {
            url: self.url.clone(),
            source: Box::new(err),
        }
    }

    fn unavailable(&self) -> Error {
        Error::Unavailable {
            url: self.url.clone(),
        }
    }

    /// A shard is unreachable: warn once, and have the health task watch for its return.
    fn down(&self, reason: &dyn fmt::Display) {
        if self.connected.swap(false, Ordering::AcqRel) {
            tracing::warn!(
                target: TARGET,
                url = %self.url,
                "lost the Redis Cluster: {reason}; delivering to this instance's clients only, reconnecting"
            );
        }
        self.check.notify_one();
    }

    /// Connects to the cluster (once; later connections heal themselves in redis-rs).
    async fn connect(&self) -> Result<ClusterConnection, Error> {
        if let Some(connection) = self.connection() {
            return Ok(connection);
        }
        match tokio::time::timeout(self.connect_timeout, self.client.get_async_connection()).await {
            Ok(Ok(connection)) => {
                *lock(&self.connection) = Some(connection.clone());
                Ok(connection)
            }
            Ok(Err(err)) => Err(Error::Connect {
                url: self.url.clone(),
                source: Box::new(err),
            }),
            Err(_) => Err(Error::Timeout {
                url: self.url.clone(),
                timeout: self.connect_timeout,
            }),
        }
    }

    /// Pings every primary: `Ok` when every shard answers.
    async fn ping_all(&self) -> Result<(), Error> {
        let mut connection = self.connect().await?;
        let routing = RoutingInfo::MultiNode((MultipleNodeRoutingInfo::AllMasters, None));
        match tokio::time::timeout(
            self.connect_timeout,
            connection.route_command(::redis::cmd("PING"), routing),
        )
        .await
        {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(err)) => Err(self.command_error(err)),
            Err(_) => Err(Error::Timeout {
                url: self.url.clone(),
                timeout: self.connect_timeout,
            }),
        }
    }

    /// Makes every recorded subscription again (on the shard that owns it now).
    async fn resubscribe(&self) -> Result<(), Error> {
        let mut connection = self.connect().await?;
        let _held = self.subscribing.lock().await;
        let channels: Vec<String> = self.routes().keys().cloned().collect();
        for channel in channels {
            let sent =
                tokio::time::timeout(self.connect_timeout, connection.ssubscribe(&channel)).await;
            match sent {
                Ok(Ok(())) => {}
                Ok(Err(err)) => return Err(self.command_error(err)),
                Err(_) => {
                    return Err(Error::Timeout {
                        url: self.url.clone(),
                        timeout: self.connect_timeout,
                    });
                }
            }
        }
        Ok(())
    }

    /// Hands a pushed message to the inbox of its channel.
    async fn route(&self, push: PushInfo) {
        if push.kind == PushKind::Disconnection {
            self.check.notify_one();
            return;
        }
        if push.kind != PushKind::SMessage {
            return; // subscription confirmations
        }
        let Some(msg) = Msg::from_push_info(push) else {
            return;
        };
        let channel = msg.get_channel_name();
        let inbox = self.routes().get(channel).cloned();
        match inbox {
            Some(inbox) => {
                let payload = Bytes::copy_from_slice(msg.get_payload_bytes());
                if !inbox.deliver(ChannelMessage::new(channel, payload)).await {
                    tracing::trace!(target: TARGET, channel, "the subscriber is gone");
                }
            }
            None => tracing::trace!(target: TARGET, channel, "no subscription for a message"),
        }
    }
}

/// Routes what the shards push, in the order they push it.
async fn run_router(shared: Arc<Shared>, mut pushes: mpsc::UnboundedReceiver<PushInfo>) {
    while let Some(push) = pushes.recv().await {
        shared.route(push).await;
    }
}

/// Watches the cluster's health: pings every primary (every second while healthy, at once
/// when something failed, with backoff while down) and, when all answer after an outage,
/// subscribes again to everything before reporting itself connected.
async fn run_health(shared: Arc<Shared>) {
    let mut delay = shared.backoff_min;
    loop {
        if shared.connected.load(Ordering::Acquire) {
            delay = shared.backoff_min;
            tokio::select! {
                () = shared.check.notified() => {}
                () = tokio::time::sleep(HEALTH_INTERVAL) => {}
            }
        } else {
            tokio::time::sleep(delay).await;
            delay = (delay * 2).min(shared.backoff_max);
        }
        let healthy = match shared.ping_all().await {
            Ok(()) if shared.connected.load(Ordering::Acquire) => continue,
            Ok(()) => shared.resubscribe().await,
            Err(err) => Err(err),
        };
        match healthy {
            Ok(()) => {
                shared.connected.store(true, Ordering::Release);
                let dropped = shared.dropped.swap(0, Ordering::Relaxed);
                tracing::info!(
                    target: TARGET,
                    url = %shared.url,
                    dropped,
                    "reconnected to the Redis Cluster: cross-instance delivery resumed ({dropped} message(s) published meanwhile were not delivered to other instances)"
                );
            }
            Err(err) => shared.down(&err),
        }
    }
}

impl RedisClusterDriver {
    /// Connects to the Redis Cluster of `config` (its [nodes](RedisConfig::cluster)). Only
    /// the connection settings are read (nodes, [start_degraded](RedisConfig::start_degraded),
    /// timeouts, backoff). Must be called inside a tokio runtime.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidUrl`]; and [`Error::Connect`] or [`Error::Timeout`] when the cluster
    /// cannot be reached, unless the config [starts degraded](RedisConfig::start_degraded).
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// use ws_gateway_redis::{RedisClusterDriver, RedisConfig};
    ///
    /// // Nothing listens on port 1.
    /// let config = RedisConfig::cluster(["redis://127.0.0.1:1"]);
    /// let err = RedisClusterDriver::connect(&config).await.unwrap_err();
    /// assert!(err.to_string().contains("redis://127.0.0.1:1"));
    /// # }
    /// ```
    pub async fn connect(config: &RedisConfig) -> Result<Self, Error> {
        let url = config
            .nodes
            .iter()
            .map(|node| redact(node))
            .collect::<Vec<_>>()
            .join(", ");
        let (pushes_tx, pushes) = mpsc::unbounded_channel();
        let client = ClusterClientBuilder::new(config.nodes.iter().map(String::as_str))
            .use_protocol(ProtocolVersion::RESP3)
            .push_sender(pushes_tx)
            .connection_timeout(config.connect_timeout)
            .response_timeout(config.connect_timeout)
            .retries(2)
            .build()
            .map_err(|source| Error::InvalidUrl {
                url: url.clone(),
                source: Box::new(source),
            })?;
        let shared = Arc::new(Shared {
            client,
            url,
            connect_timeout: config.connect_timeout,
            backoff_min: config.backoff_min,
            backoff_max: config.backoff_max,
            connection: Mutex::new(None),
            routes: RwLock::default(),
            subscribing: tokio::sync::Mutex::new(()),
            connected: AtomicBool::new(false),
            check: Notify::new(),
            dropped: AtomicU64::new(0),
        });
        match shared.ping_all().await {
            Ok(()) => shared.connected.store(true, Ordering::Release),
            Err(err) if config.start_degraded => {
                tracing::warn!(target: TARGET, url = %shared.url, "starting without the Redis Cluster: {err}");
            }
            Err(err) => return Err(err),
        }
        let tasks = [
            tokio::spawn(run_router(Arc::clone(&shared), pushes)),
            tokio::spawn(run_health(Arc::clone(&shared))),
        ];
        Ok(Self { shared, tasks })
    }
}

impl fmt::Debug for RedisClusterDriver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisClusterDriver")
            .field("nodes", &self.shared.url)
            .field("connected", &self.is_connected())
            .finish()
    }
}

impl Driver for RedisClusterDriver {
    type Error = Error;

    /// One pipeline of `SPUBLISH`es per slot, in order within each, the slots' pipelines
    /// concurrently. Fails at once, without queueing, while a shard is unreachable.
    async fn publish(&self, messages: &[ChannelMessage]) -> Result<Vec<usize>, Error> {
        if messages.is_empty() {
            return Ok(Vec::new());
        }
        let shared = &*self.shared;
        let connection = shared
            .connection()
            .filter(|_| shared.connected.load(Ordering::Acquire));
        let Some(connection) = connection else {
            shared
                .dropped
                .fetch_add(messages.len() as u64, Ordering::Relaxed);
            return Err(shared.unavailable());
        };
        // A pipeline goes to one shard, so one per slot; the indices put the counts back
        // in the order of `messages`.
        let mut by_slot: HashMap<Slot, (::redis::Pipeline, Vec<usize>)> = HashMap::new();
        for (index, message) in messages.iter().enumerate() {
            let (pipe, indices) = by_slot
                .entry(Slot::for_key(message.channel.as_bytes()))
                .or_insert_with(|| (::redis::pipe(), Vec::new()));
            pipe.cmd("SPUBLISH")
                .arg(&message.channel)
                .arg(&*message.payload);
            indices.push(index);
        }
        let sent = by_slot.into_values().map(|(pipe, indices)| {
            let mut connection = connection.clone();
            async move {
                let counts = pipe.query_async::<Vec<i64>>(&mut connection).await;
                (counts, indices)
            }
        });
        let mut counts = vec![0; messages.len()];
        let mut failure = None;
        for (result, indices) in futures_util::future::join_all(sent).await {
            match result {
                Ok(values) => {
                    for (index, count) in indices.into_iter().zip(values) {
                        counts[index] = usize::try_from(count).unwrap_or(0);
                    }
                }
                Err(err) => {
                    shared
                        .dropped
                        .fetch_add(indices.len() as u64, Ordering::Relaxed);
                    failure = Some(err);
                }
            }
        }
        match failure {
            None => Ok(counts),
            Some(err) => {
                if connection_lost(&err) {
                    shared.down(&err);
                }
                Err(shared.command_error(err))
            }
        }
    }

    /// `SSUBSCRIBE`. While a shard is unreachable the subscription is recorded and made
    /// when every shard answers again.
    async fn subscribe(&self, subscription: Subscription, inbox: Inbox) -> Result<(), Error> {
        let shared = &*self.shared;
        let Subscription::Channel(channel) = subscription else {
            return Err(Error::Command {
                url: shared.url.clone(),
                source: "sharded pub/sub has no patterns: a Redis Cluster needs the per-room mode (`RedisConfig::per_room`)".into(),
            });
        };
        let _held = shared.subscribing.lock().await;
        shared.routes_mut().insert(channel.clone(), inbox);
        let connection = shared
            .connection()
            .filter(|_| shared.connected.load(Ordering::Acquire));
        let Some(mut connection) = connection else {
            return Ok(());
        };
        match tokio::time::timeout(shared.connect_timeout, connection.ssubscribe(&channel)).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(err)) if !connection_lost(&err) => {
                shared.routes_mut().remove(&channel);
                Err(shared.command_error(err))
            }
            // The health task sees the shard gone and resubscribes, this one included.
            Ok(Err(err)) => {
                shared.down(&err);
                Ok(())
            }
            Err(_) => {
                shared.down(&"no answer to SSUBSCRIBE");
                Ok(())
            }
        }
    }

    /// `SUNSUBSCRIBE`.
    async fn unsubscribe(&self, subscription: &Subscription) -> Result<(), Error> {
        let shared = &*self.shared;
        let Subscription::Channel(channel) = subscription else {
            return Ok(());
        };
        let _held = shared.subscribing.lock().await;
        if shared.routes_mut().remove(channel).is_none() {
            return Ok(());
        }
        let Some(mut connection) = shared.connection() else {
            return Ok(());
        };
        match tokio::time::timeout(shared.connect_timeout, connection.sunsubscribe(channel)).await {
            Ok(Err(err)) if !connection_lost(&err) => Err(shared.command_error(err)),
            // A lost shard took the subscription with it, and it is no longer recorded.
            _ => Ok(()),
        }
    }

    fn is_connected(&self) -> bool {
        self.shared.connected.load(Ordering::Acquire)
    }
}
