//! Feeds on SQLite. One writer, so a claim is one UPDATE ... RETURNING.

use super::SqliteStore;
use crate::doc::{decode, encode, ts};
use crate::feeds::FeedStore;
use crate::{Result, StoreError};
use async_trait::async_trait;
use chrono::{DateTime, Duration, Utc};
use kith_domain::feed::{Feed, FeedPull};
use rusqlite::{OptionalExtension, params};
use uuid::Uuid;

#[async_trait]
impl FeedStore for SqliteStore {
    async fn add_feed(&self, feed: &Feed) -> Result<()> {
        let (id, name, doc, due) = (feed.id.to_string(), feed.name.clone(), encode(feed)?, ts(feed.created_at));
        self.write(move |tx, _| {
            let added = tx.execute(
                "INSERT INTO feeds (id, name, doc, next_pull_at) VALUES (?1, ?2, ?3, ?4) ON CONFLICT DO NOTHING",
                params![id, name, doc, due],
            )?;
            if added == 0 {
                return Err(StoreError::Conflict(format!("a feed named {name} is registered already")));
            }
            Ok(())
        })
        .await
    }

    async fn feeds(&self) -> Result<Vec<Feed>> {
        self.read(move |conn| {
            let mut stmt = conn.prepare_cached("SELECT id, doc FROM feeds ORDER BY name")?;
            let rows = stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))?;
            let mut out = Vec::new();
            for row in rows {
                let (id, doc) = row?;
                out.push(decode("feed", &id, &doc)?);
            }
            Ok(out)
        })
        .await
    }

    async fn remove_feed(&self, id: Uuid) -> Result<bool> {
        let id = id.to_string();
        self.write(move |tx, _| Ok(tx.execute("DELETE FROM feeds WHERE id = ?1", [&id])? > 0)).await
    }

    async fn claim_due_feed(&self, now: DateTime<Utc>, lease_seconds: i64) -> Result<Option<Feed>> {
        let (now_s, until) = (ts(now), ts(now + Duration::seconds(lease_seconds)));
        self.write(move |tx, _| {
            let claimed: Option<(String, String)> = tx
                .query_row(
                    "UPDATE feeds SET lease_until = ?2
                     WHERE id = (SELECT id FROM feeds
                                 WHERE next_pull_at <= ?1 AND (lease_until IS NULL OR lease_until < ?1)
                                 ORDER BY next_pull_at, name LIMIT 1)
                     RETURNING id, doc",
                    params![now_s, until],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )
                .optional()?;
            claimed.map(|(id, doc)| decode("feed", &id, &doc)).transpose()
        })
        .await
    }

    async fn record_pull(&self, pull: &FeedPull, next_at: DateTime<Utc>) -> Result<()> {
        let feed_uuid = pull.feed_id;
        let (id, feed_id, started, doc, next) =
            (pull.id.to_string(), pull.feed_id.to_string(), ts(pull.started_at), encode(pull)?, ts(next_at));
        self.write(move |tx, _| {
            let known = tx.execute(
                "UPDATE feeds SET next_pull_at = ?2, lease_until = NULL WHERE id = ?1",
                params![feed_id, next],
            )?;
            if known == 0 {
                return Err(StoreError::NotFound { what: "feed", id: feed_uuid });
            }
            tx.execute(
                "INSERT INTO feed_pulls (id, feed_id, started_at, doc) VALUES (?1, ?2, ?3, ?4)",
                params![id, feed_id, started, doc],
            )?;
            Ok(())
        })
        .await
    }

    async fn pulls(&self, feed_id: Uuid, limit: u32) -> Result<Vec<FeedPull>> {
        let feed_id = feed_id.to_string();
        self.read(move |conn| {
            let mut stmt = conn.prepare_cached(
                "SELECT id, doc FROM feed_pulls WHERE feed_id = ?1 ORDER BY started_at DESC, id LIMIT ?2",
            )?;
            let rows =
                stmt.query_map(params![feed_id, limit], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))?;
            let mut out = Vec::new();
            for row in rows {
                let (id, doc) = row?;
                out.push(decode("feed pull", &id, &doc)?);
            }
            Ok(out)
        })
        .await
    }
}
