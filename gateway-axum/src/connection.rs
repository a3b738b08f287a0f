//! The life of one WebSocket connection: read frames, dispatch them, write replies and
//! queued frames, run the lifecycle hooks.

use std::future::Future;
use std::pin::Pin;

use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket};
use futures_util::stream::{BoxStream, FuturesUnordered, SelectAll};
use futures_util::{SinkExt, StreamExt};
use gateway_core::{
    Caught, Client, CloseRequest, ConnectionConfig, Dispatch, Failure, Frame, GatewayRuntime,
    Handshake, Outbound, OutboundQueue, Outcome, Reply,
};
use tracing::Instrument;

/// Close code for a policy violation (RFC 6455): used when a client is rejected by
/// `handle_connection` or lets its outbound queue overflow.
const POLICY_VIOLATION: u16 = 1008;
/// Close code for a message over the size limit.
const MESSAGE_TOO_BIG: u16 = 1009;
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
) {
    let (client, queue) = gateway.open(handshake, config.outbound_queue);
    let span = tracing::debug_span!(target: "gateway", "connection", path = gateway.path(), client = %client.id());
    async move {
        tracing::debug!(target: "gateway", "connected");
        let mut conn = Connection {
            socket,
            gateway,
            client,
            queue,
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
            let _ = conn.socket.send(close(request)).await;
        }
        conn.gateway.disconnect(&conn.client).await;
        tracing::debug!(target: "gateway", "disconnected");
    }
    .instrument(span)
    .await;
}

struct Connection {
    socket: WebSocket,
    gateway: GatewayRuntime,
    client: Client,
    queue: OutboundQueue,
}

impl Connection {
    async fn serve(&mut self) -> Stop {
        let mut pending: FuturesUnordered<PendingReply> = FuturesUnordered::new();
        let mut streams: SelectAll<ReplyStream> = SelectAll::new();
        let overflow = self.queue.overflow_signal();
        loop {
            let step = tokio::select! {
                biased;
                () = overflow.wait() => Err(Stop::Close(CloseRequest {
                    code: POLICY_VIOLATION,
                    reason: "outbound queue full: the client reads too slowly".into(),
                })),
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
                message = self.socket.recv() => match message {
                    Some(Ok(Message::Text(request))) => {
                        match self.gateway.dispatch_text(&self.client, &request) {
                            Dispatch::Ready(outcome) => self.answer(outcome, &request, &mut streams).await,
                            Dispatch::Pending(future) => {
                                pending.push(Box::pin(async move { (future.await, request) }));
                                Ok(())
                            }
                        }
                    }
                    Some(Ok(Message::Binary(_))) => {
                        tracing::debug!(target: "gateway::rejection", "binary frame");
                        let caught = self.gateway.binary_rejected(&self.client);
                        self.deliver(caught).await
                    }
                    Some(Ok(Message::Ping(_) | Message::Pong(_))) => Ok(()),
                    Some(Ok(Message::Close(_))) | None => Err(Stop::Gone),
                    Some(Err(err)) => Err(transport_error(err)),
                },
            };
            if let Err(stop) = step {
                return stop;
            }
        }
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
        self.socket.send(text(frame)).await.map_err(|_| Stop::Gone)
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
        self.socket.flush().await.map_err(|_| Stop::Gone)
    }

    async fn feed(&mut self, out: Outbound) -> Result<(), Stop> {
        match out {
            Outbound::Frame(frame) => self.socket.feed(text(frame)).await.map_err(|_| Stop::Gone),
            Outbound::Close(request) => Err(Stop::Close(request)),
            _ => Ok(()),
        }
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
