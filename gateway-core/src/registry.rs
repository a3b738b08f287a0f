//! The registry of gateways: every `#[websocket_gateway]` struct in the linked crates
//! submits a [`GatewayDescriptor`] through `inventory`.

use std::any::TypeId;
use std::fmt;
use std::sync::Arc;

use crate::error::BuildError;
use crate::gateway::{Gateway, GatewayHandlers};
use crate::inject::{BuildContext, Instance, Needs, Providers, ServerOf};
use crate::runtime::{AppParts, GatewayRuntime};
use crate::server::WsServer;

/// The static record of one gateway type: where it is served and how to build it.
#[derive(Clone, Copy)]
pub struct GatewayDescriptor {
    /// The path the gateway is served at.
    pub path: &'static str,
    /// The gateway's type name.
    pub name: &'static str,
    /// The file that declares the gateway.
    pub file: &'static str,
    /// The line of the `#[websocket_gateway]` attribute.
    pub line: u32,
    pub(crate) type_id: fn() -> TypeId,
    /// The id of its `ServerOf<G>`.
    pub(crate) server_id: fn() -> TypeId,
    /// Its server, made and provided as `ServerOf<G>` before anything is built.
    pub(crate) open_server: fn(&mut Providers) -> WsServer,
    pub(crate) needs: fn(&mut Needs),
    /// Its instance, from the providers it needs.
    pub(crate) instantiate: fn(&BuildContext<'_>) -> Result<Instance, BuildError>,
    /// Its runtime, once every provider is built.
    pub(crate) assemble:
        fn(Instance, WsServer, &AppParts<'_>) -> Result<GatewayRuntime, BuildError>,
}

impl GatewayDescriptor {
    /// The descriptor of gateway `G`, declared at `file:line`.
    pub const fn of<G: GatewayHandlers>(file: &'static str, line: u32) -> Self {
        Self {
            path: G::PATH,
            name: G::NAME,
            file,
            line,
            type_id: TypeId::of::<G>,
            server_id: TypeId::of::<ServerOf<G>>,
            open_server: open_server::<G>,
            needs: G::needs,
            instantiate: instantiate::<G>,
            assemble: GatewayRuntime::assemble::<G>,
        }
    }

    /// `file:line` of the declaration.
    ///
    /// ```
    /// use ws_gateway_core::prelude::*;
    ///
    /// #[websocket_gateway(path = "/doc-location")]
    /// struct Located;
    ///
    /// #[websocket_gateway]
    /// impl Located {}
    ///
    /// let descriptor = ws_gateway_core::registered()
    ///     .into_iter()
    ///     .find(|d| d.path == "/doc-location")
    ///     .unwrap();
    /// assert_eq!(descriptor.name, "Located");
    /// assert!(descriptor.location().contains(".rs:"));
    /// ```
    pub fn location(&self) -> String {
        format!("{}:{}", self.file, self.line)
    }

    pub(crate) fn is<G: 'static>(&self) -> bool {
        (self.type_id)() == TypeId::of::<G>()
    }
}

impl fmt::Debug for GatewayDescriptor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GatewayDescriptor")
            .field("path", &self.path)
            .field("name", &self.name)
            .field("file", &self.file)
            .field("line", &self.line)
            .finish_non_exhaustive()
    }
}

fn open_server<G: Gateway>(providers: &mut Providers) -> WsServer {
    let server = WsServer::new(G::PATH);
    providers.insert(Arc::new(ServerOf::<G>::new(server.clone())));
    server
}

fn instantiate<G: Gateway>(cx: &BuildContext<'_>) -> Result<Instance, BuildError> {
    Ok(Arc::new(G::build(cx)?))
}

inventory::collect!(GatewayDescriptor);

/// Every registered gateway, sorted by path, then type name.
///
/// # Examples
///
/// ```
/// use ws_gateway_core::prelude::*;
///
/// #[websocket_gateway(path = "/registered")]
/// struct Registered;
///
/// #[websocket_gateway]
/// impl Registered {}
///
/// assert!(ws_gateway_core::registered().iter().any(|g| g.path == "/registered"));
/// ```
pub fn registered() -> Vec<&'static GatewayDescriptor> {
    let mut all: Vec<_> = inventory::iter::<GatewayDescriptor>.into_iter().collect();
    all.sort_by(|a, b| (a.path, a.name).cmp(&(b.path, b.name)));
    all
}
