//! The demo server: `cargo run -p msgpack-adapter`, then talk JSON to
//! `ws://127.0.0.1:3001/rooms` or MessagePack to `ws://127.0.0.1:3001/msgpack/rooms`.
//!
//! `PORT` chooses the port; `RUST_LOG` the logging.

use std::net::SocketAddr;
use std::time::Duration;

use msgpack_adapter::demo::RoomsGateway;
use msgpack_adapter::{MsgPackCodec, MsgPackTransport};
use tracing_subscriber::EnvFilter;
use ws_gateway_axum::prelude::*;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .init();
    let port: u16 = std::env::var("PORT")
        .unwrap_or_else(|_| "3001".into())
        .parse()?;
    let app = GatewayApp::new().gateway::<RoomsGateway>().build()?;
    let router = app.clone().into_router().merge(
        MsgPackTransport::new(MsgPackCodec)
            .at("/msgpack")
            .mount(&app),
    );
    let listener = ws_gateway_axum::bind(SocketAddr::from(([127, 0, 0, 1], port)))?;
    tracing::info!(
        "JSON at ws://{0}/rooms, MessagePack at ws://{0}/msgpack/rooms",
        listener.local_addr()?
    );
    let shutdown = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    ws_gateway_axum::serve(listener, router)
        .with_graceful_shutdown(&app, shutdown)
        .grace(Duration::from_secs(5))
        .await?;
    Ok(())
}
