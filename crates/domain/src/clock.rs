//! Time enters Kith through a [`Clock`], so that anything that depends on "now"
//! (verification dates, reminders, follow-ups) can be tested with a fixed time.

use chrono::{DateTime, Utc};
use std::sync::Mutex;

/// A source of the current time.
pub trait Clock: Send + Sync + std::fmt::Debug {
    fn now(&self) -> DateTime<Utc>;
}

/// The real clock. The only place in Kith that reads the system time.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    #[allow(clippy::disallowed_methods)] // This is the one sanctioned reader of the system clock.
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}

/// A clock that stays where it is put, for tests and deterministic generation.
#[derive(Debug)]
pub struct FixedClock(Mutex<DateTime<Utc>>);

impl FixedClock {
    pub fn new(at: DateTime<Utc>) -> Self {
        Self(Mutex::new(at))
    }

    /// Puts the clock at `at`.
    pub fn set(&self, at: DateTime<Utc>) {
        *self.0.lock().unwrap_or_else(|poisoned| poisoned.into_inner()) = at;
    }

    /// Moves the clock forwards (or backwards) by `by`.
    pub fn advance(&self, by: chrono::Duration) {
        let mut guard = self.0.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        *guard += by;
    }
}

impl Clock for FixedClock {
    fn now(&self) -> DateTime<Utc> {
        *self.0.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// The system clock moved on by a number of seconds read from a file at every call (no
/// file, or nothing in it, is no offset). Only for browser tests, which let four weeks
/// pass by writing to the file while a server runs.
#[derive(Debug)]
pub struct OffsetFileClock {
    file: std::path::PathBuf,
}

impl OffsetFileClock {
    pub fn new(file: std::path::PathBuf) -> Self {
        Self { file }
    }
}

impl Clock for OffsetFileClock {
    fn now(&self) -> DateTime<Utc> {
        let offset = std::fs::read_to_string(&self.file).ok().and_then(|s| s.trim().parse::<i64>().ok()).unwrap_or(0);
        SystemClock.now() + chrono::Duration::seconds(offset)
    }
}
