//! Keeping the index in step with the store through the change feed.

use crate::index::Position;
use crate::{SearchError, SearchIndex};
use kith_domain::ObjectType;
use kith_domain::hsds::Service;
use kith_store::{Shown, Store};
use std::collections::{BTreeSet, HashSet};
use tokio::sync::mpsc::Sender;
use uuid::Uuid;

/// Changes read per round.
const FEED_PAGE: u32 = 5_000;
/// Services read from the store at a time during a rebuild.
const REBUILD_PAGE: u32 = 5_000;
/// Changes behind, at least, at which a catch-up rebuilds the index instead: at this
/// many or more than the index has services.
const REBUILD_BEHIND: u64 = 50_000;
/// Services read from the store at a time while catching up.
const READ_PAGE: usize = 1_000;

/// What a catch-up did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Caught {
    pub changes: u64,
    pub services: u64,
    pub rebuilt: bool,
}

/// Rebuilds the whole index from the store, beside the live one: searches read the old
/// index until the new one is complete.
pub async fn rebuild(
    store: &dyn Store,
    index: &SearchIndex,
    progress: &mut (dyn FnMut(u64, u64) + Send),
) -> Result<u64, SearchError> {
    // Note the feed position first: changes made during the rebuild are applied after it.
    let at = position(store).await?;
    let started = std::time::Instant::now();
    blocking(index, SearchIndex::start_rebuild).await?;
    let filled = fill(store, index, progress).await;
    let read = started.elapsed();
    let complete = filled.is_ok();
    blocking(index, move |index| index.finish_rebuild(&at, complete)).await?;
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
    // The two halves of the id space are read side by side, a page at a time each,
    // while what was read before is indexed: reading is the larger part of a rebuild,
    // and one reader in step with the indexing left a core idle. The index sorts
    // documents itself, so the order they arrive in does not matter.
    let middle = Uuid::from_u128(1 << 127);
    let mut low = Half { after: None, before: Some(middle), finished: false };
    let mut high = Half { after: Some(Uuid::from_u128((1 << 127) - 1)), before: None, finished: false };
    // Each reader runs at most two pages ahead of the indexing.
    let (pages, mut read) = tokio::sync::mpsc::channel(4);
    let indexing = async {
        let mut done = 0u64;
        while let Some(page) = read.recv().await {
            let page: Vec<Service> = page?;
            let n = page.len() as u64;
            // Off the async threads, which go on answering requests (and reading the
            // next pages) meanwhile.
            blocking(index, move |index| index.add(&page)).await?;
            done += n;
            progress(done, total);
        }
        Ok::<u64, SearchError>(done)
    };
    let ((), (), done) = tokio::join!(low.send_all(store, pages.clone()), high.send_all(store, pages), indexing);
    // One commit and one merge at the end (in `finish_rebuild`): committing each page
    // made a segment of each, and merging them as they came cost more than the indexing.
    done
}

/// A range of service ids read in pages by keyset (each page after the last id), so
/// that reading the whole directory takes time in proportion to its size.
struct Half {
    after: Option<Uuid>,
    /// Where the next half begins.
    before: Option<Uuid>,
    finished: bool,
}

impl Half {
    /// Sends every page of the half, then an empty one; stops at an error, or when the
    /// indexing has stopped listening.
    async fn send_all(&mut self, store: &dyn Store, pages: Sender<Result<Vec<Service>, kith_store::StoreError>>) {
        loop {
            let page = self.next(store).await;
            let last = page.as_ref().map_or(true, Vec::is_empty);
            if pages.send(page).await.is_err() || last {
                return;
            }
        }
    }

    /// The next page, or nothing once the half is read.
    async fn next(&mut self, store: &dyn Store) -> Result<Vec<Service>, kith_store::StoreError> {
        if self.finished {
            return Ok(Vec::new());
        }
        let mut page = store.services_after_for_index(self.after, REBUILD_PAGE).await?;
        self.finished = page.len() < REBUILD_PAGE as usize;
        if let Some(end) = self.before.and_then(|before| page.iter().position(|s| s.id >= before)) {
            page.truncate(end);
            self.finished = true;
        }
        self.after = page.last().map(|s| s.id).or(self.after);
        Ok(page)
    }
}

/// Runs `work` on the index on a thread for blocking work: indexing, committing and
/// merging take whole seconds at scale, and would hold up every request sharing the
/// async thread.
async fn blocking<T: Send + 'static>(
    index: &SearchIndex,
    work: impl FnOnce(&SearchIndex) -> Result<T, SearchError> + Send + 'static,
) -> Result<T, SearchError> {
    let index = index.clone();
    tokio::task::spawn_blocking(move || work(&index))
        .await
        .map_err(|e| SearchError::Index(format!("the indexing thread stopped: {e}")))?
}

