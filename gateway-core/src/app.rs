//! [`GatewayApp`], the builder, and [`App`], the built set of gateways.

use std::any::TypeId;
use std::sync::Arc;

use crate::adapter::{Adapter, AdapterRef};
use crate::auth::{Authenticator, AuthenticatorRef};
use crate::config::ConnectionConfig;
use crate::connections::Connections;
use crate::error::BuildError;
use crate::filter::{ExceptionFilter, FilterRef};
use crate::gateway::GatewayHandlers;
use crate::guard::{Guard, GuardRef};
use crate::inject::Providers;
use crate::interceptor::{Interceptor, InterceptorRef};
use crate::layers::Layers;
use crate::registry::{GatewayDescriptor, registered};
use crate::runtime::{AppParts, GatewayRuntime};
use crate::server::WsServer;

/// Builds an [`App`]: collects the registered gateways, injects their dependencies and runs
/// their `#[after_init]` hooks, NestJS's module bootstrap.
///
/// # Examples
///
/// ```
/// use gateway_core::prelude::*;
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
    selected: Vec<(TypeId, GatewayDescriptor)>,
    config: ConnectionConfig,
    global: Layers,
    authenticators: Vec<(Option<TypeId>, AuthenticatorRef)>,
    adapter: Option<AdapterRef>,
}

impl std::fmt::Debug for GatewayApp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GatewayApp")
            .field("providers", &self.providers)
            .field("selected", &self.selected.len())
            .field("config", &self.config)
            .field("global", &self.global)
            .field("authenticators", &self.authenticators.len())
            .field("adapter", &self.adapter.is_some())
            .finish()
    }
}

impl GatewayApp {
    /// An app with every registered gateway and no providers.
    pub fn new() -> Self {
        Self::default()
    }

