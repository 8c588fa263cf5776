//! Fresh stores for tests, on both engines.
//!
//! SQLite always runs. PostgreSQL runs when `KITH_TEST_DATABASE_URL` names a server
//! (`.ci/run` sets it); each call creates a database of its own there, so tests never
//! see each other's data. If the variable is set and the server cannot be reached the
//! test fails: it does not skip.
#![allow(clippy::expect_used, clippy::print_stderr)]

use crate::Store;
use crate::postgres::{PostgresStore, parse_url};
use crate::sqlite::SqliteStore;
use kith_domain::Clock;
use std::sync::Arc;

pub const DATABASE_URL_VAR: &str = "KITH_TEST_DATABASE_URL";

/// A store and whatever keeps it alive (a temporary directory, a database to drop).
#[derive(Debug)]
pub struct TestStore {
    pub store: Arc<dyn Store>,
    _dir: Option<tempfile::TempDir>,
    pg: Option<(tokio_postgres::Config, String)>,
}

impl TestStore {
    /// For PostgreSQL: a URL for this test's own database, to hand to another process.
    pub fn postgres_url(&self) -> Option<String> {
        let (admin, name) = self.pg.as_ref()?;
        let host = match admin.get_hosts().first() {
            Some(tokio_postgres::config::Host::Tcp(h)) => h.clone(),
            _ => "127.0.0.1".into(),
        };
        let port = admin.get_ports().first().copied().unwrap_or(5432);
        let user = admin.get_user().unwrap_or("postgres");
        let password = admin.get_password().map(|p| format!(":{}", String::from_utf8_lossy(p))).unwrap_or_default();
        Some(format!("postgres://{user}{password}@{host}:{port}/{name}"))
    }

    /// For PostgreSQL: how to connect to this test's own database.
    pub fn postgres_config(&self) -> Option<tokio_postgres::Config> {
        self.pg.as_ref().map(|(admin, name)| {
            let mut config = admin.clone();
            config.dbname(name);
            config
        })
    }

    /// Makes every insert into `table` fail, as a full disk or a lost connection would,
    /// until [`allow_inserts`](Self::allow_inserts): to prove that a change and what must go
    /// with it (its audit entry, its messages) are written together or not at all.
    pub async fn refuse_inserts(&self, table: &str) {
        assert!(table.chars().all(|c| c.is_ascii_lowercase() || c == '_'), "a table name");
        if let Some(dir) = &self._dir {
            let conn = rusqlite::Connection::open(dir.path().join("kith.db")).expect("the test database");
            conn.busy_timeout(std::time::Duration::from_secs(5)).expect("a busy timeout");
            conn.execute_batch(&format!(
                "CREATE TRIGGER kith_test_refuse_{table} BEFORE INSERT ON {table}
                 BEGIN SELECT RAISE(ABORT, 'the test refuses inserts into {table}'); END;"
            ))
            .expect("a refusing trigger");
        } else {
            let client = self.pg_client().await;
            client
                .batch_execute(&format!(
                    "CREATE OR REPLACE FUNCTION kith_test_refuse() RETURNS trigger LANGUAGE plpgsql AS
                     $$ BEGIN RAISE EXCEPTION 'the test refuses inserts into %', TG_TABLE_NAME; END $$;
                     CREATE TRIGGER kith_test_refuse_{table} BEFORE INSERT ON {table}
                     FOR EACH ROW EXECUTE FUNCTION kith_test_refuse();"
                ))
                .await
                .expect("a refusing trigger");
        }
    }

    /// Undoes [`refuse_inserts`](Self::refuse_inserts).
    pub async fn allow_inserts(&self, table: &str) {
        let sql = format!("DROP TRIGGER kith_test_refuse_{table}");
        if let Some(dir) = &self._dir {
            let conn = rusqlite::Connection::open(dir.path().join("kith.db")).expect("the test database");
            conn.busy_timeout(std::time::Duration::from_secs(5)).expect("a busy timeout");
            conn.execute_batch(&sql).expect("the trigger dropped");
        } else {
            self.pg_client().await.batch_execute(&format!("{sql} ON {table}")).await.expect("the trigger dropped");
        }
    }

    async fn pg_client(&self) -> tokio_postgres::Client {
        let config = self.postgres_config().expect("a SQLite or PostgreSQL test store");
        let (client, conn) = config.connect(tokio_postgres::NoTls).await.expect("the test database");
        tokio::spawn(conn);
        client
    }

    /// Drops a PostgreSQL test database. Call at the end of a test; a test that panics
    /// first leaves its database behind, named `kith_test_*`, for inspection.
    pub async fn cleanup(self) {
        let TestStore { store, pg, .. } = self;
        drop(store);
        if let Some((admin, name)) = pg
            && let Ok((client, conn)) = admin.connect(tokio_postgres::NoTls).await
        {
            tokio::spawn(conn);
            let _ = client.batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")).await;
        }
    }
}

/// A new SQLite store in a temporary directory.
pub async fn sqlite(clock: Arc<dyn Clock>) -> TestStore {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let store = SqliteStore::open(&dir.path().join("kith.db"), clock).await.expect("a SQLite store");
    TestStore { store: Arc::new(store), _dir: Some(dir), pg: None }
}

/// The PostgreSQL server tests should use, if one is configured.
pub fn postgres_url() -> Option<String> {
    std::env::var(DATABASE_URL_VAR).ok().filter(|u| !u.trim().is_empty())
}

/// A new PostgreSQL store in a database of its own, or `None` (with a visible message)
/// when `KITH_TEST_DATABASE_URL` is not set.
pub async fn postgres(clock: Arc<dyn Clock>, test: &str) -> Option<TestStore> {
    let Some(url) = postgres_url() else {
        eprintln!(
            "SKIPPED on PostgreSQL: {test} (set {DATABASE_URL_VAR}=postgres://postgres@127.0.0.1:5432/postgres to run it)"
        );
        return None;
    };
    let admin = parse_url(&url).expect("KITH_TEST_DATABASE_URL is a valid postgres:// URL");
    let (client, conn) = admin
        .connect(tokio_postgres::NoTls)
        .await
        .unwrap_or_else(|e| panic!("{DATABASE_URL_VAR} is set but PostgreSQL cannot be reached: {e}"));
    tokio::spawn(conn);
    let name = format!("kith_test_{}", uuid::Uuid::new_v4().simple());
    client.batch_execute(&format!("CREATE DATABASE {name}")).await.expect("CREATE DATABASE for the test");
    let mut config = admin.clone();
    config.dbname(&name);
    let store = PostgresStore::connect_with(config, clock).await.expect("a PostgreSQL store");
    Some(TestStore { store: Arc::new(store), _dir: None, pg: Some((admin, name)) })
}

/// `../shared` beside the project (real datasets and official schemas), or `None` with
/// a visible message when it is missing. With `KITH_REQUIRE_SHARED=1`, as in CI, a
/// missing folder fails the test instead.
pub fn shared_dir(test: &str) -> Option<std::path::PathBuf> {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared");
    if root.join("schemas").is_dir() && root.join("data").is_dir() {
        return Some(root);
    }
    if std::env::var("KITH_REQUIRE_SHARED").is_ok_and(|v| v == "1") {
        panic!("{test}: KITH_REQUIRE_SHARED=1 but {} is missing", root.display());
    }
    eprintln!("SKIPPED: {test} needs ../shared beside the project ({} is missing)", root.display());
    None
}
