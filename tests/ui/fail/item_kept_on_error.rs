use ws_gateway_core::prelude::*;

#[websocket_gateway(path = "chat")]
pub struct ChatGateway {
    server: WsServer,
}

// A mistake in an attribute is reported on its own: the struct, its methods and its
// gateway impls are still there, so the code below raises nothing more.
#[websocket_gateway]
impl ChatGateway {
    #[subscribe("")]
    fn count(&self) -> usize {
        self.server.client_count()
    }
}

fn main() {
    let _ = GatewayApp::new().gateway::<ChatGateway>().build();
    let _ = ChatGateway::count;
}
