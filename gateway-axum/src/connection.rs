//! The life of one WebSocket connection: read frames, dispatch them, write replies and
//! queued frames, run the lifecycle hooks.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll, Wake, Waker};
use std::time::{Duration, Instant};

use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket};
use futures_util::stream::{BoxStream, FuturesUnordered, SelectAll, Stream};
use futures_util::task::AtomicWaker;
use futures_util::{SinkExt, StreamExt};
use gateway_core::frame::exceeds_depth;
use gateway_core::{
    Caught, Client, CloseRequest, ConnectionConfig, ConnectionGuard, Connections, Dispatch,
    Failure, Frame, GatewayRuntime, Handshake, Outbound, OutboundQueue, Outcome, Reply,
    WsException,
};
use pin_project_lite::pin_project;
use tracing::Instrument;

use crate::rate_limit::{Admission, TokenBucket};

/// Close code for a policy violation (RFC 6455): used when a client is rejected by
/// `handle_connection` or lets its outbound queue overflow.
const POLICY_VIOLATION: u16 = 1008;
/// Close code for a message over the size limit.
const MESSAGE_TOO_BIG: u16 = 1009;
/// Close code when the server shuts down or gives up on a silent client.
const GOING_AWAY: u16 = 1001;
/// How long the final close frame may take to write.
const CLOSE_WRITE_TIMEOUT: Duration = Duration::from_secs(1);
/// How many queued frames are written before one flush.
const WRITE_BATCH: usize = 64;

type PendingReply = Pin<Box<dyn Future<Output = (Outcome, Utf8Bytes)> + Send>>;
type ReplyStream = BoxStream<'static, (Result<Option<Frame>, Failure>, Utf8Bytes)>;

/// Why the loop stopped.
enum Stop {
    /// The client sent a close frame: what is left is to send tungstenite's reply to it.
    ClosedByClient,
    /// The transport failed: nothing more to send.
    Gone,
    /// We close, with this code and reason.
    Close(CloseRequest),
}

/// A failed socket write: the client is gone.
impl From<axum::Error> for Stop {
    fn from(_: axum::Error) -> Self {
        Stop::Gone
    }
}

/// What one turn of the loop leaves to write. Handling a message is synchronous and
/// returns one of these; the loop then awaits one write. Keeping the awaits out of the
/// handling keeps the connection's future, its memory while idle, small.
enum Step {
    /// Nothing to write.
    Idle,
    /// A reply: written after what is already queued for the client.
    Reply(Frame),
    /// A queued frame, and whatever is queued behind it.
    Queued(Outbound),
    /// A ping.
    Ping,
    /// Stop, after writing this reply if there is one.
    Stop(Option<Frame>, Stop),
    /// Write what is queued, then close with 1001.
    GoingAway,
}

/// Everything a connection needs besides its socket, boxed while the upgrade completes so
/// that the upgrade task carries one pointer instead of the handshake and the config.
pub(crate) struct Session {
    pub(crate) gateway: GatewayRuntime,
    pub(crate) handshake: Handshake,
    pub(crate) config: ConnectionConfig,
    pub(crate) connections: Connections,
    pub(crate) guard: ConnectionGuard,
}

impl Session {
    /// Opens the client and returns the connection's whole life as one future.
    pub(crate) fn run(self: Box<Self>, socket: WebSocket) -> impl Future<Output = ()> + use<> {
        let Session {
            gateway,
            handshake,
            config,
            connections,
            guard,
        } = *self;
        let (client, queue) = gateway.open(handshake, config.outbound_queue);
        let span = tracing::debug_span!(target: "gateway", "connection", path = gateway.path(), client = %client.id());
        let frames_sent = gateway.metrics().frames_sent.clone();
        Connection {
            socket,
            gateway,
            client,
            queue,
            limiter: config.rate_limit.map(TokenBucket::new),
            max_depth: config.max_json_depth,
            ping_interval: config.ping_interval,
            idle_timeout: config.idle_timeout,
            connections,
            frames_sent,
            _guard: guard,
        }
        .life()
        .instrument(span)
    }
}

struct Connection {
    socket: WebSocket,
    gateway: GatewayRuntime,
    client: Client,
    queue: OutboundQueue,
    limiter: Option<TokenBucket>,
    max_depth: usize,
    ping_interval: Option<Duration>,
    idle_timeout: Option<Duration>,
    connections: Connections,
    frames_sent: gateway_core::telemetry::Counter,
    /// Counts the connection against the limits until it is dropped.
    _guard: ConnectionGuard,
}

