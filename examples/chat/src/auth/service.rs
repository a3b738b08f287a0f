//! Issues and verifies signed JWTs (HS256, with the `jsonwebtoken` crate); checks
//! passwords against argon2id hashes (RustCrypto's `argon2`).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use argon2::Argon2;
use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use jsonwebtoken::{DecodingKey, EncodingKey, Header, Validation, decode, encode};
use serde::{Deserialize, Serialize};
use tokio::sync::Semaphore;

/// The secret used in the demo mode (no `CHAT_USERS`) when `JWT_SECRET` is not set. Public
/// on purpose: anyone can sign tokens with it, which is why the server refuses to start
/// with configured users and no `JWT_SECRET`.
pub const DEVELOPMENT_SECRET: &str = "development-secret-change-me";

/// How long a token is valid by default.
pub const TOKEN_TTL: Duration = Duration::from_secs(60 * 60);

/// The longest username, in characters, that logs in by default.
pub const MAX_USERNAME_CHARS: usize = 64;

/// How many password checks (argon2id, about 19 MiB and tens of milliseconds each) run at
/// once by default; more logins at that moment get HTTP 503.
pub const LOGIN_CONCURRENCY: usize = 4;

/// How far in the future a token's expiry may lie beyond the configured lifetime, for
/// instances whose clocks differ a little.
const CLOCK_SKEW: Duration = Duration::from_secs(60);

/// A user as the server knows it. The password hash never leaves the server: it is
/// skipped when the user is serialized into a frame.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub struct User {
    /// The user's name.
    pub username: String,
    /// The argon2id hash of the password, a PHC string (`$argon2id$v=19$...`); never
    /// serialized, empty in the demo mode.
    #[serde(skip_serializing)]
    #[schemars(skip)]
    pub password_hash: String,
}

/// What a token says.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// The username.
    pub sub: String,
    /// Expiry, seconds since the epoch.
    pub exp: u64,
}

/// Why logging in or verifying a token failed.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum AuthError {
    /// Unknown user or wrong password.
    #[error("Invalid username or password")]
    InvalidCredentials,
    /// The username is empty or longer than the bound (HTTP 400 at login).
    #[error("Username must be 1 to {max} characters")]
    InvalidUsername {
        /// The longest username accepted, in characters.
        max: usize,
    },
    /// Every password-check slot is taken (HTTP 503 at login).
    #[error("Too many logins at once, retry in a moment")]
    Busy,
    /// The token is malformed, forged, signed with another secret, or valid for longer
    /// than this server issues tokens for.
    #[error("Invalid token")]
    InvalidToken,
    /// The token has expired.
    #[error("Token expired")]
    Expired,
    /// No token in the request.
    #[error(
        "Missing token: send `Authorization: Bearer <token>`, `?token=<token>` or a `token` cookie"
    )]
    MissingToken,
}

impl From<AuthError> for ws_gateway::WsException {
    fn from(err: AuthError) -> Self {
        ws_gateway::WsException::new(err.to_string())
    }
}

/// Logs users in and verifies their tokens.
///
/// Without configured users (the demo mode) any username of 1 to [`MAX_USERNAME_CHARS`]
/// characters logs in with the password `password`. With users
/// ([`with_users`](Self::with_users)), passwords are checked against argon2id hashes made
/// when the service is built, with the constant-time `PasswordVerifier`.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use chat::auth::{AuthError, AuthService};
///
/// let auth = AuthService::new("a long random secret")
///     .with_users([("alice", "wonderland")])
///     .with_ttl(Duration::from_secs(600));
/// let token = auth.login("alice", "wonderland").unwrap();
/// assert_eq!(auth.verify(&token).unwrap().username, "alice");
/// assert_eq!(auth.login("alice", "nope"), Err(AuthError::InvalidCredentials));
/// assert_eq!(
///     auth.login(&"a".repeat(65), "wonderland"),
///     Err(AuthError::InvalidUsername { max: 64 })
/// );
/// ```
#[derive(Clone)]
pub struct AuthService {
    secret: Vec<u8>,
    users: Option<Arc<HashMap<String, User>>>,
    /// Checked when the name is unknown, so that a wrong name costs as long as a wrong
    /// password and the timing tells nothing.
    unknown_user_hash: Arc<str>,
    ttl: Duration,
    max_username: usize,
    login_slots: Arc<Semaphore>,
}

impl std::fmt::Debug for AuthService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthService")
            .field("users", &self.users.as_ref().map(|users| users.len()))
            .field("ttl", &self.ttl)
            .field("max_username", &self.max_username)
            .finish_non_exhaustive()
    }
}

impl AuthService {
    /// A service signing with `secret`, in the demo mode: any username of 1 to
    /// [`MAX_USERNAME_CHARS`] characters logs in with the password `password`.
    pub fn new(secret: impl Into<Vec<u8>>) -> Self {
        Self {
            secret: secret.into(),
            users: None,
            unknown_user_hash: Arc::from(""),
            ttl: TOKEN_TTL,
            max_username: MAX_USERNAME_CHARS,
            login_slots: Arc::new(Semaphore::new(LOGIN_CONCURRENCY)),
        }
    }

