//! Dense and hybrid retrieval: an embedding model turns chunks and questions
//! into vectors; a vector index (embedded Qdrant Edge, or a Qdrant server)
//! holds each chunk's dense vector beside its BM25 sparse vector and fuses
//! the two rankings with reciprocal rank fusion.

use std::{collections::HashMap, sync::Arc};

use indicatif::ProgressBar;

use super::{
    chunking::Chunk,
    embeddings::Embedder,
    index::{IndexHit, IndexedChunk, QueryMode, VectorIndex},
    lexical::{Hit, LexicalIndex},
    sparse,
};

/// Which ranking to use; the evaluation compares all three.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ranking {
    Lexical,
    Dense,
    Hybrid,
}

pub struct DenseRetrieval {
    embedder: Arc<Embedder>,
    index: Arc<dyn VectorIndex>,
}

impl DenseRetrieval {
    pub fn new(embedder: Arc<Embedder>, index: Arc<dyn VectorIndex>) -> Self {
        Self { embedder, index }
    }

    pub fn embedder(&self) -> &Embedder {
        &self.embedder
    }

    /// Makes the index hold exactly `chunks`: rebuilt from scratch if it is
    /// from another model (or `force`), otherwise only the articles whose
    /// chunks differ are re-embedded.
    pub async fn sync(&self, chunks: &[Chunk], force: bool, progress: &ProgressBar) -> Result<(), String> {
        let model = self.embedder.model_id();
        let stored = self.index.prepare(model, self.embedder.dimension(), force).await.map_err(|e| e.to_string())?;
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
            self.index.delete_article(gone).await.map_err(|e| e.to_string())?;
        }
        Ok(())
    }

    /// Replaces one article's chunks in the index (none: removes it).
    pub async fn replace_article(&self, article_id: &str, chunks: &[Chunk]) -> Result<(), String> {
        let texts: Vec<String> = chunks.iter().map(Chunk::embedding_text).collect();
        let vectors = self.embedder.embed_documents(texts.clone()).await.map_err(|e| e.to_string())?;
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
        self.index.replace_article(article_id, points).await.map_err(|e| e.to_string())
    }

    /// Chunks ranked by `mode`, with each one's cosine similarity.
    pub async fn search(&self, query: &str, limit: usize, mode: QueryMode) -> Result<Vec<IndexHit>, String> {
        let vector = self.embedder.embed_query(query.to_owned()).await.map_err(|e| e.to_string())?;
        let sparse = sparse::query(query);
        let ranked = self.index.search(&vector, &sparse, limit, mode).await.map_err(|e| e.to_string())?;
        if mode == QueryMode::Dense {
            return Ok(ranked);
        }
        // Fused scores are ranks, not similarities; the assistant's "is this
        // an answer?" test needs the cosine, so look the ranked chunks up.
        let dense = self.index.search(&vector, &sparse, limit, QueryMode::Dense).await.map_err(|e| e.to_string())?;
        let similarity: HashMap<(String, usize), f32> =
            dense.into_iter().map(|h| ((h.article_id, h.ordinal), h.score)).collect();
        Ok(ranked
            .into_iter()
            .map(|h| {
                let cosine = similarity.get(&(h.article_id.clone(), h.ordinal)).copied();
                IndexHit { similarity: cosine, ..h }
            })
            .collect())
    }
}

/// Turns index hits into passages: text from the lexical index (which holds
/// every published chunk), coverage from the lexical ranking of the same query.
pub fn to_hits(ranked: &[IndexHit], lexical: &[Hit], index: &LexicalIndex) -> Vec<Hit> {
    let coverage: HashMap<(&str, usize), f64> =
        lexical.iter().map(|h| ((h.article_id.as_str(), h.ordinal), h.coverage)).collect();
    let chunks: HashMap<(&str, usize), &Chunk> =
        index.chunks().iter().map(|c| ((c.article_id.as_str(), c.ordinal), c)).collect();
    ranked
        .iter()
        .filter_map(|r| {
            let key = (r.article_id.as_str(), r.ordinal);
            let chunk = chunks.get(&key)?;
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
