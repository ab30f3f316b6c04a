//! The operator's API: transcripts behind the admin token.

use serde_json::Value;

use crate::helpers::*;
use crate::on_both_databases;

#[tokio::test]
async fn the_admin_api_refuses_requests_without_the_token() {
    let app = spawn_app(Backend::Sqlite).await;
    let url = app.url("/v1/admin/conversations");
    let missing = app.http.get(&url).send().await.unwrap();
    assert_eq!(missing.status(), 401);
    let body: Value = missing.json().await.unwrap();
    assert_eq!(body["error"]["code"], "unauthorized");
    let wrong = app.http.get(&url).bearer_auth("test-admin-token-0123456780").send().await.unwrap();
    assert_eq!(wrong.status(), 401);
    assert_eq!(app.admin_get("/v1/admin/conversations").await.status(), 200);
    assert_eq!(app.admin_get("/v1/admin/conversations/no-such-id").await.status(), 404);
}

#[tokio::test]
async fn without_an_admin_token_the_admin_api_is_off() {
    let app = spawn_app_with(Backend::Sqlite, &[("ADMIN_TOKEN", "")]).await;
    let response = app.admin_get("/v1/admin/conversations").await;
    assert_eq!(response.status(), 404);
}

on_both_databases!(transcripts_show_intents_tools_and_escalations, transcripts);
async fn transcripts(backend: Backend) {
    let app = spawn_app(backend).await;
    let (mut chat, welcome) = app.customer("7003").await;
    chat.ask("m1", "where is my order?").await;
    chat.ask("m2", "my daypack arrived damaged").await;

    let list: Value = app.admin_get("/v1/admin/conversations").await.json().await.unwrap();
    let summary = &list["conversations"][0];
    assert_eq!(summary["session_id"], welcome["session_id"]);
    assert_eq!(summary["identity_status"], "verified");
    assert_eq!(summary["message_count"], 4, "{summary}");
    let id = summary["id"].as_str().unwrap();

    let detail: Value = app.admin_get(&format!("/v1/admin/conversations/{id}")).await.json().await.unwrap();
    let messages = detail["messages"].as_array().unwrap();
    let roles: Vec<&str> = messages.iter().map(|m| m["role"].as_str().unwrap()).collect();
    assert_eq!(roles, ["customer", "assistant", "customer", "assistant"]);
    assert_eq!(messages[1]["intent"], "order_status");
    assert_eq!(messages[1]["tools"][0], "store.orders");
    assert_eq!(messages[1]["outcome"], "answered");
    assert_eq!(messages[3]["outcome"], "escalated");
    assert_eq!(detail["escalations"][0]["reason"], "action_required");
}

on_both_databases!(analytics_show_resolution_escalations_unanswered_questions_and_csat, analytics);
async fn analytics(backend: Backend) {
    use serde_json::json;
    let app = spawn_app(backend).await;

    let (mut happy, _) = app.guest().await;
    let frames = happy.ask("a1", "Do you ship to Canada?").await;
    let reply_id = only(&frames, "message")["id"].clone();
    happy.send(json!({ "type": "feedback", "message_id": reply_id, "rating": "up" })).await;
    happy.send(json!({ "type": "csat", "score": 5 })).await;
    // Frames are handled in order: once this turn is answered, feedback and CSAT are stored.
    happy.ask("a2", "thanks").await;

    let (mut stuck, _) = app.guest().await;
    stuck.ask("b1", "What is the airspeed velocity of an unladen swallow?").await;
    stuck.ask("b2", "Who won the football match yesterday?").await;

    let (mut impatient, _) = app.guest().await;
    impatient.ask("c1", "let me talk to a human").await;

    let report: Value = app.admin_get("/v1/admin/analytics?days=7").await.json().await.unwrap();
    assert_eq!(report["conversations"], 3, "{report:#}");
    assert_eq!(report["resolved"], 1);
    assert_eq!(report["escalated"], 2);
    let reasons = report["escalations_by_reason"].as_array().unwrap();
    for reason in ["repeated_failure", "human_requested"] {
        assert!(reasons.iter().any(|r| r["key"] == reason && r["count"] == 1), "{reason}: {reasons:?}");
    }
    let unanswered: Vec<&str> =
        report["unanswered_questions"].as_array().unwrap().iter().map(|q| q["question"].as_str().unwrap()).collect();
    assert!(unanswered.contains(&"What is the airspeed velocity of an unladen swallow?"), "{unanswered:?}");
    assert_eq!(report["csat_average"], 5.0);
    assert_eq!(report["csat_responses"], 1);
    assert_eq!(report["feedback"][0]["key"], "up");
}

on_both_databases!(conversations_page_without_gaps_or_repeats_and_filter_by_status, paging);
async fn paging(backend: Backend) {
    let app = spawn_app(backend).await;
    for i in 0..5 {
        let (mut chat, _) = app.guest().await;
        let text = if i % 2 == 0 { "hello" } else { "I want to talk to a person" };
        chat.ask("m1", text).await;
    }
    let seen = app.page_through("/v1/admin/conversations", "conversations", "id", 2).await;
    let mut unique = seen.clone();
    unique.sort();
    unique.dedup();
    assert_eq!((seen.len(), unique.len()), (5, 5), "{seen:?}");

    let escalated: Value = app.admin_get("/v1/admin/conversations?status=escalated").await.json().await.unwrap();
    assert_eq!(escalated["conversations"].as_array().unwrap().len(), 2);
    assert_eq!(app.admin_get("/v1/admin/conversations?before=garbage").await.status(), 400);
}
