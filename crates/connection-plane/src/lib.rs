//! The native connection plane: WebSocket connections taken over from Node's `ws` run here, on a
//! tokio runtime the plane owns, so relaying never waits on the JavaScript thread.
//!
//! The plane knows nothing of TinyBase's protocol. It reads whole messages and hands them to an
//! [`Inbound`], and it writes what the hub queues on a [`Connection`], batching every frame that is
//! due into one write per wake-up. Nothing here touches N-API, so all of it runs under `cargo test`.

mod close_code;
mod commands;
mod connection;
#[cfg(unix)]
mod fd_table;
mod frame_error;
mod handshake;
mod listener;
mod plane;
mod session;
mod wire;

use std::time::Duration;

pub use connection::{Connection, InvalidCloseCode};
pub use frame_error::FrameError;
pub use handshake::{Upgrade, UpgradeRules};
pub use listener::{Intake, Listening, DEFAULT_BACKLOG};
pub use plane::{Adopted, Plane};
pub use sync_core::router::{Backpressure, ConnId, Payload};

/// Close code for a socket that ended without a close frame, or was given up on.
pub const ABNORMAL_CLOSURE: u16 = 1006;
/// Close code reported when the peer's close frame carried none; given to [`Connection::close`],
/// a Close frame without a status.
pub const NO_STATUS: u16 = 1005;
/// Close code the plane sends to every connection when it shuts down.
pub const GOING_AWAY: u16 = 1001;
/// Close code the plane sends after a message too large to read, as TinyBase's server does.
pub const OVERSIZED_CODE: u16 = 1013;
/// Close reason sent with [`OVERSIZED_CODE`]: TinyBase's overflow error for a socket.
pub const OVERSIZED_REASON: &str = "tinybase:15:socket";

/// Where a connection's events go. Called on the plane's threads, so an implementation queues or
/// hands work on; it must not block for long, and must not call [`Plane::shutdown`].
pub trait Inbound: Send + Sync + 'static {
    /// A text message arrived. Any message the plane could read whole arrives here or at
    /// [`Inbound::binary_message`], also one over TinyBase's 16 MiB limit: which overflow error
    /// that is depends on the message, so the router judges it.
    fn message(&self, conn: ConnId, text: &str);
    /// A binary message arrived. By default it is taken as text, decoded as lossy UTF-8 as ws's
    /// `toString()` does.
    fn binary_message(&self, conn: ConnId, data: &[u8]) {
        self.message(conn, &String::from_utf8_lossy(data));
    }
    /// A message too large to read at all arrived (over [`Settings::max_message_size`]); the plane
    /// closes the socket with 1013 and reason "tinybase:15:socket" itself, the hub only reports
    /// the error. Nothing more is read from the connection.
    fn oversized(&self, conn: ConnId);
    /// The peer sent a frame ws would reject (invalid UTF-8, a protocol violation); the plane
    /// closes the socket with the error's status itself, as ws does, the hub only reports the
    /// error as ws's WebSocket emits it. Nothing more is delivered from the connection, and it
    /// ends as `closed` 1006, as ws never reads the peer's Close after such an error.
    fn frame_error(&self, conn: ConnId, error: FrameError);
    /// A pong arrived: the answer to [`Connection::ping`] or to the plane's own heartbeat.
    fn pong(&self, conn: ConnId, data: &[u8]) {
        let _ = (conn, data);
    }
    /// The heartbeat gave up on a silent peer; `closed` with 1006 follows.
    fn heartbeat_lost(&self, conn: ConnId) {
        let _ = conn;
    }
    /// The connection ended (either side, or heartbeat loss). code 1005 when the close frame had
    /// none, 1006 when the socket ended without a close frame. Called exactly once per connection.
    fn closed(&self, conn: ConnId, code: u16, reason: &str);
}

/// Keeping idle peers honest: a connection that has been silent for a whole `interval` is pinged,
/// and one that stays silent through `allowed_misses` pings in a row is dropped (`closed` 1006).
/// Any inbound frame counts as a sign of life. With `allowed_misses` 0 a single silent interval
/// drops the peer without pinging it at all.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Heartbeat {
    pub interval: Duration,
    pub allowed_misses: u32,
}

/// How the plane runs its connections.
#[derive(Debug, Clone)]
pub struct Settings {
    /// tungstenite's per-connection read buffer. It is allocated per connection and zero-filled
    /// on every read, so a small one saves both memory and time: every connection, idle or not,
    /// keeps it (1 KiB rather than 4 KiB took about 3 KiB off each of 4,000 idle connections'
    /// resident memory, 512 bytes rather than 1 KiB about 0.6 KiB off each of 10,000). tungstenite
    /// reads at most this much at a time, but from the wire's read-ahead while a large message
    /// streams in, not from the socket. A frame larger than the buffer gets room for its whole
    /// length at once; that room is let go of when the connection next waits between messages.
    pub read_buffer_size: usize,
    /// Largest message (and frame) read whole. Messages up to it are delivered whatever their
    /// size, for the router to apply TinyBase's 16 MiB limit as TinyBase does; reading past that
    /// limit lets it tell an oversized fragment from an oversized message. Beyond this a message
    /// is cut off unread and reported [`Inbound::oversized`].
    pub max_message_size: usize,
    pub heartbeat: Option<Heartbeat>,
    /// How long a closing connection waits for the peer's side of the close handshake, as ws's
    /// `closeTimeout`.
    pub close_timeout: Duration,
    /// How long [`Plane::shutdown`] waits for connections to finish closing, and then again for
    /// the runtime's threads to stop.
    pub shutdown_grace: Duration,
    pub worker_threads: usize,
    /// How many file descriptors the process's fd table is grown to hold when the plane starts
    /// (capped by the open-files limit), so that taking sockets over never waits on its growth.
    pub reserved_fds: usize,
    /// Name of the runtime's threads, so they can be told apart in a profile or a thread list.
    pub thread_name: String,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            read_buffer_size: 512,
            max_message_size: 2 * sync_core::protocol::limits::MAX_PAYLOAD_BYTES,
            heartbeat: None,
            close_timeout: Duration::from_secs(30),
            shutdown_grace: Duration::from_secs(1),
            worker_threads: 2,
            reserved_fds: 65_536,
            thread_name: "tinybase-ws-plane".to_owned(),
        }
    }
}
