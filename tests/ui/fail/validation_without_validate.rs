use ws_gateway_core::prelude::*;

#[derive(serde::Deserialize)]
pub struct Message {
    pub text: String,
}

#[websocket_gateway(path = "/chat")]
pub struct ChatGateway;

#[websocket_gateway]
impl ChatGateway {
    #[subscribe("message")]
    #[use_pipes(ValidationPipe)]
    fn message(&self, body: Message) -> String {
        body.text
    }
}

fn main() {}
