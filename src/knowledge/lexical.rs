//! BM25 over passages: each article split along its Markdown headings, with
//! the article title and heading carried into the passage's terms.

use std::collections::HashMap;

use super::Article;
use crate::text::{is_stopword, related_terms, stem, terms};

/// A section longer than this is split further at paragraph breaks, so one
/// passage answers one thing and the excerpt stays short.
const MAX_PASSAGE_CHARS: usize = 1200;
const K1: f64 = 1.2;
const B: f64 = 0.75;

#[derive(Debug, Clone)]
struct Passage {
    article: usize,
    heading: Option<String>,
    text: String,
    term_counts: HashMap<String, u32>,
    len: usize,
}

#[derive(Debug, Clone)]
pub struct Hit {
    pub article_id: String,
    pub title: String,
    pub url: Option<String>,
    pub heading: Option<String>,
    pub text: String,
    pub score: f64,
    /// Share (0..1) of the query's weight, by idf, that this passage contains,
    /// counting only words the knowledge base uses at all: a scale-free
    /// "how much of the question does it speak to".
    pub coverage: f64,
}

pub struct LexicalIndex {
    articles: Vec<Article>,
    passages: Vec<Passage>,
    doc_freq: HashMap<String, u32>,
    avg_len: f64,
}

impl LexicalIndex {
    pub fn new(articles: Vec<Article>) -> Self {
        let mut passages = Vec::new();
        for (i, article) in articles.iter().enumerate() {
            for (heading, text) in split_passages(&article.body) {
                // Title, tags and heading count as the passage's words too.
                let context =
                    format!("{} {} {}", article.title, article.tags.join(" "), heading.as_deref().unwrap_or(""));
                let mut term_counts = HashMap::new();
                let mut len = 0;
                for t in terms(&context).chain(terms(&text)) {
                    *term_counts.entry(t).or_insert(0) += 1;
                    len += 1;
                }
                passages.push(Passage { article: i, heading, text, term_counts, len });
            }
        }
        let mut doc_freq = HashMap::new();
        for p in &passages {
            for t in p.term_counts.keys() {
                *doc_freq.entry(t.clone()).or_insert(0) += 1;
            }
        }
        let avg_len = passages.iter().map(|p| p.len as f64).sum::<f64>() / passages.len().max(1) as f64;
        Self { articles, passages, doc_freq, avg_len }
    }

    pub fn articles(&self) -> &[Article] {
        &self.articles
    }

    fn idf(&self, term: &str) -> f64 {
        let n = self.passages.len() as f64;
        let df = f64::from(*self.doc_freq.get(term).unwrap_or(&0));
        ((n - df + 0.5) / (df + 0.5) + 1.0).ln()
    }

    /// The best passages for `query`, at most one per article.
    pub fn search(&self, query: &str, limit: usize) -> Vec<Hit> {
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

        let mut best: HashMap<usize, Hit> = HashMap::new();
        for p in &self.passages {
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
            if score <= 0.0 || best.get(&p.article).is_some_and(|h| h.score >= score) {
                continue;
            }
            let article = &self.articles[p.article];
            best.insert(
                p.article,
                Hit {
                    article_id: article.id.clone(),
                    title: article.title.clone(),
                    url: article.url.clone(),
                    heading: p.heading.clone(),
                    text: p.text.clone(),
                    score,
                    coverage: matched / total_weight,
                },
            );
        }
        let mut hits: Vec<Hit> = best.into_values().collect();
        hits.sort_by(|a, b| b.score.total_cmp(&a.score));
        hits.truncate(limit);
        hits
    }
}

/// Splits a Markdown body into `(heading, text)` passages at `#` headings,
/// and long sections again at blank lines.
fn split_passages(body: &str) -> Vec<(Option<String>, String)> {
    let mut sections: Vec<(Option<String>, String)> = vec![(None, String::new())];
    for line in body.lines() {
        if let Some(heading) = line.strip_prefix('#') {
            sections.push((Some(heading.trim_start_matches('#').trim().to_owned()), String::new()));
        } else if let Some((_, text)) = sections.last_mut() {
            text.push_str(line);
            text.push('\n');
        }
    }
    let mut passages = Vec::new();
    for (heading, text) in sections {
        let mut current = String::new();
        for para in text.split("\n\n").map(str::trim).filter(|p| !p.is_empty()) {
            if !current.is_empty() && current.len() + para.len() > MAX_PASSAGE_CHARS {
                passages.push((heading.clone(), std::mem::take(&mut current)));
            }
            if !current.is_empty() {
                current.push_str("\n\n");
            }
            current.push_str(para);
        }
        if !current.is_empty() {
            passages.push((heading, current));
        }
    }
    passages
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::knowledge::articles::parse_article;

    fn index() -> LexicalIndex {
        LexicalIndex::new(vec![
            parse_article("returns", "---\ntitle: Returns\n---\n## Window\nReturn unworn items within 30 days of delivery.\n\n## Labels\nUS return labels are free.").unwrap(),
            parse_article("shipping", "---\ntitle: Shipping\n---\n## Times\nStandard shipping takes 3-5 business days.").unwrap(),
        ])
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
