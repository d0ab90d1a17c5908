//! HTTP side: the RFC 7395 WebSocket endpoint and XEP-0156 discovery documents.
use crate::hub::Hub;
use crate::session::{self, Conn};
use axum::extract::ws::WebSocketUpgrade;
use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;
use iris_xmpp::{ChannelBindings, Transport};
use std::sync::Arc;

/// Initial WebSocket read buffer per connection.
const WS_READ_BUF: usize = 1024;

/// The routes to merge into the HTTPS router.
pub(crate) fn router(hub: Arc<Hub>) -> Router {
    Router::new()
        .route("/xmpp-websocket", get(upgrade))
        .route("/.well-known/host-meta", get(host_meta_xml))
        .route("/.well-known/host-meta.json", get(host_meta_json))
        .with_state(hub)
}

async fn upgrade(State(hub): State<Arc<Hub>>, ws: WebSocketUpgrade) -> axum::response::Response {
    if *hub.shutdown.borrow() {
        return axum::http::StatusCode::SERVICE_UNAVAILABLE.into_response();
    }
    let cap = hub.config.max_stanza_bytes.saturating_add(1024);
    let tracker = hub.sessions.clone();
    // The read buffer is allocated (and zero-filled) up front per connection, 128 KiB by
    // default. Most stanzas are well under 1 KiB and it grows for a larger frame, so 1 KiB
    // keeps an idle session cheap (bench/xmpp: memory per idle session).
    ws.protocols(["xmpp"])
        .read_buffer_size(WS_READ_BUF)
        .max_message_size(cap)
        .max_frame_size(cap)
        .on_upgrade(move |socket| {
            tracker.track_future(session::run(
                hub,
                Conn::Ws(Box::new(socket)),
                Transport::WebSocket,
                ChannelBindings::default(),
            ))
        })
}

/// The WebSocket URL as the client reached us: the request's Host (name and port, so it is
/// right behind port forwarding and on non-443 ports), else the configured domain.
fn ws_url(hub: &Hub, headers: &axum::http::HeaderMap) -> String {
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .filter(|h| {
            !h.is_empty()
                && h.len() <= 255
                && h.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-.:[]".contains(&b))
        })
        .unwrap_or(&hub.domain);
    format!("wss://{host}/xmpp-websocket")
}

async fn host_meta_xml(
    State(hub): State<Arc<Hub>>,
    headers: axum::http::HeaderMap,
) -> impl IntoResponse {
    let body = format!(
        "<?xml version='1.0' encoding='utf-8'?>\n<XRD xmlns='http://docs.oasis-open.org/ns/xri/xrd-1.0'>\n  \
         <Link rel='urn:xmpp:alt-connections:websocket' href='{}'/>\n</XRD>\n",
        ws_url(&hub, &headers)
    );
    ([(header::CONTENT_TYPE, "application/xrd+xml")], body)
}

async fn host_meta_json(
    State(hub): State<Arc<Hub>>,
    headers: axum::http::HeaderMap,
) -> impl IntoResponse {
    axum::Json(serde_json::json!({
        "links": [{ "rel": "urn:xmpp:alt-connections:websocket", "href": ws_url(&hub, &headers) }]
    }))
}
