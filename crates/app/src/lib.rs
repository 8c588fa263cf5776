//! Kith's application: every use case the web pages, the FHIR and ORUK APIs, the command
//! line and the background jobs share, around one [`App`] (the store, the search index,
//! the clock, the keys and the configuration). Nothing here knows HTTP: the web crate
//! turns requests into calls on [`App`] and its services, and their answers and errors
//! into responses.
//!
//! - [`accounts`]: users, passwords, two factors, magic links, lockouts, the audit log and
//!   key rotation;
//! - [`oidc`]: sign-in with an OpenID Connect provider;
//! - [`referrals`]: patients, signposts and referrals, follow-ups and reports, with their
//!   rules and their messages;
//! - [`notify`]: the outbox and the ways out (files, SMTP, GOV.UK Notify);
//! - [`directory`]: finding services, for the search page, the widget and the ORUK API;
//! - [`feeds`]: ORUK feeds registered once and pulled on their schedule;
//! - [`listings`]: groups looking after their own listings, and the links that let them;
//! - [`rendered`]: services' JSON kept between search answers;
//! - [`shortlists`]: shortlists shared by a short code;
//! - [`jobs`]: the background work a running server owns, and its shutdown;
//! - [`demo_caseload`]: a synthetic caseload for the demo and the tests;
//! - `testing` (feature `testing`): a `TestApp` for tests, with captured messages and
//!   the jobs run a round at a time.
#![deny(clippy::unwrap_used, clippy::expect_used)]

use kith_domain::{Clock, SystemClock};
use kith_store::Store;
use std::sync::Arc;

pub mod accounts;
pub mod demo_caseload;
pub mod directory;
pub mod duplicates;
pub mod feeds;
pub mod imports;
pub mod jobs;
pub mod listings;
pub mod locate;
pub mod metrics;
pub mod notify;
pub mod oidc;
pub mod referrals;
pub mod rendered;
pub mod shortlists;
#[cfg(feature = "testing")]
pub mod testing;

pub use accounts::{Accounts, AccountsError, Actor, NewUser};

/// The application: what every use case needs, cheap to clone.
#[derive(Debug, Clone)]
pub struct App {
    /// Only the application reaches the store: the web crate asks [`App`] and its
    /// services (`crates/web/tests/layering.rs` checks that it never calls the store).
    store: Arc<dyn Store>,
    pub search: Arc<kith_search::SearchIndex>,
    /// Where "now" comes from: opening times, "last verified", follow-ups.
    pub clock: Arc<dyn Clock>,
    /// Accounts, sign-in and the audit log.
    pub accounts: Arc<Accounts>,
    /// The address people reach Kith at, for links in emails.
    pub public_url: String,
    /// Sign-in with an OpenID Connect provider, when one is configured.
    pub oidc: Option<Arc<oidc::Oidc>>,
    /// Days from a referral to its follow-up.
    pub follow_up_days: i64,
    /// Services' JSON as search answers last wrote it, forgotten as the index moves on.
    pub rendered: Arc<rendered::RenderedServices>,
    /// One catch-up at a time; others wait for it rather than repeat it.
    sync: Arc<tokio::sync::Mutex<()>>,
    /// When the search index last caught up with the change feed without an error.
    caught_up_at: Arc<std::sync::Mutex<Option<chrono::DateTime<chrono::Utc>>>>,
    /// What this instance has done, for `/metrics`.
    pub metrics: Arc<metrics::Metrics>,
}

/// How long the search index may fail to follow the change feed before the instance says
/// it is not ready, so a load balancer stops sending it searches it would answer wrongly.
pub const INDEX_MAY_LAG_SECONDS: i64 = 60;

impl App {
    /// An application with the system clock and a keyring of its own, which lasts only as
    /// long as the process: give the real one with [`with_keyring`](Self::with_keyring).
    pub fn new(store: Arc<dyn Store>, search: Arc<kith_search::SearchIndex>) -> App {
        let clock: Arc<dyn Clock> = Arc::new(SystemClock);
        let keyring = Arc::new(kith_crypto::Keyring::generate());
        App {
            accounts: Arc::new(Accounts::new(store.clone(), keyring, clock.clone())),
            store,
            search,
            clock,
            oidc: None,
            public_url: "http://127.0.0.1:8080".into(),
            follow_up_days: referrals::FOLLOW_UP_DAYS,
            rendered: Arc::new(rendered::RenderedServices::default()),
            sync: Arc::new(tokio::sync::Mutex::new(())),
            caught_up_at: Arc::default(),
            metrics: Arc::default(),
        }
    }

    /// The same, with time from `clock` (tests move it).
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> App {
        self.clock = clock;
        self.accounts =
            Arc::new(Accounts::new(self.store.clone(), Arc::new(self.accounts.keyring().clone()), self.clock.clone()));
        self
    }

    /// The same, sealing personal fields with `keyring`.
    pub fn with_keyring(mut self, keyring: kith_crypto::Keyring) -> App {
        self.accounts = Arc::new(Accounts::new(self.store.clone(), Arc::new(keyring), self.clock.clone()));
        self
    }

