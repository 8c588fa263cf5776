//! The audit log, for area administrators: read on a page, or downloaded as CSV. Reading
//! it is itself recorded.

use super::form::Fields;
use super::{Layout, OrPage, PageError, PageResult, render};
use crate::AppState;
use crate::auth::session::{ClientIp, Viewer};
use askama::Template;
use axum::Extension;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use kith_domain::account::{AuditEvent, AuditQuery};
use std::collections::HashMap;
use uuid::Uuid;

const PAGE: u32 = 100;
const EXPORT_LIMIT: u32 = 100_000;

/// The kinds of event Kith records, for the filter.
pub const ACTIONS: &[&str] = &[
    "access_denied",
    "account.view",
    "audit.export",
    "audit.view",
    "keys.rotate",
    "listing.verify",
    "magic_link.issue",
    "patient.create",
    "patient.read",
    "patient.read_refused",
    "referral.change_refused",
    "referral.create",
    "referral.inbox",
    "referral.follow_ups",
    "referral.outcome",
    "referral.outcome_refused",
    "referral.read",
    "referral.read_refused",
    "referral.reroute",
    "referral.search",
    "referral.status",
    "report.links",
    "recovery_code.used",
    "second_factor_failed",
    "shortlist.send",
    "signpost.create",
    "sign_in",
    "sign_in_failed",
    "sign_in_password",
    "sign_in_refused",
    "sign_out",
    "sign_out_everywhere",
    "two_factor.enrol",
    "user.create",
    "user.grant",
    "user.reset",
];

#[derive(Debug)]
struct Row {
    at: String,
    actor: String,
    roles: String,
    action: String,
    record: String,
    ip: String,
    reason: String,
}

#[derive(Template)]
#[template(path = "audit.html")]
struct AuditPage {
    layout: Layout,
    events: Vec<Row>,
    actions: &'static [&'static str],
    action: String,
    older: Option<i64>,
}

impl AuditPage {
    fn is_selected(&self, action: &str) -> bool {
        self.action == action
    }
}

fn row(e: &AuditEvent, names: &HashMap<Uuid, String>) -> Row {
    Row {
        at: e.at.format("%Y-%m-%d %H:%M:%S").to_string(),
        actor: e.actor.map_or_else(|| "—".to_owned(), |id| names.get(&id).cloned().unwrap_or_else(|| id.to_string())),
        roles: e.actor_roles.clone(),
        action: e.action.clone(),
        record: match &e.record_id {
            Some(id) => format!("{} {id}", e.record_type),
            None => e.record_type.clone(),
        },
        ip: e.ip.clone().unwrap_or_default(),
        reason: e.reason.clone(),
    }
}

fn query(fields: &Fields, limit: u32) -> Result<AuditQuery, PageError> {
    let action = fields.get("action");
    if !action.is_empty() && !ACTIONS.contains(&action) {
        return Err(PageError::BadRequest(format!("{action:?} is not a kind of audit event")));
    }
    let before_seq = match fields.get("before") {
        "" => None,
        n => Some(n.parse::<i64>().map_err(|_| PageError::BadRequest("before must be a whole number".into()))?),
    };
    Ok(AuditQuery { action: (!action.is_empty()).then(|| action.to_owned()), before_seq, limit, ..Default::default() })
}

pub async fn page(
    State(state): State<AppState>,
    Extension(viewer): Extension<Viewer>,
    Extension(ClientIp(ip)): Extension<ClientIp>,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
) -> PageResult {
    let fields = Fields::parse(raw.as_deref());
    let q = query(&fields, PAGE).or_page(&headers)?;
    let Some(admin) = viewer.member() else { return Err(StatusCode::FORBIDDEN.into_response()) };
    let action = q.action.clone().unwrap_or_default();
    let events = state
        .accounts
        .audit_log(&admin.user, &viewer.actor(ip), q, "audit.view", "admin page")
        .await
        .or_page(&headers)?;
    let names = state.accounts.actor_names(&events).await;
    let older = (events.len() == PAGE as usize).then(|| events.last().map(|e| e.seq)).flatten();
    let page = AuditPage {
        layout: Layout::new("Audit log – Kith", &headers),
        events: events.iter().map(|e| row(e, &names)).collect(),
        actions: ACTIONS,
        action,
        older,
    };
    Ok(render(StatusCode::OK, &page))
}

