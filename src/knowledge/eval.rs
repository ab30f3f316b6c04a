//! Retrieval evaluation: questions phrased as customers phrase them, each
//! labelled with the article that answers it, scored as recall@1, recall@3
//! and mean reciprocal rank (MRR, over the top 10).

use std::path::Path;

use serde::{Deserialize, Serialize};

use super::{KnowledgeBase, KnowledgeError, Ranking};

const DEPTH: usize = 10;

#[derive(Debug, Clone, Deserialize)]
pub struct Case {
    pub question: String,
    /// The id of the article that answers it.
    pub article: String,
}

#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct Scores {
    pub recall_at_1: f64,
    pub recall_at_3: f64,
    pub mrr: f64,
    /// Right article first and confident enough that the assistant quotes
    /// it (the rest it declines or hands over).
    pub answered: f64,
}

pub fn load_cases(path: &Path) -> Result<Vec<Case>, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    serde_yaml::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))
}

/// Scores `ranking` over `cases`; a case whose article is not in the top
/// ten counts as a miss.
pub async fn evaluate(kb: &KnowledgeBase, cases: &[Case], ranking: Ranking) -> Result<Scores, KnowledgeError> {
    let mut scores = Scores::default();
    for case in cases {
        let hits = kb.search_ranked(&case.question, None, DEPTH, ranking).await?;
        if let Some(rank) = hits.iter().position(|h| h.article_id == case.article) {
            scores.recall_at_1 += f64::from(u8::from(rank == 0));
            scores.recall_at_3 += f64::from(u8::from(rank < 3));
            scores.mrr += 1.0 / (rank as f64 + 1.0);
            let quoted =
                matches!(kb.answer_test().judge(&hits), super::Verdict::Answer(h) if h.article_id == case.article);
            scores.answered += f64::from(u8::from(quoted));
        }
    }
    let n = cases.len().max(1) as f64;
    Ok(Scores {
        recall_at_1: scores.recall_at_1 / n,
        recall_at_3: scores.recall_at_3 / n,
        mrr: scores.mrr / n,
        answered: scores.answered / n,
    })
}
