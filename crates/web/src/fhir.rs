//! The FHIR R4 API under `/fhir`: referrals as ServiceRequest and Task, their Consent,
//! the Patient, outcome measures and follow-up outcomes as Observation, and the directory
//! as HealthcareService. Read, search by patient, status and date, and a Task's status
//! changed by a client. Sign-in and every rule about who may see what are the web's: each
//! handler goes through the [`Referrals`](kith_app::referrals::Referrals) service.

// The helpers below return a ready response as their error, which the handlers return
// at once; boxing it would only add noise.
#![allow(clippy::result_large_err)]

use crate::AppState;
use crate::auth::session::{ClientIp, Viewer};
use crate::auth::{Access, Routes};
use axum::Extension;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Duration, NaiveDate, Utc};
use kith_app::referrals::{ReferralError, ReferralView};
use kith_domain::account::{Permission, UserRecord};
use kith_domain::referral::{ReferralRecord, TaskStatus};
use kith_fhir::{IssueSeverity, IssueType, ReferralNames, Resource};
use kith_store::referrals::ReferralQuery;
use uuid::Uuid;

const FHIR_JSON: &str = "application/fhir+json; charset=utf-8";
const DEFAULT_COUNT: u32 = 50;
const MAX_COUNT: u32 = 200;

/// The FHIR routes, with who may use each.
pub fn routes() -> Routes {
    use Access::{Permission as Needs, Public};
    Routes::new()
        .get("/fhir/metadata", Public, metadata)
        .get("/fhir/HealthcareService/{id}", Public, healthcare_service)
        .get("/fhir/ServiceRequest", Needs(Permission::PatientData), search_service_requests)
        .get("/fhir/ServiceRequest/{id}", Needs(Permission::PatientData), service_request)
        .get("/fhir/Task", Needs(Permission::PatientData), search_tasks)
        .get("/fhir/Task/{id}", Needs(Permission::PatientData), task)
        .put("/fhir/Task/{id}", Needs(Permission::PatientData), update_task)
        .patch("/fhir/Task/{id}", Needs(Permission::PatientData), update_task)
        .get("/fhir/Consent/{id}", Needs(Permission::PatientData), consent)
        .get("/fhir/Patient/{id}", Needs(Permission::PatientData), patient)
        .get("/fhir/Observation", Needs(Permission::PatientData), search_observations)
        .get("/fhir/Observation/{id}", Needs(Permission::PatientData), observation)
}

fn base(state: &AppState) -> String {
    format!("{}/fhir", state.public_url)
}

fn reply(status: StatusCode, body: &impl serde::Serialize) -> Response {
    match serde_json::to_vec(body) {
        // Resources name patients: no browser or proxy keeps a copy.
        Ok(json) => {
            (status, [(header::CONTENT_TYPE, FHIR_JSON), (header::CACHE_CONTROL, "no-store")], json).into_response()
        }
        Err(e) => problem(StatusCode::INTERNAL_SERVER_ERROR, IssueType::Exception, &e.to_string()),
    }
}

/// An OperationOutcome saying what went wrong.
fn problem(status: StatusCode, code: IssueType, diagnostics: &str) -> Response {
    let outcome = kith_fhir::operation_outcome(IssueSeverity::Error, code, diagnostics);
    match serde_json::to_vec(&outcome) {
        Ok(json) => {
            (status, [(header::CONTENT_TYPE, FHIR_JSON), (header::CACHE_CONTROL, "no-store")], json).into_response()
        }
        Err(_) => status.into_response(),
    }
}

/// A request refused for its form (400), as an OperationOutcome.
pub fn bad_request(message: &str) -> Response {
    problem(StatusCode::BAD_REQUEST, IssueType::Invalid, message)
}

/// A refusal by the access rule of a FHIR route, as an OperationOutcome.
pub fn refusal(status: StatusCode, message: &str) -> Response {
    let code = if status == StatusCode::UNAUTHORIZED { IssueType::Login } else { IssueType::Forbidden };
    problem(status, code, message)
}

