//! [`GatewayApp`], the builder, and [`App`], the built set of gateways.

use std::any::TypeId;
use std::future::Future;
use std::sync::Arc;

use crate::adapter::{Adapter, AdapterRef};
use crate::auth::{Authenticator, AuthenticatorRef};
use crate::config::ConnectionConfig;
use crate::connections::Connections;
use crate::error::{BoxError, BuildError};
use crate::factory::{Factory, FactoryFn, failed};
use crate::filter::{ExceptionFilter, FilterRef};
use crate::gateway::GatewayHandlers;
use crate::guard::{Guard, GuardRef};
use crate::inject::{Inject, Providers};
use crate::interceptor::{Interceptor, InterceptorRef};
use crate::layers::Layers;
use crate::recovery::{Recorder, Recovery};
use crate::registry::{GatewayDescriptor, registered};
use crate::resolve::{Built, Resolution, Step};
use crate::runtime::{AppParts, GatewayRuntime};
use crate::server::WsServer;

/// Builds an [`App`]: collects the registered gateways, injects their dependencies and runs
/// their `#[after_init]` hooks, NestJS's module bootstrap.
///
/// # Examples
///
/// ```
/// use ws_gateway_core::prelude::*;
///
/// struct Clock;
///
/// #[websocket_gateway(path = "/time")]
/// struct TimeGateway {
///     clock: Inject<Clock>,
/// }
///
/// #[websocket_gateway]
/// impl TimeGateway {
///     #[subscribe("ping")]
///     fn ping(&self) -> &'static str {
///         "pong"
///     }
/// }
///
/// // Without the provider, build() names what is missing:
/// let err = GatewayApp::new().gateway::<TimeGateway>().build().unwrap_err();
/// assert!(err.to_string().contains("can't resolve dependencies of TimeGateway"));
///
/// let app = GatewayApp::new().provide(Clock).gateway::<TimeGateway>().build().unwrap();
/// assert!(app.server("/time").is_some());
/// ```
#[derive(Default)]
#[must_use = "a GatewayApp does nothing until `build()` is called"]
pub struct GatewayApp {
    providers: Providers,
    factories: Vec<Factory>,
    selected: Vec<(TypeId, GatewayDescriptor)>,
    config: ConnectionConfig,
    global: Layers,
    authenticators: Vec<(Option<TypeId>, AuthenticatorRef)>,
    recovery: Vec<(Option<TypeId>, Recovery)>,
    adapter: Option<AdapterRef>,
}

impl std::fmt::Debug for GatewayApp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GatewayApp")
            .field("providers", &self.providers)
            .field("factories", &self.factories.len())
            .field("selected", &self.selected.len())
            .field("config", &self.config)
            .field("global", &self.global)
            .field("authenticators", &self.authenticators.len())
            .field("recovery", &self.recovery)
            .field("adapter", &self.adapter.is_some())
            .finish()
    }
}

impl GatewayApp {
    /// An app with every registered gateway and no providers.
    ///
    /// # Examples
    ///
    /// ```standalone_crate
    /// use ws_gateway_core::prelude::*;
    ///
    /// #[websocket_gateway(path = "/registered")]
    /// struct Registered;
    ///
    /// #[websocket_gateway]
    /// impl Registered {}
    ///
    /// // Every `#[websocket_gateway]` the binary links is served: no list to keep up to date.
    /// let app = GatewayApp::new().build().unwrap();
    /// assert!(app.server_of::<Registered>().is_some());
    /// ```
    pub fn new() -> Self {
        Self::default()
    }

