//! A `Router` driven by a sequence of host calls, with a host that keeps its side of the
//! contract and checks the router's.
//!
//! Input: a first step whose bytes set the router up (bit 0: a persister factory, bits 1-3:
//! the fragment size, bit 4: an authorize hook, bit 5: two clients per path at most, bit 6: 50
//! messages per second at most; second byte: the request timeout), then steps (see the crate docs) each
//! `op a b c text`: `op` picks the call, the next bytes are its arguments (a connection slot, a
//! path, a client, a repeat count, a recipient) and any text starts at the fourth byte.
//!
//! The host keeps its contract as the binding does: connection ids are never reused, a path is
//! answered ready or failed once after it starts and stopped once after it stops, and only a
//! server client that exists sends. Client ids come from a small set, because a client chooses
//! its own `sec-websocket-key` and two sockets may well share one.
//!
//! Checked throughout: no panic (overflow checks are on); nothing is sent to, or closed on, a
//! connection the router closed or the host closed; each connection is closed at most once,
//! with the close code its reason calls for; the path and client ids the router reported match
//! what it answers, and its stats match both; a path starts and stops once; only a ready path
//! with a server client hears a message, and what it hears from a client is valid; expiry
//! leaves nothing due. At the end, once every connection closed and every path was answered,
//! nothing is left.

#![no_main]

use std::collections::HashSet;
use std::time::{Duration, Instant};

use libfuzzer_sys::fuzz_target;
use sync_core::protocol::error::{Refusal, SyncError};
use sync_core::protocol::limits::{MAX_PAYLOAD_BYTES, SERVER_CLIENT_ID};
use sync_core::protocol::message::validate;
use sync_core::router::{
    Access, AuthRequest, Backpressure, Config, ConnId, Decision, Limits, Outbox, PathKey, Payload,
    Router,
};
use sync_core_fuzz::{steps, Step};

/// Connections open at once, at most.
const SLOTS: usize = 8;
/// Paths to connect to: a multiplexed socket on `shop` subscribing to `pets` shares the path of
/// a legacy socket on `shop/pets`, and one on `` subscribing to `pets` that of one on `pets`.
const PATHS: [&str; 4] = ["", "shop", "shop/pets", "pets"];
/// `sec-websocket-key`s, fewer than the slots so that sockets share them.
const CLIENTS: [&str; 4] = [
    "dGhlIHNhbXBsZSBub25jZQ==",
    "x3JJHMbDL1EzLkh9GBhXDw==",
    "AQIDBAUGBwgJCgsMDQ4PEA==",
    "aNmKQnk+aFjWdKir7J3bxw==",
];
const FRAGMENT_SIZES: [Option<f64>; 8] = [
    None,
    Some(0.5),
    Some(1.0),
    Some(8.0),
    Some(40.0),
    Some(100.0),
    Some(f64::NAN),
    Some(1e9),
];

/// The host: what it has opened and been asked to do, checked against every effect.
#[derive(Default)]
struct Host {
    /// Opened and not yet closed by the host.
    open: HashSet<ConnId>,
    /// Closed by the router.
    closed: HashSet<ConnId>,
    backpressured: HashSet<ConnId>,
    /// Path ids, and each path's client ids, as the router reported them.
    path_ids: Vec<String>,
    client_ids: Vec<(String, Vec<String>)>,
    started: HashSet<PathKey>,
    stopped: HashSet<PathKey>,
    /// Started paths not yet answered ready or failed, and stopping ones not yet answered.
    starting: Vec<PathKey>,
    stopping: Vec<PathKey>,
    /// Paths answered ready with a server client, until they finish stopping.
    server_clients: Vec<PathKey>,
    /// Authorize requests not answered yet: connection, ticket, channel.
    pending: Vec<(ConnId, u64, Option<String>)>,
}

impl Host {
    fn clients_of(&mut self, path_id: &str) -> &mut Vec<String> {
        let at = match self.client_ids.iter().position(|(id, _)| id == path_id) {
            Some(at) => at,
            None => {
                self.client_ids.push((path_id.to_owned(), Vec::new()));
                self.client_ids.len() - 1
            }
        };
        &mut self.client_ids[at].1
    }

    fn check_reachable(&self, conn: ConnId) {
        assert!(self.open.contains(&conn), "{conn:?} is closed or unknown");
        assert!(
            !self.closed.contains(&conn),
            "{conn:?} was closed by the router"
        );
    }
}

impl Outbox for Host {
    fn send(&mut self, conn: ConnId, payload: &Payload) -> Result<(), Backpressure> {
        self.check_reachable(conn);
        assert!(payload.len() <= MAX_PAYLOAD_BYTES);
        match self.backpressured.contains(&conn) {
            true => Err(Backpressure),
            false => Ok(()),
        }
    }

