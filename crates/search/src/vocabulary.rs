//! The needs vocabulary: how people say what they need, and what a directory calls
//! it. "Money worries" finds debt and benefits advice; "lonely" finds befriending and
//! social groups; "my husband died" finds bereavement support. The vocabulary is the
//! reviewed data file `needs.toml`; phrases are matched before single words, and words
//! like "i", "and" and "for" never match on their own.

use kith_domain::spelling::edit_distance;
use std::collections::HashMap;
use std::sync::LazyLock;
use tantivy::tokenizer::{Language, RawTokenizer, Stemmer, TextAnalyzer};

/// One need as the vocabulary file (`needs.toml`) states it.
#[derive(Debug, Clone, serde::Deserialize)]
pub struct Need {
    /// Kith's need code, where one of Kith's needs fits.
    #[serde(default)]
    pub need: Option<String>,
    /// How people say it, lower case.
    pub say: Vec<String>,
    /// What services call it: the words searched in their names and categories.
    pub called: String,
}

#[derive(Debug, Default, serde::Deserialize)]
struct File {
    need: Vec<Need>,
}

/// The vocabulary, and its phrases as they are looked up: as written, and (for phrases
/// of content words only) as stems.
struct Vocabulary {
    needs: Vec<Need>,
    written: HashMap<String, usize>,
    stemmed: HashMap<String, usize>,
    longest: usize,
}

static VOCABULARY: LazyLock<Vocabulary> = LazyLock::new(|| {
    let file: File = toml::from_str(include_str!("../needs.toml")).unwrap_or_else(|e| {
        // The file is part of the build and a test reads it, so this is never seen.
        tracing::error!(error = %e, "the needs vocabulary (needs.toml) cannot be read; searching without it");
        File::default()
    });
    let mut written = HashMap::new();
    let mut stemmed = HashMap::new();
    let mut longest = 1;
    for (i, need) in file.need.iter().enumerate() {
        for phrase in &need.say {
            let said = words(phrase);
            longest = longest.max(said.len());
            written.entry(said.join(" ")).or_insert(i);
            // "look after my mum" is also "looking after mum"; "on my own" is only
            // itself, or "my own business" would be about loneliness.
            let content: Vec<String> = said.iter().filter(|w| !is_function_word(w)).cloned().collect();
            if content.len() == said.len() || content.len() >= 2 {
                stemmed.entry(stems(&content).join(" ")).or_insert(i);
            }
        }
    }
    Vocabulary { needs: file.need, written, stemmed, longest }
});

/// Every need in the vocabulary.
pub fn needs() -> &'static [Need] {
    &VOCABULARY.needs
}

/// Words that say nothing of a need on their own: pronouns, articles, prepositions,
/// auxiliaries, negations and the contractions made of them. They still count inside a
/// phrase ("on my own", "can't pay"), never as a match by themselves, so "i drink too
/// much" is about drinking, not every service with "I" in its name.
pub const FUNCTION_WORDS: &[&str] = &[
    "a",
    "about",
    "after",
    "again",
    "all",
    "also",
    "am",
    "an",
    "and",
    "any",
    "anyone",
    "anything",
    "are",
    "as",
    "at",
    "be",
    "because",
    "been",
    "before",
    "being",
    "but",
    "by",
    "can",
    "can't",
    "cannot",
    "could",
    "couldn't",
    "did",
    "didn't",
    "do",
    "does",
    "doesn't",
    "don't",
    "for",
    "from",
    "get",
    "getting",
    "got",
    "had",
    "has",
    "hasn't",
    "have",
    "haven't",
    "having",
    "he",
    "he's",
    "her",
    "here",
    "hers",
    "herself",
    "him",
    "himself",
    "his",
    "how",
    "i",
    "i'd",
    "i'll",
    "i'm",
    "i've",
    "if",
    "in",
    "into",
    "is",
    "isn't",
    "it",
    "it's",
    "its",
    "itself",
    "just",
    "keep",
    "know",
    "like",
    "lot",
    "lots",
    "me",
    "might",
    "more",
    "most",
    "much",
    "must",
    "my",
    "myself",
    "need",
    "needs",
    "no",
    "nor",
    "not",
    "now",
    "of",
    "off",
    "on",
    "or",
    "our",
    "ours",
    "ourselves",
    "out",
    "over",
    "please",
    "really",
    "she",
    "she's",
    "should",
    "so",
    "some",
    "someone",
    "something",
    "still",
    "such",
    "than",
    "that",
    "that's",
    "the",
    "their",
    "them",
    "themselves",
    "then",
    "there",
    "there's",
    "these",
    "they",
    "they're",
    "this",
    "those",
    "through",
    "to",
    "too",
    "up",
    "us",
    "very",
    "want",
    "wants",
    "was",
    "wasn't",
    "we",
    "we're",
    "were",
    "what",
    "when",
    "where",
    "which",
    "while",
    "who",
    "whom",
    "why",
    "will",
    "with",
    "won't",
    "would",
    "wouldn't",
    "you",
    "you're",
    "your",
    "yours",
    "yourself",
];

/// Whether `word` (as [`words`] gives it) says nothing of a need on its own.
pub fn is_function_word(word: &str) -> bool {
    FUNCTION_WORDS.binary_search(&word).is_ok()
}

/// A query's words, lower case, with curly apostrophes made straight, the punctuation
/// around each word taken off and a possessive "'s" kept off ("mum's" is "mum").
pub fn words(text: &str) -> Vec<String> {
    text.to_lowercase()
        .replace(['\u{2019}', '\u{2018}', '`'], "'")
        .split(|c: char| c.is_whitespace() || c == ',' || c == ';' || c == '/')
        .map(|w| w.trim_matches(|c: char| !c.is_alphanumeric() && c != '\'' && c != '+'))
        .map(|w| w.trim_matches('\''))
        .filter(|w| !w.is_empty())
        .map(|w| match w.strip_suffix("'s") {
            Some(stem) if !is_function_word(w) => stem.to_owned(),
            _ => w.to_owned(),
        })
        .collect()
}

