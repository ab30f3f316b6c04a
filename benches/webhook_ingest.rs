//! Shopify webhooks ingested per second, end to end: real HTTP to the real
//! service, HMAC check over the raw body, durable insert into SQLite, then
//! processing. Prints throughput and latency percentiles.
//!
//! `cargo bench --bench webhook_ingest` (BENCH_WEBHOOKS, BENCH_CONCURRENCY to vary).

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use base64::{Engine, engine::general_purpose::STANDARD as BASE64};
use hmac::{Hmac, Mac};
use sha2::Sha256;
use storefront_assistant::{
    app::Application, commerce::shopify::webhooks::signature_valid, config::Settings, db::Db, load::Latencies,
};
use tokio::sync::Semaphore;

const SECRET: &str = "bench-webhook-secret";

fn env_or(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// Shopify's sample order body when the contracts are present; else a stand-in of similar size.
fn order_body() -> Vec<u8> {
    let sample = concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/contracts/shopify/webhooks/Order.json");
    std::fs::read(sample).unwrap_or_else(|_| {
        eprintln!("notice: contracts not found; using a synthetic order body");
        let filler = "x".repeat(9_000);
        format!(r##"{{"id":1,"name":"#1001","updated_at":"2021-12-31T19:00:00-05:00","note":"{filler}"}}"##)
            .into_bytes()
    })
}

fn sign(body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(SECRET.as_bytes()).expect("any key length");
    mac.update(body);
    BASE64.encode(mac.finalize().into_bytes())
}

#[tokio::main]
async fn main() {
    let total = env_or("BENCH_WEBHOOKS", 2_000);
    let concurrency = env_or("BENCH_CONCURRENCY", 16);
    let body = Arc::new(order_body());
    let signature = Arc::new(sign(&body));

    // The signature check alone, in process: what storage costs on top of it.
    let started = Instant::now();
    for _ in 0..total {
        assert!(signature_valid(SECRET.as_bytes(), &body, Some(&signature)));
    }
    let verify_each = started.elapsed() / total as u32;

    let dir = tempfile::tempdir().expect("temp dir");
    let root = env!("CARGO_MANIFEST_DIR");
    let database_url = format!("sqlite://{}/bench.db", dir.path().display());
    let vars = [
        ("BIND_ADDR", "127.0.0.1:0".to_owned()),
        ("DATA_DIR", dir.path().display().to_string()),
        ("DATABASE_URL", database_url.clone()),
        ("KNOWLEDGE_DIR", format!("{root}/knowledge")),
        ("PROMPTS_DIR", format!("{root}/prompts")),
        ("SHOPIFY_WEBHOOK_SECRET", SECRET.to_owned()),
        // The bench is one client sending everything: it measures ingest, not the per-client limit.
        ("WEBHOOK_REQUESTS_PER_MINUTE_PER_ADDRESS", u32::MAX.to_string()),
    ];
    let settings = Settings::from_lookup(|name| vars.iter().find(|(k, _)| *k == name).map(|(_, v)| v.clone()))
        .expect("valid settings");
    let app = Application::build(settings).await.expect("the service starts");
    let url = format!("http://{}/v1/webhooks/shopify", app.local_addr());
    let shutdown = app.shutdown_token();
    let server = tokio::spawn(app.run_until_stopped());
    let http = reqwest::Client::new();

    let gate = Arc::new(Semaphore::new(concurrency));
    let started = Instant::now();
    let mut requests = Vec::with_capacity(total);
    for i in 0..total {
        let permit = gate.clone().acquire_owned().await.expect("semaphore open");
        let (http, url, body, signature) = (http.clone(), url.clone(), body.clone(), signature.clone());
        requests.push(tokio::spawn(async move {
            let sent = Instant::now();
            let response = http
                .post(&url)
                .header("X-Shopify-Topic", "orders/updated")
                .header("X-Shopify-Webhook-Id", format!("bench-{i}"))
                .header("X-Shopify-Hmac-Sha256", signature.as_str())
                .body(body.as_ref().clone())
                .send()
                .await
                .expect("request");
            assert_eq!(response.status(), 200, "webhook accepted");
            drop(permit);
            sent.elapsed()
        }));
    }
    let mut latencies = Vec::with_capacity(total);
    for request in requests {
        latencies.push(request.await.expect("request task"));
    }
    let ingest = started.elapsed();

    // Processing runs after the 200; wait (bounded) until it has caught up.
    let db = Db::connect(&database_url).await.expect("open the bench database");
    let deadline = Instant::now() + Duration::from_secs(120);
    while !db.unprocessed_webhooks().await.expect("query").is_empty() {
        assert!(Instant::now() < deadline, "processing did not catch up");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let drained = started.elapsed();
    shutdown.cancel();
    let _ = server.await;

    let latencies = Latencies::from(latencies);
    let per_second = |d: Duration| total as f64 / d.as_secs_f64();
    println!(
        "webhook ingest: {total} signed orders/updated bodies of {} bytes, {concurrency} concurrent, SQLite",
        body.len()
    );
    println!("  acknowledged (verified + stored): {:>8.0} webhooks/s  ({ingest:.2?})", per_second(ingest));
    println!("  processed end to end:            {:>8.0} webhooks/s  ({drained:.2?})", per_second(drained));
    println!(
        "  latency to 200: p50 {:.2?}  p99 {:.2?}  max {:.2?}",
        latencies.percentile(0.5),
        latencies.percentile(0.99),
        latencies.percentile(1.0)
    );
    println!(
        "  signature check alone: {verify_each:.2?} per webhook ({:.3}% of the median latency)",
        100.0 * verify_each.as_secs_f64() / latencies.percentile(0.5).as_secs_f64()
    );
}
