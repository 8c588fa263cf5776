//! The signed-in person's own account: who Kith thinks they are, their roles, two-step
//! sign-in, and signing out everywhere.

use super::{Layout, OrPage, PageError, PageResult, render};
use crate::AppState;
use crate::auth::session::{ClientIp, Viewer};
use askama::Template;
use axum::Extension;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect};
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
) -> PageResult {
    let current = match &viewer {
        Viewer::SignedIn(current) => current,
        Viewer::Pending(c) => return Ok(Redirect::to(crate::auth::access::second_step(c)).into_response()),
        Viewer::Anonymous => return Ok(Redirect::to("/signin").into_response()),
    };
    let user = &current.user;
    let profile = state.accounts.profile(user).map_err(|e| {
        tracing::error!(error = %e, "an account's sealed fields could not be opened");
        PageError::Unavailable("Your account details cannot be shown just now.".into()).into_page(&headers)
    })?;
    let accounts = &state.accounts;
    let orgs = accounts.organisations().await.or_page(&headers)?;
    let areas = accounts.areas().await.or_page(&headers)?;
    let left = accounts.recovery_codes_left(user).await.or_page(&headers)?;
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
    // The page shows the person's own email and name: no entry, no page.
    let actor = viewer.actor(ip);
    accounts
        .audit_read(&actor, "account.view", "user", Some(user.id.to_string()), "own account")
        .await
        .or_page(&headers)?;
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
    Ok(render(StatusCode::OK, &page))
}

#[derive(Template)]
#[template(path = "home.html")]
struct HomePage {
    layout: Layout,
    name: String,
    /// Practice staff: a search box, follow-ups due and their own recent referrals.
    refers: bool,
    follow_ups_due: usize,
    /// (link, when, service, kind, status), newest first.
    recent: Vec<(String, String, String, &'static str, &'static str)>,
    /// Group members: referrals waiting for an answer.
    group_member: bool,
    waiting: usize,
    reports: bool,
    admin: bool,
}

/// Where a signed-in person lands: the work their roles give them, in one place.
pub async fn home(
    State(state): State<AppState>,
    Extension(viewer): Extension<Viewer>,
    Extension(ClientIp(ip)): Extension<ClientIp>,
    headers: HeaderMap,
) -> PageResult {
    use kith_domain::referral::TaskStatus;
    let Some(current) = viewer.member() else { return Ok(Redirect::to("/signin").into_response()) };
    let user = &current.user;
    let actor = viewer.actor(ip);
    let referrals = state.referrals();
    let refers = super::may_refer();
    let now = state.clock.now();
    let (mut follow_ups_due, mut recent) = (0, Vec::new());
    if refers {
        let open = referrals.follow_ups(user, &actor).await.or_page(&headers)?;
        follow_ups_due = open.iter().filter(|(f, _)| f.due_at <= now).count();
        let query = kith_store::referrals::ReferralQuery { limit: 50, ..Default::default() };
        let found = referrals.search(user, &actor, query).await.or_page(&headers)?;
        let mine: Vec<_> = found.into_iter().filter(|r| r.referrer_user == user.id).take(10).collect();
        let names =
            state.service_names(&mine.iter().map(|r| r.service_id).collect::<Vec<_>>()).await.or_page(&headers)?;
        recent = mine
            .iter()
            .map(|r| {
                let service =
                    names.get(&r.service_id).cloned().unwrap_or_else(|| "A service no longer listed".to_owned());
                let kind = match r.kind {
                    kith_domain::referral::ReferralKind::Referral => "Referral",
                    kith_domain::referral::ReferralKind::Signpost => "Signpost",
                };
                let made = kith_domain::opening::uk_local(r.created_at).format("%-d %B").to_string();
                (format!("/referrals/{}", r.id), made, service, kind, r.status.label())
            })
            .collect();
    }
    let group_member = viewer.allows(Permission::OwnListing);
    let mut waiting = 0;
    if group_member {
        for group in user.groups() {
            let inbox = referrals.inbox(user, &actor, group).await.or_page(&headers)?;
            waiting +=
                inbox.iter().filter(|r| matches!(r.status, TaskStatus::Requested | TaskStatus::Received)).count();
        }
    }
    let page = HomePage {
        layout: Layout::new("Home – Kith", &headers),
        name: current.name.clone(),
        refers,
        follow_ups_due,
        recent,
        group_member,
        waiting,
        reports: viewer.allows(Permission::Reports),
        admin: viewer.allows(Permission::Audit),
    };
    Ok(render(StatusCode::OK, &page))
}
