//! [`GatewayRuntime`]: one built gateway, as a transport adapter drives it.

use std::fmt;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::Instant;

use futures_util::{FutureExt, StreamExt};
use rustc_hash::FxHashMap;
use serde_json::value::RawValue;
use tokio::sync::watch;
use tracing::Instrument;

use crate::auth::{AuthenticatorRef, HandshakeRequest, IdentitySlot};
use crate::client::{Client, ClientSink, Handshake, OutboundQueue};
use crate::dispatch::{Context, Dispatch, Outcome, Reply};
use crate::error::BuildError;
use crate::exception::WsException;
use crate::failure::Failure;
use crate::filter::{Caught, FilterContext};
use crate::frame::{Frame, FrameError, IncomingFrame};
use crate::gateway::{GatewayHandlers, Handler, Hook};
use crate::guard::FORBIDDEN;
use crate::inject::{BuildContext, Providers};
use crate::interceptor::Next;
use crate::layers::Layers;
use crate::server::WsServer;
use crate::telemetry;

/// What the app builder hands to every gateway it builds.
pub(crate) struct AppParts<'a> {
    pub(crate) providers: &'a Providers,
    pub(crate) global: &'a Layers,
    pub(crate) authenticator: Option<AuthenticatorRef>,
}

/// A built gateway: its instance, its handler table and its server handle.
///
/// Transport adapters (gateway-axum's router, your own) drive it:
/// [`authenticate`](Self::authenticate) the upgrade request, [`open`](Self::open) a
/// client, [`connect`](Self::connect) it, [`dispatch_text`](Self::dispatch_text) its
/// frames, [`catch`](Self::catch) failures, [`disconnect`](Self::disconnect) it. Cheap to
/// clone.
///
/// # Examples
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// use gateway_core::prelude::*;
/// use gateway_core::Handshake;
///
/// #[websocket_gateway(path = "/chat")]
/// struct Chat;
///
/// #[websocket_gateway]
/// impl Chat {
///     #[subscribe("double")]
///     fn double(&self, n: u32) -> u32 {
///         n * 2
///     }
///
///     #[handle_connection]
///     fn connected(&self, client: Client) {
///         client.join("everyone");
///     }
/// }
///
/// let app = GatewayApp::new().gateway::<Chat>().build().unwrap();
/// let gw = &app.gateways()[0];
///
/// // A connection's life, without a socket: open, connect, frames, disconnect.
/// let (client, _queue) = gw.open(Handshake::default(), 8);
/// gw.connect(&client).await.unwrap();
/// assert_eq!(client.rooms(), ["everyone"]);
///
/// let text = r#"{"event":"double","data":21,"id":1}"#;
/// match gw.dispatch_text(&client, text).outcome().await {
///     Ok(Reply::Frame(frame)) => assert_eq!(frame.as_str(), r#"{"event":"double","data":42,"id":1}"#),
///     other => panic!("unexpected {other:?}"),
/// }
///
/// let text = r#"{"event":"double","data":"x"}"#;
/// let failure = gw.dispatch_text(&client, text).outcome().await.unwrap_err();
/// let caught = gw.catch(&client, Some(text), failure); // what the client receives
/// assert!(caught.frame_ref().unwrap().as_str().starts_with(r#"{"event":"exception""#));
///
/// gw.disconnect(&client).await;
/// assert_eq!(gw.server().client_count(), 0);
/// # }
/// ```
#[derive(Clone)]
pub struct GatewayRuntime {
    inner: Arc<dyn ErasedGateway>,
}