    fn close(&mut self, conn: ConnId, code: u16, reason: &str) {
        self.check_reachable(conn);
        self.closed.insert(conn);
        let refused = [Refusal::Denied, Refusal::PathFull, Refusal::RateLimited]
            .map(SyncError::Refused)
            .into_iter()
            .find(|error| error.to_string() == reason);
        let expected = match (refused, reason) {
            (Some(refused), _) => refused.close_code(),
            (None, "tinybase:14") => SyncError::Message.close_code(),
            (None, _) if reason.starts_with("tinybase:15:") => 1013,
            _ => panic!("unexpected close reason {reason:?}"),
        };
        assert_eq!(code, expected, "{reason}");
    }

    fn report(&mut self, _error: SyncError) {}

    fn client_ids(&mut self, path_id: &str, client_id: &str, change: i8) {
        assert!(self.path_ids.iter().any(|id| id == path_id), "{path_id:?}");
        let clients = self.clients_of(path_id);
        let at = clients.iter().position(|id| id == client_id);
        match (change, at) {
            // A client id already on the path is replaced in place, as a JS `Map` does.
            (1, Some(_)) => {}
            (1, None) => clients.push(client_id.to_owned()),
            (-1, Some(at)) => {
                clients.remove(at);
            }
            _ => panic!("{client_id:?} changed by {change} on {path_id:?}: {clients:?}"),
        }
    }

    fn path_ids(&mut self, path_id: &str, change: i8) {
        let at = self.path_ids.iter().position(|id| id == path_id);
        match (change, at) {
            (1, None) => self.path_ids.push(path_id.to_owned()),
            (-1, Some(at)) => {
                self.path_ids.remove(at);
                assert!(
                    self.clients_of(path_id).is_empty(),
                    "{path_id:?} had clients"
                );
            }
            _ => panic!("{path_id:?} changed by {change}: {:?}", self.path_ids),
        }
    }

    fn start_path(&mut self, path: PathKey, _path_id: &str) {
        assert!(self.started.insert(path), "{path:?} started twice");
        self.starting.push(path);
    }

    fn stop_path(&mut self, path: PathKey) {
        assert!(
            self.started.contains(&path),
            "{path:?} stopped, never started"
        );
        assert!(self.stopped.insert(path), "{path:?} stopped twice");
        self.stopping.push(path);
    }

    fn stop_paths(&mut self, paths: Vec<PathKey>) {
        for path in paths {
            // Channels the socket unsubscribed are listed again, still stopping: waited for, not
            // stopped twice.
            if !self.stopped.contains(&path) {
                self.stop_path(path);
            }
        }
    }

    fn to_server(&mut self, path: PathKey, payload: &str) {
        assert!(
            self.server_clients.contains(&path),
            "{path:?} has no server client to hear {payload:?}"
        );
        let (from, message) = payload.split_once('\n').expect("an addressed payload");
        // The server client hears its own messages to itself as it sent them.
        if from != SERVER_CLIENT_ID {
            assert!(
                validate(message).is_some(),
                "invalid for the server: {payload:?}"
            );
        }
    }

    fn authorize(&mut self, request: AuthRequest) {
        assert!(self.open.contains(&request.conn), "{request:?}");
        self.pending.push((
            request.conn,
            request.ticket,
            request.channel_id.map(str::to_owned),
        ));
    }
}

struct Fuzz {
    router: Router,
    host: Host,
    slots: [Option<ConnId>; SLOTS],
    next_conn: u64,
    now: Instant,
}

impl Fuzz {
    fn open(&mut self, step: &Step, multiplexed: bool) {
        let slot = usize::from(step.byte(1)) % SLOTS;
        if self.slots[slot].is_some() {
            return;
        }
        let conn = ConnId(self.next_conn);
        self.next_conn += 1;
        self.slots[slot] = Some(conn);
        self.host.open.insert(conn);
        let path_id = PATHS[usize::from(step.byte(2)) % PATHS.len()];
        let client_id = CLIENTS[usize::from(step.byte(3)) % CLIENTS.len()];
        let host = &mut self.host;
        self.router
            .open(conn, path_id, client_id, multiplexed, host);
    }

    fn close(&mut self, slot: usize) {
        if let Some(conn) = self.slots[slot].take() {
            self.host.open.remove(&conn);
            self.router.close(conn, self.now, &mut self.host);
        }
    }