/// The store's position in its change feed: its last change.
async fn position(store: &dyn Store) -> Result<Position, SearchError> {
    let last = store.last_seq().await?;
    if last == 0 {
        return Ok(Position::start());
    }
    change_at(store, last).await?.map_or(Ok(Position::unchecked(last)), |c| Ok(Position::of(&c)))
}

async fn change_at(store: &dyn Store, seq: i64) -> Result<Option<kith_domain::Change>, SearchError> {
    Ok(store.changes_since(seq - 1, 1).await?.into_iter().next().filter(|c| c.seq == seq))
}

/// Why the index must be rebuilt before it follows the feed again, if it must: it was
/// found damaged, or the store's change at the index's position is not the one the index
/// applied (the database was restored from a backup older than the index, or is another
/// database).
async fn distrusted(store: &dyn Store, index: &SearchIndex) -> Result<Option<String>, SearchError> {
    if let Some(why) = index.damaged() {
        return Ok(Some(why));
    }
    let at = index.position();
    if at.seq == 0 {
        return Ok(None);
    }
    let change = change_at(store, at.seq).await?;
    if at.agrees_with(change.as_ref()) {
        return Ok(None);
    }
    let last = store.last_seq().await?;
    Ok(Some(if last < at.seq {
        format!(
            "the search index has applied the directory's changes up to {}, but the database's last change is {last} (was it restored from a backup?)",
            at.seq
        )
    } else {
        format!(
            "the database's change {} is not the one the search index applied (is this another database, or a restored one?)",
            at.seq
        )
    }))
}

/// Applies every change after the index's sequence number. A change to an
/// organisation, a location or a taxonomy term re-indexes the services that show it.
/// An empty index is rebuilt, and so is one more changes behind than it has services
/// (and at least 50,000).
pub async fn catch_up(store: &dyn Store, index: &SearchIndex) -> Result<Caught, SearchError> {
    catch_up_telling(store, index, &mut |_| {}).await
}

/// What a catch-up changed in the index, for whatever keeps copies beside it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Applied<'a> {
    /// Every service was indexed afresh.
    Rebuilt,
    /// These services were indexed again, or removed.
    Services(&'a [Uuid]),
}

/// [`catch_up`], telling `told` what it changed after each step.
pub async fn catch_up_telling(
    store: &dyn Store,
    index: &SearchIndex,
    told: &mut (dyn FnMut(Applied<'_>) + Send),
) -> Result<Caught, SearchError> {
    let mut caught = Caught::default();
    if let Some(why) = distrusted(store, index).await? {
        tracing::warn!("{why}; rebuilding it from the store");
        caught.services += rebuild(store, index, &mut |_, _| {}).await?;
        caught.rebuilt = true;
        told(Applied::Rebuilt);
    }
    loop {
        let after = index.seq();
        let changes = store.changes_since(after, FEED_PAGE).await?;
        let Some(last) = changes.last().map(Position::of) else { return Ok(caught) };
        caught.changes += changes.len() as u64;
        // Far behind (a large import since the index last looked), rebuilding is
        // cheaper than looking up what each change touches.
        let far_behind = changes.len() == FEED_PAGE as usize && {
            let behind = u64::try_from(store.last_seq().await? - after).unwrap_or(0);
            behind > REBUILD_BEHIND.max(index.len())
        };
        if after == 0 && index.is_empty() || far_behind {
            caught.services += rebuild(store, index, &mut |_, _| {}).await?;
            caught.rebuilt = true;
            told(Applied::Rebuilt);
            continue;
        }
        let mut ids: BTreeSet<Uuid> = BTreeSet::new();
        let mut shown = Shown::default();
        for c in &changes {
            match c.object_type {
                ObjectType::Service => {
                    ids.insert(c.object_id);
                }
                ObjectType::Organization => shown.organizations.push(c.object_id),
                ObjectType::Location => shown.locations.push(c.object_id),
                ObjectType::TaxonomyTerm => shown.taxonomy_terms.push(c.object_id),
                ObjectType::Taxonomy => {}
            }
        }
        ids.extend(store.services_showing(&shown).await?);
        let ids: Vec<Uuid> = ids.into_iter().collect();
        let mut services: Vec<Service> = Vec::with_capacity(ids.len());
        let mut deleted = Vec::new();
        for page in ids.chunks(READ_PAGE) {
            let found = store.services_by_ids(page).await?;
            // `services_by_ids` leaves out what is no longer stored: those were deleted.
            let kept: HashSet<Uuid> = found.iter().map(|s| s.id).collect();
            deleted.extend(page.iter().copied().filter(|id| !kept.contains(id)));
            services.extend(found);
        }
        caught.services += services.len() as u64;
        blocking(index, move |index| index.apply(&services, &deleted, &last)).await?;
        told(Applied::Services(&ids));
    }
}
