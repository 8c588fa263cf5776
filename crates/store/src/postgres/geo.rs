//! Geography on PostgreSQL: bulk writes as arrays through UNNEST.

use crate::doc::{PostcodePlaceParts, assemble, deprivation_from};
use crate::{GeoCounts, OutwardArea, Result, place_key};
use deadpool_postgres::Pool;
use kith_domain::geo::{Deprivation, Place, Point, PostcodeInfo, PostcodePlace};
use kith_domain::postcode::{Outward, Postcode};
use tokio_postgres::Row;

const POSTCODE_COLUMNS: &str =
    "postcode, latitude, longitude, country, local_authority, health_area, hscp, ward, lsoa11, lsoa21";
const CHUNK: usize = 10_000;

fn postcode_from(r: &Row) -> Result<PostcodePlace> {
    let pc: String = r.get(0);
    assemble(
        &pc,
        PostcodePlaceParts {
            latitude: r.get(1),
            longitude: r.get(2),
            codes: [r.get(3), r.get(4), r.get(5), r.get(6), r.get(7), r.get(8), r.get(9)],
        },
    )
}

fn count(n: i64) -> u64 {
    u64::try_from(n).unwrap_or(0)
}

pub(super) async fn put_postcodes(pool: &Pool, postcodes: Vec<PostcodePlace>) -> Result<u64> {
    let mut client = pool.get().await?;
    let tx = client.transaction().await?;
    for chunk in postcodes.chunks(CHUNK) {
        let col = |f: fn(&PostcodePlace) -> Option<&str>| chunk.iter().map(f).collect::<Vec<_>>();
        let codes: Vec<&str> = chunk.iter().map(|p| p.postcode.as_str()).collect();
        let lats: Vec<f64> = chunk.iter().map(|p| p.latitude).collect();
        let lons: Vec<f64> = chunk.iter().map(|p| p.longitude).collect();
        tx.execute(
            &format!(
                "INSERT INTO postcodes ({POSTCODE_COLUMNS})
                 SELECT * FROM UNNEST($1::text[], $2::float8[], $3::float8[], $4::text[], $5::text[], $6::text[],
                                      $7::text[], $8::text[], $9::text[], $10::text[])
                 ON CONFLICT (postcode) DO UPDATE SET latitude = excluded.latitude, longitude = excluded.longitude,
                    country = excluded.country, local_authority = excluded.local_authority,
                    health_area = excluded.health_area, hscp = excluded.hscp, ward = excluded.ward,
                    lsoa11 = excluded.lsoa11, lsoa21 = excluded.lsoa21"
            ),
            &[
                &codes,
                &lats,
                &lons,
                &col(|p| p.country.as_deref()),
                &col(|p| p.local_authority.as_deref()),
                &col(|p| p.health_area.as_deref()),
                &col(|p| p.hscp.as_deref()),
                &col(|p| p.ward.as_deref()),
                &col(|p| p.lsoa11.as_deref()),
                &col(|p| p.lsoa21.as_deref()),
            ],
        )
        .await?;
    }
    tx.commit().await?;
    Ok(postcodes.len() as u64)
}

pub(super) async fn put_deprivation(pool: &Pool, rows: Vec<Deprivation>) -> Result<u64> {
    let mut client = pool.get().await?;
    let tx = client.transaction().await?;
    for chunk in rows.chunks(CHUNK) {
        let index: Vec<&str> = chunk.iter().map(|d| d.index.as_str()).collect();
        let area: Vec<&str> = chunk.iter().map(|d| d.area_code.as_str()).collect();
        let rank: Vec<i32> = chunk.iter().map(|d| i32::try_from(d.rank).unwrap_or(i32::MAX)).collect();
        let decile: Vec<i16> = chunk.iter().map(|d| i16::from(d.decile)).collect();
        let quintile: Vec<i16> = chunk.iter().map(|d| i16::from(d.quintile)).collect();
        tx.execute(
            "INSERT INTO deprivation (index_version, area_code, rank, decile, quintile)
             SELECT * FROM UNNEST($1::text[], $2::text[], $3::int4[], $4::int2[], $5::int2[])
             ON CONFLICT (area_code, index_version) DO UPDATE SET rank = excluded.rank, decile = excluded.decile,
                quintile = excluded.quintile",
            &[&index, &area, &rank, &decile, &quintile],
        )
        .await?;
    }
    tx.commit().await?;
    Ok(rows.len() as u64)
}

