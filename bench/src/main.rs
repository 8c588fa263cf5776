//! Kith's benchmarks. Results are recorded in docs/BENCHMARKS.md.
//!
//! ```text
//! cargo run --release -p kith-bench -- import --services 100000 --runs 5
//! cargo run --release -p kith-bench -- search --services 100000 --queries 500
//! cargo build --release -p kith && cargo run --release -p kith-bench -- http --services 100000
//! cargo run --release -p kith-bench -- feeds --services 100000 --runs 3
//! cargo run --release -p kith-bench -- duplicates --services 1000000
//! cargo run --release -p kith-bench -- relevance [--pool unjudged.tsv]
//! ```
//!
//! `search` runs the standard query mix on Kith's index and on its peers; see
//! [`search`].
//!
//! `import` measures `kith import` end to end: read an HSDS 3.0 JSON file of N generated
//! services (nested, as publishers send them), parse, validate, and store, into a fresh
//! SQLite database and a fresh PostgreSQL database on each run.
#![allow(clippy::print_stdout, clippy::print_stderr)] // A benchmark reports on its streams.

mod duplicates;
mod feeds;
mod http;
mod pages;
mod referrals;
mod relevance;
mod search;

use anyhow::{Context, Result, bail};
use kith_datasets::import::import_streaming;
use kith_domain::directory::{Related, nest_service};
use kith_domain::{Clock, FixedClock};
use std::io::Write;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

const USAGE: &str = "usage: kith-bench search --help, kith-bench http --help, kith-bench pages --help, kith-bench referrals --help, kith-bench feeds --help, kith-bench duplicates --help, kith-bench relevance --help, or kith-bench import [--services N] [--runs R] [--engine E] [--postgres URL]

  --services N    services to generate (default 100000)
  --runs R        runs per engine; medians are reported (default 5)
  --engine E      sqlite, postgres or both (default both)
  --feed FILE     keep the generated feed in FILE, or reuse FILE if it is there
                  (for running `kith import` on it, or profiling it, by hand)
  --window N      records read while the last window is written (default: as `kith
                  import` chooses, 20000 for SQLite and 5000 for PostgreSQL)
  --postgres URL  PostgreSQL server to create benchmark databases on
                  (default $KITH_TEST_DATABASE_URL, else postgres://postgres@127.0.0.1:5432/postgres)";

struct Options {
    services: usize,
    runs: usize,
    engine: String,
    postgres: String,
    feed: Option<std::path::PathBuf>,
    /// `None`: as `kith import` chooses for each engine.
    window: Option<usize>,
}

/// A benchmark's `--flag value` pairs, or `None` after printing `usage` for `--help`.
fn flags(args: Vec<String>, usage: &str) -> Result<Option<Vec<(String, String)>>> {
    let mut out = Vec::new();
    let mut it = args.into_iter();
    while let Some(flag) = it.next() {
        if flag == "--help" || flag == "-h" {
            println!("{usage}");
            return Ok(None);
        }
        let value = it.next().with_context(|| format!("{flag} needs a value"))?;
        out.push((flag, value));
    }
    Ok(Some(out))
}

fn parse_args() -> Result<Options> {
    let mut args = std::env::args().skip(1);
    match args.next().as_deref() {
        Some("import") => {}
        Some("--help" | "-h") | None => {
            println!("{USAGE}");
            std::process::exit(0);
        }
        Some(other) => bail!("unknown benchmark {other:?}\n{USAGE}"),
    }
    let mut o = Options {
        services: 100_000,
        runs: 5,
        engine: "both".into(),
        postgres: std::env::var("KITH_TEST_DATABASE_URL")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into()),
        feed: None,
        window: None,
    };
    let Some(flags) = flags(args.collect(), USAGE)? else { std::process::exit(0) };
    for (flag, value) in flags {
        match flag.as_str() {
            "--services" => o.services = value.parse().context("--services must be a whole number")?,
            "--runs" => o.runs = value.parse().context("--runs must be a whole number")?,
            "--engine" if ["sqlite", "postgres", "both"].contains(&value.as_str()) => o.engine = value,
            "--engine" => bail!("--engine must be sqlite, postgres or both"),
            "--postgres" => o.postgres = value,
            "--feed" => o.feed = Some(value.into()),
            "--window" => o.window = Some(value.parse().context("--window must be a whole number")?),
            _ => bail!("unknown option {flag}\n{USAGE}"),
        }
    }
    if o.runs == 0 || o.services == 0 || o.window == Some(0) {
        bail!("--services, --runs and --window must be at least 1");
    }
    Ok(o)
}

