//! The map that says which column of a sheet holds which Kith field (a small TOML file).
//!
//! ```toml
//! [columns]
//! name = "Group"
//! postcode = "Post code"
//!
//! [fixed]
//! need = "food"
//!
//! [skip]
//! column = "Closed?"
//! equals = "yes"
//! ```

use serde::Deserialize;
use std::collections::BTreeMap;
use std::fmt;

/// A Kith field a sheet's column (or a fixed value) can give.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Field {
    Name,
    Description,
    Organization,
    CharityNumber,
    CompanyNumber,
    Url,
    Email,
    Phone,
    Address,
    Postcode,
    Latitude,
    Longitude,
    LatLong,
    Need,
    Schedule,
}

impl Field {
    pub const ALL: [Field; 15] = [
        Field::Name,
        Field::Description,
        Field::Organization,
        Field::CharityNumber,
        Field::CompanyNumber,
        Field::Url,
        Field::Email,
        Field::Phone,
        Field::Address,
        Field::Postcode,
        Field::Latitude,
        Field::Longitude,
        Field::LatLong,
        Field::Need,
        Field::Schedule,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Field::Name => "name",
            Field::Description => "description",
            Field::Organization => "organization",
            Field::CharityNumber => "charity_number",
            Field::CompanyNumber => "company_number",
            Field::Url => "url",
            Field::Email => "email",
            Field::Phone => "phone",
            Field::Address => "address",
            Field::Postcode => "postcode",
            Field::Latitude => "latitude",
            Field::Longitude => "longitude",
            Field::LatLong => "lat_long",
            Field::Need => "need",
            Field::Schedule => "schedule",
        }
    }

    /// Reads a field's name; British spelling is accepted for the organisation.
    pub fn parse(s: &str) -> Option<Field> {
        let s = s.trim().to_ascii_lowercase();
        match s.as_str() {
            "organisation" => Some(Field::Organization),
            "needs" => Some(Field::Need),
            _ => Field::ALL.into_iter().find(|f| f.as_str() == s),
        }
    }

    fn known() -> String {
        Field::ALL.map(Field::as_str).join(", ")
    }
}

impl fmt::Display for Field {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Rows to leave out: those whose `column` holds `equals` (trimmed, any case).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Skip {
    pub column: String,
    pub equals: String,
}

/// A checked map: every field name is one Kith knows. Whether the sheet has the columns
/// it names is checked against the sheet's header ([`SheetMap::check_header`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SheetMap {
    pub columns: BTreeMap<Field, String>,
    pub fixed: BTreeMap<Field, String>,
    pub skip: Vec<Skip>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawMap {
    #[serde(default)]
    columns: BTreeMap<String, String>,
    #[serde(default)]
    fixed: BTreeMap<String, String>,
    /// `[skip]` for one rule, `[[skip]]` for several.
    #[serde(default)]
    skip: Option<toml::Value>,
}

impl SheetMap {
    /// Reads a map's TOML. The error says what is wrong in words for whoever wrote it.
    pub fn parse(text: &str) -> Result<SheetMap, String> {
        let raw: RawMap = toml::from_str(text).map_err(|e| {
            let message = e.message().to_owned();
            let line =
                e.span().map(|span| text.as_bytes().iter().take(span.start).filter(|b| **b == b'\n').count() + 1);
            match line {
                Some(line) => format!("line {line}: {message}"),
                None => message,
            }
        })?;
        let mut map = SheetMap::default();
        for (section, given, into) in [("columns", raw.columns, &mut map.columns), ("fixed", raw.fixed, &mut map.fixed)]
        {
            for (key, value) in given {
                let field = Field::parse(&key).ok_or_else(|| {
                    format!("[{section}] names {key:?}, which is not a Kith field; the fields are {}", Field::known())
                })?;
                if value.trim().is_empty() {
                    return Err(format!("[{section}] {key} is empty; name a column, or leave {key} out"));
                }
                if into.insert(field, value.trim().to_owned()).is_some() {
                    return Err(format!("[{section}] gives {field} twice"));
                }
            }
        }
        let rule = |v: toml::Value| {
            v.try_into::<Skip>().map_err(|e| {
                format!(
                    "[skip] {}; write it as column = \"Closed?\" and equals = \"yes\" (or [[skip]] for several rules)",
                    e.message()
                )
            })
        };
        map.skip = match raw.skip {
            None => Vec::new(),
            Some(toml::Value::Array(rules)) => rules.into_iter().map(rule).collect::<Result<_, _>>()?,
            Some(one) => vec![rule(one)?],
        };
        let has = |f: Field| map.columns.contains_key(&f) || map.fixed.contains_key(&f);
        if !has(Field::Name) {
            return Err("the map gives no column for name under [columns]; every service needs a name".into());
        }
        if has(Field::LatLong) && (has(Field::Latitude) || has(Field::Longitude)) {
            return Err(
                "give either lat_long (one \"latitude,longitude\" column) or latitude and longitude, not both".into()
            );
        }
        if has(Field::Latitude) != has(Field::Longitude) {
            return Err("give both latitude and longitude, or lat_long for one \"latitude,longitude\" column".into());
        }
        Ok(map)
    }

