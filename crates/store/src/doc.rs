//! What both engines do to turn records into rows and rows back into records.

use crate::{Result, StoreError};
use chrono::{DateTime, Utc};
use kith_domain::directory::{Related, nest_service, service_location_ids};
use kith_domain::geo::{Deprivation, DeprivationIndex, PostcodePlace};
use kith_domain::hsds::{Location, Organization, Service, TaxonomyTerm};
use kith_domain::postcode::Postcode;
use serde::de::DeserializeOwned;
use std::collections::HashMap;
use uuid::Uuid;

pub(crate) fn decode<T: DeserializeOwned>(what: &'static str, id: &str, doc: &str) -> Result<T> {
    serde_json::from_str(doc).map_err(|e| StoreError::Corrupt { what, id: id.to_owned(), reason: e.to_string() })
}

pub(crate) fn encode<T: serde::Serialize>(value: &T) -> Result<String> {
    serde_json::to_string(value).map_err(|e| StoreError::Database(format!("cannot encode a record: {e}")))
}

/// Encodes records on a second thread while `each` takes them in order, one part at a
/// time: the single writer inserts rows while the next documents are encoded, instead
/// of waiting for all of them first. Encoding is a large share of a bulk write.
pub(crate) fn encode_alongside<T: serde::Serialize + Sync>(
    values: &[T],
    mut each: impl FnMut(&T, String) -> Result<()>,
) -> Result<()> {
    const SMALL: usize = 256;
    const PART: usize = 256;
    let threads = std::thread::available_parallelism().map_or(1, usize::from);
    if values.len() < SMALL || threads < 2 {
        return values.iter().try_for_each(|v| each(v, encode(v)?));
    }
    std::thread::scope(|scope| {
        // A few parts ahead at most, so the documents waiting stay few.
        let (parts, ready) = std::sync::mpsc::sync_channel::<Result<Vec<String>>>(4);
        scope.spawn(move || {
            for part in values.chunks(PART) {
                let docs = part.iter().map(encode).collect::<Result<Vec<String>>>();
                let failed = docs.is_err();
                // The writer stops listening when it fails; then there is no one to encode for.
                if parts.send(docs).is_err() || failed {
                    return;
                }
            }
        });
        for part in values.chunks(PART) {
            let docs = ready.recv().map_err(|_| StoreError::Database("the record encoder stopped".into()))??;
            for (value, doc) in part.iter().zip(docs) {
                each(value, doc)?;
            }
        }
        Ok(())
    })
}

/// Hands a large written batch to another thread to free: freeing a window of an import
/// (tens of thousands of records allocated by the threads that read them) took a
/// twelfth of the single writer's time. Outside a runtime it is freed here.
pub(crate) fn free_aside<T: Send + 'static>(value: T) {
    if tokio::runtime::Handle::try_current().is_ok() {
        tokio::task::spawn_blocking(move || drop(value));
    }
}

/// A stored service keeps the publisher's `last_modified`; one that never had one
/// reports when Kith last stored a change to it.
pub(crate) fn with_modified(mut service: Service, modified_at: DateTime<Utc>) -> Service {
    service.last_modified.get_or_insert(modified_at);
    service
}

/// The ids a page of services refers to, for fetching them in one query each.
#[derive(Debug, Default)]
pub(crate) struct Wanted {
    pub organizations: Vec<Uuid>,
    pub locations: Vec<Uuid>,
    pub taxonomy_terms: Vec<Uuid>,
}

pub(crate) fn wanted(services: &[Service]) -> Wanted {
    let mut w = Wanted::default();
    for s in services {
        w.organizations.extend(s.organization_id);
        w.locations.extend(service_location_ids(s));
        w.taxonomy_terms.extend(s.attributes.iter().filter_map(|a| a.taxonomy_term_id));
    }
    for ids in [&mut w.organizations, &mut w.locations, &mut w.taxonomy_terms] {
        ids.sort_unstable();
        ids.dedup();
    }
    w
}

