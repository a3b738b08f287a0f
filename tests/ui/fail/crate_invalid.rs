use ws_gateway_core::prelude::*;

#[websocket_gateway(path = "/a", crate = 1)]
pub struct NotAString;

#[websocket_gateway]
impl NotAString {}

#[websocket_gateway(path = "/b", crate = "not a path")]
pub struct NotAPath;

#[websocket_gateway]
impl NotAPath {}

#[websocket_gateway(path = "/c")]
pub struct Fine;

#[websocket_gateway(crate = "::ws_gateway_core", name = "x")]
impl Fine {}

fn main() {}
