//! `PORT=3000 cargo run -p socketio-compliance --release`: see the library's documentation.

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()),
        )
        .init();
    let app = socketio_compliance::app()?;
    let (router, _io) = socketio_compliance::router(&app);
    let port: u16 = std::env::var("PORT")
        .ok()
        .and_then(|p| p.parse().ok())
        .unwrap_or(3000);
    let listener = tokio::net::TcpListener::bind(("0.0.0.0", port)).await?;
    tracing::info!("listening on {}", listener.local_addr()?);
    ws_gateway::serve(listener, router)
        .with_graceful_shutdown(&app, async {
            tokio::signal::ctrl_c().await.ok();
        })
        .await?;
    Ok(())
}
