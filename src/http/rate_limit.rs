//! Per-client rate limits of the public routes anyone can call without a
//! session: the App Proxy, the webhooks and `/readyz`. Each has its own
//! bucket per client address, so a flood of one does not starve another.
//! Refusals are 429 with `Retry-After`, before the body is read.

use std::num::NonZeroU32;

use axum::{
    extract::{Request, State},
    middleware::Next,
    response::{IntoResponse, Response},
};
use governor::{
    DefaultKeyedRateLimiter, Quota,
    clock::{Clock, DefaultClock},
};

use super::client_addr::{self, AddressKey};
use super::error::ApiError;
use crate::app::AppState;
use crate::config::Settings;

pub struct PublicLimits {
    app_proxy: DefaultKeyedRateLimiter<AddressKey>,
    webhooks: DefaultKeyedRateLimiter<AddressKey>,
    readiness: DefaultKeyedRateLimiter<AddressKey>,
    clock: DefaultClock,
}

fn per_minute(n: u32) -> Quota {
    Quota::per_minute(NonZeroU32::new(n).unwrap_or(NonZeroU32::MIN))
}

impl PublicLimits {
    pub fn new(settings: &Settings) -> Self {
        let public = per_minute(settings.http_requests_per_minute_per_address);
        Self {
            app_proxy: DefaultKeyedRateLimiter::keyed(public),
            webhooks: DefaultKeyedRateLimiter::keyed(per_minute(settings.webhook_requests_per_minute_per_address)),
            readiness: DefaultKeyedRateLimiter::keyed(public),
            clock: DefaultClock::default(),
        }
    }

    /// The bucket a path is counted in; `None`: not a limited route.
    fn limiter(&self, path: &str) -> Option<&DefaultKeyedRateLimiter<AddressKey>> {
        match path {
            "/v1/identity/app-proxy" => Some(&self.app_proxy),
            "/v1/webhooks/shopify" | "/v1/webhooks/intercom" => Some(&self.webhooks),
            "/readyz" => Some(&self.readiness),
            _ => None,
        }
    }

    /// May `client` call `path` now?
    pub fn check(&self, path: &str, client: AddressKey) -> Result<(), ApiError> {
        let Some(limiter) = self.limiter(path) else { return Ok(()) };
        limiter.check_key(&client).map_err(|not_until| ApiError::RateLimited {
            retry_after: Some(not_until.wait_time_from(self.clock.now())),
        })
    }

    /// Forgets addresses that have been quiet, so the tables stay small.
    pub fn sweep(&self) {
        self.app_proxy.retain_recent();
        self.webhooks.retain_recent();
        self.readiness.retain_recent();
    }
}

/// Middleware over the whole router: limited routes are counted, others pass.
pub async fn enforce(State(app): State<AppState>, request: Request, next: Next) -> Response {
    let client = client_addr::from_parts(request.extensions(), request.headers(), &app.settings.trusted_proxies);
    if let Err(refused) = app.public_limits.check(request.uri().path(), client.key()) {
        tracing::info!(path = request.uri().path(), client = %client.0, "public route rate-limited");
        return refused.into_response();
    }
    next.run(request).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::client_addr::ClientAddr;

    #[test]
    fn only_the_public_routes_are_counted_each_in_its_own_bucket() {
        let one = |name: &str| (name == "HTTP_REQUESTS_PER_MINUTE_PER_ADDRESS").then(|| "1".to_owned());
        let limits = PublicLimits::new(&Settings::from_lookup(one).unwrap());
        let client = ClientAddr("192.0.2.1".parse().unwrap()).key();
        assert!(limits.check("/readyz", client).is_ok());
        let refused = limits.check("/readyz", client);
        assert!(matches!(refused, Err(ApiError::RateLimited { retry_after: Some(wait) }) if !wait.is_zero()));
        assert!(limits.check("/v1/identity/app-proxy", client).is_ok(), "the App Proxy has its own bucket");
        let other = ClientAddr("192.0.2.2".parse().unwrap()).key();
        assert!(limits.check("/readyz", other).is_ok(), "another client has its own bucket");
        for _ in 0..3 {
            assert!(limits.check("/healthz", client).is_ok(), "liveness is not limited");
        }
    }
}
