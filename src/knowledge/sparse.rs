//! BM25 as sparse vectors, so a vector index can rank by words beside
//! meaning. Documents carry BM25's saturated term frequency; the index
//! multiplies in each term's idf at query time (Qdrant's `idf` modifier),
//! so only the collection knows document frequencies and an edit to one
//! article never forces re-weighting the others. Words are analysed exactly
//! as the in-memory lexical index does (`text::terms`), and a query word
//! also asks for the knowledge base's own words for it (`related_terms`).

use std::collections::BTreeMap;

use crate::text::{is_stopword, related_terms, stable_hash, stem, terms};

const K1: f32 = 1.2;
const B: f32 = 0.75;
/// Typical chunk length in terms; BM25's length normalisation is relative
/// to it. A constant, so one article's vector never depends on the others.
const AVG_LEN: f32 = 120.0;

#[derive(Debug, Clone, Default, PartialEq)]
pub struct SparseVec {
    pub indices: Vec<u32>,
    pub values: Vec<f32>,
}

pub fn document(text: &str) -> SparseVec {
    let mut counts: BTreeMap<u32, f32> = BTreeMap::new();
    let mut len = 0.0;
    for term in terms(text).filter(|t| !is_stopword(t)) {
        *counts.entry(term_id(&term)).or_default() += 1.0;
        len += 1.0;
    }
    let norm = K1 * (1.0 - B + B * len / AVG_LEN);
    let (indices, values) = counts.into_iter().map(|(i, tf)| (i, tf * (K1 + 1.0) / (tf + norm))).unzip();
    SparseVec { indices, values }
}

pub fn query(text: &str) -> SparseVec {
    let mut ids: BTreeMap<u32, f32> = BTreeMap::new();
    for term in terms(text).filter(|t| !is_stopword(t)) {
        ids.insert(term_id(&term), 1.0);
        for related in related_terms(&term) {
            // A synonym counts, but less than the customer's own word.
            ids.entry(term_id(&stem(related))).or_insert(0.5);
        }
    }
    let (indices, values) = ids.into_iter().unzip();
    SparseVec { indices, values }
}

fn term_id(term: &str) -> u32 {
    stable_hash(term.bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeated_words_weigh_more_but_saturate() {
        let v = document("refund refund refund card");
        let (refund, card) = (term_id("refund"), term_id("card"));
        let weight = |id| v.values[v.indices.iter().position(|&i| i == id).unwrap()];
        assert!(weight(refund) > weight(card) && weight(refund) < 3.0 * weight(card));
    }

    #[test]
    fn queries_share_the_documents_terms() {
        let d = document("Refunds reach your card");
        let q = query("when is my refund reaching me");
        assert!(q.indices.iter().any(|i| d.indices.contains(i)));
        assert!(q.indices.windows(2).all(|w| w[0] < w[1]), "indices are sorted and unique");
    }
}
