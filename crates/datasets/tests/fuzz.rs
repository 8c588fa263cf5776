//! Fuzzing the importers and parsers on stable Rust: each target mutates real and
//! hand-made inputs (bytes flipped, cut, repeated, spliced, JSON and CSV punctuation and
//! control characters put in) for `KITH_FUZZ_SECONDS` (default 3) and fails on a panic,
//! writing the input that caused it to `target/fuzz-crashes/`. Errors are expected: only
//! a panic is a failure. (cargo-fuzz needs a nightly toolchain, which this project's
//! machines do not have; see ADR 0004.)

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stderr)]

use kith_datasets::Importer;
use kith_datasets::sheet::{NeedWords, SheetMap, read_sheet};
use std::time::{Duration, Instant};

/// A small, fast generator (xorshift64*), seeded so a failure can be run again with
/// `KITH_FUZZ_SEED`.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: usize) -> usize {
        if n == 0 { 0 } else { (self.next() % n as u64) as usize }
    }
}

const TOKENS: &[&[u8]] = &[
    b"\"",
    b"{",
    b"}",
    b"[",
    b"]",
    b",",
    b":",
    b"\\",
    b"\\u0000",
    b"\\ud800",
    b"null",
    b"true",
    b"-1",
    b"1e999",
    b"0.000000001",
    b"\"id\"",
    b"\"name\"",
    b"\"services\"",
    b"\"schedules\"",
    b"\"byday\"",
    b"\"MO,TU\"",
    b"\r\n",
    b"\n",
    b"\t",
    b"\0",
    b"\xff",
    b"\xc3",
    "👩‍👩‍👧".as_bytes(),
    "é".as_bytes(),
    b"<b>",
    b"&amp;",
    b"99.999999",
    b"G31 2ER",
    b"BS1",
    b"Mondays 10-12",
    b"every 2nd Tuesday",
    b"9am-5pm",
];

/// One mutation of `input` (or of `input` spliced with `other`).
fn mutate(rng: &mut Rng, input: &[u8], other: &[u8]) -> Vec<u8> {
    let mut out = input.to_vec();
    for _ in 0..=rng.below(4) {
        let at = rng.below(out.len() + 1);
        match rng.below(7) {
            0 if !out.is_empty() => {
                let i = rng.below(out.len());
                out[i] ^= 1 << rng.below(8);
            }
            1 => {
                let end = (at + rng.below(64)).min(out.len());
                out.drain(at..end);
            }
            2 => {
                let token = TOKENS[rng.below(TOKENS.len())];
                out.splice(at..at, token.iter().copied());
            }
            3 => {
                let end = (at + rng.below(256)).min(out.len());
                let piece = out[at..end].to_vec();
                out.splice(at..at, piece);
            }
            4 => out.truncate(at),
            5 if !other.is_empty() => {
                let from = rng.below(other.len());
                let end = (from + rng.below(512)).min(other.len());
                out.splice(at..at, other[from..end].iter().copied());
            }
            _ => {
                let byte = rng.next() as u8;
                out.insert(at, byte);
            }
        }
    }
    out
}

fn seconds() -> Duration {
    let s = std::env::var("KITH_FUZZ_SECONDS").ok().and_then(|s| s.parse().ok()).unwrap_or(3.0);
    Duration::from_secs_f64(s)
}

/// Runs `target` on mutations of `seeds` for the time allowed; panics (failing the
/// test) on the first input that makes it panic, saving that input.
fn fuzz(name: &str, seeds: &[Vec<u8>], target: impl Fn(&[u8])) {
    let seed = std::env::var("KITH_FUZZ_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or(0x6b69_7468_2026);
    let mut rng = Rng(seed);
    let started = Instant::now();
    let mut runs = 0u64;
    // Quiet: a panic is reported once, below, with its input.
    let hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    let mut corpus: Vec<Vec<u8>> = seeds.to_vec();
    while started.elapsed() < seconds() || runs < seeds.len() as u64 {
        let input = if (runs as usize) < seeds.len() {
            seeds[runs as usize].clone()
        } else {
            let a = &corpus[rng.below(corpus.len())];
            let b = &corpus[rng.below(corpus.len())];
            mutate(&mut rng, a, b)
        };
        runs += 1;
        if std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| target(&input))).is_err() {
            std::panic::set_hook(hook);
            let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/fuzz-crashes");
            std::fs::create_dir_all(&dir).unwrap();
            let file = dir.join(format!("{name}-{runs}"));
            std::fs::write(&file, &input).unwrap();
            target(&input);
            panic!("{name}: run {runs} panicked; the input is in {}", file.display());
        }
        // Keep some mutants as seeds for further mutation, within a bound.
        if corpus.len() < 256 && rng.below(16) == 0 {
            corpus.push(input);
        }
    }
    std::panic::set_hook(hook);
    eprintln!("{name}: {runs} inputs in {:.1?}, no panic", started.elapsed());
}

