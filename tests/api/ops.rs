//! Health, readiness, metrics and the pages a browser loads.

use serde_json::Value;

use crate::helpers::*;

#[tokio::test]
async fn health_readiness_and_metrics_answer() {
    let app = spawn_app(Backend::Sqlite).await;
    assert_eq!(app.http.get(app.url("/healthz")).send().await.unwrap().status(), 200);
    let ready = app.http.get(app.url("/readyz")).send().await.unwrap();
    assert_eq!(ready.status(), 200);
    assert_eq!(ready.json::<Value>().await.unwrap()["status"], "ready");

    let (mut chat, _) = app.guest().await;
    chat.ask("m1", "Do you ship to Canada?").await;
    let metrics = app.http.get(app.url("/metrics")).send().await.unwrap().text().await.unwrap();
    assert!(metrics.contains(r#"assistant_turns_total{intent="policy_question",outcome="answered"} 1"#), "{metrics}");
    assert!(metrics.contains("assistant_chat_connections 1"), "{metrics}");
}

#[tokio::test]
async fn the_demo_page_and_the_widget_are_served() {
    let app = spawn_app(Backend::Sqlite).await;
    let page = app.http.get(app.url("/")).send().await.unwrap().text().await.unwrap();
    assert!(page.contains("/widget.js"));
    let widget = app.http.get(app.url("/widget.js")).send().await.unwrap();
    assert!(widget.headers()["content-type"].to_str().unwrap().starts_with("text/javascript"));
    assert!(widget.text().await.unwrap().contains("/v1/chat"));
}

#[tokio::test]
async fn graceful_shutdown_closes_sockets_after_their_turns() {
    let app = spawn_app(Backend::Sqlite).await;
    let (mut chat, _) = app.guest().await;
    let frames = chat.ask("m1", "hello").await;
    assert_eq!(only(&frames, "message")["reply_to"], "m1");
    app.shutdown.cancel();
    assert!(chat.closed().await);
}
