//! Arbitrary text as a client's message through a whole gateway: parsing, routing,
//! extraction, the validation pipe, the handler, the reply and the exception filters. No
//! input may panic the runtime, hang it, or produce anything but one JSON frame or none.

#![no_main]

use std::sync::OnceLock;

use ws_gateway_core::prelude::*;
use ws_gateway_core::{Handshake, Reply};
use libfuzzer_sys::fuzz_target;
use serde::{Deserialize, Serialize};
use validator::Validate;

#[derive(Debug, Deserialize, Serialize, Validate)]
struct Item {
    #[validate(length(min = 1, max = 8))]
    name: String,
    #[validate(range(min = 1, max = 99))]
    quantity: u32,
}

#[derive(Debug, Deserialize, Serialize, Validate)]
struct Order {
    #[validate(length(min = 1))]
    customer: String,
    #[validate(nested)]
    items: Vec<Item>,
}

#[websocket_gateway(path = "/fuzz")]
struct FuzzGateway;

#[websocket_gateway]
impl FuzzGateway {
    #[subscribe("echo")]
    fn echo(&self, data: serde_json::Value) -> serde_json::Value {
        data
    }

    #[subscribe("order")]
    #[use_pipes(ValidationPipe)]
    fn order(&self, order: Order) -> Result<usize, WsException> {
        if order.customer == "nobody" {
            return Err(WsException::new("no such customer"));
        }
        Ok(order.items.len())
    }

    #[subscribe("join")]
    fn join(&self, client: Client, room: String) -> Result<WsResponse<String>, RoomError> {
        client.join(room.clone())?;
        Ok(WsResponse::new("joined", room))
    }

    #[subscribe("count")]
    async fn count(&self, n: u8) -> u8 {
        n
    }
}

struct World {
    runtime: tokio::runtime::Runtime,
    app: App,
}

fn world() -> &'static World {
    static WORLD: OnceLock<World> = OnceLock::new();
    WORLD.get_or_init(|| {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        let app = runtime.block_on(async {
            GatewayApp::new()
                .gateway::<FuzzGateway>()
                .build()
                .expect("app")
        });
        World { runtime, app }
    })
}

fuzz_target!(|bytes: &[u8]| {
    let Ok(text) = std::str::from_utf8(bytes) else {
        return;
    };
    let world = world();
    let gateway = &world.app.gateways()[0];
    world.runtime.block_on(async {
        let (client, _queue) = gateway.open(Handshake::default(), 16);
        gateway.connect(&client).await.expect("connects");
        match gateway.dispatch_text(&client, text).outcome().await {
            Ok(Reply::Frame(frame)) => {
                serde_json::from_str::<serde_json::Value>(frame.as_str()).expect("valid JSON out");
            }
            Ok(_) => {}
            Err(failure) => {
                let caught = gateway.catch(&client, Some(text), failure);
                if let Some(frame) = caught.frame_ref() {
                    serde_json::from_str::<serde_json::Value>(frame.as_str())
                        .expect("valid JSON out");
                }
            }
        }
        gateway.disconnect(&client).await;
    });
});
