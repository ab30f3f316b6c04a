//! The outbox worker: claims due jobs under a lease, delivers each step to
//! the help desk, and records every step as it completes (renewing the
//! lease), so a retry, a restart or another replica resumes after the last
//! step done and never repeats one. Failures back off exponentially with jitter (longer when the
//! desk asks, `Retry-After`); after `max_attempts` a job is dead-lettered
//! for an operator to retry.

use std::{sync::Arc, time::Duration};

use rand::Rng;
use serde::{Deserialize, Serialize};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use super::{Attempt, Contact, ContactRole, DeskError, HelpDesk, OPEN, OpenJob, REPLY, ReplyJob};
use crate::analytics::{DeliveryLabels, Metrics};
use crate::chat::{ChatService, protocol::HandoffStatus, protocol::ServerFrame};
use crate::db::{Db, Handed, JobLease, JobRow, now_ms};

/// Jobs claimed at once by one worker.
const BATCH: i64 = 8;
/// The longest wait between looks at the queue (other replicas' jobs, expired leases).
const IDLE_POLL: Duration = Duration::from_secs(1);
/// No backoff grows past this.
const MAX_BACKOFF: Duration = Duration::from_secs(600);

pub struct Worker {
    pub db: Db,
    pub desk: Arc<dyn HelpDesk>,
    pub chat: Arc<ChatService>,
    /// Names this worker's leases.
    pub owner: String,
    pub max_attempts: u32,
    pub retry_base: Duration,
    /// A job not finished in this long may be taken by another worker.
    pub lease: Duration,
    pub wake: Arc<Notify>,
    pub metrics: Arc<Metrics>,
}

/// Steps of an `open` job done so far.
#[derive(Debug, Default, Serialize, Deserialize)]
struct Progress {
    contact: Option<Contact>,
    conversation_id: Option<String>,
    noted: bool,
    tagged: bool,
    assigned: bool,
    /// The customer was told delivery is being retried.
    told_retrying: bool,
}

