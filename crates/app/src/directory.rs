//! Finding services: one way for the search page, the widget and the ORUK API. A query
//! goes to the search index for ids in rank order; the services themselves come from the
//! store in one batched read, or, for the ORUK API's JSON, from the copies kept between
//! answers ([`crate::rendered`]).

use crate::App;
use crate::locate::{LocateError, Located};
use crate::rendered::Rendered;
use kith_domain::hsds::{Organization, Service, Taxonomy, TaxonomyTerm};
use kith_domain::report::ProblemReport;
use kith_search::{Facets, Hit, SearchQuery};
use kith_store::{Counts, Engine, Page, PageRequest, ServiceQuery, StoreError, TermQuery};
use std::collections::HashMap;
use uuid::Uuid;

/// Why a search could not be answered. Neither is the asker's fault.
#[derive(Debug, thiserror::Error)]
pub enum FindError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Search(#[from] kith_search::SearchError),
}

/// A page of services found, in rank order, each with what the index said of it.
#[derive(Debug, Clone)]
pub struct Found {
    /// How many services match in all, beyond this page.
    pub total: usize,
    /// The page, in rank order. A hit whose service has gone since the index chose it is
    /// left out.
    pub services: Vec<(Service, Hit)>,
    pub facets: Facets,
    /// How the query's words were read, for explaining the ranking.
    pub reading: kith_search::Reading,
    /// The search index has not yet caught up with the directory since this instance
    /// started: services may be missing.
    pub preparing: bool,
}

/// The deepest a listing of service-at-location entries pages: the entries of the first
/// 100,000 services in rank order (a search or a place narrows far below it).
pub const MAX_RANKED_FOR_VENUES: usize = 100_000;

/// A page of service-at-location entries: each service on the page with the range of
/// its `service_at_locations` that falls on it, and the count of every entry.
#[derive(Debug, Clone)]
pub struct VenuesFound {
    pub total: u64,
    pub entries: Vec<(Service, std::ops::Range<usize>)>,
}

/// A page of services as the ORUK API's JSON, in rank order.
#[derive(Debug, Clone)]
pub struct FoundJson {
    pub total: usize,
    pub services: Vec<Rendered>,
}

/// What the directory holds, for the health check.
#[derive(Debug, Clone, Copy)]
pub struct Status {
    pub engine: Engine,
    pub counts: Counts,
    /// The change feed's last sequence number.
    pub change_feed_seq: i64,
}

impl App {
    /// One service, as the directory has it.
    pub async fn service(&self, id: Uuid) -> Result<Option<Service>, StoreError> {
        self.store.service(id).await
    }

    /// A page of services in name order, filtered by what the store indexes itself (the
    /// organization, a taxonomy term, when last modified), without the search index.
    pub async fn list_services(&self, query: &ServiceQuery) -> Result<Page<Service>, StoreError> {
        self.store.services(query).await
    }

    /// Services by id, in the order asked for; one that has gone is left out.
    pub async fn services_in_order(&self, ids: &[Uuid]) -> Result<Vec<Service>, StoreError> {
        let mut read: HashMap<Uuid, Service> =
            self.store.services_by_ids(ids).await?.into_iter().map(|s| (s.id, s)).collect();
        Ok(ids.iter().filter_map(|id| read.remove(id)).collect())
    }

    /// Services' names by id, for lists of referrals; a service that has gone from the
    /// directory is left out.
    pub async fn service_names(&self, ids: &[Uuid]) -> Result<HashMap<Uuid, String>, StoreError> {
        Ok(self.store.service_names(ids).await?.into_iter().collect())
    }

    /// An HSDS organization with every service it runs.
    pub async fn organization_with_services(&self, id: Uuid) -> Result<Option<Organization>, StoreError> {
        let Some(mut org) = self.store.organization(id).await? else { return Ok(None) };
        let query = ServiceQuery {
            organization_id: Some(id),
            page: PageRequest::new(1, PageRequest::MAX_SIZE),
            ..Default::default()
        };
        org.services = self.store.services(&query).await?.items;
        Ok(Some(org))
    }

    /// The name of the HSDS organization that runs a service.
    pub async fn organization_name(&self, id: Uuid) -> Result<Option<String>, StoreError> {
        Ok(self.store.organization(id).await?.map(|o| o.name))
    }

    /// A page of HSDS organizations.
    pub async fn organizations(&self, page: PageRequest) -> Result<Page<Organization>, StoreError> {
        self.store.organizations(page).await
    }

    /// A page of taxonomies.
    pub async fn taxonomies(&self, page: PageRequest) -> Result<Page<Taxonomy>, StoreError> {
        self.store.taxonomies(page).await
    }

    /// A page of taxonomy terms.
    pub async fn taxonomy_terms(&self, query: &TermQuery) -> Result<Page<TaxonomyTerm>, StoreError> {
        self.store.taxonomy_terms(query).await
    }

    /// A problem with a listing, reported by anyone, for curators to look at.
    pub async fn report_problem(&self, report: ProblemReport) -> Result<(), StoreError> {
        self.store.add_problem_report(report).await
    }

