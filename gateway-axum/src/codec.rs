//! [`Codec`]: a wire format carried in WebSocket messages, and [`JsonCodec`], the
//! default one (NestJS's `WsAdapter` envelope).

use std::borrow::Cow;
use std::fmt;
use std::sync::Arc;

use axum::extract::ws::{Message, Utf8Bytes};
use ws_gateway_core::transport::{FrameError, Incoming, parse, parse_incoming};
use ws_gateway_core::{Frame, Request, WsException};

/// A wire format carried in WebSocket text or binary messages: how a message decodes into
/// a [`Request`] and how an outgoing [`Frame`] (JSON `{"event":..,"data":..,"id"?:..}`)
/// encodes into a message.
///
/// That is all a custom WebSocket transport writes: [`WebSocketTransport`] does the rest
/// (the upgrade, admission, authentication, the session). Ping, pong and close messages
/// never reach a codec.
///
/// [`WebSocketTransport`]: crate::WebSocketTransport
///
/// # Examples
///
/// The JSON envelope in binary messages:
///
/// ```
/// use axum::extract::ws::Message;
/// use ws_gateway_axum::{Codec, WebSocketTransport};
/// use ws_gateway_core::transport::parse;
/// use ws_gateway_core::{Frame, Request, WsException};
///
/// struct BinaryJson;
///
/// impl Codec for BinaryJson {
///     fn decode<'m>(&self, message: &'m Message) -> Result<Request<'m>, WsException> {
///         let Message::Binary(bytes) = message else {
///             return Err(WsException::new("send binary messages"));
///         };
///         let text = std::str::from_utf8(bytes).map_err(|_| WsException::new("not UTF-8"))?;
///         Ok(parse(text)?)
///     }
///
///     fn encode(&self, frame: Frame) -> Message {
///         Message::Binary(frame.into_bytes())
///     }
/// }
///
/// let transport = WebSocketTransport::new(BinaryJson).at("/bin");
/// # let _ = transport;
/// ```
pub trait Codec: Send + Sync + 'static {
    /// The request a text or binary message carries.
    ///
    /// # Errors
    ///
    /// What the client is told (through the exception filters) when the message is no
    /// request of this format; the connection stays open.
    fn decode<'m>(&self, message: &'m Message) -> Result<Request<'m>, WsException>;

    /// A request, or the answer to an acknowledgement the server asked for
    /// (`{"ack": N, "data": ..}` on the JSON protocol). By default every message is a
    /// request ([`decode`](Self::decode)): a format whose clients answer the server's
    /// `emit_with_ack` overrides this.
    ///
    /// # Errors
    ///
    /// As [`decode`](Self::decode).
    ///
    /// # Examples
    ///
    /// ```
    /// use axum::extract::ws::Message;
    /// use ws_gateway_axum::{Codec, JsonCodec};
    /// use ws_gateway_core::transport::Incoming;
    ///
    /// let answer = Message::Text(r#"{"ack":4,"data":true}"#.into());
    /// assert!(matches!(JsonCodec::new().decode_incoming(&answer), Ok(Incoming::Answer(_))));
    /// ```
    fn decode_incoming<'m>(&self, message: &'m Message) -> Result<Incoming<'m>, WsException> {
        self.decode(message).map(Incoming::Request)
    }

    /// The message that carries an outgoing frame.
    fn encode(&self, frame: Frame) -> Message;

    /// Whether every outgoing frame is a text message of the frame's own bytes
    /// ([`Frame::as_bytes`]), unchanged. Then the connection writes those bytes itself and
    /// [`encode`](Self::encode) is not called: a frame is UTF-8 by construction, and
    /// written this way its text is not checked again for every receiver of a broadcast
    /// (making axum's `Utf8Bytes` would). `false` by default; [`JsonCodec`]'s is `true`.
    ///
    /// # Examples
    ///
    /// ```
    /// use axum::extract::ws::Message;
    /// use ws_gateway_axum::{Codec, JsonCodec};
    /// use ws_gateway_core::Frame;
    ///
    /// let codec = JsonCodec::new();
    /// assert!(codec.frames_as_text());
    /// // What the connection then writes is what `encode` would have made.
    /// let frame = Frame::event("tick", &1).unwrap();
    /// let Message::Text(text) = codec.encode(frame.clone()) else { unreachable!() };
    /// assert_eq!(text.as_bytes(), &frame.as_bytes()[..]);
    /// ```
    fn frames_as_text(&self) -> bool {
        false
    }
}

