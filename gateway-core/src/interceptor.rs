//! [`Interceptor`]: code around a handler, NestJS's `NestInterceptor`.

use std::future::Future;
use std::sync::Arc;

use crate::dispatch::{Context, Dispatch, Outcome};
use crate::guard::BoxFuture;

/// Runs around a handler: code before it, then [`Next::run`] (the rest of the pipeline:
/// inner interceptors, pipes, the handler), then a mapping of what it returned.
///
/// An interceptor may also answer without calling `next` at all (a cache), or fail.
/// Interceptors run after guards: global ones outermost, then the gateway's, then the
/// method's (`#[use_interceptors(A, B)]`).
///
/// # Examples
///
/// The guide's transform interceptor: every reply's data becomes
/// `{"data": <data>, "timestamp": <ms since epoch>}`.
///
/// ```
/// use ws_gateway_core::{Context, Interceptor, Next, Outcome};
///
/// struct TransformInterceptor;
///
/// impl Interceptor for TransformInterceptor {
///     async fn intercept(&self, _cx: &Context<'_>, next: Next<'_>) -> Outcome {
///         let reply = next.run().await?;
///         let now = std::time::SystemTime::now()
///             .duration_since(std::time::UNIX_EPOCH)
///             .map_or(0, |d| d.as_millis() as u64);
///         Ok(reply.map_data(move |data| serde_json::json!({"data": data, "timestamp": now})))
///     }
/// }
/// ```
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not an interceptor",
    label = "not an interceptor",
    note = "implement `ws_gateway_core::Interceptor` for `{Self}`: `async fn intercept(&self, cx: &Context<'_>, next: Next<'_>) -> Outcome`"
)]
pub trait Interceptor: Send + Sync + 'static {
    /// Handles the message, calling `next.run()` at most once.
    fn intercept(&self, cx: &Context<'_>, next: Next<'_>) -> impl Future<Output = Outcome> + Send;
}

pub(crate) trait ErasedInterceptor: Send + Sync {
    fn intercept<'a>(&'a self, cx: &'a Context<'_>, next: Next<'a>) -> BoxFuture<'a, Outcome>;
}

impl<I: Interceptor> ErasedInterceptor for I {
    fn intercept<'a>(&'a self, cx: &'a Context<'_>, next: Next<'a>) -> BoxFuture<'a, Outcome> {
        Box::pin(Interceptor::intercept(self, cx, next))
    }
}

/// A shared interceptor, ready to be attached to a scope.
#[derive(Clone)]
pub struct InterceptorRef(pub(crate) Arc<dyn ErasedInterceptor>);

impl InterceptorRef {
    /// Wraps an interceptor (what `#[use_interceptors(..)]` and `use_global_interceptor` do).
    ///
    /// ```
    /// use ws_gateway_core::LoggingInterceptor;
    /// use ws_gateway_core::__private::{InterceptorRef, Layers};
    ///
    /// let layers = Layers {
    ///     interceptors: vec![InterceptorRef::new(LoggingInterceptor)],
    ///     ..Layers::default()
    /// };
    /// assert_eq!(layers.interceptors.len(), 1);
    /// ```
    pub fn new(interceptor: impl Interceptor) -> Self {
        Self(Arc::new(interceptor))
    }
}

impl std::fmt::Debug for InterceptorRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("InterceptorRef(..)")
    }
}

/// The rest of the pipeline, handed to an [`Interceptor`].
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// use ws_gateway_core::prelude::*;
/// use ws_gateway_core::Handshake;
///
/// /// Adds one to every reply.
/// struct PlusOne;
///
/// impl Interceptor for PlusOne {
///     async fn intercept(&self, _cx: &Context<'_>, next: Next<'_>) -> Outcome {
///         let reply = next.run().await?;
///         Ok(reply.map_data(|n| serde_json::json!(n.as_u64().unwrap_or(0) + 1)))
///     }
/// }
///
/// #[websocket_gateway(path = "/doc-next")]
/// struct Count;
///
/// #[websocket_gateway]
/// impl Count {
///     #[subscribe("n")]
///     #[use_interceptors(PlusOne)]
///     fn n(&self, n: u64) -> u64 {
///         n
///     }
/// }
///
/// let app = GatewayApp::new().gateway::<Count>().build().unwrap();
/// let gw = &app.gateways()[0];
/// let (client, _queue) = gw.open(Handshake::default(), 8);
/// let answer = gw.handle_json(&client, r#"{"event":"n","data":41}"#).answer().await;
/// assert_eq!(answer.frame().unwrap().as_str(), r#"{"event":"n","data":42}"#);
/// # }
/// ```
pub struct Next<'a> {
    pub(crate) rest: &'a [InterceptorRef],
    pub(crate) cx: &'a Context<'a>,
    pub(crate) handler: &'a (dyn Fn(&Context<'_>) -> Dispatch + Send + Sync),
}

impl<'a> Next<'a> {
    /// Runs the inner interceptors, the pipes and the handler.
    pub async fn run(self) -> Outcome {
        match self.rest.split_first() {
            Some((first, rest)) => {
                let next = Next {
                    rest,
                    cx: self.cx,
                    handler: self.handler,
                };
                first.0.intercept(self.cx, next).await
            }
            None => (self.handler)(self.cx).outcome().await,
        }
    }
}

impl std::fmt::Debug for Next<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Next")
            .field("interceptors_left", &self.rest.len())
            .finish_non_exhaustive()
    }
}
