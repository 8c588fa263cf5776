//! Duplicates on SQLite.

use super::{SqliteStore, feed, json_ids, load_service, parse_id, write_batch};
use crate::doc::{decode, parse_ts, ts};
use crate::duplicates::{DuplicateStore, Redirect, apply};
use crate::{Alongside, Result, StoreError};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use kith_domain::duplicates::{Candidate, DuplicatePair, PairState};
use kith_domain::hsds::Location;
use kith_domain::provenance::{RecordKind, Stamp};
use kith_domain::{ChangeOp, DirectoryBatch, ObjectType};
use rusqlite::{OptionalExtension, Row, Transaction, params};
use std::collections::HashMap;
use uuid::Uuid;

const COLUMNS: &str = "id, kind, a, b, reason, state, found_at, decided_by, decided_at, note";

/// Which of `ids` were merged, and into what.
fn survivors(tx: &Transaction<'_>, kind: RecordKind, ids: &[Uuid]) -> Result<HashMap<Uuid, Uuid>> {
    if ids.is_empty() {
        return Ok(HashMap::new());
    }
    let mut stmt = tx.prepare_cached(
        "SELECT merged_id, survivor_id FROM merged WHERE kind = ?1 AND merged_id IN (SELECT value FROM json_each(?2))",
    )?;
    let rows = stmt.query_map(params![kind.as_str(), json_ids(ids)?], |r| Ok((r.get(0)?, r.get(1)?)))?;
    let mut out = HashMap::new();
    for row in rows {
        let (merged, survivor): (String, String) = row?;
        out.insert(parse_id("merged record", &merged)?, parse_id("merged record", &survivor)?);
    }
    Ok(out)
}

/// Takes out of the batch the records merged into others, and points its services and
/// venues at the organisations theirs were merged into. Returns what it took out, whose
/// sightings go to the survivors.
pub(super) fn redirect_merged(tx: &Transaction<'_>, batch: &mut DirectoryBatch) -> Result<Vec<Redirect>> {
    let any: bool = tx.prepare_cached("SELECT EXISTS (SELECT 1 FROM merged)")?.query_row([], |r| r.get(0))?;
    if !any {
        return Ok(Vec::new());
    }
    let mut org_ids: Vec<Uuid> = batch.organizations.iter().map(|o| o.id).collect();
    org_ids.extend(batch.services.iter().filter_map(|s| s.organization_id));
    org_ids.extend(batch.locations.iter().filter_map(|l| l.organization_id));
    org_ids.sort_unstable();
    org_ids.dedup();
    let orgs = survivors(tx, RecordKind::Organization, &org_ids)?;
    let service_ids: Vec<Uuid> = batch.services.iter().map(|s| s.id).collect();
    let services = survivors(tx, RecordKind::Service, &service_ids)?;
    Ok(apply(batch, &orgs, &services))
}

/// Records that the batch's source listed the survivors of the merged records it held,
/// keeping the id the source gives them.
pub(super) fn record_redirected(
    tx: &Transaction<'_>,
    stamp: Option<&Stamp>,
    redirected: &[Redirect],
    now: &str,
) -> Result<()> {
    let Some(stamp) = stamp else { return Ok(()) };
    let (source, round) = (stamp.source.key(), stamp.round.to_string());
    let mut stmt = tx.prepare_cached(
        "INSERT INTO provenance (kind, record_id, source, id_there, first_seen, last_seen, round, missing)
         VALUES (?1, ?2, ?3, ?4, ?5, ?5, ?6, 0)
         ON CONFLICT (kind, record_id, source) DO UPDATE SET
            last_seen = excluded.last_seen, round = excluded.round, missing = 0, withdrawn_at = NULL",
    )?;
    for (kind, survivor, merged) in redirected {
        stmt.execute(params![kind.as_str(), survivor.to_string(), source, merged.to_string(), now, round])?;
    }
    Ok(())
}

fn exists(tx: &Transaction<'_>, kind: RecordKind, id: Uuid) -> Result<()> {
    let (sql, what) = match kind {
        RecordKind::Organization => ("SELECT EXISTS (SELECT 1 FROM organizations WHERE id = ?1)", "organization"),
        RecordKind::Service => ("SELECT EXISTS (SELECT 1 FROM services WHERE id = ?1)", "service"),
    };
    let found: bool = tx.query_row(sql, [id.to_string()], |r| r.get(0))?;
    if found { Ok(()) } else { Err(StoreError::NotFound { what, id }) }
}

