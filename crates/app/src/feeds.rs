//! Feeds: a council's or a group's ORUK API, registered once (`kith feeds add`) and
//! pulled on its schedule, by hand (`kith feeds pull`) or by the jobs runner.
//!
//! A pull reads every page before it writes anything: a feed that stops answering, sends
//! a web page, a truncated page, a page far too large or pages that loop is recorded
//! with the reason, and nothing it served is written. Then what was read is written as
//! an import is, updating services by id, so pulling an unchanged feed changes nothing.

use crate::imports::Imports;
use chrono::Duration as Span;
use kith_datasets::Importer;
use kith_domain::Clock;
use kith_domain::feed::{
    DEFAULT_EVERY_HOURS, FULL_PULL_EVERY_DAYS, Feed, FeedPull, MAX_EVERY_HOURS, check_name, check_url,
};
use kith_domain::geo::WholeArea;
use kith_domain::provenance::{DEFAULT_WITHDRAW_AFTER, Source, Stamp};
use kith_store::{Store, StoreError};
use std::sync::Arc;
use std::time::Duration;
use uuid::Uuid;

/// How a pull behaves towards the feed's server.
#[derive(Debug, Clone)]
pub struct Politeness {
    /// Services asked for a page.
    pub per_page: u32,
    /// More pages than this is taken for a feed that never ends.
    pub max_pages: u32,
    /// A page larger than this is refused.
    pub max_page_bytes: usize,
    /// Tries of one request when the server is unreachable, times out or answers 5xx.
    pub tries: u32,
    /// The first wait between tries; it doubles each time.
    pub backoff: Duration,
    /// How long one request may take.
    pub timeout: Duration,
    /// Services' own pages that may fail in a row before Kith stops asking for them and
    /// keeps the rest as the list gives them.
    pub detail_failures: u32,
}

impl Default for Politeness {
    fn default() -> Self {
        Politeness {
            per_page: 50,
            max_pages: 10_000,
            max_page_bytes: 50 * 1024 * 1024,
            tries: 3,
            backoff: Duration::from_secs(1),
            timeout: Duration::from_secs(30),
            detail_failures: 5,
        }
    }
}

/// How long an instance holds a feed it is pulling before another may take it over.
pub const PULL_LEASE_SECONDS: i64 = 30 * 60;
/// The most complete pulls a feed may let a service be missing from before it is withdrawn.
pub const MAX_WITHDRAW_AFTER: u32 = 30;
/// Refusals kept with a pull's record.
const PROBLEMS_KEPT: usize = 10;

#[derive(Debug, thiserror::Error)]
pub enum FeedError {
    /// Something the person can put right; the message says what.
    #[error("{0}")]
    Invalid(String),
    #[error("there is no feed named {0}; `kith feeds list` shows them")]
    NoSuchFeed(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Registers, lists, pulls and removes feeds.
#[derive(Clone)]
pub struct Feeds {
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    http: reqwest::Client,
    politeness: Politeness,
}

impl std::fmt::Debug for Feeds {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Feeds").field("politeness", &self.politeness).finish_non_exhaustive()
    }
}

/// A feed and its latest pull, for `kith feeds list` and the curators' page.
#[derive(Debug, Clone)]
pub struct FeedStatus {
    pub feed: Feed,
    pub last: Option<FeedPull>,
}

/// A service a source has stopped listing, for curators.
#[derive(Debug, Clone)]
pub struct Withdrawn {
    pub service_id: Uuid,
    /// The service's name, or its id if it has since been deleted.
    pub name: String,
    /// The source that stopped listing it, as curators know it.
    pub source: String,
    pub withdrawn_at: chrono::DateTime<chrono::Utc>,
    pub last_seen: chrono::DateTime<chrono::Utc>,
    /// Whether another source still lists it, so it stays active.
    pub still_listed: bool,
}

impl Feeds {
    pub fn new(store: Arc<dyn Store>, clock: Arc<dyn Clock>) -> Result<Feeds, FeedError> {
        Feeds::with_politeness(store, clock, Politeness::default())
    }

    pub fn with_politeness(
        store: Arc<dyn Store>,
        clock: Arc<dyn Clock>,
        politeness: Politeness,
    ) -> Result<Feeds, FeedError> {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let http = reqwest::Client::builder()
            .user_agent(concat!(
                "Kith/",
                env!("CARGO_PKG_VERSION"),
                " (community services directory; Open Referral feed reader)"
            ))
            .timeout(politeness.timeout)
            .connect_timeout(politeness.timeout.min(Duration::from_secs(10)))
            .build()
            .map_err(|e| FeedError::Invalid(format!("cannot set up HTTPS: {e}")))?;
        Ok(Feeds { store, clock, http, politeness })
    }

