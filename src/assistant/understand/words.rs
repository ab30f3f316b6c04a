//! The example phrasings as words, beside their meaning: tf-idf over word
//! stems, word pairs and the letter triples of each word. A sentence model
//! reads "close my pro account" and "close my order" as near; the words
//! say which one it is, and letter triples still match "acount" and
//! "refnd". Blended into the neighbours' similarity (`Params::word_weight`).

use std::collections::HashMap;

use crate::text::{stable_hash, terms};

/// Sparse features of one text: feature id → weight, unit length.
type Features = Vec<(u32, f32)>;

pub struct WordIndex {
    /// Feature id → (example, weight) for every example that has it.
    postings: HashMap<u32, Vec<(u32, f32)>>,
    idf: HashMap<u32, f32>,
    /// The idf of a feature no example has: the highest there is.
    unseen_idf: f32,
    examples: usize,
}

impl WordIndex {
    pub fn build(texts: &[String]) -> Self {
        let counted: Vec<HashMap<u32, f32>> = texts.iter().map(|t| counts(t)).collect();
        let mut document_frequency: HashMap<u32, u32> = HashMap::new();
        for features in &counted {
            for &id in features.keys() {
                *document_frequency.entry(id).or_default() += 1;
            }
        }
        let n = texts.len() as f32;
        let idf_of = |df: u32| ((1.0 + n) / (1.0 + df as f32)).ln() + 1.0;
        let idf: HashMap<u32, f32> = document_frequency.into_iter().map(|(id, df)| (id, idf_of(df))).collect();
        let unseen_idf = idf_of(0);
        let mut index = Self { postings: HashMap::new(), idf, unseen_idf, examples: texts.len() };
        for (example, features) in counted.into_iter().enumerate() {
            for (id, weight) in index.weigh(features) {
                index.postings.entry(id).or_default().push((example as u32, weight));
            }
        }
        index
    }

    /// Cosine similarity of `text` with every example, in example order.
    pub fn similarities(&self, text: &str) -> Vec<f32> {
        let mut similarities = vec![0f32; self.examples];
        for (id, weight) in self.weigh(counts(text)) {
            for &(example, theirs) in self.postings.get(&id).map_or(&[][..], Vec::as_slice) {
                similarities[example as usize] += weight * theirs;
            }
        }
        similarities
    }

    /// Sublinear term frequency times idf, scaled to unit length.
    fn weigh(&self, counts: HashMap<u32, f32>) -> Features {
        let mut features: Features = counts
            .into_iter()
            .map(|(id, tf)| (id, (1.0 + tf.ln()) * self.idf.get(&id).copied().unwrap_or(self.unseen_idf)))
            .collect();
        let norm = features.iter().map(|(_, w)| w * w).sum::<f32>().sqrt();
        if norm > 0.0 {
            features.iter_mut().for_each(|(_, w)| *w /= norm);
        }
        features
    }
}

/// How often each feature occurs in `text`. Three kinds, hashed apart:
/// stems, pairs of neighbouring stems, and letter triples of each word
/// with its edges marked (`^ac`, `acc`, …, `nt$`).
fn counts(text: &str) -> HashMap<u32, f32> {
    let stems: Vec<String> = terms(text).collect();
    let mut counts: HashMap<u32, f32> = HashMap::new();
    let mut add = |kind: u8, parts: &[&str]| *counts.entry(feature_id(kind, parts)).or_default() += 1.0;
    for (i, stem) in stems.iter().enumerate() {
        add(b'w', &[stem.as_str()]);
        if let Some(next) = stems.get(i + 1) {
            add(b'p', &[stem.as_str(), next.as_str()]);
        }
        let letters: Vec<char> = std::iter::once('^').chain(stem.chars()).chain(std::iter::once('$')).collect();
        for triple in letters.windows(3) {
            let triple: String = triple.iter().collect();
            add(b't', &[&triple]);
        }
    }
    counts
}

/// The kind and the parts hashed, with a separator no word contains.
fn feature_id(kind: u8, parts: &[&str]) -> u32 {
    stable_hash(std::iter::once(kind).chain(parts.iter().flat_map(|p| std::iter::once(0x1f).chain(p.bytes()))))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shared_words_make_texts_near_and_typos_still_share_letters() {
        let examples: Vec<String> =
            ["close my account", "where is my order", "cancel my order"].map(String::from).into();
        let index = WordIndex::build(&examples);
        let near = index.similarities("please close my acount");
        assert!(near[0] > near[1] && near[0] > near[2], "{near:?}");
        assert!(near[0] < 1.0);
        let same = index.similarities("where is my order");
        assert!((same[1] - 1.0).abs() < 1e-5, "{same:?}");
        assert_eq!(index.similarities("")[0], 0.0);
    }
}
