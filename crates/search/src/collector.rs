//! One pass over the matching documents: the filters the index cannot express as
//! terms (distance, age, opening times), the blended score, the top hits and the facet
//! counts, all from fast fields.

use crate::facts::{EVENING_FROM, Slot, decode_point};
use crate::index::Fields;
use crate::meaning::similarity as similarity_of;
use crate::{Hit, SearchQuery};
use kith_domain::geo::Point;
use std::cmp::Ordering;
use std::collections::{BinaryHeap, HashMap};
use std::sync::{Arc, Mutex};
use tantivy::collector::{Collector, SegmentCollector};
use tantivy::columnar::{Column, StrColumn};
use tantivy::index::SegmentId;
use tantivy::{DocId, Score, SegmentOrdinal, SegmentReader};
use uuid::Uuid;

/// How far a service's nearest venue can be before distance stops counting for much:
/// the score halves at this distance.
const HALF_SCORE_KM: f64 = 5.0;
/// Where a service that covers the area (but has no venue near) ranks, as a factor.
const COVERS_AREA: f64 = 0.5;
const NATIONAL: f64 = 0.3;

#[derive(Debug, Clone, Default)]
pub(crate) struct Filters {
    near: Option<(Point, f64)>,
    area_codes: Vec<String>,
    /// A person of an age in this range is eligible.
    ages: Option<(u64, u64)>,
    day: Option<u8>,
    window: Option<(u16, u16)>,
    evenings: bool,
    open_weekly: bool,
    modified_after: Option<i64>,
}

impl Filters {
    pub(crate) fn from_query(q: &SearchQuery, area_codes: Vec<String>) -> Filters {
        let ages = match (q.minimum_age, q.maximum_age) {
            (None, None) => None,
            (lo, hi) => Some((u64::from(lo.unwrap_or(0)), u64::from(hi.unwrap_or(200)))),
        };
        Filters {
            near: q.near.as_ref().map(|n| (n.point, n.radius_km)),
            area_codes,
            ages,
            day: q.day,
            window: match (q.start_minute, q.end_minute) {
                (None, None) => None,
                (s, e) => Some((s.unwrap_or(0), e.unwrap_or(24 * 60))),
            },
            evenings: q.evenings,
            open_weekly: q.open_weekly,
            modified_after: q.modified_after.map(|t| t.timestamp()),
        }
    }

    fn wants_slots(&self) -> bool {
        self.open_weekly || self.evenings || self.day.is_some() || self.window.is_some()
    }

    fn slot_ok(&self, slots: &[Slot]) -> bool {
        if !self.wants_slots() {
            return true;
        }
        slots.iter().any(|s| {
            self.day.is_none_or(|d| s.day == d)
                && self.window.is_none_or(|(from, to)| s.overlaps(from, to))
                && (!self.evenings || s.overlaps(EVENING_FROM, 24 * 60))
        })
    }
}

/// The query's meaning, when the index reads meaning: its unit vector and how to weigh it.
#[derive(Debug, Clone)]
pub(crate) struct QueryMeaning {
    pub vector: Vec<f32>,
    pub blend: crate::Blend,
}

pub(crate) struct ResultCollector<'a> {
    pub filters: Filters,
    pub meaning: Option<QueryMeaning>,
    pub keep: usize,
    pub scored: bool,
    pub facets: bool,
    pub venues: bool,
    pub fields: Fields,
    pub segments: &'a SegmentCache,
}

/// What a search reads from each segment, opened once per segment rather than once per
/// search. A segment's columns never change (deletions are kept beside them), and
/// opening one reads its block index: at a million services, opening a dozen columns
/// for every search took a fifth of the server's time. Turning facet ordinals back into
/// terms one by one, before their terms were kept here, took an eighth.
#[derive(Default)]
pub(crate) struct SegmentCache(Mutex<HashMap<SegmentId, Arc<SegmentData>>>);

impl std::fmt::Debug for SegmentCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let open = self.0.lock().map_or(0, |m| m.len());
        f.debug_struct("SegmentCache").field("segments", &open).finish()
    }
}

/// Segments kept before the cache is emptied (merged-away segments leave stale ones).
const SEGMENT_CACHE_LIMIT: usize = 128;

pub(crate) struct SegmentData {
    columns: SegmentColumns,
    /// The place on the curve that documents are sorted by.
    pub geo: Option<Column<u64>>,
    need_terms: Vec<String>,
    attending_terms: Vec<String>,
    accessibility_terms: Vec<String>,
}

