//! A community group's inbox and the referral page: who has been referred, why, what
//! they agreed to share, and the buttons to accept, waitlist or decline. What a person
//! may see is decided by the referrals service; these pages only show it.

use super::search::FieldError;
use super::{Layout, OrPage, PageError, PageResult, render};
use crate::AppState;
use crate::auth::session::{ClientIp, Viewer};
use askama::Template;
use axum::Extension;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use kith_app::referrals::{FormField, ReferralError, ReferralView, Viewing};
use kith_domain::referral::{DeclineReason, EndReason, Instrument, Outcome, OutcomeError, TaskStatus};
use uuid::Uuid;

fn when(at: chrono::DateTime<chrono::Utc>) -> String {
    kith_domain::opening::uk_local(at).format("%-d %B %Y, %H:%M").to_string()
}

/// The name of the group a referral goes to, as the page says it.
fn group_name(group: Option<(Uuid, String)>) -> String {
    group.map_or_else(|| "the group that runs it".to_owned(), |(_, name)| name)
}

pub(super) fn page_error(e: ReferralError, headers: &HeaderMap) -> Response {
    PageError::from(e).into_page(headers)
}

#[derive(Debug)]
struct Row {
    id: String,
    sent: String,
    service: String,
    status: &'static str,
    /// The NHS tag colour that says what the status means.
    tone: &'static str,
    safeguarding: bool,
    /// The person's initials, while the group may see who it is.
    initials: Option<String>,
    practice: String,
    /// How the person would like to be contacted.
    contact: &'static str,
}

/// The tag colour for a status: new in blue, going ahead in green, waiting in yellow,
/// ended without going ahead in red, withdrawn in grey.
pub(super) fn status_tone(status: TaskStatus) -> &'static str {
    match status {
        TaskStatus::Requested | TaskStatus::Received => "nhsuk-tag--blue",
        TaskStatus::Accepted | TaskStatus::InProgress | TaskStatus::Completed => "nhsuk-tag--green",
        TaskStatus::OnHold => "nhsuk-tag--yellow",
        TaskStatus::Rejected | TaskStatus::Failed => "nhsuk-tag--red",
        TaskStatus::Cancelled => "nhsuk-tag--grey",
    }
}

/// "J. S." from a name.
fn initials(name: &str) -> String {
    name.split_whitespace()
        .filter_map(|w| w.chars().next())
        .map(|c| format!("{}.", c.to_uppercase()))
        .collect::<Vec<_>>()
        .join(" ")
}

