use ws_gateway_core::prelude::*;

#[websocket_gateway(path = "/chat")]
pub struct ChatGateway;

#[websocket_gateway(path = "/chat")]
impl ChatGateway {}

pub trait Named {
    fn name(&self) -> &'static str;
}

#[websocket_gateway]
impl Named for ChatGateway {
    fn name(&self) -> &'static str {
        "chat"
    }
}

fn main() {}
