//! Gateway paths with parameters: [`PathParams`], what a client's URL held in the `{name}`
//! segments of its gateway's path (`/rooms/{id}`), and [`WsParam<T>`], the extractor that
//! reads them as a `T`.
//!
//! A transport decodes the parameters once, when the client connects (percent-decoded, as
//! axum decodes them), and keeps them in the client's [`Handshake`](crate::Handshake);
//! `WsParam<T>` reads them into a `T` at its first use on the connection and keeps that
//! too, so a message never parses the path again.

use std::fmt;
use std::sync::{Mutex, PoisonError};

use serde::de::value::{MapDeserializer, SeqDeserializer};
use serde::de::{self, DeserializeOwned, IntoDeserializer, Visitor};

use crate::client::Client;
use crate::dispatch::Context;
use crate::error::BuildError;
use crate::exception::{ErrorKind, WsException};
use crate::registry::GatewayDescriptor;

/// The path parameters of a client's connection: for a gateway at `/rooms/{id}` and a
/// client connected to `/rooms/42`, `id` is `"42"`. Values are percent-decoded; a `{*rest}`
/// wildcard holds the rest of the path, `/`s included.
///
/// Every client has them in [`Handshake::path_params`](crate::Handshake::path_params)
/// (none on a gateway with a fixed path). Handlers, guards and hooks usually read them
/// typed, with [`WsParam<T>`].
///
/// # Examples
///
/// ```
/// use ws_gateway_core::PathParams;
///
/// let params: PathParams = [("tenant", "acme"), ("id", "42")].into_iter().collect();
/// assert_eq!(params.get("id"), Some("42"));
/// assert_eq!(params.get("room"), None);
/// assert_eq!(params.iter().collect::<Vec<_>>(), [("tenant", "acme"), ("id", "42")]);
/// ```
#[derive(Default)]
pub struct PathParams {
    params: Box<[(Box<str>, Box<str>)]>,
    /// What `WsParam<T>` decoded, one `Decoded<T>` per `T`.
    decoded: Mutex<http::Extensions>,
}

/// A `T` read from the parameters, or why it could not be.
#[derive(Clone)]
struct Decoded<T>(Result<T, WsException>);

impl PathParams {
    /// The parameters `path` holds where `pattern` (a gateway path, `/rooms/{id}`) has
    /// `{name}` or `{*rest}` segments, percent-decoded: what a transport that routes by
    /// itself (a Socket.IO namespace, say) keeps in the client's handshake.
    ///
    /// # Errors
    ///
    /// [`PathMismatch`] when `path` is not a path of `pattern`, or a value is not UTF-8
    /// once percent-decoded.
    ///
    /// # Examples
    ///
    /// ```
    /// use ws_gateway_core::{PathMismatch, PathParams};
    ///
    /// let params = PathParams::matching("/rooms/{id}/{*rest}", "/rooms/a%20b/x/y").unwrap();
    /// assert_eq!(params.get("id"), Some("a b"));
    /// assert_eq!(params.get("rest"), Some("x/y"));
    ///
    /// assert!(PathParams::matching("/chat", "/chat").unwrap().is_empty());
    /// assert!(matches!(
    ///     PathParams::matching("/rooms/{id}", "/lobby"),
    ///     Err(PathMismatch::NotMatching { .. })
    /// ));
    /// assert!(matches!(
    ///     PathParams::matching("/rooms/{id}", "/rooms/%FF"),
    ///     Err(PathMismatch::InvalidUtf8 { .. })
    /// ));
    /// ```
    pub fn matching(pattern: &str, path: &str) -> Result<Self, PathMismatch> {
        let not_matching = || PathMismatch::NotMatching {
            pattern: pattern.to_owned(),
            path: path.to_owned(),
        };
        let mut router = matchit::Router::new();
        router.insert(pattern, ()).map_err(|_| not_matching())?;
        let found = router.at(path).map_err(|_| not_matching())?;
        found
            .params
            .iter()
            .map(|(name, value)| {
                percent_encoding::percent_decode_str(value)
                    .decode_utf8()
                    .map(|value| (name, value))
                    .map_err(|_| PathMismatch::InvalidUtf8 {
                        name: name.to_owned(),
                    })
            })
            .collect()
    }

