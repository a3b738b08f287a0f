use ws_gateway_core::prelude::*;

/// Not `Serialize`.
pub struct Secret;

#[websocket_gateway(path = "/chat")]
pub struct ChatGateway;

#[websocket_gateway]
impl ChatGateway {
    #[subscribe("secret")]
    fn secret(&self) -> Secret {
        Secret
    }
}

fn main() {}
