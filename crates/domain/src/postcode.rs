//! UK postcodes: normalising what people type, and telling them clearly when it is
//! not a postcode.
//!
//! "g31 2er", "G312ER" and " G31  2ER " are all [`Postcode`] `G31 2ER`. A postcode
//! is an outward code (area letters, district digits, sometimes a letter: `G31`,
//! `SW1A`, `KY16`) and an inward code (a digit and two letters: `2ER`).

use serde::{Deserialize, Serialize};
use std::fmt;

/// A postcode in its standard form: upper case, one space before the inward code.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Postcode(String);

/// An outward code on its own ("G31", "KY16"), which people often type instead of a
/// full postcode.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Outward(String);

/// Why some text is not a postcode, worded for the person who typed it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PostcodeError {
    #[error("Enter a postcode, like G31 2ER")]
    Empty,
    #[error("“{input}” is not a postcode: a postcode has letters and numbers only, like G31 2ER")]
    BadCharacters { input: String },
    #[error("“{input}” is too {which} to be a postcode: a full postcode has 5 to 7 letters and numbers, like G31 2ER")]
    BadLength { input: String, which: &'static str },
    #[error("“{input}” is not a postcode: {reason}{}", suggestion.as_ref().map(|s| format!(". Did you mean {s}?")).unwrap_or_default())]
    BadFormat { input: String, reason: &'static str, suggestion: Option<Postcode> },
}

impl PostcodeError {
    /// A likely intended postcode, where one letter-for-digit slip explains the mistake.
    pub fn suggestion(&self) -> Option<&Postcode> {
        match self {
            PostcodeError::BadFormat { suggestion, .. } => suggestion.as_ref(),
            _ => None,
        }
    }
}

impl Postcode {
    /// Reads a full postcode, ignoring case and spaces.
    pub fn parse(input: &str) -> Result<Postcode, PostcodeError> {
        let compact = compact(input)?;
        if compact.len() < 5 || compact.len() > 7 {
            let which = if compact.len() < 5 { "short" } else { "long" };
            return Err(PostcodeError::BadLength { input: shown(input), which });
        }
        let (outward, inward) = compact.split_at(compact.len() - 3);
        match check(outward, inward) {
            Ok(()) => Ok(Postcode(format!("{outward} {inward}"))),
            Err(reason) => {
                Err(PostcodeError::BadFormat { input: shown(input), reason, suggestion: repair(outward, inward) })
            }
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// "G31" of "G31 2ER".
    pub fn outward(&self) -> &str {
        self.0.split_once(' ').map_or(self.0.as_str(), |(o, _)| o)
    }

    /// The postcode sector, "G31 2" of "G31 2ER": a few thousand addresses.
    pub fn sector(&self) -> &str {
        &self.0[..self.0.len() - 2]
    }
}

impl Outward {
    /// Reads an outward code on its own ("g31", "KY16").
    pub fn parse(input: &str) -> Option<Outward> {
        let compact = compact(input).ok()?;
        (check_outward(&compact).is_ok()).then_some(Outward(compact))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Postcode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Display for Outward {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl TryFrom<String> for Postcode {
    type Error = PostcodeError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Postcode::parse(&value)
    }
}

impl From<Postcode> for String {
    fn from(p: Postcode) -> String {
        p.0
    }
}

/// What someone typed in a "where" box: a postcode, an outward code, or a place name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Whereabouts {
    Postcode(Postcode),
    Outward(Outward),
    Place(String),
}

impl Whereabouts {
    /// Reads a "where" box. Text with a digit is taken for a postcode, and a malformed
    /// one is an error; text without digits is a place name.
    pub fn parse(input: &str) -> Result<Whereabouts, PostcodeError> {
        let trimmed = input.trim();
        if trimmed.is_empty() {
            return Err(PostcodeError::Empty);
        }
        if !trimmed.chars().any(|c| c.is_ascii_digit()) {
            return Ok(Whereabouts::Place(trimmed.split_whitespace().collect::<Vec<_>>().join(" ")));
        }
        if let Some(outward) = Outward::parse(trimmed) {
            return Ok(Whereabouts::Outward(outward));
        }
        Postcode::parse(trimmed).map(Whereabouts::Postcode)
    }
}

fn shown(input: &str) -> String {
    let trimmed = input.trim();
    if trimmed.chars().count() > 20 {
        format!("{}…", trimmed.chars().take(20).collect::<String>())
    } else {
        trimmed.to_owned()
    }
}

fn compact(input: &str) -> Result<String, PostcodeError> {
    let compact: String = input.chars().filter(|c| !c.is_whitespace()).collect::<String>().to_ascii_uppercase();
    if compact.is_empty() {
        return Err(PostcodeError::Empty);
    }
    if !compact.chars().all(|c| c.is_ascii_alphanumeric()) {
        return Err(PostcodeError::BadCharacters { input: shown(input) });
    }
    Ok(compact)
}

fn check(outward: &str, inward: &str) -> Result<(), &'static str> {
    check_outward(outward)?;
    let b = inward.as_bytes();
    if !(b[0].is_ascii_digit() && b[1].is_ascii_alphabetic() && b[2].is_ascii_alphabetic()) {
        return Err("the last part of a postcode is a number then two letters, like the 2ER in G31 2ER");
    }
    Ok(())
}

/// Outward codes: A9, A99, AA9, AA99, A9A, AA9A.
fn check_outward(outward: &str) -> Result<(), &'static str> {
    const REASON: &str = "the first part of a postcode is one or two letters then a number, like G31 or KY16";
    let b = outward.as_bytes();
    let letters = b.iter().take_while(|c| c.is_ascii_alphabetic()).count();
    if !(1..=2).contains(&letters) || b.len() < letters + 1 || b.len() > letters + 2 {
        return Err(REASON);
    }
    let rest = &b[letters..];
    let ok = match rest {
        [d] => d.is_ascii_digit(),
        [d, e] => d.is_ascii_digit() && e.is_ascii_alphanumeric(),
        _ => false,
    };
    if ok { Ok(()) } else { Err(REASON) }
}

/// Mends the slips people make most: O for 0, I or L for 1, S for 5 where a digit
/// belongs, and the reverse where a letter belongs.
fn repair(outward: &str, inward: &str) -> Option<Postcode> {
    let to_digit = |c: u8| match c {
        b'O' => b'0',
        b'I' | b'L' => b'1',
        b'S' => b'5',
        b'Z' => b'2',
        c => c,
    };
    let to_letter = |c: u8| match c {
        b'0' => b'O',
        b'1' => b'I',
        b'5' => b'S',
        b'2' => b'Z',
        c => c,
    };
    let mut inward: Vec<u8> = inward.bytes().collect();
    inward[0] = to_digit(inward[0]);
    inward[1] = to_letter(inward[1]);
    inward[2] = to_letter(inward[2]);
    let ob = outward.as_bytes();
    // Try the outward code as one or two letters then digits, and keep the reading that
    // changes least: "BS1 IAD" is BS1 1AD, not B51 1AD.
    let mut best: Option<(usize, Postcode)> = None;
    for letters in [1usize, 2] {
        if ob.len() <= letters {
            continue;
        }
        let mut o: Vec<u8> = ob.to_vec();
        for c in o.iter_mut().take(letters) {
            *c = to_letter(*c);
        }
        o[letters] = to_digit(o[letters]);
        // One slip in the outward code, at most, or the guess is no longer the person's.
        let changes = o.iter().zip(ob).filter(|(a, b)| a != b).count();
        if changes > 1 || best.as_ref().is_some_and(|(fewest, _)| *fewest <= changes) {
            continue;
        }
        let (o, i) = (String::from_utf8(o).ok()?, String::from_utf8(inward.clone()).ok()?);
        if check(&o, &i).is_ok() {
            best = Some((changes, Postcode(format!("{o} {i}"))));
        }
    }
    best.map(|(_, p)| p)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(s: &str) -> String {
        match Postcode::parse(s) {
            Ok(p) => p.to_string(),
            Err(e) => panic!("{s:?} should parse: {e}"),
        }
    }

    #[test]
    fn spacing_and_case_do_not_matter() {
        for input in ["g31 2er", "G312ER", " G31  2ER ", "g 3 1 2 e r"] {
            assert_eq!(ok(input), "G31 2ER");
        }
        assert_eq!(ok("sw1a1aa"), "SW1A 1AA");
        assert_eq!(ok("KY169SS"), "KY16 9SS");
        assert_eq!(ok("s1 2hh"), "S1 2HH");
        assert_eq!(ok("BS1 5TR"), "BS1 5TR");
    }

    #[test]
    fn parts() {
        let p = Postcode::parse("KY16 9SS").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(p.outward(), "KY16");
        assert_eq!(p.sector(), "KY16 9");
    }

    #[test]
    fn malformed_postcodes_say_what_is_wrong() {
        assert_eq!(Postcode::parse("  "), Err(PostcodeError::Empty));
        let e = Postcode::parse("G31").err().map(|e| e.to_string()).unwrap_or_default();
        assert!(e.contains("too short"), "{e}");
        let e = Postcode::parse("G31 2ER!").err().map(|e| e.to_string()).unwrap_or_default();
        assert!(e.contains("letters and numbers only"), "{e}");
        let e = Postcode::parse("G31 22R").err().map(|e| e.to_string()).unwrap_or_default();
        assert!(e.contains("number then two letters"), "{e}");
        let e = Postcode::parse("123 4AB").err().map(|e| e.to_string()).unwrap_or_default();
        assert!(e.contains("one or two letters then a number"), "{e}");
    }

    #[test]
    fn letter_for_digit_slips_get_a_suggestion() {
        let e = Postcode::parse("G31 ZER").err();
        assert_eq!(e.as_ref().and_then(|e| e.suggestion()).map(Postcode::as_str), Some("G31 2ER"));
        assert!(e.map(|e| e.to_string()).unwrap_or_default().ends_with("Did you mean G31 2ER?"));
        let e = Postcode::parse("Gl 2ER").err();
        assert_eq!(e.as_ref().and_then(|e| e.suggestion()).map(Postcode::as_str), Some("G1 2ER"));
        // Well formed, so not a slip this can see: whether it exists is the directory's question.
        assert_eq!(Postcode::parse("G3l 2ER").map(|p| p.to_string()), Ok("G3L 2ER".to_owned()));
        let e = Postcode::parse("KY16 955").err();
        assert_eq!(e.as_ref().and_then(|e| e.suggestion()).map(Postcode::as_str), Some("KY16 9SS"));
        let e = Postcode::parse("BS1 IAD").err();
        assert_eq!(e.as_ref().and_then(|e| e.suggestion()).map(Postcode::as_str), Some("BS1 1AD"), "not B51 1AD");
        let e = Postcode::parse("BS1 STR").err();
        assert_eq!(e.as_ref().and_then(|e| e.suggestion()).map(Postcode::as_str), Some("BS1 5TR"));
        let e = Postcode::parse("1231 2ER").err();
        assert_eq!(e.as_ref().and_then(|e| e.suggestion()).map(Postcode::as_str), None);
    }

    #[test]
    fn whereabouts() {
        assert_eq!(Whereabouts::parse("g31"), Ok(Whereabouts::Outward(Outward("G31".into()))));
        assert_eq!(Whereabouts::parse(" KY16 "), Ok(Whereabouts::Outward(Outward("KY16".into()))));
        assert!(matches!(Whereabouts::parse("g31 2er"), Ok(Whereabouts::Postcode(_))));
        assert_eq!(Whereabouts::parse("  St  Andrews "), Ok(Whereabouts::Place("St Andrews".into())));
        assert!(Whereabouts::parse("G31 2E").is_err());
        assert_eq!(Whereabouts::parse(""), Err(PostcodeError::Empty));
    }

    #[test]
    fn serde_normalises() {
        let p: Postcode = serde_json::from_str("\"g312er\"").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(serde_json::to_string(&p).unwrap_or_default(), "\"G31 2ER\"");
        assert!(serde_json::from_str::<Postcode>("\"nope\"").is_err());
    }
}
