//! Dependency injection: [`Providers`], [`Inject`], and [`FromProviders`], the trait of
//! everything a gateway field can be; [`Needs`], what a field or a factory declares it
//! depends on, and [`ServerOf`], a gateway's server handle as a provider.

use std::any::{Any, TypeId, type_name};
use std::fmt;
use std::marker::PhantomData;
use std::ops::Deref;
use std::sync::Arc;

use rustc_hash::FxHashMap;

use crate::error::BuildError;
use crate::gateway::Gateway;
use crate::server::WsServer;

/// A built provider, its type erased: what [`Providers`] holds.
pub(crate) type Instance = Arc<dyn Any + Send + Sync>;

/// The services given to [`GatewayApp::provide`](crate::GatewayApp::provide), one per type.
///
/// # Examples
///
/// ```
/// use ws_gateway_core::{BuildContext, BuildError, FromProviders, Inject};
///
/// struct Config {
///     motd: &'static str,
/// }
///
/// /// A field built from another provider, looked up by type.
/// struct Motd(&'static str);
///
/// impl FromProviders for Motd {
///     fn from_providers(cx: &BuildContext<'_>, field: &'static str) -> Result<Self, BuildError> {
///         let config: Option<Inject<Config>> = cx.providers().get::<Config>();
///         config.map(|c| Motd(c.motd)).ok_or_else(|| cx.missing::<Config>("field", field))
///     }
/// }
///
/// use ws_gateway_core::prelude::*;
///
/// #[websocket_gateway(path = "/motd")]
/// struct MotdGateway {
///     motd: Motd,
/// }
///
/// #[websocket_gateway]
/// impl MotdGateway {}
///
/// assert!(GatewayApp::new().gateway::<MotdGateway>().build().is_err());
/// let app = GatewayApp::new().provide(Config { motd: "hi" }).gateway::<MotdGateway>().build();
/// assert!(app.is_ok());
/// ```
#[derive(Clone, Default)]
pub struct Providers {
    by_type: FxHashMap<TypeId, Instance>,
}

impl Providers {
    pub(crate) fn insert<T: Send + Sync + 'static>(&mut self, value: Arc<T>) {
        self.by_type.insert(TypeId::of::<T>(), value);
    }

    /// Stores a value built by a factory or a gateway's constructor, under its type's id.
    pub(crate) fn insert_erased(&mut self, id: TypeId, value: Instance) {
        self.by_type.insert(id, value);
    }

    pub(crate) fn remove(&mut self, id: TypeId) {
        self.by_type.remove(&id);
    }

    pub(crate) fn contains(&self, id: TypeId) -> bool {
        self.by_type.contains_key(&id)
    }

    /// The provider of type `T`, if one was given.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// use ws_gateway_core::prelude::*;
    /// use ws_gateway_core::Handshake;
    ///
    /// struct Prefix(&'static str);
    ///
    /// /// Prefixes every reply with the provided `Prefix`, if there is one.
    /// struct Prefixed;
    ///
    /// impl Interceptor for Prefixed {
    ///     async fn intercept(&self, cx: &Context<'_>, next: Next<'_>) -> Outcome {
    ///         let prefix = cx.providers().get::<Prefix>().map_or("", |p| p.0);
    ///         let reply = next.run().await?;
    ///         Ok(reply.map_data(move |data| format!("{prefix}{}", data.as_str().unwrap_or("")).into()))
    ///     }
    /// }
    ///
    /// #[websocket_gateway(path = "/chat")]
    /// struct Chat;
    /// #[websocket_gateway]
    /// impl Chat {
    ///     #[subscribe("hi")]
    ///     fn hi(&self) -> &'static str {
    ///         "hello"
    ///     }
    /// }
    ///
    /// let app = GatewayApp::new()
    ///     .provide(Prefix("> "))
    ///     .use_global_interceptor(Prefixed)
    ///     .gateway::<Chat>()
    ///     .build()
    ///     .unwrap();
    /// let gw = &app.gateways()[0];
    /// let (client, _queue) = gw.open(Handshake::default(), 8);
    /// let answer = gw.handle_json(&client, r#"{"event":"hi"}"#).answer().await;
    /// assert_eq!(answer.frame().unwrap().as_str(), r#"{"event":"hi","data":"> hello"}"#);
    /// # }
    /// ```
    pub fn get<T: Send + Sync + 'static>(&self) -> Option<Inject<T>> {
        let any = Arc::clone(self.by_type.get(&TypeId::of::<T>())?);
        any.downcast::<T>().ok().map(Inject)
    }
}

