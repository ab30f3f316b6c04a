//! Dense and hybrid retrieval: an embedding model turns chunks and questions
//! into vectors; a vector index (embedded Qdrant Edge, or a Qdrant server)
//! holds each chunk's dense vector beside its BM25 sparse vector and fuses
//! the two rankings with reciprocal rank fusion.

use std::{
    collections::{HashMap, HashSet},
    sync::{Arc, Mutex},
};

use indicatif::ProgressBar;

use super::{
    chunking::Chunk,
    embeddings::{Embedder, EmbeddingError, MessageEmbedding},
    index::{IndexError, IndexHit, IndexQuery, IndexedChunk, VectorIndex},
    lexical::{Hit, LexicalIndex},
    sparse,
};

/// Which ranking to use; the evaluation compares them all.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ranking {
    /// BM25 over the in-memory chunks (no model needed).
    Lexical,
    /// BM25 sparse vectors in the vector index.
    Sparse,
    Dense,
    /// Dense and sparse rankings fused by the index with RRF (for comparison).
    Rrf,
    /// Cosine similarity plus a lexical boost ([`fuse`]): what customers get.
    Hybrid,
}

/// Why dense retrieval failed: the model or the index, each with its own cause.
#[derive(Debug, thiserror::Error)]
pub enum RetrievalError {
    #[error(transparent)]
    Embedding(#[from] EmbeddingError),
    #[error(transparent)]
    Index(#[from] IndexError),
    #[error("the model gave {got} vectors for {wanted} texts")]
    Shape { wanted: usize, got: usize },
}

pub struct DenseRetrieval {
    embedder: Arc<Embedder>,
    index: Arc<dyn VectorIndex>,
    /// The embedding of each question a passage answers ([`Chunk::questions`]),
    /// made at sync or the first time the passage is found. In memory on
    /// every replica: short texts, cheaper to embed than to share.
    questions: Mutex<HashMap<String, Arc<[f32]>>>,
}

/// More distinct questions than a knowledge base has: past it, the cache
/// holds edited-away ones and starts again.
const MAX_QUESTIONS: usize = 50_000;

impl DenseRetrieval {
    pub fn new(embedder: Arc<Embedder>, index: Arc<dyn VectorIndex>) -> Self {
        Self { embedder, index, questions: Mutex::new(HashMap::new()) }
    }

    pub fn embedder(&self) -> &Embedder {
        &self.embedder
    }

    /// A question's embedding, to share between understanding and search.
    pub async fn embed_query(&self, query: &str) -> Result<Vec<f32>, RetrievalError> {
        Ok(self.embedder.embed_query(query.to_owned()).await?)
    }

    /// A customer's message, whole and by sentence (understanding reads both).
    pub async fn embed_message(&self, text: &str) -> Result<MessageEmbedding, RetrievalError> {
        Ok(self.embedder.embed_message(text.to_owned()).await?)
    }

    /// Whether other replicas read the same index (a Qdrant server).
    pub fn index_is_shared(&self) -> bool {
        self.index.is_shared()
    }

    /// Makes the index hold exactly `chunks`: rebuilt from scratch if it is
    /// from another model (or `force`), otherwise only the articles whose
    /// chunks differ are re-embedded.
    pub async fn sync(&self, chunks: &[Chunk], force: bool, progress: &ProgressBar) -> Result<(), RetrievalError> {
        let model = self.embedder.model_id();
        let stored = self.index.prepare(model, self.embedder.dimension(), force).await?;
        let mut by_article: HashMap<&str, Vec<Chunk>> = HashMap::new();
        for chunk in chunks {
            by_article.entry(chunk.article_id.as_str()).or_default().push(chunk.clone());
        }
        progress.set_length(by_article.len() as u64);
        for (article_id, article_chunks) in &by_article {
            progress.set_message((*article_id).to_owned());
            progress.inc(1);
            if stored.get(*article_id).map(String::as_str) != Some(fingerprint(model, article_chunks).as_str()) {
                self.replace_article(article_id, article_chunks).await?;
            }
        }
        for gone in stored.keys().filter(|id| !by_article.contains_key(id.as_str())) {
            self.index.delete_article(gone).await?;
        }
        self.prepare_questions(chunks).await;
        Ok(())
    }

    /// The cosine of a customer's question (`vector`) with each of the
    /// questions passages answer; those not seen before are embedded first.
    pub async fn question_similarities(&self, vector: &[f32], questions: &[&str]) -> Result<Vec<f32>, RetrievalError> {
        if let Some(similarities) = self.known_similarities(vector, questions) {
            return Ok(similarities);
        }
        self.learn_questions(questions).await?;
        // Learnt just now; only a concurrent flush of a full cache can
        // have dropped them again, and then they count as unlike.
        Ok(self.known_similarities(vector, questions).unwrap_or_else(|| vec![0.0; questions.len()]))
    }

    /// The cosines, if every one of `questions` is known.
    fn known_similarities(&self, vector: &[f32], questions: &[&str]) -> Option<Vec<f32>> {
        let known = self.questions.lock().unwrap_or_else(|e| e.into_inner());
        let cosine = |q: &&str| known.get(*q).map(|v| v.iter().zip(vector).map(|(a, b)| a * b).sum());
        questions.iter().map(cosine).collect()
    }

    /// Embeds those of `questions` not seen before, in one batch.
    async fn learn_questions(&self, questions: &[&str]) -> Result<(), RetrievalError> {
        let missing: Vec<String> = {
            let known = self.questions.lock().unwrap_or_else(|e| e.into_inner());
            let unseen: HashSet<&str> = questions.iter().copied().filter(|q| !known.contains_key(*q)).collect();
            unseen.into_iter().map(str::to_owned).collect()
        };
        if missing.is_empty() {
            return Ok(());
        }
        let vectors = self.embedder.embed_documents(missing.clone()).await?;
        if vectors.len() != missing.len() {
            return Err(RetrievalError::Shape { wanted: missing.len(), got: vectors.len() });
        }
        let mut known = self.questions.lock().unwrap_or_else(|e| e.into_inner());
        if known.len() + missing.len() > MAX_QUESTIONS {
            known.clear();
        }
        known.extend(missing.into_iter().zip(vectors.into_iter().map(Arc::from)));
        Ok(())
    }

    /// Replaces one article's chunks in the index (none: removes it).
    pub async fn replace_article(&self, article_id: &str, chunks: &[Chunk]) -> Result<(), RetrievalError> {
        let texts: Vec<String> = chunks.iter().map(Chunk::embedding_text).collect();
        let vectors = self.embedder.embed_documents(texts.clone()).await?;
        if vectors.len() != texts.len() {
            return Err(RetrievalError::Shape { wanted: texts.len(), got: vectors.len() });
        }
        let fingerprint = fingerprint(self.embedder.model_id(), chunks);
        let points = chunks
            .iter()
            .zip(vectors)
            .zip(&texts)
            .map(|((chunk, dense), text)| IndexedChunk {
                article_id: chunk.article_id.clone(),
                ordinal: chunk.ordinal,
                dense,
                sparse: sparse::document(text),
                fingerprint: fingerprint.clone(),
            })
            .collect();
        self.index.replace_article(article_id, points).await?;
        self.prepare_questions(chunks).await;
        Ok(())
    }

    /// Embeds the questions `chunks` answer now, so that no customer waits
    /// for them; failing that, the first customer question a passage is
    /// found for embeds its own.
    async fn prepare_questions(&self, chunks: &[Chunk]) {
        let questions: Vec<String> = chunks.iter().flat_map(Chunk::questions).collect();
        let questions: Vec<&str> = questions.iter().map(String::as_str).collect();
        if let Err(error) = self.learn_questions(&questions).await {
            tracing::warn!(%error, "could not embed the passages' questions ahead of customers");
        }
    }

    /// Chunks ranked by `ranking` (`Lexical` is taken as `Sparse`: the
    /// in-memory ranking needs no index), each with its cosine where known,
    /// and the question's vector when one was used. `vector` is the
    /// question's embedding when the turn already made it.
    pub async fn search(
        &self,
        query: &str,
        vector: Option<&[f32]>,
        limit: usize,
        ranking: Ranking,
    ) -> Result<(Vec<IndexHit>, Option<Vec<f32>>), RetrievalError> {
        let words = sparse::query(query);
        let search = |query, limit| async move { self.index.search(query, limit).await.map_err(RetrievalError::from) };
        if matches!(ranking, Ranking::Lexical | Ranking::Sparse) {
            return Ok((search(IndexQuery::Sparse(&words), limit).await?, None));
        }
        // The word ranking needs no embedding: it runs while the model works.
        let lexical = async {
            match ranking {
                Ranking::Hybrid => search(IndexQuery::Sparse(&words), SPARSE_DEPTH).await,
                _ => Ok(Vec::new()),
            }
        };
        let embedded = async {
            match vector {
                Some(vector) => Ok(vector.to_vec()),
                None => self.embed_query(query).await,
            }
        };
        let (vector, lexical) = tokio::try_join!(embedded, lexical)?;
        let ranked = match ranking {
            Ranking::Hybrid => fuse(search(IndexQuery::Dense(&vector), DENSE_DEPTH).await?, &lexical, limit),
            Ranking::Rrf => {
                let fused = search(IndexQuery::Rrf(&vector, &words), limit).await?;
                // Rank fusion scores are not similarities; look the cosines up.
                let dense = search(IndexQuery::Dense(&vector), limit).await?;
                let cosine: HashMap<(&str, usize), f32> =
                    dense.iter().map(|h| ((h.article_id.as_str(), h.ordinal), h.score)).collect();
                fused
                    .into_iter()
                    .map(|h| IndexHit { similarity: cosine.get(&(h.article_id.as_str(), h.ordinal)).copied(), ..h })
                    .collect()
            }
            _ => search(IndexQuery::Dense(&vector), limit).await?,
        };
        Ok((ranked, Some(vector)))
    }
}

/// How deep the dense ranking goes into fusion: every chunk that could matter.
const DENSE_DEPTH: usize = 50;
/// Only the few best lexical matches take part: further down, BM25 on a
/// paraphrased question mostly matches filler words (BENCHMARKS.md).
const SPARSE_DEPTH: usize = 5;
/// What the best lexical match adds to a cosine similarity when ranking
/// articles (the others in proportion to their BM25 score): enough to
/// settle a near tie between meanings, too little to overturn a clear one.
const LEXICAL_BOOST: f32 = 0.1;
/// The same when choosing which passage of an article to quote: there the
/// customer's own words are the better guide (a question that repeats a
/// section's heading wants that section, not a shorter one nearby).
const PASSAGE_BOOST: f32 = 0.3;

/// Hybrid ranking: each chunk's cosine similarity plus a boost for being
/// among the best lexical matches. A mix of scores rather than rank fusion:
/// RRF treats the fifth lexical match of a question that shares no words
/// with the answer like a real match, and lost to dense retrieval alone on
/// held-out questions. Articles are ordered by their best chunk; within an
/// article, chunks by [`PASSAGE_BOOST`], so its first chunk is the one to quote.
pub fn fuse(dense: Vec<IndexHit>, lexical: &[IndexHit], limit: usize) -> Vec<IndexHit> {
    let best = lexical.iter().map(|h| h.score).fold(0.0_f32, f32::max);
    // A chunk outside the dense list is at most as similar as its last entry.
    let floor = dense.last().map_or(0.0, |h| h.score);
    // (hit with its cosine, share of the best lexical score)
    let mut scored: Vec<(IndexHit, f32)> =
        dense.into_iter().map(|h| (IndexHit { similarity: Some(h.score), ..h }, 0.0)).collect();
    for hit in lexical.iter().filter(|_| best > 0.0) {
        let share = hit.score / best;
        match scored.iter_mut().find(|(f, _)| f.article_id == hit.article_id && f.ordinal == hit.ordinal) {
            Some((_, found)) => *found = share,
            None => scored.push((IndexHit { score: floor, similarity: None, ..hit.clone() }, share)),
        }
    }
    let mut article_best: HashMap<String, f32> = HashMap::new();
    for (hit, share) in &mut scored {
        let passage = hit.score + PASSAGE_BOOST * *share;
        hit.score += LEXICAL_BOOST * *share;
        let best = article_best.entry(hit.article_id.clone()).or_insert(f32::MIN);
        *best = best.max(hit.score);
        *share = passage;
    }
    scored.sort_by(|(a, a_passage), (b, b_passage)| {
        let (a_article, b_article) = (article_best[&a.article_id], article_best[&b.article_id]);
        b_article.total_cmp(&a_article).then(a.article_id.cmp(&b.article_id)).then(b_passage.total_cmp(a_passage))
    });
    scored.into_iter().take(limit).map(|(hit, _)| hit).collect()
}

/// Turns index hits into passages: text from the lexical index (which holds
/// every published chunk), coverage from the lexical ranking of the same query.
pub fn to_hits(ranked: &[IndexHit], lexical: &[Hit], index: &LexicalIndex) -> Vec<Hit> {
    let coverage: HashMap<(&str, usize), f64> =
        lexical.iter().map(|h| ((h.article_id.as_str(), h.ordinal), h.coverage)).collect();
    ranked
        .iter()
        .filter_map(|r| {
            let key = (r.article_id.as_str(), r.ordinal);
            let chunk = index.chunk(key.0, key.1)?;
            Some(Hit {
                coverage: coverage.get(&key).copied().unwrap_or(0.0),
                similarity: r.similarity.map(f64::from),
                ..Hit::from_chunk(chunk, f64::from(r.score))
            })
        })
        .collect()
}

/// Identifies what an article's indexed points were made from: the model
/// and the exact texts. Equal fingerprints mean nothing to re-embed.
fn fingerprint(model: &str, chunks: &[Chunk]) -> String {
    let mut text = model.to_owned();
    for chunk in chunks {
        text.push('\u{1f}');
        text.push_str(&chunk.embedding_text());
    }
    super::articles::sha256_hex(text.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hit(article: &str, score: f32) -> IndexHit {
        IndexHit { article_id: article.into(), ordinal: 0, score, similarity: None }
    }

    fn order(hits: &[IndexHit]) -> Vec<&str> {
        hits.iter().map(|h| h.article_id.as_str()).collect()
    }

    #[test]
    fn a_lexical_match_settles_a_near_tie_in_meaning() {
        let dense = vec![hit("shipping", 0.62), hit("returns", 0.60), hit("privacy", 0.30)];
        let fused = fuse(dense, &[hit("returns", 7.0)], 10);
        assert_eq!(order(&fused), ["returns", "shipping", "privacy"]);
        assert_eq!(fused[0].similarity, Some(0.60), "the cosine is kept for the answer test");
    }

    #[test]
    fn a_lexical_match_cannot_overturn_a_clear_difference_in_meaning() {
        let dense = vec![hit("warranty", 0.71), hit("sizing", 0.40)];
        let lexical = [hit("sizing", 9.0), hit("warranty", 1.0)];
        assert_eq!(order(&fuse(dense, &lexical, 10)), ["warranty", "sizing"]);
    }

    #[test]
    fn within_an_article_the_passage_with_the_customers_words_comes_first() {
        let passage = |ordinal, score| IndexHit { ordinal, ..hit("refunds", score) };
        let dense = vec![passage(5, 0.58), hit("payment-methods", 0.55), passage(0, 0.45)];
        let fused = fuse(dense, &[passage(0, 8.0)], 10);
        assert_eq!(order(&fused), ["refunds", "refunds", "payment-methods"]);
        assert_eq!(fused[0].ordinal, 0, "the section the question names is quoted");
    }

    #[test]
    fn a_chunk_only_words_found_joins_below_the_meanings_and_without_a_cosine() {
        let dense = vec![hit("refunds", 0.5), hit("shipping", 0.2)];
        let fused = fuse(dense, &[hit("gift-cards", 3.0)], 10);
        assert_eq!(order(&fused), ["refunds", "gift-cards", "shipping"]);
        assert_eq!(fused[1].similarity, None);
        assert_eq!(fuse(Vec::new(), &[], 10).len(), 0);
    }
}
