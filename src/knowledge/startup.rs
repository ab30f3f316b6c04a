//! The knowledge base the settings ask for: the database's articles with
//! dense retrieval when `EMBEDDINGS` wants a model and one is at hand, and a
//! background retry that brings the model into service when it was not.

use std::{sync::Arc, time::Duration};

use tokio_util::sync::CancellationToken;

use super::{
    DenseRetrieval, KnowledgeBase, KnowledgeError,
    embeddings::{Embedder, fetch},
    index::{VectorIndex, edge::EdgeIndex, remote::RemoteIndex},
};
use crate::config::{EmbeddingsMode, Settings};
use crate::db::Db;

/// The knowledge base over `db`, with `KNOWLEDGE_DIR` imported (idempotent:
/// unchanged files are skipped; a bad file is skipped with a warning).
pub async fn start(settings: &Settings, db: Db) -> Result<KnowledgeBase, KnowledgeError> {
    let knowledge = open(settings, db, false).await?;
    let report = knowledge.import_dir(&settings.knowledge_dir, &indicatif::ProgressBar::hidden()).await?;
    for problem in &report.skipped {
        tracing::warn!(file = %problem.file, reason = %problem.reason, "skipped a knowledge-base file");
    }
    tracing::info!(
        created = report.created.len(),
        updated = report.updated.len(),
        unchanged = report.unchanged,
        skipped = report.skipped.len(),
        "knowledge base imported"
    );
    Ok(knowledge)
}

/// The knowledge base over `db`, with dense retrieval when `EMBEDDINGS`
/// asks for it and a model is at hand (else lexical, and not ready until
/// [`keep_trying_the_model`] brings one). `progress` draws bars (CLI).
pub async fn open(settings: &Settings, db: Db, progress: bool) -> Result<KnowledgeBase, KnowledgeError> {
    let dense = match embedder(settings, progress).await {
        None => None,
        Some(Ok(embedder)) => Some(DenseRetrieval::new(Arc::new(embedder), vector_index(settings)?)),
        Some(Err(reason)) => {
            tracing::warn!("no embedding model ({reason}): knowledge retrieval is lexical only until one can be had");
            None
        }
    };
    let bar = if progress { super::cli::bar("indexing") } else { indicatif::ProgressBar::hidden() };
    let model_wanted = settings.embeddings != EmbeddingsMode::None;
    KnowledgeBase::open(db, dense, model_wanted, &bar).await
}

/// The model `EMBEDDINGS` asks for: `None` if it asks for none.
async fn embedder(settings: &Settings, progress: bool) -> Option<Result<Embedder, String>> {
    match settings.embeddings {
        EmbeddingsMode::None => None,
        EmbeddingsMode::OpenAi => {
            let (base_url, model) = (&settings.openai_base_url, &settings.embedding_model);
            let connected = Embedder::connect_openai(base_url, settings.openai_api_key.as_ref(), model).await;
            Some(connected.map_err(|e| format!("{model} at {base_url}: {e}")))
        }
        EmbeddingsMode::Local => Some(load_local_model(settings, progress).await),
    }
}

fn vector_index(settings: &Settings) -> Result<Arc<dyn VectorIndex>, KnowledgeError> {
    Ok(match &settings.qdrant_url {
        Some(url) => {
            Arc::new(RemoteIndex::connect(url, settings.qdrant_api_key.as_ref()).map_err(KnowledgeError::Qdrant)?)
        }
        None => Arc::new(EdgeIndex::new(settings.data_dir.join("index"))),
    })
}

/// A model that could not be had at start (an endpoint down, a download
/// failed) is tried again, backing off to once a minute, until it is in
/// service; `/readyz` says `model` until then.
pub async fn keep_trying_the_model(settings: Settings, knowledge: Arc<KnowledgeBase>, shutdown: CancellationToken) {
    let mut wait = Duration::from_secs(1);
    while knowledge.model_missing() && shutdown.run_until_cancelled(tokio::time::sleep(wait)).await.is_some() {
        wait = (wait * 2).min(Duration::from_secs(60));
        let attached = match embedder(&settings, false).await {
            Some(Ok(embedder)) => match vector_index(&settings) {
                Ok(index) => knowledge
                    .attach_dense(DenseRetrieval::new(Arc::new(embedder), index), &indicatif::ProgressBar::hidden())
                    .await
                    .map_err(|e| e.to_string()),
                Err(error) => Err(error.to_string()),
            },
            Some(Err(reason)) => Err(reason),
            None => return,
        };
        match attached {
            Ok(()) => tracing::info!("the embedding model is in service: retrieval is hybrid"),
            // Start-up already warned once; a line a minute would drown the log.
            Err(reason) => tracing::debug!(retry_in = ?wait, "still no embedding model ({reason})"),
        }
    }
}

/// The local model from `EMBEDDING_MODEL_DIR`, or the default one under
/// `DATA_DIR`, fetched there once.
async fn load_local_model(settings: &Settings, progress: bool) -> Result<Embedder, String> {
    let dir = match &settings.embedding_model_dir {
        Some(dir) => dir.clone(),
        None => {
            let dir = fetch::default_model_dir(&settings.data_dir);
            fetch::ensure_model(&dir, progress).await.map_err(|e| e.to_string())?;
            dir
        }
    };
    let max_batch = settings.embedding_max_batch;
    let loaded =
        tokio::task::spawn_blocking(move || Embedder::load(&dir, max_batch)).await.map_err(|e| e.to_string())?;
    loaded.map_err(|e| e.to_string())
}
