//! Turning what someone typed in a "where" box into a point and the areas it lies in.

use kith_domain::geo::{Place, Point, PostcodeInfo};
use kith_domain::postcode::{Postcode, PostcodeError, Whereabouts};
use kith_domain::spelling::edit_distance;
use kith_search::Near;
use kith_store::{OutwardArea, Store, StoreError, place_key};
use serde::Serialize;

/// A place Kith found for a "where" box.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Located {
    Postcode(PostcodeInfo),
    Outward(OutwardArea),
    Place(Place),
}

impl Located {
    pub fn point(&self) -> Point {
        match self {
            Located::Postcode(info) => info.place.point(),
            Located::Outward(area) => area.centre,
            Located::Place(place) => Point { lat: place.latitude, lon: place.longitude },
        }
    }

    /// Area codes (council, health board, ward, …) known to hold the place; a service
    /// whose service area names one of them covers it.
    pub fn area_codes(&self) -> Vec<String> {
        match self {
            Located::Postcode(info) => info.place.area_codes().map(str::to_owned).collect(),
            Located::Outward(area) => area.local_authority.iter().cloned().collect(),
            Located::Place(place) => place.local_authority.iter().cloned().collect(),
        }
    }

    /// A search around it, `radius_km` wide, that also takes services covering its areas.
    pub fn near(&self, radius_km: f64) -> Near {
        Near::around(self.point(), self.area_codes(), radius_km)
    }

    /// How to name it back to the person: "G31 2ER", "G31", "Parkhead".
    pub fn label(&self) -> String {
        match self {
            Located::Postcode(info) => info.place.postcode.to_string(),
            Located::Outward(area) => area.outward.clone(),
            Located::Place(place) => place.name.clone(),
        }
    }
}

