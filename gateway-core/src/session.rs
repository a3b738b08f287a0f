//! [`Session`]: the life of one client, on any transport. The one session loop of the
//! workspace: read, limit, dispatch, answer, drain the queue, beat, shut down, disconnect.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use futures_util::stream::{BoxStream, FuturesUnordered, SelectAll, Stream};
use pin_project_lite::pin_project;
use tracing::Instrument;

use crate::ack::Ask;
use crate::app::App;
use crate::channel::Bypassed;
use crate::client::{Client, Handshake, Outbound, OutboundQueue, ReplyRoute};
use crate::config::ConnectionConfig;
use crate::connections::{ConnectionGuard, Connections};
use crate::exception::{CloseRequest, ErrorKind, WsException};
use crate::frame::{Frame, exceeds_depth};
use crate::rate_limit::{Admission, TokenBucket};
use crate::recovery::Recorder;
use crate::request::Request;
use crate::runtime::GatewayRuntime;
use crate::transport::{Answer, Closing, Connection, Decoded, Gone, Handled, Opening, Received};

/// Close code for a policy violation (RFC 6455): a client rejected by `handle_connection`,
/// over its rate limit, letting its outbound queue overflow, or not reading at all.
const POLICY_VIOLATION: u16 = 1008;
/// Close code when the server shuts down or gives up on a silent client.
const GOING_AWAY: u16 = 1001;
/// How many queued frames are written before one flush.
const WRITE_BATCH: usize = 64;

/// One client of one gateway, ready to be served on a [`Connection`].
///
/// A transport admits the connection ([`Connections::admit`]), authenticates its handshake
/// ([`GatewayRuntime::authenticate`]), then hands the socket to [`serve`](Self::serve),
/// which runs everything else: `#[handle_connection]`, every message through the
/// pipeline, replies and reply streams, the client's outbound queue, the rate limit, the
/// nesting limit, the in-flight limit, heartbeats and the idle timeout, graceful shutdown,
/// the close, and `#[handle_disconnect]`.
///
/// # Examples
///
/// See [`Connection`] for a whole connection served by a session.
///
/// ```
/// use ws_gateway_core::prelude::*;
/// use ws_gateway_core::transport::{Handshake, Session};
///
/// #[websocket_gateway(path = "/doc-session")]
/// struct Chat;
/// #[websocket_gateway]
/// impl Chat {}
///
/// let app = GatewayApp::new().gateway::<Chat>().build().unwrap();
/// let guard = app.connections().admit(None).unwrap(); // counted until the session ends
/// let session = Session::new(&app.gateways()[0], &app, Handshake::default()).admitted(guard);
/// # let _ = session;
/// ```
#[must_use = "a session does nothing until it is served"]
pub struct Session {
    gateway: GatewayRuntime,
    handshake: Handshake,
    limits: Limits,
    connections: Connections,
    guard: Option<ConnectionGuard>,
}

/// The parts of the app's [`ConnectionConfig`] a session reads, copied so that the
/// session's future stays small.
#[derive(Clone, Copy)]
struct Limits {
    outbound_queue: usize,
    max_depth: usize,
    max_in_flight: usize,
    max_event_name_len: usize,
    max_id_len: usize,
    rate_limit: Option<crate::config::RateLimit>,
    ping_interval: Option<Duration>,
    idle_timeout: Option<Duration>,
    write_timeout: Option<Duration>,
}

impl Limits {
    fn of(config: &ConnectionConfig) -> Self {
        Self {
            outbound_queue: config.outbound_queue,
            max_depth: config.max_json_depth,
            max_in_flight: config.max_in_flight.max(1),
            max_event_name_len: config.max_event_name_len,
            max_id_len: config.max_id_len,
            rate_limit: config.rate_limit,
            ping_interval: config.ping_interval,
            idle_timeout: config.idle_timeout,
            write_timeout: config.write_timeout,
        }
    }
}

impl Session {
    /// A session for a client of `gateway` with this handshake, under `app`'s
    /// [`ConnectionConfig`] and shutdown.
    pub fn new(gateway: &GatewayRuntime, app: &App, handshake: Handshake) -> Self {
        Self {
            gateway: gateway.clone(),
            handshake,
            limits: Limits::of(app.config()),
            connections: app.connections().clone(),
            guard: None,
        }
    }

