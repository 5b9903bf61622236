//! Wires the cluster link to the hub: what other nodes publish is routed to this node's clients
//! under the hub's lock, as its own clients' messages are, the answers to a resync are handed
//! on, and a persisted path's server client runs here only while this node holds its lease.
//! The cluster logic itself lives in the `cluster` crate.

use std::collections::HashMap;
use std::sync::{Arc, OnceLock, Weak};

use cluster::Cluster;
use sync_core::protocol::limits::SERVER_CLIENT_ID;
use sync_core::router::{Outbox, PathKey, Payload, Router};

use crate::event::Event;

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

    fn hold(&self, path_id: &str, key: u64, epoch: u64) {
        if let Some(hub) = self.hub() {
            hub.server_held(path_id, PathKey(key), epoch);
        }
    }

    fn elsewhere(&self, _path_id: &str, key: u64) {
        if let Some(hub) = self.hub() {
            hub.server_elsewhere(PathKey(key));
        }
    }

    fn vacated(&self, path_id: &str) {
        if let Some(hub) = self.hub() {
            hub.vacated(path_id);
        }
    }

    fn to_server(&self, path_id: &str, payload: &str) {
        if let Some(hub) = self.hub() {
            hub.to_server_from_elsewhere(path_id, payload);
        }
    }
}

/// Where each persisted path generation's server client runs.
enum Role {
    /// Asking Redis who holds the path; its clients' messages are held meanwhile.
    Pending,
    /// Here, under the lease taken at `epoch`.
    Holder { epoch: u64 },
    /// On the node holding the lease: its traffic goes there through Redis.
    Elsewhere,
    /// Here, being stopped by JS: the lease goes once it has.
    Stopping,
}

/// What the hub keeps for the cluster, under its lock.
#[derive(Default)]
pub(crate) struct ClusterState {
    roles: HashMap<PathKey, (String, Role)>,
    followups: Vec<Followup>,
}

/// Router work a cluster decision leads to, done once the router's current call returns.
pub(crate) enum Followup {
    /// A client's answer to the resync, for every other client of its path.
    Offer(Offer),
    /// A generation whose server client was never run here is gone.
    Stopped(PathKey),
}

/// The cluster's share of the router's effects.
pub(crate) struct Clustered<'a> {
    pub(crate) link: &'a Cluster,
    pub(crate) state: &'a mut ClusterState,
}

impl Clustered<'_> {
    pub(crate) fn path_ids(&self, path_id: &str, change: i8) {
        match change {
            1 => self.link.listen(path_id),
            _ => self.link.unlisten(path_id),
        }
    }

    /// A new persisted generation: who runs its server client is asked of Redis first.
    pub(crate) fn start_path(&mut self, path: PathKey, path_id: &str) {
        self.state
            .roles
            .insert(path, (path_id.to_owned(), Role::Pending));
        self.link.acquire(path_id, path.0);
    }

    /// True if JS runs the generation's server client and must stop it.
    pub(crate) fn stop_path(&mut self, path: PathKey) -> bool {
        match self.state.roles.get_mut(&path) {
            Some((_, role @ Role::Holder { .. })) => {
                *role = Role::Stopping;
                true
            }
            Some((_, Role::Stopping)) => true,
            Some((_, Role::Pending | Role::Elsewhere)) => {
                self.state.roles.remove(&path);
                self.state.followups.push(Followup::Stopped(path));
                false
            }
            None => true,
        }
    }

    /// This node's last client left `path`: while it holds the path, it keeps the server
    /// client running for the other nodes' clients until none has any.
    pub(crate) fn keeps(&mut self, path: PathKey) -> bool {
        match self.state.roles.get(&path) {
            Some((path_id, Role::Holder { .. })) => {
                self.link.vacant_here(path_id);
                true
            }
            _ => false,
        }
    }

    /// JS stopped the generation's server client: its lease is let go.
    pub(crate) fn server_stopped(&mut self, path: PathKey) {
        if let Some((path_id, Role::Stopping)) = self.state.roles.get(&path) {
            self.link.release(path_id, path.0);
            self.state.roles.remove(&path);
        }
    }

    /// True if the message went to the node running the server client.
    pub(crate) fn to_server(&self, path: PathKey, payload: &str) -> bool {
        match self.state.roles.get(&path) {
            Some((path_id, Role::Elsewhere)) => {
                self.link.publish_to_server(path_id, payload);
                true
            }
            _ => false,
        }
    }

    /// What other nodes' clients may need from a client or the server client here.
    pub(crate) fn publish(&mut self, path_id: &str, to: &str, payload: &Payload) {
        if let Some(offer) = Offer::answering(self.link, path_id, to, payload) {
            self.state.followups.push(Followup::Offer(offer));
        } else if payload.as_str().starts_with(SERVER_CLIENT_ID)
            && payload.as_str()[SERVER_CLIENT_ID.len()..].starts_with('\n')
        {
            let epoch = self.state.roles.values().find_map(|(id, role)| match role {
                Role::Holder { epoch } if id == path_id => Some(*epoch),
                _ => None,
            });
            if let Some(epoch) = epoch {
                self.link
                    .publish_server(path_id, epoch, to, payload.as_str());
            }
        } else {
            self.link.publish(path_id, to, payload.as_str());
        }
    }

    /// This node took the lease of `path`: JS starts its server client, unless it runs already.
    pub(crate) fn held(
        &mut self,
        path_id: &str,
        path: PathKey,
        epoch: u64,
        events: &mut Vec<Event>,
    ) {
        match self.state.roles.get_mut(&path) {
            Some((_, role @ (Role::Pending | Role::Elsewhere))) => {
                *role = Role::Holder { epoch };
                events.push(Event::StartPath {
                    path,
                    path_id: path_id.to_owned(),
                });
            }
            Some((_, Role::Holder { epoch: held })) => *held = epoch,
            Some((_, Role::Stopping)) | None => self.link.release(path_id, path.0),
        }
    }

    /// Another node holds `path`: true if this node's clients may now be relayed.
    pub(crate) fn elsewhere(&mut self, path: PathKey) -> bool {
        match self.state.roles.get_mut(&path) {
            Some((_, role @ Role::Pending)) => {
                *role = Role::Elsewhere;
                true
            }
            _ => false,
        }
    }

    /// The next router work decided meanwhile.
    pub(crate) fn next_followup(&mut self) -> Option<Followup> {
        self.state.followups.pop()
    }
}

impl Followup {
    pub(crate) fn apply(self, router: &mut Router, out: &mut impl Outbox) {
        match self {
            Followup::Offer(offer) => offer.hand_on(router, out),
            Followup::Stopped(path) => router.path_stopped(path, out),
        }
    }
}

/// A client's answer to the resync pseudo client, to hand to every other client of its path,
/// the server client included.
pub(crate) struct Offer {
    path_id: String,
    from: String,
    payload: Payload,
}

impl Offer {
    /// The offer `payload` makes if it answers `cluster`'s resync request.
    fn answering(cluster: &Cluster, path_id: &str, to: &str, payload: &Payload) -> Option<Offer> {
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

    /// Hands the offer to this node's other clients of the path, to every other node's, and to
    /// the path's server client wherever it runs: it missed what the clients of other nodes sent
    /// it meanwhile, and would not save it until something else made it compare.
    fn hand_on(self, router: &mut Router, out: &mut impl Outbox) {
        router.deliver(&self.path_id, &self.from, "", &self.payload, out);
        router.deliver_to_server(&self.path_id, self.payload.as_str(), out);
        out.publish(&self.path_id, "", &self.payload);
    }
}
