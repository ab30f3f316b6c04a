//! Knowledge-base articles and their versions. Writes are optimistic: an
//! update names the version it read, so two editors never silently
//! overwrite each other, and every write adds a version row in the same
//! transaction.

use serde::Serialize;
use sqlx::{Row, any::AnyRow};

use super::{Db, now_ms};

/// The editable part of an article.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ArticleFields {
    pub title: String,
    pub body: String,
    pub tags: Vec<String>,
    pub locale: String,
    pub url: Option<String>,
    /// `draft`, `published` or `deleted`.
    pub status: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct ArticleRecord {
    pub id: String,
    #[serde(flatten)]
    pub fields: ArticleFields,
    pub version: i64,
    #[serde(skip)]
    pub content_hash: String,
    #[serde(skip)]
    pub file_hash: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
}

#[derive(Debug, Clone, Serialize)]
pub struct ArticleVersion {
    pub version: i64,
    pub author: String,
    pub changes: Vec<String>,
    pub title: String,
    pub status: String,
    pub created_at: i64,
}

/// One write: the new state of an article and who made it.
/// The PostgreSQL channel on which a write announces `"<origin> <article id>"`.
pub const KNOWLEDGE_CHANNEL: &str = "assistant_knowledge";

pub struct ArticleWrite<'a> {
    /// The knowledge base instance writing, so it can ignore its own news.
    pub origin: &'a str,
    pub id: &'a str,
    pub fields: &'a ArticleFields,
    pub content_hash: &'a str,
    /// The file's hash when the write comes from an import; `None` keeps
    /// whatever was recorded (an API edit does not forget the file).
    pub file_hash: Option<&'a str>,
    pub author: &'a str,
    pub changes: &'a [String],
}

type AnyQuery<'q> = sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>>;

/// Binds an article's fields in their one column order: title, body, tags,
/// locale, url, status.
fn bind_fields<'q>(query: AnyQuery<'q>, f: &'q ArticleFields, tags: &'q str) -> AnyQuery<'q> {
    query.bind(&f.title).bind(&f.body).bind(tags).bind(&f.locale).bind(&f.url).bind(&f.status)
}

const ARTICLE_SELECT: &str = "SELECT id, title, body, tags, locale, url, status, version, content_hash, file_hash, \
     created_at, updated_at FROM kb_articles";

fn article_from_row(row: &AnyRow) -> Result<ArticleRecord, sqlx::Error> {
    let tags: String = row.try_get("tags")?;
    Ok(ArticleRecord {
        id: row.try_get("id")?,
        fields: ArticleFields {
            title: row.try_get("title")?,
            body: row.try_get("body")?,
            tags: serde_json::from_str(&tags).unwrap_or_default(),
            locale: row.try_get("locale")?,
            url: row.try_get("url")?,
            status: row.try_get("status")?,
        },
        version: row.try_get("version")?,
        content_hash: row.try_get("content_hash")?,
        file_hash: row.try_get("file_hash")?,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
    })
}

impl Db {
    /// One article, whatever its status.
    pub async fn kb_article(&self, id: &str) -> Result<Option<ArticleRecord>, sqlx::Error> {
        let row = sqlx::query(&format!("{ARTICLE_SELECT} WHERE id = $1")).bind(id).fetch_optional(&self.pool).await?;
        row.as_ref().map(article_from_row).transpose()
    }

    /// Every article that is not deleted, by id.
    pub async fn kb_articles(&self) -> Result<Vec<ArticleRecord>, sqlx::Error> {
        let rows = sqlx::query(&format!("{ARTICLE_SELECT} WHERE status <> 'deleted' ORDER BY id"))
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(article_from_row).collect()
    }

    pub async fn kb_versions(&self, id: &str) -> Result<Vec<ArticleVersion>, sqlx::Error> {
        let rows = sqlx::query(
            "SELECT version, author, changes, title, status, created_at FROM kb_article_versions
             WHERE article_id = $1 ORDER BY version DESC",
        )
        .bind(id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
                let changes: String = row.try_get("changes")?;
                Ok(ArticleVersion {
                    version: row.try_get("version")?,
                    author: row.try_get("author")?,
                    changes: serde_json::from_str(&changes).unwrap_or_default(),
                    title: row.try_get("title")?,
                    status: row.try_get("status")?,
                    created_at: row.try_get("created_at")?,
                })
            })
            .collect()
    }

    /// Writes `write` as version `base_version + 1` (or version 1 when
    /// `base_version` is `None` and the article is new). `Ok(None)` means
    /// someone else wrote first: the id exists, or the version moved on.
    pub async fn kb_write(
        &self,
        write: ArticleWrite<'_>,
        base_version: Option<i64>,
    ) -> Result<Option<ArticleRecord>, sqlx::Error> {
        let (now, f) = (now_ms(), write.fields);
        let tags = serde_json::to_string(&f.tags).unwrap_or_else(|_| "[]".into());
        let mut tx = self.pool.begin().await?;
        let version = match base_version {
            None => {
                let insert = sqlx::query(
                    "INSERT INTO kb_articles (id, title, body, tags, locale, url, status, version, content_hash,
                        file_hash, created_at, updated_at)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, 1, $8, $9, $10, $10)
                     ON CONFLICT (id) DO NOTHING",
                );
                let inserted = bind_fields(insert.bind(write.id), f, &tags)
                    .bind(write.content_hash)
                    .bind(write.file_hash)
                    .bind(now)
                    .execute(&mut *tx)
                    .await?;
                if inserted.rows_affected() == 0 {
                    return Ok(None);
                }
                1
            }
            Some(base) => {
                let update = sqlx::query(
                    "UPDATE kb_articles SET title = $1, body = $2, tags = $3, locale = $4, url = $5, status = $6,
                        version = version + 1, content_hash = $7, file_hash = COALESCE($8, file_hash), updated_at = $9
                     WHERE id = $10 AND version = $11",
                );
                let updated = bind_fields(update, f, &tags)
                    .bind(write.content_hash)
                    .bind(write.file_hash)
                    .bind(now)
                    .bind(write.id)
                    .bind(base)
                    .execute(&mut *tx)
                    .await?;
                if updated.rows_affected() == 0 {
                    return Ok(None);
                }
                base + 1
            }
        };
        let history = sqlx::query(
            "INSERT INTO kb_article_versions (article_id, version, author, changes, title, body, tags, locale, url,
                status, created_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
        )
        .bind(write.id)
        .bind(version)
        .bind(write.author)
        .bind(serde_json::to_string(write.changes).unwrap_or_else(|_| "[]".into()));
        bind_fields(history, f, &tags).bind(now).execute(&mut *tx).await?;
        if self.backend() == super::Backend::Postgres {
            // Other replicas re-index the article once this commits.
            let payload = format!("{} {}", write.origin, write.id);
            sqlx::query("SELECT pg_notify($1, $2)").bind(KNOWLEDGE_CHANNEL).bind(payload).execute(&mut *tx).await?;
        }
        tx.commit().await?;
        self.kb_article(write.id).await
    }

    /// Records that a file was imported without changing the article: its
    /// content already matched.
    pub async fn kb_set_file_hash(&self, id: &str, file_hash: &str) -> Result<(), sqlx::Error> {
        sqlx::query("UPDATE kb_articles SET file_hash = $1 WHERE id = $2")
            .bind(file_hash)
            .bind(id)
            .execute(&self.pool)
            .await
            .map(|_| ())
    }
}
