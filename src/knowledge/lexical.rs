//! BM25 over chunks, with the article title, tags and heading carried into
//! each chunk's terms.

use std::collections::HashMap;

use super::chunking::Chunk;
use crate::text::{is_stopword, related_terms, stem, terms};

const K1: f64 = 1.2;
const B: f64 = 0.75;

#[derive(Debug, Clone)]
struct Passage {
    term_counts: HashMap<String, u32>,
    len: usize,
}

#[derive(Debug, Clone)]
pub struct Hit {
    pub article_id: String,
    /// Which chunk of the article: with the id, the chunk's key.
    pub ordinal: usize,
    pub title: String,
    pub url: Option<String>,
    pub heading: Option<String>,
    pub text: String,
    /// Ranking score: BM25 for lexical hits, fused RRF score for hybrid ones.
    pub score: f64,
    /// Share (0..1) of the query's weight, by idf, that this passage contains,
    /// counting only words the knowledge base uses at all: a scale-free
    /// "how much of the question does it speak to".
    pub coverage: f64,
    /// Cosine similarity to the question, when dense retrieval ran.
    pub similarity: Option<f64>,
    /// Cosine similarity of the question to the nearest of the questions the
    /// passage answers (its heading, the ways customers ask it).
    pub question_similarity: Option<f64>,
}

impl Hit {
    pub fn from_chunk(chunk: &Chunk, score: f64) -> Self {
        Self {
            article_id: chunk.article_id.clone(),
            ordinal: chunk.ordinal,
            title: chunk.title.clone(),
            url: chunk.url.clone(),
            heading: chunk.heading.clone(),
            text: chunk.text.clone(),
            score,
            coverage: 0.0,
            similarity: None,
            question_similarity: None,
        }
    }
}

/// BM25 over chunks, in memory: cheap to rebuild whenever an article changes.
pub struct LexicalIndex {
    chunks: Vec<Chunk>,
    /// Where each chunk is in `chunks`, by its key (article id, ordinal).
    positions: HashMap<String, Vec<usize>>,
    passages: Vec<Passage>,
    doc_freq: HashMap<String, u32>,
    avg_len: f64,
}

impl LexicalIndex {
    pub fn new(chunks: Vec<Chunk>) -> Self {
        let mut passages = Vec::new();
        for chunk in &chunks {
            // Title, tags and heading count as the passage's words too.
            let context =
                format!("{} {} {}", chunk.title, chunk.tags.join(" "), chunk.heading.as_deref().unwrap_or(""));
            let mut term_counts = HashMap::new();
            let mut len = 0;
            for t in terms(&context).chain(terms(&chunk.text)) {
                *term_counts.entry(t).or_insert(0) += 1;
                len += 1;
            }
            passages.push(Passage { term_counts, len });
        }
        let mut doc_freq = HashMap::new();
        for p in &passages {
            for t in p.term_counts.keys() {
                *doc_freq.entry(t.clone()).or_insert(0) += 1;
            }
        }
        let avg_len = passages.iter().map(|p| p.len as f64).sum::<f64>() / passages.len().max(1) as f64;
        let mut positions: HashMap<String, Vec<usize>> = HashMap::new();
        for (i, chunk) in chunks.iter().enumerate() {
            positions.entry(chunk.article_id.clone()).or_default().push(i);
        }
        Self { chunks, positions, passages, doc_freq, avg_len }
    }

    pub fn chunks(&self) -> &[Chunk] {
        &self.chunks
    }

    /// The chunk with this key, if it is published.
    pub fn chunk(&self, article_id: &str, ordinal: usize) -> Option<&Chunk> {
        let positions = self.positions.get(article_id)?;
        positions.iter().map(|&i| &self.chunks[i]).find(|c| c.ordinal == ordinal)
    }

    fn idf(&self, term: &str) -> f64 {
        let n = self.passages.len() as f64;
        let df = f64::from(*self.doc_freq.get(term).unwrap_or(&0));
        ((n - df + 0.5) / (df + 0.5) + 1.0).ln()
    }

