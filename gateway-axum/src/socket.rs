//! [`WebSocketConnection`]: an axum WebSocket and a [`Codec`], as the session driver sees
//! them.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll, Wake, Waker};
use std::time::Duration;

use axum::extract::ws::{CloseFrame, Message, WebSocket};
use futures_util::task::AtomicWaker;
use futures_util::{SinkExt, StreamExt};
use gateway_core::transport::{Closing, Connection, Decoded, Gone, Received};
use gateway_core::{CloseRequest, Frame};

use crate::codec::Codec;

/// Close code for a message over the size limit.
const MESSAGE_TOO_BIG: u16 = 1009;
/// How long the final close frame may take to write: a client that stopped reading may
/// never take it.
const CLOSE_WRITE_TIMEOUT: Duration = Duration::from_secs(1);

/// One client's WebSocket with the wire format it speaks.
pub(crate) struct WebSocketConnection<C> {
    socket: WebSocket,
    codec: Arc<C>,
    read_wake: Arc<ReadWake>,
    read_waker: Waker,
}

impl<C: Codec> WebSocketConnection<C> {
    pub(crate) fn new(socket: WebSocket, codec: Arc<C>) -> Self {
        let read_wake = Arc::new(ReadWake::default());
        let read_waker = Waker::from(Arc::clone(&read_wake));
        Self {
            socket,
            codec,
            read_wake,
            read_waker,
        }
    }
}

impl<C: Codec> Connection for WebSocketConnection<C> {
    type Message = Message;
    type Route = ();

    fn poll_recv(&mut self, cx: &mut Context<'_>) -> Poll<Received<Message>> {
        let polled = self
            .read_wake
            .poll_next(&mut self.socket, &self.read_waker, cx);
        polled.map(|message| match message {
            Some(Ok(message @ (Message::Text(_) | Message::Binary(_)))) => {
                Received::Message(message)
            }
            Some(Ok(Message::Ping(_) | Message::Pong(_))) => Received::Alive,
            Some(Ok(Message::Close(_))) => Received::Closed,
            None => Received::Gone,
            Some(Err(err)) => transport_error(err),
        })
    }

    fn decode<'m>(&self, message: &'m Message) -> Decoded<'m, ()> {
        match self.codec.decode(message) {
            Ok(request) => Decoded::Request(request, ()),
            Err(err) => Decoded::Invalid(err),
        }
    }

    async fn feed(&mut self, frame: Frame, _: Option<&()>) -> Result<(), Gone> {
        let message = self.codec.encode(frame);
        self.socket.feed(message).await.map_err(|_| Gone)
    }

    async fn flush(&mut self) -> Result<(), Gone> {
        self.socket.flush().await.map_err(|_| Gone)
    }

    async fn ping(&mut self) -> Result<(), Gone> {
        let ping = Message::Ping(axum::body::Bytes::new());
        self.socket.send(ping).await.map_err(|_| Gone)
    }

    async fn close(&mut self, how: Closing) {
        match how {
            Closing::Server(request) => {
                let send = self.socket.send(close(request));
                let _ = tokio::time::timeout(CLOSE_WRITE_TIMEOUT, send).await;
            }
            // tungstenite queued the reply to the client's close frame; a flush sends it,
            // so that the client sees a clean close (1000, not 1006).
            Closing::Client => {
                let _ = tokio::time::timeout(CLOSE_WRITE_TIMEOUT, self.socket.flush()).await;
            }
            Closing::Gone => {}
        }
    }
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

fn transport_error(err: axum::Error) -> Received<Message> {
    match err.into_inner().downcast::<tungstenite::Error>() {
        Ok(err) if matches!(*err, tungstenite::Error::Capacity(_)) => {
            Received::Refused(CloseRequest {
                code: MESSAGE_TOO_BIG,
                reason: "message too big".into(),
            })
        }
        Ok(err) => {
            tracing::debug!(target: "gateway", "transport error: {err}");
            Received::Gone
        }
        Err(err) => {
            tracing::debug!(target: "gateway", "transport error: {err}");
            Received::Gone
        }
    }
}
