//! `kith-bench search`: the standard query mix on Kith's index and, in the same run, on
//! what a Rails or Django directory does today: PostgreSQL full-text search (tsvector +
//! GIN, cube/earthdistance for distance) and SQLite FTS5 with an R*Tree.
//!
//! Services are the demo directory's, copied round real UK towns: each copy moves to a
//! town, its venue scattered within about 8 km of the centre, and an area-wide service
//! covers that town's council area.

use anyhow::{Context, Result, bail};
use kith_domain::directory::{Related, nest_service};
use kith_domain::geo::Point;
use kith_domain::hsds::Service;
use kith_search::{Meaning, Near, SearchIndex, SearchQuery};
use std::sync::Arc;
use std::time::{Duration, Instant};
use uuid::Uuid;

const USAGE: &str =
    "usage: kith-bench search [--services N] [--queries Q] [--engine E] [--postgres URL] [--model-dir DIR]

  --services N     services to generate (default 100000)
  --queries Q      queries timed per engine, after a warm-up (default 500)
  --engine E       kith, postgres, sqlite or all (default all)
  --postgres URL   PostgreSQL server to create the benchmark database on
  --model-dir DIR  word vectors (scripts/install-model): Kith is also built and timed
                   reading meaning, beside the same index without";

/// Real towns and their approximate centres. The area codes are made up for the
/// benchmark, in the shape of ONS codes.
pub(crate) const TOWNS: &[(&str, f64, f64)] = &[
    ("Glasgow", 55.8642, -4.2518),
    ("Edinburgh", 55.9533, -3.1883),
    ("Aberdeen", 57.1497, -2.0943),
    ("Dundee", 56.4620, -2.9707),
    ("Kirkcaldy", 56.1107, -3.1674),
    ("Inverness", 57.4778, -4.2247),
    ("Newcastle upon Tyne", 54.9783, -1.6178),
    ("Sunderland", 54.9069, -1.3838),
    ("Middlesbrough", 54.5742, -1.2350),
    ("Carlisle", 54.8925, -2.9329),
    ("Leeds", 53.8008, -1.5491),
    ("Bradford", 53.7960, -1.7594),
    ("Sheffield", 53.3811, -1.4701),
    ("Hull", 53.7676, -0.3274),
    ("York", 53.9600, -1.0873),
    ("Manchester", 53.4808, -2.2426),
    ("Liverpool", 53.4084, -2.9916),
    ("Preston", 53.7632, -2.7031),
    ("Blackpool", 53.8175, -3.0357),
    ("Stoke-on-Trent", 53.0027, -2.1794),
    ("Nottingham", 52.9548, -1.1581),
    ("Derby", 52.9225, -1.4746),
    ("Leicester", 52.6369, -1.1398),
    ("Lincoln", 53.2307, -0.5406),
    ("Birmingham", 52.4862, -1.8904),
    ("Coventry", 52.4068, -1.5197),
    ("Wolverhampton", 52.5862, -2.1288),
    ("Norwich", 52.6309, 1.2974),
    ("Cambridge", 52.2053, 0.1218),
    ("Ipswich", 52.0567, 1.1482),
    ("Oxford", 51.7520, -1.2577),
    ("Bristol", 51.4545, -2.5879),
    ("Cardiff", 51.4816, -3.1791),
    ("Swansea", 51.6214, -3.9436),
    ("Plymouth", 50.3755, -4.1427),
    ("Exeter", 50.7184, -3.5339),
    ("Southampton", 50.9097, -1.4044),
    ("Brighton", 50.8225, -0.1372),
    ("Reading", 51.4543, -0.9781),
    ("London Tower Hamlets", 51.5150, -0.0350),
];

pub(crate) fn town_code(i: usize) -> String {
    format!("X{:08}", 1000 + i)
}

/// The standard mix: what receptionists type.
pub(crate) const PHRASES: &[&str] = &[
    "lonely",
    "walking group",
    "money worries",
    "art class",
    "food bank",
    "mental health",
    "dementia",
    "carers",
    "english classes",
    "gardening",
    "debt advice",
    "exercise",
    "singing",
    "bereavement support",
    "parent toddler",
    "digital skills",
    "mens shed",
    "lunch club",
    "housing advice",
    "yoga",
];

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
    fn jitter(&mut self, scale: f64) -> f64 {
        ((self.next() >> 11) as f64 / (1u64 << 53) as f64 * 2.0 - 1.0) * scale
    }
}

/// One query of the mix.
#[derive(Debug, Clone)]
struct MixQuery {
    words: String,
    need: Option<String>,
    point: Point,
    town: usize,
}

