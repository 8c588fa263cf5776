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
    /// For tests only: a file holding a number of seconds to add to the system clock, read
    /// whenever Kith asks the time, so that a browser test can let four weeks pass
    #[arg(long, global = true, env = "KITH_TEST_CLOCK_FILE", value_name = "FILE", hide = true)]
    pub test_clock_file: Option<PathBuf>,

    /// Where Kith keeps its data (the SQLite database and search index)
    #[arg(long, global = true, env = "KITH_DATA_DIR", default_value = "./kith-data", value_name = "DIR")]
    pub data_dir: PathBuf,

    /// Database to use: postgres://user@host/db for PostgreSQL, or sqlite://PATH.
    /// When absent, SQLite in the data directory.
    #[arg(long, global = true, env = "KITH_DATABASE_URL", value_name = "URL", hide_env_values = true)]
    pub database_url: Option<String>,

    /// The key file that encrypts personal fields (names, emails, patient details).
    /// Default: keys.txt in the data directory, created on first use with SQLite. With
    /// PostgreSQL, every instance must use the same file: create it once with `kith keys
    /// new` and give it to each
    #[arg(long, global = true, env = "KITH_KEY_FILE", value_name = "FILE")]
    pub key_file: Option<PathBuf>,

    /// The word vectors search reads meaning with, installed by scripts/install-model.
    /// Default: model/ in the data directory. Without them Kith searches by words alone
    #[arg(long, global = true, env = "KITH_MODEL_DIR", value_name = "DIR")]
    pub model_dir: Option<PathBuf>,

    /// The fonts printed leaflets use for other scripts (Bengali, Gurmukhi, Gujarati,
    /// Devanagari, Tamil, Arabic, Chinese, emoji), installed by scripts/install-fonts.
    /// Default: fonts/ in the data directory. Without them leaflets print Latin, Greek
    /// and Cyrillic, and other characters as a replacement mark
    #[arg(long, global = true, env = "KITH_FONTS_DIR", value_name = "DIR")]
    pub fonts_dir: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct Listen {
    /// Address and port to serve on
    #[arg(long, env = "KITH_LISTEN", default_value = "127.0.0.1:8080", value_name = "ADDR")]
    pub listen: SocketAddr,

    /// Days from a referral to its follow-up, when the practice asks how the person got on
    #[arg(long, env = "KITH_FOLLOW_UP_DAYS", default_value_t = 28, value_name = "DAYS",
          value_parser = clap::value_parser!(i64).range(1..=365))]
    pub follow_up_days: i64,

    /// Memory for services' JSON kept between search answers, in MB; 0 turns it off
    #[arg(long, env = "KITH_SEARCH_CACHE_MB", default_value_t = 256, value_name = "MB",
          value_parser = clap::value_parser!(u32).range(0..=65_536))]
    pub search_cache_mb: u32,

    /// Connections served at once; more wait until one closes. Keep it well below the
    /// process's open-file limit (ulimit -n), which the database and index share
    #[arg(long, env = "KITH_MAX_CONNECTIONS", default_value_t = 512, value_name = "N",
          value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    pub max_connections: u32,

    /// Seconds a client has to send a request's headers, and a kept-alive connection to
    /// begin its next request, before Kith closes it
    #[arg(long, env = "KITH_HEADER_TIMEOUT", default_value_t = 20, value_name = "SECONDS",
          value_parser = clap::value_parser!(u32).range(1..=600))]
    pub header_timeout: u32,

    /// Seconds given, once asked to stop (Ctrl-C or SIGTERM), to requests and
    /// background jobs already under way, before they are cut off
    #[arg(long, env = "KITH_SHUTDOWN_GRACE", default_value_t = 20, value_name = "SECONDS",
          value_parser = clap::value_parser!(u32).range(0..=3600))]
    pub shutdown_grace: u32,

    /// Take each client's address from the last entry of X-Forwarded-For, as set by the
    /// reverse proxy in front of Kith (for sign-in rate limits and the audit log). Only
    /// set this behind a proxy that sets the header
    #[arg(long, env = "KITH_TRUST_PROXY")]
    pub trust_proxy: bool,

    /// The address people reach Kith at, such as https://kith.example.org: for sign-in
    /// links and the OIDC redirect
    #[arg(long, env = "KITH_PUBLIC_URL", value_name = "URL")]
    pub public_url: Option<String>,

    #[command(flatten)]
    pub oidc: OidcArgs,

    /// Send email through GOV.UK Notify with this API key. Without it, emails are written
    /// as .eml files into the outbox folder in the data directory
    #[arg(
        long,
        env = "KITH_NOTIFY_API_KEY",
        value_name = "KEY",
        hide_env_values = true,
        requires = "notify_email_template"
    )]
    pub notify_api_key: Option<String>,

    /// The Notify email template: subject ((subject)), body ((body))
    #[arg(long, env = "KITH_NOTIFY_EMAIL_TEMPLATE", value_name = "ID")]
    pub notify_email_template: Option<String>,

    /// The Notify text message template: content ((body)). Without it, text messages
    /// wait in the outbox (or, with no Notify key, are written as files beside the emails)
    #[arg(long, env = "KITH_NOTIFY_SMS_TEMPLATE", value_name = "ID")]
    pub notify_sms_template: Option<String>,

    /// The Notify text message sender to use, by its id in Notify's settings (a sender
    /// the practice or ICB has set up, like "ParkheadHC"). Without it, Notify's default
    #[arg(long, env = "KITH_NOTIFY_SMS_SENDER", value_name = "ID", requires = "notify_sms_template")]
    pub notify_sms_sender: Option<String>,

    /// The Notify email reply-to address to use, by its id in Notify's settings, so
    /// replies reach the practice. Without it, the service's default
    #[arg(long, env = "KITH_NOTIFY_REPLY_TO", value_name = "ID", requires = "notify_api_key")]
    pub notify_reply_to: Option<String>,

    /// Send email over SMTP instead: smtp://user:password@host:587 (STARTTLS),
    /// smtps://user:password@host:465, or smtp://host:25?tls=none on a trusted network
    #[arg(long, env = "KITH_SMTP_URL", value_name = "URL", hide_env_values = true, conflicts_with = "notify_api_key")]
    pub smtp_url: Option<String>,

    /// Who emails come from
    #[arg(long, env = "KITH_MAIL_FROM", default_value = "Kith <kith@localhost>", value_name = "ADDRESS")]
    pub mail_from: String,

    /// GOV.UK Notify's API address
    #[arg(
        long,
        env = "KITH_NOTIFY_URL",
        default_value = "https://api.notifications.service.gov.uk",
        value_name = "URL"
    )]
    pub notify_url: String,
}

