//! The search index never lies about what it holds: a rebuild happens beside the live
//! index, an index that belongs to another copy of the database is rebuilt, and a
//! damaged one is set aside and rebuilt rather than failing every search.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use kith_domain::hsds::Service;
use kith_domain::{FixedClock, ServiceStatus};
use kith_search::sync::{catch_up, rebuild};
use kith_search::{SearchIndex, SearchQuery};
use kith_store::testing::TestStore;
use std::path::Path;
use std::sync::{Arc, Mutex};
use uuid::Uuid;

fn now() -> chrono::DateTime<chrono::Utc> {
    chrono::DateTime::from_timestamp(1_780_000_000, 0).unwrap()
}

async fn demo_store() -> TestStore {
    let t = kith_store::testing::sqlite(Arc::new(FixedClock::new(now()))).await;
    let batch = kith_demo::generate(&kith_demo::DemoOptions::new(now()));
    t.store.write_batch(batch).await.unwrap();
    t
}

/// A store with `n` services called "Walking group N", written one change each.
async fn walking_groups(n: u128) -> TestStore {
    let t = kith_store::testing::sqlite(Arc::new(FixedClock::new(now()))).await;
    for i in 0..n {
        let s = Service::new(Uuid::from_u128(1_000 + i), format!("Walking group {i}"), ServiceStatus::Active);
        t.store.put_service(s).await.unwrap();
    }
    t
}

fn everything(index: &SearchIndex) -> usize {
    index.search(&SearchQuery { limit: 1, ..Default::default() }).unwrap().total
}

fn walking(index: &SearchIndex) -> usize {
    index.search(&SearchQuery { text: Some("walking".into()), limit: 1, ..Default::default() }).unwrap().total
}

/// While a rebuild fills a new index, searches read the whole old one; the new one is
/// swapped in only when it is complete.
#[tokio::test]
async fn searches_during_a_rebuild_see_the_whole_index() {
    let t = demo_store().await;
    let dir = tempfile::tempdir().unwrap();
    let index = SearchIndex::open(dir.path()).unwrap();
    catch_up(&*t.store, &index).await.unwrap();
    let before = everything(&index);
    assert!(before > 400, "{before}");

    let seen = Arc::new(Mutex::new(Vec::new()));
    let (searching, seen_) = (index.clone(), seen.clone());
    let rebuilt =
        rebuild(&*t.store, &index, &mut move |_, _| seen_.lock().unwrap().push(everything(&searching))).await.unwrap();
    assert_eq!(rebuilt, 450);
    let seen = seen.lock().unwrap().clone();
    assert!(!seen.is_empty(), "the rebuild reported its progress");
    assert!(seen.iter().all(|n| *n == before), "mid-rebuild, searches found {seen:?} of {before}");
    assert_eq!(everything(&index), before);
    assert_eq!(index.segments(), 1, "a rebuilt index is merged into one segment");
    // One generation on disk beside the name of the live one: the old one is gone.
    let mut entries: Vec<String> =
        std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
    entries.sort();
    assert_eq!(entries.len(), 2, "{entries:?}");
    assert!(entries.contains(&"current".to_owned()));
}

/// A rebuild that fails part way leaves the live index as it was.
#[tokio::test]
async fn a_rebuild_that_does_not_finish_leaves_the_live_index_alone() {
    let t = walking_groups(5).await;
    let index = SearchIndex::in_memory().unwrap();
    catch_up(&*t.store, &index).await.unwrap();
    assert_eq!(walking(&index), 5);
    index.start_rebuild().unwrap();
    index.add(&[Service::new(Uuid::from_u128(7), "Walking football", ServiceStatus::Active)]).unwrap();
    assert_eq!(walking(&index), 5, "the rebuild is not seen before it is finished");
    index.finish_rebuild(&kith_search::Position::unchecked(99), false).unwrap();
    assert_eq!(walking(&index), 5);
    assert_eq!(index.seq(), t.store.last_seq().await.unwrap());
}

/// An index that has applied more of the feed than the database holds (the database was
/// restored from an older backup), or whose last change is not the database's, belongs
/// to another copy of the directory: the follower rebuilds it, and new writes are found.
#[tokio::test]
async fn an_index_ahead_of_a_restored_database_is_rebuilt() {
    let dir = tempfile::tempdir().unwrap();
    let later = walking_groups(8).await;
    {
        let index = SearchIndex::open(dir.path()).unwrap();
        catch_up(&*later.store, &index).await.unwrap();
        assert_eq!(walking(&index), 8);
    }
    // "Restored" from a backup taken after three of the eight.
    let restored = walking_groups(3).await;
    let index = SearchIndex::open(dir.path()).unwrap();
    assert_eq!(index.seq(), 8, "the index still says where it got to in the other copy");
    let caught = catch_up(&*restored.store, &index).await.unwrap();
    assert!(caught.rebuilt, "{caught:?}");
    assert_eq!(walking(&index), 3);
    // Writes after the restore are followed.
    for i in 0..6 {
        let s = Service::new(Uuid::from_u128(50 + i), format!("Walking netball {i}"), ServiceStatus::Active);
        restored.store.put_service(s).await.unwrap();
    }
    catch_up(&*restored.store, &index).await.unwrap();
    assert_eq!(walking(&index), 9);
}

