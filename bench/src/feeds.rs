//! `kith-bench feeds`: pulling a feed of N generated services (100,000 by default) from a
//! real HTTP server on 127.0.0.1, against `kith import` of the same records from a file,
//! in the same run on fresh SQLite databases.
//!
//! Issue 21's figures: a first pull takes at most 1.5× the import; pulling again when
//! nothing changed at most 0.2× the first pull. Each run times, in turn:
//!
//! 1. the import of the file, through the same `Imports::files` as `kith import`;
//! 2. the first pull into a second fresh database, page by page (`per_page`, 50 as Kith
//!    asks by default, which the server honours), ORUK 3.0 pages;
//! 3. a full pull again (`kith feeds pull --full`), every page read and compared;
//! 4. a pull of changes (`modified_after`, which this server supports: nothing changed).
//!
//! Ratios are taken pair by pair within each run, and their medians reported.

use anyhow::{Context, Result, bail};
use axum::extract::{Query, State};
use axum::response::IntoResponse;
use kith_app::feeds::{Feeds, Politeness};
use kith_app::imports::Imports;
use kith_domain::directory::{Related, nest_service};
use kith_domain::{Clock, SystemClock};
use kith_store::Store;
use std::collections::HashMap;
use std::io::Write;
use std::sync::Arc;
use std::time::{Duration, Instant};

const USAGE: &str = "usage: kith-bench feeds [--services N] [--runs R] [--per-page P]

  --services N    services in the feed and the file (default 100000)
  --runs R        runs; medians of the pair-by-pair ratios are reported (default 3)
  --per-page P    services a page, as Kith asks and the server answers (default 50)";

/// The feed's pages, rendered once, so the server costs nothing but sending them.
struct Served {
    pages: Vec<Vec<u8>>,
    empty: Vec<u8>,
}

async fn services(State(served): State<Arc<Served>>, Query(q): Query<HashMap<String, String>>) -> impl IntoResponse {
    let json = [(axum::http::header::CONTENT_TYPE, "application/json")];
    if q.contains_key("modified_after") {
        return (json, served.empty.clone());
    }
    let page: usize = q.get("page").and_then(|p| p.parse().ok()).unwrap_or(1);
    let body = served.pages.get(page.saturating_sub(1)).cloned().unwrap_or_else(|| served.empty.clone());
    (json, body)
}

fn page(items: &[serde_json::Value], number: usize, total_pages: usize, total: usize) -> Result<Vec<u8>> {
    Ok(serde_json::to_vec(&serde_json::json!({
        "total_items": total, "total_pages": total_pages, "page_number": number, "size": items.len(),
        "first_page": number == 1, "last_page": number >= total_pages, "empty": items.is_empty(),
        "contents": items,
    }))?)
}

struct Times {
    import: Duration,
    pull: Duration,
    full_again: Duration,
    changes: Duration,
}

