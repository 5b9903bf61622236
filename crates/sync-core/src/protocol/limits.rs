//! TinyBase's protocol limits and reserved ids, with the meaning each has in its server.

/// Largest payload a socket may send or be sent, and the most bytes held for one path or socket.
pub const MAX_PAYLOAD_BYTES: usize = 16 * 1024 * 1024;
/// Most messages held for one path (or one socket) while its server client starts.
pub const MAX_QUEUED_MESSAGES: usize = 1_000;
/// Most fragments one message may be split into.
pub const MAX_FRAGMENT_COUNT: usize = 1_000;
/// Most partly received fragmented messages one socket may have pending at once.
pub const MAX_FRAGMENT_BUFFERS: usize = 100;
/// Most channels one multiplexed socket may subscribe to.
pub const MAX_CHANNELS: usize = 100;
/// Most channels a multiplexed socket may hold, including those still tearing down.
pub const MAX_CHANNEL_RESOURCES: usize = MAX_CHANNELS * 2;
/// Longest channel id, in UTF-8 bytes.
pub const MAX_CHANNEL_ID_BYTES: usize = 1_024;

/// The client id that addresses the path's server-side client.
pub const SERVER_CLIENT_ID: &str = "S";
/// The client id that introduces a multiplexed channel envelope.
pub const MULTIPLE_CLIENT_ID: &str = "M";
/// The message type of multiplex control messages.
pub const MULTIPLE_MESSAGE: i64 = -1;
/// The multiplex protocol version a hello must name.
pub const MULTIPLE_VERSION: i64 = 1;
/// The WebSocket subprotocol that selects multiplexed channels.
pub const SUBPROTOCOL: &str = "tinybase";
/// Marks `undefined` inside JSON, which has no such value.
pub const UNDEFINED_MARKER: &str = "\u{FFFC}";
