//! Attribute macros of the gateway framework. Use them through `ws_gateway_core` (its
//! `prelude` re-exports them); the code they write calls `::ws_gateway_core::__private` and
//! nothing else.
//!
//! - [`macro@websocket_gateway`] on a struct makes it a gateway served at a path, built from
//!   the app's providers; on its `impl` block it collects the handlers and hooks.
//! - [`macro@subscribe`] marks a method as the handler of one event.
//! - [`macro@after_init`], [`macro@handle_connection`], [`macro@handle_disconnect`] mark the
//!   lifecycle hooks.
//! - [`macro@use_pipes`], [`macro@use_guards`], [`macro@use_interceptors`],
//!   [`macro@use_filters`] attach the request pipeline to a handler or a whole gateway.
//!
//! Set `GATEWAY_MACROS_DEBUG=1` while building to print every expansion to stderr.
#![doc(test(attr(deny(warnings), allow(dead_code, unused_variables))))]

// One module per stage, run in this order by `expand`: `attr` parses our attributes into
// typed values, `ast` builds the model of the item, `check` applies the rules and gathers
// every mistake, `expand` writes the tokens, naming paths only from `paths`.
mod ast;
mod attr;
mod check;
mod expand;
mod paths;

#[cfg(test)]
mod snapshot;

use proc_macro::TokenStream;

use crate::attr::{Helper, HookKind, LayerKind};
use crate::expand::Rejected;

/// Makes a struct a gateway, or collects the handlers of its `impl` block.
///
/// On the struct, `path` is the axum route it is served at: fixed (`/chat`), or with
/// parameters as whole segments, `{name}`, and a last `{*rest}` wildcard (`/rooms/{id}`),
/// read by `WsParam<T>`. Each field is resolved when the
/// app is built: [`Inject<T>`](https://docs.rs/gateway-core) from a provider, `WsServer` for
/// the gateway's own server handle, `Option<Inject<T>>` for an optional provider. A
/// missing provider fails `GatewayApp::build` with an error naming the gateway, the field and
/// the type.
///
/// On the `impl` block (no arguments), it reads the `#[subscribe]` methods, the lifecycle
/// hooks and the `use_*` attributes, the ones on the block applying to every handler. A
/// method's `#[cfg(..)]` applies to its registration too: configured out, its event is
/// unknown. What it generates adds no names to the gateway type.
///
/// ```
/// use ws_gateway_core::prelude::*;
///
/// #[websocket_gateway(path = "/echo")]
/// pub struct EchoGateway {
///     server: WsServer,
/// }
///
/// #[websocket_gateway]
/// impl EchoGateway {
///     #[subscribe("echo")]
///     fn echo(&self, text: String) -> String {
///         text
///     }
///
///     #[subscribe("clients")]
///     async fn clients(&self) -> usize {
///         self.server.client_count()
///     }
/// }
///
/// let app = GatewayApp::new().gateway::<EchoGateway>().build().unwrap();
/// assert_eq!(app.gateways()[0].path(), "/echo");
/// ```
#[proc_macro_attribute]
pub fn websocket_gateway(args: TokenStream, item: TokenStream) -> TokenStream {
    expand_with(
        "websocket_gateway",
        expand::websocket_gateway(args.into(), item.into()),
    )
}

/// Marks a method of a gateway as the handler of an event (NestJS's `@SubscribeMessage`).
///
/// Each argument is chosen by its type: an extractor (`Client`, `WsServer`, `Inject<T>`,
/// `Identity<T>`, `Event`, ...) or else the message body, deserialized from `data`. The
/// return value is the reply: `()` sends nothing, any `Serialize` value answers under the
/// same event, `WsResponse<T>` under another, `Result<T, E>` sends `E` as an exception, and
/// a `Stream` sends each item as it comes. The method may be `async`.
///
/// ```
/// use ws_gateway_core::prelude::*;
///
/// #[websocket_gateway(path = "/rooms")]
/// pub struct RoomGateway;
///
/// #[websocket_gateway]
/// impl RoomGateway {
///     #[subscribe("join")]
///     fn join(&self, client: Client, room: String) -> Result<WsResponse<String>, RoomError> {
///         client.join(room.clone())?;
///         Ok(WsResponse::new("joined", room))
///     }
/// }
/// # let _ = GatewayApp::new().gateway::<RoomGateway>().build().unwrap();
/// ```
#[proc_macro_attribute]
pub fn subscribe(args: TokenStream, item: TokenStream) -> TokenStream {
    stray(Helper::Subscribe, args, item)
}

