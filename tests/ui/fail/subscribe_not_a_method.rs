use ws_gateway_core::prelude::*;

#[websocket_gateway(path = "/chat")]
pub struct ChatGateway;

#[websocket_gateway]
impl ChatGateway {
    #[subscribe("limit")]
    const LIMIT: usize = 3;
}

fn main() {}
