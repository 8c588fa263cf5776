//! The provenance half of the storage contract: which sources list each record, and the
//! withdrawal of services a feed has stopped listing.
//!
//! Sightings are written by [`Store::write_batch`](crate::Store::write_batch) itself,
//! in the same transaction as the records, for a batch that carries a
//! [`Stamp`](kith_domain::provenance::Stamp).

use crate::Result;
use async_trait::async_trait;
use kith_domain::provenance::{Provenance, RecordKind, Source};
use uuid::Uuid;

#[async_trait]
pub trait ProvenanceStore: Send + Sync {
    /// Closes a complete round of `source` (a pull that read every page): each record
    /// the source listed before and not in `round` is missing from one more round. A
    /// service missing from `withdraw_after` rounds in a row is withdrawn by this source,
    /// and, unless another source still lists it, made inactive through the change
    /// feed (never deleted). Closing the same round twice counts it once. Returns the
    /// services this call made inactive.
    async fn close_round(&self, source: &Source, round: Uuid, withdraw_after: u32) -> Result<Vec<Uuid>>;
    /// Every source's account of the records given, by record then source.
    async fn provenance(&self, kind: RecordKind, ids: &[Uuid]) -> Result<Vec<Provenance>>;
    /// Which of `ids` are services Kith already holds.
    async fn existing_services(&self, ids: &[Uuid]) -> Result<Vec<Uuid>>;
    /// Services a source has stopped listing (withdrawn by it), latest first. The
    /// service itself is inactive unless another source still lists it.
    async fn withdrawn(&self, limit: u32) -> Result<Vec<Provenance>>;
}
