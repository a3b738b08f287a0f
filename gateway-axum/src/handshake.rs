//! What every transport checks and keeps of an upgrade request, before any socket exists:
//! its origin, the size of what the connection would keep, its place under the connection
//! limits (with the client's address, behind trusted proxies too).

use std::net::{IpAddr, SocketAddr};

use axum::extract::ConnectInfo;
use axum::http::header::{
    CONNECTION, COOKIE, FORWARDED, HOST, ORIGIN, SEC_WEBSOCKET_EXTENSIONS, SEC_WEBSOCKET_KEY,
    SEC_WEBSOCKET_VERSION, UPGRADE,
};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use forwarded_header_value::ForwardedStanza;
use ws_gateway_core::transport::{ConnectionGuard, Refused};
use ws_gateway_core::{App, ConnectionConfig, ForwardedHeader, Handshake, Origins, PathParams};

/// An upgrade request that may proceed to authentication.
pub(crate) struct Admitted {
    /// The connection's place under the app's limits.
    pub(crate) guard: ConnectionGuard,
    /// The client's address (see [`client_ip`]).
    pub(crate) client_ip: Option<IpAddr>,
    /// A cross-origin request let in by [`Origins::Any`]: its cookies are the browser's,
    /// not the page's, and are neither authenticated nor kept.
    pub(crate) drop_cookies: bool,
}

/// Why an upgrade request was refused, before the upgrade.
#[derive(Debug, thiserror::Error)]
pub(crate) enum Refusal {
    #[error("Origin not allowed")]
    Origin,
    #[error("Request headers too large: at most {0} bytes")]
    TooLarge(usize),
    #[error(transparent)]
    Connections(#[from] Refused),
}

impl Refusal {
    /// The HTTP status of the refusal (Socket.IO clients get only the message).
    pub(crate) fn status(&self) -> StatusCode {
        match self {
            Self::Origin => StatusCode::FORBIDDEN,
            Self::TooLarge(_) => StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            Self::Connections(Refused::TooManyFromAddress) => StatusCode::TOO_MANY_REQUESTS,
            Self::Connections(Refused::UnknownAddress) => StatusCode::INTERNAL_SERVER_ERROR,
            Self::Connections(_) => StatusCode::SERVICE_UNAVAILABLE,
        }
    }
}

/// Checks the request's origin, the size of the headers the connection would keep, and
/// admits it under the app's connection limits, in that order.
pub(crate) fn admit(app: &App, parts: &Parts) -> Result<Admitted, Refusal> {
    let config = app.config();
    let drop_cookies = match check_origin(&config.allowed_origins, &parts.headers) {
        Some(cross_origin) => cross_origin,
        None => {
            tracing::debug!(target: "gateway::rejection", origin = ?parts.headers.get(ORIGIN), "origin not allowed");
            return Err(Refusal::Origin);
        }
    };
    let size = kept(&parts.headers, drop_cookies)
        .map(|(name, value)| name.as_str().len() + value.len())
        .sum::<usize>();
    if size > config.max_handshake_size {
        tracing::debug!(target: "gateway::rejection", size, "request headers too large to keep");
        return Err(Refusal::TooLarge(config.max_handshake_size));
    }
    let peer = parts
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(addr)| *addr);
    let client_ip = client_ip(config, peer.map(|addr| addr.ip()), &parts.headers);
    let guard = app.connections().admit(client_ip).inspect_err(|refused| {
        if *refused == Refused::UnknownAddress {
            tracing::error!(target: "gateway", "{refused}");
        } else {
            tracing::debug!(target: "gateway::rejection", "{refused}");
        }
    })?;
    Ok(Admitted {
        guard,
        client_ip,
        drop_cookies,
    })
}

/// `None` if the request's origin may not connect; else whether it is a cross-origin
/// request let in by [`Origins::Any`]. Requests without an `Origin` (not from a browser)
/// may connect, and keep their cookies: they are the client's own.
fn check_origin(allowed: &Origins, headers: &HeaderMap) -> Option<bool> {
    let Some(origin) = headers.get(ORIGIN) else {
        return Some(false);
    };
    let origin = origin.to_str().ok()?;
    let host = headers.get(HOST).and_then(|host| host.to_str().ok());
    if !allowed.allows(origin, host) {
        return None;
    }
    Some(*allowed == Origins::Any && !Origins::SameOrigin.allows(origin, host))
}