    /// Registers a feed. Without a name it is called by its host.
    pub async fn add(
        &self,
        url: &str,
        name: Option<&str>,
        areas: Vec<WholeArea>,
        every_hours: Option<u32>,
        withdraw_after: Option<u32>,
    ) -> Result<Feed, FeedError> {
        let url = check_url(url).map_err(FeedError::Invalid)?;
        let name = match name {
            Some(n) => check_name(n).map_err(FeedError::Invalid)?,
            None => {
                let host = url.split("://").nth(1).and_then(|r| r.split('/').next()).unwrap_or_default();
                check_name(host).map_err(FeedError::Invalid)?
            }
        };
        let every_hours = every_hours.unwrap_or(DEFAULT_EVERY_HOURS);
        if !(1..=MAX_EVERY_HOURS).contains(&every_hours) {
            return Err(FeedError::Invalid("pull a feed every 1 hour to 90 days (--every 24h, --every 7d)".into()));
        }
        let withdraw_after = withdraw_after.unwrap_or(DEFAULT_WITHDRAW_AFTER);
        if !(1..=MAX_WITHDRAW_AFTER).contains(&withdraw_after) {
            return Err(FeedError::Invalid(format!(
                "withdraw a service after 1 to {MAX_WITHDRAW_AFTER} pulls without it (--withdraw-after 2)"
            )));
        }
        let feed =
            Feed { id: Uuid::new_v4(), name, url, areas, every_hours, withdraw_after, created_at: self.clock.now() };
        match self.store.add_feed(&feed).await {
            Ok(()) => Ok(feed),
            Err(StoreError::Conflict(m)) => Err(FeedError::Invalid(m)),
            Err(e) => Err(e.into()),
        }
    }

    /// Every feed with its latest pull.
    pub async fn list(&self) -> Result<Vec<FeedStatus>, FeedError> {
        let mut out = Vec::new();
        for feed in self.store.feeds().await? {
            let last = self.store.pulls(feed.id, 1).await?.into_iter().next();
            out.push(FeedStatus { feed, last });
        }
        Ok(out)
    }

    /// A feed's latest pulls, newest first.
    pub async fn history(&self, feed: &Feed, limit: u32) -> Result<Vec<FeedPull>, FeedError> {
        Ok(self.store.pulls(feed.id, limit).await?)
    }

    /// Services their sources have stopped listing, latest first.
    pub async fn withdrawn(&self, limit: u32) -> Result<Vec<Withdrawn>, FeedError> {
        let gone = self.store.withdrawn(limit).await?;
        let ids: Vec<Uuid> = gone.iter().map(|p| p.record_id).collect();
        let services: std::collections::HashMap<Uuid, kith_domain::hsds::Service> =
            self.store.services_by_ids(&ids).await?.into_iter().map(|s| (s.id, s)).collect();
        let feeds: std::collections::HashMap<Uuid, String> =
            self.store.feeds().await?.into_iter().map(|f| (f.id, f.name)).collect();
        Ok(gone
            .into_iter()
            .map(|p| {
                let service = services.get(&p.record_id);
                Withdrawn {
                    service_id: p.record_id,
                    name: service.map_or_else(|| p.record_id.to_string(), |s| s.name.clone()),
                    source: match &p.source {
                        Source::Feed(id) => feeds
                            .get(id)
                            .map_or_else(|| "a feed since removed".to_owned(), |name| format!("the feed {name}")),
                        Source::File(name) => format!("the file {name}"),
                    },
                    withdrawn_at: p.withdrawn_at.unwrap_or(p.last_seen),
                    last_seen: p.last_seen,
                    still_listed: service.is_some_and(|s| s.status == kith_domain::ServiceStatus::Active),
                }
            })
            .collect())
    }

    /// A feed by its name.
    pub async fn named(&self, name: &str) -> Result<Feed, FeedError> {
        let feeds = self.store.feeds().await?;
        feeds.into_iter().find(|f| f.name == name.trim()).ok_or_else(|| FeedError::NoSuchFeed(name.trim().to_owned()))
    }

    /// Forgets a feed and its pulls; the services it brought stay.
    pub async fn remove(&self, name: &str) -> Result<(), FeedError> {
        let feed = self.named(name).await?;
        self.store.remove_feed(feed.id).await?;
        Ok(())
    }

