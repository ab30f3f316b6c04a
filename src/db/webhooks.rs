//! The Shopify webhook log: every event stored before it is acknowledged,
//! and the newest `updated_at` applied per resource.

use serde::Serialize;
use sqlx::Row;

use super::{Db, now_ms};

pub struct NewWebhook<'a> {
    pub webhook_id: &'a str,
    pub topic: &'a str,
    pub shop: Option<&'a str>,
    pub correlation_id: &'a str,
    pub body: &'a str,
}

/// A stored event, as processing needs it.
#[derive(Debug, Clone)]
pub struct StoredWebhook {
    pub webhook_id: String,
    pub topic: String,
    pub correlation_id: String,
    pub body: String,
}

/// One line of the operator's event log (the body stays out: it holds customer data).
#[derive(Debug, Clone, Serialize)]
pub struct WebhookLogEntry {
    pub webhook_id: String,
    pub topic: String,
    pub shop: Option<String>,
    pub correlation_id: String,
    pub status: String,
    pub detail: Option<String>,
    pub resource: Option<String>,
    pub resource_updated_at: Option<i64>,
    pub received_at: i64,
    pub processed_at: Option<i64>,
}

impl Db {
    /// Stores an event; `false` when this webhook id was already stored (a redelivery).
    pub async fn insert_webhook(&self, event: &NewWebhook<'_>) -> Result<bool, sqlx::Error> {
        let done = sqlx::query(
            "INSERT INTO shopify_webhooks (webhook_id, topic, shop, correlation_id, body, status, received_at)
             VALUES ($1, $2, $3, $4, $5, 'received', $6)
             ON CONFLICT (webhook_id) DO NOTHING",
        )
        .bind(event.webhook_id)
        .bind(event.topic)
        .bind(event.shop)
        .bind(event.correlation_id)
        .bind(event.body)
        .bind(now_ms())
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    pub async fn webhook(&self, webhook_id: &str) -> Result<Option<StoredWebhook>, sqlx::Error> {
        let row =
            sqlx::query("SELECT webhook_id, topic, correlation_id, body FROM shopify_webhooks WHERE webhook_id = $1")
                .bind(webhook_id)
                .fetch_optional(&self.pool)
                .await?;
        row.map(|r| {
            Ok(StoredWebhook {
                webhook_id: r.try_get("webhook_id")?,
                topic: r.try_get("topic")?,
                correlation_id: r.try_get("correlation_id")?,
                body: r.try_get("body")?,
            })
        })
        .transpose()
    }

    /// Events stored but not yet processed, oldest first (a restart resumes them).
    pub async fn unprocessed_webhooks(&self) -> Result<Vec<String>, sqlx::Error> {
        let rows =
            sqlx::query("SELECT webhook_id FROM shopify_webhooks WHERE status = 'received' ORDER BY received_at")
                .fetch_all(&self.pool)
                .await?;
        rows.iter().map(|r| r.try_get("webhook_id")).collect()
    }

    /// Records `updated_at` as the newest known for `resource`, unless a newer
    /// one is already known; `false` means this update is stale.
    pub async fn advance_resource_version(&self, resource: &str, updated_at: i64) -> Result<bool, sqlx::Error> {
        let done = sqlx::query(
            "INSERT INTO shopify_resource_versions (resource, updated_at) VALUES ($1, $2)
             ON CONFLICT (resource) DO UPDATE SET updated_at = excluded.updated_at
             WHERE shopify_resource_versions.updated_at <= excluded.updated_at",
        )
        .bind(resource)
        .bind(updated_at)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    pub async fn finish_webhook(
        &self,
        webhook_id: &str,
        status: &str,
        detail: Option<&str>,
        resource: Option<&str>,
        resource_updated_at: Option<i64>,
    ) -> Result<(), sqlx::Error> {
        sqlx::query(
            "UPDATE shopify_webhooks SET status = $2, detail = $3, resource = $4, resource_updated_at = $5,
             processed_at = $6 WHERE webhook_id = $1",
        )
        .bind(webhook_id)
        .bind(status)
        .bind(detail)
        .bind(resource)
        .bind(resource_updated_at)
        .bind(now_ms())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// The event log, newest first. `before` is the `(received_at, webhook_id)`
    /// of the previous page's last entry: a unique cursor, so events that
    /// share a millisecond are neither skipped nor repeated.
    pub async fn list_webhooks(
        &self,
        limit: i64,
        before: Option<(i64, &str)>,
    ) -> Result<Vec<WebhookLogEntry>, sqlx::Error> {
        let (received_at, webhook_id) = before.unwrap_or((i64::MAX, ""));
        let rows = sqlx::query(
            "SELECT webhook_id, topic, shop, correlation_id, status, detail, resource, resource_updated_at,
                    received_at, processed_at
             FROM shopify_webhooks WHERE received_at < $1 OR (received_at = $1 AND webhook_id < $2)
             ORDER BY received_at DESC, webhook_id DESC LIMIT $3",
        )
        .bind(received_at)
        .bind(webhook_id)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(WebhookLogEntry {
                    webhook_id: r.try_get("webhook_id")?,
                    topic: r.try_get("topic")?,
                    shop: r.try_get("shop")?,
                    correlation_id: r.try_get("correlation_id")?,
                    status: r.try_get("status")?,
                    detail: r.try_get("detail")?,
                    resource: r.try_get("resource")?,
                    resource_updated_at: r.try_get("resource_updated_at")?,
                    received_at: r.try_get("received_at")?,
                    processed_at: r.try_get("processed_at")?,
                })
            })
            .collect()
    }
}
