//! [`WsException`]: the error a handler returns to its client.

use std::borrow::Cow;
use std::fmt;

use serde_json::{Map, Value};

/// The message sent for any error that is not a [`WsException`] the application raised
/// on purpose: a panicking handler, a reply that failed to serialize. NestJS's wording.
///
/// ```
/// assert_eq!(ws_gateway_core::WsException::internal().message(), ws_gateway_core::INTERNAL_SERVER_ERROR);
/// ```
pub const INTERNAL_SERVER_ERROR: &str = "Internal server error";

/// An error meant for the client, NestJS's `WsException`.
///
/// A handler returns it (directly or through `Result<T, E>` with `E: Into<WsException>`);
/// the default exception filter turns it into one frame for the client that sent the message:
///
/// ```json
/// {"event":"exception","data":{"status":"error","message":"Room is full","cause":{"pattern":"join","data":{"room":"a"}}}}
/// ```
///
/// The connection stays open. Extra fields given with [`WsException::with`] appear beside
/// `status` and `message`, so a client can read structured details (for example the field
/// errors of a validation failure).
///
/// # Examples
///
/// ```
/// use ws_gateway_core::WsException;
///
/// let err = WsException::new("Room is full").with("capacity", 50);
/// assert_eq!(err.message(), "Room is full");
/// assert_eq!(err.field("capacity"), Some(&serde_json::json!(50)));
/// ```
#[derive(Clone, PartialEq)]
pub struct WsException {
    message: Cow<'static, str>,
    kind: ErrorKind,
    fields: Option<Box<Map<String, Value>>>,
    close: Option<CloseRequest>,
}

/// Where an error came from: the label of `gateway_errors_total`, and what an exception
/// filter can match on without reading the message.
///
/// Exceptions a gateway raises are [`ErrorKind::Handler`]; the framework marks its own.
///
/// ```
/// use ws_gateway_core::{ErrorKind, WsException};
///
/// assert_eq!(WsException::new("Room is full").kind(), ErrorKind::Handler);
/// assert_eq!(WsException::internal().kind(), ErrorKind::Internal);
/// assert_eq!(ErrorKind::UnknownEvent.as_str(), "unknown_event");
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// A message that is not a request: malformed, not an envelope, a body that does not
    /// deserialize, nested too deeply, a binary frame to the JSON protocol.
    BadRequest,
    /// A request for an event no handler subscribes to.
    UnknownEvent,
    /// A body that `ValidationPipe` refused.
    Validation,
    /// A guard denied the request.
    Forbidden,
    /// A panic, or a reply that failed to serialize.
    Internal,
    /// Over the connection's rate limit.
    RateLimited,
    /// Raised by the gateway's own code: a handler, a guard, a pipe, an interceptor.
    Handler,
}

impl ErrorKind {
    /// Every kind, in the order of [`as_str`](Self::as_str)'s labels.
    pub(crate) const ALL: [ErrorKind; 7] = [
        ErrorKind::BadRequest,
        ErrorKind::UnknownEvent,
        ErrorKind::Validation,
        ErrorKind::Forbidden,
        ErrorKind::Internal,
        ErrorKind::RateLimited,
        ErrorKind::Handler,
    ];

    /// The kind as a metric label: `bad_request`, `unknown_event`, `validation`,
    /// `forbidden`, `internal`, `rate_limited` or `handler`.
    ///
    /// ```
    /// assert_eq!(ws_gateway_core::ErrorKind::Forbidden.as_str(), "forbidden");
    /// ```
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::BadRequest => "bad_request",
            ErrorKind::UnknownEvent => "unknown_event",
            ErrorKind::Validation => "validation",
            ErrorKind::Forbidden => "forbidden",
            ErrorKind::Internal => "internal",
            ErrorKind::RateLimited => "rate_limited",
            ErrorKind::Handler => "handler",
        }
    }

    pub(crate) fn index(self) -> usize {
        Self::ALL
            .iter()
            .position(|k| *k == self)
            .unwrap_or(Self::ALL.len() - 1)
    }
}

/// A request to close the connection after the exception frame has been sent.
///
/// Set with [`WsException::close`]; without it an exception never closes the socket.
///
/// ```
/// let err = ws_gateway_core::WsException::new("Kicked").close(4000, "kicked by a moderator");
/// let close = err.close_request().unwrap();
/// assert_eq!((close.code, &*close.reason), (4000, "kicked by a moderator"));
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CloseRequest {
    /// The WebSocket close code (RFC 6455 §7.4), e.g. `1008` for a policy violation.
    pub code: u16,
    /// The human-readable reason sent in the close frame (at most 123 bytes are sent).
    pub reason: Cow<'static, str>,
}

impl WsException {
    /// An exception with this message and no further details.
    ///
    /// # Examples
    ///
    /// ```
    /// let err = ws_gateway_core::WsException::new("Unknown room");
    /// assert_eq!(err.to_string(), "Unknown room");
    /// ```
    pub fn new(message: impl Into<Cow<'static, str>>) -> Self {
        Self::of_kind(ErrorKind::Handler, message)
    }

    /// An exception of the framework's own, marked with its kind.
    pub(crate) fn of_kind(kind: ErrorKind, message: impl Into<Cow<'static, str>>) -> Self {
        Self {
            message: message.into(),
            kind,
            fields: None,
            close: None,
        }
    }