/// A few records of Bristol's real feed, when `../shared` is there.
fn bristol_records(n: usize) -> Option<Vec<u8>> {
    let path =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data/oruk-v1/bristol-services.json");
    let all: serde_json::Value = serde_json::from_slice(&std::fs::read(path).ok()?).ok()?;
    let items: Vec<serde_json::Value> = match &all {
        serde_json::Value::Array(items) => items.iter().take(n).cloned().collect(),
        serde_json::Value::Object(map) => {
            map.get("content").or_else(|| map.get("contents"))?.as_array()?.iter().take(n).cloned().collect()
        }
        _ => return None,
    };
    Some(serde_json::to_vec(&items).unwrap())
}

#[test]
fn the_json_importers_never_panic() {
    let hsds = br#"[{"id": "3f0e8a52-6b1c-4d0e-9a7b-2c5d8e1f4a60", "name": "Lunch club", "status": "active",
        "description": "<p>Soup &amp; company</p>", "organization": {"id": "0b1d7c1e-0000-4000-8000-000000000001", "name": "Trust", "description": "x"},
        "schedules": [{"id": "0b1d7c1e-0000-4000-8000-000000000002", "freq": "WEEKLY", "byday": "MO,TU", "opens_at": "10:00", "closes_at": "12:00"}],
        "service_at_locations": [{"id": "0b1d7c1e-0000-4000-8000-000000000003", "location": {"id": "0b1d7c1e-0000-4000-8000-000000000004", "name": "Hall", "latitude": 55.85, "longitude": -4.2}}]}]"#;
    let page = br#"{"total_items": 1, "page_number": 1, "contents": [{"id": "3f0e8a52-6b1c-4d0e-9a7b-2c5d8e1f4a61", "name": "Choir", "status": "active"}]}"#;
    let mut seeds = vec![hsds.to_vec(), page.to_vec()];
    seeds.extend(bristol_records(3));
    fuzz("json-import", &seeds, |bytes| {
        let mut importer = Importer::new();
        let _ = importer.add_bytes(bytes, "fuzz.json", None);
        let _ = importer.finish();
    });
}

#[test]
fn the_sheet_importer_and_its_schedule_reader_never_panic() {
    let map = SheetMap::parse(
        "[columns]\nname = \"Group\"\npostcode = \"Postcode\"\nschedule = \"When\"\nemail = \"Email\"\nurl = \"Web\"\nphone = \"Phone\"\nneed = \"Need\"\nlat_long = \"Where\"\n",
    )
    .unwrap();
    let needs = NeedWords::kith();
    let sheet = "Group,Postcode,When,Email,Web,Phone,Need,Where\n\
        Walk,G31 2ER,Mondays 10am-12pm,a@b.org,www.example.org,0141 555 0100,loneliness,\"55.85, -4.2\"\n\
        \"Choir, \"\"big\"\"\",BS1 5TR,every 2nd Tuesday 7-9pm,,https://x.org,,music,\n\
        Cafe,bs15tr,Weekdays 9:30-4,,,,food; money,\n";
    fuzz("sheet-import", &[sheet.as_bytes().to_vec()], |bytes| {
        let _ = read_sheet(bytes, "fuzz.csv", &map, &needs);
    });
}

#[test]
fn the_geography_readers_never_panic() {
    let postcodes = "pcds,lat,long,ctry,oslaua,osward,lsoa11,doterm\nG31 2ER,55.85,-4.2,S92000003,S12000049,S13002990,S01010000,\nZE1 0AA,99.999999,0.0,S92000003,,,,\n";
    let simd = "Data_Zone,SIMD2020v2_Rank,SIMD2020v2_Decile\r\nS01000001,1,1\r\nS01000002,x,1\r\n";
    let places = "place23cd,place23nm,lad23cd,lat,long\nIPN1,Parkhead,S12000049,55.852,-4.199\n";
    let seeds = vec![postcodes.as_bytes().to_vec(), simd.as_bytes().to_vec(), places.as_bytes().to_vec()];
    fuzz("geography", &seeds, |bytes| {
        let _ = kith_datasets::geo::read_postcodes(bytes, "fuzz.csv");
        let _ = kith_datasets::geo::read_deprivation(bytes, "fuzz.csv", None);
        let _ = kith_datasets::geo::read_places(bytes, "fuzz.csv");
    });
}

#[test]
fn the_postcode_and_place_parsers_never_panic() {
    let seeds: Vec<Vec<u8>> = ["G31 2ER", "g312er", " BS1  5TR ", "EC1A 1BB", "BS1", "Parkhead, Glasgow", "G31 2EX"]
        .iter()
        .map(|s| s.as_bytes().to_vec())
        .collect();
    fuzz("postcode", &seeds, |bytes| {
        let text = String::from_utf8_lossy(bytes);
        let _ = kith_domain::postcode::Postcode::parse(&text);
        let _ = kith_domain::postcode::Outward::parse(&text);
        let _ = kith_domain::postcode::Whereabouts::parse(&text);
        let _ = kith_domain::geo::WholeArea::parse(&text);
        let _ = kith_domain::validate::parse_byday(&text);
        let _ = kith_domain::opening::rule_days(&text);
    });
}