    /// Holds the connection's place under the app's connection limits until the session
    /// ends.
    pub fn admitted(mut self, guard: ConnectionGuard) -> Self {
        self.guard = Some(guard);
        self
    }

    /// Serves the client on `connection` until it ends, however it ends.
    pub fn serve<C: Connection>(self, connection: C) -> impl Future<Output = ()> + Send {
        let Session {
            gateway,
            handshake,
            limits,
            connections,
            guard,
        } = self;
        async move {
            let recorder = C::RECOVERY
                .then(|| gateway.server().recorder().cloned())
                .flatten();
            let (client, queue, session) = match &recorder {
                None => {
                    let (client, queue) = gateway.open(handshake, limits.outbound_queue);
                    (client, queue, None)
                }
                Some(recorder) => {
                    let opened = recorder
                        .open(
                            gateway.server(),
                            handshake,
                            limits.outbound_queue,
                            gateway.metrics().messages_dropped.clone(),
                        )
                        .await;
                    let opened = match opened {
                        Ok(opened) => opened,
                        // The session may be held by an instance that cannot be asked now:
                        // the client tries again (a fresh session would lose it).
                        Err(err) => {
                            tracing::debug!(target: "gateway", "a session claim could not be answered: {err}");
                            let mut connection = connection;
                            connection
                                .close(Closing::Server(CloseRequest {
                                    code: 1013,
                                    reason: "session unavailable, try again later".into(),
                                }))
                                .await;
                            return;
                        }
                    };
                    let outcome = match (opened.recovered, opened.claimed) {
                        (true, _) => 1,
                        (false, true) => 2,
                        (false, false) => 0,
                    };
                    gateway.metrics().sessions[outcome].increment(1);
                    let session = Resumable {
                        recorder: Arc::clone(recorder),
                        pid: opened.pid,
                        recovered: opened.recovered,
                        missed: opened.missed,
                    };
                    (opened.client, opened.queue, Some(session))
                }
            };
            let span = tracing::debug_span!(target: "gateway", "connection", path = gateway.path(), client = %client.id());
            let frames_sent = gateway.metrics().frames_sent.clone();
            Driver {
                connection,
                gateway,
                client,
                queue,
                limiter: limits.rate_limit.map(TokenBucket::new),
                limits,
                connections,
                frames_sent,
                session,
                _guard: guard,
            }
            .life()
            .instrument(span)
            .await;
        }
    }
}

/// A session under connection state recovery: its private id, whether it recovered, and
/// what its client missed.
struct Resumable {
    recorder: Arc<Recorder>,
    pid: Arc<str>,
    recovered: bool,
    missed: Vec<Frame>,
}

/// Serves one client of `gateway` on `connection`: [`Session::new`], then
/// [`Session::serve`].
///
/// # Examples
///
/// ```
/// # use ws_gateway_core::prelude::*;
/// # #[websocket_gateway(path = "/doc-serve")] struct Chat;
/// # #[websocket_gateway] impl Chat {}
/// use ws_gateway_core::transport::{self, Handshake};
///
/// # fn spawn<C: transport::Connection>(app: &App, connection: C) {
/// tokio::spawn(transport::serve(&app.gateways()[0], app, Handshake::default(), connection));
/// # }
/// ```
pub fn serve<C: Connection>(
    gateway: &GatewayRuntime,
    app: &App,
    handshake: Handshake,
    connection: C,
) -> impl Future<Output = ()> + Send + use<C> {
    Session::new(gateway, app, handshake).serve(connection)
}

/// Why the loop stopped.
enum Stop {
    /// The client closed: what is left is to complete the closing handshake.
    ClosedByClient,
    /// The transport failed: nothing more to send.
    Gone,
    /// We close, with this code and reason.
    Close(CloseRequest),
    /// We close because the connection failed the client (its queue overflowed, a write
    /// waited too long, it fell silent): a fault of the network as far as recovery is
    /// concerned, unlike a close asked for.
    Fault(CloseRequest),
}

