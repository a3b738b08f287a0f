//! A custom transport, NestJS's "Advanced (custom adapter)": the same annotated gateways
//! served as MessagePack in binary WebSocket frames, written against the public
//! [`WebSocketAdapter`] trait and [`GatewayRuntime`] only.
//!
//! Every message is a MessagePack map `{"event": string, "data": any, "id"?: any}` in a
//! binary frame ([`Message`]); replies, emits, broadcasts and exceptions come back the same
//! way. Guards, pipes, interceptors, filters, hooks and rooms run unchanged, and a room
//! holds JSON and MessagePack clients alike.
//!
//! Run the demo with `cargo run -p msgpack-adapter`: the [`demo::RoomsGateway`] answers JSON
//! at `ws://127.0.0.1:3001/rooms` and MessagePack at `ws://127.0.0.1:3001/msgpack/rooms`.
//!
//! ```
//! use gateway_axum::prelude::*;
//! use gateway_axum::{JsonAdapter, WebSocketAdapter};
//! use msgpack_adapter::MsgPackAdapter;
//!
//! let app = GatewayApp::new().gateway::<msgpack_adapter::demo::RoomsGateway>().build().unwrap();
//! let router: axum::Router = JsonAdapter
//!     .mount(&app)
//!     .merge(MsgPackAdapter::at("/msgpack").mount(&app));
//! # let _ = router;
//! ```

pub mod demo;

use std::future::Future;
use std::pin::Pin;

use axum::Router;
use axum::extract::State;
use axum::extract::ws::{CloseFrame, Message as WsMessage, WebSocket, WebSocketUpgrade};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use futures_util::stream::{BoxStream, FuturesUnordered, SelectAll, SplitSink};
use futures_util::{FutureExt, SinkExt, StreamExt};
use gateway_axum::{
    App, Caught, Client, CloseRequest, Connections, Dispatch, Failure, Frame, GatewayRuntime,
    Handshake, HandshakeRequest, IncomingFrame, Outbound, OutboundQueue, Outcome, Reply,
    WebSocketAdapter, WsException,
};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// One message on the wire: a MessagePack map with string keys.
///
/// # Examples
///
/// ```
/// use msgpack_adapter::Message;
///
/// let message = Message::new("echo", serde_json::json!({"n": 1}));
/// let bytes = message.to_bytes().unwrap();
/// assert_eq!(Message::from_bytes(&bytes).unwrap(), message);
/// ```
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Message {
    /// The event name.
    pub event: String,
    /// The payload.
    #[serde(default)]
    pub data: Value,
    /// Copied from a request into its replies, as on the JSON adapter.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<Value>,
}

impl Message {
    /// A message without id.
    pub fn new(event: impl Into<String>, data: Value) -> Self {
        Self {
            event: event.into(),
            data,
            id: None,
        }
    }

    /// Encodes the message as a MessagePack map.
    ///
    /// # Errors
    ///
    /// rmp-serde's error (not expected for JSON values).
    pub fn to_bytes(&self) -> Result<Vec<u8>, rmp_serde::encode::Error> {
        rmp_serde::to_vec_named(self)
    }

    /// Decodes a MessagePack map.
    ///
    /// # Errors
    ///
    /// The bytes are not MessagePack, or not a map with a string `event`.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, rmp_serde::decode::Error> {
        rmp_serde::from_slice(bytes)
    }

    /// The message a runtime [`Frame`] (JSON `{"event","data","id"}`) stands for.
    pub fn from_frame(frame: &Frame) -> Option<Self> {
        let envelope = IncomingFrame::parse(frame.as_str()).ok()?;
        let json = |raw: Option<&serde_json::value::RawValue>| {
            raw.and_then(|raw| serde_json::from_str::<Value>(raw.get()).ok())
        };
        Some(Self {
            event: envelope.event.into_owned(),
            data: json(envelope.data).unwrap_or(Value::Null),
            id: json(envelope.id),
        })
    }

    /// The message as the JSON adapter would have received it, for exception filters and
    /// the `cause` of exceptions.
    fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }
}

/// Serves every gateway as MessagePack in binary WebSocket frames, at `prefix` + the
/// gateway's path.
#[derive(Clone, Copy, Debug, Default)]
pub struct MsgPackAdapter {
    prefix: &'static str,
}

impl MsgPackAdapter {
    /// Gateways at their own paths.
    pub fn new() -> Self {
        Self::default()
    }

