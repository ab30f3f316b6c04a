//! Shopify webhooks, once stored (`http::shopify` receives them): the
//! signature check over the raw bytes, and what an event means for the store.
//!
//! An update older than the newest one applied to its resource
//! (`updated_at`) is recorded as stale and changes nothing.

use std::sync::Arc;

use base64::{Engine, engine::general_purpose::STANDARD as BASE64};
use hmac::{Hmac, Mac};
use serde_json::Value;
use sha2::Sha256;
use subtle::ConstantTimeEq;
use time::{OffsetDateTime, format_description::well_known::Rfc3339};

use super::model::gid_number;
use crate::commerce::{Store, Touched};
use crate::{
    batch::{Batcher, Stopped},
    db::{Db, NewWebhook, Settlement, StoredWebhook},
};

/// `base64(HMAC-SHA256(secret, raw body))` compared in constant time.
pub fn signature_valid(secret: &[u8], body: &[u8], header: Option<&str>) -> bool {
    let Some(given) = header.and_then(|h| BASE64.decode(h.trim()).ok()) else {
        return false;
    };
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(secret) else {
        return false;
    };
    mac.update(body);
    let expected = mac.finalize().into_bytes();
    bool::from(given.as_slice().ct_eq(&expected[..]))
}

/// Webhooks that arrive together are stored in one transaction (one commit
/// makes them durable before any is acknowledged: group commit), then
/// processed a batch at a time, off the request path.
pub struct WebhookIntake {
    storing: Batcher<NewWebhook, Result<bool, Stopped>>,
    processing: Batcher<String, ()>,
}

/// Enough to amortise a commit; small enough that one batch's transaction
/// keeps the single SQLite writer only briefly.
const MAX_BATCH: usize = 64;

impl WebhookIntake {
    /// Starts the two workers on the current runtime.
    pub fn start(db: Db, store: Arc<dyn Store>) -> Self {
        // One worker each: SQLite has one writer, and a batch per commit
        // is the point.
        let storing = Batcher::start(MAX_BATCH, 1, {
            let db = db.clone();
            move |batch: Vec<NewWebhook>| {
                let db = db.clone();
                async move {
                    match db.insert_webhooks(&batch).await {
                        Ok(stored) => stored.into_iter().map(Ok).collect(),
                        Err(error) => {
                            // Nothing acknowledged: Shopify delivers them again.
                            tracing::error!(%error, events = batch.len(), "cannot store Shopify webhooks");
                            batch.iter().map(|_| Err(Stopped)).collect()
                        }
                    }
                }
            }
        });
        let processing = Batcher::start(MAX_BATCH, 1, move |ids: Vec<String>| {
            let (db, store) = (db.clone(), store.clone());
            async move {
                process(&db, store.as_ref(), &ids).await;
                vec![(); ids.len()]
            }
        });
        Self { storing, processing }
    }

    /// Stores `event` durably: `Ok(false)` for a redelivery, `Err` when it
    /// could not be stored (and must not be acknowledged). A new event is
    /// then queued for processing.
    pub async fn store(&self, event: NewWebhook) -> Result<bool, Stopped> {
        let webhook_id = event.webhook_id.clone();
        let stored = self.storing.submit(event).await??;
        if stored {
            // Stored, so never lost: a stop before processing leaves it for `resume`.
            let _ = self.processing.enqueue(webhook_id);
        }
        Ok(stored)
    }

    /// Queues events stored before a stop and not yet processed.
    pub fn resume(&self, webhook_ids: Vec<String>) {
        for webhook_id in webhook_ids {
            let _ = self.processing.enqueue(webhook_id);
        }
    }
}

/// What an event means for the store: which resource, how new, what to drop.
#[derive(Debug, PartialEq)]
struct Effect {
    resource: String,
    updated_at: Option<i64>,
    touched: Touched,
}