impl fmt::Debug for Providers {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Providers")
            .field("count", &self.by_type.len())
            .finish()
    }
}

/// A shared service injected into a gateway, NestJS's constructor injection.
///
/// Give the service to the app builder with
/// [`GatewayApp::provide`](crate::GatewayApp::provide); every gateway field (or handler
/// argument) of type `Inject<T>` receives the same instance. It dereferences to `T`.
///
/// # Examples
///
/// ```
/// use ws_gateway_core::prelude::*;
///
/// #[derive(Default)]
/// struct Greeter;
/// impl Greeter {
///     fn greet(&self, name: &str) -> String {
///         format!("hello, {name}")
///     }
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
///     fn greet(&self, name: String) -> String {
///         self.greeter.greet(&name)
///     }
/// }
///
/// let app = GatewayApp::new()
///     .provide(Greeter)
///     .gateway::<GreetGateway>()
///     .build()
///     .unwrap();
/// # let _ = app;
/// ```
pub struct Inject<T: ?Sized>(Arc<T>);

impl<T: ?Sized> Inject<T> {
    /// Wraps a shared value, e.g. to build a gateway by hand in a unit test.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::sync::Arc;
    /// use ws_gateway_core::Inject;
    ///
    /// let shared = Arc::new(String::from("config"));
    /// let injected = Inject::from_arc(Arc::clone(&shared));
    /// assert_eq!(injected.len(), 6); // derefs to the String
    /// assert_eq!(Arc::strong_count(&shared), 2);
    /// ```
    pub fn from_arc(value: Arc<T>) -> Self {
        Self(value)
    }

    /// The shared value.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::sync::Arc;
    /// use ws_gateway_core::Inject;
    ///
    /// let injected = Inject::new(5);
    /// let arc: Arc<i32> = injected.clone().into_arc();
    /// assert!(Arc::ptr_eq(&arc, &injected.into_arc()));
    /// ```
    pub fn into_arc(self) -> Arc<T> {
        self.0
    }
}

impl<T> Inject<T> {
    /// Wraps a value, e.g. to build a gateway by hand in a unit test.
    ///
    /// # Examples
    ///
    /// ```
    /// let n = ws_gateway_core::Inject::new(5);
    /// assert_eq!(*n, 5);
    /// ```
    pub fn new(value: T) -> Self {
        Self(Arc::new(value))
    }
}

impl<T: ?Sized> Clone for Inject<T> {
    fn clone(&self) -> Self {
        Self(Arc::clone(&self.0))
    }
}

impl<T: ?Sized> Deref for Inject<T> {
    type Target = T;

    fn deref(&self) -> &T {
        &self.0
    }
}

impl<T: ?Sized + fmt::Debug> fmt::Debug for Inject<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// What the app builder hands to each gateway while building it: the providers and the
/// gateway's own server handle.
///
/// # Examples
///
/// ```
/// use ws_gateway_core::prelude::*;
/// use ws_gateway_core::{BuildContext, BuildError, FromProviders};
///
/// /// A field that knows which gateway it belongs to.
/// struct Owner(&'static str, &'static str);
///
/// impl FromProviders for Owner {
///     fn from_providers(cx: &BuildContext<'_>, _field: &'static str) -> Result<Self, BuildError> {
///         Ok(Owner(cx.gateway(), cx.server().path()))
///     }
/// }
///
/// #[websocket_gateway(path = "/owned")]
/// struct Owned {
///     owner: Owner,
/// }
///
/// #[websocket_gateway]
/// impl Owned {
///     #[subscribe("owner")]
///     fn owner(&self) -> (&'static str, &'static str) {
///         (self.owner.0, self.owner.1)
///     }
/// }
///
/// assert!(GatewayApp::new().gateway::<Owned>().build().is_ok());
/// ```
#[derive(Debug)]
pub struct BuildContext<'a> {
    pub(crate) gateway: &'static str,
    pub(crate) providers: &'a Providers,
    pub(crate) server: &'a WsServer,
}

