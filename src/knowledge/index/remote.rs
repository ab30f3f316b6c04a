//! A Qdrant server or cluster (`QDRANT_URL`), through qdrant-client: what
//! several replicas share. Each model gets its own collection, named after
//! the model, so a replica with another model never mixes vectors with it.

use std::collections::HashMap;

use async_trait::async_trait;
use qdrant_client::{
    Qdrant,
    qdrant::{
        Condition, CreateCollectionBuilder, DeleteCollectionBuilder, DeletePointsBuilder, Distance, Filter, Modifier,
        PointId, PointStruct, PrefetchQueryBuilder, Query, QueryPointsBuilder, RrfBuilder, ScrollPointsBuilder,
        SparseVectorParamsBuilder, SparseVectorsConfigBuilder, UpsertPointsBuilder, Value, Vector, VectorParamsBuilder,
        VectorsConfigBuilder, point_id::PointIdOptions, value::Kind,
    },
};

use super::{
    DENSE, IndexError, IndexHit, IndexQuery, IndexedChunk, PREFETCH_LIMIT, RRF_K, SPARSE, VectorIndex, point_id,
};
use crate::config::Secret;
use crate::knowledge::sparse::SparseVec;

pub struct RemoteIndex {
    client: Qdrant,
    /// Set by `prepare`, from the model.
    collection: std::sync::RwLock<String>,
}

fn remote(e: impl std::fmt::Display) -> IndexError {
    IndexError::Remote(e.to_string())
}

impl RemoteIndex {
    pub fn connect(url: &str, api_key: Option<&Secret>) -> Result<Self, IndexError> {
        let client = Qdrant::from_url(url)
            .api_key(api_key.map(|k| k.expose().to_owned()))
            .skip_compatibility_check()
            .build()
            .map_err(remote)?;
        Ok(Self { client, collection: std::sync::RwLock::new(String::new()) })
    }

