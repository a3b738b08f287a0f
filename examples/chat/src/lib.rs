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
//! > {"event":"poll","data":{"room":"lobby","question":"Pizza?"},"id":1}
//! ```

pub mod auth;
pub mod chat;
pub mod common;
pub mod config;
pub mod metrics;

use ws_gateway::prelude::*;
use ws_gateway::socketio::SocketIoTransport;
use ws_gateway::{LoggingInterceptor, Recovery};

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
        // A client that drops comes back within two minutes with its rooms and what it
        // missed (the page's `ws-gateway.js` does it by itself).
        .recover::<ChatGateway>(Recovery::new(RECOVERY_WINDOW))
        .gateway::<ChatGateway>()
        .gateway::<AuthGateway>()
}

/// How long after a drop a chat client may recover its session.
pub const RECOVERY_WINDOW: std::time::Duration = std::time::Duration::from_secs(120);

/// The chat page served at `/`: plain HTML and JavaScript, no build step.
pub const INDEX_HTML: &str = include_str!("../static/index.html");

/// The whole HTTP surface: the chat page at `/` (its client, `/ws-gateway.js`), the gateways (plain WebSocket at
/// `ws://host/chat`, Socket.IO on namespace `/chat`: `io("http://host/chat", {auth:
/// {token}})`), `POST /auth/login` and `GET /asyncapi.json`.
pub fn router(app: &App, auth: AuthService) -> axum::Router {
    let document = asyncapi(app);
    let (socketio, _io) = SocketIoTransport::new().mount(app);
    app.into_router()
        .merge(auth::routes(auth))
        .merge(ws_gateway::client_routes())
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
        "The chat of the NestJS WebSocket guide: rooms, messages, history and quick polls at /chat (a token is required), tokens at /auth.",
    );
    let mut document = ws_gateway::asyncapi::document(app, &info);
    describe_question(&mut document);
    document
}

/// Adds what the generated document cannot know: the `question` the server sends during a
/// `poll`, with its acknowledgement number, and the answer it awaits, `{"ack": N, "data":
/// <any JSON>}` (Socket.IO clients answer with their callback).
fn describe_question(document: &mut serde_json::Value) {
    use serde_json::json;

    let mut schema =
        serde_json::to_value(schemars::schema_for!(chat::Question)).unwrap_or_else(|_| json!({}));
    if let Some(schema) = schema.as_object_mut() {
        schema.remove("$schema");
    }
    document["components"]["schemas"]["Question"] = schema;
    document["components"]["messages"]["chat.question"] = json!({
        "name": "question",
        "title": "question (sent by the server during a poll)",
        "contentType": "application/json",
        "payload": {
            "type": "object",
            "properties": {
                "event": {"type": "string", "const": "question"},
                "data": {"$ref": "#/components/schemas/Question"},
                "ack": {
                    "type": "integer",
                    "minimum": 1,
                    "description": "Answer with {\"ack\": N, \"data\": ...}; never reused on the connection.",
                },
            },
            "required": ["event", "data", "ack"],
        },
    });
    document["components"]["messages"]["chat.question.answer"] = json!({
        "name": "question.answer",
        "title": "question (the client's answer)",
        "contentType": "application/json",
        "payload": {
            "type": "object",
            "properties": {
                "ack": {"type": "integer", "minimum": 1},
                "data": {"description": "The answer, any JSON: the asker gets it as sent."},
            },
            "required": ["ack"],
        },
    });
    let channel = &mut document["channels"]["chat"]["messages"];
    channel["question"] = json!({"$ref": "#/components/messages/chat.question"});
    channel["question.answer"] = json!({"$ref": "#/components/messages/chat.question.answer"});
    document["operations"]["chat.question"] = json!({
        "action": "send",
        "channel": {"$ref": "#/channels/chat"},
        "summary": "During a `poll`, the server asks every other member of the room; the asker gets the answers as the reply to `poll`",
        "messages": [{"$ref": "#/channels/chat/messages/question"}],
        "reply": {
            "channel": {"$ref": "#/channels/chat"},
            "messages": [{"$ref": "#/channels/chat/messages/question.answer"}],
        },
    });
}
