//! Gateway paths with parameters, read by `WsParam` in a handler, a hook and a guard.

use serde::Deserialize;
use ws_gateway_core::prelude::*;

#[derive(Clone, Deserialize)]
struct Room {
    tenant: String,
    id: u64,
}

struct NotRoomZero;

impl Guard for NotRoomZero {
    async fn can_activate(&self, cx: &Context<'_>) -> Result<bool, WsException> {
        Ok(WsParam::<Room>::get(cx)?.id != 0)
    }
}

#[websocket_gateway(path = "/t/{tenant}/rooms/{id}")]
pub struct Rooms;

#[websocket_gateway]
impl Rooms {
    #[handle_connection]
    fn connected(&self, client: Client, WsParam(room): WsParam<Room>) -> Result<(), RoomError> {
        client.join(format!("{}:{}", room.tenant, room.id))
    }

    #[subscribe("which")]
    #[use_guards(NotRoomZero)]
    async fn which(&self, WsParam((tenant, id)): WsParam<(String, u64)>, text: String) -> String {
        format!("{tenant}/{id}: {text}")
    }
}

#[websocket_gateway(path = "/files/{*path}")]
pub struct Files;

#[websocket_gateway]
impl Files {
    #[subscribe("path")]
    fn path(&self, WsParam(path): WsParam<String>) -> String {
        path
    }
}

#[websocket_gateway(path = "/{*rest}")]
pub struct Everything;

#[websocket_gateway]
impl Everything {}

fn main() {
    let app = GatewayApp::new()
        .gateway::<Rooms>()
        .gateway::<Files>()
        .gateway::<Everything>()
        .build()
        .unwrap();
    assert_eq!(app.gateways().len(), 3);
}
