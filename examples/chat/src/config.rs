//! The chat server's configuration: command-line options, each also read from an
//! environment variable (`cargo run -p chat -- --help` lists them with their defaults).

use std::collections::HashSet;
use std::net::IpAddr;
use std::num::NonZeroUsize;
use std::time::Duration;

use clap::builder::RangedU64ValueParser;

use crate::auth::{AuthService, DEVELOPMENT_SECRET, LOGIN_CONCURRENCY, MAX_USERNAME_CHARS};
use crate::chat::{ChatService, HISTORY_LIMIT, HISTORY_ROOMS};

/// The longest token lifetime `--token-ttl-secs` accepts: 7 days.
pub const MAX_TOKEN_TTL: Duration = Duration::from_secs(7 * 24 * 60 * 60);

/// The end of `chat --help`: where the logs go and what the exit codes mean.
pub const AFTER_HELP: &str = "\
Logs go to standard error (RUST_LOG chooses them, default: info; coloured on a terminal unless \
NO_COLOR is set); standard output carries only the output of `asyncapi`.

Exit codes:
  0  stopped by ctrl-c or SIGTERM, or `asyncapi` printed the document
  1  failed while running (an I/O error)
  2  bad usage or configuration: an unknown option, a value out of range, CHAT_USERS without \
JWT_SECRET, a malformed REDIS_URL
  3  cannot listen on HOST:PORT (in use, or not permitted)
  4  cannot reach Redis at REDIS_URL";

/// The exit codes of `chat` ([`AFTER_HELP`] lists them); 0 is success.
pub mod exit {
    /// Failed while running: an I/O error once started.
    pub const FAILURE: u8 = 1;
    /// Bad usage or configuration: clap's usage errors, a [`ConfigError`](super::ConfigError),
    /// a malformed `REDIS_URL`.
    pub const CONFIG: u8 = 2;
    /// The address to listen on is in use or not permitted.
    pub const BIND: u8 = 3;
    /// Redis at `REDIS_URL` cannot be reached.
    pub const UNREACHABLE: u8 = 4;
}

/// The chat server's options (`--help` lists them).
///
/// # Examples
///
/// ```
/// use clap::Parser;
/// use chat::config::{Config, ConfigError};
///
/// let config = Config::try_parse_from(["chat", "--users", "alice:wonderland"]).unwrap();
/// // Users without a secret of their own: anyone could sign their tokens.
/// assert_eq!(config.auth.service().unwrap_err(), ConfigError::DevelopmentSecretWithUsers);
/// ```
#[derive(Clone, Debug, clap::Parser)]
#[command(
    name = "chat",
    version,
    about = "The chat of the NestJS WebSocket guide: rooms, messages and history at ws://HOST:PORT/chat, tokens from POST /auth/login, the chat page at /",
    long_about = None,
    after_help = AFTER_HELP
)]
pub struct Config {
    /// What to do instead of serving.
    #[command(subcommand)]
    pub command: Option<Command>,
    /// The address to listen on.
    #[arg(long, env = "HOST", default_value = "127.0.0.1")]
    pub host: IpAddr,
    /// The port to listen on (0: any free port).
    #[arg(long, env = "PORT", default_value_t = 3000)]
    pub port: u16,
    /// Share rooms with the other instances using this Redis, e.g. redis://127.0.0.1:6379.
    #[arg(long, env = "REDIS_URL")]
    pub redis_url: Option<String>,
    /// Logins and tokens.
    #[command(flatten)]
    pub auth: AuthOptions,
    /// Message history.
    #[command(flatten)]
    pub history: HistoryOptions,
}

/// What to do instead of serving.
#[derive(Clone, Debug, PartialEq, Eq, clap::Subcommand)]
pub enum Command {
    /// Print the AsyncAPI document of the gateways and exit.
    Asyncapi,
}

