//! Paths and their generations: which clients are on each, in join order, and how a generation
//! starts, stops and is replaced, as TinyBase's `createPath`, `addClientToPath`,
//! `delClientFromPath` and `stopPath` keep them.

use std::sync::Arc;
use std::time::{Duration, Instant};

use indexmap::IndexMap;

use super::access::Access;
use super::hold::{Hold, SocketHolds};
use super::ids::IdMap;
use super::timers::{Timer, Timers};
use super::{ConnId, Outbox, PathKey, Payload, Stats};
use crate::protocol::limits::SERVER_CLIENT_ID;

/// One channel subscription of a multiplexed socket; the serial tells a re-subscription apart.
#[derive(Debug, Clone)]
pub(super) struct ChannelRef {
    pub(super) id: Arc<str>,
    pub(super) serial: u64,
}

/// Where a path's client is reached.
#[derive(Debug, Clone)]
pub(super) struct Client {
    pub(super) conn: ConnId,
    /// The channel to wrap payloads for, on a multiplexed socket.
    pub(super) channel: Option<ChannelRef>,
    pub(super) access: Access,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Start {
    /// The host is starting the server client: messages from clients are held.
    Pending,
    Ready {
        server_client: bool,
    },
}

/// A multiplexed channel whose bookkeeping waits until this generation finishes stopping.
#[derive(Debug)]
pub(super) struct Waiter {
    pub(super) conn: ConnId,
    /// `None`: an unsubscribed channel still counting as a resource. `Some`: a channel whose
    /// path failed to start, still subscribed until then.
    pub(super) failed: Option<ChannelRef>,
}

/// One generation of a path.
#[derive(Debug)]
pub(super) struct Path {
    pub(super) key: PathKey,
    pub(super) id: Arc<str>,
    pub(super) clients: IndexMap<Arc<str>, Client>,
    pub(super) start: Start,
    /// Its last client left and the host is tearing it down; a new client starts a new
    /// generation instead of joining this one.
    pub(super) stopping: bool,
    pub(super) hold: Hold,
    pub(super) waiters: Vec<Waiter>,
    /// Its last client left and it is kept warm until then: a client arriving before it joins
    /// this generation, whose server client is still running.
    pub(super) warm_until: Option<Instant>,
    /// The host has called the persister factory for this generation (always, without one).
    /// TinyBase calls it before it acknowledges the subscription that created the path.
    pub(super) factory_called: bool,
    /// Subscription replies that wait for the factory to be called, in the order they came.
    pub(super) unacknowledged: Vec<(ConnId, Payload)>,
}

impl Path {
    pub(super) fn is_ready(&self) -> bool {
        matches!(self.start, Start::Ready { .. })
    }

    /// Whether any of its clients is read-only.
    pub(super) fn has_readers(&self) -> bool {
        self.clients
            .values()
            .any(|client| client.access == Access::Read)
    }

    /// Whether a message from `from` to `to` also goes to the server client.
    pub(super) fn server_hears(&self, from: &str, to: &str) -> bool {
        self.start
            == (Start::Ready {
                server_client: true,
            })
            && (to == SERVER_CLIENT_ID || (to.is_empty() && from != SERVER_CLIENT_ID))
    }
}

/// What a client leaving a generation did to it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Leave {
    /// The client was not on it (any more).
    NotMember,
    /// The client left; the path carries on, or stopped at once.
    Left,
    /// The client was the last one: the host is tearing the generation down.
    Stopping,
}

#[derive(Debug)]
pub(super) struct Paths {
    has_factory: bool,
    keep_warm: Duration,
    /// The current generation of each path id, in the order the ids appeared.
    by_id: IndexMap<Arc<str>, PathKey>,
    /// Current generations, and replaced ones that are still stopping.
    generations: IdMap<PathKey, Path>,
    next_key: u64,
    /// Clients across all generations (stopping ones have none).
    clients: usize,
}

impl Paths {
    pub(super) fn new(has_factory: bool, keep_warm: Duration) -> Self {
        Paths {
            has_factory,
            keep_warm,
            by_id: IndexMap::new(),
            generations: IdMap::default(),
            next_key: 0,
            clients: 0,
        }
    }

