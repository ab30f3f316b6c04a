//! Storage: one set of queries for SQLite (the embedded default) and
//! PostgreSQL (several replicas), through sqlx's `Any` driver. Queries use
//! `$n` placeholders and portable types only (TEXT, BIGINT, DOUBLE), which
//! is what lets one query text serve both databases.

mod analytics;
mod articles;
mod conversations;
mod handoff;
mod identity;
mod webhooks;

pub use analytics::*;
pub use articles::*;
pub use conversations::*;
pub use handoff::*;
pub use identity::*;
pub use webhooks::*;

use std::{borrow::Cow, path::Path, str::FromStr, time::Duration};

use futures_util::future::BoxFuture;
use sqlx::{
    AnyPool,
    any::{AnyConnectOptions, AnyPoolOptions},
    error::BoxDynError,
    migrate::{Migration, MigrationSource, MigrationType, Migrator},
};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// A cheap handle to the connection pool.
#[derive(Clone)]
pub struct Db {
    pool: AnyPool,
    backend: Backend,
    /// The audit fingerprint key, read from storage once (see `identity::fingerprint`).
    audit_key: std::sync::Arc<tokio::sync::OnceCell<Vec<u8>>>,
}

/// Migrations are compiled into the binary, so the service migrates itself
/// wherever it runs, whatever its working directory.
const SQLITE_MIGRATIONS: &[(i64, &str, &str)] = &[
    (1, "conversations", include_str!("../../migrations/sqlite/0001_conversations.sql")),
    (2, "identity", include_str!("../../migrations/sqlite/0002_identity.sql")),
    (3, "shopify_webhooks", include_str!("../../migrations/sqlite/0003_shopify_webhooks.sql")),
    (4, "knowledge", include_str!("../../migrations/sqlite/0004_knowledge.sql")),
    (5, "handoff", include_str!("../../migrations/sqlite/0005_handoff.sql")),
    (6, "frame_scope", include_str!("../../migrations/sqlite/0006_frame_scope.sql")),
    (7, "server_keys", include_str!("../../migrations/sqlite/0007_server_keys.sql")),
];
const POSTGRES_MIGRATIONS: &[(i64, &str, &str)] = &[
    (1, "conversations", include_str!("../../migrations/postgres/0001_conversations.sql")),
    (2, "identity", include_str!("../../migrations/postgres/0002_identity.sql")),
    (3, "shopify_webhooks", include_str!("../../migrations/postgres/0003_shopify_webhooks.sql")),
    (4, "knowledge", include_str!("../../migrations/postgres/0004_knowledge.sql")),
    (5, "handoff", include_str!("../../migrations/postgres/0005_handoff.sql")),
    (6, "frame_scope", include_str!("../../migrations/postgres/0006_frame_scope.sql")),
    (7, "server_keys", include_str!("../../migrations/postgres/0007_server_keys.sql")),
];

#[derive(Debug)]
struct Embedded(&'static [(i64, &'static str, &'static str)]);

impl<'s> MigrationSource<'s> for Embedded {
    fn resolve(self) -> BoxFuture<'s, Result<Vec<Migration>, BoxDynError>> {
        Box::pin(async move {
            Ok(self
                .0
                .iter()
                .map(|(version, name, sql)| {
                    Migration::new(*version, Cow::Borrowed(name), MigrationType::Simple, Cow::Borrowed(sql), false)
                })
                .collect())
        })
    }
}

impl Db {
    /// Connects to `url` (`sqlite://…` or `postgres://…`), creating the
    /// SQLite file and its directory when missing.
    pub async fn connect(url: &str) -> Result<Self, sqlx::Error> {
        sqlx::any::install_default_drivers();
        let backend = if url.starts_with("sqlite:") { Backend::Sqlite } else { Backend::Postgres };
        let url = match backend {
            Backend::Sqlite => {
                let path = url.trim_start_matches("sqlite://").trim_start_matches("sqlite:");
                let path = path.split('?').next().unwrap_or(path);
                if let Some(dir) = Path::new(path).parent().filter(|d| !d.as_os_str().is_empty()) {
                    std::fs::create_dir_all(dir)?;
                }
                if url.contains('?') { url.to_owned() } else { format!("{url}?mode=rwc") }
            }
            Backend::Postgres => url.to_owned(),
        };
        let options = AnyConnectOptions::from_str(&url)?;
        let pool = AnyPoolOptions::new()
            .max_connections(match backend {
                // SQLite writes one at a time; a few readers are plenty.
                Backend::Sqlite => 4,
                Backend::Postgres => 16,
            })
            .acquire_timeout(Duration::from_secs(5))
            .after_connect(move |conn, _| {
                Box::pin(async move {
                    if backend == Backend::Sqlite {
                        // WAL lets readers proceed during a write; the busy
                        // timeout queues writers instead of failing them.
                        sqlx::query("PRAGMA journal_mode = WAL").execute(&mut *conn).await?;
                        sqlx::query("PRAGMA busy_timeout = 5000").execute(&mut *conn).await?;
                        sqlx::query("PRAGMA foreign_keys = ON").execute(&mut *conn).await?;
                    }
                    Ok(())
                })
            })
            .connect_with(options)
            .await?;
        Ok(Self { pool, backend, audit_key: Default::default() })
    }

    pub async fn migrate(&self) -> Result<(), sqlx::migrate::MigrateError> {
        let source = match self.backend {
            Backend::Sqlite => Embedded(SQLITE_MIGRATIONS),
            Backend::Postgres => Embedded(POSTGRES_MIGRATIONS),
        };
        Migrator::new(source).await?.run(&self.pool).await
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    pub async fn ping(&self) -> Result<(), sqlx::Error> {
        sqlx::query("SELECT 1").execute(&self.pool).await.map(|_| ())
    }

    pub async fn close(&self) {
        self.pool.close().await;
    }
}

/// Milliseconds since the Unix epoch: the one time format in storage.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}
