//! Meaning beyond the words: services found by what they mean, with vectors kept in the
//! index and following the change feed. The mechanism is tested with a small model of
//! a few words written here; the real model (scripts/install-model, `$KITH_MODEL_DIR`)
//! on the demo directory.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use kith_app::locate::locate;
use kith_domain::FixedClock;
use kith_search::sync::catch_up;
use kith_search::{Meaning, SearchIndex, SearchQuery, Understanding};
use kith_store::testing::TestStore;
use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

/// A model folder as scripts/install-model writes one, with four-number vectors: words
/// of grief near each other, of music near each other, the two far apart.
fn tiny_model(dir: &Path, fingerprint: &str) {
    let words: &[(&str, [f32; 4])] = &[
        ("##s", [0.0, 0.0, 0.0, 1.0]),
        ("bereavement", [1.0, 0.1, 0.0, 0.0]),
        ("grief", [1.0, 0.15, 0.0, 0.0]),
        ("mourning", [0.95, 0.2, 0.0, 0.0]),
        ("widowed", [0.9, 0.25, 0.0, 0.0]),
        ("music", [0.0, 0.0, 1.0, 0.1]),
        ("singing", [0.0, 0.1, 0.95, 0.0]),
        ("choir", [0.05, 0.0, 0.9, 0.2]),
    ];
    let data: Vec<u8> = words.iter().flat_map(|(_, v)| v.iter().flat_map(|x| x.to_le_bytes())).collect();
    let view = safetensors::tensor::TensorView::new(safetensors::Dtype::F32, vec![words.len(), 4], &data).unwrap();
    let bytes = safetensors::serialize([("vectors", view)], None).unwrap();
    std::fs::write(dir.join("vectors.safetensors"), bytes).unwrap();
    let list: String = words.iter().map(|(w, _)| format!("{w}\n")).collect();
    std::fs::write(dir.join("words.txt"), list).unwrap();
    std::fs::write(dir.join("model.txt"), format!("fingerprint = {fingerprint}\n")).unwrap();
}

async fn demo() -> (TestStore, HashMap<uuid::Uuid, String>) {
    let now = chrono::DateTime::from_timestamp(1_780_000_000, 0).unwrap();
    let t = kith_store::testing::sqlite(Arc::new(FixedClock::new(now))).await;
    let batch = kith_demo::generate(&kith_demo::DemoOptions::new(now));
    let geo = kith_demo::geography::geography(&batch, 2026);
    let names = batch.services.iter().map(|s| (s.id, s.name.clone())).collect();
    t.store.put_postcodes(geo.postcodes).await.unwrap();
    t.store.put_places(geo.places).await.unwrap();
    t.store.write_batch(batch).await.unwrap();
    (t, names)
}

#[test]
fn a_folder_without_vectors_means_words_only_and_a_broken_one_says_what_to_do() {
    let dir = tempfile::tempdir().unwrap();
    assert!(Meaning::load(dir.path()).unwrap().is_none());
    std::fs::write(dir.path().join("vectors.safetensors"), b"not vectors").unwrap();
    let e = Meaning::load(dir.path()).unwrap_err().to_string();
    assert!(e.contains("scripts/install-model"), "{e}");
    tiny_model(dir.path(), "tiny");
    let m = Meaning::load(dir.path()).unwrap().unwrap();
    assert_eq!((m.words(), m.dimensions(), m.fingerprint()), (8, 4, "tiny"));
    // Function words, and words the model has no pieces for or only letters, are left out.
    assert!(m.embed("and the of").is_none());
    assert!(m.embed("sss zzz").is_none(), "letters the model has only as pieces mean nothing");
    let grief = m.embed("grief").unwrap();
    let mourning = m.embed("in mourning").unwrap();
    let music = m.embed("music").unwrap();
    let cos = |a: &[f32], b: &[f32]| a.iter().zip(b).map(|(x, y)| x * y).sum::<f32>();
    assert!(cos(&grief, &mourning) > 0.9 && cos(&grief, &music) < 0.2);
}

