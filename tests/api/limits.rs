//! Abuse limits: message rates, the connection cap, idle sockets.

use serde_json::json;
use tokio_tungstenite::tungstenite;

use crate::helpers::*;

#[tokio::test]
async fn a_connection_that_sends_too_fast_is_rate_limited_and_stays_usable() {
    let app = spawn_app_with(Backend::Sqlite, &[("CHAT_MESSAGES_PER_MINUTE", "3")]).await;
    let (mut chat, _) = app.guest().await; // hello is the first of the three
    chat.ask("m1", "hi").await;
    chat.ask("m2", "hello").await;
    chat.send(json!({ "type": "message", "id": "m3", "text": "hello again" })).await;
    let limited = chat.recv().await;
    assert_eq!(limited["code"], "rate_limited");
    // Pings are not counted: the socket is still alive and answering.
    chat.send(json!({ "type": "ping" })).await;
    assert_eq!(chat.recv().await["type"], "pong");
}

#[tokio::test]
async fn one_address_cannot_spread_a_flood_over_many_connections() {
    let app = spawn_app_with(Backend::Sqlite, &[("CHAT_MESSAGES_PER_MINUTE_PER_IP", "4")]).await;
    let (mut first, _) = app.guest().await;
    let (mut second, _) = app.guest().await;
    first.ask("a", "hi").await;
    second.ask("b", "hi").await;
    first.send(json!({ "type": "message", "id": "c", "text": "hi" })).await;
    assert_eq!(first.recv().await["code"], "rate_limited");
    second.send(json!({ "type": "message", "id": "d", "text": "hi" })).await;
    assert_eq!(second.recv().await["code"], "rate_limited");
}

#[tokio::test]
async fn connections_beyond_the_cap_are_refused_until_one_closes() {
    let app = spawn_app_with(Backend::Sqlite, &[("CHAT_MAX_CONNECTIONS", "2")]).await;
    let (first, _) = app.guest().await;
    let (_second, _) = app.guest().await;
    let url = format!("ws://{}/v1/chat", app.addr);
    match tokio_tungstenite::connect_async(&url).await {
        Err(tungstenite::Error::Http(response)) => assert_eq!(response.status(), 503),
        other => panic!("a third connection was not refused: {:?}", other.map(|_| ())),
    }
    drop(first);
    // The freed place is taken again as soon as the server notices the close.
    let mut reopened = None;
    for _ in 0..200 {
        if let Ok((ws, _)) = tokio_tungstenite::connect_async(&url).await {
            reopened = Some(ws);
            break;
        }
        tokio::task::yield_now().await;
    }
    assert!(reopened.is_some(), "a place frees up when a socket closes");
}

#[tokio::test]
async fn an_idle_socket_is_closed() {
    let app = spawn_app_with(Backend::Sqlite, &[("CHAT_IDLE_TIMEOUT_SECS", "1")]).await;
    let (mut chat, _) = app.guest().await;
    assert!(chat.closed().await);
}

#[tokio::test]
async fn a_socket_that_never_says_hello_is_closed() {
    let app = spawn_app(Backend::Sqlite).await;
    let mut chat = app.connect().await;
    // The server gives up after 10 s with an error, then closes.
    assert!(chat.closed().await);
}

#[tokio::test]
async fn a_frame_above_32_kib_closes_only_its_own_socket() {
    let app = spawn_app(Backend::Sqlite).await;
    let (mut bystander, _) = app.guest().await;
    let (mut chat, _) = app.guest().await;
    let huge = json!({ "type": "message", "id": "big", "text": "a".repeat(40 * 1024) }).to_string();
    chat.send_text(huge).await;
    assert!(chat.closed().await, "a 40 KiB frame was read");
    let frames = bystander.ask("m1", "Do you ship to Canada?").await;
    assert!(frames.iter().any(|f| f["type"] == "message"), "{frames:?}");
}