/// A CSV field, quoted when it must be, and defused if a spreadsheet would read it as a
/// formula.
pub(super) fn csv_field(value: &str) -> String {
    let value = if reads_as_formula(value) { format!("'{value}") } else { value.to_owned() };
    if value.contains([',', '"', '\n', '\r']) { format!("\"{}\"", value.replace('"', "\"\"")) } else { value }
}

/// Whether a spreadsheet could take `value` for a formula: it begins, after any spaces
/// (a no-break space included), with `=`, `+`, `-` or `@`, or their fullwidth forms
/// (which some spreadsheets fold to the plain ones), or with a tab or carriage return.
fn reads_as_formula(value: &str) -> bool {
    if value.starts_with(['\t', '\r']) {
        return true;
    }
    let first = value.trim_start_matches(|c: char| c.is_whitespace() || c == '\u{feff}').chars().next();
    matches!(first, Some('=' | '+' | '-' | '@' | '\u{ff1d}' | '\u{ff0b}' | '\u{ff0d}' | '\u{ff20}'))
}

pub async fn csv(
    State(state): State<AppState>,
    Extension(viewer): Extension<Viewer>,
    Extension(ClientIp(ip)): Extension<ClientIp>,
    RawQuery(raw): RawQuery,
) -> Response {
    let fields = Fields::parse(raw.as_deref());
    let q = match query(&fields, EXPORT_LIMIT) {
        Ok(q) => q,
        Err(PageError::BadRequest(m)) => return (StatusCode::BAD_REQUEST, m).into_response(),
        Err(_) => return StatusCode::BAD_REQUEST.into_response(),
    };
    let Some(admin) = viewer.member() else { return StatusCode::FORBIDDEN.into_response() };
    let events = match state.accounts.audit_log(&admin.user, &viewer.actor(ip), q, "audit.export", "CSV download").await
    {
        Ok(events) => events,
        Err(e) => {
            tracing::error!(error = %e, "the audit log could not be read");
            return (StatusCode::SERVICE_UNAVAILABLE, "The audit log cannot be read just now.").into_response();
        }
    };
    let names = state.accounts.actor_names(&events).await;
    let mut out = String::from("seq,at,actor_id,actor_name,actor_roles,action,record_type,record_id,ip,reason\r\n");
    for e in &events {
        let actor_name = e.actor.and_then(|id| names.get(&id).cloned()).unwrap_or_default();
        let cells = [
            e.seq.to_string(),
            e.at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            e.actor.map(|a| a.to_string()).unwrap_or_default(),
            actor_name,
            e.actor_roles.clone(),
            e.action.clone(),
            e.record_type.clone(),
            e.record_id.clone().unwrap_or_default(),
            e.ip.clone().unwrap_or_default(),
            e.reason.clone(),
        ];
        out.push_str(&cells.iter().map(|c| csv_field(c)).collect::<Vec<_>>().join(","));
        out.push_str("\r\n");
    }
    (
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8"),
            (header::CONTENT_DISPOSITION, "attachment; filename=\"kith-audit-log.csv\""),
            (header::CACHE_CONTROL, "no-store"),
        ],
        out,
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::csv_field;

    #[test]
    fn csv_fields_are_quoted_and_formulas_defused() {
        assert_eq!(csv_field("plain"), "plain");
        assert_eq!(csv_field("a,b"), "\"a,b\"");
        assert_eq!(csv_field("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(csv_field("=HYPERLINK(\"x\")"), "\"'=HYPERLINK(\"\"x\"\")\"");
        // Spaces before the sign, a no-break space, and the fullwidth forms (finding 6).
        assert_eq!(csv_field(" =1+1"), "' =1+1");
        assert_eq!(csv_field("\u{a0}=1+1"), "'\u{a0}=1+1");
        assert_eq!(csv_field("\u{ff1d}1+1"), "'\u{ff1d}1+1");
        assert_eq!(csv_field("\u{ff0b}44"), "'\u{ff0b}44");
        assert_eq!(csv_field("-"), "'-");
        assert_eq!(csv_field("a = b"), "a = b");
    }
}
