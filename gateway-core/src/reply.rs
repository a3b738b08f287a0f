//! What a handler returns: [`WsResponse`], [`IntoReply`], and how a return value becomes a frame.
//!
//! | the handler returns | the client receives |
//! |---|---|
//! | `()`, `None` | nothing |
//! | any `T: Serialize` | `{"event": <the request's event>, "data": T}` |
//! | [`WsResponse<T>`] | `{"event": <its event>, "data": T}` |
//! | `Result<T, E>` with `E: Into<WsException>` | `Ok` as above, `Err` as an `exception` frame |
//! | a `Stream` of any of the above | one frame per item, as it comes (NestJS's `Observable`) |
//!
//! A request that carried an `"id"` gets it back in every reply frame.

use std::borrow::Cow;
use std::fmt;

use serde::ser::{self, Impossible, Serialize, SerializeStruct, Serializer};
use serde_json::value::RawValue;

use crate::frame::{Frame, write_head, write_tail};

/// A reply under an event of the handler's choosing, NestJS's `WsResponse`.
///
/// # Examples
///
/// ```
/// use ws_gateway_core::prelude::*;
///
/// #[websocket_gateway(path = "/math")]
/// struct MathGateway;
///
/// #[websocket_gateway]
/// impl MathGateway {
///     /// Answers `{"event":"sum","data":<total>}`.
///     #[subscribe("add")]
///     fn add(&self, numbers: Vec<i64>) -> WsResponse<i64> {
///         WsResponse::new("sum", numbers.iter().sum())
///     }
/// }
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WsResponse<T> {
    event: Cow<'static, str>,
    data: T,
}

/// In generated documentation (AsyncAPI), a `WsResponse<T>` is described by its data.
#[cfg(feature = "asyncapi")]
#[cfg_attr(docsrs, doc(cfg(feature = "asyncapi")))]
impl<T: schemars::JsonSchema> schemars::JsonSchema for WsResponse<T> {
    fn schema_name() -> Cow<'static, str> {
        T::schema_name()
    }

    fn schema_id() -> Cow<'static, str> {
        T::schema_id()
    }

    fn inline_schema() -> bool {
        T::inline_schema()
    }

    fn json_schema(generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
        T::json_schema(generator)
    }
}

/// The struct name by which the reply encoder recognises a [`WsResponse`] among
/// serializable values, wherever it sits (`Result<WsResponse<T>, E>`, `Option<..>`, streams).
const WS_RESPONSE: &str = "$ws_gateway_core::WsResponse";

impl<T> WsResponse<T> {
    /// A reply `{"event": event, "data": data}`.
    ///
    /// # Examples
    ///
    /// ```
    /// use ws_gateway_core::WsResponse;
    ///
    /// let reply = WsResponse::new("sum", 6);
    /// assert_eq!(serde_json::to_string(&reply).unwrap(), r#"{"event":"sum","data":6}"#);
    /// ```
    pub fn new(event: impl Into<Cow<'static, str>>, data: T) -> Self {
        Self {
            event: event.into(),
            data,
        }
    }

    /// The event name of the reply.
    ///
    /// # Examples
    ///
    /// ```
    /// use ws_gateway_core::WsResponse;
    ///
    /// let reply = WsResponse::new(format!("room:{}", "a"), ());
    /// assert_eq!(reply.event(), "room:a");
    /// ```
    pub fn event(&self) -> &str {
        &self.event
    }

    /// The data of the reply.
    ///
    /// # Examples
    ///
    /// ```
    /// use ws_gateway_core::WsResponse;
    ///
    /// assert_eq!(WsResponse::new("sum", 6).data(), &6);
    /// ```
    pub fn data(&self) -> &T {
        &self.data
    }

    /// The data of the reply, by value.
    ///
    /// # Examples
    ///
    /// ```
    /// use ws_gateway_core::WsResponse;
    ///
    /// // Handlers are plain methods: unit tests read what they returned.
    /// let reply = WsResponse::new("names", vec!["a".to_owned()]);
    /// assert_eq!(reply.into_data(), ["a"]);
    /// ```
    pub fn into_data(self) -> T {
        self.data
    }
}

