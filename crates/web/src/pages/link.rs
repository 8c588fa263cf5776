//! Magic links, for community group members who only check their listing or answer a
//! referral: single use, 30 minutes, and the session they start can do that one thing.
//! Opening the link shows a button rather than signing in at once, so an email scanner
//! that follows links cannot use it up.

use super::{Layout, OrPage, PageError, PageResult, render};
use crate::AppState;
use crate::auth::session::{self, ClientIp, Viewer};
use askama::Template;
use axum::Extension;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use kith_app::accounts::SignInStep;
use kith_domain::account::{LinkPurpose, LinkUse, Permission, SessionStage};
use uuid::Uuid;

#[derive(Template)]
#[template(path = "link.html")]
struct LinkPage {
    layout: Layout,
    token: String,
    purpose: &'static str,
}

pub async fn page(Path(token): Path<String>, headers: HeaderMap) -> Response {
    if !kith_crypto::token::well_formed(&token) {
        return unknown_link(&headers);
    }
    let page = LinkPage {
        layout: Layout::new("Continue to Kith", &headers),
        token,
        purpose: "check your group's listing or answer a referral",
    };
    render(StatusCode::OK, &page)
}

fn unknown_link(headers: &HeaderMap) -> Response {
    PageError::NotFound(
        "This sign-in link is not one Kith recognises. Check you copied the whole link from the email, or ask for a new one."
            .into(),
    )
    .into_page(headers)
}

pub async fn use_link(
    State(state): State<AppState>,
    Extension(viewer): Extension<Viewer>,
    Extension(ClientIp(ip)): Extension<ClientIp>,
    Path(token): Path<String>,
    headers: HeaderMap,
) -> PageResult {
    let link = match state.accounts.use_magic_link(&token).await {
        Ok(LinkUse::Accepted(link)) => link,
        Ok(LinkUse::Expired) => {
            return Err(PageError::Gone(
                "This sign-in link has expired: links work for 30 minutes, or 10 for a referral. Ask for a new link and use it straight away."
                    .into(),
            )
            .into_page(&headers));
        }
        Ok(LinkUse::AlreadyUsed) => {
            return Err(PageError::Gone(
                "This sign-in link has already been used, and each link works only once. Ask for a new link.".into(),
            )
            .into_page(&headers));
        }
        Ok(LinkUse::Unknown) => return Err(unknown_link(&headers)),
        Err(e) => {
            tracing::error!(error = %e, "a magic link could not be checked");
            return Err(PageError::Unavailable(
                "Kith cannot sign you in just now. Please try again in a minute.".into(),
            )
            .into_page(&headers));
        }
    };
    let user = state.accounts.user(link.user_id).await.or_page(&headers)?;
    let Some(user) = user.filter(|u| !u.disabled) else { return Err(unknown_link(&headers)) };
    // A link session is limited to its purpose, and counts as having no second factor.
    let actor = kith_app::accounts::Actor::of(&user, ip);
    let step = SignInStep {
        stage: SessionStage::Complete,
        purpose: Some((link.purpose, link.target)),
        second_factor: false,
        how: "magic link",
    };
    let token = super::signin::begin_session(&state, &viewer, &user, step, &actor).await.map_err(|e| {
        tracing::error!(error = %e, "a magic-link session could not start");
        PageError::Unavailable("Kith cannot sign you in just now.".into()).into_page(&headers)
    })?;
    let to = match link.purpose {
        LinkPurpose::UpdateListing => format!("/services/{}/update", link.target),
        LinkPurpose::AnswerReferral => format!("/referrals/{}", link.target),
    };
    let mut response = Redirect::to(&to).into_response();
    response.headers_mut().append(header::SET_COOKIE, session::set_cookie(&token));
    Ok(response)
}

/// Whether the viewer may look after this listing: a curator, a member of the group
/// that runs it, or someone holding a link for it.
async fn may_update(state: &AppState, viewer: &Viewer, service: &kith_domain::hsds::Service) -> bool {
    if viewer.allows(Permission::Curate) {
        return true;
    }
    if viewer.purpose() == Some((LinkPurpose::UpdateListing, service.id)) {
        return true;
    }
    let Some(member) = viewer.member() else { return false };
    match state.runs_service(&member.user, service).await {
        Ok(runs) => runs,
        Err(e) => {
            tracing::error!(error = %e, "who runs a listing could not be read");
            false
        }
    }
}

