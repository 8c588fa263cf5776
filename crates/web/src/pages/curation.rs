//! Curators' view of the feeds Kith pulls: each feed's recent pulls (what they found and
//! what went wrong) and the services their sources have stopped listing.

use super::{Layout, OrPage, PageError, PageResult, render};
use crate::AppState;
use askama::Template;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use kith_app::feeds::{FeedError, Withdrawn};
use kith_domain::feed::FeedPull;

/// Pulls shown for each feed.
const PULLS_SHOWN: u32 = 5;
/// Withdrawn services shown.
const WITHDRAWN_SHOWN: u32 = 200;

struct PullRow {
    when: String,
    took: String,
    pages: u32,
    outcome: String,
    problems: Vec<String>,
    failed: bool,
}

struct FeedRow {
    name: String,
    url: String,
    every: String,
    areas: String,
    withdraw_after: u32,
    pulls: Vec<PullRow>,
}

struct WithdrawnRow {
    service_id: String,
    name: String,
    source: String,
    when: String,
    last_seen: String,
    still_listed: bool,
}

#[derive(Template)]
#[template(path = "curation_feeds.html")]
struct FeedsPage {
    layout: Layout,
    feeds: Vec<FeedRow>,
    withdrawn: Vec<WithdrawnRow>,
}

fn when(at: chrono::DateTime<chrono::Utc>) -> String {
    at.format("%-d %b %Y %H:%M").to_string()
}

fn pull_row(p: &FeedPull) -> PullRow {
    PullRow {
        when: when(p.started_at),
        took: p.took(),
        pages: p.pages,
        outcome: match &p.error {
            None => p.summary(),
            Some(e) => format!("Failed, nothing from it was written: {e}"),
        },
        problems: p.problems.clone(),
        failed: p.error.is_some(),
    }
}

fn withdrawn_row(w: Withdrawn) -> WithdrawnRow {
    WithdrawnRow {
        service_id: w.service_id.to_string(),
        name: w.name,
        source: w.source,
        when: when(w.withdrawn_at),
        last_seen: when(w.last_seen),
        still_listed: w.still_listed,
    }
}

impl From<FeedError> for PageError {
    fn from(e: FeedError) -> Self {
        match e {
            FeedError::Store(e) => e.into(),
            other => PageError::BadRequest(other.to_string()),
        }
    }
}

pub async fn feeds(State(state): State<AppState>, headers: HeaderMap) -> PageResult {
    let feeds = state.feeds().or_page(&headers)?;
    let mut rows = Vec::new();
    for status in feeds.list().await.or_page(&headers)? {
        let pulls = feeds.history(&status.feed, PULLS_SHOWN).await.or_page(&headers)?;
        let feed = status.feed;
        rows.push(FeedRow {
            areas: feed.areas.iter().map(|a| format!("{} ({})", a.name, a.code)).collect::<Vec<_>>().join(", "),
            every: feed.every_text(),
            withdraw_after: feed.withdraw_after,
            name: feed.name,
            url: format!("{}/services", feed.url),
            pulls: pulls.iter().map(pull_row).collect(),
        });
    }
    let withdrawn = feeds.withdrawn(WITHDRAWN_SHOWN).await.or_page(&headers)?;
    let page = FeedsPage {
        layout: Layout::new("Feeds – Kith", &headers),
        feeds: rows,
        withdrawn: withdrawn.into_iter().map(withdrawn_row).collect(),
    };
    Ok(render(StatusCode::OK, &page))
}
