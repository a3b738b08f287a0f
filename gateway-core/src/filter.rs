//! [`ExceptionFilter`]: decides what a client receives for an error, NestJS's
//! `@Catch()` filters.

use std::borrow::Cow;
use std::sync::Arc;

use crate::client::Client;
use crate::exception::{CloseRequest, WsException};
use crate::failure::Failure;
use crate::frame::{Frame, exception_frame};
use crate::request::Request;

/// Catches errors of one type, [`Error`](Self::Error), raised anywhere in the pipeline of
/// the scopes it is attached to, and decides what the client receives: a frame, nothing,
/// and whether the socket closes.
///
/// Filters are tried closest first: the method's (`#[use_filters(A, B)]`, in order), then
/// the gateway's, then the global ones. The first whose error type matches handles the
/// error. Errors no filter takes get NestJS's `exception` frame (`BaseWsExceptionFilter`).
///
/// `type Error = Failure` catches every failure, whatever its type (NestJS's `@Catch()` with
/// no argument): it sees the [`Failure`] (its [`kind`](Failure::kind), its
/// [`type_name`](Failure::type_name), [`downcast_ref`](Failure::downcast_ref) to any type),
/// the event and the client, and answers, answers another exception, or closes:
///
/// ```
/// use ws_gateway_core::{Caught, ErrorKind, ExceptionFilter, Failure, FilterContext, Frame, WsException};
///
/// /// Every failure as `{"event":"error","data":{"event":..,"kind":..}}`; internal errors
/// /// close the socket.
/// struct Everything;
///
/// impl ExceptionFilter for Everything {
///     type Error = Failure;
///
///     fn catch(&self, failure: &Failure, cx: &FilterContext<'_>) -> Caught {
///         if let Some(err) = failure.downcast_ref::<WsException>() {
///             if err.kind() == ErrorKind::Validation {
///                 // Rethrown as another exception.
///                 return Caught::exception(cx, &WsException::new("Check your input"));
///             }
///         }
///         let data = serde_json::json!({ "event": cx.event(), "kind": failure.kind().as_str() });
///         let caught = Caught::frame(Frame::event("error", &data).unwrap());
///         if failure.kind() == ErrorKind::Internal {
///             caught.close(1011, "internal error")
///         } else {
///             caught
///         }
///     }
/// }
/// # use ws_gateway_core::prelude::*;
/// # use ws_gateway_core::Handshake;
/// # #[websocket_gateway(path = "/chat")] struct Chat;
/// # #[websocket_gateway] impl Chat {}
/// # let app = GatewayApp::new().use_global_filter(Everything).gateway::<Chat>().build().unwrap();
/// # let gw = &app.gateways()[0];
/// # let (client, _queue) = gw.open(Handshake::default(), 8);
/// let caught = gw.catch(&client, None, WsException::internal().into());
/// assert_eq!(caught.close_request().unwrap().code, 1011);
/// ```
///
/// # Examples
///
/// ```
/// use ws_gateway_core::{Caught, ExceptionFilter, FilterContext, WsException};
///
/// #[derive(Debug)]
/// enum DbError {
///     Lost,
/// }
///
/// impl From<DbError> for WsException {
///     fn from(_: DbError) -> Self {
///         WsException::internal()
///     }
/// }
///
/// /// A lost database closes the socket with 1011 so the client reconnects elsewhere.
/// struct DbErrorFilter;
///
/// impl ExceptionFilter for DbErrorFilter {
///     type Error = DbError;
///
///     fn catch(&self, error: &DbError, cx: &FilterContext<'_>) -> Caught {
///         match error {
///             DbError::Lost => Caught::exception(cx, &WsException::new("Database unavailable"))
///                 .close(1011, "database unavailable"),
///         }
///     }
/// }
/// ```
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not an exception filter",
    label = "not an exception filter",
    note = "implement `ws_gateway_core::ExceptionFilter` for `{Self}`, with `type Error` the error type it catches (`WsException` for all client errors)"
)]
pub trait ExceptionFilter: Send + Sync + 'static {
    /// The error type this filter catches.
    type Error: 'static;

    /// Decides what the client receives for `error`.
    fn catch(&self, error: &Self::Error, cx: &FilterContext<'_>) -> Caught;
}

