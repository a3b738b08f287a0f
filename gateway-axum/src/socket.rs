//! [`WebSocketConnection`]: a WebSocket and a [`Codec`], as the session driver sees them.
//!
//! The socket is tokio-tungstenite's stream on the upgraded connection rather than axum's
//! `WebSocket`, which hides the TCP stream: closing carefully needs it (send the close
//! frame, shut down writing, read and discard what the client still sends, then drop), or
//! a close decided while the client is still sending becomes a TCP reset and the client
//! sees 1006 instead of the code.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll, Wake, Waker};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::ws::{Message, Utf8Bytes};
use futures_util::task::AtomicWaker;
use futures_util::{SinkExt, StreamExt};
use hyper::upgrade::Upgraded;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::time::{Instant, Sleep};
use tokio_tungstenite::WebSocketStream;
use tungstenite::error::ProtocolError;
use tungstenite::protocol::frame::coding::{CloseCode, Data as OpData, OpCode};
use tungstenite::protocol::{self, frame};
use ws_gateway_core::transport::{Closing, Connection, Decoded, Gone, Incoming, Received};
use ws_gateway_core::{CloseRequest, Frame, WsException};

use crate::codec::Codec;

/// The WebSocket on an upgraded HTTP connection.
pub(crate) type Socket = WebSocketStream<TokioIo<Upgraded>>;

/// Close code for a protocol error (RFC 6455 §7.4.1): bad framing, reserved bits or
/// opcodes, unmasked client frames, oversized or fragmented control frames.
const PROTOCOL_ERROR: u16 = 1002;
/// Close code for data inconsistent with its type: invalid UTF-8 in a text message or a
/// close reason.
const INVALID_PAYLOAD: u16 = 1007;
/// Close code for a policy violation: here, a client that does not read its pongs.
const POLICY_VIOLATION: u16 = 1008;
/// Close code for a message over the size limit.
const MESSAGE_TOO_BIG: u16 = 1009;

/// The parts of the app's config a connection reads.
#[derive(Clone, Copy, Debug)]
pub(crate) struct WireLimits {
    /// How long a pong may wait on a full socket before the client is closed.
    pub(crate) write_timeout: Option<Duration>,
    /// How long the close (close frame, then discarding input) may take.
    pub(crate) close_timeout: Duration,
}

/// One client's WebSocket with the wire format it speaks.
pub(crate) struct WebSocketConnection<C> {
    socket: Socket,
    codec: Arc<C>,
    read_wake: Arc<ReadWake>,
    read_waker: Waker,
    /// A ping was read: tungstenite queued its pong, which must reach the socket before
    /// anything more is read. A client that pings without reading would otherwise make the
    /// write buffer grow by a pong per ping while we keep reading.
    pong_owed: bool,
    /// Since when the owed pong waits on a full socket, created when it starts waiting.
    stalled: Option<Pin<Box<Sleep>>>,
    limits: WireLimits,
}

impl<C: Codec> WebSocketConnection<C> {
    pub(crate) fn new(socket: Socket, codec: Arc<C>, limits: WireLimits) -> Self {
        let read_wake = Arc::new(ReadWake::default());
        let read_waker = Waker::from(Arc::clone(&read_wake));
        Self {
            socket,
            codec,
            read_wake,
            read_waker,
            pong_owed: false,
            stalled: None,
            limits,
        }
    }

    /// Writes the owed pong. Pending while the socket is full: the client is not read
    /// meanwhile, and is refused once that lasted the write timeout.
    fn poll_pong(&mut self, cx: &mut Context<'_>) -> Poll<Option<Received<Message>>> {
        match self.socket.poll_flush_unpin(cx) {
            Poll::Ready(Ok(())) => {
                self.pong_owed = false;
                self.stalled = None;
                Poll::Ready(None)
            }
            Poll::Ready(Err(err)) => Poll::Ready(Some(transport_error(err))),
            Poll::Pending => {
                let Some(timeout) = self.limits.write_timeout else {
                    return Poll::Pending;
                };
                let stalled = self
                    .stalled
                    .get_or_insert_with(|| Box::pin(tokio::time::sleep(timeout)));
                match stalled.as_mut().poll(cx) {
                    Poll::Ready(()) => Poll::Ready(Some(Received::Refused(CloseRequest {
                        code: POLICY_VIOLATION,
                        reason: "the client sends pings and does not read the pongs".into(),
                    }))),
                    Poll::Pending => Poll::Pending,
                }
            }
        }
    }

    /// The end of a close the server decided: shut down writing (the client reads the
    /// close frame, then end of stream), then read and discard what the client still
    /// sends until it closes its side or `deadline` passes. Dropping a socket with unread
    /// input makes the kernel send a reset, which discards the close frame if the client
    /// has not read it yet.
    async fn linger(&mut self, deadline: Instant) {
        let io = self.socket.get_mut();
        if tokio::time::timeout_at(deadline, io.shutdown())
            .await
            .is_err()
        {
            return;
        }
        let mut discard = vec![0; 4096];
        while let Ok(Ok(read)) = tokio::time::timeout_at(deadline, io.read(&mut discard)).await {
            if read == 0 {
                return;
            }
        }
    }
}

impl<C: Codec> Connection for WebSocketConnection<C> {
    type Message = Message;
    type Route = ();
    // The JSON envelope (and any codec's) carries the `session` frame and offsets.
    const RECOVERY: bool = true;

