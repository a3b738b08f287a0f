use ws_gateway_core::prelude::*;

pub struct NotAGateway;

impl NotAGateway {
    #[subscribe("message")]
    fn handler(&self) {}
}

#[subscribe("free")]
fn free() {}

fn main() {}
