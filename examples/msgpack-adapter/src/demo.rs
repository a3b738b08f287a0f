//! The gateway the demo serves over both adapters.

use serde::Deserialize;
use serde_json::Value;
use ws_gateway::prelude::*;

/// `{"a": .., "b": ..}`, the body of `add`.
#[derive(Debug, Deserialize)]
pub struct Sum {
    /// The first term.
    pub a: i64,
    /// The second term.
    pub b: i64,
}

/// `{"room": .., "text": ..}`, the body of `say`.
#[derive(Debug, Deserialize)]
pub struct Say {
    /// Where to say it.
    pub room: String,
    /// What to say.
    pub text: String,
}

/// Rooms and a calculator, whatever the wire format.
#[websocket_gateway(path = "/rooms")]
pub struct RoomsGateway {
    server: WsServer,
}

#[websocket_gateway]
impl RoomsGateway {
    /// Replies with the data.
    #[subscribe("echo")]
    async fn echo(&self, data: Value) -> Value {
        data
    }

    /// Replies with `a + b`; any other body is answered with an exception.
    #[subscribe("add")]
    fn add(&self, body: Sum) -> i64 {
        body.a + body.b
    }

    /// Joins a room; replies under `joined`.
    #[subscribe("join")]
    fn join(&self, client: Client, room: String) -> Result<WsResponse<String>, RoomError> {
        client.join(room.clone())?;
        Ok(WsResponse::new("joined", room))
    }

    /// Everyone in the room receives `said`.
    #[subscribe("say")]
    fn say(&self, body: Say) {
        if let Err(err) = self.server.to(body.room).emit("said", &body.text) {
            tracing::warn!("broadcast failed: {err}");
        }
    }
}
