//! A community group's inbox and the referral page: who has been referred, why, what
//! they agreed to share, and the buttons to accept, waitlist or decline. What a person
//! may see is decided by the referrals service; these pages only show it.

use super::search::FieldError;
use super::{Layout, PageError, render};
use crate::AppState;
use crate::auth::session::{ClientIp, Viewer};
use crate::referrals::ReferralError;
use askama::Template;
use axum::Extension;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use kith_domain::account::{Role, Scope};
use kith_domain::referral::{DeclineReason, TaskStatus};
use uuid::Uuid;

fn when(at: chrono::DateTime<chrono::Utc>) -> String {
    kith_domain::opening::uk_local(at).format("%-d %B %Y, %H:%M").to_string()
}

fn page_error(e: ReferralError, headers: &HeaderMap) -> Response {
    match e {
        ReferralError::Forbidden(m) => PageError::Forbidden(m).into_page(headers),
        ReferralError::NotFound(what) => PageError::NotFound(format!("There is no such {what}.")).into_page(headers),
        ReferralError::Invalid(m) | ReferralError::Conflict(m) => PageError::BadRequest(m).into_page(headers),
        e => {
            tracing::error!(error = %e, "referral page failed");
            PageError::Unavailable("Kith cannot show this just now.".into()).into_page(headers)
        }
    }
}

#[derive(Debug)]
struct Row {
    id: String,
    sent: String,
    service: String,
    status: &'static str,
    safeguarding: bool,
}

#[derive(Template)]
#[template(path = "inbox.html")]
struct InboxPage {
    layout: Layout,
    rows: Vec<Row>,
}

pub async fn inbox(
    State(state): State<AppState>,
    Extension(viewer): Extension<Viewer>,
    Extension(ClientIp(ip)): Extension<ClientIp>,
    headers: HeaderMap,
) -> Response {
    let Some(current) = viewer.member() else { return Redirect::to("/signin").into_response() };
    let user = &current.user;
    let actor = viewer.actor(ip);
    let groups: Vec<Uuid> = user
        .grants
        .iter()
        .filter_map(|g| match (g.role, g.scope) {
            (Role::VcsMember, Scope::Organisation(id)) => Some(id),
            _ => None,
        })
        .collect();
    let mut rows = Vec::new();
    for group in groups {
        let referrals = match state.referrals().inbox(user, &actor, group).await {
            Ok(r) => r,
            Err(e) => return page_error(e, &headers),
        };
        for r in referrals {
            let service = match state.store.service(r.service_id).await {
                Ok(Some(s)) => s.name,
                _ => "a service no longer listed".into(),
            };
            rows.push(Row {
                id: r.id.to_string(),
                sent: when(r.created_at),
                service,
                status: r.status.label(),
                safeguarding: r.safeguarding,
            });
        }
    }
    render(StatusCode::OK, &InboxPage { layout: Layout::new("Referrals – Kith", &headers), rows })
}

