//! [`GatewayRuntime`]: one built gateway, as a transport drives it.

use std::fmt;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;

use rustc_hash::FxHashMap;
use tokio::sync::watch;

use crate::auth::{AuthenticatorRef, HandshakeRequest, IdentitySlot};
use crate::client::{Client, ClientSink, Handshake, OutboundQueue};
use crate::dispatch::{Context, Dispatch};
use crate::error::BuildError;
use crate::exception::WsException;
use crate::failure::Failure;
use crate::filter::Caught;
use crate::gateway::{GatewayHandlers, Handler, Hook};
use crate::inject::{BuildContext, Instance, Providers};
use crate::layers::Layers;
use crate::pipeline::{guard_panics, panic_message};
use crate::request::Request;
use crate::server::WsServer;
use crate::telemetry;
use crate::transport::Handled;

/// What the app builder hands to every gateway it builds.
pub(crate) struct AppParts<'a> {
    pub(crate) providers: &'a Providers,
    pub(crate) global: &'a Layers,
    pub(crate) authenticator: Option<AuthenticatorRef>,
}

/// A built gateway: its instance, its handler table and its server handle.
///
/// Transports (ws-gateway-axum's, your own) drive it:
/// [`authenticate`](Self::authenticate) the upgrade request, [`open`](Self::open) a
/// client, [`connect`](Self::connect) it, [`handle`](Self::handle) its requests (or
/// [`handle_json`](Self::handle_json) its JSON text frames), [`reject`](Self::reject) the
/// messages that never reach a handler, [`disconnect`](Self::disconnect) it; the session
/// driver ([`transport::serve`](crate::transport::serve)) does all of it. Cheap to clone.
///
/// # Examples
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// use ws_gateway_core::prelude::*;
/// use ws_gateway_core::Handshake;
/// use ws_gateway_core::transport::Answer;
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
///     fn connected(&self, client: Client) -> Result<(), RoomError> {
///         client.join("everyone")
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
/// match gw.handle_json(&client, text).answer().await {
///     Answer::Frame(frame) => assert_eq!(frame.as_str(), r#"{"event":"double","data":42,"id":1}"#),
///     other => panic!("unexpected {other:?}"),
/// }
///
/// // A failure is answered too: the exception filters turned it into what the client receives.
/// let text = r#"{"event":"double","data":"x"}"#;
/// let answer = gw.handle_json(&client, text).answer().await;
/// assert!(answer.frame().unwrap().as_str().starts_with(r#"{"event":"exception""#));
/// assert!(answer.close_request().is_none()); // the socket stays open
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
pub(crate) trait ErasedGateway: Send + Sync {
    fn name(&self) -> &'static str;
    fn shared(&self) -> &Shared;
    #[cfg(feature = "asyncapi")]
    fn describe(&self, generator: &mut schemars::SchemaGenerator) -> Vec<EventDoc>;
    fn handle(&self, client: &Client, request: &Request<'_>) -> Handled;
    fn catch(&self, client: &Client, request: Option<&Request<'_>>, failure: Failure) -> Caught;
    fn hook(&self, kind: HookKind, cx: &Context<'_>) -> Option<Dispatch>;
}

/// One handler as generated documentation sees it.
///
/// ```
/// use ws_gateway_core::prelude::*;
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
/// let docs = app.gateways()[0].describe(&mut ws_gateway_core::schemars::SchemaGenerator::default());
/// assert_eq!((docs[0].event, docs[0].method), ("double", "double"));
/// assert_eq!(docs[0].doc.body.as_ref().unwrap()["type"], "integer");
/// ```
#[cfg(feature = "asyncapi")]
#[cfg_attr(docsrs, doc(cfg(feature = "asyncapi")))]
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
pub(crate) struct Shared {
    pub(crate) metrics: telemetry::GatewayMetrics,
    pub(crate) path: &'static str,
    pub(crate) server: WsServer,
    pub(crate) providers: Providers,
    ready: watch::Receiver<bool>,
    authenticator: Option<AuthenticatorRef>,
    /// The global and gateway layers: what applies to messages that reach no handler.
    pub(crate) outer: Layers,
}

#[derive(Clone, Copy, Debug)]
pub(crate) enum HookKind {
    AfterInit,
    Connection,
    Disconnect,
}

/// One handler with the layers of every scope above it.
pub(crate) struct Route<G: 'static> {
    pub(crate) metrics: telemetry::EventMetrics,
    pub(crate) handler: &'static Handler<G>,
    pub(crate) layers: Layers,
}

/// A built gateway of type `G`: what [`pipeline`](crate::pipeline) runs requests on.
pub(crate) struct Typed<G: 'static> {
    pub(crate) gateway: Arc<G>,
    pub(crate) routes: FxHashMap<&'static str, Arc<Route<G>>>,
    pub(crate) shared: Arc<Shared>,
}

impl<G: GatewayHandlers> ErasedGateway for Typed<G> {
    fn name(&self) -> &'static str {
        G::NAME
    }