fn refused(e: ReferralError) -> Response {
    match e {
        ReferralError::Forbidden(m) => problem(StatusCode::FORBIDDEN, IssueType::Forbidden, &m),
        ReferralError::NotFound(what) => {
            problem(StatusCode::NOT_FOUND, IssueType::NotFound, &format!("There is no such {what}"))
        }
        ReferralError::Invalid(m) => problem(StatusCode::UNPROCESSABLE_ENTITY, IssueType::BusinessRule, &m),
        ReferralError::Conflict(m) => problem(StatusCode::CONFLICT, IssueType::Conflict, &m),
        ReferralError::Ended(m) => problem(StatusCode::GONE, IssueType::Deleted, &m),
        ReferralError::Fields(problems) => {
            let message = problems.into_iter().map(|p| p.message).collect::<Vec<_>>().join(". ");
            problem(StatusCode::UNPROCESSABLE_ENTITY, IssueType::BusinessRule, &message)
        }
        e => {
            tracing::error!(error = %e, "FHIR request failed");
            problem(StatusCode::SERVICE_UNAVAILABLE, IssueType::Exception, "Kith cannot answer just now; try again")
        }
    }
}

/// A FHIR answer: the resource, or an OperationOutcome saying why not. Either way a
/// response, so a handler's refusals are `?`.
pub type Answer = Result<Response, Response>;

fn store_failed(e: kith_store::StoreError) -> Response {
    refused(ReferralError::Store(e))
}

fn not_found(kind: &str) -> Response {
    problem(StatusCode::NOT_FOUND, IssueType::NotFound, &format!("There is no {kind} with that id"))
}

fn signed_in(viewer: &Viewer) -> Result<&UserRecord, Response> {
    viewer
        .member()
        .map(|c| &c.user)
        .ok_or_else(|| problem(StatusCode::UNAUTHORIZED, IssueType::Login, "Sign in to use the FHIR API"))
}

fn parse_id(id: &str, kind: &str) -> Result<Uuid, Response> {
    Uuid::parse_str(id).map_err(|_| not_found(kind))
}

pub async fn metadata(State(state): State<AppState>) -> Response {
    reply(StatusCode::OK, &kith_fhir::capability_statement(&base(&state), state.clock.now()))
}

pub async fn healthcare_service(State(state): State<AppState>, Path(id): Path<String>) -> Answer {
    let id = parse_id(&id, "HealthcareService")?;
    let service = state.service(id).await.map_err(store_failed)?.ok_or_else(|| not_found("HealthcareService"))?;
    let org = match service.organization_id {
        Some(o) => state.organization_name(o).await.ok().flatten(),
        None => None,
    };
    Ok(reply(StatusCode::OK, &kith_fhir::healthcare_service(&base(&state), &service, org.as_deref())))
}

/// A referral as its viewer may see it, with the names its resources show.
struct Loaded(ReferralView);

impl std::ops::Deref for Loaded {
    type Target = ReferralView;
    fn deref(&self) -> &ReferralView {
        &self.0
    }
}

impl Loaded {
    fn names(&self) -> ReferralNames<'_> {
        ReferralNames {
            patient: &self.patient.name,
            practice: &self.practice,
            group: self.group.as_deref(),
            service: self.service.as_deref().unwrap_or("A service"),
        }
    }
}

async fn load(
    state: &AppState,
    user: &UserRecord,
    actor: &kith_app::accounts::Actor,
    id: Uuid,
) -> Result<Loaded, Response> {
    load_checked(state, user, actor, id).await.map_err(refused)
}

/// A referral with its names, or why `user` may not have it.
async fn load_checked(
    state: &AppState,
    user: &UserRecord,
    actor: &kith_app::accounts::Actor,
    id: Uuid,
) -> Result<Loaded, ReferralError> {
    Ok(Loaded(state.referrals().view(user, actor, id, "FHIR API").await?))
}

