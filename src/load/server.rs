//! `--spawn`: the service started by the tool, on a free loopback port with
//! a throwaway data dir, fresh secrets and limits high enough that one
//! client address can be a whole store's customers. And the server's RSS.

use std::time::{Duration, Instant};

use tokio::process::{Child, Command};

use super::{LoadError, Target};

/// Start-up includes importing the knowledge base (and, with
/// `EMBEDDINGS=local`, loading the model and embedding every article).
const READY_TIMEOUT: Duration = Duration::from_secs(300);
const ABOVE_ANY_LOAD: &str = "1000000000";

pub struct SpawnedServer {
    child: Child,
    pub target: Target,
    _data_dir: tempfile::TempDir,
}

impl SpawnedServer {
    /// Runs this executable's `serve` and waits for `/readyz`.
    pub async fn start(embeddings: &str) -> Result<Self, LoadError> {
        let data_dir = tempfile::tempdir().map_err(LoadError::Spawn)?;
        // Bound then released: the port is free unless something takes it in between.
        let port =
            std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map_err(LoadError::Spawn)?.port();
        let secret = || format!("{}{}", uuid::Uuid::new_v4().simple(), uuid::Uuid::new_v4().simple());
        let (identity_jwt_secret, webhook_secret, admin_token) = (secret(), secret(), secret());
        let mut command = Command::new(std::env::current_exe().map_err(LoadError::Spawn)?);
        command
            .arg("serve")
            .env("BIND_ADDR", format!("127.0.0.1:{port}"))
            .env("DATA_DIR", data_dir.path())
            .env_remove("DATABASE_URL")
            .env("EMBEDDINGS", embeddings)
            .env("IDENTITY_JWT_SECRET", &identity_jwt_secret)
            .env("ADMIN_TOKEN", &admin_token)
            .env("SHOPIFY_WEBHOOK_SECRET", &webhook_secret)
            .env("CHAT_MAX_CONNECTIONS", ABOVE_ANY_LOAD)
            .env("CHAT_MAX_PENDING_HELLO", ABOVE_ANY_LOAD)
            .env("CHAT_MAX_CONNECTIONS_PER_ADDRESS", ABOVE_ANY_LOAD)
            .env("CHAT_MESSAGES_PER_MINUTE", ABOVE_ANY_LOAD)
            .env("CHAT_MESSAGES_PER_MINUTE_PER_IP", ABOVE_ANY_LOAD)
            .env("WEBHOOK_REQUESTS_PER_MINUTE_PER_ADDRESS", ABOVE_ANY_LOAD)
            .env("HTTP_REQUESTS_PER_MINUTE_PER_ADDRESS", ABOVE_ANY_LOAD)
            // A log line per turn would cost the server more than the turn.
            .env("RUST_LOG", std::env::var("RUST_LOG").unwrap_or_else(|_| "warn".into()))
            .stdout(std::process::Stdio::null())
            .kill_on_drop(true);
        let child = command.spawn().map_err(LoadError::Spawn)?;
        let target = Target {
            base_url: format!("http://127.0.0.1:{port}"),
            identity_jwt_secret,
            webhook_secret,
            admin_token,
            server_pid: child.id(),
        };
        let mut server = Self { child, target, _data_dir: data_dir };
        server.wait_until_ready().await?;
        Ok(server)
    }

    async fn wait_until_ready(&mut self) -> Result<(), LoadError> {
        let url = format!("{}/readyz", self.target.base_url);
        let http = reqwest::Client::new();
        let deadline = Instant::now() + READY_TIMEOUT;
        let not_ready = |detail: String| LoadError::NotReady { url: url.clone(), detail };
        loop {
            if let Some(status) = self.child.try_wait().map_err(LoadError::Spawn)? {
                return Err(not_ready(format!("the service exited ({status})")));
            }
            match http.get(&url).send().await {
                Ok(response) if response.status().is_success() => return Ok(()),
                _ if Instant::now() > deadline => return Err(not_ready(format!("not ready after {READY_TIMEOUT:?}"))),
                // Polling a child's start-up: nothing to wait on but time.
                _ => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        }
    }

    /// Stops the service; its data dir goes with `self`.
    pub async fn stop(mut self) {
        let _ = self.child.kill().await;
    }
}

/// `VmRSS` of `pid` in KiB, from `/proc` (Linux); `None` elsewhere or when gone.
pub fn resident_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|line| line.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}
