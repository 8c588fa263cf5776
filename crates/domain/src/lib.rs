//! Kith's directory model.
//!
//! The types in [`hsds`] are Open Referral HSDS 3.0 objects with the fields of the UK
//! profile (ORUK), plus Kith's own `last_verified_at` / `last_verified_by`. They
//! serialise to, and deserialise from, the JSON that the standard defines.
//!
//! [`validate`] holds the rules a record must meet before it is stored, [`directory`]
//! splits a nested HSDS document into the aggregates the store keeps, and [`clock`] is
//! how time enters the domain: always as a parameter, never read directly.
#![deny(clippy::unwrap_used, clippy::expect_used)]

pub mod account;
pub mod change;
pub mod clock;
pub mod contact;
pub mod directory;
pub mod disclosure;
pub mod duplicates;
pub mod feed;
pub mod geo;
pub mod hsds;
pub mod opening;
pub mod outbox;
pub mod postcode;
pub mod provenance;
pub mod referral;
pub mod report;
pub mod serde_util;
pub mod sms;
pub mod spelling;
pub mod status;
pub mod validate;

pub use change::{Change, ChangeOp, ObjectType};
pub use clock::{Clock, FixedClock, SystemClock};
pub use directory::DirectoryBatch;
pub use status::ServiceStatus;