impl From<Gone> for Stop {
    fn from(Gone: Gone) -> Self {
        Stop::Gone
    }
}

impl Stop {
    fn closing(self) -> Closing {
        match self {
            Stop::ClosedByClient => Closing::Client,
            Stop::Gone => Closing::Gone,
            Stop::Close(request) | Stop::Fault(request) => Closing::Server(request),
        }
    }

    /// Whether the client dropped rather than left: its session may be recovered.
    fn dropped(&self) -> bool {
        matches!(self, Stop::Gone | Stop::Fault(_))
    }
}

/// What one turn of the loop leaves to write. Handling a message is synchronous and
/// returns one of these; the loop then awaits one write. Keeping the awaits out of the
/// handling keeps the session's future, its memory while idle, small.
enum Step<R> {
    /// Nothing to write.
    Idle,
    /// A reply: written after what is already queued for the client.
    Reply(Frame, Option<R>),
    /// A queued frame, and whatever is queued behind it.
    Queued(Outbound),
    /// A ping.
    Ping,
    /// Stop, after writing this reply if there is one.
    Stop(Option<(Frame, Option<R>)>, Stop),
    /// Write what is queued, then close with 1001.
    GoingAway,
}

type PendingAnswer<R> = Routed<Pin<Box<dyn Future<Output = Answer> + Send>>, R>;
type AnswerStream<R> = Routed<BoxStream<'static, Answer>, R>;

