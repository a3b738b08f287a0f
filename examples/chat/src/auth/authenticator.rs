//! The handshake authenticator of `/chat`: a valid JWT or HTTP 401 before the upgrade.

use ws_gateway::{Authenticator, HandshakeRequest, WsException};

use super::service::{AuthError, AuthService, User};

/// Reads the token of the upgrade request (`Authorization: Bearer`, `?token=`, or the
/// `token` cookie) and verifies it.
#[derive(Clone, Debug)]
pub struct JwtAuthenticator {
    auth: AuthService,
}

impl JwtAuthenticator {
    /// An authenticator verifying with this service.
    pub fn new(auth: AuthService) -> Self {
        Self { auth }
    }
}

impl Authenticator for JwtAuthenticator {
    type Identity = User;

    async fn authenticate(&self, request: &HandshakeRequest<'_>) -> Result<User, WsException> {
        let token = request.token().ok_or(AuthError::MissingToken)?;
        Ok(self.auth.verify(token)?)
    }
}
