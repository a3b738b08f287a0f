//! What `#[websocket_gateway]` implements: the [`Gateway`] and [`GatewayHandlers`] traits and
//! the static tables of handlers and hooks the runtime reads.

use std::sync::Arc;

use crate::dispatch::{Context, Dispatch};
use crate::error::BuildError;
use crate::inject::{BuildContext, Needs};
use crate::layers::Layers;

/// A gateway struct: its path and how to build it from the app's providers.
///
/// Implemented by `#[websocket_gateway(path = "...")]` on the struct; not meant to be
/// implemented by hand.
///
/// ```
/// use ws_gateway_core::prelude::*;
/// use ws_gateway_core::__private::Gateway;
///
/// #[websocket_gateway(path = "/doc-tables")]
/// struct Tables;
///
/// #[websocket_gateway]
/// impl Tables {
///     #[subscribe("ping")]
///     fn ping(&self, n: u32) -> u32 {
///         n
///     }
///
///     #[handle_connection]
///     fn hello(&self) {}
/// }
///
/// assert_eq!(<Tables as Gateway>::PATH, "/doc-tables");
/// assert_eq!(<Tables as Gateway>::NAME, "Tables");
/// ```
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a gateway",
    label = "not a gateway",
    note = "add `#[websocket_gateway(path = \"/...\")]` to `struct {Self}`"
)]
pub trait Gateway: Send + Sync + Sized + 'static {
    /// The URL path the gateway is served at, e.g. `"/chat"`.
    const PATH: &'static str;
    /// The gateway's type name, for error messages and logs.
    const NAME: &'static str;

    /// Builds the gateway, resolving every field from the app's providers.
    ///
    /// # Errors
    ///
    /// [`BuildError::MissingProvider`] naming the gateway, the field and the type when a
    /// field's provider was not given to the app builder.
    fn build(cx: &BuildContext<'_>) -> Result<Self, BuildError>;

    /// Declares the providers its fields need ([`FromProviders::needs`]), so that the app
    /// builds them first.
    ///
    /// [`FromProviders::needs`]: crate::FromProviders::needs
    fn needs(needs: &mut Needs) {
        let _ = needs;
    }
}

/// A gateway's message handlers and lifecycle hooks.
///
/// Implemented by `#[websocket_gateway]` on the gateway's `impl` block; not meant to be
/// implemented by hand.
///
/// ```
/// use ws_gateway_core::prelude::*;
/// use ws_gateway_core::__private::GatewayHandlers;
///
/// #[websocket_gateway(path = "/doc-tables")]
/// struct Tables;
///
/// #[websocket_gateway]
/// impl Tables {
///     #[subscribe("ping")]
///     fn ping(&self, n: u32) -> u32 {
///         n
///     }
///
///     #[handle_connection]
///     fn hello(&self) {}
/// }
///
/// let events: Vec<&str> = Tables::HANDLERS.iter().map(|h| h.event).collect();
/// assert_eq!(events, ["ping"]);
/// assert_eq!(Tables::HOOKS.handle_connection.as_ref().unwrap().method, "hello");
/// assert!(Tables::HOOKS.after_init.is_none());
/// ```
#[diagnostic::on_unimplemented(
    message = "`{Self}` has no `#[websocket_gateway]` impl block",
    label = "gateway without handlers",
    note = "add `#[websocket_gateway]` to the `impl {Self}` block that holds its `#[subscribe(\"...\")]` methods"
)]
pub trait GatewayHandlers: Gateway {
    /// One entry per `#[subscribe("event")]` method.
    const HANDLERS: &'static [Handler<Self>];
    /// The lifecycle hooks the impl block marked.
    const HOOKS: Hooks<Self> = Hooks::NONE;

    /// The guards, interceptors and filters of the whole gateway (attributes on its `impl`
    /// block).
    fn layers() -> Layers {
        Layers::default()
    }
}

