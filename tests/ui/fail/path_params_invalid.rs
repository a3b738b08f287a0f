use ws_gateway_core::prelude::*;

#[websocket_gateway(path = "/rooms/r{id}")]
pub struct Partial;

#[websocket_gateway(path = "/rooms/{room id}")]
pub struct Spaced;

#[websocket_gateway(path = "/rooms/{1st}")]
pub struct NotAnIdent;

#[websocket_gateway(path = "/files/{*path}/meta")]
pub struct WildcardInside;

#[websocket_gateway(path = "/files/*path")]
pub struct WildcardBare;

#[websocket_gateway(path = "/a/{id}/b/{id}")]
pub struct Twice;

#[websocket_gateway]
impl Partial {}

#[websocket_gateway]
impl Spaced {}

#[websocket_gateway]
impl NotAnIdent {}

#[websocket_gateway]
impl WildcardInside {}

#[websocket_gateway]
impl WildcardBare {}

#[websocket_gateway]
impl Twice {}

fn main() {}
