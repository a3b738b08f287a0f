//! Errors of building an app and of sending to clients.

/// The error a fallible factory may return: anything that converts into it (any
/// `std::error::Error + Send + Sync`, a `String`, a `&str`).
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Why [`GatewayApp::build`](crate::GatewayApp::build) failed.
///
/// Every variant names the gateway (and where it is declared when that helps), so a
/// misconfigured app fails at start-up with a message that says what to change, never at
/// the first message.
///
/// # Examples
///
/// ```
/// use ws_gateway_core::prelude::*;
/// use ws_gateway_core::BuildError;
///
/// struct Database;
///
/// #[websocket_gateway(path = "/users")]
/// struct Users {
///     db: Inject<Database>,
/// }
///
/// #[websocket_gateway]
/// impl Users {}
///
/// let err = GatewayApp::new().gateway::<Users>().build().unwrap_err();
/// assert!(matches!(err, BuildError::MissingProvider { gateway: "Users", field: "db", .. }));
/// assert!(err.to_string().contains("add `.provide(...)`"));
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BuildError {
    /// A gateway field or handler argument needs a provider that was not given.
    #[error(
        "can't resolve dependencies of {gateway}: {site} `{field}` needs `{ty}`, which was not provided; add `.provide(...)` with a `{ty}` to the GatewayApp builder"
    )]
    MissingProvider {
        /// The gateway's type name.
        gateway: &'static str,
        /// `"field"` or `"argument of <method>"`.
        site: String,
        /// The field or argument name.
        field: &'static str,
        /// The provider type that is missing.
        ty: &'static str,
    },
    /// Two gateways are registered at the same path, or at one route written with other
    /// parameter names (`/rooms/{id}` and `/rooms/{room}`).
    #[error(
        "gateways {first} ({first_at}) and {second} ({second_at}) are both mounted at path `{path}`; give one of them another path"
    )]
    DuplicatePath {
        /// The contested path.
        path: &'static str,
        /// The first gateway's type name.
        first: &'static str,
        /// Where the first gateway is declared (`file:line`).
        first_at: String,
        /// The second gateway's type name.
        second: &'static str,
        /// Where the second gateway is declared (`file:line`).
        second_at: String,
    },
    /// Two gateway paths that a router cannot tell apart: a parameter and a wildcard in
    /// one segment (`/rooms/{id}` and `/rooms/{*rest}`).
    #[error(
        "gateway {second} ({second_at}) at path `{second_path}` overlaps {first} ({first_at}) at path `{first_path}`: a client's path could match both; give one of them a fixed segment where they differ"
    )]
    ConflictingPaths {
        /// The first gateway's type name.
        first: &'static str,
        /// The first gateway's path.
        first_path: &'static str,
        /// Where the first gateway is declared (`file:line`).
        first_at: String,
        /// The second gateway's type name.
        second: &'static str,
        /// The second gateway's path.
        second_path: &'static str,
        /// Where the second gateway is declared (`file:line`).
        second_at: String,
    },
    /// A gateway handles one event twice (possible only across several `impl` blocks).
    #[error(
        "{gateway} handles event `{event}` twice: `{first}` and `{second}`; give one of them another event name"
    )]
    DuplicateEvent {
        /// The gateway's type name.
        gateway: &'static str,
        /// The event name.
        event: &'static str,
        /// The first handler method.
        first: &'static str,
        /// The second handler method.
        second: &'static str,
    },
    /// A gateway was asked for with [`GatewayApp::gateway`](crate::GatewayApp::gateway)
    /// or found in the registry, but no gateway is there to serve.
    #[error(
        "no gateway to serve: annotate a struct with `#[websocket_gateway(path = \"/...\")]` in a crate this binary links"
    )]
    NoGateways,
    /// A gateway's synchronous `#[after_init]` hook returned an error.
    #[error("after_init of {gateway} failed: {message}")]
    Init {
        /// The gateway's type name.
        gateway: &'static str,
        /// The hook's error message.
        message: String,
    },
    /// Providers depend on each other in a circle: none of them can be built first.
    #[error(
        "can't resolve dependencies: {} is a cycle; break it, e.g. a provider that only sends to a gateway's clients can take `ServerOf<G>` instead of the gateway", .chain.join(" -> ")
    )]
    DependencyCycle {
        /// The providers (and gateways) of the cycle, in dependency order; the first is
        /// repeated at the end.
        chain: Vec<String>,
    },
    /// A factory (or a provider a gateway depends on) needs something nobody provides.
    #[error(fmt = missing_dependency)]
    MissingDependency {
        /// The factory's type (or gateway) that needs it.
        provider: String,
        /// The type it needs.
        needs: String,
        /// From the gateway or factory where the search began to the missing type.
        chain: Vec<String>,
        /// When what is missing is a gateway (its instance or its `ServerOf`) that this app
        /// does not serve: the gateway's name.
        gateway: Option<&'static str>,
    },
    /// A factory returned an error.
    #[error("the factory of {provider} failed: {source}")]
    Factory {
        /// The type the factory provides.
        provider: String,
        /// What it returned.
        source: BoxError,
    },
    /// An async factory was given, and the app was built with the synchronous `build()`.
    #[error(
        "the factory of {provider} is async: build the app with `.build_async().await` instead of `.build()`"
    )]
    AsyncFactory {
        /// The type the async factory provides.
        provider: String,
    },
    /// An asynchronous `#[after_init]` hook needs a tokio runtime to run on.
    #[error(
        "after_init of {gateway} is async and needs a tokio runtime: call `build()` inside one (e.g. in `#[tokio::main]`)"
    )]
    NoRuntime {
        /// The gateway's type name.
        gateway: &'static str,
    },
}

