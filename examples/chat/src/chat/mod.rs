//! The chat module: the gateway, the service it uses, and the quick poll.

mod gateway;
mod poll;
mod service;

pub use gateway::{AskPoll, ChatGateway, RoomRef, SendMessage};
pub use poll::{POLL_TIMEOUT, PollAnswer, PollResult, Question, USER_ROOM_PREFIX, user_room};
pub use service::{ChatMessage, ChatService, HISTORY_LIMIT, HISTORY_ROOMS};