    /// The engine, what the directory holds and how far its change feed has gone.
    pub async fn status(&self) -> Result<Status, StoreError> {
        let counts = self.store.counts().await?;
        let change_feed_seq = self.store.last_seq().await?;
        Ok(Status { engine: self.store.engine(), counts, change_feed_seq })
    }

    /// How far the directory's change feed has gone.
    pub async fn change_feed_seq(&self) -> Result<i64, StoreError> {
        self.store.last_seq().await
    }

    /// A place typed in a "where" box (a postcode, a part of one, a town or a
    /// neighbourhood), from the local postcode table: no call leaves the machine.
    pub async fn locate(&self, place: &str) -> Result<Located, LocateError> {
        crate::locate::locate(&*self.store, place).await
    }

    /// The services that answer `query`, read in one batch.
    pub async fn find_services(&self, query: &SearchQuery) -> Result<Found, FindError> {
        let found = self.hits(query).await?;
        let ids: Vec<Uuid> = found.hits.iter().map(|h| h.id).collect();
        let mut read: HashMap<Uuid, Service> =
            self.store.services_by_ids(&ids).await?.into_iter().map(|s| (s.id, s)).collect();
        let services = found.hits.into_iter().filter_map(|hit| Some((read.remove(&hit.id)?, hit))).collect();
        let preparing = !self.has_caught_up();
        Ok(Found { total: found.total, services, facets: found.facets, reading: found.reading, preparing })
    }

    /// The same as JSON: copies kept from earlier answers where there are any, the rest
    /// read from the store in one read and kept for next time.
    pub async fn find_services_json(&self, query: &SearchQuery) -> Result<FoundJson, FindError> {
        let found = self.hits(query).await?;
        let ids: Vec<Uuid> = found.hits.iter().map(|h| h.id).collect();
        Ok(FoundJson { total: found.total, services: self.rendered_services(&ids).await? })
    }

    /// Ids, scores and distances from the index. A search only reads the index: the jobs
    /// runner's feed follower keeps it up with the directory, a second behind at most
    /// ([`crate::jobs::Schedule`]), so no request waits on a catch-up or writes the index.
    /// The places services that answer `query` are offered at, as one entry per service
    /// and place, in the services' rank order: the entries from `start`, at most `size`
    /// of them, and how many there are in all. Only the services on the page are read.
    pub async fn find_service_at_locations(
        &self,
        query: &SearchQuery,
        start: u64,
        size: usize,
    ) -> Result<VenuesFound, FindError> {
        let end = start.saturating_add(size as u64);
        // Only services with a venue match, each with one or more, so the entries up to
        // `end` are among the first `end` services.
        let mut q = query.clone();
        q.offset = 0;
        q.limit = usize::try_from(end).unwrap_or(usize::MAX).min(MAX_RANKED_FOR_VENUES);
        q.facets = false;
        q.venues = true;
        let found = self.hits(&q).await?;
        let mut wanted: Vec<(Uuid, std::ops::Range<usize>)> = Vec::new();
        let mut before = 0u64;
        for hit in &found.hits {
            let venues = u64::from(hit.venues);
            let (from, to) = (before.max(start), (before + venues).min(end));
            if from < to {
                let range = usize::try_from(from - before).unwrap_or(0)..usize::try_from(to - before).unwrap_or(0);
                wanted.push((hit.id, range));
            }
            before += venues;
            if before >= end {
                break;
            }
        }
        let ids: Vec<Uuid> = wanted.iter().map(|(id, _)| *id).collect();
        let mut read: HashMap<Uuid, Service> =
            self.store.services_by_ids(&ids).await?.into_iter().map(|s| (s.id, s)).collect();
        let entries = wanted.into_iter().filter_map(|(id, range)| Some((read.remove(&id)?, range))).collect();
        Ok(VenuesFound { total: found.venues, entries })
    }

    async fn hits(&self, query: &SearchQuery) -> Result<kith_search::SearchResults, FindError> {
        let found = self.search.search(query)?;
        self.metrics.search(found.took.as_secs_f64());
        Ok(found)
    }

    async fn rendered_services(&self, ids: &[Uuid]) -> Result<Vec<Rendered>, StoreError> {
        let found = self.rendered.get(ids);
        let missing: Vec<Uuid> =
            ids.iter().zip(&found.services).filter(|(_, kept)| kept.is_none()).map(|(id, _)| *id).collect();
        let mut read: HashMap<Uuid, Rendered> = HashMap::with_capacity(missing.len());
        if !missing.is_empty() {
            let services = self.store.services_by_ids(&missing).await?;
            let mut fresh = Vec::with_capacity(services.len());
            for s in &services {
                let rendered = Rendered::of(s).map_err(|e| StoreError::Corrupt {
                    what: "service",
                    id: s.id.to_string(),
                    reason: e.to_string(),
                })?;
                fresh.push((s.id, rendered));
            }
            self.rendered.put(found.generation, &fresh);
            read.extend(fresh);
        }
        // In the order of the hits; a hit deleted since the index chose it is left out, as
        // `services_by_ids` leaves it out.
        Ok(ids.iter().zip(found.services).filter_map(|(id, kept)| kept.or_else(|| read.remove(id))).collect())
    }
}