impl BuildContext<'_> {
    /// The type name of the gateway being built.
    pub fn gateway(&self) -> &'static str {
        self.gateway
    }

    /// The app's providers built so far: every value given to the builder, and every
    /// factory and gateway that the gateway being built declared it needs
    /// ([`FromProviders::needs`]), with the factories that need no gateway.
    pub fn providers(&self) -> &Providers {
        self.providers
    }

    /// The server handle of the gateway being built.
    pub fn server(&self) -> &WsServer {
        self.server
    }

    /// The error for a missing provider of type `T` at `site` `name`.
    ///
    /// # Examples
    ///
    /// ```
    /// use ws_gateway_core::prelude::*;
    /// use ws_gateway_core::{BuildContext, BuildError, FromProviders};
    ///
    /// struct Pool;
    ///
    /// /// Needs a provided `Pool`.
    /// struct Repo(Inject<Pool>);
    ///
    /// impl FromProviders for Repo {
    ///     fn from_providers(cx: &BuildContext<'_>, field: &'static str) -> Result<Self, BuildError> {
    ///         let pool = cx.providers().get::<Pool>().ok_or_else(|| cx.missing::<Pool>("field", field))?;
    ///         Ok(Repo(pool))
    ///     }
    /// }
    ///
    /// #[websocket_gateway(path = "/repo")]
    /// struct RepoGateway {
    ///     repo: Repo,
    /// }
    /// #[websocket_gateway]
    /// impl RepoGateway {}
    ///
    /// let err = GatewayApp::new().gateway::<RepoGateway>().build().unwrap_err().to_string();
    /// assert!(err.starts_with("can't resolve dependencies of RepoGateway: field `repo` needs"), "{err}");
    /// assert!(GatewayApp::new().provide(Pool).gateway::<RepoGateway>().build().is_ok());
    /// ```
    pub fn missing<T: ?Sized>(&self, site: impl Into<String>, name: &'static str) -> BuildError {
        BuildError::MissingProvider {
            gateway: self.gateway,
            site: site.into(),
            field: name,
            ty: type_name::<T>(),
        }
    }
}

/// A type a gateway field can have: resolved once, when the app is built.
///
/// Implemented for [`Inject<T>`] (a provided service), [`WsServer`] (the gateway's server
/// handle, NestJS's `@WebSocketServer()`), `Option<Inject<T>>` (an optional service) and
/// `Arc<T>` (a provided service). Implement it for your own types to build a field from
/// other providers.
///
/// # Examples
///
/// ```
/// use ws_gateway_core::{BuildContext, BuildError, FromProviders, Inject};
///
/// struct Config {
///     motd: String,
/// }
///
/// /// A field that copies the message of the day out of the provided `Config`.
/// struct Motd(String);
///
/// impl FromProviders for Motd {
///     fn from_providers(cx: &BuildContext<'_>, field: &'static str) -> Result<Self, BuildError> {
///         let config = Inject::<Config>::from_providers(cx, field)?;
///         Ok(Motd(config.motd.clone()))
///     }
/// }
/// ```
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be injected into a gateway field",
    label = "not injectable",
    note = "use `Inject<T>` and give the app builder `.provide(value_of_T)`, or `WsServer` for the gateway's server handle, or implement `FromProviders` for this type"
)]
pub trait FromProviders: Sized {
    /// Resolves the value for the field named `field`.
    ///
    /// # Errors
    ///
    /// [`BuildError::MissingProvider`] when what it needs was not provided.
    fn from_providers(cx: &BuildContext<'_>, field: &'static str) -> Result<Self, BuildError>;

