//! [`ExceptionFilter`]: decides what a client receives for an error, NestJS's
//! `@Catch()` filters.

use std::borrow::Cow;
use std::sync::Arc;

use crate::client::Client;
use crate::exception::{CloseRequest, WsException};
use crate::failure::Failure;
use crate::frame::{Frame, IncomingFrame, exception_frame};

/// Catches errors of one type, [`Error`](Self::Error), raised anywhere in the pipeline of
/// the scopes it is attached to, and decides what the client receives: a frame, nothing,
/// and whether the socket closes.
///
/// Filters are tried closest first: the method's (`#[use_filters(A, B)]`, in order), then
/// the gateway's, then the global ones. The first whose error type matches handles the
/// error. Errors no filter takes get NestJS's `exception` frame (`BaseWsExceptionFilter`).
///
/// # Examples
///
/// ```
/// use gateway_core::{Caught, ExceptionFilter, FilterContext, WsException};
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
    note = "implement `gateway_core::ExceptionFilter` for `{Self}`, with `type Error` the error type it catches (`WsException` for all client errors)"
)]
pub trait ExceptionFilter: Send + Sync + 'static {
    /// The error type this filter catches.
    type Error: 'static;

    /// Decides what the client receives for `error`.
    fn catch(&self, error: &Self::Error, cx: &FilterContext<'_>) -> Caught;
}

/// What an exception filter sees besides the error: the client and the request.
#[derive(Debug)]
pub struct FilterContext<'a> {
    pub(crate) client: &'a Client,
    pub(crate) request: Option<&'a IncomingFrame<'a>>,
}

impl<'a> FilterContext<'a> {
    /// The client whose message failed.
    pub fn client(&self) -> &'a Client {
        self.client
    }

    /// The request, when the failure answers one that parsed.
    pub fn request(&self) -> Option<&'a IncomingFrame<'a>> {
        self.request
    }

    /// The event of the request, when there is one.
    pub fn event(&self) -> Option<&'a str> {
        self.request.map(|r| &*r.event)
    }
}

/// What a filter decided: a frame or nothing, and maybe a close.
#[derive(Debug, Clone, PartialEq)]
#[must_use]
pub struct Caught {
    pub(crate) frame: Option<Frame>,
    pub(crate) close: Option<CloseRequest>,
}

impl Caught {
    /// NestJS's `exception` frame for `err` (with `cause` and `id` from the request), and a
    /// close if `err` asked for one.
    pub fn exception(cx: &FilterContext<'_>, err: &WsException) -> Self {
        Self {
            frame: Some(exception_frame(err, cx.request)),
            close: err.close_request().cloned(),
        }
    }

    /// This frame.
    pub fn frame(frame: Frame) -> Self {
        Self {
            frame: Some(frame),
            close: None,
        }
    }

    /// Nothing at all: the error is swallowed.
    pub fn nothing() -> Self {
        Self {
            frame: None,
            close: None,
        }
    }

    /// Also closes the socket, after the frame if there is one.
    pub fn close(mut self, code: u16, reason: impl Into<Cow<'static, str>>) -> Self {
        self.close = Some(CloseRequest {
            code,
            reason: reason.into(),
        });
        self
    }

    /// The frame to send.
    pub fn frame_ref(&self) -> Option<&Frame> {
        self.frame.as_ref()
    }

    /// The close to perform.
    pub fn close_request(&self) -> Option<&CloseRequest> {
        self.close.as_ref()
    }

    /// Splits into the frame and the close.
    pub fn into_parts(self) -> (Option<Frame>, Option<CloseRequest>) {
        (self.frame, self.close)
    }

    /// What happens without any filter: the error converted into a [`WsException`] and sent
    /// as NestJS's `exception` frame.
    pub fn default_for(cx: &FilterContext<'_>, failure: Failure) -> Self {
        Self::exception(cx, &failure.into_exception())
    }
}

pub(crate) trait ErasedFilter: Send + Sync {
    fn try_catch(&self, failure: &Failure, cx: &FilterContext<'_>) -> Option<Caught>;
}

impl<F: ExceptionFilter> ErasedFilter for F {
    fn try_catch(&self, failure: &Failure, cx: &FilterContext<'_>) -> Option<Caught> {
        failure
            .downcast_ref::<F::Error>()
            .map(|err| self.catch(err, cx))
    }
}

/// A shared exception filter, ready to be attached to a scope.
#[derive(Clone)]
pub struct FilterRef(pub(crate) Arc<dyn ErasedFilter>);

impl FilterRef {
    /// Wraps a filter.
    pub fn new(filter: impl ExceptionFilter) -> Self {
        Self(Arc::new(filter))
    }
}

impl std::fmt::Debug for FilterRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("FilterRef(..)")
    }
}