    /// The value of parameter `name`.
    ///
    /// # Examples
    ///
    /// ```
    /// let params: ws_gateway_core::PathParams = [("id", "42")].into_iter().collect();
    /// assert_eq!(params.get("id"), Some("42"));
    /// ```
    pub fn get(&self, name: &str) -> Option<&str> {
        self.iter()
            .find(|(n, _)| *n == name)
            .map(|(_, value)| value)
    }

    /// Every parameter, `(name, value)`, in the order of the path.
    ///
    /// # Examples
    ///
    /// ```
    /// let params = ws_gateway_core::PathParams::matching("/{a}/{b}", "/x/y").unwrap();
    /// assert_eq!(params.iter().map(|(name, _)| name).collect::<Vec<_>>(), ["a", "b"]);
    /// ```
    pub fn iter(&self) -> impl ExactSizeIterator<Item = (&str, &str)> {
        self.params.iter().map(|(name, value)| (&**name, &**value))
    }

    /// How many parameters there are.
    ///
    /// # Examples
    ///
    /// ```
    /// let params = ws_gateway_core::PathParams::matching("/{a}/{b}", "/x/y").unwrap();
    /// assert_eq!(params.len(), 2);
    /// ```
    pub fn len(&self) -> usize {
        self.params.len()
    }

    /// Whether there are none (a gateway with a fixed path).
    ///
    /// # Examples
    ///
    /// ```
    /// assert!(ws_gateway_core::PathParams::default().is_empty());
    /// ```
    pub fn is_empty(&self) -> bool {
        self.params.is_empty()
    }

    /// The parameters read as a `T`, as [`WsParam<T>`] reads them (but each time anew): a
    /// struct or a map by name, a tuple by position, a single value when there is one
    /// parameter. Numbers, `bool`s, `char`s and unit enum variants are parsed from the
    /// text.
    ///
    /// # Errors
    ///
    /// A [`WsException`] of kind [`ErrorKind::BadRequest`] saying what does not fit.
    ///
    /// # Examples
    ///
    /// ```
    /// use ws_gateway_core::PathParams;
    ///
    /// #[derive(serde::Deserialize)]
    /// struct File {
    ///     tenant: String,
    ///     id: u32,
    /// }
    ///
    /// let params = PathParams::matching("/t/{tenant}/files/{id}", "/t/acme/files/7").unwrap();
    /// let file: File = params.deserialize().unwrap();
    /// assert_eq!((file.tenant.as_str(), file.id), ("acme", 7));
    /// let (tenant, id): (String, u32) = params.deserialize().unwrap();
    /// assert_eq!((tenant.as_str(), id), ("acme", 7));
    ///
    /// let err = params.deserialize::<u32>().unwrap_err();
    /// assert_eq!(err.message(), "Invalid path parameters: expected 1 parameter, the path has 2");
    /// ```
    pub fn deserialize<T: DeserializeOwned>(&self) -> Result<T, WsException> {
        T::deserialize(ParamsDeserializer(&self.params)).map_err(|err| {
            WsException::of_kind(
                ErrorKind::BadRequest,
                format!("Invalid path parameters: {err}"),
            )
        })
    }

    /// [`deserialize`](Self::deserialize) once per connection and `T`: later calls hand
    /// out copies.
    pub(crate) fn decoded<T>(&self) -> Result<T, WsException>
    where
        T: DeserializeOwned + Clone + Send + Sync + 'static,
    {
        let cache = || self.decoded.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(Decoded(decoded)) = cache().get::<Decoded<T>>() {
            return decoded.clone();
        }
        // Decoded without the lock held: a `Deserialize` impl may take its time.
        let decoded = self.deserialize::<T>();
        cache().insert(Decoded(decoded.clone()));
        decoded
    }
}

