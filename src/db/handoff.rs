//! The handoff outbox, the help desk's contacts and its webhooks.
//!
//! Claiming is one statement on both databases: an `UPDATE` of the due rows
//! a subquery picks. On PostgreSQL the subquery adds `FOR UPDATE SKIP
//! LOCKED`, so replicas claiming at once take different jobs; SQLite has one
//! writer at a time, which serialises claims by itself.

use serde::Serialize;
use sqlx::{Row, any::AnyRow};
use uuid::Uuid;

use super::{Backend, Db, TurnWriter, now_ms};

/// A claimed job, as its worker needs it.
#[derive(Debug, Clone)]
pub struct JobRow {
    pub id: String,
    pub escalation_id: String,
    pub kind: String,
    pub payload: String,
    pub progress: String,
    /// Including this one.
    pub attempts: i64,
    pub first_tried_at: i64,
}

/// One line of the operator's view of the outbox.
#[derive(Debug, Clone, Serialize)]
pub struct JobSummary {
    pub id: String,
    pub escalation_id: String,
    pub kind: String,
    pub state: String,
    pub attempts: i64,
    pub last_error: Option<String>,
    pub available_at: i64,
    pub created_at: i64,
    pub updated_at: i64,
}

/// An escalation as the outbox and the webhooks see it.
#[derive(Debug, Clone)]
pub struct Handed {
    pub escalation_id: String,
    pub session_id: String,
    pub conversation_id: String,
    pub reason: String,
    pub status: String,
    pub reference: Option<String>,
    pub contact_id: Option<String>,
    pub contact_role: Option<String>,
}

const HANDED_SELECT: &str = "SELECT e.id, c.session_id, e.conversation_id, e.reason, e.status, e.reference,
        e.contact_id, e.contact_role
     FROM escalations e JOIN conversations c ON c.id = e.conversation_id";

impl TurnWriter {
    /// Queues a delivery step in the turn's transaction.
    pub async fn insert_job(&mut self, escalation_id: &str, kind: &str, payload: &str) -> Result<(), sqlx::Error> {
        let now = now_ms();
        sqlx::query(
            "INSERT INTO handoff_jobs (id, escalation_id, kind, payload, state, available_at, created_at, updated_at)
             VALUES ($1, $2, $3, $4, 'pending', $5, $5, $5)",
        )
        .bind(Uuid::new_v4().to_string())
        .bind(escalation_id)
        .bind(kind)
        .bind(payload)
        .bind(now)
        .execute(self.conn())
        .await
        .map(|_| ())
    }

    /// Records a job's steps with the frames that announce them, while the lease is `owner`'s.
    pub async fn save_job_progress(&mut self, job: &JobLease<'_>, progress: &str) -> Result<bool, sqlx::Error> {
        save_progress(self.conn(), job, progress).await
    }

    pub async fn set_escalation_status(&mut self, escalation_id: &str, status: &str) -> Result<(), sqlx::Error> {
        sqlx::query("UPDATE escalations SET status = $1, updated_at = $2 WHERE id = $3")
            .bind(status)
            .bind(now_ms())
            .bind(escalation_id)
            .execute(self.conn())
            .await
            .map(|_| ())
    }

    /// The agent closed it: the assistant answers again.
    pub async fn close_escalation(&mut self, escalation_id: &str) -> Result<(), sqlx::Error> {
        self.set_escalation_status(escalation_id, "closed").await?;
        let conversation_id = self.conversation_id().to_owned();
        sqlx::query("UPDATE conversations SET status = 'open' WHERE id = $1")
            .bind(conversation_id)
            .execute(self.conn())
            .await
            .map(|_| ())
    }
}

/// A job as its worker holds it: saving progress renews the lease to `until`,
/// so a long delivery is not taken over while it is still making progress.
pub struct JobLease<'a> {
    pub job_id: &'a str,
    pub owner: &'a str,
    pub until: i64,
}

/// `false`: the lease is no longer `owner`'s (it ran out and another worker took the job).
async fn save_progress(
    conn: &mut sqlx::AnyConnection,
    job: &JobLease<'_>,
    progress: &str,
) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "UPDATE handoff_jobs SET progress = $1, updated_at = $2, lease_until = $3
         WHERE id = $4 AND state = 'leased' AND lease_owner = $5",
    )
    .bind(progress)
    .bind(now_ms())
    .bind(job.until)
    .bind(job.job_id)
    .bind(job.owner)
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