/// What an exception filter sees besides the error: the client and the request.
///
/// # Examples
///
/// ```
/// # use ws_gateway_core::prelude::*;
/// # use ws_gateway_core::{Frame, Handshake};
/// /// Sends every client error as `{"event":"error","data":{"event":..,"message":..}}`.
/// struct ErrorEvent;
///
/// impl ExceptionFilter for ErrorEvent {
///     type Error = WsException;
///
///     fn catch(&self, error: &WsException, cx: &FilterContext<'_>) -> Caught {
///         let data = serde_json::json!({ "event": cx.event(), "message": error.message() });
///         Caught::frame(Frame::event("error", &data).unwrap())
///     }
/// }
/// # #[websocket_gateway(path = "/chat")] struct Chat;
/// # #[websocket_gateway] impl Chat {}
/// # let app = GatewayApp::new().use_global_filter(ErrorEvent).gateway::<Chat>().build().unwrap();
/// # let gw = &app.gateways()[0];
/// use ws_gateway_core::Request;
///
/// let (client, _queue) = gw.open(Handshake::default(), 8);
/// let caught = gw.catch(&client, Some(&Request::new("join")), WsException::new("Room is full").into());
/// assert_eq!(
///     caught.frame_ref().unwrap().as_str(),
///     r#"{"event":"error","data":{"event":"join","message":"Room is full"}}"#
/// );
/// ```
#[derive(Debug)]
pub struct FilterContext<'a> {
    pub(crate) client: &'a Client,
    pub(crate) request: Option<&'a Request<'a>>,
}

impl<'a> FilterContext<'a> {
    /// The client whose message failed.
    ///
    /// # Examples
    ///
    /// ```
    /// # use ws_gateway_core::prelude::*;
    /// # use ws_gateway_core::Handshake;
    /// /// Disconnects whoever triggers an error, after telling them why.
    /// struct ZeroTolerance;
    ///
    /// impl ExceptionFilter for ZeroTolerance {
    ///     type Error = WsException;
    ///
    ///     fn catch(&self, error: &WsException, cx: &FilterContext<'_>) -> Caught {
    ///         cx.client().to("moderators").emit("kicked", &cx.client().id()).ok();
    ///         Caught::exception(cx, error).close(4000, "kicked")
    ///     }
    /// }
    /// # #[websocket_gateway(path = "/chat")] struct Chat;
    /// # #[websocket_gateway] impl Chat {}
    /// # let app = GatewayApp::new().use_global_filter(ZeroTolerance).gateway::<Chat>().build().unwrap();
    /// # let gw = &app.gateways()[0];
    /// let (moderator, mut moderator_queue) = gw.open(Handshake::default(), 8);
    /// moderator.join("moderators").unwrap();
    /// let (client, _queue) = gw.open(Handshake::default(), 8);
    /// let caught = gw.catch(&client, None, WsException::new("Spam").into());
    /// assert_eq!(caught.close_request().unwrap().code, 4000);
    /// assert!(moderator_queue.try_recv().is_some());
    /// ```
    pub fn client(&self) -> &'a Client {
        self.client
    }

    /// The request, when the failure answers one that parsed.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// # use ws_gateway_core::prelude::*;
    /// # use ws_gateway_core::{Frame, Handshake};
    /// /// Answers errors with the id of the request they answer.
    /// struct Failed;
    ///
    /// impl ExceptionFilter for Failed {
    ///     type Error = WsException;
    ///
    ///     fn catch(&self, _error: &WsException, cx: &FilterContext<'_>) -> Caught {
    ///         let id = cx.request().and_then(|request| request.id()).map(|id| id.get());
    ///         Caught::frame(Frame::event("failed", &id).unwrap())
    ///     }
    /// }
    /// # #[websocket_gateway(path = "/chat")] struct Chat;
    /// # #[websocket_gateway] impl Chat {}
    /// # let app = GatewayApp::new().use_global_filter(Failed).gateway::<Chat>().build().unwrap();
    /// # let gw = &app.gateways()[0];
    /// let (client, _queue) = gw.open(Handshake::default(), 8);
    /// // An unknown event: the filter sees the request it came with.
    /// let answer = gw.handle_json(&client, r#"{"event":"x","id":12}"#).answer().await;
    /// assert_eq!(answer.frame().unwrap().as_str(), r#"{"event":"failed","data":"12"}"#);
    /// // A frame that does not parse has no request.
    /// let answer = gw.handle_json(&client, "{").answer().await;
    /// assert_eq!(answer.frame().unwrap().as_str(), r#"{"event":"failed","data":null}"#);
    /// # }
    /// ```
    pub fn request(&self) -> Option<&'a Request<'a>> {
        self.request
    }

    /// The event of the request, when there is one.
    ///
    /// # Examples
    ///
    /// ```
    /// # use ws_gateway_core::prelude::*;
    /// # use ws_gateway_core::Handshake;
    /// /// Swallows the errors of event "typing"; the others get the default frame.
    /// struct QuietTyping;
    ///
    /// impl ExceptionFilter for QuietTyping {
    ///     type Error = WsException;
    ///
    ///     fn catch(&self, error: &WsException, cx: &FilterContext<'_>) -> Caught {
    ///         match cx.event() {
    ///             Some("typing") => Caught::nothing(),
    ///             _ => Caught::exception(cx, error),
    ///         }
    ///     }
    /// }
    /// # #[websocket_gateway(path = "/chat")] struct Chat;
    /// # #[websocket_gateway] impl Chat {}
    /// # let app = GatewayApp::new().use_global_filter(QuietTyping).gateway::<Chat>().build().unwrap();
    /// # let gw = &app.gateways()[0];
    /// use ws_gateway_core::Request;
    ///
    /// let (client, _queue) = gw.open(Handshake::default(), 8);
    /// let typing = gw.catch(&client, Some(&Request::new("typing")), WsException::new("x").into());
    /// assert!(typing.frame_ref().is_none());
    /// let other = gw.catch(&client, Some(&Request::new("send")), WsException::new("x").into());
    /// assert!(other.frame_ref().is_some());
    /// ```
    pub fn event(&self) -> Option<&'a str> {
        self.request.map(|r| &*r.event)
    }
}

