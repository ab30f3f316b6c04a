//! Webhook mode: signed `orders/updated` webhooks at a given rate, a share
//! of them redeliveries (the same `X-Shopify-Webhook-Id` and body, as Shopify
//! retries), then the admin event log read back to check that every
//! distinct event is stored exactly once.

use std::{
    collections::HashMap,
    sync::Arc,
    time::{Duration, Instant},
};

use base64::{Engine, engine::general_purpose::STANDARD as BASE64};
use hmac::{Hmac, Mac};
use rand::{Rng, SeedableRng, rngs::StdRng};
use serde::Deserialize;
use sha2::Sha256;
use tokio::sync::Semaphore;

use super::{
    LoadError, Target,
    stats::{Latencies, Tally, millis, picks},
};

#[derive(Debug, Clone)]
pub struct WebhookOptions {
    /// Requests sent, redeliveries included.
    pub count: usize,
    /// Requests started per second; 0: as fast as `concurrency` allows.
    pub rate: f64,
    /// Requests in flight at most.
    pub concurrency: usize,
    /// Share of requests that redeliver an event already sent.
    pub redelivery_share: f64,
}

#[derive(Debug)]
pub struct WebhookReport {
    pub sent: usize,
    pub distinct_events: usize,
    /// Answered 200 (`stored` or `duplicate`).
    pub accepted: usize,
    /// Answered `stored`: must equal `distinct_events`.
    pub stored_responses: usize,
    pub wall: Duration,
    pub latencies: Latencies,
    pub errors: Tally,
    pub stored_once: StoredOnce,
}

/// What the event log says about this run's events.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct StoredOnce {
    pub missing: usize,
    pub duplicated: usize,
}

impl StoredOnce {
    pub fn holds(&self) -> bool {
        self.missing == 0 && self.duplicated == 0
    }
}

impl WebhookReport {
    pub fn accepted_per_second(&self) -> f64 {
        self.accepted as f64 / self.wall.as_secs_f64().max(f64::EPSILON)
    }
}

impl std::fmt::Display for WebhookReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(
            f,
            "webhooks: {} sent ({} distinct events), {} accepted in {:.2?}: {:.1} webhooks/s",
            self.sent,
            self.distinct_events,
            self.accepted,
            self.wall,
            self.accepted_per_second()
        )?;
        writeln!(
            f,
            "  latency to 200: p50 {:.2} ms  p99 {:.2} ms",
            millis(self.latencies.percentile(0.5)),
            millis(self.latencies.percentile(0.99))
        )?;
        writeln!(f, "  errors: {}", self.errors)?;
        let StoredOnce { missing, duplicated } = self.stored_once;
        match self.stored_once.holds() {
            true => writeln!(f, "  stored once: yes, each of {} events", self.distinct_events),
            false => writeln!(f, "  stored once: NO: {missing} missing, {duplicated} stored more than once"),
        }
    }
}

