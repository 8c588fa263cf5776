//! A service's page: everything a person needs to go, and when it was last checked.

use super::form::Fields;
use super::view::Detail;
use super::{Layout, PageError, render};
use crate::AppState;
use askama::Template;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use kith_domain::ServiceStatus;
use uuid::Uuid;

#[derive(Template)]
#[template(path = "service.html")]
struct ServicePage {
    layout: Layout,
    s: Detail,
    closed: Option<&'static str>,
    back: String,
    /// The search the person came from, so "Back to search" keeps it.
    search: String,
    /// Practice staff may refer or signpost someone from here.
    can_refer: bool,
    /// For curators, commissioners and the group: how referrals here turned out.
    /// In words, with small numbers withheld.
    outcomes: Option<String>,
}

/// The search the person came from, carried in `from` as that search's query string.
fn back_to_search(fields: &Fields) -> (String, String) {
    let from = fields.get("from");
    if from.is_empty() || from.contains(['\r', '\n']) {
        return ("/".to_owned(), String::new());
    }
    (format!("/?{from}"), format!("?{}", super::form::query_string(&[("from", from.to_owned())])))
}

pub async fn page(
    State(state): State<AppState>,
    Path(id): Path<String>,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
) -> Response {
    match show(&state, &id, &Fields::parse(raw.as_deref()), &headers).await {
        Ok(r) => r,
        Err(e) => e.into_page(&headers),
    }
}

async fn show(state: &AppState, id: &str, fields: &Fields, headers: &HeaderMap) -> Result<Response, PageError> {
    let missing = || {
        PageError::NotFound("There is no service at this address. It may have been removed from the directory.".into())
    };
    let id = Uuid::parse_str(id).map_err(|_| missing())?;
    let service = state.service(id).await?.ok_or_else(missing)?;
    let shortlist = super::shortlist::Shortlist::from_headers(headers);
    let closed = match service.status {
        ServiceStatus::Active => None,
        ServiceStatus::TemporarilyClosed => Some("This service is temporarily closed."),
        ServiceStatus::Inactive | ServiceStatus::Defunct => Some("This service has stopped running."),
    };
    let (search, from) = back_to_search(fields);
    let outcomes = match crate::auth::session::current_viewer().member() {
        Some(current) => state
            .referrals()
            .service_outcomes(&current.user, &service)
            .await
            .ok()
            .flatten()
            .map(|c| kith_domain::disclosure::service_outcome(&c)),
        None => None,
    };
    let mut detail = Detail::new(&service, state.clock.now(), shortlist.contains(id));
    let referring = state.organizations_taking_referrals().await?;
    super::mark_referrals([(&mut detail.card, service.organization_id)], &referring);
    let page = ServicePage {
        layout: Layout::new(format!("{} – Kith", service.name), headers),
        back: format!("/services/{id}{from}"),
        search,
        s: detail,
        closed,
        can_refer: super::may_refer(),
        outcomes,
    };
    Ok(render(StatusCode::OK, &page))
}
