//! The HTTP side of a connection: the upgrade request.

use std::net::SocketAddr;

use axum::Json;
use axum::extract::ws::WebSocketUpgrade;
use axum::extract::{ConnectInfo, FromRequestParts, Request, State};
use axum::http::StatusCode;
use axum::http::header::{
    CONNECTION, ORIGIN, SEC_WEBSOCKET_ACCEPT, SEC_WEBSOCKET_EXTENSIONS, SEC_WEBSOCKET_KEY,
    SEC_WEBSOCKET_VERSION, UPGRADE,
};
use axum::http::{HeaderMap, HeaderName, HeaderValue, Uri};
use axum::response::{IntoResponse, Response};
use std::sync::Arc;

use gateway_core::transport::{GatewayRuntime, Refused, Session};
use gateway_core::{App, ConnectionConfig, Handshake, HandshakeRequest};

use crate::codec::Codec;
use crate::socket::{WebSocketConnection, WireLimits};
use hyper::upgrade::OnUpgrade;
use hyper_util::rt::TokioIo;
use tokio_tungstenite::WebSocketStream;
use tungstenite::handshake::derive_accept_key;
use tungstenite::protocol::{Role, WebSocketConfig};

/// What one upgrade route serves.
/// A gateway as a route serves it: the gateway, its app, the wire format.
pub(crate) struct Mounted<C> {
    pub(crate) gateway: GatewayRuntime,
    pub(crate) app: App,
    pub(crate) codec: Arc<C>,
}

impl<C> Clone for Mounted<C> {
    fn clone(&self) -> Self {
        Self {
            gateway: self.gateway.clone(),
            app: self.app.clone(),
            codec: Arc::clone(&self.codec),
        }
    }
}

pub(crate) const ORIGIN_NOT_ALLOWED: &str = "Origin not allowed";

/// Whether the request's `Origin` (if any: non-browser clients send none) is one of the
/// config's `allowed_origins` (if set).
pub(crate) fn origin_allowed(config: &ConnectionConfig, headers: &HeaderMap) -> bool {
    let (Some(allowed), Some(origin)) = (&config.allowed_origins, headers.get(ORIGIN)) else {
        return true;
    };
    let origin = origin.to_str().unwrap_or_default();
    let ok = allowed.iter().any(|a| a.eq_ignore_ascii_case(origin));
    if !ok {
        tracing::debug!(target: "gateway::rejection", origin, "origin not allowed");
    }
    ok
}

fn refuse(status: StatusCode, message: &str) -> Response {
    let body = serde_json::json!({"status": "error", "message": message});
    (status, Json(body)).into_response()
}

pub(crate) async fn upgrade<C: Codec>(
    State(mounted): State<Mounted<C>>,
    request: Request,
) -> Response {
    let (mut parts, _body) = request.into_parts();
    // axum checks the handshake (and answers a bad one); the upgraded connection is ours,
    // see `socket.rs` for why.
    let on_upgrade = parts.extensions.get::<OnUpgrade>().cloned();
    if let Err(rejection) = WebSocketUpgrade::from_request_parts(&mut parts, &()).await {
        return rejection.into_response();
    }
    let Some(on_upgrade) = on_upgrade else {
        return StatusCode::UPGRADE_REQUIRED.into_response();
    };
    let accepted = switching_protocols(parts.headers.get(SEC_WEBSOCKET_KEY));
    // Every refusal happens before the upgrade: a refused client never gets a socket.
    let config = mounted.app.config();
    if !origin_allowed(config, &parts.headers) {
        return refuse(StatusCode::FORBIDDEN, ORIGIN_NOT_ALLOWED);
    }
    let remote_addr = parts
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(addr)| *addr);
    let guard = match mounted.app.connections().admit(remote_addr.map(|a| a.ip())) {
        Ok(guard) => guard,
        Err(refused) => {
            tracing::debug!(target: "gateway::rejection", "{refused}");
            let status = match refused {
                Refused::TooManyFromAddress => StatusCode::TOO_MANY_REQUESTS,
                _ => StatusCode::SERVICE_UNAVAILABLE,
            };
            return refuse(status, &refused.to_string());
        }
    };
    let identity = match mounted
        .gateway
        .authenticate(&HandshakeRequest::new(&parts.uri, &parts.headers))
        .await
    {
        Ok(identity) => identity,
        Err(err) => return refuse(StatusCode::UNAUTHORIZED, err.message()),
    };
    if let Some(store) = identity {
        store(&mut parts.extensions);
    }
    let mut handshake = Handshake::new(detach_uri(parts.uri), detach_headers(&parts.headers));
    handshake.remote_addr = remote_addr;
    handshake.extensions = parts.extensions;
    let ws_config = WebSocketConfig::default()
        .read_buffer_size(config.read_buffer_size)
        .write_buffer_size(config.write_buffer_size)
        .max_message_size(Some(config.max_message_size))
        .max_frame_size(Some(config.max_frame_size));
    let limits = WireLimits {
        write_timeout: config.write_timeout,
        close_timeout: config.close_timeout,
    };
    // Boxed while the upgrade completes, so that the upgrade task carries one pointer
    // instead of the handshake.
    let session = Box::new(Session::new(&mounted.gateway, &mounted.app, handshake).admitted(guard));
    let codec = mounted.codec;
    tokio::spawn(async move {
        let upgraded = match on_upgrade.await {
            Ok(upgraded) => upgraded,
            Err(err) => {
                tracing::debug!(target: "gateway", "upgrade failed: {err}");
                return;
            }
        };
        let io = TokioIo::new(upgraded);
        let socket = WebSocketStream::from_raw_socket(io, Role::Server, Some(ws_config)).await;
        (*session)
            .serve(WebSocketConnection::new(socket, codec, limits))
            .await;
    });
    accepted
}

