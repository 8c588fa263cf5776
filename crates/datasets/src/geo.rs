//! Geography files in their official layouts, found by header name so that extracts
//! and the full files read alike.
//!
//! - **Postcodes**: the ONS Postcode Directory (ONSPD) and the National Statistics
//!   Postcode Lookup (NSPL): `pcds`, `lat`, `long`, `oslaua`/`laua`/`lad…`,
//!   `oshlthau`/`hlthau`/`icb…`, `hscp`, `osward`/`ward`, `lsoa11`, `lsoa21`, `ctry`,
//!   `doterm`.
//! - **Deprivation**: File 7 of the English Indices of Deprivation (IMD 2019 by
//!   LSOA 2011, IMD 2025 by LSOA 2021) and the SIMD 2020v2 ranks by data zone.
//! - **Place names**: the ONS Index of Place Names (`placeNN nm`, `lat`, `long`,
//!   `ladNNcd`).

use kith_domain::geo::{Deprivation, DeprivationIndex, Place, Point, PostcodePlace};
use kith_domain::postcode::Postcode;
use std::collections::HashSet;
use std::fmt;
use std::io::Read;

/// A file that cannot be read at all.
#[derive(Debug, thiserror::Error)]
pub enum GeoError {
    #[error("{source_name}: {message}")]
    Layout { source_name: String, message: String },
    #[error("{source_name}: cannot read the file: {error}")]
    Read { source_name: String, error: String },
}

/// One row that was not loaded, by line number (the header is line 1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RowProblem {
    pub line: u64,
    pub reason: String,
}

impl fmt::Display for RowProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}: {}", self.line, self.reason)
    }
}

/// What a geography file held.
#[derive(Debug, Clone)]
pub struct GeoRead<T> {
    pub rows: Vec<T>,
    /// Rows with a problem, which were not loaded.
    pub rejected: Vec<RowProblem>,
    /// Rows left out on purpose, such as terminated postcodes.
    pub skipped: u64,
    pub notes: Vec<String>,
}

impl<T> Default for GeoRead<T> {
    fn default() -> Self {
        GeoRead { rows: Vec::new(), rejected: Vec::new(), skipped: 0, notes: Vec::new() }
    }
}

/// Which kind of geography file a header describes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GeoFileKind {
    Postcodes,
    Deprivation(DeprivationIndex),
    Places,
}

struct Header {
    names: Vec<String>,
}

impl Header {
    fn find(&self, candidates: &[&str]) -> Option<usize> {
        candidates.iter().find_map(|c| self.names.iter().position(|n| n.eq_ignore_ascii_case(c)))
    }

    /// The first column whose name starts with one of `prefixes` and ends with `suffix`,
    /// such as `lad25cd` for ("lad", "cd").
    fn find_versioned(&self, prefixes: &[&str], suffix: &str) -> Option<usize> {
        self.names.iter().position(|n| {
            let n = n.to_ascii_lowercase();
            prefixes.iter().any(|p| {
                n.strip_prefix(p)
                    .and_then(|rest| rest.strip_suffix(suffix))
                    .is_some_and(|digits| digits.len() == 2 && digits.bytes().all(|b| b.is_ascii_digit()))
            })
        })
    }
}

fn csv_reader<R: Read>(input: R) -> csv::Reader<R> {
    // Rows end at a line feed, so that line numbers count CRLF files' lines right; the
    // carriage return before it is trimmed with the other spaces.
    csv::ReaderBuilder::new()
        .flexible(true)
        .trim(csv::Trim::All)
        .terminator(csv::Terminator::Any(b'\n'))
        .from_reader(input)
}

fn header<R: Read>(reader: &mut csv::Reader<R>, source_name: &str) -> Result<Header, GeoError> {
    let record =
        reader.headers().map_err(|e| GeoError::Read { source_name: source_name.into(), error: e.to_string() })?;
    let names: Vec<String> = record.iter().map(|h| h.trim_start_matches('\u{feff}').trim().to_owned()).collect();
    if names.iter().all(String::is_empty) {
        return Err(GeoError::Layout { source_name: source_name.into(), message: "the file is empty".into() });
    }
    Ok(Header { names })
}

