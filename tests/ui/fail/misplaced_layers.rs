use ws_gateway_core::prelude::*;

pub struct Allow;

impl Guard for Allow {
    async fn can_activate(&self, _cx: &Context<'_>) -> Result<bool, WsException> {
        Ok(true)
    }
}

#[websocket_gateway(path = "/chat")]
#[use_guards(Allow)]
pub struct ChatGateway;

#[websocket_gateway]
impl ChatGateway {
    #[use_guards(Allow)]
    fn not_a_handler(&self) {}

    #[handle_connection]
    #[use_guards(Allow)]
    fn hook(&self) {}

    #[subscribe("empty")]
    #[use_guards()]
    fn empty(&self) {}
}

fn main() {}
