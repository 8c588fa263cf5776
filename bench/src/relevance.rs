//! `kith-bench relevance`: judged relevance on a real directory, against a naive BM25
//! floor in the same run.
//!
//! Bristol's ORUK v1 feed (`../shared/data/oruk-v1/bristol-services.json`) is imported as
//! a practice would load it (`--area E06000023`, Bristol's real postcodes), and each query
//! in `bench/relevance/queries.tsv` (said as patients, receptionists and link workers say
//! things) is searched from its postcode by:
//!
//! - **the floor**: BM25 over each service's name and description, every word of the query
//!   (tantivy's default tokenizer, no stemming, no vocabulary);
//! - **Kith, stage by stage**: the words as typed; then function words left out; then the
//!   needs vocabulary; then typos (everything, as Kith searches).
//!
//! The demo directory (`kith demo`'s, 450 services) is measured the same way with the
//! queries in `bench/relevance/demo-queries.tsv`, from its landmark postcodes.
//!
//! Each system's first 10 results are graded from `bench/relevance/judgements.tsv` (query,
//! service, grade 0 not relevant, 1 partly, 2 fits, and the service's name for the reader);
//! a result no one has judged counts as not relevant and is counted, so the file can be
//! extended (`--pool FILE` writes every unjudged result, ready to grade).
//!
//! Figures: **P@5** (the share of the first five results graded 1 or 2), **nDCG@10** (gain
//! 2^grade − 1, against the ideal order of everything judged for the query), **hit@10**
//! (a result graded 1 or 2 among the first ten), each over the queries with at least one
//! service judged relevant, and the **zero-result rate** over every query.
//! `bench/relevance/figures.tsv` holds the committed figures; the test in this module
//! (run in CI) fails when Kith's P@5 or nDCG@10 falls more than 0.02 below them.

use anyhow::{Context, Result, bail};
use kith_datasets::Importer;
use kith_domain::geo::WholeArea;
use kith_domain::{Clock, SystemClock};
use kith_search::sync::catch_up;
use kith_search::{Blend, Meaning, SearchIndex, SearchQuery, Understanding};
use kith_store::Store;
use std::collections::HashMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tantivy::collector::TopDocs;
use tantivy::query::QueryParser;
use tantivy::schema::{STORED, STRING, Schema, TEXT, Value};
use tantivy::{Index, IndexReader, TantivyDocument, doc};
use uuid::Uuid;

const USAGE: &str = "usage: kith-bench relevance [--shared DIR] [--model-dir DIR] [--pool FILE] [--blend W,T,A]

  --shared DIR     the shared data folder (default ../shared beside the project)
  --model-dir DIR  the word vectors (scripts/install-model); default $KITH_MODEL_DIR.
                   Without them the meaning stage is left out
  --pool FILE      also write every result no one has judged yet, as judgements.tsv lines
                   with an empty grade, for a person to grade and add
  --blend W,T,A    weigh meaning with weight W above similarity T, and find services
                   sharing no word with the query from similarity A (for tuning)";

const QUERIES: &str = include_str!("../relevance/queries.tsv");
const DEMO_QUERIES: &str = include_str!("../relevance/demo-queries.tsv");
const JUDGEMENTS: &str = include_str!("../relevance/judgements.tsv");
const FIGURES: &str = include_str!("../relevance/figures.tsv");

/// How far Kith's figures may fall below the committed ones before CI fails.
const TOLERANCE: f64 = 0.02;

#[derive(Debug, Clone)]
struct Query {
    id: String,
    text: String,
    postcode: String,
}

fn queries(set: Set) -> Result<Vec<Query>> {
    let (text, file) = match set {
        Set::Bristol => (QUERIES, "queries.tsv"),
        Set::Demo => (DEMO_QUERIES, "demo-queries.tsv"),
    };
    let mut out = Vec::new();
    for (n, line) in text.lines().enumerate().filter(|(_, l)| !l.starts_with('#') && !l.trim().is_empty()) {
        let cols: Vec<&str> = line.split('\t').collect();
        if cols.len() != 5 {
            bail!("bench/relevance/{file} line {}: expected 5 columns, found {}", n + 1, cols.len());
        }
        out.push(Query { id: cols[0].into(), text: cols[1].into(), postcode: cols[2].into() });
    }
    Ok(out)
}