const IMD_RANK_SHORT: &str = "Index of Multiple Deprivation (IMD) Rank";

/// Works out what a geography file is from its first line.
pub fn detect(first_line: &str) -> Option<GeoFileKind> {
    let mut reader = csv_reader(first_line.as_bytes());
    let header = header(&mut reader, "").ok()?;
    if header.find(&["pcds", "pcd", "pcd2", "postcode"]).is_some() && header.find(&["lat"]).is_some() {
        return Some(GeoFileKind::Postcodes);
    }
    if header.find(&["Data_Zone", "DataZone"]).is_some() && header.find(&["SIMD2020v2_Rank"]).is_some() {
        return Some(GeoFileKind::Deprivation(DeprivationIndex::Simd2020v2));
    }
    let imd_rank = header.names.iter().any(|n| n.starts_with(IMD_RANK_SHORT));
    if imd_rank && header.find(&["LSOA code (2011)"]).is_some() {
        return Some(GeoFileKind::Deprivation(DeprivationIndex::Imd2019));
    }
    if imd_rank && header.find(&["LSOA code (2021)"]).is_some() {
        return Some(GeoFileKind::Deprivation(DeprivationIndex::Imd2025));
    }
    if header.find_versioned(&["place"], "nm").is_some() && header.find(&["lat"]).is_some() {
        return Some(GeoFileKind::Places);
    }
    None
}

/// The layouts [`detect`] knows, for an error message.
pub const KNOWN_LAYOUTS: &str = "an ONS Postcode Directory or NSPL file (columns pcds, lat, long, …), \
    English IMD 2019 or 2025 File 7 (LSOA code, IMD rank), SIMD 2020v2 ranks (Data_Zone, SIMD2020v2_Rank), \
    or the ONS Index of Place Names (placeNNnm, lat, long)";

fn optional_code(value: &str) -> Option<String> {
    let v = value.trim();
    // The ONSPD marks "no code" with a pseudo-code ending in 99999999.
    (!v.is_empty() && !v.ends_with("99999999")).then(|| v.to_owned())
}

fn field(record: &csv::StringRecord, column: Option<usize>) -> &str {
    column.and_then(|c| record.get(c)).unwrap_or("")
}

/// A row, or a note of why it could not be read.
fn readable(record: csv::Result<csv::StringRecord>, rejected: &mut Vec<RowProblem>) -> Option<csv::StringRecord> {
    match record {
        // No field of a geography file spans lines: one that does began with a quote
        // that is never closed, and holds the rest of the file.
        Ok(r) if r.iter().any(|f| f.contains('\n')) => {
            let lines = r.iter().map(|f| f.matches('\n').count()).sum::<usize>();
            let line = line_of(&r);
            rejected.push(RowProblem {
                line,
                reason: format!(
                    "a quote opened on this line is never closed, so the {lines} lines after it were read as part of this row and not loaded; close the quote and load the file again"
                ),
            });
            None
        }
        Ok(r) => Some(r),
        Err(e) => {
            let line = e.position().map_or(0, csv::Position::line);
            rejected.push(RowProblem { line, reason: format!("not a CSV row: {e}") });
            None
        }
    }
}

fn line_of(record: &csv::StringRecord) -> u64 {
    record.position().map_or(0, csv::Position::line)
}

