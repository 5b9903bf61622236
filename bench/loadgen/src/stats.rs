//! Latency histograms, process CPU time and the file-descriptor limit.

use hdrhistogram::Histogram;
use serde_json::{json, Value};

/// Microsecond latencies from 1 µs to 5 minutes at three significant digits.
pub fn latency_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 300_000_000, 3).expect("static histogram bounds are valid")
}

pub fn latency_json(histogram: &Histogram<u64>) -> Value {
    if histogram.is_empty() {
        return Value::Null;
    }
    let ms = |us: u64| us as f64 / 1000.0;
    json!({
        "p50": ms(histogram.value_at_quantile(0.50)),
        "p99": ms(histogram.value_at_quantile(0.99)),
        "max": ms(histogram.max()),
        "samples": histogram.len(),
    })
}

fn own_usage() -> libc::rusage {
    // SAFETY: getrusage only writes into the zeroed struct it is given.
    unsafe {
        let mut usage: libc::rusage = std::mem::zeroed();
        libc::getrusage(libc::RUSAGE_SELF, &mut usage);
        usage
    }
}

/// User plus system CPU time of this whole process, in seconds.
pub fn own_cpu_seconds() -> f64 {
    let usage = own_usage();
    let seconds = |tv: libc::timeval| tv.tv_sec as f64 + tv.tv_usec as f64 / 1e6;
    seconds(usage.ru_utime) + seconds(usage.ru_stime)
}

/// Peak resident set size of this process, in KiB.
pub fn own_peak_rss_kib() -> u64 {
    own_usage().ru_maxrss.max(0) as u64
}

/// Raises the soft open-files limit to the hard one, which needs no
/// privilege, and returns the limit now in force: the connection storm alone
/// holds thousands of sockets.
pub fn raise_nofile_limit() -> u64 {
    // SAFETY: getrlimit and setrlimit read and write only the struct given.
    unsafe {
        let mut limit: libc::rlimit = std::mem::zeroed();
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) != 0 {
            return 0;
        }
        if limit.rlim_cur < limit.rlim_max {
            let raised = libc::rlimit {
                rlim_cur: limit.rlim_max,
                rlim_max: limit.rlim_max,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &raised) == 0 {
                return raised.rlim_cur as u64;
            }
        }
        limit.rlim_cur as u64
    }
}

/// Counts of distinct error descriptions, so a thousand identical failures
/// read as one line with a count.
#[derive(Default)]
pub struct Errors(std::collections::BTreeMap<String, u64>);

impl Errors {
    pub fn add(&mut self, error: impl Into<String>) {
        *self.0.entry(error.into()).or_default() += 1;
    }

    pub fn merge(&mut self, other: Errors) {
        for (error, count) in other.0 {
            *self.0.entry(error).or_default() += count;
        }
    }

    pub fn to_json(&self) -> Value {
        json!({
            "count": self.0.values().sum::<u64>(),
            "kinds": self.0,
        })
    }
}
