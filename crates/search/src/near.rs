//! Finding the services near a place without reading every service in the town.
//!
//! The index keeps its documents in the order of [`geo_key`](crate::facts::geo_key), a
//! Morton (Z-order) curve, in every segment and through merges. A box round the search
//! circle is covered by a few dozen curve ranges; in a sorted segment each is one run
//! of document ids, found by binary search on the key column. The services that cover
//! the place by service area are added as single documents. The result is one document
//! set of sorted runs, so that intersecting it with the text query skips from run to
//! run instead of stepping through a union of many postings lists.
//!
//! The set is a superset of the circle (the box and the curve ranges round it); the
//! collector keeps only what is really within the radius.

use crate::collector::SegmentCache;
use crate::facts::{quantise_lat, quantise_lon, spread};
use crate::index::Fields;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use tantivy::columnar::Column;
use tantivy::index::SegmentId;
use tantivy::query::{ConstScorer, EnableScoring, Explanation, Query, Scorer, Weight};
use tantivy::schema::{Field, IndexRecordOption};
use tantivy::{DocId, DocSet, Score, SegmentReader, TERMINATED, Term};

/// Inclusive ranges of the curve covering a box of grid coordinates.
pub(crate) fn key_ranges(lat: (u32, u32), lon: (u32, u32)) -> Vec<(u64, u64)> {
    // Stop dividing at cells about a quarter of the box's shorter side, which bounds
    // the ranges to a few dozen and the excess to a thin border.
    let shorter = (lat.1 - lat.0).min(lon.1 - lon.0).max(1);
    let finest = 32 - (shorter / 4).max(1).ilog2().min(32);
    let mut out: Vec<(u64, u64)> = Vec::new();
    visit(0, 0, 0, finest, lat, lon, &mut out);
    out
}

fn visit(la: u64, lo: u64, level: u32, finest: u32, lat: (u32, u32), lon: (u32, u32), out: &mut Vec<(u64, u64)>) {
    let size = 1u64 << (32 - level);
    let (la1, lo1) = (la + size - 1, lo + size - 1);
    if la1 < u64::from(lat.0) || la > u64::from(lat.1) || lo1 < u64::from(lon.0) || lo > u64::from(lon.1) {
        return;
    }
    let inside = la >= u64::from(lat.0) && la1 <= u64::from(lat.1) && lo >= u64::from(lon.0) && lo1 <= u64::from(lon.1);
    if inside || level >= finest {
        let start = (spread(la) << 1) | spread(lo);
        let end = if level == 0 { u64::MAX } else { start + (size * size - 1) };
        match out.last_mut() {
            Some(last) if last.1.checked_add(1) == Some(start) => last.1 = end,
            _ => out.push((start, end)),
        }
        return;
    }
    let half = size / 2;
    // Children in curve order: latitude is the higher bit of each pair.
    for (dla, dlo) in [(0, 0), (0, half), (half, 0), (half, half)] {
        visit(la + dla, lo + dlo, level + 1, finest, lat, lon, out);
    }
}

/// The box round a circle, in grid coordinates.
pub(crate) fn grid_box(point: kith_domain::geo::Point, radius_km: f64) -> ((u32, u32), (u32, u32)) {
    let dlat = radius_km / 111.2;
    let dlon = radius_km / (111.3 * point.lat.to_radians().cos().max(0.01));
    (
        (quantise_lat(point.lat - dlat), quantise_lat(point.lat + dlat)),
        (quantise_lon(point.lon - dlon), quantise_lon(point.lon + dlon)),
    )
}

/// A segment's runs, shared by the copies of one query.
type SharedRuns = Arc<[(DocId, DocId)]>;

/// Services on the curve ranges, or holding one of the area terms.
///
/// One search may use the query many times over (each word of the text is restricted
/// to the place), so a segment's runs are worked out once and shared by the copies.
#[derive(Debug, Clone)]
pub(crate) struct NearQuery {
    segments: Arc<SegmentCache>,
    fields: Fields,
    ranges: Arc<Vec<(u64, u64)>>,
    /// Terms whose services are added whatever their place on the curve: the areas
    /// that hold the place, and services with venues far apart.
    area_fields: Vec<(Field, Vec<String>)>,
    found: Arc<Mutex<HashMap<SegmentId, SharedRuns>>>,
}

