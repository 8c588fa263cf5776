//! The real postcode extracts and deprivation files in `../shared/data/`, read in their
//! official layouts and loaded into both stores.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use kith_datasets::geo::{GeoFileKind, detect, read_deprivation, read_postcodes};
use kith_domain::FixedClock;
use kith_domain::geo::DeprivationIndex;
use kith_domain::postcode::{Outward, Postcode};
use kith_store::testing::{TestStore, shared_dir};
use std::collections::HashSet;
use std::path::Path;
use std::sync::Arc;

fn first_line(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap().lines().next().unwrap().to_owned()
}

fn clock() -> Arc<FixedClock> {
    Arc::new(FixedClock::new(chrono::DateTime::from_timestamp(1_780_000_000, 0).unwrap()))
}

async fn load_and_check(t: &TestStore, shared: &Path) {
    let store = &*t.store;
    let geo = shared.join("data/geo");
    let mut lsoa11 = HashSet::new();
    for (file, rows) in [
        ("postcodes-sheffield.csv", 11_806),
        ("postcodes-glasgow.csv", 15_718),
        ("postcodes-fife.csv", 10_316),
        ("postcodes-bristol.csv", 11_729),
    ] {
        let path = geo.join(file);
        assert_eq!(detect(&first_line(&path)), Some(GeoFileKind::Postcodes), "{file}");
        let read = read_postcodes(std::fs::File::open(&path).unwrap(), file).unwrap();
        // Every row is a current postcode with a position: all load, none rejected.
        assert!(read.rejected.is_empty(), "{file}: {:?}", &read.rejected[..read.rejected.len().min(5)]);
        assert_eq!(read.rows.len(), rows, "{file}");
        lsoa11.extend(read.rows.iter().filter_map(|p| p.lsoa11.clone()));
        assert_eq!(store.put_postcodes(read.rows).await.unwrap(), rows as u64);
    }

    let dep = shared.join("data/deprivation");
    for (file, index, areas) in [
        ("imd2019-england-lsoa11.csv", DeprivationIndex::Imd2019, 32_844),
        ("imd2025-england-lsoa21.csv", DeprivationIndex::Imd2025, 33_755),
        ("simd2020v2-scotland-dz11.csv", DeprivationIndex::Simd2020v2, 6_976),
    ] {
        let path = dep.join(file);
        assert_eq!(detect(&first_line(&path)), Some(GeoFileKind::Deprivation(index)), "{file}");
        let read = read_deprivation(std::fs::File::open(&path).unwrap(), file, None).unwrap();
        assert!(read.rejected.is_empty(), "{file}: {:?}", read.rejected);
        assert_eq!(read.rows.len(), areas, "{file}");
        // Our deciles are the published ones.
        assert!(read.notes.is_empty(), "{file}: {:?}", read.notes);
        store.put_deprivation(read.rows).await.unwrap();
    }

    // Every filled lsoa11 joins to IMD 2019 (England) or SIMD 2020v2 (Scotland).
    let ranked: HashSet<String> = {
        let mut s = HashSet::new();
        for file in ["imd2019-england-lsoa11.csv", "simd2020v2-scotland-dz11.csv"] {
            let read = read_deprivation(std::fs::File::open(dep.join(file)).unwrap(), file, None).unwrap();
            s.extend(read.rows.into_iter().map(|d| d.area_code));
        }
        s
    };
    let unjoined: Vec<&String> = lsoa11.iter().filter(|c| !ranked.contains(*c)).collect();
    assert!(
        unjoined.is_empty(),
        "{} areas have no rank, e.g. {:?}",
        unjoined.len(),
        &unjoined[..unjoined.len().min(5)]
    );

    // A Glasgow East postcode, found however it is typed, with its SIMD decile.
    let pc = Postcode::parse(" g31  2er ").unwrap();
    let info = store.postcode(&pc).await.unwrap().expect("G31 2ER is in the Glasgow extract");
    assert_eq!(info.place.local_authority.as_deref(), Some("S12000049"));
    assert_eq!(info.place.health_area.as_deref(), Some("S08000031"));
    assert_eq!(info.deprivation.len(), 1);
    assert_eq!(info.deprivation[0].index, DeprivationIndex::Simd2020v2);
    assert!((1..=10).contains(&info.deprivation[0].decile));

    // Sheffield: IMD 2019, under either council code.
    let s1 = store.outward(&Outward::parse("S1").unwrap()).await.unwrap().unwrap();
    assert!(["E08000019", "E08000039"].contains(&s1.local_authority.as_deref().unwrap()), "{s1:?}");
    let some_s1 = store.postcodes_with_prefix("S1 ", 1).await.unwrap().remove(0);
    let info = store.postcode(&some_s1.postcode).await.unwrap().unwrap();
    assert!(info.deprivation.iter().all(|d| d.index == DeprivationIndex::Imd2019), "{info:?}");

    let counts = store.geo_counts().await.unwrap();
    assert_eq!(counts.postcodes, 11_806 + 15_718 + 10_316 + 11_729);
    assert_eq!(counts.deprivation, 32_844 + 33_755 + 6_976);
}

#[tokio::test]
async fn real_postcodes_and_deprivation_on_sqlite() {
    let Some(shared) = shared_dir("real_postcodes_and_deprivation_on_sqlite") else { return };
    let t = kith_store::testing::sqlite(clock()).await;
    load_and_check(&t, &shared).await;
    t.cleanup().await;
}

#[tokio::test]
async fn real_postcodes_and_deprivation_on_postgres() {
    let Some(shared) = shared_dir("real_postcodes_and_deprivation_on_postgres") else { return };
    let Some(t) = kith_store::testing::postgres(clock(), "real_geography").await else { return };
    load_and_check(&t, &shared).await;
    t.cleanup().await;
}
