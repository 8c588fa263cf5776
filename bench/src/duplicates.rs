//! `kith-bench duplicates`: finding duplicates across a directory of N generated services
//! (1,000,000 by default) against importing it, in the same run on a fresh SQLite database.
//!
//! Issue 21's figure: duplicate detection over 1M services takes at most 2× the import.
//! Each run imports the generated file through `Imports::files` (as `kith import`), then
//! times `Duplicates::detect` over everything stored: every organisation and service read
//! once, grouped by keys, certain matches merged and likely ones queued.

use anyhow::{Context, Result, bail};
use kith_app::duplicates::Duplicates;
use kith_app::imports::Imports;
use kith_domain::{Clock, SystemClock};
use kith_store::Store;
use std::sync::Arc;
use std::time::Instant;

const USAGE: &str = "usage: kith-bench duplicates [--services N] [--runs R]

  --services N    services to generate and import (default 1000000)
  --runs R        runs; the median ratio is reported (default 1)";

pub async fn run(args: Vec<String>) -> Result<()> {
    let Some(flags) = crate::flags(args, USAGE)? else { return Ok(()) };
    let (mut services, mut runs) = (1_000_000usize, 1usize);
    for (flag, value) in flags {
        match flag.as_str() {
            "--services" => services = value.parse().context("--services")?,
            "--runs" => runs = value.parse().context("--runs")?,
            other => bail!("unknown option {other}\n{USAGE}"),
        }
    }
    if services == 0 || runs == 0 {
        bail!("--services and --runs must be at least 1");
    }
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let dir = tempfile::tempdir()?;
    let file = dir.path().join("services.json");
    let bytes = crate::write_feed(&file, services, clock.now())?;
    eprintln!("generated {services} services ({:.0} MB)", bytes as f64 / 1e6);
    let mut rows = Vec::new();
    for run in 0..runs {
        let db = dir.path().join(format!("dups-{run}.db"));
        let store: Arc<dyn Store> = Arc::new(kith_store::sqlite::SqliteStore::open(&db, clock.clone()).await?);
        let started = Instant::now();
        let imported = Imports::new(store.clone()).files(vec![file.clone()], false, vec![], |_| {}).await?;
        let import = started.elapsed();
        if imported.written.services as usize != services {
            bail!("the import wrote {} services, not {services}", imported.written.services);
        }
        let started = Instant::now();
        let detected = Duplicates::new(store.clone(), clock.clone()).detect().await?;
        let detect = started.elapsed();
        eprintln!("run {run}: import {import:.2?}, detection {detect:.2?}: {}", detected.summary());
        rows.push((import, detect));
        drop(store);
        let _ = std::fs::remove_file(&db);
    }
    let mut ratios: Vec<f64> = rows.iter().map(|(i, d)| d.as_secs_f64() / i.as_secs_f64()).collect();
    ratios.sort_by(f64::total_cmp);
    let (import, detect) = rows[rows.len() / 2];
    println!("\nDuplicate detection over {services} generated services, SQLite, {runs} run(s):\n");
    println!("| | time | ratio | goal |");
    println!("|---|---|---|---|");
    println!("| `kith import` of the file | {:.1} s | 1 | |", import.as_secs_f64());
    println!(
        "| duplicate detection over what was imported | {:.1} s | **{:.2}×** the import | ≤ 2× |",
        detect.as_secs_f64(),
        ratios[ratios.len() / 2]
    );
    Ok(())
}