/// Sign-in with an OpenID Connect provider such as NHS CIS2, authenticating Kith with a
/// private key (private_key_jwt). All of issuer, client id and key file turn it on.
#[derive(Debug, Args)]
pub struct OidcArgs {
    /// The provider's issuer URL (its discovery document is under /.well-known/)
    #[arg(long, env = "KITH_OIDC_ISSUER", value_name = "URL", requires_all = ["oidc_client_id", "oidc_key_file", "public_url"])]
    pub oidc_issuer: Option<String>,

    /// Kith's client id at the provider
    #[arg(long, env = "KITH_OIDC_CLIENT_ID", value_name = "ID")]
    pub oidc_client_id: Option<String>,

    /// Kith's RSA private key, PKCS#8 PEM; its public half is published at
    /// /oidc/jwks.json for the provider
    #[arg(long, env = "KITH_OIDC_KEY_FILE", value_name = "FILE")]
    pub oidc_key_file: Option<PathBuf>,

    /// The key id registered with the provider
    #[arg(long, env = "KITH_OIDC_KEY_ID", default_value = "kith-1", value_name = "KID")]
    pub oidc_key_id: String,

    /// How Kith signs its client assertions: RS256, RS384 or RS512
    #[arg(long, env = "KITH_OIDC_ALG", default_value = "RS256", value_name = "ALG")]
    pub oidc_alg: String,

    /// What the sign-in button calls the provider
    #[arg(long, env = "KITH_OIDC_LABEL", default_value = "NHS Care Identity", value_name = "NAME")]
    pub oidc_label: String,

    /// Scopes to ask for; Kith needs openid and email
    #[arg(long, env = "KITH_OIDC_SCOPES", default_value = "openid email profile", value_name = "SCOPES")]
    pub oidc_scopes: String,
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

        /// How many synthetic signposts and referrals to seed, made over the last six months
        /// and followed up (0 for none)
        #[arg(long, default_value_t = 240, value_name = "N")]
        caseload: usize,

