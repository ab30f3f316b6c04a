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

/// `count` requests to `path` from `client` (through the trusted local proxy).
async fn statuses(
    app: &TestApp,
    method: reqwest::Method,
    path: &str,
    client: &str,
    count: usize,
) -> Vec<reqwest::Response> {
    let mut responses = Vec::new();
    for _ in 0..count {
        let request = app.http.request(method.clone(), app.url(path)).header("X-Forwarded-For", client);
        responses.push(request.send().await.unwrap());
    }
    responses
}

#[tokio::test]
async fn public_routes_are_rate_limited_per_client_with_retry_after() {
    let settings = [
        ("TRUSTED_PROXIES", "127.0.0.1/32"),
        ("HTTP_REQUESTS_PER_MINUTE_PER_ADDRESS", "2"),
        ("WEBHOOK_REQUESTS_PER_MINUTE_PER_ADDRESS", "2"),
    ];
    let app = spawn_app_with(Backend::Sqlite, &settings).await;
    let routes = [
        (reqwest::Method::GET, "/readyz"),
        (reqwest::Method::GET, "/v1/identity/app-proxy"),
        (reqwest::Method::POST, "/v1/webhooks/shopify"),
        (reqwest::Method::POST, "/v1/webhooks/intercom"),
    ];
    // A client per route: both webhook routes share one bucket.
    for (i, (method, path)) in routes.into_iter().enumerate() {
        let client = format!("198.51.100.{}", i + 1);
        let responses = statuses(&app, method.clone(), path, &client, 3).await;
        let codes: Vec<u16> = responses.iter().map(|r| r.status().as_u16()).collect();
        assert!(codes[..2].iter().all(|c| *c != 429) && codes[2] == 429, "{path}: {codes:?}");
        let retry_after = responses[2].headers()["retry-after"].to_str().unwrap().parse::<u64>().unwrap();
        assert!(retry_after >= 1, "{path}: Retry-After {retry_after}");
        let other = statuses(&app, method, path, "203.0.113.1", 1).await;
        assert_ne!(other[0].status(), 429, "{path}: another client has its own budget");
    }
    let health = statuses(&app, reqwest::Method::GET, "/healthz", "198.51.100.1", 5).await;
    assert!(health.iter().all(|r| r.status() == 200), "only the public routes are limited");
}
