//! The chat's business logic: the recent messages of each room, within bounds.

use std::collections::VecDeque;
use std::num::NonZeroUsize;
use std::sync::Mutex;

use lru::LruCache;
use serde::{Deserialize, Serialize};

/// How many messages each room remembers by default (a ring buffer: the oldest goes first).
pub const HISTORY_LIMIT: usize = 50;

/// How many rooms keep a history by default: past it, the room whose last message is the
/// oldest forgets its history.
pub const HISTORY_ROOMS: usize = 1_000;

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

/// Keeps the last messages of the rooms most recently written to: at most `per_room`
/// messages in each of at most `rooms` rooms ([`HISTORY_LIMIT`] and [`HISTORY_ROOMS`] by
/// default), so clients can neither grow one room's history nor spread it over ever more
/// rooms.
///
/// Rooms are evicted by their last message (least recently written first), not by their
/// members: history is for whoever joins later, often after everyone left, and a client can
/// be a member of many rooms, so membership would bound nothing.
///
/// # Examples
///
/// ```
/// use std::num::NonZeroUsize;
/// use chat::chat::{ChatMessage, ChatService};
///
/// let two = NonZeroUsize::new(2).unwrap();
/// let chat = ChatService::with_limits(two, two);
/// let say = |room: &str, text: &str| ChatMessage {
///     room: room.into(),
///     text: text.into(),
///     from: "alice".into(),
/// };
/// chat.record(say("a", "1"));
/// chat.record(say("a", "2"));
/// chat.record(say("a", "3")); // "1" falls out of the room's window
/// chat.record(say("b", "x"));
/// chat.record(say("c", "y")); // three rooms: "a", written to longest ago, is forgotten
/// assert!(chat.history("a").is_empty());
/// assert_eq!(chat.history("c")[0].text, "y");
/// assert_eq!(chat.rooms_kept(), 2);
/// ```
#[derive(Debug)]
pub struct ChatService {
    rooms: Mutex<LruCache<String, VecDeque<ChatMessage>>>,
    per_room: NonZeroUsize,
}

impl Default for ChatService {
    fn default() -> Self {
        Self::with_limits(
            NonZeroUsize::new(HISTORY_LIMIT).unwrap_or(NonZeroUsize::MIN),
            NonZeroUsize::new(HISTORY_ROOMS).unwrap_or(NonZeroUsize::MIN),
        )
    }
}

impl ChatService {
    /// A service with no history and the default bounds.
    pub fn new() -> Self {
        Self::default()
    }

    /// A service keeping at most `per_room` messages in each of at most `rooms` rooms.
    pub fn with_limits(per_room: NonZeroUsize, rooms: NonZeroUsize) -> Self {
        Self {
            rooms: Mutex::new(LruCache::new(rooms)),
            per_room,
        }
    }

    /// Remembers a message, forgetting the oldest of its room past the per-room bound, and
    /// the history of the room written to longest ago past the room bound.
    pub fn record(&self, message: ChatMessage) {
        let mut rooms = self.rooms.lock().unwrap_or_else(|e| e.into_inner());
        let history = rooms.get_or_insert_mut_ref(&message.room, VecDeque::new);
        if history.len() >= self.per_room.get() {
            history.pop_front();
        }
        history.push_back(message);
    }

    /// The remembered messages of a room, oldest first. Reading does not keep a room from
    /// being evicted.
    pub fn history(&self, room: &str) -> Vec<ChatMessage> {
        let rooms = self.rooms.lock().unwrap_or_else(|e| e.into_inner());
        rooms
            .peek(room)
            .map(|h| h.iter().cloned().collect())
            .unwrap_or_default()
    }

    /// How many rooms have a history now.
    pub fn rooms_kept(&self) -> usize {
        self.rooms.lock().unwrap_or_else(|e| e.into_inner()).len()
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

    #[test]
    fn forgets_the_room_written_to_longest_ago() {
        let three = NonZeroUsize::new(3).unwrap();
        let service = ChatService::with_limits(three, three);
        for room in ["a", "b", "c"] {
            service.record(message(room, 0));
        }
        service.record(message("a", 1)); // "a" is now the most recent, "b" the oldest
        assert_eq!(service.history("b").len(), 1); // reading does not refresh "b"
        service.record(message("d", 0));
        assert!(service.history("b").is_empty());
        assert_eq!(service.history("a").len(), 2);
        assert_eq!(service.rooms_kept(), 3);
        for n in 0..10_000 {
            service.record(message(&format!("r{n}"), n));
        }
        assert_eq!(service.rooms_kept(), 3);
    }
}