/// What a filter decided: a frame or nothing, and maybe a close.
///
/// # Examples
///
/// ```
/// use ws_gateway_core::{Caught, Frame};
///
/// let caught = Caught::frame(Frame::event("oops", &"try again").unwrap()).close(1011, "restarting");
/// let (frame, close) = caught.into_parts();
/// assert_eq!(frame.unwrap().as_str(), r#"{"event":"oops","data":"try again"}"#);
/// assert_eq!(close.unwrap().code, 1011);
/// ```
#[derive(Debug, Clone, PartialEq)]
#[must_use]
pub struct Caught {
    pub(crate) frame: Option<Frame>,
    pub(crate) close: Option<CloseRequest>,
}

impl Caught {
    /// NestJS's `exception` frame for `err` (with `cause` and `id` from the request), and a
    /// close if `err` asked for one.
    ///
    /// # Examples
    ///
    /// ```
    /// # use ws_gateway_core::prelude::*;
    /// # use ws_gateway_core::Handshake;
    /// /// Hides the details of internal errors.
    /// struct Sanitize;
    ///
    /// impl ExceptionFilter for Sanitize {
    ///     type Error = WsException;
    ///
    ///     fn catch(&self, error: &WsException, cx: &FilterContext<'_>) -> Caught {
    ///         Caught::exception(cx, &WsException::new("Something went wrong"))
    ///     }
    /// }
    /// # #[websocket_gateway(path = "/chat")] struct Chat;
    /// # #[websocket_gateway] impl Chat {}
    /// # let app = GatewayApp::new().use_global_filter(Sanitize).gateway::<Chat>().build().unwrap();
    /// # let gw = &app.gateways()[0];
    /// let (client, _queue) = gw.open(Handshake::default(), 8);
    /// let request = ws_gateway_core::frame::parse(r#"{"event":"x","id":1}"#).unwrap();
    /// let caught = gw.catch(&client, Some(&request), WsException::new("db: timeout").into());
    /// assert_eq!(
    ///     caught.frame_ref().unwrap().as_str(),
    ///     r#"{"event":"exception","data":{"status":"error","message":"Something went wrong","cause":{"pattern":"x","data":null}},"id":1}"#
    /// );
    /// ```
    pub fn exception(cx: &FilterContext<'_>, err: &WsException) -> Self {
        Self {
            frame: Some(exception_frame(err, cx.request)),
            close: err.close_request().cloned(),
        }
    }

    /// This frame.
    ///
    /// # Examples
    ///
    /// ```
    /// use ws_gateway_core::{Caught, Frame};
    ///
    /// let frame = Frame::event("oops", &()).unwrap();
    /// let caught = Caught::frame(frame.clone());
    /// assert_eq!(caught.frame_ref(), Some(&frame));
    /// assert!(caught.close_request().is_none());
    /// ```
    pub fn frame(frame: Frame) -> Self {
        Self {
            frame: Some(frame),
            close: None,
        }
    }

    /// Nothing at all: the error is swallowed.
    ///
    /// # Examples
    ///
    /// ```
    /// use ws_gateway_core::Caught;
    ///
    /// let caught = Caught::nothing();
    /// assert_eq!(caught.into_parts(), (None, None));
    /// ```
    pub fn nothing() -> Self {
        Self {
            frame: None,
            close: None,
        }
    }

    /// Also closes the socket, after the frame if there is one.
    ///
    /// # Examples
    ///
    /// ```
    /// use ws_gateway_core::Caught;
    ///
    /// // Close without a word.
    /// let caught = Caught::nothing().close(1008, "policy violation");
    /// let close = caught.close_request().unwrap();
    /// assert_eq!((close.code, &*close.reason), (1008, "policy violation"));
    /// assert!(caught.frame_ref().is_none());
    /// ```
    pub fn close(mut self, code: u16, reason: impl Into<Cow<'static, str>>) -> Self {
        self.close = Some(CloseRequest {
            code,
            reason: reason.into(),
        });
        self
    }

