//! The outbox on SQLite. One writer, so a claim is simply an UPDATE ... RETURNING.

use super::SqliteStore;
use crate::doc::{parse_ts, ts};
use crate::outbox::{LEASE_SECONDS, OutboxCounts, OutboxStore};
use crate::{Alongside, Result, StoreError};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use kith_domain::account::{AuditEvent, Sealed};
use kith_domain::outbox::{Channel, OutboxMessage};
use rusqlite::{OptionalExtension, Transaction, params};
use uuid::Uuid;

fn insert_message(tx: &Transaction<'_>, m: &OutboxMessage) -> Result<()> {
    tx.prepare_cached(
        "INSERT INTO outbox (id, channel, recipient, subject, body, purpose, attempts, next_attempt_at, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?8)",
    )?
    .execute(params![
        m.id.to_string(),
        m.channel.as_str(),
        m.recipient.0,
        m.subject,
        m.body.0,
        m.purpose,
        m.attempts,
        ts(m.created_at)
    ])?;
    Ok(())
}

/// An audit entry, in the transaction `tx`; its sequence number.
pub(crate) fn insert_audit(tx: &Transaction<'_>, e: &AuditEvent) -> Result<i64> {
    tx.prepare_cached(
        "INSERT INTO audit_log (at, actor, actor_roles, action, record_type, record_id, ip, reason)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
    )?
    .execute(params![
        ts(e.at),
        e.actor.map(|a| a.to_string()),
        e.actor_roles,
        e.action,
        e.record_type,
        e.record_id,
        e.ip,
        e.reason
    ])?;
    Ok(tx.last_insert_rowid())
}

/// What a change writes beside it, in its transaction: an error rolls the change back.
pub(crate) fn write_alongside(tx: &Transaction<'_>, also: &Alongside) -> Result<()> {
    for e in &also.audit {
        insert_audit(tx, e)?;
    }
    for m in &also.outbox {
        insert_message(tx, m)?;
    }
    Ok(())
}

#[async_trait]
impl OutboxStore for SqliteStore {
    async fn enqueue(&self, messages: Alongside) -> Result<()> {
        self.write(move |tx, _| write_alongside(tx, &messages)).await
    }

    async fn claim_due(&self, now: DateTime<Utc>, limit: u32) -> Result<Vec<OutboxMessage>> {
        self.write(move |tx, _| {
            let mut stmt = tx.prepare_cached(
                "UPDATE outbox SET status = 'sending', lease_until = ?2, attempts = attempts + 1
                 WHERE id IN (SELECT id FROM outbox
                              WHERE (status = 'pending' AND next_attempt_at <= ?1)
                                 OR (status = 'sending' AND lease_until < ?1)
                              ORDER BY next_attempt_at, id LIMIT ?3)
                 RETURNING id, channel, recipient, subject, body, purpose, created_at, attempts",
            )?;
            let lease = ts(now + chrono::Duration::seconds(LEASE_SECONDS));
            let mut rows = stmt.query(params![ts(now), lease, i64::from(limit)])?;
            let mut out = Vec::new();
            while let Some(r) = rows.next()? {
                let id: String = r.get(0)?;
                let corrupt = |reason: &str| StoreError::Corrupt {
                    what: "outbox message",
                    id: id.clone(),
                    reason: reason.into(),
                };
                out.push(OutboxMessage {
                    id: id.parse().map_err(|_| corrupt("bad id"))?,
                    channel: Channel::parse(&r.get::<_, String>(1)?).ok_or_else(|| corrupt("unknown channel"))?,
                    recipient: Sealed(r.get(2)?),
                    subject: r.get(3)?,
                    body: Sealed(r.get(4)?),
                    purpose: r.get(5)?,
                    created_at: parse_ts(&r.get::<_, String>(6)?)?,
                    attempts: r.get(7)?,
                });
            }
            out.sort_by_key(|m| (m.created_at, m.id));
            Ok(out)
        })
        .await
    }

    async fn mark_sent(&self, id: Uuid, at: DateTime<Utc>) -> Result<()> {
        self.write(move |tx, _| {
            tx.execute(
                "UPDATE outbox SET status = 'sent', sent_at = ?2, recipient = '', body = '', lease_until = NULL,
                    last_error = NULL WHERE id = ?1",
                params![id.to_string(), ts(at)],
            )?;
            Ok(())
        })
        .await
    }

    async fn mark_failed(&self, id: Uuid, error: &str, retry_at: Option<DateTime<Utc>>) -> Result<()> {
        let error = error.chars().take(500).collect::<String>();
        self.write(move |tx, _| {
            match retry_at {
                Some(at) => tx.execute(
                    "UPDATE outbox SET status = 'pending', next_attempt_at = ?2, lease_until = NULL, last_error = ?3
                     WHERE id = ?1",
                    params![id.to_string(), ts(at), error],
                )?,
                None => tx.execute(
                    "UPDATE outbox SET status = 'failed', recipient = '', body = '', lease_until = NULL, last_error = ?2
                     WHERE id = ?1",
                    params![id.to_string(), error],
                )?,
            };
            Ok(())
        })
        .await
    }

    async fn outbox_counts(&self) -> Result<OutboxCounts> {
        self.read(|conn| {
            let (pending, sent, failed): (i64, i64, i64) = conn.query_row(
                "SELECT count(*) FILTER (WHERE status IN ('pending', 'sending')), count(*) FILTER (WHERE status = 'sent'),
                        count(*) FILTER (WHERE status = 'failed') FROM outbox",
                [],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )?;
            let n = |v: i64| u64::try_from(v).unwrap_or(0);
            Ok(OutboxCounts { pending: n(pending), sent: n(sent), failed: n(failed) })
        })
        .await
    }

    async fn put_shared_list(&self, code: &str, services: &[Uuid], at: DateTime<Utc>) -> Result<()> {
        let (code, ids) =
            (code.to_owned(), serde_json::to_string(services).map_err(|e| StoreError::Database(e.to_string()))?);
        self.write(move |tx, _| {
            let added = tx.execute(
                "INSERT INTO shared_lists (code, service_ids, created_at) VALUES (?1, ?2, ?3) ON CONFLICT DO NOTHING",
                params![code, ids, ts(at)],
            )?;
            if added == 0 {
                return Err(StoreError::Conflict(format!("the list code {code} is taken")));
            }
            Ok(())
        })
        .await
    }

    async fn shared_list(&self, code: &str) -> Result<Option<Vec<Uuid>>> {
        let code = code.to_owned();
        self.read(move |conn| {
            let ids: Option<String> = conn
                .query_row("SELECT service_ids FROM shared_lists WHERE code = ?1", [&code], |r| r.get(0))
                .optional()?;
            ids.map(|ids| {
                serde_json::from_str(&ids).map_err(|e| StoreError::Corrupt {
                    what: "shared list",
                    id: code.clone(),
                    reason: e.to_string(),
                })
            })
            .transpose()
        })
        .await
    }
}
