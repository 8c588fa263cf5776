//! Kith's HTTP server: the web app (`/`), health checks (`/healthz`, `/readyz`) and the
//! Open Referral UK API (`/oruk`). Kith's own JSON API and the FHIR API arrive with their
//! issues.
#![deny(clippy::unwrap_used, clippy::expect_used)]

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::Serialize;

pub mod auth;
pub mod fhir;
pub mod openapi;
pub mod oruk;
pub mod pages;
pub mod serve;

pub use kith_app::{App, INDEX_MAY_LAG_SECONDS};

/// What every handler is given: the application, and how to read the requests it is
/// reached by.
#[derive(Debug, Clone)]
pub struct AppState {
    app: App,
    /// Whether to take the client's address from `X-Forwarded-For` (behind a proxy).
    pub trust_proxy: bool,
}

impl AppState {
    /// Serves `app` to clients that connect directly.
    pub fn new(app: App) -> AppState {
        AppState { app, trust_proxy: false }
    }

    /// The same, trusting `X-Forwarded-For` from a reverse proxy for client addresses.
    pub fn with_trusted_proxy(mut self, trust: bool) -> AppState {
        self.trust_proxy = trust;
        self
    }

    /// The application these requests are served by.
    pub fn app(&self) -> &App {
        &self.app
    }
}

impl std::ops::Deref for AppState {
    type Target = App;

    fn deref(&self) -> &App {
        &self.app
    }
}

/// The largest request body Kith reads. Forms are a few kilobytes.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// Every route of the application with its access rule.
pub fn routes() -> auth::Routes {
    pages::routes()
        .get("/healthz", auth::Access::Public, health)
        .get("/readyz", auth::Access::Public, ready)
        .merge(fhir::routes())
        .nest_public("/oruk", oruk::routes(), oruk::PATHS)
}

/// The whole application's routes.
pub fn router(state: AppState) -> Router {
    let (routes, _) = routes().into_parts();
    routes
        .route("/oruk/", get(oruk::root).layer(axum::middleware::map_response(oruk::cors)))
        .fallback(pages::not_found)
        .layer(axum::middleware::from_fn_with_state(state.clone(), auth::session::load_viewer))
        .layer(axum::extract::DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(state)
        .layer(axum::middleware::from_fn(compress_pages))
        .layer(axum::middleware::from_fn(same_origin_writes))
        .layer(axum::middleware::map_response(security_headers))
}

/// The policy for every page: nothing from elsewhere, no inline script or style, no framing.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; img-src 'self'; script-src 'self'; style-src 'self'; \
     frame-ancestors 'none'; base-uri 'self'; form-action 'self'; object-src 'none'";

/// Headers every response carries. A handler may set a looser frame policy (the widget).
async fn security_headers(mut response: Response) -> Response {
    let headers = response.headers_mut();
    let framable = headers
        .get(header::CONTENT_SECURITY_POLICY)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("frame-ancestors *"));
    headers.entry(header::CONTENT_SECURITY_POLICY).or_insert(HeaderValue::from_static(CONTENT_SECURITY_POLICY));
    if !framable {
        headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    }
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(header::STRICT_TRANSPORT_SECURITY, HeaderValue::from_static("max-age=31536000"));
    headers.insert(header::REFERRER_POLICY, HeaderValue::from_static("same-origin"));
    headers.insert(
        axum::http::HeaderName::from_static("cross-origin-opener-policy"),
        HeaderValue::from_static("same-origin"),
    );
    headers.insert(
        axum::http::HeaderName::from_static("permissions-policy"),
        HeaderValue::from_static("camera=(), microphone=(), geolocation=(), interest-cohort=()"),
    );
    response
}

/// Refuses a form posted from another site: the browser says where a request came from
/// in `Sec-Fetch-Site` and `Origin`.
async fn same_origin_writes(request: Request, next: Next) -> Response {
    if matches!(*request.method(), Method::GET | Method::HEAD | Method::OPTIONS) {
        return next.run(request).await;
    }
    let headers = request.headers();
    let site = headers.get("sec-fetch-site").and_then(|v| v.to_str().ok());
    let cross_site = matches!(site, Some(s) if s != "same-origin" && s != "none");
    let host = headers.get(header::HOST).and_then(|v| v.to_str().ok());
    let foreign_origin = match (headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()), host) {
        (Some("null"), _) => true,
        (Some(origin), Some(host)) => origin.split_once("://").is_none_or(|(_, rest)| rest != host),
        (Some(_), None) => true,
        (None, _) => false,
    };
    if cross_site || foreign_origin {
        return (
            StatusCode::FORBIDDEN,
            "This form was sent from another website, so Kith did not act on it. Go back to Kith and try again.",
        )
            .into_response();
    }
    next.run(request).await
}

