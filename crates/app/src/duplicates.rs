//! Duplicates across sources: found by keys after each pull and import, certain ones
//! merged without asking, likely ones queued for a curator, who merges them or keeps
//! them apart. Every decision is audited in the transaction that makes it.

use crate::accounts::Actor;
use kith_domain::Clock;
use kith_domain::account::AuditEvent;
use kith_domain::duplicates::{Detector, DuplicatePair, PairState};
use kith_domain::hsds::Service;
use kith_domain::provenance::{Provenance, RecordKind, Source};
use kith_store::{Alongside, Store, StoreError};
use serde::Serialize;
use std::collections::HashMap;
use std::sync::Arc;
use uuid::Uuid;

/// Records read from the store at a time.
const READ_AT_ONCE: u32 = 1000;

/// What one detection found.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Detected {
    pub organisations_merged: u64,
    pub services_merged: u64,
    /// Likely pairs waiting for a curator after this detection, new or not.
    pub waiting: u64,
}

impl Detected {
    pub fn summary(&self) -> String {
        format!(
            "Merged {} organisations and {} services that were certainly the same; {} likely duplicates wait for a curator.",
            self.organisations_merged, self.services_merged, self.waiting
        )
    }
}

#[derive(Debug, thiserror::Error)]
pub enum DuplicateError {
    /// Something the person can put right; the message says what.
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// One record of a pair, as a curator compares it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Side {
    pub id: Uuid,
    pub name: String,
    pub organisation: Option<String>,
    pub address: Option<String>,
    pub sources: Vec<String>,
}

/// A waiting pair with both records side by side.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PairView {
    pub pair: DuplicatePair,
    pub a: Side,
    pub b: Side,
}

/// What a curator decided about a pair.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    Merge,
    KeepApart,
}

impl Decision {
    pub fn parse(s: &str) -> Option<Decision> {
        match s {
            "merge" => Some(Decision::Merge),
            "keep_apart" => Some(Decision::KeepApart),
            _ => None,
        }
    }
}

#[derive(Clone)]
pub struct Duplicates {
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
}

impl std::fmt::Debug for Duplicates {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Duplicates").finish_non_exhaustive()
    }
}

fn address(service: &Service) -> Option<String> {
    let venue = service.service_at_locations.iter().find_map(|s| s.location.as_ref())?;
    let line = venue.addresses.first().map(|a| {
        [a.address_1.as_str(), a.city.as_str(), a.postal_code.as_str()]
            .into_iter()
            .filter(|p| !p.trim().is_empty())
            .collect::<Vec<_>>()
            .join(", ")
    });
    line.filter(|l| !l.is_empty()).or_else(|| venue.name.clone())
}

impl Duplicates {
    pub fn new(store: Arc<dyn Store>, clock: Arc<dyn Clock>) -> Duplicates {
        Duplicates { store, clock }
    }

    fn event(&self, actor: &Actor, action: &str, pair: &DuplicatePair, reason: String) -> AuditEvent {
        AuditEvent {
            seq: 0,
            at: self.clock.now(),
            actor: actor.user,
            actor_roles: actor.roles.clone(),
            action: action.into(),
            record_type: pair.kind.as_str().into(),
            record_id: Some(format!("{} {}", pair.a, pair.b)),
            ip: actor.ip.clone(),
            reason,
        }
    }

