//! The web app: server-rendered pages in the NHS design system, for a receptionist or GP
//! with a patient in front of them and for residents on any phone.
//!
//! Every page and form works without JavaScript; `kith.js` only smooths things (adding
//! to the shortlist without a reload, the print button). Pages load nothing from
//! elsewhere, and the stylesheet and script are embedded in the binary.

/// Gives form pages `error_for(field)`, which `field_error.html` calls to show an error
/// beside its field. Declared before the page modules so that they can use it.
macro_rules! form_errors {
    ($($page:ty),+ $(,)?) => {$(
        impl $page {
            fn error_for(&self, field: &str) -> Option<&$crate::pages::search::FieldError> {
                self.errors.iter().find(|e| e.field == field)
            }
        }
    )+};
}

mod account;
mod admin;
mod assets;
mod caseload;
mod curation;
mod duplicates;
pub use assets::accepts_gzip;
mod form;
pub use form::query_string;
mod link;
mod oidc;
mod referral;
mod report;
mod search;
mod service;
pub mod shortlist;
mod signin;
mod view;
mod widget;

use crate::auth::{Access, Routes};
use askama::Template;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use kith_domain::account::Permission;

/// Whether the viewer refers people: practice staff who see patient data.
pub(crate) fn may_refer() -> bool {
    crate::auth::session::current_viewer().member().is_some_and(|c| c.user.practices().next().is_some())
}

/// Marks the cards whose services take referrals through Kith.
pub(crate) fn mark_referrals<'a>(
    cards: impl IntoIterator<Item = (&'a mut view::Card, Option<uuid::Uuid>)>,
    referring: &[uuid::Uuid],
) {
    for (card, organisation) in cards {
        card.takes_referrals = organisation.is_some_and(|o| referring.binary_search(&o).is_ok());
    }
}

/// Whether `path` is a path on this site and nothing else: it starts with one `/`, and
/// holds no backslash and no control character (a browser drops a tab or newline from a
/// URL, so `/<tab>/evil.example` would leave the site, and a header cannot hold them).
pub fn is_local_path(path: &str) -> bool {
    path.starts_with('/')
        && !path.starts_with("//")
        && !path.chars().any(|c| c.is_control() || c == '\\')
        && path.len() <= 500
}

/// Every page, with who may use it.
pub fn routes() -> Routes {
    use Access::{Enrol, Listing, Pending, Permission as Needs, Public, Session, SignedIn};
    Routes::new()
        .get("/", Public, search::page)
        .get("/services/{id}", Public, service::page)
        .get("/services/{id}/report", Public, report::page)
        .post("/services/{id}/report", Public, report::submit)
        .get("/shortlist", Public, shortlist::page)
        .post("/shortlist", Public, shortlist::change)
        .get("/shortlist/print", Public, shortlist::print)
        .get("/shortlist/leaflet.pdf", Public, shortlist::leaflet)
        .get("/shortlist/send", Public, shortlist::send_page)
        .post("/shortlist/send", Public, shortlist::send)
        .get("/l/{code}", Public, shortlist::shared)
        .get("/widget", Public, widget::page)
        .get("/widget.js", Public, widget::script)
        .get("/assets/{*path}", Public, assets::serve)
        .get("/signin", Public, signin::page)
        .post("/signin", Public, signin::submit)
        .get("/signin/oidc", Public, oidc::begin)
        .get("/signin/oidc/callback", Public, oidc::callback)
        .get("/oidc/jwks.json", Public, oidc::jwks)
        .get("/signin/code", Pending, signin::code_page)
        .post("/signin/code", Pending, signin::code_submit)
        .get("/signin/two-factor", Enrol, signin::two_factor_page_handler)
        .post("/signin/two-factor", Enrol, signin::two_factor_submit)
        .post("/signout", Session, signin::sign_out)
        .post("/signout/everywhere", SignedIn, signin::sign_out_everywhere)
        .get("/account", Session, account::page)
        .get("/home", SignedIn, account::home)
        .get("/services/{id}/link", Public, link::request_page)
        .post("/services/{id}/link", Public, link::request_link)
        .get("/link/{token}", Public, link::page)
        .post("/link/{token}", Public, link::use_link)
        .get("/services/{id}/update", Listing, link::update_page)
        .post("/services/{id}/verify", Listing, link::verify)
        .get("/refer/{id}", Needs(Permission::PatientData), referral::refer_page)
        .post("/refer/{id}", Needs(Permission::PatientData), referral::refer_submit)
        .get("/inbox", Needs(Permission::OwnListing), referral::inbox)
        .get("/referrals/{id}", Access::Referral, referral::page)
        .get("/referrals/{id}/sent", Needs(Permission::PatientData), referral::sent)
        .post("/referrals/{id}/status", Access::Referral, referral::change)
        .post("/referrals/{id}/outcome", Access::Referral, referral::outcome)
        .get("/referrals/{id}/link", Public, link::referral_link_page)
        .post("/referrals/{id}/link", Public, link::request_referral_link)
        .post("/referrals/{id}/reroute", Needs(Permission::PatientData), referral::reroute)
        .get("/follow-ups", Needs(Permission::PatientData), caseload::follow_ups)
        .get("/reports/links", Needs(Permission::Reports), caseload::links)
        .get("/curation/feeds", Needs(Permission::Curate), curation::feeds)
        .get("/curation/duplicates", Needs(Permission::Curate), duplicates::page)
        .post("/curation/duplicates/{id}", Needs(Permission::Curate), duplicates::decide)
        .get("/admin/audit", Needs(Permission::Audit), admin::page)
        .get("/admin/audit.csv", Needs(Permission::Audit), admin::csv)
}

