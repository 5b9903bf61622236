//! A reading of every metric as Prometheus families: what a scrape shows, without the text format,
//! which the host's own client library writes.

use crate::instruments::{Counter, Gauge, Histogram};
use crate::labels::{LabelSet, Labeled};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Counter,
    Gauge,
    Histogram,
}

impl Kind {
    /// The name Prometheus' `# TYPE` line gives it.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Counter => "counter",
            Kind::Gauge => "gauge",
            Kind::Histogram => "histogram",
        }
    }
}

/// One metric: its name (without the host's prefix) and every series it has.
#[derive(Debug, Clone, PartialEq)]
pub struct Family {
    pub name: &'static str,
    pub help: &'static str,
    pub kind: Kind,
    pub series: Vec<Series>,
}

/// One line of a scrape.
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    /// Appended to the family's name: `_bucket`, `_sum` or `_count` for a histogram, else empty.
    pub suffix: &'static str,
    pub labels: Vec<(&'static str, String)>,
    pub value: f64,
}

/// Something that can be read as the series of one family.
pub trait Instrument {
    const KIND: Kind;
    fn read(&self, labels: Vec<(&'static str, String)>, out: &mut Vec<Series>);
}

fn plain(labels: Vec<(&'static str, String)>, value: f64) -> Series {
    Series {
        suffix: "",
        labels,
        value,
    }
}

impl Instrument for Counter {
    const KIND: Kind = Kind::Counter;

    fn read(&self, labels: Vec<(&'static str, String)>, out: &mut Vec<Series>) {
        out.push(plain(labels, self.get() as f64));
    }
}

impl Instrument for Gauge {
    const KIND: Kind = Kind::Gauge;

    fn read(&self, labels: Vec<(&'static str, String)>, out: &mut Vec<Series>) {
        out.push(plain(labels, self.get() as f64));
    }
}

impl Instrument for Histogram {
    const KIND: Kind = Kind::Histogram;

    fn read(&self, labels: Vec<(&'static str, String)>, out: &mut Vec<Series>) {
        let reading = Histogram::read(self);
        for (bound, count) in reading.cumulative {
            let le = if bound.is_infinite() {
                "+Inf".to_owned()
            } else {
                bound.to_string()
            };
            let mut labels = labels.clone();
            labels.push(("le", le));
            out.push(Series {
                suffix: "_bucket",
                labels,
                value: count as f64,
            });
        }
        out.push(Series {
            suffix: "_sum",
            labels: labels.clone(),
            value: reading.sum_seconds,
        });
        out.push(Series {
            suffix: "_count",
            labels,
            value: reading.count as f64,
        });
    }
}

impl<L: LabelSet, M: Instrument> Instrument for Labeled<L, M> {
    const KIND: Kind = M::KIND;

    fn read(&self, labels: Vec<(&'static str, String)>, out: &mut Vec<Series>) {
        for (own, instrument) in self.each() {
            let mut combined = labels.clone();
            combined.extend(
                own.into_iter()
                    .map(|(name, value)| (name, value.to_owned())),
            );
            instrument.read(combined, out);
        }
    }
}

/// Reads `instrument` as the family `name`.
pub fn family<I: Instrument>(name: &'static str, help: &'static str, instrument: &I) -> Family {
    let mut series = Vec::new();
    instrument.read(Vec::new(), &mut series);
    Family {
        name,
        help,
        kind: I::KIND,
        series,
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::labels::Plane;

    #[test]
    fn a_labelled_histogram_reads_as_buckets_sum_and_count_per_label() {
        let durations = Labeled::<Plane, Histogram>::default();
        durations[Plane::Js].observe(Duration::from_millis(2));
        let read = family("took_seconds", "How long", &durations);
        assert_eq!(read.kind, Kind::Histogram);
        let js: Vec<&Series> = read
            .series
            .iter()
            .filter(|series| series.labels[0] == ("plane", "js".to_owned()))
            .collect();
        assert_eq!(js.len(), 15 + 2);
        assert_eq!(js[1].labels[1], ("le", "0.0025".to_owned()));
        assert_eq!(js[1].value, 1.0);
        assert_eq!(js[0].value, 0.0);
        assert_eq!(js[14].labels[1], ("le", "+Inf".to_owned()));
        assert_eq!((js[15].suffix, js[16].suffix), ("_sum", "_count"));
        assert_eq!(js[16].value, 1.0);
    }
}