impl Db {
    /// Leases up to `limit` due jobs to `owner` until `lease_until`: pending
    /// ones whose time has come, and leased ones whose lease ran out (their
    /// worker stopped). Each job waits for the earlier jobs of its escalation.
    pub async fn claim_jobs(&self, owner: &str, lease_until: i64, limit: i64) -> Result<Vec<JobRow>, sqlx::Error> {
        let lock = if self.backend == Backend::Postgres { "FOR UPDATE OF j SKIP LOCKED" } else { "" };
        let sql = format!(
            "UPDATE handoff_jobs SET state = 'leased', lease_owner = $1, lease_until = $2, attempts = attempts + 1,
                    first_tried_at = COALESCE(first_tried_at, $3), updated_at = $3
             WHERE id IN (
                SELECT j.id FROM handoff_jobs j
                WHERE ((j.state = 'pending' AND j.available_at <= $3) OR (j.state = 'leased' AND j.lease_until <= $3))
                  AND NOT EXISTS (SELECT 1 FROM handoff_jobs e
                                  WHERE e.escalation_id = j.escalation_id AND e.n < j.n AND e.state <> 'done')
                ORDER BY j.n LIMIT $4 {lock})
             RETURNING id, escalation_id, kind, payload, progress, attempts, first_tried_at"
        );
        let rows =
            sqlx::query(&sql).bind(owner).bind(lease_until).bind(now_ms()).bind(limit).fetch_all(&self.pool).await?;
        rows.iter().map(job_row).collect()
    }

    /// When the next pending job falls due, if any.
    pub async fn next_job_due(&self) -> Result<Option<i64>, sqlx::Error> {
        sqlx::query(
            "SELECT MIN(CASE WHEN state = 'pending' THEN available_at ELSE lease_until END) FROM handoff_jobs
             WHERE state IN ('pending', 'leased')",
        )
        .fetch_one(&self.pool)
        .await?
        .try_get(0)
    }

