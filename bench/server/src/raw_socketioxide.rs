//! socketioxide 0.18 alone, the floor of our Socket.IO adapter: `PORT=3000 cargo run
//! --release -p gateway-bench --bin raw-socketioxide`.
//!
//! Namespace `/` at `/socket.io/` with socketioxide's default configuration (4 KiB read
//! buffer), `TCP_NODELAY`, a listen backlog of 1024, on axum 0.8. The data stays raw JSON
//! (`Box<RawValue>`, no DOM): `echo` emits the same event and data back to the socket,
//! `broadcast` emits it once to every socket of the namespace (the sender included). No
//! limits, no hooks.

use serde_json::value::RawValue;
use socketioxide::SocketIo;
use socketioxide::extract::{Data, SocketRef};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let (layer, io) = SocketIo::new_layer();
    // The data as a one-element tuple: socketioxide hands a bare `Box<RawValue>` the whole
    // `["echo",<data>]` array, a tuple its arguments after the event.
    io.ns("/", async |socket: SocketRef| {
        socket.on(
            "echo",
            async |socket: SocketRef, Data((data,)): Data<(Box<RawValue>,)>| {
                let _ = socket.emit("echo", &data);
            },
        );
        socket.on(
            "broadcast",
            async |io: SocketIo, Data((data,)): Data<(Box<RawValue>,)>| {
                let _ = io.emit("broadcast", &data).await;
            },
        );
    });
    let listener = gateway_bench::raw_listener()?;
    axum::serve(listener, axum::Router::new().layer(layer)).await?;
    Ok(())
}
