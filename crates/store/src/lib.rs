//! Where Kith keeps its directory.
//!
//! [`Store`] is the contract. [`sqlite::SqliteStore`] is the embedded default, one file
//! in WAL mode; [`postgres::PostgresStore`] is for several instances sharing one
//! database. Both run their own migrations at start-up and pass the same contract suite
//! (`tests/contract.rs`). SQL lives here, written by hand, one dialect per engine.
#![deny(clippy::unwrap_used, clippy::expect_used)]

pub mod accounts;
pub mod backup;
mod doc;
pub mod duplicates;
mod error;
pub mod feeds;
mod migrate;
pub mod outbox;
pub mod postgres;
pub mod provenance;
pub mod referrals;
pub mod sqlite;
#[cfg(feature = "testing")]
pub mod testing;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use kith_domain::geo::{Deprivation, Place, Point, PostcodeInfo, PostcodePlace};
use kith_domain::hsds::{Location, Organization, Service, Taxonomy, TaxonomyTerm};
use kith_domain::postcode::{Outward, Postcode};
use kith_domain::report::ProblemReport;
use kith_domain::{Change, Clock, DirectoryBatch, ServiceStatus};
use serde::Serialize;
use std::path::Path;
use std::sync::Arc;
use uuid::Uuid;

pub use accounts::AccountStore;
pub use duplicates::DuplicateStore;
pub use error::StoreError;
pub use feeds::FeedStore;
pub use outbox::OutboxStore;
pub use provenance::ProvenanceStore;
pub use referrals::ReferralStore;
pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// What a change writes beside it, in the same transaction: the audit entries that record
/// it and the messages it sends. If any of them cannot be written, neither is the change.
#[derive(Debug, Clone, Default)]
pub struct Alongside {
    pub audit: Vec<kith_domain::account::AuditEvent>,
    pub outbox: Vec<kith_domain::outbox::OutboxMessage>,
}

impl Alongside {
    /// Nothing beside the change: a bulk load, or a test of the change alone.
    pub fn none() -> Alongside {
        Alongside::default()
    }

    /// One message.
    pub fn message(message: kith_domain::outbox::OutboxMessage) -> Alongside {
        Alongside { audit: Vec::new(), outbox: vec![message] }
    }

    /// One audit entry.
    pub fn audited(event: kith_domain::account::AuditEvent) -> Alongside {
        Alongside { audit: vec![event], outbox: Vec::new() }
    }
}

/// Which engine a store runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Engine {
    Sqlite,
    Postgres,
}

/// A page request: `number` counts from 1.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageRequest {
    pub number: u32,
    pub size: u32,
}

impl PageRequest {
    pub const MAX_SIZE: u32 = 1000;

    /// A page, with the size clamped to 1..=1000 and the number to at least 1.
    pub fn new(number: u32, size: u32) -> Self {
        PageRequest { number: number.max(1), size: size.clamp(1, Self::MAX_SIZE) }
    }

    /// How many items come before this page.
    pub fn offset(self) -> u64 {
        u64::from(self.number - 1) * u64::from(self.size)
    }
}

impl Default for PageRequest {
    fn default() -> Self {
        PageRequest::new(1, 50)
    }
}

/// One page of results and the total across all pages.
#[derive(Debug, Clone, PartialEq)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub total: u64,
    pub request: PageRequest,
}

impl<T> Page<T> {
    pub fn total_pages(&self) -> u64 {
        self.total.div_ceil(u64::from(self.request.size))
    }
}

/// Organisations, locations and taxonomy terms whose services are wanted: what a
/// change to one of them touches.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Shown {
    pub organizations: Vec<Uuid>,
    pub locations: Vec<Uuid>,
    pub taxonomy_terms: Vec<Uuid>,
}

impl Shown {
    pub fn is_empty(&self) -> bool {
        self.organizations.is_empty() && self.locations.is_empty() && self.taxonomy_terms.is_empty()
    }
}

/// Which services to list. Every filter given must hold (AND).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ServiceQuery {
    pub organization_id: Option<Uuid>,
    pub taxonomy_term_id: Option<Uuid>,
    /// Only services Kith stored a change to after this time.
    pub modified_after: Option<DateTime<Utc>>,
    pub status: Option<ServiceStatus>,
    pub page: PageRequest,
}

/// Which taxonomy terms to list.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TermQuery {
    pub taxonomy_id: Option<Uuid>,
    /// `Some(None)` lists top-level terms; `Some(Some(id))` the children of `id`.
    pub parent_id: Option<Option<Uuid>>,
    pub page: PageRequest,
}

