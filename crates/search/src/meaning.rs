//! Meaning beyond the words: static word vectors distilled from the sentence-embedding
//! model all-MiniLM-L6-v2 (`scripts/install-model`, crates/model). A service and a query
//! are each the weighted mean of their words' vectors, so "worried about my memory"
//! comes near a dementia café and "somewhere to talk" near a listening service without
//! sharing a word. Embedding is a few table lookups: a million services in seconds, a
//! query in microseconds.
//!
//! A service's vector is kept in the index beside its words (a few numbers of a fast
//! field, see [`Meaning::encode`]), written when the service is, so it follows the
//! change feed and an unchanged service is never embedded again.

use crate::SearchError;
use crate::vocabulary;
use std::collections::HashMap;
use std::path::Path;

/// The word vectors, loaded from a model folder.
pub struct Meaning {
    rows: HashMap<String, u32>,
    vectors: Vec<f32>,
    weights: Vec<f32>,
    dim: usize,
    fingerprint: String,
}

impl std::fmt::Debug for Meaning {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Meaning").field("words", &self.rows.len()).field("fingerprint", &self.fingerprint).finish()
    }
}

/// Words of a service read for its vector: its name and categories, then the start of
/// its description. A long description's later words add little and cost time.
const BODY_WORDS: usize = 120;

impl Meaning {
    /// Loads the vectors in `dir`. `Ok(None)` when the folder holds none (the model is
    /// not installed): Kith then searches by words alone.
    pub fn load(dir: &Path) -> Result<Option<Meaning>, SearchError> {
        let vectors_path = dir.join("vectors.safetensors");
        if !vectors_path.exists() {
            return Ok(None);
        }
        let bad = |what: String| SearchError::Index(format!("the model in {} {what}", dir.display()));
        let bytes = std::fs::read(&vectors_path).map_err(|e| bad(format!("cannot be read: {e}")))?;
        let tensors = safetensors::SafeTensors::deserialize(&bytes)
            .map_err(|e| bad(format!("is not a safetensors file ({e}); run scripts/install-model again")))?;
        let table = tensors.tensor("vectors").map_err(|e| bad(format!("has no vectors: {e}")))?;
        let (rows, dim) = match table.shape() {
            [rows, dim] if table.dtype() == safetensors::Dtype::F32 && *dim > 0 => (*rows, *dim),
            shape => return Err(bad(format!("has vectors of shape {shape:?}, not words × numbers"))),
        };
        let vectors: Vec<f32> =
            table.data().chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect();
        let words =
            std::fs::read_to_string(dir.join("words.txt")).map_err(|e| bad(format!("has no words.txt: {e}")))?;
        let words: Vec<&str> = words.lines().collect();
        if words.len() != rows || vectors.len() != rows * dim {
            return Err(bad(format!("has {} words for {rows} vectors; run scripts/install-model again", words.len())));
        }
        // Rarer words say more: the model's vocabulary is in order of how common its
        // words are, so a word's row stands for its rank (Zipf). Whole words added after
        // the model's own (Kith's needs vocabulary) are rare ones.
        let ranked = words.iter().rposition(|w| w.starts_with("##")).map_or(rows, |last| last + 1);
        let weights = (0..rows)
            .map(|i| if i < ranked { ((i + 2) as f32).ln() / ((ranked + 2) as f32).ln() } else { 1.0 })
            .collect();
        let rows = words.iter().enumerate().map(|(i, w)| ((*w).to_owned(), i as u32)).collect();
        let fingerprint = std::fs::read_to_string(dir.join("model.txt"))
            .ok()
            .and_then(|t| t.lines().find_map(|l| l.strip_prefix("fingerprint = ").map(|f| f.trim().to_owned())))
            .unwrap_or_else(|| format!("{rows_len}x{dim}", rows_len = words.len()));
        Ok(Some(Meaning { rows, vectors, weights, dim, fingerprint }))
    }

    /// Identifies the vectors: an index built with others is rebuilt.
    pub fn fingerprint(&self) -> &str {
        &self.fingerprint
    }

    pub fn dimensions(&self) -> usize {
        self.dim
    }

    /// How many words have a vector.
    pub fn words(&self) -> usize {
        self.rows.len()
    }

    fn row(&self, i: u32) -> &[f32] {
        let start = i as usize * self.dim;
        &self.vectors[start..start + self.dim]
    }

    /// Adds a word's vector (or, for a word the model splits, its pieces' mean) to
    /// `sum`, weighted. Returns whether the word was known.
    fn add_word(&self, word: &str, weight: f32, sum: &mut [f32]) -> bool {
        if let Some(&i) = self.rows.get(word) {
            let w = weight * self.weights[i as usize];
            for (s, v) in sum.iter_mut().zip(self.row(i)) {
                *s += w * v;
            }
            return true;
        }
        let Some(pieces) = self.pieces(word) else { return false };
        let w = weight / pieces.len() as f32;
        for i in pieces {
            for (s, v) in sum.iter_mut().zip(self.row(i)) {
                *s += w * v;
            }
        }
        true
    }

