//! The relay's metrics, counted where things happen (the hub, the planes, the cluster link) and read
//! by the host whenever it likes, without a lock and without pausing the relay.
//!
//! Every metric is one entry of the catalogue below: its doc comment is its Prometheus help, its
//! field name its Prometheus name (the host adds a prefix), its type says what it counts and by
//! which labels. Adding a metric is adding an entry; counting is one call on the field where the
//! thing happens, e.g. `metrics.messages_dropped_total[DropReason::Denied].inc()`.

mod instruments;
mod labels;
mod reading;

use std::time::Duration;

pub use instruments::{Counter, Gauge, Histogram, HistogramReading, SECONDS_BUCKETS};
pub use labels::{CloseCode, DropReason, LabelSet, Labeled, Plane};
pub use reading::{family, Family, Instrument, Kind, Series};

macro_rules! catalogue {
    ($($(#[doc = $help:literal])+ $name:ident: $instrument:ty,)+) => {
        /// Every metric of one server, all starting at zero.
        #[derive(Debug, Default)]
        pub struct Metrics {
            $($(#[doc = $help])+ pub $name: $instrument,)+
        }

        impl Metrics {
            /// Reads every metric, in catalogue order.
            pub fn read(&self) -> Vec<Family> {
                vec![$(family(stringify!($name), concat!($($help),+).trim(), &self.$name),)+]
            }
        }
    };
}

catalogue! {
    // Connections
    /// WebSocket connections open now, by plane.
    connections_open: Labeled<Plane, Gauge>,
    /// WebSocket connections accepted, by plane.
    connections_opened_total: Labeled<Plane, Counter>,
    /// WebSocket connections closed, by plane and close code (3xxx and 4xxx grouped).
    connections_closed_total: Labeled<(Plane, CloseCode), Counter>,
    /// Native connections dropped because they stopped answering the heartbeat's pings.
    heartbeat_drops_total: Counter,
    /// Connections closed because their outbound backlog went over 16 MiB, by plane.
    slow_consumer_closes_total: Labeled<Plane, Counter>,

    // Messages
    /// Messages received from clients, by plane.
    messages_received_total: Labeled<Plane, Counter>,
    /// Bytes of the messages received from clients, by plane.
    received_bytes_total: Labeled<Plane, Counter>,
    /// Messages sent to clients (one per recipient), by plane.
    messages_sent_total: Labeled<Plane, Counter>,
    /// Bytes of the messages sent to clients, by plane.
    sent_bytes_total: Labeled<Plane, Counter>,
    /// Messages dropped instead of relayed, by reason.
    messages_dropped_total: Labeled<DropReason, Counter>,

    // Paths
    /// Paths listed by getPathIds now.
    paths_active: Gauge,
    /// Paths that appeared (path id listeners heard 1).
    paths_started_total: Counter,
    /// Paths that went away (path id listeners heard -1).
    paths_stopped_total: Counter,
    /// Time from calling createPersisterForPath to a path's server client being in sync.
    persister_start_seconds: Histogram,
    /// Time a path's persister and server client took to stop (saving included).
    persister_stop_seconds: Histogram,

    // The JS thread
    /// Events waiting for the JS thread.
    js_queue_events: Gauge,
    /// Messages for server clients waiting for the JS thread, queued or held for a busy one.
    js_queue_server_messages: Gauge,
    /// Native sockets not read until the JS thread catches up with its server clients.
    held_back_sockets: Gauge,

    // The cluster
    /// Messages published to Redis for other nodes.
    redis_published_total: Counter,
    /// Messages received from other nodes through Redis.
    redis_received_total: Counter,
    /// Time from another node publishing a message to this node receiving it.
    redis_lag_seconds: Histogram,
    /// Times the connection to Redis was lost and made again.
    redis_reconnects_total: Counter,
}

/// Messages sent while the router is busy with one action, counted locally and added to the shared
/// counters once: a broadcast to many clients then costs a few atomic additions, not two per
/// recipient.
#[derive(Debug, Default)]
pub struct Sent {
    messages: [u64; 2],
    bytes: [u64; 2],
}

impl Sent {
    pub fn count(&mut self, plane: Plane, bytes: usize) {
        let plane = plane.index();
        self.messages[plane] += 1;
        self.bytes[plane] += bytes as u64;
    }

    pub fn add_to(&mut self, metrics: &Metrics) {
        for plane in [Plane::Native, Plane::Js] {
            let index = plane.index();
            metrics.messages_sent_total[plane].add(std::mem::take(&mut self.messages[index]));
            metrics.sent_bytes_total[plane].add(std::mem::take(&mut self.bytes[index]));
        }
    }
}

impl Metrics {
    pub fn received(&self, plane: Plane, bytes: usize) {
        self.messages_received_total[plane].inc();
        self.received_bytes_total[plane].add(bytes as u64);
    }

    pub fn opened(&self, plane: Plane) {
        self.connections_opened_total[plane].inc();
        self.connections_open[plane].inc();
    }

    pub fn closed(&self, plane: Plane, code: u16) {
        self.connections_closed_total[(plane, CloseCode::of(code))].inc();
        self.connections_open[plane].dec();
    }

    /// A path id appeared (`1`) or went away (`-1`).
    pub fn path_ids(&self, change: i8) {
        self.paths_active.add(change.into());
        if change > 0 {
            self.paths_started_total.inc();
        } else {
            self.paths_stopped_total.inc();
        }
    }

    pub fn persister_started(&self, took: Duration) {
        self.persister_start_seconds.observe(took);
    }

    pub fn persister_stopped(&self, took: Duration) {
        self.persister_stop_seconds.observe(took);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn value(families: &[Family], name: &str, labels: &[(&str, &str)]) -> f64 {
        let family = families.iter().find(|family| family.name == name).unwrap();
        family
            .series
            .iter()
            .find(|series| {
                series.suffix.is_empty()
                    && labels.iter().all(|(label, value)| {
                        series
                            .labels
                            .iter()
                            .any(|(name, own)| name == label && own == value)
                    })
            })
            .unwrap()
            .value
    }

    #[test]
    fn every_name_follows_prometheus_conventions_and_appears_once() {
        let families = Metrics::default().read();
        let mut names: Vec<&str> = families.iter().map(|family| family.name).collect();
        for family in &families {
            let name = family.name;
            assert!(
                name.bytes()
                    .all(|byte| byte.is_ascii_lowercase() || byte == b'_'),
                "{name}"
            );
            assert_eq!(
                family.kind == Kind::Counter,
                name.ends_with("_total"),
                "{name}"
            );
            if family.kind == Kind::Histogram {
                assert!(name.ends_with("_seconds"), "{name}");
            }
            assert!(
                !family.help.is_empty() && family.help.ends_with('.'),
                "{name}"
            );
        }
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), families.len());
    }

    #[test]
    fn counts_show_in_the_reading_under_their_labels() {
        let metrics = Metrics::default();
        metrics.opened(Plane::Native);
        metrics.opened(Plane::Native);
        metrics.opened(Plane::Js);
        metrics.closed(Plane::Native, 1000);
        metrics.received(Plane::Js, 10);
        metrics.path_ids(1);
        metrics.path_ids(1);
        metrics.path_ids(-1);
        metrics.messages_dropped_total[DropReason::ReadOnly].inc();
        let mut sent = Sent::default();
        sent.count(Plane::Native, 5);
        sent.count(Plane::Native, 7);
        sent.add_to(&metrics);
        sent.add_to(&metrics);

        let read = metrics.read();
        assert_eq!(
            value(&read, "connections_open", &[("plane", "native")]),
            1.0
        );
        assert_eq!(
            value(&read, "connections_opened_total", &[("plane", "native")]),
            2.0
        );
        assert_eq!(value(&read, "connections_open", &[("plane", "js")]), 1.0);
        let closed = [("plane", "native"), ("code", "1000")];
        assert_eq!(value(&read, "connections_closed_total", &closed), 1.0);
        assert_eq!(
            value(&read, "received_bytes_total", &[("plane", "js")]),
            10.0
        );
        assert_eq!(
            value(&read, "messages_sent_total", &[("plane", "native")]),
            2.0
        );
        assert_eq!(
            value(&read, "sent_bytes_total", &[("plane", "native")]),
            12.0
        );
        assert_eq!(value(&read, "paths_active", &[]), 1.0);
        assert_eq!(value(&read, "paths_stopped_total", &[]), 1.0);
        let read_only = [("reason", "read_only")];
        assert_eq!(value(&read, "messages_dropped_total", &read_only), 1.0);
        assert_eq!(value(&read, "redis_reconnects_total", &[]), 0.0);
    }
}