/// How many records of each kind a write stored or changed. Unchanged records, such as
/// those of a repeated import, are not counted and add nothing to the change feed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct WriteSummary {
    pub taxonomies: u64,
    pub taxonomy_terms: u64,
    pub organizations: u64,
    pub locations: u64,
    pub services: u64,
}

impl WriteSummary {
    pub fn total(&self) -> u64 {
        self.taxonomies + self.taxonomy_terms + self.organizations + self.locations + self.services
    }

    pub fn add(&mut self, other: WriteSummary) {
        self.taxonomies += other.taxonomies;
        self.taxonomy_terms += other.taxonomy_terms;
        self.organizations += other.organizations;
        self.locations += other.locations;
        self.services += other.services;
    }
}

/// How many records the directory holds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Counts {
    pub taxonomies: u64,
    pub taxonomy_terms: u64,
    pub organizations: u64,
    pub locations: u64,
    pub services: u64,
}

/// How much geography is loaded.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct GeoCounts {
    pub postcodes: u64,
    pub deprivation: u64,
    pub places: u64,
}

/// An outward code ("G31") summarised from the postcodes in it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct OutwardArea {
    pub outward: String,
    /// The mean position of its postcodes.
    pub centre: Point,
    pub postcodes: u64,
    /// The council that holds most of its postcodes.
    pub local_authority: Option<String>,
}

/// The directory's storage contract. Every write is one transaction and appends to the
/// change feed in it; reads of services return them fully nested (`service_full`).
#[async_trait]
pub trait Store:
    AccountStore
    + DuplicateStore
    + FeedStore
    + OutboxStore
    + ProvenanceStore
    + ReferralStore
    + Send
    + Sync
    + std::fmt::Debug
{
    fn engine(&self) -> Engine;

    /// Stores every record in the batch in one transaction, inserting new ones and
    /// updating existing ones by id.
    async fn write_batch(&self, batch: DirectoryBatch) -> Result<WriteSummary>;

    /// Stores every record of every batch in one transaction, in order: all of them or,
    /// if any write fails, none (`kith import --strict`). Each batch keeps its own source.
    async fn write_batches(&self, batches: Vec<DirectoryBatch>) -> Result<WriteSummary>;

    /// Stores one service (and whatever it nests).
    async fn put_service(&self, service: Service) -> Result<WriteSummary> {
        let mut batch = DirectoryBatch::new();
        batch.add_service(service);
        self.write_batch(batch).await
    }

    /// Removes a service. Returns whether it existed.
    async fn delete_service(&self, id: Uuid) -> Result<bool>;

    async fn set_service_status(&self, id: Uuid, status: ServiceStatus) -> Result<()>;

    /// Records that someone confirmed the listing is true, now.
    async fn mark_service_verified(&self, id: Uuid, by: &str) -> Result<()>;

    async fn service(&self, id: Uuid) -> Result<Option<Service>>;
    /// The services with these ids, fully nested, in the order asked, in one read. Ids
    /// not in the directory are left out. For a page of search hits.
    async fn services_by_ids(&self, ids: &[Uuid]) -> Result<Vec<Service>>;
    async fn services(&self, query: &ServiceQuery) -> Result<Page<Service>>;
    /// Up to `limit` services, fully nested, in id order, after `after` (from the start
    /// when `None`). For reading the whole directory in linear time: no count, no offset.
    async fn services_after(&self, after: Option<Uuid>, limit: u32) -> Result<Vec<Service>>;
    /// Like [`services_after`](Store::services_after), for building the search index:
    /// each service's organisation carries only its id and name, and each venue only its
    /// id, position and accessibility, read without decoding their whole documents. Not
    /// for showing to anyone.
    async fn services_after_for_index(&self, after: Option<Uuid>, limit: u32) -> Result<Vec<Service>>;
    /// The ids of the services run by any of these organisations, offered at any of these
    /// locations or linked to any of these terms: each once, in id order. For keeping a
    /// derived copy (the search index) in step when one of them changes.
    async fn services_showing(&self, shown: &Shown) -> Result<Vec<Uuid>>;

    async fn organization(&self, id: Uuid) -> Result<Option<Organization>>;
    async fn organizations(&self, page: PageRequest) -> Result<Page<Organization>>;
    /// Up to `limit` organisations after `after` in id order: for reading them all, in
    /// time that does not grow with how far through one is.
    async fn organizations_after(&self, after: Option<Uuid>, limit: u32) -> Result<Vec<Organization>>;

    async fn location(&self, id: Uuid) -> Result<Option<Location>>;
    /// Every location, ordered by name then id.
    async fn locations(&self, page: PageRequest) -> Result<Page<Location>>;

    async fn taxonomies(&self, page: PageRequest) -> Result<Page<Taxonomy>>;
    async fn taxonomy_term(&self, id: Uuid) -> Result<Option<TaxonomyTerm>>;
    async fn taxonomy_terms(&self, query: &TermQuery) -> Result<Page<TaxonomyTerm>>;

    /// Change feed entries after `after`, oldest first, at most `limit`.
    async fn changes_since(&self, after: i64, limit: u32) -> Result<Vec<Change>>;
    /// The newest sequence number, or 0 for an empty feed.
    async fn last_seq(&self) -> Result<i64>;

    async fn counts(&self) -> Result<Counts>;

    /// Stores postcodes, replacing any with the same postcode. Returns how many.
    async fn put_postcodes(&self, postcodes: Vec<PostcodePlace>) -> Result<u64>;
    /// Stores deprivation ranks, replacing any for the same area and index.
    async fn put_deprivation(&self, rows: Vec<Deprivation>) -> Result<u64>;
    /// Stores place names, replacing any with the same name in the same council.
    async fn put_places(&self, places: Vec<Place>) -> Result<u64>;

    /// A postcode with the deprivation of its area on every index loaded.
    async fn postcode(&self, postcode: &Postcode) -> Result<Option<PostcodeInfo>>;
    /// Postcodes that start with `prefix` ("G31 ", "G31 2"), in order, at most `limit`.
    async fn postcodes_with_prefix(&self, prefix: &str, limit: u32) -> Result<Vec<PostcodePlace>>;
    async fn outward(&self, outward: &Outward) -> Result<Option<OutwardArea>>;
    /// Places whose name starts with `name`, ignoring case, shortest name first.
    async fn places_named(&self, name: &str, limit: u32) -> Result<Vec<Place>>;
    async fn geo_counts(&self) -> Result<GeoCounts>;

    /// Keeps a problem report on a listing.
    async fn add_problem_report(&self, report: ProblemReport) -> Result<()>;
    /// Problem reports, newest first: on one service, or on all.
    async fn problem_reports(&self, service_id: Option<Uuid>, limit: u32) -> Result<Vec<ProblemReport>>;
}

