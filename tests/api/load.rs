//! The load tool, briefly and at small N, against an app of the harness:
//! proof that it works end to end, never a judgement of speed.

use std::time::Duration;

use storefront_assistant::load::{ChatOptions, Pause, Target, WebhookOptions, run_chat, run_webhooks};

use crate::helpers::{ADMIN_TOKEN, Backend, JWT_SECRET, spawn_app_with};

const WEBHOOK_SECRET: &str = "load-test-webhook-secret";

#[tokio::test]
async fn the_load_tool_holds_sessions_completes_every_turn_and_finds_each_webhook_stored_once() {
    let app = spawn_app_with(
        Backend::Sqlite,
        &[
            ("SHOPIFY_WEBHOOK_SECRET", WEBHOOK_SECRET),
            // One test client is a whole store's customers.
            ("CHAT_MAX_CONNECTIONS_PER_ADDRESS", "1000"),
            ("CHAT_MESSAGES_PER_MINUTE", "100000"),
            ("CHAT_MESSAGES_PER_MINUTE_PER_IP", "100000"),
            ("WEBHOOK_REQUESTS_PER_MINUTE_PER_ADDRESS", "100000"),
        ],
    )
    .await;
    let target = Target {
        base_url: app.url(""),
        identity_jwt_secret: JWT_SECRET.to_owned(),
        webhook_secret: WEBHOOK_SECRET.to_owned(),
        admin_token: ADMIN_TOKEN.to_owned(),
        // The app runs inside the test process: its RSS would be the harness's.
        server_pid: None,
    };
    let questions = concat!(env!("CARGO_MANIFEST_DIR"), "/benches/questions.txt");
    let chat = ChatOptions {
        sessions: 20,
        conversations: 4,
        turns: 3,
        questions: ChatOptions::read_questions(questions.as_ref()).expect("the shipped question file"),
        pause: Pause::FlatOut,
        // One conversation of each kind: a signed-in customer's orders, one
        // that ends by asking for a person, and two of policy questions.
        order_share: 0.25,
        handoff_share: 0.25,
        turn_timeout: Duration::from_secs(15),
    };
    let report = run_chat(&target, &chat).await.expect("the chat load runs");
    println!("{report}");
    assert_eq!(report.errors.total(), 0, "no errors: {}", report.errors);
    assert_eq!(report.sessions_held, 20);
    assert_eq!(report.turns_completed, 12);
    assert_eq!(report.outcomes.total(), 12, "each completed turn has an outcome: {}", report.outcomes);
    assert_eq!(report.outcomes.0.get("handoff"), Some(&1), "the request for a person: {}", report.outcomes);

    let webhooks = WebhookOptions { count: 50, rate: 0.0, concurrency: 8, redelivery_share: 0.2 };
    let report = run_webhooks(&target, &webhooks).await.expect("the webhook load runs");
    println!("{report}");
    assert_eq!(report.errors.total(), 0, "no errors: {}", report.errors);
    assert_eq!(report.accepted, 50);
    assert_eq!(report.distinct_events, 40, "a fifth of the requests were redeliveries");
    assert_eq!(report.stored_responses, 40, "each event was stored by exactly one of its deliveries");
    assert!(report.stored_once.holds(), "every event is in the log exactly once: {:?}", report.stored_once);
}
