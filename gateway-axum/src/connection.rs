//! The life of one WebSocket connection: read frames, dispatch them, write replies and
//! queued frames, run the lifecycle hooks.

use std::future::Future;
use std::pin::Pin;
use std::time::{Duration, Instant};

use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket};
use futures_util::stream::{BoxStream, FuturesUnordered, SelectAll};
use futures_util::{SinkExt, StreamExt};
use gateway_core::frame::exceeds_depth;
use gateway_core::{
    Caught, Client, CloseRequest, ConnectionConfig, Connections, Dispatch, Failure, Frame,
    GatewayRuntime, Handshake, Outbound, OutboundQueue, Outcome, OverflowSignal, RateLimit, Reply,
    WsException,
};
use tracing::Instrument;

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
    /// The client closed, or the transport failed: nothing more to send.
    Gone,
    /// We close, with this code and reason.
    Close(CloseRequest),
}

pub(crate) async fn run(
    socket: WebSocket,
    gateway: GatewayRuntime,
    handshake: Handshake,
    config: ConnectionConfig,
    connections: Connections,
) {
    let (client, queue) = gateway.open(handshake, config.outbound_queue);
    let queue_overflow = queue.overflow_signal();
    let metrics = gateway.metrics().clone();
    metrics.connections.increment(1.0);
    let span = tracing::debug_span!(target: "gateway", "connection", path = gateway.path(), client = %client.id());
    async move {
        tracing::debug!(target: "gateway", "connected");
        let mut conn = Connection {
            socket,
            gateway,
            client,
            queue,
            limiter: config.rate_limit.map(TokenBucket::new),
            max_depth: config.max_json_depth,
            ping_interval: config.ping_interval,
            idle_timeout: config.idle_timeout,
            connections,
            overflow: queue_overflow,
            frames_sent: metrics.frames_sent.clone(),
        };
        let stop = match conn.gateway.connect(&conn.client).await {
            Ok(()) => conn.serve().await,
            Err(err) => {
                tracing::debug!(target: "gateway::rejection", "handle_connection rejected the client: {err}");
                let frame = conn.gateway.exception_frame(None, &err);
                let _ = conn.socket.send(text(frame)).await;
                Stop::Close(err.close_request().cloned().unwrap_or(CloseRequest {
                    code: POLICY_VIOLATION,
                    reason: err.message().to_owned().into(),
                }))
            }
        };
        if let Stop::Close(request) = stop {
            // A client that stopped reading may never take the close frame: do not wait on it.
            let _ = tokio::time::timeout(CLOSE_WRITE_TIMEOUT, conn.socket.send(close(request))).await;
        }
        conn.gateway.disconnect(&conn.client).await;
        tracing::debug!(target: "gateway", "disconnected");
    }
    .instrument(span)
    .await;
    metrics.connections.decrement(1.0);
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
    overflow: OverflowSignal,
    frames_sent: gateway_core::telemetry::Counter,
}

/// A per-connection token bucket (see [`RateLimit`]).
struct TokenBucket {
    limit: RateLimit,
    tokens: f64,
    refilled: Instant,
    rejected_in_row: u32,
}

/// What the rate limit says of one message.
enum Admission {
    Pass,
    Reject,
    Close,
}

impl TokenBucket {
    fn new(limit: RateLimit) -> Self {
        Self {
            limit,
            tokens: f64::from(limit.burst),
            refilled: Instant::now(),
            rejected_in_row: 0,
        }
    }

