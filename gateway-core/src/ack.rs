//! Acknowledgements the server asks for: [`Client::emit_with_ack`](crate::Client::emit_with_ack)
//! and [`Broadcast::emit_with_ack`](crate::Broadcast::emit_with_ack), Socket.IO's
//! `emitWithAck` and socketioxide's `emit_with_ack`.
//!
//! On the JSON protocol the server sends `{"event": E, "data": D, "ack": N}`, `N` a positive
//! integer never reused on the connection, and the client answers `{"ack": N, "data": A}`.
//! An answer with an unknown, repeated or late `N` is ignored and counted
//! (`gateway_acks_total{outcome="ignored"}`). Socket.IO clients answer with their
//! acknowledgement callback.
//!
//! Each client keeps a table of the numbers it was asked under, each with the channel of the
//! emit that asked; a broadcast uses one number for all its receivers on an instance, so that
//! it is encoded once there.

use std::borrow::Cow;
use std::fmt;
use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use futures_util::Stream;
use rustc_hash::FxHashMap;
use serde::de::DeserializeOwned;
use serde_json::value::RawValue;
use tokio::sync::mpsc;

use crate::client::ClientId;
use crate::error::SendError;

/// How long an acknowledgement is awaited when the emit does not say:
/// [`ConnectionConfig::ack_timeout`](crate::ConnectionConfig::ack_timeout)'s default.
pub(crate) const DEFAULT_ACK_TIMEOUT: Duration = Duration::from_secs(5);

/// The next acknowledgement number of this process: unique on every connection.
pub(crate) fn next_ack() -> u64 {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

/// An answer to an acknowledgement the server asked for, as a transport decoded it:
/// `{"ack": N, "data": A}` on the JSON protocol.
///
/// # Examples
///
/// ```
/// use ws_gateway_core::transport::{Incoming, parse_incoming};
///
/// let Ok(Incoming::Answer(answer)) = parse_incoming(r#"{"ack":3,"data":"yes"}"#) else {
///     panic!("not an answer")
/// };
/// assert_eq!(answer.ack, 3);
/// assert_eq!(answer.data.unwrap().get(), r#""yes""#);
/// ```
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct AckAnswer<'a> {
    /// The number the server asked under.
    pub ack: u64,
    /// The answer as JSON text; `None` when the answer had none (read as `null`).
    pub data: Option<Cow<'a, RawValue>>,
}

impl<'a> AckAnswer<'a> {
    /// An answer to acknowledgement `ack`.
    ///
    /// # Examples
    ///
    /// ```
    /// use serde_json::value::RawValue;
    /// use ws_gateway_core::transport::AckAnswer;
    ///
    /// let data: &RawValue = serde_json::from_str("[1,2]").unwrap();
    /// let answer = AckAnswer::new(7, Some(data));
    /// assert_eq!(answer.data.unwrap().get(), "[1,2]");
    /// ```
    pub fn new(ack: u64, data: Option<impl crate::IntoRawJson<'a>>) -> Self {
        Self {
            ack,
            data: data.map(crate::IntoRawJson::into_raw_json),
        }
    }

    pub(crate) fn into_data(self) -> Box<RawValue> {
        match self.data {
            Some(Cow::Owned(data)) => data,
            Some(Cow::Borrowed(data)) => data.to_owned(),
            None => RawValue::NULL.to_owned(),
        }
    }
}

/// What reaches the emit that asked.
#[derive(Debug)]
pub(crate) enum AckEvent {
    /// A client answered.
    Answer(ClientId, Box<RawValue>),
    /// A client disconnected before answering.
    Gone(ClientId),
    /// The adapter asked this many other instances.
    Asked(usize),
    /// One of them sent the event to this many of its clients.
    Sent(usize),
}

pub(crate) type AckSender = mpsc::UnboundedSender<AckEvent>;

/// A client and its answer as JSON text, before it is read as the type asked for.
type RawAnswer = (ClientId, Result<Box<RawValue>, AckError>);

