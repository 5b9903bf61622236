#![deny(clippy::all)]
//! Cluster relay: one path served by several server processes, joined through Redis pub/sub.
//!
//! Each node publishes once what its own clients send on a path (in a small binary envelope,
//! see [`envelope`]) on that path's channel, and listens to a path's channel only while it has
//! clients on it. What another node published is handed to the [`Host`], which delivers it to
//! its clients exactly as it delivers its own clients' messages. Local delivery never waits on
//! Redis: publishing only queues for the link's task. After Redis comes back, every path is
//! healed by a resync the servers drive ([`resync`]). A persisted path's server client runs on
//! the one node holding the path's lease ([`lease`]); the others route its traffic there. The
//! holder keeps it running while any node has clients on the path ([`presence`]).

mod envelope;
mod lease;
mod link;
mod node;
mod presence;
mod resync;

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;

use relay_metrics::Metrics;
use tokio::sync::mpsc::{unbounded_channel, UnboundedSender};

use link::{Command, Link, Shared};
pub use node::NodeId;
pub use resync::Resync;

/// The prefix used when none is given.
pub const DEFAULT_PREFIX: &str = "tinybase";

/// Publishes queued for Redis beyond which new ones are dropped (and the paths resynced once
/// the link catches up), so a slow Redis cannot grow a node's memory without bound.
const MAX_QUEUED: usize = 65_536;

/// What the cluster asks of the server it is part of. Called from the link's task.
pub trait Host: Send + Sync + 'static {
    /// Another node's client `from` sent `payload` (`from\nremainder`) on `path_id`, to every
    /// client (`to` empty) or to the client `to`: deliver it to this node's clients.
    fn deliver(&self, path_id: &str, from: &str, to: &str, payload: &str);
    /// This node's clients of each path must offer their content to the path's other clients
    /// (see [`resync`]).
    fn resync(&self, path_ids: &[String]);
    /// An error for `onIgnoredError`.
    fn report(&self, message: String);
    /// This node holds the lease of `path_id`, asked for generation `key`, at `epoch` (0: Redis
    /// was away and the node decided alone): it runs the path's server client.
    fn hold(&self, path_id: &str, key: u64, epoch: u64);
    /// Another node holds the lease of `path_id`: the server client's traffic goes there.
    fn elsewhere(&self, path_id: &str, key: u64);
    /// A whole message (`from\nmessage`) for the server client of `path_id`, which this node
    /// holds, from a client of another node.
    fn to_server(&self, path_id: &str, payload: &str);
    /// No other node has clients on `path_id`, which this node holds and was told has none
    /// here either ([`Cluster::vacant_here`]): its server client may stop.
    fn vacated(&self, path_id: &str);
}

/// How to reach the cluster.
#[derive(Debug, Clone)]
pub struct Config {
    /// `redis://[user:password@]host:port[/db]`, or `rediss://` for TLS, verified against the
    /// system's trusted certificates (or those in `SSL_CERT_FILE`).
    pub url: String,
    /// Names every key and channel, so clusters sharing a Redis never see each other.
    pub prefix: String,
}

/// Redis channel and key names of one cluster: `{prefix}:path:{pathId}` for a path's channel,
/// `{prefix}:owner:{pathId}` and `{prefix}:epoch:{pathId}` for its lease,
/// `{prefix}:presence:{pathId}` for the nodes with clients on it. A prefix has no `:`,
/// so names of two different prefixes never coincide.
#[derive(Debug, Clone)]
pub(crate) struct Names {
    prefix: String,
    path_prefix: String,
}

impl Names {
    fn new(prefix: &str) -> Result<Names, String> {
        if prefix.is_empty() || prefix.contains(':') {
            return Err(format!(
                "cluster prefix must be non-empty and without ':', not {prefix:?}"
            ));
        }
        Ok(Names {
            prefix: prefix.to_owned(),
            path_prefix: format!("{prefix}:path:"),
        })
    }

    pub(crate) fn lease(&self, path_id: &str) -> lease::LeaseKeys {
        lease::LeaseKeys {
            owner: format!("{}:owner:{path_id}", self.prefix),
            epoch: format!("{}:epoch:{path_id}", self.prefix),
        }
    }

    pub(crate) fn presence(&self, path_id: &str) -> String {
        format!("{}:presence:{path_id}", self.prefix)
    }

    pub(crate) fn path(&self, path_id: &str) -> String {
        format!("{}{path_id}", self.path_prefix)
    }

    pub(crate) fn path_id<'a>(&self, channel: &'a str) -> Option<&'a str> {
        channel.strip_prefix(&self.path_prefix)
    }
}

/// This node's handle on the cluster. Dropping it ends the link's task.
pub struct Cluster {
    node: NodeId,
    resync: Resync,
    commands: UnboundedSender<Command>,
    shared: Arc<Shared>,
}

