//! Issues and verifies signed JWTs (HS256, with the `jsonwebtoken` crate).

use std::collections::HashMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use jsonwebtoken::{DecodingKey, EncodingKey, Header, Validation, decode, encode};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// The secret used when `JWT_SECRET` is not set: fine for a demo, never for production.
const DEVELOPMENT_SECRET: &str = "development-secret-change-me";

/// How long a token is valid by default.
pub const TOKEN_TTL: Duration = Duration::from_secs(60 * 60);

/// A user as the server knows it. The password hash never leaves the server: it is
/// skipped when the user is serialized into a frame.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub struct User {
    /// The user's name.
    pub username: String,
    /// A salted SHA-256 of the password; never serialized.
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
pub enum AuthError {
    /// Unknown user or wrong password.
    #[error("Invalid username or password")]
    InvalidCredentials,
    /// The token is malformed, forged or signed with another secret.
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

impl From<AuthError> for gateway_core::WsException {
    fn from(err: AuthError) -> Self {
        gateway_core::WsException::new(err.to_string())
    }
}

/// Logs users in and verifies their tokens.
#[derive(Clone)]
pub struct AuthService {
    secret: Vec<u8>,
    users: Option<HashMap<String, User>>,
    ttl: Duration,
}

impl std::fmt::Debug for AuthService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthService")
            .field("users", &self.users.as_ref().map(HashMap::len))
            .field("ttl", &self.ttl)
            .finish_non_exhaustive()
    }
}

impl AuthService {
    /// A service signing with `secret`. Without configured users, any non-empty username
    /// logs in with the password `password`.
    pub fn new(secret: impl Into<Vec<u8>>) -> Self {
        Self {
            secret: secret.into(),
            users: None,
            ttl: TOKEN_TTL,
        }
    }

    /// The service configured from the environment: the secret from `JWT_SECRET` (a
    /// development default, with a warning, when unset), users from `CHAT_USERS`
    /// (`name:password,name:password`; unset: the demo rule above).
    pub fn from_env() -> Self {
        let secret = std::env::var("JWT_SECRET").unwrap_or_else(|_| {
            tracing::warn!(
                "JWT_SECRET is not set: signing tokens with a development secret; set it in production"
            );
            DEVELOPMENT_SECRET.to_owned()
        });
        let mut service = Self::new(secret);
        if let Ok(users) = std::env::var("CHAT_USERS") {
            service = service.with_users(users.split(',').filter_map(|pair| pair.split_once(':')));
        }
        service
    }

    /// Only these users (name, password) may log in.
    #[must_use]
    pub fn with_users<'a>(mut self, users: impl IntoIterator<Item = (&'a str, &'a str)>) -> Self {
        let users = users
            .into_iter()
            .map(|(name, password)| {
                let user = User {
                    username: name.to_owned(),
                    password_hash: hash(name, password),
                };
                (name.to_owned(), user)
            })
            .collect();
        self.users = Some(users);
        self
    }

    /// Tokens issued from now on are valid for `ttl`.
    #[must_use]
    pub fn with_ttl(mut self, ttl: Duration) -> Self {
        self.ttl = ttl;
        self
    }

    /// Checks the credentials and issues a token.
    ///
    /// # Errors
    ///
    /// [`AuthError::InvalidCredentials`].
    pub fn login(&self, username: &str, password: &str) -> Result<String, AuthError> {
        let ok = match &self.users {
            Some(users) => users
                .get(username)
                .is_some_and(|user| user.password_hash == hash(username, password)),
            None => !username.trim().is_empty() && password == "password",
        };
        if !ok {
            return Err(AuthError::InvalidCredentials);
        }
        self.issue(username)
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
    /// longer among the configured users).
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
        let username = data.claims.sub;
        match &self.users {
            Some(users) => users.get(&username).cloned().ok_or(AuthError::InvalidToken),
            None => Ok(User {
                password_hash: String::new(),
                username,
            }),
        }
    }
}

/// A salted SHA-256 of a password, hex-encoded. A demo: use argon2 for real passwords.
fn hash(username: &str, password: &str) -> String {
    let digest = Sha256::digest(format!("{username}\u{0}{password}"));
    digest.iter().map(|b| format!("{b:02x}")).collect()
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
        assert_eq!(user.password_hash, hash("bob", "hunter2"));
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
    fn the_password_hash_is_never_serialized() {
        let user = User {
            username: "a".into(),
            password_hash: "secret-hash".into(),
        };
        assert_eq!(serde_json::to_string(&user).unwrap(), r#"{"username":"a"}"#);
    }
}