/// The key a place name is found by: lower case, single spaces.
pub fn place_key(name: &str) -> String {
    name.split_whitespace().collect::<Vec<_>>().join(" ").to_lowercase()
}

/// Opens the store a database URL names: `postgres://` or `postgresql://` for
/// PostgreSQL, `sqlite://PATH` for a SQLite file, or nothing for SQLite in `data_dir`.
/// Runs pending migrations before returning.
pub async fn open(database_url: Option<&str>, data_dir: &Path, clock: Arc<dyn Clock>) -> Result<Arc<dyn Store>> {
    match database_url.map(str::trim).filter(|u| !u.is_empty()) {
        Some(url) if url.starts_with("postgres://") || url.starts_with("postgresql://") => {
            Ok(Arc::new(postgres::PostgresStore::connect(url, clock).await?))
        }
        Some(url) if url.starts_with("sqlite://") || url.starts_with("sqlite:") => {
            let path = url.trim_start_matches("sqlite://").trim_start_matches("sqlite:");
            Ok(Arc::new(sqlite::SqliteStore::open(Path::new(path), clock).await?))
        }
        Some(url) => Err(StoreError::Config(format!(
            "the database URL {:?} is not one Kith understands; use postgres://user@host/db or sqlite://path/to/kith.db",
            redact_url(url)
        ))),
        None => {
            std::fs::create_dir_all(data_dir).map_err(|e| {
                StoreError::Config(format!("cannot create the data directory {}: {e}", data_dir.display()))
            })?;
            Ok(Arc::new(sqlite::SqliteStore::open(&data_dir.join("kith.db"), clock).await?))
        }
    }
}

/// A database URL with any password replaced, for messages and logs.
pub fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme_end), Some(at)) if at > scheme_end => {
            let userinfo = &url[scheme_end + 3..at];
            match userinfo.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &url[..scheme_end + 3], &url[at..]),
                None => url.to_owned(),
            }
        }
        _ => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_redacted() {
        assert_eq!(redact_url("postgres://kith:secret@db/kith"), "postgres://kith:***@db/kith");
        assert_eq!(redact_url("postgres://postgres@127.0.0.1/x"), "postgres://postgres@127.0.0.1/x");
    }

    #[test]
    fn page_requests_are_clamped() {
        assert_eq!(PageRequest::new(0, 0), PageRequest { number: 1, size: 1 });
        assert_eq!(PageRequest::new(3, 5000).size, PageRequest::MAX_SIZE);
        assert_eq!(PageRequest::new(3, 10).offset(), 20);
    }
}