    /// Pulls one feed now and records the pull, whatever its outcome. After a successful
    /// pull it asks only for what changed since (`modified_after`, which a feed that does
    /// not support it ignores), and reads the whole feed again once a week.
    pub async fn pull(&self, feed: &Feed) -> Result<FeedPull, FeedError> {
        let since = self.changes_since(feed).await?;
        self.pull_as(feed, since).await
    }

    /// Pulls every service the feed lists, whenever it was last pulled.
    pub async fn pull_everything(&self, feed: &Feed) -> Result<FeedPull, FeedError> {
        self.pull_as(feed, None).await
    }

    /// The `modified_after` for the next pull: a little before the last successful pull
    /// started, or `None` for a full pull when there has been no full pull for a week.
    async fn changes_since(&self, feed: &Feed) -> Result<Option<chrono::DateTime<chrono::Utc>>, FeedError> {
        let recent = self.store.pulls(feed.id, 100).await?;
        let Some(last) = recent.iter().find(|p| p.succeeded()) else { return Ok(None) };
        let week_ago = self.clock.now() - Span::days(FULL_PULL_EVERY_DAYS);
        if !recent.iter().any(|p| p.succeeded() && p.full && p.started_at > week_ago) {
            return Ok(None);
        }
        // An hour's margin for a feed whose clock is behind Kith's.
        Ok(Some(last.started_at - Span::hours(1)))
    }

    async fn pull_as(&self, feed: &Feed, since: Option<chrono::DateTime<chrono::Utc>>) -> Result<FeedPull, FeedError> {
        let started_at = self.clock.now();
        let mut pull = FeedPull {
            id: Uuid::new_v4(),
            feed_id: feed.id,
            started_at,
            finished_at: started_at,
            pages: 0,
            services: 0,
            written: 0,
            new: 0,
            withdrawn: 0,
            details: 0,
            rejected: 0,
            problems: Vec::new(),
            error: None,
            full: since.is_none(),
            since,
        };
        match self.read_all(feed, &mut pull).await {
            Ok(importer) => {
                let (mut batch, report) = importer.finish();
                pull.rejected = report.rejected.len() as u64;
                // Refusals first, then the services' pages that could not be read.
                let pages = std::mem::take(&mut pull.problems);
                pull.problems =
                    report.rejected.iter().map(ToString::to_string).chain(pages).take(PROBLEMS_KEPT).collect();
                pull.services = batch.services.len() as u64;
                let source = Source::Feed(feed.id);
                batch.stamp = Some(Stamp { source: source.clone(), round: pull.id });
                self.place_by_postcode(&mut batch).await?;
                if let Err(e) = self.write(batch, &mut pull).await {
                    pull.error = Some(format!("the database refused what the feed served: {e}"));
                } else if pull.full {
                    // Every page of the whole feed was read and written: what it no longer
                    // lists is missing from one more pull.
                    let withdrawn = self.store.close_round(&source, pull.id, feed.withdraw_after).await?;
                    pull.withdrawn = withdrawn.len() as u64;
                    // The same groups from another source are merged, or queued for a
                    // curator; a failure here leaves the pull as it was. A pull that
                    // changed nothing brings no new duplicates.
                    if pull.written > 0 || pull.withdrawn > 0 {
                        crate::duplicates::Duplicates::new(self.store.clone(), self.clock.clone())
                            .detect_logged()
                            .await;
                    }
                }
            }
            Err(reason) => pull.error = Some(reason),
        }
        pull.finished_at = self.clock.now();
        // A failed pull is tried again within the hour, not at the next scheduled pull.
        let hours = if pull.succeeded() { feed.every_hours } else { feed.every_hours.min(1) };
        let next = pull.finished_at + Span::hours(i64::from(hours));
        self.store.record_pull(&pull, next).await?;
        Ok(pull)
    }

    /// Gives each venue the feed gives no position its postcode's, from the postcode
    /// table: a venue without a position is not found by distance.
    async fn place_by_postcode(&self, batch: &mut kith_domain::DirectoryBatch) -> Result<(), StoreError> {
        for location in batch.locations.iter_mut().filter(|l| l.latitude.is_none() || l.longitude.is_none()) {
            let Some(postcode) =
                location.addresses.iter().find_map(|a| kith_domain::postcode::Postcode::parse(&a.postal_code).ok())
            else {
                continue;
            };
            if let Some(found) = self.store.postcode(&postcode).await? {
                let at = found.place.point();
                (location.latitude, location.longitude) = (Some(at.lat), Some(at.lon));
            }
        }
        Ok(())
    }