    /// Provides a service: every `Inject<T>` field or argument receives this instance.
    /// Providing the same type twice keeps the last.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// use ws_gateway_core::prelude::*;
    /// use ws_gateway_core::Handshake;
    ///
    /// struct Greeting(&'static str);
    ///
    /// #[websocket_gateway(path = "/greet")]
    /// struct GreetGateway {
    ///     greeting: Inject<Greeting>,
    /// }
    ///
    /// #[websocket_gateway]
    /// impl GreetGateway {
    ///     #[subscribe("greet")]
    ///     fn greet(&self) -> &'static str {
    ///         self.greeting.0
    ///     }
    /// }
    ///
    /// let app = GatewayApp::new()
    ///     .provide(Greeting("hello"))
    ///     .provide(Greeting("bonjour")) // the same type again: the last one is kept
    ///     .gateway::<GreetGateway>()
    ///     .build()
    ///     .unwrap();
    /// let gw = &app.gateways()[0];
    /// let (client, _queue) = gw.open(Handshake::default(), 8);
    /// let answer = gw.handle_json(&client, r#"{"event":"greet"}"#).answer().await;
    /// assert_eq!(answer.frame().unwrap().as_str(), r#"{"event":"greet","data":"bonjour"}"#);
    /// # }
    /// ```
    pub fn provide<T: Send + Sync + 'static>(self, value: T) -> Self {
        self.provide_arc(Arc::new(value))
    }

    /// Provides a service that is already shared.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// use std::sync::Arc;
    /// use std::sync::atomic::{AtomicUsize, Ordering};
    /// use ws_gateway_core::prelude::*;
    /// use ws_gateway_core::Handshake;
    /// use ws_gateway_core::transport::Answer;
    ///
    /// struct Hits(AtomicUsize);
    ///
    /// #[websocket_gateway(path = "/hits")]
    /// struct HitsGateway {
    ///     hits: Inject<Hits>,
    /// }
    ///
    /// #[websocket_gateway]
    /// impl HitsGateway {
    ///     #[subscribe("hit")]
    ///     fn hit(&self) {
    ///         self.hits.0.fetch_add(1, Ordering::Relaxed);
    ///     }
    /// }
    ///
    /// // The app and the code outside it share one counter.
    /// let hits = Arc::new(Hits(AtomicUsize::new(0)));
    /// let app = GatewayApp::new()
    ///     .provide_arc(Arc::clone(&hits))
    ///     .gateway::<HitsGateway>()
    ///     .build()
    ///     .unwrap();
    /// let gw = &app.gateways()[0];
    /// let (client, _queue) = gw.open(Handshake::default(), 8);
    /// let answer = gw.handle_json(&client, r#"{"event":"hit"}"#).answer().await;
    /// assert!(matches!(answer, Answer::Nothing)); // a handler returning `()` sends nothing
    /// assert_eq!(hits.0.load(Ordering::Relaxed), 1);
    /// # }
    /// ```
    pub fn provide_arc<T: Send + Sync + 'static>(mut self, value: Arc<T>) -> Self {
        self.factories.retain(|f| f.id != TypeId::of::<T>());
        self.providers.insert(value);
        self
    }

    /// Provides a service built by `factory` from other providers when the app is built,
    /// NestJS's `useFactory` with `inject`: the factory's arguments
    /// ([`Dependency`](crate::Dependency): `Inject<T>`, `Option<Inject<T>>`, a gateway's
    /// instance `Inject<G>`, its [`ServerOf<G>`](crate::ServerOf)) say what it needs, and
    /// [`build`](Self::build) runs every factory and gateway after what it needs, whatever
    /// the order they were given in. A provider given twice, as a value or a factory, is
    /// the last one given.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// use ws_gateway_core::prelude::*;
    /// use ws_gateway_core::Handshake;
    ///
    /// struct Config {
    ///     greeting: &'static str,
    /// }
    /// struct Names(Vec<&'static str>);
    ///
    /// /// Built from the two providers above.
    /// struct Greeter {
    ///     greeting: &'static str,
    ///     names: Inject<Names>,
    /// }
    ///
    /// #[websocket_gateway(path = "/greet")]
    /// struct GreetGateway {
    ///     greeter: Inject<Greeter>,
    /// }
    ///
    /// #[websocket_gateway]
    /// impl GreetGateway {
    ///     #[subscribe("greet")]
    ///     fn greet(&self, i: usize) -> String {
    ///         format!("{}, {}", self.greeter.greeting, self.greeter.names.0[i])
    ///     }
    /// }
    ///
    /// let app = GatewayApp::new()
    ///     // NestJS: { provide: Greeter, useFactory: (config, names) => .., inject: [Config, Names] }
    ///     .provide_factory(|config: Inject<Config>, names: Inject<Names>| Greeter {
    ///         greeting: config.greeting,
    ///         names,
    ///     })
    ///     .provide(Config { greeting: "hello" }) // given after the factory that needs it: fine
    ///     .provide(Names(vec!["ada", "grace"]))
    ///     .gateway::<GreetGateway>()
    ///     .build()
    ///     .unwrap();
    /// let gw = &app.gateways()[0];
    /// let (client, _queue) = gw.open(Handshake::default(), 8);
    /// let answer = gw.handle_json(&client, r#"{"event":"greet","data":1}"#).answer().await;
    /// assert_eq!(answer.frame().unwrap().as_str(), r#"{"event":"greet","data":"hello, grace"}"#);
    /// # }
    /// ```
    pub fn provide_factory<Args, T, F>(self, factory: F) -> Self
    where
        Args: 'static,
        T: Send + Sync + 'static,
        F: FactoryFn<Args, Output = T>,
    {
        self.add_factory(Factory::sync(factory, Ok::<T, BuildError>))
    }

    /// Provides a service built by a factory that may fail: an `Err` fails
    /// [`build`](Self::build) with [`BuildError::Factory`], naming the type, its cause kept
    /// as the error's `source`.
    ///
    /// # Examples
    ///
    /// ```
    /// use ws_gateway_core::prelude::*;
    /// use ws_gateway_core::BuildError;
    ///
    /// struct Env(&'static str);
    /// struct Port(u16);
    ///
    /// #[websocket_gateway(path = "/port")]
    /// struct PortGateway {
    ///     port: Inject<Port>,
    /// }
    /// #[websocket_gateway]
    /// impl PortGateway {}
    ///
    /// let app = |env| {
    ///     GatewayApp::new()
    ///         .provide(Env(env))
    ///         .try_provide_factory(|env: Inject<Env>| env.0.parse().map(Port))
    ///         .gateway::<PortGateway>()
    ///         .build()
    /// };
    /// assert_eq!(app("3000").unwrap().providers().get::<Port>().unwrap().0, 3000);
    /// let err = app("three thousand").unwrap_err();
    /// assert!(matches!(err, BuildError::Factory { .. }));
    /// assert_eq!(err.to_string(), "the factory of Port failed: invalid digit found in string");
    /// ```
    pub fn try_provide_factory<Args, T, E, F>(self, factory: F) -> Self
    where
        Args: 'static,
        T: Send + Sync + 'static,
        E: Into<BoxError> + 'static,
        F: FactoryFn<Args, Output = Result<T, E>>,
    {
        self.add_factory(Factory::sync(factory, |returned: Result<T, E>| {
            returned.map_err(failed::<T, E>)
        }))
    }

    /// Provides a service built by an async factory, NestJS's async provider: a connection
    /// pool that must connect first, a configuration fetched over the network. Its
    /// arguments are the same as [`provide_factory`](Self::provide_factory)'s; what needs
    /// it is built once it resolved. An `Err` fails the build as
    /// [`try_provide_factory`](Self::try_provide_factory)'s does.
    ///
    /// An app with an async factory is built with [`build_async`](Self::build_async):
    /// [`build`](Self::build) cannot wait for it (it is called inside the async runtime
    /// that would have to run the factory, which it must not block), so it fails with
    /// [`BuildError::AsyncFactory`] saying so, before anything is built.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// use ws_gateway_core::prelude::*;
    /// use ws_gateway_core::BuildError;
    ///
    /// struct DatabaseUrl(String);
    ///
    /// /// Stands for a pool that connects before it can be used.
    /// struct Pool {
    ///     connected_to: String,
    /// }
    ///
    /// impl Pool {
    ///     async fn connect(url: &str) -> std::io::Result<Self> {
    ///         tokio::task::yield_now().await;
    ///         Ok(Pool { connected_to: url.to_owned() })
    ///     }
    /// }
    ///
    /// #[websocket_gateway(path = "/users")]
    /// struct UsersGateway {
    ///     pool: Inject<Pool>,
    /// }
    /// #[websocket_gateway]
    /// impl UsersGateway {}
    ///
    /// let builder = || {
    ///     GatewayApp::new()
    ///         .provide(DatabaseUrl("postgres://localhost/app".into()))
    ///         // NestJS: { provide: Pool, useFactory: async (url) => await connect(url), inject: [DatabaseUrl] }
    ///         .provide_async_factory(|url: Inject<DatabaseUrl>| async move { Pool::connect(&url.0).await })
    ///         .gateway::<UsersGateway>()
    /// };
    /// let app = builder().build_async().await?;
    /// assert_eq!(app.providers().get::<Pool>().unwrap().connected_to, "postgres://localhost/app");
    ///
    /// let err = builder().build().unwrap_err();
    /// assert!(matches!(err, BuildError::AsyncFactory { .. }));
    /// assert!(err.to_string().contains("build the app with `.build_async().await`"));
    /// # Ok(())
    /// # }
    /// ```
    pub fn provide_async_factory<Args, T, E, F, Fut>(self, factory: F) -> Self
    where
        Args: 'static,
        T: Send + Sync + 'static,
        E: Into<BoxError>,
        F: FactoryFn<Args, Output = Fut>,
        Fut: Future<Output = Result<T, E>> + Send + 'static,
    {
        self.add_factory(Factory::future(factory))
    }

    fn add_factory(mut self, factory: Factory) -> Self {
        self.providers.remove(factory.id);
        self.factories.retain(|f| f.id != factory.id);
        self.factories.push(factory);
        self
    }

    /// Serves gateway `G`. Once any gateway is chosen this way, only the chosen ones are
    /// served; without any, every registered gateway is.
    ///
    /// # Examples
    ///
    /// ```
    /// use ws_gateway_core::prelude::*;
    ///
    /// #[websocket_gateway(path = "/a")]
    /// struct A;
    /// #[websocket_gateway]
    /// impl A {}
    ///
    /// #[websocket_gateway(path = "/b")]
    /// struct B;
    /// #[websocket_gateway]
    /// impl B {}
    ///
    /// let app = GatewayApp::new().gateway::<B>().build().unwrap();
    /// let paths: Vec<_> = app.gateways().iter().map(|gw| gw.path()).collect();
    /// assert_eq!(paths, ["/b"]);
    /// ```
    pub fn gateway<G: GatewayHandlers>(mut self) -> Self {
        let descriptor = registered()
            .into_iter()
            .find(|d| d.is::<G>())
            .map_or_else(|| GatewayDescriptor::of::<G>("<unregistered>", 0), |d| *d);
        self.selected.push((TypeId::of::<G>(), descriptor));
        self
    }

    /// Adds a guard to every handler of every gateway; global guards run first.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// use ws_gateway_core::prelude::*;
    /// use ws_gateway_core::Handshake;
    ///
    /// /// Closed for maintenance.
    /// struct DenyAll;
    ///
    /// impl Guard for DenyAll {
    ///     async fn can_activate(&self, _cx: &Context<'_>) -> Result<bool, WsException> {
    ///         Ok(false)
    ///     }
    /// }
    ///
    /// #[websocket_gateway(path = "/chat")]
    /// struct Chat;
    ///
    /// #[websocket_gateway]
    /// impl Chat {
    ///     #[subscribe("ping")]
    ///     fn ping(&self) -> &'static str {
    ///         "pong"
    ///     }
    /// }
    ///
    /// let app = GatewayApp::new().use_global_guard(DenyAll).gateway::<Chat>().build().unwrap();
    /// let gw = &app.gateways()[0];
    /// let (client, _queue) = gw.open(Handshake::default(), 8);
    /// let answer = gw.handle_json(&client, r#"{"event":"ping"}"#).answer().await;
    /// assert_eq!(
    ///     answer.frame().unwrap().as_str(),
    ///     r#"{"event":"exception","data":{"status":"error","message":"Forbidden resource","cause":{"pattern":"ping","data":null}}}"#
    /// );
    /// # }
    /// ```
    pub fn use_global_guard(mut self, guard: impl Guard) -> Self {
        self.global.guards.push(GuardRef::new(guard));
        self
    }

    /// Adds an interceptor around every handler of every gateway; global interceptors are
    /// the outermost.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// use ws_gateway_core::prelude::*;
    /// use ws_gateway_core::Handshake;
    ///
    /// /// Wraps every reply's data in `{"wrapped": ...}`.
    /// struct Wrap;
    ///
    /// impl Interceptor for Wrap {
    ///     async fn intercept(&self, _cx: &Context<'_>, next: Next<'_>) -> Outcome {
    ///         Ok(next.run().await?.map_data(|data| serde_json::json!({ "wrapped": data })))
    ///     }
    /// }
    ///
    /// #[websocket_gateway(path = "/chat")]
    /// struct Chat;
    ///
    /// #[websocket_gateway]
    /// impl Chat {
    ///     #[subscribe("ping")]
    ///     fn ping(&self) -> &'static str {
    ///         "pong"
    ///     }
    /// }
    ///
    /// let app = GatewayApp::new().use_global_interceptor(Wrap).gateway::<Chat>().build().unwrap();
    /// let gw = &app.gateways()[0];
    /// let (client, _queue) = gw.open(Handshake::default(), 8);
    /// let answer = gw.handle_json(&client, r#"{"event":"ping"}"#).answer().await;
    /// assert_eq!(answer.frame().unwrap().as_str(), r#"{"event":"ping","data":{"wrapped":"pong"}}"#);
    /// # }
    /// ```
    pub fn use_global_interceptor(mut self, interceptor: impl Interceptor) -> Self {
        self.global
            .interceptors
            .push(InterceptorRef::new(interceptor));
        self
    }

    /// Adds an exception filter for every gateway; global filters are tried last, after the
    /// method's and the gateway's. They also see failures that reach no handler (malformed
    /// frames, unknown events).
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// use ws_gateway_core::prelude::*;
    /// use ws_gateway_core::{Frame, Handshake};
    ///
    /// /// Sends every client error as `{"event":"oops","data":<message>}`.
    /// struct Oops;
    ///
    /// impl ExceptionFilter for Oops {
    ///     type Error = WsException;
    ///
    ///     fn catch(&self, error: &WsException, _cx: &FilterContext<'_>) -> Caught {
    ///         Caught::frame(Frame::event("oops", error.message()).unwrap())
    ///     }
    /// }
    ///
    /// #[websocket_gateway(path = "/chat")]
    /// struct Chat;
    ///
    /// #[websocket_gateway]
    /// impl Chat {}
    ///
    /// let app = GatewayApp::new().use_global_filter(Oops).gateway::<Chat>().build().unwrap();
    /// let gw = &app.gateways()[0];
    /// let (client, _queue) = gw.open(Handshake::default(), 8);
    /// // Global filters also see frames that reach no handler.
    /// let answer = gw.handle_json(&client, r#"{"event":"nope"}"#).answer().await;
    /// assert_eq!(
    ///     answer.frame().unwrap().as_str(),
    ///     r#"{"event":"oops","data":"Unknown event \"nope\""}"#
    /// );
    /// # }
    /// ```
    pub fn use_global_filter(mut self, filter: impl ExceptionFilter) -> Self {
        self.global.filters.push(FilterRef::new(filter));
        self
    }

    /// Authenticates the upgrade requests of gateway `G`: a request the authenticator
    /// refuses is answered with HTTP 401 and never upgraded. Replaces
    /// [`authenticate_all`](Self::authenticate_all) for `G`.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// use ws_gateway_core::prelude::*;
    /// use ws_gateway_core::{Authenticator, HandshakeRequest, UNAUTHORIZED};
    ///
    /// /// `?token=secret` is alice; anything else is refused.
    /// struct TokenAuth;
    ///
    /// impl Authenticator for TokenAuth {
    ///     type Identity = String;
    ///
    ///     async fn authenticate(&self, request: &HandshakeRequest<'_>) -> Result<String, WsException> {
    ///         match request.query_param("token") {
    ///             Some("secret") => Ok("alice".to_owned()),
    ///             _ => Err(WsException::new(UNAUTHORIZED)),
    ///         }
    ///     }
    /// }
    ///
    /// #[websocket_gateway(path = "/private")]
    /// struct Private;
    /// #[websocket_gateway]
    /// impl Private {}
    ///
    /// #[websocket_gateway(path = "/public")]
    /// struct Public;
    /// #[websocket_gateway]
    /// impl Public {}
    ///
    /// let app = GatewayApp::new()
    ///     .gateway::<Private>()
    ///     .gateway::<Public>()
    ///     .authenticate::<Private>(TokenAuth)
    ///     .build()
    ///     .unwrap();
    /// let [private, public] = app.gateways() else { panic!("two gateways") };
    /// assert!(private.requires_authentication());
    /// assert!(!public.requires_authentication());
    ///
    /// let (uri, headers) = ("/private?token=guess".parse().unwrap(), http::HeaderMap::new());
    /// let Err(refused) = private.authenticate(&HandshakeRequest::new(&uri, &headers)).await else {
    ///     panic!("a wrong token got in")
    /// };
    /// assert_eq!(refused.message(), "Unauthorized");
    /// # }
    /// ```
    pub fn authenticate<G: GatewayHandlers>(mut self, authenticator: impl Authenticator) -> Self {
        self.authenticators.push((
            Some(TypeId::of::<G>()),
            AuthenticatorRef(Arc::new(authenticator)),
        ));
        self
    }

    /// Authenticates the upgrade requests of every gateway that has no authenticator of its
    /// own.
    ///
    /// # Examples
    ///
    /// ```
    /// use ws_gateway_core::prelude::*;
    /// use ws_gateway_core::{Authenticator, HandshakeRequest};
    ///
    /// /// Lets in any request with an `x-user` header.
    /// struct HeaderAuth;
    ///
    /// impl Authenticator for HeaderAuth {
    ///     type Identity = String;
    ///
    ///     async fn authenticate(&self, request: &HandshakeRequest<'_>) -> Result<String, WsException> {
    ///         let user = request.headers().get("x-user").and_then(|v| v.to_str().ok());
    ///         user.map(str::to_owned).ok_or_else(|| WsException::new("Unauthorized"))
    ///     }
    /// }
    ///
    /// #[websocket_gateway(path = "/a")]
    /// struct A;
    /// #[websocket_gateway]
    /// impl A {}
    ///
    /// #[websocket_gateway(path = "/b")]
    /// struct B;
    /// #[websocket_gateway]
    /// impl B {}
    ///
    /// let app = GatewayApp::new()
    ///     .gateway::<A>()
    ///     .gateway::<B>()
    ///     .authenticate_all(HeaderAuth)
    ///     .build()
    ///     .unwrap();
    /// assert!(app.gateways().iter().all(|gw| gw.requires_authentication()));
    /// ```
    pub fn authenticate_all(mut self, authenticator: impl Authenticator) -> Self {
        self.authenticators
            .push((None, AuthenticatorRef(Arc::new(authenticator))));
        self
    }

    /// Switches connection state recovery on for gateway `G` (see [`Recovery`]): a client
    /// that drops comes back within the window with its id, rooms, identity and state, and
    /// receives what it missed. Overrides [`recover_all`](Self::recover_all) for `G`.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use ws_gateway_core::prelude::*;
    /// use ws_gateway_core::Recovery;
    ///
    /// #[websocket_gateway(path = "/doc-recover")]
    /// struct Chat;
    /// #[websocket_gateway]
    /// impl Chat {}
    ///
    /// let app = GatewayApp::new()
    ///     .recover::<Chat>(Recovery::new(Duration::from_secs(120)))
    ///     .gateway::<Chat>()
    ///     .build()
    ///     .unwrap();
    /// # let _ = app;
    /// ```
    pub fn recover<G: GatewayHandlers>(mut self, recovery: Recovery) -> Self {
        self.recovery.push((Some(TypeId::of::<G>()), recovery));
        self
    }

    /// Switches connection state recovery on for every gateway that
    /// [`recover`](Self::recover) does not configure.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use ws_gateway_core::prelude::*;
    /// use ws_gateway_core::Recovery;
    ///
    /// #[websocket_gateway(path = "/doc-recover-all")]
    /// struct Chat;
    /// #[websocket_gateway]
    /// impl Chat {}
    ///
    /// let app = GatewayApp::new()
    ///     .recover_all(Recovery::new(Duration::from_secs(120)))
    ///     .gateway::<Chat>()
    ///     .build()
    ///     .unwrap();
    /// # let _ = app;
    /// ```
    pub fn recover_all(mut self, recovery: Recovery) -> Self {
        self.recovery.push((None, recovery));
        self
    }

    /// Sets the per-connection buffer sizes and limits.
    ///
    /// # Examples
    ///
    /// ```
    /// use ws_gateway_core::prelude::*;
    /// use ws_gateway_core::ConnectionConfig;
    ///
    /// #[websocket_gateway(path = "/chat")]
    /// struct Chat;
    /// #[websocket_gateway]
    /// impl Chat {}
    ///
    /// let mut config = ConnectionConfig::default();
    /// config.outbound_queue = 64;
    /// config.allowed_origins = ws_gateway_core::Origins::only(["https://chat.example"]);
    /// let app = GatewayApp::new().config(config).gateway::<Chat>().build().unwrap();
    /// assert_eq!(app.config().outbound_queue, 64);
    /// ```
    pub fn config(mut self, config: ConnectionConfig) -> Self {
        self.config = config;
        self
    }

    /// Carries every gateway's emits, room operations and disconnects to the other
    /// instances of the app, and theirs to it: `ws_gateway_redis::RedisAdapter` for Redis.
    /// Without one, everything stays in this process.
    ///
    /// # Examples
    ///
    /// ```
    /// use ws_gateway_core::GatewayApp;
    /// use ws_gateway_core::adapter::{Adapter, LocalServer, Message};
    ///
    /// /// Sends nothing anywhere: the embedded default, spelled out.
    /// struct Alone;
    ///
    /// impl Adapter for Alone {
    ///     fn attach(&self, _server: LocalServer) {}
    ///     fn publish(&self, _message: &Message<'_>) {}
    /// }
    ///
    /// let builder = GatewayApp::new().adapter(Alone);
    /// # let _ = builder;
    /// ```
    ///
    /// With Redis (`ws-gateway-redis`):
    /// `GatewayApp::new().adapter(RedisAdapter::connect(RedisConfig::new(url)).await?)`.
    pub fn adapter(mut self, adapter: impl Adapter) -> Self {
        self.adapter = Some(AdapterRef::new(adapter));
        self
    }

    /// Builds every gateway, and before each what it needs: the factories, in dependency
    /// order, then each gateway's instance, then its handlers and `#[after_init]`.
    ///
    /// # Errors
    ///
    /// [`BuildError`]: two gateways on one path (naming both), a missing provider (naming
    /// the gateway, the field and the type), providers that depend on each other in a
    /// cycle or on something nobody provides (naming the chain), a failing factory or
    /// `#[after_init]`, an async factory (use [`build_async`](Self::build_async)), or no
    /// gateway at all.
    ///
    /// # Examples
    ///
    /// ```
    /// use ws_gateway_core::prelude::*;
    /// use ws_gateway_core::BuildError;
    ///
    /// #[websocket_gateway(path = "/x")]
    /// struct First;
    /// #[websocket_gateway]
    /// impl First {}
    ///
    /// #[websocket_gateway(path = "/x")]
    /// struct Second;
    /// #[websocket_gateway]
    /// impl Second {}
    ///
    /// let err = GatewayApp::new().gateway::<First>().gateway::<Second>().build().unwrap_err();
    /// assert!(matches!(err, BuildError::DuplicatePath { path: "/x", .. }));
    /// assert!(err.to_string().contains("give one of them another path"));
    ///
    /// assert!(GatewayApp::new().gateway::<First>().build().is_ok());
    /// ```
    pub fn build(mut self) -> Result<App, BuildError> {
        let mut resolution = self.plan()?;
        if let Some(provider) = resolution.first_async() {
            return Err(BuildError::AsyncFactory {
                provider: provider.to_owned(),
            });
        }
        loop {
            match resolution.step()? {
                Step::Ran => {}
                Step::Done => break,
                // `first_async` found none.
                Step::Await(..) => {
                    return Err(BuildError::AsyncFactory {
                        provider: String::new(),
                    });
                }
            }
        }
        self.assemble(resolution.finish())
    }

    /// Builds every gateway, awaiting the async factories
    /// ([`provide_async_factory`](Self::provide_async_factory)) in dependency order: what
    /// needs one is built once it resolved. The same as [`build`](Self::build) otherwise,
    /// which an app without async factories may use as well.
    ///
    /// # Errors
    ///
    /// Those of [`build`](Self::build), and an async factory's error.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), ws_gateway_core::BuildError> {
    /// use ws_gateway_core::prelude::*;
    ///
    /// struct Token(String);
    /// struct Client(String);
    ///
    /// #[websocket_gateway(path = "/api")]
    /// struct Api {
    ///     client: Inject<Client>,
    /// }
    /// #[websocket_gateway]
    /// impl Api {}
    ///
    /// let app = GatewayApp::new()
    ///     // The client needs the token, which is fetched first.
    ///     .provide_factory(|token: Inject<Token>| Client(format!("Bearer {}", token.0)))
    ///     .provide_async_factory(|| async { Ok::<_, std::io::Error>(Token("t0k3n".into())) })
    ///     .gateway::<Api>()
    ///     .build_async()
    ///     .await?;
    /// assert_eq!(app.providers().get::<Client>().unwrap().0, "Bearer t0k3n");
    /// # Ok(())
    /// # }
    /// ```
    pub async fn build_async(mut self) -> Result<App, BuildError> {
        let mut resolution = self.plan()?;
        loop {
            match resolution.step()? {
                Step::Ran => {}
                Step::Done => break,
                Step::Await(id, future) => {
                    let value = future.await?;
                    resolution.put(id, value);
                }
            }
        }
        self.assemble(resolution.finish())
    }

    /// The gateways to serve, checked, and the order to build them and the providers in.
    fn plan(&mut self) -> Result<Resolution, BuildError> {
        let selected = std::mem::take(&mut self.selected);
        let mut descriptors: Vec<GatewayDescriptor> = if selected.is_empty() {
            registered().into_iter().copied().collect()
        } else {
            let mut seen = Vec::new();
            selected
                .into_iter()
                .filter(|(id, _)| {
                    let new = !seen.contains(id);
                    seen.push(*id);
                    new
                })
                .map(|(_, d)| d)
                .collect()
        };
        if descriptors.is_empty() {
            return Err(BuildError::NoGateways);
        }
        descriptors.sort_by(|a, b| (a.path, a.name).cmp(&(b.path, b.name)));
        crate::path_params::check_routes(&descriptors)?;
        Resolution::plan(
            std::mem::take(&mut self.providers),
            std::mem::take(&mut self.factories),
            descriptors,
        )
    }

    /// The app around the built gateways.
    fn assemble(self, built: Built) -> Result<App, BuildError> {
        let authenticator_of = |d: &GatewayDescriptor| closest(&self.authenticators, d).cloned();
        let recovery_of = |d: &GatewayDescriptor| closest(&self.recovery, d).cloned();
        let gateways = built
            .gateways
            .into_iter()
            .map(|(d, instance, server)| {
                if let Some(recovery) = recovery_of(&d) {
                    server.enable_recovery(Recorder::new(recovery, authenticator_of(&d)));
                }
                (d.assemble)(
                    instance,
                    server,
                    &AppParts {
                        providers: &built.providers,
                        global: &self.global,
                        authenticator: authenticator_of(&d),
                    },
                )
            })
            .collect::<Result<Vec<GatewayRuntime>, _>>()?;
        let room_limits = crate::server::RoomLimits::of(&self.config);
        for gateway in &gateways {
            gateway.server().limit_rooms(room_limits);
            gateway.server().set_ack_timeout(self.config.ack_timeout);
        }
        if let Some(adapter) = &self.adapter {
            for gateway in &gateways {
                gateway.server().attach_adapter(adapter);
            }
        }
        let connections = Connections::new(
            self.config.max_connections,
            self.config.max_connections_per_ip,
        );
        Ok(App {
            inner: Arc::new(AppInner {
                gateways,
                providers: built.providers,
                config: self.config,
                connections,
            }),
        })
    }
}