    /// Gateways at `prefix` + their paths, e.g. beside the JSON adapter on one router.
    pub fn at(prefix: &'static str) -> Self {
        Self { prefix }
    }
}

impl WebSocketAdapter for MsgPackAdapter {
    type Server = Router;

    fn create(&self, _app: &App) -> Router {
        Router::new()
    }

    fn bind(&self, server: Router, gateway: &GatewayRuntime, app: &App) -> Router {
        let mounted = Mounted {
            gateway: gateway.clone(),
            connections: app.connections().clone(),
            queue_capacity: app.config().outbound_queue,
            max_message_size: app.config().max_message_size,
        };
        let path = format!("{}{}", self.prefix, gateway.path());
        server.route(&path, get(upgrade).with_state(mounted))
    }
}

#[derive(Clone)]
struct Mounted {
    gateway: GatewayRuntime,
    connections: Connections,
    queue_capacity: usize,
    max_message_size: usize,
}

/// Connect: admission, authentication (HTTP 401 before the upgrade), then the socket.
async fn upgrade(
    State(mounted): State<Mounted>,
    uri: Uri,
    headers: HeaderMap,
    ws: WebSocketUpgrade,
) -> Response {
    let guard = match mounted.connections.admit(None) {
        Ok(guard) => guard,
        Err(refused) => {
            return (StatusCode::SERVICE_UNAVAILABLE, refused.to_string()).into_response();
        }
    };
    let identity = match mounted
        .gateway
        .authenticate(&HandshakeRequest::new(&uri, &headers))
        .await
    {
        Ok(identity) => identity,
        Err(err) => return (StatusCode::UNAUTHORIZED, err.message().to_owned()).into_response(),
    };
    let mut handshake = Handshake::new(uri, headers);
    if let Some(store) = identity {
        store(&mut handshake.extensions);
    }
    ws.max_message_size(mounted.max_message_size)
        .on_upgrade(move |socket| async move {
            run(socket, mounted, handshake).await;
            drop(guard);
        })
}

type Pending = Pin<Box<dyn Future<Output = (Outcome, Message)> + Send>>;
type Items = BoxStream<'static, (Result<Option<Frame>, Failure>, Message)>;

/// A reason to stop serving a connection: `Some` closes it with that code and reason.
struct Stop(Option<CloseRequest>);

struct Connection {
    sink: SplitSink<WebSocket, WsMessage>,
    gateway: GatewayRuntime,
    client: Client,
    queue: OutboundQueue,
}

/// Messages, disconnect: the life of one connection.
async fn run(socket: WebSocket, mounted: Mounted, handshake: Handshake) {
    let gateway = mounted.gateway;
    let (client, queue) = gateway.open(handshake, mounted.queue_capacity);
    let (sink, mut stream) = socket.split();
    let mut conn = Connection {
        sink,
        gateway,
        client,
        queue,
    };
    let stop = match conn.gateway.connect(&conn.client).await {
        Err(err) => {
            let frame = conn.gateway.exception_frame(None, &err);
            let _ = conn.write(&frame).await;
            Stop(Some(CloseRequest {
                code: 1008,
                reason: err.message().to_owned().into(),
            }))
        }
        Ok(()) => {
            let mut pending: FuturesUnordered<Pending> = FuturesUnordered::new();
            let mut items: SelectAll<Items> = SelectAll::new();
            let overflow = conn.queue.overflow_signal();
            let shutdown = mounted.connections.shutting_down();
            tokio::pin!(shutdown);
            loop {
                let step = tokio::select! {
                    biased;
                    () = overflow.wait() => Err(Stop(Some(CloseRequest { code: 1008, reason: "too slow".into() }))),
                    () = &mut shutdown => Err(Stop(Some(CloseRequest { code: 1001, reason: "server shutting down".into() }))),
                    out = conn.queue.recv() => match out {
                        Some(out) => conn.feed(out).await,
                        None => Err(Stop(None)),
                    },
                    Some((outcome, request)) = pending.next(), if !pending.is_empty() => {
                        conn.answer(outcome, request, &mut items).await
                    }
                    Some((item, request)) = items.next(), if !items.is_empty() => match item {
                        Ok(Some(frame)) => conn.reply(&frame).await,
                        Ok(None) => Ok(()),
                        Err(failure) => conn.fail(failure, Some(&request)).await,
                    },
                    message = stream.next() => match message {
                        Some(Ok(WsMessage::Binary(bytes))) => conn.receive(&bytes, &mut pending, &mut items).await,
                        Some(Ok(WsMessage::Text(_))) => {
                            let err = WsException::new("Text frames are not supported: send MessagePack maps {event, data} in binary frames");
                            conn.fail(err.into(), None).await
                        }
                        Some(Ok(WsMessage::Ping(_) | WsMessage::Pong(_))) => Ok(()),
                        Some(Ok(WsMessage::Close(_)) | Err(_)) | None => Err(Stop(None)),
                    },
                };
                if let Err(stop) = step {
                    break stop;
                }
            }
        }
    };
    if let Stop(Some(close)) = stop {
        let frame = CloseFrame {
            code: close.code,
            reason: close.reason.into_owned().into(),
        };
        let _ = conn.sink.send(WsMessage::Close(Some(frame))).await;
    }
    conn.gateway.disconnect(&conn.client).await;
}

