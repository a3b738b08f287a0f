//! One client in one namespace as the session driver sees it: the messages the engine
//! handed over, and emits, acknowledgements and the namespace CONNECT written to the
//! engine's socket.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, PoisonError};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::Bytes;
use futures_util::StreamExt;
use serde_json::value::RawValue;
use ws_gateway_core::telemetry::Counter;
use ws_gateway_core::transport::{
    Ask, Bypass, Closing, Connection, Decoded, Gone, Opening, Received, Unwritten,
};
use ws_gateway_core::{CloseRequest, Frame, Request, WsException};

use super::engine::{self, AskGuard, EngineSocket, Link, Str, Unsent};
use super::wire::{self, Encoded};

/// What the engine hands a session.
pub(super) enum Inbound {
    Packet(Packet),
    /// Look at the link: the namespace ended, or the client flooded.
    Wake,
}

/// How a namespace ended for a client (see the engine's `Link::end`).
pub(super) enum Ended {
    /// The client left it (its DISCONNECT): a close, not recoverable.
    Left,
    /// The engine's connection closed: a drop.
    Gone,
}

/// One received message.
pub(super) enum Packet {
    /// A message, with what is needed to answer it.
    Message {
        event: String,
        /// Every argument, a JSON array, byte strings as placeholders.
        args: Box<RawValue>,
        /// The first argument, the handler's data.
        data: Option<Box<RawValue>>,
        /// The binary attachments the placeholders stand for.
        attachments: Vec<Bytes>,
        ack: Option<Ack>,
    },
    /// A message that could not be read: answered with this exception, as the JSON
    /// transport answers a malformed frame.
    Unreadable(WsException),
}

impl Packet {
    /// The bytes of the message's event and data.
    pub(super) fn size(&self) -> usize {
        match self {
            Packet::Message {
                event,
                args,
                attachments,
                ..
            } => event.len() + args.get().len() + attachments.iter().map(Bytes::len).sum::<usize>(),
            Packet::Unreadable(_) => 0,
        }
    }
}

/// The client's acknowledgement callback: answered once, by the first reply under the
/// request's own event (NestJS's semantics).
#[derive(Clone)]
pub(super) struct Ack(Arc<AckSlot>);

struct AckSlot {
    event: String,
    id: i64,
    answered: AtomicBool,
}

impl Ack {
    pub(super) fn new(event: &str, id: i64) -> Self {
        Self(Arc::new(AckSlot {
            event: event.to_owned(),
            id,
            answered: AtomicBool::new(false),
        }))
    }

    /// The callback's number, if `frame` is under the request's event and it was not
    /// answered yet.
    fn take_for(&self, frame: &Frame) -> Option<i64> {
        if wire::event_of(frame).as_deref() != Some(self.0.event.as_str()) {
            return None;
        }
        (!self.0.answered.swap(true, Ordering::AcqRel)).then_some(self.0.id)
    }
}

/// A [shared](Frame::shared) frame encoded once for all its receivers in one namespace.
struct Shared {
    ns: Str,
    packet: Option<Encoded>,
}

/// The data of a shared question, without its `ack` field (each receiver's question has
/// its own number): its own type, so that it is never taken for the frame's [`Shared`].
struct SharedQuestion(Option<socketioxide_core::Value>);

pub(super) struct SocketIoConnection {
    /// The engine, for leaving the namespace when the session is done with the connection.
    engine: engine::Engine,
    writer: Writer,
    inbound: flume::r#async::RecvStream<'static, Inbound>,
    /// The namespace CONNECT was answered.
    opened: bool,
}

/// Writes a client's packets in one namespace to its engine socket, whose own task sends
/// them: from the session, or straight from an emit ([`Connection::bypass`]).
#[derive(Clone)]
struct Writer {
    socket: EngineSocket,
    ns: Str,
    link: Arc<Link>,
    /// `gateway_messages_dropped_total`, for volatile frames the engine has no room for.
    dropped: Counter,
}

impl Writer {
    /// `frame` as an event packet of this namespace. A shared frame is encoded once, by
    /// its first receiver, for the others of the same namespace.
    fn event(&self, frame: &Frame) -> Option<Encoded> {
        let encode = |frame: &Frame| {
            wire::event_data(frame).map(|data| wire::event_packet(&self.ns, data, None))
        };
        match frame.prepared(|frame| Shared {
            ns: self.ns.clone(),
            packet: encode(frame),
        }) {
            Some(shared) if shared.ns == self.ns => shared.packet.clone(),
            _ => encode(frame),
        }
    }

    /// Sends `packet` now; `Err` when the connection is closed or its buffer full, but for
    /// a volatile frame, which is then dropped, as it is when the client's queue is full.
    fn send(&self, packet: Encoded, volatile: bool) -> Result<(), Unsent> {
        match engine::send(&self.socket, packet) {
            Err(Unsent::Full(_)) if volatile => {
                self.dropped.increment(1);
                Ok(())
            }
            sent => sent,
        }
    }

