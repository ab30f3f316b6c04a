//! `GET /v1/chat`: the WebSocket loop. It parses frames, says hello, and
//! hands everything that changes a session to a per-connection worker, so
//! turns run in order while the socket keeps answering pings and relaying
//! frames from other sockets of the session.

use axum::{
    extract::{
        State, WebSocketUpgrade,
        ws::{CloseFrame, Message, Utf8Bytes, close_code},
    },
    http::{HeaderMap, header},
    response::Response,
};
use futures_util::{Sink, SinkExt, Stream, StreamExt};
use governor::DefaultDirectRateLimiter;
use tokio::sync::{broadcast, mpsc, watch};

use super::{
    hub::Outbound,
    limits::{Admission, Refusal},
    protocol::{ClientFrame, ErrorCode, FrameError, Page, Rating, ServerFrame, parse_client_frame},
    replay::{self, Viewer},
    service::{Session, TurnResult},
};
use crate::analytics::CodeLabels;
use crate::app::AppState;
use crate::db::AuditRecord;
use crate::http::{
    client_addr::{AddressKey, ClientAddr},
    error::ApiError,
};
use crate::identity::Identity;

/// Frames beyond this are refused by the WebSocket layer from their header,
/// before their payload is buffered (the connection closes); between 16 KiB
/// and this they get a polite `too_large`.
const MAX_WS_MESSAGE_BYTES: usize = 32 * 1024;
/// The close reason of a socket closed for idleness: the widget does not
/// reconnect on its own after it, or an idle tab would hold a socket forever.
const IDLE_CLOSE_REASON: &str = "idle";
/// Each socket's read buffer, allocated up front and held for its life: the
/// default (128 KiB) was nearly all of an idle session's memory, while
/// customer frames are a few hundred bytes (larger ones are read in pieces).
/// Writes are not buffered at all (`write_buffer_size(0)`): every frame is
/// sent, and flushed, as it comes.
const WS_READ_BUFFER_BYTES: usize = 4 * 1024;
/// Consecutive refused frames before the connection is closed.
const MAX_STRIKES: u32 = 20;
/// Queued turns per connection; a client that floods waits for room.
const WORKER_QUEUE: usize = 16;

pub async fn chat(
    ws: WebSocketUpgrade,
    State(app): State<AppState>,
    client: ClientAddr,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    if let Some(allowed) = &app.settings.chat.allowed_origins {
        let origin = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()).map(|o| o.trim_end_matches('/'));
        // A page on another site could otherwise chat as the visitor's browser.
        if !origin.is_some_and(|origin| allowed.iter().any(|a| a.eq_ignore_ascii_case(origin))) {
            return Err(ApiError::Forbidden("This page may not open the chat."));
        }
    }
    let admission = match app.guards.admit(client.key()) {
        Ok(admission) => admission,
        Err(Refusal::Full) => return Err(ApiError::Unavailable("Chat is busy right now. Please try again shortly.")),
        Err(Refusal::AddressFull) => return Err(ApiError::RateLimited { retry_after: None }),
    };
    let upgrade = ws
        .max_message_size(MAX_WS_MESSAGE_BYTES)
        .max_frame_size(MAX_WS_MESSAGE_BYTES)
        .read_buffer_size(WS_READ_BUFFER_BYTES)
        .write_buffer_size(0);
    Ok(upgrade.on_upgrade(move |socket| async move {
        let tasks = app.tasks.clone();
        let (sink, stream) = socket.split();
        // Tracked, so graceful shutdown waits for the socket to flush its last frames.
        tasks.track_future(Connection::new(app, client, admission).run(sink, stream)).await;
    }))
}

/// Work that changes the session, run in order by the connection's worker.
enum Command {
    Message { id: String, text: String },
    Verify { order_number: String, email: String },
    Handoff { note: Option<String> },
    Feedback { message_id: String, rating: Rating, comment: Option<String> },
    Csat { score: u8, comment: Option<String> },
}

