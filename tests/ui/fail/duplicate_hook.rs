use ws_gateway_core::prelude::*;

#[websocket_gateway(path = "/chat")]
pub struct ChatGateway;

#[websocket_gateway]
impl ChatGateway {
    #[handle_connection]
    fn first(&self) {}

    #[handle_connection]
    fn second(&self) {}

    #[subscribe("both")]
    #[handle_disconnect]
    fn both(&self) {}

    #[after_init(now)]
    fn init(&self) {}
}

fn main() {}
