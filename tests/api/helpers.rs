//! `spawn_app` and a WebSocket chat client that speaks the protocol.

use std::{collections::HashMap, time::Duration};

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use storefront_assistant::{app::Application, config::Settings};
use tokio::net::TcpStream;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream, tungstenite::Message};

pub const JWT_SECRET: &str = "test-secret-for-store-signed-tokens";
pub const ADMIN_TOKEN: &str = "test-admin-token-0123456789";
/// Generous bound on any one frame: a failing test fails instead of hanging.
const FRAME_TIMEOUT: Duration = Duration::from_secs(15);
/// The same for any one HTTP request: CI has a time limit, a hang has none.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(120);

#[derive(Debug, Clone, Copy)]
pub enum Backend {
    Sqlite,
    Postgres,
}

pub struct TestApp {
    pub addr: std::net::SocketAddr,
    pub http: reqwest::Client,
    pub shutdown: tokio_util::sync::CancellationToken,
    /// So a test can open the same database again (a restart).
    pub database_url: String,
    _data_dir: tempfile::TempDir,
}

/// Runs the same test body against each database. PostgreSQL comes from
/// `TEST_POSTGRES_URL` (default: the local server); when it is unreachable
/// the PostgreSQL case is skipped with a notice, except under `CI=true`,
/// where that is a failure.
#[macro_export]
macro_rules! on_both_databases {
    ($name:ident, $body:path) => {
        mod $name {
            use super::*;

            #[tokio::test]
            async fn on_sqlite() {
                $body($crate::helpers::Backend::Sqlite).await;
            }

            #[tokio::test]
            async fn on_postgres() {
                if $crate::helpers::postgres_available().await {
                    $body($crate::helpers::Backend::Postgres).await;
                }
            }
        }
    };
}

