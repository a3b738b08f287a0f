//! The quick poll: a member of a room asks the others a question, on every instance and
//! transport, and gets their answers (acknowledgements the server asks for).
//!
//! Answers arrive as client ids, and a client of another instance has no identity here.
//! So every client is in its user's room, `@<username>` ([`user_room`]), joined when it
//! connects; the members of the polled room, with their rooms, are fetched from every
//! instance before the question is asked (`fetch_clients`, Socket.IO's `fetchSockets`),
//! which names whoever answers, even a member that answers and leaves at once. `join` and
//! `leave` refuse names starting with `@`, so nobody passes for someone else.

use std::collections::HashMap;
use std::time::Duration;

use futures_util::StreamExt;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use ws_gateway::adapter::ClientInfo;
use ws_gateway::{Broadcast, Client, ClientId, Identity, SendError, WsServer};

use crate::auth::User;

/// How long a poll waits for answers: the asker gets the result when every asked member
/// has answered, or this long after the question.
pub const POLL_TIMEOUT: Duration = Duration::from_secs(2);

/// What starts the name of a user's room ([`user_room`]); `join` and `leave` refuse room
/// names starting with it.
pub const USER_ROOM_PREFIX: char = '@';

/// The room every client of `username` is in from the moment it connects: `@alice`.
///
/// # Examples
///
/// ```
/// assert_eq!(chat::chat::user_room("alice"), "@alice");
/// ```
pub fn user_room(username: &str) -> String {
    format!("{USER_ROOM_PREFIX}{username}")
}

/// The data of the `question` event the other members of the room get, with an
/// acknowledgement to answer.
///
/// # Examples
///
/// ```
/// use chat::chat::Question;
///
/// let question = Question { question: "Pizza?".into(), from: "alice".into() };
/// assert_eq!(
///     serde_json::to_string(&question).unwrap(),
///     r#"{"question":"Pizza?","from":"alice"}"#
/// );
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[schemars(
    description = "The data of the `question` event the other members of the room get, with an acknowledgement to answer."
)]
pub struct Question {
    /// What is asked.
    pub question: String,
    /// Who asks: the asker's user name.
    pub from: String,
}

/// One member's answer to a poll.
///
/// # Examples
///
/// ```
/// use chat::chat::PollAnswer;
/// use serde_json::value::RawValue;
///
/// let answer = PollAnswer {
///     from: Some("bob".into()),
///     answer: RawValue::from_string(r#"{"z":1,"a":2}"#.into()).unwrap(),
/// };
/// // The answer as it was sent, keys in their order.
/// assert_eq!(
///     serde_json::to_string(&answer).unwrap(),
///     r#"{"from":"bob","answer":{"z":1,"a":2}}"#
/// );
/// ```
#[derive(Debug, Serialize, JsonSchema)]
#[schemars(description = "One member's answer to a poll.")]
pub struct PollAnswer {
    /// Who answered: the member's user name; `null` only when it cannot be told (a member
    /// of another instance whose `@<username>` room is longer than the room name bound, or
    /// one that joined and left again while the poll ran).
    pub from: Option<String>,
    /// The answer exactly as the member sent it: any JSON.
    #[schemars(with = "serde_json::Value")]
    pub answer: Box<RawValue>,
}

/// The reply to `poll`: the answers in the order they arrived, and how many asked members
/// did not answer (in time, or before they left).
///
/// # Examples
///
/// ```
/// use chat::chat::PollResult;
///
/// let nobody = PollResult { answers: Vec::new(), unanswered: 2 };
/// assert_eq!(serde_json::to_string(&nobody).unwrap(), r#"{"answers":[],"unanswered":2}"#);
/// ```
#[derive(Debug, Serialize, JsonSchema)]
#[schemars(
    description = "The reply to `poll`: the answers in the order they arrived, and how many asked members did not answer (in time, or before they left)."
)]
pub struct PollResult {
    /// The answers, first come first.
    pub answers: Vec<PollAnswer>,
    /// Asked members that did not answer.
    pub unanswered: usize,
}

/// Asks every member of `room` but `asker`, on every instance, and collects their answers
/// for [`POLL_TIMEOUT`] at most.
pub(crate) async fn run(
    server: &WsServer,
    asker: &Client,
    room: String,
    question: &Question,
) -> Result<PollResult, SendError> {
    let mut names = Usernames::fetch(server.to(room.clone())).await;
    let mut asked = asker
        .to(room)
        .timeout(POLL_TIMEOUT)
        .emit_with_ack::<Box<RawValue>>("question", question)?;
    let mut answers = Vec::new();
    while let Some((id, answer)) = asked.next().await {
        // The other items are members that left before answering: not answers.
        if let Ok(answer) = answer {
            answers.push((id, answer));
        }
    }
    let unanswered = asked.sent().saturating_sub(answers.len());
    names
        .complete(server, answers.iter().map(|(id, _)| *id))
        .await;
    let answers = answers
        .into_iter()
        .map(|(id, answer)| PollAnswer {
            from: names.0.get(&id).cloned(),
            answer,
        })
        .collect();
    Ok(PollResult {
        answers,
        unanswered,
    })
}

/// User names by client id, read from the clients' user rooms.
struct Usernames(HashMap<ClientId, String>);

impl Usernames {
    /// The names of the selected clients of every instance; none of those of an instance
    /// that did not answer (the poll still runs, naming whom it can).
    async fn fetch(clients: Broadcast) -> Self {
        let mut names = Self(HashMap::new());
        match clients.fetch_clients().await {
            Ok(clients) => names.extend(clients),
            Err(err) => tracing::warn!("cannot tell who the members are: {err}"),
        }
        names
    }

    fn extend(&mut self, clients: Vec<ClientInfo>) {
        for client in clients {
            let name = client
                .rooms
                .iter()
                .find_map(|room| room.strip_prefix(USER_ROOM_PREFIX));
            if let Some(name) = name {
                self.0.insert(client.id, name.to_owned());
            }
        }
    }

    /// Adds the names of `ids` not known yet: members that joined after the fetch, or
    /// without a user room. Clients of this instance have their identity; the others
    /// are fetched again.
    async fn complete(&mut self, server: &WsServer, ids: impl Iterator<Item = ClientId>) {
        let mut remote: Option<Broadcast> = None;
        for id in ids {
            if self.0.contains_key(&id) {
                continue;
            }
            match server.client(id) {
                Some(client) => {
                    if let Some(user) = Identity::<User>::of(&client) {
                        self.0.insert(id, user.username.clone());
                    }
                }
                None => {
                    remote = Some(match remote {
                        Some(clients) => clients.to_client(id),
                        None => server.to_client(id),
                    });
                }
            }
        }
        if let Some(clients) = remote {
            let more = Self::fetch(clients).await;
            self.0.extend(more.0);
        }
    }
}
