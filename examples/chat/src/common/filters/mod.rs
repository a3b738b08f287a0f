//! Exception filters.

mod ws_exception;

pub use ws_exception::{ChatError, ChatExceptionFilter};
