//! Kith's search: a tantivy index derived from the store and kept fresh from its change
//! feed.
//!
//! A query is the person's words (with the needs vocabulary and typo tolerance), the
//! needs they picked, where they are, and filters. A service matches a place if one of
//! its service areas holds it **or** one of its venues is within the radius; the score
//! blends text relevance with distance, so area-wide services still appear but a group
//! round the corner comes first.
//!
//! Each instance keeps its own index on local disk and records, with every commit, the
//! last change-feed sequence number it reflects; [`sync::catch_up`] applies what is
//! newer. Nothing here writes to the store.
#![deny(clippy::unwrap_used, clippy::expect_used)]

mod collector;
pub mod facts;
mod index;
mod near;
mod stem;
pub mod sync;
pub mod vocabulary;

pub use facts::Attending;
pub use index::{SCHEMA_VERSION, SearchIndex, attending_label};

use chrono::{DateTime, Utc};
use kith_domain::geo::Point;
use serde::Serialize;
use std::time::Duration;
use uuid::Uuid;

#[derive(Debug, thiserror::Error)]
pub enum SearchError {
    #[error("search index: {0}")]
    Index(String),
    #[error(transparent)]
    Store(#[from] kith_store::StoreError),
}

impl From<tantivy::TantivyError> for SearchError {
    fn from(e: tantivy::TantivyError) -> Self {
        SearchError::Index(e.to_string())
    }
}

impl From<tantivy::directory::error::OpenDirectoryError> for SearchError {
    fn from(e: tantivy::directory::error::OpenDirectoryError) -> Self {
        SearchError::Index(e.to_string())
    }
}

/// Where the person is, and how far they will go.
#[derive(Debug, Clone, PartialEq)]
pub struct Near {
    pub point: Point,
    pub radius_km: f64,
    /// Area codes holding the point (council, health board, ward, …).
    pub area_codes: Vec<String>,
}

impl Near {
    /// Round a point, taking in services that cover any of `area_codes`; the radius is
    /// kept between 100 m and [`MAX_RADIUS_KM`].
    pub fn around(point: Point, area_codes: Vec<String>, radius_km: f64) -> Near {
        Near { point, radius_km: radius_km.clamp(0.1, MAX_RADIUS_KM), area_codes }
    }
}

/// The largest radius a search accepts.
pub const MAX_RADIUS_KM: f64 = 200.0;
/// The radius used when none is given.
pub const DEFAULT_RADIUS_KM: f64 = 5.0;

/// A search. Every filter given must hold.
#[derive(Debug, Clone, PartialEq)]
pub struct SearchQuery {
    pub text: Option<String>,
    /// Taxonomy term ids or codes; a service tagged with any of them matches.
    pub needs: Vec<String>,
    pub near: Option<Near>,
    pub free: bool,
    /// Find temporarily closed services too (the ORUK API, or a person who asks).
    pub include_closed: bool,
    /// The person's age range: services whose eligibility overlaps it.
    pub minimum_age: Option<u32>,
    pub maximum_age: Option<u32>,
    /// 0 = Monday.
    pub day: Option<u8>,
    pub start_minute: Option<u16>,
    pub end_minute: Option<u16>,
    pub evenings: bool,
    /// Has a weekly opening (so is open this week).
    pub open_weekly: bool,
    pub attending: Vec<Attending>,
    pub languages: Vec<String>,
    pub accessibility: Vec<String>,
    pub organization_id: Option<Uuid>,
    /// Only services run by one of these organisations (those that take referrals
    /// through Kith). An empty list matches nothing.
    pub organizations: Option<Vec<Uuid>>,
    pub modified_after: Option<DateTime<Utc>>,
    pub offset: usize,
    pub limit: usize,
    /// Count the matches by need, way of attending and opening for narrowing the
    /// search (the search page shows them; an API page of results does not need them).
    pub facets: bool,
    /// How the person's words are read. Everything is on unless a relevance benchmark
    /// switches stages off to measure each.
    pub understanding: Understanding,
}

/// The stages of reading a query, each of which the relevance benchmark measures.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Understanding {
    /// Leave out words like "i", "and", "can't" that say nothing of a need.
    pub function_words: bool,
    /// Bring in what the needs vocabulary says a phrase or word means.
    pub vocabulary: bool,
    /// Read a word the directory never uses as the vocabulary word it is closest to, and
    /// match unknown words loosely.
    pub typos: bool,
}

impl Default for Understanding {
    fn default() -> Self {
        Understanding { function_words: true, vocabulary: true, typos: true }
    }
}

impl Understanding {
    /// The person's words as typed, and nothing else: the stage before any of the others.
    pub const WORDS_ONLY: Understanding = Understanding { function_words: false, vocabulary: false, typos: false };
}

impl Default for SearchQuery {
    fn default() -> Self {
        SearchQuery {
            text: None,
            needs: Vec::new(),
            near: None,
            free: false,
            include_closed: false,
            minimum_age: None,
            maximum_age: None,
            day: None,
            start_minute: None,
            end_minute: None,
            evenings: false,
            open_weekly: false,
            attending: Vec::new(),
            languages: Vec::new(),
            accessibility: Vec::new(),
            organization_id: None,
            organizations: None,
            modified_after: None,
            offset: 0,
            limit: 20,
            facets: true,
            understanding: Understanding::default(),
        }
    }
}

/// One service found.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Hit {
    pub id: Uuid,
    pub score: f64,
    /// To the nearest venue, when a place was given and the service has venues.
    pub distance_km: Option<f64>,
    /// Whether one of its service areas holds the place searched.
    pub covers_area: bool,
}

/// Counts of the matching services by need, way of attending, accessibility and
/// opening, for narrowing a search.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Facets {
    pub needs: Vec<(String, u64)>,
    pub attending: Vec<(String, u64)>,
    pub accessibility: Vec<(String, u64)>,
    pub free: u64,
    pub evenings: u64,
    /// Monday first.
    pub days: [u64; 7],
}

fn sorted(map: std::collections::HashMap<String, u64>) -> Vec<(String, u64)> {
    let mut v: Vec<(String, u64)> = map.into_iter().collect();
    v.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    v
}

impl From<collector::RawFacets> for Facets {
    fn from(r: collector::RawFacets) -> Self {
        Facets {
            needs: sorted(r.needs),
            attending: sorted(r.attending),
            accessibility: sorted(r.accessibility),
            free: r.free,
            evenings: r.evenings,
            days: r.days,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SearchResults {
    pub total: usize,
    pub hits: Vec<Hit>,
    pub facets: Facets,
    #[serde(skip)]
    pub took: Duration,
}
