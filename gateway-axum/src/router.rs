//! [`IntoRouter`]: mounts every gateway of an [`App`] on an axum [`Router`].

use axum::Router;
use axum::routing::get;
use gateway_core::{App, GatewayRuntime, WebSocketAdapter};

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
    /// The router: one upgrade route per gateway path, answering WebSocket handshakes.
    ///
    /// # Examples
    ///
    /// A handshake on a gateway's path succeeds; other paths are not routed:
    ///
    /// ```
    /// use gateway_axum::prelude::*;
    /// use tokio_tungstenite::tungstenite::Error;
    ///
    /// #[websocket_gateway(path = "/doc-into-router")]
    /// struct Routed;
    ///
    /// #[websocket_gateway]
    /// impl Routed {}
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let app = GatewayApp::new().gateway::<Routed>().build().unwrap();
    /// let router: axum::Router = app.into_router();
    /// let listener = gateway_axum::bind("127.0.0.1:0".parse().unwrap()).unwrap();
    /// let addr = listener.local_addr().unwrap();
    /// tokio::spawn(gateway_axum::serve(listener, router));
    ///
    /// let routed = tokio_tungstenite::connect_async(format!("ws://{addr}/doc-into-router")).await;
    /// assert!(routed.is_ok());
    /// let elsewhere = tokio_tungstenite::connect_async(format!("ws://{addr}/elsewhere")).await;
    /// let Err(Error::Http(response)) = elsewhere else { panic!("not refused") };
    /// assert_eq!(response.status(), 404);
    /// # }
    /// ```
    fn into_router<S: Clone + Send + Sync + 'static>(self) -> Router<S>;
}

impl IntoRouter for App {
    fn into_router<S: Clone + Send + Sync + 'static>(self) -> Router<S> {
        self.gateways()
            .iter()
            .fold(Router::new(), |router, gateway| {
                route(router, gateway, &self)
            })
    }
}

/// Adds the upgrade route of one gateway.
fn route<S: Clone + Send + Sync + 'static>(
    router: Router<S>,
    gateway: &GatewayRuntime,
    app: &App,
) -> Router<S> {
    let mounted = Mounted {
        gateway: gateway.clone(),
        config: app.config().clone(),
        connections: app.connections().clone(),
    };
    router.route(gateway.path(), get(upgrade).with_state(mounted))
}

/// The default [`WebSocketAdapter`]: NestJS's `WsAdapter` JSON protocol on plain
/// WebSockets, one upgrade route per gateway path. [`IntoRouter::into_router`] is this
/// adapter's [`mount`](WebSocketAdapter::mount).
///
/// # Examples
///
/// ```
/// use gateway_axum::prelude::*;
/// use gateway_axum::{JsonAdapter, WebSocketAdapter};
///
/// #[websocket_gateway(path = "/plain")]
/// struct Plain;
///
/// #[websocket_gateway]
/// impl Plain {}
///
/// let app = GatewayApp::new().gateway::<Plain>().build().unwrap();
/// let router: axum::Router = JsonAdapter.mount(&app);
/// # let _ = router;
/// ```
#[derive(Clone, Copy, Debug, Default)]
pub struct JsonAdapter;

impl WebSocketAdapter for JsonAdapter {
    type Server = Router;

    /// An empty router, to which [`bind`](WebSocketAdapter::bind) adds the gateways.
    ///
    /// # Examples
    ///
    /// ```
    /// use gateway_axum::prelude::*;
    /// use gateway_axum::{JsonAdapter, WebSocketAdapter};
    ///
    /// #[websocket_gateway(path = "/doc-json-create")]
    /// struct Created;
    ///
    /// #[websocket_gateway]
    /// impl Created {}
    ///
    /// let app = GatewayApp::new().gateway::<Created>().build().unwrap();
    /// let router: axum::Router = JsonAdapter.create(&app);
    /// # let _ = router;
    /// ```
    fn create(&self, _app: &App) -> Router {
        Router::new()
    }

    /// Adds the upgrade route of `gateway` at its path.
    ///
    /// # Examples
    ///
    /// Mounting gateways one by one, as [`mount`](WebSocketAdapter::mount) does:
    ///
    /// ```
    /// use gateway_axum::prelude::*;
    /// use gateway_axum::{JsonAdapter, WebSocketAdapter};
    ///
    /// #[websocket_gateway(path = "/doc-json-bind")]
    /// struct Bound;
    ///
    /// #[websocket_gateway]
    /// impl Bound {}
    ///
    /// let app = GatewayApp::new().gateway::<Bound>().build().unwrap();
    /// let mut router: axum::Router = JsonAdapter.create(&app);
    /// for gateway in app.gateways() {
    ///     router = JsonAdapter.bind(router, gateway, &app);
    /// }
    /// assert_eq!(app.gateways()[0].path(), "/doc-json-bind");
    /// ```
    fn bind(&self, server: Router, gateway: &GatewayRuntime, app: &App) -> Router {
        route(server, gateway, app)
    }
}

impl IntoRouter for &App {
    fn into_router<S: Clone + Send + Sync + 'static>(self) -> Router<S> {
        self.clone().into_router()
    }
}
