//! [`Failure`]: an error raised while handling a message, kept with its type until an
//! exception filter has had a look at it.

use std::any::{Any, type_name};
use std::fmt;

use crate::exception::{ErrorKind, WsException};

/// An error raised by a guard, pipe, interceptor or handler: a [`WsException`] or any error
/// type of the app that converts into one.
///
/// Exception filters pick the failures they handle by type
/// ([`downcast_ref`](Self::downcast_ref)); what no filter handles is converted with
/// `Into<WsException>` and sent as NestJS's `exception` frame.
///
/// # Examples
///
/// ```
/// use ws_gateway_core::{Failure, WsException};
///
/// #[derive(Debug)]
/// struct RoomFull(u32);
///
/// impl From<RoomFull> for WsException {
///     fn from(err: RoomFull) -> Self {
///         WsException::new("Room is full").with("capacity", err.0)
///     }
/// }
///
/// let failure = Failure::new(RoomFull(50));
/// assert_eq!(failure.downcast_ref::<RoomFull>().map(|e| e.0), Some(50));
/// assert_eq!(failure.into_exception().message(), "Room is full");
/// ```
pub struct Failure {
    error: Box<dyn Caught>,
}

trait Caught: Send {
    fn as_any(&self) -> &dyn Any;
    fn into_exception(self: Box<Self>) -> WsException;
    fn type_name(&self) -> &'static str;
}

impl<E: Into<WsException> + Send + 'static> Caught for E {
    fn as_any(&self) -> &dyn Any {
        self
    }

    fn into_exception(self: Box<Self>) -> WsException {
        (*self).into()
    }

    fn type_name(&self) -> &'static str {
        type_name::<E>()
    }
}

impl Failure {
    /// Wraps an error.
    ///
    /// # Examples
    ///
    /// ```
    /// use ws_gateway_core::{Failure, WsException};
    ///
    /// struct Timeout;
    ///
    /// impl From<Timeout> for WsException {
    ///     fn from(_: Timeout) -> Self {
    ///         WsException::new("Timed out")
    ///     }
    /// }
    ///
    /// let failure = Failure::new(Timeout);
    /// assert!(failure.is::<Timeout>());
    /// assert_eq!(failure.into_exception().message(), "Timed out");
    /// ```
    pub fn new<E: Into<WsException> + Send + 'static>(error: E) -> Self {
        Self {
            error: Box::new(error),
        }
    }

    /// The error, if it is of type `E`.
    ///
    /// # Examples
    ///
    /// ```
    /// use ws_gateway_core::{Failure, WsException};
    ///
    /// let failure = Failure::from(WsException::new("Room is full").with("capacity", 50));
    /// let err = failure.downcast_ref::<WsException>().unwrap();
    /// assert_eq!(err.field("capacity"), Some(&serde_json::json!(50)));
    /// assert!(failure.downcast_ref::<std::io::Error>().is_none());
    /// ```
    pub fn downcast_ref<E: 'static>(&self) -> Option<&E> {
        self.error.as_any().downcast_ref()
    }

    /// Whether the error is of type `E`.
    ///
    /// # Examples
    ///
    /// ```
    /// use ws_gateway_core::{Failure, WsException};
    ///
    /// let failure = Failure::from(WsException::new("no"));
    /// assert!(failure.is::<WsException>());
    /// assert!(!failure.is::<String>());
    /// ```
    pub fn is<E: 'static>(&self) -> bool {
        self.error.as_any().is::<E>()
    }

    /// The type name of the error.
    ///
    /// # Examples
    ///
    /// ```
    /// use ws_gateway_core::{Failure, WsException};
    ///
    /// let failure = Failure::from(WsException::new("no"));
    /// assert!(failure.type_name().ends_with("WsException"));
    /// ```
    pub fn type_name(&self) -> &'static str {
        self.error.type_name()
    }

    /// Where the failure came from: a [`WsException`]'s own kind, and
    /// [`ErrorKind::Handler`] for any other error type (the gateway's own errors).
    ///
    /// # Examples
    ///
    /// ```
    /// use ws_gateway_core::{ErrorKind, Failure, WsException};
    ///
    /// assert_eq!(Failure::from(WsException::internal()).kind(), ErrorKind::Internal);
    /// assert_eq!(Failure::new(WsException::new("Room is full")).kind(), ErrorKind::Handler);
    /// ```
    pub fn kind(&self) -> ErrorKind {
        self.downcast_ref::<WsException>()
            .map_or(ErrorKind::Handler, WsException::kind)
    }

    /// Converts the error into the exception the client receives.
    ///
    /// # Examples
    ///
    /// ```
    /// use ws_gateway_core::{Failure, WsException};
    ///
    /// #[derive(Debug)]
    /// struct NotFound(&'static str);
    ///
    /// impl From<NotFound> for WsException {
    ///     fn from(err: NotFound) -> Self {
    ///         WsException::new(format!("{} not found", err.0))
    ///     }
    /// }
    ///
    /// let failure = Failure::new(NotFound("room"));
    /// assert_eq!(failure.to_string(), failure.type_name()); // not a WsException yet
    /// assert_eq!(failure.into_exception().message(), "room not found");
    /// ```
    pub fn into_exception(self) -> WsException {
        self.error.into_exception()
    }
}

impl From<WsException> for Failure {
    fn from(err: WsException) -> Self {
        Self::new(err)
    }
}

impl fmt::Debug for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.downcast_ref::<WsException>() {
            Some(err) => f.debug_tuple("Failure").field(err).finish(),
            None => f.debug_tuple("Failure").field(&self.type_name()).finish(),
        }
    }
}

/// The message of a [`WsException`]; the type name of any other error (convert it with
/// [`into_exception`](Failure::into_exception) for its message).
impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.downcast_ref::<WsException>() {
            Some(err) => fmt::Display::fmt(err, f),
            None => f.write_str(self.type_name()),
        }
    }
}