/// The heartbeat tick: the ping interval, or a quarter of the idle timeout without pings.
fn heartbeat_period(ping: Option<Duration>, idle: Option<Duration>) -> Option<Duration> {
    match (ping, idle) {
        (Some(ping), _) => Some(ping),
        (None, Some(idle)) => Some(idle / 4),
        (None, None) => None,
    }
    .filter(|p| !p.is_zero())
}

impl Connection {
    /// `handle_connection`, the loop, the close frame, `handle_disconnect`.
    ///
    /// A plain function returning an `async move` block: an `async fn` taking `self` by
    /// value would store the connection twice in its state.
    #[expect(
        clippy::manual_async_fn,
        reason = "an async fn would store the connection twice"
    )]
    fn life(mut self) -> impl Future<Output = ()> {
        async move {
            let connected = self.gateway.metrics().connections.clone();
            connected.increment(1.0);
            tracing::debug!(target: "gateway", "connected");
            let stop = match self.gateway.connect(&self.client).await {
                Ok(()) => self.serve().await,
                Err(err) => {
                    tracing::debug!(target: "gateway::rejection", "handle_connection rejected the client: {err}");
                    let frame = self.gateway.exception_frame(None, &err);
                    let _ = self.socket.send(text(frame)).await;
                    Stop::Close(err.close_request().cloned().unwrap_or(CloseRequest {
                        code: POLICY_VIOLATION,
                        reason: err.message().to_owned().into(),
                    }))
                }
            };
            // A client that stopped reading may never take the close frame: do not wait on it.
            match stop {
                Stop::Close(request) => {
                    let send = self.socket.send(close(request));
                    let _ = tokio::time::timeout(CLOSE_WRITE_TIMEOUT, send).await;
                }
                // tungstenite queued the reply to the client's close frame; a flush sends
                // it, so that the client sees a clean close (1000, not 1006).
                Stop::ClosedByClient => {
                    let _ = tokio::time::timeout(CLOSE_WRITE_TIMEOUT, self.socket.flush()).await;
                }
                Stop::Gone => {}
            }
            self.gateway.disconnect(&self.client).await;
            tracing::debug!(target: "gateway", "disconnected");
            connected.decrement(1.0);
        }
    }

    async fn serve(&mut self) -> Stop {
        // Handlers in flight and reply streams open, created on first use: most connections
        // never have either, and an empty `FuturesUnordered` still allocates.
        let mut pending: Option<FuturesUnordered<PendingReply>> = None;
        let mut streams: Option<SelectAll<ReplyStream>> = None;
        // Both signals are waited on across turns of the loop, so that a turn does not
        // register with their `Notify` again.
        let overflow = self.queue.overflow_signal();
        let overflowed = overflow.wait();
        tokio::pin!(overflowed);
        let connections = self.connections.clone();
        let shutdown = connections.shutting_down();
        tokio::pin!(shutdown);
        // After a shutdown began: no more reading, and until the shutdown's deadline for
        // in-flight work. The heartbeat's timer then counts down to that deadline.
        let mut draining = false;
        let period = heartbeat_period(self.ping_interval, self.idle_timeout);
        let mut heartbeat = tokio::time::interval(period.unwrap_or(Duration::from_secs(3600)));
        heartbeat.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        heartbeat.reset();
        let mut heard = true;
        let mut silent_since = Instant::now();
        let read_wake = Arc::new(ReadWake::default());
        let read_waker = Waker::from(Arc::clone(&read_wake));
        loop {
            if draining && pending.is_none() && streams.is_none() {
                return self.going_away(overflowed.as_mut()).await;
            }
            let step = tokio::select! {
                biased;
                () = &mut overflowed => Step::Stop(None, overflow_close()),
                () = &mut shutdown, if !draining => {
                    draining = true;
                    let deadline = connections.deadline().unwrap_or_else(Instant::now);
                    heartbeat.reset_at(deadline.into());
                    Step::Idle
                }
                out = self.queue.recv() => match out {
                    Some(out) => Step::Queued(out),
                    None => Step::Stop(None, Stop::Gone),
                },
                Some((outcome, request)) = next_in(&mut pending), if pending.is_some() => {
                    self.answer(outcome, &request, &mut streams)
                }
                Some((item, request)) = next_in(&mut streams), if streams.is_some() => {
                    self.answer_item(item, &request)
                }
                _ = heartbeat.tick(), if period.is_some() || draining => {
                    if draining {
                        tracing::debug!(target: "gateway", "shutdown deadline passed with work in flight");
                        Step::GoingAway
                    } else {
                        self.beat(&mut heard, &mut silent_since)
                    }
                }
                message = std::future::poll_fn(|cx| read_wake.poll_next(&mut self.socket, &read_waker, cx)), if !draining => {
                    heard = true;
                    match message {
                        Some(Ok(Message::Text(request))) => self.receive(request, &mut pending, &mut streams),
                        Some(Ok(Message::Binary(_))) => self.binary(),
                        Some(Ok(Message::Ping(_) | Message::Pong(_))) => Step::Idle,
                        Some(Ok(Message::Close(_))) => Step::Stop(None, Stop::ClosedByClient),
                        None => Step::Stop(None, Stop::Gone),
                        Some(Err(err)) => Step::Stop(None, transport_error(err)),
                    }
                }
            };
            let written = match step {
                Step::Idle => Ok(()),
                Step::Reply(frame) => self.write(None, Some(frame), overflowed.as_mut()).await,
                Step::Queued(out) => self.write(Some(out), None, overflowed.as_mut()).await,
                Step::Ping => {
                    let ping = self.socket.send(Message::Ping(axum::body::Bytes::new()));
                    guarded(ping, overflowed.as_mut()).await
                }
                Step::Stop(Some(frame), stop) => {
                    let written = self.write(None, Some(frame), overflowed.as_mut()).await;
                    return written.err().unwrap_or(stop);
                }
                Step::Stop(None, stop) => return stop,
                Step::GoingAway => return self.going_away(overflowed.as_mut()).await,
            };
            if let Err(stop) = written {
                return stop;
            }
        }
    }

    /// Handles one text message: the rate limit, the nesting limit, then the gateway.
    fn receive(
        &mut self,
        request: Utf8Bytes,
        pending: &mut Option<FuturesUnordered<PendingReply>>,
        streams: &mut Option<SelectAll<ReplyStream>>,
    ) -> Step {
        if let Some(limiter) = &mut self.limiter {
            match limiter.admit() {
                Admission::Pass => {}
                Admission::Reject => {
                    let err = limiter.exceeded();
                    return Step::Reply(self.gateway.exception_frame(Some(&request), &err));
                }
                Admission::Close => return Step::Stop(None, rate_limit_close()),
            }
        }
        if exceeds_depth(&request, self.max_depth) {
            tracing::debug!(target: "gateway::rejection", "message nested too deeply");
            let err = WsException::new(format!(
                "Message nested too deeply: at most {} levels of arrays and objects",
                self.max_depth
            ));
            return Step::Reply(self.gateway.exception_frame(Some(&request), &err));
        }
        match self.gateway.dispatch_text(&self.client, &request) {
            Dispatch::Ready(outcome) => self.answer(outcome, &request, streams),
            Dispatch::Pending(future) => {
                let reply: PendingReply = Box::pin(async move { (future.await, request) });
                pending
                    .get_or_insert_with(FuturesUnordered::new)
                    .push(reply);
                Step::Idle
            }
        }
    }

    /// A binary frame: counted by the rate limit, answered by the exception filters.
    fn binary(&mut self) -> Step {
        if let Some(Admission::Close) = self.limiter.as_mut().map(TokenBucket::admit) {
            return Step::Stop(None, rate_limit_close());
        }
        tracing::debug!(target: "gateway::rejection", "binary frame");
        deliver(self.gateway.binary_rejected(&self.client))
    }

    /// A heartbeat: closes a client silent for the idle timeout, else pings it.
    fn beat(&mut self, heard: &mut bool, silent_since: &mut Instant) -> Step {
        let now = Instant::now();
        if std::mem::take(heard) {
            *silent_since = now;
        } else if self
            .idle_timeout
            .is_some_and(|idle| now.duration_since(*silent_since) >= idle)
        {
            tracing::debug!(target: "gateway", "closing a silent client");
            let close = CloseRequest {
                code: GOING_AWAY,
                reason: "idle timeout: no message or pong received".into(),
            };
            return Step::Stop(None, Stop::Close(close));
        }
        if self.ping_interval.is_some() {
            Step::Ping
        } else {
            Step::Idle
        }
    }

    /// Writes what is queued, then closes with 1001.
    async fn going_away(&mut self, overflowed: Pin<&mut impl Future<Output = ()>>) -> Stop {
        if let Err(stop) = self.write(None, None, overflowed).await {
            return stop;
        }
        Stop::Close(CloseRequest {
            code: GOING_AWAY,
            reason: "server shutting down".into(),
        })
    }

    /// What a handled message produced.
    fn answer(
        &mut self,
        outcome: Outcome,
        request: &Utf8Bytes,
        streams: &mut Option<SelectAll<ReplyStream>>,
    ) -> Step {
        match outcome {
            Ok(Reply::None) => Step::Idle,
            Ok(Reply::Frame(frame)) => Step::Reply(frame),
            Ok(Reply::Stream(stream)) => {
                let request = request.clone();
                let stream = stream.map(move |item| (item, request.clone())).boxed();
                streams.get_or_insert_with(SelectAll::new).push(stream);
                Step::Idle
            }
            Ok(Reply::Close(frame, close)) => Step::Stop(frame, Stop::Close(close)),
            Ok(_) => Step::Idle,
            Err(failure) => self.fail(failure, request),
        }
    }

    fn answer_item(&mut self, item: Result<Option<Frame>, Failure>, request: &Utf8Bytes) -> Step {
        match item {
            Ok(Some(frame)) => Step::Reply(frame),
            Ok(None) => Step::Idle,
            Err(failure) => self.fail(failure, request),
        }
    }

    /// Lets the exception filters decide what the client receives for a failure.
    fn fail(&mut self, failure: Failure, request: &Utf8Bytes) -> Step {
        deliver(self.gateway.catch(&self.client, Some(request), failure))
    }

    /// Writes queued frames and a reply, then flushes once.
    ///
    /// With a reply, or with nothing in hand, everything queued is written (before the
    /// reply, so that a handler that emits and then returns is seen in that order). With a
    /// queued frame in hand, that one and at most [`WRITE_BATCH`] behind it, so that a busy
    /// queue does not starve reading.
    ///
    /// `overflowed` is the loop's wait for the overflow signal, reused here.
    fn write<'a, O: Future<Output = ()>>(
        &'a mut self,
        first: Option<Outbound>,
        reply: Option<Frame>,
        overflowed: Pin<&'a mut O>,
    ) -> impl Future<Output = Result<(), Stop>> + 'a {
        let drain_all = first.is_none();
        let Self {
            socket,
            queue,
            frames_sent,
            ..
        } = self;
        let written = async move {
            let mut next = first.or_else(|| queue.try_recv());
            let mut fed = 0;
            while let Some(out) = next {
                match out {
                    Outbound::Frame(frame) => {
                        frames_sent.increment(1);
                        socket.feed(text(frame)).await?;
                    }
                    Outbound::Close(request) => return Err(Stop::Close(request)),
                    _ => {}
                }
                fed += 1;
                next = if drain_all || fed < WRITE_BATCH {
                    queue.try_recv()
                } else {
                    None
                };
            }
            if let Some(frame) = reply {
                frames_sent.increment(1);
                socket.feed(text(frame)).await?;
            }
            socket.flush().await?;
            Ok(())
        };
        guarded(written, overflowed)
    }
}

