//! Handshake authentication: an [`Authenticator`] runs on the HTTP upgrade request, before
//! any socket exists; the [`Identity`] it returns is an extractor afterwards.

use std::future::Future;
use std::sync::Arc;

use serde_json::Value;

use crate::client::Client;
use crate::dispatch::Context;
use crate::exception::WsException;
use crate::extract::FromContext;
use crate::guard::BoxFuture;

/// The message of a failed authentication, as NestJS words it.
///
/// # Examples
///
/// ```
/// assert_eq!(ws_gateway_core::UNAUTHORIZED, "Unauthorized");
/// ```
pub const UNAUTHORIZED: &str = "Unauthorized";

/// The upgrade request an [`Authenticator`] looks at.
///
/// # Examples
///
/// ```
/// use ws_gateway_core::HandshakeRequest;
///
/// let uri: http::Uri = "/chat?room=a".parse().unwrap();
/// let mut headers = http::HeaderMap::new();
/// headers.insert("authorization", "Bearer abc".parse().unwrap());
/// let request = HandshakeRequest::new(&uri, &headers);
/// assert_eq!(request.token(), Some("abc"));
/// assert_eq!(request.query_param("room"), Some("a"));
/// ```
#[derive(Debug)]
pub struct HandshakeRequest<'a> {
    uri: &'a http::Uri,
    headers: &'a http::HeaderMap,
    auth: Option<&'a Value>,
}

impl<'a> HandshakeRequest<'a> {
    /// A request with this URI and headers.
    ///
    /// # Examples
    ///
    /// ```
    /// use ws_gateway_core::HandshakeRequest;
    ///
    /// let uri: http::Uri = "/chat".parse().unwrap();
    /// let headers = http::HeaderMap::new();
    /// let request = HandshakeRequest::new(&uri, &headers);
    /// assert_eq!(request.uri().path(), "/chat");
    /// assert!(request.auth_payload().is_none());
    /// ```
    pub fn new(uri: &'a http::Uri, headers: &'a http::HeaderMap) -> Self {
        Self {
            uri,
            headers,
            auth: None,
        }
    }

    /// Adds the `auth` payload of a Socket.IO handshake.
    ///
    /// # Examples
    ///
    /// ```
    /// use ws_gateway_core::HandshakeRequest;
    ///
    /// // What a Socket.IO client sends with `io(url, { auth: { token: "abc" } })`.
    /// let auth = serde_json::json!({ "token": "abc" });
    /// let (uri, headers) = ("/socket.io/".parse().unwrap(), http::HeaderMap::new());
    /// let request = HandshakeRequest::new(&uri, &headers).with_auth_payload(Some(&auth));
    /// assert_eq!(request.token(), Some("abc"));
    /// ```
    #[must_use]
    pub fn with_auth_payload(mut self, auth: Option<&'a Value>) -> Self {
        self.auth = auth;
        self
    }

