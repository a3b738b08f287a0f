use ws_gateway_core::prelude::*;

#[websocket_gateway(path = "/chat")]
pub struct ChatGateway;

#[websocket_gateway]
impl ChatGateway {
    #[subscribe("borrowed")]
    fn borrowed(&self, text: &str) {}

    #[subscribe("generic")]
    fn generic<T: serde::de::DeserializeOwned>(&self, body: T) {}

    #[subscribe("impl")]
    fn opaque(&self, body: impl serde::de::DeserializeOwned) {}
}

fn main() {}