/// Handlers in flight or reply streams open: a `FuturesUnordered` or a `SelectAll`.
trait InFlight: Stream + Unpin {
    fn is_empty(&self) -> bool;
}

impl InFlight for FuturesUnordered<PendingReply> {
    fn is_empty(&self) -> bool {
        FuturesUnordered::is_empty(self)
    }
}

impl InFlight for SelectAll<ReplyStream> {
    fn is_empty(&self) -> bool {
        SelectAll::is_empty(self)
    }
}

/// The next item of a lazily created set; once the set is empty it is dropped, and with
/// it its allocation.
fn next_in<S: InFlight>(set: &mut Option<S>) -> impl Future<Output = Option<S::Item>> + '_ {
    std::future::poll_fn(move |cx| {
        let Some(inner) = set else {
            return Poll::Pending;
        };
        let next = inner.poll_next_unpin(cx);
        if inner.is_empty() {
            *set = None;
        }
        match next {
            Poll::Ready(None) => Poll::Pending,
            next => next,
        }
    })
}

/// Remembers whether the socket's read side woke the task since it was last polled.
///
/// Polling the socket when it has nothing to read is not free: tungstenite zero-fills its
/// 4 KiB read buffer before every read attempt. A connection woken to write a queued frame
/// (every receiver of a broadcast) would pay that on every turn of its loop; with this, only
/// a socket that signalled readiness, or that just returned a message (more may be buffered),
/// is polled.
struct ReadWake {
    woken: AtomicBool,
    task: AtomicWaker,
}