    /// Provides a service: every `Inject<T>` field or argument receives this instance.
    /// Providing the same type twice keeps the last.
    pub fn provide<T: Send + Sync + 'static>(self, value: T) -> Self {
        self.provide_arc(Arc::new(value))
    }

    /// Provides a service that is already shared.
    pub fn provide_arc<T: Send + Sync + 'static>(mut self, value: Arc<T>) -> Self {
        self.providers.insert(value);
        self
    }

    /// Serves gateway `G`. Once any gateway is chosen this way, only the chosen ones are
    /// served; without any, every registered gateway is.
    pub fn gateway<G: GatewayHandlers>(mut self) -> Self {
        let descriptor = registered()
            .into_iter()
            .find(|d| d.is::<G>())
            .map_or_else(|| GatewayDescriptor::of::<G>("<unregistered>", 0), |d| *d);
        self.selected.push((TypeId::of::<G>(), descriptor));
        self
    }

    /// Adds a guard to every handler of every gateway; global guards run first.
    pub fn use_global_guard(mut self, guard: impl Guard) -> Self {
        self.global.guards.push(GuardRef::new(guard));
        self
    }

    /// Adds an interceptor around every handler of every gateway; global interceptors are
    /// the outermost.
    pub fn use_global_interceptor(mut self, interceptor: impl Interceptor) -> Self {
        self.global
            .interceptors
            .push(InterceptorRef::new(interceptor));
        self
    }

    /// Adds an exception filter for every gateway; global filters are tried last, after the
    /// method's and the gateway's. They also see failures that reach no handler (malformed
    /// frames, unknown events).
    pub fn use_global_filter(mut self, filter: impl ExceptionFilter) -> Self {
        self.global.filters.push(FilterRef::new(filter));
        self
    }

    /// Authenticates the upgrade requests of gateway `G`: a request the authenticator
    /// refuses is answered with HTTP 401 and never upgraded. Replaces
    /// [`authenticate_all`](Self::authenticate_all) for `G`.
    pub fn authenticate<G: GatewayHandlers>(mut self, authenticator: impl Authenticator) -> Self {
        self.authenticators.push((
            Some(TypeId::of::<G>()),
            AuthenticatorRef(Arc::new(authenticator)),
        ));
        self
    }

    /// Authenticates the upgrade requests of every gateway that has no authenticator of its
    /// own.
    pub fn authenticate_all(mut self, authenticator: impl Authenticator) -> Self {
        self.authenticators
            .push((None, AuthenticatorRef(Arc::new(authenticator))));
        self
    }

    /// Sets the per-connection buffer sizes and limits.
    pub fn config(mut self, config: ConnectionConfig) -> Self {
        self.config = config;
        self
    }

    /// Carries every gateway's emits, room operations and disconnects to the other
    /// instances of the app, and theirs to it: `gateway_redis::RedisAdapter` for Redis.
    /// Without one, everything stays in this process.
    ///
    /// # Examples
    ///
    /// ```
    /// use gateway_core::GatewayApp;
    /// use gateway_core::adapter::{Adapter, LocalServer, Message};
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
    /// With Redis (`gateway-redis`):
    /// `GatewayApp::new().adapter(RedisAdapter::connect(RedisConfig::new(url)).await?)`.
    pub fn adapter(mut self, adapter: impl Adapter) -> Self {
        self.adapter = Some(AdapterRef::new(adapter));
        self
    }

    /// Builds every gateway.
    ///
    /// # Errors
    ///
    /// [`BuildError`]: two gateways on one path (naming both), a missing provider (naming
    /// the gateway, the field and the type), a failing `#[after_init]`, or no gateway at all.
    pub fn build(self) -> Result<App, BuildError> {
        let mut descriptors: Vec<GatewayDescriptor> = if self.selected.is_empty() {
            registered().into_iter().copied().collect()
        } else {
            let mut seen = Vec::new();
            self.selected
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
        for pair in descriptors.windows(2) {
            if let [first, second] = pair
                && first.path == second.path
            {
                return Err(BuildError::DuplicatePath {
                    path: first.path,
                    first: first.name,
                    first_at: first.location(),
                    second: second.name,
                    second_at: second.location(),
                });
            }
        }
        let authenticator_of = |d: &GatewayDescriptor| {
            let own = self
                .authenticators
                .iter()
                .rev()
                .find(|(id, _)| *id == Some((d.type_id)()));
            let all = self
                .authenticators
                .iter()
                .rev()
                .find(|(id, _)| id.is_none());
            own.or(all).map(|(_, auth)| auth.clone())
        };
        let gateways = descriptors
            .iter()
            .map(|d| {
                (d.build)(&AppParts {
                    providers: &self.providers,
                    global: &self.global,
                    authenticator: authenticator_of(d),
                })
            })
            .collect::<Result<Vec<GatewayRuntime>, _>>()?;
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
                config: self.config,
                connections,
            }),
        })
    }
}

/// The built gateways, ready to be mounted by a transport (gateway-axum's `into_router`).
/// Cheap to clone.
#[derive(Clone, Debug)]
pub struct App {
    inner: Arc<AppInner>,
}

#[derive(Debug)]
struct AppInner {
    gateways: Vec<GatewayRuntime>,
    config: ConnectionConfig,
    connections: Connections,
}

impl App {
    /// The gateways, sorted by path.
    pub fn gateways(&self) -> &[GatewayRuntime] {
        &self.inner.gateways
    }

    /// The per-connection settings.
    pub fn config(&self) -> &ConnectionConfig {
        &self.inner.config
    }

    /// The live connections of every gateway, with the app's connection limits: what a
    /// transport admits connections through and watches for the shutdown.
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
    /// use gateway_core::prelude::*;
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
    pub fn server(&self, path: &str) -> Option<WsServer> {
        self.inner
            .gateways
            .iter()
            .find(|g| g.path() == path)
            .map(|g| g.server().clone())
    }

    /// The server handle of gateway `G`.
    pub fn server_of<G: GatewayHandlers>(&self) -> Option<WsServer> {
        self.inner
            .gateways
            .iter()
            .find(|g| g.name() == G::NAME && g.path() == G::PATH)
            .map(|g| g.server().clone())
    }
}