impl<K: Into<Box<str>>, V: Into<Box<str>>> FromIterator<(K, V)> for PathParams {
    /// Parameters already decoded, in the order of the path.
    fn from_iter<I: IntoIterator<Item = (K, V)>>(params: I) -> Self {
        Self {
            params: params
                .into_iter()
                .map(|(name, value)| (name.into(), value.into()))
                .collect(),
            decoded: Mutex::default(),
        }
    }
}

/// The same parameters; what `WsParam` decoded is not copied.
impl Clone for PathParams {
    fn clone(&self) -> Self {
        Self {
            params: self.params.clone(),
            decoded: Mutex::default(),
        }
    }
}

impl fmt::Debug for PathParams {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.iter()).finish()
    }
}

/// Why a path is not one of a pattern's, from [`PathParams::matching`].
///
/// # Examples
///
/// ```
/// let err = ws_gateway_core::PathParams::matching("/rooms/{id}", "/rooms/%C3").unwrap_err();
/// assert_eq!(err.to_string(), "path parameter `id` is not UTF-8 once percent-decoded");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PathMismatch {
    /// The path is not one of the pattern's.
    #[error("path `{path}` does not match `{pattern}`")]
    NotMatching {
        /// The gateway path.
        pattern: String,
        /// The client's path.
        path: String,
    },
    /// A value is not UTF-8 once percent-decoded.
    #[error("path parameter `{name}` is not UTF-8 once percent-decoded")]
    InvalidUtf8 {
        /// The parameter's name.
        name: String,
    },
}

/// The path parameters of the client's connection, read as a `T`: a struct (by name), a
/// tuple (by position) or a single value, as axum's `Path<T>` reads them; NestJS's
/// `@WsParam()` (its HTTP `@Param()`).
///
/// The parameters are read at the first use on a connection and kept with the client, so
/// `T` is `Clone` (wrap a large one in an `Arc`). A path that does not fit `T` (`/rooms/abc`
/// for a `u64`) is a [`WsException`] of kind [`ErrorKind::BadRequest`]: in a handler the
/// client receives it as an `exception` event, in `#[handle_connection]` it refuses the
/// client.
///
/// Every path of the gateway (`/rooms/1`, `/rooms/2`...) is served by the one gateway and
/// its one [`WsServer`](crate::WsServer): rooms and broadcasts span them all. Join a room
/// per parameter value to address the clients of one path.
///
/// # Examples
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// use ws_gateway_core::prelude::*;
/// use ws_gateway_core::{Handshake, PathParams};
///
/// #[derive(Clone, serde::Deserialize)]
/// struct Room {
///     id: u64,
/// }
///
/// #[websocket_gateway(path = "/rooms/{id}")]
/// struct RoomGateway;
///
/// #[websocket_gateway]
/// impl RoomGateway {
///     /// Each client joins the room of its path.
///     #[handle_connection]
///     fn connected(&self, client: Client, WsParam(room): WsParam<Room>) -> Result<(), RoomError> {
///         client.join(format!("room:{}", room.id))
///     }
///
///     #[subscribe("which")]
///     fn which(&self, WsParam(id): WsParam<u64>) -> u64 {
///         id
///     }
/// }
///
/// let app = GatewayApp::new().gateway::<RoomGateway>().build().unwrap();
/// let gw = &app.gateways()[0];
/// // What a transport does for a client of `/rooms/42`:
/// let mut handshake = Handshake::new("/rooms/42".parse().unwrap(), http::HeaderMap::new());
/// handshake.path_params = PathParams::matching(gw.path(), handshake.uri.path()).unwrap();
/// let (client, _queue) = gw.open(handshake, 8);
/// let answer = gw.handle_json(&client, r#"{"event":"which"}"#).answer().await;
/// assert_eq!(answer.frame().unwrap().as_str(), r#"{"event":"which","data":42}"#);
/// # }
/// ```
///
/// In a guard, or anywhere with a [`Context`]:
///
/// ```
/// use ws_gateway_core::prelude::*;
///
/// /// Room 0 is read-only.
/// struct NotRoomZero;
///
/// impl Guard for NotRoomZero {
///     async fn can_activate(&self, cx: &Context<'_>) -> Result<bool, WsException> {
///         Ok(WsParam::<u64>::get(cx)? != 0)
///     }
/// }
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct WsParam<T>(pub T);

