//! Embeddings from the `/embeddings` endpoint of an OpenAI-compatible server
//! (`EMBEDDINGS=openai`): OpenAI itself, Azure, vLLM, Ollama, llama.cpp.

use std::time::Duration;

use async_openai::{
    Client,
    config::OpenAIConfig,
    types::embeddings::{CreateEmbeddingRequest, EmbeddingInput},
};

use super::{EmbeddingError, normalise};
use crate::config::Secret;

/// Inputs per request; far below every provider's limit (OpenAI: 2048).
const BATCH: usize = 64;
/// One request, its rate-limit retries included. A customer is waiting on
/// a query; an import can afford the retries.
const QUERY_TIMEOUT: Duration = Duration::from_secs(10);
const DOCUMENTS_TIMEOUT: Duration = Duration::from_secs(120);

pub struct OpenAiEmbeddings {
    client: Client<OpenAIConfig>,
    model: String,
}

impl OpenAiEmbeddings {
    pub fn new(base_url: &str, api_key: Option<&Secret>, model: &str) -> Result<Self, EmbeddingError> {
        let mut config = OpenAIConfig::new().with_api_base(base_url);
        // Never let the library fall back to the process environment.
        config = config.with_api_key(api_key.map(Secret::expose).unwrap_or_default());
        let http = reqwest::Client::builder()
            .user_agent(concat!("storefront-assistant/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(Duration::from_secs(5))
            .build()
            .map_err(|e| EmbeddingError::Remote(e.to_string()))?;
        Ok(Self { client: Client::with_config(config).with_http_client(http), model: model.to_owned() })
    }

    pub async fn embed_query(&self, text: String) -> Result<Vec<f32>, EmbeddingError> {
        let mut vectors = self.request(vec![text], QUERY_TIMEOUT).await?;
        vectors.pop().ok_or_else(|| EmbeddingError::Remote("the server returned no embedding".into()))
    }

    pub async fn embed_documents(&self, texts: Vec<String>) -> Result<Vec<Vec<f32>>, EmbeddingError> {
        let mut vectors = Vec::with_capacity(texts.len());
        for batch in texts.chunks(BATCH) {
            vectors.extend(self.request(batch.to_vec(), DOCUMENTS_TIMEOUT).await?);
        }
        Ok(vectors)
    }

    async fn request(&self, texts: Vec<String>, timeout: Duration) -> Result<Vec<Vec<f32>>, EmbeddingError> {
        let count = texts.len();
        let request = CreateEmbeddingRequest {
            model: self.model.clone(),
            input: EmbeddingInput::StringArray(texts),
            ..CreateEmbeddingRequest::default()
        };
        let response = tokio::time::timeout(timeout, self.client.embeddings().create(request))
            .await
            .map_err(|_| EmbeddingError::Remote(format!("no answer within {} s", timeout.as_secs())))?
            .map_err(|e| EmbeddingError::Remote(e.to_string()))?;
        let mut data = response.data;
        // Servers may answer out of order; `index` says which input is which.
        data.sort_by_key(|e| e.index);
        let in_order = data.iter().enumerate().all(|(i, e)| e.index as usize == i);
        if data.len() != count || !in_order {
            return Err(EmbeddingError::Remote(format!("asked for {count} embeddings, got {}", data.len())));
        }
        let dimension = data.first().map_or(0, |e| e.embedding.len());
        if dimension == 0 || data.iter().any(|e| e.embedding.len() != dimension) {
            return Err(EmbeddingError::Remote("the server returned vectors of differing lengths".into()));
        }
        Ok(data.into_iter().map(|e| normalise(e.embedding)).collect())
    }
}