/// The two query sets: Bristol's real feed, and the demo directory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Set {
    Bristol,
    Demo,
}

impl Set {
    /// The prefix of its lines in `figures.tsv`.
    fn prefix(self) -> &'static str {
        match self {
            Set::Bristol => "",
            Set::Demo => "demo-",
        }
    }
}

/// Grades by query and service.
type Grades = HashMap<(String, Uuid), u8>;

fn judgements() -> Result<Grades> {
    let mut grades = Grades::new();
    for (n, line) in JUDGEMENTS.lines().enumerate().filter(|(_, l)| !l.starts_with('#') && !l.trim().is_empty()) {
        let cols: Vec<&str> = line.split('\t').collect();
        let place = || format!("bench/relevance/judgements.tsv line {}", n + 1);
        if cols.len() < 3 {
            bail!("{}: expected query, service, grade and name", place());
        }
        let id = Uuid::parse_str(cols[1]).with_context(|| format!("{}: the service id", place()))?;
        let grade: u8 = match cols[2].trim() {
            "0" => 0,
            "1" => 1,
            "2" => 2,
            other => bail!("{}: the grade {other:?} is not 0, 1 or 2", place()),
        };
        grades.insert((cols[0].to_owned(), id), grade);
    }
    Ok(grades)
}

/// One system's figures over the query set.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Figures {
    p5: f64,
    ndcg10: f64,
    hit10: f64,
    zero: f64,
    /// Results in the first ten that no one has judged yet.
    unjudged: usize,
}

fn committed() -> Result<HashMap<String, Figures>> {
    let mut out = HashMap::new();
    for line in FIGURES.lines().filter(|l| !l.starts_with('#') && !l.trim().is_empty()) {
        let cols: Vec<&str> = line.split('\t').collect();
        if cols.len() != 5 {
            bail!("bench/relevance/figures.tsv: expected system, P@5, nDCG@10, hit@10, zero-result rate");
        }
        let n = |i: usize| cols[i].parse::<f64>().with_context(|| format!("figures.tsv: {:?}", cols[i]));
        out.insert(cols[0].to_owned(), Figures { p5: n(1)?, ndcg10: n(2)?, hit10: n(3)?, zero: n(4)?, unjudged: 0 });
    }
    Ok(out)
}

/// Scores each query's results (first ten, best first) from the grades.
fn score(results: &[(String, Vec<Uuid>)], grades: &Grades) -> Figures {
    let (mut p5, mut ndcg, mut hit, mut answerable, mut zero, mut unjudged) = (0.0, 0.0, 0.0, 0usize, 0usize, 0);
    for (query, found) in results {
        if found.is_empty() {
            zero += 1;
        }
        let grade = |id: &Uuid| grades.get(&(query.clone(), *id)).copied();
        unjudged += found.iter().take(10).filter(|id| grade(id).is_none()).count();
        let mut ideal: Vec<u8> = grades.iter().filter(|((q, _), g)| q == query && **g > 0).map(|(_, g)| *g).collect();
        if ideal.is_empty() {
            continue;
        }
        answerable += 1;
        ideal.sort_unstable_by(|a, b| b.cmp(a));
        let gain = |g: u8| f64::from((1u32 << g) - 1);
        let dcg = |grades: &mut dyn Iterator<Item = u8>| -> f64 {
            grades.take(10).enumerate().map(|(i, g)| gain(g) / ((i + 2) as f64).log2()).sum()
        };
        let got: Vec<u8> = found.iter().take(10).map(|id| grade(id).unwrap_or(0)).collect();
        ndcg += dcg(&mut got.iter().copied()) / dcg(&mut ideal.into_iter());
        p5 += got.iter().take(5).filter(|g| **g > 0).count() as f64 / 5.0;
        hit += f64::from(u8::from(got.iter().any(|g| *g > 0)));
    }
    let per = |x: f64| if answerable == 0 { 0.0 } else { x / answerable as f64 };
    Figures {
        p5: per(p5),
        ndcg10: per(ndcg),
        hit10: per(hit),
        zero: zero as f64 / results.len().max(1) as f64,
        unjudged,
    }
}

