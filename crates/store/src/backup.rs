//! `kith backup FILE` and `kith restore FILE`, on either engine.
//!
//! SQLite: the backup is a copy of the database taken in one read (`VACUUM INTO`), safe
//! while the server runs; a restore puts it in place as the data directory's database.
//! PostgreSQL: `pg_dump --format=custom`, and `pg_restore` in one transaction into an
//! empty database. Either way the encrypted fields travel sealed: the key file is not in
//! the backup and must be kept, and restored, apart.

use crate::{Result, StoreError};
use std::path::Path;
use std::process::Command;

/// The SQLite file's first bytes.
const SQLITE_HEADER: &[u8] = b"SQLite format 3\0";

/// Writes a backup of the database to `file`, which must not exist yet.
pub async fn backup(database_url: Option<&str>, data_dir: &Path, file: &Path) -> Result<()> {
    if file.exists() {
        return Err(StoreError::Config(format!("{} already exists; give a new file for the backup", file.display())));
    }
    match database_url {
        Some(url) => {
            let config = crate::postgres::parse_url(url)?;
            let mut dump = pg_command("pg_dump", &config);
            dump.args(["--format=custom", "--no-owner", "--file"]).arg(file);
            run(dump, "pg_dump")
        }
        None => {
            let db = data_dir.join("kith.db");
            if !db.exists() {
                return Err(StoreError::Config(format!("there is no Kith database at {}", db.display())));
            }
            let (db, to) = (db.clone(), file.to_owned());
            tokio::task::spawn_blocking(move || -> Result<()> {
                let conn = rusqlite::Connection::open_with_flags(&db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)?;
                conn.busy_timeout(std::time::Duration::from_secs(60))?;
                conn.execute("VACUUM INTO ?1", [to.to_string_lossy()])?;
                Ok(())
            })
            .await?
        }
    }
}

/// Restores the backup in `file` into an empty database: a data directory with no
/// database yet (SQLite), or a database with no tables (PostgreSQL). Refuses to write
/// over a database that holds anything.
pub async fn restore(database_url: Option<&str>, data_dir: &Path, file: &Path) -> Result<()> {
    let bytes = std::fs::read(file)
        .map_err(|e| StoreError::Config(format!("cannot read the backup {}: {e}", file.display())))?;
    match database_url {
        Some(url) => {
            if !bytes.starts_with(b"PGDMP") {
                return Err(StoreError::Config(format!(
                    "{} is not a PostgreSQL backup made by `kith backup` (pg_dump --format=custom)",
                    file.display()
                )));
            }
            let config = crate::postgres::parse_url(url)?;
            let (client, connection) = config
                .connect(tokio_postgres::NoTls)
                .await
                .map_err(|e| StoreError::Connect(format!("cannot reach {}: {e}", crate::redact_url(url))))?;
            tokio::spawn(connection);
            let tables: i64 = client
                .query_one("SELECT count(*) FROM information_schema.tables WHERE table_schema = 'public'", &[])
                .await?
                .get(0);
            if tables > 0 {
                return Err(StoreError::Config(format!(
                    "the database {} already holds {tables} tables; restore into a new, empty database (CREATE DATABASE …)",
                    crate::redact_url(url)
                )));
            }
            let mut restore = pg_command("pg_restore", &config);
            restore.args(["--no-owner", "--single-transaction", "--exit-on-error"]).arg(file);
            run(restore, "pg_restore")
        }
        None => {
            if !bytes.starts_with(SQLITE_HEADER) {
                return Err(StoreError::Config(format!(
                    "{} is not a SQLite backup made by `kith backup`",
                    file.display()
                )));
            }
            let db = data_dir.join("kith.db");
            if db.exists() {
                return Err(StoreError::Config(format!(
                    "{} already exists; restore into an empty data directory, or move the database aside first",
                    db.display()
                )));
            }
            std::fs::create_dir_all(data_dir)
                .map_err(|e| StoreError::Config(format!("cannot create {}: {e}", data_dir.display())))?;
            // Written beside, then renamed: a restore cut short leaves no database behind.
            let partial = data_dir.join("kith.db.restoring");
            std::fs::write(&partial, &bytes)
                .and_then(|()| std::fs::rename(&partial, &db))
                .map_err(|e| StoreError::Config(format!("cannot write {}: {e}", db.display())))
        }
    }
}

/// `pg_dump` or `pg_restore` for the database `config` names, with the password (if any)
/// in the environment rather than on the command line.
fn pg_command(program: &str, config: &tokio_postgres::Config) -> Command {
    let mut cmd = Command::new(program);
    if let Some(tokio_postgres::config::Host::Tcp(host)) = config.get_hosts().first() {
        cmd.arg("--host").arg(host);
    }
    if let Some(port) = config.get_ports().first() {
        cmd.arg("--port").arg(port.to_string());
    }
    if let Some(user) = config.get_user() {
        cmd.arg("--username").arg(user);
    }
    if let Some(db) = config.get_dbname() {
        cmd.arg("--dbname").arg(db);
    }
    if let Some(password) = config.get_password() {
        cmd.env("PGPASSWORD", String::from_utf8_lossy(password).into_owned());
    }
    cmd.arg("--no-password");
    cmd
}

fn run(mut cmd: Command, program: &str) -> Result<()> {
    let out = cmd.output().map_err(|e| {
        StoreError::Config(format!(
            "cannot run {program} ({e}); install PostgreSQL's client programs (Debian: postgresql-client) of the server's version or newer"
        ))
    })?;
    if out.status.success() {
        Ok(())
    } else {
        Err(StoreError::Database(format!("{program} failed: {}", String::from_utf8_lossy(&out.stderr).trim())))
    }
}