    /// The best passages for `query`, at most one per article.
    pub fn search(&self, query: &str, limit: usize) -> Vec<Hit> {
        let mut hits = best_per_article(self.search_chunks(query));
        hits.truncate(limit);
        hits
    }

    /// Every chunk that matches `query` at all, best first.
    pub fn search_chunks(&self, query: &str) -> Vec<Hit> {
        let mut query_terms: Vec<String> = terms(query).filter(|t| !is_stopword(t)).collect();
        query_terms.sort();
        query_terms.dedup();
        // Each query word, with the knowledge base's own words for it; a
        // passage matches the word through whichever alternative it uses.
        let alternatives: Vec<Vec<String>> = query_terms
            .iter()
            .map(|t| {
                std::iter::once(t.clone())
                    .chain(related_terms(t).iter().map(|r| stem(r)))
                    .filter(|a| self.doc_freq.contains_key(a))
                    .collect::<Vec<_>>()
            })
            .filter(|alts| !alts.is_empty())
            .collect();
        let weight = |alts: &[String]| alts.iter().map(|a| self.idf(a)).fold(0.0, f64::max);
        // Words the knowledge base never uses cannot be matched by any
        // passage. Long ones still count against coverage, at half weight
        // ("who won the football match" is not about sizing "match"); short
        // ones are mostly slang and typos ("ur", "pls") and are ignored.
        let unknown = query_terms
            .iter()
            .filter(|t| t.chars().count() > 3 && !self.doc_freq.contains_key(*t) && related_terms(t).is_empty())
            .count();
        let matchable: f64 = alternatives.iter().map(|alts| weight(alts)).sum();
        if matchable <= 0.0 {
            return Vec::new();
        }
        let total_weight = matchable + unknown as f64 * 0.5 * self.idf("");

        let mut hits = Vec::new();
        for (p, chunk) in self.passages.iter().zip(&self.chunks) {
            let (mut score, mut matched) = (0.0, 0.0);
            for alts in &alternatives {
                let best = alts
                    .iter()
                    .filter_map(|a| p.term_counts.get(a).map(|&tf| (self.idf(a), f64::from(tf))))
                    .map(|(idf, tf)| idf * tf * (K1 + 1.0) / (tf + K1 * (1.0 - B + B * p.len as f64 / self.avg_len)))
                    .fold(0.0, f64::max);
                if best > 0.0 {
                    score += best;
                    matched += weight(alts);
                }
            }
            if score > 0.0 {
                hits.push(Hit { coverage: matched / total_weight, ..Hit::from_chunk(chunk, score) });
            }
        }
        hits.sort_by(|a, b| b.score.total_cmp(&a.score));
        hits
    }
}

/// Keeps the first (best) hit of each article, in order.
pub fn best_per_article(hits: Vec<Hit>) -> Vec<Hit> {
    let mut seen = std::collections::HashSet::new();
    hits.into_iter().filter(|h| seen.insert(h.article_id.clone())).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::knowledge::{articles::parse_article, chunking::chunk_article};

    fn index() -> LexicalIndex {
        LexicalIndex::new([
            parse_article("returns", "---\ntitle: Returns\n---\n## Window\nReturn unworn items within 30 days of delivery.\n\n## Labels\nUS return labels are free.").unwrap(),
            parse_article("shipping", "---\ntitle: Shipping\n---\n## Times\nStandard shipping takes 3-5 business days.").unwrap(),
        ].iter().flat_map(chunk_article).collect())
    }

    #[test]
    fn the_passage_that_answers_ranks_first() {
        let hits = index().search("can I return my boots?", 5);
        assert_eq!(hits[0].article_id, "returns");
        let hits = index().search("how long does shipping take", 5);
        assert_eq!(hits[0].article_id, "shipping");
        assert!(hits[0].text.contains("3-5 business days"));
    }

    #[test]
    fn an_unrelated_question_finds_nothing() {
        assert!(index().search("what is the meaning of life", 5).is_empty());
    }
}