/// What the page frame needs: the title and how many services are on the shortlist.
#[derive(Debug, Clone)]
pub struct Layout {
    pub title: String,
    pub shortlist: usize,
    /// The signed-in person's name.
    pub signed_in: Option<String>,
    /// Where a signed-in person's work is, by their roles: (path, label).
    pub nav: Vec<(&'static str, &'static str)>,
    /// A shared desk: staff who refer get "Next patient", which clears the shortlist.
    pub desk: bool,
    pub stylesheet: &'static str,
    pub script: &'static str,
}

impl Layout {
    pub fn new(title: impl Into<String>, headers: &HeaderMap) -> Layout {
        let viewer = crate::auth::session::current_viewer();
        Layout {
            title: title.into(),
            shortlist: shortlist::Shortlist::from_headers(headers).len(),
            signed_in: viewer.display_name(),
            nav: navigation(&viewer),
            desk: may_refer(),
            stylesheet: kith_assets::STYLESHEET,
            script: kith_assets::SCRIPT,
        }
    }
}

/// The header's links for a signed-in person: their home, then each kind of work their
/// roles give them. Nothing for a link session, which may do one thing only.
fn navigation(viewer: &crate::auth::Viewer) -> Vec<(&'static str, &'static str)> {
    if viewer.member().is_none() {
        return Vec::new();
    }
    let mut nav = vec![("/home", "Home")];
    if may_refer() {
        nav.push(("/follow-ups", "Follow-ups"));
    }
    if viewer.allows(Permission::OwnListing) {
        nav.push(("/inbox", "Referrals"));
    }
    if viewer.allows(Permission::Reports) {
        nav.push(("/reports/links", "Reports"));
    }
    if viewer.allows(Permission::Curate) {
        nav.push(("/curation/feeds", "Feeds"));
        nav.push(("/curation/duplicates", "Duplicates"));
    }
    if viewer.allows(Permission::Audit) {
        nav.push(("/admin/audit", "Audit log"));
    }
    nav
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
    Forbidden(String),
    /// A link that worked once and no longer does.
    Gone(String),
    /// A referral that was declined, cancelled or re-routed, seen by its group.
    Ended(String),
    /// Too many of something in a short time: the message says how long to wait.
    TooMany(String),
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

impl From<kith_app::directory::FindError> for PageError {
    fn from(e: kith_app::directory::FindError) -> Self {
        match e {
            kith_app::directory::FindError::Store(e) => e.into(),
            kith_app::directory::FindError::Search(e) => e.into(),
        }
    }
}

impl From<kith_app::locate::LocateError> for PageError {
    fn from(e: kith_app::locate::LocateError) -> Self {
        match e {
            kith_app::locate::LocateError::Store(e) => e.into(),
            other => PageError::BadRequest(other.to_string()),
        }
    }
}

impl From<kith_app::AccountsError> for PageError {
    fn from(e: kith_app::AccountsError) -> Self {
        use kith_app::AccountsError;
        match e {
            AccountsError::Invalid(m) => PageError::BadRequest(m),
            e @ AccountsError::Locked(_) => PageError::TooMany(e.to_string()),
            AccountsError::Store(e) => e.into(),
            e @ AccountsError::Keys(_) => {
                tracing::error!(error = %e, "sealed account details could not be opened");
                PageError::Unavailable("Kith cannot show this just now. Please try again in a minute.".into())
            }
        }
    }
}

impl From<kith_app::referrals::ReferralError> for PageError {
    fn from(e: kith_app::referrals::ReferralError) -> Self {
        use kith_app::referrals::ReferralError;
        match e {
            ReferralError::Forbidden(m) => PageError::Forbidden(m),
            ReferralError::NotFound(what) => PageError::NotFound(format!("There is no such {what}.")),
            ReferralError::Invalid(m) | ReferralError::Conflict(m) => PageError::BadRequest(m),
            ReferralError::Ended(m) => PageError::Ended(m),
            ReferralError::Fields(problems) => {
                PageError::BadRequest(problems.into_iter().map(|p| p.message).collect::<Vec<_>>().join(". "))
            }
            ReferralError::Store(e) => e.into(),
            e @ ReferralError::Keys(_) => {
                tracing::error!(error = %e, "sealed referral details could not be opened");
                PageError::Unavailable("Kith cannot show this just now.".into())
            }
        }
    }
}

/// A page, or the page that says why not. Either way a response, so a handler's
/// refusals are `?` (with [`OrPage::or_page`]).
/// The listing a page is about, by the id in its address, or the page that says there is
/// none.
pub(crate) async fn listed_service(
    state: &crate::AppState,
    id: &str,
    headers: &HeaderMap,
) -> Result<kith_domain::hsds::Service, Response> {
    match uuid::Uuid::parse_str(id) {
        Ok(id) => listed_service_by_id(state, id, headers).await,
        Err(_) => Err(no_service(headers)),
    }
}

/// As [`listed_service`], for an id already read.
pub(crate) async fn listed_service_by_id(
    state: &crate::AppState,
    id: uuid::Uuid,
    headers: &HeaderMap,
) -> Result<kith_domain::hsds::Service, Response> {
    state.service(id).await.or_page(headers)?.ok_or_else(|| no_service(headers))
}

fn no_service(headers: &HeaderMap) -> Response {
    PageError::NotFound("There is no service at this address.".into()).into_page(headers)
}

pub type PageResult = Result<Response, Response>;

/// Turns an error from the application into the page that explains it, for `?`.
pub trait OrPage<T> {
    // The error is the response itself, returned once per request: boxing it saves nothing.
    #[allow(clippy::result_large_err)]
    fn or_page(self, headers: &HeaderMap) -> Result<T, Response>;
}

impl<T, E> OrPage<T> for Result<T, E>
where
    PageError: From<E>,
{
    fn or_page(self, headers: &HeaderMap) -> Result<T, Response> {
        self.map_err(|e| PageError::from(e).into_page(headers))
    }
}

impl PageError {
    pub fn into_page(self, headers: &HeaderMap) -> Response {
        let (status, heading, message) = match self {
            PageError::NotFound(m) => (StatusCode::NOT_FOUND, "Page not found", m),
            PageError::BadRequest(m) => (StatusCode::BAD_REQUEST, "There is a problem with this link", m),
            PageError::Forbidden(m) => (StatusCode::FORBIDDEN, "You do not have access to this page", m),
            PageError::Gone(m) => (StatusCode::GONE, "This link no longer works", m),
            PageError::Ended(m) => (StatusCode::GONE, "This referral has ended", m),
            PageError::TooMany(m) => (StatusCode::TOO_MANY_REQUESTS, "Please wait a few minutes", m),
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
