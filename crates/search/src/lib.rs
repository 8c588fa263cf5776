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
pub mod meaning;
mod near;
mod stem;
pub mod sync;
pub mod vocabulary;

pub use facts::Attending;
pub use index::{Position, SCHEMA_VERSION, SearchIndex, attending_label};
pub use meaning::Meaning;

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
    /// Match only services offered somewhere, and count their venues
    /// (service-at-location entries) as [`SearchResults::venues`], for paging the ORUK
    /// API's `service_at_locations`.
    pub venues: bool,
    /// How the person's words are read. Everything is on unless a relevance benchmark
    /// switches stages off to measure each.
    pub understanding: Understanding,
    pub blend: Blend,
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
    /// Rank by meaning as well as words, and when words find too few, find services near
    /// the place that mean what the query means without sharing its words (when the index
    /// has word vectors).
    pub meaning: bool,
}

impl Default for Understanding {
    fn default() -> Self {
        Understanding { function_words: true, vocabulary: true, typos: true, meaning: true }
    }
}

impl Understanding {
    /// The person's words as typed, and nothing else: the stage before any of the others.
    pub const WORDS_ONLY: Understanding =
        Understanding { function_words: false, vocabulary: false, typos: false, meaning: false };
}

/// How meaning is weighed against words: a service's similarity to the query above
/// `threshold` counts, scaled to 0..1, times `weight`, added to its word score. Tuned on
/// the relevance benchmark (`kith-bench relevance`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Blend {
    pub weight: f32,
    pub threshold: f32,
    /// The similarity a service sharing no word with the query needs to be found at all:
    /// higher than `threshold`, since averaged word vectors of any two texts are a little
    /// alike, and a search that "finds" the whole directory helps no one.
    pub alone: f32,
}

impl Default for Blend {
    fn default() -> Self {
        Blend { weight: 32.0, threshold: 0.55, alone: 0.65 }
    }
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
            venues: false,
            understanding: Understanding::default(),
            blend: Blend::default(),
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
    /// How near its meaning is to the query's (a cosine), when meaning was read.
    pub similarity: Option<f32>,
    /// Its score from the words alone (0 when found by meaning only).
    pub words: f64,
    /// The factor the place gave: 1 at the place, halving every 5 km, lower for a
    /// service that only covers the area (1 when no place was given).
    pub place: f64,
    /// How many places it is offered at (its service-at-location entries).
    pub venues: u32,
}

/// How a query's words were read, for explaining a ranking.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Reading {
    /// The words searched as typed (stemmed as the index keeps them).
    pub words: Vec<String>,
    /// Words left out as saying nothing of a need on their own ("i", "and", "for").
    pub left_out: Vec<String>,
    /// Words read as another ("lonley" as "lonely").
    pub corrected: Vec<(String, String)>,
    /// What the needs vocabulary said the words mean, searched as well.
    pub means: Vec<String>,
    /// Whether meaning was read too (word vectors installed and switched on).
    pub meaning: bool,
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
    /// With [`SearchQuery::venues`]: the venues of every match, added up.
    #[serde(skip)]
    pub venues: u64,
    pub hits: Vec<Hit>,
    pub facets: Facets,
    #[serde(skip)]
    pub reading: Reading,
    #[serde(skip)]
    pub took: Duration,
}

/// How a query was read, in plain words, for `kith search --explain` and curators.
pub fn explain_reading(r: &Reading) -> Vec<String> {
    let mut out = Vec::new();
    let list = |v: &[String]| v.iter().map(|w| format!("\"{w}\"")).collect::<Vec<_>>().join(", ");
    if !r.words.is_empty() {
        out.push(format!("Searched for the words {} (as the index keeps them)", list(&r.words)));
    }
    if !r.left_out.is_empty() {
        out.push(format!("Left out {}: they say nothing of a need on their own", list(&r.left_out)));
    }
    for (from, to) in &r.corrected {
        out.push(format!("Read \"{from}\" as \"{to}\""));
    }
    if !r.means.is_empty() {
        out.push(format!("The needs vocabulary read it as {}", list(&r.means)));
    }
    out.push(if r.meaning {
        "Meaning was read too: services near in meaning rank higher, and when the words find too few, ones near the place that share no word are found by meaning".to_owned()
    } else {
        "By words alone (no word vectors installed, or switched off)".to_owned()
    });
    out
}

/// Why one result ranked where it did: its score from the words, from meaning, and the
/// place's factor, as they multiply out to its score.
pub fn explain_hit(hit: &Hit, blend: Blend) -> String {
    let mut parts = Vec::new();
    if hit.words > 0.0 {
        parts.push(format!("words {:.2}", hit.words));
    } else if hit.similarity.is_some() {
        parts.push("no words in common".to_owned());
    }
    if let Some(cos) = hit.similarity {
        let counted = ((cos - blend.threshold) / (1.0 - blend.threshold)).max(0.0) * blend.weight;
        if counted > 0.0 {
            parts.push(format!("meaning {cos:.2} similar, adding {counted:.2}"));
        } else {
            parts.push(format!("meaning {cos:.2} similar (below {:.2}, adding nothing)", blend.threshold));
        }
    }
    let place = match (hit.distance_km, hit.covers_area) {
        (Some(d), _) if hit.place > 0.0 && (hit.place - 1.0 / (1.0 + d / 5.0)).abs() < 1e-9 => {
            format!("× {:.2} for a venue {d:.1} km away", hit.place)
        }
        (_, true) => format!("× {:.2} as it covers the area", hit.place),
        _ if (hit.place - 1.0).abs() < 1e-9 => String::new(),
        _ => format!("× {:.2} for the place", hit.place),
    };
    if !place.is_empty() {
        parts.push(place);
    }
    format!("{} = {:.2}", parts.join(", "), hit.score)
}