    /// The data of a question, without its `ack` field (each receiver's question has its
    /// own number); a room's is written once, for all its receivers.
    fn question(frame: &Frame) -> Option<socketioxide_core::Value> {
        let question = |frame: &Frame| wire::event_data(&frame.without_ack());
        match frame.prepared(|frame| SharedQuestion(question(frame))) {
            Some(SharedQuestion(data)) => data.clone(),
            None => question(frame),
        }
    }

    /// The question with a number of this namespace's, and the receiver of its answer.
    fn ask_packet(&self, data: socketioxide_core::Value) -> (Encoded, AskGuard) {
        let (id, waiting) = self.link.ask();
        (wire::event_packet(&self.ns, data, Some(id)), waiting)
    }
}

/// Hands the answer's receiver to the emit that asked ([`Ask::answer_with`]): the client's
/// callback answers straight to it, without a turn of the session.
fn await_answer(ask: Ask<'_>, mut waiting: AskGuard) {
    let deadline = tokio::time::Instant::from_std(ask.deadline());
    ask.answer_with(async move {
        match tokio::time::timeout_at(deadline, &mut waiting.answer).await {
            Ok(Ok(answer)) => wire::answer_of(answer),
            _ => None,
        }
    });
}

impl Bypass for Writer {
    /// Emits `frame` at once, drops it (volatile, no room), or hands it back.
    fn write(&self, frame: Frame) -> Result<(), Unwritten> {
        let Some(packet) = self.event(&frame) else {
            return Ok(());
        };
        match engine::send(&self.socket, packet) {
            Ok(()) => Ok(()),
            Err(Unsent::Full(_)) if frame.is_volatile() => Err(Unwritten::Dropped),
            Err(_) => Err(Unwritten::Back(frame)),
        }
    }

    /// Asks at once, from the emit's task: a room's question reaches each receiver's
    /// Engine.IO socket without a turn of its session.
    fn ask(&self, frame: Frame, ask: Ask<'_>) -> Result<(), Unwritten> {
        let Some(data) = Writer::question(&frame) else {
            return Ok(());
        };
        let (packet, waiting) = self.ask_packet(data);
        match engine::send(&self.socket, packet) {
            Ok(()) => {
                await_answer(ask, waiting);
                Ok(())
            }
            // The number is forgotten with `waiting`; the session asks again.
            Err(_) => Err(Unwritten::Back(frame)),
        }
    }
}

impl SocketIoConnection {
    pub(super) fn new(
        engine: engine::Engine,
        socket: EngineSocket,
        ns: Str,
        link: Arc<Link>,
        inbound: flume::Receiver<Inbound>,
        dropped: Counter,
    ) -> Self {
        Self {
            engine,
            writer: Writer {
                socket,
                ns,
                link,
                dropped,
            },
            inbound: inbound.into_stream(),
            opened: false,
        }
    }

    /// Sends `packet` from the session: when the connection's buffer is full, waits for
    /// room (engineioxide offers no signal of it, so by polling, less often the longer it
    /// waits), within the session's write timeout, as a WebSocket write waits for the
    /// client to read.
    async fn send(&self, packet: Encoded, volatile: bool) -> Result<(), Gone> {
        let mut packet = packet;
        let mut pause = Duration::from_millis(1);
        loop {
            match self.writer.send(packet, volatile) {
                Ok(()) => return Ok(()),
                Err(Unsent::Full(unsent)) => {
                    packet = unsent;
                    tokio::time::sleep(pause).await;
                    pause = (pause * 2).min(Duration::from_millis(50));
                }
                Err(Unsent::Closed) => {
                    tracing::debug!(target: "gateway", sid = %self.writer.socket.id, "Socket.IO send failed: the connection is closed");
                    return Err(Gone);
                }
            }
        }
    }
}

/// The session is done with the connection: the client is out of the namespace.
impl Drop for SocketIoConnection {
    fn drop(&mut self) {
        let Writer {
            socket, ns, link, ..
        } = &self.writer;
        self.engine.leave(socket, ns, link);
    }
}

impl Connection for SocketIoConnection {
    type Message = Packet;
    type Route = Option<Ack>;

    /// Engine.IO pings the client and times it out.
    const HEARTBEAT: bool = false;

    /// Socket.IO's own recovery: the `pid` in the CONNECT packet, offsets as the last
    /// argument of events, `pid` and `offset` in the reconnecting CONNECT's `auth`.
    const RECOVERY: bool = true;

    /// The CONNECT packet tells the client its session.
    const SESSION_FRAME: bool = false;

