//! An application for tests: a fresh store on either engine, a clock the test moves,
//! every message captured as the person would receive it, and the background jobs run
//! when the test says, one round at a time. Behind the `testing` feature.
#![allow(clippy::expect_used)]

use crate::App;
use crate::jobs::{Round, run_round};
use crate::notify::{Email, Mailer, SendError, Senders, Text, Texter};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use kith_domain::FixedClock;
use kith_store::testing::TestStore;
use kith_store::{Engine, Store};
use std::sync::{Arc, Mutex};

/// Messages as they left Kith: what each person would receive.
#[derive(Debug, Default)]
pub struct Captured {
    emails: Mutex<Vec<Email>>,
    texts: Mutex<Vec<Text>>,
}

#[async_trait]
impl Mailer for Captured {
    async fn send(&self, email: &Email) -> Result<(), SendError> {
        self.emails.lock().unwrap_or_else(|p| p.into_inner()).push(email.clone());
        Ok(())
    }
}

#[async_trait]
impl Texter for Captured {
    async fn send_text(&self, text: &Text) -> Result<(), SendError> {
        self.texts.lock().unwrap_or_else(|p| p.into_inner()).push(text.clone());
        Ok(())
    }
}

/// How a [`TestApp`] is made: [`TestApp::on`] with the defaults, or changed here first.
#[derive(Debug, Clone)]
pub struct Builder {
    engine: Engine,
    test: String,
    at: DateTime<Utc>,
    public_url: Option<String>,
}

/// Where a test's clock starts unless it says otherwise: 2026-05-28, a Thursday.
pub fn start_of_tests() -> DateTime<Utc> {
    DateTime::from_timestamp(1_780_000_000, 0).expect("a valid time")
}

impl Builder {
    /// The clock starts at `at`.
    pub fn at(mut self, at: DateTime<Utc>) -> Builder {
        self.at = at;
        self
    }

    /// Links in messages point at `url`.
    pub fn public_url(mut self, url: &str) -> Builder {
        self.public_url = Some(url.to_owned());
        self
    }

    /// The application, on a store of its own; `None`, with a visible message, for
    /// PostgreSQL when no server is configured (with `KITH_TEST_DATABASE_URL` set and
    /// the server unreachable, the test fails).
    pub async fn build(self) -> Option<TestApp> {
        let clock = Arc::new(FixedClock::new(self.at));
        let store = match self.engine {
            Engine::Sqlite => kith_store::testing::sqlite(clock.clone()).await,
            Engine::Postgres => kith_store::testing::postgres(clock.clone(), &self.test).await?,
        };
        let search = Arc::new(kith_search::SearchIndex::in_memory().expect("an in-memory search index"));
        let mut app = App::new(store.store.clone(), search).with_clock(clock.clone());
        if let Some(url) = &self.public_url {
            app = app.with_public_url(url);
        }
        Some(TestApp { app, clock, store, captured: Arc::default() })
    }
}

/// An application for one test. See the module's documentation.
#[derive(Debug)]
pub struct TestApp {
    pub app: App,
    pub clock: Arc<FixedClock>,
    store: TestStore,
    captured: Arc<Captured>,
}

impl TestApp {
    /// A test application on `engine`, for the test named `test`.
    pub fn on(engine: Engine, test: &str) -> Builder {
        Builder { engine, test: test.to_owned(), at: start_of_tests(), public_url: None }
    }

    /// One on SQLite with the defaults.
    pub async fn sqlite(test: &str) -> TestApp {
        TestApp::on(Engine::Sqlite, test).build().await.expect("SQLite always runs")
    }

    /// The store behind the application, to set a directory up or to look at what was
    /// written.
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store.store
    }

    /// The store and its test controls (refusing inserts into a table, its PostgreSQL
    /// URL for another process).
    pub fn test_store(&self) -> &TestStore {
        &self.store
    }

    /// The senders a running server would have, capturing what they send.
    pub fn senders(&self) -> Senders {
        Senders { mail: self.captured.clone(), text: Some(self.captured.clone()) }
    }

    /// Runs every background job once, as the jobs runner does each round: the search
    /// index follows the change feed, reminders now due are queued, and what the outbox
    /// holds is sent (and captured).
    pub async fn run_jobs(&self) -> Round {
        run_round(&self.app, &self.senders()).await
    }

    /// The emails sent so far, oldest first, and forgets them.
    pub fn take_emails(&self) -> Vec<Email> {
        std::mem::take(&mut *self.captured.emails.lock().unwrap_or_else(|p| p.into_inner()))
    }

    /// The text messages sent so far, oldest first, and forgets them.
    pub fn take_texts(&self) -> Vec<Text> {
        std::mem::take(&mut *self.captured.texts.lock().unwrap_or_else(|p| p.into_inner()))
    }

    /// Drops a PostgreSQL test database; call at the end of the test.
    pub async fn cleanup(self) {
        let TestApp { app, store, .. } = self;
        drop(app);
        store.cleanup().await;
    }
}
