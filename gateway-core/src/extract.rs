//! Handler arguments, chosen by type as in axum: the message body and the extractors.
//!
//! A `#[subscribe]` method takes `&self` and then any of:
//!
//! | argument | what it is |
//! |---|---|
//! | any `T: Deserialize` | the message's `data`, NestJS's `@MessageBody()` |
//! | [`Data<T>`] | the same, named explicitly |
//! | [`TryData<T>`] | the body or the reason it does not deserialize, for the handler to decide |
//! | [`Client`] | the client that sent the message, NestJS's `@ConnectedSocket()` |
//! | [`WsServer`] | the gateway's server handle |
//! | [`Inject<T>`] | a provided service (checked when the app is built) |
//! | [`Event`] | the event name |
//! | [`Args<T>`](crate::Args) | every argument of the message (Socket.IO's), as a tuple or `Vec` |
//! | [`RawArgs`](crate::RawArgs) | every argument as sent, binary attachments included |
//! | [`WsParam<T>`](crate::WsParam) | the parameters of the gateway path (`/rooms/{id}`) |
//! | your own type | implement [`FromContext`] |
//!
//! An argument that is neither an extractor nor deserializable is a compile error on its type.

use serde::de::DeserializeOwned;

use crate::client::Client;
use crate::dispatch::Context;
use crate::error::BuildError;
use crate::exception::WsException;
use crate::inject::{BuildContext, Inject};
use crate::server::WsServer;

/// Where an extractor is used, for build-time error messages.
///
/// # Examples
///
/// ```
/// let site = ws_gateway_core::ArgSite { method: "join", arg: "room" };
/// assert_eq!(format!("argument `{}` of `{}`", site.arg, site.method), "argument `room` of `join`");
/// ```
#[derive(Clone, Copy, Debug)]
pub struct ArgSite {
    /// The handler or hook method.
    pub method: &'static str,
    /// The argument's name (or its position, for patterns).
    pub arg: &'static str,
}

/// A handler argument taken from the [`Context`] rather than from the message body, like
/// axum's `FromRequestParts`.
///
/// # Examples
///
/// An extractor that reads a header of the upgrade request:
///
/// ```
/// use ws_gateway_core::{Context, FromContext, WsException};
///
/// struct UserAgent(String);
///
/// impl FromContext for UserAgent {
///     fn from_context(cx: &Context<'_>) -> Result<Self, WsException> {
///         let client = cx.client().ok_or_else(|| WsException::new("no client here"))?;
///         let agent = client
///             .handshake()
///             .headers
///             .get("user-agent")
///             .and_then(|v| v.to_str().ok())
///             .unwrap_or("unknown");
///         Ok(UserAgent(agent.to_owned()))
///     }
/// }
/// ```
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not an extractor",
    note = "extractors are `Client`, `WsServer`, `Inject<T>`, `Event`, `Data<T>`, `TryData<T>`, `Args<T>`, `RawArgs`, `Ack`, or types that implement `FromContext`"
)]
pub trait FromContext: Sized {
    /// Extracts the value.
    ///
    /// # Errors
    ///
    /// A [`WsException`] sent to the client instead of running the handler.
    fn from_context(cx: &Context<'_>) -> Result<Self, WsException>;

    /// Checks, when the app is built, that the extractor will be able to extract (for
    /// example that a provider exists). The default accepts.
    ///
    /// # Errors
    ///
    /// The [`BuildError`] that makes `build()` fail.
    fn verify(cx: &BuildContext<'_>, site: ArgSite) -> Result<(), BuildError> {
        let _ = (cx, site);
        Ok(())
    }
}

impl FromContext for Client {
    fn from_context(cx: &Context<'_>) -> Result<Self, WsException> {
        cx.client().cloned().ok_or_else(|| {
            tracing::error!(target: "gateway", "`Client` was asked for where there is none (in `after_init`)");
            WsException::internal()
        })
    }
}

impl FromContext for WsServer {
    fn from_context(cx: &Context<'_>) -> Result<Self, WsException> {
        Ok(cx.server().clone())
    }
}

impl<T: Send + Sync + 'static> FromContext for Inject<T> {
    fn from_context(cx: &Context<'_>) -> Result<Self, WsException> {
        // `verify` made sure at build time that the provider exists.
        cx.providers().get::<T>().ok_or_else(WsException::internal)
    }

    fn verify(cx: &BuildContext<'_>, site: ArgSite) -> Result<(), BuildError> {
        match cx.providers().get::<T>() {
            Some(_) => Ok(()),
            None => Err(cx.missing::<T>(format!("argument of `{}`", site.method), site.arg)),
        }
    }
}

impl<T: Send + Sync + 'static> FromContext for Option<Inject<T>> {
    fn from_context(cx: &Context<'_>) -> Result<Self, WsException> {
        Ok(cx.providers().get::<T>())
    }
}