/// The same position in another history: the database has as many changes as the index
/// applied, but not the same ones.
#[tokio::test]
async fn an_index_from_another_database_with_as_many_changes_is_rebuilt() {
    let dir = tempfile::tempdir().unwrap();
    let first = walking_groups(4).await;
    {
        let index = SearchIndex::open(dir.path()).unwrap();
        catch_up(&*first.store, &index).await.unwrap();
    }
    let other = kith_store::testing::sqlite(Arc::new(FixedClock::new(now()))).await;
    for i in 0..6u128 {
        let s = Service::new(Uuid::from_u128(9_000 + i), format!("Lunch club {i}"), ServiceStatus::Active);
        other.store.put_service(s).await.unwrap();
    }
    let index = SearchIndex::open(dir.path()).unwrap();
    let caught = catch_up(&*other.store, &index).await.unwrap();
    assert!(caught.rebuilt, "{caught:?}");
    assert_eq!(walking(&index), 0);
    assert_eq!(everything(&index), 6);
    // Once rebuilt it is trusted: the next round has nothing to do.
    let again = catch_up(&*other.store, &index).await.unwrap();
    assert!(!again.rebuilt && again.changes == 0, "{again:?}");
}

/// The live generation's folder and its largest file.
fn largest_file(dir: &Path) -> std::path::PathBuf {
    let current = std::fs::read_to_string(dir.join("current")).unwrap();
    let mut files: Vec<(u64, std::path::PathBuf)> = std::fs::read_dir(dir.join(current.trim()))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e != "json" && e != "lock"))
        .map(|p| (std::fs::metadata(&p).unwrap().len(), p))
        .collect();
    files.sort();
    files.pop().unwrap().1
}

/// A damaged index (a file cut short, a file overwritten, a file gone, or `current`
/// naming nothing) is set aside when it is opened: searches answer (with nothing, until
/// the follower has rebuilt it), never panic, and the rebuild brings everything back.
#[tokio::test]
async fn a_damaged_index_is_set_aside_and_rebuilt() {
    let t = demo_store().await;
    type Damage = fn(&Path);
    let damages: [(&str, Damage); 4] = [
        ("cut short", |dir| {
            let f = largest_file(dir);
            let len = std::fs::metadata(&f).unwrap().len();
            std::fs::OpenOptions::new().write(true).open(&f).unwrap().set_len(len / 2).unwrap();
        }),
        ("overwritten", |dir| {
            let f = largest_file(dir);
            let mut bytes = std::fs::read(&f).unwrap();
            let middle = bytes.len() / 2;
            for b in &mut bytes[middle..middle + 64] {
                *b = !*b;
            }
            std::fs::write(&f, bytes).unwrap();
        }),
        ("gone", |dir| std::fs::remove_file(largest_file(dir)).unwrap()),
        ("named wrongly", |dir| std::fs::write(dir.join("current"), "77").unwrap()),
    ];
    for (what, damage) in damages {
        let dir = tempfile::tempdir().unwrap();
        {
            let index = SearchIndex::open(dir.path()).unwrap();
            catch_up(&*t.store, &index).await.unwrap();
            assert_eq!(index.len(), 450);
        }
        damage(dir.path());
        let index = SearchIndex::open(dir.path()).unwrap();
        assert_eq!(index.seq(), 0, "{what}: the damaged index is set aside");
        assert_eq!(everything(&index), 0, "{what}");
        let caught = catch_up(&*t.store, &index).await.unwrap();
        assert!(caught.rebuilt, "{what}");
        assert_eq!(index.len(), 450, "{what}");
        // And it opens cleanly next time.
        drop(index);
        assert_eq!(SearchIndex::open(dir.path()).unwrap().len(), 450, "{what}");
    }
}

/// An index folder written by an earlier version (an index straight in the folder, with
/// no generations) is cleared and rebuilt.
#[tokio::test]
async fn an_index_from_before_generations_is_replaced() {
    let t = walking_groups(2).await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("meta.json"), "{}").unwrap();
    std::fs::write(dir.path().join("0123.idx"), "old").unwrap();
    let index = SearchIndex::open(dir.path()).unwrap();
    assert!(!dir.path().join("meta.json").exists());
    catch_up(&*t.store, &index).await.unwrap();
    assert_eq!(walking(&index), 2);
}

/// An index another process is writing to (`kith serve` while `kith search` or `kith
/// reindex` runs on the same data directory) is refused with a message, never set aside:
/// setting it aside would empty the running server's index.
#[tokio::test]
async fn an_index_in_use_elsewhere_is_refused_not_set_aside() {
    let t = walking_groups(3).await;
    let dir = tempfile::tempdir().unwrap();
    let serving = SearchIndex::open(dir.path()).unwrap();
    catch_up(&*t.store, &serving).await.unwrap();
    let second = SearchIndex::open(dir.path()).unwrap_err().to_string();
    assert!(second.contains("in use by another Kith process"), "{second}");
    assert_eq!(walking(&serving), 3, "the open index is untouched");
    drop(serving);
    assert_eq!(SearchIndex::open(dir.path()).unwrap().len(), 3, "and opens once it is free");
}