struct Connection {
    app: AppState,
    /// Correlates this socket's logs and audit records.
    id: String,
    /// Whom the per-address limits count this socket under.
    client: AddressKey,
    limiter: DefaultDirectRateLimiter,
    /// Refused frames in a row.
    strikes: u32,
    /// This socket's places under the connection caps, released on drop.
    admission: Admission,
}

/// What the socket is attached to once `hello` succeeded.
struct Attached {
    session_id: String,
    frames: broadcast::Receiver<Outbound>,
    commands: mpsc::Sender<Command>,
    /// The highest seq this socket has delivered, to drop duplicates between
    /// replay and live frames.
    last_seq: i64,
    /// This socket's identity, kept current by its worker: frames of order
    /// lookups another socket of the session made are shown only to the same scope.
    viewer: watch::Receiver<Viewer>,
}

impl Attached {
    fn shown(&self, frame: Outbound) -> Outbound {
        shown(&self.viewer, frame)
    }
}

/// `frame` as the socket of `viewer` may see it. Most frames carry no
/// order lookup: those pass without asking who is watching.
fn shown(viewer: &watch::Receiver<Viewer>, frame: Outbound) -> Outbound {
    if frame.scope.is_none() {
        return frame;
    }
    replay::shown(frame, viewer.borrow().tag(std::time::Instant::now()).as_deref())
}

impl Connection {
    fn new(app: AppState, client: ClientAddr, admission: Admission) -> Self {
        let limiter = app.guards.connection_limiter();
        Self { app, id: uuid::Uuid::new_v4().to_string(), client: client.key(), limiter, strikes: 0, admission }
    }

    #[tracing::instrument(name = "chat", skip_all, fields(connection = %self.id))]
    async fn run<W, R, E>(mut self, mut sink: W, mut stream: R)
    where
        W: Sink<Message> + Unpin,
        R: Stream<Item = Result<Message, E>> + Unpin,
    {
        self.app.metrics.connections.inc();
        let shutdown = self.app.shutdown.clone();
        let hello_timeout = self.app.guards.hello_timeout;
        let hello_deadline = tokio::time::sleep(hello_timeout);
        tokio::pin!(hello_deadline);
        let idle_timeout = self.app.guards.idle_timeout;
        let idle = tokio::time::sleep(idle_timeout);
        tokio::pin!(idle);
        let (direct_tx, mut direct_rx) = mpsc::channel::<Outbound>(WORKER_QUEUE);
        let mut attached: Option<Attached> = None;
        // Closed for idleness: the widget then waits for its customer before reconnecting.
        let mut went_idle = false;

        loop {
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = &mut idle => {
                    let _ = send(&mut sink, &ServerFrame::error(ErrorCode::BadRequest, "Closed after a long time without messages.")).await;
                    went_idle = true;
                    break;
                }
                _ = &mut hello_deadline, if attached.is_none() => {
                    let late = format!("Say hello within {} seconds.", hello_timeout.as_secs());
                    let _ = send(&mut sink, &ServerFrame::error(ErrorCode::BadRequest, late)).await;
                    break;
                }
                incoming = stream.next() => {
                    let message = match incoming {
                        Some(Ok(Message::Close(_))) | None | Some(Err(_)) => break,
                        Some(Ok(message)) => message,
                    };
                    // Every frame costs, refused and protocol-level ones too, or a flood of them would be free.
                    if !self.app.guards.allow(self.client, &self.limiter) {
                        let limited = FrameError::new(ErrorCode::RateLimited, "You're sending messages too quickly. Please wait a moment.");
                        if self.refuse(&mut sink, limited).await { break }
                        continue;
                    }
                    let text = match message {
                        Message::Text(text) => text,
                        Message::Binary(_) => {
                            if self.refuse(&mut sink, FrameError::new(ErrorCode::BadRequest, "Frames must be JSON text.")).await { break }
                            continue;
                        }
                        _ => continue, // ping/pong: answered by the WebSocket layer
                    };
                    let frame = match parse_client_frame(&text) {
                        Ok(frame) => frame,
                        Err(error) => {
                            if self.refuse(&mut sink, error).await { break }
                            continue;
                        }
                    };
                    if matches!(frame, ClientFrame::Ping) {
                        // A keep-alive says nothing of the customer: it neither
                        // keeps an idle socket open nor clears refused frames.
                        if send(&mut sink, &ServerFrame::Pong).await.is_err() { break }
                        continue;
                    }
                    idle.as_mut().reset(tokio::time::Instant::now() + idle_timeout);
                    self.strikes = 0;
                    match (frame, &mut attached) {
                        (ClientFrame::Hello { token, session_id, last_seq, locale, page }, None) => {
                            let hello = Hello { token, session_id, last_seq, locale, page };
                            match self.hello(&mut sink, hello, direct_tx.clone()).await {
                                Ok(Some(a)) => attached = Some(a),
                                Ok(None) => {}
                                Err(()) => break,
                            }
                        }
                        (ClientFrame::Hello { .. }, Some(_)) => {
                            if self.refuse(&mut sink, FrameError::new(ErrorCode::BadRequest, "This connection already said hello.")).await { break }
                        }
                        (_, None) => {
                            if self.refuse(&mut sink, FrameError::new(ErrorCode::BadRequest, "The first frame must be `hello`.")).await { break }
                        }
                        (frame, Some(a)) => {
                            let Some(command) = command(frame) else { continue };
                            if a.commands.send(command).await.is_err() { break }
                        }
                    }
                }
                Some(frame) = direct_rx.recv() => {
                    let Some(a) = attached.as_mut() else { continue };
                    let frame = a.shown(frame);
                    if deliver(&mut sink, &mut a.last_seq, &frame).await.is_err() { break }
                }
                outbound = recv(&mut attached) => {
                    let Some(a) = attached.as_mut() else { continue };
                    match outbound {
                        Ok(frame) => {
                            let frame = a.shown(frame);
                            if deliver(&mut sink, &mut a.last_seq, &frame).await.is_err() { break }
                        }
                        Err(broadcast::error::RecvError::Lagged(_)) => {
                            // Fell behind the live feed: catch up from storage.
                            let Ok(missed) = self.app.chat.replay(&a.session_id, a.last_seq).await else { break };
                            for frame in missed {
                                let frame = a.shown(frame);
                                if deliver(&mut sink, &mut a.last_seq, &frame).await.is_err() { break }
                            }
                        }
                        Err(broadcast::error::RecvError::Closed) => break,
                    }
                }
            }
        }