impl SegmentCache {
    pub(crate) fn get(&self, reader: &SegmentReader, fields: &Fields) -> tantivy::Result<Arc<SegmentData>> {
        let segment = reader.segment_id();
        if let Some(data) = self.lock().get(&segment) {
            return Ok(data.clone());
        }
        // Opened outside the lock: two searches may both open a new segment, and the
        // second's copy replaces the first's, which is harmless.
        let data = Arc::new(SegmentData::open(reader, fields)?);
        let mut map = self.lock();
        if map.len() >= SEGMENT_CACHE_LIMIT {
            map.clear();
        }
        map.insert(segment, data.clone());
        Ok(data)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<SegmentId, Arc<SegmentData>>> {
        self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl SegmentData {
    fn open(reader: &SegmentReader, x: &Fields) -> tantivy::Result<SegmentData> {
        let ff = reader.fast_fields();
        let name = |f| reader.schema().get_field_name(f).to_owned();
        let columns = SegmentColumns {
            id_hi: ff.column_opt(&name(x.id_hi))?,
            id_lo: ff.column_opt(&name(x.id_lo))?,
            needs: ff.str(&name(x.needs))?,
            attending: ff.str(&name(x.attending))?,
            accessibility: ff.str(&name(x.accessibility))?,
            areas: ff.str(&name(x.areas))?,
            points: ff.column_opt(&name(x.points))?,
            slots: ff.column_opt(&name(x.slots))?,
            free: ff.column_opt(&name(x.free))?,
            min_age: ff.column_opt(&name(x.min_age))?,
            max_age: ff.column_opt(&name(x.max_age))?,
            modified: ff.column_opt(&name(x.modified))?,
            meaning: ff.column_opt(&name(x.meaning))?,
            venues: ff.column_opt(&name(x.venues))?,
        };
        Ok(SegmentData {
            geo: ff.column_opt(&name(x.geo))?,
            need_terms: terms(columns.needs.as_ref()),
            attending_terms: terms(columns.attending.as_ref()),
            accessibility_terms: terms(columns.accessibility.as_ref()),
            columns,
        })
    }

    fn area_ord(&self, code: &str) -> Option<u64> {
        self.columns.areas.as_ref().and_then(|a| a.dictionary().term_ord(code.as_bytes()).ok().flatten())
    }
}

/// A string column's terms, in ordinal order.
fn terms(column: Option<&StrColumn>) -> Vec<String> {
    let mut terms = Vec::new();
    if let Some(mut stream) = column.and_then(|c| c.dictionary().stream().ok()) {
        while stream.advance() {
            terms.push(String::from_utf8_lossy(stream.key()).into_owned());
        }
    }
    terms
}

#[derive(Debug, Default)]
pub(crate) struct RawFacets {
    pub needs: HashMap<String, u64>,
    pub attending: HashMap<String, u64>,
    pub accessibility: HashMap<String, u64>,
    pub free: u64,
    pub evenings: u64,
    pub days: [u64; 7],
}

pub(crate) struct Collected {
    pub total: usize,
    pub venues: u64,
    pub hits: Vec<Hit>,
    pub facets: RawFacets,
}

#[derive(Debug, Clone, Copy)]
struct Candidate {
    score: f64,
    /// The service id, read from two fast u64 columns: ties break by id, as they do
    /// across segments.
    id: u128,
    /// The document in its segment, for reading its meaning after the pass.
    doc: DocId,
    distance_km: Option<f64>,
    covers_area: bool,
    similarity: Option<f32>,
    words: f64,
    place: f64,
}

impl PartialEq for Candidate {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}
impl Eq for Candidate {}
impl PartialOrd for Candidate {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Candidate {
    /// Better candidates are smaller, so the heap's top is the worst kept.
    fn cmp(&self, other: &Self) -> Ordering {
        other
            .score
            .total_cmp(&self.score)
            .then(self.distance_km.unwrap_or(f64::MAX).total_cmp(&other.distance_km.unwrap_or(f64::MAX)))
            .then(self.id.cmp(&other.id))
    }
}

pub(crate) struct SegmentResults {
    segment: Arc<SegmentData>,
    filters: Filters,
    meaning: Option<QueryMeaning>,
    wanted_areas: Vec<u64>,
    national: Option<u64>,
    keep: usize,
    facets: bool,
    /// Whether to add up the venues of every match, into `venues`.
    count_venues: bool,
    venues: u64,
    /// Whether opening times are needed: for a filter on them, or for the facets.
    read_slots: bool,
    heap: BinaryHeap<Candidate>,
    /// With meaning: services near the place that matched no word.
    unscored: Vec<Unscored>,
    total: usize,
    /// Counts by term ordinal: the facet columns hold a few hundred terms at most.
    needs: Vec<u64>,
    attending: Vec<u64>,
    accessibility: Vec<u64>,
    free: u64,
    evenings: u64,
    days: [u64; 7],
    slots: Vec<Slot>,
}

impl SegmentColumns {
    /// A document's service id, from its two fast u64 columns.
    fn id_of(&self, doc: DocId) -> u128 {
        let half = |col: &Option<Column<u64>>| col.as_ref().and_then(|c| c.first(doc)).unwrap_or(0);
        (u128::from(half(&self.id_hi)) << 64) | u128::from(half(&self.id_lo))
    }
}

struct SegmentColumns {
    id_hi: Option<Column<u64>>,
    id_lo: Option<Column<u64>>,
    needs: Option<StrColumn>,
    attending: Option<StrColumn>,
    accessibility: Option<StrColumn>,
    areas: Option<StrColumn>,
    points: Option<Column<u64>>,
    slots: Option<Column<u64>>,
    free: Option<Column<u64>>,
    min_age: Option<Column<u64>>,
    max_age: Option<Column<u64>>,
    modified: Option<Column<i64>>,
    meaning: Option<Column<u64>>,
    venues: Option<Column<u64>>,
}

impl Collector for ResultCollector<'_> {
    type Fruit = Collected;
    type Child = SegmentResults;

    fn for_segment(&self, _ord: SegmentOrdinal, reader: &SegmentReader) -> tantivy::Result<SegmentResults> {
        let segment = self.segments.get(reader, &self.fields)?;
        let wanted_areas =
            self.filters.area_codes.iter().filter(|c| *c != "national").filter_map(|c| segment.area_ord(c)).collect();
        let national = segment.area_ord("national");
        Ok(SegmentResults {
            segment,
            filters: self.filters.clone(),
            meaning: self.meaning.clone(),
            wanted_areas,
            national,
            keep: self.keep.max(1),
            facets: self.facets,
            count_venues: self.venues,
            venues: 0,
            read_slots: self.facets || self.filters.wants_slots(),
            heap: BinaryHeap::new(),
            unscored: Vec::new(),
            total: 0,
            needs: Vec::new(),
            attending: Vec::new(),
            accessibility: Vec::new(),
            free: 0,
            evenings: 0,
            days: [0; 7],
            slots: Vec::new(),
        })
    }

    fn requires_scoring(&self) -> bool {
        self.scored
    }

    fn merge_fruits(&self, fruits: Vec<SegmentFruit>) -> tantivy::Result<Collected> {
        let mut total = 0;
        let mut venues = 0;
        let mut hits = Vec::new();
        let mut facets = RawFacets::default();
        for f in fruits {
            total += f.total;
            venues += f.venues;
            hits.extend(f.hits);
            for (k, v) in f.facets.needs {
                *facets.needs.entry(k).or_default() += v;
            }
            for (k, v) in f.facets.attending {
                *facets.attending.entry(k).or_default() += v;
            }
            for (k, v) in f.facets.accessibility {
                *facets.accessibility.entry(k).or_default() += v;
            }
            facets.free += f.facets.free;
            facets.evenings += f.facets.evenings;
            for d in 0..7 {
                facets.days[d] += f.facets.days[d];
            }
        }
        hits.sort_by(|a: &Hit, b: &Hit| {
            b.score
                .total_cmp(&a.score)
                .then(a.distance_km.unwrap_or(f64::MAX).total_cmp(&b.distance_km.unwrap_or(f64::MAX)))
                .then(a.id.cmp(&b.id))
        });
        hits.truncate(self.keep);
        Ok(Collected { total, venues, hits, facets })
    }
}

pub(crate) struct SegmentFruit {
    total: usize,
    venues: u64,
    hits: Vec<Hit>,
    facets: RawFacets,
}

fn count_ords(column: &Option<StrColumn>, doc: DocId, into: &mut Vec<u64>) {
    if let Some(c) = column {
        for ord in c.term_ords(doc) {
            let i = usize::try_from(ord).unwrap_or(usize::MAX);
            if i >= into.len() {
                // Bounded by the column's dictionary: ordinals are its term numbers.
                if i > 1 << 20 {
                    continue;
                }
                into.resize(i + 1, 0);
            }
            into[i] += 1;
        }
    }
}

fn ords_to_strings(terms: &[String], counts: Vec<u64>) -> HashMap<String, u64> {
    counts
        .into_iter()
        .enumerate()
        .filter(|(_, n)| *n > 0)
        .filter_map(|(ord, n)| terms.get(ord).map(|t| (t.clone(), n)))
        .collect()
}

impl SegmentCollector for SegmentResults {
    type Fruit = SegmentFruit;

    fn collect(&mut self, doc: DocId, score: Score) {
        let c = &self.segment.columns;
        let f = &self.filters;
        // Counting venues lists the services offered somewhere, and only those.
        if self.count_venues && c.venues.as_ref().and_then(|v| v.first(doc)).unwrap_or(0) == 0 {
            return;
        }
        if let (Some(after), Some(m)) = (f.modified_after, &c.modified)
            && m.first(doc).unwrap_or(0) <= after
        {
            return;
        }
        if let Some((lo, hi)) = f.ages {
            let min = c.min_age.as_ref().and_then(|m| m.first(doc)).unwrap_or(0);
            let max = c.max_age.as_ref().and_then(|m| m.first(doc)).unwrap_or(200);
            if min > hi || max < lo {
                return;
            }
        }
        if self.read_slots {
            self.slots.clear();
            if let Some(slots) = &c.slots {
                self.slots.extend(slots.values_for_doc(doc).map(Slot::decode));
            }
            if !f.slot_ok(&self.slots) {
                return;
            }
        }
        let mut factor = 1.0;
        let mut distance_km = None;
        let mut covers_area = false;
        if let Some((centre, radius)) = f.near {
            distance_km = c.points.as_ref().and_then(|p| {
                p.values_for_doc(doc).map(|v| centre.distance_km(decode_point(v))).min_by(f64::total_cmp)
            });
            let near = distance_km.filter(|d| *d <= radius).map(|d| 1.0 / (1.0 + d / HALF_SCORE_KM));
            let mut area: Option<f64> = None;
            if let Some(a) = &c.areas {
                for ord in a.term_ords(doc) {
                    if self.wanted_areas.contains(&ord) {
                        area = Some(area.unwrap_or(0.0).max(COVERS_AREA));
                    } else if Some(ord) == self.national {
                        area = Some(area.unwrap_or(0.0).max(NATIONAL));
                    }
                }
            }
            covers_area = area.is_some();
            factor = match (near, area) {
                (None, None) => return,
                (n, a) => n.unwrap_or(0.0).max(a.unwrap_or(0.0)),
            };
        }
        if self.meaning.is_some() {
            // Words first: meaning is read at the end, for the best by words and (when
            // words found too few) for the services near the place that share no word.
            if score <= 0.0 {
                self.unscored.push(Unscored { doc, factor, distance_km, covers_area });
                return;
            }
        }
        let base = if score > 0.0 { f64::from(score) } else { 1.0 };
        self.total += 1;
        let candidate = Candidate {
            score: base * factor,
            id: 0,
            doc,
            distance_km,
            covers_area,
            similarity: None,
            words: f64::from(score.max(0.0)),
            place: factor,
        };
        self.offer(candidate);
        self.counted(doc, false);
    }

    fn harvest(mut self) -> SegmentFruit {
        if let Some(m) = self.meaning.take() {
            self.read_meaning(&m);
        }
        let venues = self.segment.columns.venues.clone();
        let venues_of =
            |doc: DocId| venues.as_ref().and_then(|c| c.first(doc)).map_or(0, |n| u32::try_from(n).unwrap_or(u32::MAX));
        let hits = self
            .heap
            .into_vec()
            .into_iter()
            .map(|c| Hit {
                id: Uuid::from_u128(c.id),
                score: c.score,
                distance_km: c.distance_km,
                covers_area: c.covers_area,
                similarity: c.similarity,
                words: c.words,
                place: c.place,
                venues: venues_of(c.doc),
            })
            .collect();
        let facets = RawFacets {
            needs: ords_to_strings(&self.segment.need_terms, self.needs),
            attending: ords_to_strings(&self.segment.attending_terms, self.attending),
            accessibility: ords_to_strings(&self.segment.accessibility_terms, self.accessibility),
            free: self.free,
            evenings: self.evenings,
            days: self.days,
        };
        SegmentFruit { total: self.total, venues: self.venues, hits, facets }
    }
}

/// A service near the place that matched no word, kept until meaning is read.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Unscored {
    doc: DocId,
    factor: f64,
    distance_km: Option<f64>,
    covers_area: bool,
}

/// How many of the best by words meaning reorders, per segment, beyond those shown:
/// reading a vector is the costliest part of a search, so only these are read.
const RERANKED: usize = 200;

impl SegmentResults {
    /// Keeps a candidate if it is among the best so far (the id, which breaks ties, is
    /// read only then).
    fn offer(&mut self, mut candidate: Candidate) {
        let c = &self.segment.columns;
        let capacity = self.capacity();
        let full = self.heap.len() >= capacity;
        if !full || self.heap.peek().is_some_and(|worst| candidate < *worst) {
            candidate.id = c.id_of(candidate.doc);
            if !full {
                self.heap.push(candidate);
            } else if self.heap.peek().is_some_and(|worst| candidate < *worst) {
                self.heap.pop();
                self.heap.push(candidate);
            }
        }
    }

    fn capacity(&self) -> usize {
        if self.meaning.is_some() { self.keep.max(RERANKED) } else { self.keep }
    }

    /// Reads meaning: the best by words are re-scored with it, and when words found
    /// fewer than are wanted, services near the place that share no word with the query
    /// are found by meaning alone (from a higher similarity).
    fn read_meaning(&mut self, m: &QueryMeaning) {
        let column = self.segment.columns.meaning.clone();
        let cos = |doc: DocId| column.as_ref().map_or(0.0, |col| similarity_of(&m.vector, col.values_for_doc(doc)));
        let counted = |cos: f32| f64::from(((cos - m.blend.threshold) / (1.0 - m.blend.threshold)).max(0.0));
        let weight = f64::from(m.blend.weight);
        let by_words = self.total;
        let mut out: Vec<Candidate> = std::mem::take(&mut self.heap)
            .into_vec()
            .into_iter()
            .map(|mut c| {
                let s = cos(c.doc);
                c.similarity = Some(s);
                c.score = (c.words + weight * counted(s)) * c.place;
                c
            })
            .collect();
        if by_words < self.keep {
            // Only in the second look (see `SearchIndex::search`): the first asks for no
            // service that matches no word.
            for u in std::mem::take(&mut self.unscored) {
                let s = cos(u.doc);
                if s < m.blend.alone {
                    continue;
                }
                self.total += 1;
                self.counted(u.doc, true);
                out.push(Candidate {
                    score: weight * counted(s) * u.factor,
                    id: 0,
                    doc: u.doc,
                    distance_km: u.distance_km,
                    covers_area: u.covers_area,
                    similarity: Some(s),
                    words: 0.0,
                    place: u.factor,
                });
            }
        }
        // The best `keep` by the blended score; ids for those that lack one.
        out.sort_by(|a, b| b.score.total_cmp(&a.score));
        let c = &self.segment.columns;
        for mut candidate in out.into_iter().take(self.keep.max(1) * 2) {
            if candidate.id == 0 {
                candidate.id = c.id_of(candidate.doc);
            }
            self.heap.push(candidate);
        }
        while self.heap.len() > self.keep {
            self.heap.pop();
        }
    }

    /// Counts a matching service in the facets and its venues, as asked.
    fn counted(&mut self, doc: DocId, read: bool) {
        if self.facets {
            self.count_facets(doc, read);
        }
        if self.count_venues {
            self.venues += self.segment.columns.venues.as_ref().and_then(|c| c.first(doc)).unwrap_or(0);
        }
    }

    /// Counts a matching service in the facets. `read` reads its opening times first
    /// (for one counted after the pass, whose times were not kept).
    fn count_facets(&mut self, doc: DocId, read: bool) {
        let c = &self.segment.columns;
        if read && self.read_slots {
            self.slots.clear();
            if let Some(slots) = &c.slots {
                self.slots.extend(slots.values_for_doc(doc).map(Slot::decode));
            }
        }
        count_ords(&c.needs, doc, &mut self.needs);
        count_ords(&c.attending, doc, &mut self.attending);
        count_ords(&c.accessibility, doc, &mut self.accessibility);
        if c.free.as_ref().and_then(|x| x.first(doc)) == Some(1) {
            self.free += 1;
        }
        if self.slots.iter().any(|s| s.overlaps(EVENING_FROM, 24 * 60)) {
            self.evenings += 1;
        }
        let mut seen = [false; 7];
        for s in &self.slots {
            seen[usize::from(s.day.min(6))] = true;
        }
        for (d, open) in seen.iter().enumerate() {
            self.days[d] += u64::from(*open);
        }
    }
}