    fn step(&mut self, step: &Step) {
        let slot = usize::from(step.byte(1)) % SLOTS;
        let pick = |keys: &[PathKey]| match keys.len() {
            0 => None,
            len => Some(usize::from(step.byte(1)) % len),
        };
        let op = step.byte(0) % 12;
        match op {
            0 | 1 => return self.open(step, op == 1),
            3 => return self.close(slot),
            _ => {}
        }
        let host = &mut self.host;
        match op {
            2 => {
                if let Some(conn) = self.slots[slot] {
                    let payload = step.text(3);
                    // Repeats reach the count limits (a thousand held messages) in a short input.
                    for _ in 0..=usize::from(step.byte(2)) * 8 {
                        self.router.receive(conn, &payload, self.now, host);
                    }
                }
            }
            4 => {
                let Some(at) = pick(&host.server_clients) else {
                    return;
                };
                let path = host.server_clients[at];
                let to = match step.byte(2) % 7 {
                    0 => None,
                    1 => Some(""),
                    2 => Some(SERVER_CLIENT_ID),
                    n => Some(CLIENTS[usize::from(n - 3)]),
                };
                let remainder = step.text(3);
                self.router.server_send(path, to, &remainder, host);
            }
            5 => {
                let Some(at) = pick(&host.starting) else {
                    return;
                };
                let path = host.starting.remove(at);
                let has_server_client = step.byte(2) & 1 == 1;
                // A path that is already stopping gets no server client: the host tears it
                // down instead.
                if has_server_client && !host.stopped.contains(&path) {
                    host.server_clients.push(path);
                }
                self.router.path_ready(path, has_server_client, host);
            }
            6 => {
                let Some(at) = pick(&host.starting) else {
                    return;
                };
                let path = host.starting.remove(at);
                self.router.path_failed(path, self.now, host);
            }
            7 => {
                let Some(at) = pick(&host.stopping) else {
                    return;
                };
                let path = host.stopping.remove(at);
                host.server_clients.retain(|&key| key != path);
                self.router.path_stopped(path, host);
            }
            8 => self.now += Duration::from_millis(u64::from(step.byte(1)) * 20),
            9 => {
                self.router.expire(self.now, host);
                let next = self.router.next_deadline();
                assert!(
                    next.is_none_or(|at| at > self.now),
                    "expiry left {next:?} due"
                );
            }
            // A decision, possibly for a connection closed meanwhile.
            11 => {
                if host.pending.is_empty() {
                    return;
                }
                let at = usize::from(step.byte(1)) % host.pending.len();
                let (conn, ticket, channel) = host.pending.remove(at);
                let decision = match step.byte(2) % 3 {
                    0 => Decision::Grant(Access::Write),
                    1 => Decision::Grant(Access::Read),
                    _ => Decision::Deny,
                };
                let channel = channel.as_deref();
                self.router
                    .authorized(conn, ticket, channel, decision, self.now, host);
            }
            _ => {
                if let Some(conn) = self.slots[slot] {
                    if !host.backpressured.remove(&conn) {
                        host.backpressured.insert(conn);
                    }
                }
            }
        }
    }

    /// The router answers what it reported.
    fn check_ids(&self) {
        let path_ids = self.router.path_ids();
        assert_eq!(path_ids, self.host.path_ids);
        let mut clients = 0;
        for (path_id, reported) in &self.host.client_ids {
            let answered = self.router.client_ids(path_id);
            assert_eq!(&answered, reported, "clients of {path_id:?}");
            clients += answered.len();
        }
        let stats = self.router.stats();
        assert_eq!(stats.paths, path_ids.len());
        assert_eq!(stats.clients, clients);
    }

    /// Closes every connection and answers every start and stop, as the host does on shutdown.
    fn finish(&mut self) {
        for slot in 0..SLOTS {
            self.close(slot);
        }
        // Paths kept warm after their last client stop once their time runs out.
        self.now += Duration::from_secs(86_400);
        self.router.expire(self.now, &mut self.host);
        loop {
            let host = &mut self.host;
            if let Some(path) = host.starting.pop() {
                self.router.path_failed(path, self.now, host);
            } else if let Some(path) = host.stopping.pop() {
                host.server_clients.retain(|&key| key != path);
                self.router.path_stopped(path, host);
            } else {
                break;
            }
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let mut steps = steps(data);
    let Some(setup) = steps.next() else {
        return;
    };
    let mut ids = 0u64..;
    let config = Config {
        request_timeout: Duration::from_millis(u64::from(setup.byte(1)) * 20),
        fragment_size: FRAGMENT_SIZES[usize::from(setup.byte(0) >> 1) % FRAGMENT_SIZES.len()],
        has_factory: setup.byte(0) & 1 == 1,
        message_id: Box::new(move || format!("{:016}", ids.next().unwrap_or_default())),
        limits: Limits {
            authorizing: setup.byte(0) & 16 != 0,
            max_clients_per_path: (setup.byte(0) & 32 != 0).then_some(2),
            max_messages_per_second: (setup.byte(0) & 64 != 0).then_some(50.0),
        },
        keep_warm: Duration::from_millis(u64::from(setup.byte(2)) * 20),
    };
    let mut fuzz = Fuzz {
        router: Router::new(config),
        host: Host::default(),
        slots: [None; SLOTS],
        next_conn: 0,
        now: Instant::now(),
    };
    for step in steps {
        fuzz.step(&step);
        fuzz.check_ids();
    }
    fuzz.finish();
    fuzz.check_ids();
    assert!(fuzz.host.path_ids.is_empty(), "{:?}", fuzz.host.path_ids);
    assert_eq!(
        fuzz.router.next_deadline(),
        None,
        "a deadline outlived everything"
    );
});