    /// Answers the namespace CONNECT: the client's id as `sid` (kept across a recovery, as
    /// socket.io-client expects), and the session's `pid` under recovery.
    async fn open(&mut self, opening: Opening<'_>) -> Result<(), Gone> {
        let sid = opening.client.id().to_string();
        let pid = opening.session.map(|(pid, _)| pid);
        self.opened = true;
        self.send(wire::connect_packet(&self.writer.ns, &sid, pid), false)
            .await
    }

    /// Emits go straight to the engine socket, which has a writer task of its own: one
    /// task hop per delivery, as socketioxide's.
    fn bypass(&self) -> Option<impl Bypass> {
        // A copy of its own, held by the client's queue: one pointer less to follow for
        // each receiver of a broadcast.
        Some(self.writer.clone())
    }

    fn poll_recv(&mut self, cx: &mut Context<'_>) -> Poll<Received<Packet>> {
        // A flood is refused at once, whatever still waits; a departure after it.
        let refused = || {
            Poll::Ready(Received::Refused(CloseRequest {
                code: 1008,
                reason: "too many messages waiting".into(),
            }))
        };
        let link = &self.writer.link;
        if link.refused.load(Ordering::Acquire) {
            return refused();
        }
        loop {
            match self.inbound.poll_next_unpin(cx) {
                Poll::Ready(Some(Inbound::Packet(packet))) => {
                    link.queued.fetch_sub(packet.size(), Ordering::AcqRel);
                    return Poll::Ready(Received::Message(packet));
                }
                Poll::Ready(Some(Inbound::Wake)) => {}
                Poll::Ready(None) => return Poll::Ready(Received::Gone),
                Poll::Pending => break,
            }
        }
        if link.refused.load(Ordering::Acquire) {
            return refused();
        }
        let ended = link
            .ended
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        match ended {
            Some(Ended::Left) => Poll::Ready(Received::Closed),
            Some(Ended::Gone) => Poll::Ready(Received::Gone),
            None => Poll::Pending,
        }
    }

    fn size(&self, packet: &Packet) -> usize {
        packet.size()
    }

    fn decode<'m>(&self, packet: &'m Packet) -> Decoded<'m, Option<Ack>> {
        match packet {
            Packet::Message {
                event,
                args,
                data,
                attachments,
                ack,
            } => {
                let mut request = Request::new(event.as_str()).with_args(&**args);
                if !attachments.is_empty() {
                    request = request.with_attachments(&attachments[..]);
                }
                if let Some(data) = data {
                    request = request.with_data(&**data);
                }
                Decoded::Request(request, ack.clone())
            }
            Packet::Unreadable(err) => Decoded::Invalid(err.clone()),
        }
    }

    /// Emits the frame asking for an acknowledgement with a number of this namespace's,
    /// and hands the answer's receiver to the emit that asked ([`Ask::answer_with`]): the
    /// client's callback answers straight to it, without a turn of this session. The data
    /// of a room's question is written once, for all its receivers.
    async fn feed_ask(&mut self, frame: Frame, ask: Ask<'_>) -> Result<(), Gone> {
        let Some(data) = Writer::question(&frame) else {
            return Ok(());
        };
        let (packet, waiting) = self.writer.ask_packet(data);
        self.send(packet, false).await?;
        await_answer(ask, waiting);
        Ok(())
    }

    /// Emits one frame: as the acknowledgement of the request it answers when it is
    /// under the request's event and the client asked for one, else as
    /// `socket.emit(event, ...args)`.
    async fn feed(&mut self, frame: Frame, route: Option<&Option<Ack>>) -> Result<(), Gone> {
        let ack = route
            .and_then(Option::as_ref)
            .and_then(|ack| ack.take_for(&frame));
        let packet = match ack {
            Some(id) => {
                wire::answer_data(&frame).map(|data| wire::ack_packet(&self.writer.ns, data, id))
            }
            None => self.writer.event(&frame),
        };
        match packet {
            Some(packet) => self.send(packet, frame.is_volatile()).await,
            None => Ok(()),
        }
    }

    async fn flush(&mut self) -> Result<(), Gone> {
        Ok(())
    }

    /// Socket.IO has no close codes: a close ends the client's membership of the
    /// namespace (a DISCONNECT packet), or refuses its CONNECT when it was not answered
    /// yet. A session that cannot be had now (1013) closes the connection instead, so that
    /// socket.io-client reconnects by itself and tries again.
    async fn close(&mut self, how: Closing) {
        let Closing::Server(request) = how else {
            return;
        };
        let Writer { socket, ns, .. } = &self.writer;
        let packet = match (self.opened, request.code) {
            (true, _) => wire::disconnect_packet(ns),
            (false, 1013) => {
                socket.close(engineioxide::DisconnectReason::TransportClose);
                return;
            }
            (false, _) => wire::connect_error_packet(ns, &request.reason),
        };
        let _ = engine::send(socket, packet);
    }
}