    fn admit(&mut self) -> Admission {
        let now = Instant::now();
        let elapsed = now.duration_since(self.refilled).as_secs_f64();
        self.refilled = now;
        self.tokens = (self.tokens + elapsed * f64::from(self.limit.per_second))
            .min(f64::from(self.limit.burst));
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            self.rejected_in_row = 0;
            Admission::Pass
        } else {
            self.rejected_in_row += 1;
            if self.rejected_in_row >= self.limit.close_after {
                Admission::Close
            } else {
                Admission::Reject
            }
        }
    }
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
    async fn serve(&mut self) -> Stop {
        let mut pending: FuturesUnordered<PendingReply> = FuturesUnordered::new();
        let mut streams: SelectAll<ReplyStream> = SelectAll::new();
        let overflow = self.overflow.clone();
        let connections = self.connections.clone();
        let shutdown = connections.shutting_down();
        tokio::pin!(shutdown);
        // After a shutdown began: no more reading, and this much time for in-flight work.
        let mut draining: Option<tokio::time::Instant> = None;
        let period = heartbeat_period(self.ping_interval, self.idle_timeout);
        let mut heartbeat = tokio::time::interval(period.unwrap_or(Duration::from_secs(3600)));
        heartbeat.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        heartbeat.reset();
        let mut heard = true;
        let mut silent_since = Instant::now();
        loop {
            if draining.is_some() && pending.is_empty() && streams.is_empty() {
                return self.going_away("server shutting down").await;
            }
            let step = tokio::select! {
                biased;
                () = overflow.wait() => Err(overflow_close()),
                () = &mut shutdown, if draining.is_none() => {
                    let deadline = connections.deadline().unwrap_or_else(Instant::now);
                    draining = Some(deadline.into());
                    Ok(())
                }
                () = sleep_until_some(draining), if draining.is_some() => {
                    tracing::debug!(target: "gateway", "shutdown deadline passed with work in flight");
                    return self.going_away("server shutting down").await;
                }
                out = self.queue.recv() => match out {
                    Some(out) => self.write_queued(out).await,
                    None => Err(Stop::Gone),
                },
                Some((outcome, request)) = pending.next(), if !pending.is_empty() => {
                    self.answer(outcome, &request, &mut streams).await
                }
                Some((item, request)) = streams.next(), if !streams.is_empty() => {
                    self.answer_item(item, &request).await
                }
                _ = heartbeat.tick(), if period.is_some() => {
                    self.beat(&mut heard, &mut silent_since).await
                }
                message = self.socket.recv(), if draining.is_none() => {
                    heard = true;
                    match message {
                        Some(Ok(Message::Text(request))) => self.receive(request, &mut pending, &mut streams).await,
                        Some(Ok(Message::Binary(_))) => match self.admit() {
                            Ok(()) => {
                                tracing::debug!(target: "gateway::rejection", "binary frame");
                                let caught = self.gateway.binary_rejected(&self.client);
                                self.deliver(caught).await
                            }
                            Err(stop) => Err(stop),
                        },
                        Some(Ok(Message::Ping(_) | Message::Pong(_))) => Ok(()),
                        Some(Ok(Message::Close(_))) | None => Err(Stop::Gone),
                        Some(Err(err)) => Err(transport_error(err)),
                    }
                }
            };
            if let Err(stop) = step {
                return stop;
            }
        }
    }

    /// Handles one text message: the rate limit, the nesting limit, then the gateway.
    async fn receive(
        &mut self,
        request: Utf8Bytes,
        pending: &mut FuturesUnordered<PendingReply>,
        streams: &mut SelectAll<ReplyStream>,
    ) -> Result<(), Stop> {
        if let Some(limiter) = &mut self.limiter {
            match limiter.admit() {
                Admission::Pass => {}
                Admission::Reject => {
                    let err = WsException::new(format!(
                        "Rate limit exceeded: at most {} messages per second",
                        limiter.limit.per_second
                    ));
                    let frame = self.gateway.exception_frame(Some(&request), &err);
                    return self.write(frame).await;
                }
                Admission::Close => return Err(rate_limit_close()),
            }
        }
        if exceeds_depth(&request, self.max_depth) {
            tracing::debug!(target: "gateway::rejection", "message nested too deeply");
            let err = WsException::new(format!(
                "Message nested too deeply: at most {} levels of arrays and objects",
                self.max_depth
            ));
            let frame = self.gateway.exception_frame(Some(&request), &err);
            return self.write(frame).await;
        }
        match self.gateway.dispatch_text(&self.client, &request) {
            Dispatch::Ready(outcome) => self.answer(outcome, &request, streams).await,
            Dispatch::Pending(future) => {
                pending.push(Box::pin(async move { (future.await, request) }));
                Ok(())
            }
        }
    }

    /// The rate limit for a frame that carries no request to answer (binary).
    fn admit(&mut self) -> Result<(), Stop> {
        match self.limiter.as_mut().map(TokenBucket::admit) {
            Some(Admission::Close) => Err(rate_limit_close()),
            _ => Ok(()),
        }
    }

    /// A heartbeat: closes a client silent for the idle timeout, else pings it.
    async fn beat(&mut self, heard: &mut bool, silent_since: &mut Instant) -> Result<(), Stop> {
        let now = Instant::now();
        if std::mem::take(heard) {
            *silent_since = now;
        } else if self
            .idle_timeout
            .is_some_and(|idle| now.duration_since(*silent_since) >= idle)
        {
            tracing::debug!(target: "gateway", "closing a silent client");
            return Err(Stop::Close(CloseRequest {
                code: GOING_AWAY,
                reason: "idle timeout: no message or pong received".into(),
            }));
        }
        if self.ping_interval.is_some() {
            let ping = self.socket.send(Message::Ping(axum::body::Bytes::new()));
            guarded(&self.overflow, ping).await?;
        }
        Ok(())
    }

    /// Writes what is queued, then closes with 1001.
    async fn going_away(&mut self, reason: &'static str) -> Stop {
        while let Some(out) = self.queue.try_recv() {
            if let Err(stop) = self.feed(out).await {
                return stop;
            }
        }
        Stop::Close(CloseRequest {
            code: GOING_AWAY,
            reason: reason.into(),
        })
    }

    /// Sends what a handled message produced.
    async fn answer(
        &mut self,
        outcome: Outcome,
        request: &Utf8Bytes,
        streams: &mut SelectAll<ReplyStream>,
    ) -> Result<(), Stop> {
        match outcome {
            Ok(Reply::None) => Ok(()),
            Ok(Reply::Frame(frame)) => self.write(frame).await,
            Ok(Reply::Stream(stream)) => {
                let request = request.clone();
                streams.push(stream.map(move |item| (item, request.clone())).boxed());
                Ok(())
            }
            Ok(Reply::Close(frame, close)) => {
                if let Some(frame) = frame {
                    self.write(frame).await?;
                }
                Err(Stop::Close(close))
            }
            Ok(_) => Ok(()),
            Err(failure) => self.fail(failure, request).await,
        }
    }

    async fn answer_item(
        &mut self,
        item: Result<Option<Frame>, Failure>,
        request: &Utf8Bytes,
    ) -> Result<(), Stop> {
        match item {
            Ok(Some(frame)) => self.write(frame).await,
            Ok(None) => Ok(()),
            Err(failure) => self.fail(failure, request).await,
        }
    }

    /// Lets the exception filters decide what the client receives for a failure.
    async fn fail(&mut self, failure: Failure, request: &Utf8Bytes) -> Result<(), Stop> {
        let caught = self.gateway.catch(&self.client, Some(request), failure);
        self.deliver(caught).await
    }

    /// Sends what a filter decided, and closes if it asked to.
    async fn deliver(&mut self, caught: Caught) -> Result<(), Stop> {
        let (frame, close) = caught.into_parts();
        if let Some(frame) = frame {
            self.write(frame).await?;
        }
        match close {
            Some(request) => Err(Stop::Close(request)),
            None => Ok(()),
        }
    }

    /// Writes a reply, after the frames already queued for this client, so that a handler
    /// that emits and then returns is seen in that order.
    async fn write(&mut self, frame: Frame) -> Result<(), Stop> {
        while let Some(out) = self.queue.try_recv() {
            self.feed(out).await?;
        }
        self.frames_sent.increment(1);
        guarded(&self.overflow, self.socket.send(text(frame))).await
    }

    /// Writes a queued frame and whatever else is queued behind it, then flushes once.
    async fn write_queued(&mut self, first: Outbound) -> Result<(), Stop> {
        self.feed(first).await?;
        for _ in 1..WRITE_BATCH {
            match self.queue.try_recv() {
                Some(out) => self.feed(out).await?,
                None => break,
            }
        }
        guarded(&self.overflow, self.socket.flush()).await
    }

    async fn feed(&mut self, out: Outbound) -> Result<(), Stop> {
        match out {
            Outbound::Frame(frame) => {
                self.frames_sent.increment(1);
                guarded(&self.overflow, self.socket.feed(text(frame))).await
            }
            Outbound::Close(request) => Err(Stop::Close(request)),
            _ => Ok(()),
        }
    }
}

/// A socket write that gives up when the client's queue overflows meanwhile: a client
/// whose socket is full stops reading, and must not hold its task (and its rooms) forever.
async fn guarded(
    overflow: &OverflowSignal,
    write: impl Future<Output = Result<(), axum::Error>>,
) -> Result<(), Stop> {
    tokio::select! {
        biased;
        written = write => written.map_err(|_| Stop::Gone),
        () = overflow.wait() => Err(overflow_close()),
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

/// Sleeps until `deadline` (never, without one).
async fn sleep_until_some(deadline: Option<tokio::time::Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline).await,
        None => std::future::pending().await,
    }
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
