use ws_gateway_core::prelude::*;

/// Neither an extractor nor a message body: it does not implement `Deserialize`.
pub struct Room {
    pub name: String,
}

#[websocket_gateway(path = "/chat")]
pub struct ChatGateway;

#[websocket_gateway]
impl ChatGateway {
    #[subscribe("join")]
    fn join(&self, room: Room) -> String {
        room.name
    }
}

fn main() {}
