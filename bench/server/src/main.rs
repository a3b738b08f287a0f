//! The benchmark server built with our macros: `PORT=3000 cargo run --release -p
//! gateway-bench --bin bench-server`.
//!
//! [`BenchGateway`](gateway_bench::BenchGateway) at `/` over plain WebSockets: `echo` replies
//! `{"event":"echo","data":<the same data>}`, `broadcast` sends
//! `{"event":"broadcast","data":<data>}` to every client and replies nothing.

use ws_gateway_axum::IntoRouter;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let app = gateway_bench::app()?;
    let listener = ws_gateway_axum::bind(([127, 0, 0, 1], gateway_bench::port()).into())?;
    ws_gateway_axum::serve(listener, app.into_router()).await?;
    Ok(())
}
