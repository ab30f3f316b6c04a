//! Abuse limits: message rates, the connection cap, idle sockets.

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio_tungstenite::{
    MaybeTlsStream, WebSocketStream,
    tungstenite::{self, Message, client::IntoClientRequest},
};

use crate::helpers::*;

type Socket = WebSocketStream<MaybeTlsStream<tokio::net::TcpStream>>;

/// Opens `/v1/chat` with these request headers (`X-Forwarded-For`, `Origin`).
async fn open_with(app: &TestApp, headers: &[(&'static str, &str)]) -> Result<Socket, tungstenite::Error> {
    let mut request = format!("ws://{}/v1/chat", app.addr).into_client_request().unwrap();
    for (name, value) in headers {
        request.headers_mut().insert(*name, value.parse().unwrap());
    }
    tokio_tungstenite::connect_async(request).await.map(|(ws, _)| ws)
}

/// A socket from `client`, as a proxy would forward it.
async fn open_from(app: &TestApp, client: &str) -> Result<Socket, tungstenite::Error> {
    open_with(app, &[("X-Forwarded-For", client)]).await
}

/// The HTTP status an upgrade was refused with; panics if it was accepted.
fn refusal<T>(result: Result<T, tungstenite::Error>) -> u16 {
    match result {
        Err(tungstenite::Error::Http(response)) => response.status().as_u16(),
        Err(other) => panic!("the upgrade failed without an HTTP answer: {other}"),
        Ok(_) => panic!("the upgrade was accepted"),
    }
}

#[tokio::test]
async fn a_connection_that_sends_too_fast_is_rate_limited_and_stays_usable() {
    let app = spawn_app_with(Backend::Sqlite, &[("CHAT_MESSAGES_PER_MINUTE", "3")]).await;
    let (mut chat, _) = app.guest().await; // hello is the first of the three
    chat.ask("m1", "hi").await;
    chat.ask("m2", "hello").await;
    chat.send(json!({ "type": "message", "id": "m3", "text": "hello again" })).await;
    let limited = chat.recv().await;
    assert_eq!(limited["code"], "rate_limited");
    // Pings count too, and the socket is still open and answering.
    chat.send(json!({ "type": "ping" })).await;
    assert_eq!(chat.recv().await["code"], "rate_limited");
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
    let app = spawn_app_with(Backend::Sqlite, &[("CHAT_HELLO_TIMEOUT_SECS", "1")]).await;
    let mut chat = app.connect().await;
    // The server gives up with an error, then closes.
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

#[tokio::test]
async fn one_address_cannot_hold_more_than_its_share_of_sockets() {
    let app = spawn_app_with(Backend::Sqlite, &[("CHAT_MAX_CONNECTIONS_PER_ADDRESS", "2")]).await;
    let (_first, _) = app.guest().await;
    let (_second, _) = app.guest().await;
    // Without TRUSTED_PROXIES a forwarded address is not believed: still the same client.
    assert_eq!(refusal(open_from(&app, "198.51.100.7").await), 429);
}

#[tokio::test]
async fn behind_a_trusted_proxy_each_forwarded_client_has_its_own_share() {
    let settings = [("TRUSTED_PROXIES", "127.0.0.1/32"), ("CHAT_MAX_CONNECTIONS_PER_ADDRESS", "1")];
    let app = spawn_app_with(Backend::Sqlite, &settings).await;
    let _a = open_from(&app, "198.51.100.1").await.expect("the first socket of an address");
    assert_eq!(refusal(open_from(&app, "198.51.100.1").await), 429);
    // What the client wrote left of the proxy's entry does not make it someone else.
    assert_eq!(refusal(open_from(&app, "203.0.113.50, 198.51.100.1").await), 429);
    let _b = open_from(&app, "198.51.100.2").await.expect("another address has its own share");
    // IPv6 clients are counted by their /64.
    let _c = open_from(&app, "2001:db8:0:1::1").await.expect("an IPv6 client");
    assert_eq!(refusal(open_from(&app, "2001:db8:0:1::2").await), 429);
    let _d = open_from(&app, "2001:db8:0:2::1").await.expect("another /64");
}

#[tokio::test]
async fn sockets_that_never_say_hello_cannot_take_every_place() {
    let app = spawn_app_with(Backend::Sqlite, &[("CHAT_MAX_PENDING_HELLO", "2")]).await;
    let mut first = app.connect().await;
    let _second = app.connect().await;
    let url = format!("ws://{}/v1/chat", app.addr);
    assert_eq!(refusal(tokio_tungstenite::connect_async(&url).await), 503);
    // Saying hello gives the place in the pending pool back.
    first.hello(json!({})).await;
    let mut third = app.connect().await;
    third.hello(json!({})).await;
}

/// Sends both kinds of ping at a keep-alive's pace until the server closes.
/// Pings until the server closes the socket; the close frame's reason.
async fn ping_until_closed(ws: &mut Socket) -> Option<String> {
    let mut every = tokio::time::interval(std::time::Duration::from_millis(100));
    loop {
        tokio::select! {
            _ = every.tick() => {
                if ws.send(Message::Ping(Vec::new().into())).await.is_err() { return None }
                if ws.send(Message::text(json!({ "type": "ping" }).to_string())).await.is_err() { return None }
            }
            incoming = ws.next() => match incoming {
                Some(Ok(Message::Close(close))) => return close.map(|c| c.reason.to_string()),
                None | Some(Err(_)) => return None,
                Some(Ok(Message::Text(text))) => {
                    let frame: Value = serde_json::from_str(&text).unwrap();
                    // Pongs, the welcome, and the idle close's error: never a rate limit or a strike.
                    assert!(["pong", "welcome"].contains(&frame["type"].as_str().unwrap()) || frame["code"] == "bad_request", "{frame}");
                }
                Some(Ok(_)) => {}
            },
        }
    }
}

#[tokio::test]
async fn pings_do_not_keep_an_idle_socket_open() {
    let settings = [
        ("CHAT_IDLE_TIMEOUT_SECS", "1"),
        ("CHAT_MESSAGES_PER_MINUTE", "100000"),
        ("CHAT_MESSAGES_PER_MINUTE_PER_IP", "100000"),
    ];
    let app = spawn_app_with(Backend::Sqlite, &settings).await;
    let mut ws = open_with(&app, &[]).await.unwrap();
    ws.send(Message::text(json!({ "type": "hello" }).to_string())).await.unwrap();
    // A generous bound: a socket the pings keep open fails here instead of hanging.
    let closed = tokio::time::timeout(std::time::Duration::from_secs(20), ping_until_closed(&mut ws)).await;
    let reason = closed.expect("pings kept an idle socket open");
    // The widget reads this reason as "wait for the customer", not "reconnect".
    assert_eq!(reason.as_deref(), Some("idle"));
}

#[tokio::test]
async fn invalid_frames_count_against_the_rate_limit() {
    let app = spawn_app_with(Backend::Sqlite, &[("CHAT_MESSAGES_PER_MINUTE", "3")]).await;
    let (mut chat, _) = app.guest().await; // hello is the first of the three
    chat.send_text("not json").await;
    assert_eq!(chat.recv().await["code"], "bad_request");
    chat.send(json!({ "type": "dance" })).await;
    assert_eq!(chat.recv().await["code"], "bad_request");
    chat.send(json!({ "type": "message", "id": "m1", "text": "hi" })).await;
    assert_eq!(chat.recv().await["code"], "rate_limited");
}

#[tokio::test]
async fn a_ping_does_not_clear_refused_frames() {
    let settings = [("CHAT_MESSAGES_PER_MINUTE", "100000"), ("CHAT_MESSAGES_PER_MINUTE_PER_IP", "100000")];
    let app = spawn_app_with(Backend::Sqlite, &settings).await;
    let (mut chat, _) = app.guest().await;
    for _ in 0..19 {
        chat.send_text("not json").await;
        assert_eq!(chat.recv().await["code"], "bad_request");
    }
    chat.send(json!({ "type": "ping" })).await;
    assert_eq!(chat.recv().await["type"], "pong");
    // The twentieth refused frame in a row, the ping notwithstanding.
    chat.send_text("not json").await;
    assert!(chat.closed().await);
}

#[tokio::test]
async fn with_allowed_origins_an_upgrade_from_another_origin_is_refused() {
    let app = spawn_app_with(Backend::Sqlite, &[("CHAT_ALLOWED_ORIGINS", "https://shop.example")]).await;
    assert_eq!(refusal(open_with(&app, &[("Origin", "https://evil.example")]).await), 403);
    assert_eq!(refusal(open_with(&app, &[]).await), 403, "no Origin is not a listed one");
    let ws = open_with(&app, &[("Origin", "https://shop.example")]).await.expect("a listed origin");
    Chat::from_socket(ws).hello(json!({})).await;
}

#[tokio::test]
async fn without_allowed_origins_any_origin_may_chat() {
    let app = spawn_app(Backend::Sqlite).await;
    let ws = open_with(&app, &[("Origin", "https://anywhere.example")]).await.expect("any origin");
    Chat::from_socket(ws).hello(json!({})).await;
}

/// Opens sockets from `client` as fast as it can, holding every one, until
/// `stop`; returns the sockets it got and the statuses of the refusals.
async fn flood(app: &TestApp, client: &str, stop: &tokio_util::sync::CancellationToken) -> (Vec<Socket>, Vec<u16>) {
    let (mut held, mut refused) = (Vec::new(), Vec::new());
    while !stop.is_cancelled() {
        match open_from(app, client).await {
            Ok(ws) => held.push(ws),
            Err(tungstenite::Error::Http(response)) => refused.push(response.status().as_u16()),
            Err(other) => panic!("a flood upgrade failed without an HTTP answer: {other}"),
        }
    }
    (held, refused)
}

#[tokio::test]
async fn one_address_opening_sockets_as_fast_as_it_can_does_not_stop_another_from_chatting() {
    // Few enough places overall that one address could take them all without a share of its own.
    // The flood's sockets never say hello; they stay for the whole test.
    let settings =
        [("TRUSTED_PROXIES", "127.0.0.1/32"), ("CHAT_MAX_CONNECTIONS", "40"), ("CHAT_HELLO_TIMEOUT_SECS", "600")];
    let app = std::sync::Arc::new(spawn_app_with(Backend::Sqlite, &settings).await);
    // The flooder fills what it can before the other customer arrives...
    let mut first_wave = Vec::new();
    let refused_at = loop {
        match open_from(&app, "203.0.113.66").await {
            Ok(ws) => first_wave.push(ws),
            Err(error) => break refusal::<()>(Err(error)),
        }
    };
    assert_eq!(refused_at, 429, "the flood was stopped by its own share, not by the whole service filling up");
    // ...and keeps at it, from several tasks, while they chat.
    let stop = tokio_util::sync::CancellationToken::new();
    let floods: Vec<_> = (0..4)
        .map(|_| {
            let (app, stop) = (app.clone(), stop.clone());
            tokio::spawn(async move { flood(&app, "203.0.113.66", &stop).await })
        })
        .collect();
    let ws = open_from(&app, "198.51.100.20").await.expect("another address still connects");
    let mut chat = Chat::from_socket(ws);
    chat.hello(json!({})).await;
    let frames = chat.ask("m1", "Do you ship to Canada?").await;
    assert!(frames.iter().any(|f| f["type"] == "message"), "{frames:?}");
    stop.cancel();
    for flood in floods {
        let (held, refused) = flood.await.unwrap();
        assert!(held.is_empty(), "the flooder got another socket past its share");
        assert!(refused.iter().all(|status| *status == 429), "{refused:?}");
    }
    assert_eq!(first_wave.len(), 20, "CHAT_MAX_CONNECTIONS_PER_ADDRESS defaults to 20");
}