/// Merges `merged` into `survivor` inside `tx`.
fn merge_in(tx: &Transaction<'_>, kind: RecordKind, survivor: Uuid, merged: Uuid, now: DateTime<Utc>) -> Result<()> {
    if survivor == merged {
        return Err(StoreError::Conflict("a record cannot be merged into itself".into()));
    }
    exists(tx, kind, survivor)?;
    exists(tx, kind, merged)?;
    let (k, survivor_text, merged_text, at) = (kind.as_str(), survivor.to_string(), merged.to_string(), ts(now));
    if kind == RecordKind::Organization {
        // Its services and venues move to the survivor through the ordinary write, so
        // the change feed and the index follow.
        let mut moved = DirectoryBatch::new();
        let ids: Vec<String> = {
            let mut stmt = tx.prepare_cached("SELECT id FROM services WHERE organization_id = ?1")?;
            let rows = stmt.query_map([&merged_text], |r| r.get(0))?;
            rows.collect::<rusqlite::Result<_>>()?
        };
        for id in ids {
            let mut service = load_service(tx, parse_id("service", &id)?)?;
            service.organization_id = Some(survivor);
            service.last_modified = Some(now);
            moved.add_service(service);
        }
        let venues: Vec<(String, String)> = {
            let mut stmt = tx.prepare_cached("SELECT id, doc FROM locations WHERE organization_id = ?1")?;
            let rows = stmt.query_map([&merged_text], |r| Ok((r.get(0)?, r.get(1)?)))?;
            rows.collect::<rusqlite::Result<_>>()?
        };
        for (id, doc) in venues {
            let mut location: Location = decode("location", &id, &doc)?;
            location.organization_id = Some(survivor);
            moved.add_location(location);
        }
        write_batch(tx, &moved, now)?;
    }
    tx.execute(
        "INSERT OR IGNORE INTO provenance
            (kind, record_id, source, id_there, first_seen, last_seen, round, missing, withdrawn_at)
         SELECT kind, ?2, source, id_there, first_seen, last_seen, round, missing, withdrawn_at
         FROM provenance WHERE kind = ?1 AND record_id = ?3",
        params![k, survivor_text, merged_text],
    )?;
    tx.execute("DELETE FROM provenance WHERE kind = ?1 AND record_id = ?2", params![k, merged_text])?;
    tx.execute(
        "INSERT INTO merged (kind, merged_id, survivor_id, merged_at) VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT (kind, merged_id) DO UPDATE SET survivor_id = excluded.survivor_id, merged_at = excluded.merged_at",
        params![k, merged_text, survivor_text, at],
    )?;
    // Records merged into this one before now belong to the survivor too.
    tx.execute(
        "UPDATE merged SET survivor_id = ?2 WHERE kind = ?1 AND survivor_id = ?3",
        params![k, survivor_text, merged_text],
    )?;
    // Other waiting pairs with the merged record are about a record that is gone.
    tx.execute(
        "DELETE FROM duplicate_pairs WHERE state = 'waiting' AND kind = ?1 AND (a = ?2 OR b = ?2)",
        params![k, merged_text],
    )?;
    let (sql, object) = match kind {
        RecordKind::Organization => ("DELETE FROM organizations WHERE id = ?1", ObjectType::Organization),
        RecordKind::Service => ("DELETE FROM services WHERE id = ?1", ObjectType::Service),
    };
    tx.execute(sql, [&merged_text])?;
    feed(tx, object, merged, ChangeOp::Delete, &at)
}

fn row(r: &Row<'_>) -> rusqlite::Result<[Option<String>; 10]> {
    Ok([r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?, r.get(6)?, r.get(7)?, r.get(8)?, r.get(9)?])
}

fn read(raw: [Option<String>; 10]) -> Result<DuplicatePair> {
    let [id, kind, a, b, reason, state, found_at, decided_by, decided_at, note] = raw;
    let id = id.unwrap_or_default();
    let corrupt = |reason: &str| StoreError::Corrupt { what: "duplicate pair", id: id.clone(), reason: reason.into() };
    let uuid = |v: Option<String>| Uuid::parse_str(&v.unwrap_or_default()).map_err(|e| corrupt(&e.to_string()));
    Ok(DuplicatePair {
        id: uuid(Some(id.clone()))?,
        kind: kind.as_deref().and_then(RecordKind::parse).ok_or_else(|| corrupt("unknown kind of record"))?,
        a: uuid(a)?,
        b: uuid(b)?,
        reason: reason.unwrap_or_default(),
        state: state.as_deref().and_then(PairState::parse).ok_or_else(|| corrupt("unknown state"))?,
        found_at: parse_ts(&found_at.unwrap_or_default())?,
        decided_by,
        decided_at: decided_at.as_deref().map(parse_ts).transpose()?,
        note,
    })
}

