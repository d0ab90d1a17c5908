//! The caller's own profile and password.
use crate::error::{ApiResult, ErrorBody};
use crate::extract::{Auth, Json};
use crate::views::{ChangePassword, UpdateMe, UserView};
use crate::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use iris_model::Secret;

/// The caller's profile.
#[utoipa::path(get, path = "/api/v1/me", tag = "me", security(("bearer" = [])),
    responses((status = 200, body = UserView), (status = 401, body = ErrorBody)))]
pub async fn show(Auth(actor): Auth) -> axum::Json<UserView> {
    axum::Json(actor.user.into())
}

/// Changes the caller's display name.
#[utoipa::path(patch, path = "/api/v1/me", tag = "me", security(("bearer" = [])), request_body = UpdateMe,
    responses((status = 200, body = UserView), (status = 400, body = ErrorBody)))]
pub async fn update(
    State(state): State<AppState>,
    Auth(actor): Auth,
    Json(req): Json<UpdateMe>,
) -> ApiResult<axum::Json<UserView>> {
    let id = actor.user.id;
    let user = state
        .accounts
        .update_user(&actor, id, req.display_name, None)
        .await?;
    Ok(axum::Json(user.into()))
}

/// Changes the caller's password; the caller's other sessions end.
#[utoipa::path(post, path = "/api/v1/me/password", tag = "me", security(("bearer" = [])), request_body = ChangePassword,
    responses((status = 204), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody)))]
pub async fn change_password(
    State(state): State<AppState>,
    Auth(actor): Auth,
    Json(req): Json<ChangePassword>,
) -> ApiResult<StatusCode> {
    state
        .accounts
        .change_password(
            &actor,
            &Secret::new(req.current_password),
            &Secret::new(req.new_password),
        )
        .await?;
    Ok(StatusCode::NO_CONTENT)
}
