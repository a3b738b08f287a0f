//! Everything a gateway author writes, in one import: `use ws_gateway_core::prelude::*;`.

pub use crate::{
    Ack, App, Args, Caught, Client, ClientId, Context, Data, Event, ExceptionFilter, FilterContext,
    GatewayApp, Guard, Identity, Inject, Interceptor, Next, Outcome, Pipe, Reply, RoomError,
    TryData, ValidationPipe, WsException, WsParam, WsResponse, WsServer,
};
pub use ws_gateway_macros::{
    after_init, handle_connection, handle_disconnect, subscribe, use_filters, use_guards,
    use_interceptors, use_pipes, websocket_gateway,
};
