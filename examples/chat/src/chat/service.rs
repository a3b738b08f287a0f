//! The chat's business logic: the recent messages of each room.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;

use serde::{Deserialize, Serialize};

/// How many messages each room remembers.
pub const HISTORY_LIMIT: usize = 50;

/// A message as clients receive it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ChatMessage {
    /// The room it was sent to.
    pub room: String,
    /// What was said.
    pub text: String,
    /// Who said it: the sender's user name.
    pub from: String,
}

/// Keeps the last [`HISTORY_LIMIT`] messages of every room.
#[derive(Debug, Default)]
pub struct ChatService {
    rooms: Mutex<HashMap<String, VecDeque<ChatMessage>>>,
}

impl ChatService {
    /// A service with no history.
    pub fn new() -> Self {
        Self::default()
    }

    /// Remembers a message, forgetting the oldest of its room past the limit.
    pub fn record(&self, message: ChatMessage) {
        let mut rooms = self.rooms.lock().unwrap_or_else(|e| e.into_inner());
        let history = rooms.entry(message.room.clone()).or_default();
        if history.len() == HISTORY_LIMIT {
            history.pop_front();
        }
        history.push_back(message);
    }

    /// The remembered messages of a room, oldest first.
    pub fn history(&self, room: &str) -> Vec<ChatMessage> {
        let rooms = self.rooms.lock().unwrap_or_else(|e| e.into_inner());
        rooms
            .get(room)
            .map(|h| h.iter().cloned().collect())
            .unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(room: &str, n: usize) -> ChatMessage {
        ChatMessage {
            room: room.into(),
            text: n.to_string(),
            from: "a".into(),
        }
    }

    #[test]
    fn keeps_the_last_fifty_per_room() {
        let service = ChatService::new();
        for n in 0..60 {
            service.record(message("a", n));
        }
        service.record(message("b", 0));
        let history = service.history("a");
        assert_eq!(history.len(), HISTORY_LIMIT);
        assert_eq!(history[0].text, "10");
        assert_eq!(history[49].text, "59");
        assert_eq!(service.history("b").len(), 1);
        assert!(service.history("c").is_empty());
    }
}
