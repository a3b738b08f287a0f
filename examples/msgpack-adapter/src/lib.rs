//! A custom transport, NestJS's "Advanced (custom adapter)": the same annotated gateways
//! served as MessagePack in binary WebSocket frames. All it writes is a [`Codec`]: how a
//! binary message decodes into a request and how an outgoing frame encodes;
//! [`WebSocketTransport`] does the upgrade, admission, authentication and the session.
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
//! use ws_gateway::prelude::*;
//! use msgpack_adapter::{MsgPackCodec, MsgPackTransport};
//!
//! let app = GatewayApp::new().gateway::<msgpack_adapter::demo::RoomsGateway>().build().unwrap();
//! let router: axum::Router = app
//!     .clone()
//!     .into_router()
//!     .merge(MsgPackTransport::new(MsgPackCodec).at("/msgpack").mount(&app));
//! # let _ = router;
//! ```

pub mod demo;

use axum::extract::ws::Message as WsMessage;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use ws_gateway::{Codec, ErrorKind, Frame, Request, WebSocketTransport, WsException};

/// The transport: MessagePack maps in binary WebSocket frames, at each gateway's path
/// (after a prefix given with [`at`](WebSocketTransport::at)).
pub type MsgPackTransport = WebSocketTransport<MsgPackCodec>;

/// The wire format: [`Message`] maps in binary frames, both ways.
///
/// # Examples
///
/// ```
/// use axum::extract::ws::Message as WsMessage;
/// use ws_gateway::Codec;
/// use msgpack_adapter::{Message, MsgPackCodec};
///
/// let bytes = Message::new("echo", serde_json::json!([1])).to_bytes().unwrap();
/// let frame = WsMessage::Binary(bytes.into());
/// let request = MsgPackCodec.decode(&frame).unwrap();
/// assert_eq!((&*request.event, request.data().unwrap().get()), ("echo", "[1]"));
/// ```
#[derive(Clone, Copy, Debug, Default)]
pub struct MsgPackCodec;

impl Codec for MsgPackCodec {
    fn decode<'m>(&self, message: &'m WsMessage) -> Result<Request<'m>, WsException> {
        let WsMessage::Binary(bytes) = message else {
            return Err(WsException::new(
                "Text frames are not supported: send MessagePack maps {event, data} in binary frames",
            )
            .with_kind(ErrorKind::BadRequest));
        };
        let message = Message::from_bytes(bytes).map_err(|err| {
            WsException::new(format!("Malformed MessagePack: {err}"))
                .with_kind(ErrorKind::BadRequest)
        })?;
        let json = |value: &Value| serde_json::value::to_raw_value(value).ok();
        let mut request = Request::new(message.event);
        if let Some(data) = Some(&message.data)
            .filter(|data| !data.is_null())
            .and_then(json)
        {
            request = request.with_data(data);
        }
        if let Some(id) = message.id.as_ref().and_then(json) {
            request = request.with_id(id);
        }
        Ok(request)
    }

    fn encode(&self, frame: Frame) -> WsMessage {
        match Message::from_frame(&frame).map(|message| message.to_bytes()) {
            Some(Ok(bytes)) => WsMessage::Binary(bytes.into()),
            _ => {
                tracing::warn!("cannot encode {frame:?} as MessagePack");
                WsMessage::Binary(Default::default())
            }
        }
    }
}

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
        serde_json::from_str(frame.as_str()).ok()
    }
}
