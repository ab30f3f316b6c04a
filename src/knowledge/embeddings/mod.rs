//! Sentence embeddings: a BERT-family model run in-process ([`local`], the
//! default) or an OpenAI-compatible embeddings endpoint ([`openai`]). Both
//! give normalised vectors, so a dot product is a cosine similarity.
//!
//! Local model work is CPU-bound, so it runs on the blocking pool, never on
//! the async runtime. Customers' messages that arrive together share one
//! forward pass ([`crate::batch`]).

pub mod fetch;
pub mod local;
pub mod openai;
pub mod recent;

use std::{
    collections::HashMap,
    path::Path,
    sync::{Arc, Mutex},
};

use local::LocalModel;
use openai::OpenAiEmbeddings;
use recent::Recent;

use crate::{batch::Batcher, config::Secret};

#[derive(Debug, thiserror::Error)]
pub enum EmbeddingError {
    #[error("cannot read the model at {path}: {reason}")]
    Load { path: String, reason: String },
    #[error("the model failed: {0}")]
    Model(#[from] candle_core::Error),
    #[error("the tokenizer failed: {0}")]
    Tokenizer(String),
    #[error("the embedding task failed: {0}")]
    Task(String),
    #[error("the embeddings endpoint failed: {0}")]
    Remote(String),
}

/// One message's meaning: the whole (what retrieval searches with) and, for
/// a message of several sentences, each sentence in the whole's context.
#[derive(Debug, Clone)]
pub struct MessageEmbedding {
    pub whole: Arc<[f32]>,
    pub sentences: Vec<Vec<f32>>,
}

/// Messages kept per generation of [`Recent`] (at most twice this in all,
/// a few MB).
const RECENT_PER_GENERATION: usize = 2048;

/// A model, loaded or reachable; cheap to share.
pub struct Embedder {
    backend: Backend,
    /// Messages read lately: a repeated one costs no pass.
    recent: Recent,
    /// Names the model exactly: an index built with another is rebuilt.
    id: String,
    dimension: usize,
}

enum Backend {
    Local { model: Arc<LocalModel>, messages: Batcher<String, Result<MessageEmbedding, EmbeddingError>> },
    OpenAi(Box<OpenAiEmbeddings>),
}

impl Embedder {
    /// The local model in `dir` (`config.json`, `tokenizer.json`,
    /// `model.safetensors`), reading up to `max_batch` messages in one pass.
    /// Call it within the runtime that will use it: the batcher runs there.
    pub fn load(dir: &Path, max_batch: usize) -> Result<Self, EmbeddingError> {
        let model = Arc::new(LocalModel::load(dir)?);
        let (id, dimension) = (model.id.clone(), model.dimension);
        // Measured (`kb bench`): a short batch's pass gains little from a
        // second thread, so each core runs a pass of its own.
        let cores = std::thread::available_parallelism().map_or(1, usize::from);
        let messages = Batcher::start(max_batch, cores, {
            let model = model.clone();
            move |texts: Vec<String>| {
                let model = model.clone();
                async move {
                    let count = texts.len();
                    let read = run_blocking(move || {
                        model.embed_messages(&texts.iter().map(String::as_str).collect::<Vec<_>>())
                    });
                    match read.await {
                        Ok(read) => read.into_iter().map(Ok).collect(),
                        // One failure for all: each waiting turn gets its own copy.
                        Err(e) => (0..count).map(|_| Err(EmbeddingError::Task(e.to_string()))).collect(),
                    }
                }
            }
        });
        Ok(Self {
            backend: Backend::Local { model, messages },
            recent: Recent::new(RECENT_PER_GENERATION),
            id,
            dimension,
        })
    }

    /// `model` behind an OpenAI-compatible API. One probe request learns the
    /// vector size and proves the endpoint and key work before we serve.
    pub async fn connect_openai(base_url: &str, api_key: Option<&Secret>, model: &str) -> Result<Self, EmbeddingError> {
        let remote = OpenAiEmbeddings::new(base_url, api_key, model)?;
        let dimension = remote.embed_query("dimension probe".into()).await?.len();
        let id = format!("openai:{model}@{base_url}");
        let recent = Recent::new(RECENT_PER_GENERATION);
        Ok(Self { backend: Backend::OpenAi(Box::new(remote)), recent, id, dimension })
    }

