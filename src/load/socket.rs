//! The widget's socket as the load tool speaks it: small buffers, hello and
//! welcome, and frames parsed only as far as the tool looks at them.

use std::{
    borrow::Cow,
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

use futures_util::{SinkExt, StreamExt};
use serde::Deserialize;
use serde_json::json;
use tokio::net::TcpStream;
use tokio_tungstenite::{
    MaybeTlsStream, WebSocketStream,
    tungstenite::{Message, Utf8Bytes, protocol::WebSocketConfig},
};
use tokio_util::sync::CancellationToken;

pub(super) type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// The fields of a server frame the tool looks at; the rest is skipped unread.
#[derive(Deserialize)]
pub(super) struct Frame<'a> {
    #[serde(rename = "type", borrow)]
    pub kind: Cow<'a, str>,
    pub on: Option<bool>,
    #[serde(borrow)]
    pub code: Option<Cow<'a, str>>,
    pub identity: Option<IdentityField<'a>>,
}

#[derive(Deserialize)]
pub(super) struct IdentityField<'a> {
    #[serde(borrow)]
    pub status: Cow<'a, str>,
}

pub(super) enum Event {
    Frame(Utf8Bytes),
    Closed,
    TimedOut,
}

/// The next text frame (pings are answered by tungstenite as it reads).
pub(super) async fn next_text(socket: &mut Socket, deadline: Instant) -> Event {
    loop {
        match tokio::time::timeout_at(deadline.into(), socket.next()).await {
            Err(_) => return Event::TimedOut,
            Ok(None | Some(Err(_)) | Some(Ok(Message::Close(_)))) => return Event::Closed,
            Ok(Some(Ok(Message::Text(text)))) => return Event::Frame(text),
            Ok(Some(Ok(_))) => continue,
        }
    }
}

/// Small socket buffers: the tool may hold tens of thousands of idle sockets.
fn socket_config() -> WebSocketConfig {
    WebSocketConfig::default().read_buffer_size(4096).write_buffer_size(0)
}

pub(super) async fn open_session(url: &str, token: Option<&str>, timeout: Duration) -> Result<Socket, String> {
    let (mut socket, _) = tokio_tungstenite::connect_async_with_config(url, Some(socket_config()), true)
        .await
        .map_err(|_| "connect".to_owned())?;
    let hello = match token {
        Some(token) => json!({ "type": "hello", "token": token }),
        None => json!({ "type": "hello" }),
    };
    socket.send(Message::text(hello.to_string())).await.map_err(|_| "send".to_owned())?;
    let deadline = Instant::now() + timeout;
    loop {
        let text = match next_text(&mut socket, deadline).await {
            Event::Frame(text) => text,
            Event::Closed => return Err("closed".into()),
            Event::TimedOut => return Err("timeout".into()),
        };
        let frame: Frame = serde_json::from_str(text.as_str()).map_err(|_| "bad_frame".to_owned())?;
        match frame.kind.as_ref() {
            "welcome" if token.is_some() && frame.identity.is_none_or(|i| i.status != "verified") => {
                return Err("token_refused".into());
            }
            "welcome" => return Ok(socket),
            "error" => return Err(format!("hello_refused:{}", frame.code.as_deref().unwrap_or("unknown"))),
            _ => continue,
        }
    }
}

/// Keeps a held session's socket read (so a close is noticed) until the run ends.
pub(super) async fn hold(mut socket: Socket, stop: CancellationToken, closed_early: Arc<AtomicUsize>) {
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            message = socket.next() => match message {
                None | Some(Err(_)) | Some(Ok(Message::Close(_))) => {
                    closed_early.fetch_add(1, Ordering::Relaxed);
                    return;
                }
                Some(Ok(_)) => continue,
            },
        }
    }
}
