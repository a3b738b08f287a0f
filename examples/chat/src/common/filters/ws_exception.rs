//! The guide's `ws-exception.filter.ts`: the chat's own errors, answered with a code.

use ws_gateway::{Caught, ExceptionFilter, FilterContext, RoomError, SendError, WsException};

/// The chat's own errors.
#[derive(Debug, thiserror::Error)]
pub enum ChatError {
    /// Sending to a room the client has not joined.
    #[error("Join room {0:?} before sending to it")]
    NotInRoom(String),
    /// Joining or leaving a user's own room (`@<username>`).
    #[error("Room {0:?} is reserved: names starting with @ are the users' own rooms")]
    ReservedRoom(String),
    /// Past the framework's room bounds.
    #[error(transparent)]
    Room(#[from] RoomError),
    /// An emit failed: the client reads "Internal server error", the log says why.
    #[error(transparent)]
    Send(#[from] SendError),
}

impl ChatError {
    /// A machine-readable code for clients.
    pub fn code(&self) -> &'static str {
        match self {
            ChatError::NotInRoom(_) => "NOT_IN_ROOM",
            ChatError::ReservedRoom(_) => "RESERVED_ROOM",
            ChatError::Room(_) => "ROOM_REFUSED",
            ChatError::Send(_) => "INTERNAL",
        }
    }

    /// The exception the client gets, without the code.
    fn exception(&self) -> WsException {
        match self {
            ChatError::Room(err) => err.clone().into(),
            ChatError::Send(err) => {
                tracing::error!("emit failed: {err}");
                WsException::internal()
            }
            err => WsException::new(err.to_string()),
        }
    }
}

/// Without the filter, a `ChatError` is still an `exception` frame with its message.
impl From<ChatError> for WsException {
    fn from(err: ChatError) -> Self {
        err.exception()
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
        let exception = error.exception().with("code", error.code());
        Caught::exception(cx, &exception)
    }
}