struct Driver<C: Connection> {
    connection: C,
    gateway: GatewayRuntime,
    client: Client,
    queue: OutboundQueue,
    limiter: Option<TokenBucket>,
    limits: Limits,
    connections: Connections,
    frames_sent: crate::telemetry::Counter,
    /// Connection state recovery, when the gateway has it on for this transport.
    session: Option<Resumable>,
    /// Counts the connection against the limits until it is dropped.
    _guard: Option<ConnectionGuard>,
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

impl<C: Connection> Driver<C> {
    /// `handle_connection`, the loop, the close, `handle_disconnect`.
    ///
    /// A plain function returning an `async move` block: an `async fn` taking `self` by
    /// value would store the driver twice in its state.
    #[expect(
        clippy::manual_async_fn,
        reason = "an async fn would store the driver twice"
    )]
    fn life(mut self) -> impl Future<Output = ()> + Send {
        async move {
            let connected = self.gateway.metrics().connections.clone();
            connected.increment(1.0);
            tracing::debug!(target: "gateway", "connected");
            let opening = Opening {
                client: &self.client,
                session: self
                    .session
                    .as_ref()
                    .map(|session| (&*session.pid, session.recovered)),
            };
            let announced = match self.connection.open(opening).await {
                Err(Gone) => Err(Stop::Gone),
                Ok(()) => match self.session.take() {
                    Some(mut session) => {
                        let announced = self.announce(&mut session).await;
                        self.session = Some(session);
                        announced
                    }
                    None => Ok(()),
                },
            };
            let stop = match announced {
                Err(stop) => stop,
                Ok(()) => {
                    if let Some(bypass) = self.connection.bypass() {
                        self.install(bypass);
                    }
                    self.connect().await
                }
            };
            let dropped = stop.dropped();
            self.connection.close(stop.closing()).await;
            match self.session.take() {
                None => {
                    self.gateway.disconnect(&self.client).await;
                    // Dropped with the connection, whoever still holds a handle of the client.
                    self.client.state().clear();
                }
                Some(session) => {
                    self.gateway.disconnect_hook(&self.client).await;
                    // Kept for recovery when the client dropped; else forgotten, state too.
                    session.recorder.end(
                        self.gateway.server(),
                        &self.client,
                        &session.pid,
                        dropped,
                    );
                }
            }
            tracing::debug!(target: "gateway", "disconnected");
            connected.decrement(1.0);
        }
    }

    /// Frames and questions for the client go through `bypass` while nothing waits in its
    /// queue. The closure holds the client; the queue's end (the session's) drops it.
    fn install(&mut self, bypass: impl crate::transport::Bypass) {
        let sent = self.frames_sent.clone();
        let client = self.client.clone();
        let gateway = self.gateway.clone();
        self.queue.set_bypass(Box::new(move |out| {
            let written = match out {
                Outbound::Frame(frame) => bypass
                    .write(frame)
                    .map_err(|unwritten| unwritten.map(Outbound::Frame)),
                Outbound::Ask(frame, deadline) => match frame.ack() {
                    Some(ack) => {
                        let ask = Ask::new(&client, ack, deadline, gateway.metrics());
                        bypass.ask(frame, ask).map_err(|unwritten| {
                            unwritten.map(|frame| Outbound::Ask(frame, deadline))
                        })
                    }
                    None => Err(Bypassed::Back(Outbound::Ask(frame, deadline))),
                },
                other => Err(Bypassed::Back(other)),
            };
            if written.is_ok() {
                sent.increment(1);
            }
            written
        }));
    }

    /// `handle_connection`, then the loop.
    async fn connect(&mut self) -> Stop {
        match self.gateway.connect(&self.client).await {
            Ok(()) => self.serve().await,
            Err(err) => {
                tracing::debug!(target: "gateway::rejection", "handle_connection rejected the client: {err}");
                let frame = crate::frame::exception_frame(&err, None);
                let _ = self.connection.feed(frame, None).await;
                let _ = self.connection.flush().await;
                Stop::Close(err.close_request().cloned().unwrap_or(CloseRequest {
                    code: POLICY_VIOLATION,
                    reason: err.message().to_owned().into(),
                }))
            }
        }
    }

    /// Recovery's first frames: `session` with the private id and whether it recovered,
    /// then every frame the client missed, before anything queued.
    async fn announce(&mut self, session: &mut Resumable) -> Result<(), Stop> {
        if session.recovered {
            tracing::debug!(target: "gateway", missed = session.missed.len(), "session recovered");
        }
        if C::SESSION_FRAME {
            self.frames_sent.increment(1);
            let announce = Frame::session(&session.pid, session.recovered);
            self.connection.feed(announce, None).await?;
        }
        for frame in std::mem::take(&mut session.missed) {
            self.frames_sent.increment(1);
            self.connection.feed(frame, None).await?;
        }
        self.connection.flush().await?;
        Ok(())
    }

    async fn serve(&mut self) -> Stop {
        // Handlers in flight and reply streams open, created on first use: most connections
        // never have either, and an empty `FuturesUnordered` still allocates.
        let mut pending: Option<FuturesUnordered<PendingAnswer<C::Route>>> = None;
        let mut streams: Option<SelectAll<AnswerStream<C::Route>>> = None;
        // The overflow and the shutdown are flags read at the top of every turn, so a
        // client that keeps the loop busy sees them at once. Their futures, waited on
        // across turns (so a turn does not register with their `Notify` again), come last
        // in the `select!`: polled only when nothing else is ready, they cost a lock only
        // on the way to sleep, and they are what wakes an idle session.
        let overflow = self.queue.overflow_signal();
        let overflowed = overflow.wait();
        tokio::pin!(overflowed);
        let connections = self.connections.clone();
        let shutdown = connections.shutting_down();
        tokio::pin!(shutdown);
        // After a shutdown began: no more reading, and until the shutdown's deadline for
        // in-flight work. The heartbeat's timer then counts down to that deadline.
        let mut draining = false;
        let period = if C::HEARTBEAT {
            heartbeat_period(self.limits.ping_interval, self.limits.idle_timeout)
        } else {
            None
        };
        let mut heartbeat = tokio::time::interval(period.unwrap_or(Duration::from_secs(3600)));
        heartbeat.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        heartbeat.reset();
        let mut heard = true;
        let mut silent_since = Instant::now();
        let max_in_flight = self.limits.max_in_flight;
        loop {
            if overflow.has_overflowed() {
                return overflow_close();
            }
            if !draining && connections.is_shutting_down() {
                draining = true;
                let deadline = connections.deadline().unwrap_or_else(Instant::now);
                heartbeat.reset_at(deadline.into());
            }
            let in_flight = pending.as_ref().map_or(0, FuturesUnordered::len)
                + streams.as_ref().map_or(0, SelectAll::len);
            if draining && in_flight == 0 {
                return self.going_away(overflowed.as_mut()).await;
            }
            let step = tokio::select! {
                biased;
                out = self.queue.recv() => match out {
                    Some(out) => Step::Queued(out),
                    None => Step::Stop(None, Stop::Gone),
                },
                Some((answer, route)) = next_in(&mut pending), if pending.is_some() => {
                    self.answer(answer, route, &mut streams)
                }
                Some((answer, route)) = next_in(&mut streams), if streams.is_some() => {
                    self.answer(answer, route, &mut streams)
                }
                // Past the in-flight limit the client is not read: its socket fills, and
                // TCP slows it down.
                received = std::future::poll_fn(|cx| self.connection.poll_recv(cx)), if !draining && in_flight < max_in_flight => {
                    heard = true;
                    match received {
                        Received::Message(message) => self.receive(message, &mut pending, &mut streams),
                        Received::Alive => Step::Idle,
                        Received::Closed => Step::Stop(None, Stop::ClosedByClient),
                        Received::Gone => Step::Stop(None, Stop::Gone),
                        Received::Refused(close) => {
                            tracing::debug!(target: "gateway::rejection", code = close.code, "{}", close.reason);
                            Step::Stop(None, Stop::Close(close))
                        }
                    }
                }
                _ = heartbeat.tick(), if period.is_some() || draining => {
                    if draining {
                        tracing::debug!(target: "gateway", "shutdown deadline passed with work in flight");
                        Step::GoingAway
                    } else {
                        self.beat(&mut heard, &mut silent_since)
                    }
                }
                // Read again at the top of the loop.
                () = &mut overflowed => Step::Idle,
                () = &mut shutdown, if !draining => Step::Idle,
            };
            let written = match step {
                Step::Idle => Ok(()),
                Step::Reply(frame, route) => {
                    self.write(None, Some((frame, route)), overflowed.as_mut())
                        .await
                }
                Step::Queued(out) => self.write(Some(out), None, overflowed.as_mut()).await,
                Step::Ping => {
                    let ping = self.connection.ping();
                    guarded(ping, overflowed.as_mut(), self.limits.write_timeout).await
                }
                Step::Stop(Some(reply), stop) => {
                    let written = self.write(None, Some(reply), overflowed.as_mut()).await;
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

    /// One message: the rate limit, decoding, the nesting limit, then the pipeline.
    fn receive(
        &mut self,
        message: C::Message,
        pending: &mut Option<FuturesUnordered<PendingAnswer<C::Route>>>,
        streams: &mut Option<SelectAll<AnswerStream<C::Route>>>,
    ) -> Step<C::Route> {
        let admission = match &mut self.limiter {
            Some(limiter) => limiter.admit(self.connection.size(&message)),
            None => Admission::Pass,
        };
        if let Admission::Close = admission {
            return Step::Stop(None, rate_limit_close());
        }
        let (request, route) = match self.connection.decode(&message) {
            Decoded::Request(request, route) => (request, route),
            Decoded::Answer(answer) => {
                self.gateway.answer(&self.client, answer);
                return Step::Idle;
            }
            Decoded::Invalid(err) => {
                let err = match (&admission, &self.limiter) {
                    (Admission::Reject, Some(limiter)) => limiter.exceeded(),
                    _ => err,
                };
                tracing::debug!(target: "gateway::rejection", "{err}");
                let answer = self.gateway.reject(&self.client, None, err);
                return self.answer(answer, None, streams);
            }
        };
        // An over-long name or id is answered without the request: echoing it back (in the
        // message, the cause and the id) would make the answer larger than the request.
        if let Some(err) = oversized(&request, &self.limits) {
            tracing::debug!(target: "gateway::rejection", "{err}");
            let answer = self.gateway.reject(&self.client, None, err);
            return self.answer(answer, Some(route), streams);
        }
        if let (Admission::Reject, Some(limiter)) = (&admission, &self.limiter) {
            let err = limiter.exceeded();
            let answer = self.gateway.reject(&self.client, Some(&request), err);
            return self.answer(answer, Some(route), streams);
        }
        // The envelope is one level: the body may nest one less.
        let max_depth = self.limits.max_depth.saturating_sub(1);
        if request
            .data()
            .is_some_and(|data| exceeds_depth(data.get(), max_depth))
        {
            tracing::debug!(target: "gateway::rejection", "message nested too deeply");
            let err = too_deep(self.limits.max_depth);
            let answer = self.gateway.reject(&self.client, Some(&request), err);
            return self.answer(answer, Some(route), streams);
        }
        // A route that carries something (Socket.IO's callback) goes with the request, for
        // an `Ack` that answers after the handler returned; borrowed, so it costs nothing
        // unless one does.
        let mut request = request;
        if std::mem::size_of::<C::Route>() > 0 {
            request.route = Some(crate::request::RouteRef::Borrowed(&route));
        }
        match self.gateway.handle(&self.client, &request) {
            Handled::Ready(answer) => self.answer(answer, Some(route), streams),
            Handled::Pending(future) => {
                pending
                    .get_or_insert_with(FuturesUnordered::new)
                    .push(Routed {
                        inner: future,
                        route: Some(route),
                    });
                Step::Idle
            }
        }
    }

    /// What the pipeline answered.
    fn answer(
        &mut self,
        answer: Answer,
        route: Option<C::Route>,
        streams: &mut Option<SelectAll<AnswerStream<C::Route>>>,
    ) -> Step<C::Route> {
        match answer {
            Answer::Nothing => Step::Idle,
            Answer::Frame(frame) => Step::Reply(frame, route),
            Answer::Stream(stream) => {
                streams.get_or_insert_with(SelectAll::new).push(Routed {
                    inner: stream,
                    route,
                });
                Step::Idle
            }
            Answer::Close(frame, close) => {
                Step::Stop(frame.map(|frame| (frame, route)), Stop::Close(close))
            }
        }
    }

    /// A heartbeat: closes a client silent for the idle timeout, else pings it.
    fn beat(&mut self, heard: &mut bool, silent_since: &mut Instant) -> Step<C::Route> {
        let now = Instant::now();
        if std::mem::take(heard) {
            *silent_since = now;
        } else if self
            .limits
            .idle_timeout
            .is_some_and(|idle| now.duration_since(*silent_since) >= idle)
        {
            tracing::debug!(target: "gateway", "closing a silent client");
            let close = CloseRequest {
                code: GOING_AWAY,
                reason: "idle timeout: no message or pong received".into(),
            };
            return Step::Stop(None, Stop::Fault(close));
        }
        if self.limits.ping_interval.is_some() {
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
        reply: Option<(Frame, Option<C::Route>)>,
        overflowed: Pin<&'a mut O>,
    ) -> impl Future<Output = Result<(), Stop>> + 'a {
        let drain_all = first.is_none();
        let Self {
            connection,
            queue,
            frames_sent,
            limits,
            client,
            gateway,
            ..
        } = self;
        let timeout = limits.write_timeout;
        let written = async move {
            let mut next = first.or_else(|| queue.try_recv());
            let mut fed = 0;
            while let Some(out) = next {
                match out {
                    Outbound::Frame(frame) => {
                        frames_sent.increment(1);
                        connection.feed(frame, None).await?;
                    }
                    Outbound::Ask(frame, deadline) => {
                        frames_sent.increment(1);
                        match frame.ack() {
                            Some(ack) => {
                                let ask = Ask::new(client, ack, deadline, gateway.metrics());
                                connection.feed_ask(frame, ask).await?;
                            }
                            None => connection.feed(frame, None).await?,
                        }
                    }
                    Outbound::Reply(frame, route) => {
                        frames_sent.increment(1);
                        let route = route
                            .as_ref()
                            .and_then(ReplyRoute::downcast_ref::<C::Route>);
                        connection.feed(frame, route).await?;
                    }
                    Outbound::Close(request) => return Err(Stop::Close(request)),
                }
                fed += 1;
                next = if drain_all || fed < WRITE_BATCH {
                    queue.try_recv()
                } else {
                    None
                };
            }
            if let Some((frame, route)) = reply {
                frames_sent.increment(1);
                connection.feed(frame, route.as_ref()).await?;
            }
            connection.flush().await?;
            queue.settle();
            Ok(())
        };
        guarded(written, overflowed, timeout)
    }
}

/// The exception for a request whose event name or id is past its bound, if it is.
fn oversized(request: &Request<'_>, limits: &Limits) -> Option<WsException> {
    let too_long = |what: &str, len: usize, max: usize| {
        (len > max).then(|| {
            WsException::of_kind(
                ErrorKind::BadRequest,
                format!("{what} too long: {len} bytes, at most {max}"),
            )
        })
    };
    too_long("Event name", request.event.len(), limits.max_event_name_len).or_else(|| {
        let id = request.id()?;
        too_long("Id", id.get().len(), limits.max_id_len)
    })
}

fn too_deep(max: usize) -> WsException {
    WsException::of_kind(
        ErrorKind::BadRequest,
        format!("Message nested too deeply: at most {max} levels of arrays and objects"),
    )
}

pin_project! {
    /// A pending answer or a reply stream, with the route of the request it answers.
    struct Routed<T, R> {
        #[pin]
        inner: T,
        route: Option<R>,
    }
}

impl<F: Future<Output = Answer>, R> Future for Routed<F, R> {
    type Output = (Answer, Option<R>);

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        this.inner
            .poll(cx)
            .map(|answer| (answer, this.route.take()))
    }
}

impl<S: Stream<Item = Answer>, R: Clone> Stream for Routed<S, R> {
    type Item = (Answer, Option<R>);

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.project();
        this.inner
            .poll_next(cx)
            .map(|item| item.map(|answer| (answer, this.route.clone())))
    }
}

/// Handlers in flight or reply streams open: a `FuturesUnordered` or a `SelectAll`.
trait InFlight: Stream + Unpin {
    fn is_empty(&self) -> bool;
}

impl<F: Future + Unpin> InFlight for FuturesUnordered<F> {
    fn is_empty(&self) -> bool {
        FuturesUnordered::is_empty(self)
    }
}

impl<S: Stream + Unpin> InFlight for SelectAll<S> {
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

pin_project! {
    /// A socket write that gives up when the client's queue overflows meanwhile, or when
    /// it waited `timeout` on a full socket: a client whose socket is full stops reading,
    /// and must not hold its task (and its rooms) forever. While a write waits the client
    /// is not read, so that one that writes without reading is slowed down by TCP.
    ///
    /// A plain struct rather than an `async fn` taking the write, which would store the
    /// write future twice in the session's state; the timer is created only once a write
    /// has to wait, so that a write that completes at once costs no timer.
    struct Guarded<W, O> {
        #[pin]
        write: W,
        #[pin]
        overflowed: O,
        timeout: Option<Duration>,
        deadline: Option<Pin<Box<tokio::time::Sleep>>>,
    }
}

/// Races `write` against the overflow signal's `wait()` and the write timeout.
fn guarded<W, O>(write: W, overflowed: O, timeout: Option<Duration>) -> Guarded<W, O> {
    Guarded {
        write,
        overflowed,
        timeout,
        deadline: None,
    }
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
        if this.overflowed.poll(cx).is_ready() {
            return Poll::Ready(Err(overflow_close()));
        }
        let Some(timeout) = *this.timeout else {
            return Poll::Pending;
        };
        let deadline = this
            .deadline
            .get_or_insert_with(|| Box::pin(tokio::time::sleep(timeout)));
        match deadline.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(Err(write_timed_out())),
            Poll::Pending => Poll::Pending,
        }
    }
}

fn write_timed_out() -> Stop {
    tracing::debug!(target: "gateway::rejection", "a write waited past the write timeout, closing");
    Stop::Fault(CloseRequest {
        code: POLICY_VIOLATION,
        reason: "write timed out: the client does not read".into(),
    })
}

fn overflow_close() -> Stop {
    tracing::debug!(target: "gateway::rejection", "outbound queue overflowed, closing");
    Stop::Fault(CloseRequest {
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
