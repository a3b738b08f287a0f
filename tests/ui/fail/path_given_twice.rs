use ws_gateway_core::prelude::*;

#[websocket_gateway(path = "/chat", path = "/talk")]
pub struct ChatGateway;

#[websocket_gateway]
impl ChatGateway {}

fn main() {}