/// The floor: BM25 over name and description, as a first attempt at search would be.
struct Floor {
    index: Index,
    reader: IndexReader,
    id: tantivy::schema::Field,
    text: tantivy::schema::Field,
}

impl Floor {
    fn new(services: &[(Uuid, String, String)]) -> Result<Floor> {
        let mut schema = Schema::builder();
        let id = schema.add_text_field("id", STRING | STORED);
        let text = schema.add_text_field("text", TEXT);
        let index = Index::create_in_ram(schema.build());
        let mut writer = index.writer(50_000_000)?;
        for (service, name, description) in services {
            writer.add_document(doc!(id => service.to_string(), text => format!("{name}\n{description}")))?;
        }
        writer.commit()?;
        let reader = index.reader()?;
        Ok(Floor { index, reader, id, text })
    }

    fn search(&self, words: &str) -> Result<Vec<Uuid>> {
        // Every word counts, any may match: the plainest BM25 over the person's words.
        let parser = QueryParser::for_index(&self.index, vec![self.text]);
        let cleaned: String = words.chars().map(|c| if c.is_alphanumeric() { c } else { ' ' }).collect();
        let (query, _) = parser.parse_query_lenient(&cleaned);
        let searcher = self.reader.searcher();
        let top = searcher.search(&query, &TopDocs::with_limit(10).order_by_score())?;
        let mut out = Vec::new();
        for (_, address) in top {
            let doc: TantivyDocument = searcher.doc(address)?;
            if let Some(id) = doc.get_first(self.id).and_then(|v| v.as_str()).and_then(|s| Uuid::parse_str(s).ok()) {
                out.push(id);
            }
        }
        Ok(out)
    }
}

/// Bristol's directory, loaded as a practice would, with both searches over it.
struct Directory {
    store: Arc<dyn Store>,
    index: SearchIndex,
    /// The same directory indexed with word vectors, when the model is installed.
    meaning: Option<SearchIndex>,
    floor: Floor,
    names: HashMap<Uuid, String>,
    _dir: tempfile::TempDir,
}

async fn bristol(shared: &Path, model: Option<Arc<Meaning>>) -> Result<Directory> {
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let dir = tempfile::tempdir()?;
    let store: Arc<dyn Store> =
        Arc::new(kith_store::sqlite::SqliteStore::open(&dir.path().join("bristol.db"), clock).await?);
    let postcodes = std::fs::File::open(shared.join("data/geo/postcodes-bristol.csv"))?;
    let postcodes = kith_datasets::geo::read_postcodes(postcodes, "postcodes-bristol.csv")?;
    store.put_postcodes(postcodes.rows).await?;
    let area = WholeArea::parse("E06000023").map_err(anyhow::Error::msg)?;
    let mut importer = Importer::new().with_areas(vec![area]);
    importer.add_path(&shared.join("data/oruk-v1/bristol-services.json"))?;
    let (batch, _) = importer.finish();
    indexed(store, batch, model, dir).await
}

/// The demo directory (`kith demo`'s), with its own geography.
async fn demo(model: Option<Arc<Meaning>>) -> Result<Directory> {
    let now = chrono::DateTime::from_timestamp(1_780_000_000, 0).unwrap_or_default();
    let clock: Arc<dyn Clock> = Arc::new(kith_domain::FixedClock::new(now));
    let dir = tempfile::tempdir()?;
    let store: Arc<dyn Store> =
        Arc::new(kith_store::sqlite::SqliteStore::open(&dir.path().join("demo.db"), clock).await?);
    let batch = kith_demo::generate(&kith_demo::DemoOptions::new(now));
    let geo = kith_demo::geography::geography(&batch, 2026);
    store.put_postcodes(geo.postcodes).await?;
    store.put_places(geo.places).await?;
    indexed(store, batch, model, dir).await
}

