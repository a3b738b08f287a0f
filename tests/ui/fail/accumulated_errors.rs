use ws_gateway_core::prelude::*;

#[websocket_gateway(path = "/chat")]
pub struct ChatGateway;

// Independent mistakes in one block: each is reported, in one compile.
#[websocket_gateway]
impl ChatGateway {
    #[subscribe(message)]
    fn unquoted(&self) {}

    #[subscribe("join")]
    fn join(&mut self, _room: String) {}

    #[subscribe("join")]
    #[use_guards()]
    fn join_again(&self) {}

    #[handle_connection]
    #[use_pipes(ValidationPipe)]
    fn connected(&self) {}
}

fn main() {}
