//! Failed guest-verification attempts, limited per key (a connection, an
//! order number, an email, a client address) within a sliding window, with
//! a lock that doubles each time a key earns it again, and a failure budget
//! for the whole service, so order numbers and emails cannot be guessed at
//! speed from one socket, many sockets or many addresses.

use std::{
    collections::{HashMap, VecDeque},
    sync::Mutex,
    time::{Duration, Instant},
};

/// The longest a key stays locked, however often it earned a lock.
const MAX_LOCK: Duration = Duration::from_secs(24 * 60 * 60);
/// How long a key's lock history is kept after its last failure: a key that
/// comes back within this starts from the doubled lock, not from scratch.
const MEMORY: Duration = Duration::from_secs(24 * 60 * 60);
const SWEEP_EVERY: Duration = Duration::from_secs(1);
/// The window of the service-wide budget.
const GLOBAL_WINDOW: Duration = Duration::from_secs(60);

#[derive(Debug, Clone, Copy)]
pub struct AttemptLimits {
    /// Failures within `window` that lock a key.
    pub max_failures: usize,
    pub window: Duration,
    /// Failures per minute across the service before everyone is refused.
    pub global_failures_per_minute: usize,
    /// Keys tracked at most.
    pub max_keys: usize,
}

impl AttemptLimits {
    /// PROTOCOL.md §2: 5 failures in 15 minutes lock.
    pub fn guest_verification(global_failures_per_minute: usize, max_keys: usize) -> Self {
        Self { max_failures: 5, window: Duration::from_secs(15 * 60), global_failures_per_minute, max_keys }
    }
}

pub struct AttemptLimiter {
    limits: AttemptLimits,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    keys: HashMap<String, KeyRecord>,
    /// Every failure of the last minute, whatever its keys.
    global: VecDeque<Instant>,
    /// A sweep walks every key: once a second is enough.
    last_sweep: Option<Instant>,
}

#[derive(Default)]
struct KeyRecord {
    failures: VecDeque<Instant>,
    /// Locks this key has earned within `MEMORY`: each doubles the next.
    locks: u32,
    locked_until: Option<Instant>,
    last_failure: Option<Instant>,
}

/// Why an attempt may not be made now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// One of the attempt's keys is locked.
    KeyLocked,
    /// The service as a whole has seen too many failures this minute.
    GlobalBudget,
    /// The table is full and the attempt would need new keys.
    TableFull,
}

impl AttemptLimiter {
    pub fn new(limits: AttemptLimits) -> Self {
        Self { limits, state: Mutex::default() }
    }

    /// `Err` when an attempt under these keys must be refused without checking it.
    pub fn check(&self, keys: &[String]) -> Result<(), Refusal> {
        self.check_at(keys, Instant::now())
    }

    pub fn record_failure(&self, keys: &[String]) {
        self.record_failure_at(keys, Instant::now());
    }

    fn check_at(&self, keys: &[String], now: Instant) -> Result<(), Refusal> {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        // Swept on access: the table never holds what can no longer matter.
        state.sweep(now, self.limits.window);
        if state.global.len() >= self.limits.global_failures_per_minute {
            return Err(Refusal::GlobalBudget);
        }
        if keys.iter().any(|k| state.keys.get(k).is_some_and(|r| r.locked_until.is_some_and(|t| now < t))) {
            return Err(Refusal::KeyLocked);
        }
        // Full: refuse rather than evict. Evicting the oldest would let a
        // guesser flush their own lock by failing under fresh emails; refusing
        // fails closed, and the global budget bounds how long that can last.
        let new_keys = keys.iter().filter(|k| !state.keys.contains_key(*k)).count();
        if state.keys.len() + new_keys > self.limits.max_keys {
            return Err(Refusal::TableFull);
        }
        Ok(())
    }

    fn record_failure_at(&self, keys: &[String], now: Instant) {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        state.global.push_back(now);
        for key in keys {
            if !state.keys.contains_key(key) && state.keys.len() >= self.limits.max_keys {
                continue; // `check` refuses the next attempt with this key
            }
            let record = state.keys.entry(key.clone()).or_default();
            record.failures.push_back(now);
            record.last_failure = Some(now);
            while record.failures.front().is_some_and(|t| now.duration_since(*t) > self.limits.window) {
                record.failures.pop_front();
            }
            if record.failures.len() >= self.limits.max_failures {
                let lock = self.limits.window.saturating_mul(1 << record.locks.min(16)).min(MAX_LOCK);
                record.locked_until = Some(now + lock);
                record.locks += 1;
                record.failures.clear();
            }
        }
    }
}

