//! The REST API under `/api/v1` (JSON), health and metrics endpoints, and the OpenAPI
//! document. Handlers only translate between HTTP and the services; every service error
//! becomes an HTTP status in exactly one place (`error`).
#![forbid(unsafe_code)]

pub mod error;
pub mod extract;
pub mod middleware;
pub mod openapi;
pub mod routes;
pub mod views;

use axum::extract::DefaultBodyLimit;
use axum::Router;
use iris_services::{Accounts, Bubbles, Contacts};
use metrics_exporter_prometheus::PrometheusHandle;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// Limits applied to every API request.
#[derive(Debug, Clone)]
pub struct ApiLimits {
    /// Largest accepted request body, bytes.
    pub body_limit_bytes: usize,
    /// A request that takes longer is answered 408.
    pub request_timeout: Duration,
    /// Send Strict-Transport-Security.
    pub hsts: bool,
}

impl Default for ApiLimits {
    fn default() -> Self {
        ApiLimits {
            body_limit_bytes: 1024 * 1024,
            request_timeout: Duration::from_secs(30),
            hsts: true,
        }
    }
}

/// Hands out ICE servers (STUN/TURN URLs with fresh time-limited credentials) for a client;
/// implemented by the relay role, so the API does not depend on it.
pub trait IceServerSource: Send + Sync {
    /// RTCIceServer objects for `user` connecting from `client_ip`; `None` while not ready.
    fn ice_servers(&self, client_ip: std::net::IpAddr, user: &str) -> Option<serde_json::Value>;
}

/// What the handlers share.
#[derive(Clone)]
pub struct AppState {
    pub accounts: Accounts,
    pub contacts: Contacts,
    pub bubbles: Bubbles,
    pub metrics: Option<PrometheusHandle>,
    /// ICE servers for calls; `None` when no relay is configured.
    pub ice: Option<Arc<dyn IceServerSource>>,
    /// Set while the server drains: `/readyz` says 503 so load balancers move away.
    pub draining: Arc<AtomicBool>,
}

impl AppState {
    pub fn is_draining(&self) -> bool {
        self.draining.load(Ordering::Relaxed)
    }
}

/// The API router with its state applied; other roles merge their own routes beside it
/// (`extra`), which get the same limits and headers.
pub fn router(state: AppState, limits: &ApiLimits, extra: Router) -> Router {
    let api = routes::routes().with_state(state.clone());
    let router = Router::new()
        .merge(api)
        .merge(extra)
        .fallback(routes::not_found)
        .layer(DefaultBodyLimit::max(limits.body_limit_bytes));
    middleware::apply(router, limits)
}
