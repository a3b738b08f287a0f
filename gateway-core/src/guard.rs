//! [`Guard`]: allows or denies a message before its handler runs, NestJS's `CanActivate`.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use crate::dispatch::Context;
use crate::exception::WsException;

/// The message NestJS sends when a guard denies a message.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// use ws_gateway_core::prelude::*;
/// use ws_gateway_core::{FORBIDDEN, Handshake};
///
/// struct Deny;
///
/// impl Guard for Deny {
///     async fn can_activate(&self, _cx: &Context<'_>) -> Result<bool, WsException> {
///         Ok(false)
///     }
/// }
///
/// #[websocket_gateway(path = "/doc-forbidden")]
/// struct Locked;
///
/// #[websocket_gateway]
/// impl Locked {
///     #[subscribe("open")]
///     #[use_guards(Deny)]
///     fn open(&self) {}
/// }
///
/// let app = GatewayApp::new().gateway::<Locked>().build().unwrap();
/// let gw = &app.gateways()[0];
/// let (client, _queue) = gw.open(Handshake::default(), 8);
/// let answer = gw.handle_json(&client, r#"{"event":"open"}"#).answer().await;
/// let frame = answer.frame().unwrap().as_str();
/// assert!(frame.starts_with(&format!(r#"{{"event":"exception","data":{{"status":"error","message":"{FORBIDDEN}""#)));
/// # }
/// ```
pub const FORBIDDEN: &str = "Forbidden resource";

/// Decides whether a message may reach its handler.
///
/// A guard sees the [`Context`]: the client (with its handshake headers and the identity an
/// authenticator attached), the event and the raw body. `Ok(false)` answers the client
/// with an exception `"Forbidden resource"`; `Err(e)` answers with `e`. Guards run first,
/// before interceptors, pipes and the handler: global ones, then the gateway's, then the
/// method's (`#[use_guards(A, B)]`).
///
/// # Examples
///
/// ```
/// use ws_gateway_core::{Context, Guard, Identity, WsException};
///
/// #[derive(Clone)]
/// struct User {
///     name: String,
///     admin: bool,
/// }
///
/// /// Lets only admins through.
/// struct AdminGuard;
///
/// impl Guard for AdminGuard {
///     async fn can_activate(&self, cx: &Context<'_>) -> Result<bool, WsException> {
///         let user = Identity::<User>::get(cx);
///         Ok(user.is_some_and(|u| u.admin))
///     }
/// }
/// ```
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a guard",
    label = "not a guard",
    note = "implement `ws_gateway_core::Guard` for `{Self}`: `async fn can_activate(&self, cx: &Context<'_>) -> Result<bool, WsException>`"
)]
pub trait Guard: Send + Sync + 'static {
    /// `Ok(true)` lets the message through.
    ///
    /// # Errors
    ///
    /// A [`WsException`] to send instead of the default `"Forbidden resource"`.
    fn can_activate(
        &self,
        cx: &Context<'_>,
    ) -> impl Future<Output = Result<bool, WsException>> + Send;
}

pub(crate) type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// A guard behind a pointer, as the runtime stores it.
pub(crate) trait ErasedGuard: Send + Sync {
    fn can_activate<'a>(&'a self, cx: &'a Context<'_>) -> BoxFuture<'a, Result<bool, WsException>>;
}

impl<G: Guard> ErasedGuard for G {
    fn can_activate<'a>(&'a self, cx: &'a Context<'_>) -> BoxFuture<'a, Result<bool, WsException>> {
        Box::pin(Guard::can_activate(self, cx))
    }
}

/// A shared guard, ready to be attached to a scope.
#[derive(Clone)]
pub struct GuardRef(pub(crate) Arc<dyn ErasedGuard>);

impl GuardRef {
    /// Wraps a guard (what `#[use_guards(..)]` and `use_global_guard` do).
    ///
    /// ```
    /// use ws_gateway_core::__private::{GuardRef, Layers};
    /// use ws_gateway_core::{Context, Guard, WsException};
    ///
    /// struct Allow;
    ///
    /// impl Guard for Allow {
    ///     async fn can_activate(&self, _cx: &Context<'_>) -> Result<bool, WsException> {
    ///         Ok(true)
    ///     }
    /// }
    ///
    /// let layers = Layers { guards: vec![GuardRef::new(Allow)], ..Layers::default() };
    /// assert_eq!(layers.guards.len(), 1);
    /// ```
    pub fn new(guard: impl Guard) -> Self {
        Self(Arc::new(guard))
    }
}

impl std::fmt::Debug for GuardRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("GuardRef(..)")
    }
}
