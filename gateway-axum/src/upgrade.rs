//! The HTTP side of a connection: the upgrade request.

use std::net::SocketAddr;

use axum::Json;
use axum::extract::ws::WebSocketUpgrade;
use axum::extract::{ConnectInfo, FromRequestParts, Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use gateway_core::{ConnectionConfig, GatewayRuntime, Handshake, HandshakeRequest};

use crate::connection;

/// What one upgrade route serves.
#[derive(Clone)]
pub(crate) struct Mounted {
    pub(crate) gateway: GatewayRuntime,
    pub(crate) config: ConnectionConfig,
}

pub(crate) async fn upgrade(State(mounted): State<Mounted>, request: Request) -> Response {
    let (mut parts, _body) = request.into_parts();
    let ws = match WebSocketUpgrade::from_request_parts(&mut parts, &()).await {
        Ok(ws) => ws,
        Err(rejection) => return rejection.into_response(),
    };
    // Authenticate before upgrading: a refused client never gets a socket.
    let identity = match mounted
        .gateway
        .authenticate(&HandshakeRequest::new(&parts.uri, &parts.headers))
        .await
    {
        Ok(identity) => identity,
        Err(err) => {
            let body = serde_json::json!({"status": "error", "message": err.message()});
            return (StatusCode::UNAUTHORIZED, Json(body)).into_response();
        }
    };
    if let Some(store) = identity {
        store(&mut parts.extensions);
    }
    let remote_addr = parts
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(addr)| *addr);
    let mut handshake = Handshake::new(parts.uri, parts.headers);
    handshake.remote_addr = remote_addr;
    handshake.extensions = parts.extensions;
    let Mounted { gateway, config } = mounted;
    ws.read_buffer_size(config.read_buffer_size)
        .write_buffer_size(config.write_buffer_size)
        .max_message_size(config.max_message_size)
        .max_frame_size(config.max_frame_size)
        .on_upgrade(move |socket| connection::run(socket, gateway, handshake, config))
}
