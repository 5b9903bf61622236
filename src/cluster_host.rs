//! Wires the cluster link to the hub: what other nodes publish is routed to this node's clients
//! under the hub's lock, as its own clients' messages are, and the answers to a resync are
//! handed on. The cluster logic itself lives in the `cluster` crate.

use std::sync::{Arc, OnceLock, Weak};

use cluster::Cluster;
use sync_core::router::{Outbox, Payload, Router};

use crate::hub::Hub;

/// The hub as the cluster link sees it. Weak: the hub owns the link, not the other way round.
#[derive(Default)]
pub(crate) struct ClusterHost {
    hub: OnceLock<Weak<Hub>>,
}

impl ClusterHost {
    pub(crate) fn attach(&self, hub: &Arc<Hub>) {
        let _ = self.hub.set(Arc::downgrade(hub));
    }

    fn hub(&self) -> Option<Arc<Hub>> {
        self.hub.get()?.upgrade()
    }
}

impl cluster::Host for ClusterHost {
    fn deliver(&self, path_id: &str, from: &str, to: &str, payload: &str) {
        if let Some(hub) = self.hub() {
            let payload = Payload::from(payload.to_owned());
            hub.deliver(path_id, from, to, &payload);
        }
    }

    fn resync(&self, path_ids: &[String]) {
        let Some(hub) = self.hub() else { return };
        let Some(resync) = hub.cluster().map(Cluster::resync) else {
            return;
        };
        let request = Payload::from(resync.request());
        for path_id in path_ids {
            hub.deliver(path_id, resync.client_id(), "", &request);
        }
    }

    fn report(&self, message: String) {
        if let Some(hub) = self.hub() {
            hub.report(message);
        }
    }
}

/// A client's answer to the resync pseudo client, to hand to every other client of its path.
pub(crate) struct Offer {
    path_id: String,
    from: String,
    payload: Payload,
}

impl Offer {
    /// The offer `payload` makes if it answers `cluster`'s resync request.
    pub(crate) fn answering(
        cluster: &Cluster,
        path_id: &str,
        to: &str,
        payload: &Payload,
    ) -> Option<Offer> {
        let resync = cluster.resync();
        if to != resync.client_id() {
            return None;
        }
        let (from, _) = payload.as_str().split_once('\n')?;
        let offer = resync.offer(from, payload.as_str())?;
        Some(Offer {
            path_id: path_id.to_owned(),
            from: from.to_owned(),
            payload: Payload::from(offer),
        })
    }

    /// Hands the offer to this node's other clients of the path, and to every other node's.
    pub(crate) fn hand_on(self, router: &mut Router, out: &mut impl Outbox) {
        router.deliver(&self.path_id, &self.from, "", &self.payload, out);
        out.publish(&self.path_id, "", &self.payload);
    }
}