#[derive(Template)]
#[template(path = "listing.html")]
struct ListingPage {
    layout: Layout,
    service_id: String,
    service_name: String,
    last_verified: String,
    verified: bool,
}

async fn listing(
    state: &AppState,
    viewer: &Viewer,
    id: &str,
    headers: &HeaderMap,
) -> Result<kith_domain::hsds::Service, Response> {
    let service = super::listed_service(state, id, headers).await?;
    if !may_update(state, viewer, &service).await {
        return Err(PageError::Forbidden(
            "You can check and update only your own group's listings. If this is your group's, ask a curator to add you to it."
                .into(),
        )
        .into_page(headers));
    }
    Ok(service)
}

fn listing_page(service: &kith_domain::hsds::Service, headers: &HeaderMap, verified: bool) -> Response {
    let last_verified = service
        .last_verified_at
        .map_or_else(|| "never".to_owned(), |at| kith_domain::opening::uk_local(at).format("%-d %B %Y").to_string());
    let page = ListingPage {
        layout: Layout::new(format!("Check the listing for {} – Kith", service.name), headers),
        service_id: service.id.to_string(),
        service_name: service.name.clone(),
        last_verified,
        verified,
    };
    render(StatusCode::OK, &page)
}

pub async fn update_page(
    State(state): State<AppState>,
    Extension(viewer): Extension<Viewer>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    match listing(&state, &viewer, &id, &headers).await {
        Ok(service) => listing_page(&service, &headers, false),
        Err(response) => response,
    }
}

pub async fn verify(
    State(state): State<AppState>,
    Extension(viewer): Extension<Viewer>,
    Extension(ClientIp(ip)): Extension<ClientIp>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    let service = match listing(&state, &viewer, &id, &headers).await {
        Ok(service) => service,
        Err(response) => return response,
    };
    let by = if viewer.allows(Permission::Curate) { "a Kith curator" } else { "the group" };
    match state.verify_listing(service.id, by, &viewer.actor(ip)).await {
        Ok(Some(updated)) => listing_page(&updated, &headers, true),
        Ok(None) => PageError::NotFound("The service has been removed.".into()).into_page(&headers),
        Err(e) => PageError::from(e).into_page(&headers),
    }
}

#[derive(Template)]
#[template(path = "link_request.html")]
struct LinkRequestPage {
    layout: Layout,
    /// Where the form posts.
    action: String,
    /// (address, words) of the back link.
    back: (String, String),
    heading: String,
    intro: &'static str,
    /// What the email lets them do, after "a link to".
    purpose: String,
    minutes: i64,
    email: String,
    sent: bool,
    errors: Vec<super::search::FieldError>,
}

impl LinkRequestPage {
    fn for_listing(service: &kith_domain::hsds::Service, headers: &HeaderMap) -> LinkRequestPage {
        LinkRequestPage {
            layout: Layout::new(format!("Check the listing for {} – Kith", service.name), headers),
            action: format!("/services/{}/link", service.id),
            back: (format!("/services/{}", service.id), format!("Back to {}", service.name)),
            heading: format!("Check the listing for {}", service.name),
            intro: "If you run this service, we can email you a link to confirm the listing is still right. Use the email address your group gave to Kith.",
            purpose: format!("check the listing for {}", service.name),
            minutes: LinkPurpose::UpdateListing.lifetime_minutes(),
            email: String::new(),
            sent: false,
            errors: vec![],
        }
    }

    fn for_referral(referral: Uuid, headers: &HeaderMap) -> LinkRequestPage {
        LinkRequestPage {
            layout: Layout::new("Open a referral – Kith", headers),
            action: format!("/referrals/{referral}/link"),
            back: ("/".into(), "Back to the directory".into()),
            heading: "Open a referral to your group".into(),
            intro: "A practice has referred someone to your group. We can email you a link that opens this referral once. Use the email address your group gave to Kith.",
            purpose: "open this referral".into(),
            minutes: LinkPurpose::AnswerReferral.lifetime_minutes(),
            email: String::new(),
            sent: false,
            errors: vec![],
        }
    }

