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
pub use kith_pdf::{FontsFound, use_fonts as use_leaflet_fonts};

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
        .get("/metrics", auth::Access::Public, metrics)
        .merge(fhir::routes())
        .nest_public("/oruk", oruk::routes(), oruk::PATHS)
}

/// The whole application's routes.
pub fn router(state: AppState) -> Router {
    let (routes, _) = routes().into_parts();
    routes
        .route("/oruk/", get(oruk::root).layer(axum::middleware::map_response(oruk::cors)))
        .route_layer(axum::middleware::from_fn_with_state(state.clone(), count_requests))
        .fallback(pages::not_found)
        .layer(axum::middleware::from_fn_with_state(state.clone(), auth::session::load_viewer))
        .layer(axum::extract::DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(state)
        .layer(axum::middleware::from_fn(compress_pages))
        .layer(axum::middleware::from_fn(same_origin_writes))
        .layer(axum::middleware::from_fn(refuse_control_characters))
        .layer(axum::middleware::from_fn(refuse_oversized_heads))
        .layer(axum::middleware::map_response(security_headers))
}

/// The longest address Kith reads. A long search (10 KB) still gets the search page,
/// which asks for fewer words.
pub const MAX_URI_BYTES: usize = 32 * 1024;
/// The most header bytes Kith reads (a browser sends 1–2 KB, cookies included).
pub const MAX_HEADER_BYTES: usize = 32 * 1024;

/// Refuses an address or headers too long to be a person's request, with a body saying
/// so. (Past about 400 KB the HTTP library refuses the request before it is read, with
/// a bare 414 or 431.)
async fn refuse_oversized_heads(request: Request, next: Next) -> Response {
    if request.uri().to_string().len() > MAX_URI_BYTES {
        return (
            StatusCode::URI_TOO_LONG,
            "This address is too long for Kith (more than 32 KB). If it is a search, search with fewer words.",
        )
            .into_response();
    }
    let header_bytes: usize = request.headers().iter().map(|(k, v)| k.as_str().len() + v.len() + 4).sum();
    if header_bytes > MAX_HEADER_BYTES {
        return (
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            "This request's headers are too large for Kith (more than 32 KB). Clearing this site's cookies may help.",
        )
            .into_response();
    }
    next.run(request).await
}

/// Refuses an API request whose query holds a control character (`%00`, …), which no
/// client has cause to send and no database should be asked about, in the API's own
/// form of error. Pages read their queries and forms with [`pages::form::Fields`], which
/// leaves such characters out.
async fn refuse_control_characters(request: Request, next: Next) -> Response {
    const MESSAGE: &str = "The query holds a control character (such as %00), which Kith does not accept";
    if request.uri().query().is_some_and(has_encoded_control) {
        let path = request.uri().path();
        if path == "/fhir" || path.starts_with("/fhir/") {
            return fhir::bad_request(MESSAGE);
        }
        if path == "/oruk" || path.starts_with("/oruk/") {
            return oruk::ApiError::BadRequest(MESSAGE.to_owned()).into_response();
        }
    }
    next.run(request).await
}

/// Whether percent-encoded `query` holds a control character other than a tab or a line
/// break, in ASCII (`%00`–`%1F`, `%7F`) or as UTF-8 (`%C2%80`–`%C2%9F`).
fn has_encoded_control(query: &str) -> bool {
    let bytes = query.as_bytes();
    let hex = |i: usize| -> Option<u8> {
        let pair = bytes.get(i..i + 2)?;
        u8::from_str_radix(std::str::from_utf8(pair).ok()?, 16).ok()
    };
    (0..bytes.len()).any(|i| {
        bytes[i] == b'%'
            && match hex(i + 1) {
                Some(0x09 | 0x0A | 0x0D) => false,
                Some(b) if b < 0x20 || b == 0x7F => true,
                Some(0xC2) => bytes.get(i + 3) == Some(&b'%') && hex(i + 4).is_some_and(|b| (0x80..0xA0).contains(&b)),
                _ => false,
            }
    })
}

/// Counts each request to a route, by the route's pattern (never the address itself,
/// which may hold a token), its method and status, with the time it took.
async fn count_requests(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let route = request
        .extensions()
        .get::<axum::extract::MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned());
    let method = request.method().as_str().to_owned();
    let started = std::time::Instant::now();
    let response = next.run(request).await;
    state.metrics.request(&route, &method, response.status().as_u16(), started.elapsed().as_secs_f64());
    response
}