pub(crate) fn nest_all(
    services: Vec<Service>,
    organizations: Vec<Organization>,
    locations: Vec<Location>,
    terms: Vec<TaxonomyTerm>,
) -> Vec<Service> {
    let related = Related {
        organizations: organizations.into_iter().map(|o| (o.id, o)).collect::<HashMap<_, _>>(),
        locations: locations.into_iter().map(|l| (l.id, l)).collect(),
        taxonomy_terms: terms.into_iter().map(|t| (t.id, t)).collect(),
    };
    services.into_iter().map(|s| nest_service(s, &related)).collect()
}

/// Terms with only what the search index reads (id, name, code and place in the
/// taxonomy), so that nesting a copy in every service that uses one costs little.
pub(crate) fn terms_for_index(terms: Vec<TaxonomyTerm>) -> Vec<TaxonomyTerm> {
    terms
        .into_iter()
        .map(|t| TaxonomyTerm {
            description: String::new(),
            taxonomy: None,
            taxonomy_detail: None,
            language: None,
            term_uri: None,
            metadata: Vec::new(),
            extra: Default::default(),
            ..t
        })
        .collect()
}

/// Puts services in the order of `ids`, leaving out ids that were not found.
pub(crate) fn in_order(services: Vec<Service>, ids: &[Uuid]) -> Vec<Service> {
    let mut by_id: HashMap<Uuid, Service> = services.into_iter().map(|s| (s.id, s)).collect();
    ids.iter().filter_map(|id| by_id.remove(id)).collect()
}

/// Fixed-width RFC 3339 in UTC, so SQLite can compare timestamps as text.
pub(crate) fn ts(at: DateTime<Utc>) -> String {
    at.format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string()
}

pub(crate) fn parse_ts(s: &str) -> Result<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(s).map(|d| d.with_timezone(&Utc)).map_err(|e| StoreError::Corrupt {
        what: "timestamp",
        id: s.to_owned(),
        reason: e.to_string(),
    })
}

/// The postcode, latitude and longitude columns of a location.
pub(crate) fn location_columns(l: &Location) -> (Option<String>, Option<f64>, Option<f64>) {
    (l.postcode().map(str::to_owned), l.latitude, l.longitude)
}

/// A postcode row's columns after the postcode itself, in table order.
pub(crate) struct PostcodePlaceParts {
    pub latitude: f64,
    pub longitude: f64,
    pub codes: [Option<String>; 7],
}

pub(crate) fn assemble(postcode: &str, parts: PostcodePlaceParts) -> Result<PostcodePlace> {
    let postcode = Postcode::parse(postcode).map_err(|e| StoreError::Corrupt {
        what: "postcode",
        id: postcode.to_owned(),
        reason: e.to_string(),
    })?;
    let [country, local_authority, health_area, hscp, ward, lsoa11, lsoa21] = parts.codes;
    Ok(PostcodePlace {
        postcode,
        latitude: parts.latitude,
        longitude: parts.longitude,
        country,
        local_authority,
        health_area,
        hscp,
        ward,
        lsoa11,
        lsoa21,
    })
}

pub(crate) fn deprivation_from(
    index: &str,
    area_code: String,
    rank: i64,
    decile: i64,
    quintile: i64,
) -> Result<Deprivation> {
    let corrupt =
        |reason: &str| StoreError::Corrupt { what: "deprivation", id: area_code.clone(), reason: reason.into() };
    Ok(Deprivation {
        index: DeprivationIndex::parse(index).ok_or_else(|| corrupt("unknown index"))?,
        rank: u32::try_from(rank).map_err(|_| corrupt("bad rank"))?,
        decile: u8::try_from(decile).map_err(|_| corrupt("bad decile"))?,
        quintile: u8::try_from(quintile).map_err(|_| corrupt("bad quintile"))?,
        area_code,
    })
}
