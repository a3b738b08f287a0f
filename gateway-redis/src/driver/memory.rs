//! [`MemoryBus`] and [`MemoryDriver`]: several adapters in one process, connected as if
//! through one Redis, for tests of an app's scale-out that need no server.

use std::convert::Infallible;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, PoisonError, RwLock};

use bytes::Bytes;

use super::{ChannelMessage, Driver, Inbox, StreamId, Subscription};

/// An in-process stand-in for a Redis server's pub/sub: every [`MemoryDriver`] made by
/// [`driver`](Self::driver) is one connection to it. Clones are the same bus.
///
/// It keeps Redis's semantics where the adapter relies on them: a message reaches every
/// matching subscription once (its publisher's own included), in the order one driver
/// published it, and `publish` counts the subscriptions it reached; a dropped driver's
/// subscriptions are gone at once, as a closed connection's are. Streams are delivered to
/// their followers as they are appended, numbered `0-1`, `0-2`, ... per bus, in the order
/// they were appended (the bus never disconnects, so there is nothing to resume).
///
/// # Examples
///
/// Two instances of an app, one bus: a room emit on one reaches a member on the other.
///
/// ```
/// use ws_gateway_core::prelude::*;
/// use ws_gateway_core::Handshake;
/// use ws_gateway_core::transport::Outbound;
/// use ws_gateway_redis::{AdapterConfig, MemoryBus, RedisAdapter};
///
/// #[websocket_gateway(path = "/chat")]
/// struct Chat;
///
/// #[websocket_gateway]
/// impl Chat {}
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let bus = MemoryBus::new();
/// let mut apps = Vec::new();
/// for _ in 0..2 {
///     let adapter = RedisAdapter::with_driver(bus.driver(), AdapterConfig::new()).await?;
///     apps.push(GatewayApp::new().adapter(adapter).gateway::<Chat>().build()?);
/// }
///
/// // A client of the second instance, in room "lobby" (no socket needed).
/// let (member, mut queue) = apps[1].gateways()[0].open(Handshake::default(), 8);
/// member.join("lobby").unwrap();
///
/// // The first instance emits to the room: it has no member there, the second does.
/// let server = apps[0].server("/chat").unwrap();
/// assert_eq!(server.to("lobby").emit("said", &"hi")?, 0); // delivered locally: none
/// let Some(Outbound::Frame(frame)) = queue.recv().await else { panic!("no frame") };
/// assert_eq!(frame.as_str(), r#"{"event":"said","data":"hi"}"#);
/// # Ok(())
/// # }
/// ```
#[derive(Clone, Default)]
pub struct MemoryBus {
    inner: Arc<Bus>,
}

#[derive(Default)]
struct Bus {
    next_driver: AtomicU64,
    /// Every subscription on the bus: which driver made it, what it matches, where it goes.
    subscriptions: RwLock<Vec<(u64, Subscription, Inbox)>>,
    /// Every stream's followers: which driver, which stream, where it goes.
    followers: RwLock<Vec<(u64, String, Inbox)>>,
    /// Held while entries are numbered and delivered, so that every follower sees one order;
    /// the last id given.
    appending: tokio::sync::Mutex<u64>,
}

impl Bus {
    fn subscriptions(&self) -> std::sync::RwLockReadGuard<'_, Vec<(u64, Subscription, Inbox)>> {
        // Nothing panics while holding this lock; recover the data if something ever did.
        self.subscriptions
            .read()
            .unwrap_or_else(PoisonError::into_inner)
    }

    fn subscriptions_mut(
        &self,
    ) -> std::sync::RwLockWriteGuard<'_, Vec<(u64, Subscription, Inbox)>> {
        self.subscriptions
            .write()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

impl MemoryBus {
    /// An empty bus.
    pub fn new() -> Self {
        Self::default()
    }

    /// A new connection to the bus, for one adapter: give it to
    /// [`RedisAdapter::with_driver`](crate::RedisAdapter::with_driver).
    pub fn driver(&self) -> MemoryDriver {
        MemoryDriver {
            bus: self.clone(),
            id: self.inner.next_driver.fetch_add(1, Ordering::Relaxed),
        }
    }
}