/// Logins and tokens.
#[derive(Clone, Debug, clap::Args)]
pub struct AuthOptions {
    /// The secret tokens are signed with (HS256): a long random string, e.g. from `openssl
    /// rand -hex 32`. Required with --users; unset without users, a built-in development
    /// secret is used (the demo mode only: anyone can sign tokens with it).
    #[arg(long, env = "JWT_SECRET", hide_env_values = true)]
    pub jwt_secret: Option<String>,
    /// The only users who may log in, as `name:password,name:password` (a name holds no `:`
    /// or `,`, a password no `,`); passwords are hashed with argon2id at start and the plain
    /// text is not kept. Unset: the demo mode, where any name logs in with the password
    /// `password`.
    #[arg(long, env = "CHAT_USERS", hide_env_values = true)]
    pub users: Option<String>,
    /// How long a token is valid, in seconds (at most 7 days); tokens expiring later than
    /// that from now are refused.
    #[arg(
        long,
        env = "CHAT_TOKEN_TTL_SECS",
        default_value_t = 3600,
        value_parser = RangedU64ValueParser::<u64>::new().range(1..=MAX_TOKEN_TTL.as_secs())
    )]
    pub token_ttl_secs: u64,
    /// The longest username, in characters; longer ones get HTTP 400 at login.
    #[arg(
        long,
        env = "CHAT_MAX_USERNAME",
        default_value_t = MAX_USERNAME_CHARS,
        value_parser = RangedU64ValueParser::<usize>::new().range(1..=1024)
    )]
    pub max_username: usize,
    /// Password checks (argon2id: about 19 MiB and tens of milliseconds each) run at once;
    /// more logins at that moment get HTTP 503.
    #[arg(
        long,
        env = "CHAT_LOGIN_CONCURRENCY",
        default_value_t = LOGIN_CONCURRENCY,
        value_parser = RangedU64ValueParser::<usize>::new().range(1..)
    )]
    pub login_concurrency: usize,
}

/// Message history.
#[derive(Clone, Debug, clap::Args)]
pub struct HistoryOptions {
    /// Messages each room remembers (the oldest is forgotten first).
    #[arg(
        long,
        env = "CHAT_HISTORY_PER_ROOM",
        default_value_t = HISTORY_LIMIT,
        value_parser = RangedU64ValueParser::<usize>::new().range(1..)
    )]
    pub history_per_room: usize,
    /// Rooms that keep a history; past it, the room written to longest ago forgets its
    /// history.
    #[arg(
        long,
        env = "CHAT_HISTORY_ROOMS",
        default_value_t = HISTORY_ROOMS,
        value_parser = RangedU64ValueParser::<usize>::new().range(1..)
    )]
    pub history_rooms: usize,
}

/// Why the configuration cannot serve.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum ConfigError {
    /// Users are configured but tokens would be signed with the public development secret.
    #[error(
        "CHAT_USERS is set but JWT_SECRET is not: tokens would be signed with the built-in development secret, so anyone could forge one for a configured user; set JWT_SECRET (or --jwt-secret) to a long random string, e.g. `openssl rand -hex 32`"
    )]
    DevelopmentSecretWithUsers,
    /// `JWT_SECRET` is set to nothing.
    #[error("JWT_SECRET is empty: set it to a long random string, e.g. `openssl rand -hex 32`")]
    EmptySecret,
    /// An entry of `CHAT_USERS` is not `name:password`.
    #[error("CHAT_USERS: entry {0} is not `name:password` (entries are separated by `,`)")]
    UserEntry(usize),
    /// A configured username is longer than the login bound.
    #[error(
        "CHAT_USERS: user {name:?} has more than {max} characters; shorten it or raise CHAT_MAX_USERNAME"
    )]
    UsernameTooLong {
        /// The user's name.
        name: String,
        /// The bound.
        max: usize,
    },
    /// A username appears twice in `CHAT_USERS`.
    #[error("CHAT_USERS: user {0:?} is listed twice")]
    DuplicateUser(String),
}

impl AuthOptions {
    /// The auth service these options describe: users hashed with argon2id, the secret,
    /// the bounds. Warns when the demo mode signs with the development secret.
    ///
    /// # Errors
    ///
    /// [`ConfigError::DevelopmentSecretWithUsers`] when users are set and no secret;
    /// [`ConfigError::EmptySecret`]; a malformed, duplicate or too long user.
    pub fn service(&self) -> Result<AuthService, ConfigError> {
        let users = self.users.as_deref().map(parse_users).transpose()?;
        let secret = match (self.jwt_secret.as_deref(), &users) {
            (Some(""), _) => return Err(ConfigError::EmptySecret),
            (Some(secret), _) => secret,
            (None, Some(_)) => return Err(ConfigError::DevelopmentSecretWithUsers),
            (None, None) => {
                tracing::warn!(
                    "JWT_SECRET is not set: the demo mode signs tokens with a development secret that anyone can use; set JWT_SECRET in production"
                );
                DEVELOPMENT_SECRET
            }
        };
        let mut service = AuthService::new(secret)
            .with_ttl(Duration::from_secs(self.token_ttl_secs))
            .with_max_username(self.max_username)
            .with_login_concurrency(self.login_concurrency);
        if let Some(users) = users {
            if let Some((name, _)) = users
                .iter()
                .find(|(name, _)| name.chars().count() > self.max_username)
            {
                return Err(ConfigError::UsernameTooLong {
                    name: (*name).to_owned(),
                    max: self.max_username,
                });
            }
            service = service.with_users(users);
        }
        Ok(service)
    }
}