impl Default for ReadWake {
    fn default() -> Self {
        Self {
            woken: AtomicBool::new(true),
            task: AtomicWaker::new(),
        }
    }
}

impl Wake for ReadWake {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.woken.store(true, Ordering::Release);
        self.task.wake();
    }
}

impl ReadWake {
    /// The socket's next message, polling it only if it woke us (`waker` wraps `self`).
    fn poll_next(
        &self,
        socket: &mut WebSocket,
        waker: &Waker,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Message, axum::Error>>> {
        self.task.register(cx.waker());
        if !self.woken.swap(false, Ordering::AcqRel) {
            return Poll::Pending;
        }
        let next = socket.poll_next_unpin(&mut Context::from_waker(waker));
        if next.is_ready() {
            // tungstenite may hold more frames from the same read: poll again next time.
            self.woken.store(true, Ordering::Release);
        }
        next
    }
}

/// What a filter decided: the frame to send, and whether to close.
fn deliver(caught: Caught) -> Step {
    match caught.into_parts() {
        (frame, Some(close)) => Step::Stop(frame, Stop::Close(close)),
        (Some(frame), None) => Step::Reply(frame),
        (None, None) => Step::Idle,
    }
}

pin_project! {
    /// A socket write that gives up when the client's queue overflows meanwhile: a client
    /// whose socket is full stops reading, and must not hold its task (and its rooms)
    /// forever. A plain struct rather than an `async fn` taking the write, which would
    /// store the write future twice in the connection's state.
    struct Guarded<W, O> {
        #[pin]
        write: W,
        #[pin]
        overflowed: O,
    }
}

/// Races `write` against the overflow signal's `wait()`.
fn guarded<W, O>(write: W, overflowed: O) -> Guarded<W, O> {
    Guarded { write, overflowed }
}

impl<W, O, E> Future for Guarded<W, O>
where
    W: Future<Output = Result<(), E>>,
    O: Future<Output = ()>,
    E: Into<Stop>,
{
    type Output = Result<(), Stop>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        if let Poll::Ready(written) = this.write.poll(cx) {
            return Poll::Ready(written.map_err(Into::into));
        }
        match this.overflowed.poll(cx) {
            Poll::Ready(()) => Poll::Ready(Err(overflow_close())),
            Poll::Pending => Poll::Pending,
        }
    }
}

