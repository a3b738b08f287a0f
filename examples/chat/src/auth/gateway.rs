//! The auth gateway at `/auth`, the guide's `auth.gateway.ts`.

use serde::{Deserialize, Serialize};
use ws_gateway::prelude::*;

use super::service::{AuthService, User};

/// `{"token": ...}`.
#[derive(Clone, Debug, Deserialize, schemars::JsonSchema)]
pub struct TokenBody {
    /// A token from `POST /auth/login`.
    pub token: String,
}

/// `{"user": ...}`: the data of `authenticated`.
#[derive(Clone, Debug, Serialize, schemars::JsonSchema)]
pub struct Authenticated {
    /// The user the token names (its password hash is never serialized).
    pub user: User,
}

/// Checks tokens over a socket, for clients that want to know before opening `/chat`.
#[websocket_gateway(path = "/auth")]
pub struct AuthGateway {
    auth: Inject<AuthService>,
}

#[websocket_gateway]
impl AuthGateway {
    /// `{"event":"authenticate","data":{"token":...}}` is answered with
    /// `{"event":"authenticated","data":{"user":{"username":...}}}`, or an exception.
    #[subscribe("authenticate")]
    fn authenticate(&self, body: TokenBody) -> Result<WsResponse<Authenticated>, WsException> {
        let user = self.auth.verify(&body.token)?;
        Ok(WsResponse::new("authenticated", Authenticated { user }))
    }
}
