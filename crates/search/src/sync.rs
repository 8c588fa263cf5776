//! Keeping the index in step with the store through the change feed.

use crate::{SearchError, SearchIndex};
use kith_domain::ObjectType;
use kith_domain::hsds::Service;
use kith_store::{PageRequest, ServiceQuery, Store};
use std::collections::BTreeSet;
use uuid::Uuid;

/// Changes read per round.
const FEED_PAGE: u32 = 5_000;
/// Services read from the store at a time during a rebuild.
const REBUILD_PAGE: u32 = 5_000;

/// What a catch-up did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Caught {
    pub changes: u64,
    pub services: u64,
    pub rebuilt: bool,
}

/// Rebuilds the whole index from the store.
pub async fn rebuild(
    store: &dyn Store,
    index: &SearchIndex,
    progress: &mut (dyn FnMut(u64, u64) + Send),
) -> Result<u64, SearchError> {
    // Note the feed position first: changes made during the rebuild are applied after it.
    let seq = store.last_seq().await?;
    let started = std::time::Instant::now();
    index.start_rebuild()?;
    let filled = fill(store, index, progress).await;
    let read = started.elapsed();
    // Merges resume whether or not the rebuild got through.
    index.finish_rebuild(seq, filled.is_ok())?;
    if let Ok(n) = filled {
        tracing::info!(
            services = n,
            read_and_indexed_s = read.as_secs_f64(),
            committed_and_merged_s = (started.elapsed() - read).as_secs_f64(),
            "search index rebuilt from the store"
        );
    }
    filled
}

/// Adds every service in the store to an index being rebuilt.
async fn fill(
    store: &dyn Store,
    index: &SearchIndex,
    progress: &mut (dyn FnMut(u64, u64) + Send),
) -> Result<u64, SearchError> {
    let total = store.counts().await?.services;
    let mut done = 0u64;
    // Keyset paging: each page starts after the last id, so reading the whole directory
    // takes time in proportion to its size.
    let mut services = store.services_after(None, REBUILD_PAGE).await?;
    while let Some(last) = services.last().map(|s| s.id) {
        done += services.len() as u64;
        // The next page is read (on a blocking thread, or by the database) while this
        // one is indexed: the read is polled first, so it starts before the indexing.
        let (next, added) =
            tokio::join!(store.services_after(Some(last), REBUILD_PAGE), async { index.add(&services) });
        added?;
        progress(done, total);
        services = next?;
    }
    // One commit and one merge at the end (in `finish_rebuild`): committing each page
    // made a segment of each, and merging them as they came cost more than the indexing.
    Ok(done)
}

/// Applies every change after the index's sequence number. Changes to organisations or
/// taxonomy terms re-index the services that show them; a change to a location, which
/// the store cannot yet list services by, rebuilds the index.
pub async fn catch_up(store: &dyn Store, index: &SearchIndex) -> Result<Caught, SearchError> {
    let mut caught = Caught::default();
    loop {
        let after = index.seq();
        let changes = store.changes_since(after, FEED_PAGE).await?;
        let Some(last) = changes.last().map(|c| c.seq) else { return Ok(caught) };
        caught.changes += changes.len() as u64;
        if after == 0 && index.is_empty() || changes.iter().any(|c| c.object_type == ObjectType::Location) {
            caught.services += rebuild(store, index, &mut |_, _| {}).await?;
            caught.rebuilt = true;
            continue;
        }
        let mut ids: BTreeSet<Uuid> = BTreeSet::new();
        for c in &changes {
            match c.object_type {
                ObjectType::Service => {
                    ids.insert(c.object_id);
                }
                ObjectType::Organization => {
                    ids.extend(all_services(store, |q| q.organization_id = Some(c.object_id)).await?);
                }
                ObjectType::TaxonomyTerm => {
                    ids.extend(all_services(store, |q| q.taxonomy_term_id = Some(c.object_id)).await?);
                }
                ObjectType::Location | ObjectType::Taxonomy => {}
            }
        }
        let mut services: Vec<Service> = Vec::new();
        let mut deleted = Vec::new();
        for id in ids {
            match store.service(id).await? {
                Some(s) => services.push(s),
                None => deleted.push(id),
            }
        }
        caught.services += services.len() as u64;
        index.apply(&services, &deleted, last)?;
    }
}

async fn all_services(store: &dyn Store, filter: impl Fn(&mut ServiceQuery)) -> Result<Vec<Uuid>, SearchError> {
    let mut out = Vec::new();
    let mut page = 1;
    loop {
        let mut q = ServiceQuery { page: PageRequest::new(page, PageRequest::MAX_SIZE), ..Default::default() };
        filter(&mut q);
        let found = store.services(&q).await?;
        if found.items.is_empty() {
            return Ok(out);
        }
        out.extend(found.items.iter().map(|s| s.id));
        page += 1;
    }
}
