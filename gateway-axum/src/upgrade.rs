//! The HTTP side of a connection: the upgrade request.

use axum::Json;
use axum::extract::ws::WebSocketUpgrade;
use axum::extract::{FromRequestParts, RawPathParams, Request, State};
use axum::http::StatusCode;
use axum::http::header::{CONNECTION, COOKIE, SEC_WEBSOCKET_ACCEPT, SEC_WEBSOCKET_KEY, UPGRADE};
use axum::http::{HeaderValue, Uri};
use axum::response::{IntoResponse, Response};
use std::sync::Arc;

use ws_gateway_core::transport::{GatewayRuntime, Session};
use ws_gateway_core::{App, HandshakeRequest, PathParams};

use crate::codec::Codec;
use crate::handshake;
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

/// A refusal, and the end of the connection: a refused client keeps nothing on the
/// server, not even the read buffer its request head grew (up to hyper's ~400 KiB under
/// plain `axum::serve`).
fn refuse(status: StatusCode, message: &str) -> Response {
    let body = serde_json::json!({"status": "error", "message": message});
    (status, [(CONNECTION, "close")], Json(body)).into_response()
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
    // The router matched and percent-decoded them; a value that is not UTF-8 is a 400.
    let path_params = match RawPathParams::from_request_parts(&mut parts, &()).await {
        Ok(params) => params.iter().collect::<PathParams>(),
        Err(rejection) => return refuse(rejection.status(), &rejection.body_text()),
    };
    // Every refusal happens before the upgrade: a refused client never gets a socket.
    let config = mounted.app.config();
    let admitted = match handshake::admit(&mounted.app, &parts) {
        Ok(admitted) => admitted,
        Err(refusal) => return refuse(refusal.status(), &refusal.to_string()),
    };
    if admitted.drop_cookies {
        parts.headers.remove(COOKIE);
    }
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
    let uri = detach_uri(std::mem::take(&mut parts.uri));
    let mut handshake = handshake::handshake_of(uri, &parts, &admitted, path_params);
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
    let session =
        Box::new(Session::new(&mounted.gateway, &mounted.app, handshake).admitted(admitted.guard));
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