/// Writes N generated services as one HSDS paged response, each service nested with its
/// organisation and locations, as a council's feed would be.
fn write_feed(path: &Path, services: usize, now: chrono::DateTime<chrono::Utc>) -> Result<u64> {
    let batch = kith_demo::generate(&kith_demo::DemoOptions { seed: 42, services, now });
    let related = Related {
        organizations: batch.organizations.iter().map(|o| (o.id, o.clone())).collect(),
        locations: batch.locations.iter().map(|l| (l.id, l.clone())).collect(),
        taxonomy_terms: batch.taxonomy_terms.iter().map(|t| (t.id, t.clone())).collect(),
    };
    let mut out = std::io::BufWriter::new(std::fs::File::create(path)?);
    write!(
        out,
        "{{\"total_items\":{services},\"total_pages\":1,\"page_number\":1,\"size\":{services},\"first_page\":true,\"last_page\":true,\"empty\":false,\"contents\":["
    )?;
    for (i, s) in batch.services.iter().enumerate() {
        if i > 0 {
            out.write_all(b",")?;
        }
        serde_json::to_writer(&mut out, &nest_service(s.clone(), &related))?;
    }
    out.write_all(b"]}")?;
    out.flush()?;
    Ok(std::fs::metadata(path)?.len())
}

#[derive(Debug, Clone, Copy)]
struct Run {
    /// From the start of reading until the store is closed.
    total: Duration,
    /// Reading and writing overlap: each is the time that side was busy.
    reading: Duration,
    writing: Duration,
}

impl Run {
    fn total(&self) -> Duration {
        self.total
    }
}

/// Imports the feed into `store` and closes it, as `kith import` does before it exits:
/// SQLite's last checkpoint is part of the import, and closing waits for it and copies
/// into the database whatever is still only in the write-ahead log.
async fn import_once<S: kith_store::Store>(
    label: &str,
    store: S,
    feed: &Path,
    expected: usize,
    window: Option<usize>,
) -> Result<Run> {
    let window = window.unwrap_or_else(|| kith_datasets::import::window_for(store.engine()));
    let started = Instant::now();
    let streamed = import_streaming(&store, vec![feed.to_owned()], window, |_| {}).await?;
    let closing = Instant::now();
    drop(store);
    let closing = closing.elapsed();
    let total = started.elapsed();
    let report = &streamed.report;
    if report.accepted != expected || !report.rejected.is_empty() {
        bail!(
            "expected {expected} clean records, got {} accepted and {} rejected",
            report.accepted,
            report.rejected.len()
        );
    }
    if streamed.written.services as usize != expected {
        bail!("expected {expected} services written, got {}", streamed.written.services);
    }
    let run = Run { total, reading: streamed.reading, writing: streamed.writing };
    eprintln!(
        "{label}: {:.2?} (reading {:.2?}, writing {:.2?}, closing {closing:.2?})",
        run.total(),
        run.reading,
        run.writing
    );
    Ok(run)
}

fn median(mut xs: Vec<Duration>) -> Duration {
    xs.sort();
    xs[xs.len() / 2]
}

fn report(engine: &str, runs: &[Run], services: usize, goal: f64) {
    let total = median(runs.iter().map(Run::total).collect());
    let parse = median(runs.iter().map(|r| r.reading).collect());
    let store = median(runs.iter().map(|r| r.writing).collect());
    let rate = services as f64 / total.as_secs_f64();
    let all: Vec<String> = runs.iter().map(|r| format!("{:.2}", r.total().as_secs_f64())).collect();
    println!(
        "| {engine} | {} | {:.2} s | {:.2} s | {:.2} s | **{:.0}** | {:.0} | {:.2}× | {} |",
        runs.len(),
        total.as_secs_f64(),
        parse.as_secs_f64(),
        store.as_secs_f64(),
        rate,
        goal,
        rate / goal,
        all.join(", ")
    );
}

