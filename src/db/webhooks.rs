//! The Shopify webhook log: every event stored before it is acknowledged,
//! and the newest `updated_at` applied per resource.

use serde::Serialize;
use sqlx::Row;

use super::{Db, now_ms};

/// A verified webhook, until it is stored.
pub struct NewWebhook {
    pub webhook_id: String,
    pub topic: String,
    pub shop: Option<String>,
    pub correlation_id: String,
    pub body: String,
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

/// What applying a stored event concluded, to be recorded on it.
#[derive(Debug, Clone)]
pub struct Settlement {
    pub webhook_id: String,
    pub status: &'static str,
    pub detail: Option<&'static str>,
    pub resource: Option<String>,
    pub resource_updated_at: Option<i64>,
}

impl Settlement {
    pub const PROCESSED: &'static str = "processed";
    pub const STALE: &'static str = "stale";
}

impl Db {
    /// Stores an event; `false` when this webhook id was already stored (a redelivery).
    pub async fn insert_webhook(&self, event: &NewWebhook) -> Result<bool, sqlx::Error> {
        Ok(self.insert_webhooks(std::slice::from_ref(event)).await?[0])
    }

    /// Stores events in one transaction, so one commit (one fsync) makes
    /// them all durable; per event, `false` for a redelivery, including of
    /// an event earlier in the same batch.
    pub async fn insert_webhooks(&self, events: &[NewWebhook]) -> Result<Vec<bool>, sqlx::Error> {
        // In id order, so two replicas' batches take their locks in the same
        // order and cannot deadlock on PostgreSQL.
        let mut order: Vec<usize> = (0..events.len()).collect();
        order.sort_by(|&a, &b| events[a].webhook_id.cmp(&events[b].webhook_id));
        let mut tx = self.pool.begin().await?;
        let mut stored = vec![false; events.len()];
        for i in order {
            let event = &events[i];
            let done = sqlx::query(
                "INSERT INTO shopify_webhooks (webhook_id, topic, shop, correlation_id, body, status, received_at)
                 VALUES ($1, $2, $3, $4, $5, 'received', $6)
                 ON CONFLICT (webhook_id) DO NOTHING",
            )
            .bind(&event.webhook_id)
            .bind(&event.topic)
            .bind(&event.shop)
            .bind(&event.correlation_id)
            .bind(&event.body)
            .bind(now_ms())
            .execute(&mut *tx)
            .await?;
            stored[i] = done.rows_affected() == 1;
        }
        tx.commit().await?;
        Ok(stored)
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

    /// Records the outcomes of applied events in one transaction. An event
    /// `processed` whose `resource_updated_at` is older than the one already
    /// recorded for its resource (by an earlier batch) becomes `stale` here,
    /// so a reordered delivery never overwrites a newer update; within one
    /// batch a resource's updates are applied oldest first.
    pub async fn settle_webhooks(&self, settlements: &mut [Settlement]) -> Result<(), sqlx::Error> {
        // Oldest update first within a resource, and locks taken in one
        // order whichever replica settles (no deadlock on PostgreSQL).
        let mut order: Vec<usize> = (0..settlements.len()).collect();
        fn key(s: &Settlement) -> (Option<&str>, Option<i64>, &str) {
            (s.resource.as_deref(), s.resource_updated_at, &s.webhook_id)
        }
        order.sort_by(|&a, &b| key(&settlements[a]).cmp(&key(&settlements[b])));
        let mut tx = self.pool.begin().await?;
        for i in order {
            let settled = &mut settlements[i];
            if let (Settlement::PROCESSED, Some(resource), Some(at)) =
                (settled.status, &settled.resource, settled.resource_updated_at)
            {
                let newest = sqlx::query(
                    "INSERT INTO shopify_resource_versions (resource, updated_at) VALUES ($1, $2)
                     ON CONFLICT (resource) DO UPDATE SET updated_at = excluded.updated_at
                     WHERE shopify_resource_versions.updated_at <= excluded.updated_at",
                )
                .bind(resource)
                .bind(at)
                .execute(&mut *tx)
                .await?;
                if newest.rows_affected() == 0 {
                    settled.status = Settlement::STALE;
                    settled.detail = Some("older than the update already applied");
                }
            }
            sqlx::query(
                "UPDATE shopify_webhooks SET status = $2, detail = $3, resource = $4, resource_updated_at = $5,
                 processed_at = $6 WHERE webhook_id = $1",
            )
            .bind(&settled.webhook_id)
            .bind(settled.status)
            .bind(settled.detail)
            .bind(&settled.resource)
            .bind(settled.resource_updated_at)
            .bind(now_ms())
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await
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