        if let Some(Attached { session_id, mut frames, commands, mut last_seq, viewer }) = attached {
            // Let queued turns finish, then flush what they produced.
            drop(commands);
            drop(direct_tx);
            while let Some(frame) = direct_rx.recv().await {
                let _ = deliver(&mut sink, &mut last_seq, &shown(&viewer, frame)).await;
            }
            while let Ok(frame) = frames.try_recv() {
                let _ = deliver(&mut sink, &mut last_seq, &shown(&viewer, frame)).await;
            }
            drop(frames);
            self.app.chat.hub().release(&session_id);
        }
        let close = if went_idle {
            CloseFrame { code: close_code::NORMAL, reason: Utf8Bytes::from_static(IDLE_CLOSE_REASON) }
        } else {
            CloseFrame { code: close_code::AWAY, reason: Utf8Bytes::from_static("server closing") }
        };
        let _ = sink.send(Message::Close(Some(close))).await;
        self.app.metrics.connections.dec();
    }

    /// Sends an error for a refused frame; `true` when the client has
    /// misbehaved often enough to be disconnected.
    async fn refuse<W: Sink<Message> + Unpin>(&mut self, sink: &mut W, error: FrameError) -> bool {
        self.strikes += 1;
        self.app.metrics.frame_errors.get_or_create(&CodeLabels { code: error.code.as_str() }).inc();
        let sent = send(sink, &ServerFrame::error(error.code, error.message)).await;
        sent.is_err() || self.strikes >= MAX_STRIKES
    }

    async fn audit(&self, decision: &str, subject: Option<&str>, detail: Option<&str>) {
        let record =
            AuditRecord { correlation_id: &self.id, session_id: None, method: "token", decision, subject, detail };
        self.app.chat.audit(record).await;
    }

    /// Opens or resumes a session. `Ok(None)`: refused, the client may say
    /// hello again; `Err`: the socket is gone.
    async fn hello<W: Sink<Message> + Unpin>(
        &mut self,
        sink: &mut W,
        hello: Hello,
        direct: mpsc::Sender<Outbound>,
    ) -> Result<Option<Attached>, ()> {
        let identity = match hello.token.as_deref().filter(|t| !t.is_empty()) {
            None => Identity::Guest,
            Some(token) => match self.app.tokens.verify(token).await {
                Ok(identity) => {
                    self.audit("verified", identity.customer_id(), None).await;
                    identity
                }
                Err(error) => {
                    tracing::info!(decision = "refused", %error, "customer token");
                    self.audit("refused", None, Some(&error.to_string())).await;
                    let refused = FrameError::new(
                        ErrorCode::Unauthorized,
                        "Your sign-in could not be verified. Please sign in again.",
                    );
                    return if self.refuse(sink, refused).await { Err(()) } else { Ok(None) };
                }
            },
        };
        let chat = &self.app.chat;
        let resumed = match hello.session_id.as_deref() {
            Some(id) => chat.resume(id, identity.clone(), self.client, hello.page.clone()).await,
            None => Ok(None),
        };
        let (session, last_seq, resumed) = match resumed {
            Ok(Some((session, last_seq))) => (session, last_seq, true),
            Ok(None) => match chat.open(identity, self.client, hello.locale.as_deref(), hello.page).await {
                Ok((session, last_seq)) => (session, last_seq, false),
                Err(error) => return self.internal(sink, &error).await,
            },
            Err(error) => return self.internal(sink, &error).await,
        };

        // Subscribe before reading the replay, so nothing falls between them.
        let frames = chat.hub().subscribe(&session.id);
        let welcome = ServerFrame::Welcome {
            session_id: session.id.clone(),
            seq: last_seq,
            identity: session.identity.view(),
            ai_disclosure: chat.ai_disclosure(),
            resumed,
        };
        // Past hello: this socket no longer needs a place in the pending pool.
        self.admission.said_hello();
        send(sink, &welcome).await?;
        let (commands, queue) = mpsc::channel(WORKER_QUEUE);
        let (viewer_tx, viewer) = watch::channel(Viewer::of(&session));
        let mut attached = Attached { session_id: session.id.clone(), frames, commands, last_seq: 0, viewer };
        if resumed {
            let after = hello.last_seq.unwrap_or(0).clamp(0, last_seq);
            attached.last_seq = after;
            let missed = match chat.replay_for(&session, after).await {
                Ok(missed) => missed,
                Err(error) => return self.internal(sink, &error).await,
            };
            for frame in &missed {
                deliver(sink, &mut attached.last_seq, frame).await?;
            }
        } else {
            attached.last_seq = last_seq;
        }
        let worker =
            Worker { app: self.app.clone(), connection_id: self.id.clone(), session, direct, viewer: viewer_tx };
        self.app.tasks.spawn(worker.run(queue));
        Ok(Some(attached))
    }

    async fn internal<W: Sink<Message> + Unpin>(
        &mut self,
        sink: &mut W,
        error: &super::service::ChatError,
    ) -> Result<Option<Attached>, ()> {
        tracing::error!(%error, "hello failed");
        send(sink, &ServerFrame::error(ErrorCode::Internal, "Something went wrong on our side. Please try again."))
            .await?;
        Ok(None)
    }
}