fn overflow_close() -> Stop {
    tracing::debug!(target: "gateway::rejection", "outbound queue overflowed, closing");
    Stop::Close(CloseRequest {
        code: POLICY_VIOLATION,
        reason: "outbound queue full: the client reads too slowly".into(),
    })
}

fn rate_limit_close() -> Stop {
    tracing::debug!(target: "gateway::rejection", "rate limit exceeded, closing");
    Stop::Close(CloseRequest {
        code: POLICY_VIOLATION,
        reason: "rate limit exceeded".into(),
    })
}

fn text(frame: Frame) -> Message {
    // Frames are serde_json output: always UTF-8.
    match Utf8Bytes::try_from(frame.into_bytes()) {
        Ok(text) => Message::Text(text),
        Err(_) => Message::Text(Utf8Bytes::from_static("")),
    }
}

fn close(request: CloseRequest) -> Message {
    let mut reason = request.reason.into_owned();
    // A close frame's reason is at most 123 bytes.
    if reason.len() > 123 {
        let mut end = 123;
        while !reason.is_char_boundary(end) {
            end -= 1;
        }
        reason.truncate(end);
    }
    Message::Close(Some(CloseFrame {
        code: request.code,
        reason: reason.into(),
    }))
}

fn transport_error(err: axum::Error) -> Stop {
    match err.into_inner().downcast::<tungstenite::Error>() {
        Ok(err) if matches!(*err, tungstenite::Error::Capacity(_)) => {
            tracing::debug!(target: "gateway::rejection", "{err}");
            Stop::Close(CloseRequest {
                code: MESSAGE_TOO_BIG,
                reason: "message too big".into(),
            })
        }
        Ok(err) => {
            tracing::debug!(target: "gateway", "transport error: {err}");
            Stop::Gone
        }
        Err(err) => {
            tracing::debug!(target: "gateway", "transport error: {err}");
            Stop::Gone
        }
    }
}
