//! A practice's caseload: the follow-ups that are due, and the Links measure of how many
//! people signposted and referred started, and are still going four weeks on.

use super::form::Fields;
use super::{Layout, OrPage, PageError, PageResult, render};
use crate::AppState;
use crate::auth::session::{ClientIp, Viewer};
use askama::Template;
use axum::Extension;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use chrono::{DateTime, Duration, NaiveDate, Utc};
use kith_app::referrals::PublishedLinks;
use kith_domain::disclosure::{SMALLEST_SHOWN, Shown, ShownLinks};

#[derive(Debug)]
struct FollowUpRow {
    id: String,
    due: String,
    service: String,
    overdue: bool,
    due_now: bool,
    group_says: String,
}

#[derive(Template)]
#[template(path = "follow_ups.html")]
struct FollowUpsPage {
    layout: Layout,
    rows: Vec<FollowUpRow>,
}

/// The practice's open follow-ups, soonest first, with those due and overdue marked.
pub async fn follow_ups(
    State(state): State<AppState>,
    Extension(viewer): Extension<Viewer>,
    Extension(ClientIp(ip)): Extension<ClientIp>,
    headers: HeaderMap,
) -> PageResult {
    let Some(current) = viewer.member() else { return Ok(Redirect::to("/signin").into_response()) };
    let actor = viewer.actor(ip);
    let open = state.referrals().follow_ups(&current.user, &actor).await.or_page(&headers)?;
    let now = state.clock.now();
    let names =
        state.service_names(&open.iter().map(|(_, r)| r.service_id).collect::<Vec<_>>()).await.or_page(&headers)?;
    let mut rows = Vec::with_capacity(open.len());
    for (f, r) in open {
        let service = names.get(&r.service_id).cloned().unwrap_or_else(|| "a service no longer listed".into());
        rows.push(FollowUpRow {
            id: r.id.to_string(),
            due: kith_domain::opening::uk_local(f.due_at).format("%-d %B %Y").to_string(),
            service,
            overdue: f.is_overdue(now),
            due_now: f.due_at <= now,
            group_says: f.attendance.map(|a| a.describe()).unwrap_or_default(),
        });
    }
    Ok(render(StatusCode::OK, &FollowUpsPage { layout: Layout::new("Follow-ups – Kith", &headers), rows }))
}

#[derive(Template)]
#[template(path = "links_report.html")]
struct LinksPage {
    layout: Layout,
    from: String,
    to: String,
    report: PublishedLinks,
    /// (heading, rows of name and counts): by practice, then by service.
    tables: Vec<(&'static str, Vec<(String, ShownLinks)>)>,
    csv_href: String,
    error: Option<String>,
}

/// A share as a whole percentage, or a dash when there is nothing to divide by or a
/// count is withheld.
fn percent(part: Shown, whole: Option<u64>) -> String {
    match (part.count(), whole) {
        (Some(part), Some(whole)) => {
            (part * 100 + whole / 2).checked_div(whole).map_or_else(|| "–".to_owned(), |p| format!("{p}%"))
        }
        _ => "–".to_owned(),
    }
}

impl LinksPage {
    fn started_share(&self, c: &ShownLinks) -> String {
        percent(c.started, c.people())
    }