/// The built gateways, ready to be mounted by a transport (ws-gateway-axum's `into_router`).
/// Cheap to clone.
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
///     #[subscribe("echo")]
///     fn echo(&self, data: serde_json::Value) -> serde_json::Value {
///         data
///     }
/// }
///
/// let app = GatewayApp::new().gateway::<Chat>().build().unwrap();
/// // What a transport does with each connection, here without a socket:
/// let gw = &app.gateways()[0];
/// let (client, _queue) = gw.open(Handshake::default(), 8);
/// gw.connect(&client).await.unwrap();
/// let answer = gw.handle_json(&client, r#"{"event":"echo","data":[1]}"#).answer().await;
/// assert_eq!(answer.frame().unwrap().as_str(), r#"{"event":"echo","data":[1]}"#);
/// gw.disconnect(&client).await;
/// # }
/// ```
#[derive(Clone, Debug)]
pub struct App {
    inner: Arc<AppInner>,
}

#[derive(Debug)]
struct AppInner {
    gateways: Vec<GatewayRuntime>,
    providers: Providers,
    config: ConnectionConfig,
    connections: Connections,
}

impl App {
    /// The gateways, sorted by path.
    ///
    /// # Examples
    ///
    /// ```
    /// use ws_gateway_core::prelude::*;
    ///
    /// #[websocket_gateway(path = "/b")]
    /// struct B;
    /// #[websocket_gateway]
    /// impl B {}
    ///
    /// #[websocket_gateway(path = "/a")]
    /// struct A;
    /// #[websocket_gateway]
    /// impl A {}
    ///
    /// let app = GatewayApp::new().gateway::<B>().gateway::<A>().build().unwrap();
    /// let names: Vec<_> = app.gateways().iter().map(|gw| (gw.path(), gw.name())).collect();
    /// assert_eq!(names, [("/a", "A"), ("/b", "B")]);
    /// ```
    pub fn gateways(&self) -> &[GatewayRuntime] {
        &self.inner.gateways
    }