/// The part of a runtime that depends on the gateway's type.
trait ErasedGateway: Send + Sync {
    fn name(&self) -> &'static str;
    fn shared(&self) -> &Shared;
    fn method_of(&self, event: &str) -> Option<&'static str>;
    /// The event's name as the handler table holds it (`'static`), if there is a handler.
    fn event_of(&self, event: &str) -> Option<(&'static str, &telemetry::EventMetrics)>;
    fn describe(&self, generator: &mut schemars::SchemaGenerator) -> Vec<EventDoc>;
    fn filters_of(&self, event: &str) -> &Layers;
    fn call(
        &self,
        client: &Client,
        event: &str,
        data: Option<&RawValue>,
        id: Option<&RawValue>,
    ) -> Option<Dispatch>;
    fn hook(&self, kind: HookKind, cx: &Context<'_>) -> Option<Dispatch>;
}

/// One handler as generated documentation sees it.
///
/// ```
/// use gateway_core::prelude::*;
///
/// #[websocket_gateway(path = "/doc-event-doc")]
/// struct Described;
///
/// #[websocket_gateway]
/// impl Described {
///     #[subscribe("double")]
///     fn double(&self, n: i64) -> i64 {
///         n * 2
///     }
/// }
///
/// let app = GatewayApp::new().gateway::<Described>().build().unwrap();
/// let docs = app.gateways()[0].describe(&mut gateway_core::schemars::SchemaGenerator::default());
/// assert_eq!((docs[0].event, docs[0].method), ("double", "double"));
/// assert_eq!(docs[0].doc.body.as_ref().unwrap()["type"], "integer");
/// ```
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct EventDoc {
    /// The event it handles.
    pub event: &'static str,
    /// The method's name.
    pub method: &'static str,
    /// The schemas of its body and reply.
    pub doc: crate::gateway::HandlerDoc,
}

/// What every gateway has, whatever its type.
struct Shared {
    metrics: telemetry::GatewayMetrics,
    path: &'static str,
    server: WsServer,
    providers: Providers,
    ready: watch::Receiver<bool>,
    authenticator: Option<AuthenticatorRef>,
    /// The global and gateway layers: what applies to frames that reach no handler.
    outer: Layers,
}

#[derive(Clone, Copy, Debug)]
enum HookKind {
    AfterInit,
    Connection,
    Disconnect,
}

/// One handler with the layers of every scope above it.
struct Route<G: 'static> {
    metrics: telemetry::EventMetrics,
    handler: &'static Handler<G>,
    layers: Layers,
}

struct Typed<G: 'static> {
    gateway: Arc<G>,
    routes: FxHashMap<&'static str, Arc<Route<G>>>,
    shared: Shared,
}

impl<G: GatewayHandlers> ErasedGateway for Typed<G> {
    fn name(&self) -> &'static str {
        G::NAME
    }

    fn shared(&self) -> &Shared {
        &self.shared
    }

    fn method_of(&self, event: &str) -> Option<&'static str> {
        self.routes.get(event).map(|r| r.handler.method)
    }

    fn event_of(&self, event: &str) -> Option<(&'static str, &telemetry::EventMetrics)> {
        self.routes
            .get(event)
            .map(|r| (r.handler.event, &r.metrics))
    }

    fn describe(&self, generator: &mut schemars::SchemaGenerator) -> Vec<EventDoc> {
        G::HANDLERS
            .iter()
            .map(|handler| EventDoc {
                event: handler.event,
                method: handler.method,
                doc: (handler.describe)(generator),
            })
            .collect()
    }

    fn filters_of(&self, event: &str) -> &Layers {
        self.routes
            .get(event)
            .map_or(&self.shared.outer, |r| &r.layers)
    }

    fn call(
        &self,
        client: &Client,
        event: &str,
        data: Option<&RawValue>,
        id: Option<&RawValue>,
    ) -> Option<Dispatch> {
        let route = self.routes.get(event)?;
        let shared = &self.shared;
        if route.layers.is_direct() {
            // The fast path: extraction and a sync handler run right here.
            let cx = Context {
                client: Some(client),
                server: &shared.server,
                providers: &shared.providers,
                event: route.handler.event,
                data,
                id,
            };
            return Some((route.handler.call)(&self.gateway, &cx));
        }
        // Guards and interceptors may wait: the request is copied so the context can
        // outlive the frame.
        let route = Arc::clone(route);
        let gateway = Arc::clone(&self.gateway);
        let client = client.clone();
        let server = shared.server.clone();
        let providers = shared.providers.clone();
        let data = data.map(ToOwned::to_owned);
        let id = id.map(ToOwned::to_owned);
        Some(Dispatch::pending(async move {
            let cx = Context {
                client: Some(&client),
                server: &server,
                providers: &providers,
                event: route.handler.event,
                data: data.as_deref(),
                id: id.as_deref(),
            };
            for guard in &route.layers.guards {
                match guard.0.can_activate(&cx).await {
                    Ok(true) => {}
                    Ok(false) => {
                        tracing::debug!(target: "gateway::rejection", event = cx.event, "guard denied the message");
                        return Err(WsException::new(FORBIDDEN).into());
                    }
                    Err(err) => return Err(err.into()),
                }
            }
            let call = |cx: &Context<'_>| (route.handler.call)(&gateway, cx);
            Next {
                rest: &route.layers.interceptors,
                cx: &cx,
                handler: &call,
            }
            .run()
            .await
        }))
    }

    fn hook(&self, kind: HookKind, cx: &Context<'_>) -> Option<Dispatch> {
        let hooks = &G::HOOKS;
        let hook = match kind {
            HookKind::AfterInit => hooks.after_init.as_ref(),
            HookKind::Connection => hooks.handle_connection.as_ref(),
            HookKind::Disconnect => hooks.handle_disconnect.as_ref(),
        }?;
        Some((hook.call)(&self.gateway, cx))
    }
}