fn query_mix(n: usize) -> Vec<MixQuery> {
    let mut rng = Rng(7);
    let needs: Vec<&str> = kith_demo::needs::NEEDS.iter().map(|n| n.code).collect();
    (0..n)
        .map(|_| {
            // 1 to 3 words: a phrase, sometimes with a word of another.
            let mut words = PHRASES[rng.below(PHRASES.len())].to_owned();
            if words.split(' ').count() == 1 && rng.below(3) == 0 {
                let extra = PHRASES[rng.below(PHRASES.len())].split(' ').next().unwrap_or("");
                words = format!("{words} {extra}");
            }
            let need = (rng.below(10) < 3).then(|| needs[rng.below(needs.len())].to_owned());
            let town = rng.below(TOWNS.len());
            let (_, lat, lon) = TOWNS[town];
            MixQuery { words, need, point: Point { lat: lat + rng.jitter(0.04), lon: lon + rng.jitter(0.06) }, town }
        })
        .collect()
}

/// N services round the towns, from the demo directory's 450.
pub(crate) fn generate(n: usize) -> Vec<Service> {
    let now = chrono::DateTime::from_timestamp(1_780_000_000, 0).unwrap_or_default();
    let batch = kith_demo::generate(&kith_demo::DemoOptions::new(now));
    let related = Related {
        organizations: batch.organizations.iter().map(|o| (o.id, o.clone())).collect(),
        locations: batch.locations.iter().map(|l| (l.id, l.clone())).collect(),
        taxonomy_terms: batch.taxonomy_terms.iter().map(|t| (t.id, t.clone())).collect(),
    };
    let templates: Vec<Service> = batch.services.iter().map(|s| nest_service(s.clone(), &related)).collect();
    let mut rng = Rng(42);
    (0..n)
        .map(|i| {
            let mut s = templates[i % templates.len()].clone();
            s.id = Uuid::from_u128(0xbe0c_0000_0000_0000_0000_0000_0000_0000 + i as u128);
            // Each copy is run by its own organisation at its own venues, so that a
            // directory written to a store holds as many rows as a real one would.
            let copy = |kind: u128, n: usize| Uuid::from_u128((kind << 112) | ((i as u128) << 16) | n as u128);
            if let Some(org) = &mut s.organization {
                org.id = copy(0x0c0a, 0);
                s.organization_id = Some(org.id);
            }
            // Clusters of a few hundred services per town, as in life.
            let town = (i / 97) % TOWNS.len();
            let (_, lat, lon) = TOWNS[town];
            for (n, sal) in s.service_at_locations.iter_mut().enumerate() {
                sal.id = copy(0x5a1e, n);
                if let Some(l) = &mut sal.location {
                    l.id = copy(0x10ca, n);
                    sal.location_id = Some(l.id);
                    l.latitude = Some(lat + rng.jitter(0.07));
                    l.longitude = Some(lon + rng.jitter(0.11));
                }
            }
            for area in &mut s.service_areas {
                area.extent = Some(town_code(town));
            }
            s
        })
        .collect()
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

struct Timing {
    engine: &'static str,
    load: Duration,
    times: Vec<Duration>,
    hits: Vec<usize>,
}

impl Timing {
    fn p(&self, p: f64) -> Duration {
        let mut t = self.times.clone();
        t.sort();
        percentile(&t, p)
    }
    fn median_hits(&self) -> usize {
        let mut h = self.hits.clone();
        h.sort_unstable();
        h.get(h.len() / 2).copied().unwrap_or(0)
    }
}

/// Kith's index, built as a rebuild from the store builds it (pages of 5,000, one
/// commit), then the mix as the ORUK API asks it (top 20) and as the search page asks
/// it (top 20 with facet counts).
fn kith(services: &[Service], queries: &[MixQuery], warm: usize, meaning: Option<Arc<Meaning>>) -> Result<Vec<Timing>> {
    let dir = tempfile::tempdir()?;
    let with_meaning = meaning.is_some();
    let index = SearchIndex::open_with(dir.path(), meaning)?;
    let started = Instant::now();
    index.start_rebuild()?;
    for chunk in services.chunks(5_000) {
        index.add(chunk)?;
    }
    index.finish_rebuild(&kith_search::Position::unchecked(1), true)?;
    let load = started.elapsed();
    // The live generation's files, one folder down.
    let size: u64 = std::fs::read_dir(dir.path())?
        .flatten()
        .filter(|e| e.path().is_dir())
        .flat_map(|e| std::fs::read_dir(e.path()).into_iter().flatten().flatten())
        .filter_map(|e| e.metadata().ok())
        .map(|m| m.len())
        .sum();
    eprintln!(
        "indexed {} services in {} segments in {load:.1?} ({:.0} MB on disk{})",
        index.len(),
        index.segments(),
        size as f64 / 1e6,
        if with_meaning { ", with word vectors" } else { "" }
    );
    let mut out = Vec::new();
    // The third leaves out the clause that keeps temporarily closed services out of
    // results, so the two can be compared in one run.
    let runs: &[(&'static str, bool, bool)] = if with_meaning {
        &[("Kith reading meaning", false, false), ("Kith reading meaning, with facet counts", true, false)]
    } else {
        &[
            ("Kith (tantivy)", false, false),
            ("Kith, with facet counts", true, false),
            ("Kith, closed services too", false, true),
        ]
    };
    for &(engine, facets, include_closed) in runs {
        let run = |q: &MixQuery| -> Result<usize> {
            let query = SearchQuery {
                text: Some(q.words.clone()),
                needs: q.need.iter().cloned().collect(),
                near: Some(Near { point: q.point, radius_km: 5.0, area_codes: vec![town_code(q.town)] }),
                limit: 20,
                facets,
                include_closed,
                ..Default::default()
            };
            Ok(index.search(&query)?.hits.len())
        };
        for q in queries.iter().take(warm) {
            run(q)?;
        }
        let mut times = Vec::new();
        let mut hits = Vec::new();
        for q in queries.iter().skip(warm) {
            let t = Instant::now();
            hits.push(run(q)?);
            times.push(t.elapsed());
        }
        out.push(Timing { engine, load, times, hits });
    }
    Ok(out)
}

struct Row {
    id: Uuid,
    name: String,
    taxonomy: String,
    body: String,
    needs: Vec<String>,
    areas: Vec<String>,
    lat: f64,
    lon: f64,
}

/// The peers' rows, in the same geographic order as Kith keeps its documents, so that
/// neither side gains from the order services were generated in.
fn rows(services: &[Service]) -> Vec<Row> {
    let mut rows: Vec<(u64, Row)> = services
        .iter()
        .map(|s| {
            let f = kith_search::facts::facts(s);
            let p = f.points.first().copied().unwrap_or(Point { lat: 0.0, lon: 0.0 });
            let key = kith_search::facts::geo_key(&f.points);
            let row = Row {
                id: s.id,
                name: f.name,
                taxonomy: f.taxonomy,
                body: format!("{} {}", f.body, f.organization),
                needs: f.needs,
                areas: f.areas,
                lat: p.lat,
                lon: p.lon,
            };
            (key, row)
        })
        .collect();
    rows.sort_by_key(|(key, _)| *key);
    rows.into_iter().map(|(_, row)| row).collect()
}

async fn postgres(url: &str, rows: &[Row], queries: &[MixQuery], warm: usize) -> Result<Timing> {
    let admin = kith_store::postgres::parse_url(url)?;
    let (client, conn) = admin.connect(tokio_postgres::NoTls).await.context("connecting to PostgreSQL")?;
    tokio::spawn(conn);
    let name = format!("kith_bench_search_{}", std::process::id());
    client.batch_execute(&format!("DROP DATABASE IF EXISTS {name}")).await?;
    client.batch_execute(&format!("CREATE DATABASE {name}")).await?;
    let mut config = admin.clone();
    config.dbname(&name);
    let (db, conn) = config.connect(tokio_postgres::NoTls).await?;
    tokio::spawn(conn);
    db.batch_execute(
        "CREATE EXTENSION cube; CREATE EXTENSION earthdistance;
         CREATE TABLE svc (id uuid PRIMARY KEY, doc tsvector NOT NULL, needs text[] NOT NULL, areas text[] NOT NULL,
                           lat float8 NOT NULL, lon float8 NOT NULL);",
    )
    .await?;
    let started = Instant::now();
    for chunk in rows.chunks(5_000) {
        let ids: Vec<Uuid> = chunk.iter().map(|r| r.id).collect();
        let names: Vec<&str> = chunk.iter().map(|r| r.name.as_str()).collect();
        let tax: Vec<&str> = chunk.iter().map(|r| r.taxonomy.as_str()).collect();
        let bodies: Vec<&str> = chunk.iter().map(|r| r.body.as_str()).collect();
        let needs: Vec<String> = chunk.iter().map(|r| r.needs.join(" ")).collect();
        let areas: Vec<String> = chunk.iter().map(|r| r.areas.join(" ")).collect();
        let lats: Vec<f64> = chunk.iter().map(|r| r.lat).collect();
        let lons: Vec<f64> = chunk.iter().map(|r| r.lon).collect();
        db.execute(
            "INSERT INTO svc SELECT id,
                setweight(to_tsvector('english', n), 'A') || setweight(to_tsvector('english', t), 'B')
                    || setweight(to_tsvector('english', b), 'C'),
                string_to_array(nd, ' '), string_to_array(ar, ' '), la, lo
             FROM UNNEST($1::uuid[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::float8[], $8::float8[])
                AS u(id, n, t, b, nd, ar, la, lo)",
            &[&ids, &names, &tax, &bodies, &needs, &areas, &lats, &lons],
        )
        .await?;
    }
    db.batch_execute(
        "CREATE INDEX ON svc USING gin (doc);
         CREATE INDEX ON svc USING gist (ll_to_earth(lat, lon));
         CREATE INDEX ON svc USING gin (needs);
         CREATE INDEX ON svc USING gin (areas);
         ANALYZE svc;",
    )
    .await?;
    let load = started.elapsed();
    let stmt = db
        .prepare(
            "SELECT id FROM svc, plainto_tsquery('english', $1) q
             WHERE doc @@ q
               AND ($2::text IS NULL OR needs @> ARRAY[$2::text])
               AND (areas && ARRAY[$5::text]
                    OR (earth_box(ll_to_earth($3, $4), 5000) @> ll_to_earth(lat, lon)
                        AND earth_distance(ll_to_earth($3, $4), ll_to_earth(lat, lon)) <= 5000))
             ORDER BY ts_rank(doc, q) DESC LIMIT 20",
        )
        .await?;
    let mut times = Vec::new();
    let mut hits = Vec::new();
    for (i, q) in queries.iter().enumerate() {
        let t = Instant::now();
        let found = db.query(&stmt, &[&q.words, &q.need, &q.point.lat, &q.point.lon, &town_code(q.town)]).await?;
        if i >= warm {
            times.push(t.elapsed());
            hits.push(found.len());
        }
    }
    drop(db);
    client.batch_execute(&format!("DROP DATABASE {name} WITH (FORCE)")).await?;
    Ok(Timing { engine: "PostgreSQL FTS + earthdistance", load, times, hits })
}

fn sqlite(rows: &[Row], queries: &[MixQuery], warm: usize) -> Result<Timing> {
    let dir = tempfile::tempdir()?;
    let mut db = rusqlite::Connection::open(dir.path().join("fts.db"))?;
    db.execute_batch(
        "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL;
         CREATE TABLE svc (rowid INTEGER PRIMARY KEY, id TEXT NOT NULL, needs TEXT NOT NULL, areas TEXT NOT NULL,
                           lat REAL NOT NULL, lon REAL NOT NULL);
         CREATE VIRTUAL TABLE fts USING fts5(name, taxonomy, body, tokenize = 'porter');
         CREATE VIRTUAL TABLE geo USING rtree(id, minlat, maxlat, minlon, maxlon);",
    )?;
    let started = Instant::now();
    {
        let tx = db.transaction()?;
        {
            let mut svc = tx.prepare("INSERT INTO svc VALUES (?1, ?2, ?3, ?4, ?5, ?6)")?;
            let mut fts = tx.prepare("INSERT INTO fts (rowid, name, taxonomy, body) VALUES (?1, ?2, ?3, ?4)")?;
            let mut geo = tx.prepare("INSERT INTO geo VALUES (?1, ?2, ?2, ?3, ?3)")?;
            for (i, r) in rows.iter().enumerate() {
                let rowid = i as i64 + 1;
                // Space-padded, so "instr" finds whole codes only.
                let needs = format!(" {} ", r.needs.join(" "));
                let areas = format!(" {} ", r.areas.join(" "));
                svc.execute(rusqlite::params![rowid, r.id.to_string(), needs, areas, r.lat, r.lon])?;
                fts.execute(rusqlite::params![rowid, r.name, r.taxonomy, r.body])?;
                geo.execute(rusqlite::params![rowid, r.lat, r.lon])?;
            }
        }
        tx.commit()?;
    }
    let load = started.elapsed();
    let mut stmt = db.prepare(
        "SELECT svc.id FROM fts JOIN svc ON svc.rowid = fts.rowid
         WHERE fts MATCH ?1
           AND (?2 IS NULL OR instr(svc.needs, ' ' || ?2 || ' ') > 0)
           AND (instr(svc.areas, ' ' || ?3 || ' ') > 0
                OR svc.rowid IN (SELECT id FROM geo WHERE minlat >= ?4 AND maxlat <= ?5 AND minlon >= ?6 AND maxlon <= ?7))
         ORDER BY bm25(fts, 10.0, 5.0, 1.0) LIMIT 20",
    )?;
    let mut times = Vec::new();
    let mut hits = Vec::new();
    for (i, q) in queries.iter().enumerate() {
        // Each word quoted, so FTS5 treats it as a word, not syntax.
        let matched: String =
            q.words.split_whitespace().map(|w| format!("\"{}\"", w.replace('"', ""))).collect::<Vec<_>>().join(" ");
        let dlat = 5.0 / 111.2;
        let dlon = 5.0 / (111.3 * q.point.lat.to_radians().cos());
        let t = Instant::now();
        let found: Vec<String> = stmt
            .query_map(
                rusqlite::params![
                    matched,
                    q.need,
                    town_code(q.town),
                    q.point.lat - dlat,
                    q.point.lat + dlat,
                    q.point.lon - dlon,
                    q.point.lon + dlon
                ],
                |r| r.get(0),
            )?
            .collect::<rusqlite::Result<_>>()?;
        if i >= warm {
            times.push(t.elapsed());
            hits.push(found.len());
        }
    }
    Ok(Timing { engine: "SQLite FTS5 + R*Tree", load, times, hits })
}

pub async fn run(args: Vec<String>) -> Result<()> {
    let mut services = 100_000usize;
    let mut count = 500usize;
    let mut engine = "all".to_owned();
    let mut model_dir: Option<std::path::PathBuf> = None;
    let mut url = std::env::var("KITH_TEST_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into());
    let Some(flags) = crate::flags(args, USAGE)? else { return Ok(()) };
    for (flag, value) in flags {
        match flag.as_str() {
            "--services" => services = value.parse().context("--services must be a whole number")?,
            "--queries" => count = value.parse().context("--queries must be a whole number")?,
            "--engine" if ["kith", "postgres", "sqlite", "all"].contains(&value.as_str()) => engine = value,
            "--engine" => bail!("--engine must be kith, postgres, sqlite or all"),
            "--postgres" => url = value,
            "--model-dir" => model_dir = Some(value.into()),
            _ => bail!("unknown option {flag}\n{USAGE}"),
        }
    }
    let warm = 50;
    let started = Instant::now();
    let generated = generate(services);
    eprintln!("generated {services} services round {} towns in {:.1?}", TOWNS.len(), started.elapsed());
    let queries = query_mix(count + warm);
    let wanted = |e: &str| engine == "all" || engine == e;
    let mut results = Vec::new();
    if wanted("kith") {
        results.extend(kith(&generated, &queries, warm, None)?);
        eprintln!("kith done");
        if let Some(dir) = &model_dir {
            let meaning = Meaning::load(dir)?.with_context(|| format!("no word vectors in {}", dir.display()))?;
            results.extend(kith(&generated, &queries, warm, Some(Arc::new(meaning)))?);
            eprintln!("kith reading meaning done");
        }
    }
    let table = rows(&generated);
    drop(generated);
    if wanted("postgres") {
        results.push(postgres(&url, &table, &queries, warm).await?);
        eprintln!("postgres done");
    }
    if wanted("sqlite") {
        results.push(sqlite(&table, &queries, warm)?);
        eprintln!("sqlite done");
    }

    let kith_p50 = results.iter().find(|t| t.engine.starts_with("Kith")).map(|t| t.p(0.5));
    println!(
        "\nStandard query mix on {services} services round {} UK towns: {count} timed queries after {warm} to warm up; 1–3 words, a need on 30 %, 5 km round a point, top 20.\n",
        TOWNS.len()
    );
    println!("| engine | load + index | p50 | p95 | p99 | median hits | this p50 ÷ Kith p50 |");
    println!("|---|---|---|---|---|---|---|");
    for t in &results {
        // How many times longer the engine takes than Kith: above 1, Kith is faster.
        let ratio = kith_p50.map_or("".into(), |k| format!("{:.2}×", t.p(0.5).as_secs_f64() / k.as_secs_f64()));
        println!(
            "| {} | {:.1} s | {:.2} ms | {:.2} ms | {:.2} ms | {} | {ratio} |",
            t.engine,
            t.load.as_secs_f64(),
            t.p(0.5).as_secs_f64() * 1e3,
            t.p(0.95).as_secs_f64() * 1e3,
            t.p(0.99).as_secs_f64() * 1e3,
            t.median_hits()
        );
    }
    Ok(())
}