/// Serializes as `{"event": ..., "data": ...}`.
impl<T: Serialize> Serialize for WsResponse<T> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut s = serializer.serialize_struct(WS_RESPONSE, 2)?;
        s.serialize_field("event", &self.event)?;
        s.serialize_field("data", &self.data)?;
        s.end()
    }
}

/// A value a `#[subscribe]` handler may return: every type that implements `Serialize`.
///
/// `Result`s and `Stream`s are handled before this trait is consulted; see the
/// [module documentation](crate::reply) for the whole table.
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be returned from a `#[subscribe]` handler",
    label = "not a reply",
    note = "return `()`, a type that implements `serde::Serialize`, `WsResponse<T>`, `Result<T, E>` with `E: Into<WsException>`, or a `Stream` of those"
)]
pub trait IntoReply: Serialize {}

#[diagnostic::do_not_recommend]
impl<T: Serialize + ?Sized> IntoReply for T {}

/// Where replies to one request go: the event they answer and the request's `id`.
///
/// # Examples
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// use ws_gateway_core::prelude::*;
/// use ws_gateway_core::Handshake;
/// use ws_gateway_core::transport::Outbound;
///
/// /// Answers each request twice: "started" at once, then the handler's reply.
/// struct Started;
///
/// impl Interceptor for Started {
///     async fn intercept(&self, cx: &Context<'_>, next: Next<'_>) -> Outcome {
///         let to = cx.reply_to(); // owned: may move into a spawned task
///         if let (Some(client), Ok(Some(frame))) = (cx.client(), to.encode("started")) {
///             client.send_frame(frame).ok();
///         }
///         next.run().await
///     }
/// }
///
/// #[websocket_gateway(path = "/jobs")]
/// struct Jobs;
/// #[websocket_gateway]
/// impl Jobs {
///     #[subscribe("run")]
///     fn run(&self) -> &'static str {
///         "done"
///     }
/// }
///
/// let app = GatewayApp::new().use_global_interceptor(Started).gateway::<Jobs>().build().unwrap();
/// let gw = &app.gateways()[0];
/// let (client, mut queue) = gw.open(Handshake::default(), 8);
/// let answer = gw.handle_json(&client, r#"{"event":"run","id":"j1"}"#).answer().await;
/// let Some(Outbound::Frame(started)) = queue.try_recv() else { panic!("nothing sent") };
/// assert_eq!(started.as_str(), r#"{"event":"run","data":"started","id":"j1"}"#);
/// assert_eq!(answer.frame().unwrap().as_str(), r#"{"event":"run","data":"done","id":"j1"}"#);
/// # }
/// ```
#[derive(Clone, Debug)]
pub struct ReplyTo {
    pub(crate) event: &'static str,
    pub(crate) id: Option<Box<RawValue>>,
}