impl Cluster {
    /// Checks `config` and returns the handle with the link's task, which the caller runs on a
    /// tokio runtime (with time and I/O enabled). Redis is not reached yet: an unreachable one
    /// is reported through the host and retried, as an outage is.
    pub fn new(
        config: &Config,
        host: Arc<dyn Host>,
        metrics: Arc<Metrics>,
    ) -> Result<(Cluster, impl Future<Output = ()> + Send + 'static), String> {
        let names = Names::new(&config.prefix)?;
        let client = redis::Client::open(config.url.as_str())
            .map_err(|error| format!("cluster: cannot use Redis URL: {error}"))?;
        let node = NodeId::random();
        let shared = Arc::new(Shared::default());
        let (commands, receiver) = unbounded_channel();
        let link = Link {
            client,
            names,
            node,
            host,
            metrics,
            commands: receiver,
            shared: shared.clone(),
            wanted: HashSet::new(),
            reported: false,
            leases: lease::Leases::new(node.to_string()),
            presence: presence::Presence::new(node.to_string()),
            vacant: HashSet::new(),
            held: HashMap::new(),
            watched: HashMap::new(),
            epochs: HashMap::new(),
            retry: Vec::new(),
            watch_from: Instant::now(),
        };
        let cluster = Cluster {
            node,
            resync: Resync::new(node),
            commands,
            shared,
        };
        Ok((cluster, link.run()))
    }

    /// This node's resync pseudo client.
    pub fn resync(&self) -> &Resync {
        &self.resync
    }

    /// This node has a client on `path_id` (again): listen to what other nodes publish there.
    pub fn listen(&self, path_id: &str) {
        let _ = self.commands.send(Command::Listen(path_id.to_owned()));
    }

    /// This node's last client left `path_id`.
    pub fn unlisten(&self, path_id: &str) {
        let _ = self.commands.send(Command::Unlisten(path_id.to_owned()));
    }

    /// Publishes what a client of this node sent on `path_id` (`payload` is `from\nremainder`)
    /// for the other nodes' clients: all of them (`to` empty) or the client `to`. Never waits.
    pub fn publish(&self, path_id: &str, to: &str, payload: &str) {
        self.enqueue(path_id, || envelope::relay(self.node, to, payload));
    }

    /// Publishes what the path's server client, run here under the lease taken at `epoch`,
    /// sent for the other nodes' clients.
    pub fn publish_server(&self, path_id: &str, epoch: u64, to: &str, payload: &str) {
        self.enqueue(path_id, || envelope::server(self.node, epoch, to, payload));
    }

    /// Sends a whole message of a client of this node to the path's server client, which
    /// another node runs.
    pub fn publish_to_server(&self, path_id: &str, payload: &str) {
        self.enqueue(path_id, || envelope::to_server(self.node, payload));
    }

    /// A new generation `key` of persisted `path_id` needs its server client: the answer comes
    /// as [`Host::hold`] or [`Host::elsewhere`].
    pub fn acquire(&self, path_id: &str, key: u64) {
        let _ = self.commands.send(Command::Acquire {
            path_id: path_id.to_owned(),
            key,
        });
    }

    /// The last client here left `path_id`, which this node holds: [`Host::vacated`] follows
    /// once no other node has clients on it either.
    pub fn vacant_here(&self, path_id: &str) {
        let _ = self.commands.send(Command::VacantHere(path_id.to_owned()));
    }

    /// Generation `key` of `path_id` stopped its server client: its lease goes to whoever has
    /// clients on the path.
    pub fn release(&self, path_id: &str, key: u64) {
        let _ = self.commands.send(Command::Release {
            path_id: path_id.to_owned(),
            key,
        });
    }

    fn enqueue(&self, path_id: &str, encode: impl FnOnce() -> Vec<u8>) {
        if self.shared.queued.load(Ordering::Acquire) >= MAX_QUEUED {
            self.shared.gap.store(true, Ordering::Release);
            return;
        }
        self.shared.queued.fetch_add(1, Ordering::AcqRel);
        let command = Command::Publish {
            path_id: path_id.to_owned(),
            bytes: encode(),
        };
        if self.commands.send(command).is_err() {
            self.shared.queued.fetch_sub(1, Ordering::AcqRel);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn channels_of_different_prefixes_never_meet() {
        let a = Names::new("a").unwrap();
        let b = Names::new("ab").unwrap();
        assert_eq!(a.path("x"), "a:path:x");
        assert_eq!(a.path_id("a:path:x/y"), Some("x/y"));
        assert_eq!(a.path_id(&b.path("x")), None);
        assert_eq!(b.path_id(&a.path("x")), None);
        assert!(Names::new("").is_err());
        assert!(Names::new("a:path").is_err());
    }

    #[test]
    fn a_bad_url_is_refused_up_front() {
        struct Nobody;
        impl Host for Nobody {
            fn deliver(&self, _: &str, _: &str, _: &str, _: &str) {}
            fn resync(&self, _: &[String]) {}
            fn report(&self, _: String) {}
            fn hold(&self, _: &str, _: u64, _: u64) {}
            fn elsewhere(&self, _: &str, _: u64) {}
            fn to_server(&self, _: &str, _: &str) {}
            fn vacated(&self, _: &str) {}
        }
        let config = |url: &str| Config {
            url: url.to_owned(),
            prefix: DEFAULT_PREFIX.to_owned(),
        };
        let create = |url: &str| Cluster::new(&config(url), Arc::new(Nobody), Arc::default());
        assert!(create("http://localhost").is_err());
        assert!(create("redis://127.0.0.1:1").is_ok());
    }
}