impl GatewayRuntime {
    /// Builds gateway `G`: resolves its fields, checks its handlers' extractors, composes
    /// the layers of every scope, and runs its `#[after_init]` hook.
    pub(crate) fn build<G: GatewayHandlers>(parts: &AppParts<'_>) -> Result<Self, BuildError> {
        let server = WsServer::new(G::PATH);
        let cx = BuildContext {
            gateway: G::NAME,
            providers: parts.providers,
            server: &server,
        };
        let gateway = Arc::new(G::build(&cx)?);
        let gateway_layers = G::layers();
        let outer = Layers::compose(&[parts.global, &gateway_layers]);
        let mut routes = FxHashMap::default();
        for handler in G::HANDLERS {
            (handler.verify)(&cx)?;
            let method_layers = (handler.layers)();
            let route = Route {
                handler,
                layers: Layers::compose(&[parts.global, &gateway_layers, &method_layers]),
                metrics: telemetry::EventMetrics::new(G::PATH, handler.event),
            };
            if let Some(first) = routes.insert(handler.event, Arc::new(route)) {
                return Err(BuildError::DuplicateEvent {
                    gateway: G::NAME,
                    event: handler.event,
                    first: first.handler.method,
                    second: handler.method,
                });
            }
        }
        let hooks = &G::HOOKS;
        for hook in [
            &hooks.after_init,
            &hooks.handle_connection,
            &hooks.handle_disconnect,
        ]
        .into_iter()
        .flatten()
        {
            (hook.verify)(&cx)?;
        }
        let (ready_tx, ready) = watch::channel(hooks.after_init.is_none());
        let runtime = Self {
            inner: Arc::new(Typed {
                gateway,
                routes,
                shared: Shared {
                    path: G::PATH,
                    server,
                    providers: parts.providers.clone(),
                    ready,
                    authenticator: parts.authenticator.clone(),
                    outer,
                    metrics: telemetry::GatewayMetrics::new(G::PATH),
                },
            }),
        };
        if let Some(hook) = &hooks.after_init {
            runtime.after_init(hook, ready_tx)?;
        }
        Ok(runtime)
    }

    fn after_init<G>(&self, hook: &Hook<G>, ready: watch::Sender<bool>) -> Result<(), BuildError> {
        let name = self.name();
        match self.run_hook(HookKind::AfterInit, None) {
            Some(Dispatch::Ready(Err(failure))) => Err(BuildError::Init {
                gateway: name,
                message: failure.into_exception().to_string(),
            }),
            Some(Dispatch::Pending(future)) => {
                let handle = tokio::runtime::Handle::try_current()
                    .map_err(|_| BuildError::NoRuntime { gateway: name })?;
                let method = hook.method;
                handle.spawn(async move {
                    if let Err(failure) = future.await {
                        let err = failure.into_exception();
                        tracing::error!(target: "gateway", gateway = name, method, "after_init failed: {err}");
                    }
                    let _ = ready.send(true);
                });
                Ok(())
            }
            Some(Dispatch::Ready(Ok(_))) | None => {
                let _ = ready.send(true);
                Ok(())
            }
        }
    }

    fn shared(&self) -> &Shared {
        self.inner.shared()
    }