/// The generated shim of one handler or hook: extracts the arguments from the context,
/// calls the method, and turns its return value into a [`Dispatch`].
pub type HandlerFn<G> = fn(&Arc<G>, &Context<'_>) -> Dispatch;

/// Checks at build time that every extractor of a handler can be satisfied (for example
/// that an `Inject<T>` argument has a provider).
pub type VerifyFn = fn(&BuildContext<'_>) -> Result<(), BuildError>;

/// Describes a handler's body and reply as JSON Schemas (AsyncAPI), adding the types they
/// refer to into the generator's definitions.
#[cfg(feature = "asyncapi")]
pub type DescribeFn = fn(&mut schemars::SchemaGenerator) -> HandlerDoc;

/// Without the `asyncapi` feature nothing is described. The generated code still fills in
/// [`Handler::describe`] (the macros cannot see this crate's features), with a function that
/// takes an [`Undescribed`]: there is no such value, so it is never called.
#[cfg(not(feature = "asyncapi"))]
pub type DescribeFn = fn(&mut Undescribed) -> Undescribed;

/// A type without values: what [`DescribeFn`] takes when the `asyncapi` feature is off.
#[cfg(not(feature = "asyncapi"))]
#[derive(Debug)]
pub enum Undescribed {}

/// The JSON Schemas of one handler: `None` where there is no body or no reply.
///
/// ```
/// use ws_gateway_core::prelude::*;
/// use ws_gateway_core::__private::GatewayHandlers;
///
/// #[websocket_gateway(path = "/doc-handler-doc")]
/// struct Docs;
///
/// #[websocket_gateway]
/// impl Docs {
///     #[subscribe("ping")]
///     fn ping(&self, n: u32) -> u32 {
///         n
///     }
///
///     #[handle_connection]
///     fn hello(&self) {}
/// }
///
/// let doc = (Docs::HANDLERS[0].describe)(&mut ws_gateway_core::schemars::SchemaGenerator::default());
/// assert_eq!(doc.body.unwrap()["type"], "integer");
/// assert_eq!(doc.reply.unwrap()["type"], "integer");
/// ```
#[cfg(feature = "asyncapi")]
#[cfg_attr(docsrs, doc(cfg(feature = "asyncapi")))]
#[derive(Clone, Debug, Default, PartialEq)]
#[non_exhaustive]
pub struct HandlerDoc {
    /// The `data` the handler takes (its argument that is not an extractor).
    pub body: Option<serde_json::Value>,
    /// The `data` of the reply (of each item, for a stream).
    pub reply: Option<serde_json::Value>,
}

#[cfg(feature = "asyncapi")]
impl HandlerDoc {
    /// A description from two schemas.
    pub fn new(body: Option<serde_json::Value>, reply: Option<serde_json::Value>) -> Self {
        Self { body, reply }
    }
}

/// One `#[subscribe("event")]` method of a gateway.
///
/// ```
/// use ws_gateway_core::prelude::*;
/// use ws_gateway_core::__private::GatewayHandlers;
///
/// #[websocket_gateway(path = "/doc-handler")]
/// struct Table;
///
/// #[websocket_gateway]
/// impl Table {
///     #[subscribe("ping")]
///     fn ping(&self, n: u32) -> u32 {
///         n
///     }
///
///     #[handle_connection]
///     fn hello(&self) {}
/// }
///
/// let handler = &Table::HANDLERS[0];
/// assert_eq!((handler.event, handler.method), ("ping", "ping"));
/// assert!(handler.file.ends_with(".rs"));
/// ```
pub struct Handler<G> {
    /// The event name, as written in `#[subscribe("...")]`.
    pub event: &'static str,
    /// The method's name, for logs.
    pub method: &'static str,
    /// The generated shim that calls the method.
    pub call: HandlerFn<G>,
    /// Build-time check of the method's extractors.
    pub verify: VerifyFn,
    /// The method's own guards, interceptors and filters, built once per app.
    pub layers: fn() -> Layers,
    /// JSON Schemas of the method's message body and reply, for generated documentation
    /// (with the `asyncapi` feature; without it, a function that cannot be called).
    pub describe: DescribeFn,
    /// Where the method is declared.
    pub file: &'static str,
    /// The line of the `#[subscribe]` attribute.
    pub line: u32,
}

/// The lifecycle hooks of a gateway, NestJS's `OnGatewayInit`, `OnGatewayConnection` and
/// `OnGatewayDisconnect`.
///
/// ```
/// use ws_gateway_core::__private::Hooks;
///
/// struct Nothing;
/// let none: Hooks<Nothing> = Hooks::NONE;
/// assert!(none.after_init.is_none() && none.handle_connection.is_none());
/// ```
pub struct Hooks<G> {
    /// `#[after_init]`: runs once, when the app is built.
    pub after_init: Option<Hook<G>>,
    /// `#[handle_connection]`: runs for each client before its first message; an error
    /// rejects the client.
    pub handle_connection: Option<Hook<G>>,
    /// `#[handle_disconnect]`: runs for each client once it is gone, however it left.
    pub handle_disconnect: Option<Hook<G>>,
}

impl<G> Hooks<G> {
    /// No hooks at all.
    pub const NONE: Self = Self {
        after_init: None,
        handle_connection: None,
        handle_disconnect: None,
    };
}

/// One lifecycle hook method.
///
/// ```
/// use ws_gateway_core::prelude::*;
/// use ws_gateway_core::__private::GatewayHandlers;
///
/// #[websocket_gateway(path = "/doc-hook")]
/// struct Hooked;
///
/// #[websocket_gateway]
/// impl Hooked {
///     #[subscribe("ping")]
///     fn ping(&self, n: u32) -> u32 {
///         n
///     }
///
///     #[handle_connection]
///     fn hello(&self) {}
/// }
///
/// let hook = Hooked::HOOKS.handle_connection.as_ref().unwrap();
/// assert_eq!(hook.method, "hello");
/// ```
pub struct Hook<G> {
    /// The method's name, for logs.
    pub method: &'static str,
    /// The generated shim that calls the method.
    pub call: HandlerFn<G>,
    /// Build-time check of the method's extractors.
    pub verify: VerifyFn,
}
