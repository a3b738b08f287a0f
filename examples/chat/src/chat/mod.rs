//! The chat module: the gateway and the service it uses.

mod gateway;
mod service;

pub use gateway::{ChatGateway, RoomRef, SendMessage};
pub use service::{ChatMessage, ChatService, HISTORY_LIMIT, HISTORY_ROOMS};