pub async fn run(args: Vec<String>) -> Result<()> {
    let Some(flags) = crate::flags(args, USAGE)? else { return Ok(()) };
    let (mut services_n, mut runs, mut per_page) = (100_000usize, 3usize, 50u32);
    for (flag, value) in flags {
        match flag.as_str() {
            "--services" => services_n = value.parse().context("--services")?,
            "--runs" => runs = value.parse().context("--runs")?,
            "--per-page" => per_page = value.parse().context("--per-page")?,
            other => bail!("unknown option {other}\n{USAGE}"),
        }
    }
    if services_n == 0 || runs == 0 || per_page == 0 {
        bail!("--services, --runs and --per-page must be at least 1");
    }
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let dir = tempfile::tempdir()?;

    // The same records as a file and as a feed.
    let batch = kith_demo::generate(&kith_demo::DemoOptions { seed: 42, services: services_n, now: clock.now() });
    let related = Related {
        organizations: batch.organizations.iter().map(|o| (o.id, o.clone())).collect(),
        locations: batch.locations.iter().map(|l| (l.id, l.clone())).collect(),
        taxonomy_terms: batch.taxonomy_terms.iter().map(|t| (t.id, t.clone())).collect(),
    };
    let nested: Vec<serde_json::Value> = batch
        .services
        .iter()
        .map(|s| serde_json::to_value(nest_service(s.clone(), &related)))
        .collect::<Result<_, _>>()?;
    let file = dir.path().join("services.json");
    let mut out = std::io::BufWriter::new(std::fs::File::create(&file)?);
    out.write_all(&page(&nested, 1, 1, nested.len())?)?;
    out.flush()?;
    drop(out);
    let per = per_page as usize;
    let total_pages = nested.len().div_ceil(per);
    let pages = nested
        .chunks(per)
        .enumerate()
        .map(|(i, items)| page(items, i + 1, total_pages, nested.len()))
        .collect::<Result<Vec<_>>>()?;
    let served = Arc::new(Served { pages, empty: page(&[], 1, 1, 0)? });
    drop(nested);

    let app = axum::Router::new().route("/api/services", axum::routing::get(services)).with_state(served);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}/api", listener.local_addr()?);
    tokio::spawn(async move { axum::serve(listener, app).await });

    let politeness = Politeness { per_page, ..Politeness::default() };
    let mut all = Vec::new();
    for run in 0..runs {
        let store: Arc<dyn Store> = Arc::new(
            kith_store::sqlite::SqliteStore::open(&dir.path().join(format!("import-{run}.db")), clock.clone()).await?,
        );
        let started = Instant::now();
        let imported = Imports::new(store.clone()).files(vec![file.clone()], false, vec![], |_| {}).await?;
        let import = started.elapsed();
        if imported.written.services as usize != services_n {
            bail!("the import wrote {} services, not {services_n}", imported.written.services);
        }
        drop(store);

        let store: Arc<dyn Store> = Arc::new(
            kith_store::sqlite::SqliteStore::open(&dir.path().join(format!("feed-{run}.db")), clock.clone()).await?,
        );
        let feeds = Feeds::with_politeness(store.clone(), clock.clone(), politeness.clone())?;
        let feed = feeds.add(&url, Some("bench"), vec![], None, None).await?;
        let timed = |what: &'static str, pull: kith_domain::feed::FeedPull, took: Duration| -> Result<Duration> {
            if let Some(e) = pull.error {
                bail!("the {what} failed: {e}");
            }
            eprintln!("run {run}: {what}: {took:.2?}, {}", pull.summary());
            Ok(took)
        };
        let started = Instant::now();
        let first = feeds.pull(&feed).await?;
        let pull = timed("first pull", first.clone(), started.elapsed())?;
        if first.written as usize != services_n {
            bail!("the first pull wrote {} services, not {services_n}", first.written);
        }
        let started = Instant::now();
        let again = feeds.pull_everything(&feed).await?;
        let full_again = timed("full pull again", again.clone(), started.elapsed())?;
        if again.written != 0 {
            bail!("pulling an unchanged feed wrote {} services", again.written);
        }
        let started = Instant::now();
        let changes = feeds.pull(&feed).await?;
        if changes.full {
            bail!("the third pull should have asked only for changes");
        }
        let changes = timed("pull of changes", changes, started.elapsed())?;
        eprintln!("run {run}: import {import:.2?}");
        all.push(Times { import, pull, full_again, changes });
    }

    let median = |mut xs: Vec<f64>| {
        xs.sort_by(f64::total_cmp);
        xs[xs.len() / 2]
    };
    let secs = |f: fn(&Times) -> Duration| median(all.iter().map(|t| f(t).as_secs_f64()).collect());
    let ratio = |f: fn(&Times) -> f64| median(all.iter().map(f).collect());
    println!(
        "\nFeed of {services_n} generated services, {per_page} a page ({total_pages} pages), SQLite, medians of {runs} runs:\n"
    );
    println!("| | median | ratio (pair by pair) | goal |");
    println!("|---|---|---|---|");
    println!("| `kith import` of the file | {:.2} s | 1 | |", secs(|t| t.import));
    println!(
        "| first pull | {:.2} s | **{:.2}×** the import | ≤ 1.5× |",
        secs(|t| t.pull),
        ratio(|t| t.pull.as_secs_f64() / t.import.as_secs_f64())
    );
    println!(
        "| pull of changes, nothing changed (`modified_after`) | {:.3} s | **{:.3}×** the first pull | ≤ 0.2× |",
        secs(|t| t.changes),
        ratio(|t| t.changes.as_secs_f64() / t.pull.as_secs_f64())
    );
    println!(
        "| full pull again, nothing changed (`--full`) | {:.2} s | **{:.2}×** the first pull | |",
        secs(|t| t.full_again),
        ratio(|t| t.full_again.as_secs_f64() / t.pull.as_secs_f64())
    );
    Ok(())
}
