//! Dependency injection: [`Providers`], [`Inject`], and [`FromProviders`], the trait of
//! everything a gateway field can be.

use std::any::{Any, TypeId, type_name};
use std::fmt;
use std::ops::Deref;
use std::sync::Arc;

use rustc_hash::FxHashMap;

use crate::error::BuildError;
use crate::server::WsServer;

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
    by_type: FxHashMap<TypeId, Arc<dyn Any + Send + Sync>>,
}

impl Providers {
    pub(crate) fn insert<T: Send + Sync + 'static>(&mut self, value: Arc<T>) {
        self.by_type.insert(TypeId::of::<T>(), value);
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

    /// The app's providers.
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
}

impl<T: Send + Sync + 'static> FromProviders for Inject<T> {
    fn from_providers(cx: &BuildContext<'_>, field: &'static str) -> Result<Self, BuildError> {
        cx.providers
            .get::<T>()
            .ok_or_else(|| cx.missing::<T>("field", field))
    }
}

impl<T: Send + Sync + 'static> FromProviders for Arc<T> {
    fn from_providers(cx: &BuildContext<'_>, field: &'static str) -> Result<Self, BuildError> {
        Inject::<T>::from_providers(cx, field).map(Inject::into_arc)
    }
}

impl<T: Send + Sync + 'static> FromProviders for Option<Inject<T>> {
    fn from_providers(cx: &BuildContext<'_>, _: &'static str) -> Result<Self, BuildError> {
        Ok(cx.providers.get::<T>())
    }
}

impl FromProviders for WsServer {
    fn from_providers(cx: &BuildContext<'_>, _: &'static str) -> Result<Self, BuildError> {
        Ok(cx.server.clone())
    }
}
