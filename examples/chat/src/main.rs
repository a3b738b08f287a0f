//! The chat server: `cargo run -p chat`, then connect to `ws://127.0.0.1:3000/chat`.
//!
//! `cargo run -p chat -- asyncapi` prints the AsyncAPI document and exits.
//!
//! `HOST` and `PORT` choose the address (defaults 127.0.0.1:3000); `RUST_LOG` the logging.
//!
//! With `REDIS_URL` set, instances share rooms through Redis: run
//! `REDIS_URL=redis://127.0.0.1:6379 PORT=3001 cargo run -p chat` and the same with
//! `PORT=3002`, and clients of both chat in one room.

use std::net::{IpAddr, SocketAddr};

use gateway_redis::{RedisAdapter, RedisConfig};
use tracing_subscriber::EnvFilter;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .init();

    let host: IpAddr = std::env::var("HOST")
        .unwrap_or_else(|_| "127.0.0.1".into())
        .parse()?;
    let port: u16 = std::env::var("PORT")
        .unwrap_or_else(|_| "3000".into())
        .parse()?;
    let addr = SocketAddr::new(host, port);

    // Before the app is built: gateways register their metrics when they are built.
    let metrics = chat::metrics::install()?;
    let auth = chat::auth::AuthService::from_env();
    let mut builder = chat::app_with(auth.clone());
    if let Ok(url) = std::env::var("REDIS_URL") {
        // Fails here, naming the URL, if Redis cannot be reached.
        let redis = RedisAdapter::connect(RedisConfig::new(url).prefix("chat"))
            .await
            .inspect_err(|err| tracing::error!("{err}"))?;
        tracing::info!("scaling out through {redis:?}");
        builder = builder.adapter(redis);
    }
    let app = builder.build()?;
    if std::env::args().nth(1).as_deref() == Some("asyncapi") {
        let document = serde_json::to_string_pretty(&chat::asyncapi(&app))?;
        #[allow(clippy::print_stdout)] // the document is the command's output
        {
            println!("{document}");
        }
        return Ok(());
    }
    let router = chat::router(&app, auth).merge(chat::metrics::routes(metrics));
    let listener = gateway_axum::bind(addr)?;
    tracing::info!("chat listening on ws://{}/chat", listener.local_addr()?);
    gateway_axum::serve(listener, router)
        .with_graceful_shutdown(&app, shutdown_signal())
        .grace(GRACE)
        .await?;
    tracing::info!("chat stopped");
    Ok(())
}

/// How long in-flight messages get to finish on shutdown.
const GRACE: std::time::Duration = std::time::Duration::from_secs(10);

/// Ctrl-C, or SIGTERM on Unix (what `docker stop` and Kubernetes send).
async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(err) = tokio::signal::ctrl_c().await {
            tracing::error!("cannot listen for ctrl-c: {err}");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(err) => {
                tracing::error!("cannot listen for SIGTERM: {err}");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = terminate => {}
    }
}