    /// The gateway's path.
    ///
    /// # Examples
    ///
    /// ```
    /// use gateway_core::prelude::*;
    ///
    /// #[websocket_gateway(path = "/chat")]
    /// struct Chat;
    /// #[websocket_gateway]
    /// impl Chat {}
    ///
    /// let app = GatewayApp::new().gateway::<Chat>().build().unwrap();
    /// assert_eq!(app.gateways()[0].path(), "/chat");
    /// ```
    pub fn path(&self) -> &'static str {
        self.shared().path
    }

    /// The gateway's type name.
    ///
    /// # Examples
    ///
    /// ```
    /// use gateway_core::prelude::*;
    ///
    /// #[websocket_gateway(path = "/chat")]
    /// struct ChatGateway;
    /// #[websocket_gateway]
    /// impl ChatGateway {}
    ///
    /// let app = GatewayApp::new().gateway::<ChatGateway>().build().unwrap();
    /// assert_eq!(app.gateways()[0].name(), "ChatGateway");
    /// ```
    pub fn name(&self) -> &'static str {
        self.inner.name()
    }

    /// The gateway's server handle.
    ///
    /// # Examples
    ///
    /// ```
    /// # use gateway_core::prelude::*;
    /// # #[websocket_gateway(path = "/chat")] struct Chat;
    /// # #[websocket_gateway] impl Chat {}
    /// # let app = GatewayApp::new().gateway::<Chat>().build().unwrap();
    /// use gateway_core::Handshake;
    ///
    /// let gw = &app.gateways()[0];
    /// let (client, _queue) = gw.open(Handshake::default(), 8);
    /// assert_eq!(gw.server().client_ids(), [client.id()]);
    /// assert_eq!(gw.server().path(), gw.path());
    /// ```
    pub fn server(&self) -> &WsServer {
        &self.shared().server
    }

    /// Whether the gateway requires authentication of its upgrade requests.
    ///
    /// # Examples
    ///
    /// ```
    /// use gateway_core::prelude::*;
    ///
    /// #[websocket_gateway(path = "/chat")]
    /// struct Chat;
    /// #[websocket_gateway]
    /// impl Chat {}
    ///
    /// let app = GatewayApp::new().gateway::<Chat>().build().unwrap();
    /// assert!(!app.gateways()[0].requires_authentication());
    /// ```
    pub fn requires_authentication(&self) -> bool {
        self.shared().authenticator.is_some()
    }

    /// Runs the gateway's authenticator on an upgrade request. `Ok` holds what to store in
    /// the client's [`Handshake::extensions`] (nothing when the gateway has no
    /// authenticator).
    ///
    /// # Errors
    ///
    /// Why the request is refused: answer it with HTTP 401 and do not upgrade.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// use gateway_core::prelude::*;
    /// use gateway_core::{Authenticator, Handshake, HandshakeRequest};
    ///
    /// struct TokenAuth;
    ///
    /// impl Authenticator for TokenAuth {
    ///     type Identity = String;
    ///
    ///     async fn authenticate(&self, request: &HandshakeRequest<'_>) -> Result<String, WsException> {
    ///         match request.query_param("token") {
    ///             Some("secret") => Ok("alice".to_owned()),
    ///             _ => Err(WsException::new("Unauthorized")),
    ///         }
    ///     }
    /// }
    ///
    /// #[websocket_gateway(path = "/chat")]
    /// struct Chat;
    /// #[websocket_gateway]
    /// impl Chat {}
    ///
    /// let app = GatewayApp::new().authenticate_all(TokenAuth).gateway::<Chat>().build().unwrap();
    /// let gw = &app.gateways()[0];
    ///
    /// // What a transport does with an upgrade request:
    /// let uri: http::Uri = "/chat?token=secret".parse().unwrap();
    /// let headers = http::HeaderMap::new();
    /// let slot = gw.authenticate(&HandshakeRequest::new(&uri, &headers)).await.unwrap();
    /// let mut handshake = Handshake::new(uri, headers);
    /// if let Some(store) = slot {
    ///     store(&mut handshake.extensions);
    /// }
    /// let (client, _queue) = gw.open(handshake, 8);
    /// assert_eq!(Identity::<String>::of(&client).map(String::as_str), Some("alice"));
    /// # }
    /// ```
    pub async fn authenticate(
        &self,
        request: &HandshakeRequest<'_>,
    ) -> Result<Option<IdentitySlot>, WsException> {
        match &self.shared().authenticator {
            None => Ok(None),
            Some(auth) => {
                let slot = auth.0.authenticate(request).await.inspect_err(|err| {
                    tracing::debug!(target: "gateway::rejection", gateway = self.name(), "authentication failed: {err}");
                })?;
                Ok(Some(slot))
            }
        }
    }

    /// Registers a new client with the gateway's server and returns it with the queue its
    /// connection task must drain.
    ///
    /// # Examples
    ///
    /// ```
    /// # use gateway_core::prelude::*;
    /// # #[websocket_gateway(path = "/chat")] struct Chat;
    /// # #[websocket_gateway] impl Chat {}
    /// # let app = GatewayApp::new().gateway::<Chat>().build().unwrap();
    /// use gateway_core::{Handshake, Outbound};
    ///
    /// let gw = &app.gateways()[0];
    /// let (client, mut queue) = gw.open(Handshake::default(), 8);
    /// assert!(gw.server().client(client.id()).is_some());
    ///
    /// // What is sent to the client waits in its queue for the connection task.
    /// gw.server().emit("hello", &1).unwrap();
    /// assert!(matches!(queue.try_recv(), Some(Outbound::Frame(_))));
    /// ```
    pub fn open(&self, handshake: Handshake, queue_capacity: usize) -> (Client, OutboundQueue) {
        let (sink, queue) = ClientSink::channel(queue_capacity);
        let client = Client::new(self.server().clone(), sink, handshake);
        self.server().add(client.clone());
        (client, queue)
    }

    /// Waits for `#[after_init]` to finish, then runs `#[handle_connection]`.
    ///
    /// # Errors
    ///
    /// The hook's error: the client is rejected and must be closed (then
    /// [`disconnect`](Self::disconnect)ed).
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// use gateway_core::prelude::*;
    /// use gateway_core::Handshake;
    ///
    /// #[websocket_gateway(path = "/chat")]
    /// struct Chat;
    ///
    /// #[websocket_gateway]
    /// impl Chat {
    ///     #[handle_connection]
    ///     fn connected(&self, client: Client) -> Result<(), WsException> {
    ///         match client.handshake().uri.query() {
    ///             Some(q) if q.starts_with("room=") => {
    ///                 client.join(q["room=".len()..].to_owned());
    ///                 Ok(())
    ///             }
    ///             _ => Err(WsException::new("Pick a room")),
    ///         }
    ///     }
    /// }
    ///
    /// let app = GatewayApp::new().gateway::<Chat>().build().unwrap();
    /// let gw = &app.gateways()[0];
    ///
    /// let handshake = Handshake::new("/chat?room=rust".parse().unwrap(), http::HeaderMap::new());
    /// let (client, _queue) = gw.open(handshake, 8);
    /// gw.connect(&client).await.unwrap();
    /// assert_eq!(client.rooms(), ["rust"]);
    ///
    /// let (rejected, _queue) = gw.open(Handshake::default(), 8);
    /// assert_eq!(gw.connect(&rejected).await.unwrap_err().message(), "Pick a room");
    /// gw.disconnect(&rejected).await; // the transport closes it, then disconnects it
    /// # }
    /// ```
    pub async fn connect(&self, client: &Client) -> Result<(), WsException> {
        let mut ready = self.shared().ready.clone();
        // The sender lives until after_init is done; an error means it is done.
        let _ = ready.wait_for(|ready| *ready).await;
        match self.run_hook(HookKind::Connection, Some(client)) {
            Some(dispatch) => dispatch
                .outcome()
                .await
                .map(drop)
                .map_err(Failure::into_exception),
            None => Ok(()),
        }
    }

    /// Runs `#[handle_disconnect]`, then removes the client from the server and its rooms.
    /// Call it exactly once per opened client, however the connection ended.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// use std::sync::{Arc, Mutex};
    /// use gateway_core::prelude::*;
    /// use gateway_core::Handshake;
    ///
    /// #[derive(Default)]
    /// struct Log(Mutex<Vec<ClientId>>);
    ///
    /// #[websocket_gateway(path = "/chat")]
    /// struct Chat {
    ///     log: Inject<Log>,
    /// }
    ///
    /// #[websocket_gateway]
    /// impl Chat {
    ///     #[handle_disconnect]
    ///     fn gone(&self, client: Client) {
    ///         self.log.0.lock().unwrap().push(client.id());
    ///     }
    /// }
    ///
    /// let log = Arc::new(Log::default());
    /// let app = GatewayApp::new().provide_arc(Arc::clone(&log)).gateway::<Chat>().build().unwrap();
    /// let gw = &app.gateways()[0];
    /// let (client, _queue) = gw.open(Handshake::default(), 8);
    /// client.join("lobby");
    ///
    /// gw.disconnect(&client).await;
    /// assert_eq!(*log.0.lock().unwrap(), [client.id()]); // `#[handle_disconnect]` ran
    /// assert!(gw.server().client(client.id()).is_none());
    /// assert!(gw.server().rooms().is_empty());
    /// # }
    /// ```
    pub async fn disconnect(&self, client: &Client) {
        if let Some(dispatch) = self.run_hook(HookKind::Disconnect, Some(client))
            && let Err(failure) = dispatch.outcome().await
        {
            let err = failure.into_exception();
            tracing::warn!(target: "gateway", gateway = self.name(), client = %client.id(), "handle_disconnect failed: {err}");
        }
        self.server().remove(client.id());
    }

    fn run_hook(&self, kind: HookKind, client: Option<&Client>) -> Option<Dispatch> {
        let shared = self.shared();
        let cx = Context {
            client,
            server: &shared.server,
            providers: &shared.providers,
            event: "",
            data: None,
            id: None,
        };
        let name = self.name();
        std::panic::catch_unwind(AssertUnwindSafe(|| self.inner.hook(kind, &cx)))
            .unwrap_or_else(|panic| {
                tracing::error!(target: "gateway", gateway = name, hook = ?kind, "hook panicked: {}", panic_message(&*panic));
                Some(Dispatch::reject(WsException::internal()))
            })
            .map(|d| guard_panics(d, name, "hook"))
    }

    /// The gateway's metrics handles, registered when the app was built (install a
    /// `metrics` recorder before building the app to collect them).
    pub fn metrics(&self) -> &telemetry::GatewayMetrics {
        &self.shared().metrics
    }

    /// Every handler of the gateway, in declaration order, with the JSON Schemas of its
    /// body and reply; the types they refer to are added to `generator`'s definitions.
    ///
    /// # Examples
    ///
    /// ```
    /// use gateway_core::prelude::*;
    ///
    /// #[websocket_gateway(path = "/math")]
    /// struct Math;
    ///
    /// #[websocket_gateway]
    /// impl Math {
    ///     #[subscribe("double")]
    ///     fn double(&self, n: u32) -> u64 {
    ///         u64::from(n) * 2
    ///     }
    /// }
    ///
    /// let app = GatewayApp::new().gateway::<Math>().build().unwrap();
    /// let mut generator = gateway_core::schemars::SchemaGenerator::default();
    /// let docs = app.gateways()[0].describe(&mut generator);
    /// assert_eq!((docs[0].event, docs[0].method), ("double", "double"));
    /// let body = docs[0].doc.body.as_ref().unwrap();
    /// assert_eq!(body["type"], "integer");
    /// ```
    pub fn describe(&self, generator: &mut schemars::SchemaGenerator) -> Vec<EventDoc> {
        self.inner.describe(generator)
    }

    /// Parses a text frame and dispatches it to its handler.
    ///
    /// A frame that cannot be routed (malformed JSON, no event, unknown event, a body that
    /// does not fit) comes back as `Dispatch::Ready(Err(..))` with a precise message; turn
    /// any failure into what the client receives with [`catch`](Self::catch).
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// use gateway_core::prelude::*;
    /// use gateway_core::Handshake;
    ///
    /// #[websocket_gateway(path = "/chat")]
    /// struct Chat;
    ///
    /// #[websocket_gateway]
    /// impl Chat {
    ///     #[subscribe("echo")]
    ///     async fn echo(&self, data: serde_json::Value) -> serde_json::Value {
    ///         data
    ///     }
    /// }
    ///
    /// let app = GatewayApp::new().gateway::<Chat>().build().unwrap();
    /// let gw = &app.gateways()[0];
    /// let (client, _queue) = gw.open(Handshake::default(), 8);
    ///
    /// let Ok(Reply::Frame(frame)) = gw.dispatch_text(&client, r#"{"event":"echo","data":1}"#).outcome().await
    /// else {
    ///     panic!("no reply")
    /// };
    /// assert_eq!(frame.as_str(), r#"{"event":"echo","data":1}"#);
    ///
    /// let err = gw.dispatch_text(&client, r#"{"data":1}"#).outcome().await.unwrap_err();
    /// assert_eq!(err.to_string(), r#"Invalid frame: missing "event" field"#);
    /// let err = gw.dispatch_text(&client, r#"{"event":"nope"}"#).outcome().await.unwrap_err();
    /// assert_eq!(err.to_string(), r#"Unknown event "nope""#);
    /// # }
    /// ```
    pub fn dispatch_text(&self, client: &Client, text: &str) -> Dispatch {
        match IncomingFrame::parse(text) {
            Ok(frame) => self.dispatch(client, &frame.event, frame.data, frame.id),
            Err(err) => {
                tracing::debug!(target: "gateway::rejection", gateway = self.name(), client = %client.id(), "{err}");
                Dispatch::reject(err.into())
            }
        }
    }

    /// Dispatches one message, already split into event, data and id, to its handler.
    /// Adapters with their own framing (Socket.IO, MessagePack) call this directly.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// use gateway_core::prelude::*;
    /// use gateway_core::Handshake;
    /// use serde_json::value::RawValue;
    ///
    /// #[websocket_gateway(path = "/math")]
    /// struct Math;
    ///
    /// #[websocket_gateway]
    /// impl Math {
    ///     #[subscribe("double")]
    ///     fn double(&self, n: u32) -> u32 {
    ///         n * 2
    ///     }
    /// }
    ///
    /// let app = GatewayApp::new().gateway::<Math>().build().unwrap();
    /// let gw = &app.gateways()[0];
    /// let (client, _queue) = gw.open(Handshake::default(), 8);
    ///
    /// // E.g. decoded from a MessagePack or Socket.IO packet:
    /// let data = RawValue::from_string("21".to_owned()).unwrap();
    /// let id = RawValue::from_string(r#""req-1""#.to_owned()).unwrap();
    /// let Ok(Reply::Frame(frame)) = gw.dispatch(&client, "double", Some(&data), Some(&id)).outcome().await
    /// else {
    ///     panic!("no reply")
    /// };
    /// assert_eq!(frame.as_str(), r#"{"event":"double","data":42,"id":"req-1"}"#);
    /// # }
    /// ```
    pub fn dispatch(
        &self,
        client: &Client,
        event: &str,
        data: Option<&RawValue>,
        id: Option<&RawValue>,
    ) -> Dispatch {
        let gateway = self.path();
        let Some((event, metrics)) = self.inner.event_of(event) else {
            self.shared().metrics.unknown_event.increment(1);
            tracing::debug!(target: "gateway::rejection", gateway = self.name(), client = %client.id(), event, "unknown event");
            return Dispatch::reject(WsException::new(format!("Unknown event {event:?}")));
        };
        metrics.received.increment(1);
        let span = tracing::debug_span!(target: "gateway", "message", gateway, event, client = %client.id());
        let started = Instant::now();
        let called = span.in_scope(|| {
            std::panic::catch_unwind(AssertUnwindSafe(|| {
                self.inner.call(client, event, data, id)
            }))
        });
        match called {
            Ok(Some(Dispatch::Ready(outcome))) => {
                metrics.duration.record(started.elapsed());
                Dispatch::Ready(guard_stream(outcome, self.name(), event))
            }
            Ok(Some(Dispatch::Pending(future))) => {
                let name = self.name();
                let duration = metrics.duration.clone();
                Dispatch::pending(
                    async move {
                        let outcome = unwound(future, name, event).await;
                        duration.record(started.elapsed());
                        outcome
                    }
                    .instrument(span),
                )
            }
            Ok(None) => Dispatch::reject(WsException::new(format!("Unknown event {event:?}"))),
            Err(panic) => {
                tracing::error!(target: "gateway", gateway = self.name(), event, method = self.inner.method_of(event), "handler panicked: {}", panic_message(&*panic));
                Dispatch::reject(WsException::internal())
            }
        }
    }

    /// Decides what the client receives for a failure that answers `request` (the text
    /// frame it sent, when there was one): the exception filters of the handler's scopes,
    /// closest first, then NestJS's default `exception` frame.
    ///
    /// # Examples
    ///
    /// ```
    /// # use gateway_core::prelude::*;
    /// # #[websocket_gateway(path = "/chat")] struct Chat;
    /// # #[websocket_gateway] impl Chat {}
    /// # let app = GatewayApp::new().gateway::<Chat>().build().unwrap();
    /// use gateway_core::Handshake;
    ///
    /// let gw = &app.gateways()[0];
    /// let (client, _queue) = gw.open(Handshake::default(), 8);
    ///
    /// // Without exception filters: NestJS's `exception` frame, with the request's pattern and id.
    /// let request = r#"{"event":"join","data":"a","id":7}"#;
    /// let caught = gw.catch(&client, Some(request), WsException::new("Room is full").into());
    /// assert_eq!(
    ///     caught.frame_ref().unwrap().as_str(),
    ///     r#"{"event":"exception","data":{"status":"error","message":"Room is full","cause":{"pattern":"join","data":"a"}},"id":7}"#
    /// );
    /// assert!(caught.close_request().is_none()); // the socket stays open
    /// ```
    pub fn catch(&self, client: &Client, request: Option<&str>, failure: Failure) -> Caught {
        self.shared()
            .metrics
            .error(telemetry::error_kind(&failure.to_string()));
        let parsed = request.and_then(|text| IncomingFrame::parse(text).ok());
        let cx = FilterContext {
            client,
            request: parsed.as_ref(),
        };
        let layers = match &parsed {
            Some(frame) => self.inner.filters_of(&frame.event),
            None => &self.shared().outer,
        };
        for filter in &layers.filters {
            let caught =
                std::panic::catch_unwind(AssertUnwindSafe(|| filter.0.try_catch(&failure, &cx)));
            match caught {
                Ok(Some(caught)) => return caught,
                Ok(None) => {}
                Err(panic) => {
                    tracing::error!(target: "gateway", gateway = self.name(), "exception filter panicked: {}", panic_message(&*panic));
                    return Caught::exception(&cx, &WsException::internal());
                }
            }
        }
        Caught::default_for(&cx, failure)
    }

    /// What the client receives for a binary frame sent to the JSON protocol.
    ///
    /// # Examples
    ///
    /// ```
    /// # use gateway_core::prelude::*;
    /// # #[websocket_gateway(path = "/chat")] struct Chat;
    /// # #[websocket_gateway] impl Chat {}
    /// # let app = GatewayApp::new().gateway::<Chat>().build().unwrap();
    /// use gateway_core::Handshake;
    ///
    /// let gw = &app.gateways()[0];
    /// let (client, _queue) = gw.open(Handshake::default(), 8);
    /// let caught = gw.binary_rejected(&client);
    /// assert!(caught.frame_ref().unwrap().as_str().contains("Binary frames are not supported"));
    /// ```
    pub fn binary_rejected(&self, client: &Client) -> Caught {
        self.catch(client, None, WsException::from(FrameError::Binary).into())
    }

    /// The exception frame for an error that answers `text` (the frame the client sent,
    /// when there was one), without exception filters.
    ///
    /// # Examples
    ///
    /// ```
    /// # use gateway_core::prelude::*;
    /// # #[websocket_gateway(path = "/chat")] struct Chat;
    /// # #[websocket_gateway] impl Chat {}
    /// # let app = GatewayApp::new().gateway::<Chat>().build().unwrap();
    /// let gw = &app.gateways()[0];
    /// let frame = gw.exception_frame(Some(r#"{"event":"nope","id":"q"}"#), &WsException::new("Unknown event"));
    /// assert_eq!(
    ///     frame.as_str(),
    ///     r#"{"event":"exception","data":{"status":"error","message":"Unknown event","cause":{"pattern":"nope","data":null}},"id":"q"}"#
    /// );
    /// let bare = gw.exception_frame(None, &WsException::new("Too many messages"));
    /// assert_eq!(
    ///     bare.as_str(),
    ///     r#"{"event":"exception","data":{"status":"error","message":"Too many messages"}}"#
    /// );
    /// ```
    pub fn exception_frame(&self, text: Option<&str>, err: &WsException) -> Frame {
        let request = text.and_then(|t| IncomingFrame::parse(t).ok());
        crate::frame::exception_frame(err, request.as_ref())
    }
}

