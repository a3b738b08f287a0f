//! The auth module of the guide's tree: a service that issues and verifies signed JWTs, the
//! `POST /auth/login` route, the `/auth` gateway, and the handshake authenticator of `/chat`.

mod authenticator;
mod gateway;
mod routes;
mod service;

pub use authenticator::JwtAuthenticator;
pub use gateway::{AuthGateway, Authenticated, TokenBody};
pub use routes::{LoginRequest, LoginResponse, routes};
pub use service::{
    AuthError, AuthService, Claims, DEVELOPMENT_SECRET, LOGIN_CONCURRENCY, MAX_USERNAME_CHARS,
    TOKEN_TTL, User,
};