    /// The request URI.
    ///
    /// # Examples
    ///
    /// ```
    /// use ws_gateway_core::HandshakeRequest;
    ///
    /// let (uri, headers) = ("/chat?v=2".parse().unwrap(), http::HeaderMap::new());
    /// let request = HandshakeRequest::new(&uri, &headers);
    /// assert_eq!(request.uri().query(), Some("v=2"));
    /// ```
    pub fn uri(&self) -> &'a http::Uri {
        self.uri
    }

    /// The request headers.
    ///
    /// # Examples
    ///
    /// ```
    /// use ws_gateway_core::HandshakeRequest;
    ///
    /// let uri = "/chat".parse().unwrap();
    /// let mut headers = http::HeaderMap::new();
    /// headers.insert("x-api-key", "k1".parse().unwrap());
    /// let request = HandshakeRequest::new(&uri, &headers);
    /// assert_eq!(request.headers()["x-api-key"], "k1");
    /// ```
    pub fn headers(&self) -> &'a http::HeaderMap {
        self.headers
    }

    /// The Socket.IO `auth` payload, when the client came through Socket.IO.
    ///
    /// # Examples
    ///
    /// ```
    /// use ws_gateway_core::HandshakeRequest;
    ///
    /// let auth = serde_json::json!({ "user": "alice" });
    /// let (uri, headers) = ("/".parse().unwrap(), http::HeaderMap::new());
    /// let request = HandshakeRequest::new(&uri, &headers).with_auth_payload(Some(&auth));
    /// assert_eq!(request.auth_payload().unwrap()["user"], "alice");
    /// ```
    pub fn auth_payload(&self) -> Option<&'a Value> {
        self.auth
    }

    /// The value of query parameter `name` (not percent-decoded).
    ///
    /// # Examples
    ///
    /// ```
    /// use ws_gateway_core::HandshakeRequest;
    ///
    /// let (uri, headers) = ("/chat?room=a%20b&debug".parse().unwrap(), http::HeaderMap::new());
    /// let request = HandshakeRequest::new(&uri, &headers);
    /// assert_eq!(request.query_param("room"), Some("a%20b")); // as sent
    /// assert_eq!(request.query_param("debug"), Some(""));
    /// assert_eq!(request.query_param("missing"), None);
    /// ```
    pub fn query_param(&self, name: &str) -> Option<&'a str> {
        self.uri.query()?.split('&').find_map(|pair| {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            (key == name).then_some(value)
        })
    }

    /// The value of cookie `name`.
    ///
    /// # Examples
    ///
    /// ```
    /// use ws_gateway_core::HandshakeRequest;
    ///
    /// let uri = "/chat".parse().unwrap();
    /// let mut headers = http::HeaderMap::new();
    /// headers.insert("cookie", "theme=dark; session=s3cr3t".parse().unwrap());
    /// let request = HandshakeRequest::new(&uri, &headers);
    /// assert_eq!(request.cookie("session"), Some("s3cr3t"));
    /// assert_eq!(request.cookie("lang"), None);
    /// ```
    pub fn cookie(&self, name: &str) -> Option<&'a str> {
        self.headers
            .get_all(http::header::COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(';'))
            .find_map(|pair| {
                let (key, value) = pair.trim().split_once('=')?;
                (key == name).then_some(value)
            })
    }

    /// The bearer token of the request, from the first place that has one: the
    /// `Authorization: Bearer` header, the `token` query parameter (browsers cannot set
    /// headers on a WebSocket), the `token` cookie, or Socket.IO's `auth.token`.
    ///
    /// A cookie is sent by the browser whichever page opens the socket: the transports
    /// refuse other origins by default, and under
    /// [`Origins::Any`](crate::Origins::Any) remove a cross-origin request's cookies before
    /// authenticating, so a `token` cookie authenticates only the server's own pages and
    /// non-browser clients.
    ///
    /// # Examples
    ///
    /// ```
    /// use ws_gateway_core::HandshakeRequest;
    ///
    /// let uri: http::Uri = "/chat?room=a&token=abc".parse().unwrap();
    /// let headers = http::HeaderMap::new();
    /// assert_eq!(HandshakeRequest::new(&uri, &headers).token(), Some("abc"));
    /// ```
    pub fn token(&self) -> Option<&'a str> {
        let header = self
            .headers
            .get(http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| {
                let (scheme, token) = v.split_once(' ')?;
                scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
            });
        header
            .or_else(|| self.query_param("token"))
            .or_else(|| self.cookie("token"))
            .or_else(|| self.auth?.get("token")?.as_str())
            .filter(|token| !token.is_empty())
    }
}

/// Authenticates a client on its HTTP upgrade request. A failure answers HTTP 401 before
/// the upgrade: no socket is ever opened for an unauthenticated client (NestJS can only
/// disconnect after connecting).
///
/// Attach it with [`GatewayApp::authenticate`](crate::GatewayApp::authenticate) (one
/// gateway) or [`GatewayApp::authenticate_all`](crate::GatewayApp::authenticate_all).
///
/// # Examples
///
/// ```
/// use ws_gateway_core::{Authenticator, HandshakeRequest, WsException};
///
/// #[derive(Clone, Debug, PartialEq)]
/// struct User(String);
///
/// /// Accepts the token "letmein" only.
/// struct StaticToken;
///
/// impl Authenticator for StaticToken {
///     type Identity = User;
///
///     async fn authenticate(&self, request: &HandshakeRequest<'_>) -> Result<User, WsException> {
///         match request.token() {
///             Some("letmein") => Ok(User("admin".into())),
///             Some(_) => Err(WsException::new("Invalid token")),
///             None => Err(WsException::new("Missing token")),
///         }
///     }
/// }
/// ```
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not an authenticator",
    note = "implement `ws_gateway_core::Authenticator` for `{Self}`"
)]
pub trait Authenticator: Send + Sync + 'static {
    /// Who the client is; handlers, guards and hooks read it with [`Identity<T>`].
    /// Comparable, so that connection state recovery gives a session back only to the
    /// identity it was issued to (see [`Recovery`](crate::Recovery)).
    type Identity: Clone + PartialEq + Send + Sync + 'static;

    /// Checks the request.
    ///
    /// # Errors
    ///
    /// The reason sent with the 401 response.
    fn authenticate(
        &self,
        request: &HandshakeRequest<'_>,
    ) -> impl Future<Output = Result<Self::Identity, WsException>> + Send;
}

