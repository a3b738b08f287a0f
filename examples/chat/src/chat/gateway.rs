//! The chat gateway at `/chat`, the seed's `chat.gateway.ts`.

use futures_util::Stream;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use validator::{Validate, ValidationError};
use ws_gateway::prelude::*;
use ws_gateway::{Identity, ValidationPipe};

use super::poll::{self, PollResult, Question, USER_ROOM_PREFIX, user_room};
use super::service::{ChatMessage, ChatService};
use crate::auth::User;
use crate::common::filters::ChatError;
use crate::common::interceptors::TransformInterceptor;

/// `{"room": ...}`: the body of `join`, `leave` and `history`, and the data of `joined`
/// and `left`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct RoomRef {
    /// The room's name.
    pub room: String,
}

/// The body of `message`, checked by `ValidationPipe`.
#[derive(Clone, Debug, Deserialize, Validate, JsonSchema)]
pub struct SendMessage {
    /// The room to send to (1 to 64 of `a-z 0-9 _ -`); the sender must have joined it.
    #[validate(custom(function = "room_name"))]
    pub room: String,
    /// What to say: 1 to 500 characters.
    #[validate(length(min = 1, max = 500))]
    pub text: String,
}

/// The body of `poll`, checked by `ValidationPipe`.
///
/// # Examples
///
/// ```
/// use chat::chat::AskPoll;
/// use validator::Validate;
///
/// let ask = |question: &str| AskPoll { room: "lobby".into(), question: question.into() };
/// assert!(ask("Pizza?").validate().is_ok());
/// assert!(ask("").validate().is_err());
/// assert!(ask(&"?".repeat(201)).validate().is_err());
/// ```
#[derive(Clone, Debug, Deserialize, Validate, JsonSchema)]
#[schemars(description = "The body of `poll`, checked by `ValidationPipe`.")]
pub struct AskPoll {
    /// The room whose other members are asked (1 to 64 of `a-z 0-9 _ -`); the asker must
    /// have joined it.
    #[validate(custom(function = "room_name"))]
    pub room: String,
    /// What to ask: 1 to 200 characters.
    #[validate(length(min = 1, max = 200))]
    pub question: String,
}

fn room_name(room: &str) -> Result<(), ValidationError> {
    let valid = (1..=64).contains(&room.chars().count())
        && room
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-');
    if valid {
        Ok(())
    } else {
        Err(ValidationError::new("room")
            .with_message("must be 1 to 64 characters of a-z, 0-9, _ and -".into()))
    }
}

/// Chat rooms over WebSocket.
#[websocket_gateway(path = "/chat")]
pub struct ChatGateway {
    chat: Inject<ChatService>,
    server: WsServer,
}

#[websocket_gateway]
impl ChatGateway {
    /// Replies with the data unchanged, the guide's `handleEvent`: the keys in the order
    /// the client sent them, as NestJS does, since this crate turns on ws-gateway's
    /// `preserve_order` (without it a `Value` sorts its keys).
    #[subscribe("events")]
    async fn handle_event(&self, data: Value) -> Value {
        data
    }

    /// Replies under event `identity` with the number it got.
    #[subscribe("identity")]
    fn identity(&self, n: u32) -> WsResponse<u32> {
        WsResponse::new("identity", n)
    }

    /// Joins a room: `{"event":"joined","data":{"room":...}}`; past the framework's room
    /// bounds (`ConnectionConfig::max_rooms_per_client`, `max_room_name_len`), an
    /// `exception` and nothing joined. Names starting with `@` are the users' own rooms
    /// (see [`user_room`]): refused. `joined` is sent once the room's messages from every
    /// instance reach the client (with a per-room Redis adapter, once the room's channel is
    /// subscribed).
    #[subscribe("join")]
    async fn join(&self, client: Client, body: RoomRef) -> Result<WsResponse<RoomRef>, ChatError> {
        reserved(&body.room)?;
        client.join_synced(body.room.clone()).await?;
        Ok(WsResponse::new("joined", body))
    }