/// `Repo needs `Pool`, which was not provided`, with the chain when it is longer than that
/// and the fix: provide it, or serve the gateway it is.
fn missing_dependency(
    provider: &String,
    needs: &String,
    chain: &[String],
    gateway: &Option<&'static str>,
    f: &mut std::fmt::Formatter<'_>,
) -> std::fmt::Result {
    write!(
        f,
        "can't resolve dependencies of {provider}: {provider} needs "
    )?;
    match gateway {
        Some(gateway) if gateway == needs => {
            write!(f, "gateway `{gateway}`, which this app does not serve")?;
        }
        Some(gateway) => write!(
            f,
            "`{needs}`, the server of gateway `{gateway}`, which this app does not serve"
        )?,
        None => write!(f, "`{needs}`, which was not provided")?,
    }
    if chain.len() > 2 {
        write!(f, " ({})", chain.join(" -> "))?;
    }
    match gateway {
        Some(gateway) => write!(f, "; serve it with `.gateway::<{gateway}>()`"),
        None => write!(
            f,
            "; add `.provide(...)` or a factory of `{needs}` to the GatewayApp builder"
        ),
    }
}

/// Why a frame could not be queued for a client.
///
/// # Examples
///
/// ```
/// use ws_gateway_core::prelude::*;
/// use ws_gateway_core::{Handshake, SendError};
///
/// #[websocket_gateway(path = "/chat")]
/// struct Chat;
/// #[websocket_gateway]
/// impl Chat {}
///
/// let app = GatewayApp::new().gateway::<Chat>().build().unwrap();
/// let (client, queue) = app.gateways()[0].open(Handshake::default(), 1);
/// client.emit("a", &1).unwrap();
/// // The queue holds one frame and nobody reads it: the client is too slow.
/// assert!(matches!(client.emit("b", &2), Err(SendError::QueueFull)));
/// drop(queue);
/// assert!(matches!(client.emit("c", &3), Err(SendError::Disconnected)));
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SendError {
    /// The data failed to serialize.
    #[error("failed to serialize the frame: {0}")]
    Serialize(#[from] serde_json::Error),
    /// The client is gone.
    #[error("the client is disconnected")]
    Disconnected,
    /// The client's outbound queue is full: it reads slower than it is sent to. It is being
    /// disconnected.
    #[error("the client's outbound queue is full; it is being disconnected")]
    QueueFull,
    /// The client's outbound queue is full and the frame was
    /// [volatile](crate::Frame::volatile): it was dropped, the client stays connected.
    #[error("the client's outbound queue is full; the volatile frame was dropped")]
    Dropped,
}

/// Why a client was not added to a room: the room bounds of
/// [`ConnectionConfig`](crate::ConnectionConfig). Nothing was joined. Returned from a
/// handler (`client.join(room)?`), it is an `exception` frame with this message.
///
/// # Examples
///
/// ```
/// # use ws_gateway_core::prelude::*;
/// # #[websocket_gateway(path = "/chat")] struct Chat;
/// # #[websocket_gateway] impl Chat {}
/// use ws_gateway_core::{ConnectionConfig, Handshake, RoomError};
///
/// let mut config = ConnectionConfig::default();
/// config.max_rooms_per_client = 1;
/// let app = GatewayApp::new().config(config).gateway::<Chat>().build().unwrap();
/// let (client, _queue) = app.gateways()[0].open(Handshake::default(), 8);
/// client.join("a").unwrap();
/// assert_eq!(client.join("b"), Err(RoomError::TooManyRooms { max: 1 }));
/// assert_eq!(client.rooms(), ["a"]);
/// ```
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RoomError {
    /// The client is in `max_rooms_per_client` rooms already.
    #[error("Too many rooms: a client may be in at most {max}; leave one first")]
    TooManyRooms {
        /// The bound, `ConnectionConfig::max_rooms_per_client`.
        max: usize,
    },
    /// The room's name is longer than `max_room_name_len` bytes.
    #[error("Room name too long: {len} bytes, at most {max}")]
    NameTooLong {
        /// The name's length in bytes.
        len: usize,
        /// The bound, `ConnectionConfig::max_room_name_len`.
        max: usize,
    },
}

/// Returned from a handler (`server.to(room).emit(..)?`), a failed send is NestJS's
/// `"Internal server error"` for the client that asked, logged with its cause: what went
/// wrong (a value that does not serialize, another client's full queue) is not that
/// client's to read.
impl From<SendError> for crate::WsException {
    fn from(err: SendError) -> Self {
        tracing::warn!(error = %err, "a handler's emit failed");
        crate::WsException::internal()
    }
}

impl From<RoomError> for crate::WsException {
    fn from(err: RoomError) -> Self {
        crate::WsException::of_kind(crate::ErrorKind::BadRequest, err.to_string())
    }
}
