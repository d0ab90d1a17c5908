//! Bubbles (group chats): the caller's bubbles, create, rename, delete, members and roles.
//! The same bubbles are the XMPP rooms at `conference.<domain>`.
use super::path_id;
use crate::error::{ApiResult, ErrorBody};
use crate::extract::{Auth, Json};
use crate::views::{BubbleMemberView, BubbleView, CreateBubble, NewBubbleMember, UpdateBubble};
use crate::AppState;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use iris_model::UserId;
use iris_services::{BubbleRole, BubbleUpdate};

/// The bubbles the caller belongs to.
#[utoipa::path(get, path = "/api/v1/bubbles", tag = "bubbles", security(("bearer" = [])),
    responses((status = 200, body = [BubbleView])))]
pub async fn list(
    State(state): State<AppState>,
    Auth(actor): Auth,
) -> ApiResult<axum::Json<Vec<BubbleView>>> {
    let list = state.bubbles.list(&actor).await?;
    Ok(axum::Json(list.into_iter().map(BubbleView::from).collect()))
}

/// Creates a bubble owned by the caller; initial members get an invitation.
#[utoipa::path(post, path = "/api/v1/bubbles", tag = "bubbles", security(("bearer" = [])),
    request_body = CreateBubble,
    responses((status = 201, body = BubbleView), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn create(
    State(state): State<AppState>,
    Auth(actor): Auth,
    Json(req): Json<CreateBubble>,
) -> ApiResult<(StatusCode, axum::Json<BubbleView>)> {
    let members: Vec<(UserId, BubbleRole)> = req
        .members
        .iter()
        .map(|m| (UserId(m.user_id), m.role.unwrap_or(BubbleRole::Member)))
        .collect();
    let bubble = state
        .bubbles
        .create(&actor, &req.name, &req.description, &members)
        .await?;
    Ok((StatusCode::CREATED, axum::Json(bubble.into())))
}

/// One bubble.
#[utoipa::path(get, path = "/api/v1/bubbles/{id}", tag = "bubbles", security(("bearer" = [])),
    responses((status = 200, body = BubbleView), (status = 404, body = ErrorBody)))]
pub async fn show(
    State(state): State<AppState>,
    Auth(actor): Auth,
    Path(id): Path<String>,
) -> ApiResult<axum::Json<BubbleView>> {
    Ok(axum::Json(state.bubbles.get(&actor, &id).await?.into()))
}

/// Renames a bubble or changes its description (owner or company admin).
#[utoipa::path(patch, path = "/api/v1/bubbles/{id}", tag = "bubbles", security(("bearer" = [])),
    request_body = UpdateBubble,
    responses((status = 200, body = BubbleView), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn update(
    State(state): State<AppState>,
    Auth(actor): Auth,
    Path(id): Path<String>,
    Json(req): Json<UpdateBubble>,
) -> ApiResult<axum::Json<BubbleView>> {
    let up = BubbleUpdate {
        name: req.name,
        description: req.description,
    };
    Ok(axum::Json(
        state.bubbles.update(&actor, &id, &up).await?.into(),
    ))
}

/// Deletes a bubble and its history (owner or company admin); XMPP occupants see the room destroyed.
#[utoipa::path(delete, path = "/api/v1/bubbles/{id}", tag = "bubbles", security(("bearer" = [])),
    responses((status = 204), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn remove(
    State(state): State<AppState>,
    Auth(actor): Auth,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    state.bubbles.delete(&actor, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The members of a bubble and their roles.
#[utoipa::path(get, path = "/api/v1/bubbles/{id}/members", tag = "bubbles", security(("bearer" = [])),
    responses((status = 200, body = [BubbleMemberView]), (status = 404, body = ErrorBody)))]
pub async fn members(
    State(state): State<AppState>,
    Auth(actor): Auth,
    Path(id): Path<String>,
) -> ApiResult<axum::Json<Vec<BubbleMemberView>>> {
    let list = state.bubbles.members(&actor, &id).await?;
    Ok(axum::Json(
        list.into_iter().map(BubbleMemberView::from).collect(),
    ))
}

/// Adds a member (who gets an invitation) or changes a member's role (moderators add
/// members and moderators; only owners grant ownership).
#[utoipa::path(post, path = "/api/v1/bubbles/{id}/members", tag = "bubbles", security(("bearer" = [])),
    request_body = NewBubbleMember,
    responses((status = 200, body = BubbleMemberView), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn add_member(
    State(state): State<AppState>,
    Auth(actor): Auth,
    Path(id): Path<String>,
    Json(req): Json<NewBubbleMember>,
) -> ApiResult<axum::Json<BubbleMemberView>> {
    let role = req.role.unwrap_or(BubbleRole::Member);
    let m = state
        .bubbles
        .set_member(&actor, &id, UserId(req.user_id), role)
        .await?;
    Ok(axum::Json(m.into()))
}

/// Removes a member (anyone may remove themselves: leaving).
#[utoipa::path(delete, path = "/api/v1/bubbles/{id}/members/{user_id}", tag = "bubbles", security(("bearer" = [])),
    responses((status = 204), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn remove_member(
    State(state): State<AppState>,
    Auth(actor): Auth,
    Path((id, user_id)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    state
        .bubbles
        .remove_member(&actor, &id, UserId(path_id(&user_id)?))
        .await?;
    Ok(StatusCode::NO_CONTENT)
}