/// The client's address: the peer's, or when the peer is one of the config's trusted
/// proxies, the last address of their forwarded-for header that is not itself a trusted
/// proxy (the addresses left of it are the client's to write).
fn client_ip(
    config: &ConnectionConfig,
    peer: Option<IpAddr>,
    headers: &HeaderMap,
) -> Option<IpAddr> {
    let peer = peer?.to_canonical();
    let Some(proxies) = &config.trusted_proxies else {
        return Some(peer);
    };
    if !proxies.trusts(peer) {
        return Some(peer);
    }
    let name = match proxies.header {
        ForwardedHeader::Forwarded => FORWARDED,
        _ => HeaderName::from_static("x-forwarded-for"),
    };
    let hops = headers
        .get_all(name)
        .iter()
        .rev()
        .flat_map(|value| value.to_str().unwrap_or_default().rsplit(','))
        .map(str::trim)
        .filter(|hop| !hop.is_empty());
    let mut client = peer;
    for hop in hops {
        let ip = match proxies.header {
            ForwardedHeader::Forwarded => hop
                .parse::<ForwardedStanza>()
                .ok()
                .and_then(|stanza| stanza.forwarded_for_ip()),
            _ => hop
                .parse::<IpAddr>()
                .ok()
                .or_else(|| hop.parse::<SocketAddr>().ok().map(|addr| addr.ip())),
        };
        let Some(ip) = ip.map(|ip| ip.to_canonical()) else {
            // Unreadable or `unknown`: the last proxy that wrote one is all we know.
            tracing::debug!(target: "gateway::rejection", hop, "unreadable forwarded-for hop");
            break;
        };
        client = ip;
        if !proxies.trusts(ip) {
            break;
        }
    }
    Some(client)
}

/// The headers a connection keeps: all but the upgrade's own, and but the cookies when
/// they are to be dropped.
fn kept(
    headers: &HeaderMap,
    drop_cookies: bool,
) -> impl Iterator<Item = (&HeaderName, &HeaderValue)> {
    headers
        .iter()
        .filter(move |(name, _)| !(SPENT.contains(name) || drop_cookies && *name == COOKIE))
}

/// A copy of the headers a connection keeps (see [`kept`]) that does not share hyper's
/// read buffer: the parsed headers are slices of the buffer the request head was read
/// into (8 KiB and up), and keeping them for the life of the connection would keep that
/// whole buffer alive.
pub(crate) fn detach_headers(headers: &HeaderMap, drop_cookies: bool) -> HeaderMap {
    let mut copy = HeaderMap::with_capacity(kept(headers, drop_cookies).count());
    for (name, value) in kept(headers, drop_cookies) {
        let name =
            HeaderName::from_bytes(name.as_str().as_bytes()).unwrap_or_else(|_| name.clone());
        let value = HeaderValue::from_bytes(value.as_bytes()).unwrap_or_else(|_| value.clone());
        copy.append(name, value);
    }
    copy
}

/// The [`Handshake`] of an admitted request, to `uri`: its kept headers, its addresses and
/// its path parameters (the identity and extensions are the caller's to add).
pub(crate) fn handshake_of(
    uri: axum::http::Uri,
    parts: &Parts,
    admitted: &Admitted,
    path_params: PathParams,
) -> Handshake {
    let mut handshake = Handshake::new(uri, detach_headers(&parts.headers, admitted.drop_cookies));
    handshake.remote_addr = parts
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(addr)| *addr);
    handshake.client_ip = admitted.client_ip;
    handshake.path_params = path_params;
    handshake
}

/// The headers an authenticator sees: without the cookies when they are to be dropped.
#[cfg(feature = "socketio")]
pub(crate) fn without_cookies(headers: &HeaderMap) -> HeaderMap {
    let mut headers = headers.clone();
    headers.remove(COOKIE);
    headers
}

/// The WebSocket upgrade's own request headers, not kept in the
/// [`Handshake`](ws_gateway_core::Handshake): they are spent once the socket is open, and
/// each kept header costs every connection about 100 bytes for as long as it lives.
/// `Sec-WebSocket-Protocol` is kept: the application may care which it was offered.
const SPENT: [HeaderName; 5] = [
    CONNECTION,
    UPGRADE,
    SEC_WEBSOCKET_KEY,
    SEC_WEBSOCKET_VERSION,
    SEC_WEBSOCKET_EXTENSIONS,
];