#[derive(Debug, thiserror::Error)]
enum StepError {
    #[error(transparent)]
    Desk(#[from] DeskError),
    #[error("storage failed: {0}")]
    Storage(#[from] sqlx::Error),
    #[error("chat failed: {0}")]
    Chat(#[from] crate::chat::service::ChatError),
    /// Another worker holds the job now (this one's lease ran out).
    #[error("the lease was lost")]
    LeaseLost,
    #[error("the job cannot be delivered: {0}")]
    Invalid(String),
}

impl Worker {
    pub async fn run(self, shutdown: CancellationToken) {
        while !shutdown.is_cancelled() {
            let jobs = match self.db.claim_jobs(&self.owner, self.lease_until(), BATCH).await {
                Ok(jobs) => jobs,
                Err(error) => {
                    tracing::warn!(%error, "cannot claim outbox jobs");
                    vec![]
                }
            };
            let idle = jobs.is_empty();
            for job in jobs {
                // Stopping mid-step is like a crash: the step is idempotent.
                if shutdown.run_until_cancelled(self.deliver(job)).await.is_none() {
                    break;
                }
            }
            if idle {
                let wait = match self.db.next_job_due().await {
                    Ok(Some(at)) => Duration::from_millis((at - now_ms()).max(0) as u64).min(IDLE_POLL),
                    _ => IDLE_POLL,
                };
                tokio::select! {
                    _ = shutdown.cancelled() => {}
                    _ = self.wake.notified() => {}
                    _ = tokio::time::sleep(wait) => {}
                }
            }
        }
        // Not a crash: the next worker may take these at once.
        if let Err(error) = self.db.release_jobs(&self.owner).await {
            tracing::warn!(%error, "cannot release outbox leases at shutdown");
        }
    }

    /// The span names the escalation, which the session's logs and the
    /// Intercom conversation's `Reference:` both carry: one id end to end.
    #[tracing::instrument(skip_all, fields(job = %job.id, escalation = %job.escalation_id, kind = %job.kind, attempt = job.attempts))]
    async fn deliver(&self, job: JobRow) {
        let result = match job.kind.as_str() {
            OPEN => self.open(&job).await,
            REPLY => self.reply(&job).await,
            other => Err(StepError::Invalid(format!("unknown job kind {other}"))),
        };
        let (state, at, error): (&'static str, i64, Option<String>) = match result {
            Ok(()) => ("done", now_ms(), None),
            Err(StepError::LeaseLost) => return,
            Err(StepError::Desk(error)) if error.is_retryable() && job.attempts < i64::from(self.max_attempts) => {
                let wait = self.backoff(job.attempts as u32).max(error.retry_after().unwrap_or_default());
                tracing::warn!(%error, wait_ms = wait.as_millis() as u64, "help desk delivery failed; retrying later");
                if let Err(error) = self.tell_retrying(&job).await {
                    tracing::warn!(%error, "cannot tell the customer delivery is being retried");
                }
                ("pending", now_ms() + wait.as_millis() as i64, Some(error.to_string()))
            }
            Err(error @ (StepError::Storage(_) | StepError::Chat(_))) => {
                // Our side failed, not the desk: the lease runs out and the job is tried again.
                tracing::error!(%error, "storage failed during delivery");
                return;
            }
            Err(error) => {
                tracing::error!(%error, "help desk delivery dead-lettered");
                if let Err(error) = self.tell_retrying(&job).await {
                    tracing::warn!(%error, "cannot tell the customer delivery is being retried");
                }
                ("dead", now_ms(), Some(error.to_string()))
            }
        };
        let kind = if job.kind == OPEN { OPEN } else { REPLY };
        let outcome = if state == "pending" { "retry" } else { state };
        self.metrics.handoff_deliveries.get_or_create(&DeliveryLabels { kind, outcome }).inc();
        if let Err(error) = self.db.settle_job(&job.id, &self.owner, state, at, error.as_deref()).await {
            tracing::error!(%error, state, "cannot record the outcome of a delivery");
        }
    }

    /// `base · 2^(attempt-1)`, capped, with jitter over its upper half so
    /// many jobs failing together do not come back together.
    fn backoff(&self, attempt: u32) -> Duration {
        let full = self.retry_base.saturating_mul(1 << attempt.saturating_sub(1).min(20)).min(MAX_BACKOFF);
        let half = full / 2;
        half + Duration::from_millis(rand::rng().random_range(0..=half.as_millis() as u64))
    }

    fn lease_until(&self) -> i64 {
        now_ms() + self.lease.as_millis() as i64
    }

    fn held<'a>(&'a self, job: &'a JobRow) -> JobLease<'a> {
        JobLease { job_id: &job.id, owner: &self.owner, until: self.lease_until() }
    }

    fn attempt<'a>(&self, job: &JobRow, key: &'a str) -> Attempt<'a> {
        Attempt { key, first_tried_at: job.first_tried_at / 1000, retry: job.attempts > 1 }
    }

    async fn handed(&self, job: &JobRow) -> Result<Handed, StepError> {
        self.db.handed(&job.escalation_id).await?.ok_or_else(|| StepError::Invalid("no such escalation".into()))
    }

    async fn save(&self, job: &JobRow, progress: &Progress) -> Result<(), StepError> {
        let json = serde_json::to_string(progress).expect("progress serializes");
        if self.db.save_job_progress(&self.held(job), &json).await? { Ok(()) } else { Err(StepError::LeaseLost) }
    }

    async fn open(&self, job: &JobRow) -> Result<(), StepError> {
        let open: OpenJob = serde_json::from_str(&job.payload).map_err(|e| StepError::Invalid(e.to_string()))?;
        let mut progress: Progress = serde_json::from_str(&job.progress).unwrap_or_default();
        let handed = self.handed(job).await?;
        let attempt = self.attempt(job, &job.escalation_id);
        let contact = match progress.contact.clone() {
            Some(contact) => contact,
            None => {
                let contact = self.contact(&open, &handed).await?;
                progress.contact = Some(contact.clone());
                self.save(job, &progress).await?;
                contact
            }
        };
        let conversation_id = match progress.conversation_id.clone() {
            Some(id) => id,
            None => {
                let id = self.desk.open_conversation(&contact, &open.package.customer_words, attempt).await?;
                let role = contact.role.as_str();
                self.db.set_escalation_desk(&handed.escalation_id, &contact.id, role, Some(&id)).await?;
                progress.conversation_id = Some(id.clone());
                self.save(job, &progress).await?;
                id
            }
        };
        if !progress.noted {
            self.desk.add_note(&conversation_id, &open.package.note_html(), attempt).await?;
            progress.noted = true;
            // The step and the frame that announces it commit together.
            let mut w = self.db.writer(&handed.session_id, &handed.conversation_id).await?;
            let json = serde_json::to_string(&progress).expect("progress serializes");
            if !w.save_job_progress(&self.held(job), &json).await? {
                return Err(StepError::LeaseLost);
            }
            w.set_escalation_status(&handed.escalation_id, HandoffStatus::Created.as_str()).await?;
            let created = ServerFrame::handoff(HandoffStatus::Created, &handed.reason, None, Some(&conversation_id));
            self.chat.commit_frames(w, &handed.session_id, vec![created]).await?;
        }
        if !progress.tagged {
            self.desk.tag(&conversation_id, &open.package.tags).await?;
            progress.tagged = true;
            self.save(job, &progress).await?;
        }
        if !progress.assigned {
            if let Some(team) = &open.team {
                self.desk.assign_team(&conversation_id, team).await?;
            }
            progress.assigned = true;
            self.save(job, &progress).await?;
        }
        Ok(())
    }

    /// The customer's one contact: the stored mapping, else the desk's.
    async fn contact(&self, open: &OpenJob, handed: &Handed) -> Result<Contact, StepError> {
        let customer = &open.package.customer;
        let key = match (&customer.external_id, &customer.email) {
            (Some(id), _) => format!("customer:{id}"),
            (None, Some(email)) => format!("email:{}", email.to_lowercase()),
            // An anonymous guest is one lead per session.
            (None, None) => format!("session:{}", handed.session_id),
        };
        if let Some((id, role)) = self.db.desk_contact(&key).await? {
            let role = if role == "lead" { ContactRole::Lead } else { ContactRole::User };
            return Ok(Contact { id, role });
        }
        let contact = self.desk.find_or_create_contact(customer).await?;
        self.db.save_desk_contact(&key, &contact.id, contact.role.as_str()).await?;
        Ok(contact)
    }

    async fn reply(&self, job: &JobRow) -> Result<(), StepError> {
        let reply: ReplyJob = serde_json::from_str(&job.payload).map_err(|e| StepError::Invalid(e.to_string()))?;
        let handed = self.handed(job).await?;
        let (Some(conversation_id), Some(contact_id)) = (&handed.reference, &handed.contact_id) else {
            return Err(StepError::Invalid("the escalation has no desk conversation".into()));
        };
        let role = if handed.contact_role.as_deref() == Some("lead") { ContactRole::Lead } else { ContactRole::User };
        let contact = Contact { id: contact_id.clone(), role };
        let attempt = self.attempt(job, &reply.message_id);
        self.desk.reply_as_contact(conversation_id, &contact, &reply.text, attempt).await?;
        Ok(())
    }

    /// Tells the customer, once per escalation job, that a person will follow up.
    async fn tell_retrying(&self, job: &JobRow) -> Result<(), StepError> {
        if job.kind != OPEN {
            return Ok(());
        }
        let mut progress: Progress = serde_json::from_str(&job.progress).unwrap_or_default();
        // The progress in `job` is as claimed; steps done since are in the database.
        if let Some(latest) = self.db.job_progress(&job.id).await? {
            progress = serde_json::from_str(&latest).unwrap_or_default();
        }
        if progress.told_retrying || progress.noted {
            return Ok(());
        }
        progress.told_retrying = true;
        let handed = self.handed(job).await?;
        let mut w = self.db.writer(&handed.session_id, &handed.conversation_id).await?;
        let json = serde_json::to_string(&progress).expect("progress serializes");
        if !w.save_job_progress(&self.held(job), &json).await? {
            return Err(StepError::LeaseLost);
        }
        let frame = ServerFrame::handoff(HandoffStatus::FailedRetrying, &handed.reason, None, None);
        self.chat.commit_frames(w, &handed.session_id, vec![frame]).await?;
        Ok(())
    }
}