impl ReplyTo {
    /// The event that was handled.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// # use ws_gateway_core::prelude::*;
    /// # use ws_gateway_core::Handshake;
    /// /// Answers with the event of the request.
    /// struct WhichEvent;
    ///
    /// impl Interceptor for WhichEvent {
    ///     async fn intercept(&self, cx: &Context<'_>, _next: Next<'_>) -> Outcome {
    ///         Reply::data(cx, cx.reply_to().event())
    ///     }
    /// }
    /// # #[websocket_gateway(path = "/chat")] struct Chat;
    /// # #[websocket_gateway] impl Chat { #[subscribe("ping")] fn ping(&self) {} }
    /// # let app = GatewayApp::new().use_global_interceptor(WhichEvent).gateway::<Chat>().build().unwrap();
    /// # let gw = &app.gateways()[0];
    /// # let (client, _queue) = gw.open(Handshake::default(), 8);
    /// let answer = gw.handle_json(&client, r#"{"event":"ping"}"#).answer().await;
    /// assert_eq!(answer.frame().unwrap().as_str(), r#"{"event":"ping","data":"ping"}"#);
    /// # }
    /// ```
    pub fn event(&self) -> &'static str {
        self.event
    }

    /// Encodes `value` as a reply frame, or `None` when the value means "no reply"
    /// (`()`, `None`).
    ///
    /// # Errors
    ///
    /// The error of `value`'s `Serialize` implementation.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// # use ws_gateway_core::prelude::*;
    /// # use ws_gateway_core::Handshake;
    /// /// Replies with what `encode` makes of a few values.
    /// struct Encodings;
    ///
    /// impl Interceptor for Encodings {
    ///     async fn intercept(&self, cx: &Context<'_>, _next: Next<'_>) -> Outcome {
    ///         let to = cx.reply_to();
    ///         let text = |frame: Option<ws_gateway_core::Frame>| frame.map(|f| f.as_str().to_owned());
    ///         let seen = [
    ///             text(to.encode(&1).unwrap()),
    ///             text(to.encode(&WsResponse::new("other", 2)).unwrap()),
    ///             text(to.encode(&()).unwrap()), // no reply
    ///         ];
    ///         Reply::data(cx, &seen)
    ///     }
    /// }
    /// # #[websocket_gateway(path = "/chat")] struct Chat;
    /// # #[websocket_gateway] impl Chat { #[subscribe("ping")] fn ping(&self) {} }
    /// # let app = GatewayApp::new().use_global_interceptor(Encodings).gateway::<Chat>().build().unwrap();
    /// # let gw = &app.gateways()[0];
    /// # let (client, _queue) = gw.open(Handshake::default(), 8);
    /// let answer = gw.handle_json(&client, r#"{"event":"ping","id":5}"#).answer().await;
    /// let seen: serde_json::Value = serde_json::from_str(answer.frame().unwrap().as_str()).unwrap();
    /// assert_eq!(seen["data"][0], r#"{"event":"ping","data":1,"id":5}"#);
    /// assert_eq!(seen["data"][1], r#"{"event":"other","data":2,"id":5}"#);
    /// assert!(seen["data"][2].is_null());
    /// # }
    /// ```
    pub fn encode<T: Serialize + ?Sized>(
        &self,
        value: &T,
    ) -> Result<Option<Frame>, serde_json::Error> {
        encode_reply(self.event, self.id.as_deref(), value)
    }
}

/// How a value is to be encoded, found by serializing it into [`Probe`], which stops at the
/// first call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Shape {
    /// `()` or `None`: no reply.
    Nothing,
    /// A `WsResponse`: it carries its own event.
    Response,
    /// [`Args`](crate::Args) or [`RawArgs`](crate::RawArgs): several arguments under the
    /// request's event.
    Args,
    /// Anything else: data under the request's event.
    Data,
}

pub(crate) fn encode_reply<T: Serialize + ?Sized>(
    event: &str,
    id: Option<&RawValue>,
    value: &T,
) -> Result<Option<Frame>, serde_json::Error> {
    let shape = match value.serialize(Probe) {
        Err(Found(shape)) => shape,
        Ok(never) => match never {},
    };
    if shape == Shape::Nothing {
        return Ok(None);
    }
    crate::frame::encode(64, |buf, attachments| {
        match shape {
            Shape::Nothing => {}
            Shape::Response => {
                crate::args::write_json(buf, value, attachments)?;
                // `{"event":..,"data":..}`: reopen it to add the id.
                buf.pop();
            }
            Shape::Args => {
                crate::frame::write_args_head(buf, event)?;
                crate::args::write_json(buf, value, attachments)?;
            }
            Shape::Data => {
                write_head(buf, event)?;
                crate::args::write_json(buf, value, attachments)?;
            }
        }
        write_tail(buf, id);
        Ok(())
    })
    .map(Some)
}

/// The only "error" [`Probe`] returns: the shape it found.
#[derive(Debug)]
struct Found(Shape);

impl fmt::Display for Found {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.0)
    }
}

impl std::error::Error for Found {}

impl ser::Error for Found {
    fn custom<M: fmt::Display>(_: M) -> Self {
        Found(Shape::Data)
    }
}

/// Uninhabited: [`Probe`] never completes a serialization.
enum Never {}

/// A serializer that classifies a value by its first call and returns at once.
struct Probe;

macro_rules! data {
    ($($method:ident($($arg:ty),*);)*) => {
        $(fn $method(self, $(_: $arg),*) -> Result<Never, Found> { Err(Found(Shape::Data)) })*
    };
}

