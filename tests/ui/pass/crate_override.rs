//! `crate = ".."`: a crate that re-exports the framework under its own path points the
//! generated code there, on the struct, on the `impl` block and through a `use_*` above
//! `#[websocket_gateway]`.

mod framework {
    pub use ws_gateway_core::*;
}

use framework::prelude::*;
use serde::Deserialize;
use validator::Validate;

#[derive(Deserialize, Validate)]
struct Say {
    #[validate(length(min = 1))]
    text: String,
}

struct Open;

impl Guard for Open {
    async fn can_activate(&self, _cx: &Context<'_>) -> Result<bool, WsException> {
        Ok(true)
    }
}

#[websocket_gateway(path = "/reexported", crate = "crate::framework")]
pub struct ReexportedGateway;

#[use_guards(Open)]
#[websocket_gateway(crate = "crate::framework")]
impl ReexportedGateway {
    #[subscribe("echo")]
    #[use_pipes(ValidationPipe)]
    fn echo(&self, say: Say) -> String {
        say.text
    }
}

fn main() {
    let app = GatewayApp::new()
        .gateway::<ReexportedGateway>()
        .build()
        .expect("the gateway builds");
    assert_eq!(app.gateways()[0].path(), "/reexported");
}