    /// Where the exception came from.
    ///
    /// # Examples
    ///
    /// ```
    /// use ws_gateway_core::{ErrorKind, WsException};
    ///
    /// assert_eq!(WsException::new("nope").kind(), ErrorKind::Handler);
    /// ```
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// The exception, marked as of this kind: what transports use for a message that
    /// does not decode ([`ErrorKind::BadRequest`]).
    ///
    /// # Examples
    ///
    /// ```
    /// use ws_gateway_core::{ErrorKind, WsException};
    ///
    /// let err = WsException::new("Malformed MessagePack").with_kind(ErrorKind::BadRequest);
    /// assert_eq!(err.kind(), ErrorKind::BadRequest);
    /// ```
    #[must_use]
    pub fn with_kind(mut self, kind: ErrorKind) -> Self {
        self.kind = kind;
        self
    }

    /// The exception NestJS sends for errors that were not meant for the client:
    /// `"Internal server error"`.
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(ws_gateway_core::WsException::internal().message(), "Internal server error");
    /// ```
    pub fn internal() -> Self {
        Self::of_kind(ErrorKind::Internal, INTERNAL_SERVER_ERROR)
    }

    /// Adds a field to the exception payload, beside `status` and `message`.
    ///
    /// A value that fails to serialize is replaced by `null`. The keys `status`,
    /// `message`, `cause` and `id` are reserved by the frame and are ignored here.
    ///
    /// # Examples
    ///
    /// ```
    /// use ws_gateway_core::WsException;
    /// use serde_json::json;
    ///
    /// let err = WsException::new("Validation failed").with("errors", json!({"text": ["too long"]}));
    /// assert_eq!(err.field("errors"), Some(&json!({"text": ["too long"]})));
    /// ```
    #[must_use]
    pub fn with(mut self, key: impl Into<String>, value: impl serde::Serialize) -> Self {
        let key = key.into();
        if matches!(key.as_str(), "status" | "message" | "cause" | "id") {
            return self;
        }
        let value = serde_json::to_value(value).unwrap_or(Value::Null);
        let fields = self.fields.get_or_insert_with(Default::default);
        fields.insert(key, value);
        // Sorted whatever the build: with serde_json's `preserve_order` (which any crate of
        // the build may turn on) a `Map` keeps insertion order instead.
        fields.sort_keys();
        self
    }

    /// Asks for the connection to be closed with this code and reason once the exception
    /// frame is sent. Without it, an exception never closes the socket.
    ///
    /// # Examples
    ///
    /// ```
    /// let err = ws_gateway_core::WsException::new("Banned").close(4003, "banned");
    /// assert_eq!(err.close_request().map(|c| c.code), Some(4003));
    /// ```
    #[must_use]
    pub fn close(mut self, code: u16, reason: impl Into<Cow<'static, str>>) -> Self {
        self.close = Some(CloseRequest {
            code,
            reason: reason.into(),
        });
        self
    }

    /// The message sent to the client.
    ///
    /// ```
    /// assert_eq!(ws_gateway_core::WsException::new("Room is full").message(), "Room is full");
    /// ```
    pub fn message(&self) -> &str {
        &self.message
    }

    /// One extra field of the payload, if it was set with [`WsException::with`].
    ///
    /// ```
    /// let err = ws_gateway_core::WsException::new("Too fast").with("retry_after", 5);
    /// assert_eq!(err.field("retry_after"), Some(&serde_json::json!(5)));
    /// assert_eq!(err.field("other"), None);
    /// ```
    pub fn field(&self, key: &str) -> Option<&Value> {
        self.fields.as_ref()?.get(key)
    }

    /// All extra fields of the payload, sorted by key.
    ///
    /// ```
    /// let err = ws_gateway_core::WsException::new("No").with("b", 2).with("a", 1);
    /// let keys: Vec<&str> = err.fields().map(|(k, _)| k).collect();
    /// assert_eq!(keys, ["a", "b"]);
    /// ```
    pub fn fields(&self) -> impl Iterator<Item = (&str, &Value)> {
        self.fields
            .iter()
            .flat_map(|map| map.iter().map(|(k, v)| (k.as_str(), v)))
    }

    /// The close request, if [`WsException::close`] was called.
    ///
    /// ```
    /// use ws_gateway_core::WsException;
    ///
    /// assert!(WsException::new("stay").close_request().is_none());
    /// assert_eq!(WsException::new("go").close(4001, "bye").close_request().unwrap().code, 4001);
    /// ```
    pub fn close_request(&self) -> Option<&CloseRequest> {
        self.close.as_ref()
    }
}

impl fmt::Debug for WsException {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut s = f.debug_struct("WsException");
        s.field("message", &self.message);
        if let Some(fields) = &self.fields {
            s.field("fields", fields);
        }
        if let Some(close) = &self.close {
            s.field("close", close);
        }
        s.finish()
    }
}

impl fmt::Display for WsException {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for WsException {}

impl From<&'static str> for WsException {
    fn from(message: &'static str) -> Self {
        Self::new(message)
    }
}

impl From<String> for WsException {
    fn from(message: String) -> Self {
        Self::new(message)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn reserved_keys_are_ignored() {
        let err = WsException::new("x")
            .with("status", "ok")
            .with("message", 1);
        assert_eq!(err.fields().count(), 0);
    }

    #[test]
    fn fields_are_listed_by_key() {
        let err = WsException::new("x").with("b", 1).with("a", json!([2]));
        let keys: Vec<_> = err.fields().map(|(k, _)| k).collect();
        assert_eq!(keys, ["a", "b"]);
    }
}