    /// Reads every organisation and service once, groups them by their keys, merges the
    /// certain matches and queues the likely ones. Linear in the directory's size. A
    /// certain match of two records one source lists apart is queued, not merged.
    pub async fn detect(&self) -> Result<Detected, StoreError> {
        let mut detector = Detector::new();
        let mut after = None;
        loop {
            let organizations = self.store.organizations_after(after, READ_AT_ONCE).await?;
            organizations.iter().for_each(|o| detector.add_organization(o));
            match organizations.last() {
                Some(last) if organizations.len() == READ_AT_ONCE as usize => after = Some(last.id),
                _ => break,
            }
        }
        let mut after = None;
        loop {
            let services = self.store.services_after(after, READ_AT_ONCE).await?;
            services.iter().for_each(|s| detector.add_service(s));
            match services.last() {
                Some(last) if services.len() == READ_AT_ONCE as usize => after = Some(last.id),
                _ => break,
            }
        }
        let candidates = detector.candidates();
        // Two records one source lists under two ids are two to that source (North and
        // South Bristol's allotments, by one group, of one name): a curator decides.
        let mut sources: HashMap<(RecordKind, Uuid), Vec<Source>> = HashMap::new();
        for kind in [RecordKind::Organization, RecordKind::Service] {
            let ids: Vec<Uuid> =
                candidates.iter().filter(|c| c.certain && c.kind == kind).flat_map(|c| [c.a, c.b]).collect();
            for chunk in ids.chunks(READ_AT_ONCE as usize) {
                for p in self.store.provenance(kind, chunk).await? {
                    sources.entry((kind, p.record_id)).or_default().push(p.source);
                }
            }
        }
        let one_source = |kind: RecordKind, a: Uuid, b: Uuid| {
            let (Some(a), Some(b)) = (sources.get(&(kind, a)), sources.get(&(kind, b))) else { return false };
            a.iter().any(|s| b.contains(s))
        };
        let certain: HashMap<Uuid, String> = candidates
            .iter()
            .filter(|c| c.certain && !one_source(c.kind, c.a, c.b))
            .map(|c| (c.pair_id(), c.reason.clone()))
            .collect();
        let waiting = self.store.put_duplicate_pairs(&candidates).await?;
        let kith = Actor { user: None, roles: "kith".into(), ip: None };
        let mut detected = Detected::default();
        // Organisations come first in `waiting`, so their services are moved before the
        // services are merged.
        for id in waiting {
            let Some(reason) = certain.get(&id) else {
                detected.waiting += 1;
                continue;
            };
            let Some(pair) = self.store.duplicate_pair(id).await? else { continue };
            let audit = self.event(&kith, "duplicates.merge", &pair, format!("certain match: {reason}"));
            match self.store.decide_pair(id, PairState::Merged, "kith", None, Alongside::audited(audit)).await {
                Ok(true) => match pair.kind {
                    RecordKind::Organization => detected.organisations_merged += 1,
                    RecordKind::Service => detected.services_merged += 1,
                },
                Ok(false) | Err(StoreError::NotFound { .. }) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(detected)
    }

    /// Detects, logging rather than failing: for after a pull or an import, which
    /// succeeded whatever this finds.
    pub async fn detect_logged(&self) -> Option<Detected> {
        match self.detect().await {
            Ok(d) => {
                tracing::info!(?d, "duplicates detected");
                Some(d)
            }
            Err(e) => {
                tracing::error!(error = %e, "finding duplicates failed; the next pull or import tries again");
                None
            }
        }
    }

    async fn sides(&self, kind: RecordKind, ids: &[Uuid]) -> Result<HashMap<Uuid, Side>, StoreError> {
        let feeds: HashMap<Uuid, String> = self.store.feeds().await?.into_iter().map(|f| (f.id, f.name)).collect();
        let mut sources: HashMap<Uuid, Vec<String>> = HashMap::new();
        for p in self.store.provenance(kind, ids).await? {
            let Provenance { record_id, source, id_there, .. } = p;
            let named = match source {
                Source::Feed(id) => feeds.get(&id).map_or_else(|| "a removed feed".to_owned(), |n| format!("feed {n}")),
                Source::File(name) => format!("file {name}"),
            };
            sources.entry(record_id).or_default().push(format!("{named} (id there {id_there})"));
        }
        let mut out = HashMap::new();
        match kind {
            RecordKind::Service => {
                for s in self.store.services_by_ids(ids).await? {
                    let side = Side {
                        id: s.id,
                        name: s.name.clone(),
                        organisation: s.organization.as_ref().map(|o| o.name.clone()),
                        address: address(&s),
                        sources: sources.remove(&s.id).unwrap_or_default(),
                    };
                    out.insert(s.id, side);
                }
            }
            RecordKind::Organization => {
                for id in ids {
                    let Some(o) = self.store.organization(*id).await? else { continue };
                    let address = o
                        .locations
                        .iter()
                        .flat_map(|l| &l.addresses)
                        .next()
                        .map(|a| format!("{}, {}, {}", a.address_1, a.city, a.postal_code));
                    let side = Side {
                        id: o.id,
                        name: o.name.clone(),
                        organisation: None,
                        address,
                        sources: sources.remove(&o.id).unwrap_or_default(),
                    };
                    out.insert(o.id, side);
                }
            }
        }
        Ok(out)
    }

    /// Pairs waiting for a curator, oldest first, with both records side by side. A pair
    /// one of whose records has gone is left out.
    pub async fn waiting(&self, limit: u32) -> Result<Vec<PairView>, StoreError> {
        let pairs = self.store.waiting_pairs(limit).await?;
        let mut out = Vec::with_capacity(pairs.len());
        for kind in [RecordKind::Organization, RecordKind::Service] {
            let ids: Vec<Uuid> = pairs.iter().filter(|p| p.kind == kind).flat_map(|p| [p.a, p.b]).collect();
            if ids.is_empty() {
                continue;
            }
            let sides = self.sides(kind, &ids).await?;
            for pair in pairs.iter().filter(|p| p.kind == kind) {
                if let (Some(a), Some(b)) = (sides.get(&pair.a).cloned(), sides.get(&pair.b).cloned()) {
                    out.push(PairView { pair: pair.clone(), a, b });
                }
            }
        }
        out.sort_by_key(|v| (v.pair.found_at, v.pair.id));
        Ok(out)
    }

    /// A curator's decision on a waiting pair, audited in the same transaction. Merging
    /// keeps the first record and both records' sources.
    pub async fn decide(
        &self,
        actor: &Actor,
        id: Uuid,
        decision: Decision,
        note: Option<String>,
    ) -> Result<(), DuplicateError> {
        let gone =
            || DuplicateError::Invalid("This pair has already been decided, or its records have changed.".into());
        let pair = self.store.duplicate_pair(id).await?.ok_or_else(gone)?;
        let (to, action) = match decision {
            Decision::Merge => (PairState::Merged, "duplicates.merge"),
            Decision::KeepApart => (PairState::KeptApart, "duplicates.keep_apart"),
        };
        let audit = self.event(actor, action, &pair, pair.reason.clone());
        let by = actor.user.map_or_else(|| actor.roles.clone(), |u| u.to_string());
        match self.store.decide_pair(id, to, &by, note, Alongside::audited(audit)).await {
            Ok(true) => Ok(()),
            Ok(false) | Err(StoreError::NotFound { .. }) => Err(gone()),
            Err(e) => Err(e.into()),
        }
    }
}