/// The response accepting a handshake axum checked: 101 with the accept key on HTTP/1.1,
/// an empty 200 on HTTP/2 (RFC 8441), which has no key.
fn switching_protocols(key: Option<&HeaderValue>) -> Response {
    let Some(key) = key else {
        return Response::new(axum::body::Body::empty());
    };
    let accept = derive_accept_key(key.as_bytes());
    let mut response = Response::new(axum::body::Body::empty());
    *response.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    let headers = response.headers_mut();
    headers.insert(CONNECTION, HeaderValue::from_static("upgrade"));
    headers.insert(UPGRADE, HeaderValue::from_static("websocket"));
    if let Ok(accept) = HeaderValue::try_from(accept) {
        headers.insert(SEC_WEBSOCKET_ACCEPT, accept);
    }
    response
}

fn detach_uri(uri: Uri) -> Uri {
    uri.to_string().parse().unwrap_or(uri)
}

/// A copy of the request headers that does not share hyper's read buffer: the parsed
/// headers are slices of the 8-16 KiB buffer the request head was read into, and keeping
/// them for the life of the connection would keep that whole buffer alive (about 16 KiB
/// per idle connection).
///
/// The upgrade's own headers are left out: they are spent once the socket is open, and
/// each kept header costs every connection about 100 bytes for as long as it lives.
fn detach_headers(headers: &HeaderMap) -> HeaderMap {
    let kept = || headers.iter().filter(|(name, _)| !SPENT.contains(name));
    let mut copy = HeaderMap::with_capacity(kept().count());
    for (name, value) in kept() {
        let name =
            HeaderName::from_bytes(name.as_str().as_bytes()).unwrap_or_else(|_| name.clone());
        let value = HeaderValue::from_bytes(value.as_bytes()).unwrap_or_else(|_| value.clone());
        copy.append(name, value);
    }
    copy
}

/// The WebSocket upgrade's own request headers, not kept in the [`Handshake`].
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
    use super::*;

    #[test]
    fn the_upgrade_headers_are_not_kept() {
        let mut headers = HeaderMap::new();
        for (name, value) in [
            ("host", "example.com"),
            ("connection", "Upgrade"),
            ("upgrade", "websocket"),
            ("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ=="),
            ("sec-websocket-version", "13"),
            ("sec-websocket-extensions", "permessage-deflate"),
            ("sec-websocket-protocol", "chat"),
            ("authorization", "Bearer t"),
            ("x-custom", "1"),
            ("x-custom", "2"),
        ] {
            headers.append(
                HeaderName::from_static(name),
                HeaderValue::from_static(value),
            );
        }
        let kept = detach_headers(&headers);
        let names: Vec<_> = kept.keys().map(HeaderName::as_str).collect();
        assert_eq!(
            names,
            [
                "host",
                "sec-websocket-protocol",
                "authorization",
                "x-custom"
            ]
        );
        assert_eq!(kept.get_all("x-custom").iter().count(), 2);
    }
}