    /// Checks the address and the rate limits, setting the error if they fail.
    async fn check(&mut self, state: &AppState, ip: Option<&str>, email: &str) -> Option<StatusCode> {
        self.email = email.to_owned();
        let message = if email.is_empty() || !email.contains('@') || email.chars().count() > 254 {
            Some((
                StatusCode::BAD_REQUEST,
                "Enter an email address in the correct format, like name@example.org".to_owned(),
            ))
        } else {
            let accounts = &state.accounts;
            let address_ok = match ip {
                Some(ip) => accounts.allow_link_request(&format!("ip:{ip}")).await.unwrap_or(false),
                None => true,
            };
            let allowed = address_ok && accounts.allow_link_request(email).await.unwrap_or(false);
            (!allowed).then(|| {
                (
                    StatusCode::TOO_MANY_REQUESTS,
                    format!(
                        "We have sent several links already. Wait {} minutes and try again.",
                        kith_app::accounts::WINDOW_MINUTES
                    ),
                )
            })
        };
        let (status, message) = message?;
        self.layout.title = format!("Error: {}", self.layout.title);
        self.errors.push(super::search::FieldError { field: "email", message, suggestions: vec![] });
        Some(status)
    }

    fn sent(mut self) -> Response {
        self.sent = true;
        self.layout.title = "Check your email – Kith".into();
        render(StatusCode::OK, &self)
    }
}

form_errors!(LinkRequestPage);

pub async fn request_page(State(state): State<AppState>, Path(id): Path<String>, headers: HeaderMap) -> Response {
    match super::listed_service(&state, &id, &headers).await {
        Ok(service) => render(StatusCode::OK, &LinkRequestPage::for_listing(&service, &headers)),
        Err(r) => r,
    }
}

/// Emails a magic link to a member of the group that runs the service. The reply is the
/// same whether or not the address belongs to one, so it tells nobody who is a member.
pub async fn request_link(
    State(state): State<AppState>,
    Extension(ClientIp(ip)): Extension<ClientIp>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let service = match super::listed_service(&state, &id, &headers).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    let fields = super::form::Fields::parse(std::str::from_utf8(&body).ok());
    let mut page = LinkRequestPage::for_listing(&service, &headers);
    if let Some(status) = page.check(&state, ip.as_deref(), fields.get("email")).await {
        return render(status, &page);
    }
    let actor = kith_app::accounts::Actor::anonymous(ip);
    if let Err(e) = state.send_listing_link(&service, fields.get("email"), &actor).await {
        tracing::error!(error = %e, "a sign-in link could not be queued");
        return PageError::Unavailable("Kith cannot send links just now. Please try again in a few minutes.".into())
            .into_page(&headers);
    }
    page.sent()
}

/// The page a group's new-referral email points to: ask for a link that opens it.
pub async fn referral_link_page(Path(id): Path<String>, headers: HeaderMap) -> Response {
    let Ok(referral) = Uuid::parse_str(&id) else {
        return PageError::NotFound("There is no referral at this address.".into()).into_page(&headers);
    };
    render(StatusCode::OK, &LinkRequestPage::for_referral(referral, &headers))
}

/// Emails a link that opens one referral to a member of the group it was sent to. The
/// reply is the same for anyone, so it says nothing about the referral or who may see it.
pub async fn request_referral_link(
    State(state): State<AppState>,
    Extension(ClientIp(ip)): Extension<ClientIp>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let Ok(referral_id) = Uuid::parse_str(&id) else {
        return PageError::NotFound("There is no referral at this address.".into()).into_page(&headers);
    };
    let fields = super::form::Fields::parse(std::str::from_utf8(&body).ok());
    let mut page = LinkRequestPage::for_referral(referral_id, &headers);
    let email = fields.get("email");
    if let Some(status) = page.check(&state, ip.as_deref(), email).await {
        return render(status, &page);
    }
    let actor = kith_app::accounts::Actor::anonymous(ip);
    if let Err(e) = state.send_referral_link(referral_id, email, &actor).await {
        tracing::error!(error = %e, "a referral link could not be queued");
        return PageError::Unavailable("Kith cannot send links just now. Please try again in a few minutes.".into())
            .into_page(&headers);
    }
    page.sent()
}
