//! Escalation end to end, in one place: recording an escalation with its
//! package (in the turn's transaction), the durable outbox that delivers it,
//! the help desk behind [`HelpDesk`] (Intercom today, [`intercom`]), and the
//! relay of the desk's replies back to the customer.
//!
//! - [`Escalations`]: the one place an escalation is recorded.
//! - [`package`]: what the person taking over is told; the allowlist.
//! - [`outbox`]: the worker that delivers jobs with retries and leases.
//! - [`relay`]: desk events (replies, closes, assignments) to the widget.

pub mod desk;
pub mod intercom;
pub mod outbox;
pub mod package;
pub mod relay;

pub use desk::{Attempt, Contact, ContactRole, Customer, DeskError, DeskEvent, HelpDesk};

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use tokio::sync::Notify;

use self::package::{Escalating, Package};
use crate::analytics::{Metrics, ReasonLabels};
use crate::assistant::EscalationReason;
use crate::commerce::Store;
use crate::config::TeamRoutes;
use crate::db::{Db, EscalationRow, NewEscalation, TurnWriter};
use crate::identity::Identity;

/// Job kinds in the outbox.
pub const OPEN: &str = "open";
pub const REPLY: &str = "reply";

/// What an `open` job delivers: the package, and the team it goes to.
#[derive(Debug, Serialize, Deserialize)]
pub struct OpenJob {
    pub package: Package,
    pub team: Option<String>,
}

/// What a `reply` job delivers: a later customer message.
#[derive(Debug, Serialize, Deserialize)]
pub struct ReplyJob {
    pub message_id: String,
    pub text: String,
}

/// Records escalations and queues their delivery.
pub struct Escalations {
    db: Db,
    store: Arc<dyn Store>,
    metrics: Arc<Metrics>,
    /// `None`: no help desk is configured; escalations wait in the built-in queue.
    routes: Option<TeamRoutes>,
    /// Tells this replica's worker a job was committed (others poll).
    wake: Arc<Notify>,
}

/// What a turn knows when it escalates, besides the package's sources.
pub struct Escalation<'a> {
    pub identity: &'a Identity,
    pub reason: EscalationReason,
    pub intent: Option<&'a str>,
    pub summary: &'a str,
    /// The customer's note with a "talk to a person" request.
    pub note: Option<&'a str>,
    pub customer_words: &'a str,
    pub order_numbers: &'a [String],
}

impl Escalations {
    pub fn new(db: Db, store: Arc<dyn Store>, metrics: Arc<Metrics>, routes: Option<TeamRoutes>) -> Self {
        Self { db, store, metrics, routes, wake: Arc::default() }
    }

    /// Whether escalations go on to a help desk.
    pub fn delivers(&self) -> bool {
        self.routes.is_some()
    }

    pub fn wake_handle(&self) -> Arc<Notify> {
        self.wake.clone()
    }

    /// Call after the turn's commit: the worker picks the job up now.
    pub fn wake(&self) {
        if self.delivers() {
            self.wake.notify_one();
        }
    }

    /// Builds the package from the transcript and the store. Done before the
    /// turn's transaction opens, so no store call holds the database.
    pub async fn prepare(&self, conversation_id: &str, e: &Escalation<'_>) -> Result<Package, sqlx::Error> {
        let transcript = match self.db.conversation(conversation_id).await? {
            Some(detail) => detail.messages,
            None => vec![],
        };
        let escalating = Escalating {
            identity: e.identity,
            reason: e.reason.as_str(),
            intent: e.intent,
            summary: e.summary,
            customer_words: e.customer_words,
            order_numbers: e.order_numbers,
            transcript: &transcript,
        };
        Ok(package::build(self.store.as_ref(), escalating).await)
    }

    /// Records the escalation in the turn's transaction and, with a help
    /// desk, its delivery job: both commit with the turn or not at all.
    pub async fn record(
        &self,
        w: &mut TurnWriter,
        e: &Escalation<'_>,
        package: Package,
    ) -> Result<String, sqlx::Error> {
        let reason = e.reason.as_str();
        let escalation = NewEscalation { reason, note: e.note, summary: e.summary };
        let id = w.insert_escalation(&escalation).await?;
        if let Some(routes) = &self.routes {
            let job = OpenJob { team: routes.team_for(reason).map(str::to_owned), package };
            w.insert_job(&id, OPEN, &serde_json::to_string(&job).expect("a package serializes")).await?;
        }
        self.metrics.escalations.get_or_create(&ReasonLabels { reason }).inc();
        Ok(id)
    }

    /// The conversation's open escalation, when it is on its way to (or at)
    /// the help desk. One recorded while no desk was configured stays in the
    /// built-in queue, and the assistant keeps answering there.
    pub async fn at_desk(&self, conversation_id: &str) -> Result<Option<EscalationRow>, sqlx::Error> {
        if !self.delivers() {
            return Ok(None);
        }
        match self.db.open_escalation(conversation_id).await? {
            Some(escalation) if self.db.has_job(&escalation.id, OPEN).await? => Ok(Some(escalation)),
            _ => Ok(None),
        }
    }

    /// After the handoff, the customer talks to the person: their message is
    /// queued for the desk and the assistant stays quiet. `false`: the
    /// conversation is not at a desk, and the assistant answers.
    pub async fn pass_to_desk(
        &self,
        session_id: &str,
        conversation_id: &str,
        message_id: &str,
        text: &str,
    ) -> Result<bool, sqlx::Error> {
        let Some(escalation) = self.at_desk(conversation_id).await? else {
            return Ok(false);
        };
        let job = ReplyJob { message_id: message_id.to_owned(), text: package::redact_payment(text) };
        let mut w = self.db.writer(session_id, conversation_id).await?;
        w.insert_job(&escalation.id, REPLY, &serde_json::to_string(&job).expect("a reply serializes")).await?;
        w.commit().await?;
        self.wake();
        Ok(true)
    }
}
