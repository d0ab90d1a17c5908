//! Companies (tenants): superadmins manage them; others see their own.
use super::path_id;
use crate::error::{ApiResult, ErrorBody};
use crate::extract::{Auth, Json};
use crate::views::{CompanyView, CreateCompany};
use crate::AppState;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use iris_model::CompanyId;

/// Companies visible to the caller.
#[utoipa::path(get, path = "/api/v1/companies", tag = "companies", security(("bearer" = [])),
    responses((status = 200, body = [CompanyView])))]
pub async fn list(
    State(state): State<AppState>,
    Auth(actor): Auth,
) -> ApiResult<axum::Json<Vec<CompanyView>>> {
    let companies = state.accounts.list_companies(&actor).await?;
    Ok(axum::Json(
        companies.into_iter().map(CompanyView::from).collect(),
    ))
}

/// Creates a company (superadmin).
#[utoipa::path(post, path = "/api/v1/companies", tag = "companies", security(("bearer" = [])),
    request_body = CreateCompany,
    responses((status = 201, body = CompanyView), (status = 403, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn create(
    State(state): State<AppState>,
    Auth(actor): Auth,
    Json(req): Json<CreateCompany>,
) -> ApiResult<(StatusCode, axum::Json<CompanyView>)> {
    let company = state.accounts.create_company(&actor, &req.name).await?;
    Ok((StatusCode::CREATED, axum::Json(company.into())))
}

/// Deletes a company and all its users (superadmin).
#[utoipa::path(delete, path = "/api/v1/companies/{id}", tag = "companies", security(("bearer" = [])),
    responses((status = 204), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn remove(
    State(state): State<AppState>,
    Auth(actor): Auth,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    state
        .accounts
        .delete_company(&actor, CompanyId(path_id(&id)?))
        .await?;
    Ok(StatusCode::NO_CONTENT)
}
