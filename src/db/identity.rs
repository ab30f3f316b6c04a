//! Identity storage: used App Proxy signatures and the identity audit log.

use serde::Serialize;
use sha2::{Digest, Sha256};
use sqlx::Row;
use uuid::Uuid;

use super::{Db, now_ms};

pub struct AuditRecord<'a> {
    /// Ties the decision to a connection or request in the logs.
    pub correlation_id: &'a str,
    pub session_id: Option<&'a str>,
    pub method: &'a str,
    pub decision: &'a str,
    /// Hashed before it is stored; never stored or logged in clear.
    pub subject: Option<&'a str>,
    pub detail: Option<&'a str>,
}

#[derive(Debug, Serialize)]
pub struct AuditRow {
    pub correlation_id: String,
    pub session_id: Option<String>,
    pub method: String,
    pub decision: String,
    pub subject_hash: Option<String>,
    pub detail: Option<String>,
    pub created_at: i64,
}

/// A short, stable fingerprint of an identifier: enough to see that the same
/// order number is being guessed, useless for learning which one.
pub fn fingerprint(subject: &str) -> String {
    let digest = Sha256::digest(subject.trim().to_lowercase().as_bytes());
    digest.iter().take(8).map(|b| format!("{b:02x}")).collect()
}

impl Db {
    /// Records that `signature` was used; `false` when it already was (a replay).
    pub async fn claim_signature(&self, signature: &str, expires_at_ms: i64) -> Result<bool, sqlx::Error> {
        sqlx::query("DELETE FROM used_signatures WHERE expires_at < $1").bind(now_ms()).execute(&self.pool).await?;
        let done = sqlx::query(
            "INSERT INTO used_signatures (signature, expires_at) VALUES ($1, $2) ON CONFLICT (signature) DO NOTHING",
        )
        .bind(signature)
        .bind(expires_at_ms)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    pub async fn record_identity_decision(&self, r: &AuditRecord<'_>) -> Result<(), sqlx::Error> {
        sqlx::query(
            "INSERT INTO identity_audit (id, correlation_id, session_id, method, decision, subject_hash, detail, created_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(Uuid::new_v4().to_string())
        .bind(r.correlation_id)
        .bind(r.session_id)
        .bind(r.method)
        .bind(r.decision)
        .bind(r.subject.map(fingerprint))
        .bind(r.detail)
        .bind(now_ms())
        .execute(&self.pool)
        .await
        .map(|_| ())
    }

    pub async fn identity_audit(&self, limit: i64) -> Result<Vec<AuditRow>, sqlx::Error> {
        sqlx::query(
            "SELECT correlation_id, session_id, method, decision, subject_hash, detail, created_at
             FROM identity_audit ORDER BY created_at DESC LIMIT $1",
        )
        .bind(limit)
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(|r| {
            Ok(AuditRow {
                correlation_id: r.try_get("correlation_id")?,
                session_id: r.try_get("session_id")?,
                method: r.try_get("method")?,
                decision: r.try_get("decision")?,
                subject_hash: r.try_get("subject_hash")?,
                detail: r.try_get("detail")?,
                created_at: r.try_get("created_at")?,
            })
        })
        .collect()
    }
}