/// Reads postcodes from an ONSPD- or NSPL-layout CSV.
pub fn read_postcodes<R: Read>(input: R, source_name: &str) -> Result<GeoRead<PostcodePlace>, GeoError> {
    let mut reader = csv_reader(input);
    let h = header(&mut reader, source_name)?;
    let layout = |message: String| GeoError::Layout { source_name: source_name.into(), message };
    let postcode = h
        .find(&["pcds", "pcd", "pcd2", "postcode"])
        .ok_or_else(|| layout(format!("no postcode column (pcds); expected {KNOWN_LAYOUTS}")))?;
    let lat = h.find(&["lat"]).ok_or_else(|| layout("no lat column".into()))?;
    let long = h.find(&["long", "lon", "lng"]).ok_or_else(|| layout("no long column".into()))?;
    let country = h.find(&["ctry", "ctry25cd"]);
    let la = h.find(&["oslaua", "laua", "lad"]).or_else(|| h.find_versioned(&["lad"], "cd"));
    let health = h.find(&["oshlthau", "hlthau", "icb"]).or_else(|| h.find_versioned(&["icb", "hlth"], "cd"));
    let hscp = h.find(&["hscp"]).or_else(|| h.find_versioned(&["hscp"], "cd"));
    let ward = h.find(&["osward", "ward"]).or_else(|| h.find_versioned(&["wd"], "cd"));
    let lsoa11 = h.find(&["lsoa11", "lsoa11cd"]);
    let lsoa21 = h.find(&["lsoa21", "lsoa21cd"]);
    let terminated = h.find(&["doterm"]);

    let mut out = GeoRead::default();
    let mut seen = HashSet::new();
    for record in reader.records() {
        let Some(record) = readable(record, &mut out.rejected) else { continue };
        let line = line_of(&record);
        if !field(&record, terminated).is_empty() {
            out.skipped += 1;
            continue;
        }
        let raw = field(&record, Some(postcode));
        let pc = match Postcode::parse(raw) {
            Ok(pc) => pc,
            Err(e) => {
                out.rejected.push(RowProblem { line, reason: e.to_string() });
                continue;
            }
        };
        let coordinate = |column: usize, what: &str| -> Result<f64, String> {
            let text = field(&record, Some(column));
            text.parse::<f64>().map_err(|_| format!("{pc}: {what} {text:?} is not a number"))
        };
        let point = match (coordinate(lat, "latitude"), coordinate(long, "longitude")) {
            (Ok(lat), Ok(lon)) => Point { lat, lon },
            (Err(reason), _) | (_, Err(reason)) => {
                out.rejected.push(RowProblem { line, reason });
                continue;
            }
        };
        if !point.in_uk() {
            // The ONSPD gives postcodes without a grid reference lat 99.999999.
            out.rejected
                .push(RowProblem { line, reason: format!("{pc}: no usable position ({}, {})", point.lat, point.lon) });
            continue;
        }
        if !seen.insert(pc.clone()) {
            out.rejected.push(RowProblem { line, reason: format!("{pc} appears more than once; the first is kept") });
            continue;
        }
        out.rows.push(PostcodePlace {
            postcode: pc,
            latitude: point.lat,
            longitude: point.lon,
            country: optional_code(field(&record, country)),
            local_authority: optional_code(field(&record, la)),
            health_area: optional_code(field(&record, health)),
            hscp: optional_code(field(&record, hscp)),
            ward: optional_code(field(&record, ward)),
            lsoa11: optional_code(field(&record, lsoa11)),
            lsoa21: optional_code(field(&record, lsoa21)),
        });
    }
    if lsoa11.is_none() && lsoa21.is_none() {
        out.notes.push("no lsoa11 or lsoa21 column, so these postcodes will have no deprivation rank".into());
    }
    Ok(out)
}

