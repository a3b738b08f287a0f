//! The guide's `ws-exception.filter.ts`: the chat's own errors, answered with a code.

use ws_gateway::{Caught, ExceptionFilter, FilterContext, WsException};

/// The chat's own errors.
#[derive(Debug, thiserror::Error)]
pub enum ChatError {
    /// Sending to a room the client has not joined.
    #[error("Join room {0:?} before sending to it")]
    NotInRoom(String),
}

impl ChatError {
    /// A machine-readable code for clients.
    pub fn code(&self) -> &'static str {
        match self {
            ChatError::NotInRoom(_) => "NOT_IN_ROOM",
        }
    }
}

/// Without the filter, a `ChatError` is still an `exception` frame with its message.
impl From<ChatError> for WsException {
    fn from(err: ChatError) -> Self {
        WsException::new(err.to_string())
    }
}

/// Answers a [`ChatError`] with NestJS's exception frame plus a machine-readable `code`,
/// and logs it.
#[derive(Clone, Copy, Debug, Default)]
pub struct ChatExceptionFilter;

impl ExceptionFilter for ChatExceptionFilter {
    type Error = ChatError;

    fn catch(&self, error: &ChatError, cx: &FilterContext<'_>) -> Caught {
        tracing::info!(client = %cx.client().id(), event = cx.event(), "{error}");
        let exception = WsException::new(error.to_string()).with("code", error.code());
        Caught::exception(cx, &exception)
    }
}
