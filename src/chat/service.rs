//! Sessions and turns: what happens between a parsed client frame and the
//! frames every socket of the session receives. Socket-agnostic, so the
//! gateway stays a thin loop and tests can drive this directly.

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use super::{
    hub::{Hub, Outbound},
    protocol::{ErrorCode, FrameError, HandoffStatus, MessageFrame, Page, Rating, ServerFrame},
    replay::{scope_tag, visible},
};
use crate::analytics::{Metrics, TurnLabels};
use crate::assistant::{Assistant, EscalationReason, Reply, Response, TurnContext, Understanding};
use crate::config::SessionLimits;
use crate::db::{AuditRecord, Db, NewMessage, NewSession, SessionRow, StoredFrame, TurnWriter};
use crate::handoff::{Escalation, Escalations};
use crate::http::client_addr::AddressKey;
use crate::identity::{AttemptLimiter, AttemptLimits, Identity, Refusal, normalize_order_number};

/// One socket's view of its session. Identity is proven per connection and
/// never restored from storage: a resumed session gets the scope the
/// resuming socket proved, no more.
#[derive(Debug, Clone)]
pub struct Session {
    pub id: String,
    pub conversation_id: String,
    pub identity: Identity,
    pub page: Option<Page>,
    /// Where the socket connects from: verification failures count against it.
    pub client: AddressKey,
    /// When an order-verified scope lapses (`ORDER_VERIFIED_TTL_SECS`).
    pub order_verified_until: Option<Instant>,
}

impl Session {
    /// A session as a socket takes it up: any order verification is proved
    /// on this socket, never carried over.
    fn started(
        id: String,
        conversation_id: String,
        identity: Identity,
        page: Option<Page>,
        client: AddressKey,
    ) -> Self {
        Self { id, conversation_id, identity, page, client, order_verified_until: None }
    }

    /// The identity as of `now`. An order-verified scope is proof of an
    /// order and an email, which anyone who later holds the socket could
    /// use: past its lifetime it is a guest again, and must verify again.
    pub fn identity_at(&self, now: Instant) -> Identity {
        identity_at(&self.identity, self.order_verified_until, now)
    }
}

