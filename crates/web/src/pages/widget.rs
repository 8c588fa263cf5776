//! A search box that a practice or community website can embed: `/widget` in an
//! iframe, or `<script src="…/widget.js" async></script>`, which adds the iframe where
//! the script tag is. Searches open Kith in a new tab.

use super::{Layout, render};
use askama::Template;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

#[derive(Template)]
#[template(path = "widget.html")]
struct WidgetPage {
    layout: Layout,
}

/// Pages may frame the widget; nothing else may be framed.
const WIDGET_CSP: &str =
    "default-src 'self'; img-src 'self'; frame-ancestors *; base-uri 'self'; form-action 'self'; object-src 'none'";

pub async fn page(headers: HeaderMap) -> Response {
    let mut response =
        render(StatusCode::OK, &WidgetPage { layout: Layout::new("Find a local service – Kith", &headers) });
    response.headers_mut().insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(WIDGET_CSP));
    response
}

const SCRIPT: &str = r#"/* Kith search widget: adds a search box where this script tag is. */
(function () {
  var script = document.currentScript;
  if (!script) { return; }
  var frame = document.createElement('iframe');
  frame.src = new URL('/widget', script.src).href;
  frame.title = script.getAttribute('data-title') || 'Find a local service';
  frame.loading = 'lazy';
  frame.style.border = '0';
  frame.style.width = '100%';
  frame.style.maxWidth = '40rem';
  frame.style.height = script.getAttribute('data-height') || '22rem';
  script.parentNode.insertBefore(frame, script.nextSibling);
})();
"#;

pub async fn script() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=3600"),
            (header::ACCESS_CONTROL_ALLOW_ORIGIN, "*"),
        ],
        SCRIPT,
    )
        .into_response()
}
