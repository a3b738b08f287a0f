//! The chat server: `cargo run -p chat`, then connect to `ws://127.0.0.1:3000/chat`.
//!
//! `cargo run -p chat -- --help` lists every option and its environment variable (`HOST`,
//! `PORT`, `REDIS_URL`, `JWT_SECRET`, `CHAT_USERS`, the bounds); `cargo run -p chat --
//! asyncapi` prints the AsyncAPI document and exits; `RUST_LOG` chooses the logging.
//!
//! With `CHAT_USERS` set, `JWT_SECRET` must be set too: the server refuses to start
//! otherwise (exit code 2), since tokens signed with the development secret can be forged.
//!
//! With `REDIS_URL` set, instances share rooms through Redis: run
//! `REDIS_URL=redis://127.0.0.1:6379 PORT=3001 cargo run -p chat` and the same with
//! `PORT=3002`, and clients of both chat in one room.

use std::net::SocketAddr;

use chat::auth::{AuthService, DEVELOPMENT_SECRET};
use chat::config::{Command, Config};
use clap::Parser;
use tracing_subscriber::EnvFilter;
use ws_gateway_redis::{RedisAdapter, RedisConfig};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let config = Config::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .init();

    // Before the app is built: gateways register their metrics when they are built.
    let metrics = chat::metrics::install()?;
    if config.command == Some(Command::Asyncapi) {
        // The document does not depend on the secret or the users.
        let app = chat::app_with(AuthService::new(DEVELOPMENT_SECRET)).build()?;
        let document = serde_json::to_string_pretty(&chat::asyncapi(&app))?;
        #[allow(clippy::print_stdout)] // the document is the command's output
        {
            println!("{document}");
        }
        return Ok(());
    }
    let auth = match config.auth.service() {
        Ok(auth) => auth,
        Err(err) => {
            #[allow(clippy::print_stderr)] // the reason the server does not start
            {
                eprintln!("chat: {err}");
            }
            std::process::exit(2);
        }
    };
    let mut builder = chat::app_with_services(auth.clone(), config.history.service());
    if let Some(url) = config.redis_url {
        // Fails here, naming the URL, if Redis cannot be reached.
        let redis = RedisAdapter::connect(RedisConfig::new(url).prefix("chat"))
            .await
            .inspect_err(|err| tracing::error!("{err}"))?;
        tracing::info!("scaling out through {redis:?}");
        builder = builder.adapter(redis);
    }
    let app = builder.build()?;
    let router = chat::router(&app, auth).merge(chat::metrics::routes(metrics));
    let listener = ws_gateway_axum::bind(SocketAddr::new(config.host, config.port))?;
    tracing::info!("chat listening on ws://{}/chat", listener.local_addr()?);
    ws_gateway_axum::serve(listener, router)
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