    /// Writes what a pull read, counting the services Kith did not hold before.
    async fn write(&self, batch: kith_domain::DirectoryBatch, pull: &mut FeedPull) -> Result<(), StoreError> {
        let ids: Vec<Uuid> = batch.services.iter().map(|s| s.id).collect();
        // A service merged into another is held, as its survivor.
        let held = self.store.existing_services(&ids).await?.len()
            + self.store.merged_into(kith_domain::provenance::RecordKind::Service, &ids).await?.len();
        let mut quiet = |_, _| {};
        let written = Imports::new(self.store.clone()).write_batch(batch, &mut quiet).await?;
        pull.written = written.services;
        pull.new = ids.len().saturating_sub(held) as u64;
        Ok(())
    }

    /// Pulls every feed that is due, one at a time; with several instances each feed is
    /// pulled by one of them. Returns how many were pulled.
    pub async fn pull_due(&self) -> Result<usize, FeedError> {
        let mut pulled = 0;
        while let Some(feed) = self.store.claim_due_feed(self.clock.now(), PULL_LEASE_SECONDS).await? {
            let pull = self.pull(&feed).await?;
            match &pull.error {
                None => {
                    tracing::info!(feed = %feed.name, services = pull.services, written = pull.written, "feed pulled");
                }
                Some(e) => tracing::warn!(feed = %feed.name, error = %e, "feed pull failed"),
            }
            pulled += 1;
        }
        Ok(pulled)
    }

    /// Reads every page of the feed's services, or says why not.
    async fn read_all(&self, feed: &Feed, pull: &mut FeedPull) -> Result<Importer, String> {
        let mut importer = Importer::new().with_areas(feed.areas.clone());
        let base = match pull.since {
            None => format!("{}/services?", feed.url),
            Some(since) => {
                format!("{}/services?modified_after={}&", feed.url, since.format("%Y-%m-%dT%H:%M:%SZ"))
            }
        };
        let per_page = self.politeness.per_page;
        let url_for = |asked: Option<i64>| match asked {
            None => format!("{base}per_page={per_page}&size={per_page}"),
            Some(n) => format!("{base}page={n}&per_page={per_page}&size={per_page}"),
        };
        let mut asked: Option<i64> = None;
        let mut previous_ids: Option<Vec<String>> = None;
        // The first page's number says whether the feed counts from 0 (Spring) or 1.
        let mut first_number = None;
        let mut url = url_for(None);
        let mut bytes = self.get(&url).await?;
        loop {
            let page = Page::read(&bytes).map_err(|m| format!("{url}: {m}"))?;
            pull.pages += 1;
            if let (Some(n), Some(got)) = (asked, page.number)
                && got != n
            {
                return Err(format!("{url}: asked for page {n} and was given page {got}: the feed's paging loops"));
            }
            if page.ids.is_empty() && asked.is_some() {
                break;
            }
            if previous_ids.as_ref().is_some_and(|ids| *ids == page.ids) {
                return Err(format!("{url}: the same services as the page before: the feed's paging loops"));
            }
            let first = *first_number.get_or_insert(page.number.unwrap_or(1));
            let next = page.next(first);
            previous_ids = Some(page.ids);
            if next.is_some() && pull.pages >= self.politeness.max_pages {
                return Err(format!(
                    "the feed has more than {} pages: Kith stopped, taking it for a feed that never ends",
                    self.politeness.max_pages
                ));
            }
            // This page is read and checked on the blocking pool while the next one is
            // fetched: still one request at a time, with both cores busy.
            let source = url.clone();
            let reading = tokio::task::spawn_blocking(move || {
                let read = importer.add_bytes(&bytes, &source, None).map_err(|e| e.to_string());
                (importer, read)
            });
            let fetched = match next {
                Some(n) => {
                    let next_url = url_for(Some(n));
                    let got = self.get(&next_url).await;
                    Some((n, next_url, got))
                }
                None => None,
            };
            let (back, read) = reading.await.map_err(|e| format!("reading {url} stopped: {e}"))?;
            importer = back;
            read?;
            let Some((n, next_url, got)) = fetched else { break };
            (asked, url, bytes) = (Some(n), next_url, got?);
        }
        self.read_details(feed, &mut importer, pull).await?;
        Ok(importer)
    }

