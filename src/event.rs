//! What the hub tells the JS side: everything that needs a JS callback, a JS-plane socket or the
//! user's listeners, in the order it happened.

use connection_plane::FrameError;
use sync_core::router::{ConnId, PathKey, Payload};

/// A message as its peer framed it, for a facade to emit as ws would.
pub enum MessageData {
    Text(String),
    Binary(Vec<u8>),
}

pub enum Event {
    /// The plane answered an upgrade on its own listening socket: JS counts the connection,
    /// which it has not seen, among its clients.
    Upgraded { conn: ConnId },
    /// A connection the plane's listening socket accepted and left unread, for Node's HTTP
    /// server. Dropping the event closes it.
    Connection { socket: std::net::TcpStream },
    /// A client joined (`1`) or left (`-1`) a path: the user's client id listeners.
    ClientIds {
        path_id: String,
        client_id: String,
        change: i8,
    },
    /// A path appeared or finished stopping: the user's path id listeners.
    PathIds { path_id: String, change: i8 },
    /// Create, start and attach the server client of a new path generation.
    StartPath { path: PathKey, path_id: String },
    /// Tear down the server client of a path generation that lost its last client.
    StopPath { path: PathKey },
    /// Tear down these generations, which a closed multiplexed socket's channels leave, and
    /// report the first error among their teardowns once all have settled.
    StopPaths { paths: Vec<PathKey> },
    /// A whole message for a path's server client, `fromClientId\nmessage`.
    ToServer { path: PathKey, payload: String },
    /// An error for `onIgnoredError`.
    Error { message: String },
    /// Send a payload on a JS-plane socket.
    Send { conn: ConnId, payload: Payload },
    /// Close a JS-plane socket.
    Close {
        conn: ConnId,
        code: u16,
        reason: String,
    },
    /// A native socket closed: its facade emits `'close'`.
    Closed {
        conn: ConnId,
        code: u16,
        reason: String,
    },
    /// A message arrived on a native socket whose facade has `'message'` listeners.
    Message { conn: ConnId, data: MessageData },
    /// A native socket's peer sent a frame ws would reject: its facade emits ws's `'error'`.
    SocketError { conn: ConnId, error: FrameError },
    /// A native socket answered a ping its facade sent.
    Pong { conn: ConnId, data: String },
    /// Ask the user's `authorize` about a connection or channel, and answer with the ticket.
    Authorize {
        conn: ConnId,
        ticket: u64,
        path_id: String,
        client_id: String,
        channel_id: Option<String>,
    },
}