/// `identity` as of `now`, an order verification lasting until `order_verified_until`.
pub(super) fn identity_at(identity: &Identity, order_verified_until: Option<Instant>, now: Instant) -> Identity {
    match (identity, order_verified_until) {
        (Identity::OrderVerified { .. }, Some(until)) if now >= until => Identity::Guest,
        (Identity::OrderVerified { .. }, None) => Identity::Guest,
        (identity, _) => identity.clone(),
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ChatError {
    #[error("storage failed: {0}")]
    Storage(#[from] sqlx::Error),
}

impl From<&ChatError> for FrameError {
    fn from(_: &ChatError) -> Self {
        FrameError::new(ErrorCode::Internal, "Something went wrong on our side. Please try again.")
    }
}

/// What a resend of an already-seen client message id gets back.
pub enum TurnResult {
    Answered,
    /// Answered, after an order number and email in the message failed to verify.
    Refused(FrameError),
    /// The message was a resend: these are the reply frames already sent for
    /// it (none yet if the first turn is still running).
    Duplicate(Vec<Outbound>),
}

pub struct ChatService {
    db: Db,
    hub: Hub,
    assistant: Arc<Assistant>,
    /// Records escalations and queues their delivery to the help desk.
    escalations: Arc<Escalations>,
    metrics: Arc<Metrics>,
    verify_attempts: AttemptLimiter,
    limits: SessionLimits,
    /// This process among the replicas, so it ignores its own notifications.
    replica_id: String,
}

impl ChatService {
    pub fn new(
        db: Db,
        hub: Hub,
        assistant: Arc<Assistant>,
        escalations: Arc<Escalations>,
        metrics: Arc<Metrics>,
        limits: SessionLimits,
    ) -> Self {
        Self {
            db,
            hub,
            assistant,
            escalations,
            metrics,
            verify_attempts: AttemptLimiter::new(AttemptLimits::guest_verification(
                limits.verify_failures_per_minute,
                limits.verify_max_tracked_keys,
            )),
            limits,
            replica_id: uuid::Uuid::new_v4().to_string(),
        }
    }

    pub fn replica_id(&self) -> &str {
        &self.replica_id
    }

    pub fn hub(&self) -> &Hub {
        &self.hub
    }

    pub fn ai_disclosure(&self) -> String {
        self.assistant.ai_disclosure()
    }

    pub async fn open(
        &self,
        identity: Identity,
        client: AddressKey,
        locale: Option<&str>,
        page: Option<Page>,
    ) -> Result<(Session, i64), ChatError> {
        let row = self
            .db
            .create_session(NewSession {
                identity_status: identity.status(),
                customer_id: identity.customer_id(),
                verified_order: None,
                locale,
            })
            .await?;
        Ok((Session::started(row.id, row.conversation_id, identity, page, client), 0))
    }

    /// Resumes `session_id` for `identity`. `None` when there is no such
    /// session, it expired, or it belongs to another customer: the three
    /// look the same, and the client gets a new session.
    pub async fn resume(
        &self,
        session_id: &str,
        identity: Identity,
        client: AddressKey,
        page: Option<Page>,
    ) -> Result<Option<(Session, i64)>, ChatError> {
        let Some(row) = self.db.session(session_id).await? else {
            return Ok(None);
        };
        if !may_resume(&row, &identity) || self.expired(&row) {
            return Ok(None);
        }
        if row.identity_status != identity.status() {
            // A guest who signed in keeps the conversation, now verified.
            let mut w = self.db.writer(&row.id, &row.conversation_id).await?;
            w.set_identity(identity.status(), identity.customer_id(), None).await?;
            w.commit().await?;
        }
        // Coming back is activity: the idle limit counts from here.
        self.db.touch_session(&row.id).await?;
        let last_seq = row.last_seq;
        Ok(Some((Session::started(row.id, row.conversation_id, identity, page, client), last_seq)))
    }

    /// A session id is a bearer credential for the conversation: it stops
    /// working after `SESSION_IDLE_TIMEOUT_SECS` without a frame and after
    /// `SESSION_MAX_AGE_SECS` in all.
    fn expired(&self, row: &SessionRow) -> bool {
        let age = |since_ms: i64| Duration::from_millis(crate::db::now_ms().saturating_sub(since_ms).max(0) as u64);
        age(row.updated_at) >= self.limits.idle_timeout || age(row.created_at) >= self.limits.max_age
    }

    /// Every frame after `after_seq`, for a socket catching up on what it
    /// was already entitled to receive live.
    pub async fn replay(&self, session_id: &str, after_seq: i64) -> Result<Vec<Outbound>, ChatError> {
        Ok(self.db.frames_after(session_id, after_seq).await?.into_iter().map(Outbound::from).collect())
    }

    /// The frames after `after_seq` as the resuming `session` may see them.
    /// The session id alone proves nothing about the customer, so a frame
    /// with what an order lookup found comes back whole only to the same
    /// scope (the same signed-in customer; an order verification is never
    /// carried over a resume, so its frames need it again). Anyone else gets
    /// it as a placeholder, not omitted: the same seq and id keep the
    /// widget's seqs continuous and the reply in its place.
    pub async fn replay_for(&self, session: &Session, after_seq: i64) -> Result<Vec<Outbound>, ChatError> {
        let viewer = scope_tag(&session.identity_at(Instant::now()));
        let frames = self.db.frames_after(&session.id, after_seq).await?;
        Ok(frames.into_iter().map(|f| visible(f, viewer.as_deref())).collect())
    }

    /// One customer message, answered exactly once per client message id.
    #[tracing::instrument(skip_all, fields(session = %session.id, client_message_id = %client_id))]
    pub async fn message(
        &self,
        session: &mut Session,
        connection_id: &str,
        client_id: &str,
        text: &str,
    ) -> Result<TurnResult, ChatError> {
        let started = Instant::now();
        self.lapse_order_scope(session, started).await?;
        if !self.db.insert_customer_message(&session.conversation_id, client_id, text).await? {
            // A resend from another socket of the session sees what a replay would.
            let viewer = scope_tag(&session.identity_at(started));
            let frames = self.db.frames_replying_to(&session.id, client_id).await?;
            return Ok(TurnResult::Duplicate(frames.into_iter().map(|f| visible(f, viewer.as_deref())).collect()));
        }
        // With the conversation at the help desk, the person there answers.
        if self.escalations.pass_to_desk(&session.id, &session.conversation_id, client_id, text).await? {
            return Ok(TurnResult::Answered);
        }
        self.publish_ephemeral(&session.id, &ServerFrame::Typing { on: true });
        let turn = self.turn(session, connection_id, client_id, text).await;
        // Whatever happened, the widget must not be left showing "typing".
        self.publish_ephemeral(&session.id, &ServerFrame::Typing { on: false });
        let (response, refused) = turn?;
        if let Some(refused) = refused {
            return Ok(TurnResult::Refused(refused));
        }

        self.metrics
            .turns
            .get_or_create(&TurnLabels { intent: response.intent.as_str(), outcome: response.outcome.as_str() })
            .inc();
        self.metrics.turn_seconds.observe(started.elapsed().as_secs_f64());
        Ok(TurnResult::Answered)
    }

    /// Understands the message once, answers it and stores the answer; a
    /// failed in-message verification comes back beside the response.
    async fn turn(
        &self,
        session: &mut Session,
        connection_id: &str,
        client_id: &str,
        text: &str,
    ) -> Result<(Response, Option<FrameError>), ChatError> {
        let understanding = self.assistant.understand(text).await;
        let refused = self.verify_in_conversation(session, connection_id, &understanding).await?;
        let escalated = self.db.open_escalation(&session.conversation_id).await?.is_some();
        let prior_unanswered = self.db.unanswered_count(&session.conversation_id).await?;
        let ctx = TurnContext { identity: &session.identity, page: session.page.as_ref(), prior_unanswered, escalated };
        let response = self.assistant.respond(text, &understanding, &ctx).await;
        self.write_response(session, client_id, text, &understanding, &response).await?;
        Ok((response, refused))
    }

    /// Drops an order-verified scope past its lifetime, in storage too, so
    /// the transcript does not claim a verification that no longer holds.
    async fn lapse_order_scope(&self, session: &mut Session, now: Instant) -> Result<(), ChatError> {
        let current = session.identity_at(now);
        if current == session.identity {
            return Ok(());
        }
        session.identity = current;
        session.order_verified_until = None;
        let mut w = self.db.writer(&session.id, &session.conversation_id).await?;
        w.set_identity(session.identity.status(), session.identity.customer_id(), None).await?;
        w.commit().await?;
        Ok(())
    }

    /// "It's order #1001, ava@example.com": a guest who gives both in a
    /// message is verified as if they had used the form. A failure is
    /// returned so the socket can say so; the turn then goes on as before.
    async fn verify_in_conversation(
        &self,
        session: &mut Session,
        connection_id: &str,
        u: &Understanding,
    ) -> Result<Option<FrameError>, ChatError> {
        if matches!(session.identity, Identity::Verified { .. }) {
            return Ok(None);
        }
        let ([number], [email]) = (u.order_numbers.as_slice(), u.emails.as_slice()) else { return Ok(None) };
        if session.identity.scope().order_number() == Some(number.as_str()) {
            return Ok(None);
        }
        Ok(self.verify(session, connection_id, number, email).await?.err())
    }

    async fn write_response(
        &self,
        session: &Session,
        client_id: &str,
        customer_text: &str,
        understanding: &Understanding,
        response: &Response,
    ) -> Result<(), ChatError> {
        let escalation = match &response.reply {
            Reply::Handoff { reason, summary, .. } => {
                let escalation = Escalation {
                    identity: &session.identity,
                    reason: *reason,
                    intent: Some(response.intent.as_str()),
                    summary,
                    note: None,
                    customer_words: customer_text,
                    order_numbers: &understanding.order_numbers,
                };
                let package = self.escalations.prepare(&session.conversation_id, &escalation).await?;
                Some((escalation, package))
            }
            _ => None,
        };
        let mut w = self.db.writer(&session.id, &session.conversation_id).await?;
        let text = match &response.reply {
            Reply::Answer { text, .. } | Reply::VerifyRequired { text, .. } | Reply::Handoff { text, .. } => text,
        };
        let message_id = w
            .insert_message(&NewMessage {
                role: "assistant",
                reply_to: Some(client_id),
                text,
                intent: Some(response.intent.as_str()),
                confidence: Some(response.confidence),
                tools: &response.tools,
                outcome: Some(response.outcome.as_str()),
            })
            .await?;
        let message = |cards, citations| {
            ServerFrame::Message(MessageFrame {
                id: message_id.clone(),
                seq: 0,
                role: "assistant",
                text: text.clone(),
                reply_to: Some(client_id.to_owned()),
                intent: Some(response.intent.as_str()),
                confidence: Some(response.confidence),
                cards,
                citations,
                author: None,
            })
        };
        let frames = match &response.reply {
            Reply::Answer { cards, citations, .. } => vec![message(cards.clone(), citations.clone())],
            Reply::VerifyRequired { text, reason } => vec![ServerFrame::VerifyRequired {
                seq: 0,
                reply_to: client_id.to_owned(),
                text: text.clone(),
                reason: (*reason).to_owned(),
                methods: vec!["login", "order_email"],
            }],
            Reply::Handoff { reason, .. } => {
                if let Some((escalation, package)) = escalation {
                    self.escalations.record(&mut w, &escalation, package).await?;
                }
                vec![message(vec![], vec![]), handoff_frame(Some(client_id), *reason)]
            }
        };
        // What an order lookup found is tagged with the scope that found it.
        let scope = response.tools.contains(&"store.orders").then(|| scope_tag(&session.identity)).flatten();
        self.commit_scoped_frames(w, &session.id, frames, scope.as_deref()).await?;
        self.escalations.wake();
        Ok(())
    }

    /// The customer pressed "talk to a person".
    pub async fn handoff_request(&self, session: &Session, note: Option<&str>) -> Result<(), ChatError> {
        if self.db.open_escalation(&session.conversation_id).await?.is_some() {
            let text = self.assistant.handoff_text(EscalationReason::HumanRequested, true);
            let mut w = self.db.writer(&session.id, &session.conversation_id).await?;
            let note = system_message(&mut w, text).await?;
            return self.commit_frames(w, &session.id, vec![note]).await;
        }
        let reason = EscalationReason::HumanRequested;
        let summary = match note {
            Some(note) => format!("The customer asked for a person: {note}"),
            None => "The customer asked for a person.".to_owned(),
        };
        let last_words = self.db.last_customer_message(&session.conversation_id).await?;
        let identity = session.identity_at(Instant::now());
        let escalation = Escalation {
            identity: &identity,
            reason,
            intent: None,
            summary: &summary,
            note,
            customer_words: note.or(last_words.as_deref()).unwrap_or("I would like to talk to a person."),
            order_numbers: &[],
        };
        let package = self.escalations.prepare(&session.conversation_id, &escalation).await?;
        let mut w = self.db.writer(&session.id, &session.conversation_id).await?;
        self.escalations.record(&mut w, &escalation, package).await?;
        let text = self.assistant.handoff_text(reason, false);
        let note = system_message(&mut w, text).await?;
        self.commit_frames(w, &session.id, vec![note, handoff_frame(None, reason)]).await?;
        self.escalations.wake();
        Ok(())
    }

    /// Guest verification by order number and email, from a `verify` frame
    /// or from a message that gives both. The answer never says which of the
    /// two was wrong.
    #[tracing::instrument(skip_all, fields(session = %session.id, connection = %connection_id))]
    pub async fn verify(
        &self,
        session: &mut Session,
        connection_id: &str,
        order_number: &str,
        email: &str,
    ) -> Result<Result<(), FrameError>, ChatError> {
        let number = normalize_order_number(order_number);
        let (decision, outcome) = self.check_order_email(connection_id, session.client, &number, email).await;
        tracing::info!(decision, "guest verification");
        self.audit(AuditRecord {
            correlation_id: connection_id,
            session_id: Some(&session.id),
            method: "order_email",
            decision,
            subject: Some(&number),
            detail: None,
        })
        .await;
        if let Err(refused) = outcome {
            return Ok(Err(refused));
        }
        // A signed-in customer keeps their wider scope.
        if !matches!(session.identity, Identity::Verified { .. }) {
            session.identity =
                Identity::OrderVerified { order_number: number.clone(), email: email.trim().to_lowercase() };
            session.order_verified_until = Some(Instant::now() + self.limits.order_verified_ttl);
        }
        let mut w = self.db.writer(&session.id, &session.conversation_id).await?;
        w.set_identity(session.identity.status(), session.identity.customer_id(), Some(&number)).await?;
        let frame = ServerFrame::Verified { seq: 0, identity: session.identity.view() };
        self.commit_frames(w, &session.id, vec![frame]).await?;
        Ok(Ok(()))
    }

    /// The audit decision and the verification outcome. Failures count
    /// against the connection, the order number, the email and the client
    /// address, so neither a new socket nor a new victim gives fresh guesses.
    async fn check_order_email(
        &self,
        connection_id: &str,
        client: AddressKey,
        number: &str,
        email: &str,
    ) -> (&'static str, Result<(), FrameError>) {
        let keys = [
            format!("conn:{connection_id}"),
            format!("order:{number}"),
            format!("email:{}", email.trim().to_lowercase()),
            format!("addr:{client}"),
        ];
        if let Err(refusal) = self.verify_attempts.check(&keys) {
            if refusal != Refusal::KeyLocked {
                tracing::warn!(?refusal, "guest verification refused for everyone");
            }
            let locked = "Too many attempts. Please wait a while, or ask to talk to a person.";
            return ("locked", Err(FrameError::new(ErrorCode::VerificationLocked, locked)));
        }
        match self.assistant.store().order_matches_email(number, email).await {
            Ok(true) => ("verified", Ok(())),
            Ok(false) => {
                self.verify_attempts.record_failure(&keys);
                let failed = "We couldn't match that order number and email. Please check both and try again.";
                ("failed", Err(FrameError::new(ErrorCode::VerificationFailed, failed)))
            }
            Err(error) => {
                tracing::warn!(%error, "store unavailable during verification");
                let unavailable = "We can't check orders right now. Please try again shortly.";
                ("unavailable", Err(FrameError::new(ErrorCode::Unavailable, unavailable)))
            }
        }
    }

    /// Records an identity decision. The audit must not take the chat down
    /// with it, so a storage failure is logged, not returned.
    pub async fn audit(&self, record: AuditRecord<'_>) {
        if let Err(error) = self.db.record_identity_decision(&record).await {
            tracing::error!(%error, correlation_id = record.correlation_id, "could not record an identity decision");
        }
    }

    pub async fn feedback(
        &self,
        session: &Session,
        message_id: &str,
        rating: Rating,
        comment: Option<&str>,
    ) -> Result<bool, ChatError> {
        Ok(self.db.record_feedback(&session.conversation_id, message_id, rating.as_str(), comment).await?)
    }

    pub async fn csat(&self, session: &Session, score: u8, comment: Option<&str>) -> Result<(), ChatError> {
        Ok(self.db.record_csat(&session.conversation_id, i64::from(score), comment).await?)
    }

    /// Stamps seqs, stores the frames with the rest of the turn's writes,
    /// commits, and only then publishes: a frame a socket sees is durable.
    pub async fn commit_frames(
        &self,
        w: TurnWriter,
        session_id: &str,
        frames: Vec<ServerFrame>,
    ) -> Result<(), ChatError> {
        self.commit_scoped_frames(w, session_id, frames, None).await
    }

    async fn commit_scoped_frames(
        &self,
        mut w: TurnWriter,
        session_id: &str,
        mut frames: Vec<ServerFrame>,
        scope: Option<&str>,
    ) -> Result<(), ChatError> {
        let mut stored = Vec::with_capacity(frames.len());
        let mut after_seq = None;
        for frame in &mut frames {
            let seq = w.next_seq().await?;
            after_seq.get_or_insert(seq - 1);
            frame.set_seq(seq);
            let body = frame.to_json();
            w.insert_frame(seq, frame.kind(), frame.reply_to(), &body, scope).await?;
            stored.push(StoredFrame { seq, body, scope: scope.map(str::to_owned) });
        }
        if let Some(after_seq) = after_seq {
            w.notify_frames(&self.replica_id, after_seq).await?;
        }
        w.commit().await?;
        for frame in stored {
            self.hub.publish(session_id, Outbound::from(frame));
        }
        Ok(())
    }

    fn publish_ephemeral(&self, session_id: &str, frame: &ServerFrame) {
        self.hub.publish(session_id, Outbound::ephemeral(frame.to_json()));
    }
}

fn may_resume(row: &SessionRow, identity: &Identity) -> bool {
    match row.customer_id.as_deref() {
        // A signed-in customer's conversation resumes only for them.
        Some(owner) => identity.customer_id() == Some(owner),
        None => true,
    }
}

fn handoff_frame(reply_to: Option<&str>, reason: EscalationReason) -> ServerFrame {
    ServerFrame::handoff(HandoffStatus::Requested, reason.as_str(), reply_to, None)
}

/// A message from the service itself, stored in the transcript too.
async fn system_message(w: &mut TurnWriter, text: String) -> Result<ServerFrame, sqlx::Error> {
    let message = NewMessage {
        role: "system",
        reply_to: None,
        text: &text,
        intent: None,
        confidence: None,
        tools: &[],
        outcome: None,
    };
    let id = w.insert_message(&message).await?;
    Ok(ServerFrame::plain_message(id, "system", text, None))
}
