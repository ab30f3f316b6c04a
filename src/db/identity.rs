//! Identity storage: used App Proxy signatures and the identity audit log.

use hmac::{Hmac, Mac};
use serde::Serialize;
use sha2::Sha256;
use sqlx::Row;
use uuid::Uuid;

use super::{Db, now_ms};

pub struct AuditRecord<'a> {
    /// Ties the decision to a connection or request in the logs.
    pub correlation_id: &'a str,
    pub session_id: Option<&'a str>,
    pub method: &'a str,
    pub decision: &'a str,
    /// Fingerprinted before it is stored; never stored or logged in clear.
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
/// order number is being guessed, useless for learning which one. Keyed,
/// because order numbers and emails are few enough that a bare hash is
/// reversed by hashing every candidate.
pub fn fingerprint(key: &[u8], subject: &str) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes any key length");
    mac.update(subject.trim().to_lowercase().as_bytes());
    mac.finalize().into_bytes().iter().take(8).map(|b| format!("{b:02x}")).collect()
}

/// The row in `server_keys` that keys audit fingerprints.
const AUDIT_KEY_NAME: &str = "audit_fingerprint";

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

    /// A key made for this install on first use and kept in the database.
    /// Not an existing secret: `IDENTITY_JWT_SECRET` may be unset (JWKS) and
    /// rotating it must not break the audit's "same subject" links; not the
    /// data dir: every replica must fingerprint alike, and the database is
    /// what they share. Someone with only the audit rows (an operator, an
    /// export) cannot test guesses against them.
    async fn audit_key(&self) -> Result<&[u8], sqlx::Error> {
        let key = self
            .audit_key
            .get_or_try_init(|| async {
                let fresh: String = rand::random::<[u8; 32]>().iter().map(|b| format!("{b:02x}")).collect();
                // Whichever replica inserts first wins; the others read its key.
                sqlx::query(
                    "INSERT INTO server_keys (name, secret, created_at) VALUES ($1, $2, $3) ON CONFLICT (name) DO NOTHING",
                )
                .bind(AUDIT_KEY_NAME)
                .bind(fresh)
                .bind(now_ms())
                .execute(&self.pool)
                .await?;
                let secret: String = sqlx::query("SELECT secret FROM server_keys WHERE name = $1")
                    .bind(AUDIT_KEY_NAME)
                    .fetch_one(&self.pool)
                    .await?
                    .try_get(0)?;
                Ok::<_, sqlx::Error>(secret.into_bytes())
            })
            .await?;
        Ok(key)
    }

    pub async fn record_identity_decision(&self, r: &AuditRecord<'_>) -> Result<(), sqlx::Error> {
        let subject_hash = match r.subject {
            Some(subject) => Some(fingerprint(self.audit_key().await?, subject)),
            None => None,
        };
        sqlx::query(
            "INSERT INTO identity_audit (id, correlation_id, session_id, method, decision, subject_hash, detail, created_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(Uuid::new_v4().to_string())
        .bind(r.correlation_id)
        .bind(r.session_id)
        .bind(r.method)
        .bind(r.decision)
        .bind(subject_hash)
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
