//! The assistant on a (mock) Shopify store, over real HTTP: order lookups,
//! scope, throttling, retries and a store that does not answer.

use std::time::Duration;

use serde_json::{Value, json};

use super::mock::{self, MockShopify, Next};
use crate::helpers::*;

/// Ava (customer 5001) owns #1001; Liam (5002) owns #1002.
async fn store_and_app(extra: &[(&str, &str)]) -> (MockShopify, TestApp) {
    let shopify = MockShopify::start().await;
    shopify.add_order(mock::order("#1001", "7001001", "5001", "ava@example.com", true));
    shopify.add_order(mock::order("#1002", "7001002", "5002", "liam@example.com", true));
    shopify.add_product(mock::product(
        "Ridgeline Hiking Boots",
        "ridgeline-hiking-boots",
        "149.00",
        &[("9", true), ("10", false)],
    ));
    let app = shopify.spawn_app(extra).await;
    (shopify, app)
}

fn text(reply: &Value) -> &str {
    reply["text"].as_str().unwrap_or_default()
}

#[tokio::test]
async fn a_verified_customer_gets_their_order_from_live_shopify_data() {
    let (shopify, app) = store_and_app(&[]).await;
    let (mut chat, _) = app.customer("5001").await;

    let frames = chat.ask("m1", "Where is my order #1001?").await;
    let reply = only(&frames, "message");
    let card = &reply["cards"][0];
    assert_eq!(card["order_number"], "#1001");
    assert_eq!(card["fulfillment_status"], "in_transit");
    assert_eq!(
        card["tracking"][0],
        json!({ "company": "UPS", "number": "1Z827WK74630",
        "url": "https://www.ups.com/track?tracknum=1Z827WK74630" })
    );
    assert_eq!(card["total"], "398.00");
    assert_eq!(card["estimated_delivery"], "2030-01-05");
    assert!(text(reply).contains("1Z827WK74630"), "{reply}");

    // "Where's my order?" lists the customer's own orders.
    let frames = chat.ask("m2", "Where's my order?").await;
    assert_eq!(only(&frames, "message")["cards"][0]["order_number"], "#1001");
    assert_eq!(shopify.count("CustomerOrders"), 1);
    shopify.assert_no_violations();
}

#[tokio::test]
async fn a_cancelled_order_says_why_and_what_was_refunded() {
    let (shopify, app) = store_and_app(&[]).await;
    let mut order = mock::order("#1010", "7001010", "5001", "ava@example.com", false);
    order["cancelledAt"] = json!("2029-12-31T09:00:00Z");
    order["cancelReason"] = json!("INVENTORY");
    order["displayFinancialStatus"] = json!("PARTIALLY_REFUNDED");
    order["totalRefundedSet"]["shopMoney"]["amount"] = json!("199.0");
    shopify.add_order(order);
    let (mut chat, _) = app.customer("5001").await;

    let frames = chat.ask("m1", "What happened to order #1010?").await;
    let reply = only(&frames, "message");
    assert_eq!(reply["cards"][0]["status"], "cancelled");
    assert!(text(reply).contains("cancelled because an item was out of stock"), "{reply}");
    assert!(text(reply).contains("A refund of 199.00 USD"), "{reply}");
}

#[tokio::test]
async fn another_customers_order_is_answered_exactly_like_one_that_does_not_exist() {
    let (shopify, app) = store_and_app(&[]).await;
    let (mut chat, _) = app.customer("5001").await;

    let theirs = chat.ask("m1", "Where is order #1002?").await;
    let missing = chat.ask("m2", "Where is order #1003?").await;
    let (theirs, missing) = (only(&theirs, "message"), only(&missing, "message"));
    assert_eq!(text(theirs).replace("#1002", "#N"), text(missing).replace("#1003", "#N"));
    assert!(theirs["cards"].as_array().unwrap().is_empty(), "{theirs}");
    assert!(!theirs.to_string().contains("liam"), "{theirs}");
    // The order was fetched and then refused by scope, not skipped.
    assert_eq!(shopify.count("OrderByName"), 2);
    shopify.assert_no_violations();
}

#[tokio::test]
async fn a_guest_verifies_against_the_email_on_the_shopify_order() {
    let (shopify, app) = store_and_app(&[]).await;
    let (mut chat, _) = app.guest().await;

    chat.send(json!({ "type": "verify", "order_number": "#1001", "email": "liam@example.com" })).await;
    assert_eq!(chat.recv().await["code"], "verification_failed");
    chat.send(json!({ "type": "verify", "order_number": "#1001", "email": "Ava@Example.com" })).await;
    assert_eq!(chat.recv().await["type"], "verified");

    let frames = chat.ask("m1", "where is my order?").await;
    assert_eq!(only(&frames, "message")["cards"][0]["order_number"], "#1001");
    let frames = chat.ask("m2", "and order #1002?").await;
    assert!(only(&frames, "message")["cards"].as_array().unwrap().is_empty());
    shopify.assert_no_violations();
}