fn task_of(state: &AppState, loaded: &Loaded) -> kith_fhir::Task {
    kith_fhir::task(&base(state), &loaded.referral, &loaded.timeline, loaded.follow_up.as_ref(), &loaded.names())
}

macro_rules! read_handler {
    ($name:ident, $kind:literal, |$state:ident, $loaded:ident| $make:expr) => {
        pub async fn $name(
            State($state): State<AppState>,
            Extension(viewer): Extension<Viewer>,
            Extension(ClientIp(ip)): Extension<ClientIp>,
            Path(id): Path<String>,
        ) -> Answer {
            let user = signed_in(&viewer)?;
            let id = parse_id(&id, $kind)?;
            let $loaded = load(&$state, user, &viewer.actor(ip), id).await?;
            $make
        }
    };
}

read_handler!(service_request, "ServiceRequest", |state, loaded| {
    Ok(reply(
        StatusCode::OK,
        &kith_fhir::service_request(&base(&state), &loaded.referral, &loaded.details, &loaded.names()),
    ))
});

read_handler!(task, "Task", |state, loaded| {
    if loaded.referral.kind == kith_domain::referral::ReferralKind::Signpost {
        return Err(not_found("Task"));
    }
    Ok(reply(StatusCode::OK, &task_of(&state, &loaded)))
});

read_handler!(consent, "Consent", |state, loaded| {
    let _ = &state;
    match &loaded.details.consent {
        Some(c) => Ok(reply(StatusCode::OK, &kith_fhir::consent(&loaded.referral, c, &loaded.names()))),
        None => Err(not_found("Consent")),
    }
});

pub async fn patient(
    State(state): State<AppState>,
    Extension(viewer): Extension<Viewer>,
    Extension(ClientIp(ip)): Extension<ClientIp>,
    Path(id): Path<String>,
) -> Answer {
    let user = signed_in(&viewer)?;
    let id = Uuid::parse_str(&id).map_err(|_| not_found("Patient"))?;
    let (record, details) =
        state.referrals().patient(user, &viewer.actor(ip), id, "FHIR API").await.map_err(refused)?;
    let practice = match state.accounts.organisation_name(record.organisation_id).await {
        Ok(name) => name.unwrap_or_else(|| "The practice".to_owned()),
        Err(e) => {
            tracing::error!(error = %e, "a practice's name could not be read");
            return Err(problem(
                StatusCode::SERVICE_UNAVAILABLE,
                IssueType::Exception,
                "Kith cannot answer just now; try again",
            ));
        }
    };
    Ok(reply(StatusCode::OK, &kith_fhir::patient(&base(&state), &record, &details, &practice)))
}

/// Observations: an outcome measure by its id, or a follow-up outcome as `outcome-{referral}`.
pub async fn observation(
    State(state): State<AppState>,
    Extension(viewer): Extension<Viewer>,
    Extension(ClientIp(ip)): Extension<ClientIp>,
    Path(id): Path<String>,
) -> Answer {
    let user = signed_in(&viewer)?;
    let actor = viewer.actor(ip);
    if let Some(referral) = id.strip_prefix("outcome-").and_then(|r| Uuid::parse_str(r).ok()) {
        let (record, _, follow_up) = state.referrals().measures(user, &actor, referral).await.map_err(refused)?;
        return match follow_up.and_then(|f| kith_fhir::outcome_observation(&base(&state), &f, record.patient_id)) {
            Some(o) => Ok(reply(StatusCode::OK, &o)),
            None => Err(not_found("Observation")),
        };
    }
    let id = Uuid::parse_str(&id).map_err(|_| not_found("Observation"))?;
    let referrals = state.referrals();
    let measure = referrals.measure(user, &actor, id).await.map_err(|e| match e {
        ReferralError::NotFound(_) => not_found("Observation"),
        e => refused(e),
    })?;
    Ok(reply(StatusCode::OK, &kith_fhir::measure_observation(&base(&state), &measure, referrals.instrument())))
}