    /// The per-connection settings.
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
    /// assert_eq!(app.config(), &ws_gateway_core::ConnectionConfig::default());
    /// ```
    pub fn config(&self) -> &ConnectionConfig {
        &self.inner.config
    }

    /// The live connections of every gateway, with the app's connection limits: what a
    /// transport admits connections through and watches for the shutdown.
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
    /// let mut config = ws_gateway_core::ConnectionConfig::default();
    /// config.max_connections = Some(1);
    /// let app = GatewayApp::new().config(config).gateway::<Chat>().build().unwrap();
    /// let first = app.connections().admit(None).unwrap();
    /// assert!(app.connections().admit(None).is_err()); // the second gets HTTP 503
    /// assert_eq!(app.connections().live(), 1);
    /// drop(first);
    /// assert_eq!(app.connections().live(), 0);
    /// ```
    pub fn connections(&self) -> &Connections {
        &self.inner.connections
    }

    /// Shuts the app down gracefully: no new connection is accepted, every client's
    /// in-flight handlers get until `grace` to finish, then it is closed with code 1001
    /// ("going away") and its `handle_disconnect` runs. Resolves when every connection is
    /// closed (or a second after the deadline); returns how many were still open.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// use std::time::Duration;
    /// use ws_gateway_core::prelude::*;
    ///
    /// #[websocket_gateway(path = "/bye")]
    /// struct ByeGateway;
    ///
    /// #[websocket_gateway]
    /// impl ByeGateway {}
    ///
    /// let app = GatewayApp::new().gateway::<ByeGateway>().build().unwrap();
    /// assert_eq!(app.shutdown(Duration::from_secs(5)).await, 0);
    /// assert!(app.connections().is_shutting_down());
    /// # }
    /// ```
    pub async fn shutdown(&self, grace: std::time::Duration) -> usize {
        self.inner.connections.begin_shutdown(grace);
        self.inner
            .connections
            .wait_closed(grace + std::time::Duration::from_secs(1))
            .await
    }