#[async_trait]
impl DuplicateStore for SqliteStore {
    async fn put_duplicate_pairs(&self, pairs: &[Candidate]) -> Result<Vec<Uuid>> {
        let pairs = pairs.to_vec();
        self.write(move |tx, now| {
            let now = ts(now);
            let mut ids = Vec::with_capacity(pairs.len());
            {
                let mut stmt = tx.prepare_cached(
                    "INSERT INTO duplicate_pairs (id, kind, a, b, reason, state, found_at)
                     VALUES (?1, ?2, ?3, ?4, ?5, 'waiting', ?6) ON CONFLICT (id) DO NOTHING",
                )?;
                for c in &pairs {
                    let id = c.pair_id();
                    stmt.execute(params![
                        id.to_string(),
                        c.kind.as_str(),
                        c.a.to_string(),
                        c.b.to_string(),
                        c.reason,
                        now
                    ])?;
                    ids.push(id);
                }
            }
            let mut stmt = tx.prepare_cached(
                "SELECT id FROM duplicate_pairs WHERE state = 'waiting' AND id IN (SELECT value FROM json_each(?1))",
            )?;
            let rows = stmt.query_map([json_ids(&ids)?], |r| r.get::<_, String>(0))?;
            let mut waiting = std::collections::HashSet::new();
            for id in rows {
                waiting.insert(parse_id("duplicate pair", &id?)?);
            }
            Ok(ids.into_iter().filter(|id| waiting.contains(id)).collect())
        })
        .await
    }

    async fn waiting_pairs(&self, limit: u32) -> Result<Vec<DuplicatePair>> {
        self.read(move |conn| {
            let mut stmt = conn.prepare_cached(&format!(
                "SELECT {COLUMNS} FROM duplicate_pairs WHERE state = 'waiting' ORDER BY found_at, id LIMIT ?1"
            ))?;
            let rows = stmt.query_map([limit], row)?;
            rows.map(|r| read(r?)).collect()
        })
        .await
    }

    async fn duplicate_pair(&self, id: Uuid) -> Result<Option<DuplicatePair>> {
        self.read(move |conn| {
            let raw = conn
                .prepare_cached(&format!("SELECT {COLUMNS} FROM duplicate_pairs WHERE id = ?1"))?
                .query_row([id.to_string()], row)
                .optional()?;
            raw.map(read).transpose()
        })
        .await
    }

    async fn decide_pair(
        &self,
        id: Uuid,
        to: PairState,
        by: &str,
        note: Option<String>,
        also: Alongside,
    ) -> Result<bool> {
        crate::duplicates::check_decision(to)?;
        let by = by.to_owned();
        self.write(move |tx, now| {
            let pair: Option<(String, String, String)> = tx
                .query_row(
                    "SELECT kind, a, b FROM duplicate_pairs WHERE id = ?1 AND state = 'waiting'",
                    [id.to_string()],
                    |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
                )
                .optional()?;
            let Some((kind, a, b)) = pair else { return Ok(false) };
            tx.execute(
                "UPDATE duplicate_pairs SET state = ?2, decided_by = ?3, decided_at = ?4, note = ?5 WHERE id = ?1",
                params![id.to_string(), to.as_str(), by, ts(now), note],
            )?;
            if to == PairState::Merged {
                let kind = crate::duplicates::pair_kind(id, &kind)?;
                merge_in(tx, kind, parse_id("duplicate pair", &a)?, parse_id("duplicate pair", &b)?, now)?;
            }
            super::outbox::write_alongside(tx, &also)?;
            Ok(true)
        })
        .await
    }

    async fn merge(&self, kind: RecordKind, survivor: Uuid, merged: Uuid, also: Alongside) -> Result<()> {
        self.write(move |tx, now| {
            merge_in(tx, kind, survivor, merged, now)?;
            super::outbox::write_alongside(tx, &also)
        })
        .await
    }

    async fn merged_into(&self, kind: RecordKind, ids: &[Uuid]) -> Result<Vec<(Uuid, Uuid)>> {
        let ids = ids.to_vec();
        // A read in a write transaction: the lookup is shared with `write_batch`.
        self.write(move |tx, _| {
            let found = survivors(tx, kind, &ids)?;
            Ok(ids.iter().filter_map(|id| found.get(id).map(|s| (*id, *s))).collect())
        })
        .await
    }
}
