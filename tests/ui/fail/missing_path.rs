use ws_gateway_core::prelude::*;

#[websocket_gateway]
pub struct ChatGateway;

#[websocket_gateway]
impl ChatGateway {}

fn main() {}
