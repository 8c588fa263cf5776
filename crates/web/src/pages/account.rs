//! The signed-in person's own account: who Kith thinks they are, their roles, two-step
//! sign-in, and signing out everywhere.

use super::{Layout, PageError, render};
use crate::AppState;
use crate::auth::session::{ClientIp, Viewer};
use askama::Template;
use axum::Extension;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use kith_domain::account::{LinkPurpose, Permission, Scope};

#[derive(Template)]
#[template(path = "account.html")]
struct AccountPage {
    layout: Layout,
    name: String,
    email: String,
    roles: Vec<String>,
    two_factor: bool,
    recovery_left: u32,
    purpose: Option<&'static str>,
    admin: bool,
    group_member: bool,
    /// Practice staff: their follow-ups.
    refers: bool,
    reports: bool,
}

pub fn purpose_words(purpose: LinkPurpose) -> &'static str {
    match purpose {
        LinkPurpose::UpdateListing => "check and update your group's listing",
        LinkPurpose::AnswerReferral => "answer a referral",
    }
}

pub async fn page(
    State(state): State<AppState>,
    Extension(viewer): Extension<Viewer>,
    Extension(ClientIp(ip)): Extension<ClientIp>,
    headers: HeaderMap,
) -> Response {
    let current = match &viewer {
        Viewer::SignedIn(current) => current,
        Viewer::Pending(c) => return Redirect::to(crate::auth::access::second_step(c)).into_response(),
        Viewer::Anonymous => return Redirect::to("/signin").into_response(),
    };
    let user = &current.user;
    let profile = match state.accounts.profile(user) {
        Ok(p) => p,
        Err(e) => {
            tracing::error!(error = %e, "an account's sealed fields could not be opened");
            return PageError::Unavailable("Your account details cannot be shown just now.".into()).into_page(&headers);
        }
    };
    let (orgs, areas, left) = match (
        state.store.organisations().await,
        state.store.areas().await,
        state.store.recovery_codes_left(user.id).await,
    ) {
        (Ok(o), Ok(a), Ok(l)) => (o, a, l),
        (Err(e), ..) | (_, Err(e), _) | (.., Err(e)) => return PageError::from(e).into_page(&headers),
    };
    let roles = user
        .grants
        .iter()
        .map(|g| {
            let place = match g.scope {
                Scope::Organisation(id) => orgs.iter().find(|o| o.id == id).map(|o| o.name.clone()),
                Scope::Area(id) => areas.iter().find(|a| a.id == id).map(|a| a.name.clone()),
            };
            format!("{} at {}", g.role.label(), place.unwrap_or_else(|| "an organisation no longer listed".into()))
        })
        .collect();
    state.accounts.audit(&viewer.actor(ip), "account.view", "user", Some(user.id.to_string()), "own account").await;
    let page = AccountPage {
        layout: Layout::new("Your account – Kith", &headers),
        name: profile.name,
        email: profile.email,
        roles,
        two_factor: user.totp_secret.is_some(),
        recovery_left: left,
        purpose: viewer.purpose().map(|(p, _)| purpose_words(p)),
        admin: viewer.allows(Permission::Audit),
        group_member: viewer.allows(Permission::OwnListing),
        refers: super::may_refer(),
        reports: viewer.allows(Permission::Reports),
    };
    render(StatusCode::OK, &page)
}