    fn collection(&self) -> String {
        self.collection.read().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

fn text(payload: &HashMap<String, Value>, key: &str) -> Option<String> {
    match payload.get(key)?.kind.as_ref()? {
        Kind::StringValue(s) => Some(s.clone()),
        _ => None,
    }
}

fn integer(payload: &HashMap<String, Value>, key: &str) -> Option<usize> {
    match payload.get(key)?.kind.as_ref()? {
        Kind::IntegerValue(i) => usize::try_from(*i).ok(),
        _ => None,
    }
}

#[async_trait]
impl VectorIndex for RemoteIndex {
    fn is_shared(&self) -> bool {
        true
    }

    #[tracing::instrument(skip(self))]
    async fn prepare(
        &self,
        model: &str,
        dimension: usize,
        rebuild: bool,
    ) -> Result<HashMap<String, String>, IndexError> {
        let digest = crate::knowledge::articles::sha256_hex(model.as_bytes());
        let name = format!("storefront_kb_{}", &digest[..12]);
        *self.collection.write().unwrap_or_else(|e| e.into_inner()) = name.clone();
        let exists = self.client.collection_exists(&name).await.map_err(remote)?;
        if exists && rebuild {
            self.client.delete_collection(DeleteCollectionBuilder::new(&name)).await.map_err(remote)?;
        }
        if !exists || rebuild {
            let mut vectors = VectorsConfigBuilder::default();
            vectors.add_named_vector_params(DENSE, VectorParamsBuilder::new(dimension as u64, Distance::Cosine));
            let mut sparse = SparseVectorsConfigBuilder::default();
            sparse.add_named_vector_params(SPARSE, SparseVectorParamsBuilder::default().modifier(Modifier::Idf));
            let create = CreateCollectionBuilder::new(&name).vectors_config(vectors).sparse_vectors_config(sparse);
            self.client.create_collection(create).await.map_err(remote)?;
            return Ok(HashMap::new());
        }
        let mut fingerprints = HashMap::new();
        let mut offset: Option<PointId> = None;
        loop {
            let mut request = ScrollPointsBuilder::new(&name).limit(256).with_payload(true);
            if let Some(offset) = offset.take() {
                request = request.offset(offset);
            }
            let page = self.client.scroll(request).await.map_err(remote)?;
            for point in &page.result {
                if let (Some(id), Some(fp)) = (text(&point.payload, "article_id"), text(&point.payload, "fingerprint"))
                {
                    fingerprints.insert(id, fp);
                }
            }
            match page.next_page_offset {
                Some(next) => offset = Some(next),
                None => break,
            }
        }
        Ok(fingerprints)
    }

    #[tracing::instrument(skip(self, chunks), fields(chunks = chunks.len()))]
    async fn replace_article(&self, article_id: &str, chunks: Vec<IndexedChunk>) -> Result<(), IndexError> {
        let name = self.collection();
        let filter = Filter::must([Condition::matches("article_id", article_id.to_owned())]);
        self.client.delete_points(DeletePointsBuilder::new(&name).points(filter).wait(true)).await.map_err(remote)?;
        if chunks.is_empty() {
            return Ok(());
        }
        let points: Vec<PointStruct> = chunks
            .into_iter()
            .map(|chunk| {
                let id = point_id(&chunk.article_id, chunk.ordinal);
                let vectors: HashMap<String, Vector> = HashMap::from([
                    (DENSE.to_owned(), Vector::new_dense(chunk.dense)),
                    (SPARSE.to_owned(), Vector::new_sparse(chunk.sparse.indices, chunk.sparse.values)),
                ]);
                let payload: HashMap<String, Value> = HashMap::from([
                    ("article_id".to_owned(), Value::from(chunk.article_id)),
                    ("ordinal".to_owned(), Value::from(chunk.ordinal as i64)),
                    ("fingerprint".to_owned(), Value::from(chunk.fingerprint)),
                ]);
                PointStruct::new(id, vectors, payload)
            })
            .collect();
        self.client.upsert_points(UpsertPointsBuilder::new(&name, points).wait(true)).await.map_err(remote)?;
        Ok(())
    }

    #[tracing::instrument(skip(self, query))]
    async fn search(&self, query: IndexQuery<'_>, limit: usize) -> Result<Vec<IndexHit>, IndexError> {
        let dense_query = |dense: &[f32]| Query::new_nearest(dense.to_vec());
        let sparse_query = |sparse: &SparseVec| {
            Query::new_nearest(qdrant_client::qdrant::VectorInput::new_sparse(
                sparse.indices.clone(),
                sparse.values.clone(),
            ))
        };
        let is_dense = matches!(query, IndexQuery::Dense(_));
        let base = QueryPointsBuilder::new(self.collection()).limit(limit as u64).with_payload(true);
        let request = match query {
            IndexQuery::Dense(dense) => base.query(dense_query(dense)).using(DENSE),
            IndexQuery::Sparse(sparse) => base.query(sparse_query(sparse)).using(SPARSE),
            IndexQuery::Rrf(dense, sparse) => base
                .add_prefetch(
                    PrefetchQueryBuilder::default().query(dense_query(dense)).using(DENSE).limit(PREFETCH_LIMIT as u64),
                )
                .add_prefetch(
                    PrefetchQueryBuilder::default()
                        .query(sparse_query(sparse))
                        .using(SPARSE)
                        .limit(PREFETCH_LIMIT as u64),
                )
                // The server's own default k is 2; match the embedded index.
                .query(Query::new_rrf(RrfBuilder::with_k(RRF_K as u32))),
        };
        let response = self.client.query(request).await.map_err(remote)?;
        Ok(response
            .result
            .into_iter()
            .filter_map(|p| {
                // Points we wrote carry numeric ids; anything else is not ours.
                p.id.as_ref()
                    .and_then(|id| id.point_id_options.as_ref())
                    .filter(|o| matches!(o, PointIdOptions::Num(_)))?;
                Some(IndexHit {
                    article_id: text(&p.payload, "article_id")?,
                    ordinal: integer(&p.payload, "ordinal")?,
                    score: p.score,
                    similarity: is_dense.then_some(p.score),
                })
            })
            .collect())
    }
}
