//! Cross-cutting layers: security headers, request timeout, request metrics.
use crate::ApiLimits;
use axum::body::Body;
use axum::extract::MatchedPath;
use axum::http::{header, HeaderName, HeaderValue, Request, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Router;
use tower_http::set_header::SetResponseHeaderLayer;

/// Wraps `router` in security headers, the request timeout and request metrics.
pub fn apply(router: Router, limits: &ApiLimits) -> Router {
    let hsts = if limits.hsts {
        "max-age=31536000; includeSubDomains"
    } else {
        "max-age=0"
    };
    let timeout = limits.request_timeout;
    router
        .layer(axum::middleware::from_fn(
            move |req: Request<Body>, next: Next| async move {
                // WebSocket upgrades live long; only plain requests are timed.
                if req.headers().contains_key(header::UPGRADE) {
                    return next.run(req).await;
                }
                match tokio::time::timeout(timeout, next.run(req)).await {
                    Ok(r) => r,
                    Err(_) => crate::error::ApiError::new(
                        StatusCode::REQUEST_TIMEOUT,
                        "timeout",
                        "request timed out",
                    )
                    .into_response(),
                }
            },
        ))
        .layer(SetResponseHeaderLayer::overriding(
            HeaderName::from_static("cross-origin-opener-policy"),
            HeaderValue::from_static("same-origin"),
        ))
        .layer(SetResponseHeaderLayer::overriding(
            header::REFERRER_POLICY,
            HeaderValue::from_static("no-referrer"),
        ))
        .layer(SetResponseHeaderLayer::overriding(
            header::X_FRAME_OPTIONS,
            HeaderValue::from_static("DENY"),
        ))
        .layer(SetResponseHeaderLayer::if_not_present(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static("frame-ancestors 'none'"),
        ))
        .layer(SetResponseHeaderLayer::overriding(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ))
        .layer(SetResponseHeaderLayer::overriding(
            header::STRICT_TRANSPORT_SECURITY,
            HeaderValue::from_static(hsts),
        ))
        .layer(axum::middleware::from_fn(record_metrics))
}

async fn record_metrics(req: Request<Body>, next: Next) -> Response {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_else(|| "unmatched".to_owned());
    let method = req.method().as_str().to_owned();
    let started = std::time::Instant::now();
    let response = next.run(req).await;
    let status = response.status().as_u16().to_string();
    metrics::counter!("iris_http_requests_total", "method" => method.clone(), "route" => route.clone(), "status" => status)
        .increment(1);
    metrics::histogram!("iris_http_request_duration_seconds", "method" => method, "route" => route)
        .record(started.elapsed().as_secs_f64());
    response
}
