//! The feeds half of the storage contract: the feeds Kith pulls, the record of every
//! pull, and the claim that lets one instance of several pull each feed when it is due.

use crate::Result;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use kith_domain::feed::{Feed, FeedPull};
use uuid::Uuid;

#[async_trait]
pub trait FeedStore: Send + Sync {
    /// Registers a feed, due for its first pull at once. A name already taken is a
    /// [`StoreError::Conflict`](crate::StoreError), and nothing changes.
    async fn add_feed(&self, feed: &Feed) -> Result<()>;
    /// Every feed, by name.
    async fn feeds(&self) -> Result<Vec<Feed>>;
    /// Forgets a feed and its pulls (not the services it brought). False if there was none.
    async fn remove_feed(&self, id: Uuid) -> Result<bool>;
    /// Claims the feed due longest at `now`, for `lease_seconds`, so no other instance
    /// pulls it meanwhile. A claim whose holder stopped lapses with its lease.
    async fn claim_due_feed(&self, now: DateTime<Utc>, lease_seconds: i64) -> Result<Option<Feed>>;
    /// Records a pull, releases the feed's claim and sets its next pull for `next_at`.
    async fn record_pull(&self, pull: &FeedPull, next_at: DateTime<Utc>) -> Result<()>;
    /// The feed's latest pulls, newest first.
    async fn pulls(&self, feed_id: Uuid, limit: u32) -> Result<Vec<FeedPull>>;
}
