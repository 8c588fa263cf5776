//! Fuzzing the search query on stable Rust: random mixes of the vocabulary's words,
//! typos, punctuation, emoji, control characters and very long words, with and without a
//! place and filters, against the demo directory, for `KITH_FUZZ_SECONDS` (default 3).
//! Every search must answer (Ok), never panic nor fail.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stderr)]

use kith_domain::FixedClock;
use kith_domain::geo::Point;
use kith_search::sync::catch_up;
use kith_search::{Near, SearchIndex, SearchQuery};
use std::sync::Arc;
use std::time::{Duration, Instant};

const PIECES: &[&str] = &[
    "lonely",
    "can't",
    "sleep",
    "my",
    "husband",
    "died",
    "no",
    "money",
    "for",
    "food",
    "i",
    "and",
    "the",
    "bereavment",
    "councelling",
    "skint",
    "PIP",
    "fags",
    "dementia",
    "carers",
    "walk",
    "-",
    "\"",
    "'",
    "*",
    "?",
    "~",
    "^2",
    "AND",
    "OR",
    "NOT",
    "(",
    ")",
    "[",
    "]",
    "{",
    "}",
    ":",
    "\\",
    "/",
    "%",
    "&",
    "|",
    "!",
    "\0",
    "\u{7}",
    "\u{200d}",
    "👩‍👩‍👧",
    "👍🏽",
    "é",
    "ß",
    "İ",
    "ﬁ",
    "সুরমা",
    "华人",
    "مرکز",
    "\u{202e}",
    "\u{feff}",
    " ",
    "  ",
    "\t",
    "\n",
    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
    "0",
    "1e999",
    "DROP TABLE",
];

fn seconds() -> Duration {
    let s = std::env::var("KITH_FUZZ_SECONDS").ok().and_then(|s| s.parse().ok()).unwrap_or(3.0);
    Duration::from_secs_f64(s)
}

#[tokio::test]
async fn any_text_in_the_search_box_gets_an_answer() {
    let now = chrono::DateTime::from_timestamp(1_780_000_000, 0).unwrap();
    let t = kith_store::testing::sqlite(Arc::new(FixedClock::new(now))).await;
    t.store.write_batch(kith_demo::generate(&kith_demo::DemoOptions::new(now))).await.unwrap();
    let index = SearchIndex::in_memory().unwrap();
    catch_up(&*t.store, &index).await.unwrap();

    let mut state: u64 = std::env::var("KITH_FUZZ_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or(0x6b69_7468);
    let mut next = move |n: usize| {
        state ^= state >> 12;
        state ^= state << 25;
        state ^= state >> 27;
        (state.wrapping_mul(0x2545_F491_4F6C_DD1D) % n as u64) as usize
    };
    let parkhead = Point { lat: 55.852, lon: -4.199 };
    let started = Instant::now();
    let mut runs = 0u64;
    while started.elapsed() < seconds() || runs < 100 {
        let mut text = String::new();
        for _ in 0..=next(12) {
            text.push_str(PIECES[next(PIECES.len())]);
            if next(3) > 0 {
                text.push(' ');
            }
        }
        let q = SearchQuery {
            text: Some(text.clone()),
            near: (next(2) == 0).then(|| Near::around(parkhead, vec!["S12000049".into()], (next(40) + 1) as f64)),
            free: next(4) == 0,
            evenings: next(5) == 0,
            offset: next(30),
            limit: next(50) + 1,
            ..SearchQuery::default()
        };
        let answered = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| index.search(&q)));
        match answered {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => panic!("{text:?}: the search failed: {e}"),
            Err(_) => panic!("{text:?}: the search panicked"),
        }
        runs += 1;
    }
    eprintln!("search: {runs} queries in {:.1?}, each answered", started.elapsed());
}
