//! Finding services: one way for the search page, the widget and the ORUK API. A query
//! goes to the search index for ids in rank order; the services themselves come from the
//! store in one batched read, or, for the ORUK API's JSON, from the copies kept between
//! answers ([`crate::rendered`]).

use crate::App;
use crate::rendered::Rendered;
use kith_domain::hsds::Service;
use kith_search::{Facets, Hit, SearchQuery};
use kith_store::StoreError;
use kith_store::locate::{LocateError, Located};
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
}

/// A page of services as the ORUK API's JSON, in rank order.
#[derive(Debug, Clone)]
pub struct FoundJson {
    pub total: usize,
    pub services: Vec<Rendered>,
}

impl App {
    /// A place typed in a "where" box (a postcode, a part of one, a town or a
    /// neighbourhood), from the local postcode table: no call leaves the machine.
    pub async fn locate(&self, place: &str) -> Result<Located, LocateError> {
        kith_store::locate::locate(&*self.store, place).await
    }

    /// The services that answer `query`, read in one batch.
    pub async fn find_services(&self, query: &SearchQuery) -> Result<Found, FindError> {
        let found = self.hits(query).await?;
        let ids: Vec<Uuid> = found.hits.iter().map(|h| h.id).collect();
        let mut read: HashMap<Uuid, Service> =
            self.store.services_by_ids(&ids).await?.into_iter().map(|s| (s.id, s)).collect();
        let services = found.hits.into_iter().filter_map(|hit| Some((read.remove(&hit.id)?, hit))).collect();
        Ok(Found { total: found.total, services, facets: found.facets })
    }

    /// The same as JSON: copies kept from earlier answers where there are any, the rest
    /// read from the store in one read and kept for next time.
    pub async fn find_services_json(&self, query: &SearchQuery) -> Result<FoundJson, FindError> {
        let found = self.hits(query).await?;
        let ids: Vec<Uuid> = found.hits.iter().map(|h| h.id).collect();
        Ok(FoundJson { total: found.total, services: self.rendered_services(&ids).await? })
    }

    /// Ids, scores and distances from the index, which has caught up with the change feed
    /// unless another catch-up is already running.
    async fn hits(&self, query: &SearchQuery) -> Result<kith_search::SearchResults, FindError> {
        self.catch_up_if_idle().await;
        Ok(self.search.search(query)?)
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
