//! `POST /v1/webhooks/shopify` with Shopify's own sample bodies and HMAC
//! test vector: valid, forged, replayed, out of order, malformed, unknown.

use std::time::{Duration, Instant};

use base64::{Engine, engine::general_purpose::STANDARD as BASE64};
use hmac::{Hmac, Mac};
use serde_json::{Value, json};
use sha2::Sha256;

use super::contracts::read;
use super::mock::{self, MockShopify};
use crate::helpers::*;
use crate::on_both_databases;

const SECRET: &str = "test-webhook-secret";

fn sign(secret: &str, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(body);
    BASE64.encode(mac.finalize().into_bytes())
}

async fn post(app: &TestApp, topic: &str, id: &str, body: &[u8], signature: Option<&str>) -> reqwest::Response {
    post_from("mock-store.myshopify.com", app, topic, id, body, signature).await
}

async fn post_from(
    shop: &str,
    app: &TestApp,
    topic: &str,
    id: &str,
    body: &[u8],
    signature: Option<&str>,
) -> reqwest::Response {
    let mut request = app
        .http
        .post(app.url("/v1/webhooks/shopify"))
        .header("X-Shopify-Topic", topic)
        .header("X-Shopify-Webhook-Id", id)
        .header("X-Shopify-Shop-Domain", shop)
        .header("Content-Type", "application/json")
        .body(body.to_vec());
    if let Some(signature) = signature {
        request = request.header("X-Shopify-Hmac-Sha256", signature);
    }
    request.send().await.expect("webhook request")
}

async fn post_signed(app: &TestApp, topic: &str, id: &str, body: &[u8]) -> reqwest::Response {
    post(app, topic, id, body, Some(&sign(SECRET, body))).await
}

async fn event_log(app: &TestApp) -> Vec<Value> {
    let log: Value = app.admin_get("/v1/admin/webhooks").await.json().await.unwrap();
    log["events"].as_array().cloned().unwrap_or_default()
}

