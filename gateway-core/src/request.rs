//! [`Request`]: one message as a transport decoded it, the input of the pipeline.

use std::any::Any;
use std::borrow::Cow;
use std::sync::Arc;

use serde_json::value::RawValue;

/// One message from a client, whatever its wire format: the event it names, its body as
/// JSON text, and the id its replies carry.
///
/// A transport decodes its messages into requests (the JSON envelope with
/// [`frame::parse`](crate::frame::parse), a Socket.IO packet, a MessagePack map) and hands
/// them to [`GatewayRuntime::handle`](crate::transport::GatewayRuntime::handle); exception
/// filters see the request that failed through
/// [`FilterContext::request`](crate::FilterContext::request). Each part borrows from the
/// message when it can, so that the hot path copies nothing.
///
/// # Examples
///
/// ```
/// use ws_gateway_core::Request;
/// use serde_json::value::RawValue;
///
/// let body = RawValue::from_string(r#"{"room":"a"}"#.to_owned()).unwrap();
/// let request = Request::new("join").with_data(body);
/// assert_eq!(request.event, "join");
/// assert_eq!(request.data().map(RawValue::get), Some(r#"{"room":"a"}"#));
/// assert!(request.id().is_none());
/// ```
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct Request<'a> {
    /// The event: which handler the request is for.
    pub event: Cow<'a, str>,
    /// The body, as JSON text; `None` when the message had none. Over Socket.IO, the first
    /// of the event's arguments.
    pub data: Option<Cow<'a, RawValue>>,
    /// Every argument of the message as one JSON array, for a transport whose messages have
    /// several (Socket.IO); `None` means `[data]` (`[]` without data).
    pub args: Option<Cow<'a, RawValue>>,
    /// Binary attachments: each byte string in `data` and `args` is a placeholder
    /// `{"_placeholder":true,"num":N}` for the `N`th (Socket.IO's binary events).
    pub attachments: Cow<'a, [bytes::Bytes]>,
    /// Copied into every reply (our addition to NestJS's envelope), as JSON text.
    pub id: Option<Cow<'a, RawValue>>,
    /// Where the transport sends replies to it (Socket.IO's callback), for an
    /// [`Ack`](crate::Ack) that answers later; set by the session.
    pub(crate) route: Option<RouteRef<'a>>,
}

/// A transport's route ([`Connection::Route`](crate::transport::Connection::Route)), with
/// its type erased, so that an [`Ack`](crate::Ack) can carry it back through the client's
/// queue to the session, which knows the type.
pub(crate) trait AnyRoute: Any + Send + Sync {
    fn to_arc(&self) -> Arc<dyn AnyRoute>;
    fn as_any(&self) -> &dyn Any;
}

impl<R: Clone + Send + Sync + 'static> AnyRoute for R {
    fn to_arc(&self) -> Arc<dyn AnyRoute> {
        Arc::new(self.clone())
    }

    fn as_any(&self) -> &dyn Any {
        self
    }
}

/// A request's route: borrowed from the session while the request is handled there, owned
/// once the request outlives the message.
#[derive(Clone)]
pub(crate) enum RouteRef<'a> {
    Borrowed(&'a (dyn AnyRoute + 'static)),
    Owned(Arc<dyn AnyRoute>),
}

impl RouteRef<'_> {
    pub(crate) fn to_arc(&self) -> Arc<dyn AnyRoute> {
        match self {
            RouteRef::Borrowed(route) => (**route).to_arc(),
            RouteRef::Owned(route) => Arc::clone(route),
        }
    }

    fn into_owned(self) -> RouteRef<'static> {
        RouteRef::Owned(self.to_arc())
    }
}

impl std::fmt::Debug for RouteRef<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RouteRef(..)")
    }
}

impl<'a> Request<'a> {
    /// A request for `event`, without body or id.
    ///
    /// # Examples
    ///
    /// ```
    /// let request = ws_gateway_core::Request::new("ping");
    /// assert!(request.data().is_none());
    /// ```
    pub fn new(event: impl Into<Cow<'a, str>>) -> Self {
        Self {
            event: event.into(),
            data: None,
            args: None,
            attachments: Cow::Borrowed(&[]),
            id: None,
            route: None,
        }
    }

    /// The request with this body.
    ///
    /// # Examples
    ///
    /// ```
    /// use serde_json::value::RawValue;
    ///
    /// let body: &RawValue = serde_json::from_str("[1,2]").unwrap();
    /// let request = ws_gateway_core::Request::new("sum").with_data(body);
    /// assert_eq!(request.data().unwrap().get(), "[1,2]");
    /// ```
    #[must_use]
    pub fn with_data(mut self, data: impl IntoRawJson<'a>) -> Self {
        self.data = Some(data.into_raw_json());
        self
    }

