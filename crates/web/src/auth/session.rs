//! Who is asking: the session cookie, resolved once per request into a [`Viewer`].
//!
//! The cookie holds a random token; the store holds only its digest. Sessions end after
//! 30 idle minutes or 12 hours, on sign-out, or everywhere at once. A new session (and
//! token) is issued at every step up in sign-in, so a token planted before sign-in is
//! worth nothing after it.

use crate::AppState;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::middleware::Next;
use axum::response::Response;
use kith_app::accounts::{Actor, LiveSession};
use kith_domain::account::{LinkPurpose, Permission, SessionRecord, SessionStage, UserRecord};
use std::net::SocketAddr;
use std::sync::Arc;
use uuid::Uuid;

/// `__Host-` makes the browser insist on Secure, Path=/ and no Domain, so no other site
/// or subdomain can set or read it.
pub const SESSION_COOKIE: &str = "__Host-kith_session";

/// The person behind a request.
#[derive(Debug, Clone, Default)]
pub enum Viewer {
    #[default]
    Anonymous,
    /// The password was right; a second factor is still to come.
    Pending(Arc<Current>),
    SignedIn(Arc<Current>),
}

#[derive(Debug)]
pub struct Current {
    pub session: SessionRecord,
    pub user: UserRecord,
    /// The person's name, opened from its sealed form, for the page header.
    pub name: String,
}

impl Viewer {
    /// The signed-in user with full (not link-limited) access.
    pub fn member(&self) -> Option<&Current> {
        match self {
            Viewer::SignedIn(c) if c.session.purpose.is_none() => Some(c),
            _ => None,
        }
    }

    /// Any session, full or partway or link-limited.
    pub fn current(&self) -> Option<&Current> {
        match self {
            Viewer::Pending(c) | Viewer::SignedIn(c) => Some(c),
            Viewer::Anonymous => None,
        }
    }

    /// The signed-in user, for one referral: a full session, or a magic-link session for
    /// that referral.
    pub fn for_referral(&self, referral: Uuid) -> Option<&Current> {
        match self {
            Viewer::SignedIn(c) if c.session.purpose.is_none() => Some(c),
            Viewer::SignedIn(c) if c.session.purpose == Some((LinkPurpose::AnswerReferral, referral)) => Some(c),
            _ => None,
        }
    }

    /// Whether this session may set up two-step sign-in: one that a password began (a
    /// sign-in waiting for its second factor) or a full session. A link session keeps its
    /// limit: enrolling from it would begin a full session without a password.
    pub fn may_enrol(&self) -> bool {
        match self {
            Viewer::Pending(c) => c.session.purpose.is_none(),
            Viewer::SignedIn(c) => c.session.purpose.is_none(),
            Viewer::Anonymous => false,
        }
    }

    /// The purpose a magic-link session is limited to.
    pub fn purpose(&self) -> Option<(LinkPurpose, Uuid)> {
        match self {
            Viewer::SignedIn(c) => c.session.purpose,
            _ => None,
        }
    }

    pub fn allows(&self, permission: Permission) -> bool {
        self.member().is_some_and(|c| c.user.grants.iter().any(|g| g.role.allows(permission)))
    }

    pub fn actor(&self, ip: Option<String>) -> Actor {
        match self.current() {
            Some(c) => Actor::of(&c.user, ip),
            None => Actor::anonymous(ip),
        }
    }

    /// The name for the page header, when signed in.
    pub fn display_name(&self) -> Option<String> {
        match self {
            Viewer::SignedIn(c) => Some(c.name.clone()),
            _ => None,
        }
    }
}

tokio::task_local! {
    /// The viewer of the request being handled, for the page frame.
    static VIEWER: Viewer;
}

/// The viewer of the request this task is handling (anonymous outside a request).
pub fn current_viewer() -> Viewer {
    VIEWER.try_with(Clone::clone).unwrap_or_default()
}

/// The client's address: the connection's, or with `KITH_TRUST_PROXY`, the last address
/// the proxy added to `X-Forwarded-For`.
#[derive(Debug, Clone, Default)]
pub struct ClientIp(pub Option<String>);

pub fn cookie_token(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == SESSION_COOKIE)
        .map(|(_, value)| value.to_owned())
}

pub fn set_cookie(token: &str) -> HeaderValue {
    // The token is base64url, so always a valid header value.
    HeaderValue::from_str(&format!("{SESSION_COOKIE}={token}; Path=/; HttpOnly; Secure; SameSite=Lax"))
        .unwrap_or_else(|_| clear_cookie())
}

pub fn clear_cookie() -> HeaderValue {
    HeaderValue::from_static("__Host-kith_session=; Path=/; HttpOnly; Secure; SameSite=Lax; Max-Age=0")
}

fn client_ip(request: &Request, trust_proxy: bool) -> Option<String> {
    if trust_proxy
        && let Some(forwarded) = request.headers().get("x-forwarded-for").and_then(|v| v.to_str().ok())
        && let Some(last) = forwarded.rsplit(',').next().map(str::trim).filter(|s| !s.is_empty())
    {
        return Some(last.to_owned());
    }
    request.extensions().get::<ConnectInfo<SocketAddr>>().map(|ConnectInfo(addr)| addr.ip().to_string())
}

async fn resolve(state: &AppState, headers: &HeaderMap) -> (Viewer, bool) {
    let Some(token) = cookie_token(headers) else { return (Viewer::Anonymous, false) };
    let (session, user, name) = match state.accounts.session_for(&token).await {
        Ok(Some(LiveSession { session, user, name })) => (session, user, name),
        Ok(None) => return (Viewer::Anonymous, true),
        Err(e) => {
            tracing::warn!(error = %e, "session lookup failed; treating the request as anonymous");
            return (Viewer::Anonymous, false);
        }
    };
    // A role that needs two factors, granted since a password-only sign-in, asks for the
    // second factor before the session may use it: the session counts as partway through.
    let step_up = current_needs_step_up(&session, &user);
    let current = Arc::new(Current { session, user, name });
    match current.session.stage {
        SessionStage::Complete if !step_up => (Viewer::SignedIn(current), false),
        SessionStage::Complete | SessionStage::SecondFactor => (Viewer::Pending(current), false),
    }
}

/// Whether a full session began without a second factor that its account's roles now
/// need. Link sessions are limited to their purpose and are never stepped up.
fn current_needs_step_up(session: &SessionRecord, user: &UserRecord) -> bool {
    session.stage == SessionStage::Complete
        && session.purpose.is_none()
        && !session.second_factor
        && user.requires_two_factor()
}

/// Works out the viewer and client address, and makes them available to handlers (as
/// request extensions) and to the page frame (as a task-local).
pub async fn load_viewer(State(state): State<AppState>, mut request: Request, next: Next) -> Response {
    let (viewer, stale_cookie) = resolve(&state, request.headers()).await;
    let ip = ClientIp(client_ip(&request, state.trust_proxy));
    request.extensions_mut().insert(viewer.clone());
    request.extensions_mut().insert(ip);
    request.extensions_mut().insert(state.accounts.clone());
    let mut response = VIEWER.scope(viewer, next.run(request)).await;
    if stale_cookie && !response.headers().contains_key(header::SET_COOKIE) {
        response.headers_mut().append(header::SET_COOKIE, clear_cookie());
    }
    response
}
