//! Who may use which route. Every route is added through [`Routes`] with an [`Access`]
//! rule, which guards it and is recorded, so the authorisation matrix test can walk every
//! route for every role (`tests/authorisation.rs`).

use super::session::{ClientIp, Viewer};
use crate::AppState;
use axum::Router;
use axum::extract::Request;
use axum::handler::Handler;
use axum::http::{Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{MethodRouter, get, post};
use kith_app::accounts::Accounts;
use kith_domain::account::{LinkPurpose, Permission};
use std::sync::Arc;

/// What a route needs of the person asking.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Anyone, signed in or not: the directory is public.
    Public,
    /// Someone partway through sign-in, or signed in (entering a code, signing out).
    Session,
    /// Partway through sign-in: the password was right, a code is still needed.
    Pending,
    /// Setting up two-step sign-in: partway through a password sign-in, or fully signed
    /// in. Never a link session, which would turn a one-time link into a full session.
    Enrol,
    /// Signed in, with any role.
    SignedIn,
    /// Signed in with a role that allows this. Handlers narrow it to the organisation.
    Permission(Permission),
    /// Curators, the group's own members, or a magic-link session for this listing. The
    /// handler checks which listing.
    Listing,
    /// Staff and groups who handle patient data, or a magic-link session for one referral.
    /// The handler checks which referral.
    Referral,
}

/// One route and its rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    pub method: Method,
    pub path: &'static str,
    pub access: Access,
}

/// A router under construction, with the rule of every route it holds.
#[derive(Debug)]
pub struct Routes {
    router: Router<AppState>,
    rules: Vec<Rule>,
}

impl Default for Routes {
    fn default() -> Self {
        Routes { router: Router::new(), rules: Vec::new() }
    }
}

impl Routes {
    pub fn new() -> Routes {
        Routes::default()
    }

    fn add(mut self, method: Method, path: &'static str, access: Access, route: MethodRouter<AppState>) -> Routes {
        let guarded = route
            .route_layer(axum::middleware::from_fn(move |request: Request, next: Next| guard(access, request, next)));
        self.router = self.router.route(path, guarded);
        self.rules.push(Rule { method, path, access });
        self
    }

    pub fn get<H: Handler<T, AppState>, T: 'static>(self, path: &'static str, access: Access, handler: H) -> Routes {
        self.add(Method::GET, path, access, get(handler))
    }

    pub fn post<H: Handler<T, AppState>, T: 'static>(self, path: &'static str, access: Access, handler: H) -> Routes {
        self.add(Method::POST, path, access, post(handler))
    }

    pub fn put<H: Handler<T, AppState>, T: 'static>(self, path: &'static str, access: Access, handler: H) -> Routes {
        self.add(Method::PUT, path, access, axum::routing::put(handler))
    }

    pub fn patch<H: Handler<T, AppState>, T: 'static>(self, path: &'static str, access: Access, handler: H) -> Routes {
        self.add(Method::PATCH, path, access, axum::routing::patch(handler))
    }

    /// Nests a public router (the ORUK API) whose GET routes are `paths`.
    pub fn nest_public(mut self, prefix: &'static str, router: Router<AppState>, paths: &[&'static str]) -> Routes {
        self.router = self.router.nest(prefix, router);
        self.rules.extend(paths.iter().map(|path| Rule { method: Method::GET, path, access: Access::Public }));
        self
    }

    pub fn merge(mut self, other: Routes) -> Routes {
        self.router = self.router.merge(other.router);
        self.rules.extend(other.rules);
        self
    }

    pub fn into_parts(self) -> (Router<AppState>, Vec<Rule>) {
        (self.router, self.rules)
    }
}

/// Whether the viewer meets the rule, before the handler's own check of which record.
pub fn permits(access: Access, viewer: &Viewer) -> bool {
    match access {
        Access::Public => true,
        Access::Session => viewer.current().is_some(),
        Access::Pending => matches!(viewer, Viewer::Pending(_)),
        Access::Enrol => viewer.may_enrol(),
        Access::SignedIn => viewer.member().is_some(),
        Access::Permission(p) => viewer.allows(p),
        Access::Listing => {
            viewer.allows(Permission::Curate)
                || viewer.allows(Permission::OwnListing)
                || matches!(viewer.purpose(), Some((LinkPurpose::UpdateListing, _)))
        }
        Access::Referral => {
            viewer.allows(Permission::PatientData) || matches!(viewer.purpose(), Some((LinkPurpose::AnswerReferral, _)))
        }
    }
}

/// Where someone partway through sign-in goes next: the code, or setting up the app if
/// the account has none yet.
pub fn second_step(current: &super::session::Current) -> &'static str {
    if current.user.totp_secret.is_none() { "/signin/two-factor" } else { "/signin/code" }
}

/// Whether the client wants a page (rather than JSON or a file).
fn wants_page(request: &Request) -> bool {
    let path = request.uri().path();
    let accept = request.headers().get(header::ACCEPT).and_then(|v| v.to_str().ok()).unwrap_or("");
    !path.ends_with(".csv")
        && !path.ends_with(".json")
        && !path.starts_with("/fhir/")
        && !accept.starts_with("application/json")
}

async fn guard(access: Access, request: Request, next: Next) -> Response {
    let viewer = request.extensions().get::<Viewer>().cloned().unwrap_or_default();
    if permits(access, &viewer) {
        return next.run(request).await;
    }
    // A signed-in person refused is worth knowing about (ASVS 7.2.2); an anonymous
    // visitor sent to sign in is not.
    if let (Some(current), Some(accounts)) = (viewer.current(), request.extensions().get::<Arc<Accounts>>()) {
        let ip = request.extensions().get::<ClientIp>().and_then(|ip| ip.0.clone());
        let what = format!("{} {}", request.method(), request.uri().path());
        let actor = kith_app::Actor::of(&current.user, ip);
        accounts.audit(&actor, "access_denied", "route", Some(what), &format!("{access:?}")).await;
    }
    let page = wants_page(&request);
    if request.uri().path().starts_with("/fhir/") {
        return match viewer {
            Viewer::SignedIn(_) => {
                crate::fhir::refusal(StatusCode::FORBIDDEN, "Your account does not have access to this")
            }
            _ => crate::fhir::refusal(StatusCode::UNAUTHORIZED, "Sign in to use the FHIR API"),
        };
    }
    match (&viewer, page) {
        (Viewer::Pending(c), true) => Redirect::to(second_step(c)).into_response(),
        (Viewer::Anonymous, true) => {
            let next = request.uri().path_and_query().map_or("/", |p| p.as_str());
            let target = if request.method() == Method::GET {
                format!("/signin?{}", crate::pages::query_string(&[("next", next.to_owned())]))
            } else {
                "/signin".to_owned()
            };
            Redirect::to(&target).into_response()
        }
        (Viewer::Anonymous, false) => (StatusCode::UNAUTHORIZED, "Sign in to Kith to use this.").into_response(),
        (_, true) => crate::pages::PageError::Forbidden(
            "Your account does not have access to this page. If you need it, ask your area administrator.".into(),
        )
        .into_page(request.headers()),
        (_, false) => (StatusCode::FORBIDDEN, "Your account does not have access to this.").into_response(),
    }
}
