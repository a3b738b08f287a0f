use ws_gateway_core::prelude::*;

#[websocket_gateway(path = "chat")]
pub struct A;

#[websocket_gateway(path = "/rooms/:id")]
pub struct B;

#[websocket_gateway(path = "/chat/")]
pub struct C;

#[websocket_gateway(paht = "/chat")]
pub struct D;

#[websocket_gateway]
impl A {}

#[websocket_gateway]
impl B {}

#[websocket_gateway]
impl C {}

#[websocket_gateway]
impl D {}

fn main() {}
