//! English stemming that remembers the words it has stemmed.
//!
//! A directory uses the same few thousand words over and over ("support", "group",
//! "weekly"), and running the Snowball stemmer on every one of them was a sixth of the
//! time to build the index. This filter gives exactly what tantivy's own English
//! stemmer gives (it asks that stemmer about each new word) and keeps the answer.

use std::collections::HashMap;
use tantivy::tokenizer::{
    Language, LowerCaser, RawTokenizer, RemoveLongFilter, SimpleTokenizer, Stemmer, TextAnalyzer, Token, TokenFilter,
    TokenStream, Tokenizer,
};

/// The name the text fields' analyser is registered under. It is the name of tantivy's
/// built-in English analyser, whose output this one reproduces token for token, so an
/// index built by either reads the same.
pub(crate) const ANALYZER: &str = "en_stem";

/// Words remembered before the memory is emptied: a directory's vocabulary fits many
/// times over, and a stream of unusual words cannot grow it without bound.
const REMEMBERED: usize = 100_000;

/// Tantivy's English analyser (words of up to 40 bytes, lower-cased, stemmed), with the
/// stemming remembered.
pub(crate) fn analyzer() -> TextAnalyzer {
    TextAnalyzer::builder(SimpleTokenizer::default())
        .filter(RemoveLongFilter::limit(40))
        .filter(LowerCaser)
        .filter(RememberingStemmer)
        .build()
}

#[derive(Clone, Copy, Debug)]
struct RememberingStemmer;

impl TokenFilter for RememberingStemmer {
    type Tokenizer<T: Tokenizer> = RememberingFilter<T>;

    fn transform<T: Tokenizer>(self, tokenizer: T) -> RememberingFilter<T> {
        RememberingFilter { inner: tokenizer, stems: Stems::default() }
    }
}

/// Each copy of the analyser (tantivy gives one to each indexing thread) remembers for
/// itself, so no lock is taken per word.
#[derive(Clone)]
pub(crate) struct RememberingFilter<T> {
    inner: T,
    stems: Stems,
}

#[derive(Clone)]
struct Stems {
    known: HashMap<String, String>,
    stemmer: TextAnalyzer,
}

impl Default for Stems {
    fn default() -> Self {
        Stems {
            known: HashMap::new(),
            stemmer: TextAnalyzer::builder(RawTokenizer::default()).filter(Stemmer::new(Language::English)).build(),
        }
    }
}

impl Stems {
    /// Replaces `word` with its stem.
    fn stem(&mut self, word: &mut String) {
        if let Some(stem) = self.known.get(word.as_str()) {
            word.clone_from(stem);
            return;
        }
        let mut stream = self.stemmer.token_stream(word);
        let stem = if stream.advance() { stream.token().text.clone() } else { word.clone() };
        drop(stream);
        if self.known.len() >= REMEMBERED {
            self.known.clear();
        }
        self.known.insert(std::mem::replace(word, stem.clone()), stem);
    }
}

impl<T: Tokenizer> Tokenizer for RememberingFilter<T> {
    type TokenStream<'a> = RememberingStream<'a, T::TokenStream<'a>>;

    fn token_stream<'a>(&'a mut self, text: &'a str) -> Self::TokenStream<'a> {
        RememberingStream { tail: self.inner.token_stream(text), stems: &mut self.stems }
    }
}

pub(crate) struct RememberingStream<'a, T> {
    tail: T,
    stems: &'a mut Stems,
}

impl<T: TokenStream> TokenStream for RememberingStream<'_, T> {
    fn advance(&mut self) -> bool {
        if !self.tail.advance() {
            return false;
        }
        self.stems.stem(&mut self.tail.token_mut().text);
        true
    }

    fn token(&self) -> &Token {
        self.tail.token()
    }

    fn token_mut(&mut self) -> &mut Token {
        self.tail.token_mut()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tokens(analyzer: &mut TextAnalyzer, text: &str) -> Vec<(String, usize, usize, usize)> {
        let mut out = Vec::new();
        let mut stream = analyzer.token_stream(text);
        while stream.advance() {
            let t = stream.token();
            out.push((t.text.clone(), t.offset_from, t.offset_to, t.position));
        }
        out
    }

    #[test]
    fn gives_what_tantivys_english_stemmer_gives() {
        let mut theirs =
            tantivy::tokenizer::TokenizerManager::default().get("en_stem").expect("tantivy registers en_stem");
        let mut ours = analyzer();
        let text = "Walking groups for lonely people: befriending, Running, runner's club; \
                    ÉCOLE café supports SUPPORTING supported generously. Walking groups again, \
                    and a word far too long to be kept as a token by either analyser at all";
        // Twice, so that the second pass answers from memory.
        for _ in 0..2 {
            assert_eq!(tokens(&mut ours, text), tokens(&mut theirs, text));
        }
        assert_eq!(tokens(&mut ours, ""), Vec::new());
    }
}