/// Gzips HTML pages when the browser accepts it (assets are stored gzipped already).
async fn compress_pages(request: Request, next: Next) -> Response {
    let gzip = pages::accepts_gzip(request.headers());
    let response = next.run(request).await;
    let is_html = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/html"));
    if !gzip || !is_html || response.headers().contains_key(header::CONTENT_ENCODING) {
        return response;
    }
    let (mut parts, body) = response.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, 16 * 1024 * 1024).await else {
        return (StatusCode::INTERNAL_SERVER_ERROR, "The page could not be sent.").into_response();
    };
    let mut encoder = flate2::write::GzEncoder::new(Vec::with_capacity(bytes.len() / 4), flate2::Compression::fast());
    let compressed = std::io::Write::write_all(&mut encoder, &bytes).and_then(|()| encoder.finish());
    match compressed {
        Ok(gz) => {
            parts.headers.insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
            parts.headers.remove(header::CONTENT_LENGTH);
            parts.headers.append(header::VARY, HeaderValue::from_static("accept-encoding"));
            Response::from_parts(parts, Body::from(gz))
        }
        Err(_) => Response::from_parts(parts, Body::from(bytes)),
    }
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
    let status = state.status().await.map_err(Unavailable)?;
    Ok(Json(Health {
        status: "ok",
        engine: status.engine,
        services: status.counts.services,
        organizations: status.counts.organizations,
        change_feed_seq: status.change_feed_seq,
    }))
}

/// Ready to serve: the database answers and the search index follows it. A load
/// balancer sends traffic only to ready instances.
async fn ready(State(state): State<AppState>) -> Response {
    match state.change_feed_seq().await {
        Ok(seq) if state.index_stuck(seq) => {
            tracing::warn!(
                feed = seq,
                index = state.search.seq(),
                "not ready: the search index is not following the directory"
            );
            let body = serde_json::json!({
                "status": "unavailable",
                "reason": "the search index has not followed the directory's changes",
                "change_feed_seq": seq,
                "index_seq": state.search.seq(),
            });
            (StatusCode::SERVICE_UNAVAILABLE, Json(body)).into_response()
        }
        Ok(seq) => {
            Json(serde_json::json!({ "status": "ready", "change_feed_seq": seq, "index_seq": state.search.seq() }))
                .into_response()
        }
        Err(e) => {
            tracing::warn!(error = %e, "not ready: the database does not answer");
            (StatusCode::SERVICE_UNAVAILABLE, Json(serde_json::json!({ "status": "unavailable" }))).into_response()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;
    use axum::http::Request;
    use http_body_util::BodyExt;
    use kith_domain::{FixedClock, ServiceStatus};
    use kith_store::Store;
    use std::sync::Arc;
    use tower::ServiceExt;

    async fn app() -> (Router, tempfile::TempDir) {
        let dir = tempfile::tempdir().unwrap();
        let clock = Arc::new(FixedClock::new(chrono_now()));
        let store = kith_store::sqlite::SqliteStore::open(&dir.path().join("kith.db"), clock).await.unwrap();
        let service = kith_domain::hsds::Service::new(uuid_one(), "Lunch club", ServiceStatus::Active);
        store.put_service(service).await.unwrap();
        let search = Arc::new(kith_search::SearchIndex::in_memory().unwrap());
        (router(AppState::new(App::new(Arc::new(store), search))), dir)
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
        assert!(html.contains("<html lang=\"en-GB\">") && html.contains("Find a local service"));
    }

    /// An index that stops following the feed makes the instance not ready, rather than
    /// answering searches from a stale index for ever (security.md, finding 4).
    #[tokio::test]
    async fn readiness_fails_while_the_index_cannot_follow_the_feed() {
        let dir = tempfile::tempdir().unwrap();
        let clock = Arc::new(FixedClock::new(chrono_now()));
        let store =
            Arc::new(kith_store::sqlite::SqliteStore::open(&dir.path().join("kith.db"), clock.clone()).await.unwrap());
        let search = Arc::new(kith_search::SearchIndex::in_memory().unwrap());
        let state = AppState::new(App::new(store.clone(), search).with_clock(clock.clone()));
        state.catch_up().await;
        let ready = |app: Router| async move {
            app.oneshot(Request::get("/readyz").body(Body::empty()).unwrap()).await.unwrap().status()
        };
        let app = router(state.clone());
        assert_eq!(ready(app.clone()).await, StatusCode::OK);
        // The directory changes and the index does not follow (as when its writer fails).
        let service = kith_domain::hsds::Service::new(uuid::Uuid::from_u128(2), "Walking group", ServiceStatus::Active);
        store.put_service(service).await.unwrap();
        assert_eq!(ready(app.clone()).await, StatusCode::OK, "a moment behind is fine");
        clock.advance(chrono::Duration::seconds(INDEX_MAY_LAG_SECONDS + 1));
        assert_eq!(ready(app.clone()).await, StatusCode::SERVICE_UNAVAILABLE);
        state.catch_up().await;
        assert_eq!(ready(app).await, StatusCode::OK, "ready again once it has caught up");
    }

    #[tokio::test]
    async fn an_unknown_path_is_404() {
        let (app, _dir) = app().await;
        let response = app.oneshot(Request::get("/nowhere").body(Body::empty()).unwrap()).await.unwrap();
        assert_eq!(response.status(), StatusCode::NOT_FOUND);
    }
}