    /// The server handle of the gateway at `path`, to push events from outside a gateway
    /// (an HTTP handler, a background task).
    ///
    /// # Examples
    ///
    /// ```
    /// use ws_gateway_core::prelude::*;
    /// use ws_gateway_core::Handshake;
    ///
    /// #[websocket_gateway(path = "/news")]
    /// struct News;
    /// #[websocket_gateway]
    /// impl News {}
    ///
    /// let app = GatewayApp::new().gateway::<News>().build().unwrap();
    /// let (client, mut queue) = app.gateways()[0].open(Handshake::default(), 8);
    ///
    /// // E.g. in an HTTP handler that received a headline:
    /// let news = app.server("/news").unwrap();
    /// assert_eq!(news.emit("headline", &"Rust 2024 is out").unwrap(), 1);
    /// assert!(queue.try_recv().is_some());
    /// assert!(app.server("/sports").is_none());
    /// ```
    pub fn server(&self, path: &str) -> Option<WsServer> {
        self.inner
            .gateways
            .iter()
            .find(|g| g.path() == path)
            .map(|g| g.server().clone())
    }

    /// Every provider of the app: the values given to the builder, what the factories
    /// built, each gateway's instance and its [`ServerOf`](crate::ServerOf). What the rest
    /// of the program (an HTTP handler, a background task) takes them from.
    ///
    /// # Examples
    ///
    /// ```
    /// use ws_gateway_core::prelude::*;
    ///
    /// struct Pool(&'static str);
    /// struct Repo(Inject<Pool>);
    ///
    /// #[websocket_gateway(path = "/repo")]
    /// struct RepoGateway {
    ///     repo: Inject<Repo>,
    /// }
    /// #[websocket_gateway]
    /// impl RepoGateway {}
    ///
    /// let app = GatewayApp::new()
    ///     .provide(Pool("primary"))
    ///     .provide_factory(Repo)
    ///     .gateway::<RepoGateway>()
    ///     .build()
    ///     .unwrap();
    /// // The gateway and the rest of the program share the one `Repo` the factory built.
    /// let repo = app.providers().get::<Repo>().unwrap();
    /// assert_eq!(repo.0.0, "primary");
    /// assert!(std::ptr::eq(&*repo, &*app.instance_of::<RepoGateway>().unwrap().repo));
    /// ```
    pub fn providers(&self) -> &Providers {
        &self.inner.providers
    }