    /// The model's split of a word it has no vector for (longest pieces first). A word
    /// that splits only into letters and pairs of letters ("zxqv") means nothing, and has
    /// no vector: otherwise any string of letters would be near something.
    fn pieces(&self, word: &str) -> Option<Vec<u32>> {
        let mut out = Vec::new();
        let mut longest = 0;
        let mut start = 0;
        let mut piece = String::new();
        while start < word.len() {
            let mut end = word.len();
            let found = loop {
                if end <= start {
                    break None;
                }
                if word.is_char_boundary(end) {
                    piece.clear();
                    if start > 0 {
                        piece.push_str("##");
                    }
                    piece.push_str(&word[start..end]);
                    if let Some(&i) = self.rows.get(&piece) {
                        break Some(i);
                    }
                }
                end -= 1;
            };
            out.push(found?);
            longest = longest.max(word[start..end].chars().count());
            start = end;
        }
        (!out.is_empty() && longest >= 3).then_some(out)
    }

    /// The unit vector of a text's content words, or `None` when it has none the model
    /// knows. Function words ("i", "and", "for") are left out, as in the word search.
    pub fn embed(&self, text: &str) -> Option<Vec<f32>> {
        self.embed_parts(&[(text, 1.0, usize::MAX)])
    }

    /// A weighted mean over parts of a text, each `(text, weight, at most so many words)`.
    fn embed_parts(&self, parts: &[(&str, f32, usize)]) -> Option<Vec<f32>> {
        let mut sum = vec![0.0f32; self.dim];
        let mut known = 0usize;
        for (text, weight, limit) in parts {
            for word in vocabulary::words(text)
                .iter()
                .flat_map(|w| w.split(|c: char| !c.is_alphanumeric()))
                .filter(|w| w.len() > 1 && !vocabulary::is_function_word(w))
                .take(*limit)
            {
                known += usize::from(self.add_word(word, *weight, &mut sum));
            }
        }
        let norm = sum.iter().map(|v| v * v).sum::<f32>().sqrt();
        (known > 0 && norm > 0.0).then(|| sum.into_iter().map(|v| v / norm).collect())
    }

    /// A service's vector, from its name and categories (weighted up) and the start of
    /// its description.
    pub(crate) fn embed_service(&self, name: &str, taxonomy: &str, body: &str) -> Option<Vec<f32>> {
        self.embed_parts(&[(name, 2.0, 24), (taxonomy, 1.5, 24), (body, 1.0, BODY_WORDS)])
    }

    /// A unit vector packed for the index: its scale, then one signed byte per number,
    /// eight to a `u64`. The index reads it back with [`similarity`].
    pub(crate) fn encode(v: &[f32]) -> Vec<u64> {
        let largest = v.iter().fold(0.0f32, |m, x| m.max(x.abs()));
        let scale = if largest > 0.0 { largest / 127.0 } else { 1.0 };
        let mut out = Vec::with_capacity(1 + v.len().div_ceil(8));
        out.push(u64::from(scale.to_bits()));
        for chunk in v.chunks(8) {
            let mut word = 0u64;
            for (i, x) in chunk.iter().enumerate() {
                let q = (x / scale).round().clamp(-127.0, 127.0) as i8;
                word |= u64::from(q as u8) << (8 * i);
            }
            out.push(word);
        }
        out
    }
}

/// The cosine between a query's unit vector and a service's packed one (see
/// [`Meaning::encode`]); 0 for a service stored without one.
pub(crate) fn similarity(query: &[f32], packed: impl Iterator<Item = u64>) -> f32 {
    let mut packed = packed;
    let Some(scale) = packed.next() else { return 0.0 };
    let scale = f32::from_bits(scale as u32);
    let mut dot = 0.0f32;
    for (word, q) in packed.zip(query.chunks(8)) {
        let mut part = 0.0f32;
        for (i, x) in q.iter().enumerate() {
            part += f32::from((word >> (8 * i)) as u8 as i8) * x;
        }
        dot += part;
    }
    dot * scale
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn a_packed_vector_keeps_its_cosine() {
        let v: Vec<f32> = (0..384).map(|i| ((i * 37 % 101) as f32 - 50.0) / 50.0).collect();
        let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
        let v: Vec<f32> = v.iter().map(|x| x / norm).collect();
        let packed = Meaning::encode(&v);
        assert_eq!(packed.len(), 1 + 48);
        let cos = similarity(&v, packed.into_iter());
        assert!((cos - 1.0).abs() < 0.01, "{cos}");
        let opposite: Vec<f32> = v.iter().map(|x| -x).collect();
        let cos = similarity(&opposite, Meaning::encode(&v).into_iter());
        assert!((cos + 1.0).abs() < 0.01, "{cos}");
    }
}
