//! Search on a real directory: Bristol's ORUK v1 feed imported as it is (long, HTML-laden
//! descriptions written by the groups themselves), with Bristol's real postcodes, asked
//! the way people put things. Each query is one a receptionist heard; each answer is
//! what a person would expect near BS1 5TR.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use kith_app::locate::locate;
use kith_datasets::Importer;
use kith_domain::FixedClock;
use kith_domain::geo::WholeArea;
use kith_search::sync::catch_up;
use kith_search::{Near, SearchIndex, SearchQuery};
use kith_store::testing::TestStore;
use std::collections::HashMap;
use std::sync::Arc;

struct Bristol {
    _t: TestStore,
    index: SearchIndex,
    near: Near,
    /// Each service's name and its text (name, description), lower case.
    services: HashMap<uuid::Uuid, (String, String)>,
}

async fn bristol() -> Option<Bristol> {
    let shared = kith_store::testing::shared_dir("search on Bristol's feed")?;
    let now = chrono::DateTime::from_timestamp(1_780_000_000, 0).unwrap();
    let t = kith_store::testing::sqlite(Arc::new(FixedClock::new(now))).await;
    let postcodes = std::fs::File::open(shared.join("data/geo/postcodes-bristol.csv")).unwrap();
    let postcodes = kith_datasets::geo::read_postcodes(postcodes, "postcodes-bristol.csv").unwrap();
    t.store.put_postcodes(postcodes.rows).await.unwrap();
    // As a practice loads it: the feed as published, for the whole of Bristol.
    let mut importer = Importer::new().with_areas(vec![WholeArea::parse("E06000023").unwrap()]);
    importer.add_path(&shared.join("data/oruk-v1/bristol-services.json")).unwrap();
    let (batch, _) = importer.finish();
    let services = batch
        .services
        .iter()
        .map(|s| {
            let text = format!("{} {}", s.name, s.description.as_deref().unwrap_or_default()).to_lowercase();
            (s.id, (s.name.clone(), text))
        })
        .collect();
    t.store.write_batch(batch).await.unwrap();
    let index = SearchIndex::in_memory().unwrap();
    catch_up(&*t.store, &index).await.unwrap();
    let near = locate(&*t.store, "BS1 5TR").await.unwrap().near(5.0);
    Some(Bristol { _t: t, index, near, services })
}

impl Bristol {
    /// The first `n` results for `text` near BS1 5TR: names and texts.
    fn top(&self, text: &str, n: usize) -> Vec<&(String, String)> {
        let q = SearchQuery { text: Some(text.into()), near: Some(self.near.clone()), limit: n, ..Default::default() };
        self.index.search(&q).unwrap().hits.iter().map(|h| &self.services[&h.id]).collect()
    }

    fn total(&self, text: &str) -> usize {
        let q = SearchQuery { text: Some(text.into()), near: Some(self.near.clone()), limit: 1, ..Default::default() };
        self.index.search(&q).unwrap().total
    }

    /// How many of the first `n` results for `text` say any of `about`.
    fn fitting(&self, text: &str, n: usize, about: &[&str]) -> usize {
        self.top(text, n).iter().filter(|(_, t)| about.iter().any(|a| t.contains(a))).count()
    }

    fn names(&self, text: &str, n: usize) -> Vec<String> {
        self.top(text, n).iter().map(|(name, _)| name.clone()).collect()
    }
}

#[tokio::test]
async fn how_people_say_what_they_need_finds_it_in_bristols_directory() {
    let Some(b) = bristol().await else { return };

    // "i" matched "I Am BeYoutiful"; it says nothing of a need.
    let drink = b.names("i drink too much", 5);
    assert_ne!(drink.first().map(String::as_str), Some("I Am BeYoutiful"), "{drink:?}");
    assert!(b.fitting("i drink too much", 5, &["alcohol", "drink", "drug", "addict"]) >= 4, "{drink:?}");

    // "can't" is not "can".
    let sleep = b.names("can't sleep", 5);
    assert!(b.fitting("can't sleep", 3, &["sleep", "insomnia"]) >= 2, "{sleep:?}");

    // "and" alone matched a seventh of the directory; with other words it adds nothing.
    assert_eq!(b.total("and"), 0);
    assert_eq!(b.total("i and the for"), 0, "only function words: nothing to match");
    let lonely = b.names("lonely and old", 5);
    assert!(
        b.fitting("lonely and old", 5, &["lonel", "isolat", "befriend", "companion", "older", "age uk"]) >= 4,
        "{lonely:?}"
    );

    // "for" brought in "Singing for Wellbeing".
    let food = b.names("no money for food", 5);
    assert!(!food.iter().take(3).any(|n| n == "Singing for Wellbeing"), "{food:?}");
    assert!(b.fitting("no money for food", 5, &["food", "debt", "money", "benefit"]) >= 4, "{food:?}");

    // Bereavement services are there, though no one types "bereavement".
    for loss in ["my husband died", "lost my wife", "my mum passed away"] {
        let found = b.names(loss, 5);
        assert!(b.fitting(loss, 3, &["bereave", "grief", "loss of"]) >= 2, "{loss}: {found:?}");
    }

    // The need, whichever way it is put.
    for (query, about) in [
        ("somewhere to live", &["housing", "homeless", "accommodation"][..]),
        ("i look after my mum", &["carer", "caring"][..]),
        ("can't pay my bills", &["debt", "money", "benefit", "bills"][..]),
    ] {
        let found = b.names(query, 5);
        assert!(b.fitting(query, 5, about) >= 3, "{query}: {found:?}");
    }
}
