//! The store's knowledge base: policy articles from `KNOWLEDGE_DIR`, split
//! into passages along their Markdown headings, and searched lexically.

mod articles;
mod lexical;

pub use articles::{Article, ImportProblem, load_dir};
pub use lexical::{Hit, LexicalIndex};
