//! The relay router: which clients are on which path, where each message goes, what is held
//! while a path's server client starts, and when paths start and stop. Mirrors TinyBase's
//! `createWsServer` bookkeeping, driven by calls from the host and answered through an [`Outbox`].

mod payload;

use std::time::{Duration, Instant};

use crate::protocol::error::SyncError;

pub use payload::Payload;

/// One connection (socket) as the host knows it; the router never reuses an id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ConnId(pub u64);

/// One generation of a path: a path that stops and is joined again gets a new key, so late
/// results for the old generation can be told apart and discarded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PathKey(pub u64);

/// The host refused a send because the connection's outbound backlog is full.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backpressure;

/// Path and client counts, as `WsServer.getStats` returns them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    pub paths: usize,
    pub clients: usize,
}

/// How the router is set up, from `createWsServer`'s arguments.
pub struct Config {
    /// `requestTimeoutSeconds`: fragment groups expire after it, held messages after ten times it.
    pub request_timeout: Duration,
    /// `fragmentSize`: how the server client's outbound messages are split, if at all.
    pub fragment_size: Option<f64>,
    /// Whether `createPersisterForPath` was given: without it paths are ready at once and stop at
    /// once, with no round trip to the host.
    pub has_factory: bool,
    /// Makes the 16-character ids of fragmented messages the server client sends.
    pub message_id: Box<dyn FnMut() -> String + Send>,
}

/// What the router asks of its host. It is called while the router is borrowed mutably, so an
/// implementation only queues work; it never calls back into the router.
pub trait Outbox {
    /// Delivers `payload` to `conn`. The payload is shared by every recipient of a broadcast.
    fn send(&mut self, conn: ConnId, payload: &Payload) -> Result<(), Backpressure>;
    /// Closes `conn` with a WebSocket close code and reason, after what was already sent to it.
    fn close(&mut self, conn: ConnId, code: u16, reason: &str);
    /// Reports an error to `onIgnoredError`.
    fn report(&mut self, error: SyncError);
    /// A client joined (`1`) or left (`-1`) a path.
    fn client_ids(&mut self, path_id: &str, client_id: &str, change: i8);
    /// A path appeared (`1`) or finished stopping (`-1`).
    fn path_ids(&mut self, path_id: &str, change: i8);
    /// A new path generation needs its server client: the host calls the persister factory, starts
    /// it, then answers with [`Router::path_ready`] or [`Router::path_failed`].
    fn start_path(&mut self, path: PathKey, path_id: &str);
    /// A path generation lost its last client: the host tears its server client down, then answers
    /// with [`Router::path_stopped`].
    fn stop_path(&mut self, path: PathKey);
    /// Delivers one whole message, `fromClientId\nmessage`, to the path's server client.
    fn to_server(&mut self, path: PathKey, payload: &str);
}

/// The relay's state for every path, client and connection.
pub struct Router {
    config: Config,
}

impl Router {
    pub fn new(config: Config) -> Self {
        Router { config }
    }

    /// A connection was accepted for `path_id` with `client_id` (its `sec-websocket-key`).
    /// A legacy connection is one client of that path at once; a multiplexed one (the `tinybase`
    /// subprotocol) joins `path_id/channelId` paths as it subscribes to channels.
    pub fn open(
        &mut self,
        conn: ConnId,
        path_id: &str,
        client_id: &str,
        multiplexed: bool,
        out: &mut impl Outbox,
    ) {
        let _ = (conn, path_id, client_id, multiplexed, out, &self.config);
        todo!("router::Router::open")
    }

    /// A text payload arrived on `conn` at `now`.
    pub fn receive(&mut self, conn: ConnId, payload: &str, now: Instant, out: &mut impl Outbox) {
        let _ = (conn, payload, now, out);
        todo!("router::Router::receive")
    }

    /// `conn` is gone, closed by either side: its clients leave their paths.
    pub fn close(&mut self, conn: ConnId, out: &mut impl Outbox) {
        let _ = (conn, out);
        todo!("router::Router::close")
    }

    /// The server client of `path` sends a message (`to_client_id` `None` for everyone).
    pub fn server_send(
        &mut self,
        path: PathKey,
        to_client_id: Option<&str>,
        remainder: &str,
        out: &mut impl Outbox,
    ) {
        let _ = (path, to_client_id, remainder, out);
        todo!("router::Router::server_send")
    }

    /// The host finished starting `path`: relay what was held, in order.
    pub fn path_ready(&mut self, path: PathKey, has_server_client: bool, out: &mut impl Outbox) {
        let _ = (path, has_server_client, out);
        todo!("router::Router::path_ready")
    }

    /// Starting `path` failed (already reported by the host): its clients leave the path.
    pub fn path_failed(&mut self, path: PathKey, out: &mut impl Outbox) {
        let _ = (path, out);
        todo!("router::Router::path_failed")
    }

    /// The host finished tearing `path` down.
    pub fn path_stopped(&mut self, path: PathKey, out: &mut impl Outbox) {
        let _ = (path, out);
        todo!("router::Router::path_stopped")
    }

    /// Expires fragment groups and held messages due by `now`.
    pub fn expire(&mut self, now: Instant, out: &mut impl Outbox) {
        let _ = (now, out);
        todo!("router::Router::expire")
    }

    /// The next time [`Router::expire`] has something to do.
    pub fn next_deadline(&self) -> Option<Instant> {
        todo!("router::Router::next_deadline")
    }

    /// Path ids in the order the paths appeared.
    pub fn path_ids(&self) -> Vec<String> {
        todo!("router::Router::path_ids")
    }

    /// Client ids of a path in the order they joined; empty for an unknown path.
    pub fn client_ids(&self, path_id: &str) -> Vec<String> {
        let _ = path_id;
        todo!("router::Router::client_ids")
    }

    pub fn stats(&self) -> Stats {
        todo!("router::Router::stats")
    }
}