fn stems(words: &[String]) -> Vec<String> {
    thread_local! {
        static STEMMER: std::cell::RefCell<TextAnalyzer> = std::cell::RefCell::new(
            TextAnalyzer::builder(RawTokenizer::default()).filter(Stemmer::new(Language::English)).build(),
        );
    }
    STEMMER.with_borrow_mut(|stemmer| {
        words
            .iter()
            .map(|w| {
                let mut stream = stemmer.token_stream(w);
                if stream.advance() { stream.token().text.clone() } else { w.clone() }
            })
            .collect()
    })
}

/// What a query asks for: the person's own words that can match a service (function
/// words left out, and the words of a phrase the vocabulary knows, which are searched as
/// what they mean), and the vocabulary's expansions of the phrases and words in it.
/// Phrases are matched before single words, longest first: as written ("on my own"),
/// or by the stems of their content words ("my husband has died" as "husband died").
pub fn expand(words: &[String]) -> (Vec<String>, Vec<&'static str>) {
    let v = &*VOCABULARY;
    let mut expansions: Vec<&'static str> = Vec::new();
    let mut add = |i: usize| {
        let called = VOCABULARY.needs[i].called.as_str();
        if !expansions.contains(&called) {
            expansions.push(called);
        }
    };
    // At each word, the longest phrase that starts there, as written or as the stems of
    // its content words; the words of a phrase found are not looked at again.
    let stemmed = stems(words);
    let mut meant = vec![false; words.len()];
    let mut i = 0;
    while i < words.len() {
        let found = (1..=v.longest.min(words.len() - i)).rev().find_map(|len| {
            let window = i..i + len;
            if let Some(&need) = v.written.get(&words[window.clone()].join(" ")) {
                return Some((len, need));
            }
            let content: Vec<&str> =
                window.filter(|&j| !is_function_word(&words[j])).map(|j| stemmed[j].as_str()).collect();
            if content.is_empty() {
                return None;
            }
            v.stemmed.get(&content.join(" ")).map(|&need| (len, need))
        });
        match found {
            Some((len, need)) => {
                add(need);
                // "husband" and "died" in "my husband died" are about bereavement, not
                // husbands: the words of a phrase of two content words or more are
                // searched as what they mean, not one by one.
                let content = (i..i + len).filter(|&j| !is_function_word(&words[j])).count();
                if content >= 2 {
                    meant[i..i + len].iter_mut().for_each(|m| *m = true);
                }
                i += len;
            }
            None => i += 1,
        }
    }
    let content: Vec<String> =
        words.iter().zip(&meant).filter(|(w, m)| !**m && !is_function_word(w)).map(|(w, _)| w.clone()).collect();
    (content, expansions)
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
        needs()
            .iter()
            .flat_map(|n| n.say.iter().map(String::as_str).chain(n.called.split(' ')))
            .filter(|v| !v.contains(' ') && !v.contains('\'') && v.chars().count() >= 4)
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

    fn expand(text: &str) -> (Vec<String>, Vec<&'static str>) {
        super::expand(&words(text))
    }

    /// The need codes (or first expansion words) a query brings in.
    fn about(text: &str) -> Vec<&'static str> {
        let (_, expansions) = expand(text);
        expansions
            .iter()
            .map(|e| {
                let need = needs().iter().find(|n| n.called == *e).and_then(|n| n.need.as_deref());
                need.unwrap_or_else(|| e.split(' ').next().unwrap_or_default())
            })
            .collect()
    }

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
    fn the_vocabulary_file_reads_and_is_large_enough() {
        assert!(needs().len() >= 30, "{} needs", needs().len());
        assert!(needs().iter().all(|n| n.say.len() >= 3 && !n.called.is_empty()));
        let mut sorted = FUNCTION_WORDS.to_vec();
        sorted.sort_unstable();
        assert_eq!(sorted, FUNCTION_WORDS, "kept sorted, for binary search");
    }

    #[test]
    fn function_words_never_match_on_their_own() {
        assert_eq!(expand("i drink too much").0, ["drink"]);
        assert_eq!(about("i drink too much"), ["addiction"]);
        assert!(expand("and").0.is_empty() && expand("and").1.is_empty());
        assert_eq!(expand("no money for food").0, ["money", "food"]);
        assert_eq!(about("no money for food"), ["money", "food"]);
        assert_eq!(expand("lonely and old").0, ["lonely", "old"]);
        assert_eq!(about("lonely and old"), ["loneliness", "older-people"]);
    }

    #[test]
    fn contractions_negations_and_how_people_put_things() {
        assert_eq!(expand("I can\u{2019}t sleep").0, ["sleep"], "can't is not can");
        assert_eq!(about("can't sleep"), ["sleep"]);
        assert_eq!(about("my husband died"), ["bereavement"]);
        assert!(expand("my husband died").0.is_empty(), "searched as bereavement, not as husbands");
        assert_eq!(about("my husband has died"), ["bereavement"], "however it is filled out");
        assert_eq!(about("lost my wife"), ["bereavement"]);
        assert_eq!(about("can't pay my bills"), ["money"]);
        assert_eq!(about("somewhere to live"), ["housing"]);
        assert_eq!(about("I look after my mum"), ["carers"]);
        assert_eq!(about("looking after my mum's shopping"), ["carers"]);
        assert_eq!(about("on my own since my wife passed away"), ["loneliness", "bereavement"]);
        assert_eq!(words("Mum's  group, please!"), ["mum", "group", "please"]);
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