impl Query for NearQuery {
    fn weight(&self, _scoring: EnableScoring<'_>) -> tantivy::Result<Box<dyn Weight>> {
        Ok(Box::new(self.clone()))
    }
}

impl NearQuery {
    pub(crate) fn new(
        segments: Arc<SegmentCache>,
        fields: Fields,
        ranges: Vec<(u64, u64)>,
        area_fields: Vec<(Field, Vec<String>)>,
    ) -> NearQuery {
        NearQuery { segments, fields, ranges: Arc::new(ranges), area_fields, found: Arc::default() }
    }

    fn runs(&self, reader: &SegmentReader) -> tantivy::Result<SharedRuns> {
        let segment = reader.segment_id();
        let mut found = self.found.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(runs) = found.get(&segment) {
            return Ok(runs.clone());
        }
        let runs: SharedRuns = self.find_runs(reader)?.into();
        found.insert(segment, runs.clone());
        Ok(runs)
    }

    fn find_runs(&self, reader: &SegmentReader) -> tantivy::Result<Vec<(DocId, DocId)>> {
        let mut runs: Vec<(DocId, DocId)> = Vec::new();
        let max_doc = reader.max_doc();
        let segment = self.segments.get(reader, &self.fields)?;
        if let Some(column) = &segment.geo {
            // Documents without a key sort last, as if their key were the largest.
            let key = |column: &Column<u64>, doc: DocId| column.first(doc).unwrap_or(u64::MAX);
            let first_at_least = |k: u64| -> DocId {
                let (mut lo, mut hi) = (0, max_doc);
                while lo < hi {
                    let mid = lo + (hi - lo) / 2;
                    if key(column, mid) < k { lo = mid + 1 } else { hi = mid }
                }
                lo
            };
            for &(start, end) in self.ranges.iter() {
                let from = first_at_least(start);
                let to = if end == u64::MAX { max_doc } else { first_at_least(end + 1) };
                if from < to {
                    runs.push((from, to));
                }
            }
        }
        for (field, values) in &self.area_fields {
            let index = reader.inverted_index(*field)?;
            for value in values {
                let term = Term::from_field_text(*field, value);
                if let Some(mut postings) = index.read_postings(&term, IndexRecordOption::Basic)? {
                    let mut doc = postings.doc();
                    while doc != TERMINATED {
                        runs.push((doc, doc + 1));
                        doc = postings.advance();
                    }
                }
            }
        }
        // The ranges come in order, and so does each term's postings list: a stable
        // sort of a few sorted runs is a merge.
        runs.sort();
        let mut merged: Vec<(DocId, DocId)> = Vec::with_capacity(runs.len());
        for (from, to) in runs {
            match merged.last_mut() {
                Some(last) if from <= last.1 => last.1 = last.1.max(to),
                _ => merged.push((from, to)),
            }
        }
        Ok(merged)
    }
}

impl Weight for NearQuery {
    fn scorer(&self, reader: &SegmentReader, boost: Score) -> tantivy::Result<Box<dyn Scorer>> {
        Ok(Box::new(ConstScorer::new(Runs::new(self.runs(reader)?), boost)))
    }

    fn explain(&self, reader: &SegmentReader, doc: DocId) -> tantivy::Result<Explanation> {
        let mut runs = Runs::new(self.runs(reader)?);
        if runs.seek(doc) == doc {
            Ok(Explanation::new("near the place, or covering its area", 1.0))
        } else {
            Err(tantivy::TantivyError::InvalidArgument(format!("document {doc} is not near the place")))
        }
    }
}

/// Sorted, disjoint runs of document ids, `[from, to)`.
#[derive(Debug)]
pub(crate) struct Runs {
    runs: Arc<[(DocId, DocId)]>,
    at: usize,
    doc: DocId,
    len: u32,
}

impl Runs {
    pub(crate) fn new(runs: Arc<[(DocId, DocId)]>) -> Runs {
        let len = runs.iter().map(|(from, to)| to - from).sum();
        let doc = runs.first().map_or(TERMINATED, |r| r.0);
        Runs { runs, at: 0, doc, len }
    }
}

