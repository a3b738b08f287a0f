use ws_gateway_core::prelude::*;

pub struct Roles;

#[websocket_gateway(path = "/chat")]
pub struct ChatGateway;

#[websocket_gateway]
impl ChatGateway {
    #[subscribe("admin")]
    #[use_guards(Roles)]
    fn admin(&self) {}
}

fn main() {}