#[cfg(test)]
mod tests {
    use ws_gateway_core::TrustedProxies;

    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for (name, value) in pairs {
            headers.append(
                HeaderName::from_static(name),
                HeaderValue::from_static(value),
            );
        }
        headers
    }

    #[test]
    fn the_upgrade_headers_are_not_kept() {
        let headers = headers(&[
            ("host", "example.com"),
            ("connection", "Upgrade"),
            ("upgrade", "websocket"),
            ("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ=="),
            ("sec-websocket-version", "13"),
            ("sec-websocket-extensions", "permessage-deflate"),
            ("sec-websocket-protocol", "chat"),
            ("authorization", "Bearer t"),
            ("cookie", "token=t"),
            ("x-custom", "1"),
            ("x-custom", "2"),
        ]);
        let kept = detach_headers(&headers, false);
        let names: Vec<_> = kept.keys().map(HeaderName::as_str).collect();
        assert_eq!(
            names,
            [
                "host",
                "sec-websocket-protocol",
                "authorization",
                "cookie",
                "x-custom"
            ]
        );
        assert_eq!(kept.get_all("x-custom").iter().count(), 2);
        assert!(!detach_headers(&headers, true).contains_key(COOKIE));
    }

    #[test]
    fn origins_are_checked_against_the_host() {
        let same = headers(&[("host", "chat.example"), ("origin", "https://chat.example")]);
        let foreign = headers(&[("host", "chat.example"), ("origin", "https://evil.example")]);
        let none = headers(&[("host", "chat.example")]);
        assert_eq!(check_origin(&Origins::SameOrigin, &same), Some(false));
        assert_eq!(check_origin(&Origins::SameOrigin, &foreign), None);
        assert_eq!(check_origin(&Origins::SameOrigin, &none), Some(false));
        let listed = Origins::only(["https://evil.example"]);
        assert_eq!(check_origin(&listed, &foreign), Some(false));
        assert_eq!(check_origin(&listed, &same), None);
        // Any: let in, but a cross-origin request's cookies are dropped.
        assert_eq!(check_origin(&Origins::Any, &foreign), Some(true));
        assert_eq!(check_origin(&Origins::Any, &same), Some(false));
        assert_eq!(check_origin(&Origins::Any, &none), Some(false));
    }

    fn behind(proxies: Option<TrustedProxies>) -> ConnectionConfig {
        let mut config = ConnectionConfig::default();
        config.trusted_proxies = proxies;
        config
    }

    fn ip(text: &str) -> Option<IpAddr> {
        text.parse().ok()
    }

    #[test]
    fn forwarded_addresses_are_read_from_trusted_proxies_only() {
        let proxies = TrustedProxies::new(["10.0.0.0/8".parse().unwrap()]);
        let config = behind(Some(proxies.clone()));
        let xff = headers(&[("x-forwarded-for", "6.6.6.6, 203.0.113.7, 10.0.0.2")]);
        // Right to left: 10.0.0.2 is a proxy, 203.0.113.7 is the client; 6.6.6.6 is what
        // the client wrote.
        assert_eq!(client_ip(&config, ip("10.0.0.1"), &xff), ip("203.0.113.7"));
        // Not from a proxy: the header is the client's own writing.
        assert_eq!(
            client_ip(&config, ip("198.51.100.1"), &xff),
            ip("198.51.100.1")
        );
        // Off by default.
        assert_eq!(
            client_ip(&behind(None), ip("10.0.0.1"), &xff),
            ip("10.0.0.1")
        );
        // A proxy that forwarded nothing, or garbage: the proxy itself.
        assert_eq!(
            client_ip(&config, ip("10.0.0.1"), &HeaderMap::new()),
            ip("10.0.0.1")
        );
        let garbage = headers(&[("x-forwarded-for", "1.2.3.4, nonsense")]);
        assert_eq!(client_ip(&config, ip("10.0.0.1"), &garbage), ip("10.0.0.1"));
        // Several header lines are one list; IPv4-mapped peers are IPv4.
        let lines = headers(&[
            ("x-forwarded-for", "203.0.113.8"),
            ("x-forwarded-for", "10.0.0.3"),
        ]);
        assert_eq!(
            client_ip(&config, ip("::ffff:10.0.0.1"), &lines),
            ip("203.0.113.8")
        );
        // Only the configured header is read.
        let forwarded = headers(&[("forwarded", r#"for=203.0.113.9, for="[2001:db8::1]:4711""#)]);
        assert_eq!(
            client_ip(&config, ip("10.0.0.1"), &forwarded),
            ip("10.0.0.1")
        );
        let config = behind(Some(proxies.header(ForwardedHeader::Forwarded)));
        assert_eq!(
            client_ip(&config, ip("10.0.0.1"), &forwarded),
            ip("2001:db8::1")
        );
        assert_eq!(client_ip(&config, None, &forwarded), None);
    }
}