    /// The frame to send.
    ///
    /// # Examples
    ///
    /// ```
    /// use ws_gateway_core::{Caught, Frame};
    ///
    /// assert!(Caught::nothing().frame_ref().is_none());
    /// let caught = Caught::frame(Frame::event("oops", &1).unwrap());
    /// assert_eq!(caught.frame_ref().unwrap().as_str(), r#"{"event":"oops","data":1}"#);
    /// ```
    pub fn frame_ref(&self) -> Option<&Frame> {
        self.frame.as_ref()
    }

    /// The close to perform.
    ///
    /// # Examples
    ///
    /// ```
    /// use ws_gateway_core::Caught;
    ///
    /// assert!(Caught::nothing().close_request().is_none());
    /// assert_eq!(Caught::nothing().close(4001, "bye").close_request().map(|c| c.code), Some(4001));
    /// ```
    pub fn close_request(&self) -> Option<&CloseRequest> {
        self.close.as_ref()
    }

    /// Splits into the frame and the close.
    ///
    /// # Examples
    ///
    /// ```
    /// use ws_gateway_core::{Caught, Frame};
    ///
    /// let (frame, close) = Caught::frame(Frame::event("oops", &1).unwrap()).into_parts();
    /// assert!(frame.is_some());
    /// assert!(close.is_none());
    /// ```
    pub fn into_parts(self) -> (Option<Frame>, Option<CloseRequest>) {
        (self.frame, self.close)
    }

    /// What happens without any filter: the error converted into a [`WsException`] and sent
    /// as NestJS's `exception` frame.
    ///
    /// # Examples
    ///
    /// ```
    /// # use ws_gateway_core::prelude::*;
    /// # use ws_gateway_core::Handshake;
    /// /// Logs every client error, then lets the default frame through.
    /// struct LogErrors;
    ///
    /// impl ExceptionFilter for LogErrors {
    ///     type Error = WsException;
    ///
    ///     fn catch(&self, error: &WsException, cx: &FilterContext<'_>) -> Caught {
    ///         eprintln!("client {} failed: {error}", cx.client().id());
    ///         Caught::default_for(cx, error.clone().into())
    ///     }
    /// }
    /// # #[websocket_gateway(path = "/chat")] struct Chat;
    /// # #[websocket_gateway] impl Chat {}
    /// # let app = GatewayApp::new().use_global_filter(LogErrors).gateway::<Chat>().build().unwrap();
    /// # let gw = &app.gateways()[0];
    /// let (client, _queue) = gw.open(Handshake::default(), 8);
    /// let caught = gw.catch(&client, None, WsException::new("nope").into());
    /// assert_eq!(
    ///     caught.frame_ref().unwrap().as_str(),
    ///     r#"{"event":"exception","data":{"status":"error","message":"nope"}}"#
    /// );
    /// ```
    pub fn default_for(cx: &FilterContext<'_>, failure: Failure) -> Self {
        Self::exception(cx, &failure.into_exception())
    }
}

pub(crate) trait ErasedFilter: Send + Sync {
    fn try_catch(&self, failure: &Failure, cx: &FilterContext<'_>) -> Option<Caught>;
}

impl<F: ExceptionFilter> ErasedFilter for F {
    fn try_catch(&self, failure: &Failure, cx: &FilterContext<'_>) -> Option<Caught> {
        // `type Error = Failure` catches everything: the failure itself is its error.
        let any: &dyn std::any::Any = failure;
        any.downcast_ref::<F::Error>()
            .or_else(|| failure.downcast_ref::<F::Error>())
            .map(|err| self.catch(err, cx))
    }
}

/// A shared exception filter, ready to be attached to a scope.
#[derive(Clone)]
pub struct FilterRef(pub(crate) Arc<dyn ErasedFilter>);

impl FilterRef {
    /// Wraps a filter.
    ///
    /// # Examples
    ///
    /// ```
    /// use ws_gateway_core::__private::FilterRef;
    /// use ws_gateway_core::{Caught, ExceptionFilter, FilterContext, WsException};
    ///
    /// struct Swallow;
    ///
    /// impl ExceptionFilter for Swallow {
    ///     type Error = WsException;
    ///
    ///     fn catch(&self, _error: &WsException, _cx: &FilterContext<'_>) -> Caught {
    ///         Caught::nothing()
    ///     }
    /// }
    ///
    /// // One instance, shared by every scope it is attached to.
    /// let filter = FilterRef::new(Swallow);
    /// let again = filter.clone();
    /// assert_eq!(format!("{again:?}"), "FilterRef(..)");
    /// ```
    pub fn new(filter: impl ExceptionFilter) -> Self {
        Self(Arc::new(filter))
    }
}

impl std::fmt::Debug for FilterRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("FilterRef(..)")
    }
}
