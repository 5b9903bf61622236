//! The `tinybase` subprotocol: `M\nchannelId\npayload` envelopes and `S\n[requestId,-1,[control,
//! body]]` controls that let one socket carry many channels.

/// A valid control message from a multiplexing client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Control {
    /// `[requestId, -1, [0, 1]]`: negotiates the protocol version.
    Hello { request_id: String },
    /// `[requestId, -1, [1, channelId]]`. The id may be too large: the caller checks.
    Subscribe { request_id: String, channel_id: String },
    /// `[null, -1, [2, channelId]]`. The id may be too large: the caller checks.
    Unsubscribe { channel_id: String },
}

/// What one payload on a multiplexed socket is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Envelope<'a> {
    Control(Control),
    /// A payload for one channel, with a valid channel id.
    Channel { channel_id: &'a str, payload: &'a str },
    /// A channel envelope whose id is over the size limit.
    ChannelIdTooLarge,
    /// Neither a valid control nor a valid channel envelope.
    Invalid,
}

/// Classifies one payload received on a multiplexed socket.
pub fn parse(payload: &str) -> Envelope<'_> {
    let _ = payload;
    todo!("protocol::multiplex::parse")
}

/// Wraps a payload for delivery on one channel: `M\nchannelId\npayload`.
pub fn wrap(channel_id: &str, payload: &str) -> String {
    let _ = (channel_id, payload);
    todo!("protocol::multiplex::wrap")
}

/// The server's acknowledgement of a control: `S\n[requestId,-1,[control,body]]`, as TinyBase
/// echoes it.
pub fn reply(control: &Control) -> String {
    let _ = control;
    todo!("protocol::multiplex::reply")
}

/// Whether a channel id is over TinyBase's size limit (in UTF-8 bytes).
pub fn is_channel_id_too_large(channel_id: &str) -> bool {
    let _ = channel_id;
    todo!("protocol::multiplex::is_channel_id_too_large")
}

/// Whether a channel id has TinyBase's structure: non-empty `/`-separated parts, none `.` or
/// `..`, and no `\n`, `\r`, `?` or `#`.
pub fn is_channel_id_valid(channel_id: &str) -> bool {
    let _ = channel_id;
    todo!("protocol::multiplex::is_channel_id_valid")
}
