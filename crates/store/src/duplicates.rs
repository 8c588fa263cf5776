//! The duplicates half of the storage contract: the curators' queue of likely pairs, what
//! they decided, and merging, after which the merged record's sources count for the
//! survivor.
//!
//! A merged id is remembered (`merged`): [`Store::write_batch`](crate::Store::write_batch)
//! of a batch holding it writes not the record but a sighting of the survivor, so the next
//! pull of a source that still lists the duplicate neither brings it back nor stops
//! counting as listing it.

use crate::{Alongside, Result};
use async_trait::async_trait;
use kith_domain::DirectoryBatch;
use kith_domain::duplicates::{Candidate, DuplicatePair, PairState};
use kith_domain::provenance::RecordKind;
use std::collections::HashMap;
use uuid::Uuid;

/// A record of a batch that was merged into another: (kind, survivor, merged id).
pub(crate) type Redirect = (RecordKind, Uuid, Uuid);

/// Applies the survivors an engine found to a batch: takes out the records merged into
/// others and points the rest at the organisations theirs were merged into.
pub(crate) fn apply(
    batch: &mut DirectoryBatch,
    orgs: &HashMap<Uuid, Uuid>,
    services: &HashMap<Uuid, Uuid>,
) -> Vec<Redirect> {
    let mut out = Vec::new();
    if orgs.is_empty() && services.is_empty() {
        return out;
    }
    batch.organizations.retain(|o| match orgs.get(&o.id) {
        Some(survivor) => {
            out.push((RecordKind::Organization, *survivor, o.id));
            false
        }
        None => true,
    });
    batch.services.retain(|s| match services.get(&s.id) {
        Some(survivor) => {
            out.push((RecordKind::Service, *survivor, s.id));
            false
        }
        None => true,
    });
    for s in &mut batch.services {
        if let Some(o) = s.organization_id
            && let Some(survivor) = orgs.get(&o)
        {
            s.organization_id = Some(*survivor);
        }
    }
    for l in &mut batch.locations {
        if let Some(o) = l.organization_id
            && let Some(survivor) = orgs.get(&o)
        {
            l.organization_id = Some(*survivor);
        }
    }
    out
}

/// Refuses a decision that is not one: a waiting pair is merged or kept apart.
pub(crate) fn check_decision(to: PairState) -> Result<()> {
    if PairState::Waiting.can_become(to) {
        Ok(())
    } else {
        Err(crate::StoreError::Conflict("a pair is decided by merging it or keeping it apart".into()))
    }
}

/// The kind of records a stored pair is of.
pub(crate) fn pair_kind(id: Uuid, kind: &str) -> Result<RecordKind> {
    RecordKind::parse(kind).ok_or_else(|| crate::StoreError::Corrupt {
        what: "duplicate pair",
        id: id.to_string(),
        reason: "unknown kind of record".into(),
    })
}

#[async_trait]
pub trait DuplicateStore: Send + Sync {
    /// Queues the pairs not queued before; a pair already queued or decided is left as it
    /// is, so one kept apart is never queued again. Returns the ids of the pairs given
    /// that are waiting now.
    async fn put_duplicate_pairs(&self, pairs: &[Candidate]) -> Result<Vec<Uuid>>;
    /// Waiting pairs, oldest first.
    async fn waiting_pairs(&self, limit: u32) -> Result<Vec<DuplicatePair>>;
    async fn duplicate_pair(&self, id: Uuid) -> Result<Option<DuplicatePair>>;
    /// Decides a waiting pair, with what goes beside it (its audit entry) in the same
    /// transaction: [`PairState::Merged`] merges `b` into `a` there too. Returns false
    /// when the pair is not waiting (already decided, or never queued); a merge of a
    /// record that is gone is [`StoreError::NotFound`](crate::StoreError::NotFound).
    async fn decide_pair(
        &self,
        id: Uuid,
        to: PairState,
        by: &str,
        note: Option<String>,
        also: Alongside,
    ) -> Result<bool>;
    /// Merges `merged` into `survivor`, in one transaction: the merged record's sources
    /// become the survivor's (keeping their ids there), the merged id is remembered, and
    /// the merged record is deleted through the change feed. An organisation's services
    /// and venues are moved to the survivor first.
    async fn merge(&self, kind: RecordKind, survivor: Uuid, merged: Uuid, also: Alongside) -> Result<()>;
    /// Which record each of `ids` was merged into, for those merged.
    async fn merged_into(&self, kind: RecordKind, ids: &[Uuid]) -> Result<Vec<(Uuid, Uuid)>>;
}
