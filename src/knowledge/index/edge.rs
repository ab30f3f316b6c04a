//! The embedded index: a Qdrant Edge shard under `DATA_DIR/index`, in this
//! process. Edge calls block, so they run on the blocking pool; the shard
//! sits behind our own lock because its `flush` must not race an update.

use std::{
    collections::HashMap,
    path::{Path, PathBuf},
    sync::{Arc, RwLock},
};

use async_trait::async_trait;
use qdrant_edge::{
    Condition, Distance, EdgeConfigBuilder, EdgeShard, EdgeSparseVectorParamsBuilder, EdgeVectorParamsBuilder,
    FieldCondition, Filter, Fusion, JsonPath, Match, Modifier, NamedQuery, PointId, PointInsertOperations,
    PointOperations, PointStruct, Prefetch, QueryEnum, QueryRequest, ScoringQuery, ScrollRequest, UpdateOperation,
    Vector, VectorInternal, Vectors, WithPayloadInterface, WithVector,
};
use serde_json::json;

use super::{
    DENSE, IndexError, IndexHit, IndexQuery, IndexedChunk, PREFETCH_LIMIT, RRF_K, SPARSE, VectorIndex, point_id,
};
use crate::knowledge::sparse::SparseVec;

const META_FILE: &str = "model.json";

pub struct EdgeIndex {
    dir: PathBuf,
    shard: Arc<RwLock<Option<EdgeShard>>>,
}

impl EdgeIndex {
    /// The index lives in `dir`; nothing is opened until `prepare`.
    pub fn new(dir: PathBuf) -> Self {
        Self { dir, shard: Arc::new(RwLock::new(None)) }
    }

    async fn blocking<T: Send + 'static>(
        &self,
        work: impl FnOnce(&Path, &RwLock<Option<EdgeShard>>) -> Result<T, IndexError> + Send + 'static,
    ) -> Result<T, IndexError> {
        let (dir, shard) = (self.dir.clone(), self.shard.clone());
        tokio::task::spawn_blocking(move || work(&dir, &shard))
            .await
            .map_err(|e| IndexError::Storage(format!("index task failed: {e}")))?
    }
}

impl Drop for EdgeIndex {
    /// Edge flushes on drop and panics if its files are gone (a removed
    /// `DATA_DIR`); then there is nothing left to flush into, so skip it.
    fn drop(&mut self) {
        let shard = self.shard.write().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(shard) = shard
            && !self.dir.join("shard").exists()
        {
            std::mem::forget(shard);
        }
    }
}

fn storage(e: impl std::fmt::Display) -> IndexError {
    IndexError::Storage(e.to_string())
}

fn open_or_create(dir: &Path, model: &str, dimension: usize, rebuild: bool) -> Result<EdgeShard, IndexError> {
    let meta = json!({ "model": model, "dimension": dimension }).to_string();
    let shard_dir = dir.join("shard");
    let same_model = std::fs::read_to_string(dir.join(META_FILE)).is_ok_and(|m| m == meta);
    if !rebuild && same_model && shard_dir.exists() {
        match EdgeShard::load(&shard_dir, None) {
            Ok(shard) => return Ok(shard),
            Err(error) => tracing::warn!(%error, "the knowledge index is unreadable; rebuilding it"),
        }
    } else if shard_dir.exists() {
        tracing::info!(model, "the knowledge index is missing or from another model; rebuilding it");
    }
    if shard_dir.exists() {
        std::fs::remove_dir_all(&shard_dir).map_err(storage)?;
    }
    std::fs::create_dir_all(&shard_dir).map_err(storage)?;
    let config = EdgeConfigBuilder::new()
        .vector(DENSE, EdgeVectorParamsBuilder::new(dimension, Distance::Cosine).build())
        .sparse_vector(SPARSE, EdgeSparseVectorParamsBuilder::new().modifier(Modifier::Idf).build())
        .build();
    let shard = EdgeShard::new(&shard_dir, config).map_err(storage)?;
    std::fs::write(dir.join(META_FILE), meta).map_err(storage)?;
    Ok(shard)
}

fn article_filter(article_id: &str) -> Result<Filter, IndexError> {
    let key: JsonPath = "article_id".parse().map_err(|_| storage("bad payload key"))?;
    Ok(Filter::new_must(Condition::Field(FieldCondition::new_match(key, Match::from(article_id.to_owned())))))
}

fn sparse_query(sparse: &SparseVec) -> Result<VectorInternal, IndexError> {
    Ok(Vector::new_sparse(sparse.indices.clone(), sparse.values.clone()).map_err(storage)?.0)
}

fn nearest(vector: VectorInternal, using: &str) -> ScoringQuery {
    ScoringQuery::Vector(QueryEnum::Nearest(NamedQuery::new(vector, using)))
}

#[async_trait]
impl VectorIndex for EdgeIndex {
    fn is_shared(&self) -> bool {
        false
    }