    /// The same, with links in emails pointing at `url`.
    pub fn with_public_url(mut self, url: &str) -> App {
        self.public_url = url.trim_end_matches('/').to_owned();
        self
    }

    /// The same, with follow-ups due `days` after a referral.
    pub fn with_follow_up_days(mut self, days: i64) -> App {
        self.follow_up_days = days;
        self
    }

    /// The same, keeping at most `bytes` of services' JSON between search answers.
    pub fn with_search_cache_bytes(mut self, bytes: usize) -> App {
        self.rendered = Arc::new(rendered::RenderedServices::with_budget(bytes));
        self
    }

    /// The same, offering sign-in with an OpenID Connect provider.
    pub fn with_oidc(mut self, oidc: oidc::Oidc) -> App {
        self.oidc = Some(Arc::new(oidc));
        self
    }

    /// The store, for the command line's geography and account commands and for tests
    /// that look behind the application at what was written.
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    /// The outbox: messages queued now, sent by [`notify::Outbox::deliver_due`].
    pub fn outbox(&self) -> notify::Outbox {
        notify::Outbox::new(self.store.clone(), self.accounts.clone())
    }

    /// Directory imports: files, and batches already read.
    pub fn imports(&self) -> imports::Imports {
        imports::Imports::new(self.store.clone())
    }

    /// Directory feeds, pulled on their schedule.
    pub fn feeds(&self) -> Result<feeds::Feeds, feeds::FeedError> {
        feeds::Feeds::new(self.store.clone(), self.clock.clone())
    }

    /// Duplicates across sources: detection, and the curators' queue.
    pub fn duplicates(&self) -> duplicates::Duplicates {
        duplicates::Duplicates::new(self.store.clone(), self.clock.clone())
    }

    /// Patients and referrals, with their rules.
    pub fn referrals(&self) -> referrals::Referrals {
        referrals::Referrals::new(self.store.clone(), self.accounts.clone(), &self.public_url)
            .with_follow_up_days(self.follow_up_days)
    }

    /// Brings the search index up to the store's change feed. A failure is logged and
    /// the search answers from what the index has.
    pub async fn catch_up(&self) {
        let _turn = self.sync.lock().await;
        let ok = self.apply_feed().await;
        self.metrics.job("follow_feed", ok);
    }

    /// The counters and, read now, the index's lag, readiness and the outbox, for
    /// `/metrics`.
    pub async fn metrics_text(&self) -> Result<String, kith_store::StoreError> {
        let change_feed_seq = self.store.last_seq().await?;
        let outbox = self.store.outbox_counts().await?;
        let readings = metrics::Readings {
            change_feed_seq,
            index_seq: self.search.seq(),
            indexed_services: self.search.len(),
            ready: !self.index_stuck(change_feed_seq) && self.search.damaged().is_none(),
            index_damaged: self.search.damaged().is_some(),
            outbox_pending: outbox.pending,
            outbox_failed: outbox.failed,
            outbox_sent: outbox.sent,
        };
        Ok(self.metrics.render(&readings))
    }

    /// Starts a catch-up beside the request that asks for one, unless one is under way:
    /// catching up is the follower's work, never a request's.
    pub fn nudge_follower(&self) {
        let app = self.clone();
        tokio::spawn(async move {
            if let Ok(_turn) = app.sync.try_lock() {
                let ok = app.apply_feed().await;
                app.metrics.job("follow_feed", ok);
            }
        });
    }

    async fn apply_feed(&self) -> bool {
        use kith_search::sync::Applied;
        let mut told = |applied: Applied<'_>| match applied {
            Applied::Rebuilt => self.rendered.forget_all(),
            Applied::Services(ids) => self.rendered.forget(ids),
        };
        match kith_search::sync::catch_up_telling(&*self.store, &self.search, &mut told).await {
            Ok(_) => {
                *self.caught_up_at.lock().unwrap_or_else(|p| p.into_inner()) = Some(self.clock.now());
                true
            }
            Err(e) => {
                tracing::warn!(error = %e, "search index could not catch up; answering from what it has");
                false
            }
        }
    }

    /// Whether the search index has caught up with the change feed at least once since
    /// this instance started.
    pub fn has_caught_up(&self) -> bool {
        self.caught_up_at.lock().unwrap_or_else(|p| p.into_inner()).is_some()
    }

    /// Whether the search index is behind the change feed `feed_seq` and has not caught
    /// up for longer than [`INDEX_MAY_LAG_SECONDS`].
    pub fn index_stuck(&self, feed_seq: i64) -> bool {
        let last = *self.caught_up_at.lock().unwrap_or_else(|p| p.into_inner());
        let behind = self.search.seq() < feed_seq;
        behind && last.is_none_or(|at| (self.clock.now() - at).num_seconds() > INDEX_MAY_LAG_SECONDS)
    }
}
