//! The demo storefront page, the embeddable widget and the operator console. Both are compiled into
//! the binary so the service serves them wherever it runs.

use axum::{Router, http::header, response::IntoResponse, routing::get};

const INDEX_HTML: &str = include_str!("../../web-widget/index.html");
const WIDGET_JS: &str = include_str!("../../web-widget/widget.js");
const ADMIN_HTML: &str = include_str!("../../web-admin/index.html");

pub fn router<S: Clone + Send + Sync + 'static>() -> Router<S> {
    Router::new().route("/", get(index)).route("/widget.js", get(widget)).route("/admin", get(admin))
}

async fn index() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "text/html; charset=utf-8")], INDEX_HTML)
}

/// The operator console. The page itself holds nothing secret: it asks for
/// the admin token and sends it with each API call.
async fn admin() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::X_FRAME_OPTIONS, "DENY"),
            (header::CACHE_CONTROL, "no-store"),
        ],
        ADMIN_HTML,
    )
}

async fn widget() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
            // Stores embed this on every page: let browsers cache it briefly.
            (header::CACHE_CONTROL, "public, max-age=300"),
            (header::ACCESS_CONTROL_ALLOW_ORIGIN, "*"),
        ],
        WIDGET_JS,
    )
}