    pub(super) fn get(&self, key: PathKey) -> Option<&Path> {
        self.generations.get(&key)
    }

    /// The current generation of `path_id`, if it has one.
    pub(super) fn current(&self, path_id: &str) -> Option<&Path> {
        self.by_id.get(path_id).map(|key| &self.generations[key])
    }

    pub(super) fn get_mut(&mut self, key: PathKey) -> Option<&mut Path> {
        self.generations.get_mut(&key)
    }

    /// Whether `path_id` has `max` clients or more, so that one more would be too many. A
    /// generation that is stopping has none: a new client starts the next one.
    pub(super) fn is_full(&self, path_id: &str, max: Option<usize>) -> bool {
        max.is_some_and(|max| {
            self.by_id
                .get(path_id)
                .map(|key| &self.generations[key])
                .is_some_and(|path| !path.stopping && path.clients.len() >= max)
        })
    }

    /// Adds a client to the current generation of `path_id`, starting a generation if there is
    /// none or the current one is stopping; a generation kept warm is simply joined.
    pub(super) fn join(
        &mut self,
        path_id: &str,
        client_id: &Arc<str>,
        client: Client,
        timers: &mut Timers,
        out: &mut impl Outbox,
    ) -> PathKey {
        let key = match self.by_id.get_key_value(path_id) {
            Some((_, key)) if !self.generations[key].stopping => *key,
            Some((id, _)) => {
                let id = id.clone();
                self.create(id, true, out)
            }
            None => self.create(path_id.into(), false, out),
        };
        let path = self
            .generations
            .get_mut(&key)
            .expect("joined generation exists");
        timers.set(&Timer::Warm(key), &mut path.warm_until, None);
        if path.clients.insert(client_id.clone(), client).is_none() {
            self.clients += 1;
        }
        out.client_ids(path_id, client_id, 1);
        key
    }

    fn create(&mut self, id: Arc<str>, replacing: bool, out: &mut impl Outbox) -> PathKey {
        let key = PathKey(self.next_key);
        self.next_key += 1;
        // Replacing keeps the id's place in the order, as a JS `Map` does.
        self.by_id.insert(id.clone(), key);
        if !replacing {
            out.path_ids(&id, 1);
        }
        let start = if self.has_factory {
            out.start_path(key, &id);
            Start::Pending
        } else {
            Start::Ready {
                server_client: false,
            }
        };
        self.generations.insert(
            key,
            Path {
                key,
                id,
                clients: IndexMap::new(),
                start,
                stopping: false,
                hold: Hold::new(key),
                waiters: Vec::new(),
                warm_until: None,
                factory_called: !self.has_factory,
                unacknowledged: Vec::new(),
            },
        );
        key
    }

    /// Removes a client from a generation, dropping what it held there, and stops the
    /// generation if it was the last client: without a factory at once; with one, the caller
    /// asks the host to tear it down when this returns [`Leave::Stopping`].
    pub(super) fn leave(
        &mut self,
        key: PathKey,
        client_id: &str,
        now: Instant,
        sockets: &mut SocketHolds,
        timers: &mut Timers,
        out: &mut impl Outbox,
    ) -> Leave {
        let Some(path) = self.generations.get_mut(&key) else {
            return Leave::NotMember;
        };
        if !path.clients.contains_key(client_id) {
            return Leave::NotMember;
        }
        if path.stopping {
            // Only `stop_all` stops a path that still has clients: TinyBase's destroy drops them
            // with the path, without client events.
            path.clients.shift_remove(client_id);
            self.clients -= 1;
            return Leave::NotMember;
        }
        path.hold.drop_client(client_id, sockets, timers);
        path.clients.shift_remove(client_id);
        self.clients -= 1;
        out.client_ids(&path.id, client_id, -1);
        if !path.clients.is_empty() {
            return Leave::Left;
        }
        path.hold.take(sockets, timers);
        if !self.has_factory {
            self.remove(key, out);
            return Leave::Left;
        }
        let running = path.start
            == Start::Ready {
                server_client: true,
            };
        if running && out.keeps(key) {
            return Leave::Left;
        }
        if running && !self.keep_warm.is_zero() {
            Self::keep_warm(path, self.keep_warm, now, timers);
            return Leave::Left;
        }
        path.stopping = true;
        Leave::Stopping
    }