impl<T: DeserializeOwned + Clone + Send + Sync + 'static> WsParam<T> {
    /// The path parameters of `client`'s connection as a `T`.
    ///
    /// # Errors
    ///
    /// A [`WsException`] of kind [`ErrorKind::BadRequest`] when they do not fit `T`.
    ///
    /// # Examples
    ///
    /// ```
    /// use ws_gateway_core::prelude::*;
    /// use ws_gateway_core::{Handshake, PathParams};
    ///
    /// #[websocket_gateway(path = "/files/{*path}")]
    /// struct Files;
    /// #[websocket_gateway]
    /// impl Files {}
    ///
    /// let app = GatewayApp::new().gateway::<Files>().build().unwrap();
    /// let mut handshake = Handshake::default();
    /// handshake.path_params = PathParams::matching("/files/{*path}", "/files/a/b.txt").unwrap();
    /// let (client, _queue) = app.gateways()[0].open(handshake, 8);
    /// assert_eq!(WsParam::<String>::of(&client).unwrap(), "a/b.txt");
    /// assert!(WsParam::<u32>::of(&client).is_err());
    /// ```
    pub fn of(client: &Client) -> Result<T, WsException> {
        client
            .handshake()
            .path_params
            .decoded::<T>()
            .inspect_err(|err| {
                tracing::debug!(target: "gateway::rejection", client = %client.id(), "{err}");
            })
    }

    /// The path parameters of the connection `cx` is about, as a `T` (see
    /// [`of`](Self::of)).
    ///
    /// # Errors
    ///
    /// A [`WsException`] of kind [`ErrorKind::BadRequest`] when they do not fit `T`, an
    /// internal error where there is no client (in `#[after_init]`).
    ///
    /// # Examples
    ///
    /// ```
    /// use ws_gateway_core::prelude::*;
    ///
    /// struct LogRoom;
    ///
    /// impl Interceptor for LogRoom {
    ///     async fn intercept(&self, cx: &Context<'_>, next: Next<'_>) -> Outcome {
    ///         if let Ok(room) = WsParam::<String>::get(cx) {
    ///             tracing::info!(room, event = cx.event(), "message");
    ///         }
    ///         next.run().await
    ///     }
    /// }
    /// ```
    pub fn get(cx: &Context<'_>) -> Result<T, WsException> {
        let client = cx.client().ok_or_else(|| {
            tracing::error!(target: "gateway", "`WsParam` was asked for where there is no client (in `after_init`)");
            WsException::internal()
        })?;
        Self::of(client)
    }
}

impl<T: DeserializeOwned + Clone + Send + Sync + 'static> crate::FromContext for WsParam<T> {
    fn from_context(cx: &Context<'_>) -> Result<Self, WsException> {
        Self::get(cx).map(WsParam)
    }
}

/// Fails when two gateways are at one route (`/rooms/{id}` and `/rooms/{room}` are one) or
/// at routes that a router cannot tell apart, naming both: at build time, rather than a
/// panic when axum mounts them or a Socket.IO namespace left out.
pub(crate) fn check_routes(descriptors: &[GatewayDescriptor]) -> Result<(), BuildError> {
    let mut router = matchit::Router::new();
    for (i, second) in descriptors.iter().enumerate() {
        // Only conflicts: the macro accepted nothing else.
        if let Err(matchit::InsertError::Conflict { .. }) = router.insert(second.path, ()) {
            let conflicts = |first: &&GatewayDescriptor| {
                let mut pair = matchit::Router::new();
                pair.insert(first.path, ()).is_ok() && pair.insert(second.path, ()).is_err()
            };
            let Some(first) = descriptors[..i].iter().find(conflicts) else {
                continue;
            };
            return Err(if route(first.path).eq(route(second.path)) {
                BuildError::DuplicatePath {
                    path: first.path,
                    first: first.name,
                    first_at: first.location(),
                    second: second.name,
                    second_at: second.location(),
                }
            } else {
                BuildError::ConflictingPaths {
                    first: first.name,
                    first_path: first.path,
                    first_at: first.location(),
                    second: second.name,
                    second_path: second.path,
                    second_at: second.location(),
                }
            });
        }
    }
    Ok(())
}