    /// What the customer said last, to open a desk conversation in their words.
    pub async fn last_customer_message(&self, conversation_id: &str) -> Result<Option<String>, sqlx::Error> {
        let row = sqlx::query(
            "SELECT text FROM messages WHERE conversation_id = $1 AND role = 'customer' ORDER BY n DESC LIMIT 1",
        )
        .bind(conversation_id)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| r.try_get("text")).transpose()
    }

    pub async fn has_job(&self, escalation_id: &str, kind: &str) -> Result<bool, sqlx::Error> {
        let row = sqlx::query("SELECT 1 FROM handoff_jobs WHERE escalation_id = $1 AND kind = $2 LIMIT 1")
            .bind(escalation_id)
            .bind(kind)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.is_some())
    }

    pub async fn job_progress(&self, job_id: &str) -> Result<Option<String>, sqlx::Error> {
        let row = sqlx::query("SELECT progress FROM handoff_jobs WHERE id = $1")
            .bind(job_id)
            .fetch_optional(&self.pool)
            .await?;
        row.map(|r| r.try_get("progress")).transpose()
    }

    pub async fn save_job_progress(&self, job: &JobLease<'_>, progress: &str) -> Result<bool, sqlx::Error> {
        let mut conn = self.pool.acquire().await?;
        save_progress(&mut conn, job, progress).await
    }

    /// `state` is `done`, `pending` (again at `available_at`) or `dead`.
    pub async fn settle_job(
        &self,
        job_id: &str,
        owner: &str,
        state: &str,
        available_at: i64,
        error: Option<&str>,
    ) -> Result<(), sqlx::Error> {
        sqlx::query(
            "UPDATE handoff_jobs SET state = $1, available_at = $2, last_error = $3, lease_owner = NULL,
                    lease_until = NULL, updated_at = $4
             WHERE id = $5 AND lease_owner = $6",
        )
        .bind(state)
        .bind(available_at)
        .bind(error)
        .bind(now_ms())
        .bind(job_id)
        .bind(owner)
        .execute(&self.pool)
        .await
        .map(|_| ())
    }

    /// At a graceful stop: this worker's jobs may be taken at once, not after their lease.
    pub async fn release_jobs(&self, owner: &str) -> Result<(), sqlx::Error> {
        sqlx::query(
            "UPDATE handoff_jobs SET state = 'pending', lease_owner = NULL, lease_until = NULL
             WHERE state = 'leased' AND lease_owner = $1",
        )
        .bind(owner)
        .execute(&self.pool)
        .await
        .map(|_| ())
    }

    pub async fn list_jobs(&self, state: Option<&str>, limit: i64) -> Result<Vec<JobSummary>, sqlx::Error> {
        let filter = if state.is_some() { "WHERE state = $2" } else { "" };
        let sql = format!(
            "SELECT id, escalation_id, kind, state, attempts, last_error, available_at, created_at, updated_at
             FROM handoff_jobs {filter} ORDER BY n DESC LIMIT $1"
        );
        let mut query = sqlx::query(&sql).bind(limit);
        if let Some(state) = state {
            query = query.bind(state);
        }
        query
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(|r| {
                Ok(JobSummary {
                    id: r.try_get("id")?,
                    escalation_id: r.try_get("escalation_id")?,
                    kind: r.try_get("kind")?,
                    state: r.try_get("state")?,
                    attempts: r.try_get("attempts")?,
                    last_error: r.try_get("last_error")?,
                    available_at: r.try_get("available_at")?,
                    created_at: r.try_get("created_at")?,
                    updated_at: r.try_get("updated_at")?,
                })
            })
            .collect()
    }

    /// A dead job goes back in the queue with fresh attempts; `false` when it is not dead.
    pub async fn retry_dead_job(&self, job_id: &str) -> Result<bool, sqlx::Error> {
        let now = now_ms();
        let done = sqlx::query(
            "UPDATE handoff_jobs SET state = 'pending', attempts = 0, available_at = $1, updated_at = $1
             WHERE id = $2 AND state = 'dead'",
        )
        .bind(now)
        .bind(job_id)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    pub async fn handed(&self, escalation_id: &str) -> Result<Option<Handed>, sqlx::Error> {
        let sql = format!("{HANDED_SELECT} WHERE e.id = $1");
        sqlx::query(&sql).bind(escalation_id).fetch_optional(&self.pool).await?.as_ref().map(handed_row).transpose()
    }

    /// The escalation a desk conversation belongs to.
    pub async fn handed_by_reference(&self, reference: &str) -> Result<Option<Handed>, sqlx::Error> {
        let sql = format!("{HANDED_SELECT} WHERE e.reference = $1 ORDER BY e.created_at DESC LIMIT 1");
        sqlx::query(&sql).bind(reference).fetch_optional(&self.pool).await?.as_ref().map(handed_row).transpose()
    }

    /// The desk's contact and conversation for an escalation, once made.
    pub async fn set_escalation_desk(
        &self,
        escalation_id: &str,
        contact_id: &str,
        contact_role: &str,
        reference: Option<&str>,
    ) -> Result<(), sqlx::Error> {
        sqlx::query(
            "UPDATE escalations SET contact_id = $1, contact_role = $2, reference = COALESCE($3, reference), updated_at = $4
             WHERE id = $5",
        )
        .bind(contact_id)
        .bind(contact_role)
        .bind(reference)
        .bind(now_ms())
        .bind(escalation_id)
        .execute(&self.pool)
        .await
        .map(|_| ())
    }

    pub async fn desk_contact(&self, customer_key: &str) -> Result<Option<(String, String)>, sqlx::Error> {
        let row = sqlx::query("SELECT contact_id, role FROM desk_contacts WHERE customer_key = $1")
            .bind(customer_key)
            .fetch_optional(&self.pool)
            .await?;
        row.map(|r| Ok((r.try_get("contact_id")?, r.try_get("role")?))).transpose()
    }

    pub async fn save_desk_contact(&self, customer_key: &str, contact_id: &str, role: &str) -> Result<(), sqlx::Error> {
        sqlx::query(
            "INSERT INTO desk_contacts (customer_key, contact_id, role, created_at) VALUES ($1, $2, $3, $4)
             ON CONFLICT (customer_key) DO NOTHING",
        )
        .bind(customer_key)
        .bind(contact_id)
        .bind(role)
        .bind(now_ms())
        .execute(&self.pool)
        .await
        .map(|_| ())
    }

    /// Stores a notification; `false` when its id was stored before (a redelivery).
    pub async fn insert_intercom_webhook(&self, id: &str, topic: &str, body: &str) -> Result<bool, sqlx::Error> {
        let done = sqlx::query(
            "INSERT INTO intercom_webhooks (notification_id, topic, body, status, received_at)
             VALUES ($1, $2, $3, 'received', $4) ON CONFLICT (notification_id) DO NOTHING",
        )
        .bind(id)
        .bind(topic)
        .bind(body)
        .bind(now_ms())
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    pub async fn finish_intercom_webhook(
        &self,
        id: &str,
        status: &str,
        detail: Option<&str>,
    ) -> Result<(), sqlx::Error> {
        sqlx::query(
            "UPDATE intercom_webhooks SET status = $1, detail = $2, processed_at = $3 WHERE notification_id = $4",
        )
        .bind(status)
        .bind(detail)
        .bind(now_ms())
        .bind(id)
        .execute(&self.pool)
        .await
        .map(|_| ())
    }

    /// Notifications stored but not yet relayed, oldest first, with their bodies.
    pub async fn unprocessed_intercom_webhooks(&self) -> Result<Vec<(String, String)>, sqlx::Error> {
        let rows = sqlx::query(
            "SELECT notification_id, body FROM intercom_webhooks WHERE status = 'received' ORDER BY received_at",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(|r| Ok((r.try_get("notification_id")?, r.try_get("body")?))).collect()
    }
}

fn job_row(r: &AnyRow) -> Result<JobRow, sqlx::Error> {
    Ok(JobRow {
        id: r.try_get("id")?,
        escalation_id: r.try_get("escalation_id")?,
        kind: r.try_get("kind")?,
        payload: r.try_get("payload")?,
        progress: r.try_get("progress")?,
        attempts: r.try_get("attempts")?,
        first_tried_at: r.try_get::<Option<i64>, _>("first_tried_at")?.unwrap_or_else(now_ms),
    })
}

fn handed_row(r: &AnyRow) -> Result<Handed, sqlx::Error> {
    Ok(Handed {
        escalation_id: r.try_get("id")?,
        session_id: r.try_get("session_id")?,
        conversation_id: r.try_get("conversation_id")?,
        reason: r.try_get("reason")?,
        status: r.try_get("status")?,
        reference: r.try_get("reference")?,
        contact_id: r.try_get("contact_id")?,
        contact_role: r.try_get("contact_role")?,
    })
}