    fn keep_warm(path: &mut Path, keep_warm: Duration, now: Instant, timers: &mut Timers) {
        // A window too long to tell the time of keeps the path until the server goes.
        let until = now.checked_add(keep_warm);
        timers.set(&Timer::Warm(path.key), &mut path.warm_until, until);
    }

    /// The host stopped keeping the current generation of `path_id` for others at `now`: without
    /// a client here, it is kept warm or stopped.
    pub(super) fn vacated(
        &mut self,
        path_id: &str,
        now: Instant,
        timers: &mut Timers,
        out: &mut impl Outbox,
    ) {
        let Some(path) = self.by_id.get(path_id).map(|key| &self.generations[key]) else {
            return;
        };
        if !path.clients.is_empty() || path.stopping || path.warm_until.is_some() {
            return;
        }
        let key = path.key;
        let path = self.generations.get_mut(&key).expect("current generation");
        if self.keep_warm.is_zero() {
            path.stopping = true;
            out.stop_path(key);
        } else {
            Self::keep_warm(path, self.keep_warm, now, timers);
        }
    }

    /// The time a generation was kept warm ran out: it stops, unless a client came meanwhile.
    pub(super) fn cooled(&mut self, key: PathKey, out: &mut impl Outbox) {
        let Some(path) = self.generations.get_mut(&key) else {
            return;
        };
        // The timer that fired is no longer registered.
        if path.warm_until.take().is_some() && path.clients.is_empty() && !path.stopping {
            path.stopping = true;
            out.stop_path(key);
        }
    }

    /// Stops every current generation at once, as TinyBase's `destroy` does: held messages are
    /// dropped, clients stay counted until the generation is gone, and no client events fire.
    pub(super) fn stop_all(
        &mut self,
        sockets: &mut SocketHolds,
        timers: &mut Timers,
        out: &mut impl Outbox,
    ) {
        let keys: Vec<PathKey> = self.by_id.values().copied().collect();
        for key in keys {
            let path = self
                .generations
                .get_mut(&key)
                .expect("current generation exists");
            if path.stopping {
                continue;
            }
            path.hold.take(sockets, timers);
            timers.set(&Timer::Warm(key), &mut path.warm_until, None);
            path.stopping = true;
            if self.has_factory {
                out.stop_path(key);
            } else {
                self.remove(key, out);
            }
        }
    }

    /// The host finished tearing a stopping generation down: forgets it and returns the
    /// channels that waited for it.
    pub(super) fn stopped(&mut self, key: PathKey, out: &mut impl Outbox) -> Vec<Waiter> {
        if self.generations.get(&key).is_some_and(|path| path.stopping) {
            self.remove(key, out).waiters
        } else {
            Vec::new()
        }
    }

    fn remove(&mut self, key: PathKey, out: &mut impl Outbox) -> Path {
        let path = self
            .generations
            .remove(&key)
            .expect("removed generation exists");
        self.clients -= path.clients.len();
        if self.by_id.get(&path.id) == Some(&key) {
            self.by_id.shift_remove(&path.id);
            out.path_ids(&path.id, -1);
        }
        path
    }

    pub(super) fn ids(&self) -> Vec<String> {
        self.by_id.keys().map(|id| id.to_string()).collect()
    }

    pub(super) fn client_ids(&self, path_id: &str) -> Vec<String> {
        self.by_id
            .get(path_id)
            .map(|key| {
                self.generations[key]
                    .clients
                    .keys()
                    .map(|id| id.to_string())
                    .collect()
            })
            .unwrap_or_default()
    }

    pub(super) fn stats(&self) -> Stats {
        Stats {
            paths: self.by_id.len(),
            clients: self.clients,
        }
    }
}