/// A path's segments with the names of its parameters left out: what tells routes apart.
fn route(pattern: &str) -> impl Iterator<Item = &str> {
    pattern.split('/').map(|segment| {
        match segment.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
            Some(name) if name.starts_with('*') => "{*}",
            Some(_) => "{}",
            None => segment,
        }
    })
}

/// The names of the parameters of a gateway path, in order: `id` for `/rooms/{id}`, `rest`
/// for `/files/{*rest}`.
#[cfg_attr(not(feature = "asyncapi"), allow(dead_code))]
pub(crate) fn names(pattern: &str) -> impl Iterator<Item = &str> {
    pattern.split('/').filter_map(|segment| {
        let name = segment.strip_prefix('{')?.strip_suffix('}')?;
        Some(name.strip_prefix('*').unwrap_or(name))
    })
}

/// Reads a `T` from the parameters: a map for a struct or a map, a sequence of the values
/// for a tuple or a sequence, the one value for anything else.
struct ParamsDeserializer<'a>(&'a [(Box<str>, Box<str>)]);

/// One parameter's value, read by `FromStr` for a number, a `bool`...; an error names the
/// parameter.
struct Plain<'a> {
    name: &'a str,
    text: &'a str,
}

impl<'de> IntoDeserializer<'de, serde_plain::Error> for Plain<'de> {
    type Deserializer = Self;

    fn into_deserializer(self) -> Self {
        self
    }
}

/// `deserialize_x` by serde_plain, the error prefixed with the parameter's name.
macro_rules! plain {
    ($($method:ident($($arg:ident: $ty:ty),*))*) => {
        $(
            fn $method<V: Visitor<'de>>(self, $($arg: $ty,)* visitor: V) -> Result<V::Value, Self::Error> {
                let name = self.name;
                de::Deserializer::$method(serde_plain::Deserializer::new(self.text), $($arg,)* visitor)
                    .map_err(|err| de::Error::custom(format_args!("`{name}`: {err}")))
            }
        )*
    };
}