/// Search parameters, checked: anything Kith does not understand is refused, not ignored.
struct Search {
    patient: Option<Uuid>,
    status: Option<String>,
    from: Option<DateTime<Utc>>,
    before: Option<DateTime<Utc>>,
    count: u32,
    offset: u32,
}

fn bad_search(message: &str) -> Response {
    problem(StatusCode::BAD_REQUEST, IssueType::Invalid, message)
}

/// A FHIR date search value: `2026-04-01`, with `ge`, `gt`, `le`, `lt` or `eq` before it.
fn date_bounds(value: &str, search: &mut Search) -> Result<(), String> {
    let (prefix, date) = match value.get(..2) {
        Some(p @ ("ge" | "gt" | "le" | "lt" | "eq")) => (p, &value[2..]),
        _ => ("eq", value),
    };
    let day = NaiveDate::parse_from_str(date.get(..10).unwrap_or(date), "%Y-%m-%d")
        .map_err(|_| format!("{value:?} is not a date search: use a date like ge2026-04-01"))?;
    let start = day.and_hms_opt(0, 0, 0).map(|t| t.and_utc()).ok_or_else(|| "bad date".to_owned())?;
    let end = start + Duration::days(1);
    match prefix {
        "ge" => search.from = Some(start),
        "gt" => search.from = Some(end),
        "le" => search.before = Some(end),
        "lt" => search.before = Some(start),
        _ => {
            search.from = Some(start);
            search.before = Some(end);
        }
    }
    Ok(())
}

fn parse_search(raw: Option<&str>, date_param: &str, allowed: &[&str]) -> Result<Search, String> {
    let mut search = Search { patient: None, status: None, from: None, before: None, count: DEFAULT_COUNT, offset: 0 };
    for (key, value) in form_urlencoded::parse(raw.unwrap_or("").as_bytes()) {
        let key = key.as_ref();
        match key {
            "patient" | "subject" => {
                let id = value.strip_prefix("Patient/").unwrap_or(&value);
                search.patient =
                    Some(Uuid::parse_str(id).map_err(|_| format!("{key} must be Patient/<id>, not {value:?}"))?);
            }
            "status" => search.status = Some(value.into_owned()),
            "_count" => {
                let n: u32 = value.parse().map_err(|_| format!("_count must be a whole number, not {value:?}"))?;
                search.count = n.clamp(1, MAX_COUNT);
            }
            "_offset" => {
                search.offset = value.parse().map_err(|_| format!("_offset must be a whole number, not {value:?}"))?;
            }
            k if k == date_param => date_bounds(&value, &mut search)?,
            "_format" if value.contains("json") => {}
            k => {
                return Err(format!(
                    "Kith does not search by {k:?} here; it can search by {}, _count and _offset",
                    allowed.join(", ")
                ));
            }
        }
    }
    Ok(search)
}

fn self_url(state: &AppState, kind: &str, raw: Option<&str>) -> String {
    match raw {
        Some(q) if !q.is_empty() => format!("{}/{kind}?{q}", base(state)),
        _ => format!("{}/{kind}", base(state)),
    }
}

fn next_url(state: &AppState, kind: &str, raw: Option<&str>, search: &Search, more: bool) -> Option<String> {
    more.then(|| {
        let kept: Vec<String> = form_urlencoded::parse(raw.unwrap_or("").as_bytes())
            .filter(|(k, _)| k != "_offset")
            .map(|(k, v)| format!("{}={}", k, form_urlencoded::byte_serialize(v.as_bytes()).collect::<String>()))
            .collect();
        let offset = search.offset + search.count;
        let q =
            if kept.is_empty() { format!("_offset={offset}") } else { format!("{}&_offset={offset}", kept.join("&")) };
        format!("{}/{kind}?{q}", base(state))
    })
}

