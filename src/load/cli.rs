//! The `load` subcommand's options and what it prints.

use std::{path::PathBuf, time::Duration};

use super::{ChatOptions, LoadError, Pause, SpawnedServer, Target, WebhookOptions, run_chat, run_webhooks};

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Mode {
    Chat,
    Webhooks,
    /// Chat, then webhooks, against the same service.
    Both,
}

#[derive(Debug, clap::Args)]
pub struct LoadArgs {
    #[arg(long, value_enum, default_value = "chat")]
    mode: Mode,
    /// A running service, e.g. `http://127.0.0.1:8080`.
    #[arg(long, conflicts_with = "spawn", required_unless_present = "spawn")]
    url: Option<String>,
    /// Start the service (this executable's `serve`) on a free port and stop it at the end.
    #[arg(long)]
    spawn: bool,
    /// `EMBEDDINGS` of the spawned service.
    #[arg(long, default_value = "none")]
    embeddings: String,
    /// Whose RSS to report with `--url` (with `--spawn` the tool knows it).
    #[arg(long)]
    server_pid: Option<u32>,
    /// The service's secrets, with `--url` (with `--spawn` they are generated).
    #[arg(long, env = "IDENTITY_JWT_SECRET", hide_env_values = true, default_value = "")]
    identity_jwt_secret: String,
    #[arg(long, env = "SHOPIFY_WEBHOOK_SECRET", hide_env_values = true, default_value = "")]
    webhook_secret: String,
    #[arg(long, env = "ADMIN_TOKEN", hide_env_values = true, default_value = "")]
    admin_token: String,

    /// Idle sessions opened and held through the run.
    #[arg(long, default_value_t = 100)]
    sessions: usize,
    /// Conversations at once, each on its own socket.
    #[arg(long, default_value_t = 20)]
    conversations: usize,
    /// Turns per conversation.
    #[arg(long, default_value_t = 10)]
    turns: usize,
    /// Policy questions, one a line.
    #[arg(long, default_value = "benches/questions.txt")]
    questions: PathBuf,
    /// Milliseconds a customer pauses after a reply: `200..500`, `300`, or `0` (flat out).
    #[arg(long, default_value = "200..500")]
    pause_ms: Pause,
    /// Share of conversations by a signed-in demo customer asking about their own orders.
    #[arg(long, default_value_t = 0.2)]
    order_share: f64,
    /// Share of conversations that end by asking for a person.
    #[arg(long, default_value_t = 0.1)]
    handoff_share: f64,
    #[arg(long, default_value_t = 30)]
    turn_timeout_secs: u64,

    /// Webhook requests sent, redeliveries included.
    #[arg(long, default_value_t = 1000)]
    webhooks: usize,
    /// Webhooks started per second; 0: as fast as `--webhook-concurrency` allows.
    #[arg(long, default_value_t = 0.0)]
    webhook_rate: f64,
    #[arg(long, default_value_t = 16)]
    webhook_concurrency: usize,
    /// Share of webhook requests that redeliver an event already sent.
    #[arg(long, default_value_t = 0.1)]
    redelivery_share: f64,
}

pub async fn run(args: LoadArgs) -> Result<(), LoadError> {
    let spawned = match args.spawn {
        true => Some(SpawnedServer::start(&args.embeddings).await?),
        false => None,
    };
    let target = match &spawned {
        Some(server) => server.target.clone(),
        None => Target {
            base_url: args.url.clone().unwrap_or_default().trim_end_matches('/').to_owned(),
            identity_jwt_secret: args.identity_jwt_secret.clone(),
            webhook_secret: args.webhook_secret.clone(),
            admin_token: args.admin_token.clone(),
            server_pid: args.server_pid,
        },
    };
    let result = match missing_secret(&args, &target) {
        Some(problem) => Err(LoadError::Usage(problem)),
        None => drive(&args, &target).await,
    };
    if let Some(server) = spawned {
        server.stop().await;
    }
    result
}

/// With `--url`, the secrets the chosen load needs must be given: without
/// them every request would fail, and the report would measure only refusals.
fn missing_secret(args: &LoadArgs, target: &Target) -> Option<String> {
    let chat = matches!(args.mode, Mode::Chat | Mode::Both);
    let webhooks = matches!(args.mode, Mode::Webhooks | Mode::Both);
    let needs = [
        (chat && args.order_share > 0.0, &target.identity_jwt_secret, "--identity-jwt-secret (or IDENTITY_JWT_SECRET)"),
        (webhooks, &target.webhook_secret, "--webhook-secret (or SHOPIFY_WEBHOOK_SECRET)"),
        (webhooks, &target.admin_token, "--admin-token (or ADMIN_TOKEN)"),
    ];
    needs
        .into_iter()
        .find(|(needed, value, _)| *needed && value.is_empty())
        .map(|(_, _, name)| format!("load: {name} is needed to sign or check this load"))
}

async fn drive(args: &LoadArgs, target: &Target) -> Result<(), LoadError> {
    if matches!(args.mode, Mode::Chat | Mode::Both) {
        let options = ChatOptions {
            sessions: args.sessions,
            conversations: args.conversations,
            turns: args.turns,
            questions: ChatOptions::read_questions(&args.questions)?,
            pause: args.pause_ms,
            order_share: args.order_share,
            handoff_share: args.handoff_share,
            turn_timeout: Duration::from_secs(args.turn_timeout_secs),
        };
        print!("{}", run_chat(target, &options).await?);
    }
    if matches!(args.mode, Mode::Webhooks | Mode::Both) {
        let options = WebhookOptions {
            count: args.webhooks,
            rate: args.webhook_rate,
            concurrency: args.webhook_concurrency,
            redelivery_share: args.redelivery_share,
        };
        print!("{}", run_webhooks(target, &options).await?);
    }
    Ok(())
}