/// Stores an authenticated identity in a handshake's extensions.
///
/// # Examples
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// use ws_gateway_core::prelude::*;
/// use ws_gateway_core::{Authenticator, Handshake, HandshakeRequest};
///
/// struct Anyone;
///
/// impl Authenticator for Anyone {
///     type Identity = u32;
///
///     async fn authenticate(&self, _request: &HandshakeRequest<'_>) -> Result<u32, WsException> {
///         Ok(7)
///     }
/// }
///
/// #[websocket_gateway(path = "/chat")]
/// struct Chat;
/// #[websocket_gateway]
/// impl Chat {}
///
/// let app = GatewayApp::new().authenticate_all(Anyone).gateway::<Chat>().build().unwrap();
/// let gw = &app.gateways()[0];
/// let (uri, headers) = ("/chat".parse().unwrap(), http::HeaderMap::new());
/// let slot = gw.authenticate(&HandshakeRequest::new(&uri, &headers)).await.unwrap().unwrap();
///
/// let mut handshake = Handshake::default();
/// slot(&mut handshake.extensions); // stores Identity(7)
/// assert_eq!(handshake.extensions.get::<Identity<u32>>(), Some(&Identity(7)));
/// # }
/// ```
pub type IdentitySlot = Box<dyn FnOnce(&mut http::Extensions) + Send>;

pub(crate) trait ErasedAuthenticator: Send + Sync {
    fn authenticate<'a>(
        &'a self,
        request: &'a HandshakeRequest<'a>,
    ) -> BoxFuture<'a, Result<IdentitySlot, WsException>>;

    /// Whether the identities this authenticator stored in two handshakes' extensions are
    /// the same (both absent included).
    fn same_identity(&self, a: &http::Extensions, b: &http::Extensions) -> bool;
}

impl<A: Authenticator> ErasedAuthenticator for A {
    fn authenticate<'a>(
        &'a self,
        request: &'a HandshakeRequest<'a>,
    ) -> BoxFuture<'a, Result<IdentitySlot, WsException>> {
        Box::pin(async move {
            let identity = Authenticator::authenticate(self, request).await?;
            let slot: IdentitySlot = Box::new(move |ext: &mut http::Extensions| {
                ext.insert(Identity(identity));
            });
            Ok(slot)
        })
    }

    fn same_identity(&self, a: &http::Extensions, b: &http::Extensions) -> bool {
        a.get::<Identity<A::Identity>>() == b.get::<Identity<A::Identity>>()
    }
}

/// A shared authenticator.
#[derive(Clone)]
pub(crate) struct AuthenticatorRef(pub(crate) Arc<dyn ErasedAuthenticator>);

/// The identity an [`Authenticator`] established at the handshake: a handler argument, and
/// readable in guards and hooks.
///
/// As an argument, a client without that identity gets an `"Unauthorized"` exception.
///
/// # Examples
///
/// ```
/// use ws_gateway_core::prelude::*;
/// use ws_gateway_core::Identity;
///
/// #[derive(Clone, PartialEq)]
/// struct User {
///     name: String,
/// }
///
/// #[websocket_gateway(path = "/me")]
/// struct MeGateway;
///
/// #[websocket_gateway]
/// impl MeGateway {
///     #[subscribe("whoami")]
///     fn whoami(&self, Identity(user): Identity<User>) -> String {
///         user.name
///     }
/// }
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Identity<T>(pub T);