async fn search_referrals(
    state: &AppState,
    viewer: &Viewer,
    ip: Option<String>,
    raw: Option<&str>,
    kind: &str,
) -> Answer {
    let user = signed_in(viewer)?;
    let (date_param, allowed): (&str, &[&str]) = match kind {
        "Task" => ("authored-on", &["patient", "status", "authored-on"]),
        _ => ("authored", &["patient", "status", "authored"]),
    };
    let search = parse_search(raw, date_param, allowed).map_err(|m| bad_search(&m))?;
    // Task statuses are Kith's own; ServiceRequest statuses summarise them.
    let task_status = match (kind, search.status.as_deref()) {
        ("Task", Some(code)) => match TaskStatus::parse(code) {
            Some(s) => Some(s),
            None => return Err(bad_search(&format!("{code:?} is not a Task status"))),
        },
        _ => None,
    };
    let request_status = match (kind, search.status.as_deref()) {
        ("ServiceRequest", Some("active")) => Some(kith_fhir::RequestStatus::Active),
        ("ServiceRequest", Some("on-hold")) => Some(kith_fhir::RequestStatus::OnHold),
        ("ServiceRequest", Some("completed")) => Some(kith_fhir::RequestStatus::Completed),
        ("ServiceRequest", Some("revoked")) => Some(kith_fhir::RequestStatus::Revoked),
        ("ServiceRequest", Some(code)) => {
            return Err(bad_search(&format!("{code:?} is not a status: use active, on-hold, completed or revoked")));
        }
        _ => None,
    };
    let actor = viewer.actor(ip);
    let query = ReferralQuery {
        visible_to: Vec::new(),
        patient: search.patient,
        status: task_status,
        kind: (kind == "Task").then_some(kith_domain::referral::ReferralKind::Referral),
        from: search.from,
        before: search.before,
        limit: if request_status.is_some() { 1000 } else { search.count + 1 },
        offset: if request_status.is_some() { 0 } else { search.offset },
    };
    let found = state.referrals().search(user, &actor, query).await.map_err(refused)?;
    // A ServiceRequest's status follows from the referral's, so the page is chosen
    // before anything is opened: only the referrals shown are read (and audited).
    let (window, more): (Vec<&ReferralRecord>, bool) = match request_status {
        Some(wanted) => {
            let matching: Vec<&ReferralRecord> =
                found.iter().filter(|r| kith_fhir::RequestStatus::of(r.status) == wanted).collect();
            let more = matching.len() > (search.offset + search.count) as usize;
            (matching.into_iter().skip(search.offset as usize).take(search.count as usize).collect(), more)
        }
        None => (found.iter().take(search.count as usize).collect(), found.len() > search.count as usize),
    };
    let mut page = Vec::new();
    for referral in window {
        // A referral this person may not open (one that ended, for a group) is left out
        // of the results; it does not refuse the whole search.
        let loaded = match load_checked(state, user, &actor, referral.id).await {
            Ok(l) => l,
            Err(ReferralError::Forbidden(_) | ReferralError::Ended(_)) => continue,
            Err(e) => return Err(refused(e)),
        };
        let resource: Resource = if kind == "Task" {
            task_of(state, &loaded).into()
        } else {
            kith_fhir::service_request(&base(state), &loaded.referral, &loaded.details, &loaded.names()).into()
        };
        page.push(resource);
    }
    let total = u64::from(search.offset) + page.len() as u64 + u64::from(more);
    let next = next_url(state, kind, raw, &search, more);
    let bundle = kith_fhir::bundle_searchset(&base(state), &self_url(state, kind, raw), total, page, next);
    Ok(reply(StatusCode::OK, &bundle))
}

pub async fn search_service_requests(
    State(state): State<AppState>,
    Extension(viewer): Extension<Viewer>,
    Extension(ClientIp(ip)): Extension<ClientIp>,
    RawQuery(raw): RawQuery,
) -> Answer {
    search_referrals(&state, &viewer, ip, raw.as_deref(), "ServiceRequest").await
}