/// The name of the event being handled, for handlers that serve several events or log.
///
/// # Examples
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// use ws_gateway_core::prelude::*;
/// use ws_gateway_core::Handshake;
///
/// #[websocket_gateway(path = "/moves")]
/// struct Moves;
///
/// #[websocket_gateway]
/// impl Moves {
///     #[subscribe("up")]
///     fn up(&self, Event(event): Event) -> String {
///         format!("moved {event}")
///     }
///
///     #[subscribe("down")]
///     fn down(&self, event: Event) -> String {
///         self.up(event)
///     }
/// }
///
/// let app = GatewayApp::new().gateway::<Moves>().build().unwrap();
/// let gw = &app.gateways()[0];
/// let (client, _queue) = gw.open(Handshake::default(), 8);
/// let answer = gw.handle_json(&client, r#"{"event":"down"}"#).answer().await;
/// assert_eq!(answer.frame().unwrap().as_str(), r#"{"event":"down","data":"moved down"}"#);
/// # }
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Event(pub &'static str);

impl FromContext for Event {
    fn from_context(cx: &Context<'_>) -> Result<Self, WsException> {
        Ok(Event(cx.event()))
    }
}

/// The message body, deserialized from the frame's `data` (NestJS's `@MessageBody()`).
///
/// A plain `T: Deserialize` argument means the same; `Data<T>` says it explicitly.
///
/// # Examples
///
/// ```
/// use ws_gateway_core::prelude::*;
///
/// #[derive(serde::Deserialize)]
/// struct Join {
///     room: String,
/// }
///
/// #[websocket_gateway(path = "/lobby")]
/// struct Lobby;
///
/// #[websocket_gateway]
/// impl Lobby {
///     #[subscribe("join")]
///     fn join(&self, Data(join): Data<Join>, client: Client) -> Result<(), RoomError> {
///         client.join(join.room)
///     }
/// }
/// ```
///
/// It is the body, not an extractor: the handler's pipes for `T` run on it as on a plain
/// `T`.
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "asyncapi", derive(schemars::JsonSchema))]
#[cfg_attr(feature = "asyncapi", schemars(transparent))]
pub struct Data<T>(pub T);

/// The message body or why it failed to deserialize: the handler decides what to do.
///
/// # Examples
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// use ws_gateway_core::prelude::*;
/// use ws_gateway_core::Handshake;
///
/// #[websocket_gateway(path = "/math")]
/// struct Math;
///
/// #[websocket_gateway]
/// impl Math {
///     /// A body that does not fit counts as zero instead of failing.
///     #[subscribe("double")]
///     fn double(&self, TryData(n): TryData<i64>) -> i64 {
///         n.unwrap_or(0) * 2
///     }
/// }
///
/// let app = GatewayApp::new().gateway::<Math>().build().unwrap();
/// let gw = &app.gateways()[0];
/// let (client, _queue) = gw.open(Handshake::default(), 8);
/// let answer = gw.handle_json(&client, r#"{"event":"double","data":"many"}"#).answer().await;
/// assert_eq!(answer.frame().unwrap().as_str(), r#"{"event":"double","data":0}"#);
/// # }
/// ```
#[derive(Debug)]
pub struct TryData<T>(pub Result<T, serde_json::Error>);

impl<T: DeserializeOwned> FromContext for TryData<T> {
    fn from_context(cx: &Context<'_>) -> Result<Self, WsException> {
        Ok(TryData(deserialize_data(cx)))
    }
}

/// The body as a `T`, binary attachments (Socket.IO) in place of their placeholders.
fn deserialize_data<T: DeserializeOwned>(cx: &Context<'_>) -> Result<T, serde_json::Error> {
    match cx.data() {
        None => serde_json::from_str("null"),
        Some(data) if cx.attachments().is_empty() => serde_json::from_str(data.get()),
        Some(data) => serde_json::from_str(&crate::args::inline(data, cx.attachments())?),
    }
}

/// A type that can be a handler's message body: every `T: Deserialize`.
#[diagnostic::on_unimplemented(
    message = "`{Self}` is neither a message body nor an extractor",
    label = "not a handler argument",
    note = "a handler argument is the message body (a type that implements `serde::Deserialize`) or an extractor: `Client`, `WsServer`, `Inject<T>`, `Event`, `Data<T>`, `TryData<T>`, `Args<T>`, `RawArgs`, `Ack`, or a type that implements `FromContext`"
)]
pub trait MessageBody: DeserializeOwned {}

#[diagnostic::do_not_recommend]
impl<T: DeserializeOwned> MessageBody for T {}

/// Deserializes the message body, or says precisely why it does not fit.
pub(crate) fn body<T: DeserializeOwned>(cx: &Context<'_>) -> Result<T, WsException> {
    deserialize_data(cx).map_err(|err| {
        let err = WsException::of_kind(
            crate::ErrorKind::BadRequest,
            format!("Invalid message body: {err}"),
        );
        tracing::debug!(target: "gateway::rejection", event = cx.event(), "{err}");
        err
    })
}
