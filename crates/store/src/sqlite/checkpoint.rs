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
use rusqlite::hooks::Wal;
use rusqlite::wal::CheckpointMode;
use std::ffi::c_int;
use std::sync::mpsc::{Receiver, SyncSender};
use std::thread::JoinHandle;

/// Log pages (16 KB each) after which a commit asks for a checkpoint: the threshold the
/// automatic checkpoint had, 64 MB.
const PAGES: i32 = 4_000;

/// Log pages after which the writer checkpoints itself after committing, because the
/// checkpointer has fallen behind: a checkpoint that runs alongside the writer cannot
/// start the log again from the top, so under a long stream of large commits the log
/// would otherwise grow without bound. 1 GB.
const CEILING: i32 = 64_000;

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

impl Checkpointer {
    /// Starts the thread with `conn`, a read-write connection of its own, and has the
    /// `writer`'s commits wake it, in place of SQLite's automatic checkpoint (which is
    /// also a commit hook). A commit that leaves the log over [`PAGES`] only asks for a
    /// checkpoint; past [`CEILING`] the writer waits for a full one itself.
    pub(super) fn start(writer: &mut Connection, conn: Connection) -> Result<Self> {
        let (wake, woken) = std::sync::mpsc::sync_channel(1);
        let thread = std::thread::Builder::new()
            .name("kith-sqlite-checkpoint".into())
            .spawn(move || run(&conn, &woken))
            .map_err(|e| StoreError::Database(format!("cannot start the SQLite checkpoint thread: {e}")))?;
        let request = wake.clone();
        writer.wal_hook(Some(move |wal: &mut Wal, pages: c_int| {
            if pages >= CEILING {
                // The commit has happened whatever the checkpoint does.
                warn_if_failed(wal.checkpoint_v2(CheckpointMode::FULL));
            } else if pages >= PAGES {
                // Full means one is already pending; disconnected means the store is closing.
                let _ = request.try_send(Wake::Checkpoint);
            }
            Ok(())
        }))?;
        Ok(Checkpointer { wake, thread: Some(thread) })
    }
}

fn run(conn: &Connection, woken: &Receiver<Wake>) {
    while let Ok(Wake::Checkpoint) = woken.recv() {
        warn_if_failed(conn.wal_checkpoint_v2(None::<&str>, CheckpointMode::PASSIVE));
    }
}

/// A failed checkpoint loses nothing (the pages stay in the log), and the next commit
/// over the threshold asks again.
fn warn_if_failed<T>(checkpoint: rusqlite::Result<T>) {
    if let Err(e) = checkpoint {
        tracing::warn!("SQLite checkpoint failed, to be retried after the next write: {e}");
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
