//! Everything a gateway author writes, in one import: `use gateway_core::prelude::*;`.

pub use crate::{
    App, Client, ClientId, Data, Event, GatewayApp, Inject, TryData, WsException, WsResponse,
    WsServer,
};
pub use gateway_macros::{
    after_init, handle_connection, handle_disconnect, subscribe, websocket_gateway,
};
