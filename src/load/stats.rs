//! Latency percentiles and error counts, merged from the tasks at the end
//! so no task contends on shared counters while it runs.

use std::{collections::BTreeMap, fmt, time::Duration};

#[derive(Debug, Default, Clone)]
pub struct Latencies(Vec<Duration>);

/// Samples taken elsewhere (an eval, a benchmark), sorted for percentiles.
impl From<Vec<Duration>> for Latencies {
    fn from(mut samples: Vec<Duration>) -> Self {
        samples.sort_unstable();
        Self(samples)
    }
}

impl Latencies {
    pub fn record(&mut self, latency: Duration) {
        self.0.push(latency);
    }

    pub fn merge(&mut self, other: Latencies) {
        self.0.extend(other.0);
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Sorts once; call before reading percentiles.
    pub fn sort(&mut self) {
        self.0.sort_unstable();
    }

    /// Nearest-rank percentile of sorted samples; zero when there are none.
    pub fn percentile(&self, p: f64) -> Duration {
        if self.0.is_empty() {
            return Duration::ZERO;
        }
        self.0[((self.0.len() as f64 - 1.0) * p).round() as usize]
    }
}

/// Counts by kind: failures (`timeout`, `closed`, `error:rate_limited`,
/// `http_503`, …) or turn outcomes (`answered`, `verify_required`, …).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Tally(pub BTreeMap<String, u64>);

impl Tally {
    pub fn add(&mut self, kind: impl Into<String>) {
        *self.0.entry(kind.into()).or_default() += 1;
    }

    pub fn merge(&mut self, other: Tally) {
        for (kind, count) in other.0 {
            *self.0.entry(kind).or_default() += count;
        }
    }

    pub fn total(&self) -> u64 {
        self.0.values().sum()
    }
}

impl fmt::Display for Tally {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() {
            return write!(f, "none");
        }
        let mut first = true;
        for (kind, count) in &self.0 {
            if !first {
                write!(f, ", ")?;
            }
            write!(f, "{kind} {count}")?;
            first = false;
        }
        Ok(())
    }
}

pub fn millis(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// Whether item `index` of a run is one of the `share` picked: it is where the
/// running count of picks steps up, so a run holds exactly `share` of them,
/// spread evenly, and a small run is as representative as a long one.
pub fn picks(share: f64, index: usize) -> bool {
    let share = share.clamp(0.0, 1.0);
    ((index + 1) as f64 * share).floor() > (index as f64 * share).floor()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn picks_hold_exactly_the_share_spread_over_the_run() {
        let picked: Vec<usize> = (0..20).filter(|&i| picks(0.25, i)).collect();
        assert_eq!(picked, [3, 7, 11, 15, 19]);
        assert_eq!((0..50).filter(|&i| picks(0.2, i)).count(), 10);
        assert!(!(0..50).any(|i| picks(0.0, i)));
    }
}
