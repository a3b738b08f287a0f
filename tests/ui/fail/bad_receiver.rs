use ws_gateway_core::prelude::*;

#[websocket_gateway(path = "/chat")]
pub struct ChatGateway;

#[websocket_gateway]
impl ChatGateway {
    #[subscribe("a")]
    fn by_mut(&mut self) {}

    #[subscribe("b")]
    fn by_value(self) {}

    #[subscribe("c")]
    fn no_receiver() {}
}

fn main() {}