impl State {
    fn sweep(&mut self, now: Instant, window: Duration) {
        while self.global.front().is_some_and(|t| now.duration_since(*t) >= GLOBAL_WINDOW) {
            self.global.pop_front();
        }
        if self.last_sweep.is_some_and(|t| now.saturating_duration_since(t) < SWEEP_EVERY) {
            return;
        }
        self.last_sweep = Some(now);
        self.keys.retain(|_, r| {
            r.failures.retain(|t| now.duration_since(*t) <= window);
            let locked = r.locked_until.is_some_and(|t| now < t);
            let remembered = r.last_failure.is_some_and(|t| now.duration_since(t) < MEMORY);
            locked || !r.failures.is_empty() || (r.locks > 0 && remembered)
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limiter(max_failures: usize, global: usize, max_keys: usize) -> AttemptLimiter {
        AttemptLimiter::new(AttemptLimits {
            max_failures,
            window: Duration::from_secs(60),
            global_failures_per_minute: global,
            max_keys,
        })
    }

    fn keys(names: &[&str]) -> Vec<String> {
        names.iter().map(|k| (*k).to_owned()).collect()
    }

    #[test]
    fn the_fifth_failure_locks_the_key_and_only_that_key() {
        let limiter = AttemptLimiter::new(AttemptLimits::guest_verification(1000, 1000));
        for _ in 0..4 {
            limiter.record_failure(&keys(&["order:#1001"]));
            assert_eq!(limiter.check(&keys(&["order:#1001"])), Ok(()));
        }
        limiter.record_failure(&keys(&["order:#1001"]));
        assert_eq!(limiter.check(&keys(&["order:#1001"])), Err(Refusal::KeyLocked));
        assert_eq!(limiter.check(&keys(&["order:#1002"])), Ok(()));
    }

    #[test]
    fn a_lock_lapses_and_each_new_lock_lasts_twice_as_long() {
        let limiter = limiter(1, 1000, 1000);
        let k = keys(&["k"]);
        let start = Instant::now();
        limiter.record_failure_at(&k, start);
        assert_eq!(limiter.check_at(&k, start + Duration::from_secs(59)), Err(Refusal::KeyLocked));
        let second = start + Duration::from_secs(61);
        assert_eq!(limiter.check_at(&k, second), Ok(()));
        limiter.record_failure_at(&k, second);
        assert_eq!(limiter.check_at(&k, second + Duration::from_secs(119)), Err(Refusal::KeyLocked));
        assert_eq!(limiter.check_at(&k, second + Duration::from_secs(121)), Ok(()));
    }

    #[test]
    fn the_global_budget_refuses_every_key_until_the_minute_has_passed() {
        let limiter = limiter(100, 3, 1000);
        let start = Instant::now();
        for i in 0..3 {
            limiter.record_failure_at(&keys(&[&format!("email:{i}")]), start);
        }
        assert_eq!(limiter.check_at(&keys(&["email:fresh"]), start), Err(Refusal::GlobalBudget));
        assert_eq!(limiter.check_at(&keys(&["email:fresh"]), start + GLOBAL_WINDOW), Ok(()));
    }

    #[test]
    fn old_entries_are_swept_and_a_full_table_refuses_new_keys() {
        let limiter = limiter(5, 1000, 2);
        let start = Instant::now();
        limiter.record_failure_at(&keys(&["a", "b"]), start);
        assert_eq!(limiter.check_at(&keys(&["a", "b"]), start), Ok(()), "known keys still count");
        assert_eq!(limiter.check_at(&keys(&["c"]), start), Err(Refusal::TableFull));
        // Past the window nothing of `a` and `b` matters: swept, room again.
        assert_eq!(limiter.check_at(&keys(&["c"]), start + Duration::from_secs(61)), Ok(()));
        assert!(limiter.state.lock().unwrap().keys.is_empty());
    }
}