    fn poll_recv(&mut self, cx: &mut Context<'_>) -> Poll<Received<Message>> {
        if self.pong_owed
            && let Some(refused) = std::task::ready!(self.poll_pong(cx))
        {
            return Poll::Ready(refused);
        }
        let polled = self
            .read_wake
            .poll_next(&mut self.socket, &self.read_waker, cx);
        polled.map(|message| match message {
            Some(Ok(protocol::Message::Text(text))) => {
                // tungstenite checked the UTF-8; axum's type checks it again.
                match Utf8Bytes::try_from(Bytes::from(text)) {
                    Ok(text) => Received::Message(Message::Text(text)),
                    Err(_) => invalid_utf8(),
                }
            }
            Some(Ok(protocol::Message::Binary(bytes))) => Received::Message(Message::Binary(bytes)),
            Some(Ok(protocol::Message::Ping(_))) => {
                self.pong_owed = true;
                Received::Alive
            }
            Some(Ok(protocol::Message::Pong(_) | protocol::Message::Frame(_))) => Received::Alive,
            Some(Ok(protocol::Message::Close(_))) => Received::Closed,
            None => Received::Gone,
            Some(Err(err)) => transport_error(err),
        })
    }

    fn size(&self, message: &Message) -> usize {
        match message {
            Message::Text(text) => text.len(),
            Message::Binary(bytes) => bytes.len(),
            _ => 0,
        }
    }

    fn decode<'m>(&self, message: &'m Message) -> Decoded<'m, ()> {
        match self.codec.decode_incoming(message) {
            Ok(Incoming::Request(request)) => Decoded::Request(request, ()),
            Ok(Incoming::Answer(answer)) => Decoded::Answer(answer),
            Ok(_) => Decoded::Invalid(WsException::new("Unsupported message")),
            Err(err) => Decoded::Invalid(err),
        }
    }

    async fn feed(&mut self, frame: Frame, _: Option<&()>) -> Result<(), Gone> {
        let message = if self.codec.frames_as_text() {
            text(frame.into_bytes())
        } else {
            outgoing(self.codec.encode(frame))
        };
        self.socket.feed(message).await.map_err(|_| Gone)
    }

    async fn flush(&mut self) -> Result<(), Gone> {
        self.socket.flush().await.map_err(|_| Gone)
    }

    async fn ping(&mut self) -> Result<(), Gone> {
        let ping = protocol::Message::Ping(Bytes::new());
        self.socket.send(ping).await.map_err(|_| Gone)
    }

    async fn close(&mut self, how: Closing) {
        let deadline = Instant::now() + self.limits.close_timeout;
        match how {
            Closing::Server(request) => {
                let send = self.socket.send(close(request));
                // A client that stopped reading may never take the close frame.
                if tokio::time::timeout_at(deadline, send).await.is_ok() {
                    self.linger(deadline).await;
                }
            }
            // tungstenite queued the reply to the client's close frame; a flush sends it,
            // so that the client sees a clean close (1000, not 1006).
            Closing::Client => {
                let _ = tokio::time::timeout_at(deadline, self.socket.flush()).await;
            }
            Closing::Gone => {}
        }
    }
}

/// A codec's message as tungstenite writes it. Text goes out as a raw text frame: the
/// codec's `Utf8Bytes` is UTF-8 already, and tungstenite's would check it again.
fn outgoing(message: Message) -> protocol::Message {
    match message {
        Message::Text(utf8) => text(Bytes::from(utf8)),
        Message::Binary(bytes) => protocol::Message::Binary(bytes),
        Message::Ping(bytes) => protocol::Message::Ping(bytes),
        Message::Pong(bytes) => protocol::Message::Pong(bytes),
        Message::Close(frame) => {
            protocol::Message::Close(frame.map(|frame| protocol::CloseFrame {
                code: CloseCode::from(frame.code),
                reason: frame.reason.as_str().into(),
            }))
        }
    }
}

/// UTF-8 bytes as one text message, written as they are.
fn text(utf8: Bytes) -> protocol::Message {
    protocol::Message::Frame(frame::Frame::message(
        utf8,
        OpCode::Data(OpData::Text),
        true,
    ))
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
        socket: &mut Socket,
        waker: &Waker,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<protocol::Message, tungstenite::Error>>> {
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

fn close(request: CloseRequest) -> protocol::Message {
    let mut reason = request.reason.into_owned();
    // A close frame's reason is at most 123 bytes.
    if reason.len() > 123 {
        let mut end = 123;
        while !reason.is_char_boundary(end) {
            end -= 1;
        }
        reason.truncate(end);
    }
    protocol::Message::Close(Some(protocol::CloseFrame {
        code: CloseCode::from(request.code),
        reason: reason.into(),
    }))
}

fn invalid_utf8() -> Received<Message> {
    Received::Refused(CloseRequest {
        code: INVALID_PAYLOAD,
        reason: "invalid UTF-8".into(),
    })
}

/// What a read error means for the client: the close code RFC 6455 names for what it
/// did, or nothing more to say (the socket is gone).
fn transport_error(err: tungstenite::Error) -> Received<Message> {
    tracing::debug!(target: "gateway::rejection", "transport error: {err}");
    match err {
        tungstenite::Error::Capacity(_) => Received::Refused(CloseRequest {
            code: MESSAGE_TOO_BIG,
            reason: "message too big".into(),
        }),
        tungstenite::Error::Utf8(_) => invalid_utf8(),
        // The client went away mid-message or without a close: nobody to tell.
        tungstenite::Error::Protocol(ProtocolError::ResetWithoutClosingHandshake) => Received::Gone,
        // The reason is cut to what a close frame holds when it is sent.
        tungstenite::Error::Protocol(err) => Received::Refused(CloseRequest {
            code: PROTOCOL_ERROR,
            reason: err.to_string().into(),
        }),
        _ => Received::Gone,
    }
}
