//! The HTTP side of a connection: the upgrade request.

use std::net::SocketAddr;

use axum::Json;
use axum::extract::ws::WebSocketUpgrade;
use axum::extract::{ConnectInfo, FromRequestParts, Request, State};
use axum::http::StatusCode;
use axum::http::Uri;
use axum::http::header::{CONNECTION, COOKIE};
use axum::response::{IntoResponse, Response};
use std::sync::Arc;

use gateway_core::transport::{GatewayRuntime, Session};
use gateway_core::{App, Handshake, HandshakeRequest};

use crate::codec::Codec;
use crate::handshake;
use crate::socket::WebSocketConnection;

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
    let ws = match WebSocketUpgrade::from_request_parts(&mut parts, &()).await {
        Ok(ws) => ws,
        Err(rejection) => return rejection.into_response(),
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
    let mut handshake = Handshake::new(
        detach_uri(parts.uri),
        handshake::detach_headers(&parts.headers, admitted.drop_cookies),
    );
    handshake.remote_addr = parts
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(addr)| *addr);
    handshake.client_ip = admitted.client_ip;
    handshake.extensions = parts.extensions;
    let ws = ws
        .read_buffer_size(config.read_buffer_size)
        .write_buffer_size(config.write_buffer_size)
        .max_message_size(config.max_message_size)
        .max_frame_size(config.max_frame_size);
    // Boxed while the upgrade completes, so that the upgrade task carries one pointer
    // instead of the handshake.
    let session =
        Box::new(Session::new(&mounted.gateway, &mounted.app, handshake).admitted(admitted.guard));
    let codec = mounted.codec;
    ws.on_upgrade(move |socket| (*session).serve(WebSocketConnection::new(socket, codec)))
}

fn detach_uri(uri: Uri) -> Uri {
    uri.to_string().parse().unwrap_or(uri)
}