/// Turns panics of a pending handler and of its reply stream into "Internal server error".
fn guard_panics(dispatch: Dispatch, gateway: &'static str, what: &str) -> Dispatch {
    let what = what.to_owned();
    match dispatch {
        Dispatch::Ready(outcome) => Dispatch::Ready(guard_stream(outcome, gateway, &what)),
        Dispatch::Pending(future) => {
            Dispatch::pending(async move { unwound(future, gateway, &what).await })
        }
    }
}

/// Awaits a handler's (or hook's) future: a panic in it, or later in its reply stream,
/// becomes "Internal server error" and a `tracing` error.
async fn unwound(
    future: impl Future<Output = Outcome>,
    gateway: &'static str,
    what: &str,
) -> Outcome {
    match AssertUnwindSafe(future).catch_unwind().await {
        Ok(outcome) => guard_stream(outcome, gateway, what),
        Err(panic) => {
            tracing::error!(target: "gateway", gateway, event = what, "handler panicked: {}", panic_message(&*panic));
            Err(WsException::internal().into())
        }
    }
}

fn guard_stream(outcome: Outcome, gateway: &'static str, what: &str) -> Outcome {
    match outcome {
        Ok(Reply::Stream(stream)) => {
            let what = what.to_owned();
            Ok(Reply::Stream(
            AssertUnwindSafe(stream)
                .catch_unwind()
                .map(move |item| {
                    item.unwrap_or_else(|panic| {
                        tracing::error!(target: "gateway", gateway, event = what, "reply stream panicked: {}", panic_message(&*panic));
                        Err(WsException::internal().into())
                    })
                })
                .boxed(),
        ))
        }
        other => other,
    }
}

fn panic_message(panic: &(dyn std::any::Any + Send)) -> &str {
    panic
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| panic.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("(non-string panic payload)")
}

impl fmt::Debug for GatewayRuntime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GatewayRuntime")
            .field("path", &self.path())
            .field("name", &self.name())
            .finish_non_exhaustive()
    }
}