/// mimalloc: bulk imports allocate and free millions of small strings, where
/// the system allocator spends a fifth of the time.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> Result<()> {
    match std::env::args().nth(1).as_deref() {
        Some("search") => return search::run(std::env::args().skip(2).collect()).await,
        Some("http") => return http::run(std::env::args().skip(2).collect()).await,
        Some("pages") => return pages::run(std::env::args().skip(2).collect()).await,
        Some("referrals") => return referrals::run(std::env::args().skip(2).collect()).await,
        Some("feeds") => return feeds::run(std::env::args().skip(2).collect()).await,
        Some("duplicates") => return duplicates::run(std::env::args().skip(2).collect()).await,
        Some("relevance") => return relevance::run(std::env::args().skip(2).collect()).await,
        _ => {}
    }
    let o = parse_args()?;
    let clock: Arc<dyn Clock> =
        Arc::new(FixedClock::new(chrono::DateTime::from_timestamp(1_780_000_000, 0).context("a valid timestamp")?));
    let dir = tempfile::tempdir()?;
    let feed = o.feed.clone().unwrap_or_else(|| dir.path().join("services.json"));
    let bytes = match std::fs::metadata(&feed) {
        Ok(meta) if o.feed.is_some() => {
            eprintln!(
                "reusing {} ({:.0} MB); it must hold {} services",
                feed.display(),
                meta.len() as f64 / 1e6,
                o.services
            );
            meta.len()
        }
        _ => {
            let started = Instant::now();
            let bytes = write_feed(&feed, o.services, clock.now())?;
            eprintln!("generated {} services ({:.0} MB) in {:.1?}", o.services, bytes as f64 / 1e6, started.elapsed());
            bytes
        }
    };

    let mut sqlite_runs = Vec::new();
    let runs = |engine: &str| if o.engine == "both" || o.engine == engine { o.runs } else { 0 };
    for run in 0..runs("sqlite") {
        let db = dir.path().join(format!("sqlite-{run}.db"));
        let store = kith_store::sqlite::SqliteStore::open(&db, clock.clone()).await?;
        sqlite_runs.push(import_once(&format!("sqlite run {run}"), store, &feed, o.services, o.window).await?);
        let _ = std::fs::remove_file(&db);
    }

    let admin = kith_store::postgres::parse_url(&o.postgres)?;
    let (client, conn) = admin.connect(tokio_postgres::NoTls).await.context("connecting to PostgreSQL")?;
    tokio::spawn(conn);
    let mut pg_runs = Vec::new();
    for run in 0..runs("postgres") {
        let name = format!("kith_bench_{}_{run}", std::process::id());
        client.batch_execute(&format!("DROP DATABASE IF EXISTS {name}")).await?;
        client.batch_execute(&format!("CREATE DATABASE {name}")).await?;
        let mut config = admin.clone();
        config.dbname(&name);
        let store = kith_store::postgres::PostgresStore::connect_with(config, clock.clone()).await?;
        pg_runs.push(import_once(&format!("postgres run {run}"), store, &feed, o.services, o.window).await?);
        client.batch_execute(&format!("DROP DATABASE {name} WITH (FORCE)")).await?;
    }

    println!(
        "\nImport of {} generated services ({:.0} MB of HSDS 3.0 JSON), medians of {} runs:\n",
        o.services,
        bytes as f64 / 1e6,
        o.runs
    );
    println!(
        "| engine | runs | total (median) | reading (busy) | writing (busy) | services/s | goal | vs goal | every run (s) |"
    );
    println!("|---|---|---|---|---|---|---|---|---|");
    if !sqlite_runs.is_empty() {
        report("SQLite (WAL)", &sqlite_runs, o.services, 20_000.0);
    }
    if !pg_runs.is_empty() {
        report("PostgreSQL", &pg_runs, o.services, 10_000.0);
    }
    Ok(())
}