    /// Declares the providers [`from_providers`](Self::from_providers) reads, so that the
    /// app builds them (factories, other gateways) before this field's gateway. The default
    /// declares nothing: what such a field reads is whatever was built before it, which is
    /// every factory that depends on no gateway.
    ///
    /// # Examples
    ///
    /// ```
    /// use ws_gateway_core::prelude::*;
    /// use ws_gateway_core::{BuildContext, BuildError, FromProviders, Needs};
    ///
    /// struct Config {
    ///     motd: String,
    /// }
    ///
    /// /// The message of the day, copied out of a `Config` built by a factory.
    /// struct Motd(String);
    ///
    /// impl FromProviders for Motd {
    ///     fn from_providers(cx: &BuildContext<'_>, field: &'static str) -> Result<Self, BuildError> {
    ///         let config = Inject::<Config>::from_providers(cx, field)?;
    ///         Ok(Motd(config.motd.clone()))
    ///     }
    ///
    ///     fn needs(needs: &mut Needs) {
    ///         needs.require::<Config>();
    ///     }
    /// }
    ///
    /// #[websocket_gateway(path = "/motd")]
    /// struct MotdGateway {
    ///     motd: Motd,
    /// }
    /// #[websocket_gateway]
    /// impl MotdGateway {}
    ///
    /// let app = GatewayApp::new()
    ///     .provide_factory(|| Config { motd: "hi".to_owned() })
    ///     .gateway::<MotdGateway>()
    ///     .build();
    /// assert!(app.is_ok());
    /// ```
    fn needs(needs: &mut Needs) {
        let _ = needs;
    }
}

impl<T: Send + Sync + 'static> FromProviders for Inject<T> {
    fn from_providers(cx: &BuildContext<'_>, field: &'static str) -> Result<Self, BuildError> {
        cx.providers
            .get::<T>()
            .ok_or_else(|| cx.missing::<T>("field", field))
    }

    fn needs(needs: &mut Needs) {
        needs.require::<T>();
    }
}

impl<T: Send + Sync + 'static> FromProviders for Arc<T> {
    fn from_providers(cx: &BuildContext<'_>, field: &'static str) -> Result<Self, BuildError> {
        Inject::<T>::from_providers(cx, field).map(Inject::into_arc)
    }

    fn needs(needs: &mut Needs) {
        needs.require::<T>();
    }
}

impl<T: Send + Sync + 'static> FromProviders for Option<Inject<T>> {
    fn from_providers(cx: &BuildContext<'_>, _: &'static str) -> Result<Self, BuildError> {
        Ok(cx.providers.get::<T>())
    }

    fn needs(needs: &mut Needs) {
        needs.optional::<T>();
    }
}

impl<G: Gateway> FromProviders for ServerOf<G> {
    fn from_providers(cx: &BuildContext<'_>, field: &'static str) -> Result<Self, BuildError> {
        Inject::<Self>::from_providers(cx, field).map(|server| (*server).clone())
    }

    fn needs(needs: &mut Needs) {
        needs.require::<Self>();
    }
}

impl FromProviders for WsServer {
    fn from_providers(cx: &BuildContext<'_>, _: &'static str) -> Result<Self, BuildError> {
        Ok(cx.server.clone())
    }
}

/// What a gateway field or a factory depends on, declared by type: the app builds each
/// provider after the ones it needs, and fails [`build`](crate::GatewayApp::build) naming the
/// chain when that is impossible (a cycle, something nobody provides).
///
/// Declared for you by every [`FromProviders`] field type and every
/// [`Dependency`](crate::Dependency); write to it only in your own
/// [`FromProviders::needs`] or [`Dependency::needs`](crate::Dependency::needs).
///
/// # Examples
///
/// ```
/// use ws_gateway_core::Needs;
///
/// struct Pool;
/// struct Cache;
///
/// let mut needs = Needs::default();
/// needs.require::<Pool>();
/// needs.optional::<Cache>(); // ordered before, if provided; no error if not
/// assert_eq!(needs.len(), 2);
/// ```
#[derive(Clone, Debug, Default)]
pub struct Needs {
    pub(crate) list: Vec<Need>,
}

