//! Route table of `/api/v1` plus health and metrics; one module per resource.
pub mod auth;
pub mod bubbles;
pub mod companies;
pub mod contacts;
pub mod health;
pub mod ice;
pub mod me;
pub mod users;

use crate::error::ApiError;
use crate::AppState;
use axum::http::StatusCode;
use axum::routing::{delete, get, post, put};
use axum::Router;

/// Every API route, without state.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .route("/metrics", get(health::metrics))
        .route("/api/v1/openapi.json", get(health::openapi))
        .route("/api/v1/auth/login", post(auth::login))
        .route("/api/v1/auth/refresh", post(auth::refresh))
        .route("/api/v1/auth/logout", post(auth::logout))
        .route("/api/v1/ice-servers", get(ice::ice_servers))
        .route("/api/v1/me", get(me::show).patch(me::update))
        .route("/api/v1/me/password", post(me::change_password))
        .route("/api/v1/directory", get(users::directory))
        .route("/api/v1/users", get(users::list).post(users::create))
        .route(
            "/api/v1/users/{id}",
            get(users::show).patch(users::update).delete(users::remove),
        )
        .route("/api/v1/users/{id}/password", put(users::set_password))
        .route(
            "/api/v1/companies",
            get(companies::list).post(companies::create),
        )
        .route("/api/v1/companies/{id}", delete(companies::remove))
        .route(
            "/api/v1/contacts",
            get(contacts::list).post(contacts::invite),
        )
        .route(
            "/api/v1/contacts/{user_id}",
            delete(contacts::remove).patch(contacts::relabel),
        )
        .route("/api/v1/contacts/{user_id}/accept", post(contacts::accept))
        .route(
            "/api/v1/contacts/{user_id}/decline",
            post(contacts::decline),
        )
        .route("/api/v1/bubbles", get(bubbles::list).post(bubbles::create))
        .route(
            "/api/v1/bubbles/{id}",
            get(bubbles::show)
                .patch(bubbles::update)
                .delete(bubbles::remove),
        )
        .route(
            "/api/v1/bubbles/{id}/members",
            get(bubbles::members).post(bubbles::add_member),
        )
        .route(
            "/api/v1/bubbles/{id}/members/{user_id}",
            delete(bubbles::remove_member),
        )
        .method_not_allowed_fallback(method_not_allowed)
}

/// JSON 404 for unknown routes.
pub async fn not_found() -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, "not_found", "no such route")
}

async fn method_not_allowed() -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        "method not allowed on this route",
    )
}

/// Parses a numeric path id with our error format.
pub(crate) fn path_id(raw: &str) -> Result<i64, ApiError> {
    raw.parse::<i64>()
        .map_err(|_| ApiError::invalid("id", "the id in the path must be a number"))
}