impl Serializer for Probe {
    type Ok = Never;
    type Error = Found;
    type SerializeSeq = Impossible<Never, Found>;
    type SerializeTuple = Impossible<Never, Found>;
    type SerializeTupleStruct = Impossible<Never, Found>;
    type SerializeTupleVariant = Impossible<Never, Found>;
    type SerializeMap = Impossible<Never, Found>;
    type SerializeStruct = Impossible<Never, Found>;
    type SerializeStructVariant = Impossible<Never, Found>;

    fn serialize_unit(self) -> Result<Never, Found> {
        Err(Found(Shape::Nothing))
    }

    fn serialize_none(self) -> Result<Never, Found> {
        Err(Found(Shape::Nothing))
    }

    fn serialize_some<T: Serialize + ?Sized>(self, value: &T) -> Result<Never, Found> {
        value.serialize(self)
    }

    fn serialize_struct(
        self,
        name: &'static str,
        _: usize,
    ) -> Result<Self::SerializeStruct, Found> {
        Err(Found(if name == WS_RESPONSE {
            Shape::Response
        } else {
            Shape::Data
        }))
    }

    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        name: &'static str,
        _: &T,
    ) -> Result<Never, Found> {
        Err(Found(if name == crate::args::ARGS {
            Shape::Args
        } else {
            Shape::Data
        }))
    }

    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: &T,
    ) -> Result<Never, Found> {
        Err(Found(Shape::Data))
    }

    data! {
        serialize_bool(bool);
        serialize_i8(i8);
        serialize_i16(i16);
        serialize_i32(i32);
        serialize_i64(i64);
        serialize_i128(i128);
        serialize_u8(u8);
        serialize_u16(u16);
        serialize_u32(u32);
        serialize_u64(u64);
        serialize_u128(u128);
        serialize_f32(f32);
        serialize_f64(f64);
        serialize_char(char);
        serialize_str(&str);
        serialize_bytes(&[u8]);
        serialize_unit_struct(&'static str);
        serialize_unit_variant(&'static str, u32, &'static str);
    }

    fn serialize_seq(self, _: Option<usize>) -> Result<Self::SerializeSeq, Found> {
        Err(Found(Shape::Data))
    }

    fn serialize_tuple(self, _: usize) -> Result<Self::SerializeTuple, Found> {
        Err(Found(Shape::Data))
    }

    fn serialize_tuple_struct(
        self,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeTupleStruct, Found> {
        Err(Found(Shape::Data))
    }

    fn serialize_tuple_variant(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeTupleVariant, Found> {
        Err(Found(Shape::Data))
    }

    fn serialize_map(self, _: Option<usize>) -> Result<Self::SerializeMap, Found> {
        Err(Found(Shape::Data))
    }

    fn serialize_struct_variant(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeStructVariant, Found> {
        Err(Found(Shape::Data))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn reply<T: Serialize>(value: T, id: Option<&str>) -> Option<String> {
        let id = id.map(|id| RawValue::from_string(id.to_owned()).unwrap());
        encode_reply("ev", id.as_deref(), &value)
            .unwrap()
            .map(|f| f.as_str().to_owned())
    }

    #[test]
    fn unit_and_none_send_nothing() {
        assert_eq!(reply((), None), None);
        assert_eq!(reply(Option::<u8>::None, Some("1")), None);
    }

    #[test]
    fn data_goes_under_the_request_event() {
        assert_eq!(reply(5, None).unwrap(), r#"{"event":"ev","data":5}"#);
        assert_eq!(
            reply(json!({"a": [1]}), Some(r#""x""#)).unwrap(),
            r#"{"event":"ev","data":{"a":[1]},"id":"x"}"#
        );
        assert_eq!(
            reply(Some("s"), None).unwrap(),
            r#"{"event":"ev","data":"s"}"#
        );
    }

    #[test]
    fn responses_carry_their_own_event() {
        assert_eq!(
            reply(WsResponse::new("other", 1), Some("3")).unwrap(),
            r#"{"event":"other","data":1,"id":3}"#
        );
        assert_eq!(
            reply(Some(WsResponse::new("o", ())), None).unwrap(),
            r#"{"event":"o","data":null}"#
        );
    }

    #[test]
    fn a_nested_response_is_plain_data() {
        assert_eq!(
            reply(vec![WsResponse::new("o", 1)], None).unwrap(),
            r#"{"event":"ev","data":[{"event":"o","data":1}]}"#
        );
    }
}