impl HistoryOptions {
    /// The chat service with these history bounds.
    pub fn service(&self) -> ChatService {
        ChatService::with_limits(
            NonZeroUsize::new(self.history_per_room).unwrap_or(NonZeroUsize::MIN),
            NonZeroUsize::new(self.history_rooms).unwrap_or(NonZeroUsize::MIN),
        )
    }
}

/// `name:password,name:password` into pairs; entries are numbered from 1 in errors, which
/// never repeat a password.
fn parse_users(users: &str) -> Result<Vec<(&str, &str)>, ConfigError> {
    let mut seen = HashSet::new();
    users
        .split(',')
        .enumerate()
        .map(|(i, entry)| {
            let (name, password) = entry
                .trim()
                .split_once(':')
                .filter(|(name, password)| !name.trim().is_empty() && !password.is_empty())
                .ok_or(ConfigError::UserEntry(i + 1))?;
            let name = name.trim();
            if !seen.insert(name) {
                return Err(ConfigError::DuplicateUser(name.to_owned()));
            }
            Ok((name, password))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    fn auth(args: &[&str]) -> Result<AuthService, ConfigError> {
        Config::try_parse_from(["chat"].iter().chain(args))
            .unwrap()
            .auth
            .service()
    }

    #[test]
    fn users_need_a_secret_of_their_own() {
        assert_eq!(
            auth(&["--users", "alice:wonderland"]).unwrap_err(),
            ConfigError::DevelopmentSecretWithUsers
        );
        assert_eq!(
            auth(&["--users", "alice:wonderland", "--jwt-secret", ""]).unwrap_err(),
            ConfigError::EmptySecret
        );
        let service = auth(&["--users", "alice:wonderland", "--jwt-secret", "s3cret"]).unwrap();
        assert!(service.has_users());
        assert!(service.login("alice", "wonderland").is_ok());
        // The demo mode may use the development secret.
        assert!(!auth(&[]).unwrap().has_users());
    }

    #[test]
    fn malformed_users_are_refused_without_echoing_passwords() {
        let secret = ["--jwt-secret", "s"];
        for (users, expected) in [
            ("alice", ConfigError::UserEntry(1)),
            ("alice:a,:b", ConfigError::UserEntry(2)),
            ("alice:a,bob:", ConfigError::UserEntry(2)),
            (
                "alice:a, alice:b",
                ConfigError::DuplicateUser("alice".into()),
            ),
        ] {
            let err = auth(&[&secret[..], &["--users", users]].concat()).unwrap_err();
            assert_eq!(err, expected, "{users}");
        }
        let long = format!("{}:pw", "n".repeat(65));
        assert_eq!(
            auth(&[&secret[..], &["--users", &long]].concat()).unwrap_err(),
            ConfigError::UsernameTooLong {
                name: "n".repeat(65),
                max: 64
            }
        );
    }

    #[test]
    fn bounds_have_safe_defaults_and_limits() {
        let config = Config::try_parse_from(["chat"]).unwrap();
        assert_eq!(config.auth.token_ttl_secs, 3600);
        assert_eq!(config.auth.max_username, MAX_USERNAME_CHARS);
        assert_eq!(config.history.history_per_room, HISTORY_LIMIT);
        assert_eq!(config.history.history_rooms, HISTORY_ROOMS);
        for args in [
            ["--token-ttl-secs", "0"],
            ["--token-ttl-secs", "604801"],
            ["--history-rooms", "0"],
            ["--max-username", "0"],
        ] {
            assert!(
                Config::try_parse_from(["chat"].iter().chain(&args)).is_err(),
                "{args:?}"
            );
        }
    }
}
