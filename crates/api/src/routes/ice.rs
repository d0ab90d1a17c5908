//! ICE servers for WebRTC: the two nearest relays with fresh time-limited TURN credentials.
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::Auth;
use crate::AppState;
use axum::extract::{ConnectInfo, State};
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use std::net::SocketAddr;

/// A JSON array of RTCIceServer objects (`urls`, `username`, `credential`) to pass as
/// `iceServers` to `RTCPeerConnection`. Credentials expire; fetch anew for each call.
#[utoipa::path(get, path = "/api/v1/ice-servers", tag = "calls", security(("bearer" = [])),
    responses((status = 200, description = "RTCIceServer[]"), (status = 401, body = ErrorBody),
        (status = 503, body = ErrorBody)))]
pub async fn ice_servers(
    State(state): State<AppState>,
    Auth(actor): Auth,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
) -> ApiResult<impl IntoResponse> {
    let unavailable = || {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            "no relay is configured",
        )
    };
    let source = state.ice.as_ref().ok_or_else(unavailable)?;
    let servers = source
        .ice_servers(peer.ip(), &actor.user.id.to_string())
        .ok_or_else(unavailable)?;
    Ok(([(header::CACHE_CONTROL, "no-store")], axum::Json(servers)))
}