struct Hello {
    token: Option<String>,
    session_id: Option<String>,
    last_seq: Option<i64>,
    locale: Option<String>,
    page: Option<Page>,
}

fn command(frame: ClientFrame) -> Option<Command> {
    Some(match frame {
        ClientFrame::Message { id, text } => Command::Message { id, text },
        ClientFrame::Verify { order_number, email } => Command::Verify { order_number, email },
        ClientFrame::HandoffRequest { note } => Command::Handoff { note },
        ClientFrame::Feedback { message_id, rating, comment } => Command::Feedback { message_id, rating, comment },
        ClientFrame::Csat { score, comment } => Command::Csat { score, comment },
        ClientFrame::Hello { .. } | ClientFrame::Ping => return None,
    })
}

/// Runs one connection's commands in order. It owns the session (and so the
/// identity), and outlives the socket: a turn under way when the customer
/// closes the tab still completes and is there on resume.
struct Worker {
    app: AppState,
    connection_id: String,
    session: Session,
    /// Frames for this socket only (errors, a resent reply).
    direct: mpsc::Sender<Outbound>,
    /// Tells the socket who it now shows frames to (a verification, a lapse).
    viewer: watch::Sender<Viewer>,
}

impl Worker {
    async fn run(mut self, mut queue: mpsc::Receiver<Command>) {
        while let Some(command) = queue.recv().await {
            let chat = &self.app.chat;
            let reply_to = match &command {
                Command::Message { id, .. } => Some(id.clone()),
                _ => None,
            };
            let result: Result<Option<ServerFrame>, super::service::ChatError> = match command {
                Command::Message { id, text } => {
                    match chat.message(&mut self.session, &self.connection_id, &id, &text).await {
                        Ok(TurnResult::Answered) => Ok(None),
                        // Not tied to the message: the message itself was answered.
                        Ok(TurnResult::Refused(e)) => Ok(Some(ServerFrame::error(e.code, e.message))),
                        Ok(TurnResult::Duplicate(frames)) => {
                            // Only the asking socket needs the original reply again.
                            for frame in frames {
                                let _ = self.direct.send(frame).await;
                            }
                            Ok(None)
                        }
                        Err(e) => Err(e),
                    }
                }
                Command::Verify { order_number, email } => chat
                    .verify(&mut self.session, &self.connection_id, &order_number, &email)
                    .await
                    .map(|r| r.err().map(|e| ServerFrame::error(e.code, e.message))),
                Command::Handoff { note } => chat.handoff_request(&self.session, note.as_deref()).await.map(|()| None),
                Command::Feedback { message_id, rating, comment } => {
                    chat.feedback(&self.session, &message_id, rating, comment.as_deref()).await.map(|found| {
                        (!found).then(|| ServerFrame::error(ErrorCode::BadRequest, "There is no such reply to rate."))
                    })
                }
                Command::Csat { score, comment } => {
                    chat.csat(&self.session, score, comment.as_deref()).await.map(|()| None)
                }
            };
            let frame = match result {
                Ok(frame) => frame,
                Err(error) => {
                    tracing::error!(%error, "turn failed");
                    let e = FrameError::from(&error);
                    Some(ServerFrame::Error { seq: None, reply_to, code: e.code, message: e.message })
                }
            };
            self.viewer.send_replace(Viewer::of(&self.session));
            if let Some(frame) = frame {
                let _ = self.direct.send(Outbound::ephemeral(frame.to_json())).await;
            }
        }
    }
}

async fn recv(attached: &mut Option<Attached>) -> Result<Outbound, broadcast::error::RecvError> {
    match attached {
        Some(a) => a.frames.recv().await,
        None => std::future::pending().await,
    }
}

/// Sends a session frame unless this socket already delivered its seq.
async fn deliver<W: Sink<Message> + Unpin>(sink: &mut W, last_seq: &mut i64, frame: &Outbound) -> Result<(), ()> {
    if let Some(seq) = frame.seq {
        if seq <= *last_seq {
            return Ok(());
        }
        *last_seq = seq;
    }
    sink.send(Message::Text(Utf8Bytes::from(frame.json.as_ref()))).await.map_err(|_| ())
}

async fn send<W: Sink<Message> + Unpin>(sink: &mut W, frame: &ServerFrame) -> Result<(), ()> {
    sink.send(Message::Text(frame.to_json().into())).await.map_err(|_| ())
}
