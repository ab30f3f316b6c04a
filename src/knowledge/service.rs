//! [`KnowledgeBase`]: the one service the assistant and the admin API share.
//! Articles live in the database with their versions; every change
//! re-indexes just that article, so the next customer question sees it.

use std::{
    path::Path,
    sync::{Arc, OnceLock, RwLock},
};

use indicatif::ProgressBar;
use serde::{Deserialize, Serialize};

use super::{
    AnswerTest, Article, ImportProblem, SourceFile,
    articles::{MAX_FILE_BYTES, is_valid_id, sha256_hex},
    chunking::{Chunk, chunk_article},
    embeddings::MessageEmbedding,
    lexical::{Hit, LexicalIndex, best_per_article},
    retrieval::{DenseRetrieval, Ranking, RetrievalError, to_hits},
};
use crate::db::{ArticleFields, ArticleRecord, ArticleVersion, ArticleWrite, Db};

#[derive(Debug, thiserror::Error)]
pub enum KnowledgeError {
    #[error("no such article")]
    NotFound,
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Storage(#[from] sqlx::Error),
    #[error("retrieval failed: {0}")]
    Retrieval(#[from] RetrievalError),
    #[error("cannot use the Qdrant server at QDRANT_URL: {0}")]
    Qdrant(super::index::IndexError),
}

/// An article as a whole: what a question about its topic in general gets.
#[derive(Debug, Clone)]
pub struct Overview {
    pub opening: Hit,
    /// Its sections' headings, in order.
    pub sections: Vec<String>,
}

/// A new article from the admin API.
#[derive(Debug, Deserialize)]
pub struct NewArticle {
    pub id: Option<String>,
    pub title: String,
    pub body: String,
    #[serde(default)]
    pub tags: Vec<String>,
    pub locale: Option<String>,
    pub url: Option<String>,
    pub status: Option<String>,
}

/// An edit: fields left out keep their value. `version`, when given, must be
/// the version the editor read; otherwise the edit is refused as a conflict.
#[derive(Debug, Default, Deserialize)]
pub struct ArticlePatch {
    pub title: Option<String>,
    pub body: Option<String>,
    pub tags: Option<Vec<String>>,
    pub locale: Option<String>,
    /// An empty string removes the url.
    pub url: Option<String>,
    pub status: Option<String>,
    pub version: Option<i64>,
}

#[derive(Debug, Default, Serialize)]
pub struct ImportReport {
    pub created: Vec<String>,
    pub updated: Vec<String>,
    pub unchanged: usize,
    pub skipped: Vec<ImportProblem>,
}

pub struct KnowledgeBase {
    db: Db,
    /// The published articles' chunks, searched lexically; replaced whole
    /// (it is small) under a short lock, never held across an await.
    lexical: RwLock<Arc<LexicalIndex>>,
    /// Embeddings and the vector index, once a model is available.
    dense: OnceLock<DenseRetrieval>,
    /// `EMBEDDINGS` asked for a model: without one we serve, but not ready.
    model_wanted: bool,
    /// Writers go one at a time, so the indexes change in the order the
    /// database did.
    writes: tokio::sync::Mutex<()>,
    /// Names this instance in change notices to other replicas.
    origin: String,
}

impl KnowledgeBase {
    /// Opens the knowledge base over the articles already in `db` and
    /// brings the indexes up to date with them. `model_wanted` without
    /// `dense`: lexical until [`Self::attach_dense`] succeeds.
    pub async fn open(
        db: Db,
        dense: Option<DenseRetrieval>,
        model_wanted: bool,
        progress: &ProgressBar,
    ) -> Result<Self, KnowledgeError> {
        let kb = Self {
            db,
            lexical: RwLock::new(Arc::new(LexicalIndex::new(Vec::new()))),
            dense: dense.map(OnceLock::from).unwrap_or_default(),
            model_wanted,
            writes: tokio::sync::Mutex::new(()),
            origin: uuid::Uuid::new_v4().to_string(),
        };
        kb.reindex(false, progress).await?;
        Ok(kb)
    }

    /// Brings a model that was unavailable at start into service: the
    /// vector index is synced with the articles, then queries use it.
    pub async fn attach_dense(&self, dense: DenseRetrieval, progress: &ProgressBar) -> Result<(), KnowledgeError> {
        let _write = self.writes.lock().await;
        let (_, chunks) = self.published_chunks().await?;
        dense.sync(&chunks, false, progress).await?;
        // Only this function sets it after `open`, under the write lock.
        let _ = self.dense.set(dense);
        Ok(())
    }

    /// A model was asked for and none is in service yet.
    pub fn model_missing(&self) -> bool {
        self.model_wanted && self.dense.get().is_none()
    }

    /// Rebuilds the lexical index from the database; the vector index too
    /// when `force` is set or it does not hold what the database does.
    pub async fn reindex(&self, force: bool, progress: &ProgressBar) -> Result<usize, KnowledgeError> {
        let _write = self.writes.lock().await;
        let (count, chunks) = self.published_chunks().await?;
        if let Some(dense) = self.dense.get() {
            dense.sync(&chunks, force, progress).await?;
        }
        *self.lexical.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(LexicalIndex::new(chunks));
        Ok(count)
    }

    /// How many articles are published, and all their chunks.
    async fn published_chunks(&self) -> Result<(usize, Vec<Chunk>), KnowledgeError> {
        let articles = published(self.db.kb_articles().await?);
        Ok((articles.len(), articles.iter().flat_map(chunk_article).collect()))
    }

    pub fn dense(&self) -> Option<&DenseRetrieval> {
        self.dense.get()
    }

    /// The answer test for the retrieval in service.
    pub fn answer_test(&self) -> AnswerTest {
        if self.dense.get().is_some() { AnswerTest::HYBRID } else { AnswerTest::LEXICAL }
    }

    /// How many published articles answers can come from.
    pub fn article_count(&self) -> usize {
        let index = self.lexical_index();
        let ids: std::collections::HashSet<&str> = index.chunks().iter().map(|c| c.article_id.as_str()).collect();
        ids.len()
    }

    pub fn lexical_index(&self) -> Arc<LexicalIndex> {
        self.lexical.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// "What is your return policy?": a question that names nothing but one
    /// article's topic (its title's words) asks for the whole article, not
    /// for one passage, so no passage means it closely enough to be quoted.
    /// Its overview is the article's opening passage and its sections' headings.
    pub fn overview_for(&self, question: &str) -> Option<Overview> {
        // Words that ask for a topic in general, naming no part of it.
        const GENERAL: &[&str] =
            &["policy", "polici", "rule", "info", "information", "term", "tell", "explain", "what"];
        let asked: Vec<String> = crate::text::terms(question)
            .filter(|t| !crate::text::is_stopword(t) && !GENERAL.contains(&t.as_str()))
            .collect();
        if asked.is_empty() {
            return None;
        }
        let index = self.lexical_index();
        let mut openings = index.chunks().iter().filter(|c| c.ordinal == 0).filter(|c| {
            let title: Vec<String> = crate::text::terms(&c.title).collect();
            asked.iter().all(|t| title.contains(t))
        });
        // Two articles whose titles both fit: not one topic.
        let (Some(opening), None) = (openings.next(), openings.next()) else { return None };
        let sections = index
            .chunks()
            .iter()
            .filter(|c| c.article_id == opening.article_id && c.ordinal > 0)
            .filter_map(|c| c.heading.clone())
            .collect();
        Some(Overview { opening: Hit::from_chunk(opening, 0.0), sections })
    }

    /// The best passage of each matching article, best first: hybrid when a
    /// model is loaded, lexical otherwise.
    pub async fn search(&self, query: &str, limit: usize) -> Result<Vec<Hit>, KnowledgeError> {
        self.search_ranked(query, None, limit, Ranking::Hybrid).await
    }

    /// A message's embedding, made once per turn for understanding and
    /// search alike; `None` without a model or when it fails (the turn then
    /// goes on lexically).
    pub async fn embed_message(&self, text: &str) -> Option<MessageEmbedding> {
        let dense = self.dense.get()?;
        match dense.embed_message(text).await {
            Ok(embedding) => Some(embedding),
            Err(error) => {
                tracing::warn!(%error, "could not embed a message; understanding and search go on without it");
                None
            }
        }
    }

    /// [`Self::search`] with a chosen ranking, reusing the question's
    /// `vector` when the turn has it; without a model every ranking is lexical.
    pub async fn search_ranked(
        &self,
        query: &str,
        vector: Option<&[f32]>,
        limit: usize,
        ranking: Ranking,
    ) -> Result<Vec<Hit>, KnowledgeError> {
        let index = self.lexical_index();
        let lexical = index.search_chunks(query);
        let dense = match self.dense.get() {
            Some(dense) if ranking != Ranking::Lexical => dense,
            _ => {
                let mut hits = best_per_article(lexical);
                hits.truncate(limit);
                return Ok(hits);
            }
        };
        // Several chunks of one article may rank high; look deep enough to
        // still fill `limit` distinct articles.
        let (ranked, vector) = match dense.search(query, vector, limit.max(1) * 8, ranking).await {
            Ok((ranked, vector)) => (to_hits(&ranked, &lexical, &index), vector),
            // A customer is waiting: an unreachable embeddings endpoint or
            // index degrades the answer to lexical, it does not fail it.
            Err(error) if ranking == Ranking::Hybrid => {
                tracing::warn!(%error, "dense retrieval failed; answering from lexical search alone");
                (lexical, None)
            }
            Err(error) => return Err(error.into()),
        };
        let mut hits = best_per_article(ranked);
        if let Some(vector) = vector {
            weigh_questions(dense, &index, &vector, &mut hits).await;
            if ranking == Ranking::Hybrid {
                asked_first(&mut hits);
            }
        }
        hits.truncate(limit);
        Ok(hits)
    }

    pub async fn list(&self) -> Result<Vec<ArticleRecord>, KnowledgeError> {
        Ok(self.db.kb_articles().await?)
    }

    pub async fn get(&self, id: &str) -> Result<(ArticleRecord, Vec<ArticleVersion>), KnowledgeError> {
        let article = self.db.kb_article(id).await?.filter(|a| a.fields.status != "deleted");
        let article = article.ok_or(KnowledgeError::NotFound)?;
        Ok((article, self.db.kb_versions(id).await?))
    }

    pub async fn create(&self, new: NewArticle, author: &str) -> Result<ArticleRecord, KnowledgeError> {
        let fields = validate(ArticleFields {
            title: new.title,
            body: new.body,
            tags: new.tags,
            locale: new.locale.unwrap_or_else(|| "en".into()),
            url: new.url.filter(|u| !u.is_empty()),
            status: new.status.unwrap_or_else(|| "published".into()),
        })?;
        let id = new.id.unwrap_or_else(|| slug(&fields.title));
        if !is_valid_id(&id) {
            return Err(KnowledgeError::Invalid(
                "id must be 1-100 lowercase letters, digits, dashes or underscores".into(),
            ));
        }
        let _write = self.writes.lock().await;
        // A deleted article's id may be used again; its history continues.
        let base = match self.db.kb_article(&id).await? {
            Some(old) if old.fields.status == "deleted" => Some(old.version),
            Some(_) => return Err(KnowledgeError::Conflict(format!("an article with id `{id}` exists"))),
            None => None,
        };
        let record = self.write(&id, &fields, None, author, &["created".into()], base).await?;
        self.index_article(&record).await?;
        Ok(record)
    }

    pub async fn update(&self, id: &str, patch: ArticlePatch, author: &str) -> Result<ArticleRecord, KnowledgeError> {
        let _write = self.writes.lock().await;
        let old = self.db.kb_article(id).await?.filter(|a| a.fields.status != "deleted");
        let old = old.ok_or(KnowledgeError::NotFound)?;
        if patch.version.is_some_and(|v| v != old.version) {
            return Err(KnowledgeError::Conflict(format!(
                "the article is at version {}; reload it and edit again",
                old.version
            )));
        }
        let f = &old.fields;
        let fields = validate(ArticleFields {
            title: patch.title.unwrap_or_else(|| f.title.clone()),
            body: patch.body.unwrap_or_else(|| f.body.clone()),
            tags: patch.tags.unwrap_or_else(|| f.tags.clone()),
            locale: patch.locale.unwrap_or_else(|| f.locale.clone()),
            url: patch.url.map_or_else(|| f.url.clone(), |u| Some(u).filter(|u| !u.is_empty())),
            status: patch.status.unwrap_or_else(|| f.status.clone()),
        })?;
        let changes = changed_fields(f, &fields);
        if changes.is_empty() {
            return Ok(old);
        }
        let record = self.write(id, &fields, None, author, &changes, Some(old.version)).await?;
        self.index_article(&record).await?;
        Ok(record)
    }

    pub async fn delete(&self, id: &str, author: &str) -> Result<(), KnowledgeError> {
        let _write = self.writes.lock().await;
        let old = self.db.kb_article(id).await?.filter(|a| a.fields.status != "deleted");
        let old = old.ok_or(KnowledgeError::NotFound)?;
        let fields = ArticleFields { status: "deleted".into(), ..old.fields.clone() };
        let record = self.write(id, &fields, None, author, &["deleted".into()], Some(old.version)).await?;
        self.index_article(&record).await
    }

    /// Imports every file of `dir`: new files become articles, changed files
    /// replace theirs (even one edited through the API: the file is newer),
    /// and unchanged files are left alone, whatever the API did since.
    pub async fn import_dir(&self, dir: &Path, progress: &ProgressBar) -> Result<ImportReport, KnowledgeError> {
        let (files, skipped) =
            super::load_dir(dir).map_err(|e| KnowledgeError::Invalid(format!("cannot read {}: {e}", dir.display())))?;
        let mut report = ImportReport { skipped, ..ImportReport::default() };
        progress.set_length(files.len() as u64);
        for SourceFile { article, file_hash } in files {
            progress.set_message(article.id.clone());
            progress.inc(1);
            let _write = self.writes.lock().await;
            let old = self.db.kb_article(&article.id).await?;
            if old.as_ref().is_some_and(|o| o.file_hash.as_deref() == Some(file_hash.as_str())) {
                report.unchanged += 1;
                continue;
            }
            let fields = ArticleFields {
                title: article.title,
                body: article.body,
                tags: article.tags,
                locale: article.locale,
                url: article.url,
                status: "published".into(),
            };
            let changes = match &old {
                Some(old) => changed_fields(&old.fields, &fields),
                None => vec!["created".into()],
            };
            if let Some(old) = old.as_ref().filter(|_| changes.is_empty()) {
                self.db.kb_set_file_hash(&old.id, &file_hash).await?;
                report.unchanged += 1;
                continue;
            }
            let base = old.as_ref().map(|o| o.version);
            let record = self.write(&article.id, &fields, Some(&file_hash), "import", &changes, base).await?;
            self.index_article(&record).await?;
            match old {
                Some(_) => report.updated.push(record.id),
                None => report.created.push(record.id),
            }
        }
        Ok(report)
    }

    async fn write(
        &self,
        id: &str,
        fields: &ArticleFields,
        file_hash: Option<&str>,
        author: &str,
        changes: &[String],
        base: Option<i64>,
    ) -> Result<ArticleRecord, KnowledgeError> {
        let content_hash = content_hash(fields);
        let origin = &self.origin;
        let write = ArticleWrite { origin, id, fields, content_hash: &content_hash, file_hash, author, changes };
        self.db.kb_write(write, base).await?.ok_or_else(|| {
            KnowledgeError::Conflict("the article changed while this edit was being saved; try again".into())
        })
    }

    /// Another replica changed an article (`payload`: `"<origin> <id>"`, from
    /// the database's change notice): re-index it here. A shared Qdrant
    /// server already holds the writer's vectors; an embedded index does not.
    pub async fn apply_remote_change(&self, payload: &str) -> Result<(), KnowledgeError> {
        let Some((origin, id)) = payload.split_once(' ') else { return Ok(()) };
        if origin == self.origin {
            return Ok(());
        }
        let _write = self.writes.lock().await;
        let record = self.db.kb_article(id).await?;
        let Some(record) = record else { return Ok(()) };
        let shared = self.dense.get().is_some_and(DenseRetrieval::index_is_shared);
        self.index_record(&record, !shared).await
    }

    /// Puts one article's current state into the indexes: its chunks if it
    /// is published, nothing if it is a draft or deleted.
    async fn index_article(&self, record: &ArticleRecord) -> Result<(), KnowledgeError> {
        self.index_record(record, true).await
    }

    async fn index_record(&self, record: &ArticleRecord, with_vectors: bool) -> Result<(), KnowledgeError> {
        let chunks = match record.fields.status.as_str() {
            "published" => chunk_article(&to_article(record)),
            _ => Vec::new(),
        };
        if let Some(dense) = self.dense.get().filter(|_| with_vectors) {
            dense.replace_article(&record.id, &chunks).await?;
        }
        let current = self.lexical_index();
        let mut all: Vec<Chunk> = current.chunks().iter().filter(|c| c.article_id != record.id).cloned().collect();
        all.extend(chunks);
        *self.lexical.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(LexicalIndex::new(all));
        Ok(())
    }
}

/// Sets each hit's question similarity; without it (the model failed on
/// the passages' questions) the answer test judges the passages alone.
async fn weigh_questions(dense: &DenseRetrieval, index: &LexicalIndex, vector: &[f32], hits: &mut [Hit]) {
    let asked: Vec<Vec<String>> = hits
        .iter()
        .map(|h| index.chunk(&h.article_id, h.ordinal).map(|c| c.questions().collect()).unwrap_or_default())
        .collect();
    let flat: Vec<&str> = asked.iter().flatten().map(String::as_str).collect();
    let similarities = match dense.question_similarities(vector, &flat).await {
        Ok(similarities) => similarities,
        Err(error) => return tracing::warn!(%error, "could not embed the passages' questions"),
    };
    let mut similarities = similarities.into_iter();
    for (hit, questions) in hits.iter_mut().zip(&asked) {
        let nearest = similarities.by_ref().take(questions.len()).fold(f32::NEG_INFINITY, f32::max);
        hit.question_similarity = nearest.is_finite().then_some(f64::from(nearest));
    }
}

/// Puts the articles whose best passage has the customer's question among
/// its own all but word for word (the similarity the answer test takes as
/// "this is what it answers") first, nearest first; the rest keep their
/// order. A question an operator taught a section must find that section,
/// not only pass the test once found.
fn asked_first(hits: &mut [Hit]) {
    let bar = AnswerTest::HYBRID.min_question_similarity;
    let asked = |h: &Hit| h.question_similarity.filter(|&s| s >= bar);
    // `None` (not asked) orders below any similarity; the sort is stable.
    hits.sort_by(|a, b| asked(b).partial_cmp(&asked(a)).unwrap_or(std::cmp::Ordering::Equal));
}

fn published(records: Vec<ArticleRecord>) -> Vec<Article> {
    records.iter().filter(|r| r.fields.status == "published").map(to_article).collect()
}

fn to_article(r: &ArticleRecord) -> Article {
    Article {
        id: r.id.clone(),
        title: r.fields.title.clone(),
        tags: r.fields.tags.clone(),
        locale: r.fields.locale.clone(),
        url: r.fields.url.clone(),
        body: r.fields.body.clone(),
    }
}

fn validate(mut f: ArticleFields) -> Result<ArticleFields, KnowledgeError> {
    let invalid = |m: &str| Err(KnowledgeError::Invalid(m.to_owned()));
    f.title = f.title.trim().to_owned();
    f.body = f.body.trim().to_owned();
    if f.title.is_empty() || f.title.chars().count() > 200 {
        return invalid("title must be 1-200 characters");
    }
    if f.body.is_empty() {
        return invalid("body must not be empty");
    }
    if f.body.len() as u64 > MAX_FILE_BYTES || f.body.contains('\0') {
        return invalid("body must be text of at most 512 KiB");
    }
    if let Some(line) = super::chunking::unclosed_comment(&f.body) {
        return Err(KnowledgeError::Invalid(super::articles::unclosed_comment_reason(line)));
    }
    if !matches!(f.status.as_str(), "draft" | "published") {
        return invalid("status must be `draft` or `published`");
    }
    if f.url.as_deref().is_some_and(|u| !(u.starts_with("https://") || u.starts_with("http://"))) {
        return invalid("url must start with http:// or https://");
    }
    if f.locale.is_empty() || f.locale.len() > 35 {
        return invalid("locale must be a BCP 47 tag such as `en`");
    }
    if f.tags.len() > 50 || f.tags.iter().any(|t| t.len() > 100) {
        return invalid("at most 50 tags of at most 100 characters");
    }
    Ok(f)
}

fn changed_fields(old: &ArticleFields, new: &ArticleFields) -> Vec<String> {
    let pairs = [
        ("title", old.title != new.title),
        ("body", old.body != new.body),
        ("tags", old.tags != new.tags),
        ("locale", old.locale != new.locale),
        ("url", old.url != new.url),
        ("status", old.status != new.status),
    ];
    pairs.into_iter().filter(|(_, changed)| *changed).map(|(name, _)| name.to_owned()).collect()
}

fn content_hash(f: &ArticleFields) -> String {
    let canonical = serde_json::to_string(f).unwrap_or_default();
    sha256_hex(canonical.as_bytes())
}

/// `"Gift cards & vouchers"` → `"gift-cards-vouchers"`.
fn slug(title: &str) -> String {
    let mut slug = String::new();
    for c in title.to_lowercase().chars() {
        if c.is_ascii_alphanumeric() {
            slug.push(c);
        } else if !slug.is_empty() && !slug.ends_with('-') {
            slug.push('-');
        }
    }
    slug.trim_end_matches('-').chars().take(100).collect()
}
