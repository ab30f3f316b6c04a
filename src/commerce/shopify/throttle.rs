//! Shopify's cost-based throttle, estimated locally.
//!
//! Every GraphQL query costs points from a leaky bucket that refills at
//! `restoreRate` points a second. Each response reports the bucket in
//! `extensions.cost.throttleStatus`; between responses we estimate it, and a
//! query that would overdraw the estimate waits for the refill instead of
//! being sent to fail with `THROTTLED`. A burst therefore queues. A report is
//! taken minus what is still in flight, since Shopify had not charged that yet.

use std::{
    collections::HashMap,
    sync::Mutex,
    time::{Duration, Instant},
};

use serde::Deserialize;

/// Points assumed for a query we have not yet seen Shopify price.
const UNKNOWN_COST: f64 = 50.0;

/// `extensions.cost.throttleStatus` as Shopify reports it.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ThrottleStatus {
    pub maximum_available: f64,
    pub currently_available: f64,
    pub restore_rate: f64,
}

pub struct Throttle {
    bucket: Mutex<Bucket>,
}

#[derive(Debug)]
struct Bucket {
    maximum: f64,
    available: f64,
    restore_rate: f64,
    at: Instant,
    /// Points taken by queries sent but not yet answered.
    in_flight: f64,
    /// The last `requestedQueryCost` Shopify reported per query.
    costs: HashMap<&'static str, f64>,
}

impl Default for Throttle {
    /// Starts from Shopify's standard-plan bucket until a response says otherwise.
    fn default() -> Self {
        Self {
            bucket: Mutex::new(Bucket {
                maximum: 2000.0,
                available: 2000.0,
                restore_rate: 100.0,
                at: Instant::now(),
                in_flight: 0.0,
                costs: HashMap::new(),
            }),
        }
    }
}

impl Throttle {
    /// Waits until the estimated bucket holds the query's cost, then spends
    /// it; returns the points taken, to hand back to [`Throttle::settle`].
    pub async fn acquire(&self, query: &'static str) -> f64 {
        loop {
            let wait = self.lock().try_take(query, Instant::now());
            match wait {
                Ok(taken) => return taken,
                Err(wait) => {
                    tracing::debug!(query, wait_ms = wait.as_millis() as u64, "waiting for Shopify's cost bucket");
                    tokio::time::sleep(wait).await;
                }
            }
        }
    }

    /// The query that took `taken` points is answered (or failed): takes what
    /// Shopify reported, if anything, as the truth about the bucket.
    pub fn settle(&self, query: &'static str, taken: f64, requested: Option<f64>, status: Option<ThrottleStatus>) {
        self.lock().settle(query, taken, requested, status, Instant::now());
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Bucket> {
        // The bucket is plain numbers: a panic elsewhere cannot leave it inconsistent.
        self.bucket.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl Bucket {
    fn refill(&mut self, now: Instant) {
        let elapsed = now.saturating_duration_since(self.at).as_secs_f64();
        self.available = (self.available + elapsed * self.restore_rate).min(self.maximum);
        self.at = now;
    }

    /// Spends the query's cost, or says how long until the bucket holds it.
    fn try_take(&mut self, query: &'static str, now: Instant) -> Result<f64, Duration> {
        self.refill(now);
        // A query can never cost more than a full bucket holds.
        let cost = self.costs.get(query).copied().unwrap_or(UNKNOWN_COST).min(self.maximum);
        if self.available >= cost {
            self.available -= cost;
            self.in_flight += cost;
            return Ok(cost);
        }
        let seconds = (cost - self.available) / self.restore_rate.max(1.0);
        Err(Duration::from_secs_f64(seconds).max(Duration::from_millis(1)))
    }

    fn settle(
        &mut self,
        query: &'static str,
        taken: f64,
        requested: Option<f64>,
        status: Option<ThrottleStatus>,
        now: Instant,
    ) {
        self.in_flight = (self.in_flight - taken).max(0.0);
        if let Some(cost) = requested.filter(|c| c.is_finite() && *c >= 0.0) {
            self.costs.insert(query, cost);
        }
        if let Some(s) = status.filter(|s| s.maximum_available > 0.0 && s.restore_rate > 0.0) {
            self.maximum = s.maximum_available;
            self.available = (s.currently_available - self.in_flight).clamp(0.0, s.maximum_available);
            self.restore_rate = s.restore_rate;
            self.at = now;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bucket(available: f64, restore_rate: f64, now: Instant) -> Bucket {
        Bucket { maximum: 1000.0, available, restore_rate, at: now, in_flight: 0.0, costs: HashMap::new() }
    }

    #[test]
    fn a_burst_beyond_the_bucket_waits_for_the_refill_instead_of_failing() {
        let now = Instant::now();
        let mut b = bucket(120.0, 50.0, now);
        assert_eq!(b.try_take("q", now), Ok(50.0));
        assert_eq!(b.try_take("q", now), Ok(50.0));
        // 20 points left, 50 needed, 50 a second: 0.6 s.
        assert_eq!(b.try_take("q", now), Err(Duration::from_millis(600)));
        assert!(b.try_take("q", now + Duration::from_millis(600)).is_ok());
    }

    #[test]
    fn shopifys_report_replaces_the_estimate_and_prices_the_query() {
        let now = Instant::now();
        let mut b = bucket(1000.0, 50.0, now);
        let status = ThrottleStatus { maximum_available: 2000.0, currently_available: 10.0, restore_rate: 100.0 };
        b.settle("q", 0.0, Some(210.0), Some(status), now);
        assert_eq!(b.try_take("q", now), Err(Duration::from_secs(2)));
        assert!(b.try_take("q", now + Duration::from_secs(2)).is_ok());
    }

    #[test]
    fn a_report_does_not_forget_queries_still_in_flight() {
        let now = Instant::now();
        let mut b = bucket(100.0, 50.0, now);
        let first = b.try_take("q", now).unwrap();
        let _second = b.try_take("q", now).unwrap();
        // The first is answered; Shopify has not yet charged the second.
        let status = ThrottleStatus { maximum_available: 1000.0, currently_available: 50.0, restore_rate: 50.0 };
        b.settle("q", first, Some(50.0), Some(status), now);
        assert_eq!(b.try_take("q", now), Err(Duration::from_secs(1)));
    }

    #[test]
    fn a_query_dearer_than_a_full_bucket_still_goes_out_once_the_bucket_is_full() {
        let now = Instant::now();
        let mut b = bucket(1000.0, 50.0, now);
        b.settle("huge", 0.0, Some(5000.0), None, now);
        assert!(b.try_take("huge", now).is_ok());
    }
}
