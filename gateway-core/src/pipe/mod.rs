//! [`Pipe`]: transforms or validates a handler's message body before the handler runs,
//! NestJS's `PipeTransform`.

mod validation;

pub use validation::{VALIDATION_FAILED, ValidationPipe};

use crate::dispatch::Context;
use crate::exception::WsException;

/// Transforms or validates a handler's message body of type `T`, after it was deserialized
/// and before the handler runs.
///
/// Attach pipes with `#[use_pipes(A, B)]` on a method, or on the gateway's `impl` block for
/// every method in it; gateway pipes run first, then the method's, each in the order
/// written. A pipe argument is an expression (`ValidationPipe`, `Trim::new()`), evaluated
/// for each message: keep it cheap.
///
/// # Examples
///
/// A pipe that trims the text of a message:
///
/// ```
/// use ws_gateway_core::{Context, Pipe, WsException};
///
/// #[derive(serde::Deserialize)]
/// struct Say {
///     text: String,
/// }
///
/// struct Trim;
///
/// impl Pipe<Say> for Trim {
///     fn transform(&self, mut value: Say, _cx: &Context<'_>) -> Result<Say, WsException> {
///         value.text = value.text.trim().to_owned();
///         Ok(value)
///     }
/// }
/// ```
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be used as a pipe for `{T}`",
    label = "not a pipe for `{T}`",
    note = "for `ValidationPipe`, derive `validator::Validate` on `{T}`; for your own pipe, implement `ws_gateway_core::Pipe<{T}>`"
)]
pub trait Pipe<T>: Send + Sync {
    /// Returns the (possibly changed) value.
    ///
    /// # Errors
    ///
    /// A [`WsException`] sent to the client instead of running the handler.
    fn transform(&self, value: T, cx: &Context<'_>) -> Result<T, WsException>;
}