fn postgres_admin_url() -> String {
    std::env::var("TEST_POSTGRES_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into())
}

pub async fn postgres_available() -> bool {
    use sqlx::Connection;
    match sqlx::PgConnection::connect(&postgres_admin_url()).await {
        Ok(conn) => {
            let _ = conn.close().await;
            true
        }
        Err(error) if std::env::var("CI").as_deref() == Ok("true") => {
            panic!("PostgreSQL is required in CI but unreachable at TEST_POSTGRES_URL: {error}")
        }
        Err(error) => {
            eprintln!("notice: skipping a PostgreSQL case, the server is unreachable: {error}");
            false
        }
    }
}

/// A fresh database per test, so tests never see each other's rows.
pub async fn fresh_postgres_database() -> String {
    use sqlx::{Connection, Executor};
    let admin_url = postgres_admin_url();
    let name = format!("sa_test_{}", uuid::Uuid::new_v4().simple());
    let mut conn = sqlx::PgConnection::connect(&admin_url).await.expect("connect to PostgreSQL");
    conn.execute(format!(r#"CREATE DATABASE "{name}""#).as_str()).await.expect("create test database");
    let (base, _) = admin_url.rsplit_once('/').expect("a database URL has a path");
    format!("{base}/{name}")
}

pub async fn spawn_app(backend: Backend) -> TestApp {
    spawn_app_with(backend, &[]).await
}

pub async fn spawn_app_with(backend: Backend, overrides: &[(&str, &str)]) -> TestApp {
    let data_dir = tempfile::tempdir().expect("temp dir");
    let root = env!("CARGO_MANIFEST_DIR");
    let database_url = match backend {
        Backend::Sqlite => format!("sqlite://{}/assistant.db", data_dir.path().display()),
        Backend::Postgres => fresh_postgres_database().await,
    };
    let mut vars: HashMap<String, String> = [
        ("BIND_ADDR", "127.0.0.1:0".to_owned()),
        ("DATA_DIR", data_dir.path().display().to_string()),
        ("DATABASE_URL", database_url),
        ("KNOWLEDGE_DIR", format!("{root}/knowledge")),
        ("PROMPTS_DIR", format!("{root}/prompts")),
        ("IDENTITY_JWT_SECRET", JWT_SECRET.to_owned()),
        ("ADMIN_TOKEN", ADMIN_TOKEN.to_owned()),
        // Embedding the whole knowledge base at every start would dominate
        // the suite; tests of dense retrieval opt in with `spawn_app_with_model`.
        ("EMBEDDINGS", "none".to_owned()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    for (k, v) in overrides {
        vars.insert((*k).to_owned(), (*v).to_owned());
    }
    let settings = Settings::from_lookup(|name| vars.get(name).cloned()).expect("valid test settings");
    let database_url = settings.database_url.clone();
    let app = Application::build(settings).await.expect("the app starts");
    let addr = app.local_addr();
    let shutdown = app.shutdown_token();
    tokio::spawn(app.run_until_stopped());
    let http = reqwest::Client::builder().timeout(REQUEST_TIMEOUT).build().expect("an HTTP client");
    TestApp { addr, http, shutdown, database_url, _data_dir: data_dir }
}

/// An app with dense retrieval on the real sentence model, or `None` (after
/// a notice) where the model cannot be had outside CI.
pub async fn spawn_app_with_model(backend: Backend, overrides: &[(&str, &str)]) -> Option<TestApp> {
    let dir = embedding_model_dir().await?.display().to_string();
    let mut vars = vec![("EMBEDDINGS", "local"), ("EMBEDDING_MODEL_DIR", dir.as_str())];
    vars.extend_from_slice(overrides);
    Some(spawn_app_with(backend, &vars).await)
}

/// The embedding model, fetched once per machine by the project's own
/// fetch code into a cache beside the build (or taken from
/// `EMBEDDING_MODEL_DIR`). Unavailable: `None` with a notice, except under
/// `CI=true`, where that is a failure.
pub async fn embedding_model_dir() -> Option<std::path::PathBuf> {
    use storefront_assistant::knowledge::embeddings::fetch;
    static MODEL: tokio::sync::OnceCell<Option<std::path::PathBuf>> = tokio::sync::OnceCell::const_new();
    MODEL
        .get_or_init(|| async {
            let dir = match std::env::var_os("EMBEDDING_MODEL_DIR") {
                Some(dir) => std::path::PathBuf::from(dir),
                None => fetch::default_model_dir(std::path::Path::new(concat!(env!("CARGO_TARGET_TMPDIR"), "/.."))),
            };
            match fetch::ensure_model(&dir, false).await {
                Ok(()) => Some(dir),
                Err(error) if std::env::var("CI").as_deref() == Ok("true") => {
                    panic!("the embedding model is required in CI but could not be fetched: {error}")
                }
                Err(error) => {
                    eprintln!("notice: skipping dense retrieval, the embedding model is unavailable: {error}");
                    None
                }
            }
        })
        .await
        .clone()
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    pub async fn connect(&self) -> Chat {
        let (ws, _) =
            tokio_tungstenite::connect_async(format!("ws://{}/v1/chat", self.addr)).await.expect("WebSocket connects");
        Chat { ws }
    }

    /// A client whose socket comes from `ip` (any 127.0.0.0/8 address on
    /// loopback), so per-address limits can be seen from one machine.
    pub async fn connect_from(&self, ip: [u8; 4]) -> Chat {
        let socket = tokio::net::TcpSocket::new_v4().expect("a socket");
        socket.bind(std::net::SocketAddr::from((ip, 0))).expect("bind a loopback address");
        let stream = socket.connect(self.addr).await.expect("TCP connects");
        let url = format!("ws://{}/v1/chat", self.addr);
        let (ws, _) =
            tokio_tungstenite::client_async(url, MaybeTlsStream::Plain(stream)).await.expect("WebSocket connects");
        Chat { ws }
    }

    /// Runs one statement on the app's database, as an operator (or time) would.
    pub async fn execute_sql(&self, sql: &str) {
        use sqlx::{Connection, Executor};
        if self.database_url.starts_with("sqlite:") {
            let mut conn = sqlx::SqliteConnection::connect(&self.database_url).await.expect("open SQLite");
            conn.execute(sql).await.expect("the statement runs");
        } else {
            let mut conn = sqlx::PgConnection::connect(&self.database_url).await.expect("connect to PostgreSQL");
            conn.execute(sql).await.expect("the statement runs");
        }
    }

    /// A connected client that has said hello as a guest; returns it with the welcome.
    pub async fn guest(&self) -> (Chat, Value) {
        let mut chat = self.connect().await;
        let welcome = chat.hello(json!({})).await;
        (chat, welcome)
    }

    /// A connected client signed in as the demo customer `customer_id`.
    pub async fn customer(&self, customer_id: &str) -> (Chat, Value) {
        let mut chat = self.connect().await;
        let welcome = chat.hello(json!({ "token": token_for(customer_id, 3600) })).await;
        (chat, welcome)
    }

    pub async fn admin_get(&self, path: &str) -> reqwest::Response {
        self.http.get(self.url(path)).bearer_auth(ADMIN_TOKEN).send().await.expect("request")
    }

    /// Every `key` of every item of a paged admin list (`?limit=&before=`
    /// with `next_before`), in the order the pages gave them.
    pub async fn page_through(&self, path: &str, items: &str, key: &str, limit: u32) -> Vec<String> {
        let mut seen = Vec::new();
        let mut url = format!("{path}?limit={limit}");
        loop {
            let page: Value = self.admin_get(&url).await.json().await.unwrap();
            seen.extend(page[items].as_array().unwrap().iter().map(|i| i[key].as_str().unwrap().to_owned()));
            match page["next_before"].as_str() {
                Some(cursor) => url = format!("{path}?limit={limit}&before={cursor}"),
                None => return seen,
            }
        }
    }
}

/// A store-signed customer token, as the store's backend would make one.
pub fn token_for(customer_id: &str, lifetime_secs: i64) -> String {
    sign(json!({
        "sub": customer_id,
        "email": format!("customer{customer_id}@example.com"),
        "name": "Test Customer",
        "iat": now(),
        "exp": now() + lifetime_secs,
    }))
}

pub fn sign(claims: Value) -> String {
    let key = jsonwebtoken::EncodingKey::from_secret(JWT_SECRET.as_bytes());
    jsonwebtoken::encode(&jsonwebtoken::Header::default(), &claims, &key).expect("sign token")
}

pub fn now() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64
}

pub struct Chat {
    ws: WebSocketStream<MaybeTlsStream<TcpStream>>,
}

impl Chat {
    /// A client on a socket opened elsewhere (a service run as a process).
    pub fn from_socket(ws: WebSocketStream<MaybeTlsStream<TcpStream>>) -> Self {
        Self { ws }
    }

    pub async fn send_text(&mut self, text: impl Into<String>) {
        self.ws.send(Message::text(text.into())).await.expect("send frame");
    }

    pub async fn send(&mut self, frame: Value) {
        self.send_text(frame.to_string()).await;
    }

    /// The next frame, whatever it is.
    pub async fn recv_any(&mut self) -> Value {
        loop {
            let message = tokio::time::timeout(FRAME_TIMEOUT, self.ws.next())
                .await
                .expect("a frame within the timeout")
                .expect("the socket is open")
                .expect("a valid WebSocket message");
            match message {
                Message::Text(text) => {
                    return serde_json::from_str(&text).expect("server frames are JSON");
                }
                Message::Close(close) => panic!("the server closed the socket: {close:?}"),
                _ => continue,
            }
        }
    }

    /// The next frame that is not a `typing` indicator.
    pub async fn recv(&mut self) -> Value {
        loop {
            let frame = self.recv_any().await;
            if frame["type"] != "typing" {
                return frame;
            }
        }
    }

    /// Waits for the server to close the socket (or fail it).
    pub async fn closed(&mut self) -> bool {
        loop {
            match tokio::time::timeout(FRAME_TIMEOUT, self.ws.next()).await.expect("close within the timeout") {
                None | Some(Err(_)) | Some(Ok(Message::Close(_))) => return true,
                Some(Ok(_)) => continue,
            }
        }
    }

    pub async fn hello(&mut self, fields: Value) -> Value {
        let mut hello = json!({ "type": "hello" });
        hello.as_object_mut().unwrap().extend(fields.as_object().unwrap().clone());
        self.send(hello).await;
        let welcome = self.recv().await;
        assert_eq!(welcome["type"], "welcome", "hello is answered by welcome: {welcome}");
        welcome
    }

    /// Sends a message and returns every frame of its turn: the turn ends
    /// with `typing: off`, which the server sends after the turn's frames.
    pub async fn ask(&mut self, id: &str, text: &str) -> Vec<Value> {
        self.send(json!({ "type": "message", "id": id, "text": text })).await;
        self.turn_frames().await
    }

    pub async fn turn_frames(&mut self) -> Vec<Value> {
        let mut frames = Vec::new();
        loop {
            let frame = self.recv_any().await;
            if frame["type"] == "typing" {
                if frame["on"] == false {
                    return frames;
                }
                continue;
            }
            frames.push(frame);
        }
    }
}

/// The one frame of `frames` with this `type`.
pub fn only<'a>(frames: &'a [Value], kind: &str) -> &'a Value {
    let matching: Vec<&Value> = frames.iter().filter(|f| f["type"] == kind).collect();
    assert_eq!(matching.len(), 1, "expected one `{kind}` frame in {frames:#?}");
    matching[0]
}
