//! The caller's contacts: invite, accept, decline, remove (the XMPP roster shows the same).
use super::path_id;
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::{Auth, Json};
use crate::views::{ContactView, InviteContact, RelabelContact};
use crate::AppState;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use iris_model::{Login, UserId};

/// The caller's contacts and pending invitations.
#[utoipa::path(get, path = "/api/v1/contacts", tag = "contacts", security(("bearer" = [])),
    responses((status = 200, body = [ContactView])))]
pub async fn list(
    State(state): State<AppState>,
    Auth(actor): Auth,
) -> ApiResult<axum::Json<Vec<ContactView>>> {
    let contacts = state.contacts.list(&actor).await?;
    Ok(axum::Json(
        contacts.into_iter().map(ContactView::from).collect(),
    ))
}

/// Invites a user by login (accepts at once if they had invited the caller).
#[utoipa::path(post, path = "/api/v1/contacts", tag = "contacts", security(("bearer" = [])),
    request_body = InviteContact,
    responses((status = 201, body = ContactView), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn invite(
    State(state): State<AppState>,
    Auth(actor): Auth,
    Json(req): Json<InviteContact>,
) -> ApiResult<(StatusCode, axum::Json<ContactView>)> {
    let login = Login::parse(&req.login).map_err(|e| ApiError::invalid("login", e.to_string()))?;
    let contact = state.contacts.invite(&actor, &login).await?;
    Ok((StatusCode::CREATED, axum::Json(contact.into())))
}

/// Accepts an invitation from `user_id`.
#[utoipa::path(post, path = "/api/v1/contacts/{user_id}/accept", tag = "contacts", security(("bearer" = [])),
    responses((status = 200, body = ContactView), (status = 404, body = ErrorBody)))]
pub async fn accept(
    State(state): State<AppState>,
    Auth(actor): Auth,
    Path(user_id): Path<String>,
) -> ApiResult<axum::Json<ContactView>> {
    let contact = state
        .contacts
        .accept(&actor, UserId(path_id(&user_id)?))
        .await?;
    Ok(axum::Json(contact.into()))
}

/// Declines an invitation from `user_id` (or withdraws one sent to them).
#[utoipa::path(post, path = "/api/v1/contacts/{user_id}/decline", tag = "contacts", security(("bearer" = [])),
    responses((status = 204), (status = 404, body = ErrorBody)))]
pub async fn decline(
    State(state): State<AppState>,
    Auth(actor): Auth,
    Path(user_id): Path<String>,
) -> ApiResult<StatusCode> {
    state
        .contacts
        .decline(&actor, UserId(path_id(&user_id)?))
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Sets the caller's own name and roster groups for a contact (or a pending invitation);
/// the XMPP sessions of the caller get a roster push. The other user sees no change.
#[utoipa::path(patch, path = "/api/v1/contacts/{user_id}", tag = "contacts", security(("bearer" = [])),
    request_body = RelabelContact,
    responses((status = 200, body = ContactView), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn relabel(
    State(state): State<AppState>,
    Auth(actor): Auth,
    Path(user_id): Path<String>,
    Json(req): Json<RelabelContact>,
) -> ApiResult<axum::Json<ContactView>> {
    let other = UserId(path_id(&user_id)?);
    let current = state
        .contacts
        .list(&actor)
        .await?
        .into_iter()
        .find(|c| c.user_id == other)
        .ok_or(iris_services::Error::NotFound("contact"))?;
    let name = req.name.or(current.name);
    let groups = req.groups.unwrap_or(current.groups);
    let contact = state
        .contacts
        .relabel(&actor, other, name.as_deref(), &groups)
        .await?;
    Ok(axum::Json(contact.into()))
}

/// Removes a contact in both directions.
#[utoipa::path(delete, path = "/api/v1/contacts/{user_id}", tag = "contacts", security(("bearer" = [])),
    responses((status = 204), (status = 404, body = ErrorBody)))]
pub async fn remove(
    State(state): State<AppState>,
    Auth(actor): Auth,
    Path(user_id): Path<String>,
) -> ApiResult<StatusCode> {
    state
        .contacts
        .remove(&actor, UserId(path_id(&user_id)?))
        .await?;
    Ok(StatusCode::NO_CONTENT)
}
