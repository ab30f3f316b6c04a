//! GraphQL over HTTP to the Admin API: one POST per attempt with the access
//! token header, a per-attempt timeout, retries with backoff and jitter on
//! 5xx, 429 and timeouts, and the cost throttle in front of every attempt.

use std::time::Duration;

use rand::Rng;
use serde::{Deserialize, de::DeserializeOwned};
use serde_json::{Value, json};

use super::queries::Document;
use super::throttle::{Throttle, ThrottleStatus};
use crate::config::{Secret, ShopifySettings};

/// Attempts per query when Shopify fails (5xx, 429, timeouts, resets).
const MAX_ATTEMPTS: u32 = 3;
/// How often a query may come back `THROTTLED` before we give up on it.
const MAX_THROTTLED: u32 = 5;
/// The first retry waits about this long; each later one doubles it.
const BACKOFF_BASE: Duration = Duration::from_millis(200);

#[derive(Debug, thiserror::Error)]
pub enum ShopifyError {
    #[error("Shopify did not answer within {0:?}")]
    Timeout(Duration),
    #[error("cannot reach Shopify: {0}")]
    Transport(String),
    #[error("Shopify answered HTTP {0}")]
    Status(u16),
    #[error("Shopify kept throttling the query")]
    Throttled,
    #[error("Shopify refused the query: {0}")]
    GraphQl(String),
    #[error("unexpected response from Shopify: {0}")]
    Decode(String),
}

impl ShopifyError {
    fn retryable(&self) -> bool {
        match self {
            ShopifyError::Timeout(_) | ShopifyError::Transport(_) => true,
            ShopifyError::Status(status) => *status >= 500 || *status == 429,
            _ => false,
        }
    }
}

pub struct ShopifyClient {
    http: reqwest::Client,
    url: String,
    token: Secret,
    timeout: Duration,
    throttle: Throttle,
}

#[derive(Deserialize)]
struct Envelope {
    data: Option<Value>,
    #[serde(default)]
    errors: Vec<GraphQlError>,
    extensions: Option<Extensions>,
}

#[derive(Deserialize)]
struct GraphQlError {
    message: String,
    extensions: Option<ErrorExtensions>,
}

#[derive(Deserialize)]
struct ErrorExtensions {
    code: Option<String>,
}

#[derive(Deserialize)]
struct Extensions {
    cost: Option<Cost>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Cost {
    requested_query_cost: Option<f64>,
    throttle_status: Option<ThrottleStatus>,
}

/// What one attempt came back with.
enum Answer {
    Data(Value),
    Throttled,
}

impl ShopifyClient {
    pub fn new(settings: &ShopifySettings) -> Result<Self, ShopifyError> {
        let http = reqwest::Client::builder()
            .user_agent(concat!("storefront-assistant/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| ShopifyError::Transport(e.to_string()))?;
        Ok(Self {
            http,
            url: settings.admin_api_url.clone(),
            token: settings.admin_token.clone(),
            timeout: settings.timeout,
            throttle: Throttle::default(),
        })
    }

    /// Runs `doc` and decodes its `data` into `T`, waiting out the throttle
    /// and retrying what a retry can fix.
    #[tracing::instrument(skip(self, doc, variables), fields(query = doc.name))]
    pub async fn query<T: DeserializeOwned>(&self, doc: &Document, variables: Value) -> Result<T, ShopifyError> {
        let body = json!({ "query": doc.text, "operationName": doc.name, "variables": variables });
        let (mut failures, mut throttled) = (0, 0);
        loop {
            let taken = self.throttle.acquire(doc.name).await;
            match self.attempt(doc, &body, taken).await {
                Ok(Answer::Data(data)) => {
                    return serde_json::from_value(data).map_err(|e| ShopifyError::Decode(e.to_string()));
                }
                Ok(Answer::Throttled) => {
                    throttled += 1;
                    if throttled >= MAX_THROTTLED {
                        return Err(ShopifyError::Throttled);
                    }
                    // The throttle now knows the bucket is short; acquire() waits for it.
                    tracing::info!(attempt = throttled, "Shopify throttled the query; waiting for the bucket");
                }
                Err(error) if error.retryable() && failures + 1 < MAX_ATTEMPTS => {
                    failures += 1;
                    let wait = backoff(failures);
                    tracing::warn!(%error, attempt = failures, wait_ms = wait.as_millis() as u64, "retrying Shopify");
                    tokio::time::sleep(wait).await;
                }
                Err(error) => return Err(error),
            }
        }
    }

    async fn attempt(&self, doc: &Document, body: &Value, taken: f64) -> Result<Answer, ShopifyError> {
        let envelope = self.send(body).await;
        let cost = envelope.as_ref().ok().and_then(|e| e.extensions.as_ref()).and_then(|e| e.cost.as_ref());
        self.throttle.settle(
            doc.name,
            taken,
            cost.and_then(|c| c.requested_query_cost),
            cost.and_then(|c| c.throttle_status),
        );
        let envelope = envelope?;
        if envelope.errors.iter().any(|e| e.extensions.as_ref().and_then(|x| x.code.as_deref()) == Some("THROTTLED")) {
            return Ok(Answer::Throttled);
        }
        if let Some(first) = envelope.errors.first() {
            return Err(ShopifyError::GraphQl(first.message.clone()));
        }
        envelope.data.map(Answer::Data).ok_or_else(|| ShopifyError::Decode("no data".into()))
    }

    async fn send(&self, body: &Value) -> Result<Envelope, ShopifyError> {
        let response = self
            .http
            .post(&self.url)
            .header("X-Shopify-Access-Token", self.token.expose())
            .timeout(self.timeout)
            .json(body)
            .send()
            .await
            .map_err(|e| self.transport_error(e))?;
        let status = response.status();
        if !status.is_success() {
            return Err(ShopifyError::Status(status.as_u16()));
        }
        response
            .json()
            .await
            .map_err(|e| if e.is_timeout() { self.transport_error(e) } else { ShopifyError::Decode(e.to_string()) })
    }

    fn transport_error(&self, error: reqwest::Error) -> ShopifyError {
        if error.is_timeout() {
            ShopifyError::Timeout(self.timeout)
        } else {
            // Without the URL: it is ours, and the chain is enough to diagnose.
            ShopifyError::Transport(error.without_url().to_string())
        }
    }
}

/// Exponential backoff with jitter: half fixed, half random, so replicas
/// that failed together do not retry together.
fn backoff(failures: u32) -> Duration {
    let ceiling = BACKOFF_BASE * 2u32.pow(failures.saturating_sub(1).min(6));
    let half = ceiling / 2;
    half + rand::rng().random_range(Duration::ZERO..=half)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_and_stays_within_its_jitter_band() {
        for failures in 1..=4 {
            let ceiling = BACKOFF_BASE * 2u32.pow(failures - 1);
            let wait = backoff(failures);
            assert!(wait >= ceiling / 2 && wait <= ceiling, "{failures}: {wait:?}");
        }
    }
}
