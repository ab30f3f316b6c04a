//! The demo storefront page and the embeddable widget. Both are compiled into
//! the binary so the service serves them wherever it runs.

use axum::{Router, http::header, response::IntoResponse, routing::get};

const INDEX_HTML: &str = include_str!("../../web-widget/index.html");
const WIDGET_JS: &str = include_str!("../../web-widget/widget.js");

pub fn router<S: Clone + Send + Sync + 'static>() -> Router<S> {
    Router::new().route("/", get(index)).route("/widget.js", get(widget))
}

async fn index() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "text/html; charset=utf-8")], INDEX_HTML)
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
