//! The vector index behind one trait: embedded Qdrant Edge under `DATA_DIR`
//! (the default) or a Qdrant server (`QDRANT_URL`). Each chunk is one point
//! with a dense vector (meaning) and a BM25 sparse vector (words).

pub mod edge;
pub mod remote;

use std::collections::HashMap;

use async_trait::async_trait;

use super::sparse::SparseVec;

pub const DENSE: &str = "dense";
pub const SPARSE: &str = "bm25";
/// How far down each ranking fusion looks; well past any answer we show.
pub const PREFETCH_LIMIT: usize = 50;
/// Reciprocal rank fusion's constant: the usual 60 keeps one ranking's
/// first place from drowning the other's second.
pub const RRF_K: usize = 60;

#[derive(Debug, thiserror::Error)]
pub enum IndexError {
    #[error("index storage: {0}")]
    Storage(String),
    #[error("index server: {0}")]
    Remote(String),
}

/// One chunk, ready to store.
#[derive(Debug, Clone)]
pub struct IndexedChunk {
    pub article_id: String,
    pub ordinal: usize,
    pub dense: Vec<f32>,
    pub sparse: SparseVec,
    /// What the article's points were made from (model and texts).
    pub fingerprint: String,
}

/// What to rank chunks by.
#[derive(Debug, Clone, Copy)]
pub enum IndexQuery<'a> {
    /// Cosine similarity to a question's embedding.
    Dense(&'a [f32]),
    /// BM25 against a question's words.
    Sparse(&'a SparseVec),
    /// Both rankings fused by the index with RRF.
    Rrf(&'a [f32], &'a SparseVec),
}

#[derive(Debug, Clone)]
pub struct IndexHit {
    pub article_id: String,
    pub ordinal: usize,
    pub score: f32,
    /// Cosine similarity to the query, when known.
    pub similarity: Option<f32>,
}

#[async_trait]
pub trait VectorIndex: Send + Sync {
    /// Every replica sees the same points (a server), rather than its own copy.
    fn is_shared(&self) -> bool;

    /// Readies the index for `model`: wiped and recreated when it is
    /// missing, from another model or `rebuild` is set. Returns each stored
    /// article's fingerprint, so the caller re-embeds only what changed.
    async fn prepare(
        &self,
        model: &str,
        dimension: usize,
        rebuild: bool,
    ) -> Result<HashMap<String, String>, IndexError>;

    /// Replaces every point of `article_id` with `chunks` (none: removes it).
    async fn replace_article(&self, article_id: &str, chunks: Vec<IndexedChunk>) -> Result<(), IndexError>;

    async fn delete_article(&self, article_id: &str) -> Result<(), IndexError> {
        self.replace_article(article_id, Vec::new()).await
    }

    /// The best `limit` chunks, best first; a dense query's hits carry their
    /// cosine as `similarity`.
    async fn search(&self, query: IndexQuery<'_>, limit: usize) -> Result<Vec<IndexHit>, IndexError>;
}

/// A stable point id per chunk, so re-writing a chunk replaces it.
pub fn point_id(article_id: &str, ordinal: usize) -> u64 {
    let key = format!("{article_id}\u{1f}{ordinal}");
    key.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |hash, b| (hash ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3))
}