fn contact_words(method: kith_domain::referral::ContactMethod) -> &'static str {
    use kith_domain::referral::ContactMethod;
    match method {
        ContactMethod::Phone => "By phone",
        ContactMethod::Text => "By text",
        ContactMethod::Email => "By email",
        ContactMethod::Letter => "By letter",
    }
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
) -> PageResult {
    let Some(current) = viewer.member() else { return Ok(Redirect::to("/signin").into_response()) };
    let user = &current.user;
    let actor = viewer.actor(ip);
    let entries = state.referrals().inboxes(user, &actor).await.or_page(&headers)?;
    let rows = entries
        .into_iter()
        .map(|entry| {
            let r = entry.referral;
            Row {
                id: r.id.to_string(),
                sent: when(r.created_at),
                service: entry.service.unwrap_or_else(|| "a service no longer listed".into()),
                status: r.status.label(),
                tone: status_tone(r.status),
                safeguarding: r.safeguarding,
                initials: entry.person.as_ref().map(|(name, _)| initials(name)),
                practice: entry.practice.unwrap_or_else(|| "A practice no longer on Kith".to_owned()),
                contact: entry.person.map_or("", |(_, how)| contact_words(how)),
            }
        })
        .collect();
    Ok(render(StatusCode::OK, &InboxPage { layout: Layout::new("Referrals – Kith", &headers), rows }))
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
    /// (label, value) about the follow-up, if there is one.
    follow_up: Vec<(&'static str, String)>,
    /// The referrer's side, with the follow-up open: record the outcome and ONS4.
    record_outcome: bool,
    /// The group's side: report attendance.
    report_attendance: bool,
    can_reroute: bool,
    outcomes: Vec<(&'static str, &'static str)>,
    end_reasons: Vec<(&'static str, &'static str)>,
    /// (number, question, lowest means, highest means)
    questions: Vec<(usize, &'static str, &'static str, &'static str)>,
    /// (when, stage, answers)
    measures: Vec<(String, &'static str, String)>,
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
) -> PageResult {
    let missing = || PageError::NotFound("There is no referral at this address.".into()).into_page(headers);
    let id = Uuid::parse_str(id).map_err(|_| missing())?;
    let Some(current) = viewer.for_referral(id) else { return Ok(Redirect::to("/signin").into_response()) };
    let actor = viewer.actor(ip);
    let referrals = state.referrals();
    let view = referrals.view(&current.user, &actor, id, "referral page").await.or_page(headers)?;
    let ReferralView { referral, details, patient, viewing, service, timeline, follow_up, measures, .. } = view;
    let service = service.unwrap_or_else(|| "a service no longer listed".into());
    let timeline = timeline
        .iter()
        .map(|e| {
            let what = if e.note.is_empty() {
                e.status.label().to_owned()
            } else {
                format!("{} – {}", e.status.label(), e.note)
            };
            (when(e.at), what)
        })
        .collect();
    let mut facts = vec![("Reason", details.reason.clone())];
    if !details.what_matters.is_empty() {
        facts.push(("What matters to them", details.what_matters.clone()));
    }
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
    let group_side = viewing == Viewing::Group;
    let referrer_side = viewing == Viewing::Practice;
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
    // Decline reasons are the group's: the referrer only cancels.
    let reasons = if group_side { DeclineReason::ALL.iter().map(|r| r.label()).collect() } else { Vec::new() };
    let mut follow_up_facts = Vec::new();
    if let Some(f) = follow_up.as_ref().filter(|_| !referrer_side)
        && let (Some(o), Some(at)) = (f.attendance, f.attendance_at)
    {
        follow_up_facts.push(("Your group reported", format!("{}, {}", o.describe(), when(at))));
    }
    if let Some(f) = follow_up.as_ref().filter(|_| referrer_side) {
        follow_up_facts.push(("Follow-up due", when(f.due_at)));
        if let Some(at) = f.reminded_at {
            follow_up_facts.push(("Reminder sent", when(at)));
        }
        if let Some(at) = f.escalated_at {
            follow_up_facts.push(("Overdue: practice told", when(at)));
        }
        if let (Some(o), Some(at)) = (f.outcome, f.outcome_at) {
            // Recorded before it was due: say so, since "still attending" means less early.
            let early = (f.due_at - at).num_days();
            let early = if early >= 1 {
                format!(" (recorded {early} {} before it was due)", if early == 1 { "day" } else { "days" })
            } else {
                String::new()
            };
            follow_up_facts.push(("Follow-up outcome", format!("{}, {}{early}", o.describe(), when(at))));
        }
        if let (Some(o), Some(at)) = (f.attendance, f.attendance_at) {
            follow_up_facts.push(("The group reports", format!("{}, {}", o.describe(), when(at))));
        }
    }
    let instrument = referrals.instrument();
    let measures = measures
        .iter()
        .map(|m| {
            let stage = match m.stage {
                kith_domain::referral::Stage::Baseline => "At referral",
                kith_domain::referral::Stage::FollowUp => "At follow-up",
            };
            let answers = instrument
                .questions()
                .iter()
                .zip(&m.answers)
                .map(|(q, a)| format!("{} {a}", q.short))
                .collect::<Vec<_>>()
                .join(", ");
            (when(m.taken_at), stage, answers)
        })
        .collect();
    let record_outcome = referrer_side && follow_up.as_ref().is_some_and(|f| f.is_open());
    let report_attendance = !referrer_side && group_side && follow_up.is_some();
    let can_reroute = referral.kind == kith_domain::referral::ReferralKind::Referral
        && referral.status.can_become(TaskStatus::Rejected)
        && (group_side || referrer_side);
    let title = if errors.is_empty() { "Referral – Kith" } else { "Error: Referral – Kith" };
    let page = ReferralPage {
        layout: Layout::new(title, headers),
        id: referral.id.to_string(),
        service,
        name: patient.name,
        status: referral.status.label(),
        safeguarding: referral.safeguarding,
        safeguarding_note: details.safeguarding_note.unwrap_or_else(|| {
            "The practice has noted a safeguarding concern. Speak to the referring practice before you contact the person."
                .to_owned()
        }),
        facts,
        actions,
        reasons,
        timeline,
        follow_up: follow_up_facts,
        record_outcome,
        report_attendance,
        can_reroute,
        outcomes: Outcome::CODES.iter().map(|c| (*c, Outcome::label_of(c))).collect(),
        end_reasons: EndReason::ALL.iter().map(|r| (r.code(), r.label())).collect(),
        questions: instrument
            .questions()
            .iter()
            .enumerate()
            .map(|(i, q)| (i + 1, q.text, q.anchors.0, q.anchors.1))
            .collect(),
        measures,
        errors,
    };
    let status = if page.errors.is_empty() { StatusCode::OK } else { StatusCode::BAD_REQUEST };
    Ok(render(status, &page))
}

/// The date of birth from the GOV.UK date input (`birth_day`, `birth_month`,
/// `birth_year`), or from a single `birth_date` in year-month-day form.
fn birth_date(fields: &super::form::Fields) -> Option<chrono::NaiveDate> {
    let part = |name: &str| fields.get(name).trim_start_matches('0').parse::<u32>().ok();
    match (part("birth_day"), part("birth_month"), fields.get("birth_year").parse::<i32>().ok()) {
        (Some(d), Some(m), Some(y)) if (1900..=2999).contains(&y) => chrono::NaiveDate::from_ymd_opt(y, m, d),
        _ => chrono::NaiveDate::parse_from_str(fields.get("birth_date"), "%Y-%m-%d").ok(),
    }
}

/// Problems the referrals service found, each shown beside its own field.
fn field_errors(problems: Vec<kith_app::referrals::FieldProblem>) -> Vec<FieldError> {
    problems
        .into_iter()
        .map(|p| FieldError { field: p.field.name(), message: p.message, suggestions: vec![] })
        .collect()
}

/// A one-field error, shown beside the field and in the summary.
fn error(field: &'static str, message: String) -> Vec<FieldError> {
    vec![FieldError { field, message, suggestions: vec![] }]
}

/// What every form posted about a referral starts with: the referral's id, the person
/// (signed in, or holding a link for this referral) and the fields.
fn posted<'v>(
    viewer: &'v Viewer,
    id: &str,
    headers: &HeaderMap,
    body: &Bytes,
) -> Result<(Uuid, &'v crate::auth::session::Current, super::form::Fields), Box<Response>> {
    let Ok(referral_id) = Uuid::parse_str(id) else {
        return Err(Box::new(PageError::NotFound("There is no referral at this address.".into()).into_page(headers)));
    };
    let Some(current) = viewer.for_referral(referral_id) else {
        return Err(Box::new(Redirect::to("/signin").into_response()));
    };
    Ok((referral_id, current, super::form::Fields::parse(std::str::from_utf8(body).ok())))
}

/// The four ONS4 answers from fields `ons4-1` to `ons4-4`: all blank is none given.
fn ons4_answers(fields: &super::form::Fields) -> Result<Option<Vec<u8>>, String> {
    let typed: Vec<&str> = (1..=4).map(|n| fields.get(&format!("ons4-{n}")).trim()).collect();
    if typed.iter().all(|t| t.is_empty()) {
        return Ok(None);
    }
    typed.iter().map(|t| t.parse::<u8>().ok().filter(|a| *a <= 10)).collect::<Option<Vec<u8>>>().map(Some).ok_or_else(
        || "Answer each well-being question with a whole number from 0 to 10, or leave all four blank".to_owned(),
    )
}

/// Records the follow-up (the practice) or attendance (the group).
pub async fn outcome(
    State(state): State<AppState>,
    Extension(viewer): Extension<Viewer>,
    Extension(ClientIp(ip)): Extension<ClientIp>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> PageResult {
    let (referral_id, current, fields) = match posted(&viewer, &id, &headers, &body) {
        Ok(found) => found,
        Err(r) => return Err(*r),
    };
    let reason = Some(fields.get("reason")).filter(|r| !r.is_empty());
    let outcome = match Outcome::parse(fields.get("outcome"), reason) {
        Ok(o) => o,
        Err(e) => {
            let field = match e {
                OutcomeError::NoOutcome => FormField::Outcome,
                OutcomeError::NoReason => FormField::EndReason,
            };
            return referral_page(&state, &viewer, ip, &id, &headers, error(field.name(), e.to_string())).await;
        }
    };
    let answers = match ons4_answers(&fields) {
        Ok(a) => a,
        Err(m) => return referral_page(&state, &viewer, ip, &id, &headers, error("ons4-1", m)).await,
    };
    let actor = viewer.actor(ip.clone());
    match state.referrals().record_outcome(&current.user, &actor, referral_id, outcome, answers).await {
        Ok(_) => Ok(Redirect::to(&format!("/referrals/{referral_id}")).into_response()),
        Err(ReferralError::Fields(problems)) => {
            referral_page(&state, &viewer, ip, &id, &headers, field_errors(problems)).await
        }
        Err(ReferralError::Invalid(m) | ReferralError::Conflict(m)) => {
            referral_page(&state, &viewer, ip, &id, &headers, error(FormField::Outcome.name(), m)).await
        }
        Err(e) => Err(page_error(e, &headers)),
    }
}

/// Sends a referral on to another service.
pub async fn reroute(
    State(state): State<AppState>,
    Extension(viewer): Extension<Viewer>,
    Extension(ClientIp(ip)): Extension<ClientIp>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> PageResult {
    let Some(member) = viewer.member() else { return Ok(Redirect::to("/signin").into_response()) };
    let (referral_id, _, fields) = match posted(&viewer, &id, &headers, &body) {
        Ok(found) => found,
        Err(r) => return Err(*r),
    };
    let current = member;
    // The service's id, or its address in Kith, as copied from its page.
    let typed = fields.get("service").trim();
    let Some(service_id) = typed.trim_end_matches('/').rsplit('/').next().and_then(|last| Uuid::parse_str(last).ok())
    else {
        let m = "Enter the address of the service's page in Kith, or its id".to_owned();
        return referral_page(&state, &viewer, ip, &id, &headers, error("service", m)).await;
    };
    let actor = viewer.actor(ip.clone());
    let consent = fields.get("reroute_consent") == "yes";
    match state.referrals().reroute(&current.user, &actor, referral_id, service_id, consent).await {
        Ok(new) => Ok(Redirect::to(&format!("/referrals/{}", new.id)).into_response()),
        Err(ReferralError::Fields(problems)) => {
            referral_page(&state, &viewer, ip, &id, &headers, field_errors(problems)).await
        }
        Err(ReferralError::Invalid(m) | ReferralError::Conflict(m)) => {
            referral_page(&state, &viewer, ip, &id, &headers, error(FormField::Service.name(), m)).await
        }
        Err(e) => Err(page_error(e, &headers)),
    }
}

pub async fn page(
    State(state): State<AppState>,
    Extension(viewer): Extension<Viewer>,
    Extension(ClientIp(ip)): Extension<ClientIp>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> PageResult {
    referral_page(&state, &viewer, ip, &id, &headers, Vec::new()).await
}

pub async fn change(
    State(state): State<AppState>,
    Extension(viewer): Extension<Viewer>,
    Extension(ClientIp(ip)): Extension<ClientIp>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> PageResult {
    let (referral_id, current, fields) = match posted(&viewer, &id, &headers, &body) {
        Ok(found) => found,
        Err(r) => return Err(*r),
    };
    let Some(to) = TaskStatus::parse(fields.get("to")) else {
        return referral_page(&state, &viewer, ip, &id, &headers, error("to", "Choose what happens next".into())).await;
    };
    let note = fields.get("note");
    let actor = viewer.actor(ip.clone());
    match state.referrals().act(&current.user, &actor, referral_id, to, note).await {
        Ok(_) => Ok(Redirect::to(&format!("/referrals/{referral_id}")).into_response()),
        Err(ReferralError::Invalid(m) | ReferralError::Conflict(m)) => {
            let field = if to == TaskStatus::Rejected || !note.is_empty() { "note" } else { "to" };
            referral_page(&state, &viewer, ip, &id, &headers, error(field, m)).await
        }
        Err(e) => Err(page_error(e, &headers)),
    }
}

#[derive(Template)]
#[template(path = "refer_confirm.html")]
struct RightPersonPage {
    layout: Layout,
    service_id: String,
    service: String,
    nhs_number: String,
    patient_id: String,
    /// What is stored, partly hidden.
    stored: Vec<(&'static str, String)>,
    matches: bool,
    typed_name: String,
    typed_birth: String,
    /// The form's answers, carried to the next step.
    carried: Vec<(String, String)>,
}

/// "Is this the right person?": the NHS number typed is one the practice holds. Shows
/// what is stored, partly hidden, beside what was typed.
#[allow(clippy::too_many_arguments)]
async fn right_person(
    state: &AppState,
    user: &kith_domain::account::UserRecord,
    actor: &kith_app::accounts::Actor,
    service_id: &str,
    patient: &kith_domain::referral::PatientRecord,
    fields: &super::form::Fields,
    headers: &HeaderMap,
) -> PageResult {
    use kith_domain::referral::{masked_name, masked_number, same_person};
    let stored =
        state.referrals().patient_details(user, actor, patient.id, "right-person check").await.or_page(headers)?;
    let service = super::listed_service(state, service_id, headers).await?.name;
    let typed_birth = birth_date(fields);
    let mut shown = vec![("Name", masked_name(&stored.name))];
    if let Some(born) = stored.birth_date {
        shown.push(("Born", format!("{}", born.format("%B %Y"))));
    }
    if let Some(mobile) = &stored.mobile {
        shown.push(("Mobile", masked_number(mobile)));
    }
    if let Some(postcode) = &stored.postcode {
        shown.push(("Postcode area", postcode.split_whitespace().next().unwrap_or_default().to_owned()));
    }
    let page = RightPersonPage {
        layout: Layout::new("Is this the right person? – Kith", headers),
        service_id: service_id.to_owned(),
        service,
        nhs_number: stored.nhs_number.as_ref().map(kith_domain::referral::NhsNumber::formatted).unwrap_or_default(),
        patient_id: patient.id.to_string(),
        stored: shown,
        matches: same_person(&stored, fields.get("name"), typed_birth),
        typed_name: fields.get("name").to_owned(),
        typed_birth: typed_birth.map(|d| d.format("%-d %B %Y").to_string()).unwrap_or_default(),
        carried: fields.pairs_without(&["same_person"]),
    };
    Ok(render(StatusCode::OK, &page))
}

#[derive(Template)]
#[template(path = "refer.html")]
struct ReferPage {
    layout: Layout,
    service_id: String,
    service: String,
    group: String,
    /// Whether the group takes referrals through Kith; otherwise only a signpost is offered.
    takes_referrals: bool,
    /// (field, label, hint, value, input type)
    person: Vec<(&'static str, &'static str, &'static str, String, &'static str)>,
    /// The date of birth as typed: day, month, year.
    born: (String, String, String),
    contacts: Vec<(&'static str, &'static str)>,
    contact: kith_domain::referral::ContactMethod,
    kind: String,
    texts: Vec<(&'static str, &'static str, String)>,
    consent: bool,
    follow_up: bool,
    /// (number, question, typed answer)
    questions: Vec<(usize, &'static str, String)>,
    errors: Vec<FieldError>,
}

form_errors!(ReferPage);

/// The practice a member of staff refers from: the first practice they work at.
pub(super) fn practice_of(user: &kith_domain::account::UserRecord) -> Option<Uuid> {
    user.practices().next()
}

async fn refer_form(
    state: &AppState,
    service_id: &str,
    fields: &super::form::Fields,
    headers: &HeaderMap,
    errors: Vec<FieldError>,
) -> PageResult {
    use kith_domain::referral::ContactMethod;
    let service = super::listed_service(state, service_id, headers).await?;
    let group = state.referrals().group_for(&service).await.or_page(headers)?;
    let takes_referrals = group.is_some();
    let group = group_name(group);
    let value = |name: &str| fields.get(name).to_owned();
    let title = if errors.is_empty() { "Refer or signpost – Kith" } else { "Error: Refer or signpost – Kith" };
    let page = ReferPage {
        layout: Layout::new(title, headers),
        service_id: service.id.to_string(),
        service: service.name,
        group,
        takes_referrals,
        born: match birth_date(fields) {
            Some(d) if fields.get("birth_day").is_empty() => {
                use chrono::Datelike;
                (d.day().to_string(), d.month().to_string(), d.year().to_string())
            }
            _ => (value("birth_day"), value("birth_month"), value("birth_year")),
        },
        person: vec![
            ("nhs_number", "NHS number", "10 digits, like 943 476 5919", value("nhs_number"), "text"),
            (
                "local_id",
                "Or the practice's own patient id",
                "Only for someone who has none",
                value("local_id"),
                "text",
            ),
            ("name", "Full name", "", value("name"), "text"),
            ("mobile", "Mobile number (optional)", "", value("mobile"), "tel"),
            ("email", "Email address (optional)", "", value("email"), "email"),
            ("postcode", "Postcode (optional)", "", value("postcode"), "text"),
            (
                "language",
                "Preferred language (optional)",
                "For example, Polish, or British Sign Language",
                value("language"),
                "text",
            ),
        ],
        contacts: vec![("text", "Text message"), ("phone", "Phone call"), ("email", "Email"), ("letter", "Letter")],
        contact: ContactMethod::parse(fields.get("contact")).unwrap_or(ContactMethod::Text),
        kind: match (takes_referrals, fields.get("kind")) {
            (false, _) => "signpost".into(),
            (true, "") => "referral".into(),
            (true, _) => value("kind"),
        },
        texts: vec![
            ("reason", "Reason for referral", value("reason")),
            ("what_matters", "What matters to them, in their words", value("what_matters")),
            ("safeguarding", "Anything the group must know to keep them safe (optional)", value("safeguarding")),
        ],
        consent: fields.get("consent") == "yes",
        follow_up: fields.get("follow_up") == "yes",
        questions: kith_domain::referral::Ons4
            .questions()
            .iter()
            .enumerate()
            .map(|(i, q)| (i + 1, q.text, fields.get(&format!("ons4-{}", i + 1)).to_owned()))
            .collect(),
        errors,
    };
    let status = if page.errors.is_empty() { StatusCode::OK } else { StatusCode::BAD_REQUEST };
    Ok(render(status, &page))
}

pub async fn refer_page(
    State(state): State<AppState>,
    Extension(viewer): Extension<Viewer>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> PageResult {
    if viewer.member().and_then(|c| practice_of(&c.user)).is_none() {
        return Err(PageError::Forbidden("Only practice staff can refer people.".into()).into_page(&headers));
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
) -> PageResult {
    use kith_app::referrals::{NewPatient, NewReferral};
    use kith_domain::referral::{ContactMethod, NhsNumber, ReferralKind};
    let Some(current) = viewer.member() else { return Ok(Redirect::to("/signin").into_response()) };
    let fields = super::form::Fields::parse(std::str::from_utf8(&body).ok());
    let Some(practice) = practice_of(&current.user) else {
        return Err(PageError::Forbidden("Only practice staff can refer people.".into()).into_page(&headers));
    };
    let Ok(service_id) = Uuid::parse_str(&id) else {
        return Err(PageError::NotFound("There is no service at this address.".into()).into_page(&headers));
    };
    // "Change" on the check-your-answers page: back to the form, every answer kept.
    if fields.has("change") {
        return refer_form(&state, &id, &fields, &headers, Vec::new()).await;
    }
    let Some(kind) = ReferralKind::parse(fields.get("kind")) else {
        return refer_form(&state, &id, &fields, &headers, error("kind", "Choose refer or signpost".into())).await;
    };
    let actor = viewer.actor(ip);
    let referrals = state.referrals();
    let consent = (fields.get("consent") == "yes").then(|| {
        ("Name, contact details and the reason for referral".to_owned(), "the group that runs the service".to_owned())
    });
    // Everything is checked before anything is written, and every problem is shown at
    // once, beside its field (the GOV.UK error summary pattern).
    let mut errors: Vec<FieldError> = Vec::new();
    let mut add = |problems: Vec<kith_app::referrals::FieldProblem>| {
        errors.extend(field_errors(problems));
    };
    match referrals.check_new(kind, service_id, fields.get("reason"), consent.as_ref()).await {
        Ok(()) => {}
        Err(ReferralError::Fields(problems)) => add(problems),
        Err(e) => return Err(page_error(e, &headers)),
    }
    // An NHS number this practice already holds is the same person.
    let existing = match NhsNumber::parse(fields.get("nhs_number")) {
        Ok(n) => referrals.patient_with_nhs_number(&current.user, &actor, practice, &n).await.or_page(&headers)?,
        Err(_) => None,
    };
    let new_patient = NewPatient {
        organisation_id: practice,
        name: fields.get("name").to_owned(),
        birth_date: birth_date(&fields),
        nhs_number: Some(fields.get("nhs_number").to_owned()),
        local_id: Some(fields.get("local_id").to_owned()),
        email: Some(fields.get("email").to_owned()),
        mobile: Some(fields.get("mobile").to_owned()),
        phone: None,
        postcode: Some(fields.get("postcode").to_owned()),
        contact_method: ContactMethod::parse(fields.get("contact")).unwrap_or(ContactMethod::Phone),
        language: Some(fields.get("language").trim().chars().take(60).collect()),
    };
    if existing.is_none() {
        add(referrals.patient_problems(&new_patient));
    }
    let baseline = match ons4_answers(&fields) {
        Ok(a) => a,
        Err(m) => {
            errors.push(FieldError { field: "ons4-1", message: m, suggestions: vec![] });
            None
        }
    };
    if !errors.is_empty() {
        return refer_form(&state, &id, &fields, &headers, errors).await;
    }
    match &existing {
        // A stored record is never used silently: the person at the desk confirms it is
        // them, against what is stored (partly hidden), first.
        Some(p) if fields.get("same_person") == p.id.to_string() => {}
        Some(_) if fields.get("same_person") == "no" => {
            let message = "This NHS number belongs to someone your practice already holds. Check it with the person, or leave it blank and use the practice's own id";
            return refer_form(&state, &id, &fields, &headers, error("nhs_number", message.into())).await;
        }
        Some(p) => return right_person(&state, &current.user, &actor, &id, p, &fields, &headers).await,
        None => {}
    }
    // Nothing is written until every answer has been read back (check your answers).
    if fields.get("step") != "send" {
        return check_answers(&state, service_id, kind, &fields, existing.is_some(), &headers).await;
    }
    let patient = match existing {
        Some(p) => p,
        None => match referrals.add_patient(&current.user, &actor, new_patient).await {
            Ok(p) => p,
            Err(ReferralError::Fields(problems)) => {
                return refer_form(&state, &id, &fields, &headers, field_errors(problems)).await;
            }
            Err(e) => return Err(page_error(e, &headers)),
        },
    };
    let new = NewReferral {
        kind,
        patient_id: patient.id,
        service_id,
        reason: fields.get("reason").to_owned(),
        what_matters: fields.get("what_matters").to_owned(),
        consent,
        safeguarding_note: Some(fields.get("safeguarding").to_owned()),
        follow_up_signpost: fields.get("follow_up") == "yes",
        baseline,
    };
    match referrals.refer(&current.user, &actor, new).await {
        Ok(r) => Ok(Redirect::to(&format!("/referrals/{}/sent", r.id)).into_response()),
        Err(ReferralError::Fields(problems)) => {
            refer_form(&state, &id, &fields, &headers, field_errors(problems)).await
        }
        Err(e) => Err(page_error(e, &headers)),
    }
}

/// A summary list's row: what was asked, the answer, and the form field that changes it
/// ("" for none).
#[derive(Debug)]
struct AnswerRow {
    key: &'static str,
    value: String,
    field: &'static str,
}

impl From<(&'static str, String, &'static str)> for AnswerRow {
    fn from((key, value, field): (&'static str, String, &'static str)) -> AnswerRow {
        AnswerRow { key, value, field }
    }
}

impl AnswerRow {
    /// What "Change" changes, for a screen reader: "Change reason", "Change NHS number".
    fn change_label(&self) -> String {
        let mut chars = self.key.chars();
        match (chars.next(), chars.next()) {
            (Some(first), Some(second)) if !second.is_uppercase() => {
                format!("{}{}", first.to_lowercase(), &self.key[first.len_utf8()..])
            }
            _ => self.key.to_owned(),
        }
    }
}

#[derive(Template)]
#[template(path = "refer_check.html")]
struct CheckAnswersPage {
    layout: Layout,
    service_id: String,
    service: String,
    group: String,
    referral: bool,
    sections: Vec<(&'static str, Vec<AnswerRow>)>,
    /// The form's answers, sent again with "Send" or "Change".
    carried: Vec<(String, String)>,
}

/// "Check your answers": every answer read back, each with a way to change it, before
/// anything is written.
async fn check_answers(
    state: &AppState,
    service_id: Uuid,
    kind: kith_domain::referral::ReferralKind,
    fields: &super::form::Fields,
    held: bool,
    headers: &HeaderMap,
) -> PageResult {
    use kith_domain::referral::{ContactMethod, NhsNumber, ReferralKind};
    let service = super::listed_service_by_id(state, service_id, headers).await?;
    let group = group_name(state.referrals().group_for(&service).await.or_page(headers)?);
    let referral = kind == ReferralKind::Referral;
    let given = |name: &str| Some(fields.get(name)).filter(|v| !v.is_empty()).map(str::to_owned);
    let mut person: Vec<(&'static str, String, &'static str)> = Vec::new();
    match NhsNumber::parse(fields.get("nhs_number")) {
        Ok(n) => person.push(("NHS number", n.formatted(), "nhs_number")),
        Err(_) => person.push(("Practice's patient id", fields.get("local_id").to_owned(), "local_id")),
    }
    if held {
        person.push(("Record", "The one your practice already holds, as you checked".into(), ""));
    } else {
        person.push(("Name", fields.get("name").to_owned(), "name"));
        if let Some(born) = birth_date(fields) {
            person.push(("Date of birth", born.format("%-d %B %Y").to_string(), "birth_day"));
        }
        for (label, name) in
            [("Mobile", "mobile"), ("Email", "email"), ("Postcode", "postcode"), ("Preferred language", "language")]
        {
            if let Some(v) = given(name) {
                person.push((label, v, name));
            }
        }
        let contact = ContactMethod::parse(fields.get("contact")).unwrap_or(ContactMethod::Phone);
        person.push(("How to contact them", contact_words(contact).to_owned(), "contact"));
    }
    let mut doing: Vec<(&'static str, String, &'static str)> = vec![(
        "What you are doing",
        if referral {
            format!("Referring them to {group}")
        } else {
            "Signposting: they have the details; nothing is shared".to_owned()
        },
        "kind",
    )];
    doing.push(("Reason", fields.get("reason").to_owned(), "reason"));
    for (label, name) in [("What matters to them", "what_matters"), ("Keeping them safe", "safeguarding")] {
        if let Some(v) = given(name) {
            doing.push((label, v, name));
        }
    }
    if referral {
        doing.push((
            "Agreed to share",
            format!("Name, contact details and the reason for referral, with {group}"),
            "consent",
        ));
    }
    let days = state.referrals().follow_up_days();
    let follow_up =
        if referral || fields.get("follow_up") == "yes" { format!("Yes, in {days} days") } else { "No".to_owned() };
    doing.push(("Follow-up", follow_up, if referral { "" } else { "follow_up" }));
    let wellbeing = match ons4_answers(fields) {
        Ok(Some(answers)) => answers.iter().map(u8::to_string).collect::<Vec<_>>().join(", "),
        _ => "Not asked".to_owned(),
    };
    doing.push(("Well-being now (ONS4)", wellbeing, "ons4-1"));
    let page = CheckAnswersPage {
        layout: Layout::new("Check your answers – Kith", headers),
        service_id: service.id.to_string(),
        service: service.name,
        group,
        referral,
        sections: vec![
            ("The person", person.into_iter().map(AnswerRow::from).collect()),
            ("What you are doing", doing.into_iter().map(AnswerRow::from).collect()),
        ],
        carried: fields.pairs_without(&["step", "change"]),
    };
    Ok(render(StatusCode::OK, &page))
}

#[derive(Template)]
#[template(path = "refer_sent.html")]
struct SentPage {
    layout: Layout,
    id: String,
    referral: bool,
    service: String,
    group: String,
    /// A short reference to quote: the first block of the referral's id.
    reference: String,
    follow_up: String,
}

/// The confirmation after a referral is sent or a signpost saved: what happens next.
pub async fn sent(
    State(state): State<AppState>,
    Extension(viewer): Extension<Viewer>,
    Extension(ClientIp(ip)): Extension<ClientIp>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> PageResult {
    let Ok(id) = Uuid::parse_str(&id) else {
        return Err(PageError::NotFound("There is no referral at this address.".into()).into_page(&headers));
    };
    let Some(current) = viewer.member() else { return Ok(Redirect::to("/signin").into_response()) };
    let refused = || PageError::Forbidden("Only the practice that referred sees this page.".into()).into_page(&headers);
    let Some(practice) = practice_of(&current.user) else { return Err(refused()) };
    let referrals = state.referrals();
    let (referral, _) = referrals.referral_details(&current.user, &viewer.actor(ip), id).await.or_page(&headers)?;
    if referral.referrer_org != practice {
        return Err(refused());
    }
    let service = super::listed_service_by_id(&state, referral.service_id, &headers).await?;
    let group = group_name(referrals.group_for(&service).await.or_page(&headers)?);
    let referral_kind = referral.kind == kith_domain::referral::ReferralKind::Referral;
    let title = if referral_kind { "Referral sent – Kith" } else { "Signpost saved – Kith" };
    let page = SentPage {
        layout: Layout::new(title, &headers),
        id: referral.id.to_string(),
        referral: referral_kind,
        service: service.name,
        group,
        reference: referral.id.simple().to_string()[..8].to_uppercase(),
        follow_up: referral
            .follow_up_due
            .map(|d| kith_domain::opening::uk_local(d).format("%-d %B %Y").to_string())
            .unwrap_or_default(),
    };
    Ok(render(StatusCode::OK, &page))
}