impl Connection {
    /// One binary message: decoded, then dispatched to the gateway.
    async fn receive(
        &mut self,
        bytes: &[u8],
        pending: &mut FuturesUnordered<Pending>,
        items: &mut SelectAll<Items>,
    ) -> Result<(), Stop> {
        let request = match Message::from_bytes(bytes) {
            Ok(request) => request,
            Err(err) => {
                let err = WsException::new(format!("Malformed MessagePack: {err}"));
                return self.fail(err.into(), None).await;
            }
        };
        let data = serde_json::value::to_raw_value(&request.data).ok();
        let id = request
            .id
            .as_ref()
            .and_then(|id| serde_json::value::to_raw_value(id).ok());
        let dispatch = self.gateway.dispatch(
            &self.client,
            &request.event,
            data.as_deref().filter(|d| d.get() != "null"),
            id.as_deref(),
        );
        match dispatch {
            Dispatch::Ready(outcome) => self.answer(outcome, request, items).await,
            Dispatch::Pending(future) => {
                pending.push(future.map(move |outcome| (outcome, request)).boxed());
                Ok(())
            }
        }
    }

    async fn answer(
        &mut self,
        outcome: Outcome,
        request: Message,
        items: &mut SelectAll<Items>,
    ) -> Result<(), Stop> {
        match outcome {
            Ok(Reply::Frame(frame)) => self.reply(&frame).await,
            Ok(Reply::Stream(stream)) => {
                items.push(stream.map(move |item| (item, request.clone())).boxed());
                Ok(())
            }
            Ok(Reply::Close(frame, close)) => {
                if let Some(frame) = frame {
                    self.reply(&frame).await?;
                }
                Err(Stop(Some(close)))
            }
            Ok(_) => Ok(()),
            Err(failure) => self.fail(failure, Some(&request)).await,
        }
    }

    /// The exception filters decide what the client receives.
    async fn fail(&mut self, failure: Failure, request: Option<&Message>) -> Result<(), Stop> {
        let text = request.map(Message::to_json);
        let caught: Caught = self.gateway.catch(&self.client, text.as_deref(), failure);
        let (frame, close) = caught.into_parts();
        if let Some(frame) = frame {
            self.reply(&frame).await?;
        }
        match close {
            Some(close) => Err(Stop(Some(close))),
            None => Ok(()),
        }
    }

    /// A reply goes after what the handler emitted before returning.
    async fn reply(&mut self, frame: &Frame) -> Result<(), Stop> {
        while let Some(out) = self.queue.try_recv() {
            self.feed(out).await?;
        }
        self.write(frame).await
    }

    async fn feed(&mut self, out: Outbound) -> Result<(), Stop> {
        match out {
            Outbound::Frame(frame) => self.write(&frame).await,
            Outbound::Close(close) => Err(Stop(Some(close))),
            _ => Ok(()),
        }
    }

    /// Re-encodes a runtime frame as MessagePack.
    async fn write(&mut self, frame: &Frame) -> Result<(), Stop> {
        let Some(bytes) = Message::from_frame(frame).and_then(|m| m.to_bytes().ok()) else {
            tracing::warn!("cannot encode {frame:?} as MessagePack");
            return Ok(());
        };
        self.sink
            .send(WsMessage::Binary(bytes.into()))
            .await
            .map_err(|_| Stop(None))
    }
}