/// The acknowledgements a client was asked for and did not answer yet.
#[derive(Default)]
pub(crate) struct AckTable {
    inner: Mutex<Table>,
}

#[derive(Default)]
struct Table {
    pending: FxHashMap<u64, AckSender>,
    /// The size at which entries whose emit gave up (timed out, dropped) are swept.
    sweep_at: usize,
    /// The client is gone: nothing more is registered.
    closed: bool,
}

impl AckTable {
    fn lock(&self) -> std::sync::MutexGuard<'_, Table> {
        // Nothing panics while holding the lock; recover the data if something ever did.
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Waits for the answer to `ack` on `tx`; `false` once the client is gone.
    pub(crate) fn register(&self, ack: u64, tx: AckSender) -> bool {
        let mut table = self.lock();
        if table.closed {
            return false;
        }
        // Entries of emits that stopped waiting are swept when the table has doubled since
        // the last sweep: a client that never answers keeps at most twice what is awaited.
        if table.pending.len() >= table.sweep_at.max(16) {
            table.pending.retain(|_, tx| !tx.is_closed());
            table.sweep_at = table.pending.len() * 2;
        }
        table.pending.insert(ack, tx);
        true
    }

    /// Forgets `ack` (its frame could not be queued).
    pub(crate) fn forget(&self, ack: u64) {
        self.lock().pending.remove(&ack);
    }

    /// Hands an answer to the emit that asked; `false` when nothing waits for `ack`
    /// (unknown, answered already, or given up on).
    pub(crate) fn answer(&self, client: ClientId, answer: AckAnswer<'_>) -> bool {
        let Some(tx) = self.lock().pending.remove(&answer.ack) else {
            return false;
        };
        tx.send(AckEvent::Answer(client, answer.into_data()))
            .is_ok()
    }

    /// The client is gone: every emit waiting for it hears so.
    pub(crate) fn close(&self, client: ClientId) {
        let pending = {
            let mut table = self.lock();
            table.closed = true;
            std::mem::take(&mut table.pending)
        };
        for (_, tx) in pending {
            let _ = tx.send(AckEvent::Gone(client));
        }
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.lock().pending.len()
    }
}

