//! `POST /auth/login`: `{"username","password"}` in, `{"token"}` out.

use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use serde::{Deserialize, Serialize};

use super::service::{AuthError, AuthService};

/// The body of `POST /auth/login`.
#[derive(Clone, Debug, Deserialize)]
pub struct LoginRequest {
    /// Who logs in.
    pub username: String,
    /// Their password.
    pub password: String,
}

/// The answer of `POST /auth/login`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct LoginResponse {
    /// A JWT for `/chat` (as `Authorization: Bearer`, `?token=` or a `token` cookie).
    pub token: String,
}

/// The HTTP routes of the auth module.
pub fn routes(auth: AuthService) -> Router {
    Router::new()
        .route("/auth/login", post(login))
        .with_state(auth)
}

/// 200 with a token; 400 for a username past the bound (before any password is checked),
/// 503 with `Retry-After` when every password-check slot is taken, 401 otherwise.
async fn login(State(auth): State<AuthService>, Json(body): Json<LoginRequest>) -> Response {
    let err = match auth.login_limited(body.username, body.password).await {
        Ok(token) => return Json(LoginResponse { token }).into_response(),
        Err(err) => err,
    };
    let body = Json(serde_json::json!({"status": "error", "message": err.to_string()}));
    match err {
        AuthError::InvalidUsername { .. } => (StatusCode::BAD_REQUEST, body).into_response(),
        AuthError::Busy => (
            StatusCode::SERVICE_UNAVAILABLE,
            [(header::RETRY_AFTER, "1")],
            body,
        )
            .into_response(),
        _ => (StatusCode::UNAUTHORIZED, body).into_response(),
    }
}
