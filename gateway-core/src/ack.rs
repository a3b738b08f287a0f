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
//! it is encoded once there. A transport with acknowledgements of its own (Socket.IO) hands
//! the emit its socket's future of the answer instead ([`Ask::answer_with`]): the emit polls
//! it, and the answer reaches it without a turn of the client's session. Either way the
//! table says who delivers: the first to take the number out of it.

use std::borrow::Cow;
use std::fmt;
use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use futures_util::stream::FuturesUnordered;
use futures_util::{Stream, StreamExt};
use rustc_hash::FxHashMap;
use serde::de::DeserializeOwned;
use serde_json::value::RawValue;
use tokio::sync::mpsc;

use crate::client::{Client, ClientId};
use crate::error::SendError;
use crate::telemetry::{Counter, GatewayMetrics};

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
    /// A client's transport awaits the answer itself: the emit polls it.
    Awaiting(Awaited),
}

/// The answer future a transport with acknowledgements of its own handed over
/// ([`Ask::answer_with`]), polled by the emit that asked.
pub(crate) struct Awaited {
    client: Client,
    ack: u64,
    answered: Counter,
    ignored: Counter,
    answer: Pin<Box<dyn Future<Output = Option<Box<RawValue>>> + Send + Sync>>,
}

impl fmt::Debug for Awaited {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Awaited")
            .field("client", &self.client.id())
            .field("ack", &self.ack)
            .finish_non_exhaustive()
    }
}

impl Future for Awaited {
    /// The client and its answer; `None` when the transport gave up (a timeout, the socket
    /// gone: the emit's own deadline, or the client's departure, tells the emit) or when
    /// the answer came too late (its number is no longer in the client's table).
    type Output = Option<(ClientId, Box<RawValue>)>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        let Poll::Ready(answer) = this.answer.as_mut().poll(cx) else {
            return Poll::Pending;
        };
        Poll::Ready(answer.and_then(|data| {
            if this.client.acks().claim(this.ack) {
                this.answered.increment(1);
                Some((this.client.id(), data))
            } else {
                tracing::debug!(target: "gateway::rejection", client = %this.client.id(), ack = this.ack, "ignored an answer nothing waits for");
                this.ignored.increment(1);
                None
            }
        }))
    }
}

/// One acknowledgement a session hands to
/// [`Connection::feed_ask`](crate::transport::Connection::feed_ask) with its frame: the
/// number asked under, until when the answer is awaited, and, for a transport with
/// acknowledgements of its own, where its socket's answer goes ([`answer_with`](Self::answer_with)).
///
/// # Examples
///
/// A connection whose socket answers through a callback of its own (here a oneshot channel
/// the test plays the client with) hands the answer's future to the emit that asked: the
/// emit polls it, and the answer reaches the handler without a turn of the session.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// use std::task::{Context, Poll};
/// use serde_json::value::RawValue;
/// use tokio::sync::{mpsc, oneshot};
/// use ws_gateway_core::Frame;
/// use ws_gateway_core::prelude::*;
/// use ws_gateway_core::transport::{self, Ask, Connection, Decoded, Gone, Received};
///
/// #[websocket_gateway(path = "/doc-ask")]
/// struct Quiz;
///
/// #[websocket_gateway]
/// impl Quiz {
///     /// Asks the client, replies with its answer.
///     #[subscribe("quiz")]
///     async fn quiz(&self, client: Client) -> String {
///         client.emit_with_ack::<String>("question", &"2+2?").await.unwrap_or_default()
///     }
/// }
///
/// /// Requests in, replies out, and each question with the channel that answers it.
/// struct Callbacks {
///     input: mpsc::UnboundedReceiver<String>,
///     output: mpsc::UnboundedSender<String>,
///     questions: mpsc::UnboundedSender<(u64, oneshot::Sender<Box<RawValue>>)>,
/// }
///
/// impl Connection for Callbacks {
///     type Message = String;
///     type Route = ();
///     fn poll_recv(&mut self, cx: &mut Context<'_>) -> Poll<Received<String>> {
///         self.input.poll_recv(cx).map(|m| m.map_or(Received::Gone, Received::Message))
///     }
///     fn size(&self, message: &String) -> usize {
///         message.len()
///     }
///     fn decode<'m>(&self, message: &'m String) -> Decoded<'m, ()> {
///         match transport::parse(message) {
///             Ok(request) => Decoded::Request(request, ()),
///             Err(err) => Decoded::Invalid(err.into()),
///         }
///     }
///     async fn feed(&mut self, frame: Frame, _: Option<&()>) -> Result<(), Gone> {
///         self.output.send(frame.as_str().to_owned()).map_err(|_| Gone)
///     }
///     async fn feed_ask(&mut self, _frame: Frame, ask: Ask<'_>) -> Result<(), Gone> {
///         let (answer, answered) = oneshot::channel();
///         self.questions.send((ask.ack(), answer)).map_err(|_| Gone)?;
///         ask.answer_with(async move { answered.await.ok() });
///         Ok(())
///     }
///     async fn flush(&mut self) -> Result<(), Gone> {
///         Ok(())
///     }
///     async fn close(&mut self, _: transport::Closing) {}
/// }
///
/// let app = GatewayApp::new().gateway::<Quiz>().build().unwrap();
/// let (to_server, input) = mpsc::unbounded_channel();
/// let (output, mut from_server) = mpsc::unbounded_channel();
/// let (questions, mut asked) = mpsc::unbounded_channel();
/// let session = transport::Session::new(&app.gateways()[0], &app, Default::default());
/// tokio::spawn(session.serve(Callbacks { input, output, questions }));
///
/// to_server.send(r#"{"event":"quiz"}"#.to_owned()).unwrap();
/// let (_ack, answer) = asked.recv().await.unwrap();
/// answer.send(RawValue::from_string(r#""4""#.to_owned()).unwrap()).unwrap();
/// assert_eq!(from_server.recv().await.unwrap(), r#"{"event":"quiz","data":"4"}"#);
/// # }
/// ```
#[derive(Debug)]
pub struct Ask<'a> {
    client: &'a Client,
    ack: u64,
    deadline: Instant,
    metrics: &'a GatewayMetrics,
}