impl DocSet for Runs {
    fn advance(&mut self) -> DocId {
        if self.doc == TERMINATED {
            return TERMINATED;
        }
        self.doc += 1;
        if self.doc >= self.runs[self.at].1 {
            self.at += 1;
            self.doc = self.runs.get(self.at).map_or(TERMINATED, |r| r.0);
        }
        self.doc
    }

    fn seek(&mut self, target: DocId) -> DocId {
        if self.doc >= target {
            return self.doc;
        }
        let rest = &self.runs[self.at..];
        if rest[0].1 > target {
            // Still in the current run: the common case when the text is what leads.
            self.doc = target;
            return self.doc;
        }
        // The target is in a later run, usually a near one: gallop out from here, then
        // search between the last two steps, rather than search everything left.
        let mut hi = 1;
        while hi < rest.len() && rest[hi].1 <= target {
            hi *= 2;
        }
        let lo = hi / 2;
        let hi = hi.min(rest.len());
        self.at += lo + rest[lo..hi].partition_point(|r| r.1 <= target);
        self.doc = self.runs.get(self.at).map_or(TERMINATED, |r| r.0.max(target));
        self.doc
    }

    fn doc(&self) -> DocId {
        self.doc
    }

    fn size_hint(&self) -> u32 {
        self.len
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::facts::geo_key;
    use kith_domain::geo::Point;

    #[test]
    fn runs_advance_and_seek() {
        let mut r = Runs::new(vec![(2, 4), (10, 11), (20, 23)].into());
        assert_eq!(r.doc(), 2);
        assert_eq!(r.advance(), 3);
        assert_eq!(r.advance(), 10);
        assert_eq!(r.seek(10), 10);
        assert_eq!(r.seek(15), 20);
        assert_eq!(r.seek(22), 22);
        assert_eq!(r.advance(), TERMINATED);
        assert_eq!(r.seek(40), TERMINATED);
        assert_eq!(Runs::new(vec![].into()).doc(), TERMINATED);
        assert_eq!(Runs::new(vec![(2, 4), (10, 11)].into()).size_hint(), 3);
    }

    #[test]
    fn seeking_agrees_with_a_plain_scan_wherever_it_lands() {
        // Runs of every length and gap, and seeks of every stride from every start.
        let runs: Vec<(DocId, DocId)> = (0..200u32).map(|i| (i * i + 3 * i, i * i + 3 * i + 1 + i % 4)).collect();
        let members: Vec<DocId> = runs.iter().flat_map(|&(from, to)| from..to).collect();
        let runs: Arc<[(DocId, DocId)]> = runs.into();
        let last = *members.last().unwrap();
        for start in [0, 1, 7, 500, 5000] {
            for stride in [1, 2, 3, 17, 250, 4000] {
                let mut r = Runs::new(runs.clone());
                r.seek(start);
                let mut target = start;
                while target <= last + 1 {
                    // A seek never moves back: at or past the target, it stays put.
                    let expected = if r.doc() >= target {
                        r.doc()
                    } else {
                        members.iter().copied().find(|&d| d >= target).unwrap_or(TERMINATED)
                    };
                    assert_eq!(r.seek(target), expected, "seek({target}) from {start} by {stride}");
                    target += stride;
                }
            }
        }
    }

    #[test]
    fn the_ranges_hold_every_point_in_the_box_and_few_outside() {
        let centre = Point { lat: 55.8642, lon: -4.2518 };
        let (lat, lon) = grid_box(centre, 5.0);
        let ranges = key_ranges(lat, lon);
        assert!(ranges.len() <= 64, "{} ranges", ranges.len());
        let inside = |k: u64| ranges.iter().any(|(a, b)| (*a..=*b).contains(&k));
        let (mut kept, mut far) = (0, 0);
        for i in -40..=40 {
            for j in -40..=40 {
                let p = Point { lat: centre.lat + f64::from(i) * 0.002, lon: centre.lon + f64::from(j) * 0.003 };
                let k = geo_key(&[p]);
                if centre.distance_km(p) <= 5.0 {
                    assert!(inside(k), "{p:?} is within 5 km but outside the ranges");
                    kept += 1;
                } else if inside(k) && centre.distance_km(p) > 9.5 {
                    far += 1;
                }
            }
        }
        assert!(kept > 1000);
        assert_eq!(far, 0, "nothing as far as 9.5 km is read");
    }
}