#[derive(Template)]
#[template(path = "referral.html")]
struct ReferralPage {
    layout: Layout,
    id: String,
    service: String,
    name: String,
    status: &'static str,
    safeguarding: bool,
    safeguarding_note: String,
    facts: Vec<(&'static str, String)>,
    actions: Vec<(&'static str, &'static str)>,
    reasons: Vec<&'static str>,
    timeline: Vec<(String, String)>,
    errors: Vec<FieldError>,
}

form_errors!(ReferralPage);

async fn referral_page(
    state: &AppState,
    viewer: &Viewer,
    ip: Option<String>,
    id: &str,
    headers: &HeaderMap,
    errors: Vec<FieldError>,
) -> Response {
    let Some(current) = viewer.member() else { return Redirect::to("/signin").into_response() };
    let Ok(id) = Uuid::parse_str(id) else {
        return PageError::NotFound("There is no referral at this address.".into()).into_page(headers);
    };
    let actor = viewer.actor(ip);
    let referrals = state.referrals();
    let (referral, details) = match referrals.referral_details(&current.user, &actor, id).await {
        Ok(found) => found,
        Err(e) => return page_error(e, headers),
    };
    let patient = match referrals.patient_details(&current.user, &actor, referral.patient_id, "referral page").await {
        Ok(p) => p,
        Err(e) => return page_error(e, headers),
    };
    let service = match state.store.service(referral.service_id).await {
        Ok(Some(s)) => s.name,
        _ => "a service no longer listed".into(),
    };
    let timeline = match state.store.timeline(referral.id).await {
        Ok(t) => t
            .iter()
            .map(|e| {
                (
                    when(e.at),
                    if e.note.is_empty() {
                        e.status.label().to_owned()
                    } else {
                        format!("{} – {}", e.status.label(), e.note)
                    },
                )
            })
            .collect(),
        Err(e) => return PageError::from(e).into_page(headers),
    };
    let mut facts = vec![("Reason", details.reason.clone()), ("What matters to them", details.what_matters.clone())];
    if let Some(mobile) = &patient.mobile {
        facts.push(("Mobile", mobile.clone()));
    }
    if let Some(email) = &patient.email {
        facts.push(("Email", email.clone()));
    }
    if let Some(consent) = &details.consent {
        facts.push((
            "Agreed to share",
            format!("{} with {}, on {}", consent.what, consent.with_whom, when(consent.given_at)),
        ));
    }
    let group_side = referral.group_id.is_some_and(|g| {
        current.user.grants.iter().any(|gr| gr.role == Role::VcsMember && gr.scope == Scope::Organisation(g))
    });
    let actions: Vec<(&'static str, &'static str)> = if group_side {
        [
            (TaskStatus::Accepted, "Accept"),
            (TaskStatus::OnHold, "Put on the waiting list"),
            (TaskStatus::Rejected, "Decline"),
        ]
        .into_iter()
        .filter(|(s, _)| referral.status.can_become(*s))
        .map(|(s, label)| (s.code(), label))
        .collect()
    } else if referral.status.can_become(TaskStatus::Cancelled) {
        vec![(TaskStatus::Cancelled.code(), "Cancel the referral")]
    } else {
        Vec::new()
    };
    let reasons = [
        DeclineReason::NoCapacity,
        DeclineReason::NotEligible,
        DeclineReason::OutOfArea,
        DeclineReason::NotRunning,
        DeclineReason::PersonDeclined,
        DeclineReason::Other,
    ]
    .iter()
    .map(|r| r.label())
    .collect();
    let title = if errors.is_empty() { "Referral – Kith" } else { "Error: Referral – Kith" };
    let page = ReferralPage {
        layout: Layout::new(title, headers),
        id: referral.id.to_string(),
        service,
        name: patient.name,
        status: referral.status.label(),
        safeguarding: referral.safeguarding,
        safeguarding_note: details.safeguarding_note.unwrap_or_default(),
        facts,
        actions,
        reasons,
        timeline,
        errors,
    };
    let status = if page.errors.is_empty() { StatusCode::OK } else { StatusCode::BAD_REQUEST };
    render(status, &page)
}

pub async fn page(
    State(state): State<AppState>,
    Extension(viewer): Extension<Viewer>,
    Extension(ClientIp(ip)): Extension<ClientIp>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    referral_page(&state, &viewer, ip, &id, &headers, Vec::new()).await
}

pub async fn change(
    State(state): State<AppState>,
    Extension(viewer): Extension<Viewer>,
    Extension(ClientIp(ip)): Extension<ClientIp>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let Some(current) = viewer.member() else { return Redirect::to("/signin").into_response() };
    let Ok(referral_id) = Uuid::parse_str(&id) else {
        return PageError::NotFound("There is no referral at this address.".into()).into_page(&headers);
    };
    let fields = super::form::Fields::parse(std::str::from_utf8(&body).ok());
    let error = |field, message: String| vec![FieldError { field, message, suggestions: vec![] }];
    let Some(to) = TaskStatus::parse(fields.get("to")) else {
        return referral_page(&state, &viewer, ip, &id, &headers, error("to", "Choose what happens next".into())).await;
    };
    let note = fields.get("note");
    let actor = viewer.actor(ip.clone());
    match state.referrals().act(&current.user, &actor, referral_id, to, note).await {
        Ok(_) => Redirect::to(&format!("/referrals/{referral_id}")).into_response(),
        Err(ReferralError::Invalid(m) | ReferralError::Conflict(m)) => {
            let field = if to == TaskStatus::Rejected && note.is_empty() { "note" } else { "to" };
            referral_page(&state, &viewer, ip, &id, &headers, error(field, m)).await
        }
        Err(e) => page_error(e, &headers),
    }
}

#[derive(Template)]
#[template(path = "refer.html")]
struct ReferPage {
    layout: Layout,
    service_id: String,
    service: String,
    group: String,
    /// (field, label, hint, value, input type)
    person: Vec<(&'static str, &'static str, &'static str, String, &'static str)>,
    contacts: Vec<(&'static str, &'static str)>,
    contact: kith_domain::referral::ContactMethod,
    kind: String,
    texts: Vec<(&'static str, &'static str, String)>,
    consent: bool,
    errors: Vec<FieldError>,
}

form_errors!(ReferPage);

/// The practice a member of staff refers from: the first practice they work at.
fn practice_of(user: &kith_domain::account::UserRecord) -> Option<Uuid> {
    user.grants.iter().find_map(|g| match (g.role, g.scope) {
        (Role::Receptionist | Role::Clinician | Role::LinkWorker, Scope::Organisation(id)) => Some(id),
        _ => None,
    })
}

async fn refer_form(
    state: &AppState,
    service_id: &str,
    fields: &super::form::Fields,
    headers: &HeaderMap,
    errors: Vec<FieldError>,
) -> Response {
    use kith_domain::referral::ContactMethod;
    let missing = || PageError::NotFound("There is no service at this address.".into()).into_page(headers);
    let Ok(id) = Uuid::parse_str(service_id) else { return missing() };
    let service = match state.store.service(id).await {
        Ok(Some(s)) => s,
        Ok(None) => return missing(),
        Err(e) => return PageError::from(e).into_page(headers),
    };
    let group = match state.store.organisations().await {
        Ok(orgs) => orgs
            .into_iter()
            .find(|o| o.directory_id.is_some() && o.directory_id == service.organization_id)
            .map_or_else(|| "the group that runs it".to_owned(), |o| o.name),
        Err(e) => return PageError::from(e).into_page(headers),
    };
    let value = |name: &str| fields.get(name).to_owned();
    let title = if errors.is_empty() { "Refer or signpost – Kith" } else { "Error: Refer or signpost – Kith" };
    let page = ReferPage {
        layout: Layout::new(title, headers),
        service_id: service.id.to_string(),
        service: service.name,
        group,
        person: vec![
            ("nhs_number", "NHS number", "10 digits, like 943 476 5919", value("nhs_number"), "text"),
            ("name", "Full name", "", value("name"), "text"),
            ("birth_date", "Date of birth", "For example, 1950-04-01", value("birth_date"), "date"),
            ("mobile", "Mobile number (optional)", "", value("mobile"), "tel"),
            ("email", "Email address (optional)", "", value("email"), "email"),
            ("postcode", "Postcode (optional)", "", value("postcode"), "text"),
        ],
        contacts: vec![("text", "Text message"), ("phone", "Phone call"), ("email", "Email"), ("letter", "Letter")],
        contact: ContactMethod::parse(fields.get("contact")).unwrap_or(ContactMethod::Text),
        kind: if fields.get("kind").is_empty() { "referral".into() } else { value("kind") },
        texts: vec![
            ("reason", "Reason for referral", value("reason")),
            ("what_matters", "What matters to them, in their words", value("what_matters")),
            ("safeguarding", "Anything the group must know to keep them safe (optional)", value("safeguarding")),
        ],
        consent: fields.get("consent") == "yes",
        errors,
    };
    let status = if page.errors.is_empty() { StatusCode::OK } else { StatusCode::BAD_REQUEST };
    render(status, &page)
}

pub async fn refer_page(
    State(state): State<AppState>,
    Extension(viewer): Extension<Viewer>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    if viewer.member().and_then(|c| practice_of(&c.user)).is_none() {
        return PageError::Forbidden("Only practice staff can refer people.".into()).into_page(&headers);
    }
    refer_form(&state, &id, &super::form::Fields::default(), &headers, Vec::new()).await
}

/// Saves the patient (or finds them by NHS number) and the signpost or referral.
pub async fn refer_submit(
    State(state): State<AppState>,
    Extension(viewer): Extension<Viewer>,
    Extension(ClientIp(ip)): Extension<ClientIp>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    use crate::referrals::{NewPatient, NewReferral};
    use kith_domain::referral::{ContactMethod, NhsNumber, ReferralKind};
    let Some(current) = viewer.member() else { return Redirect::to("/signin").into_response() };
    let fields = super::form::Fields::parse(std::str::from_utf8(&body).ok());
    let fail = |field: &'static str, message: String| vec![FieldError { field, message, suggestions: vec![] }];
    let Some(practice) = practice_of(&current.user) else {
        return PageError::Forbidden("Only practice staff can refer people.".into()).into_page(&headers);
    };
    let Ok(service_id) = Uuid::parse_str(&id) else {
        return PageError::NotFound("There is no service at this address.".into()).into_page(&headers);
    };
    let Some(kind) = ReferralKind::parse(fields.get("kind")) else {
        return refer_form(&state, &id, &fields, &headers, fail("kind", "Choose refer or signpost".into())).await;
    };
    let actor = viewer.actor(ip);
    let referrals = state.referrals();
    let keyring = state.accounts.keyring();
    // An NHS number this practice already holds is the same person.
    let existing = match NhsNumber::parse(fields.get("nhs_number")) {
        Ok(n) => state
            .store
            .patient_by_nhs_index(practice, &keyring.blind_index("nhs_number", n.as_str()))
            .await
            .ok()
            .flatten(),
        Err(_) => None,
    };
    let patient = match existing {
        Some(p) => p,
        None => {
            let new = NewPatient {
                organisation_id: practice,
                name: fields.get("name").to_owned(),
                birth_date: chrono::NaiveDate::parse_from_str(fields.get("birth_date"), "%Y-%m-%d").ok(),
                nhs_number: Some(fields.get("nhs_number").to_owned()),
                local_id: None,
                email: Some(fields.get("email").to_owned()),
                mobile: Some(fields.get("mobile").to_owned()),
                phone: None,
                postcode: Some(fields.get("postcode").to_owned()),
                contact_method: ContactMethod::parse(fields.get("contact")).unwrap_or(ContactMethod::Phone),
                language: None,
            };
            match referrals.add_patient(&current.user, &actor, new).await {
                Ok(p) => p,
                Err(ReferralError::Invalid(m)) => {
                    let field = if m.contains("NHS") {
                        "nhs_number"
                    } else if m.contains("name") {
                        "name"
                    } else if m.contains("birth") {
                        "birth_date"
                    } else if m.contains("mobile") {
                        "mobile"
                    } else if m.contains("email") {
                        "email"
                    } else {
                        "postcode"
                    };
                    return refer_form(&state, &id, &fields, &headers, fail(field, m)).await;
                }
                Err(e) => return page_error(e, &headers),
            }
        }
    };
    let consent = (fields.get("consent") == "yes").then(|| {
        ("Name, contact details and the reason for referral".to_owned(), "the group that runs the service".to_owned())
    });
    let new = NewReferral {
        kind,
        patient_id: patient.id,
        service_id,
        reason: fields.get("reason").to_owned(),
        what_matters: fields.get("what_matters").to_owned(),
        consent,
        safeguarding_note: Some(fields.get("safeguarding").to_owned()),
    };
    match referrals.refer(&current.user, &actor, new).await {
        Ok(r) => Redirect::to(&format!("/referrals/{}", r.id)).into_response(),
        Err(ReferralError::Invalid(m)) => {
            let field = if m.contains("consent") {
                "consent"
            } else if m.contains("reason") {
                "reason"
            } else {
                "kind"
            };
            refer_form(&state, &id, &fields, &headers, fail(field, m)).await
        }
        Err(e) => page_error(e, &headers),
    }
}