    /// The instance of gateway `G`, the one its handlers run on: what an axum handler or
    /// a background task calls the gateway's own methods on (NestJS's "gateways can be
    /// injected by other classes"). Factories take it as an `Inject<G>` argument.
    ///
    /// # Examples
    ///
    /// ```
    /// use ws_gateway_core::prelude::*;
    /// use ws_gateway_core::Handshake;
    ///
    /// #[websocket_gateway(path = "/news")]
    /// struct NewsGateway {
    ///     server: WsServer,
    /// }
    ///
    /// #[websocket_gateway]
    /// impl NewsGateway {
    ///     #[subscribe("publish")]
    ///     fn publish(&self, headline: String) -> usize {
    ///         self.announce(&headline)
    ///     }
    /// }
    ///
    /// impl NewsGateway {
    ///     /// Sends a headline to every client: from a handler, or from outside the gateway.
    ///     fn announce(&self, headline: &str) -> usize {
    ///         self.server.emit("headline", &headline).unwrap_or(0)
    ///     }
    /// }
    ///
    /// let app = GatewayApp::new().gateway::<NewsGateway>().build().unwrap();
    /// let (_client, mut queue) = app.gateways()[0].open(Handshake::default(), 8);
    ///
    /// // E.g. in an axum handler for `POST /headlines`:
    /// let news = app.instance_of::<NewsGateway>().unwrap();
    /// assert_eq!(news.announce("Rust 2024 is out"), 1);
    /// assert!(queue.try_recv().is_some());
    /// ```
    pub fn instance_of<G: GatewayHandlers>(&self) -> Option<Inject<G>> {
        self.inner.providers.get::<G>()
    }

