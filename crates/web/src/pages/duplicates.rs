//! Curators' queue of likely duplicates: the two records side by side, with where each
//! came from and why they look alike, to merge or keep apart. Certain matches never
//! reach it; they are merged when found.

use super::form::Fields;
use super::{Layout, OrPage, PageError, PageResult, render};
use crate::AppState;
use crate::auth::session::{ClientIp, Viewer};
use askama::Template;
use axum::Extension;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect};
use kith_app::duplicates::{Decision, DuplicateError, PairView, Side};
use kith_domain::provenance::RecordKind;
use uuid::Uuid;

/// Pairs shown at once; deciding them brings the next ones.
const PAIRS_SHOWN: u32 = 50;

struct PairRow {
    id: String,
    what: &'static str,
    reason: String,
    found: String,
    a: Side,
    b: Side,
}

#[derive(Template)]
#[template(path = "curation_duplicates.html")]
struct DuplicatesPage {
    layout: Layout,
    pairs: Vec<PairRow>,
}

impl From<DuplicateError> for PageError {
    fn from(e: DuplicateError) -> Self {
        match e {
            DuplicateError::Store(e) => e.into(),
            DuplicateError::Invalid(m) => PageError::BadRequest(m),
        }
    }
}

fn row(view: PairView) -> PairRow {
    PairRow {
        id: view.pair.id.to_string(),
        what: match view.pair.kind {
            RecordKind::Organization => "Organisations",
            RecordKind::Service => "Services",
        },
        reason: view.pair.reason,
        found: view.pair.found_at.format("%-d %b %Y").to_string(),
        a: view.a,
        b: view.b,
    }
}

pub async fn page(State(state): State<AppState>, headers: HeaderMap) -> PageResult {
    let pairs = state.duplicates().waiting(PAIRS_SHOWN).await.or_page(&headers)?;
    let page = DuplicatesPage {
        layout: Layout::new("Duplicates – Kith", &headers),
        pairs: pairs.into_iter().map(row).collect(),
    };
    Ok(render(StatusCode::OK, &page))
}

pub async fn decide(
    State(state): State<AppState>,
    Extension(viewer): Extension<Viewer>,
    Extension(ClientIp(ip)): Extension<ClientIp>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> PageResult {
    let Ok(id) = Uuid::parse_str(&id) else {
        return Err(PageError::NotFound("There is no such pair of duplicates.".into()).into_page(&headers));
    };
    let fields = Fields::parse(std::str::from_utf8(&body).ok());
    let Some(decision) = Decision::parse(fields.get("decision")) else {
        return Err(
            PageError::BadRequest("Choose to merge the two records or keep them apart.".into()).into_page(&headers)
        );
    };
    let note = Some(fields.get("note").trim().to_owned()).filter(|n| !n.is_empty());
    state.duplicates().decide(&viewer.actor(ip), id, decision, note).await.or_page(&headers)?;
    Ok(Redirect::to("/curation/duplicates").into_response())
}