    /// Finds the column each field and skip rule names in the sheet's header (trimmed, any
    /// case). A column the sheet does not have is refused, naming the columns it does.
    pub fn check_header(&self, header: &[String]) -> Result<Columns, String> {
        let find = |name: &str| header.iter().position(|h| h.trim().eq_ignore_ascii_case(name.trim()));
        let mut missing = Vec::new();
        let mut columns = Columns::default();
        for (field, name) in &self.columns {
            match find(name) {
                Some(i) => {
                    columns.fields.insert(*field, i);
                }
                None => missing.push(format!("{name:?} (for {field})")),
            }
        }
        for skip in &self.skip {
            match find(&skip.column) {
                Some(i) => columns.skip.push((i, skip.equals.trim().to_lowercase())),
                None => missing.push(format!("{:?} (for [skip])", skip.column)),
            }
        }
        if missing.is_empty() {
            return Ok(columns);
        }
        let have = header.iter().map(|h| format!("{:?}", h.trim())).collect::<Vec<_>>().join(", ");
        let (what, them) = if missing.len() == 1 { ("a column", "it") } else { ("columns", "them") };
        Err(format!(
            "the map names {what} the sheet does not have: {}. The sheet's columns are {have}; correct the map to name {them} as the header does",
            missing.join(", ")
        ))
    }
}

/// Where each mapped field is in the sheet's rows, by column index.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Columns {
    pub fields: BTreeMap<Field, usize>,
    /// Column index and the value (trimmed, lower case) that leaves a row out.
    pub skip: Vec<(usize, String)>,
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn a_map_reads_columns_fixed_values_and_skip_rules() {
        let map = SheetMap::parse(
            "[columns]\nname = \"Group\"\norganisation = \"Run by\"\n[fixed]\nneed = \"food\"\n[skip]\ncolumn = \"Closed\"\nequals = \"True\"\n",
        )
        .unwrap();
        assert_eq!(map.columns[&Field::Name], "Group");
        assert_eq!(map.columns[&Field::Organization], "Run by");
        assert_eq!(map.fixed[&Field::Need], "food");
        assert_eq!(map.skip, [Skip { column: "Closed".into(), equals: "True".into() }]);
        let many = SheetMap::parse(
            "[columns]\nname = \"Group\"\n[[skip]]\ncolumn = \"A\"\nequals = \"x\"\n[[skip]]\ncolumn = \"B\"\nequals = \"y\"\n",
        )
        .unwrap();
        assert_eq!(many.skip.len(), 2);
        let e = SheetMap::parse("[columns]\nname = \"Group\"\n[skip]\ncolumn = \"Closed\"\n").unwrap_err();
        assert!(e.starts_with("[skip] missing field `equals`; write it as column = "), "{e}");
    }

    #[test]
    fn an_unknown_field_or_a_missing_column_is_named() {
        let e = SheetMap::parse("[columns]\nname = \"Group\"\nopening_hours = \"When\"\n").unwrap_err();
        assert!(e.contains("\"opening_hours\", which is not a Kith field") && e.contains("schedule"), "{e}");
        let e = SheetMap::parse("[colums]\nname = \"Group\"\n").unwrap_err();
        assert!(e.contains("line 1") && e.contains("colums"), "{e}");
        let e = SheetMap::parse("[columns]\ndescription = \"About\"\n").unwrap_err();
        assert!(e.contains("no column for name"), "{e}");
        let e = SheetMap::parse("[columns]\nname = \"N\"\nlatitude = \"Lat\"\n").unwrap_err();
        assert!(e.contains("both latitude and longitude"), "{e}");

        let map = SheetMap::parse(
            "[columns]\nname = \"Group\"\npostcode = \"Post code\"\n[skip]\ncolumn = \"Closed\"\nequals = \"yes\"\n",
        )
        .unwrap();
        let header: Vec<String> = ["group ", "Postcode", "Closed"].map(String::from).to_vec();
        let e = map.check_header(&header).unwrap_err();
        assert!(e.contains("\"Post code\" (for postcode)"), "{e}");
        assert!(e.contains("The sheet's columns are \"group\", \"Postcode\", \"Closed\""), "{e}");
        let header: Vec<String> = ["GROUP", "Post Code", "closed"].map(String::from).to_vec();
        let columns = map.check_header(&header).unwrap();
        assert_eq!(columns.fields[&Field::Postcode], 1);
        assert_eq!(columns.skip, [(2, "yes".to_owned())]);
    }
}
