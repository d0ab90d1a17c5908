//! Login, token refresh and logout.
use crate::error::{ApiResult, ErrorBody};
use crate::extract::{Auth, Json};
use crate::views::{LoginRequest, RefreshRequest, TokensView};
use crate::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use iris_model::Secret;

/// Logs in with login and password. Repeated failures lock the login for a growing time (429).
#[utoipa::path(post, path = "/api/v1/auth/login", tag = "auth", request_body = LoginRequest,
    responses((status = 200, body = TokensView), (status = 401, body = ErrorBody), (status = 429, body = ErrorBody)))]
pub async fn login(
    State(state): State<AppState>,
    Json(req): Json<LoginRequest>,
) -> ApiResult<axum::Json<TokensView>> {
    let tokens = state
        .accounts
        .login(&req.login, &Secret::new(req.password))
        .await?;
    Ok(axum::Json(tokens.into()))
}

/// Exchanges a refresh token (usable once) for fresh tokens.
#[utoipa::path(post, path = "/api/v1/auth/refresh", tag = "auth", request_body = RefreshRequest,
    responses((status = 200, body = TokensView), (status = 401, body = ErrorBody)))]
pub async fn refresh(
    State(state): State<AppState>,
    Json(req): Json<RefreshRequest>,
) -> ApiResult<axum::Json<TokensView>> {
    let tokens = state.accounts.refresh(&req.refresh_token).await?;
    Ok(axum::Json(tokens.into()))
}

/// Ends this session: its access and refresh tokens stop working at once.
#[utoipa::path(post, path = "/api/v1/auth/logout", tag = "auth", security(("bearer" = [])),
    responses((status = 204), (status = 401, body = ErrorBody)))]
pub async fn logout(State(state): State<AppState>, Auth(actor): Auth) -> ApiResult<StatusCode> {
    state.accounts.logout(&actor).await?;
    Ok(StatusCode::NO_CONTENT)
}