pub(super) async fn put_places(pool: &Pool, places: Vec<Place>) -> Result<u64> {
    let mut client = pool.get().await?;
    let tx = client.transaction().await?;
    for chunk in places.chunks(CHUNK) {
        let keys: Vec<String> = chunk.iter().map(|p| place_key(&p.name)).collect();
        let names: Vec<&str> = chunk.iter().map(|p| p.name.as_str()).collect();
        let lats: Vec<f64> = chunk.iter().map(|p| p.latitude).collect();
        let lons: Vec<f64> = chunk.iter().map(|p| p.longitude).collect();
        let las: Vec<&str> = chunk.iter().map(|p| p.local_authority.as_deref().unwrap_or("")).collect();
        tx.execute(
            "INSERT INTO places (name_key, name, latitude, longitude, local_authority)
             SELECT * FROM UNNEST($1::text[], $2::text[], $3::float8[], $4::float8[], $5::text[])
             ON CONFLICT (name_key, local_authority) DO UPDATE SET name = excluded.name,
                latitude = excluded.latitude, longitude = excluded.longitude",
            &[&keys, &names, &lats, &lons, &las],
        )
        .await?;
    }
    tx.commit().await?;
    Ok(places.len() as u64)
}

pub(super) async fn postcode(pool: &Pool, postcode: &Postcode) -> Result<Option<PostcodeInfo>> {
    let client = pool.get().await?;
    let Some(row) = client
        .query_opt(&format!("SELECT {POSTCODE_COLUMNS} FROM postcodes WHERE postcode = $1"), &[&postcode.as_str()])
        .await?
    else {
        return Ok(None);
    };
    let place = postcode_from(&row)?;
    let rows = client
        .query(
            "SELECT index_version, area_code, rank::int8, decile::int8, quintile::int8 FROM deprivation
             WHERE (area_code = $1 AND index_version <> 'imd2025') OR (area_code = $2 AND index_version = 'imd2025')
             ORDER BY index_version",
            &[&place.lsoa11, &place.lsoa21],
        )
        .await?;
    let deprivation = rows
        .iter()
        .map(|r| deprivation_from(r.get::<_, &str>(0), r.get(1), r.get(2), r.get(3), r.get(4)))
        .collect::<Result<_>>()?;
    Ok(Some(PostcodeInfo { place, deprivation }))
}

/// The upper bound of a prefix range: every postcode character sorts below DEL.
fn upper(prefix: &str) -> String {
    format!("{prefix}\u{7f}")
}

pub(super) async fn postcodes_with_prefix(pool: &Pool, prefix: &str, limit: u32) -> Result<Vec<PostcodePlace>> {
    let prefix = prefix.to_ascii_uppercase();
    let client = pool.get().await?;
    let rows = client
        .query(
            &format!(
                "SELECT {POSTCODE_COLUMNS} FROM postcodes WHERE postcode >= $1 AND postcode < $2
                 ORDER BY postcode LIMIT $3"
            ),
            &[&prefix, &upper(&prefix), &i64::from(limit)],
        )
        .await?;
    rows.iter().map(postcode_from).collect()
}

pub(super) async fn outward(pool: &Pool, outward: &Outward) -> Result<Option<OutwardArea>> {
    let prefix = format!("{} ", outward.as_str());
    let client = pool.get().await?;
    let row = client
        .query_one(
            "SELECT count(*), avg(latitude), avg(longitude),
                    (SELECT local_authority FROM postcodes
                     WHERE postcode >= $1 AND postcode < $2 AND local_authority IS NOT NULL
                     GROUP BY local_authority ORDER BY count(*) DESC, local_authority COLLATE \"C\" LIMIT 1)
             FROM postcodes WHERE postcode >= $1 AND postcode < $2",
            &[&prefix, &upper(&prefix)],
        )
        .await?;
    let (lat, lon): (Option<f64>, Option<f64>) = (row.get(1), row.get(2));
    let (Some(lat), Some(lon)) = (lat, lon) else { return Ok(None) };
    Ok(Some(OutwardArea {
        outward: outward.as_str().to_owned(),
        centre: Point { lat, lon },
        postcodes: count(row.get(0)),
        local_authority: row.get(3),
    }))
}

pub(super) async fn places_named(pool: &Pool, name: &str, limit: u32) -> Result<Vec<Place>> {
    let key = place_key(name);
    let client = pool.get().await?;
    let rows = client
        .query(
            "SELECT name, latitude, longitude, local_authority FROM places
             WHERE name_key >= $1 AND name_key < $2
             ORDER BY length(name_key), name_key, local_authority COLLATE \"C\" LIMIT $3",
            &[&key, &upper(&key), &i64::from(limit)],
        )
        .await?;
    Ok(rows
        .iter()
        .map(|r| {
            let la: String = r.get(3);
            Place {
                name: r.get(0),
                latitude: r.get(1),
                longitude: r.get(2),
                local_authority: (!la.is_empty()).then_some(la),
            }
        })
        .collect())
}

pub(super) async fn geo_counts(pool: &Pool) -> Result<GeoCounts> {
    let client = pool.get().await?;
    let row = client
        .query_one(
            "SELECT (SELECT count(*) FROM postcodes), (SELECT count(*) FROM deprivation), (SELECT count(*) FROM places)",
            &[],
        )
        .await?;
    Ok(GeoCounts { postcodes: count(row.get(0)), deprivation: count(row.get(1)), places: count(row.get(2)) })
}
