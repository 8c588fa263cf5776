//! `kith geo`: loading postcode geography and deprivation, and looking places up.
#![allow(clippy::print_stdout, clippy::print_stderr)] // A command-line program talks on its streams.

use crate::cli::{GeoCommand, IndexArg};
use crate::commands::spinner;
use anyhow::{Context, Result, bail};
use kith_datasets::geo::{GeoFileKind, GeoRead, KNOWN_LAYOUTS, detect, read_deprivation, read_places, read_postcodes};
use kith_domain::geo::DeprivationIndex;
use kith_store::Store;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::ExitCode;

/// Problems printed per file; the rest are counted.
const SHOWN: usize = 10;

pub async fn run(store: &dyn Store, command: GeoCommand) -> Result<ExitCode> {
    match command {
        GeoCommand::Import { files } => load_files(store, &files, None, false).await,
        GeoCommand::ImportDeprivation { files, index } => {
            let index = index.map(|i| match i {
                IndexArg::Imd2019 => DeprivationIndex::Imd2019,
                IndexArg::Imd2025 => DeprivationIndex::Imd2025,
                IndexArg::Simd2020v2 => DeprivationIndex::Simd2020v2,
            });
            load_files(store, &files, index, true).await
        }
        GeoCommand::Lookup { query } => lookup(store, &query).await,
    }
}

fn first_line(path: &Path) -> Result<String> {
    let file = std::fs::File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    let mut line = String::new();
    BufReader::new(file).read_line(&mut line).with_context(|| format!("cannot read {}", path.display()))?;
    Ok(line)
}

fn report<T>(name: &str, read: &GeoRead<T>) {
    for problem in read.rejected.iter().take(SHOWN) {
        eprintln!("{name}: rejected {problem}");
    }
    if read.rejected.len() > SHOWN {
        eprintln!("{name}: ... and {} more rejected rows", read.rejected.len() - SHOWN);
    }
    for note in &read.notes {
        eprintln!("{name}: note: {note}");
    }
}

async fn load_files(
    store: &dyn Store,
    files: &[std::path::PathBuf],
    index: Option<DeprivationIndex>,
    deprivation_only: bool,
) -> Result<ExitCode> {
    let mut any_rejected = false;
    for path in files {
        let name = path.display().to_string();
        let kind = match (index, detect(&first_line(path)?)) {
            (Some(i), _) => GeoFileKind::Deprivation(i),
            (None, Some(GeoFileKind::Deprivation(i))) => GeoFileKind::Deprivation(i),
            (None, Some(_)) if deprivation_only => {
                bail!("{name} is not a deprivation file; load it with `kith geo import`")
            }
            (None, Some(kind)) => kind,
            (None, None) => bail!("{name}: not a layout Kith knows; expected {KNOWN_LAYOUTS}"),
        };
        let open = || std::fs::File::open(path).with_context(|| format!("cannot open {name}"));
        let bar = spinner(format!("Loading {name}"));
        let (loaded, rejected, what) = match kind {
            GeoFileKind::Postcodes => {
                let read = read_postcodes(open()?, &name)?;
                report(&name, &read);
                if read.skipped > 0 {
                    eprintln!("{name}: left out {} terminated postcodes", read.skipped);
                }
                let rejected = read.rejected.len();
                (store.put_postcodes(read.rows).await?, rejected, "postcodes".to_owned())
            }
            GeoFileKind::Deprivation(i) => {
                let read = read_deprivation(open()?, &name, Some(i))?;
                report(&name, &read);
                let rejected = read.rejected.len();
                (store.put_deprivation(read.rows).await?, rejected, format!("{} ranks", i.label()))
            }
            GeoFileKind::Places => {
                let read = read_places(open()?, &name)?;
                report(&name, &read);
                let rejected = read.rejected.len();
                (store.put_places(read.rows).await?, rejected, "place names".to_owned())
            }
        };
        bar.finish_and_clear();
        any_rejected |= rejected > 0;
        println!("{name}: loaded {loaded} {what} ({rejected} rejected)");
    }
    let counts = store.geo_counts().await?;
    println!(
        "Kith now holds {} postcodes, {} deprivation ranks and {} place names.",
        counts.postcodes, counts.deprivation, counts.places
    );
    Ok(if any_rejected { ExitCode::from(2) } else { ExitCode::SUCCESS })
}

async fn lookup(store: &dyn Store, query: &str) -> Result<ExitCode> {
    let found = match kith_app::locate::locate(store, query).await {
        Ok(found) => found,
        Err(e) => bail!("{e}"),
    };
    println!("{}", serde_json::to_string_pretty(&found)?);
    Ok(ExitCode::SUCCESS)
}
