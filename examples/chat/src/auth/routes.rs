//! `POST /auth/login`: `{"username","password"}` in, `{"token"}` out.

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::post;
use axum::{Json, Router};
use serde::{Deserialize, Serialize};

use super::service::AuthService;

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

async fn login(
    State(auth): State<AuthService>,
    Json(body): Json<LoginRequest>,
) -> Result<Json<LoginResponse>, (StatusCode, Json<serde_json::Value>)> {
    match auth.login(&body.username, &body.password) {
        Ok(token) => Ok(Json(LoginResponse { token })),
        Err(err) => Err((
            StatusCode::UNAUTHORIZED,
            Json(serde_json::json!({"status": "error", "message": err.to_string()})),
        )),
    }
}
