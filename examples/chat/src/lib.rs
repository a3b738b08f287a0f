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
pub mod metrics;

use gateway_axum::LoggingInterceptor;
use gateway_axum::prelude::*;

use crate::auth::{AuthGateway, AuthService, JwtAuthenticator};
use crate::chat::{ChatGateway, ChatService};
use crate::common::filters::ChatExceptionFilter;

/// The app builder with every provider, filter and authenticator the chat needs, the
/// secret and users taken from the environment (see [`AuthService::from_env`]).
pub fn app() -> GatewayApp {
    app_with(AuthService::from_env())
}

/// The app builder with this auth service.
pub fn app_with(auth: AuthService) -> GatewayApp {
    GatewayApp::new()
        .provide(ChatService::new())
        .provide(auth.clone())
        .use_global_interceptor(LoggingInterceptor)
        .use_global_filter(ChatExceptionFilter)
        .authenticate::<ChatGateway>(JwtAuthenticator::new(auth))
        .gateway::<ChatGateway>()
        .gateway::<AuthGateway>()
}

/// The whole HTTP surface: the gateways and `POST /auth/login`.
pub fn router(app: &App, auth: AuthService) -> axum::Router {
    app.into_router().merge(auth::routes(auth))
}
