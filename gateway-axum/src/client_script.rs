//! The JavaScript client of the plain WebSocket protocol, served by the app (as Socket.IO
//! serves `/socket.io/socket.io.js`).

use axum::Router;
use axum::http::header;
use axum::routing::get;

/// `ws-gateway.js`: the ES module client of the plain WebSocket protocol, for the browser
/// and node, with no build step and no dependency: `emit`, `emitWithAck` (through the
/// request `id`), `on` (answering the server's `ack` requests), reconnection with backoff
/// and jitter, and connection state recovery (`pid` / `offset`).
///
/// ```
/// assert!(ws_gateway_axum::CLIENT_SCRIPT.contains("export function connect"));
/// ```
pub const CLIENT_SCRIPT: &str = include_str!("../client/ws-gateway.js");

/// `ws-gateway.d.ts`: the TypeScript declarations of [`CLIENT_SCRIPT`].
///
/// ```
/// assert!(ws_gateway_axum::CLIENT_TYPES.contains("export class GatewayClient"));
/// ```
pub const CLIENT_TYPES: &str = include_str!("../client/ws-gateway.d.ts");

/// Routes serving the client: `GET /ws-gateway.js` ([`CLIENT_SCRIPT`], as
/// `text/javascript`) and `GET /ws-gateway.d.ts` ([`CLIENT_TYPES`]). Merge them into the
/// app's router; a page then imports it with
/// `import { connect } from "/ws-gateway.js"`.
///
/// ```
/// use ws_gateway_axum::client_routes;
///
/// let router: axum::Router = axum::Router::new().merge(client_routes());
/// ```
pub fn client_routes<S: Clone + Send + Sync + 'static>() -> Router<S> {
    Router::new()
        .route(
            "/ws-gateway.js",
            get(|| async {
                (
                    [
                        (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
                        (header::CACHE_CONTROL, "no-cache"),
                    ],
                    CLIENT_SCRIPT,
                )
            }),
        )
        .route(
            "/ws-gateway.d.ts",
            get(|| async {
                (
                    [
                        (
                            header::CONTENT_TYPE,
                            "application/typescript; charset=utf-8",
                        ),
                        (header::CACHE_CONTROL, "no-cache"),
                    ],
                    CLIENT_TYPES,
                )
            }),
        )
}