    /// The server handle of gateway `G`.
    ///
    /// # Examples
    ///
    /// ```
    /// use ws_gateway_core::prelude::*;
    ///
    /// #[websocket_gateway(path = "/news")]
    /// struct News;
    /// #[websocket_gateway]
    /// impl News {}
    ///
    /// #[websocket_gateway(path = "/other")]
    /// struct Other;
    /// #[websocket_gateway]
    /// impl Other {}
    ///
    /// let app = GatewayApp::new().gateway::<News>().build().unwrap();
    /// assert_eq!(app.server_of::<News>().unwrap().path(), "/news");
    /// assert!(app.server_of::<Other>().is_none()); // not served by this app
    /// ```
    pub fn server_of<G: GatewayHandlers>(&self) -> Option<WsServer> {
        self.inner
            .gateways
            .iter()
            .find(|g| g.name() == G::NAME && g.path() == G::PATH)
            .map(|g| g.server().clone())
    }
}

/// The setting of a gateway-scoped list (`authenticate::<G>`, `recover::<G>`) for `d`: the
/// last one given for its type, else the last one given for every gateway.
fn closest<'a, T>(settings: &'a [(Option<TypeId>, T)], d: &GatewayDescriptor) -> Option<&'a T> {
    let own = settings
        .iter()
        .rev()
        .find(|(id, _)| *id == Some((d.type_id)()));
    let all = settings.iter().rev().find(|(id, _)| id.is_none());
    own.or(all).map(|(_, setting)| setting)
}
