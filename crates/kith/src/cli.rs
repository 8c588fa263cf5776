//! Command-line arguments. Scripts rely on these names; change them with care.

use clap::{Args, Parser, Subcommand, ValueEnum};
use std::net::SocketAddr;
use std::path::PathBuf;

/// Kith links general practices with the community and voluntary groups around them:
/// a shared directory of local services, search that works in a ten-minute
/// consultation, and referrals that close the loop.
///
/// With no configuration Kith keeps everything in ./kith-data (a SQLite database).
/// Set --database-url to a postgres:// URL to share one PostgreSQL database between
/// several instances.
#[derive(Debug, Parser)]
#[command(name = "kith", version, about, long_about, max_term_width = 100)]
pub struct Cli {
    #[command(flatten)]
    pub global: Global,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Args)]
pub struct Global {
    /// Where Kith keeps its data (the SQLite database and search index)
    #[arg(long, global = true, env = "KITH_DATA_DIR", default_value = "./kith-data", value_name = "DIR")]
    pub data_dir: PathBuf,

    /// Database to use: postgres://user@host/db for PostgreSQL, or sqlite://PATH.
    /// When absent, SQLite in the data directory.
    #[arg(long, global = true, env = "KITH_DATABASE_URL", value_name = "URL", hide_env_values = true)]
    pub database_url: Option<String>,
}

#[derive(Debug, Args)]
pub struct Listen {
    /// Address and port to serve on
    #[arg(long, env = "KITH_LISTEN", default_value = "127.0.0.1:8080", value_name = "ADDR")]
    pub listen: SocketAddr,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve Kith over HTTP
    Serve(#[command(flatten)] Listen),

    /// Load Kith's demo directory (several hundred services in Glasgow East, Fife and
    /// Sheffield), then serve it
    ///
    /// The demo directory is generated, not real: phone numbers are from Ofcom's drama
    /// ranges and addresses use example.org. Loading it again updates the same records.
    Demo {
        #[command(flatten)]
        listen: Listen,

        /// Load the demo directory and exit without serving
        #[arg(long)]
        load_only: bool,

        /// How many services to generate
        #[arg(long, default_value_t = kith_demo::DEFAULT_SERVICES, value_name = "N")]
        services: usize,

        /// Seed for the generator; the same seed always gives the same directory
        #[arg(long, default_value_t = 2026)]
        seed: u64,
    },

    /// Import Open Referral data: HSDS 3.0 / ORUK 3.0 JSON, or the ORUK v1 list form
    ///
    /// PATH may be a file or a folder of .json files (such as one written by `kith
    /// export`). A file may hold one record, a list, or a paged API response. Records are
    /// matched by id, so importing again updates what changed.
    ///
    /// Every record that cannot be imported is reported with its JSON path and the
    /// reason. Exit status: 0 when every record was imported, 2 when some were rejected
    /// and the rest imported, 1 when nothing was imported.
    Import {
        /// Files or folders to import
        #[arg(required = true, value_name = "PATH")]
        paths: Vec<PathBuf>,

        /// Import nothing if any record is invalid
        #[arg(long)]
        strict: bool,

        /// Write the full report (every rejection and warning) to this file as JSON
        #[arg(long, value_name = "FILE")]
        report: Option<PathBuf>,
    },

    /// Postcode geography and deprivation, for search by postcode and reports by need
    #[command(subcommand)]
    Geo(GeoCommand),

    /// Rebuild the search index from the database
    ///
    /// Kith keeps the index up to date by itself; rebuild after restoring a backup, or if
    /// searches look wrong. The index lives in the data directory.
    Reindex,

    /// Export the whole directory
    Export {
        /// Output format
        #[arg(long, value_enum, default_value_t = ExportFormat::Hsds)]
        format: ExportFormat,

        /// Folder to write into (created if missing)
        #[arg(value_name = "DIR")]
        dir: PathBuf,
    },
}

#[derive(Debug, Subcommand)]
pub enum GeoCommand {
    /// Load postcodes (ONS Postcode Directory or NSPL CSV) or place names (ONS Index of
    /// Place Names CSV)
    ///
    /// Columns are found by their ONS names (pcds, lat, long, oslaua, oshlthau, hscp,
    /// osward, lsoa11, lsoa21, ctry, doterm), so the full directory and extracts of it
    /// both load. Terminated postcodes are left out. Loading again replaces what is there.
    /// Deprivation files given here are loaded as `import-deprivation` would.
    Import {
        /// CSV files to load
        #[arg(required = true, value_name = "FILE")]
        files: Vec<PathBuf>,
    },

    /// Load deprivation ranks: IMD 2019 or IMD 2025 (England, by LSOA) or SIMD 2020v2
    /// (Scotland, by data zone)
    ///
    /// The index is recognised from the official column names. Deciles and quintiles are
    /// computed within the file's country from the ranks (1 is the most deprived).
    ImportDeprivation {
        /// CSV files to load
        #[arg(required = true, value_name = "FILE")]
        files: Vec<PathBuf>,

        /// Which index the files hold, when their headers do not say
        #[arg(long, value_enum, value_name = "INDEX")]
        index: Option<IndexArg>,
    },

    /// Show what Kith knows about a postcode, an outward code ("G31") or a place name
    Lookup {
        /// What to look up
        #[arg(value_name = "WHERE")]
        query: String,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum IndexArg {
    /// English Indices of Deprivation 2019, by LSOA 2011
    Imd2019,
    /// English Indices of Deprivation 2025, by LSOA 2021
    Imd2025,
    /// Scottish Index of Multiple Deprivation 2020v2, by data zone 2011
    Simd2020v2,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ExportFormat {
    /// HSDS 3.0 JSON: services.json, organizations.json, locations.json, taxonomies.json
    /// and taxonomy_terms.json, each an HSDS paged response
    Hsds,
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn the_cli_is_well_formed() {
        Cli::command().debug_assert();
    }
}
