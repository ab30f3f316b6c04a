//! Chat turns per second and turn latency, end to end: a real WebSocket
//! client per customer, the real service on SQLite, every frame persisted
//! before it is sent. Also the turn pipeline alone (understand, decide, demo
//! store, retrieval, templates) in process, to show what storage and the
//! socket add. Prints medians and percentiles.
//!
//! `cargo bench --bench chat_turns` (BENCH_CLIENTS, BENCH_TURNS to vary).

use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use storefront_assistant::{
    app::Application,
    assistant::{TurnContext, eval},
    config::Settings,
    identity::Identity,
    load::Latencies,
};
use tokio_tungstenite::tungstenite::Message;

const QUESTIONS: &[&str] = &[
    "Do you ship to Canada?",
    "How long does a refund take to reach my card?",
    "Can I return boots I wore outside?",
    "Do you have the Ridgeline hiking boots in size 10?",
    "Where is my order #1001?",
    "Can I pay in installments?",
    "hello",
    "What size should I get if I'm between sizes?",
];

fn env_or(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn report(label: &str, samples: Vec<Duration>, wall: Duration) {
    let samples = Latencies::from(samples);
    println!(
        "{label:<34} {:>8.0} turns/s   p50 {:>7.3} ms   p99 {:>7.3} ms",
        samples.len() as f64 / wall.as_secs_f64(),
        samples.percentile(0.5).as_secs_f64() * 1e3,
        samples.percentile(0.99).as_secs_f64() * 1e3,
    );
}

#[tokio::main]
async fn main() {
    let clients = env_or("BENCH_CLIENTS", 8);
    let turns = env_or("BENCH_TURNS", 100);
    let root = env!("CARGO_MANIFEST_DIR");

    let dir = tempfile::tempdir().expect("temp dir");
    let vars = [
        ("BIND_ADDR", "127.0.0.1:0".to_owned()),
        ("DATA_DIR", dir.path().display().to_string()),
        ("DATABASE_URL", format!("sqlite://{}/bench.db", dir.path().display())),
        ("KNOWLEDGE_DIR", format!("{root}/knowledge")),
        ("PROMPTS_DIR", format!("{root}/prompts")),
        ("EMBEDDINGS", "none".to_owned()),
        ("CHAT_MESSAGES_PER_MINUTE", "1000000".to_owned()),
        ("CHAT_MESSAGES_PER_MINUTE_PER_IP", "1000000".to_owned()),
    ];
    let settings =
        Settings::from_lookup(|name| vars.iter().find(|(k, _)| *k == name).map(|(_, v)| v.clone())).expect("settings");

    // The pipeline alone, over the knowledge base the service imports too.
    let scratch = tempfile::tempdir().expect("temp dir");
    let assistant = eval::scratch_assistant(&settings, scratch.path()).await.expect("assistant");
    let identity = Identity::Guest;
    let ctx = TurnContext { identity: &identity, page: None, prior_unanswered: 0, escalated: false };
    let mut alone = Vec::new();
    let started = Instant::now();
    for i in 0..clients * turns {
        let t = Instant::now();
        let question = QUESTIONS[i % QUESTIONS.len()];
        let understanding = assistant.understand(question).await;
        std::hint::black_box(assistant.respond(question, &understanding, &ctx).await);
        alone.push(t.elapsed());
    }
    let alone_wall = started.elapsed();

    // End to end.
    let app = Application::build(settings).await.expect("app");
    let url = format!("ws://{}/v1/chat", app.local_addr());
    tokio::spawn(app.run_until_stopped());

    let started = Instant::now();
    let tasks: Vec<_> = (0..clients)
        .map(|c| {
            let url = url.clone();
            tokio::spawn(async move {
                let (mut ws, _) = tokio_tungstenite::connect_async(&url).await.expect("connect");
                ws.send(Message::text(json!({ "type": "hello" }).to_string())).await.unwrap();
                ws.next().await.expect("welcome").unwrap();
                let mut samples = Vec::with_capacity(turns);
                for i in 0..turns {
                    let text = QUESTIONS[(c + i) % QUESTIONS.len()];
                    let t = Instant::now();
                    let frame = json!({ "type": "message", "id": format!("{c}-{i}"), "text": text });
                    ws.send(Message::text(frame.to_string())).await.unwrap();
                    // A turn ends with `typing: off`, sent after its frames.
                    loop {
                        let Message::Text(text) = ws.next().await.expect("frame").unwrap() else { continue };
                        let frame: Value = serde_json::from_str(&text).unwrap();
                        if frame["type"] == "typing" && frame["on"] == false {
                            break;
                        }
                    }
                    samples.push(t.elapsed());
                }
                samples
            })
        })
        .collect();
    let mut end_to_end = Vec::new();
    for task in tasks {
        end_to_end.extend(task.await.expect("client"));
    }
    let wall = started.elapsed();

    println!("{clients} clients × {turns} turns, questions mixed across intents");
    report("pipeline alone (1 task)", alone, alone_wall);
    report("end to end (WebSocket + SQLite)", end_to_end, wall);
}
