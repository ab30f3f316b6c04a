//! Sessions, conversations, messages, frames, escalations and feedback.

use serde::Serialize;
use sqlx::{Any, AnyConnection, Row, Transaction, any::AnyRow};
use uuid::Uuid;

use super::{Db, now_ms};

#[derive(Debug, Clone)]
pub struct SessionRow {
    pub id: String,
    pub conversation_id: String,
    pub identity_status: String,
    pub customer_id: Option<String>,
    pub verified_order: Option<String>,
    pub last_seq: i64,
    /// Unix ms: for the absolute and idle limits.
    pub created_at: i64,
    pub updated_at: i64,
}

/// What a new session is opened with.
pub struct NewSession<'a> {
    pub identity_status: &'a str,
    pub customer_id: Option<&'a str>,
    pub verified_order: Option<&'a str>,
    pub locale: Option<&'a str>,
}

#[derive(Debug, Clone, Serialize)]
pub struct StoredFrame {
    pub seq: i64,
    pub body: String,
    /// Set when the frame carries what an order lookup found: the scope that may see it.
    #[serde(skip)]
    pub scope: Option<String>,
}

pub struct NewMessage<'a> {
    pub role: &'a str,
    pub reply_to: Option<&'a str>,
    pub text: &'a str,
    pub intent: Option<&'a str>,
    pub confidence: Option<f64>,
    pub tools: &'a [&'a str],
    pub outcome: Option<&'a str>,
}

pub struct NewEscalation<'a> {
    pub reason: &'a str,
    pub note: Option<&'a str>,
    pub summary: &'a str,
}

#[derive(Debug, Clone, Serialize)]
pub struct EscalationRow {
    pub id: String,
    pub reason: String,
    pub note: Option<String>,
    pub summary: String,
    pub status: String,
    pub reference: Option<String>,
    pub created_at: i64,
}

#[derive(Debug, Clone, Serialize)]
pub struct MessageRow {
    pub id: String,
    pub role: String,
    pub client_message_id: Option<String>,
    pub reply_to: Option<String>,
    pub text: String,
    pub intent: Option<String>,
    pub confidence: Option<f64>,
    pub tools: Vec<String>,
    pub outcome: Option<String>,
    pub created_at: i64,
}

#[derive(Debug, Clone, Serialize)]
pub struct ConversationSummary {
    pub id: String,
    pub session_id: String,
    pub status: String,
    pub identity_status: String,
    pub message_count: i64,
    pub csat_score: Option<i64>,
    pub created_at: i64,
    pub updated_at: i64,
}

#[derive(Debug, Clone, Serialize)]
pub struct ConversationDetail {
    #[serde(flatten)]
    pub summary: ConversationSummary,
    pub messages: Vec<MessageRow>,
    pub escalations: Vec<EscalationRow>,
}

const SUMMARY_SELECT: &str =
    "SELECT c.id, c.session_id, c.status, s.identity_status, c.csat_score, c.created_at, c.updated_at,
        (SELECT COUNT(*) FROM messages m WHERE m.conversation_id = c.id) AS message_count
     FROM conversations c JOIN sessions s ON s.id = c.session_id";

impl Db {
    pub async fn create_session(&self, new: NewSession<'_>) -> Result<SessionRow, sqlx::Error> {
        let (session_id, conversation_id, now) = (Uuid::new_v4().to_string(), Uuid::new_v4().to_string(), now_ms());
        let mut tx = self.pool.begin().await?;
        sqlx::query(
            "INSERT INTO sessions (id, identity_status, customer_id, verified_order, locale, last_seq, created_at, updated_at)
             VALUES ($1, $2, $3, $4, $5, 0, $6, $6)",
        )
        .bind(&session_id)
        .bind(new.identity_status)
        .bind(new.customer_id)
        .bind(new.verified_order)
        .bind(new.locale)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        sqlx::query("INSERT INTO conversations (id, session_id, status, created_at, updated_at) VALUES ($1, $2, 'open', $3, $3)")
            .bind(&conversation_id)
            .bind(&session_id)
            .bind(now)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(SessionRow {
            id: session_id,
            conversation_id,
            identity_status: new.identity_status.to_owned(),
            customer_id: new.customer_id.map(str::to_owned),
            verified_order: new.verified_order.map(str::to_owned),
            last_seq: 0,
            created_at: now,
            updated_at: now,
        })
    }

