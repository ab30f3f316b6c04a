//! The store's knowledge base: articles in the database with their
//! versions, imported from `KNOWLEDGE_DIR` and edited through the admin API;
//! chunked along their Markdown structure and found by hybrid retrieval
//! (BM25 words + sentence-embedding meaning, fused with RRF).
//!
//! - [`articles`]: article files (front matter, validation, hashes).
//! - [`chunking`]: articles into chunks that each answer one thing.
//! - [`lexical`]: BM25 over chunks in memory; it also judges how much of a
//!   question a passage covers.
//! - [`sparse`]: the same BM25 as sparse vectors for the vector index.
//! - [`embeddings`]: the local sentence model (candle) and its one-time fetch.
//! - [`index`]: the vector index trait and Qdrant Edge, embedded.
//! - [`retrieval`]: embedder + index, kept in step with the articles.
//! - [`service`]: [`KnowledgeBase`], what the assistant and admin API share.
//! - [`answer`]: whether a passage answers the question, calibrated.
//! - [`eval`]: recall@k and MRR over a labelled question set.
//! - [`startup`]: the knowledge base the settings ask for, model and all.
//! - [`cli`]: the `kb` commands.

pub mod answer;
pub mod articles;
pub mod chunking;
pub mod cli;
pub mod embeddings;
pub mod eval;
pub mod index;
pub mod lexical;
pub mod retrieval;
pub mod service;
pub mod sparse;
pub mod startup;

pub use answer::{AnswerTest, Verdict};
pub use articles::{Article, ImportProblem, SourceFile, load_dir};
pub use lexical::{Hit, LexicalIndex};
pub use retrieval::{DenseRetrieval, Ranking, RetrievalError};
pub use service::{ArticlePatch, ImportReport, KnowledgeBase, KnowledgeError, NewArticle, Overview};
