//! Copying the write-ahead log back into the database on a thread of its own.
//!
//! SQLite's automatic checkpoint runs inside the commit that crosses its threshold, on
//! the writer's thread: it copies the log's pages into the database file and waits for
//! the disk twice. In a bulk import, where every commit crosses it, that was about 30 %
//! of the time (docs/BENCHMARKS.md), while the other core had room. Here the commit
//! only wakes this thread, which checkpoints on its own connection while the writer goes
//! on; a `PASSIVE` checkpoint never blocks the writer or readers. Durability is
//! unchanged: with `synchronous = NORMAL` a commit reaches the disk at the next
//! checkpoint, as before.

use crate::{Result, StoreError};
use rusqlite::Connection;
use rusqlite::wal::CheckpointMode;
use std::sync::mpsc::{Receiver, SyncSender};
use std::thread::JoinHandle;

/// Log pages (16 KB each) after which a commit asks for a checkpoint: the threshold the
/// automatic checkpoint had, 64 MB.
pub(super) const PAGES: i32 = 4_000;

/// Log pages after which the writer checkpoints itself after committing, because the
/// checkpointer has fallen behind: a checkpoint that runs alongside the writer cannot
/// start the log again from the top, so under a long stream of large commits the log
/// would otherwise grow without bound. 1 GB.
pub(super) const CEILING: i32 = 64_000;

enum Wake {
    Checkpoint,
    Close,
}

/// The checkpointing thread. Dropping it waits for a checkpoint under way to finish and
/// closes the thread's connection, so a dropped store holds the file open nowhere.
#[derive(Debug)]
pub(super) struct Checkpointer {
    wake: SyncSender<Wake>,
    thread: Option<JoinHandle<()>>,
}

/// What a commit calls to ask for a checkpoint. It never waits: a request made while
/// one is pending is the same request.
#[derive(Debug, Clone)]
pub(super) struct Request(SyncSender<Wake>);

impl Request {
    pub(super) fn checkpoint(&self) {
        // Full means one is already pending; disconnected means the store is closing.
        let _ = self.0.try_send(Wake::Checkpoint);
    }
}

impl Checkpointer {
    /// Starts the thread with `conn`, a read-write connection of its own.
    pub(super) fn start(conn: Connection) -> Result<(Self, Request)> {
        let (wake, woken) = std::sync::mpsc::sync_channel(1);
        let thread = std::thread::Builder::new()
            .name("kith-sqlite-checkpoint".into())
            .spawn(move || run(&conn, &woken))
            .map_err(|e| StoreError::Database(format!("cannot start the SQLite checkpoint thread: {e}")))?;
        Ok((Checkpointer { wake: wake.clone(), thread: Some(thread) }, Request(wake)))
    }
}

fn run(conn: &Connection, woken: &Receiver<Wake>) {
    while let Ok(Wake::Checkpoint) = woken.recv() {
        if let Err(e) = conn.wal_checkpoint_v2(None::<&str>, CheckpointMode::PASSIVE) {
            // The next commit over the threshold asks again; nothing is lost meanwhile,
            // as the pages stay in the log.
            tracing::warn!("SQLite checkpoint failed, to be retried after the next write: {e}");
        }
    }
}

impl Drop for Checkpointer {
    fn drop(&mut self) {
        // Waits, at most, for the pending request to be taken.
        let _ = self.wake.send(Wake::Close);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
