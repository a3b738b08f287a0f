use ws_gateway_core::prelude::*;

#[websocket_gateway(path = "/chat")]
pub struct ChatGateway {
    name: String,
}

#[websocket_gateway]
impl ChatGateway {}

fn main() {}
