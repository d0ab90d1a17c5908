//! The Iris web client (the TypeScript app in `web/`), embedded at compile time and served by an
//! axum router: `/` is the app (no-cache), `/assets/…` are content-hashed files cached for a
//! year, other root files (icons) are cached for a day. It does not build anything at run time
//! and has no SPA fallback: the app routes with the URL fragment (`/#/…`).
use axum::http::{header, HeaderValue, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use tower_http::compression::CompressionLayer;

/// One embedded file of the built app.
#[derive(Debug)]
pub struct Asset {
    /// URL path, e.g. `/assets/index-3f2a.js`.
    pub path: &'static str,
    pub mime: &'static str,
    pub body: &'static [u8],
}

/// Every file of the built app (written by build.rs).
pub static ASSETS: &[Asset] = include!(concat!(env!("OUT_DIR"), "/assets.rs"));

/// The app's Content-Security-Policy: only same-origin scripts, styles and connections (REST and
/// `wss:` XMPP), media from local capture (`blob:`/`mediastream:`), avatars as `data:` URLs.
pub const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; \
     img-src 'self' data: blob:; media-src 'self' blob: mediastream:; connect-src 'self'; \
     object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

/// Looks up an embedded file by URL path.
pub fn asset(path: &str) -> Option<&'static Asset> {
    ASSETS.iter().find(|a| a.path == path)
}

/// Routes for the app; merge into the HTTPS router (any state).
pub fn router<S: Clone + Send + Sync + 'static>() -> Router<S> {
    let mut router = Router::new()
        .route("/", get(index))
        .route("/index.html", get(index))
        .route("/assets/{*file}", get(serve));
    for a in ASSETS {
        if a.path != "/index.html" && !a.path.starts_with("/assets/") {
            router = router.route(a.path, get(serve));
        }
    }
    router.layer(CompressionLayer::new())
}

async fn index() -> Response {
    match asset("/index.html") {
        Some(a) => respond(a, "no-cache"),
        None => StatusCode::NOT_FOUND.into_response(),
    }
}

async fn serve(uri: Uri) -> Response {
    match asset(uri.path()) {
        Some(a) if a.path.starts_with("/assets/") => {
            respond(a, "public, max-age=31536000, immutable")
        }
        Some(a) => respond(a, "public, max-age=86400"),
        None => (StatusCode::NOT_FOUND, "no such file").into_response(),
    }
}

fn respond(a: &'static Asset, cache: &'static str) -> Response {
    let mut r = a.body.into_response();
    let h = r.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(a.mime));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
    if a.mime.starts_with("text/html") {
        h.insert(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(CSP),
        );
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;
    use axum::http::Request;
    use tower::ServiceExt;

    async fn get(path: &str, gzip: bool) -> Response {
        let mut req = Request::get(path);
        if gzip {
            req = req.header(header::ACCEPT_ENCODING, "gzip");
        }
        router::<()>()
            .oneshot(req.body(Body::empty()).expect("request"))
            .await
            .expect("response")
    }

    #[tokio::test]
    async fn root_is_the_app_uncached_with_a_csp() {
        let r = get("/", false).await;
        assert_eq!(r.status(), StatusCode::OK);
        assert_eq!(
            r.headers()[header::CONTENT_TYPE],
            "text/html; charset=utf-8"
        );
        assert_eq!(r.headers()[header::CACHE_CONTROL], "no-cache");
        assert_eq!(r.headers()[header::CONTENT_SECURITY_POLICY], CSP);
        let html = axum::body::to_bytes(r.into_body(), 1 << 20)
            .await
            .expect("body");
        let html = String::from_utf8_lossy(&html);
        assert!(
            html.contains("/assets/"),
            "index.html links its hashed assets: {html}"
        );
    }

    #[tokio::test]
    async fn hashed_assets_are_immutable_and_compressed() {
        let js = ASSETS
            .iter()
            .find(|a| a.path.starts_with("/assets/") && a.path.ends_with(".js"))
            .expect("a script in /assets");
        let r = get(js.path, true).await;
        assert_eq!(r.status(), StatusCode::OK);
        assert_eq!(
            r.headers()[header::CONTENT_TYPE],
            "text/javascript; charset=utf-8"
        );
        assert!(r.headers()[header::CACHE_CONTROL]
            .to_str()
            .is_ok_and(|v| v.contains("immutable")));
        assert_eq!(r.headers()[header::CONTENT_ENCODING], "gzip");
        assert_eq!(
            get("/assets/nope.js", false).await.status(),
            StatusCode::NOT_FOUND
        );
    }
}
