//! Kith's HTTP server: a status page, health checks and the Open Referral UK API
//! (`/oruk`). The web app, Kith's own JSON API and the FHIR API arrive with their issues.
#![deny(clippy::unwrap_used, clippy::expect_used)]

use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use kith_store::Store;
use serde::Serialize;
use std::sync::Arc;

pub mod openapi;
pub mod oruk;

#[derive(Debug, Clone)]
pub struct AppState {
    pub store: Arc<dyn Store>,
    pub search: Arc<kith_search::SearchIndex>,
    /// One catch-up at a time; others wait for it rather than repeat it.
    sync: Arc<tokio::sync::Mutex<()>>,
}

impl AppState {
    pub fn new(store: Arc<dyn Store>, search: Arc<kith_search::SearchIndex>) -> AppState {
        AppState { store, search, sync: Arc::new(tokio::sync::Mutex::new(())) }
    }

    /// Brings the search index up to the store's change feed. A failure is logged and
    /// the search answers from what the index has.
    pub async fn catch_up(&self) {
        let _turn = self.sync.lock().await;
        self.apply_feed().await;
    }

    /// For a search request: catches up unless another catch-up is already running, in
    /// which case the search does not queue behind it but answers from what the index
    /// has, at most a moment old.
    pub async fn catch_up_if_idle(&self) {
        let Ok(_turn) = self.sync.try_lock() else { return };
        self.apply_feed().await;
    }

    async fn apply_feed(&self) {
        if let Err(e) = kith_search::sync::catch_up(&*self.store, &self.search).await {
            tracing::warn!(error = %e, "search index could not catch up; answering from what it has");
        }
    }
}

/// The whole application's routes.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/", get(home))
        .route("/healthz", get(health))
        .route("/oruk/", get(oruk::root).layer(axum::middleware::map_response(oruk::cors)))
        .nest("/oruk", oruk::routes())
        .with_state(state)
        .layer(axum::middleware::map_response(security_headers))
}

/// Headers every response carries. Pages load nothing from elsewhere.
async fn security_headers(mut response: Response) -> Response {
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("default-src 'self'; frame-ancestors 'none'; base-uri 'self'; form-action 'self'"),
    );
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(header::REFERRER_POLICY, HeaderValue::from_static("same-origin"));
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    response
}

/// A failure to read the store, shown without internal detail.
#[derive(Debug)]
pub struct Unavailable(pub kith_store::StoreError);

impl IntoResponse for Unavailable {
    fn into_response(self) -> Response {
        tracing::error!(error = %self.0, "store unavailable");
        (StatusCode::SERVICE_UNAVAILABLE, "Kith cannot reach its database just now. Please try again in a minute.")
            .into_response()
    }
}

#[derive(Debug, Serialize)]
struct Health {
    status: &'static str,
    engine: kith_store::Engine,
    services: u64,
    organizations: u64,
    change_feed_seq: i64,
}

async fn health(State(state): State<AppState>) -> Result<Json<Health>, Unavailable> {
    let counts = state.store.counts().await.map_err(Unavailable)?;
    let seq = state.store.last_seq().await.map_err(Unavailable)?;
    Ok(Json(Health {
        status: "ok",
        engine: state.store.engine(),
        services: counts.services,
        organizations: counts.organizations,
        change_feed_seq: seq,
    }))
}

async fn home(State(state): State<AppState>) -> Result<Html<String>, Unavailable> {
    let counts = state.store.counts().await.map_err(Unavailable)?;
    let body = if counts.services == 0 {
        "<p>The directory is empty. Load the demo directory with <code>kith demo</code>, or import \
         an Open Referral feed with <code>kith import FILE</code>.</p>"
            .to_owned()
    } else {
        format!(
            "<p>The directory holds <strong>{}</strong> services from <strong>{}</strong> organisations \
             at <strong>{}</strong> places, described by <strong>{}</strong> taxonomy terms.</p>",
            counts.services, counts.organizations, counts.locations, counts.taxonomy_terms
        )
    };
    Ok(Html(format!(
        "<!doctype html>\n<html lang=\"en-GB\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>Kith</title>\n</head>\n<body>\n<main>\n<h1>Kith</h1>\n\
         <p>Kith links general practices with the community and voluntary groups around them.</p>\n\
         {body}\n</main>\n</body>\n</html>\n"
    )))
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;
    use axum::http::Request;
    use http_body_util::BodyExt;
    use kith_domain::{FixedClock, ServiceStatus};
    use tower::ServiceExt;

    async fn app() -> (Router, tempfile::TempDir) {
        let dir = tempfile::tempdir().unwrap();
        let clock = Arc::new(FixedClock::new(chrono_now()));
        let store = kith_store::sqlite::SqliteStore::open(&dir.path().join("kith.db"), clock).await.unwrap();
        let service = kith_domain::hsds::Service::new(uuid_one(), "Lunch club", ServiceStatus::Active);
        store.put_service(service).await.unwrap();
        let search = Arc::new(kith_search::SearchIndex::in_memory().unwrap());
        (router(AppState::new(Arc::new(store), search)), dir)
    }

    fn chrono_now() -> chrono::DateTime<chrono::Utc> {
        chrono::DateTime::from_timestamp(1_780_000_000, 0).unwrap()
    }

    fn uuid_one() -> uuid::Uuid {
        uuid::Uuid::from_u128(1)
    }

    #[tokio::test]
    async fn health_reports_the_engine_and_counts() {
        let (app, _dir) = app().await;
        let response = app.oneshot(Request::get("/healthz").body(Body::empty()).unwrap()).await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        let body = response.into_body().collect().await.unwrap().to_bytes();
        let json: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(json["engine"], "sqlite");
        assert_eq!(json["services"], 1);
        assert_eq!(json["change_feed_seq"], 1);
    }

    #[tokio::test]
    async fn pages_carry_security_headers() {
        let (app, _dir) = app().await;
        let response = app.oneshot(Request::get("/").body(Body::empty()).unwrap()).await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        let headers = response.headers();
        assert!(headers[header::CONTENT_SECURITY_POLICY].to_str().unwrap().contains("default-src 'self'"));
        assert_eq!(headers[header::X_CONTENT_TYPE_OPTIONS], "nosniff");
        let body = response.into_body().collect().await.unwrap().to_bytes();
        let html = String::from_utf8(body.to_vec()).unwrap();
        assert!(html.contains("<html lang=\"en-GB\">") && html.contains("<strong>1</strong> services"));
    }

    #[tokio::test]
    async fn an_unknown_path_is_404() {
        let (app, _dir) = app().await;
        let response = app.oneshot(Request::get("/nowhere").body(Body::empty()).unwrap()).await.unwrap();
        assert_eq!(response.status(), StatusCode::NOT_FOUND);
    }
}