    /// Only these users (name, password) may log in. Each password is hashed here with
    /// argon2id and a random salt; the plain password is not kept.
    #[must_use]
    pub fn with_users<'a>(mut self, users: impl IntoIterator<Item = (&'a str, &'a str)>) -> Self {
        let users = users
            .into_iter()
            .map(|(name, password)| {
                let user = User {
                    username: name.to_owned(),
                    password_hash: hash(password),
                };
                (name.to_owned(), user)
            })
            .collect();
        self.users = Some(Arc::new(users));
        self.unknown_user_hash = Arc::from(hash("no user has this password"));
        self
    }

    /// Tokens issued from now on are valid for `ttl`, and tokens whose expiry lies further
    /// ahead than `ttl` (issued under a longer lifetime) are refused.
    #[must_use]
    pub fn with_ttl(mut self, ttl: Duration) -> Self {
        self.ttl = ttl;
        self
    }

    /// Usernames longer than `max` characters are refused at login.
    #[must_use]
    pub fn with_max_username(mut self, max: usize) -> Self {
        self.max_username = max;
        self
    }

    /// At most `slots` password checks run at once in [`login_limited`](Self::login_limited).
    #[must_use]
    pub fn with_login_concurrency(mut self, slots: usize) -> Self {
        self.login_slots = Arc::new(Semaphore::new(slots));
        self
    }

    /// Whether users are configured (otherwise: the demo mode).
    pub fn has_users(&self) -> bool {
        self.users.is_some()
    }

    /// Refuses an empty username or one longer than the bound, without reading past it. (A
    /// blank one is refused as invalid credentials by [`login`](Self::login).)
    ///
    /// # Errors
    ///
    /// [`AuthError::InvalidUsername`].
    pub fn check_username(&self, username: &str) -> Result<(), AuthError> {
        if username.is_empty() || username.chars().nth(self.max_username).is_some() {
            return Err(AuthError::InvalidUsername {
                max: self.max_username,
            });
        }
        Ok(())
    }

    /// Checks the credentials and issues a token. With configured users this computes an
    /// argon2id hash (CPU and about 19 MiB for tens of milliseconds): servers call
    /// [`login_limited`](Self::login_limited).
    ///
    /// # Errors
    ///
    /// [`AuthError::InvalidUsername`], [`AuthError::InvalidCredentials`].
    pub fn login(&self, username: &str, password: &str) -> Result<String, AuthError> {
        self.check_username(username)?;
        let ok = match &self.users {
            Some(users) => match users.get(username) {
                Some(user) => verify(password, &user.password_hash),
                None => {
                    verify(password, &self.unknown_user_hash);
                    false
                }
            },
            None => !username.trim().is_empty() && password == "password",
        };
        if !ok {
            return Err(AuthError::InvalidCredentials);
        }
        self.issue(username)
    }

    /// [`login`](Self::login) off the async runtime, with at most
    /// [`with_login_concurrency`](Self::with_login_concurrency) password checks at once, so
    /// a flood of logins bounds the server's CPU and memory instead of exhausting them.
    ///
    /// # Errors
    ///
    /// Those of [`login`](Self::login), and [`AuthError::Busy`] when every slot is taken.
    pub async fn login_limited(
        &self,
        username: String,
        password: String,
    ) -> Result<String, AuthError> {
        self.check_username(&username)?;
        if self.users.is_none() {
            return self.login(&username, &password); // no hash to compute
        }
        let permit = Arc::clone(&self.login_slots)
            .try_acquire_owned()
            .map_err(|_| AuthError::Busy)?;
        let auth = self.clone();
        tokio::task::spawn_blocking(move || {
            let _permit = permit;
            auth.login(&username, &password)
        })
        .await
        .unwrap_or(Err(AuthError::InvalidCredentials))
    }

    /// Issues a token for `username` without checking a password.
    ///
    /// # Errors
    ///
    /// [`AuthError::InvalidToken`] if signing fails.
    pub fn issue(&self, username: &str) -> Result<String, AuthError> {
        let exp = SystemTime::now()
            .checked_add(self.ttl)
            .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
            .map_or(0, |d| d.as_secs());
        let claims = Claims {
            sub: username.to_owned(),
            exp,
        };
        encode(
            &Header::default(),
            &claims,
            &EncodingKey::from_secret(&self.secret),
        )
        .map_err(|_| AuthError::InvalidToken)
    }

    /// Verifies a token and returns its user.
    ///
    /// # Errors
    ///
    /// [`AuthError::Expired`] or [`AuthError::InvalidToken`] (also for a user who is no
    /// longer among the configured users, and for a token expiring later than this
    /// service's lifetime allows).
    pub fn verify(&self, token: &str) -> Result<User, AuthError> {
        let validation = Validation {
            leeway: 0,
            ..Validation::default()
        };
        let data = decode::<Claims>(token, &DecodingKey::from_secret(&self.secret), &validation)
            .map_err(|err| match err.kind() {
                jsonwebtoken::errors::ErrorKind::ExpiredSignature => AuthError::Expired,
                _ => AuthError::InvalidToken,
            })?;
        let horizon = SystemTime::now()
            .checked_add(self.ttl + CLOCK_SKEW)
            .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
            .map_or(u64::MAX, |d| d.as_secs());
        if data.claims.exp > horizon {
            return Err(AuthError::InvalidToken);
        }
        let username = data.claims.sub;
        match &self.users {
            Some(users) => users.get(&username).cloned().ok_or(AuthError::InvalidToken),
            None => {
                self.check_username(&username)
                    .map_err(|_| AuthError::InvalidToken)?;
                Ok(User {
                    password_hash: String::new(),
                    username,
                })
            }
        }
    }
}