pub async fn run_webhooks(target: &Target, options: &WebhookOptions) -> Result<WebhookReport, LoadError> {
    let http = reqwest::Client::new();
    let url: Arc<str> = format!("{}/v1/webhooks/shopify", target.base_url).into();
    // Ids of this run only, so a shared service's older events do not count.
    let run = uuid::Uuid::new_v4().simple().to_string();
    let run: &str = &run[..12];
    let mut rng = StdRng::from_rng(&mut rand::rng());
    let gate = Arc::new(Semaphore::new(options.concurrency.max(1)));
    let mut pacer = (options.rate > 0.0).then(|| {
        let mut interval = tokio::time::interval(Duration::from_secs_f64(1.0 / options.rate));
        // Behind schedule (a slow response held the gate), catch up rather than lower the rate.
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
        interval
    });
    let mut distinct_events = 0;
    let mut requests = Vec::with_capacity(options.count);
    let started = Instant::now();
    for request in 0..options.count {
        if let Some(pacer) = pacer.as_mut() {
            pacer.tick().await;
        }
        // Which requests redeliver is exact (the share); which event they repeat is random.
        let event = match distinct_events > 0 && picks(options.redelivery_share, request) {
            true => rng.random_range(0..distinct_events),
            false => {
                distinct_events += 1;
                distinct_events - 1
            }
        };
        let webhook_id = format!("load-{run}-{event}");
        let body = order_body(event);
        let signature = sign(&target.webhook_secret, body.as_bytes());
        let permit = gate.clone().acquire_owned().await.expect("the gate is never closed");
        let (http, url) = (http.clone(), url.clone());
        requests.push(tokio::spawn(async move {
            let sent = Instant::now();
            let response = http
                .post(url.as_ref())
                .header("Content-Type", "application/json")
                .header("X-Shopify-Topic", "orders/updated")
                .header("X-Shopify-Webhook-Id", webhook_id)
                .header("X-Shopify-Hmac-Sha256", signature)
                .body(body)
                .send()
                .await;
            drop(permit);
            let outcome = match response {
                Ok(response) if response.status().is_success() => match response.json::<Ack>().await {
                    Ok(ack) => Ok(ack.status == "stored"),
                    Err(_) => Err("bad_response".to_owned()),
                },
                Ok(response) => Err(format!("http_{}", response.status().as_u16())),
                Err(error) if error.is_timeout() => Err("timeout".to_owned()),
                Err(_) => Err("transport".to_owned()),
            };
            (sent.elapsed(), outcome)
        }));
    }
    let (mut latencies, mut errors, mut accepted, mut stored_responses) =
        (Latencies::default(), Tally::default(), 0, 0);
    for request in requests {
        match request.await {
            Ok((latency, Ok(stored))) => {
                latencies.record(latency);
                accepted += 1;
                stored_responses += usize::from(stored);
            }
            Ok((_, Err(kind))) => errors.add(kind),
            Err(_) => errors.add("request_panicked"),
        }
    }
    let wall = started.elapsed();
    latencies.sort();
    let stored_once = check_stored_once(&http, target, run, distinct_events).await?;
    Ok(WebhookReport {
        sent: options.count,
        distinct_events,
        accepted,
        stored_responses,
        wall,
        latencies,
        errors,
        stored_once,
    })
}

#[derive(Deserialize)]
struct Ack {
    status: String,
}

/// An `orders/updated` body in Shopify's shape, one per event (a redelivery repeats it).
fn order_body(event: usize) -> String {
    let order_id = 820_982_911_946_154_508u64 + event as u64;
    serde_json::json!({
        "id": order_id,
        "admin_graphql_api_id": format!("gid://shopify/Order/{order_id}"),
        "name": format!("#{}", 9000 + event),
        "order_number": 9000 + event,
        "email": "load@example.com",
        "currency": "USD",
        "financial_status": "paid",
        "fulfillment_status": null,
        "total_price": "49.00",
        "created_at": "2026-01-05T10:00:00-05:00",
        "updated_at": "2026-01-05T10:05:00-05:00",
        "line_items": [{ "id": order_id + 1, "title": "Trail socks", "quantity": 2, "price": "24.50" }],
    })
    .to_string()
}

fn sign(secret: &str, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes any key length");
    mac.update(body);
    BASE64.encode(mac.finalize().into_bytes())
}

#[derive(Deserialize)]
struct EventLogPage {
    events: Vec<LoggedEvent>,
    next_before: Option<String>,
}

#[derive(Deserialize)]
struct LoggedEvent {
    webhook_id: String,
}

/// Pages through `GET /v1/admin/webhooks` counting this run's events.
async fn check_stored_once(
    http: &reqwest::Client,
    target: &Target,
    run: &str,
    distinct_events: usize,
) -> Result<StoredOnce, LoadError> {
    let prefix = format!("load-{run}-");
    let mut times_stored: HashMap<String, usize> = HashMap::with_capacity(distinct_events);
    let mut before: Option<String> = None;
    loop {
        let mut request = http
            .get(format!("{}/v1/admin/webhooks", target.base_url))
            .bearer_auth(&target.admin_token)
            .query(&[("limit", "200")]);
        if let Some(cursor) = &before {
            request = request.query(&[("before", cursor)]);
        }
        let response = request.send().await.map_err(|e| LoadError::EventLog(e.to_string()))?;
        if !response.status().is_success() {
            return Err(LoadError::EventLog(format!("HTTP {}", response.status())));
        }
        let page: EventLogPage = response.json().await.map_err(|e| LoadError::EventLog(e.to_string()))?;
        for event in page.events {
            if event.webhook_id.starts_with(&prefix) {
                *times_stored.entry(event.webhook_id).or_default() += 1;
            }
        }
        match page.next_before {
            Some(cursor) => before = Some(cursor),
            None => break,
        }
    }
    let missing = (0..distinct_events).filter(|event| !times_stored.contains_key(&format!("{prefix}{event}"))).count();
    let duplicated = times_stored.values().filter(|&&times| times > 1).count();
    Ok(StoredOnce { missing, duplicated })
}
