//! Geography on SQLite.

use super::SqliteStore;
use crate::doc::{PostcodePlaceParts, assemble, deprivation_from};
use crate::{GeoCounts, OutwardArea, Result, place_key};
use kith_domain::geo::{Deprivation, Place, Point, PostcodeInfo, PostcodePlace};
use kith_domain::postcode::{Outward, Postcode};
use rusqlite::{Connection, OptionalExtension, Row, params};

const POSTCODE_COLUMNS: &str =
    "postcode, latitude, longitude, country, local_authority, health_area, hscp, ward, lsoa11, lsoa21";

fn postcode_row(r: &Row<'_>) -> rusqlite::Result<(String, PostcodePlaceParts)> {
    Ok((
        r.get(0)?,
        PostcodePlaceParts {
            latitude: r.get(1)?,
            longitude: r.get(2)?,
            codes: [r.get(3)?, r.get(4)?, r.get(5)?, r.get(6)?, r.get(7)?, r.get(8)?, r.get(9)?],
        },
    ))
}

fn deprivation_for(conn: &Connection, place: &PostcodePlace) -> Result<Vec<Deprivation>> {
    let mut stmt = conn.prepare_cached(
        "SELECT index_version, area_code, rank, decile, quintile FROM deprivation
         WHERE (area_code = ?1 AND index_version <> 'imd2025') OR (area_code = ?2 AND index_version = 'imd2025')
         ORDER BY index_version",
    )?;
    let rows = stmt.query_map(params![place.lsoa11, place.lsoa21], |r| {
        Ok((r.get::<_, String>(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
    })?;
    let mut out = Vec::new();
    for row in rows {
        let (index, area, rank, decile, quintile) = row?;
        out.push(deprivation_from(&index, area, rank, decile, quintile)?);
    }
    Ok(out)
}

fn count(n: i64) -> u64 {
    u64::try_from(n).unwrap_or(0)
}

impl SqliteStore {
    pub(crate) async fn put_postcodes_impl(&self, postcodes: Vec<PostcodePlace>) -> Result<u64> {
        self.write(move |tx, _| {
            let mut stmt = tx.prepare_cached(&format!(
                "INSERT OR REPLACE INTO postcodes ({POSTCODE_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)"
            ))?;
            for p in &postcodes {
                stmt.execute(params![
                    p.postcode.as_str(),
                    p.latitude,
                    p.longitude,
                    p.country,
                    p.local_authority,
                    p.health_area,
                    p.hscp,
                    p.ward,
                    p.lsoa11,
                    p.lsoa21
                ])?;
            }
            Ok(postcodes.len() as u64)
        })
        .await
    }

    pub(crate) async fn put_deprivation_impl(&self, rows: Vec<Deprivation>) -> Result<u64> {
        self.write(move |tx, _| {
            let mut stmt = tx.prepare_cached(
                "INSERT OR REPLACE INTO deprivation (index_version, area_code, rank, decile, quintile)
                 VALUES (?1, ?2, ?3, ?4, ?5)",
            )?;
            for d in &rows {
                stmt.execute(params![d.index.as_str(), d.area_code, d.rank, d.decile, d.quintile])?;
            }
            Ok(rows.len() as u64)
        })
        .await
    }

    pub(crate) async fn put_places_impl(&self, places: Vec<Place>) -> Result<u64> {
        self.write(move |tx, _| {
            let mut stmt = tx.prepare_cached(
                "INSERT OR REPLACE INTO places (name_key, name, latitude, longitude, local_authority)
                 VALUES (?1, ?2, ?3, ?4, ?5)",
            )?;
            for p in &places {
                stmt.execute(params![
                    place_key(&p.name),
                    p.name,
                    p.latitude,
                    p.longitude,
                    p.local_authority.as_deref().unwrap_or("")
                ])?;
            }
            Ok(places.len() as u64)
        })
        .await
    }

    pub(crate) async fn postcode_impl(&self, postcode: &Postcode) -> Result<Option<PostcodeInfo>> {
        let postcode = postcode.as_str().to_owned();
        self.read(move |conn| {
            let row = conn
                .prepare_cached(&format!("SELECT {POSTCODE_COLUMNS} FROM postcodes WHERE postcode = ?1"))?
                .query_row([&postcode], postcode_row)
                .optional()?;
            let Some((pc, parts)) = row else { return Ok(None) };
            let place = assemble(&pc, parts)?;
            let deprivation = deprivation_for(conn, &place)?;
            Ok(Some(PostcodeInfo { place, deprivation }))
        })
        .await
    }

    pub(crate) async fn postcodes_with_prefix_impl(&self, prefix: &str, limit: u32) -> Result<Vec<PostcodePlace>> {
        let prefix = prefix.to_ascii_uppercase();
        self.read(move |conn| {
            let mut stmt = conn.prepare_cached(&format!(
                "SELECT {POSTCODE_COLUMNS} FROM postcodes WHERE postcode >= ?1 AND postcode < ?1 || char(127)
                 ORDER BY postcode LIMIT ?2"
            ))?;
            let rows = stmt.query_map(params![prefix, limit], postcode_row)?;
            let mut out = Vec::new();
            for row in rows {
                let (pc, parts) = row?;
                out.push(assemble(&pc, parts)?);
            }
            Ok(out)
        })
        .await
    }

    pub(crate) async fn outward_impl(&self, outward: &Outward) -> Result<Option<OutwardArea>> {
        let outward = outward.as_str().to_owned();
        self.read(move |conn| {
            let prefix = format!("{outward} ");
            let (n, lat, lon): (i64, Option<f64>, Option<f64>) = conn
                .prepare_cached(
                    "SELECT count(*), avg(latitude), avg(longitude) FROM postcodes
                     WHERE postcode >= ?1 AND postcode < ?1 || char(127)",
                )?
                .query_row([&prefix], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
            let (Some(lat), Some(lon)) = (lat, lon) else { return Ok(None) };
            let local_authority: Option<String> = conn
                .prepare_cached(
                    "SELECT local_authority FROM postcodes
                     WHERE postcode >= ?1 AND postcode < ?1 || char(127) AND local_authority IS NOT NULL
                     GROUP BY local_authority ORDER BY count(*) DESC, local_authority LIMIT 1",
                )?
                .query_row([&prefix], |r| r.get(0))
                .optional()?;
            Ok(Some(OutwardArea { outward, centre: Point { lat, lon }, postcodes: count(n), local_authority }))
        })
        .await
    }

    pub(crate) async fn places_named_impl(&self, name: &str, limit: u32) -> Result<Vec<Place>> {
        let key = place_key(name);
        self.read(move |conn| {
            let mut stmt = conn.prepare_cached(
                "SELECT name, latitude, longitude, local_authority FROM places
                 WHERE name_key >= ?1 AND name_key < ?1 || char(127)
                 ORDER BY length(name_key), name_key, local_authority LIMIT ?2",
            )?;
            let rows = stmt.query_map(params![key, limit], |r| {
                let la: String = r.get(3)?;
                Ok(Place {
                    name: r.get(0)?,
                    latitude: r.get(1)?,
                    longitude: r.get(2)?,
                    local_authority: (!la.is_empty()).then_some(la),
                })
            })?;
            Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
        })
        .await
    }

    pub(crate) async fn geo_counts_impl(&self) -> Result<GeoCounts> {
        self.read(|conn| {
            let n = |sql: &str| conn.query_row(sql, [], |r| r.get::<_, i64>(0)).map(count);
            Ok(GeoCounts {
                postcodes: n("SELECT count(*) FROM postcodes")?,
                deprivation: n("SELECT count(*) FROM deprivation")?,
                places: n("SELECT count(*) FROM places")?,
            })
        })
        .await
    }
}
