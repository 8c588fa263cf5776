//! Need words in a sheet ("food", "Food banks", "lonely") read as Kith's needs: the terms
//! of Kith's social-prescribing taxonomy (`kith_demo::taxonomy`), which search filters by
//! and the demo's services are tagged with.

use kith_demo::needs::NEEDS;
use kith_domain::hsds::{Attribute, Taxonomy, TaxonomyTerm};
use std::collections::HashMap;
use uuid::Uuid;

/// The words a sheet may use for each need: every need's and kind of activity's code and
/// name, and any synonyms given (the search vocabulary's, from `kith_app::imports`).
#[derive(Debug, Clone)]
pub struct NeedWords {
    words: HashMap<String, &'static str>,
}

/// "Food banks", "food-bank" and "food bank" are the same words.
fn key(word: &str) -> String {
    let lower = word.trim().to_lowercase().replace(['-', '_'], " ");
    let words: Vec<&str> = lower.split_whitespace().collect();
    words.join(" ")
}

/// The singular of a word people write in the plural ("food banks" → "food bank").
fn singular(key: &str) -> Option<String> {
    key.strip_suffix('s').filter(|k| !k.ends_with('s')).map(str::to_owned)
}

impl NeedWords {
    /// Kith's needs and kinds of activity, by code or name, singular or plural.
    pub fn kith() -> NeedWords {
        let mut words = HashMap::new();
        let mut add = |word: &str, code: &'static str| {
            let k = key(word);
            if let Some(one) = singular(&k) {
                words.entry(one).or_insert(code);
            }
            words.entry(k).or_insert(code);
        };
        // Needs first, so a need's own words win over an activity's.
        for need in NEEDS {
            add(need.code, need.code);
            add(need.name, need.code);
        }
        for need in NEEDS {
            for a in need.activities {
                add(a.code, a.code);
                add(a.name, a.code);
            }
        }
        NeedWords { words }
    }

    /// The same, and each of `synonyms` (a word and the code it means) the words above do
    /// not already settle.
    pub fn with_synonyms(mut self, synonyms: impl IntoIterator<Item = (String, &'static str)>) -> NeedWords {
        for (word, code) in synonyms {
            self.words.entry(key(&word)).or_insert(code);
        }
        self
    }

    /// The code of the need or kind of activity `word` names.
    pub fn code(&self, word: &str) -> Option<&'static str> {
        let k = key(word);
        self.words.get(&k).or_else(|| singular(&k).and_then(|one| self.words.get(&one))).copied()
    }
}

/// The codes of Kith's needs (not the kinds of activity under them), to list in a warning.
pub fn need_codes() -> impl Iterator<Item = &'static str> {
    NEEDS.iter().map(|n| n.code)
}

/// The taxonomy and the terms for `codes`, with each activity's need, so that a sheet's
/// services are filtered by need as the demo's are.
pub fn terms(codes: &[&'static str]) -> (Taxonomy, Vec<TaxonomyTerm>) {
    let (taxonomy, all) = kith_demo::taxonomy();
    let mut wanted: Vec<Uuid> = codes.iter().map(|c| kith_demo::need_term_id(c)).collect();
    let parents: Vec<Uuid> = all.iter().filter(|t| wanted.contains(&t.id)).filter_map(|t| t.parent_id).collect();
    wanted.extend(parents);
    (taxonomy, all.into_iter().filter(|t| wanted.contains(&t.id)).collect())
}

/// The link from a service to a need, as the demo makes it.
pub fn attribute(service_id: Uuid, code: &str) -> Attribute {
    Attribute {
        id: Uuid::new_v5(&service_id, format!("kith:need:{code}").as_bytes()),
        link_id: Some(service_id),
        taxonomy_term_id: Some(kith_demo::need_term_id(code)),
        link_type: Some("need".into()),
        link_entity: Some("service".into()),
        value: None,
        taxonomy_term: None,
        metadata: vec![],
        extra: Default::default(),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn codes_and_names_in_any_case_and_number() {
        let words = NeedWords::kith();
        assert_eq!(words.code("food"), Some("food"));
        assert_eq!(words.code(" Food "), Some("food"));
        assert_eq!(words.code("Food banks"), Some("food-bank"));
        assert_eq!(words.code("food bank"), Some("food-bank"));
        assert_eq!(words.code("food-bank"), Some("food-bank"));
        assert_eq!(words.code("Mental health and wellbeing"), Some("mental-health"));
        assert_eq!(words.code("mental_health"), Some("mental-health"));
        assert_eq!(words.code("Choirs"), Some("community-choir"));
        assert_eq!(words.code("lonely"), None, "a synonym only when given");
        let words = words.with_synonyms([("lonely".to_owned(), "loneliness"), ("food".to_owned(), "money")]);
        assert_eq!(words.code("Lonely"), Some("loneliness"));
        assert_eq!(words.code("food"), Some("food"), "a synonym never overrides a code");
    }

    #[test]
    fn an_activity_brings_its_need() {
        let (taxonomy, terms) = terms(&["food-bank"]);
        assert_eq!(terms.len(), 2);
        assert!(terms.iter().any(|t| t.code.as_deref() == Some("food")));
        assert!(terms.iter().all(|t| t.taxonomy_id == Some(taxonomy.id)));
    }
}
