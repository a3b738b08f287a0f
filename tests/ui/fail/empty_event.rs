use ws_gateway_core::prelude::*;

#[websocket_gateway(path = "/chat")]
pub struct ChatGateway;

#[websocket_gateway]
impl ChatGateway {
    #[subscribe("")]
    fn empty(&self) {}

    #[subscribe(message)]
    fn unquoted(&self) {}
}

fn main() {}