    /// The request with every argument of the message, a JSON array (see
    /// [`args`](Self::args)).
    ///
    /// # Examples
    ///
    /// ```
    /// use serde_json::value::RawValue;
    ///
    /// let args: &RawValue = serde_json::from_str(r#"["a",1]"#).unwrap();
    /// let request = ws_gateway_core::Request::new("pair").with_args(args);
    /// assert_eq!(request.args().unwrap().get(), r#"["a",1]"#);
    /// ```
    #[must_use]
    pub fn with_args(mut self, args: impl IntoRawJson<'a>) -> Self {
        self.args = Some(args.into_raw_json());
        self
    }

    /// The request with these binary attachments, which placeholders in its data and
    /// arguments refer to.
    ///
    /// # Examples
    ///
    /// ```
    /// use serde_json::value::RawValue;
    ///
    /// let args: &RawValue = serde_json::from_str(r#"[{"_placeholder":true,"num":0}]"#).unwrap();
    /// let files = [bytes::Bytes::from_static(b"\x89PNG")];
    /// let request = ws_gateway_core::Request::new("upload").with_args(args).with_attachments(&files[..]);
    /// assert_eq!(request.attachments().len(), 1);
    /// ```
    #[must_use]
    pub fn with_attachments(mut self, attachments: impl Into<Cow<'a, [bytes::Bytes]>>) -> Self {
        self.attachments = attachments.into();
        self
    }

    /// Every argument, when the transport gave them (see [`with_args`](Self::with_args)).
    ///
    /// # Examples
    ///
    /// ```
    /// assert!(ws_gateway_core::Request::new("e").args().is_none());
    /// ```
    pub fn args(&self) -> Option<&RawValue> {
        self.args.as_deref()
    }

    /// The binary attachments (see [`with_attachments`](Self::with_attachments)).
    ///
    /// # Examples
    ///
    /// ```
    /// assert!(ws_gateway_core::Request::new("e").attachments().is_empty());
    /// ```
    pub fn attachments(&self) -> &[bytes::Bytes] {
        &self.attachments
    }

    /// The request with this id, which its replies carry.
    ///
    /// # Examples
    ///
    /// ```
    /// use serde_json::value::RawValue;
    ///
    /// let id: &RawValue = serde_json::from_str("7").unwrap();
    /// let request = ws_gateway_core::Request::new("sum").with_id(id);
    /// assert_eq!(request.id().unwrap().get(), "7");
    /// ```
    #[must_use]
    pub fn with_id(mut self, id: impl IntoRawJson<'a>) -> Self {
        self.id = Some(id.into_raw_json());
        self
    }

    /// The body, if there was one.
    ///
    /// # Examples
    ///
    /// ```
    /// let request = ws_gateway_core::frame::parse(r#"{"event":"e","data":[1]}"#).unwrap();
    /// assert_eq!(request.data().unwrap().get(), "[1]");
    /// ```
    pub fn data(&self) -> Option<&RawValue> {
        self.data.as_deref()
    }

    /// The id, if there was one.
    ///
    /// # Examples
    ///
    /// ```
    /// let request = ws_gateway_core::frame::parse(r#"{"event":"e","id":"q1"}"#).unwrap();
    /// assert_eq!(request.id().unwrap().get(), r#""q1""#);
    /// ```
    pub fn id(&self) -> Option<&RawValue> {
        self.id.as_deref()
    }

    /// The request with every part copied out of the message it borrowed from.
    ///
    /// # Examples
    ///
    /// ```
    /// let owned = {
    ///     let text = String::from(r#"{"event":"e","data":1}"#);
    ///     ws_gateway_core::frame::parse(&text).unwrap().into_owned()
    /// };
    /// assert_eq!(owned.event, "e");
    /// ```
    pub fn into_owned(self) -> Request<'static> {
        Request {
            event: Cow::Owned(self.event.into_owned()),
            data: self.data.map(|data| Cow::Owned(data.into_owned())),
            args: self.args.map(|args| Cow::Owned(args.into_owned())),
            attachments: Cow::Owned(self.attachments.into_owned()),
            id: self.id.map(|id| Cow::Owned(id.into_owned())),
            route: self.route.map(RouteRef::into_owned),
        }
    }
}

/// JSON text for a [`Request`]'s body or id: borrowed (`&RawValue`) or owned
/// (`Box<RawValue>`, e.g. converted from another wire format).
///
/// # Examples
///
/// ```
/// use ws_gateway_core::Request;
///
/// let owned = serde_json::value::to_raw_value(&[1, 2]).unwrap();
/// assert_eq!(Request::new("e").with_data(owned).data().unwrap().get(), "[1,2]");
/// ```
pub trait IntoRawJson<'a> {
    /// The JSON text, borrowed or owned.
    fn into_raw_json(self) -> Cow<'a, RawValue>;
}

impl<'a> IntoRawJson<'a> for &'a RawValue {
    fn into_raw_json(self) -> Cow<'a, RawValue> {
        Cow::Borrowed(self)
    }
}

impl<'a> IntoRawJson<'a> for Box<RawValue> {
    fn into_raw_json(self) -> Cow<'a, RawValue> {
        Cow::Owned(self)
    }
}

impl<'a> IntoRawJson<'a> for Cow<'a, RawValue> {
    fn into_raw_json(self) -> Cow<'a, RawValue> {
        self
    }
}