/// Why a "where" box could not be placed, worded for the person who typed it.
#[derive(Debug, thiserror::Error)]
pub enum LocateError {
    #[error("{0}")]
    Malformed(#[from] PostcodeError),
    #[error("We could not find the postcode {postcode}{}", did_you_mean(.suggestions))]
    UnknownPostcode { postcode: Postcode, suggestions: Vec<String> },
    #[error("We could not find any postcodes starting {outward}")]
    UnknownOutward { outward: String },
    #[error("We could not find a place called “{name}”{}", did_you_mean(.suggestions))]
    UnknownPlace { name: String, suggestions: Vec<String> },
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl LocateError {
    /// Whether the person can fix this by typing something else (a 4xx, not a 5xx).
    pub fn is_input(&self) -> bool {
        !matches!(self, LocateError::Store(_))
    }

    /// The message without its "Did you mean …?", for a page that shows the
    /// suggestions as links.
    pub fn headline(&self) -> String {
        match self {
            LocateError::UnknownPostcode { postcode, .. } => format!("We could not find the postcode {postcode}"),
            LocateError::UnknownPlace { name, .. } => format!("We could not find a place called “{name}”"),
            LocateError::Malformed(e) if e.suggestion().is_some() => {
                let text = e.to_string();
                text.split(". Did you mean").next().unwrap_or(&text).to_owned()
            }
            other => other.to_string(),
        }
    }

    pub fn suggestions(&self) -> Vec<String> {
        match self {
            LocateError::Malformed(e) => e.suggestion().map(ToString::to_string).into_iter().collect(),
            LocateError::UnknownPostcode { suggestions, .. } | LocateError::UnknownPlace { suggestions, .. } => {
                suggestions.clone()
            }
            _ => Vec::new(),
        }
    }
}

/// ". Did you mean A, B or C?", or nothing when there are none.
pub(crate) fn did_you_mean(suggestions: &[String]) -> String {
    match suggestions {
        [] => String::new(),
        [one] => format!(". Did you mean {one}?"),
        [init @ .., last] => format!(". Did you mean {} or {last}?", init.join(", ")),
    }
}

const SUGGESTIONS: usize = 3;

fn closest(target: &str, candidates: impl IntoIterator<Item = String>, max_distance: usize) -> Vec<String> {
    let mut scored: Vec<(usize, String)> = candidates
        .into_iter()
        .map(|c| (edit_distance(target, &c, false), c))
        .filter(|(d, _)| *d <= max_distance)
        .collect();
    scored.sort();
    scored.dedup_by(|a, b| a.1 == b.1);
    scored.into_iter().take(SUGGESTIONS).map(|(_, c)| c).collect()
}

/// Known postcodes close to `text`, a postcode mistyped past what
/// [`PostcodeError::suggestion`] can mend ("BS1 1A"): up to three with the same outward
/// code, two edits away at most, nearest first.
pub async fn postcodes_near(store: &dyn Store, text: &str) -> Result<Vec<String>, StoreError> {
    let compact: String = text.split_whitespace().collect::<String>().to_uppercase();
    let outward = match text.split_whitespace().collect::<Vec<_>>()[..] {
        [outward, _] => outward.to_uppercase(),
        _ if compact.len() > 3 => compact[..compact.len() - 3].to_owned(),
        _ => return Ok(Vec::new()),
    };
    if !outward.chars().all(|c| c.is_ascii_alphanumeric()) {
        return Ok(Vec::new());
    }
    let target = format!("{outward} {}", compact.get(outward.len()..).unwrap_or_default());
    let near = store.postcodes_with_prefix(&format!("{outward} "), 2000).await?;
    Ok(closest(&target, near.into_iter().map(|p| p.postcode.to_string()), 2))
}

/// Finds a postcode, outward code or place name, with suggestions when it is unknown.
pub async fn locate(store: &dyn Store, input: &str) -> Result<Located, LocateError> {
    match Whereabouts::parse(input)? {
        Whereabouts::Postcode(postcode) => {
            if let Some(info) = store.postcode(&postcode).await? {
                return Ok(Located::Postcode(info));
            }
            // Near misses: the same sector first, then the same outward code.
            let mut suggestions = Vec::new();
            for prefix in [postcode.sector().to_owned(), format!("{} ", postcode.outward())] {
                let near = store.postcodes_with_prefix(&prefix, 2000).await?;
                suggestions = closest(postcode.as_str(), near.into_iter().map(|p| p.postcode.to_string()), 2);
                if !suggestions.is_empty() {
                    break;
                }
            }
            Err(LocateError::UnknownPostcode { postcode, suggestions })
        }
        Whereabouts::Outward(outward) => match store.outward(&outward).await? {
            Some(area) => Ok(Located::Outward(area)),
            None => Err(LocateError::UnknownOutward { outward: outward.to_string() }),
        },
        Whereabouts::Place(name) => {
            let mut places = store.places_named(&name, 20).await?;
            let key = place_key(&name);
            if let Some(i) = places.iter().position(|p| place_key(&p.name) == key) {
                return Ok(Located::Place(places.swap_remove(i)));
            }
            if places.len() == 1 {
                return Ok(Located::Place(places.remove(0)));
            }
            let stem: String = name.chars().take(3).collect();
            let near = store.places_named(&stem, 200).await?;
            let suggestions: Vec<String> = places.into_iter().map(|p| p.name).take(SUGGESTIONS).collect();
            let suggestions = if suggestions.is_empty() {
                closest(&key, near.into_iter().map(|p| p.name.to_lowercase()), 3)
                    .into_iter()
                    .map(|n| title_case(&n))
                    .collect()
            } else {
                suggestions
            };
            Err(LocateError::UnknownPlace { name, suggestions })
        }
    }
}

fn title_case(s: &str) -> String {
    s.split(' ')
        .map(|w| {
            let mut c = w.chars();
            c.next().map(|f| f.to_uppercase().chain(c).collect::<String>()).unwrap_or_default()
        })
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggestions_are_the_closest_spellings() {
        assert_eq!(
            closest("G31 2EX", ["G31 2ER".into(), "G31 2ES".into(), "G31 4AA".into()], 2),
            ["G31 2ER", "G31 2ES"]
        );
    }

    #[test]
    fn messages() {
        assert_eq!(did_you_mean(&["A".into(), "B".into(), "C".into()]), ". Did you mean A, B or C?");
        assert_eq!(title_case("st andrews"), "St Andrews");
    }
}