/// Reads deprivation ranks. `index` overrides what the header says.
pub fn read_deprivation<R: Read>(
    input: R,
    source_name: &str,
    index: Option<DeprivationIndex>,
) -> Result<GeoRead<Deprivation>, GeoError> {
    let mut reader = csv_reader(input);
    let h = header(&mut reader, source_name)?;
    let layout = |message: String| GeoError::Layout { source_name: source_name.into(), message };
    let line = h.names.join(",");
    let detected = match detect(&line) {
        Some(GeoFileKind::Deprivation(i)) => Some(i),
        _ => None,
    };
    let index = index.or(detected).ok_or_else(|| {
        layout("not a deprivation file: expected IMD 2019 or 2025 File 7 (LSOA code, IMD rank) or SIMD 2020v2 ranks (Data_Zone, SIMD2020v2_Rank)".into())
    })?;
    let (area, rank, decile) = match index {
        DeprivationIndex::Simd2020v2 => {
            (h.find(&["Data_Zone", "DataZone"]), h.find(&["SIMD2020v2_Rank"]), h.find(&["SIMD2020v2_Decile"]))
        }
        DeprivationIndex::Imd2019 | DeprivationIndex::Imd2025 => (
            h.find(&[if index == DeprivationIndex::Imd2019 { "LSOA code (2011)" } else { "LSOA code (2021)" }]),
            h.names.iter().position(|n| n.starts_with(IMD_RANK_SHORT)),
            h.names.iter().position(|n| n.starts_with("Index of Multiple Deprivation (IMD) Decile")),
        ),
    };
    let area = area.ok_or_else(|| layout(format!("no area code column for {}", index.label())))?;
    let rank = rank.ok_or_else(|| layout(format!("no rank column for {}", index.label())))?;

    // Deciles are computed from ranks across every area in the file, so read it all first.
    let mut parsed: Vec<(u64, String, u32, Option<u8>)> = Vec::new();
    let mut out = GeoRead::default();
    let mut seen = HashSet::new();
    for record in reader.records() {
        let Some(record) = readable(record, &mut out.rejected) else { continue };
        let line = line_of(&record);
        let code = field(&record, Some(area)).to_owned();
        if code.is_empty() {
            out.rejected.push(RowProblem { line, reason: "no area code".into() });
            continue;
        }
        let text = field(&record, Some(rank));
        let Some(r) = text.parse::<u32>().ok().filter(|r| *r > 0) else {
            out.rejected
                .push(RowProblem { line, reason: format!("{code}: rank {text:?} is not a whole number from 1") });
            continue;
        };
        if !seen.insert(code.clone()) {
            out.rejected.push(RowProblem { line, reason: format!("{code} appears more than once; the first is kept") });
            continue;
        }
        let published = field(&record, decile).parse::<u8>().ok();
        parsed.push((line, code, r, published));
    }
    let areas = u32::try_from(parsed.len()).unwrap_or(u32::MAX);
    let national: u32 = match index {
        DeprivationIndex::Imd2019 => 32_844,
        DeprivationIndex::Imd2025 => 33_755,
        DeprivationIndex::Simd2020v2 => 6_976,
    };
    // Ranks are national: a file of part of the country (a city's areas) keeps its ranks
    // out of the country's areas, and its deciles with them.
    let out_of = areas.max(national);
    let mut disagree = 0u64;
    for (line, code, r, published) in parsed {
        match Deprivation::from_rank(index, code.clone(), r, out_of) {
            Some(d) => {
                if published.is_some_and(|p| p != d.decile) {
                    disagree += 1;
                }
                out.rows.push(d);
            }
            None => out.rejected.push(RowProblem {
                line,
                reason: format!("{code}: rank {r} is more than the {out_of} areas {} ranks", index.label()),
            }),
        }
    }
    if disagree > 0 {
        out.notes.push(format!(
            "{disagree} published deciles differ from ceil(rank × 10 / {out_of}); Kith uses the computed ones"
        ));
    }
    if areas < national {
        out.notes.push(format!(
            "the file has {areas} of the {national} areas {} ranks: a part of the country, whose deciles are the national ones",
            index.label()
        ));
    } else if areas > national {
        out.notes.push(format!(
            "the file has {areas} areas where {} has {national}; deciles are within this file's areas",
            index.label()
        ));
    }
    Ok(out)
}

