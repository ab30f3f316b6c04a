use std::process::ExitCode;

use std::path::PathBuf;

use clap::{Parser, Subcommand};
use storefront_assistant::{
    app::Application, assistant::eval, config::Settings, db::Db, knowledge::cli as kb, load, telemetry,
};

/// A storefront AI support assistant. Settings come from the environment
/// (see README.md); with none, it runs on its embedded defaults.
#[derive(Parser)]
#[command(version, about)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the chat gateway, widget and APIs (the default).
    Serve,
    /// Apply database migrations and exit.
    Migrate,
    /// Knowledge-base maintenance.
    #[command(subcommand)]
    Kb(KbCommand),
    /// Judge the assistant on the labelled sets in eval/: intent accuracy,
    /// escalation recall, false escalations, right/wrong/declined answers.
    Eval {
        #[arg(long, default_value = "eval")]
        dir: PathBuf,
        /// Also sweep the classifier's knobs and the answer test (tuning sets only).
        #[arg(long)]
        tune: bool,
        /// List what it got wrong on the tuning sets (never the held-out ones).
        #[arg(long)]
        misses: bool,
    },
    /// Load from outside: held sessions, conversations, signed webhooks
    /// against a running service (`--url`) or one it starts (`--spawn`).
    Load(Box<load::cli::LoadArgs>),
}

#[derive(Subcommand)]
enum KbCommand {
    /// Import KNOWLEDGE_DIR (idempotent: unchanged files are skipped).
    Import,
    /// Rebuild the vector index from the database, re-embedding everything.
    Reindex,
    /// Print recall@1, recall@3 and MRR of lexical, dense and hybrid retrieval,
    /// for each labelled set (default: the tuning set and the held-out set).
    Eval {
        #[arg(long, num_args = 1.., default_values = ["eval/retrieval.yaml", "eval/holdout.yaml"])]
        cases: Vec<PathBuf>,
    },
    /// Print import throughput and retrieval latency (p50, p99).
    Bench {
        #[arg(long, default_value = "eval/retrieval.yaml")]
        cases: PathBuf,
        #[arg(long, default_value_t = 20)]
        rounds: usize,
    },
}

#[tokio::main]
async fn main() -> ExitCode {
    telemetry::init();
    let cli = Cli::parse();
    let settings = match Settings::from_env() {
        Ok(settings) => settings,
        Err(error) => {
            eprintln!("{error}");
            return ExitCode::FAILURE;
        }
    };
    let result = match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => serve(settings).await,
        Command::Migrate => migrate(settings).await,
        Command::Kb(KbCommand::Import) => kb::import(&settings).await,
        Command::Kb(KbCommand::Reindex) => kb::reindex(&settings).await,
        Command::Kb(KbCommand::Eval { cases }) => kb::evaluate(&settings, &cases).await,
        Command::Kb(KbCommand::Bench { cases, rounds }) => kb::bench(&settings, &cases, rounds).await,
        Command::Eval { dir, tune, misses } => eval::cli(&settings, &dir, tune, misses).await,
        Command::Load(args) => load::cli::run(*args).await.map_err(Into::into),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("{error}");
            ExitCode::FAILURE
        }
    }
}

async fn serve(settings: Settings) -> anyhow::Result<()> {
    let public_url = settings.public_url.clone();
    let app = Application::build(settings).await?;
    tracing::info!(address = %app.local_addr(), "serving; open {public_url}/ for the demo store");
    let shutdown = app.shutdown_token();
    tokio::spawn(async move {
        wait_for_signal().await;
        tracing::info!("stopping: finishing in-flight turns");
        shutdown.cancel();
    });
    app.run_until_stopped().await?;
    Ok(())
}

async fn migrate(settings: Settings) -> anyhow::Result<()> {
    let db = Db::connect(&settings.database_url).await?;
    db.migrate().await?;
    tracing::info!("migrations applied");
    Ok(())
}

async fn wait_for_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(term) => term,
            Err(_) => return ctrl_c.await.unwrap_or(()),
        };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    ctrl_c.await.unwrap_or(());
}