    pub fn model_id(&self) -> &str {
        &self.id
    }

    pub fn dimension(&self) -> usize {
        self.dimension
    }

    /// The in-process model, if that is what this is (`kb bench` times its stages).
    pub fn local(&self) -> Option<&LocalModel> {
        match &self.backend {
            Backend::Local { model, .. } => Some(model),
            Backend::OpenAi(_) => None,
        }
    }

    pub async fn embed_query(&self, text: String) -> Result<Vec<f32>, EmbeddingError> {
        match &self.backend {
            Backend::Local { .. } => Ok(self.embed_message(text).await?.whole.to_vec()),
            Backend::OpenAi(remote) => remote.embed_query(text).await,
        }
    }

    /// A customer's message read whole and, with the local model, sentence
    /// by sentence from the same pass; a remote endpoint gives the whole only.
    pub async fn embed_message(&self, text: String) -> Result<MessageEmbedding, EmbeddingError> {
        if let Some(known) = self.recent.get(&text) {
            return Ok(known);
        }
        let read = match &self.backend {
            Backend::Local { messages, .. } => {
                messages.submit(text.clone()).await.map_err(|e| EmbeddingError::Task(e.to_string()))??
            }
            Backend::OpenAi(remote) => {
                MessageEmbedding { whole: remote.embed_query(text.clone()).await?.into(), sentences: Vec::new() }
            }
        };
        self.recent.put(&text, &read);
        Ok(read)
    }

    pub async fn embed_documents(&self, texts: Vec<String>) -> Result<Vec<Vec<f32>>, EmbeddingError> {
        match &self.backend {
            Backend::Local { model, .. } => {
                let known = DOCUMENTS.known(&self.id, &texts);
                let missing: Vec<String> =
                    texts.iter().zip(&known).filter(|(_, v)| v.is_none()).map(|(t, _)| t.clone()).collect();
                if missing.is_empty() {
                    return Ok(known.into_iter().flatten().map(|v| v.to_vec()).collect());
                }
                let model = model.clone();
                let input = missing.clone();
                let made = run_blocking(move || model.embed_documents(&input)).await?;
                DOCUMENTS.remember(&self.id, &missing, &made);
                let mut made = made.into_iter();
                Ok(known.into_iter().filter_map(|k| k.map(|v| v.to_vec()).or_else(|| made.next())).collect())
            }
            Backend::OpenAi(remote) => remote.embed_documents(texts).await,
        }
    }
}

/// Passages and examples the local model has embedded in this process, by
/// model and text: an app started again in the same process (each test's,
/// or the service's after a restart in place) indexes its knowledge base
/// without another pass. A remote endpoint's vectors are not kept: another
/// endpoint under the same name may answer differently.
static DOCUMENTS: DocumentCache = DocumentCache(Mutex::new(None));

/// Texts kept at most (about 1.5 kB each for a 384-wide model); past it
/// the cache starts over.
const MAX_DOCUMENTS: usize = 16_384;

type ByModel = HashMap<String, HashMap<String, Arc<[f32]>>>;

struct DocumentCache(Mutex<Option<ByModel>>);

impl DocumentCache {
    fn known(&self, model: &str, texts: &[String]) -> Vec<Option<Arc<[f32]>>> {
        let cache = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let texts_of_model = cache.as_ref().and_then(|c| c.get(model));
        texts.iter().map(|t| texts_of_model.and_then(|known| known.get(t)).cloned()).collect()
    }

    fn remember(&self, model: &str, texts: &[String], vectors: &[Vec<f32>]) {
        let mut cache = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let known = cache.get_or_insert_default().entry(model.to_owned()).or_default();
        if known.len() + texts.len() > MAX_DOCUMENTS {
            known.clear();
        }
        known.extend(texts.iter().cloned().zip(vectors.iter().map(|v| Arc::from(v.as_slice()))));
    }
}

async fn run_blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, EmbeddingError> + Send + 'static,
) -> Result<T, EmbeddingError> {
    tokio::task::spawn_blocking(work).await.map_err(|e| EmbeddingError::Task(e.to_string()))?
}

/// Scales `v` to unit length (a zero vector stays zero).
fn normalise(mut v: Vec<f32>) -> Vec<f32> {
    let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    if norm > 0.0 {
        v.iter_mut().for_each(|x| *x /= norm);
    }
    v
}
