//! Duplicates on PostgreSQL.

use super::{PostgresStore, decode, load_service, write_batch};
use crate::duplicates::{DuplicateStore, Redirect, apply};
use crate::{Alongside, Result, StoreError};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use deadpool_postgres::Transaction;
use kith_domain::duplicates::{Candidate, DuplicatePair, PairState};
use kith_domain::hsds::Location;
use kith_domain::provenance::{RecordKind, Stamp};
use kith_domain::{ChangeOp, DirectoryBatch, ObjectType};
use std::collections::HashMap;
use tokio_postgres::Row;
use uuid::Uuid;

const COLUMNS: &str = "id, kind, a, b, reason, state, found_at, decided_by, decided_at, note";

/// Which of `ids` were merged, and into what.
async fn survivors(
    tx: &impl tokio_postgres::GenericClient,
    kind: RecordKind,
    ids: &[Uuid],
) -> Result<HashMap<Uuid, Uuid>> {
    if ids.is_empty() {
        return Ok(HashMap::new());
    }
    let rows = tx
        .query(
            "SELECT merged_id, survivor_id FROM merged WHERE kind = $1 AND merged_id = ANY($2)",
            &[&kind.as_str(), &ids],
        )
        .await?;
    Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
}

/// Takes out of the batch the records merged into others, and points its services and
/// venues at the organisations theirs were merged into. Returns what it took out, whose
/// sightings go to the survivors.
pub(super) async fn redirect_merged(tx: &Transaction<'_>, batch: &mut DirectoryBatch) -> Result<Vec<Redirect>> {
    let any: bool = tx.query_one("SELECT EXISTS (SELECT 1 FROM merged)", &[]).await?.get(0);
    if !any {
        return Ok(Vec::new());
    }
    let mut org_ids: Vec<Uuid> = batch.organizations.iter().map(|o| o.id).collect();
    org_ids.extend(batch.services.iter().filter_map(|s| s.organization_id));
    org_ids.extend(batch.locations.iter().filter_map(|l| l.organization_id));
    org_ids.sort_unstable();
    org_ids.dedup();
    let orgs = survivors(&**tx, RecordKind::Organization, &org_ids).await?;
    let service_ids: Vec<Uuid> = batch.services.iter().map(|s| s.id).collect();
    let services = survivors(&**tx, RecordKind::Service, &service_ids).await?;
    Ok(apply(batch, &orgs, &services))
}

/// Records that the batch's source listed the survivors of the merged records it held,
/// keeping the id the source gives them.
pub(super) async fn record_redirected(
    tx: &Transaction<'_>,
    stamp: Option<&Stamp>,
    redirected: &[Redirect],
    now: DateTime<Utc>,
) -> Result<()> {
    let Some(stamp) = stamp else { return Ok(()) };
    let source = stamp.source.key();
    for (kind, survivor, merged) in redirected {
        tx.execute(
            "INSERT INTO provenance (kind, record_id, source, id_there, first_seen, last_seen, round, missing)
             VALUES ($1, $2, $3, $4, $5, $5, $6, 0)
             ON CONFLICT (kind, record_id, source) DO UPDATE SET
                last_seen = EXCLUDED.last_seen, round = EXCLUDED.round, missing = 0, withdrawn_at = NULL",
            &[&kind.as_str(), survivor, &source, &merged.to_string(), &now, &stamp.round],
        )
        .await?;
    }
    Ok(())
}

async fn exists(tx: &Transaction<'_>, kind: RecordKind, id: Uuid) -> Result<()> {
    let (sql, what) = match kind {
        RecordKind::Organization => {
            ("SELECT EXISTS (SELECT 1 FROM organizations WHERE id = $1 FOR UPDATE)", "organization")
        }
        RecordKind::Service => ("SELECT EXISTS (SELECT 1 FROM services WHERE id = $1 FOR UPDATE)", "service"),
    };
    let found: bool = tx.query_one(sql, &[&id]).await?.get(0);
    if found { Ok(()) } else { Err(StoreError::NotFound { what, id }) }
}

/// Merges `merged` into `survivor` inside `tx`.
async fn merge_in(
    tx: &Transaction<'_>,
    kind: RecordKind,
    survivor: Uuid,
    merged: Uuid,
    now: DateTime<Utc>,
) -> Result<()> {
    if survivor == merged {
        return Err(StoreError::Conflict("a record cannot be merged into itself".into()));
    }
    exists(tx, kind, survivor).await?;
    exists(tx, kind, merged).await?;
    let k = kind.as_str();
    if kind == RecordKind::Organization {
        // Its services and venues move to the survivor through the ordinary write, so
        // the change feed and the index follow.
        let mut moved = DirectoryBatch::new();
        for row in tx.query("SELECT id FROM services WHERE organization_id = $1", &[&merged]).await? {
            let mut service = load_service(tx, row.get(0)).await?;
            service.organization_id = Some(survivor);
            service.last_modified = Some(now);
            moved.add_service(service);
        }
        for row in tx.query("SELECT id, doc FROM locations WHERE organization_id = $1", &[&merged]).await? {
            let mut location: Location = decode("location", &row)?;
            location.organization_id = Some(survivor);
            moved.add_location(location);
        }
        write_batch(tx, &moved, now).await?;
    }
    tx.execute(
        "INSERT INTO provenance (kind, record_id, source, id_there, first_seen, last_seen, round, missing, withdrawn_at)
         SELECT kind, $2, source, id_there, first_seen, last_seen, round, missing, withdrawn_at
         FROM provenance WHERE kind = $1 AND record_id = $3
         ON CONFLICT (kind, record_id, source) DO NOTHING",
        &[&k, &survivor, &merged],
    )
    .await?;
    tx.execute("DELETE FROM provenance WHERE kind = $1 AND record_id = $2", &[&k, &merged]).await?;
    tx.execute(
        "INSERT INTO merged (kind, merged_id, survivor_id, merged_at) VALUES ($1, $2, $3, $4)
         ON CONFLICT (kind, merged_id) DO UPDATE SET survivor_id = EXCLUDED.survivor_id, merged_at = EXCLUDED.merged_at",
        &[&k, &merged, &survivor, &now],
    )
    .await?;
    // Records merged into this one before now belong to the survivor too.
    tx.execute("UPDATE merged SET survivor_id = $2 WHERE kind = $1 AND survivor_id = $3", &[&k, &survivor, &merged])
        .await?;
    // Other waiting pairs with the merged record are about a record that is gone.
    tx.execute(
        "DELETE FROM duplicate_pairs WHERE state = 'waiting' AND kind = $1 AND (a = $2 OR b = $2)",
        &[&k, &merged],
    )
    .await?;
    let (sql, object) = match kind {
        RecordKind::Organization => ("DELETE FROM organizations WHERE id = $1", ObjectType::Organization),
        RecordKind::Service => ("DELETE FROM services WHERE id = $1", ObjectType::Service),
    };
    tx.execute(sql, &[&merged]).await?;
    tx.execute(
        "INSERT INTO change_feed (object_type, object_id, op, at) VALUES ($1, $2, $3, $4)",
        &[&object.as_str(), &merged, &ChangeOp::Delete.as_str(), &now],
    )
    .await?;
    Ok(())
}

