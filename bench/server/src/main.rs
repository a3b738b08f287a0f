//! The benchmark server built with our macros: `PORT=3000 cargo run --release -p
//! gateway-bench --bin bench-server`.
//!
//! One gateway at `/` with two events and nothing else in the way:
//! - `echo` replies `{"event":"echo","data":<the same data>}`;
//! - `broadcast` sends `{"event":"broadcast","data":<data>}` to every client and replies
//!   nothing.
//!
//! The rate limit is off (a load generator sends far more than 1,000 messages a second per
//! connection); every other setting is the default `ConnectionConfig`.

use gateway_axum::prelude::*;
use serde_json::value::RawValue;

/// Echo and broadcast, as in `bench/peers/nest` and `raw-axum`.
#[websocket_gateway(path = "/")]
pub struct BenchGateway {
    server: WsServer,
}

#[websocket_gateway]
impl BenchGateway {
    /// The same data back under the same event. The body stays raw JSON (no DOM is built),
    /// as in the hand-written `raw-axum` server.
    #[subscribe("echo")]
    fn echo(&self, data: Box<RawValue>) -> Box<RawValue> {
        data
    }

    /// `data` to every client of the gateway, encoded once.
    #[subscribe("broadcast")]
    fn broadcast(&self, data: Box<RawValue>) {
        let _ = self.server.emit("broadcast", &data);
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let port: u16 = std::env::var("PORT")
        .ok()
        .and_then(|p| p.parse().ok())
        .unwrap_or(3000);
    let mut config = gateway_core::ConnectionConfig::default();
    config.rate_limit = None;
    let app = GatewayApp::new()
        .gateway::<BenchGateway>()
        .config(config)
        .build()?;
    let listener = gateway_axum::bind(([127, 0, 0, 1], port).into())?;
    gateway_axum::serve(listener, app.into_router()).await?;
    Ok(())
}