impl fmt::Debug for MemoryBus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemoryBus")
            .field("subscriptions", &self.inner.subscriptions().len())
            .finish()
    }
}

/// One connection to a [`MemoryBus`]; its subscriptions end when it is dropped.
///
/// See [`MemoryBus`] for an example.
pub struct MemoryDriver {
    bus: MemoryBus,
    id: u64,
}

impl fmt::Debug for MemoryDriver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemoryDriver")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

impl Drop for MemoryDriver {
    fn drop(&mut self) {
        self.bus
            .inner
            .subscriptions_mut()
            .retain(|(driver, _, _)| *driver != self.id);
        self.bus
            .inner
            .followers
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .retain(|(driver, _, _)| *driver != self.id);
    }
}

impl Driver for MemoryDriver {
    /// The bus cannot fail.
    type Error = Infallible;

    async fn publish(&self, messages: &[ChannelMessage]) -> Result<Vec<usize>, Infallible> {
        let mut counts = Vec::with_capacity(messages.len());
        for message in messages {
            // Collected first: the lock is not held while an inbox makes us wait.
            let inboxes: Vec<Inbox> = self
                .bus
                .inner
                .subscriptions()
                .iter()
                .filter(|(_, subscription, _)| subscription.matches(&message.channel))
                .map(|(_, _, inbox)| inbox.clone())
                .collect();
            let mut reached = 0;
            for inbox in inboxes {
                // `ChannelMessage::clone` shares the payload's bytes.
                if inbox.deliver(message.clone()).await {
                    reached += 1;
                }
            }
            counts.push(reached);
        }
        Ok(counts)
    }

    async fn subscribe(&self, subscription: Subscription, inbox: Inbox) -> Result<(), Infallible> {
        let mut subscriptions = self.bus.inner.subscriptions_mut();
        match subscriptions
            .iter_mut()
            .find(|(driver, s, _)| *driver == self.id && *s == subscription)
        {
            Some(existing) => existing.2 = inbox,
            None => subscriptions.push((self.id, subscription, inbox)),
        }
        Ok(())
    }

    async fn unsubscribe(&self, subscription: &Subscription) -> Result<(), Infallible> {
        self.bus
            .inner
            .subscriptions_mut()
            .retain(|(driver, s, _)| !(*driver == self.id && s == subscription));
        Ok(())
    }

    async fn append(
        &self,
        stream: &str,
        payloads: &[Bytes],
        _max_len: usize,
    ) -> Result<Vec<StreamId>, Infallible> {
        let bus = &self.bus.inner;
        let mut last = bus.appending.lock().await;
        let followers: Vec<Inbox> = bus
            .followers
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .filter(|(_, name, _)| name == stream)
            .map(|(_, _, inbox)| inbox.clone())
            .collect();
        let mut ids = Vec::with_capacity(payloads.len());
        for payload in payloads {
            *last += 1;
            let id = StreamId::new(0, *last);
            for inbox in &followers {
                inbox
                    .deliver(ChannelMessage::entry(stream, id, payload.clone()))
                    .await;
            }
            ids.push(id);
        }
        Ok(ids)
    }