#[derive(Debug, PartialEq)]
enum Classified {
    Apply(Effect),
    Ignore(&'static str),
    Fail(&'static str),
}

/// Applies stored events, a batch at a time: each is read and classified,
/// their outcomes (and resource versions) are recorded in one transaction,
/// then the store drops what the newest updates touched. A storage failure
/// leaves the events `received` for the next start.
async fn process(db: &Db, store: &dyn Store, webhook_ids: &[String]) {
    let (mut settlements, mut applied) = (Vec::new(), Vec::new());
    for webhook_id in webhook_ids {
        match db.webhook(webhook_id).await {
            Ok(Some(event)) => {
                let (topic, correlation_id) = (event.topic.clone(), event.correlation_id.clone());
                let (settlement, touched) = settle(event);
                settlements.push(settlement);
                applied.push((topic, correlation_id, touched));
            }
            Ok(None) => {}
            // Left as `received`: the next start tries again.
            Err(error) => tracing::error!(%error, webhook_id, "cannot load a stored Shopify webhook"),
        }
    }
    if let Err(error) = db.settle_webhooks(&mut settlements).await {
        tracing::error!(%error, events = settlements.len(), "cannot record the outcome of Shopify webhooks");
        return;
    }
    for (settled, (topic, correlation_id, touched)) in settlements.iter().zip(applied) {
        if let (Settlement::PROCESSED, Some(touched)) = (settled.status, touched) {
            store.invalidate(&touched);
        }
        let span = tracing::info_span!("shopify_webhook", webhook_id = %settled.webhook_id, %topic, %correlation_id);
        span.in_scope(|| {
            tracing::info!(
                status = settled.status,
                detail = settled.detail,
                resource = settled.resource.as_deref(),
                "Shopify webhook processed"
            );
        });
    }
}

/// What one event concludes before its version is checked, and what it touches.
fn settle(event: StoredWebhook) -> (Settlement, Option<Touched>) {
    let body: Value = serde_json::from_str(&event.body).unwrap_or(Value::Null);
    let settled = |status, detail| Settlement {
        webhook_id: event.webhook_id.clone(),
        status,
        detail,
        resource: None,
        resource_updated_at: None,
    };
    match classify(&event.topic, &body) {
        Classified::Ignore(why) => (settled("ignored", Some(why)), None),
        Classified::Fail(why) => (settled("failed", Some(why)), None),
        Classified::Apply(effect) => {
            let settlement = Settlement {
                resource: Some(effect.resource),
                resource_updated_at: effect.updated_at,
                ..settled(Settlement::PROCESSED, None)
            };
            (settlement, Some(effect.touched))
        }
    }
}

fn classify(topic: &str, body: &Value) -> Classified {
    let Some(id) = resource_id(body) else {
        return Classified::Fail("the body has no usable id");
    };
    let updated_at = body.get("updated_at").and_then(Value::as_str).and_then(unix_ms);
    let customer_id = body.get("customer").and_then(resource_id);
    let order =
        |id: String, number: Option<String>, customer_id: Option<String>| Touched::Order { id, number, customer_id };
    let (kind, touched, updated_at) = match topic {
        "orders/create"
        | "orders/updated"
        | "orders/fulfilled"
        | "orders/partially_fulfilled"
        | "orders/cancelled"
        | "orders/paid"
        | "orders/edited" => {
            let number = body.get("name").and_then(Value::as_str).map(str::to_owned);
            ("order", order(id.clone(), number, customer_id), updated_at)
        }
        "fulfillments/create" | "fulfillments/update" | "refunds/create" => {
            let Some(order_id) = body.get("order_id").and_then(integer_id) else {
                return Classified::Fail("the body has no usable order_id");
            };
            let kind = if topic.starts_with("refunds") { "refund" } else { "fulfillment" };
            // A refund is created once and never updated: nothing to order it by.
            let updated_at = if kind == "refund" { None } else { updated_at };
            (kind, order(order_id, None, None), updated_at)
        }
        "customers/create" | "customers/update" => ("customer", Touched::Customer { id: id.clone() }, updated_at),
        "products/create" | "products/update" | "products/delete" => ("product", Touched::Products, updated_at),
        _ => return Classified::Ignore("topic not handled"),
    };
    Classified::Apply(Effect { resource: format!("{kind}:{id}"), updated_at, touched })
}

/// The resource's id: the gid's number when present (it survives JSON
/// round trips that round big numbers), else `id` as an integer or string.
fn resource_id(body: &Value) -> Option<String> {
    let from_gid = body.get("admin_graphql_api_id").and_then(Value::as_str).map(gid_number);
    from_gid.filter(|n| is_digits(n)).map(str::to_owned).or_else(|| body.get("id").and_then(integer_id))
}

/// An integer id, or a string of digits; never through a float.
fn integer_id(value: &Value) -> Option<String> {
    match value {
        Value::Number(n) => n.as_u64().map(|n| n.to_string()),
        Value::String(s) if is_digits(s) => Some(s.clone()),
        _ => None,
    }
}

fn is_digits(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit())
}

fn unix_ms(rfc3339: &str) -> Option<i64> {
    let at = OffsetDateTime::parse(rfc3339, &Rfc3339).ok()?;
    i64::try_from(at.unix_timestamp_nanos() / 1_000_000).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn big_ids_are_read_as_integers_and_strings_never_as_floats() {
        let body: Value =
            serde_json::from_str(r#"{"id": 820982911946154508, "order_id": "9007199254740993"}"#).unwrap();
        assert_eq!(resource_id(&body).as_deref(), Some("820982911946154508"));
        assert_eq!(integer_id(&body["order_id"]).as_deref(), Some("9007199254740993"));
        assert_eq!(integer_id(&json!(1.5)), None);
    }

    #[test]
    fn an_order_update_touches_the_order_its_name_and_its_customer() {
        let body = json!({
            "id": 1, "admin_graphql_api_id": "gid://shopify/Order/42", "name": "#1001",
            "updated_at": "2021-12-31T19:00:00-05:00", "customer": { "id": 7 }
        });
        let Classified::Apply(effect) = classify("orders/updated", &body) else { panic!("applied") };
        assert_eq!(effect.resource, "order:42");
        assert_eq!(effect.updated_at, unix_ms("2022-01-01T00:00:00Z"));
        let touched = Touched::Order { id: "42".into(), number: Some("#1001".into()), customer_id: Some("7".into()) };
        assert_eq!(effect.touched, touched);
        assert_eq!(classify("app/uninstalled", &body), Classified::Ignore("topic not handled"));
    }
}