        /// Seed for the generator; the same seed always gives the same directory
        #[arg(long, default_value_t = 2026)]
        seed: u64,
    },

    /// Import Open Referral data (HSDS 3.0 / ORUK 3.0 JSON, or the ORUK v1 list form), or a
    /// spreadsheet saved as CSV with --map
    ///
    /// PATH may be a file or a folder of .json files (such as one written by `kith
    /// export`). A file may hold one record, a list, or a paged API response. Records are
    /// matched by id, so importing again updates what changed.
    ///
    /// With --map MAP.toml, each PATH is a CSV sheet and the map names the column that
    /// holds each field (see docs/IMPORT-EXPORT.md):
    ///   [columns]
    ///   name = "Group"
    ///   postcode = "Post code"
    ///   [fixed]
    ///   need = "food"
    ///   [skip]
    ///   column = "Closed?"
    ///   equals = "yes"
    ///
    /// Every record that cannot be imported is reported with its JSON path (a sheet's
    /// rows with their line) and the reason. Exit status: 0 when every record was
    /// imported, 2 when some were rejected and the rest imported, 1 when nothing was
    /// imported.
    #[command(verbatim_doc_comment)]
    Import {
        /// Files or folders to import (CSV files with --map)
        #[arg(required = true, value_name = "PATH")]
        paths: Vec<PathBuf>,

        /// Read each PATH as a spreadsheet saved as CSV, through this map of its columns
        /// (TOML: [columns], [fixed], [skip])
        #[arg(long, value_name = "MAP.toml")]
        map: Option<PathBuf>,

        /// Import nothing if any record is invalid
        #[arg(long)]
        strict: bool,

        /// The place these services cover, by GSS code (a council, health board, ICB or
        /// country); repeat for several. A service with no venue and no area of its own
        /// is then found from any postcode inside and shown as "Serves all of …". Give a
        /// name for a code Kith does not know: E06000099=Somewhere
        #[arg(long = "area", value_name = "CODE", value_parser = parse_area)]
        areas: Vec<kith_domain::geo::WholeArea>,

        /// Write the full report (every rejection and warning) to this file as JSON
        #[arg(long, value_name = "FILE")]
        report: Option<PathBuf>,
    },

    /// Postcode geography and deprivation, for search by postcode and reports by need
    #[command(subcommand)]
    Geo(GeoCommand),

    /// Directory feeds: a council's or a group's Open Referral API, pulled on a schedule
    ///
    /// `kith serve` pulls each registered feed when it is due; with several instances on
    /// PostgreSQL, one of them pulls each feed. A pull reads every page before it writes
    /// anything, so a feed that breaks half-way loses nothing already stored.
    #[command(subcommand)]
    Feeds(FeedsCommand),

    /// The same groups and services from several sources
    ///
    /// Kith looks for them after every feed pull and import: records with the same
    /// charity or company number, or the same organisation, name and venue, are merged;
    /// likely ones wait for a curator at /curation/duplicates.
    #[command(subcommand)]
    Duplicates(DuplicatesCommand),

    /// Search the directory as the web search does, and optionally say why each result
    /// ranked where it did
    ///
    /// The index is brought up to date with the database first. For example:
    ///   kith search "can't sleep" --near "BS1 5TR" --explain
    Search {
        /// What the person needs, in their own words
        #[arg(value_name = "QUERY")]
        query: String,

        /// A postcode or place to search around
        #[arg(long, alias = "postcode", value_name = "PLACE")]
        near: Option<String>,

        /// How far from the place, in km
        #[arg(long, default_value_t = kith_search::DEFAULT_RADIUS_KM, value_name = "KM",
              value_parser = parse_radius)]
        radius: f64,

        /// How many results to show
        #[arg(long, default_value_t = 10, value_name = "N",
              value_parser = clap::value_parser!(u16).range(1..=100))]
        limit: u16,

        /// Say how the query was read and why each result ranked where it did
        #[arg(long)]
        explain: bool,
    },

    /// Write a backup of the database to FILE
    ///
    /// SQLite: a copy of the database, taken in one read, safe while Kith runs.
    /// PostgreSQL: `pg_dump --format=custom` (PostgreSQL's client programs must be
    /// installed). The key file that seals personal fields is not in the backup: keep a
    /// copy of it apart, as without it those fields cannot be read
    Backup {
        /// The backup file to write (it must not exist yet)
        file: PathBuf,
    },

    /// Restore a backup made by `kith backup` into an empty data directory or database
    ///
    /// Refuses to write over a database that holds anything. Put the key file of the
    /// instance that made the backup in place (or give it with --key-file) before starting
    /// Kith; the search index is rebuilt from the restored database when Kith starts
    Restore {
        /// The backup file to read
        file: PathBuf,
    },

    /// Rebuild the search index from the database
    ///
    /// Kith keeps the index up to date by itself; rebuild after restoring a backup, or if
    /// searches look wrong. The index lives in the data directory.
    Reindex,

    /// People who sign in: add the first administrator, reset a password, send a link
    #[command(subcommand)]
    Users(UsersCommand),

    /// Organisations (GP practices and community groups) and areas (PCNs, neighbourhoods)
    /// that use Kith
    #[command(subcommand)]
    Orgs(OrgsCommand),

    /// The keys that encrypt personal fields
    #[command(subcommand)]
    Keys(KeysCommand),

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
pub enum DuplicatesCommand {
    /// Look for duplicates now: merge the certain ones, queue the likely ones
    Detect,
}

