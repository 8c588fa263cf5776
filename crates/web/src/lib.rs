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
use kith_domain::{Clock, SystemClock};
use kith_store::Store;
use serde::Serialize;
use std::sync::Arc;

pub mod auth;
pub mod demo_caseload;
pub mod fhir;
pub mod notify;
pub mod openapi;
pub mod oruk;
pub mod pages;
pub mod referrals;
pub mod rendered;
pub mod serve;

#[derive(Debug, Clone)]
pub struct AppState {
    pub store: Arc<dyn Store>,
    pub search: Arc<kith_search::SearchIndex>,
    /// Where "now" comes from: opening times, "last verified", follow-ups.
    pub clock: Arc<dyn Clock>,
    /// Accounts, sign-in and the audit log.
    pub accounts: Arc<auth::Accounts>,
    /// Whether to take the client's address from `X-Forwarded-For` (behind a proxy).
    pub trust_proxy: bool,
    /// The address people reach Kith at, for links in emails.
    pub public_url: String,
    /// Sign-in with an OpenID Connect provider, when one is configured.
    pub oidc: Option<Arc<auth::oidc::Oidc>>,
    /// Days from a referral to its follow-up.
    pub follow_up_days: i64,
    /// Services' JSON as search answers last wrote it, forgotten as the index moves on.
    pub rendered: Arc<rendered::RenderedServices>,
    /// One catch-up at a time; others wait for it rather than repeat it.
    sync: Arc<tokio::sync::Mutex<()>>,
    /// When the search index last caught up with the change feed without an error.
    caught_up_at: Arc<std::sync::Mutex<Option<chrono::DateTime<chrono::Utc>>>>,
}

/// How long the search index may fail to follow the change feed before the instance says
/// it is not ready, so a load balancer stops sending it searches it would answer wrongly.
pub const INDEX_MAY_LAG_SECONDS: i64 = 60;

impl AppState {
    /// State with the system clock and a keyring of its own, which lasts only as long as
    /// the process: give the real one with [`with_keyring`](Self::with_keyring).
    pub fn new(store: Arc<dyn Store>, search: Arc<kith_search::SearchIndex>) -> AppState {
        let clock: Arc<dyn Clock> = Arc::new(SystemClock);
        let keyring = Arc::new(kith_auth::Keyring::generate());
        AppState {
            accounts: Arc::new(auth::Accounts::new(store.clone(), keyring, clock.clone())),
            store,
            search,
            clock,
            trust_proxy: false,
            oidc: None,
            public_url: "http://127.0.0.1:8080".into(),
            follow_up_days: referrals::FOLLOW_UP_DAYS,
            rendered: Arc::new(rendered::RenderedServices::default()),
            sync: Arc::new(tokio::sync::Mutex::new(())),
            caught_up_at: Arc::default(),
        }
    }

    /// The same, with time from `clock` (tests move it).
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> AppState {
        self.clock = clock;
        self.accounts = Arc::new(auth::Accounts::new(
            self.store.clone(),
            Arc::new(self.accounts.keyring().clone()),
            self.clock.clone(),
        ));
        self
    }

    /// The same, sealing personal fields with `keyring`.
    pub fn with_keyring(mut self, keyring: kith_auth::Keyring) -> AppState {
        self.accounts = Arc::new(auth::Accounts::new(self.store.clone(), Arc::new(keyring), self.clock.clone()));
        self
    }

    /// The same, with links in emails pointing at `url`.
    pub fn with_public_url(mut self, url: &str) -> AppState {
        self.public_url = url.trim_end_matches('/').to_owned();
        self
    }

    /// The outbox: messages queued now, sent by [`notify::Outbox::deliver_due`].
    pub fn outbox(&self) -> notify::Outbox {
        notify::Outbox::new(self.store.clone(), self.accounts.clone())
    }

    /// Patients and referrals, with their rules.
    pub fn referrals(&self) -> referrals::Referrals {
        referrals::Referrals::new(self.store.clone(), self.accounts.clone(), &self.public_url)
            .with_follow_up_days(self.follow_up_days)
    }

    /// The same, with follow-ups due `days` after a referral.
    pub fn with_follow_up_days(mut self, days: i64) -> AppState {
        self.follow_up_days = days;
        self
    }

    /// The same, keeping at most `bytes` of services' JSON between search answers.
    pub fn with_search_cache_bytes(mut self, bytes: usize) -> AppState {
        self.rendered = Arc::new(rendered::RenderedServices::with_budget(bytes));
        self
    }

    /// The same, offering sign-in with an OpenID Connect provider.
    pub fn with_oidc(mut self, oidc: auth::oidc::Oidc) -> AppState {
        self.oidc = Some(Arc::new(oidc));
        self
    }

    /// The same, trusting `X-Forwarded-For` from a reverse proxy for client addresses.
    pub fn with_trusted_proxy(mut self, trust: bool) -> AppState {
        self.trust_proxy = trust;
        self
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
        use kith_search::sync::Applied;
        let mut told = |applied: Applied<'_>| match applied {
            Applied::Rebuilt => self.rendered.forget_all(),
            Applied::Services(ids) => self.rendered.forget(ids),
        };
        match kith_search::sync::catch_up_telling(&*self.store, &self.search, &mut told).await {
            Ok(_) => {
                *self.caught_up_at.lock().unwrap_or_else(|p| p.into_inner()) = Some(self.clock.now());
            }
            Err(e) => tracing::warn!(error = %e, "search index could not catch up; answering from what it has"),
        }
    }

    /// Whether the search index is behind the change feed and has not caught up for
    /// longer than [`INDEX_MAY_LAG_SECONDS`].
    fn index_stuck(&self, feed_seq: i64) -> bool {
        let last = *self.caught_up_at.lock().unwrap_or_else(|p| p.into_inner());
        let behind = self.search.seq() < feed_seq;
        behind && last.is_none_or(|at| (self.clock.now() - at).num_seconds() > INDEX_MAY_LAG_SECONDS)
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

/// Ready to serve: the database answers and the search index follows it. A load
/// balancer sends traffic only to ready instances.
async fn ready(State(state): State<AppState>) -> Response {
    match state.store.last_seq().await {
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
        let state = AppState::new(store.clone(), search).with_clock(clock.clone());
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
