//! The two Redis connections and their tasks: the publisher drains the outgoing queue in
//! pipelined batches (order kept), the subscriber applies what other instances publish.
//! Each reconnects with backoff on its own.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use futures_util::StreamExt;
use redis::aio::{MultiplexedConnection, PubSubStream};
use redis::{AsyncConnectionConfig, Client};
use tokio::sync::{mpsc, oneshot};

use crate::adapter::{Part, Shared};
use crate::error::Error;

/// How many queued messages go to Redis in one pipeline.
const BATCH: usize = 256;

/// One message for the publisher.
pub(crate) struct Outgoing {
    pub(crate) channel: String,
    pub(crate) payload: Vec<u8>,
    /// Receives PUBLISH's count of receivers, or why it failed.
    pub(crate) reply: Option<oneshot::Sender<Result<i64, String>>>,
}

impl Outgoing {
    fn fail(self, reason: &str) {
        if let Some(reply) = self.reply {
            let _ = reply.send(Err(reason.to_owned()));
        }
    }
}

/// Delays between reconnection attempts: doubling from `min` to `max`.
struct Backoff {
    min: Duration,
    max: Duration,
    next: Duration,
}

impl Backoff {
    fn new(shared: &Shared) -> Self {
        Self {
            min: shared.config.backoff_min,
            max: shared.config.backoff_max,
            next: shared.config.backoff_min,
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

fn connect_error(shared: &Shared, err: redis::RedisError) -> Error {
    Error::Connect {
        url: shared.url.clone(),
        source: Box::new(err),
    }
}

fn timeout_error(shared: &Shared) -> Error {
    Error::Timeout {
        url: shared.url.clone(),
        timeout: shared.config.connect_timeout,
    }
}

/// Opens the publisher connection.
pub(crate) async fn connect_publisher(
    client: &Client,
    shared: &Shared,
) -> Result<MultiplexedConnection, Error> {
    let timeout = shared.config.connect_timeout;
    let config = AsyncConnectionConfig::new()
        .set_connection_timeout(Some(timeout))
        .set_response_timeout(Some(timeout));
    match tokio::time::timeout(
        timeout,
        client.get_multiplexed_async_connection_with_config(&config),
    )
    .await
    {
        Ok(Ok(connection)) => Ok(connection),
        Ok(Err(err)) => Err(connect_error(shared, err)),
        Err(_) => Err(timeout_error(shared)),
    }
}

/// Opens the subscriber connection and subscribes: every gateway channel of the prefix
/// (one pattern, so gateways attached later need no new subscription), the request channel
/// and this instance's response channel.
pub(crate) async fn connect_subscriber(
    client: &Client,
    shared: &Shared,
) -> Result<PubSubStream, Error> {
    let subscribe = async {
        let mut pubsub = client.get_async_pubsub().await?;
        pubsub.psubscribe(shared.pattern()).await?;
        pubsub
            .subscribe(&[&shared.request_channel, &shared.response_channel])
            .await?;
        Ok::<_, redis::RedisError>(pubsub.into_on_message())
    };
    match tokio::time::timeout(shared.config.connect_timeout, subscribe).await {
        Ok(Ok(stream)) => Ok(stream),
        Ok(Err(err)) => Err(connect_error(shared, err)),
        Err(_) => Err(timeout_error(shared)),
    }
}

/// Discards what is queued (Redis is unreachable: it cannot be delivered).
fn discard(rx: &mut mpsc::Receiver<Outgoing>, shared: &Shared) {
    while let Ok(message) = rx.try_recv() {
        shared.dropped.fetch_add(1, Ordering::Relaxed);
        message.fail("Redis is unreachable");
    }
}

/// Waits `delay`, discarding what is published meanwhile. Returns `false` once the
/// adapter is gone.
async fn wait_discarding(
    delay: Duration,
    rx: &mut mpsc::Receiver<Outgoing>,
    shared: &Shared,
) -> bool {
    let sleep = tokio::time::sleep(delay);
    tokio::pin!(sleep);
    loop {
        tokio::select! {
            () = &mut sleep => return true,
            message = rx.recv() => match message {
                Some(message) => {
                    shared.dropped.fetch_add(1, Ordering::Relaxed);
                    message.fail("Redis is unreachable");
                }
                None => return false,
            },
        }
    }
}

/// The publisher task: publishes queued messages in order, in pipelined batches.
pub(crate) async fn run_publisher(
    client: Client,
    shared: Arc<Shared>,
    mut rx: mpsc::Receiver<Outgoing>,
    mut connection: Option<MultiplexedConnection>,
) {
    let mut backoff = Backoff::new(&shared);
    loop {
        let Some(conn) = connection.as_mut() else {
            if !wait_discarding(backoff.next(), &mut rx, &shared).await {
                return;
            }
            match connect_publisher(&client, &shared).await {
                Ok(conn) => {
                    // What was queued while connecting belongs to the outage.
                    discard(&mut rx, &shared);
                    shared.publisher_stale.store(false, Ordering::Relaxed);
                    connection = Some(conn);
                    backoff.reset();
                    shared.up(Part::Publisher);
                }
                Err(err) => shared.down(Part::Publisher, &err),
            }
            continue;
        };
        let first = tokio::select! {
            message = rx.recv() => message,
            () = shared.publisher_wake.notified() => {
                if shared.publisher_stale.swap(false, Ordering::Relaxed) {
                    connection = None;
                }
                continue;
            }
        };
        let Some(first) = first else {
            return;
        };
        let mut batch = Vec::with_capacity(BATCH.min(rx.len() + 1));
        batch.push(first);
        while batch.len() < BATCH {
            match rx.try_recv() {
                Ok(message) => batch.push(message),
                Err(_) => break,
            }
        }
        let mut pipe = redis::pipe();
        for message in &batch {
            pipe.cmd("PUBLISH")
                .arg(&message.channel)
                .arg(&message.payload);
        }
        match pipe.query_async::<Vec<i64>>(conn).await {
            Ok(counts) => {
                shared.overflowing.store(false, Ordering::Relaxed);
                for (message, count) in batch.into_iter().zip(counts) {
                    if let Some(reply) = message.reply {
                        let _ = reply.send(Ok(count));
                    }
                }
            }
            Err(err) => {
                shared.down(Part::Publisher, &err);
                let reason = format!("publishing to Redis at {} failed: {err}", shared.url);
                shared
                    .dropped
                    .fetch_add(batch.len() as u64, Ordering::Relaxed);
                for message in batch {
                    message.fail(&reason);
                }
                connection = None;
            }
        }
    }
}

/// The subscriber task: applies what arrives, resubscribes after a reconnection.
pub(crate) async fn run_subscriber(
    client: Client,
    shared: Arc<Shared>,
    mut stream: Option<PubSubStream>,
) {
    let mut backoff = Backoff::new(&shared);
    loop {
        match stream.take() {
            Some(mut messages) => {
                while let Some(msg) = messages.next().await {
                    shared.handle(&msg);
                }
                shared.down(Part::Subscriber, &"the subscription connection closed");
            }
            None => {
                tokio::time::sleep(backoff.next()).await;
                match connect_subscriber(&client, &shared).await {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_its_maximum_and_resets() {
        let mut backoff = Backoff {
            min: Duration::from_millis(100),
            max: Duration::from_millis(350),
            next: Duration::from_millis(100),
        };
        let delays: Vec<_> = (0..4).map(|_| backoff.next().as_millis()).collect();
        assert_eq!(delays, [100, 200, 350, 350]);
        backoff.reset();
        assert_eq!(backoff.next().as_millis(), 100);
    }
}