    async fn prepare(
        &self,
        model: &str,
        dimension: usize,
        rebuild: bool,
    ) -> Result<HashMap<String, String>, IndexError> {
        let model = model.to_owned();
        self.blocking(move |dir, slot| {
            std::fs::create_dir_all(dir).map_err(storage)?;
            let mut slot = slot.write().unwrap_or_else(|e| e.into_inner());
            // Close the old shard before its files may be removed.
            drop(slot.take());
            let shard = open_or_create(dir, &model, dimension, rebuild)?;
            let mut fingerprints = HashMap::new();
            let mut offset = None;
            loop {
                let request = ScrollRequest {
                    offset,
                    limit: Some(256),
                    filter: None,
                    with_payload: Some(WithPayloadInterface::Bool(true)),
                    with_vector: WithVector::Bool(false),
                    order_by: None,
                };
                let (records, next) = shard.scroll(request).map_err(storage)?;
                for record in records {
                    let payload = record.payload.map(|p| p.0).unwrap_or_default();
                    if let (Some(id), Some(fp)) = (payload.get("article_id"), payload.get("fingerprint")) {
                        let (id, fp) = (id.as_str().unwrap_or_default(), fp.as_str().unwrap_or_default());
                        fingerprints.insert(id.to_owned(), fp.to_owned());
                    }
                }
                match next {
                    Some(next) => offset = Some(next),
                    None => break,
                }
            }
            *slot = Some(shard);
            Ok(fingerprints)
        })
        .await
    }

    async fn replace_article(&self, article_id: &str, chunks: Vec<IndexedChunk>) -> Result<(), IndexError> {
        let article_id = article_id.to_owned();
        self.blocking(move |_, slot| {
            let slot = slot.write().unwrap_or_else(|e| e.into_inner());
            let shard = slot.as_ref().ok_or_else(|| storage("the index is not open"))?;
            let delete = PointOperations::DeletePointsByFilter(article_filter(&article_id)?);
            shard.update(UpdateOperation::PointOperation(delete)).map_err(storage)?;
            if !chunks.is_empty() {
                let mut points: Vec<qdrant_edge::PointStructPersisted> = Vec::with_capacity(chunks.len());
                for chunk in chunks {
                    let sparse = Vector::new_sparse(chunk.sparse.indices, chunk.sparse.values).map_err(storage)?;
                    let vectors = Vectors::new_named([(DENSE, Vector::new_dense(chunk.dense)), (SPARSE, sparse)]);
                    let payload = json!({
                        "article_id": chunk.article_id,
                        "ordinal": chunk.ordinal,
                        "fingerprint": chunk.fingerprint,
                    });
                    let id = PointId::NumId(point_id(&chunk.article_id, chunk.ordinal));
                    points.push(PointStruct::new(id, vectors, payload).into());
                }
                let upsert = PointOperations::UpsertPoints(PointInsertOperations::PointsList(points));
                shard.update(UpdateOperation::PointOperation(upsert)).map_err(storage)?;
            }
            shard.flush();
            Ok(())
        })
        .await
    }

    async fn search(&self, query: IndexQuery<'_>, limit: usize) -> Result<Vec<IndexHit>, IndexError> {
        let dense_query = |dense: &[f32]| nearest(VectorInternal::Dense(dense.to_vec()), DENSE);
        let sparse_query = |sparse| Ok::<_, IndexError>(nearest(sparse_query(sparse)?, SPARSE));
        let is_dense = matches!(query, IndexQuery::Dense(_));
        let (prefetches, query) = match query {
            IndexQuery::Dense(dense) => (Vec::new(), dense_query(dense)),
            IndexQuery::Sparse(sparse) => (Vec::new(), sparse_query(sparse)?),
            IndexQuery::Rrf(dense, sparse) => {
                let prefetch = |query| Prefetch {
                    prefetches: Vec::new(),
                    query: Some(query),
                    limit: PREFETCH_LIMIT,
                    params: None,
                    filter: None,
                    score_threshold: None,
                };
                let fusion = ScoringQuery::Fusion(Fusion::Rrf { k: RRF_K, weights: None });
                (vec![prefetch(dense_query(dense)), prefetch(sparse_query(sparse)?)], fusion)
            }
        };
        let request = QueryRequest {
            prefetches,
            query: Some(query),
            filter: None,
            score_threshold: None,
            limit,
            offset: 0,
            params: None,
            with_vector: WithVector::Bool(false),
            with_payload: WithPayloadInterface::Bool(true),
        };
        self.blocking(move |_, slot| {
            let slot = slot.read().unwrap_or_else(|e| e.into_inner());
            let shard = slot.as_ref().ok_or_else(|| storage("the index is not open"))?;
            let points = shard.query(request).map_err(storage)?;
            Ok(points
                .into_iter()
                .filter_map(|p| {
                    let payload = p.payload?.0;
                    Some(IndexHit {
                        article_id: payload.get("article_id")?.as_str()?.to_owned(),
                        ordinal: usize::try_from(payload.get("ordinal")?.as_u64()?).ok()?,
                        score: p.score,
                        similarity: is_dense.then_some(p.score),
                    })
                })
                .collect())
        })
        .await
    }
}