/// Writes a directory to its store and indexes it, by words and (with a model) meaning.
async fn indexed(
    store: Arc<dyn Store>,
    batch: kith_domain::DirectoryBatch,
    model: Option<Arc<Meaning>>,
    dir: tempfile::TempDir,
) -> Result<Directory> {
    let texts: Vec<(Uuid, String, String)> =
        batch.services.iter().map(|s| (s.id, s.name.clone(), s.description.clone().unwrap_or_default())).collect();
    store.write_batch(batch).await?;
    let index = SearchIndex::in_memory()?;
    catch_up(&*store, &index).await?;
    let meaning = match model {
        Some(model) => {
            let index = SearchIndex::in_memory_with(Some(model))?;
            catch_up(&*store, &index).await?;
            Some(index)
        }
        None => None,
    };
    let floor = Floor::new(&texts)?;
    let names = texts.into_iter().map(|(id, name, _)| (id, name)).collect();
    Ok(Directory { store, index, meaning, floor, names, _dir: dir })
}

/// The systems compared, the floor first and Kith's stages in the order they add up;
/// the last reads meaning, and is measured only with the model installed.
const SYSTEMS: &[(&str, Option<Understanding>)] = &[
    ("BM25 over name and description (the floor)", None),
    ("Kith: the words as typed", Some(Understanding::WORDS_ONLY)),
    ("Kith: + function words left out", Some(Understanding { function_words: true, ..Understanding::WORDS_ONLY })),
    (
        "Kith: + the needs vocabulary",
        Some(Understanding { function_words: true, vocabulary: true, ..Understanding::WORDS_ONLY }),
    ),
    ("Kith: + typos (words only)", Some(Understanding { meaning: false, ..DEFAULT })),
    ("Kith: + meaning (everything, as Kith searches with the model)", Some(DEFAULT)),
];

const DEFAULT: Understanding = Understanding { function_words: true, vocabulary: true, typos: true, meaning: true };

/// The names Kith's full search goes by in `figures.tsv`: with the model, and without.
const KITH: &str = "kith";
const KITH_WORDS: &str = "kith-words";

/// The systems measured: all of them with the model, all but meaning without.
fn systems(with_meaning: bool) -> &'static [(&'static str, Option<Understanding>)] {
    if with_meaning { SYSTEMS } else { &SYSTEMS[..SYSTEMS.len() - 1] }
}

async fn results(d: &Directory, queries: &[Query], blend: Blend) -> Result<Vec<Vec<(String, Vec<Uuid>)>>> {
    let mut places = HashMap::new();
    for q in queries {
        if !places.contains_key(&q.postcode) {
            let near = kith_app::locate::locate(&*d.store, &q.postcode)
                .await
                .with_context(|| format!("{}: the postcode {}", q.id, q.postcode))?
                .near(5.0);
            places.insert(q.postcode.clone(), near);
        }
    }
    let mut out = Vec::new();
    for (_, system) in systems(d.meaning.is_some()) {
        let index = match (system, &d.meaning) {
            (Some(u), Some(meaning)) if u.meaning => meaning,
            _ => &d.index,
        };
        let mut found = Vec::new();
        for q in queries {
            let ids = match system {
                None => d.floor.search(&q.text)?,
                Some(understanding) => {
                    let search = SearchQuery {
                        text: Some(q.text.clone()),
                        near: places.get(&q.postcode).cloned(),
                        limit: 10,
                        facets: false,
                        understanding: *understanding,
                        blend,
                        ..SearchQuery::default()
                    };
                    index.search(&search)?.hits.into_iter().map(|h| h.id).collect()
                }
            };
            found.push((q.id.clone(), ids));
        }
        out.push(found);
    }
    Ok(out)
}

struct Run {
    set: Set,
    services: usize,
    figures: Vec<Figures>,
    with_meaning: bool,
    queries: usize,
    answerable: usize,
    pool: String,
}