impl<'a> Ask<'a> {
    pub(crate) fn new(
        client: &'a Client,
        ack: u64,
        deadline: Instant,
        metrics: &'a GatewayMetrics,
    ) -> Self {
        Self {
            client,
            ack,
            deadline,
            metrics,
        }
    }

    /// The number the frame asks under ([`Frame::ack`](crate::Frame::ack)).
    ///
    /// See [`Ask`] for an example.
    pub fn ack(&self) -> u64 {
        self.ack
    }

    /// Until when the answer is awaited: a transport that times its acknowledgements out
    /// itself waits that long.
    ///
    /// See [`Ask`] for an example.
    pub fn deadline(&self) -> Instant {
        self.deadline
    }

    /// Hands the answer to the emit that asked once `answer` resolves: the emit polls
    /// `answer` itself, so that the answer does not go through the client's session. For a
    /// transport with acknowledgements of its own; one that does not call this delivers
    /// the client's answer as a [`Decoded::Answer`](crate::transport::Decoded::Answer).
    ///
    /// `answer` resolves to the answer as JSON text, or to `None` when the transport gave
    /// up on it (its own timeout, the socket gone): the emit then waits on, until its
    /// deadline or the client's departure. An answer after the emit stopped waiting, or
    /// after the client left, is ignored (and counted, as an unknown number is).
    ///
    /// See [`Ask`] for an example.
    pub fn answer_with<F>(self, answer: F)
    where
        F: Future<Output = Option<Box<RawValue>>> + Send + Sync + 'static,
    {
        let Self {
            client,
            ack,
            metrics,
            ..
        } = self;
        client.acks().defer(ack, || Awaited {
            client: client.clone(),
            ack,
            answered: metrics.acks_answered.clone(),
            ignored: metrics.acks_ignored.clone(),
            answer: Box::pin(answer),
        });
    }
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

    /// Sends the emit waiting for `ack` the future of its answer, which a transport awaits
    /// itself; nothing when nothing waits for `ack` any more. The number stays in the table
    /// until [`claim`](Self::claim)ed, so that the client's departure still tells the emit.
    pub(crate) fn defer(&self, ack: u64, awaited: impl FnOnce() -> Awaited) {
        let table = self.lock();
        if let Some(tx) = table.pending.get(&ack) {
            let _ = tx.send(AckEvent::Awaiting(awaited()));
        }
    }

