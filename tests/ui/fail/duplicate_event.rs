use ws_gateway_core::prelude::*;

#[websocket_gateway(path = "/chat")]
pub struct ChatGateway;

#[websocket_gateway]
impl ChatGateway {
    #[subscribe("message")]
    fn first(&self) {}

    #[subscribe("message")]
    fn second(&self) {}
}

fn main() {}