/// Turns one text frame into a request: NestJS's `messageParser` option of `WsAdapter`.
pub type MessageParser = dyn for<'a> Fn(&'a str) -> Result<Request<'a>, WsException> + Send + Sync;

/// The JSON protocol in text messages: `{"event": string, "data"?: any, "id"?: any}` in,
/// the same envelope out (NestJS's `WsAdapter`). Binary messages get an exception.
///
/// [`with_message_parser`](Self::with_message_parser) reads another shape of text frame,
/// as NestJS's `messageParser` option does; replies keep the envelope.
///
/// # Examples
///
/// ```
/// use axum::extract::ws::Message;
/// use ws_gateway_axum::{Codec, JsonCodec};
///
/// let codec = JsonCodec::new();
/// let message = Message::text(r#"{"event":"join","data":"lobby","id":1}"#);
/// let request = codec.decode(&message).unwrap();
/// assert_eq!((&*request.event, request.data().unwrap().get()), ("join", r#""lobby""#));
///
/// let err = codec.decode(&Message::binary(vec![1, 2])).unwrap_err();
/// assert!(err.message().starts_with("Binary frames are not supported"));
/// ```
#[derive(Clone, Default)]
pub struct JsonCodec {
    parser: Option<Arc<MessageParser>>,
}

impl JsonCodec {
    /// The JSON envelope both ways.
    ///
    /// # Examples
    ///
    /// ```
    /// let codec = ws_gateway_axum::JsonCodec::new();
    /// # let _ = codec;
    /// ```
    pub fn new() -> Self {
        Self::default()
    }

    /// Reads text frames with `parser` instead of the envelope: NestJS's
    /// `messageParser`. Replies, emits and exceptions keep the envelope.
    ///
    /// # Examples
    ///
    /// NestJS's e2e suite sends `["push", {"test": "test"}]`:
    ///
    /// ```
    /// use std::borrow::Cow;
    ///
    /// use axum::extract::ws::Message;
    /// use ws_gateway_axum::{Codec, JsonCodec};
    /// use ws_gateway_core::{Request, WsException};
    /// use serde_json::value::RawValue;
    ///
    /// fn tuple(text: &str) -> Result<Request<'_>, WsException> {
    ///     let (event, data): (Cow<'_, str>, &RawValue) = serde_json::from_str(text)
    ///         .map_err(|err| WsException::new(format!("expected [event, data]: {err}")))?;
    ///     Ok(Request::new(event).with_data(data))
    /// }
    ///
    /// let codec = JsonCodec::new().with_message_parser(tuple);
    /// let message = Message::text(r#"["push",{"test":"test"}]"#);
    /// let request = codec.decode(&message).unwrap();
    /// assert_eq!((&*request.event, request.data().unwrap().get()), ("push", r#"{"test":"test"}"#));
    /// ```
    #[must_use]
    pub fn with_message_parser<F>(mut self, parser: F) -> Self
    where
        F: for<'a> Fn(&'a str) -> Result<Request<'a>, WsException> + Send + Sync + 'static,
    {
        self.parser = Some(Arc::new(parser));
        self
    }
}

impl Codec for JsonCodec {
    fn decode<'m>(&self, message: &'m Message) -> Result<Request<'m>, WsException> {
        let Message::Text(text) = message else {
            return Err(FrameError::Binary.into());
        };
        match &self.parser {
            Some(parser) => parser(text.as_str()),
            None => Ok(parse(text.as_str())?),
        }
    }

    /// Answers `{"ack": N, "data": ..}` in the envelope; with a
    /// [message parser](Self::with_message_parser), every text frame is a request.
    fn decode_incoming<'m>(&self, message: &'m Message) -> Result<Incoming<'m>, WsException> {
        match (message, &self.parser) {
            (Message::Text(text), None) => Ok(parse_incoming(text.as_str())?),
            _ => self.decode(message).map(Incoming::Request),
        }
    }

    fn encode(&self, frame: Frame) -> Message {
        // Frames are serde_json output: always UTF-8.
        match Utf8Bytes::try_from(frame.into_bytes()) {
            Ok(text) => Message::Text(text),
            Err(_) => Message::Text(Utf8Bytes::from_static("")),
        }
    }

    /// `true`: a frame goes out as its own text, whatever the message parser.
    fn frames_as_text(&self) -> bool {
        true
    }
}

impl fmt::Debug for JsonCodec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JsonCodec")
            .field(
                "message_parser",
                &self.parser.as_ref().map(|_| Cow::Borrowed("..")),
            )
            .finish()
    }
}