    /// Reads the own page (`URL/services/{id}`) of each service the list said too little
    /// of, one request at a time. A service the list says is unchanged since Kith read
    /// its page is kept as stored, without asking (a page that added nothing is asked
    /// for again in a weekly full pull). A page that fails leaves what Kith held, or
    /// else the list's record, with the reason among the pull's problems; after several
    /// failures in a row the rest are not asked for.
    async fn read_details(&self, feed: &Feed, importer: &mut Importer, pull: &mut FeedPull) -> Result<(), String> {
        let lacking = importer.lacking_detail();
        if lacking.is_empty() {
            return Ok(());
        }
        let mut stored = std::collections::HashMap::new();
        for chunk in lacking.chunks(500) {
            let ids: Vec<Uuid> = chunk.iter().map(|(id, _, _)| *id).collect();
            let found = self
                .store
                .services_by_ids(&ids)
                .await
                .map_err(|e| format!("the database could not say which services Kith holds: {e}"))?;
            stored.extend(found.into_iter().map(|s| (s.id, s)));
        }
        // A service whose page cannot be read is kept as Kith holds it, when Kith has
        // read its page before: the list alone would lose its venues and times.
        fn detailed(s: &kith_domain::hsds::Service) -> bool {
            !s.service_at_locations.is_empty() || !s.schedules.is_empty() || !s.contacts.is_empty()
        }
        let mut failures = 0;
        let mut asking = true;
        for (id, modified, status) in &lacking {
            // What Kith holds, with the status the list gives now: a service withdrawn
            // and listed again comes back.
            let held = stored.remove(id).map(|mut h| {
                h.status = *status;
                h
            });
            let unchanged = held.as_ref().is_some_and(|h| modified.is_some() && h.last_modified == *modified);
            // A page that said no more than the list is read again only in a full pull,
            // in case it failed last time.
            let unchanged = unchanged && (!pull.full || held.as_ref().is_some_and(detailed));
            let held = held.filter(|h| unchanged || detailed(h));
            if !asking || unchanged {
                if let Some(held) = held {
                    importer.keep_stored(held);
                }
                continue;
            }
            let url = format!("{}/services/{id}", feed.url);
            let read = match self.get(&url).await {
                Ok(bytes) => importer.add_detail(*id, &bytes, &url),
                Err(reason) => Err(reason),
            };
            match read {
                Ok(()) => {
                    pull.details += 1;
                    failures = 0;
                }
                Err(reason) => {
                    failures += 1;
                    let kept = if held.is_some() { "kept as Kith held it" } else { "kept as the list gives it" };
                    if let Some(held) = held {
                        importer.keep_stored(held);
                    }
                    if pull.problems.len() < PROBLEMS_KEPT {
                        pull.problems.push(format!("{reason}; {kept}"));
                    }
                    if failures >= self.politeness.detail_failures.max(1) {
                        asking = false;
                        if pull.problems.len() < PROBLEMS_KEPT {
                            pull.problems.push(format!(
                                "{failures} services' own pages failed in a row, so Kith asked for no more; the rest are kept as Kith held them or as the list gives them"
                            ));
                        }
                    }
                }
            }
        }
        Ok(())
    }

    /// One request, tried again with back-off when the server is unreachable, slow or
    /// failing, read up to the page limit.
    async fn get(&self, url: &str) -> Result<Vec<u8>, String> {
        let mut wait = self.politeness.backoff;
        let mut tries = 0;
        loop {
            tries += 1;
            let last = tries >= self.politeness.tries.max(1);
            match self.get_once(url).await {
                Ok(bytes) => return Ok(bytes),
                Err(Failure::Final(m)) => return Err(m),
                Err(Failure::Again(m)) if last => {
                    return Err(format!("{m} (tried {tries} times)"));
                }
                Err(Failure::Again(_)) => {
                    tokio::time::sleep(wait).await;
                    wait *= 2;
                }
            }
        }
    }