/// Reads place names from an ONS Index of Place Names layout.
pub fn read_places<R: Read>(input: R, source_name: &str) -> Result<GeoRead<Place>, GeoError> {
    let mut reader = csv_reader(input);
    let h = header(&mut reader, source_name)?;
    let layout = |message: String| GeoError::Layout { source_name: source_name.into(), message };
    let name = h
        .find(&["placenm", "name"])
        .or_else(|| h.find_versioned(&["place"], "nm"))
        .ok_or_else(|| layout("no place name column (placeNNnm)".into()))?;
    let lat = h.find(&["lat"]).ok_or_else(|| layout("no lat column".into()))?;
    let long = h.find(&["long", "lon"]).ok_or_else(|| layout("no long column".into()))?;
    let la = h.find(&["lad", "laua"]).or_else(|| h.find_versioned(&["lad"], "cd"));
    let mut out = GeoRead::default();
    for record in reader.records() {
        let Some(record) = readable(record, &mut out.rejected) else { continue };
        let line = line_of(&record);
        let place = field(&record, Some(name)).to_owned();
        let point = (field(&record, Some(lat)).parse::<f64>(), field(&record, Some(long)).parse::<f64>());
        match (place.is_empty(), point) {
            (false, (Ok(lat), Ok(lon))) if (Point { lat, lon }).in_uk() => out.rows.push(Place {
                name: place,
                latitude: lat,
                longitude: lon,
                local_authority: optional_code(field(&record, la)),
            }),
            (true, _) => out.rejected.push(RowProblem { line, reason: "no place name".into() }),
            _ => out.rejected.push(RowProblem { line, reason: format!("{place}: no usable position") }),
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const IMD_RANK: &str = "Index of Multiple Deprivation (IMD) Rank (where 1 is most deprived)";

    const ONSPD: &str = "pcd,pcd2,pcds,dointr,doterm,oscty,ced,oslaua,osward,parish,usertype,oseast1m,osnrth1m,osgrdind,oshlthau,nhser,ctry,rgn,streg,pcon,eer,teclec,ttwa,pct,itl,statsward,oa01,casward,npark,lsoa01,msoa01,ur01ind,oac01,oa11,lsoa11,msoa11,wz11,sicbl,bua24,ru11ind,oac11,lat,long,lep1,lep2,pfa,imd,calncv,icb,oa21,lsoa21,msoa21,ruc21ind,hscp
\"G31 2ER\",\"G31  2ER\",\"G31 2ER\",198001,,S99999999,S99999999,S12000049,S13002980,S99999999,0,261270,665070,1,S08000031,S99999999,S92000003,S99999999,0,S14000030,S15000001,S09000007,S22000065,S03000043,S30000015,01C32,60D401,S01010389,S99999999,S99999999,S99999999,3,3C2,S00116970,S01010389,S02001942,S34003340,S99999999,S99999999,1,4B3,55.858779,-4.216347,S99999999,S99999999,S23000009,1281,S99999999,S99999999,S00000000,S99999999,S99999999,99,S37000015
\"G31 9XX\",\"G31  9XX\",\"G31 9XX\",198001,200012,S99999999,S99999999,S12000049,S13002980,S99999999,0,261270,665070,1,S08000031,S99999999,S92000003,S99999999,0,S14000030,S15000001,S09000007,S22000065,S03000043,S30000015,01C32,60D401,S01010389,S99999999,S99999999,S99999999,3,3C2,S00116970,S01010389,S02001942,S34003340,S99999999,S99999999,1,4B3,55.858779,-4.216347,S99999999,S99999999,S23000009,1281,S99999999,S99999999,S00000000,S99999999,S99999999,99,S37000015
\"NOTAPC\",,\"NOTAPC\",198001,,,,,,,,,,,,,,,,,,,,,,,,,,,,,,,,,,,,,,55.0,-4.0,,,,,,,,,,,
\"ZE1 0AA\",,\"ZE1 0AA\",198001,,,,S12000027,,,,,,9,,,S92000003,,,,,,,,,,,,,,,,,,,,,,,,,99.999999,0.000000,,,,,,,,,,,
";

    #[test]
    fn reads_the_full_onspd_header_by_column_name() {
        assert_eq!(detect(ONSPD.lines().next().unwrap_or_default()), Some(GeoFileKind::Postcodes));
        let read = read_postcodes(ONSPD.as_bytes(), "ONSPD.csv").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(read.rows.len(), 1);
        let p = &read.rows[0];
        assert_eq!(p.postcode.as_str(), "G31 2ER");
        assert_eq!(p.local_authority.as_deref(), Some("S12000049"));
        assert_eq!(p.health_area.as_deref(), Some("S08000031"));
        assert_eq!(p.hscp.as_deref(), Some("S37000015"));
        assert_eq!(p.lsoa11.as_deref(), Some("S01010389"));
        assert_eq!(p.lsoa21, None, "the S99999999 pseudo-code means none");
        assert_eq!(read.skipped, 1, "the terminated postcode is left out");
        let reasons: Vec<String> = read.rejected.iter().map(ToString::to_string).collect();
        assert_eq!(reasons.len(), 2, "{reasons:?}");
        assert!(reasons[0].starts_with("line 4: "), "{reasons:?}");
        assert!(reasons[1].contains("ZE1 0AA: no usable position"), "{reasons:?}");
    }

    #[test]
    fn deprivation_files_are_recognised_and_a_part_of_the_country_keeps_its_national_deciles() {
        let simd = "Data_Zone,SIMD2020v2_Rank,SIMD2020v2_Decile\nS01000001,1,1\nS01000002,2,1\nS01000003,6976,1\nS01000004,x,1\nS01000005,7000,10\n";
        let read = read_deprivation(simd.as_bytes(), "simd.csv", None).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(read.rows.len(), 3, "what is valid is loaded");
        assert_eq!((read.rows[0].decile, read.rows[0].quintile), (1, 1));
        assert_eq!((read.rows[2].decile, read.rows[2].quintile), (10, 5), "the national deciles");
        assert_eq!(read.rejected.len(), 2, "{:?}", read.rejected);
        assert!(read.rejected[1].to_string().starts_with("line 6: S01000005: rank 7000 is more than the 6976"));
        assert!(read.notes.iter().any(|n| n.contains("4 of the 6976 areas")), "{:?}", read.notes);
        assert_eq!(read.rows[0].index, DeprivationIndex::Simd2020v2);
        assert_eq!(read.rejected[0].line, 5);
        assert!(read.notes.iter().any(|n| n.contains("published deciles differ")), "{:?}", read.notes);

        let imd = format!("LSOA code (2011),LSOA name (2011),{IMD_RANK}\nE01000001,City of London 001A,29199\n");
        assert_eq!(
            detect(imd.lines().next().unwrap_or_default()),
            Some(GeoFileKind::Deprivation(DeprivationIndex::Imd2019))
        );
        let wrong = read_deprivation("a,b\n1,2\n".as_bytes(), "x.csv", None).err().map(|e| e.to_string());
        assert!(wrong.unwrap_or_default().contains("not a deprivation file"));
    }

    #[test]
    fn rows_are_named_by_their_line_in_crlf_files_and_an_unclosed_quote_is_reported() {
        let crlf = "Data_Zone,SIMD2020v2_Rank\r\nS01000001,1\r\nS01000002,x\r\nS01000003,3\r\n";
        let read = read_deprivation(crlf.as_bytes(), "simd.csv", None).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(read.rows.len(), 2);
        assert_eq!(read.rows[1].area_code, "S01000003", "no carriage return left on the last field");
        assert_eq!(read.rejected.len(), 1);
        assert_eq!(read.rejected[0].line, 3, "{:?}", read.rejected);

        let unclosed = "Data_Zone,SIMD2020v2_Rank\nS01000001,1\n\"S01000002,2\nS01000003,3\nS01000004,4\n";
        let read = read_deprivation(unclosed.as_bytes(), "simd.csv", None).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(read.rows.len(), 1);
        assert_eq!(read.rejected.len(), 1, "{:?}", read.rejected);
        let problem = read.rejected[0].to_string();
        assert!(problem.starts_with("line 3: a quote opened on this line is never closed"), "{problem}");
        assert!(problem.contains("the 2 lines after it"), "{problem}");
    }

    #[test]
    fn place_names() {
        let ipn =
            "place23cd,place23nm,lad23cd,lat,long\nIPN1,Parkhead,S12000049,55.852,-4.199\nIPN2,,S12000049,55.0,-4.0\n";
        assert_eq!(detect(ipn.lines().next().unwrap_or_default()), Some(GeoFileKind::Places));
        let read = read_places(ipn.as_bytes(), "ipn.csv").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(read.rows.len(), 1);
        assert_eq!(read.rows[0].local_authority.as_deref(), Some("S12000049"));
        assert_eq!(read.rejected.len(), 1);
    }
}