impl<T: Clone + Send + Sync + 'static> Identity<T> {
    /// The identity of `client`, if it has one of type `T`.
    ///
    /// # Examples
    ///
    /// ```
    /// use ws_gateway_core::prelude::*;
    /// use ws_gateway_core::Handshake;
    ///
    /// #[websocket_gateway(path = "/chat")]
    /// struct Chat;
    /// #[websocket_gateway]
    /// impl Chat {}
    ///
    /// let app = GatewayApp::new().gateway::<Chat>().build().unwrap();
    /// let gw = &app.gateways()[0];
    ///
    /// let mut handshake = Handshake::default();
    /// handshake.extensions.insert(Identity(String::from("alice")));
    /// let (alice, _a) = gw.open(handshake, 8);
    /// let (anonymous, _b) = gw.open(Handshake::default(), 8);
    /// assert_eq!(Identity::<String>::of(&alice).map(String::as_str), Some("alice"));
    /// assert_eq!(Identity::<String>::of(&anonymous), None);
    /// ```
    pub fn of(client: &Client) -> Option<&T> {
        client
            .handshake()
            .extensions
            .get::<Identity<T>>()
            .map(|identity| &identity.0)
    }

    /// The identity of the client of `cx`, if it has one of type `T`.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// use ws_gateway_core::prelude::*;
    /// use ws_gateway_core::Handshake;
    ///
    /// /// Only "admin" may send messages.
    /// struct AdminOnly;
    ///
    /// impl Guard for AdminOnly {
    ///     async fn can_activate(&self, cx: &Context<'_>) -> Result<bool, WsException> {
    ///         Ok(Identity::<String>::get(cx).as_deref() == Some("admin"))
    ///     }
    /// }
    ///
    /// #[websocket_gateway(path = "/admin")]
    /// struct Admin;
    /// #[websocket_gateway]
    /// impl Admin {
    ///     #[subscribe("purge")]
    ///     fn purge(&self) {}
    /// }
    ///
    /// let app = GatewayApp::new().use_global_guard(AdminOnly).gateway::<Admin>().build().unwrap();
    /// let gw = &app.gateways()[0];
    /// let mut handshake = Handshake::default();
    /// handshake.extensions.insert(Identity(String::from("admin")));
    /// let (admin, _a) = gw.open(handshake, 8);
    /// let (guest, _b) = gw.open(Handshake::default(), 8);
    /// let purge = r#"{"event":"purge"}"#;
    /// assert!(gw.handle_json(&admin, purge).answer().await.frame().is_none()); // purged, nothing to say
    /// let denied = gw.handle_json(&guest, purge).answer().await;
    /// assert!(denied.frame().unwrap().as_str().contains(r#""message":"Forbidden resource""#));
    /// # }
    /// ```
    pub fn get(cx: &Context<'_>) -> Option<T> {
        cx.client().and_then(Self::of).cloned()
    }
}

impl<T: Clone + Send + Sync + 'static> FromContext for Identity<T> {
    fn from_context(cx: &Context<'_>) -> Result<Self, WsException> {
        Self::get(cx)
            .map(Identity)
            .ok_or_else(|| WsException::new(UNAUTHORIZED))
    }
}

impl<T: Clone + Send + Sync + 'static> FromContext for Option<Identity<T>> {
    fn from_context(cx: &Context<'_>) -> Result<Self, WsException> {
        Ok(Identity::get(cx).map(Identity))
    }
}

/// The `auth` payload of a Socket.IO client's namespace CONNECT (`io(url, { auth })`), in
/// its [`Handshake`](crate::Handshake)'s extensions; absent when the client sent none. The
/// Socket.IO transport puts it there; connection state recovery carries it with a session
/// claimed by another instance, whose authenticator reads it again.
///
/// # Examples
///
/// ```
/// use ws_gateway_core::prelude::*;
/// use ws_gateway_core::SocketIoAuth;
///
/// #[websocket_gateway(path = "/doc-sio-auth")]
/// struct Greeter;
///
/// #[websocket_gateway]
/// impl Greeter {
///     /// Tells each client what it sent as `auth` (`{}` for nothing).
///     #[handle_connection]
///     fn connected(&self, client: Client) {
///         let auth = client.handshake().extensions.get::<SocketIoAuth>();
///         let empty = serde_json::json!({});
///         client.emit("auth", auth.map_or(&empty, |SocketIoAuth(auth)| auth)).ok();
///     }
/// }
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct SocketIoAuth(pub Value);