/// One declared dependency.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Need {
    pub(crate) id: TypeId,
    pub(crate) name: &'static str,
    pub(crate) optional: bool,
}

impl Needs {
    /// A provider of type `T` is required.
    pub fn require<T: ?Sized + 'static>(&mut self) {
        self.push::<T>(false);
    }

    /// A provider of type `T` is used if there is one: built first when it is provided,
    /// no error when it is not.
    pub fn optional<T: ?Sized + 'static>(&mut self) {
        self.push::<T>(true);
    }

    /// How many dependencies were declared.
    pub fn len(&self) -> usize {
        self.list.len()
    }

    /// Whether nothing was declared.
    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }

    fn push<T: ?Sized + 'static>(&mut self, optional: bool) {
        self.list.push(Need {
            id: TypeId::of::<T>(),
            name: type_name::<T>(),
            optional,
        });
    }
}

/// The server handle of gateway `G`, as a provider: what a factory or another gateway takes
/// to send to `G`'s clients. Dereferences to [`WsServer`].
///
/// It exists before any gateway is built, so depending on it orders nothing: a service that
/// `G` injects may take `ServerOf<G>` where `Inject<G>` (the gateway itself) would be a
/// cycle.
///
/// # Examples
///
/// ```
/// use ws_gateway_core::prelude::*;
/// use ws_gateway_core::ServerOf;
///
/// /// Pushes alerts to the clients of `AlertsGateway`, which also injects it.
/// struct Alerts {
///     server: ServerOf<AlertsGateway>,
/// }
///
/// #[websocket_gateway(path = "/alerts")]
/// struct AlertsGateway {
///     alerts: Inject<Alerts>,
/// }
/// #[websocket_gateway]
/// impl AlertsGateway {}
///
/// let app = GatewayApp::new()
///     .provide_factory(|server: ServerOf<AlertsGateway>| Alerts { server })
///     .gateway::<AlertsGateway>()
///     .build()
///     .unwrap();
/// let alerts = app.providers().get::<Alerts>().unwrap();
/// assert_eq!(alerts.server.path(), "/alerts");
/// assert_eq!(alerts.server.emit("alert", &"fire").unwrap(), 0); // nobody is connected yet
/// ```
pub struct ServerOf<G> {
    server: WsServer,
    gateway: PhantomData<fn() -> G>,
}

impl<G> ServerOf<G> {
    pub(crate) fn new(server: WsServer) -> Self {
        Self {
            server,
            gateway: PhantomData,
        }
    }

    /// The server handle.
    ///
    /// # Examples
    ///
    /// ```
    /// use ws_gateway_core::prelude::*;
    /// use ws_gateway_core::ServerOf;
    ///
    /// #[websocket_gateway(path = "/news")]
    /// struct News;
    /// #[websocket_gateway]
    /// impl News {}
    ///
    /// let app = GatewayApp::new().gateway::<News>().build().unwrap();
    /// let server: WsServer = app.providers().get::<ServerOf<News>>().unwrap().server().clone();
    /// assert_eq!(server.path(), "/news");
    /// ```
    pub fn server(&self) -> &WsServer {
        &self.server
    }
}

impl<G> Clone for ServerOf<G> {
    fn clone(&self) -> Self {
        Self::new(self.server.clone())
    }
}

impl<G> Deref for ServerOf<G> {
    type Target = WsServer;

    fn deref(&self) -> &WsServer {
        &self.server
    }
}

impl<G> fmt::Debug for ServerOf<G> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("ServerOf")
            .field(&self.server.path())
            .finish()
    }
}
