//! What the assistant resolved, escalated and could not answer, for the
//! operator's analytics (`GET /v1/admin/analytics`).

use serde::Serialize;
use sqlx::Row;

use super::Db;

#[derive(Debug, Serialize)]
pub struct Count {
    pub key: String,
    pub count: i64,
}

#[derive(Debug, Serialize)]
pub struct Unanswered {
    pub conversation_id: String,
    pub question: String,
    pub asked_at: i64,
}

#[derive(Debug, Serialize)]
pub struct Analytics {
    pub since: i64,
    pub conversations: i64,
    /// Conversations that got answers and never needed a person.
    pub resolved: i64,
    pub escalated: i64,
    pub resolution_rate: Option<f64>,
    pub escalations_by_reason: Vec<Count>,
    pub intents: Vec<Count>,
    pub outcomes: Vec<Count>,
    pub unanswered_questions: Vec<Unanswered>,
    pub feedback: Vec<Count>,
    pub csat_average: Option<f64>,
    pub csat_responses: i64,
}

impl Db {
    pub async fn analytics(&self, since: i64, unanswered_limit: i64) -> Result<Analytics, sqlx::Error> {
        let scalar = |sql: &'static str| async move {
            sqlx::query(sql).bind(since).fetch_one(&self.pool).await?.try_get::<i64, _>(0)
        };
        let conversations = scalar(
            "SELECT COUNT(*) FROM conversations c WHERE c.created_at >= $1
             AND EXISTS (SELECT 1 FROM messages m WHERE m.conversation_id = c.id AND m.role = 'customer')",
        )
        .await?;
        let escalated = scalar(
            "SELECT COUNT(DISTINCT e.conversation_id) FROM escalations e
             JOIN conversations c ON c.id = e.conversation_id WHERE c.created_at >= $1",
        )
        .await?;
        let resolved = scalar(
            "SELECT COUNT(*) FROM conversations c WHERE c.created_at >= $1
             AND NOT EXISTS (SELECT 1 FROM escalations e WHERE e.conversation_id = c.id)
             AND EXISTS (SELECT 1 FROM messages m WHERE m.conversation_id = c.id AND m.outcome = 'answered')",
        )
        .await?;
        let counts = |sql: &'static str| async move {
            sqlx::query(sql)
                .bind(since)
                .fetch_all(&self.pool)
                .await?
                .iter()
                .map(|r| Ok(Count { key: r.try_get(0)?, count: r.try_get(1)? }))
                .collect::<Result<Vec<_>, sqlx::Error>>()
        };
        let escalations_by_reason = counts(
            "SELECT reason, COUNT(*) AS n FROM escalations WHERE created_at >= $1 GROUP BY reason ORDER BY n DESC, reason",
        )
        .await?;
        let intents = counts(
            "SELECT intent, COUNT(*) AS n FROM messages WHERE role = 'assistant' AND intent IS NOT NULL
             AND created_at >= $1 GROUP BY intent ORDER BY n DESC, intent",
        )
        .await?;
        let outcomes = counts(
            "SELECT outcome, COUNT(*) AS n FROM messages WHERE role = 'assistant' AND outcome IS NOT NULL
             AND created_at >= $1 GROUP BY outcome ORDER BY n DESC, outcome",
        )
        .await?;
        let feedback =
            counts("SELECT rating, COUNT(*) AS n FROM feedback WHERE created_at >= $1 GROUP BY rating ORDER BY rating")
                .await?;
        let unanswered_questions = sqlx::query(
            "SELECT q.conversation_id, q.text, q.created_at FROM messages a
             JOIN messages q ON q.conversation_id = a.conversation_id AND q.client_message_id = a.reply_to
             WHERE a.role = 'assistant' AND a.outcome = 'unanswered' AND a.created_at >= $1
             ORDER BY a.created_at DESC LIMIT $2",
        )
        .bind(since)
        .bind(unanswered_limit)
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(|r| Ok(Unanswered { conversation_id: r.try_get(0)?, question: r.try_get(1)?, asked_at: r.try_get(2)? }))
        .collect::<Result<Vec<_>, sqlx::Error>>()?;
        let csat = sqlx::query(
            "SELECT COUNT(csat_score), CAST(SUM(csat_score) AS BIGINT) FROM conversations
             WHERE csat_score IS NOT NULL AND created_at >= $1",
        )
        .bind(since)
        .fetch_one(&self.pool)
        .await?;
        let csat_responses: i64 = csat.try_get(0)?;
        let csat_sum: Option<i64> = csat.try_get(1)?;
        Ok(Analytics {
            since,
            conversations,
            resolved,
            escalated,
            resolution_rate: (conversations > 0).then(|| resolved as f64 / conversations as f64),
            escalations_by_reason,
            intents,
            outcomes,
            unanswered_questions,
            feedback,
            csat_average: csat_sum.filter(|_| csat_responses > 0).map(|s| s as f64 / csat_responses as f64),
            csat_responses,
        })
    }
}
