//! The three kinds of instrument, each a handful of atomics: updating one never takes a lock, and
//! reading one never stops the threads that update it.

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::time::Duration;

// Relaxed throughout: each number is exact on its own, and a reading taken while the relay runs
// is allowed to see one counter a moment later than another.

/// A count that only goes up.
#[derive(Debug, Default)]
pub struct Counter(AtomicU64);

impl Counter {
    pub fn inc(&self) {
        self.add(1);
    }

    pub fn add(&self, amount: u64) {
        if amount > 0 {
            self.0.fetch_add(amount, Ordering::Relaxed);
        }
    }

    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// A level that goes up and down.
#[derive(Debug, Default)]
pub struct Gauge(AtomicI64);

impl Gauge {
    pub fn inc(&self) {
        self.add(1);
    }

    pub fn dec(&self) {
        self.add(-1);
    }

    pub fn add(&self, amount: i64) {
        self.0.fetch_add(amount, Ordering::Relaxed);
    }

    pub fn set(&self, value: i64) {
        self.0.store(value, Ordering::Relaxed);
    }

    pub fn get(&self) -> i64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// Upper bounds, in seconds, of the buckets every duration histogram uses: from a millisecond (an
/// in-memory persister) to half a minute (a remote database having a bad day).
pub const SECONDS_BUCKETS: [f64; 14] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

/// How durations were spread over [`SECONDS_BUCKETS`].
#[derive(Debug, Default)]
pub struct Histogram {
    /// Observations per bucket, not cumulative; the last one holds those above every bound.
    buckets: [AtomicU64; SECONDS_BUCKETS.len() + 1],
    sum_nanos: AtomicU64,
}

/// A histogram as Prometheus shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct HistogramReading {
    /// Each bound with the observations at or below it; the last bound is infinity.
    pub cumulative: Vec<(f64, u64)>,
    pub sum_seconds: f64,
    pub count: u64,
}

impl Histogram {
    pub fn observe(&self, duration: Duration) {
        let seconds = duration.as_secs_f64();
        let bucket = SECONDS_BUCKETS
            .iter()
            .position(|&bound| seconds <= bound)
            .unwrap_or(SECONDS_BUCKETS.len());
        self.buckets[bucket].fetch_add(1, Ordering::Relaxed);
        let nanos = u64::try_from(duration.as_nanos()).unwrap_or(u64::MAX);
        self.sum_nanos.fetch_add(nanos, Ordering::Relaxed);
    }

    /// The count is the sum of the buckets read, so the `+Inf` bucket always equals it, as
    /// Prometheus requires, however many observations land during the reading.
    pub fn read(&self) -> HistogramReading {
        let bounds = SECONDS_BUCKETS.iter().copied().chain([f64::INFINITY]);
        let mut count = 0;
        let cumulative = bounds
            .zip(&self.buckets)
            .map(|(bound, bucket)| {
                count += bucket.load(Ordering::Relaxed);
                (bound, count)
            })
            .collect();
        HistogramReading {
            cumulative,
            sum_seconds: Duration::from_nanos(self.sum_nanos.load(Ordering::Relaxed)).as_secs_f64(),
            count,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_counter_counts_and_a_gauge_goes_both_ways() {
        let counter = Counter::default();
        counter.inc();
        counter.add(4);
        counter.add(0);
        assert_eq!(counter.get(), 5);
        let gauge = Gauge::default();
        gauge.inc();
        gauge.inc();
        gauge.dec();
        assert_eq!(gauge.get(), 1);
        gauge.set(-3);
        assert_eq!(gauge.get(), -3);
    }

    #[test]
    fn a_histogram_reads_cumulatively_with_infinity_last() {
        let histogram = Histogram::default();
        histogram.observe(Duration::from_micros(500));
        histogram.observe(Duration::from_millis(1));
        histogram.observe(Duration::from_millis(30));
        histogram.observe(Duration::from_secs(60));
        let reading = histogram.read();
        assert_eq!(reading.count, 4);
        assert_eq!(reading.cumulative.len(), SECONDS_BUCKETS.len() + 1);
        assert_eq!(reading.cumulative[0], (0.001, 2));
        assert_eq!(reading.cumulative[4], (0.025, 2));
        assert_eq!(reading.cumulative[5], (0.05, 3));
        assert_eq!(reading.cumulative[13], (30.0, 3));
        assert_eq!(reading.cumulative[14], (f64::INFINITY, 4));
        assert!((reading.sum_seconds - 60.0315).abs() < 1e-9);
    }
}
