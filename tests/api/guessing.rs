//! Guessing orders: failed verifications count per connection, order
//! number, email and client address, within a budget for the whole service,
//! so neither new sockets nor new addresses give fresh guesses.

use serde_json::{Value, json};

use crate::helpers::*;

async fn verify_from(app: &TestApp, ip: [u8; 4], order_number: &str, email: &str) -> Value {
    let mut chat = app.connect_from(ip).await;
    chat.hello(json!({})).await;
    chat.send(json!({ "type": "verify", "order_number": order_number, "email": email })).await;
    chat.recv().await
}

#[tokio::test]
async fn five_failures_at_one_email_lock_it_whatever_the_socket_address_or_order() {
    let app = spawn_app(Backend::Sqlite).await;
    for i in 0..5u8 {
        let failed = verify_from(&app, [127, 0, 0, 10 + i], &format!("#20{i:02}"), "Ava@example.com").await;
        assert_eq!(failed["code"], "verification_failed", "{failed}");
    }
    let locked = verify_from(&app, [127, 0, 0, 20], "#1001", "ava@example.com").await;
    assert_eq!(locked["code"], "verification_locked", "{locked}");
}

#[tokio::test]
async fn one_address_gets_five_guesses_however_many_sockets_it_opens() {
    let app = spawn_app(Backend::Sqlite).await;
    for i in 0..5 {
        let failed = verify_from(&app, [127, 0, 0, 2], &format!("#20{i:02}"), &format!("guess{i}@example.com")).await;
        assert_eq!(failed["code"], "verification_failed", "{failed}");
    }
    let locked = verify_from(&app, [127, 0, 0, 2], "#1001", "ava@example.com").await;
    assert_eq!(locked["code"], "verification_locked", "{locked}");
    // Another address is not held back by it.
    let verified = verify_from(&app, [127, 0, 0, 3], "#1001", "ava@example.com").await;
    assert_eq!(verified["type"], "verified", "{verified}");
}

#[tokio::test]
async fn past_the_global_failure_budget_verification_is_locked_for_everyone() {
    let app = spawn_app_with(Backend::Sqlite, &[("VERIFY_FAILURES_PER_MINUTE", "3")]).await;
    for i in 0..3u8 {
        let failed =
            verify_from(&app, [127, 0, 0, 30 + i], &format!("#20{i:02}"), &format!("guess{i}@example.com")).await;
        assert_eq!(failed["code"], "verification_failed", "{failed}");
    }
    let locked = verify_from(&app, [127, 0, 0, 40], "#1001", "ava@example.com").await;
    assert_eq!(locked["code"], "verification_locked", "{locked}");
}

#[tokio::test]
async fn a_full_failed_attempts_table_refuses_new_verifications_instead_of_growing() {
    // One failure records four keys: its connection, order, email and address.
    let app = spawn_app_with(Backend::Sqlite, &[("VERIFY_MAX_TRACKED_KEYS", "4")]).await;
    let failed = verify_from(&app, [127, 0, 0, 50], "#2000", "guess@example.com").await;
    assert_eq!(failed["code"], "verification_failed", "{failed}");
    let refused = verify_from(&app, [127, 0, 0, 51], "#1001", "ava@example.com").await;
    assert_eq!(refused["code"], "verification_locked", "{refused}");
}
