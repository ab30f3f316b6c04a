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