/// Why an acknowledgement brought no answer.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use ws_gateway_core::AckError;
///
/// let err = AckError::Timeout(Duration::from_secs(2));
/// assert_eq!(err.to_string(), "no answer within 2s");
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AckError {
    /// The client did not answer in time.
    #[error("no answer within {0:?}")]
    Timeout(Duration),
    /// The client disconnected before it answered.
    #[error("the client disconnected before it answered")]
    Disconnected,
    /// The answer is not of the type asked for.
    #[error("the answer did not deserialize: {0}")]
    Decode(#[source] serde_json::Error),
    /// The event could not be sent.
    #[error(transparent)]
    Send(#[from] SendError),
}

impl From<AckError> for crate::WsException {
    fn from(err: AckError) -> Self {
        match err {
            AckError::Send(err) => err.into(),
            err => crate::WsException::of_kind(crate::ErrorKind::Internal, err.to_string()),
        }
    }
}

/// The answers of every client an emit with acknowledgement reached, on every instance, as
/// they arrive: [`Broadcast::emit_with_ack`](crate::Broadcast::emit_with_ack).
///
/// Each item is a client and its answer (or [`AckError::Decode`] when the answer is not a
/// `T`, [`AckError::Disconnected`] when the client left first). The stream ends once every
/// client that was sent the event answered, or when the timeout passed;
/// [`unanswered`](Self::unanswered) then says how many did not answer.
///
/// # Examples
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// use std::time::Duration;
/// use futures_util::StreamExt;
/// use ws_gateway_core::prelude::*;
/// use ws_gateway_core::Handshake;
/// use ws_gateway_core::transport::{AckAnswer, Outbound};
///
/// #[websocket_gateway(path = "/doc-ack-stream")]
/// struct Survey;
/// #[websocket_gateway]
/// impl Survey {}
///
/// let app = GatewayApp::new().gateway::<Survey>().build().unwrap();
/// let gateway = &app.gateways()[0];
/// let (alice, mut alice_queue) = gateway.open(Handshake::default(), 8);
/// let (_bob, _bob_queue) = gateway.open(Handshake::default(), 8);
///
/// let mut answers = gateway
///     .server()
///     .broadcast()
///     .timeout(Duration::from_millis(50))
///     .emit_with_ack::<String>("question", &"tea?")
///     .unwrap();
///
/// // Alice answers; Bob never does.
/// let Some(Outbound::Ask(frame, _)) = alice_queue.try_recv() else { panic!("no question") };
/// let ack = frame.ack().unwrap();
/// assert_eq!(frame.as_str(), format!(r#"{{"event":"question","data":"tea?","ack":{ack}}}"#));
/// let yes: &serde_json::value::RawValue = serde_json::from_str(r#""yes""#).unwrap();
/// gateway.answer(&alice, AckAnswer::new(ack, Some(yes)));
///
/// let (who, answer) = answers.next().await.unwrap();
/// assert_eq!((who, answer.unwrap()), (alice.id(), "yes".to_owned()));
/// assert!(answers.next().await.is_none()); // the timeout passed
/// assert_eq!((answers.sent(), answers.unanswered()), (2, 1));
/// # }
/// ```
#[must_use = "a stream of answers does nothing unless polled"]
pub struct AckStream<T> {
    rx: mpsc::UnboundedReceiver<AckEvent>,
    timeout: Duration,
    deadline: Instant,
    sleep: Option<Pin<Box<tokio::time::Sleep>>>,
    /// Clients sent the event: here, then as the other instances report.
    sent: usize,
    /// Answers (and departures) received.
    received: usize,
    /// Instances the adapter asked; `None` until it says how many.
    asked: Option<usize>,
    /// Instances that reported how many clients they sent to (possibly before the adapter
    /// said how many it asked).
    reported: usize,
    done: bool,
    _answer: PhantomData<fn() -> T>,
}

impl<T> AckStream<T> {
    pub(crate) fn new(
        rx: mpsc::UnboundedReceiver<AckEvent>,
        sent: usize,
        timeout: Duration,
        deadline: Instant,
        remote: bool,
    ) -> Self {
        Self {
            rx,
            timeout,
            deadline,
            sleep: None,
            sent,
            received: 0,
            asked: (!remote).then_some(0),
            reported: 0,
            done: false,
            _answer: PhantomData,
        }
    }

    /// How many clients the event was sent to, on every instance that reported so far.
    ///
    /// See [`AckStream`] for an example.
    pub fn sent(&self) -> usize {
        self.sent
    }

    /// How many clients that were sent the event have not answered (yet, while the stream
    /// runs; for good, once it ended).
    ///
    /// See [`AckStream`] for an example.
    pub fn unanswered(&self) -> usize {
        self.sent.saturating_sub(self.received)
    }

    fn complete(&self) -> bool {
        self.asked.is_some_and(|asked| self.reported >= asked) && self.received >= self.sent
    }

    /// The next event, or `None` once complete or past the deadline.
    fn poll_event(&mut self, cx: &mut Context<'_>) -> Poll<Option<RawAnswer>> {
        loop {
            if self.done {
                return Poll::Ready(None);
            }
            if self.complete() {
                self.done = true;
                return Poll::Ready(None);
            }
            match self.rx.poll_recv(cx) {
                Poll::Ready(Some(event)) => match event {
                    AckEvent::Answer(client, data) => {
                        self.received += 1;
                        return Poll::Ready(Some((client, Ok(data))));
                    }
                    AckEvent::Gone(client) => {
                        self.received += 1;
                        return Poll::Ready(Some((client, Err(AckError::Disconnected))));
                    }
                    AckEvent::Asked(instances) => {
                        self.asked = Some(self.asked.unwrap_or(0) + instances);
                    }
                    AckEvent::Sent(count) => {
                        self.sent += count;
                        self.reported += 1;
                    }
                },
                // Every sender is gone: nothing more can arrive.
                Poll::Ready(None) => {
                    self.done = true;
                    return Poll::Ready(None);
                }
                Poll::Pending => {
                    let deadline = self.deadline;
                    let sleep = self
                        .sleep
                        .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline.into())));
                    return match sleep.as_mut().poll(cx) {
                        Poll::Ready(()) => {
                            self.done = true;
                            Poll::Ready(None)
                        }
                        Poll::Pending => Poll::Pending,
                    };
                }
            }
        }
    }
}