    /// Leaves a room: `{"event":"left","data":{"room":...}}`; not the user's own room.
    #[subscribe("leave")]
    fn leave(&self, client: Client, body: RoomRef) -> Result<WsResponse<RoomRef>, ChatError> {
        reserved(&body.room)?;
        client.leave(&body.room);
        Ok(WsResponse::new("left", body))
    }

    /// Sends a message to every member of the room, the sender included, and remembers it.
    /// `from` is the authenticated user's name.
    #[subscribe("message")]
    #[use_pipes(ValidationPipe)]
    fn message(
        &self,
        client: Client,
        Identity(user): Identity<User>,
        body: SendMessage,
    ) -> Result<(), ChatError> {
        if !client.is_in(&body.room) {
            return Err(ChatError::NotInRoom(body.room));
        }
        let message = ChatMessage {
            room: body.room,
            text: body.text,
            from: user.username,
        };
        if let Err(err) = self
            .server
            .to(message.room.clone())
            .emit("message", &message)
        {
            tracing::error!("broadcast failed: {err}");
        }
        self.chat.record(message);
        Ok(())
    }

    /// A quick poll: asks every other member of the room, on every instance and transport,
    /// `{"event":"question","data":{"question":...,"from":...},"ack":N}` (Socket.IO: event
    /// `question` with a callback), and replies with the answers as they came and how many
    /// did not answer, once every asked member answered or after [`poll::POLL_TIMEOUT`].
    /// The asker must be a member, as for `message`.
    #[subscribe("poll")]
    #[use_pipes(ValidationPipe)]
    async fn poll(
        &self,
        client: Client,
        Identity(user): Identity<User>,
        body: AskPoll,
    ) -> Result<PollResult, ChatError> {
        if !client.is_in(&body.room) {
            return Err(ChatError::NotInRoom(body.room));
        }
        let question = Question {
            question: body.question,
            from: user.username,
        };
        Ok(poll::run(&self.server, &client, body.room, &question).await?)
    }

    /// Who the client is, wrapped by the transform interceptor:
    /// `{"event":"whoami","data":{"data":{"username":...},"timestamp":...}}`. The user's
    /// password hash is never serialized.
    #[subscribe("whoami")]
    #[use_interceptors(TransformInterceptor)]
    fn whoami(&self, Identity(user): Identity<User>) -> User {
        user
    }

    /// Streams the room's recent messages back as `message` events, oldest first.
    #[subscribe("history")]
    fn history(&self, body: RoomRef) -> impl Stream<Item = WsResponse<ChatMessage>> + use<> {
        let messages = self.chat.history(&body.room);
        futures_util::stream::iter(
            messages
                .into_iter()
                .map(|message| WsResponse::new("message", message)),
        )
    }

    #[after_init]
    fn ready(&self, server: WsServer) {
        tracing::info!(path = server.path(), "chat gateway initialized");
    }

    /// Puts the client in its user's room, by which the other instances tell who it is.
    #[handle_connection]
    fn connected(&self, client: Client) {
        // A recovered connection is back in its rooms, its user's room included.
        tracing::info!(client = %client.id(), recovered = client.recovered(), "client connected");
        if let Some(user) = Identity::<User>::of(&client)
            && let Err(err) = client.join(user_room(&user.username))
        {
            // Still served; polls of other instances cannot name it.
            tracing::warn!(client = %client.id(), "no room of its user: {err}");
        }
    }

    #[handle_disconnect]
    fn disconnected(&self, client: Client) {
        tracing::info!(client = %client.id(), "client disconnected");
    }
}

/// Refuses the name of a user's room.
fn reserved(room: &str) -> Result<(), ChatError> {
    if room.starts_with(USER_ROOM_PREFIX) {
        return Err(ChatError::ReservedRoom(room.to_owned()));
    }
    Ok(())
}
