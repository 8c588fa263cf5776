//! The needs vocabulary: how people say what they need, and what a directory calls
//! it. "Money worries" finds debt and benefits advice; "lonely" finds befriending and
//! social groups. Phrases are matched before single words.

use kith_domain::spelling::edit_distance;

/// (what people type, what services are called). Lower case.
pub const SYNONYMS: &[(&[&str], &str)] = &[
    (
        &["lonely", "loneliness", "isolated", "isolation", "alone", "no friends", "on my own", "socially isolated"],
        "befriending loneliness isolation social friendship lunch companionship",
    ),
    (
        &[
            "money worries",
            "money",
            "debt",
            "debts",
            "bills",
            "skint",
            "broke",
            "benefits",
            "universal credit",
            "can't pay",
        ],
        "debt benefits welfare money income budgeting credit",
    ),
    (&["walking", "walk", "walks", "ramble", "rambling"], "walking walk"),
    (
        &["exercise", "fitness", "keep fit", "get active", "physical activity", "active", "sport"],
        "exercise physical activity fitness walking swimming dance yoga chair",
    ),
    (
        &["depressed", "depression", "anxiety", "anxious", "low mood", "stress", "stressed", "mental health", "panic"],
        "mental wellbeing anxiety depression peer counselling mindfulness",
    ),
    (&["food", "hungry", "food bank", "foodbank", "meals", "groceries"], "food pantry meals cooking larder"),
    (
        &["housing", "homeless", "homelessness", "eviction", "evicted", "rent", "landlord"],
        "housing homelessness tenancy tenants",
    ),
    (&["carer", "carers", "caring", "looking after"], "carers respite"),
    (
        &["job", "jobs", "work", "unemployed", "employment", "cv", "career"],
        "employment jobs employability volunteering",
    ),
    (&["art", "arts", "painting", "drawing", "creative", "creativity"], "arts creativity painting drawing"),
    (&["music", "singing", "choir", "sing", "band", "instrument"], "music singing choir"),
    (&["craft", "crafts", "knitting", "sewing", "crochet", "making"], "crafts knitting sewing"),
    (
        &["garden", "gardening", "nature", "outdoors", "allotment", "growing", "green"],
        "gardening nature allotment growing outdoors conservation",
    ),
    (&["english", "esol", "learn english", "english classes"], "esol english conversation"),
    (
        &["computer", "computers", "digital", "internet", "smartphone", "tablet", "online skills"],
        "digital computer internet",
    ),
    (&["bereaved", "bereavement", "grief", "grieving", "loss", "death", "widow", "widowed"], "bereavement grief"),
    (
        &["alcohol", "drugs", "drinking", "drink", "addiction", "gambling", "recovery"],
        "addiction recovery alcohol drugs gambling",
    ),
    (
        &["parent", "parents", "parenting", "baby", "babies", "toddler", "toddlers", "mum", "dad", "new parent"],
        "parenting family baby toddler",
    ),
    (&["dementia", "memory", "alzheimer's", "alzheimers", "forgetful"], "dementia memory alzheimer"),
    (
        &["older", "elderly", "pensioner", "pensioners", "retired", "over 60s", "over 50s", "later life"],
        "older later life seniors",
    ),
];

/// Splits a query into the person's own words and the vocabulary's expansions of them.
pub fn expand(query: &str) -> (String, Vec<&'static str>) {
    let lower = query.to_lowercase();
    let words: Vec<&str> = lower.split_whitespace().collect();
    let mut expansions = Vec::new();
    let mut i = 0;
    while i < words.len() {
        let mut matched = 0;
        for len in (1..=3.min(words.len() - i)).rev() {
            let phrase = words[i..i + len].join(" ");
            let phrase = phrase.trim_matches(|c: char| !c.is_alphanumeric() && c != '\'');
            if let Some((_, to)) = SYNONYMS.iter().find(|(from, _)| from.contains(&phrase)) {
                if !expansions.contains(to) {
                    expansions.push(*to);
                }
                matched = len;
                break;
            }
        }
        i += matched.max(1);
    }
    (lower, expansions)
}

/// The vocabulary word a misspelt word was probably meant to be: one edit away (two
/// for long words), and only for words of five letters or more.
pub fn correct(word: &str) -> Option<&'static str> {
    let n = word.chars().count();
    if n < 5 {
        return None;
    }
    let allowed = if n >= 8 { 2 } else { 1 };
    let words = || {
        SYNONYMS
            .iter()
            .flat_map(|(from, to)| from.iter().copied().chain(to.split(' ')))
            .filter(|v| !v.contains(' ') && v.chars().count() >= 4)
    };
    // A word the vocabulary knows is meant as written, even if the directory lacks it.
    if words().any(|v| v == word) {
        return None;
    }
    words().map(|v| (edit_distance(word, v, true), v)).filter(|(d, _)| *d <= allowed).min().map(|(_, v)| v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phrases_and_words_expand() {
        let (_, e) = expand("Money worries");
        assert_eq!(e, vec!["debt benefits welfare money income budgeting credit"]);
        let (_, e) = expand("lonely");
        assert!(e[0].contains("befriending"));
        let (_, e) = expand("walking group");
        assert_eq!(e, vec!["walking walk"]);
        assert!(expand("xyzzy").1.is_empty());
    }

    #[test]
    fn misspellings_are_corrected_to_vocabulary_words() {
        assert_eq!(correct("lonley"), Some("lonely"));
        assert_eq!(correct("excercise"), Some("exercise"));
        assert_eq!(correct("councelling"), Some("counselling"));
        assert_eq!(correct("benifits"), Some("benefits"));
        assert_eq!(correct("lonely"), None, "already right");
        assert_eq!(correct("xylophone"), None);
        assert_eq!(correct("cat"), None, "too short to guess");
        assert_eq!(correct("gambling"), None, "a vocabulary word, not a misspelt \"rambling\"");
    }
}