/// The argon2id PHC string of a password, with a random salt and the crate's default
/// parameters (OWASP's: 19 MiB, 2 passes). Empty, so nothing verifies against it, if the
/// system's random number generator fails.
fn hash(password: &str) -> String {
    match Argon2::default().hash_password(password.as_bytes()) {
        Ok(hash) => hash.to_string(),
        Err(err) => {
            tracing::error!("cannot hash a password: {err}");
            String::new()
        }
    }
}

/// Whether `password` matches the PHC string `hash`, compared in constant time.
fn verify(password: &str, hash: &str) -> bool {
    Argon2::default()
        .verify_password(password.as_bytes(), hash)
        .is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn demo_rule_accepts_password_only() {
        let auth = AuthService::new("s");
        assert!(auth.login("alice", "password").is_ok());
        assert_eq!(
            auth.login("alice", "nope"),
            Err(AuthError::InvalidCredentials)
        );
        assert_eq!(
            auth.login(" ", "password"),
            Err(AuthError::InvalidCredentials)
        );
    }

    #[test]
    fn configured_users_only() {
        let auth = AuthService::new("s").with_users([("bob", "hunter2")]);
        assert!(auth.login("bob", "hunter2").is_ok());
        assert_eq!(
            auth.login("alice", "password"),
            Err(AuthError::InvalidCredentials)
        );
        let token = auth.login("bob", "hunter2").unwrap();
        let user = auth.verify(&token).unwrap();
        assert_eq!(user.username, "bob");
        assert!(
            user.password_hash.starts_with("$argon2id$"),
            "{}",
            user.password_hash
        );
        assert!(verify("hunter2", &user.password_hash));
        assert!(!verify("hunter3", &user.password_hash));
    }

    #[test]
    fn tokens_from_another_secret_or_expired_are_refused() {
        let auth = AuthService::new("a");
        let token = auth.issue("alice").unwrap();
        assert_eq!(
            AuthService::new("b").verify(&token),
            Err(AuthError::InvalidToken)
        );
        assert_eq!(auth.verify("garbage"), Err(AuthError::InvalidToken));
        let expired = AuthService::new("a")
            .with_ttl(Duration::ZERO)
            .issue("alice")
            .unwrap();
        std::thread::sleep(Duration::from_millis(1100));
        assert_eq!(auth.verify(&expired), Err(AuthError::Expired));
    }

    #[test]
    fn usernames_are_bounded_at_login() {
        let auth = AuthService::new("s").with_max_username(5);
        assert!(auth.login("alice", "password").is_ok());
        assert!(auth.login("ålice", "password").is_ok()); // characters, not bytes
        for name in ["alice!", ""] {
            assert_eq!(
                auth.login(name, "password"),
                Err(AuthError::InvalidUsername { max: 5 })
            );
        }
        // A token naming a longer user (issued before the bound was lowered) is refused.
        let token = AuthService::new("s").issue("bob-the-builder").unwrap();
        assert_eq!(auth.verify(&token), Err(AuthError::InvalidToken));
    }

    #[test]
    fn tokens_living_longer_than_the_lifetime_are_refused() {
        let long = AuthService::new("s").with_ttl(Duration::from_secs(24 * 60 * 60));
        let token = long.issue("alice").unwrap();
        assert!(long.verify(&token).is_ok());
        assert_eq!(
            AuthService::new("s").verify(&token),
            Err(AuthError::InvalidToken)
        );
    }

    #[tokio::test]
    async fn logins_past_the_concurrency_bound_are_busy() {
        let auth = AuthService::new("s")
            .with_users([("bob", "hunter2")])
            .with_login_concurrency(0);
        assert_eq!(
            auth.login_limited("bob".into(), "hunter2".into()).await,
            Err(AuthError::Busy)
        );
        let auth = auth.with_login_concurrency(1);
        assert!(
            auth.login_limited("bob".into(), "hunter2".into())
                .await
                .is_ok()
        );
    }

    #[test]
    fn the_password_hash_is_never_serialized() {
        let user = User {
            username: "a".into(),
            password_hash: "secret-hash".into(),
        };
        assert_eq!(serde_json::to_string(&user).unwrap(), r#"{"username":"a"}"#);
    }
}
