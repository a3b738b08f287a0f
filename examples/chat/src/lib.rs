//! The chat app of the NestJS WebSocket guide, laid out like its tree:
//! `chat/` (the gateway and its service), `auth/` (JWT service, login route, auth gateway,
//! handshake authenticator), `common/` (transform interceptor, exception filter).
//!
//! Run it with `cargo run -p chat`, log in, and talk to it with any WebSocket client:
//!
//! ```text
//! curl -s localhost:3000/auth/login -H 'content-type: application/json' \
//!      -d '{"username":"alice","password":"password"}'          # {"token":"..."}
//! npx wscat -c 'ws://127.0.0.1:3000/chat?token=...'
//! > {"event":"join","data":{"room":"lobby"}}
//! > {"event":"message","data":{"room":"lobby","text":"hi"}}
//! ```

pub mod auth;
pub mod chat;
pub mod common;
pub mod config;
pub mod metrics;

use ws_gateway::LoggingInterceptor;
use ws_gateway::prelude::*;
use ws_gateway::socketio::SocketIoTransport;

use crate::auth::{AuthGateway, AuthService, JwtAuthenticator};
use crate::chat::{ChatGateway, ChatService};
use crate::common::filters::ChatExceptionFilter;

/// The app builder with every provider, filter and authenticator the chat needs: this auth
/// service, and a history with the default bounds.
pub fn app_with(auth: AuthService) -> GatewayApp {
    app_with_services(auth, ChatService::new())
}

/// The app builder with this auth service and this history (see [`config::Config`] for
/// both from the command line and the environment).
pub fn app_with_services(auth: AuthService, chat: ChatService) -> GatewayApp {
    GatewayApp::new()
        .provide(chat)
        .provide(auth.clone())
        .use_global_interceptor(LoggingInterceptor)
        .use_global_filter(ChatExceptionFilter)
        .authenticate::<ChatGateway>(JwtAuthenticator::new(auth))
        .gateway::<ChatGateway>()
        .gateway::<AuthGateway>()
}

/// The chat page served at `/`: plain HTML and JavaScript, no build step.
pub const INDEX_HTML: &str = include_str!("../static/index.html");

/// The whole HTTP surface: the chat page at `/`, the gateways (plain WebSocket at
/// `ws://host/chat`, Socket.IO on namespace `/chat`: `io("http://host/chat", {auth:
/// {token}})`), `POST /auth/login` and `GET /asyncapi.json`.
pub fn router(app: &App, auth: AuthService) -> axum::Router {
    let document = asyncapi(app);
    let (socketio, _io) = SocketIoTransport::new().mount(app);
    app.into_router()
        .merge(auth::routes(auth))
        .route(
            "/",
            axum::routing::get(|| std::future::ready(axum::response::Html(INDEX_HTML))),
        )
        .route(
            "/asyncapi.json",
            axum::routing::get(move || std::future::ready(axum::Json(document.clone()))),
        )
        .merge(socketio)
}

/// The AsyncAPI 3.0 document of the app's gateways (`cargo run -p chat -- asyncapi`).
pub fn asyncapi(app: &App) -> serde_json::Value {
    let info = ws_gateway::asyncapi::Info::new("Chat", env!("CARGO_PKG_VERSION")).description(
        "The chat of the NestJS WebSocket guide: rooms, messages and history at /chat (a token is required), tokens at /auth.",
    );
    ws_gateway::asyncapi::document(app, &info)
}