fn read(row: &Row) -> Result<DuplicatePair> {
    let id: Uuid = row.get(0);
    let corrupt =
        |reason: &str| StoreError::Corrupt { what: "duplicate pair", id: id.to_string(), reason: reason.into() };
    Ok(DuplicatePair {
        id,
        kind: RecordKind::parse(row.get(1)).ok_or_else(|| corrupt("unknown kind of record"))?,
        a: row.get(2),
        b: row.get(3),
        reason: row.get(4),
        state: PairState::parse(row.get(5)).ok_or_else(|| corrupt("unknown state"))?,
        found_at: row.get(6),
        decided_by: row.get(7),
        decided_at: row.get(8),
        note: row.get(9),
    })
}

#[async_trait]
impl DuplicateStore for PostgresStore {
    async fn put_duplicate_pairs(&self, pairs: &[Candidate]) -> Result<Vec<Uuid>> {
        let mut client = self.pool.get().await?;
        let tx = self.begin_write(&mut client).await?;
        let now = self.clock.now();
        let mut ids = Vec::with_capacity(pairs.len());
        for c in pairs {
            let id = c.pair_id();
            tx.execute(
                "INSERT INTO duplicate_pairs (id, kind, a, b, reason, state, found_at)
                 VALUES ($1, $2, $3, $4, $5, 'waiting', $6) ON CONFLICT (id) DO NOTHING",
                &[&id, &c.kind.as_str(), &c.a, &c.b, &c.reason, &now],
            )
            .await?;
            ids.push(id);
        }
        let rows = tx.query("SELECT id FROM duplicate_pairs WHERE state = 'waiting' AND id = ANY($1)", &[&ids]).await?;
        tx.commit().await?;
        let waiting: std::collections::HashSet<Uuid> = rows.iter().map(|r| r.get(0)).collect();
        Ok(ids.into_iter().filter(|id| waiting.contains(id)).collect())
    }

    async fn waiting_pairs(&self, limit: u32) -> Result<Vec<DuplicatePair>> {
        let client = self.pool.get().await?;
        let rows = client
            .query(
                &format!(
                    "SELECT {COLUMNS} FROM duplicate_pairs WHERE state = 'waiting' ORDER BY found_at, id LIMIT $1"
                ),
                &[&i64::from(limit)],
            )
            .await?;
        rows.iter().map(read).collect()
    }

    async fn duplicate_pair(&self, id: Uuid) -> Result<Option<DuplicatePair>> {
        let client = self.pool.get().await?;
        let row = client.query_opt(&format!("SELECT {COLUMNS} FROM duplicate_pairs WHERE id = $1"), &[&id]).await?;
        row.as_ref().map(read).transpose()
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
        let mut client = self.pool.get().await?;
        let tx = self.begin_write(&mut client).await?;
        let now = self.clock.now();
        let Some(row) = tx
            .query_opt(
                "UPDATE duplicate_pairs SET state = $2, decided_by = $3, decided_at = $4, note = $5
                 WHERE id = $1 AND state = 'waiting' RETURNING kind, a, b",
                &[&id, &to.as_str(), &by, &now, &note],
            )
            .await?
        else {
            return Ok(false);
        };
        if to == PairState::Merged {
            let kind = crate::duplicates::pair_kind(id, row.get(0))?;
            merge_in(&tx, kind, row.get(1), row.get(2), now).await?;
        }
        crate::postgres::outbox::write_alongside(&tx, &also).await?;
        tx.commit().await?;
        Ok(true)
    }

    async fn merge(&self, kind: RecordKind, survivor: Uuid, merged: Uuid, also: Alongside) -> Result<()> {
        let mut client = self.pool.get().await?;
        let tx = self.begin_write(&mut client).await?;
        merge_in(&tx, kind, survivor, merged, self.clock.now()).await?;
        crate::postgres::outbox::write_alongside(&tx, &also).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn merged_into(&self, kind: RecordKind, ids: &[Uuid]) -> Result<Vec<(Uuid, Uuid)>> {
        let client = self.pool.get().await?;
        let found = survivors(&**client, kind, ids).await?;
        Ok(ids.iter().filter_map(|id| found.get(id).map(|s| (*id, *s))).collect())
    }
}