    fn attending_share(&self, c: &ShownLinks) -> String {
        percent(c.still_attending, c.people())
    }
}

/// Reads `from` and `to` (inclusive dates); by default the last twelve months.
fn period(fields: &Fields, now: DateTime<Utc>) -> Result<(NaiveDate, NaiveDate), String> {
    // Years far from now are refused rather than reckoned with: date arithmetic at the
    // edges of the calendar would overflow.
    let date = |name: &str, default: NaiveDate| match fields.get(name).trim() {
        "" => Ok(default),
        typed => NaiveDate::parse_from_str(typed, "%Y-%m-%d")
            .ok()
            .filter(|d| (1900..=2999).contains(&chrono::Datelike::year(d)))
            .ok_or_else(|| {
                format!("Enter the {name} date as year-month-day, like 2026-04-01, in a year from 1900 to 2999")
            }),
    };
    let today = now.date_naive();
    let to = date("to", today)?;
    let from = date("from", to - Duration::days(365))?;
    if from > to {
        return Err("The from date must be on or before the to date".into());
    }
    Ok((from, to))
}

fn start_of(day: NaiveDate) -> DateTime<Utc> {
    day.and_hms_opt(0, 0, 0).map_or_else(|| DateTime::<Utc>::MIN_UTC, |t| t.and_utc())
}

/// The Links measure on a page, or as CSV with `format=csv`.
pub async fn links(
    State(state): State<AppState>,
    Extension(viewer): Extension<Viewer>,
    Extension(ClientIp(ip)): Extension<ClientIp>,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
) -> PageResult {
    let Some(current) = viewer.member() else { return Ok(Redirect::to("/signin").into_response()) };
    let fields = Fields::parse(raw.as_deref());
    let format = fields.get("format");
    if !matches!(format, "" | "html" | "csv") {
        return Err(PageError::BadRequest("format is html or csv".into()).into_page(&headers));
    }
    let now = state.clock.now();
    let (from, to, error) = match period(&fields, now) {
        Ok((from, to)) => (from, to, None),
        Err(m) if format == "csv" => return Err(PageError::BadRequest(m).into_page(&headers)),
        Err(m) => (now.date_naive() - Duration::days(365), now.date_naive(), Some(m)),
    };
    let actor = viewer.actor(ip);
    let report = state
        .referrals()
        .links_report(&current.user, &actor, start_of(from), start_of(to + Duration::days(1)))
        .await
        .or_page(&headers)?;
    let report = report.published();
    if format == "csv" {
        return Ok(csv(&report, from, to));
    }
    let page = LinksPage {
        layout: Layout::new(
            if error.is_some() { "Error: Links report – Kith" } else { "Links report – Kith" },
            &headers,
        ),
        from: from.to_string(),
        to: to.to_string(),
        csv_href: format!("/reports/links?from={from}&to={to}&format=csv"),
        tables: vec![
            ("By practice", report.by_practice.iter().map(|(_, n, c)| (n.clone(), *c)).collect()),
            ("By service", report.by_service.iter().map(|(_, n, c)| (n.clone(), *c)).collect()),
        ],
        report,
        error,
    };
    let status = if page.error.is_some() { StatusCode::BAD_REQUEST } else { StatusCode::OK };
    Ok(render(status, &page))
}

fn csv(report: &PublishedLinks, from: NaiveDate, to: NaiveDate) -> Response {
    use super::admin::csv_field;
    let mut out =
        String::from("level,id,name,signposts,referrals,followed_up,started,still_attending_at_follow_up,from,to\r\n");
    // A withheld count is written as "<5", as published statistics do.
    let cell = |n: Shown| n.count().map_or_else(|| format!("<{SMALLEST_SHOWN}"), |n| n.to_string());
    let mut line = |level: &str, id: String, name: &str, c: &ShownLinks| {
        out.push_str(&format!(
            "{level},{id},{},{},{},{},{},{},{from},{to}\r\n",
            csv_field(name),
            cell(c.signposts),
            cell(c.referrals),
            cell(c.followed_up),
            cell(c.started),
            cell(c.still_attending)
        ));
    };
    line("overall", String::new(), "All practices in your reports", &report.overall);
    for (id, name, c) in &report.by_practice {
        line("practice", id.to_string(), name, c);
    }
    for (id, name, c) in &report.by_service {
        line("service", id.to_string(), name, c);
    }
    (
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_owned()),
            (header::CONTENT_DISPOSITION, format!("attachment; filename=\"kith-links-{from}-to-{to}.csv\"")),
            (header::CACHE_CONTROL, "no-store".to_owned()),
        ],
        out,
    )
        .into_response()
}