/// Waits (bounded) until the event has been processed, and returns its log entry.
async fn processed(app: &TestApp, webhook_id: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let event = event_log(app).await.into_iter().find(|e| e["webhook_id"] == webhook_id);
        if let Some(event) = event.filter(|e| e["status"] != "received") {
            return event;
        }
        assert!(Instant::now() < deadline, "webhook {webhook_id} was not processed in time");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn app_with_secret(backend: Backend) -> TestApp {
    spawn_app_with(backend, &[("SHOPIFY_WEBHOOK_SECRET", SECRET)]).await
}

on_both_databases!(shopifys_hmac_test_vector_verifies_and_its_negative_cases_are_refused, hmac_vector);
async fn hmac_vector(backend: Backend) {
    let Some(vector) = read("shopify/webhook_hmac_vector.json") else {
        return;
    };
    let vector: Value = serde_json::from_slice(&vector).unwrap();
    let secret = vector["secret"].as_str().unwrap();
    let app = spawn_app_with(backend, &[("SHOPIFY_WEBHOOK_SECRET", secret)]).await;
    let body = vector["body_utf8"].as_str().unwrap().as_bytes();
    let expected = vector["expected_header_value"].as_str().unwrap();

    let ok = post(&app, "orders/updated", "vector-1", body, Some(expected)).await;
    assert_eq!(ok.status(), 200);
    for (i, case) in vector["negative_cases_from_same_test"].as_array().unwrap().iter().enumerate() {
        let body = case["body_utf8"].as_str().unwrap().as_bytes();
        let response = post(&app, "orders/updated", &format!("neg-{i}"), body, case["header"].as_str()).await;
        assert_eq!(response.status(), 401, "negative case {case}");
        let error: Value = response.json().await.unwrap();
        assert_eq!(error["error"]["code"], "unauthorized");
    }
    assert_eq!(event_log(&app).await.len(), 1, "refused webhooks are not stored");
}

on_both_databases!(a_signed_order_webhook_is_stored_processed_and_logged_with_a_correlation_id, order_webhook);
async fn order_webhook(backend: Backend) {
    let Some(body) = read("shopify/webhooks/Order.json") else {
        return;
    };
    let app = app_with_secret(backend).await;

    let response = post_signed(&app, "orders/updated", "wh-order-1", &body).await;
    assert_eq!(response.status(), 200);
    let ack: Value = response.json().await.unwrap();
    assert_eq!(ack["status"], "stored");

    let event = processed(&app, "wh-order-1").await;
    assert_eq!(event["status"], "processed");
    assert_eq!(event["topic"], "orders/updated");
    assert_eq!(event["shop"], "mock-store.myshopify.com");
    // The exact id from the gid, not the rounded number in `id`.
    assert_eq!(event["resource"], "order:820982911946154508");
    assert_eq!(event["correlation_id"], ack["correlation_id"]);
    assert!(event.get("body").is_none(), "the operator log holds no customer data: {event}");
}

on_both_databases!(a_redelivered_webhook_is_acknowledged_and_changes_nothing, redelivery);
async fn redelivery(backend: Backend) {
    let Some(body) = read("shopify/webhooks/Order.json") else {
        return;
    };
    let app = app_with_secret(backend).await;
    assert_eq!(post_signed(&app, "orders/create", "wh-dup", &body).await.status(), 200);
    processed(&app, "wh-dup").await;

    let again = post_signed(&app, "orders/create", "wh-dup", &body).await;
    assert_eq!(again.status(), 200);
    assert_eq!(again.json::<Value>().await.unwrap()["status"], "duplicate");
    assert_eq!(event_log(&app).await.len(), 1);
}

on_both_databases!(a_forged_or_unsigned_webhook_is_refused_and_not_stored, forged);
async fn forged(backend: Backend) {
    let Some(body) = read("shopify/webhooks/Order.json") else {
        return;
    };
    let app = app_with_secret(backend).await;
    let forged = sign("someone-elses-secret", &body);
    assert_eq!(post(&app, "orders/updated", "f1", &body, Some(&forged)).await.status(), 401);
    let mut tampered = body.clone();
    tampered.extend_from_slice(b" ");
    assert_eq!(post(&app, "orders/updated", "f2", &tampered, Some(&sign(SECRET, &body))).await.status(), 401);
    assert_eq!(post(&app, "orders/updated", "f3", &body, None).await.status(), 401);
    assert!(event_log(&app).await.is_empty());

    // The service keeps serving: a genuine webhook right after is accepted.
    assert_eq!(post_signed(&app, "orders/updated", "g1", &body).await.status(), 200);
}

#[tokio::test]
async fn a_signed_webhook_for_another_shop_is_refused_when_the_shop_is_known() {
    let shopify = MockShopify::start().await;
    let app = shopify.spawn_app(&[("SHOPIFY_WEBHOOK_SECRET", SECRET)]).await;
    let body = br#"{"id": 820982911946154508}"#;
    let signature = sign(SECRET, body);
    let other = post_from("other-store.myshopify.com", &app, "orders/updated", "s1", body, Some(&signature)).await;
    assert_eq!(other.status(), 401);
    assert!(event_log(&app).await.is_empty(), "another shop's webhook was stored");
    let ours = post_from("Mock-Store.myshopify.com", &app, "orders/updated", "s2", body, Some(&signature)).await;
    assert_eq!(ours.status(), 200);
    assert_eq!(event_log(&app).await.len(), 1);
}

#[tokio::test]
async fn without_a_webhook_secret_every_webhook_is_refused() {
    let app = spawn_app(Backend::Sqlite).await;
    let body = br#"{"id": 1}"#;
    assert_eq!(post(&app, "orders/updated", "n1", body, Some(&sign("", body))).await.status(), 401);
}

on_both_databases!(an_update_older_than_the_one_already_applied_is_ignored, out_of_order);
async fn out_of_order(backend: Backend) {
    let Some(body) = read("shopify/webhooks/Order.json") else {
        return;
    };
    let app = app_with_secret(backend).await;
    let mut newer: Value = serde_json::from_slice(&body).unwrap();
    newer["updated_at"] = json!("2022-01-02T09:00:00-05:00");
    let newer = serde_json::to_vec(&newer).unwrap();

    assert_eq!(post_signed(&app, "orders/updated", "late-2", &newer).await.status(), 200);
    assert_eq!(processed(&app, "late-2").await["status"], "processed");
    // Shopify delivers the older update last.
    assert_eq!(post_signed(&app, "orders/updated", "late-1", &body).await.status(), 200);
    let stale = processed(&app, "late-1").await;
    assert_eq!(stale["status"], "stale");
    assert_eq!(stale["resource"], "order:820982911946154508");
}

on_both_databases!(a_signed_body_that_is_not_json_is_rejected_as_a_bad_request, not_json);
async fn not_json(backend: Backend) {
    let app = app_with_secret(backend).await;
    let body = b"{\"id\": 1, oops";
    let response = post_signed(&app, "orders/updated", "bad-json", body).await;
    assert_eq!(response.status(), 400);
    let error: Value = response.json().await.unwrap();
    assert_eq!(error["error"]["code"], "bad_request");
    assert!(event_log(&app).await.is_empty());
}

on_both_databases!(an_unknown_topic_is_stored_and_marked_ignored, unknown_topic);
async fn unknown_topic(backend: Backend) {
    let app = app_with_secret(backend).await;
    let body = br#"{"id": 690933842, "name": "Super Shop"}"#;
    assert_eq!(post_signed(&app, "shop/update", "u1", body).await.status(), 200);
    let event = processed(&app, "u1").await;
    assert_eq!(event["status"], "ignored");
    assert_eq!(event["detail"], "topic not handled");
}

on_both_databases!(fulfillment_refund_and_customer_samples_are_processed_with_exact_ids, other_topics);
async fn other_topics(backend: Backend) {
    let app = app_with_secret(backend).await;
    let cases = [
        ("Fulfillment.json", "fulfillments/create", "fulfillment:123456"),
        ("Refund.json", "refunds/create", "refund:890088186047892319"),
        ("CustomersCreate.json", "customers/create", "customer:706405506930370084"),
    ];
    for (file, topic, resource) in cases {
        let Some(body) = read(&format!("shopify/webhooks/{file}")) else {
            return;
        };
        assert_eq!(post_signed(&app, topic, file, &body).await.status(), 200);
        let event = processed(&app, file).await;
        assert_eq!((event["status"].as_str(), event["resource"].as_str()), (Some("processed"), Some(resource)));
    }
}

on_both_databases!(webhooks_stored_before_a_stop_are_processed_at_the_next_start, resumed);
async fn resumed(backend: Backend) {
    let Some(body) = read("shopify/webhooks/Order.json") else {
        return;
    };
    // First life: the event is stored, then the service stops before processing it.
    let first = app_with_secret(backend).await;
    let database_url = first.database_url.clone();
    let db = storefront_assistant::db::Db::connect(&database_url).await.unwrap();
    let event = storefront_assistant::db::NewWebhook {
        webhook_id: "before-stop".into(),
        topic: "orders/updated".into(),
        shop: None,
        correlation_id: "c-1".into(),
        body: String::from_utf8(body.clone()).unwrap(),
    };
    assert!(db.insert_webhook(&event).await.unwrap());
    first.shutdown.cancel();

    let second =
        spawn_app_with(backend, &[("SHOPIFY_WEBHOOK_SECRET", SECRET), ("DATABASE_URL", database_url.as_str())]).await;
    assert_eq!(processed(&second, "before-stop").await["status"], "processed");
}

#[tokio::test]
async fn a_webhook_makes_the_next_answer_fresh_instead_of_cached() {
    let Some(body) = read("shopify/webhooks/Order.json") else {
        return;
    };
    // The sample order #9999 belongs to customer 115310627314723954.
    let shopify = MockShopify::start().await;
    let unshipped = mock::order("#9999", "820982911946154508", "115310627314723954", "jon@example.com", false);
    shopify.add_order(unshipped);
    let app = shopify.spawn_app(&[("SHOPIFY_WEBHOOK_SECRET", SECRET)]).await;
    let (mut chat, _) = app.customer("115310627314723954").await;

    let before = chat.ask("m1", "Where is order #9999?").await;
    assert_eq!(only(&before, "message")["cards"][0]["fulfillment_status"], "unfulfilled");

    // It ships. Until Shopify says so, the brief cache answers.
    shopify.update_order(mock::order("#9999", "820982911946154508", "115310627314723954", "jon@example.com", true));
    let cached = chat.ask("m2", "Where is order #9999?").await;
    assert_eq!(only(&cached, "message")["cards"][0]["fulfillment_status"], "unfulfilled");
    assert_eq!(shopify.count("OrderByName"), 1);

    assert_eq!(post_signed(&app, "orders/fulfilled", "fresh-1", &body).await.status(), 200);
    processed(&app, "fresh-1").await;
    let after = chat.ask("m3", "Where is order #9999?").await;
    let reply = only(&after, "message");
    assert_eq!(reply["cards"][0]["fulfillment_status"], "in_transit");
    assert!(reply["text"].as_str().unwrap().contains("1Z827WK74630"), "{reply}");
    assert_eq!(shopify.count("OrderByName"), 2);
}

#[tokio::test]
async fn the_event_log_pages_through_events_that_share_a_millisecond() {
    use sqlx::Connection;
    let app = spawn_app(Backend::Sqlite).await;
    let mut conn = sqlx::SqliteConnection::connect(&app.database_url).await.unwrap();
    for i in 0..25 {
        sqlx::query(
            "INSERT INTO shopify_webhooks (webhook_id, topic, correlation_id, body, status, received_at)
             VALUES ($1, 'orders/updated', 'c', '{}', 'processed', 1700000000000)",
        )
        .bind(format!("storm-{i:02}"))
        .execute(&mut conn)
        .await
        .unwrap();
    }
    let seen = app.page_through("/v1/admin/webhooks", "events", "webhook_id", 7).await;
    let mut unique = seen.clone();
    unique.sort();
    unique.dedup();
    assert_eq!((seen.len(), unique.len()), (25, 25), "every event once: {seen:?}");
    assert_eq!(app.admin_get("/v1/admin/webhooks?before=yesterday").await.status(), 400);
}

on_both_databases!(a_burst_with_redeliveries_is_stored_once_each_and_the_newest_update_wins, burst);
async fn burst(backend: Backend) {
    let Some(body) = read("shopify/webhooks/Order.json") else {
        return;
    };
    let app = app_with_secret(backend).await;
    // Thirty updates of one order, each delivered twice at the same moment,
    // so stores and redeliveries share commits.
    let updates: Vec<(String, Vec<u8>)> = (0..30)
        .map(|i| {
            let mut update: Value = serde_json::from_slice(&body).unwrap();
            update["updated_at"] = json!(format!("2022-01-02T09:{i:02}:00-05:00"));
            (format!("burst-{i}"), serde_json::to_vec(&update).unwrap())
        })
        .collect();
    let app = &app;
    let sends = updates
        .iter()
        .flat_map(|(id, body)| [(id, body), (id, body)])
        .map(|(id, body)| async move { post_signed(app, "orders/updated", id, body).await.json::<Value>().await });
    let answers = futures_util::future::join_all(sends).await;
    let count = |status: &str| answers.iter().filter(|a| a.as_ref().unwrap()["status"] == status).count();
    assert_eq!((count("stored"), count("duplicate")), (30, 30), "{answers:?}");

    let newest = processed(app, "burst-29").await;
    assert_eq!(newest["status"], "processed", "nothing is newer than the last update: {newest}");
    for (id, _) in &updates {
        let status = processed(app, id).await["status"].clone();
        assert!(status == "processed" || status == "stale", "{id}: {status}");
    }
    assert_eq!(event_log(app).await.len(), 30);
}