pub async fn search_tasks(
    State(state): State<AppState>,
    Extension(viewer): Extension<Viewer>,
    Extension(ClientIp(ip)): Extension<ClientIp>,
    RawQuery(raw): RawQuery,
) -> Answer {
    search_referrals(&state, &viewer, ip, raw.as_deref(), "Task").await
}

/// A patient's outcome measures and follow-up outcomes.
pub async fn search_observations(
    State(state): State<AppState>,
    Extension(viewer): Extension<Viewer>,
    Extension(ClientIp(ip)): Extension<ClientIp>,
    RawQuery(raw): RawQuery,
) -> Answer {
    let user = signed_in(&viewer)?;
    let search = parse_search(raw.as_deref(), "date", &["patient"]).map_err(|m| bad_search(&m))?;
    let Some(patient) = search.patient else {
        return Err(bad_search("Search Observations by patient: Observation?patient=Patient/<id>"));
    };
    let actor = viewer.actor(ip);
    let query = ReferralQuery { patient: Some(patient), limit: 500, ..Default::default() };
    let found = state.referrals().search(user, &actor, query).await.map_err(refused)?;
    let referrals = state.referrals();
    let mut resources: Vec<Resource> = Vec::new();
    for referral in &found {
        // Only the practice sees well-being answers and follow-up outcomes.
        let (_, measures, follow_up) = match referrals.measures(user, &actor, referral.id).await {
            Ok(found) => found,
            Err(ReferralError::Forbidden(_)) => continue,
            Err(e) => return Err(refused(e)),
        };
        for m in &measures {
            resources.push(kith_fhir::measure_observation(&base(&state), m, referrals.instrument()).into());
        }
        if let Some(o) = follow_up.and_then(|f| kith_fhir::outcome_observation(&base(&state), &f, patient)) {
            resources.push(o.into());
        }
    }
    let total = resources.len() as u64;
    let page: Vec<Resource> = resources.into_iter().skip(search.offset as usize).take(search.count as usize).collect();
    let more = total > u64::from(search.offset + search.count);
    let next = next_url(&state, "Observation", raw.as_deref(), &search, more);
    let bundle =
        kith_fhir::bundle_searchset(&base(&state), &self_url(&state, "Observation", raw.as_deref()), total, page, next);
    Ok(reply(StatusCode::OK, &bundle))
}

/// A client changes a Task's status: the whole Task with a new status, or a JSON Patch.
/// The same rules as the web decide who may and which moves are allowed.
pub async fn update_task(
    State(state): State<AppState>,
    Extension(viewer): Extension<Viewer>,
    Extension(ClientIp(ip)): Extension<ClientIp>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Answer {
    let user = signed_in(&viewer)?;
    let id = parse_id(&id, "Task")?;
    let json_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|t| t.starts_with("application/fhir+json") || t.contains("json"));
    if !json_type {
        return Err(problem(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            IssueType::Invalid,
            "Send the Task as application/fhir+json, or a patch as application/json-patch+json",
        ));
    }
    let value: serde_json::Value = serde_json::from_slice(&body)
        .map_err(|e| problem(StatusCode::BAD_REQUEST, IssueType::Structure, &format!("The body is not JSON: {e}")))?;
    if let Some(body_id) = value.get("id").and_then(|v| v.as_str())
        && body_id != id.to_string()
    {
        return Err(problem(
            StatusCode::BAD_REQUEST,
            IssueType::Invalid,
            "The Task's id must match the address it is sent to",
        ));
    }
    let (to, reason) = kith_fhir::requested_status(&value)
        .map_err(|e| problem(StatusCode::UNPROCESSABLE_ENTITY, IssueType::Invalid, &e.to_string()))?;
    let actor = viewer.actor(ip);
    state.referrals().move_to(user, &actor, id, to, reason.as_deref().unwrap_or("")).await.map_err(|e| match e {
        ReferralError::NotFound(_) => not_found("Task"),
        e => refused(e),
    })?;
    let loaded = load(&state, user, &actor, id).await?;
    Ok(reply(StatusCode::OK, &task_of(&state, &loaded)))
}