async fn measure(set: Set, shared: &Path, model: Option<Arc<Meaning>>, blend: Blend) -> Result<Run> {
    let queries = queries(set)?;
    let grades = judgements()?;
    let with_meaning = model.is_some();
    let d = match set {
        Set::Bristol => bristol(shared, model).await?,
        Set::Demo => demo(model).await?,
    };
    let all = results(&d, &queries, blend).await?;
    let figures = all.iter().map(|r| score(r, &grades)).collect();
    let answerable = queries.iter().filter(|q| grades.iter().any(|((id, _), g)| *id == q.id && *g > 0)).count();
    let mut pool = String::new();
    let mut pooled = std::collections::HashSet::new();
    for system in &all {
        for (query, ids) in system {
            for id in ids.iter().take(10) {
                if !grades.contains_key(&(query.clone(), *id)) && pooled.insert((query.clone(), *id)) {
                    let name = d.names.get(id).map_or("", String::as_str);
                    let _ = writeln!(pool, "{query}\t{id}\t\t{name}");
                }
            }
        }
    }
    Ok(Run { set, services: d.names.len(), figures, with_meaning, queries: queries.len(), answerable, pool })
}

fn table(run: &Run) -> String {
    let what = match run.set {
        Set::Bristol => "Bristol's feed as published",
        Set::Demo => "The demo directory",
    };
    let mut out = format!(
        "{what} ({} services), {} queries ({} with a service judged relevant):\n\n",
        run.services, run.queries, run.answerable
    );
    out.push_str(
        "| system | P@5 | nDCG@10 | hit@10 | zero results | unjudged in top 10 |\n|---|---|---|---|---|---|\n",
    );
    for ((name, _), f) in systems(run.with_meaning).iter().zip(&run.figures) {
        let _ = writeln!(
            out,
            "| {name} | {:.3} | {:.3} | {:.3} | {:.3} | {} |",
            f.p5, f.ndcg10, f.hit10, f.zero, f.unjudged
        );
    }
    if let (Some(floor), Some(kith)) = (run.figures.first(), run.figures.last()) {
        let _ = writeln!(
            out,
            "\nKith against the floor, same run: P@5 {:+.3}, nDCG@10 {:+.3}.",
            kith.p5 - floor.p5,
            kith.ndcg10 - floor.ndcg10
        );
    }
    out
}

