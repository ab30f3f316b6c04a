//! `storefront-assistant load`: load from outside, over real sockets. Chat
//! mode holds N idle widget sessions, then drives C conversations of T turns
//! (policy questions, verified order questions, requests for a person);
//! webhook mode sends signed Shopify webhooks with redeliveries and checks
//! through the admin API that each event was stored once. Either against a
//! running service (`--url`) or one the tool starts itself (`--spawn`).

mod chat;
pub mod cli;
mod server;
mod socket;
mod stats;
mod webhooks;

use std::path::PathBuf;

pub use chat::{ChatOptions, ChatReport, Pause, run_chat};
pub use server::{SpawnedServer, resident_kib};
pub use stats::{Latencies, Tally};
pub use webhooks::{StoredOnce, WebhookOptions, WebhookReport, run_webhooks};

/// Where the load goes, and the secrets the tool needs to sign with.
#[derive(Debug, Clone)]
pub struct Target {
    /// `http://host:port` of the service.
    pub base_url: String,
    /// Signs customer tokens (the service's `IDENTITY_JWT_SECRET`).
    pub identity_jwt_secret: String,
    /// Signs webhooks (the service's `SHOPIFY_WEBHOOK_SECRET`).
    pub webhook_secret: String,
    /// Reads the event log (the service's `ADMIN_TOKEN`).
    pub admin_token: String,
    /// Whose RSS to report; `None`: not reported.
    pub server_pid: Option<u32>,
}

impl Target {
    fn ws_url(&self, path: &str) -> String {
        let rest = self.base_url.trim_start_matches("http");
        format!("ws{rest}{path}")
    }
}

#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("{0}")]
    Usage(String),
    #[error("could not start the service: {0}")]
    Spawn(#[source] std::io::Error),
    #[error("the service did not become ready at {url}: {detail}")]
    NotReady { url: String, detail: String },
    #[error("could not read the question file {path}: {source}")]
    Questions { path: PathBuf, source: std::io::Error },
    #[error("the question file {0} has no questions")]
    NoQuestions(PathBuf),
    #[error("could not read the admin event log: {0}")]
    EventLog(String),
    #[error("could not sign a customer token: {0}")]
    Token(#[from] jsonwebtoken::errors::Error),
}