/// Marks the hook that runs once, after the app is built (NestJS's `afterInit`). It may take
/// the `WsServer` and any provided state.
///
/// ```
/// use ws_gateway_core::prelude::*;
///
/// #[websocket_gateway(path = "/ticks")]
/// pub struct TickGateway;
///
/// #[websocket_gateway]
/// impl TickGateway {
///     #[after_init]
///     fn ready(&self, server: WsServer) {
///         tracing::info!("serving {}", server.path());
///     }
/// }
/// # let _ = GatewayApp::new().gateway::<TickGateway>().build().unwrap();
/// ```
#[proc_macro_attribute]
pub fn after_init(args: TokenStream, item: TokenStream) -> TokenStream {
    stray(Helper::Hook(HookKind::AfterInit), args, item)
}

/// Marks the hook that runs for each client once it is connected (NestJS's
/// `handleConnection`). Returning `Err` rejects the client: it gets the exception and the
/// socket closes.
///
/// ```
/// use ws_gateway_core::prelude::*;
///
/// #[websocket_gateway(path = "/lobby")]
/// pub struct LobbyGateway;
///
/// #[websocket_gateway]
/// impl LobbyGateway {
///     #[handle_connection]
///     fn welcome(&self, client: Client) -> Result<(), WsException> {
///         client.join("lobby")?;
///         Ok(())
///     }
/// }
/// # let _ = GatewayApp::new().gateway::<LobbyGateway>().build().unwrap();
/// ```
#[proc_macro_attribute]
pub fn handle_connection(args: TokenStream, item: TokenStream) -> TokenStream {
    stray(Helper::Hook(HookKind::HandleConnection), args, item)
}

/// Marks the hook that runs for each client when it goes, whatever the reason, also on an
/// abrupt TCP close (NestJS's `handleDisconnect`). The client is still in its rooms.
///
/// ```
/// use ws_gateway_core::prelude::*;
///
/// #[websocket_gateway(path = "/lobby")]
/// pub struct LobbyGateway {
///     server: WsServer,
/// }
///
/// #[websocket_gateway]
/// impl LobbyGateway {
///     #[handle_disconnect]
///     async fn goodbye(&self, client: Client) {
///         let _ = self.server.to("lobby").except(client.id()).emit("left", &client.id());
///     }
/// }
/// # let _ = GatewayApp::new().gateway::<LobbyGateway>().build().unwrap();
/// ```
#[proc_macro_attribute]
pub fn handle_disconnect(args: TokenStream, item: TokenStream) -> TokenStream {
    stray(Helper::Hook(HookKind::HandleDisconnect), args, item)
}

/// Runs pipes on a handler's message body, in order, after guards and interceptors and
/// before the handler (NestJS's `@UsePipes`). On the `impl` block, they run first for every
/// handler. Each entry is an expression that makes a pipe: `ValidationPipe`, `Trim::new()`.
///
/// ```
/// use ws_gateway_core::prelude::*;
/// use serde::Deserialize;
/// use validator::Validate;
///
/// #[derive(Deserialize, Validate)]
/// struct Say {
///     #[validate(length(min = 1, max = 500))]
///     text: String,
/// }
///
/// #[websocket_gateway(path = "/say")]
/// pub struct SayGateway;
///
/// #[websocket_gateway]
/// impl SayGateway {
///     #[subscribe("say")]
///     #[use_pipes(ValidationPipe)]
///     fn say(&self, body: Say) -> String {
///         body.text
///     }
/// }
/// # let _ = GatewayApp::new().gateway::<SayGateway>().build().unwrap();
/// ```
#[proc_macro_attribute]
pub fn use_pipes(args: TokenStream, item: TokenStream) -> TokenStream {
    stray(Helper::Layer(LayerKind::Pipes), args, item)
}