    async fn get_once(&self, url: &str) -> Result<Vec<u8>, Failure> {
        let mut response =
            self.http.get(url).header(reqwest::header::ACCEPT, "application/json").send().await.map_err(|e| {
                if e.is_timeout() {
                    Failure::Again(format!("{url} did not answer in {} s", self.politeness.timeout.as_secs()))
                } else {
                    Failure::Again(format!("cannot reach {url}: {}", root_cause(&e)))
                }
            })?;
        let status = response.status();
        if status.is_server_error() || status == reqwest::StatusCode::TOO_MANY_REQUESTS {
            return Err(Failure::Again(format!("{url} answered {status}")));
        }
        if !status.is_success() {
            return Err(Failure::Final(format!("{url} answered {status}: check the feed's address")));
        }
        let limit = self.politeness.max_page_bytes;
        let mut body = Vec::new();
        while let Some(chunk) =
            response.chunk().await.map_err(|e| Failure::Again(format!("{url} stopped sending: {}", root_cause(&e))))?
        {
            if body.len() + chunk.len() > limit {
                return Err(Failure::Final(format!(
                    "{url} sent more than {} MB in one page: Kith refuses a page that large",
                    limit / (1024 * 1024)
                )));
            }
            body.extend_from_slice(&chunk);
        }
        let start = body.iter().find(|b| !b.is_ascii_whitespace()).copied();
        if start == Some(b'<') {
            return Err(Failure::Final(format!(
                "{url} answered with a web page (HTML), not JSON: check the feed's address points at its API"
            )));
        }
        Ok(body)
    }
}

enum Failure {
    /// Worth trying again.
    Again(String),
    Final(String),
}

fn root_cause(e: &(dyn std::error::Error + 'static)) -> String {
    let mut cause = e;
    while let Some(next) = cause.source() {
        cause = next;
    }
    cause.to_string()
}

/// What paging a feed needs from one page: its number, the ids on it, and how many
/// pages there are. ORUK 3.0 pages (`contents`, `page_number`, `total_pages`), ORUK v1
/// Spring pages (`content`, `number`, `totalPages`, `last`) and bare lists.
#[derive(Debug)]
struct Page {
    number: Option<i64>,
    total_pages: Option<i64>,
    last: Option<bool>,
    ids: Vec<String>,
}

impl Page {
    /// Reads what paging needs, skipping over each service's contents (the importer reads
    /// those): the ids are kept as their JSON text, to compare one page with the next.
    fn read(bytes: &[u8]) -> Result<Page, String> {
        #[derive(serde::Deserialize)]
        struct Item<'a> {
            #[serde(borrow, default)]
            id: Option<&'a serde_json::value::RawValue>,
        }
        #[derive(serde::Deserialize)]
        #[allow(non_snake_case)] // The field names are the feeds' own.
        struct Paged<'a> {
            #[serde(borrow, default)]
            contents: Option<Vec<Item<'a>>>,
            #[serde(borrow, default)]
            content: Option<Vec<Item<'a>>>,
            page_number: Option<i64>,
            total_pages: Option<i64>,
            last_page: Option<bool>,
            number: Option<i64>,
            totalPages: Option<i64>,
            last: Option<bool>,
        }
        let problem = |e: serde_json::Error| {
            if e.is_eof() {
                format!("the page ends too early: it looks truncated ({e})")
            } else if e.is_data() {
                "the page is neither a list of services nor an ORUK page of them (contents or content)".to_owned()
            } else {
                format!("the page is not valid JSON: {e}")
            }
        };
        let ids = |items: &[Item<'_>]| -> Vec<String> {
            items.iter().map(|i| i.id.map(|id| id.get().to_owned()).unwrap_or_default()).collect()
        };
        let text = std::str::from_utf8(bytes).map_err(|e| format!("the page is not UTF-8 text: {e}"))?;
        if text.trim_start().starts_with('[') {
            let items: Vec<Item<'_>> = serde_json::from_str(text).map_err(problem)?;
            return Ok(Page { number: None, total_pages: Some(1), last: Some(true), ids: ids(&items) });
        }
        let paged: Paged<'_> = serde_json::from_str(text).map_err(problem)?;
        match (paged.contents, paged.content) {
            (Some(items), _) => Ok(Page {
                number: paged.page_number,
                total_pages: paged.total_pages,
                last: paged.last_page,
                ids: ids(&items),
            }),
            (None, Some(items)) => {
                Ok(Page { number: paged.number, total_pages: paged.totalPages, last: paged.last, ids: ids(&items) })
            }
            (None, None) => {
                Err("the page is neither a list of services nor an ORUK page of them (contents or content)".into())
            }
        }
    }

    /// The page to ask for next, or `None` after the last. `first` is the number of the
    /// feed's first page (0 or 1).
    fn next(&self, first: i64) -> Option<i64> {
        if self.last == Some(true) || self.ids.is_empty() {
            return None;
        }
        let number = self.number?;
        match self.total_pages.map(|t| t - 1 + first) {
            Some(last) if number >= last => None,
            _ => Some(number + 1),
        }
    }
}
