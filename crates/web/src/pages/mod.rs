//! The web app: server-rendered pages in the NHS design system, for a receptionist or GP
//! with a patient in front of them and for residents on any phone.
//!
//! Every page and form works without JavaScript; `kith.js` only smooths things (adding
//! to the shortlist without a reload, the print button). Pages load nothing from
//! elsewhere, and the stylesheet and script are embedded in the binary.

mod assets;
pub use assets::accepts_gzip;
mod form;
mod report;
mod search;
mod service;
pub mod shortlist;
mod view;
mod widget;

use crate::AppState;
use askama::Template;
use axum::Router;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/", get(search::page))
        .route("/services/{id}", get(service::page))
        .route("/services/{id}/report", get(report::page).post(report::submit))
        .route("/shortlist", get(shortlist::page).post(shortlist::change))
        .route("/shortlist/print", get(shortlist::print))
        .route("/shortlist/leaflet.pdf", get(shortlist::leaflet))
        .route("/widget", get(widget::page))
        .route("/widget.js", get(widget::script))
        .route("/assets/{*path}", get(assets::serve))
}

/// What the page frame needs: the title and how many services are on the shortlist.
#[derive(Debug, Clone)]
pub struct Layout {
    pub title: String,
    pub shortlist: usize,
    pub stylesheet: &'static str,
    pub script: &'static str,
}

impl Layout {
    pub fn new(title: impl Into<String>, headers: &HeaderMap) -> Layout {
        Layout {
            title: title.into(),
            shortlist: shortlist::Shortlist::from_headers(headers).len(),
            stylesheet: kith_assets::STYLESHEET,
            script: kith_assets::SCRIPT,
        }
    }
}

/// Renders a template as a page with the given status.
pub fn render(status: StatusCode, template: &impl Template) -> Response {
    match template.render() {
        Ok(html) => (status, [(header::CACHE_CONTROL, "no-store")], Html(html)).into_response(),
        Err(e) => {
            tracing::error!(error = %e, "a page failed to render");
            (StatusCode::INTERNAL_SERVER_ERROR, "This page could not be shown. Please try again.").into_response()
        }
    }
}

#[derive(Template)]
#[template(path = "error.html")]
struct ErrorPage {
    layout: Layout,
    heading: String,
    message: String,
}

/// Why a page could not be shown, as a page a person can act on.
#[derive(Debug)]
pub enum PageError {
    NotFound(String),
    BadRequest(String),
    Unavailable(String),
}

impl From<kith_store::StoreError> for PageError {
    fn from(e: kith_store::StoreError) -> Self {
        tracing::error!(error = %e, "store unavailable");
        PageError::Unavailable("Kith cannot reach its database just now. Please try again in a minute.".into())
    }
}

impl From<kith_search::SearchError> for PageError {
    fn from(e: kith_search::SearchError) -> Self {
        tracing::error!(error = %e, "search failed");
        PageError::Unavailable("Search is not working just now. Please try again in a minute.".into())
    }
}

impl PageError {
    pub fn into_page(self, headers: &HeaderMap) -> Response {
        let (status, heading, message) = match self {
            PageError::NotFound(m) => (StatusCode::NOT_FOUND, "Page not found", m),
            PageError::BadRequest(m) => (StatusCode::BAD_REQUEST, "There is a problem with this link", m),
            PageError::Unavailable(m) => (StatusCode::SERVICE_UNAVAILABLE, "Sorry, there is a problem with Kith", m),
        };
        let page = ErrorPage { layout: Layout::new(heading, headers), heading: heading.into(), message };
        render(status, &page)
    }
}

/// The page for a path nothing else answers.
pub async fn not_found(headers: HeaderMap) -> Response {
    PageError::NotFound(
        "If you typed the web address, check it is correct. You can search for a service instead.".into(),
    )
    .into_page(&headers)
}