    async fn follow(&self, stream: &str, inbox: Inbox) -> Result<StreamId, Infallible> {
        // Taken so that no append is half delivered: the follower starts between two.
        let last = self.bus.inner.appending.lock().await;
        self.bus
            .inner
            .followers
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .push((self.id, stream.to_owned(), inbox));
        Ok(StreamId::new(0, *last))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn received(rx: &mut tokio::sync::mpsc::Receiver<ChannelMessage>) -> Vec<String> {
        std::iter::from_fn(|| rx.try_recv().ok())
            .map(|m| format!("{}={}", m.channel, String::from_utf8_lossy(&m.payload)))
            .collect()
    }

    #[tokio::test]
    async fn a_message_reaches_every_matching_subscription_once_in_order() {
        let bus = MemoryBus::new();
        let (a, b) = (bus.driver(), bus.driver());
        let (a_inbox, mut a_rx) = Inbox::channel(16);
        let (b_inbox, mut b_rx) = Inbox::channel(16);
        a.subscribe(Subscription::Prefix("p:".into()), a_inbox.clone())
            .await
            .unwrap();
        a.subscribe(Subscription::Channel("p#req".into()), a_inbox)
            .await
            .unwrap();
        b.subscribe(Subscription::Prefix("p:".into()), b_inbox)
            .await
            .unwrap();

        let counts = b
            .publish(&[
                ChannelMessage::new("p:/x", "1"),
                ChannelMessage::new("p#req", "2"),
                ChannelMessage::new("p:/y", "3"),
                ChannelMessage::new("other", "4"),
            ])
            .await
            .unwrap();
        // The publisher's own subscription counts, as with Redis.
        assert_eq!(counts, [2, 1, 2, 0]);
        assert_eq!(received(&mut a_rx), ["p:/x=1", "p#req=2", "p:/y=3"]);
        assert_eq!(received(&mut b_rx), ["p:/x=1", "p:/y=3"]);
    }

    #[tokio::test]
    async fn subscribing_twice_replaces_and_unsubscribing_stops_delivery() {
        let bus = MemoryBus::new();
        let driver = bus.driver();
        let (first, mut first_rx) = Inbox::channel(4);
        let (second, mut second_rx) = Inbox::channel(4);
        let room = Subscription::Channel("room".into());
        driver.subscribe(room.clone(), first).await.unwrap();
        driver.subscribe(room.clone(), second).await.unwrap();
        let counts = driver.publish(&[ChannelMessage::new("room", "a")]).await;
        assert_eq!(counts.unwrap(), [1]);
        assert!(received(&mut first_rx).is_empty());
        assert_eq!(received(&mut second_rx), ["room=a"]);

        driver.unsubscribe(&room).await.unwrap();
        driver.unsubscribe(&room).await.unwrap(); // not subscribed: fine
        let counts = driver.publish(&[ChannelMessage::new("room", "b")]).await;
        assert_eq!(counts.unwrap(), [0]);
        assert!(received(&mut second_rx).is_empty());
    }

    #[tokio::test]
    async fn a_dropped_driver_or_a_closed_inbox_is_not_counted() {
        let bus = MemoryBus::new();
        let (a, b, c) = (bus.driver(), bus.driver(), bus.driver());
        let (b_inbox, _b_rx) = Inbox::channel(4);
        let (c_inbox, c_rx) = Inbox::channel(4);
        b.subscribe(Subscription::Channel("x".into()), b_inbox)
            .await
            .unwrap();
        c.subscribe(Subscription::Channel("x".into()), c_inbox)
            .await
            .unwrap();
        let message = [ChannelMessage::new("x", "")];
        assert_eq!(a.publish(&message).await.unwrap(), [2]);
        drop(c_rx);
        assert_eq!(a.publish(&message).await.unwrap(), [1]);
        drop(b);
        assert_eq!(a.publish(&message).await.unwrap(), [0]);
        assert_eq!(format!("{bus:?}"), "MemoryBus { subscriptions: 1 }");
    }

    #[tokio::test]
    async fn a_stream_reaches_its_followers_in_order_with_growing_ids() {
        let bus = MemoryBus::new();
        let (a, b) = (bus.driver(), bus.driver());
        let (inbox, mut rx) = Inbox::channel(8);
        assert_eq!(b.follow("s", inbox).await.unwrap(), StreamId::ZERO);
        let ids = a
            .append("s", &[Bytes::from("1"), Bytes::from("2")], 10)
            .await
            .unwrap();
        assert_eq!(ids, [StreamId::new(0, 1), StreamId::new(0, 2)]);
        a.append("other", &[Bytes::from("x")], 10).await.unwrap();
        let got: Vec<_> = std::iter::from_fn(|| rx.try_recv().ok())
            .map(|m| (m.id, m.payload))
            .collect();
        assert_eq!(
            got,
            [
                (Some(StreamId::new(0, 1)), Bytes::from("1")),
                (Some(StreamId::new(0, 2)), Bytes::from("2"))
            ]
        );
        // A later follower starts after what was appended.
        let (late, _late_rx) = Inbox::channel(8);
        assert_eq!(a.follow("s", late).await.unwrap(), StreamId::new(0, 3));
    }
}
