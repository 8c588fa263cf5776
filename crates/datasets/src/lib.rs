//! Datasets in and out of Kith: the directory, and the reference data search and the
//! reports stand on.
//!
//! - [`import`]: HSDS 3.0 / ORUK 3.0 JSON and the ORUK v1 list form, with every
//!   rejected record reported by JSON path.
//! - [`sheet`]: spreadsheets saved as CSV, read through a TOML map of their columns,
//!   with every refused row reported by line.
//! - [`export`]: the whole directory as HSDS 3.0 JSON.
//! - [`html`]: turning published HTML descriptions into plain text.
//! - [`geo`]: ONS postcode directories and the IMD / SIMD deprivation files.
#![deny(clippy::unwrap_used, clippy::expect_used)]

pub mod export;
pub mod geo;
pub mod html;
pub mod import;
pub mod oruk_v1;
pub mod sheet;

pub use export::{ExportError, ExportSummary, export_hsds};
pub use import::{ImportError, ImportReport, Importer, RecordKind, Rejection, store_batch};
