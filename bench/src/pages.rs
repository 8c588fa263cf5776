//! `kith-bench pages`: how long the web app takes to render its pages server-side, at the
//! demo size, in process (the router called directly, no network): the search page empty
//! and with results, a service page, the shortlist and its print view.
//!
//! The goal is a median of 10 ms or less for each. Each page is rendered `--rounds` times
//! after a warm-up, with the demo directory on SQLite and its search index in memory;
//! medians and 99th percentiles are reported.

use anyhow::{Context, Result};
use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use http_body_util::BodyExt;
use kith_domain::{Clock, SystemClock};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tower::ServiceExt;

const USAGE: &str = "usage: kith-bench pages [--rounds N]

  --rounds N   renders of each page (default 400)";

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

pub async fn run(args: Vec<String>) -> Result<()> {
    let Some(flags) = crate::flags(args, USAGE)? else { return Ok(()) };
    let mut rounds = 400usize;
    for (flag, value) in flags {
        match flag.as_str() {
            "--rounds" => rounds = value.parse().context("--rounds takes a number")?,
            other => anyhow::bail!("unknown flag {other}\n{USAGE}"),
        }
    }

    let dir = tempfile::tempdir()?;
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let store: Arc<dyn kith_store::Store> =
        Arc::new(kith_store::sqlite::SqliteStore::open(&dir.path().join("kith.db"), clock.clone()).await?);
    let batch = kith_demo::generate(&kith_demo::DemoOptions::new(clock.now()));
    let geo = kith_demo::geography::geography(&batch, 2026);
    store.put_postcodes(geo.postcodes).await?;
    store.put_places(geo.places).await?;
    let services = batch.services.len();
    store.write_batch(batch).await?;
    let search = Arc::new(kith_search::SearchIndex::in_memory()?);
    let state = kith_web::AppState::new(kith_app::App::new(store.clone(), search));
    state.catch_up().await;
    let app = kith_web::router(state);

    // A shortlist of four, from the results.
    let first = app.clone().oneshot(Request::get("/?where=G31+2ER&q=lonely").body(Body::empty())?).await?;
    let html = String::from_utf8(first.into_body().collect().await?.to_bytes().to_vec())?;
    let ids: Vec<&str> = html.match_indices("id=\"service-").take(4).map(|(at, _)| &html[at + 12..at + 48]).collect();
    let cookie = format!("kith_shortlist={}", ids.iter().map(|id| id.replace('-', "")).collect::<Vec<_>>().join("."));

    let pages = [
        ("Search page, empty", "/".to_owned()),
        ("Search: postcode + \"lonely\"", "/?where=G31+2ER&q=lonely".to_owned()),
        ("Search: place + need + filters", "/?where=Kirkcaldy&need=money&free=yes&open=week".to_owned()),
        ("Service page", format!("/services/{}", ids[0])),
        ("Shortlist (4)", "/shortlist".to_owned()),
        ("Print view (4)", "/shortlist/print".to_owned()),
    ];
    println!("Page render times at the demo size ({services} services), {rounds} renders each, in process:\n");
    println!("| Page | p50 | p99 | size |");
    println!("|---|---:|---:|---:|");
    for (name, uri) in pages {
        let mut times = Vec::with_capacity(rounds);
        let mut size = 0;
        for round in 0..rounds + 20 {
            let request = Request::get(uri.as_str()).header(header::COOKIE, &cookie).body(Body::empty())?;
            let started = Instant::now();
            let response = app.clone().oneshot(request).await?;
            anyhow::ensure!(response.status() == StatusCode::OK, "{uri} answered {}", response.status());
            let body = response.into_body().collect().await?.to_bytes();
            let took = started.elapsed();
            if round >= 20 {
                times.push(took);
                size = body.len();
            }
        }
        times.sort();
        println!(
            "| {name} | {:.2} ms | {:.2} ms | {:.1} KB |",
            percentile(&times, 0.5).as_secs_f64() * 1e3,
            percentile(&times, 0.99).as_secs_f64() * 1e3,
            size as f64 / 1024.0
        );
    }
    Ok(())
}