/// `GET /metrics`: the instance's counters in the Prometheus text format.
async fn metrics(State(state): State<AppState>) -> Result<Response, Unavailable> {
    let text = state.metrics_text().await.map_err(Unavailable)?;
    Ok(([(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], text).into_response())
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
        Ok(seq) => {
            let index_seq = state.search.seq();
            let why_not = if let Some(damage) = state.search.damaged() {
                Some(format!("the search index is damaged ({damage}) and is being rebuilt"))
            } else if state.index_stuck(seq) && !state.has_caught_up() {
                Some("the search index is still being brought up to date with the directory".to_owned())
            } else if state.index_stuck(seq) {
                Some("the search index has not followed the directory's changes".to_owned())
            } else {
                None
            };
            let Some(reason) = why_not else {
                return Json(serde_json::json!({ "status": "ready", "change_feed_seq": seq, "index_seq": index_seq }))
                    .into_response();
            };
            tracing::warn!(feed = seq, index = index_seq, "not ready: {reason}");
            let body = serde_json::json!({
                "status": "unavailable",
                "reason": reason,
                "change_feed_seq": seq,
                "index_seq": index_seq,
                "behind": (seq - index_seq).max(0),
            });
            (StatusCode::SERVICE_UNAVAILABLE, Json(body)).into_response()
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

    /// Before its first catch-up (as just after a start) the instance answers at once:
    /// not ready, saying how far behind its index is, and searches answer from the index
    /// it has with a note that services may be missing.
    #[tokio::test]
    async fn before_the_index_has_caught_up_the_instance_answers_not_ready_and_searches_say_so() {
        let dir = tempfile::tempdir().unwrap();
        let clock = Arc::new(FixedClock::new(chrono_now()));
        let store =
            Arc::new(kith_store::sqlite::SqliteStore::open(&dir.path().join("kith.db"), clock.clone()).await.unwrap());
        for i in 0..3 {
            let s =
                kith_domain::hsds::Service::new(uuid::Uuid::from_u128(i + 1), "Walking group", ServiceStatus::Active);
            store.put_service(s).await.unwrap();
        }
        let search = Arc::new(kith_search::SearchIndex::in_memory().unwrap());
        let state = AppState::new(App::new(store.clone(), search).with_clock(clock.clone()));
        let app = router(state.clone());
        let ready = app.clone().oneshot(Request::get("/readyz").body(Body::empty()).unwrap()).await.unwrap();
        assert_eq!(ready.status(), StatusCode::SERVICE_UNAVAILABLE);
        let body: serde_json::Value =
            serde_json::from_slice(&ready.into_body().collect().await.unwrap().to_bytes()).unwrap();
        assert_eq!(body["index_seq"], 0);
        assert_eq!(body["behind"], 3);
        assert!(body["reason"].as_str().unwrap().contains("still being brought up to date"), "{body}");
        let page = app.clone().oneshot(Request::get("/?q=walking").body(Body::empty()).unwrap()).await.unwrap();
        assert_eq!(page.status(), StatusCode::OK);
        let html = String::from_utf8(page.into_body().collect().await.unwrap().to_bytes().to_vec()).unwrap();
        assert!(html.contains("Search is still being prepared"), "{html}");

        state.catch_up().await;
        let ready = app.clone().oneshot(Request::get("/readyz").body(Body::empty()).unwrap()).await.unwrap();
        assert_eq!(ready.status(), StatusCode::OK);
        let page = app.oneshot(Request::get("/?q=walking").body(Body::empty()).unwrap()).await.unwrap();
        let html = String::from_utf8(page.into_body().collect().await.unwrap().to_bytes().to_vec()).unwrap();
        assert!(!html.contains("Search is still being prepared") && html.contains("Walking group"), "{html}");
    }

    #[tokio::test]
    async fn an_address_or_headers_too_long_are_refused_with_a_message() {
        let (app, _dir) = app().await;
        let long = format!("/?q={}", "lonely+".repeat(5_000));
        let response = app.clone().oneshot(Request::get(long).body(Body::empty()).unwrap()).await.unwrap();
        assert_eq!(response.status(), StatusCode::URI_TOO_LONG);
        let body = response.into_body().collect().await.unwrap().to_bytes();
        assert!(String::from_utf8_lossy(&body).contains("search with fewer words"));
        let cookie = format!("kith={}", "x".repeat(40_000));
        let request = Request::get("/").header(header::COOKIE, cookie).body(Body::empty()).unwrap();
        let response = app.oneshot(request).await.unwrap();
        assert_eq!(response.status(), StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE);
        let body = response.into_body().collect().await.unwrap().to_bytes();
        assert!(String::from_utf8_lossy(&body).contains("Clearing this site's cookies"));
    }

    #[test]
    fn encoded_control_characters_are_found_but_tabs_and_line_breaks_are_not() {
        for bad in ["q=%00", "where=BS1%001AA", "q=%1f", "q=%7F", "q=a%C2%85b", "x=1&q=%0B"] {
            assert!(has_encoded_control(bad), "{bad}");
        }
        for good in ["q=lonely", "q=a%09b%0A%0Dc", "q=caf%C3%A9", "q=%C2%A3", "q=100%25", "q=%", "q=%2"] {
            assert!(!has_encoded_control(good), "{good}");
        }
    }

    /// `/metrics` counts requests by route pattern (never by address, which may hold a
    /// token), searches, job rounds, the index's lag and the outbox.
    #[tokio::test]
    async fn metrics_count_requests_by_route_and_say_how_far_behind_the_index_is() {
        let dir = tempfile::tempdir().unwrap();
        let clock = Arc::new(FixedClock::new(chrono_now()));
        let store = kith_store::sqlite::SqliteStore::open(&dir.path().join("kith.db"), clock.clone()).await.unwrap();
        store
            .put_service(kith_domain::hsds::Service::new(uuid_one(), "Lunch club", ServiceStatus::Active))
            .await
            .unwrap();
        let search = Arc::new(kith_search::SearchIndex::in_memory().unwrap());
        let state = AppState::new(App::new(Arc::new(store), search).with_clock(clock));
        state.catch_up().await;
        let app = router(state);
        for uri in [
            "/?q=walking",
            "/services/00000000-0000-0000-0000-000000000001",
            "/services/00000000-0000-0000-0000-000000000001",
        ] {
            app.clone().oneshot(Request::get(uri).body(Body::empty()).unwrap()).await.unwrap();
        }
        let response = app.oneshot(Request::get("/metrics").body(Body::empty()).unwrap()).await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        assert!(response.headers()[header::CONTENT_TYPE].to_str().unwrap().starts_with("text/plain; version=0.0.4"));
        let text = String::from_utf8(response.into_body().collect().await.unwrap().to_bytes().to_vec()).unwrap();
        assert!(
            text.contains("kith_http_requests_total{route=\"/services/{id}\",method=\"GET\",status=\"200\"} 2"),
            "{text}"
        );
        assert!(text.contains("kith_http_requests_total{route=\"/\",method=\"GET\",status=\"200\"} 1"), "{text}");
        assert!(!text.contains("00000000-0000"), "no address is a label");
        assert!(text.contains("kith_search_duration_seconds_count 1"), "{text}");
        assert!(text.contains("kith_job_runs_total{job=\"follow_feed\",outcome=\"ok\"}"), "{text}");
        assert!(text.contains("kith_index_lag_changes 0") && text.contains("kith_ready 1"), "{text}");
        assert!(text.contains("kith_outbox_messages{state=\"pending\"} 0"), "{text}");
    }

    #[tokio::test]
    async fn an_unknown_path_is_404() {
        let (app, _dir) = app().await;
        let response = app.oneshot(Request::get("/nowhere").body(Body::empty()).unwrap()).await.unwrap();
        assert_eq!(response.status(), StatusCode::NOT_FOUND);
    }
}
