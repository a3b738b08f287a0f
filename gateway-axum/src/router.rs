//! [`WebSocketTransport`] and [`IntoRouter`]: every gateway of an [`App`] on an axum
//! [`Router`], one upgrade route per path.

use std::borrow::Cow;
use std::fmt;
use std::sync::Arc;

use axum::Router;
use axum::routing::get;
use ws_gateway_core::App;
use ws_gateway_core::transport::{GatewayRuntime, Transport};

use crate::codec::{Codec, JsonCodec};
use crate::upgrade::{Mounted, upgrade};

/// Turns built gateways into an axum [`Router`], one WebSocket upgrade route per gateway
/// path. Merge it with your own routes, add tower layers: the handshake is plain HTTP.
///
/// # Examples
///
/// ```
/// use ws_gateway_axum::prelude::*;
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
    /// use ws_gateway_axum::prelude::*;
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
    /// let listener = ws_gateway_axum::bind("127.0.0.1:0".parse().unwrap()).unwrap();
    /// let addr = listener.local_addr().unwrap();
    /// tokio::spawn(ws_gateway_axum::serve(listener, router).into_future());
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
        JsonTransport::default().router(&self)
    }
}

impl IntoRouter for &App {
    fn into_router<S: Clone + Send + Sync + 'static>(self) -> Router<S> {
        JsonTransport::default().router(self)
    }
}

/// A [`Transport`] on plain WebSockets in the wire format of a [`Codec`]: one upgrade route
/// per gateway path (after an optional prefix). It admits each connection under the app's
/// limits, refuses origins outside `allowed_origins` (HTTP 403), authenticates the
/// handshake (HTTP 401) before upgrading, then runs the client's
/// [`Session`](ws_gateway_core::transport::Session).
///
/// # Examples
///
/// ```
/// use ws_gateway_axum::prelude::*;
/// use ws_gateway_axum::{JsonCodec, Transport, WebSocketTransport};
///
/// #[websocket_gateway(path = "/plain")]
/// struct Plain;
///
/// #[websocket_gateway]
/// impl Plain {}
///
/// let app = GatewayApp::new().gateway::<Plain>().build().unwrap();
/// // ws://host/v2/plain
/// let router: axum::Router = WebSocketTransport::new(JsonCodec::new()).at("/v2").mount(&app);
/// # let _ = router;
/// ```
pub struct WebSocketTransport<C> {
    codec: Arc<C>,
    prefix: Cow<'static, str>,
}

/// The default transport: NestJS's `WsAdapter` JSON protocol on plain WebSockets.
/// [`IntoRouter::into_router`] is this transport's [`mount`](Transport::mount).
///
/// # Examples
///
/// NestJS's `messageParser`, for clients that send `["event", data]`:
///
/// ```
/// use std::borrow::Cow;
///
/// use ws_gateway_axum::prelude::*;
/// use ws_gateway_axum::{JsonTransport, Transport};
/// use ws_gateway_core::Request;
/// use serde_json::value::RawValue;
///
/// #[websocket_gateway(path = "/tuples")]
/// struct Tuples;
///
/// #[websocket_gateway]
/// impl Tuples {}
///
/// fn tuple(text: &str) -> Result<Request<'_>, WsException> {
///     let (event, data): (Cow<'_, str>, &RawValue) = serde_json::from_str(text)
///         .map_err(|err| WsException::new(format!("expected [event, data]: {err}")))?;
///     Ok(Request::new(event).with_data(data))
/// }
///
/// let app = GatewayApp::new().gateway::<Tuples>().build().unwrap();
/// let router: axum::Router = JsonTransport::with_message_parser(tuple).mount(&app);
/// # let _ = router;
/// ```
pub type JsonTransport = WebSocketTransport<JsonCodec>;

impl JsonTransport {
    /// Text frames read by `parser` (NestJS's `messageParser`), replies in the envelope.
    /// See [`JsonCodec::with_message_parser`].
    pub fn with_message_parser<F>(parser: F) -> Self
    where
        F: for<'a> Fn(
                &'a str,
            )
                -> Result<ws_gateway_core::Request<'a>, ws_gateway_core::WsException>
            + Send
            + Sync
            + 'static,
    {
        WebSocketTransport::with_codec(JsonCodec::new().with_message_parser(parser))
    }
}