impl<T: DeserializeOwned> Stream for AckStream<T> {
    type Item = (ClientId, Result<T, AckError>);

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.get_mut().poll_event(cx).map(|event| {
            event.map(|(client, answer)| {
                let answer = answer
                    .and_then(|data| serde_json::from_str(data.get()).map_err(AckError::Decode));
                (client, answer)
            })
        })
    }
}

impl<T> fmt::Debug for AckStream<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AckStream")
            .field("sent", &self.sent)
            .field("received", &self.received)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

/// One client's answer to [`Client::emit_with_ack`](crate::Client::emit_with_ack): resolves
/// to the answer as a `T`, or to why there is none.
///
/// The event is sent when `emit_with_ack` is called, not when this is first polled.
#[must_use = "the answer is lost unless awaited"]
pub struct AckFuture<T> {
    state: Result<AckStream<T>, Option<SendError>>,
}

impl<T> AckFuture<T> {
    pub(crate) fn asked(stream: AckStream<T>) -> Self {
        Self { state: Ok(stream) }
    }

    pub(crate) fn failed(err: SendError) -> Self {
        Self {
            state: Err(Some(err)),
        }
    }
}

impl<T: DeserializeOwned> Future for AckFuture<T> {
    type Output = Result<T, AckError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        match &mut this.state {
            Err(err) => Poll::Ready(Err(err
                .take()
                .map_or(AckError::Disconnected, AckError::Send))),
            Ok(stream) => match Pin::new(&mut *stream).poll_next(cx) {
                Poll::Ready(Some((_, answer))) => Poll::Ready(answer),
                Poll::Ready(None) => Poll::Ready(Err(AckError::Timeout(stream.timeout))),
                Poll::Pending => Poll::Pending,
            },
        }
    }
}

impl<T> fmt::Debug for AckFuture<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AckFuture").finish_non_exhaustive()
    }
}

/// The client's own acknowledgement of the message being handled, NestJS's `@Ack()`: a
/// handler that takes it answers through it, later or from a spawned task, and its return
/// value is not sent (its errors still are, through the exception filters).
///
/// The answer is what a return value would have been: `{"event": E, "data": .., "id": I}`
/// on the JSON protocol (with the request's `id`, when it had one), the acknowledgement
/// callback on Socket.IO.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use ws_gateway_core::prelude::*;
///
/// #[websocket_gateway(path = "/doc-ack")]
/// struct Jobs;
///
/// #[websocket_gateway]
/// impl Jobs {
///     /// Answers once the job is done, from its own task.
///     #[subscribe("run")]
///     fn run(&self, ack: Ack, seconds: u64) {
///         tokio::spawn(async move {
///             tokio::time::sleep(Duration::from_millis(seconds)).await;
///             ack.send(&"done").ok();
///         });
///     }
/// }
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// use ws_gateway_core::Handshake;
/// use ws_gateway_core::transport::Outbound;
///
/// let app = GatewayApp::new().gateway::<Jobs>().build().unwrap();
/// let gateway = &app.gateways()[0];
/// let (client, mut queue) = gateway.open(Handshake::default(), 8);
/// let answer = gateway.handle_json(&client, r#"{"event":"run","data":1,"id":9}"#).answer().await;
/// assert!(answer.frame().is_none()); // nothing yet
/// let Some(Outbound::Reply(frame, _)) = queue.recv().await else { panic!("no answer") };
/// assert_eq!(frame.as_str(), r#"{"event":"run","data":"done","id":9}"#);
/// # }
/// ```
#[derive(Debug)]
pub struct Ack {
    client: crate::Client,
    to: crate::ReplyTo,
    route: Option<crate::client::ReplyRoute>,
}

