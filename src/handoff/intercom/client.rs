//! JSON over HTTP to Intercom's REST API: the bearer token, the
//! `Intercom-Version` header, a per-attempt timeout, and every failure sorted
//! into retryable (with the wait Intercom asked for) or permanent. Retries
//! themselves belong to the outbox, which survives restarts.

use std::time::Duration;

use reqwest::{Method, StatusCode, header::HeaderMap};
use serde_json::Value;

use crate::config::{IntercomSettings, Secret};
use crate::handoff::DeskError;

pub struct Client {
    http: reqwest::Client,
    base: String,
    token: Secret,
    version: String,
}

/// A refused request: the status and Intercom's error body, for the callers
/// that treat one refusal as an answer (a 409 on contact create).
#[derive(Debug)]
pub struct Refusal {
    pub status: StatusCode,
    pub body: Value,
    pub retry_after: Option<Duration>,
}

impl Refusal {
    /// The first error message of an `error.list` body.
    pub fn message(&self) -> &str {
        self.body["errors"][0]["message"].as_str().unwrap_or("")
    }
}

impl From<Refusal> for DeskError {
    fn from(r: Refusal) -> Self {
        let what = format!("Intercom answered HTTP {}: {}", r.status.as_u16(), r.message());
        let retryable = r.status.is_server_error()
            || r.status == StatusCode::TOO_MANY_REQUESTS
            || r.status == StatusCode::REQUEST_TIMEOUT;
        if retryable {
            DeskError::Retryable { message: what, retry_after: r.retry_after }
        } else {
            DeskError::Permanent(what)
        }
    }
}

/// Either Intercom's refusal or no answer at all.
#[derive(Debug)]
pub enum Failure {
    Refused(Refusal),
    Unreachable(String),
}

impl From<Failure> for DeskError {
    fn from(f: Failure) -> Self {
        match f {
            Failure::Refused(r) => r.into(),
            Failure::Unreachable(why) => DeskError::retryable(why),
        }
    }
}

impl Client {
    pub fn new(settings: &IntercomSettings) -> Result<Self, reqwest::Error> {
        let http = reqwest::Client::builder().timeout(settings.timeout).build()?;
        Ok(Self {
            http,
            base: settings.api_url.clone(),
            token: settings.token.clone(),
            version: settings.api_version.clone(),
        })
    }

    #[tracing::instrument(name = "intercom", skip(self, body), fields(status))]
    pub async fn call(&self, method: Method, path: &str, body: Option<&Value>) -> Result<Value, Failure> {
        let mut request = self
            .http
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(self.token.expose())
            .header("Intercom-Version", &self.version)
            .header("Accept", "application/json");
        if let Some(body) = body {
            request = request.json(body);
        }
        let response = request.send().await.map_err(|e| {
            let why = if e.is_timeout() { "Intercom did not answer in time" } else { "cannot reach Intercom" };
            // Without the URL: it is ours, but the cause chain is what helps.
            Failure::Unreachable(format!("{why}: {}", e.without_url()))
        })?;
        let status = response.status();
        tracing::Span::current().record("status", status.as_u16());
        let retry_after = retry_after(response.headers());
        let text =
            response.text().await.map_err(|e| Failure::Unreachable(format!("Intercom's answer broke off: {e}")))?;
        let body: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
        if status.is_success() { Ok(body) } else { Err(Failure::Refused(Refusal { status, body, retry_after })) }
    }
}

/// `Retry-After` (seconds) or, failing that, `X-RateLimit-Reset` (the Unix
/// second the window reopens).
pub fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let number = |name: &str| headers.get(name)?.to_str().ok()?.trim().parse::<u64>().ok();
    if let Some(secs) = number("retry-after") {
        return Some(Duration::from_secs(secs));
    }
    let reset = number("x-ratelimit-reset")?;
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).ok()?.as_secs();
    Some(Duration::from_secs(reset.saturating_sub(now).max(1)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_rate_limit_says_when_to_come_back() {
        let mut headers = HeaderMap::new();
        headers.insert("retry-after", "7".parse().unwrap());
        assert_eq!(retry_after(&headers), Some(Duration::from_secs(7)));
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
        let mut headers = HeaderMap::new();
        headers.insert("x-ratelimit-reset", (now + 30).to_string().parse().unwrap());
        let wait = retry_after(&headers).unwrap();
        assert!(wait <= Duration::from_secs(30) && wait >= Duration::from_secs(28), "{wait:?}");
        assert_eq!(retry_after(&HeaderMap::new()), None);
    }

    #[test]
    fn server_errors_and_rate_limits_are_retried_and_bad_requests_are_not() {
        let refusal = |status: u16| Refusal {
            status: StatusCode::from_u16(status).unwrap(),
            body: Value::Null,
            retry_after: None,
        };
        assert!(DeskError::from(refusal(503)).is_retryable());
        assert!(DeskError::from(refusal(429)).is_retryable());
        assert!(!DeskError::from(refusal(400)).is_retryable());
        assert!(!DeskError::from(refusal(401)).is_retryable());
    }
}
