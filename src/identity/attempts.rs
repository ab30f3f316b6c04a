//! Failed guest-verification attempts, limited per key (a connection, an
//! order number) within a sliding window, so order numbers and emails cannot
//! be guessed at speed.

use std::{
    collections::{HashMap, VecDeque},
    sync::Mutex,
    time::{Duration, Instant},
};

pub struct AttemptLimiter {
    max_failures: usize,
    window: Duration,
    failures: Mutex<HashMap<String, VecDeque<Instant>>>,
}

impl AttemptLimiter {
    pub fn new(max_failures: usize, window: Duration) -> Self {
        Self { max_failures, window, failures: Mutex::default() }
    }

    /// PROTOCOL.md §2: 5 failures in 15 minutes lock.
    pub fn guest_verification() -> Self {
        Self::new(5, Duration::from_secs(15 * 60))
    }

    pub fn is_locked(&self, key: &str) -> bool {
        self.is_locked_at(key, Instant::now())
    }

    fn is_locked_at(&self, key: &str, now: Instant) -> bool {
        let mut failures = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        let Some(times) = failures.get_mut(key) else {
            return false;
        };
        while times.front().is_some_and(|t| now.duration_since(*t) > self.window) {
            times.pop_front();
        }
        if times.is_empty() {
            failures.remove(key);
            return false;
        }
        times.len() >= self.max_failures
    }

    pub fn record_failure(&self, key: &str) {
        let mut failures = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        failures.entry(key.to_owned()).or_default().push_back(Instant::now());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_fifth_failure_locks_the_key_and_only_that_key() {
        let limiter = AttemptLimiter::guest_verification();
        for _ in 0..4 {
            limiter.record_failure("order:#1001");
            assert!(!limiter.is_locked("order:#1001"));
        }
        limiter.record_failure("order:#1001");
        assert!(limiter.is_locked("order:#1001"));
        assert!(!limiter.is_locked("order:#1002"));
    }

    #[test]
    fn failures_expire_after_the_window() {
        let limiter = AttemptLimiter::new(1, Duration::from_secs(60));
        limiter.record_failure("k");
        assert!(limiter.is_locked("k"));
        assert!(!limiter.is_locked_at("k", Instant::now() + Duration::from_secs(61)));
    }
}