impl Ack {
    /// Answers with `value`, as the handler's return value would have: any `Serialize`, a
    /// [`WsResponse`](crate::WsResponse) under another event, `()` for nothing.
    ///
    /// # Errors
    ///
    /// [`SendError`] when the value fails to serialize, the client is gone, or its queue is
    /// full.
    ///
    /// # Examples
    ///
    /// See [`Ack`].
    pub fn send<T: serde::Serialize + ?Sized>(self, value: &T) -> Result<(), SendError> {
        let Some(frame) = self.to.encode(value)? else {
            return Ok(());
        };
        self.client
            .sink()
            .send(crate::client::Outbound::Reply(frame, self.route))
    }

    /// The client the answer goes to.
    ///
    /// # Examples
    ///
    /// ```
    /// # use ws_gateway_core::prelude::*;
    /// # #[websocket_gateway(path = "/doc-ack-client")] struct Chat;
    /// #[websocket_gateway]
    /// impl Chat {
    ///     #[subscribe("later")]
    ///     fn later(&self, ack: Ack) {
    ///         let _who = ack.client().id();
    ///         ack.send(&1).ok();
    ///     }
    /// }
    /// ```
    pub fn client(&self) -> &crate::Client {
        &self.client
    }
}

impl crate::FromContext for Ack {
    fn from_context(cx: &crate::Context<'_>) -> Result<Self, crate::WsException> {
        let client = crate::Client::from_context(cx)?;
        cx.acked.store(true, Ordering::Relaxed);
        Ok(Self {
            client,
            to: cx.reply_to(),
            route: cx
                .route
                .map(|route| crate::client::ReplyRoute(route.to_arc())),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(n: u64) -> ClientId {
        ClientId::from_u64(n)
    }

    fn raw(json: &str) -> Box<RawValue> {
        RawValue::from_string(json.to_owned()).unwrap()
    }

    #[test]
    fn a_table_sweeps_what_nobody_waits_for() {
        let table = AckTable::default();
        for ack in 0..1000 {
            let (tx, rx) = mpsc::unbounded_channel();
            drop(rx); // the emit gave up
            assert!(table.register(ack, tx));
        }
        assert!(table.len() <= 32, "{} entries kept", table.len());
    }

    #[test]
    fn an_answer_reaches_its_emit_once() {
        let table = AckTable::default();
        let (tx, mut rx) = mpsc::unbounded_channel();
        table.register(5, tx);
        assert!(!table.answer(id(1), AckAnswer::new(6, Some(raw("1")))));
        assert!(table.answer(id(1), AckAnswer::new(5, Some(raw("1")))));
        assert!(!table.answer(id(1), AckAnswer::new(5, Some(raw("2")))));
        assert!(
            matches!(rx.try_recv(), Ok(AckEvent::Answer(who, data)) if who == id(1) && data.get() == "1")
        );
        assert!(rx.try_recv().is_err());
    }

    #[test]
    fn a_closed_table_tells_every_emit_and_takes_no_more() {
        let table = AckTable::default();
        let (tx, mut rx) = mpsc::unbounded_channel();
        table.register(1, tx.clone());
        table.close(id(9));
        assert!(matches!(rx.try_recv(), Ok(AckEvent::Gone(who)) if who == id(9)));
        assert!(!table.register(2, tx));
    }
}