pub async fn run(args: Vec<String>) -> Result<()> {
    let Some(flags) = crate::flags(args, USAGE)? else { return Ok(()) };
    let mut shared = PathBuf::from("../shared");
    let mut pool = None;
    let mut model_dir = std::env::var_os("KITH_MODEL_DIR").map(PathBuf::from);
    let mut blend = Blend::default();
    for (flag, value) in flags {
        match flag.as_str() {
            "--shared" => shared = value.into(),
            "--pool" => pool = Some(PathBuf::from(value)),
            "--model-dir" => model_dir = Some(value.into()),
            "--blend" => {
                let parts: Vec<&str> = value.split(',').collect();
                let [w, t, alone] = parts[..] else { bail!("--blend takes W,T,A") };
                blend = Blend { weight: w.parse()?, threshold: t.parse()?, alone: alone.parse()? };
            }
            other => bail!("unknown option {other}\n{USAGE}"),
        }
    }
    let model = match &model_dir {
        Some(dir) => Meaning::load(dir)?.map(Arc::new),
        None => None,
    };
    if model.is_none() {
        eprintln!("no word vectors (run scripts/install-model and give --model-dir): measuring words only");
    }
    let mut pooled = String::new();
    for set in [Set::Bristol, Set::Demo] {
        let run = measure(set, &shared, model.clone(), blend).await?;
        print!("{}", table(&run));
        let name = format!("{}{}", set.prefix(), if run.with_meaning { KITH } else { KITH_WORDS });
        if let Some(f) = run.figures.last() {
            println!("\nfigures.tsv line: {name}\t{:.3}\t{:.3}\t{:.3}\t{:.3}", f.p5, f.ndcg10, f.hit10, f.zero);
            match committed()?.get(&name) {
                Some(was) => {
                    let holds = f.p5 >= was.p5 - TOLERANCE && f.ndcg10 >= was.ndcg10 - TOLERANCE;
                    println!(
                        "committed: P@5 {:.3}, nDCG@10 {:.3}; this run {}\n",
                        was.p5,
                        was.ndcg10,
                        if holds { "holds (CI passes)" } else { "falls more than 0.02 below (CI fails)" }
                    );
                }
                None => println!("no committed figures yet: add the line above to bench/relevance/figures.tsv\n"),
            }
        }
        pooled.push_str(&run.pool);
    }
    if let Some(path) = pool {
        std::fs::write(&path, &pooled)?;
        eprintln!("wrote {} unjudged results to {}", pooled.lines().count(), path.display());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    /// The word vectors in `$KITH_MODEL_DIR` (scripts/test installs them); without them
    /// the meaning stage is skipped with a message, or fails under KITH_REQUIRE_MODEL=1.
    fn test_model() -> Option<Arc<Meaning>> {
        let dir = std::env::var_os("KITH_MODEL_DIR").map(PathBuf::from);
        let model = dir.as_deref().and_then(|d| Meaning::load(d).unwrap()).map(Arc::new);
        if model.is_none() {
            assert!(
                std::env::var_os("KITH_REQUIRE_MODEL").is_none(),
                "KITH_REQUIRE_MODEL is set but KITH_MODEL_DIR holds no word vectors (scripts/install-model)"
            );
            eprintln!("SKIPPED the meaning stage: no word vectors in $KITH_MODEL_DIR (run scripts/install-model)");
        }
        model
    }

    #[test]
    fn figures_from_grades() {
        let (a, b, c) = (Uuid::from_u128(1), Uuid::from_u128(2), Uuid::from_u128(3));
        let grades: Grades =
            [(("q1".into(), a), 2), (("q1".into(), b), 0), (("q1".into(), c), 1)].into_iter().collect();
        let perfect = score(&[("q1".into(), vec![a, c, b])], &grades);
        assert!((perfect.ndcg10 - 1.0).abs() < 1e-9 && (perfect.p5 - 0.4).abs() < 1e-9);
        let worse = score(&[("q1".into(), vec![b, c, a, Uuid::from_u128(4)])], &grades);
        assert!(worse.ndcg10 < perfect.ndcg10);
        assert_eq!((worse.unjudged, worse.hit10), (1, 1.0));
        let none = score(&[("q1".into(), vec![]), ("q2".into(), vec![a])], &grades);
        assert_eq!((none.zero, none.hit10), (0.5, 0.0));
    }

    /// CI's check: Kith's relevance on Bristol's real feed and on the demo directory stays
    /// within 0.02 of the committed figures, and above the floor measured in the same run.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn relevance_on_bristols_feed_holds_against_the_committed_figures() {
        let Some(shared) = kith_store::testing::shared_dir("the relevance benchmark") else { return };
        let model = test_model();
        let committed = committed().unwrap();
        for set in [Set::Bristol, Set::Demo] {
            let run = measure(set, &shared, model.clone(), Blend::default()).await.unwrap();
            println!("{}", table(&run));
            let kith = run.figures.last().unwrap();
            let floor = run.figures.first().unwrap();
            let name = format!("{}{}", set.prefix(), if run.with_meaning { KITH } else { KITH_WORDS });
            let was = committed.get(&name).unwrap_or_else(|| panic!("figures.tsv has {name}"));
            assert!(kith.p5 >= was.p5 - TOLERANCE, "{name}: P@5 {:.3} fell below the committed {:.3}", kith.p5, was.p5);
            assert!(
                kith.ndcg10 >= was.ndcg10 - TOLERANCE,
                "{name}: nDCG@10 {:.3} fell below the committed {:.3}",
                kith.ndcg10,
                was.ndcg10
            );
            assert!(kith.p5 > floor.p5 && kith.ndcg10 > floor.ndcg10, "{name}: above the floor: {kith:?} {floor:?}");
        }
    }
}