#[derive(Debug, Subcommand)]
pub enum FeedsCommand {
    /// Register a feed by its API's address (Kith reads URL/services, every page)
    Add {
        /// The API's base address, like https://example.org/api
        #[arg(value_name = "URL")]
        url: String,

        /// What to call it in `kith feeds pull` and `list` (default: the host's name)
        #[arg(long)]
        name: Option<String>,

        /// The place the feed's services cover, by GSS code, for services with no venue
        /// or area of their own; repeat for several (see `kith import --help`)
        #[arg(long = "area", value_name = "CODE", value_parser = parse_area)]
        areas: Vec<kith_domain::geo::WholeArea>,

        /// How often to pull it: hours or days, like 12h or 7d
        #[arg(long, value_name = "INTERVAL", default_value = "24h", value_parser = parse_every)]
        every: u32,

        /// Withdraw a service (mark it inactive, shown to curators; never deleted) once
        /// this many complete pulls in a row have not listed it
        #[arg(long, value_name = "PULLS", default_value_t = kith_domain::provenance::DEFAULT_WITHDRAW_AFTER,
              value_parser = clap::value_parser!(u32).range(1..=30))]
        withdraw_after: u32,
    },

    /// Pull one feed now, or every feed
    ///
    /// After its first pull Kith asks a feed only for what changed since the last
    /// (`modified_after`), and reads the whole feed once a week: only a whole read finds
    /// services the feed no longer lists.
    Pull {
        /// The feed's name (all feeds when left out)
        name: Option<String>,

        /// Read the whole feed now, not only what changed
        #[arg(long)]
        full: bool,
    },

    /// The feeds, each with its last pull
    List,

    /// Stop pulling a feed (the services it brought stay in the directory)
    Remove {
        /// The feed's name
        name: String,
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

#[derive(Debug, Subcommand)]
pub enum UsersCommand {
    /// Add a person and give them a role in an organisation or area
    ///
    /// Without --password-stdin a strong password is made up and printed once. Roles that
    /// see personal data (and area administrators) must set up two-step sign-in the first
    /// time they sign in.
    ///
    /// Example, the first administrator:
    ///   kith orgs add-area "East End PCN"
    ///   kith users add ada@example.org --name "Ada Lovelace" --role area-admin --area <AREA ID>
    Add {
        /// Their email address, which they sign in with
        #[arg(value_name = "EMAIL")]
        email: String,

        /// Their name, as shown to colleagues
        #[arg(long)]
        name: String,

        /// Their role
        #[arg(long, value_enum)]
        role: RoleArg,

        /// The organisation the role is held in
        #[arg(long, value_name = "ID", conflicts_with = "area", required_unless_present = "area")]
        org: Option<uuid::Uuid>,

        /// The area the role is held in
        #[arg(long, value_name = "ID")]
        area: Option<uuid::Uuid>,

        /// Read the password from the first line of standard input
        #[arg(long)]
        password_stdin: bool,
    },

    /// Set a new password, turn off two-step sign-in (to be set up again) and sign the
    /// person out everywhere
    Reset {
        #[arg(value_name = "EMAIL")]
        email: String,

        /// Read the new password from the first line of standard input
        #[arg(long)]
        password_stdin: bool,
    },

    /// Make a single-use sign-in link (30 minutes) for a community group member to check
    /// one listing, and print it
    Link {
        #[arg(value_name = "EMAIL")]
        email: String,

        /// The service whose listing the link is for
        #[arg(long, value_name = "ID")]
        service: uuid::Uuid,

        /// The address Kith is reached at, for the link
        #[arg(long, env = "KITH_PUBLIC_URL", default_value = "http://127.0.0.1:8080", value_name = "URL")]
        base_url: String,
    },

    /// Give someone who already has an account another role, in another organisation or
    /// area (one person may work for two practices, or volunteer for a group as well)
    Grant {
        #[arg(value_name = "EMAIL")]
        email: String,

        #[arg(long, value_enum)]
        role: RoleArg,

        #[arg(long, value_name = "ID", conflicts_with = "area", required_unless_present = "area")]
        org: Option<uuid::Uuid>,

        #[arg(long, value_name = "ID")]
        area: Option<uuid::Uuid>,
    },

    /// List everyone who can sign in, with their roles
    List,
}

#[derive(Debug, Subcommand)]
pub enum OrgsCommand {
    /// Add an area: a primary care network (PCN) or a neighbourhood
    AddArea {
        #[arg(value_name = "NAME")]
        name: String,

        /// A neighbourhood rather than a PCN
        #[arg(long)]
        neighbourhood: bool,
    },

    /// Add a GP practice (with --ods) or a community group
    Add {
        #[arg(value_name = "NAME")]
        name: String,

        /// The practice's ODS code, such as A81001 (Scottish practice codes also work)
        #[arg(long, value_name = "CODE")]
        ods: Option<String>,

        /// For a community group: its organisation's id in the directory
        #[arg(long, value_name = "ID", conflicts_with = "ods")]
        directory_id: Option<uuid::Uuid>,

        /// Areas it belongs to
        #[arg(long = "area", value_name = "ID")]
        areas: Vec<uuid::Uuid>,
    },

    /// List organisations and areas, with their ids
    List,
}

#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Write a new key file (refuses to replace one)
    New {
        /// Where to write it
        #[arg(value_name = "FILE")]
        file: PathBuf,
    },

    /// Add a new encryption key to the key file and re-encrypt every personal field with
    /// it. Old keys stay in the file, so backups made before still open. Restart every
    /// instance afterwards so they all seal with the new key
    Rotate,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum RoleArg {
    /// Receptionist or care navigator
    Receptionist,
    /// GP, nurse or other clinician
    Clinician,
    /// Link worker or social prescriber
    LinkWorker,
    /// Member of a community group
    VcsMember,
    /// Keeps the directory up to date
    Curator,
    /// Runs Kith for an area: users, organisations, the audit log
    AreaAdmin,
    /// Sees aggregate figures only
    Commissioner,
}

impl RoleArg {
    pub fn role(self) -> kith_domain::account::Role {
        use kith_domain::account::Role;
        match self {
            RoleArg::Receptionist => Role::Receptionist,
            RoleArg::Clinician => Role::Clinician,
            RoleArg::LinkWorker => Role::LinkWorker,
            RoleArg::VcsMember => Role::VcsMember,
            RoleArg::Curator => Role::Curator,
            RoleArg::AreaAdmin => Role::AreaAdmin,
            RoleArg::Commissioner => Role::Commissioner,
        }
    }
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

/// "24h", "7d" or a bare number of hours.
fn parse_every(text: &str) -> Result<u32, String> {
    let text = text.trim().to_lowercase();
    let (number, hours_each) = match text.strip_suffix('d') {
        Some(days) => (days, 24),
        None => (text.strip_suffix('h').unwrap_or(&text), 1),
    };
    number
        .trim()
        .parse::<u32>()
        .ok()
        .and_then(|n| n.checked_mul(hours_each))
        .filter(|h| (1..=kith_domain::feed::MAX_EVERY_HOURS).contains(h))
        .ok_or_else(|| {
            format!("\"{text}\" is not an interval Kith can use: give hours or days from 1h to 90d, like 24h or 7d")
        })
}

fn parse_area(text: &str) -> Result<kith_domain::geo::WholeArea, String> {
    kith_domain::geo::WholeArea::parse(text)
}

fn parse_radius(s: &str) -> Result<f64, String> {
    let km: f64 = s.trim().parse().map_err(|_| format!("{s:?} is not a number of km"))?;
    if km > 0.0 && km <= kith_search::MAX_RADIUS_KM {
        Ok(km)
    } else {
        Err(format!("give a distance above 0 and at most {} km", kith_search::MAX_RADIUS_KM))
    }
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