    /// Takes `ack` out of the table for an answer a transport awaited: `false` when it was
    /// no longer there (the client left, or the number was answered already).
    pub(crate) fn claim(&self, ack: u64) -> bool {
        self.lock().pending.remove(&ack).is_some()
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
    /// Answers the clients' transports await, polled here; made on the first.
    awaited: Option<FuturesUnordered<Awaited>>,
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
            awaited: None,
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
            if let Some(awaited) = &mut self.awaited {
                match awaited.poll_next_unpin(cx) {
                    Poll::Ready(Some(Some((client, data)))) => {
                        self.received += 1;
                        return Poll::Ready(Some((client, Ok(data))));
                    }
                    // Given up on by its transport, or too late: the deadline or the
                    // client's departure counts it.
                    Poll::Ready(Some(None)) => continue,
                    Poll::Ready(None) | Poll::Pending => {}
                }
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
                    AckEvent::Awaiting(awaited) => {
                        self.awaited
                            .get_or_insert_with(FuturesUnordered::new)
                            .push(awaited);
                    }
                },
                // Every sender is gone: nothing more can arrive (an awaited answer could
                // only be too late, its number having left the client's table).
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

    /// A client of a server of its own, asked under `ack` by an emit sent to `sent`
    /// clients: the client, the emit's stream, the client's queue and metrics.
    fn asked(
        ack: u64,
        sent: usize,
    ) -> (
        Client,
        AckStream<String>,
        crate::client::OutboundQueue,
        GatewayMetrics,
    ) {
        let server = crate::server::WsServer::new("/awaited");
        let (sink, queue) = crate::client::ClientSink::channel(16, Counter::noop());
        let client = Client::new(server.clone(), sink, crate::client::Handshake::default());
        server.add(client.clone());
        let (tx, rx) = mpsc::unbounded_channel();
        assert!(client.acks().register(ack, tx));
        let deadline = Instant::now() + Duration::from_secs(5);
        let stream = AckStream::new(rx, sent, Duration::from_secs(5), deadline, false);
        (client, stream, queue, GatewayMetrics::new("/awaited"))
    }

    #[tokio::test]
    async fn an_awaited_answer_reaches_its_emit_once() {
        let (client, mut answers, _queue, metrics) = asked(3, 1);
        let (answer, answered) = tokio::sync::oneshot::channel();
        Ask::new(&client, 3, Instant::now(), &metrics)
            .answer_with(async move { answered.await.ok() });
        // Answered through the table as well (a transport mixing both): one of them only.
        answer.send(raw(r#""first""#)).unwrap();
        let (who, first) = answers.next().await.unwrap();
        assert_eq!((who, first.unwrap()), (client.id(), "first".to_owned()));
        assert!(
            !client
                .acks()
                .answer(client.id(), AckAnswer::new(3, Some(raw("2"))))
        );
        assert!(answers.next().await.is_none()); // every client answered
        assert_eq!((answers.sent(), answers.unanswered()), (1, 0));
        assert_eq!(client.acks().len(), 0);
    }

    #[tokio::test]
    async fn an_awaited_answer_after_the_client_left_is_ignored() {
        let (client, mut answers, _queue, metrics) = asked(4, 1);
        let (answer, answered) = tokio::sync::oneshot::channel();
        Ask::new(&client, 4, Instant::now(), &metrics)
            .answer_with(async move { answered.await.ok() });
        // The emit polls the awaited answer before the departure arrives.
        assert!(futures_util::FutureExt::now_or_never(answers.next()).is_none());
        client.acks().close(client.id());
        answer.send(raw(r#""late""#)).unwrap();
        let (who, gone) = answers.next().await.unwrap();
        assert_eq!(who, client.id());
        assert!(matches!(gone, Err(AckError::Disconnected)));
        assert!(answers.next().await.is_none());
    }

    #[tokio::test]
    async fn a_transport_that_gives_up_leaves_the_emit_to_its_deadline() {
        let (client, answers, _queue, metrics) = asked(5, 1);
        let mut answers = answers;
        answers.deadline = Instant::now() + Duration::from_millis(20);
        Ask::new(&client, 5, Instant::now(), &metrics).answer_with(async { None });
        assert!(answers.next().await.is_none()); // the deadline passed
        assert_eq!(answers.unanswered(), 1);
        // Nothing waits for 5 any more, but the number stays until the client leaves.
        assert_eq!(client.acks().len(), 1);
    }

    #[tokio::test]
    async fn an_answer_for_a_number_nobody_waits_for_is_dropped() {
        let (client, mut answers, _queue, metrics) = asked(6, 1);
        let held = std::sync::Arc::new(());
        let kept = std::sync::Arc::clone(&held);
        Ask::new(&client, 7, Instant::now(), &metrics).answer_with(async move {
            let _kept = kept;
            None
        });
        // No emit waits for 7: the future is not kept anywhere.
        assert_eq!(std::sync::Arc::strong_count(&held), 1);
        assert!(futures_util::FutureExt::now_or_never(answers.next()).is_none());
        assert_eq!(client.acks().len(), 1);
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
