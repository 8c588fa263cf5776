//! What each command does. Results go to stdout; progress, warnings and errors to stderr.
#![allow(clippy::print_stdout, clippy::print_stderr)] // A command-line program talks on its streams.

use crate::cli::{Cli, Command, ExportFormat, Global, KeysCommand, Listen};
use anyhow::{Context, Result, bail};
use indicatif::{ProgressBar, ProgressStyle};
use kith_app::imports::Imports;
use kith_datasets::ImportReport;
use kith_domain::{Clock, DirectoryBatch, SystemClock};
use kith_store::Store;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

/// Rejections printed to the terminal; `--report` has them all.
const SHOWN_REJECTIONS: usize = 25;

pub async fn run(cli: Cli) -> Result<ExitCode> {
    let clock: Arc<dyn Clock> = match &cli.global.test_clock_file {
        Some(file) => Arc::new(kith_domain::clock::OffsetFileClock::new(file.clone())),
        None => Arc::new(SystemClock),
    };
    match cli.command {
        Command::Serve(listen) => {
            let store = open(&cli.global, clock.clone()).await?;
            serve(store, clock, &cli.global, &listen).await?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Demo { listen, load_only, services, seed, caseload } => {
            let store = open(&cli.global, clock.clone()).await?;
            // Dates are relative to today (so some listings are stale), and the same all day,
            // so loading the demo twice in a day changes nothing.
            let today = clock.now().date_naive().and_time(chrono::NaiveTime::MIN).and_utc();
            let options = kith_demo::DemoOptions { seed, services, now: today };
            let batch = kith_demo::generate(&options);
            let geography = kith_demo::geography::geography(&batch, seed);
            let (services, orgs, places) = (batch.services.len(), batch.organizations.len(), batch.locations.len());
            let postcodes = geography.postcodes.len();
            store.put_postcodes(geography.postcodes).await.context("loading the demo postcodes")?;
            store.put_places(geography.places).await.context("loading the demo place names")?;
            store.put_deprivation(geography.deprivation).await.context("loading the demo deprivation ranks")?;
            let written = write(store.clone(), batch, "Loading the demo directory").await?;
            println!(
                "Demo directory: {services} services from {orgs} organisations at {places} places, and {postcodes} postcodes ({} new or changed records)",
                written.total()
            );
            let keyring = match caseload {
                0 => None,
                _ => match crate::accounts::keyring(&cli.global, &*store).await {
                    Ok(k) => Some(k),
                    Err(e) => {
                        // The directory is loaded; the caseload needs the keys that seal it.
                        eprintln!("Demo caseload skipped: {e:#}");
                        None
                    }
                },
            };
            if let Some(keyring) = keyring {
                // Seeding writes referrals, not the directory: an index of its own, in
                // memory, leaves the real one to the server.
                let index = Arc::new(kith_search::SearchIndex::in_memory().context("creating a search index")?);
                let app = kith_app::App::new(store.clone(), index).with_keyring(keyring);
                let bar = spinner(format!("Seeding a synthetic caseload of {caseload}"));
                let seeded = kith_app::demo_caseload::seed(&app, seed, caseload, 180, clock.now())
                    .await
                    .context("seeding the demo caseload")?;
                bar.finish_and_clear();
                match seeded {
                    Some(log) => println!(
                        "Demo caseload: {} synthetic signposts and referrals at two practices, followed up",
                        log.len()
                    ),
                    None => println!("Demo caseload: already there"),
                }
            }
            if !load_only {
                serve(store, clock, &cli.global, &listen).await?;
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Import { paths, map, strict, report, areas } => {
            import(&cli.global, clock, &paths, map.as_deref(), strict, areas, report.as_deref()).await
        }
        Command::Search { query, near, radius, limit, explain } => {
            search(&cli.global, clock, &query, near.as_deref(), radius, limit, explain).await
        }
        Command::Backup { file } => {
            kith_store::backup::backup(cli.global.database_url.as_deref(), &cli.global.data_dir, &file)
                .await
                .context("the backup failed")?;
            let key = cli.global.key_file.clone().unwrap_or_else(|| cli.global.data_dir.join("keys.txt"));
            println!(
                "Backed up to {}. Keep a copy of the key file ({}) apart from it: the backup holds personal fields sealed with it.",
                file.display(),
                key.display()
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Restore { file } => {
            kith_store::backup::restore(cli.global.database_url.as_deref(), &cli.global.data_dir, &file)
                .await
                .context("the restore failed")?;
            // Opening migrates a backup made by an older version, and says what is there.
            let store = open(&cli.global, clock).await?;
            let counts = store.counts().await?;
            let key = cli.global.key_file.clone().unwrap_or_else(|| cli.global.data_dir.join("keys.txt"));
            println!(
                "Restored {} services and {} organisations from {}. Put the key file of the instance that made the backup at {} (or give it with --key-file) before starting Kith; the search index is rebuilt when it starts.",
                counts.services,
                counts.organizations,
                file.display(),
                key.display()
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Reindex => {
            let store = open(&cli.global, clock).await?;
            let index = open_index(&cli.global)?;
            let bar = ProgressBar::new(store.counts().await?.services).with_message("Indexing services");
            bar.set_style(
                ProgressStyle::with_template("{msg} [{bar:30}] {pos}/{len} ({per_sec}, {eta} left)")
                    .unwrap_or_else(|_| ProgressStyle::default_bar())
                    .progress_chars("=> "),
            );
            let n = kith_search::sync::rebuild(&*store, &index, &mut |done, _| bar.set_position(done))
                .await
                .context("rebuilding the search index failed")?;
            bar.finish_and_clear();
            println!("Indexed {n} services in {}", index_dir(&cli.global).display());
            Ok(ExitCode::SUCCESS)
        }
        Command::Duplicates(crate::cli::DuplicatesCommand::Detect) => {
            let store = open(&cli.global, clock.clone()).await?;
            let bar = spinner("Looking for duplicates".to_owned());
            let detected = kith_app::duplicates::Duplicates::new(store, clock).detect().await;
            bar.finish_and_clear();
            println!("{}", detected.context("finding duplicates failed")?.summary());
            Ok(ExitCode::SUCCESS)
        }
        Command::Feeds(command) => {
            let store = open(&cli.global, clock.clone()).await?;
            feeds(store, clock, command).await
        }
        Command::Geo(command) => {
            let store = open(&cli.global, clock).await?;
            crate::geo::run(&*store, command).await
        }
        Command::Users(command) => {
            let store = open(&cli.global, clock.clone()).await?;
            crate::accounts::users(&cli.global, store, clock, command).await
        }
        Command::Orgs(command) => {
            let store = open(&cli.global, clock).await?;
            crate::accounts::orgs(store, command).await
        }
        Command::Keys(KeysCommand::New { file }) => crate::accounts::new_key_file(&file),
        Command::Keys(KeysCommand::Rotate) => {
            let store = open(&cli.global, clock.clone()).await?;
            crate::accounts::rotate_keys(&cli.global, store, clock).await
        }
        Command::Export { format: ExportFormat::Hsds, dir } => {
            let store = open(&cli.global, clock).await?;
            let bar = spinner(format!("Exporting to {}", dir.display()));
            let summary = kith_datasets::export_hsds(&*store, &dir, &mut |n| bar.inc(n))
                .await
                .with_context(|| format!("export to {} failed", dir.display()))?;
            bar.finish_and_clear();
            println!(
                "Exported {} services, {} organisations, {} locations, {} taxonomies and {} taxonomy terms to {}",
                summary.services,
                summary.organizations,
                summary.locations,
                summary.taxonomies,
                summary.taxonomy_terms,
                dir.display()
            );
            Ok(ExitCode::SUCCESS)
        }
    }
}

pub(crate) async fn open(global: &Global, clock: Arc<dyn Clock>) -> Result<Arc<dyn Store>> {
    let store = kith_store::open(global.database_url.as_deref(), &global.data_dir, clock).await?;
    Ok(store)
}

pub(crate) fn spinner(message: String) -> ProgressBar {
    let bar = ProgressBar::new_spinner().with_message(message);
    bar.enable_steady_tick(Duration::from_millis(120));
    bar
}

fn records_bar(message: &str) -> ProgressBar {
    let bar = ProgressBar::new(0).with_message(message.to_owned());
    bar.set_style(
        ProgressStyle::with_template("{msg} [{bar:30}] {pos}/{len} records ({per_sec}, {eta} left)")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    bar
}

async fn write(store: Arc<dyn Store>, batch: DirectoryBatch, message: &str) -> Result<kith_store::WriteSummary> {
    let bar = records_bar(message);
    bar.set_length(batch.len() as u64);
    let written = Imports::new(store)
        .write_batch(batch, &mut |done, _| bar.set_position(done as u64))
        .await
        .context("writing to the database failed; records written before the failure are kept")?;
    bar.finish_and_clear();
    Ok(written)
}

async fn import(
    global: &Global,
    clock: Arc<dyn Clock>,
    paths: &[std::path::PathBuf],
    map: Option<&std::path::Path>,
    strict: bool,
    areas: Vec<kith_domain::geo::WholeArea>,
    report_path: Option<&std::path::Path>,
) -> Result<ExitCode> {
    if map.is_none()
        && let Some(sheet) = paths.iter().find(|p| p.extension().is_some_and(|e| e.eq_ignore_ascii_case("csv")))
    {
        bail!(
            "{} is a spreadsheet: give the map of its columns with --map MAP.toml (see docs/IMPORT-EXPORT.md)",
            sheet.display()
        );
    }
    let store = open(global, clock.clone()).await?;
    let duplicates = kith_app::duplicates::Duplicates::new(store.clone(), clock);
    let imported = match map {
        Some(map) => {
            let bar = spinner(format!(
                "Importing {}",
                paths.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", ")
            ));
            let imported = Imports::new(store).sheets(paths, map, strict, &areas).await;
            bar.finish_and_clear();
            imported
        }
        None => {
            let bar = records_bar("Importing");
            let shown = bar.clone();
            let imported = Imports::new(store)
                .files(paths.to_vec(), strict, areas, move |at| {
                    shown.set_message(format!("Importing {}", at.source));
                    shown.set_length(at.total as u64);
                    shown.set_position(at.done as u64);
                })
                .await;
            bar.finish_and_clear();
            imported
        }
    };
    let imported = imported?;
    let report = &imported.report;
    if let Some(path) = report_path {
        let json = serde_json::to_vec_pretty(report).context("cannot write the report")?;
        std::fs::write(path, json).with_context(|| format!("cannot write the report to {}", path.display()))?;
    }
    // A sheet's warnings are few and about rows a person can fix: each is shown.
    let wrote_any = !imported.refused_as_strict(strict) && report.accepted > 0;
    print_problems(report, report_path.is_some(), map.is_some(), wrote_any);
    if map.is_some() && report.records > 0 {
        for note in &report.notes {
            eprintln!("{note}");
        }
    }
    if report.records == 0 {
        for note in &report.notes {
            eprintln!("{note}");
        }
        bail!("no records found in {}", paths.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", "));
    }
    let rejected = report.rejected.len();
    if imported.refused_as_strict(strict) {
        bail!("nothing imported: {rejected} of {} records are invalid and --strict is set", report.records);
    }
    if report.accepted == 0 {
        bail!("nothing imported: every one of the {rejected} records was rejected");
    }
    let w = imported.written;
    println!(
        "Imported {} of {} records ({rejected} rejected). New or changed: {} services, {} organisations, {} locations, {} taxonomy terms, {} taxonomies.",
        report.accepted, report.records, w.services, w.organizations, w.locations, w.taxonomy_terms, w.taxonomies
    );
    if report.placed > 0 {
        println!(
            "{} services with no venue or area of their own are listed as serving the whole place given with --area.",
            report.placed
        );
    }
    if let Some(detected) = duplicates.detect_logged().await
        && detected != kith_app::duplicates::Detected::default()
    {
        println!("{}", detected.summary());
    }
    Ok(if rejected == 0 { ExitCode::SUCCESS } else { ExitCode::from(2) })
}

async fn feeds(store: Arc<dyn Store>, clock: Arc<dyn Clock>, command: crate::cli::FeedsCommand) -> Result<ExitCode> {
    use crate::cli::FeedsCommand;
    let feeds = kith_app::feeds::Feeds::new(store, clock)?;
    match command {
        FeedsCommand::Add { url, name, areas, every, withdraw_after } => {
            let feed = feeds.add(&url, name.as_deref(), areas, Some(every), Some(withdraw_after)).await?;
            println!(
                "Added the feed {} ({}/services), pulled every {}. `kith feeds pull {}` pulls it now; `kith serve` pulls it when due.",
                feed.name,
                feed.url,
                feed.every_text(),
                feed.name
            );
        }
        FeedsCommand::Pull { name, full } => {
            let chosen = match name {
                Some(name) => vec![feeds.named(&name).await?],
                None => feeds.list().await?.into_iter().map(|s| s.feed).collect(),
            };
            if chosen.is_empty() {
                bail!("there are no feeds to pull; add one with `kith feeds add URL`");
            }
            let mut failed = 0;
            for feed in chosen {
                eprintln!("Pulling {} ...", feed.name);
                let pull = if full { feeds.pull_everything(&feed).await? } else { feeds.pull(&feed).await? };
                match &pull.error {
                    None => println!(
                        "{} ({} {}, {}): {}.",
                        feed.name,
                        pull.pages,
                        if pull.pages == 1 { "page" } else { "pages" },
                        pull.took(),
                        pull.summary()
                    ),
                    Some(e) => {
                        failed += 1;
                        eprintln!("{}: the pull failed and nothing from it was written: {e}", feed.name);
                    }
                }
                for problem in pull.problems.iter().take(SHOWN_REJECTIONS) {
                    eprintln!("refused: {problem}");
                }
            }
            if failed > 0 {
                return Ok(ExitCode::from(1));
            }
        }
        FeedsCommand::List => {
            let listed = feeds.list().await?;
            if listed.is_empty() {
                println!("No feeds yet. Add one with `kith feeds add URL --area CODE`.");
            }
            for s in listed {
                let last = match &s.last {
                    None => "never pulled".to_owned(),
                    Some(p) => match &p.error {
                        None => format!("last pulled {}: {}", p.started_at.format("%-d %b %Y %H:%M"), p.summary()),
                        Some(e) => format!("last pull {} failed: {e}", p.started_at.format("%-d %b %Y %H:%M")),
                    },
                };
                println!("{}\t{}/services\tevery {}\t{last}", s.feed.name, s.feed.url, s.feed.every_text());
            }
        }
        FeedsCommand::Remove { name } => {
            feeds.remove(&name).await?;
            println!("Removed the feed {name}. Its services stay in the directory.");
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn print_problems(report: &ImportReport, has_report_file: bool, each_warning: bool, wrote_any: bool) {
    for r in report.rejected.iter().take(SHOWN_REJECTIONS) {
        eprintln!("rejected: {r}");
    }
    if each_warning {
        for w in report.warnings.iter().take(SHOWN_REJECTIONS) {
            eprintln!("warning: {w}");
        }
    }
    if report.rejected.len() > SHOWN_REJECTIONS {
        let more = report.rejected.len() - SHOWN_REJECTIONS;
        let hint = if has_report_file { "see the report file" } else { "use --report FILE to see them all" };
        eprintln!("... and {more} more rejected records ({hint})");
    }
    if !report.warnings.is_empty() && (!each_warning || report.warnings.len() > SHOWN_REJECTIONS) {
        let hint = if has_report_file { "listed in the report file" } else { "use --report FILE to see them" };
        let about = if wrote_any { "records that were imported" } else { "records (none was imported)" };
        eprintln!("{} warnings about {about} ({hint})", report.warnings.len());
    }
}

fn index_dir(global: &Global) -> std::path::PathBuf {
    global.data_dir.join("index")
}

/// The search index in the data directory. Each instance keeps its own.
fn open_index(global: &Global) -> Result<Arc<kith_search::SearchIndex>> {
    let dir = index_dir(global);
    let model_dir = global.model_dir.clone().unwrap_or_else(|| global.data_dir.join("model"));
    let meaning = kith_search::Meaning::load(&model_dir)
        .with_context(|| format!("cannot read the word vectors in {}", model_dir.display()))?;
    match &meaning {
        Some(m) => tracing::info!("search reads meaning with {} word vectors from {}", m.words(), model_dir.display()),
        None => tracing::warn!(
            "no word vectors in {}: searching by words alone (install them with scripts/install-model)",
            model_dir.display()
        ),
    }
    let index = kith_search::SearchIndex::open_with(&dir, meaning.map(Arc::new))
        .with_context(|| format!("cannot open the search index in {}", dir.display()))?;
    Ok(Arc::new(index))
}

/// Reads the leaflets' fonts for other scripts, saying once what was found.
fn use_fonts(global: &Global) {
    let dir = global.fonts_dir.clone().unwrap_or_else(|| global.data_dir.join("fonts"));
    match kith_web::use_leaflet_fonts(&dir) {
        Some(found) if found.faces > 0 => {
            tracing::info!(
                "leaflets print with {} fonts from {}: {}",
                found.faces,
                dir.display(),
                found.families.join(", ")
            );
        }
        _ => tracing::warn!(
            "no fonts in {}: leaflets print Latin, Greek and Cyrillic, and other characters as a mark (install them with scripts/install-fonts)",
            dir.display()
        ),
    }
}

async fn serve(store: Arc<dyn Store>, clock: Arc<dyn Clock>, global: &Global, listen: &Listen) -> Result<()> {
    // The port first: a server that cannot listen should say so and nothing else.
    let listener = tokio::net::TcpListener::bind(listen.listen).await.with_context(|| {
        format!("cannot listen on {}; is another program using it? Choose another with --listen", listen.listen)
    })?;
    let index = open_index(global)?;
    use_fonts(global);
    let keyring = crate::accounts::keyring(global, &*store).await?;
    let public_url = listen.public_url.clone().unwrap_or_else(|| format!("http://{}", listen.listen));
    let mut app = kith_app::App::new(store.clone(), index)
        .with_clock(clock)
        .with_keyring(keyring)
        .with_public_url(&public_url)
        .with_follow_up_days(listen.follow_up_days)
        .with_search_cache_bytes(listen.search_cache_mb as usize * (1 << 20));
    if let Some(oidc) = oidc(listen)? {
        app = app.with_oidc(oidc);
    }
    let senders = senders(global, listen)?;
    // The index catches up in the follower's first round, while the server answers: from
    // the index it has, and not ready (`/readyz`) until it has caught up.
    let jobs = kith_app::jobs::Jobs::start(&app, senders, kith_app::jobs::Schedule::default());

    let engine = store.engine();
    let rendered = app.rendered.clone();
    let router = kith_web::router(kith_web::AppState::new(app).with_trusted_proxy(listen.trust_proxy));
    println!("Kith is serving on http://{} ({engine:?}). Press Ctrl-C to stop.", listen.listen);
    let grace = Duration::from_secs(u64::from(listen.shutdown_grace));
    let limits = kith_web::serve::Limits {
        max_connections: listen.max_connections as usize,
        header_timeout: Duration::from_secs(u64::from(listen.header_timeout)),
        shutdown_grace: grace,
    };
    // One signal stops both: the server stops accepting and the jobs stop starting
    // rounds, and what either has under way gets the same grace, side by side.
    let (stopping, mut stopped) = tokio::sync::watch::channel(false);
    let stopping = Arc::new(stopping);
    let on_signal = stopping.clone();
    let server = async move {
        let served = kith_web::serve::serve(listener, router, limits, async move {
            shutdown().await;
            tracing::info!("asked to stop: finishing the requests and jobs under way");
            let _ = on_signal.send(true);
        })
        .await;
        // However the server stopped, the jobs stop with it.
        let _ = stopping.send(true);
        served
    };
    let jobs_done = async move {
        let _ = stopped.wait_for(|s| *s).await;
        jobs.stop(grace).await
    };
    let (served, jobs_finished) = tokio::join!(server, jobs_done);
    served.context("the server stopped")?;
    let kept = rendered.stats();
    tracing::info!(
        services = kept.services,
        bytes = kept.bytes,
        hits = kept.hits,
        misses = kept.misses,
        jobs_finished,
        "stopped; services' JSON kept for search answers at shutdown"
    );
    Ok(())
}

/// Where messages go: GOV.UK Notify when a key is given, SMTP when a URL is, otherwise
/// files in the outbox folder of the data directory.
fn senders(global: &Global, listen: &Listen) -> Result<kith_app::notify::Senders> {
    use kith_app::notify::{FileMailer, NotifyMailer, Senders, SmtpMailer};
    let mut files = FileMailer::new(global.data_dir.join("outbox"));
    files.from.clone_from(&listen.mail_from);
    let files = Arc::new(files);
    if let (Some(key), Some(template)) = (&listen.notify_api_key, &listen.notify_email_template) {
        let mut notify = NotifyMailer::new(key, template, &listen.notify_url)
            .and_then(|n| n.with_senders(listen.notify_sms_sender.as_deref(), listen.notify_reply_to.as_deref()))
            .map_err(anyhow::Error::msg)?;
        let texts = listen.notify_sms_template.is_some();
        if let Some(sms) = &listen.notify_sms_template {
            notify = notify.with_sms_template(sms).map_err(anyhow::Error::msg)?;
        }
        let notify = Arc::new(notify);
        let text: Option<Arc<dyn kith_app::notify::Texter>> = if texts { Some(notify.clone()) } else { None };
        return Ok(Senders { mail: notify, text });
    }
    if let Some(url) = &listen.smtp_url {
        let smtp = SmtpMailer::new(url, &listen.mail_from).map_err(anyhow::Error::msg)?;
        return Ok(Senders { mail: Arc::new(smtp), text: None });
    }
    Ok(Senders { mail: files.clone(), text: Some(files) })
}

/// The OIDC provider, when `--oidc-issuer` is given.
fn oidc(listen: &Listen) -> Result<Option<kith_app::oidc::Oidc>> {
    use kith_app::oidc::{ClientKey, JwsAlg, Oidc, OidcConfig};
    let args = &listen.oidc;
    let (Some(issuer), Some(client_id), Some(key_file), Some(public_url)) =
        (&args.oidc_issuer, &args.oidc_client_id, &args.oidc_key_file, &listen.public_url)
    else {
        return Ok(None);
    };
    let alg = JwsAlg::parse(&args.oidc_alg)
        .with_context(|| format!("--oidc-alg {} is not one of RS256, RS384, RS512", args.oidc_alg))?;
    let pem = std::fs::read_to_string(key_file)
        .with_context(|| format!("cannot read the OIDC key file {}", key_file.display()))?;
    let key = ClientKey::from_pem(&pem, &args.oidc_key_id, alg)?;
    let config = OidcConfig {
        issuer: issuer.clone(),
        client_id: client_id.clone(),
        redirect_url: format!("{}/signin/oidc/callback", public_url.trim_end_matches('/')),
        key,
        label: args.oidc_label.clone(),
        scopes: args.oidc_scopes.clone(),
    };
    Ok(Some(Oidc::new(config)?))
}

async fn shutdown() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        if let Ok(mut s) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            s.recv().await;
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
}

/// `kith search`: the web search's answer on the command line, with `--explain`.
async fn search(
    global: &Global,
    clock: Arc<dyn Clock>,
    query: &str,
    near: Option<&str>,
    radius: f64,
    limit: u16,
    explain: bool,
) -> Result<ExitCode> {
    let store = open(global, clock).await?;
    let index = open_index(global)?;
    kith_search::sync::catch_up(&*store, &index).await.context("bringing the search index up to date")?;
    let near = match near {
        Some(place) => Some(
            kith_app::locate::locate(&*store, place)
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))
                .with_context(|| format!("cannot search around {place:?}"))?
                .near(radius),
        ),
        None => None,
    };
    let q = kith_search::SearchQuery {
        text: Some(query.to_owned()),
        near,
        limit: usize::from(limit),
        facets: false,
        ..Default::default()
    };
    let results = index.search(&q).context("searching")?;
    if explain {
        for line in kith_search::explain_reading(&results.reading) {
            println!("  {line}");
        }
        println!();
    }
    if results.hits.is_empty() {
        println!("Nothing found for {query:?}. Try other words, or a wider --radius.");
        return Ok(ExitCode::SUCCESS);
    }
    let ids: Vec<uuid::Uuid> = results.hits.iter().map(|h| h.id).collect();
    let services: std::collections::HashMap<uuid::Uuid, kith_domain::hsds::Service> =
        store.services_by_ids(&ids).await?.into_iter().map(|s| (s.id, s)).collect();
    println!("{} found; the first {}:", results.total, results.hits.len());
    for (n, hit) in results.hits.iter().enumerate() {
        let name = services.get(&hit.id).map_or("(no longer listed)", |s| s.name.as_str());
        let org = services.get(&hit.id).and_then(|s| s.organization.as_ref()).map(|o| o.name.as_str());
        let where_ = match (hit.distance_km, hit.covers_area) {
            (Some(d), _) if d <= radius => format!(", {d:.1} km"),
            (_, true) => ", covers the area".to_owned(),
            _ => String::new(),
        };
        match org {
            Some(org) if org != name => println!("{:>3}. {name} ({org}){where_}", n + 1),
            _ => println!("{:>3}. {name}{where_}", n + 1),
        }
        if explain {
            println!("       {}", kith_search::explain_hit(hit, q.blend));
        }
    }
    Ok(ExitCode::SUCCESS)
}
