//! "Report a problem with this listing": anyone can say a listing is wrong; curators and
//! the group act on it. The form asks for no personal data.

use super::form::Fields;
use super::search::FieldError;
use super::{Layout, OrPage, PageError, PageResult, render};
use crate::AppState;
use askama::Template;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use kith_domain::report::{MAX_DETAILS, ProblemKind, ProblemReport, ReportError};
use uuid::Uuid;

#[derive(Debug, Clone)]
struct Choice {
    value: &'static str,
    label: &'static str,
    checked: bool,
}

#[derive(Template)]
#[template(path = "report.html")]
struct ReportPage {
    layout: Layout,
    service_id: String,
    service_name: String,
    choices: Vec<Choice>,
    details: String,
    max: usize,
    errors: Vec<FieldError>,
}

form_errors!(ReportPage);

#[derive(Template)]
#[template(path = "report_done.html")]
struct ReportDone {
    layout: Layout,
    service_id: String,
    service_name: String,
}

async fn service_name(state: &AppState, id: &str) -> Result<(Uuid, String), PageError> {
    let missing = || {
        PageError::NotFound("There is no service at this address. It may have been removed from the directory.".into())
    };
    let id = Uuid::parse_str(id).map_err(|_| missing())?;
    let service = state.service(id).await?.ok_or_else(missing)?;
    Ok((id, service.name))
}

fn form(
    headers: &HeaderMap,
    id: Uuid,
    name: String,
    kind: Option<ProblemKind>,
    details: String,
    errors: Vec<FieldError>,
) -> ReportPage {
    let title = if errors.is_empty() {
        format!("Report a problem with {name} – Kith")
    } else {
        format!("Error: Report a problem with {name} – Kith")
    };
    ReportPage {
        layout: Layout::new(title, headers),
        service_id: id.to_string(),
        service_name: name,
        choices: ProblemKind::ALL
            .iter()
            .map(|k| Choice { value: k.as_str(), label: k.label(), checked: kind == Some(*k) })
            .collect(),
        details,
        max: MAX_DETAILS,
        errors,
    }
}

pub async fn page(State(state): State<AppState>, Path(id): Path<String>, headers: HeaderMap) -> Response {
    match service_name(&state, &id).await {
        Ok((id, name)) => render(StatusCode::OK, &form(&headers, id, name, None, String::new(), Vec::new())),
        Err(e) => e.into_page(&headers),
    }
}

/// Reports one address (or IPv6 /64) may send in the sign-in window, and reports one
/// listing may receive: enough for anyone with something to say, not a flood.
const REPORTS_PER_ADDRESS: u32 = 5;
const REPORTS_PER_LISTING: u32 = 20;

pub async fn submit(
    State(state): State<AppState>,
    axum::Extension(crate::auth::ClientIp(ip)): axum::Extension<crate::auth::ClientIp>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> PageResult {
    let (id, name) = service_name(&state, &id).await.or_page(&headers)?;
    let fields = Fields::parse(std::str::from_utf8(&body).ok());
    let kind = ProblemKind::parse(fields.get("kind"));
    let details = fields.get("details").to_owned();
    let report = match ProblemReport::new(Uuid::new_v4(), id, kind, &details, state.clock.now()) {
        Ok(report) => report,
        Err(problems) => {
            let errors = problems
                .into_iter()
                .map(|p| FieldError {
                    field: if p == ReportError::NoKind { "kind" } else { "details" },
                    message: p.to_string(),
                    suggestions: Vec::new(),
                })
                .collect();
            return Ok(render(StatusCode::BAD_REQUEST, &form(&headers, id, name, kind, details, errors)));
        }
    };
    let from = ip.as_deref().map_or_else(|| "unknown".to_owned(), kith_app::accounts::limit_address);
    let allowed = match state.accounts.allow_attempt(&format!("report:{from}"), REPORTS_PER_ADDRESS).await {
        Ok(true) => state.accounts.allow_attempt(&format!("report-listing:{id}"), REPORTS_PER_LISTING).await,
        other => other,
    };
    match allowed {
        Ok(true) => {}
        Ok(false) => {
            let minutes = kith_app::accounts::WINDOW_MINUTES;
            return Err(PageError::TooMany(format!(
                "Several reports about this have been sent from here already. Thank you: wait {minutes} minutes before sending another."
            ))
            .into_page(&headers));
        }
        Err(e) => {
            tracing::error!(error = %e, "a problem report's limit could not be checked");
            return Err(PageError::Unavailable(
                "Kith cannot take reports just now. Please try again in a minute.".into(),
            )
            .into_page(&headers));
        }
    }
    state.report_problem(report).await.or_page(&headers)?;
    let done = ReportDone {
        layout: Layout::new("Thank you for reporting a problem – Kith", &headers),
        service_id: id.to_string(),
        service_name: name,
    };
    Ok(render(StatusCode::OK, &done))
}