/// The JSON protocol both ways (what `app.into_router()` serves).
///
/// # Examples
///
/// ```
/// use ws_gateway_axum::prelude::*;
/// use ws_gateway_axum::{JsonTransport, Transport};
///
/// #[websocket_gateway(path = "/doc-json-default")]
/// struct Fresh;
/// #[websocket_gateway]
/// impl Fresh {}
///
/// let app = GatewayApp::new().gateway::<Fresh>().build().unwrap();
/// let router: axum::Router = JsonTransport::default().mount(&app);
/// # let _ = router;
/// ```
impl Default for JsonTransport {
    fn default() -> Self {
        WebSocketTransport::with_codec(JsonCodec::new())
    }
}

impl<C: Codec> WebSocketTransport<C> {
    /// Gateways at their own paths, in `codec`'s wire format.
    ///
    /// # Examples
    ///
    /// ```
    /// let transport = ws_gateway_axum::WebSocketTransport::new(ws_gateway_axum::JsonCodec::new());
    /// # let _ = transport;
    /// ```
    pub fn new(codec: C) -> Self {
        Self::with_codec(codec)
    }

    fn with_codec(codec: C) -> Self {
        Self {
            codec: Arc::new(codec),
            prefix: Cow::Borrowed(""),
        }
    }

    /// Gateways at `prefix` + their paths, e.g. beside the JSON transport on one router.
    ///
    /// # Examples
    ///
    /// ```
    /// let transport = ws_gateway_axum::JsonTransport::default().at("/v1");
    /// # let _ = transport;
    /// ```
    #[must_use]
    pub fn at(mut self, prefix: impl Into<Cow<'static, str>>) -> Self {
        self.prefix = prefix.into();
        self
    }

    /// Every gateway of `app` on a router with any state type.
    fn router<S: Clone + Send + Sync + 'static>(&self, app: &App) -> Router<S> {
        app.gateways()
            .iter()
            .fold(Router::new(), |router, gateway| {
                self.route(router, gateway, app)
            })
    }

    /// Adds the upgrade route of one gateway.
    fn route<S: Clone + Send + Sync + 'static>(
        &self,
        router: Router<S>,
        gateway: &GatewayRuntime,
        app: &App,
    ) -> Router<S> {
        let mounted = Mounted {
            gateway: gateway.clone(),
            app: app.clone(),
            codec: Arc::clone(&self.codec),
        };
        let path = format!("{}{}", self.prefix, gateway.path());
        router.route(&path, get(upgrade::<C>).with_state(mounted))
    }
}

impl<C: Codec> Transport for WebSocketTransport<C> {
    type Server = Router;

    /// An empty router, to which [`bind`](Transport::bind) adds the gateways.
    ///
    /// # Examples
    ///
    /// ```
    /// use ws_gateway_axum::prelude::*;
    /// use ws_gateway_axum::{JsonTransport, Transport};
    ///
    /// #[websocket_gateway(path = "/doc-json-create")]
    /// struct Created;
    ///
    /// #[websocket_gateway]
    /// impl Created {}
    ///
    /// let app = GatewayApp::new().gateway::<Created>().build().unwrap();
    /// let router: axum::Router = JsonTransport::default().create(&app);
    /// # let _ = router;
    /// ```
    fn create(&self, _app: &App) -> Router {
        Router::new()
    }

    /// Adds the upgrade route of `gateway` at its path.
    ///
    /// # Examples
    ///
    /// Mounting gateways one by one, as [`mount`](Transport::mount) does:
    ///
    /// ```
    /// use ws_gateway_axum::prelude::*;
    /// use ws_gateway_axum::{JsonTransport, Transport};
    ///
    /// #[websocket_gateway(path = "/doc-json-bind")]
    /// struct Bound;
    ///
    /// #[websocket_gateway]
    /// impl Bound {}
    ///
    /// let app = GatewayApp::new().gateway::<Bound>().build().unwrap();
    /// let transport = JsonTransport::default();
    /// let mut router: axum::Router = transport.create(&app);
    /// for gateway in app.gateways() {
    ///     router = transport.bind(router, gateway, &app);
    /// }
    /// assert_eq!(app.gateways()[0].path(), "/doc-json-bind");
    /// ```
    fn bind(&self, server: Router, gateway: &GatewayRuntime, app: &App) -> Router {
        self.route(server, gateway, app)
    }
}

impl<C> Clone for WebSocketTransport<C> {
    fn clone(&self) -> Self {
        Self {
            codec: Arc::clone(&self.codec),
            prefix: self.prefix.clone(),
        }
    }
}

impl<C> fmt::Debug for WebSocketTransport<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WebSocketTransport")
            .field("codec", &std::any::type_name::<C>())
            .field("prefix", &self.prefix)
            .finish()
    }
}