impl<'de> de::Deserializer<'de> for Plain<'de> {
    type Error = serde_plain::Error;

    plain! {
        deserialize_any() deserialize_bool() deserialize_i8() deserialize_i16()
        deserialize_i32() deserialize_i64() deserialize_i128() deserialize_u8()
        deserialize_u16() deserialize_u32() deserialize_u64() deserialize_u128()
        deserialize_f32() deserialize_f64() deserialize_char() deserialize_str()
        deserialize_string() deserialize_bytes() deserialize_byte_buf() deserialize_option()
        deserialize_unit() deserialize_seq() deserialize_map() deserialize_identifier()
        deserialize_ignored_any()
        deserialize_unit_struct(name: &'static str)
        deserialize_newtype_struct(name: &'static str)
        deserialize_tuple(len: usize)
        deserialize_tuple_struct(name: &'static str, len: usize)
        deserialize_struct(name: &'static str, fields: &'static [&'static str])
        deserialize_enum(name: &'static str, variants: &'static [&'static str])
    }
}

impl<'de> ParamsDeserializer<'de> {
    fn map(
        &self,
    ) -> MapDeserializer<'de, impl Iterator<Item = (&'de str, Plain<'de>)>, serde_plain::Error>
    {
        MapDeserializer::new(
            self.0
                .iter()
                .map(|(name, text)| (&**name, Plain { name, text })),
        )
    }

    fn seq(
        &self,
        len: Option<usize>,
    ) -> Result<
        SeqDeserializer<impl Iterator<Item = Plain<'de>>, serde_plain::Error>,
        serde_plain::Error,
    > {
        if let Some(len) = len
            && len != self.0.len()
        {
            return Err(de::Error::custom(format_args!(
                "expected {len} parameters, the path has {}",
                self.0.len()
            )));
        }
        Ok(SeqDeserializer::new(
            self.0.iter().map(|(name, text)| Plain { name, text }),
        ))
    }

    fn one(&self) -> Result<Plain<'de>, serde_plain::Error> {
        match self.0 {
            [(name, text)] => Ok(Plain { name, text }),
            _ => Err(de::Error::custom(format_args!(
                "expected 1 parameter, the path has {}",
                self.0.len()
            ))),
        }
    }
}

/// `deserialize_x` reading the one value.
macro_rules! one_value {
    ($($method:ident)*) => {
        $(
            fn $method<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Self::Error> {
                de::Deserializer::$method(self.one()?, visitor)
            }
        )*
    };
}

impl<'de> de::Deserializer<'de> for ParamsDeserializer<'de> {
    type Error = serde_plain::Error;

    one_value! {
        deserialize_bool deserialize_i8 deserialize_i16 deserialize_i32 deserialize_i64
        deserialize_i128 deserialize_u8 deserialize_u16 deserialize_u32 deserialize_u64
        deserialize_u128 deserialize_f32 deserialize_f64 deserialize_char deserialize_str
        deserialize_string deserialize_bytes deserialize_byte_buf deserialize_unit
        deserialize_identifier
    }

    /// A map, as for `HashMap<String, String>` or `serde_json::Value`.
    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Self::Error> {
        self.deserialize_map(visitor)
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Self::Error> {
        if self.0.is_empty() {
            visitor.visit_none()
        } else {
            visitor.visit_some(self)
        }
    }

    fn deserialize_unit_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, Self::Error> {
        self.deserialize_unit(visitor)
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, Self::Error> {
        visitor.visit_newtype_struct(self)
    }

    fn deserialize_seq<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Self::Error> {
        let mut seq = self.seq(None)?;
        let value = visitor.visit_seq(&mut seq)?;
        seq.end()?;
        Ok(value)
    }

    fn deserialize_tuple<V: Visitor<'de>>(
        self,
        len: usize,
        visitor: V,
    ) -> Result<V::Value, Self::Error> {
        let mut seq = self.seq(Some(len))?;
        let value = visitor.visit_seq(&mut seq)?;
        seq.end()?;
        Ok(value)
    }

    fn deserialize_tuple_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        len: usize,
        visitor: V,
    ) -> Result<V::Value, Self::Error> {
        self.deserialize_tuple(len, visitor)
    }

    fn deserialize_map<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Self::Error> {
        let mut map = self.map();
        let value = visitor.visit_map(&mut map)?;
        map.end()?;
        Ok(value)
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Self::Error> {
        self.deserialize_map(visitor)
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        name: &'static str,
        variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Self::Error> {
        de::Deserializer::deserialize_enum(self.one()?, name, variants, visitor)
    }

    fn deserialize_ignored_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Self::Error> {
        visitor.visit_unit()
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use serde::Deserialize;

    use super::*;

    fn params(pattern: &str, path: &str) -> PathParams {
        PathParams::matching(pattern, path).unwrap()
    }

    fn message<T: DeserializeOwned>(params: &PathParams) -> String {
        match params.deserialize::<T>() {
            Ok(_) => String::from("ok"),
            Err(err) => err.message().to_owned(),
        }
    }

    #[test]
    fn values_are_percent_decoded_and_a_wildcard_takes_the_rest() {
        let p = params("/rooms/{id}", "/rooms/r%C3%A9union%20a");
        assert_eq!(p.get("id"), Some("réunion a"));
        let p = params("/files/{*path}", "/files/a/b%2Fc.txt");
        assert_eq!(p.get("path"), Some("a/b/c.txt"));
        let p = params("/chat", "/chat");
        assert!(p.is_empty());
    }

    #[test]
    fn paths_of_another_route_do_not_match() {
        for (pattern, path) in [
            ("/rooms/{id}", "/rooms"),
            ("/rooms/{id}", "/rooms/"),
            ("/rooms/{id}", "/rooms/1/2"),
            ("/files/{*path}", "/files/"),
            ("/chat", "/chat/x"),
        ] {
            assert!(
                matches!(
                    PathParams::matching(pattern, path),
                    Err(PathMismatch::NotMatching { .. })
                ),
                "{pattern} {path}"
            );
        }
    }

    #[derive(Debug, Deserialize, PartialEq)]
    struct Room {
        tenant: String,
        id: u32,
    }

    #[derive(Debug, Deserialize, PartialEq)]
    #[serde(rename_all = "lowercase")]
    enum Kind {
        Public,
        Private,
    }

    #[test]
    fn reads_structs_tuples_maps_and_single_values() {
        let p = params("/t/{tenant}/rooms/{id}", "/t/acme/rooms/7");
        assert_eq!(
            p.deserialize::<Room>().unwrap(),
            Room {
                tenant: "acme".into(),
                id: 7
            }
        );
        assert_eq!(
            p.deserialize::<(String, u32)>().unwrap(),
            ("acme".into(), 7)
        );
        assert_eq!(
            p.deserialize::<Vec<String>>().unwrap(),
            ["acme".to_owned(), "7".to_owned()]
        );
        let map = p.deserialize::<BTreeMap<String, String>>().unwrap();
        assert_eq!(map["tenant"], "acme");
        assert_eq!(
            p.deserialize::<serde_json::Value>().unwrap(),
            serde_json::json!({"tenant": "acme", "id": "7"})
        );

        let p = params("/rooms/{id}", "/rooms/42");
        assert_eq!(p.deserialize::<u64>().unwrap(), 42);
        assert_eq!(p.deserialize::<String>().unwrap(), "42");
        assert_eq!(p.deserialize::<(u8,)>().unwrap(), (42,));
        assert_eq!(p.deserialize::<Option<i16>>().unwrap(), Some(42));
        let p = params("/rooms/{kind}", "/rooms/private");
        assert_eq!(p.deserialize::<Kind>().unwrap(), Kind::Private);
        assert_eq!(
            PathParams::default().deserialize::<Option<u8>>().unwrap(),
            None
        );
    }

    #[test]
    fn says_why_the_path_does_not_fit() {
        let p = params("/t/{tenant}/rooms/{id}", "/t/acme/rooms/seven");
        assert_eq!(
            message::<Room>(&p),
            "Invalid path parameters: `id`: cannot parse u32: invalid digit found in string"
        );
        assert_eq!(
            message::<(String, u32, u32)>(&p),
            "Invalid path parameters: expected 3 parameters, the path has 2"
        );
        assert_eq!(
            message::<u32>(&PathParams::default()),
            "Invalid path parameters: expected 1 parameter, the path has 0"
        );
        #[derive(Debug, Deserialize)]
        #[allow(dead_code)]
        struct Other {
            room: String,
        }
        assert_eq!(
            message::<Other>(&p),
            "Invalid path parameters: missing field `room`"
        );
        let err = p.deserialize::<u32>().unwrap_err();
        assert_eq!(err.kind(), ErrorKind::BadRequest);
    }

    #[test]
    fn decoded_values_are_kept_per_type() {
        let p = params("/rooms/{id}", "/rooms/42");
        assert_eq!(p.decoded::<u64>().unwrap(), 42);
        assert_eq!(p.decoded::<String>().unwrap(), "42");
        assert!(p.decoded::<bool>().is_err());
        let cache = p.decoded.lock().unwrap();
        assert!(cache.get::<Decoded<u64>>().is_some());
        assert!(cache.get::<Decoded<String>>().is_some());
        assert!(matches!(
            cache.get::<Decoded<bool>>(),
            Some(Decoded(Err(_)))
        ));
    }

    #[test]
    fn names_are_read_from_the_pattern() {
        assert_eq!(
            names("/t/{tenant}/files/{*path}").collect::<Vec<_>>(),
            ["tenant", "path"]
        );
        assert_eq!(names("/chat").count(), 0);
    }
}