    pub async fn session(&self, id: &str) -> Result<Option<SessionRow>, sqlx::Error> {
        let row = sqlx::query(
            "SELECT s.id, s.identity_status, s.customer_id, s.verified_order, s.last_seq, s.created_at, s.updated_at,
                    (SELECT c.id FROM conversations c WHERE c.session_id = s.id ORDER BY c.created_at DESC LIMIT 1) AS conversation_id
             FROM sessions s WHERE s.id = $1",
        )
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| {
            Ok(SessionRow {
                id: r.try_get("id")?,
                conversation_id: r.try_get("conversation_id")?,
                identity_status: r.try_get("identity_status")?,
                customer_id: r.try_get("customer_id")?,
                verified_order: r.try_get("verified_order")?,
                last_seq: r.try_get("last_seq")?,
                created_at: r.try_get("created_at")?,
                updated_at: r.try_get("updated_at")?,
            })
        })
        .transpose()
    }

    pub async fn touch_session(&self, id: &str) -> Result<(), sqlx::Error> {
        sqlx::query("UPDATE sessions SET updated_at = $1 WHERE id = $2")
            .bind(now_ms())
            .bind(id)
            .execute(&self.pool)
            .await
            .map(|_| ())
    }

    /// Stores a customer message. `false` means this client message id was
    /// already stored for the conversation: the message is a resend.
    pub async fn insert_customer_message(
        &self,
        conversation_id: &str,
        client_message_id: &str,
        text: &str,
    ) -> Result<bool, sqlx::Error> {
        let done = sqlx::query(
            "INSERT INTO messages (id, conversation_id, role, client_message_id, text, created_at)
             VALUES ($1, $2, 'customer', $3, $4, $5)
             ON CONFLICT (conversation_id, client_message_id) DO NOTHING",
        )
        .bind(Uuid::new_v4().to_string())
        .bind(conversation_id)
        .bind(client_message_id)
        .bind(text)
        .bind(now_ms())
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    pub async fn frames_after(&self, session_id: &str, after_seq: i64) -> Result<Vec<StoredFrame>, sqlx::Error> {
        sqlx::query("SELECT seq, body, scope FROM frames WHERE session_id = $1 AND seq > $2 ORDER BY seq")
            .bind(session_id)
            .bind(after_seq)
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(stored_frame)
            .collect()
    }

    pub async fn frames_replying_to(&self, session_id: &str, reply_to: &str) -> Result<Vec<StoredFrame>, sqlx::Error> {
        sqlx::query("SELECT seq, body, scope FROM frames WHERE session_id = $1 AND reply_to = $2 ORDER BY seq")
            .bind(session_id)
            .bind(reply_to)
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(stored_frame)
            .collect()
    }

    /// Opens a transaction that writes a turn's results for one session.
    pub async fn writer(&self, session_id: &str, conversation_id: &str) -> Result<TurnWriter, sqlx::Error> {
        Ok(TurnWriter {
            tx: self.pool.begin().await?,
            backend: self.backend,
            session_id: session_id.to_owned(),
            conversation_id: conversation_id.to_owned(),
        })
    }

    pub async fn open_escalation(&self, conversation_id: &str) -> Result<Option<EscalationRow>, sqlx::Error> {
        sqlx::query(
            "SELECT id, reason, note, summary, status, reference, created_at FROM escalations
             WHERE conversation_id = $1 AND status <> 'closed' ORDER BY created_at DESC LIMIT 1",
        )
        .bind(conversation_id)
        .fetch_optional(&self.pool)
        .await?
        .as_ref()
        .map(escalation_row)
        .transpose()
    }

    /// Records a rating of one assistant reply of this conversation; `false`
    /// when no such reply exists in it.
    pub async fn record_feedback(
        &self,
        conversation_id: &str,
        message_id: &str,
        rating: &str,
        comment: Option<&str>,
    ) -> Result<bool, sqlx::Error> {
        let mut tx = self.pool.begin().await?;
        let owned = sqlx::query("SELECT 1 FROM messages WHERE id = $1 AND conversation_id = $2 AND role = 'assistant'")
            .bind(message_id)
            .bind(conversation_id)
            .fetch_optional(&mut *tx)
            .await?
            .is_some();
        if owned {
            sqlx::query("DELETE FROM feedback WHERE message_id = $1").bind(message_id).execute(&mut *tx).await?;
            sqlx::query("INSERT INTO feedback (message_id, rating, comment, created_at) VALUES ($1, $2, $3, $4)")
                .bind(message_id)
                .bind(rating)
                .bind(comment)
                .bind(now_ms())
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(owned)
    }

    pub async fn record_csat(
        &self,
        conversation_id: &str,
        score: i64,
        comment: Option<&str>,
    ) -> Result<(), sqlx::Error> {
        sqlx::query("UPDATE conversations SET csat_score = $1, csat_comment = $2, updated_at = $3 WHERE id = $4")
            .bind(score)
            .bind(comment)
            .bind(now_ms())
            .bind(conversation_id)
            .execute(&self.pool)
            .await
            .map(|_| ())
    }

    /// Newest first, optionally only those with `status`. `before` is the
    /// `(updated_at, id)` of the last row of the previous page: with the id as
    /// tie-breaker, rows sharing a timestamp are neither skipped nor repeated.
    pub async fn list_conversations(
        &self,
        limit: i64,
        before: Option<(i64, &str)>,
        status: Option<&str>,
    ) -> Result<Vec<ConversationSummary>, sqlx::Error> {
        let status_filter = if status.is_some() { "AND c.status = $4" } else { "" };
        let sql = format!(
            "{SUMMARY_SELECT} WHERE (c.updated_at < $1 OR (c.updated_at = $1 AND c.id < $2)) {status_filter}
             ORDER BY c.updated_at DESC, c.id DESC LIMIT $3"
        );
        let (updated_at, id) = before.unwrap_or((i64::MAX, ""));
        let mut query = sqlx::query(&sql).bind(updated_at).bind(id).bind(limit);
        if let Some(status) = status {
            query = query.bind(status);
        }
        query.fetch_all(&self.pool).await?.iter().map(summary_row).collect()
    }

    pub async fn conversation(&self, id: &str) -> Result<Option<ConversationDetail>, sqlx::Error> {
        let sql = format!("{SUMMARY_SELECT} WHERE c.id = $1");
        let Some(row) = sqlx::query(&sql).bind(id).fetch_optional(&self.pool).await? else {
            return Ok(None);
        };
        let summary = summary_row(&row)?;
        let messages = sqlx::query(
            "SELECT id, role, client_message_id, reply_to, text, intent, confidence, tools, outcome, created_at
             FROM messages WHERE conversation_id = $1 ORDER BY n",
        )
        .bind(id)
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(message_row)
        .collect::<Result<_, _>>()?;
        let escalations = sqlx::query(
            "SELECT id, reason, note, summary, status, reference, created_at FROM escalations
             WHERE conversation_id = $1 ORDER BY created_at",
        )
        .bind(id)
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(escalation_row)
        .collect::<Result<_, _>>()?;
        Ok(Some(ConversationDetail { summary, messages, escalations }))
    }
}

/// One turn's writes, committed together: the reply, any escalation, and the
/// frames with their seqs. Dropping it without `commit` writes nothing.
pub struct TurnWriter {
    tx: Transaction<'static, Any>,
    backend: super::Backend,
    session_id: String,
    conversation_id: String,
}

impl TurnWriter {
    pub(super) fn conn(&mut self) -> &mut AnyConnection {
        &mut self.tx
    }

    pub fn session_id(&self) -> &str {
        &self.session_id
    }

    pub fn conversation_id(&self) -> &str {
        &self.conversation_id
    }

    /// Returns the new message's id.
    pub async fn insert_message(&mut self, m: &NewMessage<'_>) -> Result<String, sqlx::Error> {
        let id = Uuid::new_v4().to_string();
        let tools = serde_json::to_string(m.tools).unwrap_or_else(|_| "[]".into());
        let conversation_id = self.conversation_id.clone();
        // A missing confidence is written as a literal NULL, not a bound one:
        // sqlx's Any driver (0.8.6) binds a NULL double as a float4, and the
        // PostgreSQL statement prepared with it then refuses the next real double.
        let confidence = if m.confidence.is_some() { "$10" } else { "NULL" };
        let sql = format!(
            "INSERT INTO messages (id, conversation_id, role, reply_to, text, intent, confidence, tools, outcome, created_at)
             VALUES ($1, $2, $3, $4, $5, $6, {confidence}, $7, $8, $9)"
        );
        let mut query = sqlx::query(&sql)
            .bind(&id)
            .bind(conversation_id)
            .bind(m.role)
            .bind(m.reply_to)
            .bind(m.text)
            .bind(m.intent)
            .bind(tools)
            .bind(m.outcome)
            .bind(now_ms());
        if let Some(confidence) = m.confidence {
            query = query.bind(confidence);
        }
        query.execute(self.conn()).await?;
        Ok(id)
    }

    /// Returns the new escalation's id and marks the conversation escalated.
    pub async fn insert_escalation(&mut self, e: &NewEscalation<'_>) -> Result<String, sqlx::Error> {
        // Escalations are recorded by `handoff::Escalations` only.
        let (id, now, conversation_id) = (Uuid::new_v4().to_string(), now_ms(), self.conversation_id.clone());
        sqlx::query(
            "INSERT INTO escalations (id, conversation_id, reason, note, summary, status, created_at, updated_at)
             VALUES ($1, $2, $3, $4, $5, 'requested', $6, $6)",
        )
        .bind(&id)
        .bind(&conversation_id)
        .bind(e.reason)
        .bind(e.note)
        .bind(e.summary)
        .bind(now)
        .execute(self.conn())
        .await?;
        sqlx::query("UPDATE conversations SET status = 'escalated' WHERE id = $1")
            .bind(conversation_id)
            .execute(self.conn())
            .await?;
        Ok(id)
    }

    pub async fn set_identity(
        &mut self,
        status: &str,
        customer_id: Option<&str>,
        verified_order: Option<&str>,
    ) -> Result<(), sqlx::Error> {
        let session_id = self.session_id.clone();
        sqlx::query("UPDATE sessions SET identity_status = $1, customer_id = $2, verified_order = $3 WHERE id = $4")
            .bind(status)
            .bind(customer_id)
            .bind(verified_order)
            .bind(session_id)
            .execute(self.conn())
            .await
            .map(|_| ())
    }

    /// Allocates the session's next seq. The row lock taken by this update
    /// is what keeps seqs strictly increasing across sockets and replicas.
    pub async fn next_seq(&mut self) -> Result<i64, sqlx::Error> {
        let session_id = self.session_id.clone();
        sqlx::query("UPDATE sessions SET last_seq = last_seq + 1, updated_at = $1 WHERE id = $2 RETURNING last_seq")
            .bind(now_ms())
            .bind(session_id)
            .fetch_one(self.conn())
            .await?
            .try_get(0)
    }

    pub async fn insert_frame(
        &mut self,
        seq: i64,
        kind: &str,
        reply_to: Option<&str>,
        body: &str,
        scope: Option<&str>,
    ) -> Result<(), sqlx::Error> {
        let session_id = self.session_id.clone();
        sqlx::query(
            "INSERT INTO frames (session_id, seq, kind, reply_to, body, created_at, scope)
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(session_id)
        .bind(seq)
        .bind(kind)
        .bind(reply_to)
        .bind(body)
        .bind(now_ms())
        .bind(scope)
        .execute(self.conn())
        .await
        .map(|_| ())
    }

    /// Tells other replicas, on commit, that this session has frames after
    /// `after_seq` (PostgreSQL `NOTIFY`; a lone SQLite process needs no telling).
    pub async fn notify_frames(&mut self, replica: &str, after_seq: i64) -> Result<(), sqlx::Error> {
        if self.backend != super::Backend::Postgres {
            return Ok(());
        }
        let payload = format!("{replica} {} {after_seq}", self.session_id);
        sqlx::query("SELECT pg_notify('assistant_frames', $1)").bind(payload).execute(self.conn()).await.map(|_| ())
    }

    pub async fn commit(mut self) -> Result<(), sqlx::Error> {
        let (conversation_id, now) = (self.conversation_id.clone(), now_ms());
        sqlx::query("UPDATE conversations SET updated_at = $1 WHERE id = $2")
            .bind(now)
            .bind(conversation_id)
            .execute(self.conn())
            .await?;
        self.tx.commit().await
    }
}

fn stored_frame(r: &AnyRow) -> Result<StoredFrame, sqlx::Error> {
    Ok(StoredFrame { seq: r.try_get("seq")?, body: r.try_get("body")?, scope: r.try_get("scope")? })
}

fn summary_row(r: &AnyRow) -> Result<ConversationSummary, sqlx::Error> {
    Ok(ConversationSummary {
        id: r.try_get("id")?,
        session_id: r.try_get("session_id")?,
        status: r.try_get("status")?,
        identity_status: r.try_get("identity_status")?,
        message_count: r.try_get("message_count")?,
        csat_score: r.try_get("csat_score")?,
        created_at: r.try_get("created_at")?,
        updated_at: r.try_get("updated_at")?,
    })
}

fn message_row(r: &AnyRow) -> Result<MessageRow, sqlx::Error> {
    let tools: Option<String> = r.try_get("tools")?;
    Ok(MessageRow {
        id: r.try_get("id")?,
        role: r.try_get("role")?,
        client_message_id: r.try_get("client_message_id")?,
        reply_to: r.try_get("reply_to")?,
        text: r.try_get("text")?,
        intent: r.try_get("intent")?,
        confidence: r.try_get("confidence")?,
        tools: tools.and_then(|t| serde_json::from_str(&t).ok()).unwrap_or_default(),
        outcome: r.try_get("outcome")?,
        created_at: r.try_get("created_at")?,
    })
}

fn escalation_row(r: &AnyRow) -> Result<EscalationRow, sqlx::Error> {
    Ok(EscalationRow {
        id: r.try_get("id")?,
        reason: r.try_get("reason")?,
        note: r.try_get("note")?,
        summary: r.try_get("summary")?,
        status: r.try_get("status")?,
        reference: r.try_get("reference")?,
        created_at: r.try_get("created_at")?,
    })
}

impl Db {
    /// How many replies in this conversation admitted not knowing or had to
    /// ask what was meant.
    pub async fn unanswered_count(&self, conversation_id: &str) -> Result<i64, sqlx::Error> {
        sqlx::query("SELECT COUNT(*) FROM messages WHERE conversation_id = $1 AND outcome IN ('unanswered', 'clarify')")
            .bind(conversation_id)
            .fetch_one(&self.pool)
            .await?
            .try_get(0)
    }
}
