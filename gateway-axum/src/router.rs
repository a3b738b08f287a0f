//! [`IntoRouter`]: mounts every gateway of an [`App`] on an axum [`Router`].

use axum::Router;
use axum::routing::get;
use gateway_core::App;

use crate::upgrade::{Mounted, upgrade};

/// Turns built gateways into an axum [`Router`], one WebSocket upgrade route per gateway
/// path. Merge it with your own routes, add tower layers: the handshake is plain HTTP.
///
/// # Examples
///
/// ```
/// use gateway_axum::prelude::*;
///
/// #[websocket_gateway(path = "/ticker")]
/// struct Ticker;
///
/// #[websocket_gateway]
/// impl Ticker {}
///
/// let app = GatewayApp::new().gateway::<Ticker>().build().unwrap();
/// let server = app.server("/ticker").unwrap();
/// let router: axum::Router = app.into_router().route(
///     "/tick",
///     axum::routing::post(move || {
///         let server = server.clone();
///         async move { server.emit("tick", &"now").unwrap_or(0).to_string() }
///     }),
/// );
/// # let _ = router;
/// ```
pub trait IntoRouter {
    /// The router.
    fn into_router<S: Clone + Send + Sync + 'static>(self) -> Router<S>;
}

impl IntoRouter for App {
    fn into_router<S: Clone + Send + Sync + 'static>(self) -> Router<S> {
        self.gateways()
            .iter()
            .fold(Router::new(), |router, gateway| {
                let mounted = Mounted {
                    gateway: gateway.clone(),
                    config: self.config().clone(),
                    connections: self.connections().clone(),
                };
                router.route(gateway.path(), get(upgrade).with_state(mounted))
            })
    }
}

impl IntoRouter for &App {
    fn into_router<S: Clone + Send + Sync + 'static>(self) -> Router<S> {
        self.clone().into_router()
    }
}