    fn shared(&self) -> &Shared {
        &self.shared
    }

    #[cfg(feature = "asyncapi")]
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

    fn handle(&self, client: &Client, request: &Request<'_>) -> Handled {
        Typed::handle(self, client, request)
    }

    fn catch(&self, client: &Client, request: Option<&Request<'_>>, failure: Failure) -> Caught {
        Typed::catch(self, client, request, failure)
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
    /// Assembles gateway `G` around its instance, once every provider is built: checks its
    /// handlers' extractors, composes the layers of every scope, and runs its
    /// `#[after_init]` hook.
    pub(crate) fn assemble<G: GatewayHandlers>(
        instance: Instance,
        server: WsServer,
        parts: &AppParts<'_>,
    ) -> Result<Self, BuildError> {
        #[allow(clippy::expect_used)]
        let gateway = instance
            .downcast::<G>()
            .expect("the instance is the one its descriptor's `instantiate` built: a `G`");
        let cx = BuildContext {
            gateway: G::NAME,
            providers: parts.providers,
            server: &server,
        };
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
                shared: Arc::new(Shared {
                    path: G::PATH,
                    server,
                    providers: parts.providers.clone(),
                    ready,
                    authenticator: parts.authenticator.clone(),
                    outer,
                    metrics: telemetry::GatewayMetrics::new(G::PATH),
                }),
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

    pub(crate) fn erased(&self) -> &dyn ErasedGateway {
        &*self.inner
    }

    /// The gateway's path.
    ///
    /// # Examples
    ///
    /// ```
    /// use ws_gateway_core::prelude::*;
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
    /// use ws_gateway_core::prelude::*;
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
    /// # use ws_gateway_core::prelude::*;
    /// # #[websocket_gateway(path = "/chat")] struct Chat;
    /// # #[websocket_gateway] impl Chat {}
    /// # let app = GatewayApp::new().gateway::<Chat>().build().unwrap();
    /// use ws_gateway_core::Handshake;
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
    /// use ws_gateway_core::prelude::*;
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
    /// use ws_gateway_core::prelude::*;
    /// use ws_gateway_core::{Authenticator, Handshake, HandshakeRequest};
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
    /// # use ws_gateway_core::prelude::*;
    /// # #[websocket_gateway(path = "/chat")] struct Chat;
    /// # #[websocket_gateway] impl Chat {}
    /// # let app = GatewayApp::new().gateway::<Chat>().build().unwrap();
    /// use ws_gateway_core::Handshake;
    /// use ws_gateway_core::transport::Outbound;
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
        let (sink, queue) =
            ClientSink::channel(queue_capacity, self.metrics().messages_dropped.clone());
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
    /// use ws_gateway_core::prelude::*;
    /// use ws_gateway_core::Handshake;
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
    ///                 client.join(q["room=".len()..].to_owned())?;
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
    /// use ws_gateway_core::prelude::*;
    /// use ws_gateway_core::Handshake;
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
    /// client.join("lobby").unwrap();
    ///
    /// gw.disconnect(&client).await;
    /// assert_eq!(*log.0.lock().unwrap(), [client.id()]); // `#[handle_disconnect]` ran
    /// assert!(gw.server().client(client.id()).is_none());
    /// assert!(gw.server().rooms().is_empty());
    /// # }
    /// ```
    pub async fn disconnect(&self, client: &Client) {
        self.disconnect_hook(client).await;
        self.server().remove(client.id());
    }

    /// The first half of [`disconnect`](Self::disconnect): the client's pending
    /// acknowledgements fail, then `#[handle_disconnect]` runs; the client is still in its
    /// rooms.
    pub(crate) async fn disconnect_hook(&self, client: &Client) {
        // Emits waiting for its answers hear that it left, instead of waiting them out.
        client.acks().close(client.id());
        if let Some(dispatch) = self.run_hook(HookKind::Disconnect, Some(client))
            && let Err(failure) = dispatch.outcome().await
        {
            let err = failure.into_exception();
            tracing::warn!(target: "gateway", gateway = self.name(), client = %client.id(), "handle_disconnect failed: {err}");
        }
    }

    /// Hands a client's answer to the emit that asked for it
    /// ([`Client::emit_with_ack`](crate::Client::emit_with_ack)). Returns `false`, and counts
    /// it in `gateway_acks_total{outcome="ignored"}`, when nothing waits for its number:
    /// unknown, answered already, or past its timeout. Never an error for the client.
    ///
    /// # Examples
    ///
    /// ```
    /// # use ws_gateway_core::prelude::*;
    /// # #[websocket_gateway(path = "/chat")] struct Chat;
    /// # #[websocket_gateway] impl Chat {}
    /// # let app = GatewayApp::new().gateway::<Chat>().build().unwrap();
    /// use ws_gateway_core::Handshake;
    /// use ws_gateway_core::transport::AckAnswer;
    ///
    /// let gw = &app.gateways()[0];
    /// let (client, _queue) = gw.open(Handshake::default(), 8);
    /// let one: &serde_json::value::RawValue = serde_json::from_str("1").unwrap();
    /// assert!(!gw.answer(&client, AckAnswer::new(12345, Some(one)))); // nobody asked
    /// ```
    pub fn answer(&self, client: &Client, answer: crate::ack::AckAnswer<'_>) -> bool {
        let ack = answer.ack;
        let metrics = self.metrics();
        if client.acks().answer(client.id(), answer) {
            metrics.acks_answered.increment(1);
            true
        } else {
            tracing::debug!(target: "gateway::rejection", client = %client.id(), ack, "ignored an answer nothing waits for");
            metrics.acks_ignored.increment(1);
            false
        }
    }

    fn run_hook(&self, kind: HookKind, client: Option<&Client>) -> Option<Dispatch> {
        let shared = self.shared();
        let cx = Context {
            client,
            server: &shared.server,
            providers: &shared.providers,
            event: "",
            data: None,
            args: None,
            attachments: &[],
            id: None,
            route: None,
            acked: std::sync::atomic::AtomicBool::new(false),
        };
        let name = self.name();
        std::panic::catch_unwind(AssertUnwindSafe(|| self.inner.hook(kind, &cx)))
            .unwrap_or_else(|panic| {
                tracing::error!(target: "gateway", gateway = name, hook = ?kind, "hook panicked: {}", panic_message(&*panic));
                Some(Dispatch::reject(WsException::internal()))
            })
            .map(|d| guard_panics(d, name, "hook"))
    }

    /// The gateway's connection state recovery, when the app switched it on (see
    /// [`GatewayApp::recover`](crate::GatewayApp::recover)).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use ws_gateway_core::prelude::*;
    /// use ws_gateway_core::Recovery;
    ///
    /// #[websocket_gateway(path = "/doc-recovery-of")]
    /// struct Chat;
    /// #[websocket_gateway]
    /// impl Chat {}
    ///
    /// let recovery = Recovery::new(Duration::from_secs(120));
    /// let app = GatewayApp::new().recover_all(recovery.clone()).gateway::<Chat>().build().unwrap();
    /// assert_eq!(app.gateways()[0].recovery(), Some(recovery));
    /// ```
    pub fn recovery(&self) -> Option<crate::Recovery> {
        self.server().recorder().map(|r| r.config())
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
    /// use ws_gateway_core::prelude::*;
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
    /// let mut generator = ws_gateway_core::schemars::SchemaGenerator::default();
    /// let docs = app.gateways()[0].describe(&mut generator);
    /// assert_eq!((docs[0].event, docs[0].method), ("double", "double"));
    /// let body = docs[0].doc.body.as_ref().unwrap();
    /// assert_eq!(body["type"], "integer");
    /// ```
    #[cfg(feature = "asyncapi")]
    #[cfg_attr(docsrs, doc(cfg(feature = "asyncapi")))]
    pub fn describe(&self, generator: &mut schemars::SchemaGenerator) -> Vec<EventDoc> {
        self.inner.describe(generator)
    }
}

impl fmt::Debug for GatewayRuntime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GatewayRuntime")
            .field("path", &self.path())
            .field("name", &self.name())
            .finish_non_exhaustive()
    }
}
