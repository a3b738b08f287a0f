//! The chat server: `cargo run -p chat`, then connect to `ws://127.0.0.1:3000/chat`.
//!
//! `cargo run -p chat -- --help` lists every option and its environment variable (`HOST`,
//! `PORT`, `REDIS_URL`, `JWT_SECRET`, `CHAT_USERS`, the bounds) and what the exit codes mean;
//! `cargo run -p chat -- asyncapi > asyncapi.json` writes the AsyncAPI document and exits.
//! Logs go to standard error, never to standard output; `RUST_LOG` chooses them.
//!
//! With `CHAT_USERS` set, `JWT_SECRET` must be set too: the server refuses to start
//! otherwise (exit code 2), since tokens signed with the development secret can be forged.
//!
//! With `REDIS_URL` set, instances share rooms through Redis: run
//! `REDIS_URL=redis://127.0.0.1:6379 PORT=3001 cargo run -p chat` and the same with
//! `PORT=3002`, and clients of both chat in one room.

use std::io::IsTerminal;
use std::net::SocketAddr;
use std::process::ExitCode;

use chat::auth::{AuthService, DEVELOPMENT_SECRET};
use chat::config::{Command, Config, ConfigError, exit};
use clap::Parser;
use tracing_subscriber::EnvFilter;
use ws_gateway::redis::{RedisAdapter, RedisConfig};

#[tokio::main]
async fn main() -> ExitCode {
    // A usage error exits here with code 2, `--help` with 0.
    let config = Config::parse();
    init_tracing();
    match run(config).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => {
            #[allow(clippy::print_stderr)] // why the server stopped, whatever RUST_LOG says
            {
                eprintln!("chat: {failure}");
            }
            ExitCode::from(failure.exit_code())
        }
    }
}

/// Logs to standard error, coloured only on a terminal and without `NO_COLOR`: standard
/// output carries only what a command prints (the AsyncAPI document), so it can be
/// redirected to a file.
fn init_tracing() {
    let colour = std::io::stderr().is_terminal()
        && std::env::var_os("NO_COLOR").is_none_or(|value| value.is_empty());
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .with_ansi(colour)
        .init();
}

async fn run(config: Config) -> Result<(), Failure> {
    // Before the app is built: gateways register their metrics when they are built.
    let metrics = chat::metrics::install().map_err(Failure::runtime)?;
    if config.command == Some(Command::Asyncapi) {
        // The document does not depend on the secret or the users.
        let app = chat::app_with(AuthService::new(DEVELOPMENT_SECRET))
            .build()
            .map_err(Failure::runtime)?;
        let document =
            serde_json::to_string_pretty(&chat::asyncapi(&app)).map_err(Failure::runtime)?;
        #[allow(clippy::print_stdout)] // the document is the command's output
        {
            println!("{document}");
        }
        return Ok(());
    }
    let auth = config.auth.service()?;
    let mut builder = chat::app_with_services(auth.clone(), config.history.service());
    if let Some(url) = config.redis_url {
        // Fails here, naming the URL, if Redis cannot be reached.
        let redis = RedisAdapter::connect(RedisConfig::new(url).prefix("chat")).await?;
        tracing::info!("scaling out through {redis:?}");
        builder = builder.adapter(redis);
    }
    let app = builder.build().map_err(Failure::runtime)?;
    let router = chat::router(&app, auth).merge(chat::metrics::routes(metrics));
    let addr = SocketAddr::new(config.host, config.port);
    let listener = ws_gateway::bind(addr).map_err(|source| Failure::Bind { addr, source })?;
    tracing::info!(
        "chat listening on ws://{}/chat",
        listener.local_addr().map_err(Failure::runtime)?
    );
    ws_gateway::serve(listener, router)
        .with_graceful_shutdown(&app, shutdown_signal())
        .grace(GRACE)
        .await
        .map_err(Failure::runtime)?;
    tracing::info!("chat stopped");
    Ok(())
}

/// Why the server did not start or stopped with an error; each has its exit code
/// (`chat --help` lists them).
#[derive(Debug, thiserror::Error)]
enum Failure {
    /// The options or variables cannot serve.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The address is in use or not ours to take.
    #[error("cannot listen on {addr}: {source} (set HOST and PORT, or --host and --port)")]
    Bind {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    /// `REDIS_URL` is not a Redis URL, or that Redis cannot be reached.
    #[error(transparent)]
    Redis(#[from] ws_gateway::redis::Error),
    /// Anything else, once started.
    #[error("{0}")]
    Runtime(Box<dyn std::error::Error>),
}

impl Failure {
    fn runtime(err: impl Into<Box<dyn std::error::Error>>) -> Self {
        Self::Runtime(err.into())
    }

    fn exit_code(&self) -> u8 {
        match self {
            Self::Config(_) | Self::Redis(ws_gateway::redis::Error::InvalidUrl { .. }) => {
                exit::CONFIG
            }
            Self::Bind { .. } => exit::BIND,
            Self::Redis(_) => exit::UNREACHABLE,
            Self::Runtime(_) => exit::FAILURE,
        }
    }
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