#[tokio::test]
async fn a_service_that_means_what_the_query_means_is_found_near_the_place_without_sharing_a_word() {
    let (t, names) = demo().await;
    let model = tempfile::tempdir().unwrap();
    tiny_model(model.path(), "tiny");
    let meaning = Arc::new(Meaning::load(model.path()).unwrap().unwrap());
    let index = SearchIndex::in_memory_with(Some(meaning)).unwrap();
    catch_up(&*t.store, &index).await.unwrap();
    let near = locate(&*t.store, "Parkhead").await.unwrap().near(5.0);
    let search = |understanding| SearchQuery {
        text: Some("mourning".into()),
        near: Some(near.clone()),
        limit: 10,
        understanding,
        ..Default::default()
    };
    // No demo service says "mourning": by words alone nothing is found.
    let words = index.search(&search(Understanding { meaning: false, ..Default::default() })).unwrap();
    assert!(words.hits.is_empty(), "{:?}", words.hits);
    let found = index.search(&search(Understanding::default())).unwrap();
    assert!(!found.hits.is_empty());
    let first = &names[&found.hits[0].id];
    assert!(first.to_lowercase().contains("bereave") || first.to_lowercase().contains("grief"), "{first}");
    assert!(found.hits[0].similarity.unwrap() > 0.5);
    // None found by meaning sings: music is far from mourning.
    for hit in &found.hits {
        assert!(!names[&hit.id].to_lowercase().contains("sing"), "{}", names[&hit.id]);
    }
}

#[tokio::test]
async fn vectors_follow_the_change_feed_and_an_index_built_with_other_vectors_is_rebuilt() {
    let (t, _) = demo().await;
    let model = tempfile::tempdir().unwrap();
    tiny_model(model.path(), "one");
    let dir = tempfile::tempdir().unwrap();
    {
        let index =
            SearchIndex::open_with(dir.path(), Some(Arc::new(Meaning::load(model.path()).unwrap().unwrap()))).unwrap();
        assert!(catch_up(&*t.store, &index).await.unwrap().rebuilt);
        assert_eq!(index.seq(), t.store.last_seq().await.unwrap());
    }
    // The same vectors: the index is kept.
    let same = SearchIndex::open_with(dir.path(), Some(Arc::new(Meaning::load(model.path()).unwrap().unwrap())));
    assert_eq!(same.unwrap().seq(), t.store.last_seq().await.unwrap());
    // Other vectors, or none: it starts again, and the follower rebuilds it.
    tiny_model(model.path(), "two");
    let other =
        SearchIndex::open_with(dir.path(), Some(Arc::new(Meaning::load(model.path()).unwrap().unwrap()))).unwrap();
    assert_eq!(other.seq(), 0);
    assert!(catch_up(&*t.store, &other).await.unwrap().rebuilt);
    drop(other);
    assert_eq!(SearchIndex::open(dir.path()).unwrap().seq(), 0);
}

/// The real model on the demo directory: phrases no vocabulary entry holds find what a
/// person would expect.
#[tokio::test]
async fn the_installed_model_finds_services_by_meaning() {
    let Some(dir) = std::env::var_os("KITH_MODEL_DIR") else {
        assert!(
            std::env::var_os("KITH_REQUIRE_MODEL").is_none(),
            "KITH_REQUIRE_MODEL is set but KITH_MODEL_DIR is not"
        );
        eprintln!("SKIPPED: no word vectors (set KITH_MODEL_DIR after scripts/install-model)");
        return;
    };
    let meaning = Meaning::load(Path::new(&dir)).unwrap().expect("word vectors in KITH_MODEL_DIR");
    let (t, names) = demo().await;
    let index = SearchIndex::in_memory_with(Some(Arc::new(meaning))).unwrap();
    catch_up(&*t.store, &index).await.unwrap();
    let near = locate(&*t.store, "Parkhead").await.unwrap().near(5.0);
    for (query, expect) in [("widowed", &["bereave", "grief", "loss"][..]), ("choir", &["sing", "choir", "music"][..])]
    {
        let r = index
            .search(&SearchQuery { text: Some(query.into()), near: Some(near.clone()), limit: 5, ..Default::default() })
            .unwrap();
        let top: Vec<String> = r.hits.iter().map(|h| names[&h.id].to_lowercase()).collect();
        assert!(top.iter().take(3).any(|n| expect.iter().any(|e| n.contains(e))), "{query}: {top:?}");
    }
}