/// Runs guards before a handler, or before every handler of the `impl` block (NestJS's
/// `@UseGuards`). A denied message gets "Forbidden resource".
///
/// ```
/// use ws_gateway_core::prelude::*;
///
/// struct OnlyLocal;
///
/// impl Guard for OnlyLocal {
///     async fn can_activate(&self, cx: &Context<'_>) -> Result<bool, WsException> {
///         let addr = cx.client().and_then(|c| c.handshake().remote_addr);
///         Ok(addr.is_some_and(|a| a.ip().is_loopback()))
///     }
/// }
///
/// #[websocket_gateway(path = "/admin")]
/// pub struct AdminGateway;
///
/// #[websocket_gateway]
/// #[use_guards(OnlyLocal)]
/// impl AdminGateway {
///     #[subscribe("shutdown")]
///     fn shutdown(&self) {}
/// }
/// # let _ = GatewayApp::new().gateway::<AdminGateway>().build().unwrap();
/// ```
#[proc_macro_attribute]
pub fn use_guards(args: TokenStream, item: TokenStream) -> TokenStream {
    stray(Helper::Layer(LayerKind::Guards), args, item)
}

/// Wraps a handler, or every handler of the `impl` block, in interceptors, outermost first
/// (NestJS's `@UseInterceptors`).
///
/// ```
/// use ws_gateway_core::prelude::*;
///
/// /// Wraps every reply as `{"data": ..}`.
/// struct Wrap;
///
/// impl Interceptor for Wrap {
///     async fn intercept(&self, _cx: &Context<'_>, next: Next<'_>) -> Outcome {
///         let reply = next.run().await?;
///         Ok(reply.map_data(|data| serde_json::json!({ "data": data })))
///     }
/// }
///
/// #[websocket_gateway(path = "/wrapped")]
/// pub struct WrappedGateway;
///
/// #[websocket_gateway]
/// impl WrappedGateway {
///     #[subscribe("ping")]
///     #[use_interceptors(Wrap)]
///     fn ping(&self) -> &'static str {
///         "pong"
///     }
/// }
/// # let _ = GatewayApp::new().gateway::<WrappedGateway>().build().unwrap();
/// ```
#[proc_macro_attribute]
pub fn use_interceptors(args: TokenStream, item: TokenStream) -> TokenStream {
    stray(Helper::Layer(LayerKind::Interceptors), args, item)
}

/// Catches errors of a handler, or of every handler of the `impl` block, with exception
/// filters, closest first (NestJS's `@UseFilters`).
///
/// ```
/// use ws_gateway_core::prelude::*;
///
/// struct Quiet;
///
/// impl ExceptionFilter for Quiet {
///     type Error = WsException;
///
///     fn catch(&self, err: &WsException, cx: &FilterContext<'_>) -> Caught {
///         Caught::exception(cx, &WsException::new(format!("quietly: {}", err.message())))
///     }
/// }
///
/// #[websocket_gateway(path = "/quiet")]
/// pub struct QuietGateway;
///
/// #[websocket_gateway]
/// #[use_filters(Quiet)]
/// impl QuietGateway {
///     #[subscribe("fail")]
///     fn fail(&self) -> Result<(), WsException> {
///         Err(WsException::new("no"))
///     }
/// }
/// # let _ = GatewayApp::new().gateway::<QuietGateway>().build().unwrap();
/// ```
#[proc_macro_attribute]
pub fn use_filters(args: TokenStream, item: TokenStream) -> TokenStream {
    stray(Helper::Layer(LayerKind::Filters), args, item)
}

/// A helper attribute on its own: `#[websocket_gateway]` on the `impl` block consumes
/// these, so reaching this macro means it is misplaced (or above `#[websocket_gateway]`).
fn stray(helper: Helper, args: TokenStream, item: TokenStream) -> TokenStream {
    expand_with(
        helper.attribute(),
        expand::helper_outside_gateway(helper, args.into(), item.into()),
    )
}

/// The tokens of an expansion, its item and errors if it was rejected.
fn expand_with(name: &str, expanded: Result<proc_macro2::TokenStream, Rejected>) -> TokenStream {
    let tokens = expanded.unwrap_or_else(Rejected::into_tokens);
    debug_print(name, &tokens);
    tokens.into()
}

#[allow(clippy::print_stderr)] // asked for by the user, at build time
fn debug_print(name: &str, expanded: &proc_macro2::TokenStream) {
    if std::env::var_os("GATEWAY_MACROS_DEBUG").is_some() {
        eprintln!("#[{name}] expands to:\n{expanded}\n");
    }
}