#[tokio::test]
async fn a_throttled_query_waits_for_the_cost_bucket_and_then_answers() {
    let (shopify, app) = store_and_app(&[]).await;
    shopify.then(Next::Throttled);
    let (mut chat, _) = app.customer("5001").await;

    let frames = chat.ask("m1", "Where is my order #1001?").await;
    assert_eq!(only(&frames, "message")["cards"][0]["order_number"], "#1001");
    assert_eq!(shopify.count("OrderByName"), 2, "one throttled attempt, one answered");
    shopify.assert_no_violations();
}

#[tokio::test]
async fn a_burst_of_questions_queues_for_the_cost_bucket_instead_of_being_throttled() {
    let (shopify, app) = store_and_app(&[]).await;
    // 50 points, 100 a second back, 12 a query: nine queries need more than the bucket holds.
    shopify.limit(50.0, 100.0);
    let (mut first, _) = app.guest().await;
    let frames = first.ask("m0", "Do you have the Ridgeline boots?").await;
    assert_eq!(only(&frames, "message")["cards"][0]["title"], "Ridgeline Hiking Boots");

    let mut chats = Vec::new();
    for _ in 0..8 {
        chats.push(app.guest().await.0);
    }
    let burst = chats
        .iter_mut()
        .enumerate()
        .map(|(i, chat)| async move { chat.ask("m1", &format!("Ridgeline boots in size {}?", i + 10)).await });
    for frames in futures_util::future::join_all(burst).await {
        assert_eq!(only(&frames, "message")["cards"][0]["title"], "Ridgeline Hiking Boots");
    }
    assert_eq!(shopify.count("ProductSearch"), 9);
    assert_eq!(shopify.throttled(), 0, "the client waited for the bucket instead of overdrawing it");
}

#[tokio::test]
async fn shopify_server_errors_are_retried_until_it_answers() {
    let (shopify, app) = store_and_app(&[]).await;
    shopify.then(Next::Status(502)).then(Next::Status(503));
    let (mut chat, _) = app.customer("5001").await;

    let frames = chat.ask("m1", "Where is my order #1001?").await;
    assert_eq!(only(&frames, "message")["cards"][0]["order_number"], "#1001");
    assert_eq!(shopify.count("OrderByName"), 3);
}

#[tokio::test]
async fn when_shopify_does_not_answer_the_customer_is_told_so_and_offered_a_person() {
    let (shopify, app) = store_and_app(&[("SHOPIFY_TIMEOUT_MS", "150")]).await;
    for _ in 0..3 {
        shopify.then(Next::Stall(Duration::from_secs(2)));
    }
    let (mut chat, _) = app.customer("5001").await;

    let frames = chat.ask("m1", "Where is my order #1001?").await;
    let reply = only(&frames, "message");
    assert!(text(reply).contains("can't reach our store"), "{reply}");
    assert!(text(reply).contains("person"), "a person is offered: {reply}");
    assert!(reply["cards"].as_array().unwrap().is_empty(), "nothing invented: {reply}");
    assert!(!reply.to_string().contains("1Z827"), "{reply}");
    assert_eq!(shopify.count("OrderByName"), 3, "every attempt timed out");

    // Shopify is back: the next question is answered.
    let frames = chat.ask("m2", "Where is my order #1001?").await;
    assert_eq!(only(&frames, "message")["cards"][0]["order_number"], "#1001");
}

#[tokio::test]
async fn product_questions_are_answered_from_the_shopify_catalog() {
    let (shopify, app) = store_and_app(&[]).await;
    let (mut chat, _) = app.guest().await;

    let frames = chat.ask("m1", "Do you have the Ridgeline boots?").await;
    let reply = only(&frames, "message");
    let card = &reply["cards"][0];
    assert_eq!(card["kind"], "product");
    assert_eq!(card["title"], "Ridgeline Hiking Boots");
    assert_eq!(card["price"], "149.00");
    assert_eq!(card["url"], "https://mock-store.example/products/ridgeline-hiking-boots");
    assert!(shopify.count("ProductSearch") >= 1);
    shopify.assert_no_violations();
}

#[tokio::test]
async fn readiness_asks_shopify() {
    let (shopify, app) = store_and_app(&[]).await;
    let response = app.http.get(app.url("/readyz")).send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(shopify.count("Shop"), 1);
}

#[tokio::test]
async fn readiness_probes_close_together_ask_shopify_once() {
    let (shopify, app) = store_and_app(&[]).await;
    let before = shopify.count("Shop");
    for _ in 0..5 {
        let ready = app.http.get(app.url("/readyz")).send().await.unwrap();
        assert_eq!(ready.status(), 200);
    }
    assert_eq!(shopify.count("Shop") - before, 1, "the store's readiness is reused for a few seconds");
}
