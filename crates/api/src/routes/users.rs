//! User administration (company admins: their company; superadmins: all) and the directory.
use super::path_id;
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::{Auth, Json, Query};
use crate::views::{CreateUser, ListQuery, SetPassword, UpdateUser, UserView};
use crate::AppState;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use iris_model::{Login, Role, Secret, UserId};
use iris_services::{Error, NewAccount};

fn require_admin(actor: &iris_services::Actor) -> Result<(), ApiError> {
    if actor.user.role < Role::Admin {
        return Err(Error::Forbidden.into());
    }
    Ok(())
}

/// The caller's company directory (any user), filtered by `q`.
#[utoipa::path(get, path = "/api/v1/directory", tag = "users", security(("bearer" = [])), params(ListQuery),
    responses((status = 200, body = [UserView])))]
pub async fn directory(
    State(state): State<AppState>,
    Auth(actor): Auth,
    Query(q): Query<ListQuery>,
) -> ApiResult<axum::Json<Vec<UserView>>> {
    // The directory is the caller's own company, whatever their role.
    let mut scoped = actor.clone();
    scoped.user.role = Role::User;
    let users = state
        .accounts
        .list_users(
            Some(&scoped),
            q.q.as_deref(),
            q.limit.unwrap_or(100),
            q.offset.unwrap_or(0),
        )
        .await?;
    Ok(axum::Json(users.into_iter().map(UserView::from).collect()))
}

/// Users the admin may manage.
#[utoipa::path(get, path = "/api/v1/users", tag = "users", security(("bearer" = [])), params(ListQuery),
    responses((status = 200, body = [UserView]), (status = 403, body = ErrorBody)))]
pub async fn list(
    State(state): State<AppState>,
    Auth(actor): Auth,
    Query(q): Query<ListQuery>,
) -> ApiResult<axum::Json<Vec<UserView>>> {
    require_admin(&actor)?;
    let users = state
        .accounts
        .list_users(
            Some(&actor),
            q.q.as_deref(),
            q.limit.unwrap_or(100),
            q.offset.unwrap_or(0),
        )
        .await?;
    Ok(axum::Json(users.into_iter().map(UserView::from).collect()))
}

/// Creates a user (admin: in their company; superadmin: anywhere, creating the company).
#[utoipa::path(post, path = "/api/v1/users", tag = "users", security(("bearer" = [])), request_body = CreateUser,
    responses((status = 201, body = UserView), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 409, body = ErrorBody)))]
pub async fn create(
    State(state): State<AppState>,
    Auth(actor): Auth,
    Json(req): Json<CreateUser>,
) -> ApiResult<(StatusCode, axum::Json<UserView>)> {
    require_admin(&actor)?;
    let login = Login::parse(&req.login).map_err(|e| ApiError::invalid("login", e.to_string()))?;
    let user = state
        .accounts
        .create_user(
            Some(&actor),
            NewAccount {
                login,
                password: Secret::new(req.password),
                display_name: req.display_name,
                company: req.company,
                role: req.role.unwrap_or(Role::User),
            },
        )
        .await?;
    Ok((StatusCode::CREATED, axum::Json(user.into())))
}

/// One user.
#[utoipa::path(get, path = "/api/v1/users/{id}", tag = "users", security(("bearer" = [])),
    responses((status = 200, body = UserView), (status = 404, body = ErrorBody)))]
pub async fn show(
    State(state): State<AppState>,
    Auth(actor): Auth,
    Path(id): Path<String>,
) -> ApiResult<axum::Json<UserView>> {
    let user = state
        .accounts
        .visible_user(Some(&actor), UserId(path_id(&id)?))
        .await?;
    Ok(axum::Json(user.into()))
}

/// Changes a user's display name or role.
#[utoipa::path(patch, path = "/api/v1/users/{id}", tag = "users", security(("bearer" = [])), request_body = UpdateUser,
    responses((status = 200, body = UserView), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn update(
    State(state): State<AppState>,
    Auth(actor): Auth,
    Path(id): Path<String>,
    Json(req): Json<UpdateUser>,
) -> ApiResult<axum::Json<UserView>> {
    let user = state
        .accounts
        .update_user(&actor, UserId(path_id(&id)?), req.display_name, req.role)
        .await?;
    Ok(axum::Json(user.into()))
}

/// Deletes a user.
#[utoipa::path(delete, path = "/api/v1/users/{id}", tag = "users", security(("bearer" = [])),
    responses((status = 204), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn remove(
    State(state): State<AppState>,
    Auth(actor): Auth,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    require_admin(&actor)?;
    state
        .accounts
        .delete_user(Some(&actor), UserId(path_id(&id)?))
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Sets a user's password (admin); all their sessions end.
#[utoipa::path(put, path = "/api/v1/users/{id}/password", tag = "users", security(("bearer" = [])),
    request_body = SetPassword,
    responses((status = 204), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn set_password(
    State(state): State<AppState>,
    Auth(actor): Auth,
    Path(id): Path<String>,
    Json(req): Json<SetPassword>,
) -> ApiResult<StatusCode> {
    require_admin(&actor)?;
    state
        .accounts
        .set_password(
            Some(&actor),
            UserId(path_id(&id)?),
            &Secret::new(req.password),
        )
        .await?;
    Ok(StatusCode::NO_CONTENT)
}
