//! Who may do what on a path. The host decides once per legacy connection and once per channel
//! (its `authorize` hook); from then on every message is judged here, with no call back to the
//! host. Also the limits a server may set on clients per path and on messages per second.
//!
//! A read-only client must be able to sync its store completely while nothing it sends changes
//! any other store. In TinyBase's protocol only three message types carry content to the store
//! that receives them: `ContentDiff`, `Response` (the answer to a request, merged by its asker)
//! and `ContentHashes` (which makes its receiver ask the sender for diffs, whose responses would
//! then carry content). Requests (`GetContentHashes`, `Get…Diff`) only read the store that
//! answers them. So a read-only client's requests are relayed and everything else it sends is
//! dropped; and since its answers would be dropped, it is never handed anyone's request, so no
//! writer waits on a response that cannot come while a writer or the server client could answer.

use std::time::Instant;

use super::hold::{HoldFull, SocketHolds};
use super::{ConnId, Payload};
use crate::protocol::limits::{MAX_PAYLOAD_BYTES, MAX_QUEUED_MESSAGES};
use crate::protocol::message::message_type::{
    GET_CELL_DIFF, GET_CONTENT_HASHES, GET_ROW_DIFF, GET_TABLE_DIFF, GET_VALUE_DIFF, RESPONSE,
};
use crate::protocol::message::peek_type;

/// What a client may do on a path.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Access {
    /// Everything, as every client of TinyBase's own server.
    #[default]
    Write,
    /// Receive every change and sync its own store, without changing any other.
    Read,
}

/// The host's answer for one connection or channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    Grant(Access),
    Deny,
}

/// What the host must decide: answered with [`super::Router::authorized`] and the same ticket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AuthRequest<'a> {
    pub ticket: u64,
    pub conn: ConnId,
    /// The full path: a legacy connection's, or `base/channel` for a channel.
    pub path_id: &'a str,
    pub client_id: &'a str,
    /// The channel that asked, on a multiplexed socket.
    pub channel_id: Option<&'a str>,
}

/// Whether a message type only reads the store that answers it.
pub fn is_request(message_type: i64) -> bool {
    matches!(
        message_type,
        GET_CONTENT_HASHES | GET_TABLE_DIFF | GET_ROW_DIFF | GET_CELL_DIFF | GET_VALUE_DIFF
    )
}

impl Access {
    /// Whether a message of `message_type` from a client with this access is relayed.
    pub fn relays(self, message_type: i64) -> bool {
        self == Access::Write || is_request(message_type)
    }

    /// Whether a client with this access is handed a message of `message_type`.
    pub fn receives(self, message_type: i64) -> bool {
        self == Access::Write || !is_request(message_type)
    }
}

/// The type of a message the server client sends. It is TinyBase's own output, so it is not
/// validated; anything unreadable counts as a request, which read-only clients are not handed.
pub(super) fn server_message_type(remainder: &str) -> i64 {
    peek_type(remainder).unwrap_or(GET_CONTENT_HASHES)
}

/// The type of a payload (`from\nremainder`) relayed from another node of a cluster, validated
/// where it was sent. A fragment has no type of its own and is handed on: whatever a read-only
/// client answers is dropped by its own node anyway, so at worst a request split into fragments
/// (rare: requests are small) waits for an answer that does not come.
pub(super) fn relayed_message_type(payload: &Payload) -> i64 {
    payload
        .as_str()
        .split_once('\n')
        .and_then(|(_, remainder)| peek_type(remainder))
        .unwrap_or(RESPONSE)
}

/// The server's optional controls over who connects and how much they send; none by default.
#[derive(Debug, Clone, Copy, Default)]
pub struct Limits {
    /// Whether the host decides each connection's and channel's access before it joins a path.
    /// Without it every client may write, as on TinyBase's server.
    pub authorizing: bool,
    /// Most clients one path may have; one more is refused.
    pub max_clients_per_path: Option<usize>,
    /// Most messages one connection may send per second, on average; a second's worth may come
    /// at once. A connection beyond it is closed.
    pub max_messages_per_second: Option<f64>,
}

/// Why access control dropped a message, for the server's metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Dropped {
    /// Sent by a denied connection or on a denied channel.
    Denied,
    /// Sent by a read-only client, and not a request.
    ReadOnly,
}

/// A token bucket: a connection may send a second's worth of messages at once, then as many per
/// second as it is allowed.
#[derive(Debug)]
pub(super) struct RateLimit {
    rate: f64,
    tokens: f64,
    last: Instant,
}

impl RateLimit {
    pub(super) fn new(rate: f64, now: Instant) -> Self {
        RateLimit {
            rate,
            tokens: rate.max(1.0),
            last: now,
        }
    }

    /// Spends a token for one message received at `now`; false when there is none left.
    pub(super) fn take(&mut self, now: Instant) -> bool {
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.last = self.last.max(now);
        self.tokens = (self.tokens + elapsed * self.rate).min(self.rate.max(1.0));
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

/// What a connection or channel sent while the host was deciding, replayed once it is granted.
/// It is charged to the socket's startup-hold budget, TinyBase's bound on what a server keeps
/// for a client it cannot relay yet.
#[derive(Debug)]
pub(super) struct Awaiting {
    pub(super) ticket: u64,
    payloads: Vec<String>,
}

impl Awaiting {
    pub(super) fn new(ticket: u64) -> Self {
        Awaiting {
            ticket,
            payloads: Vec::new(),
        }
    }

    pub(super) fn push(
        &mut self,
        conn: ConnId,
        payload: &str,
        sockets: &mut SocketHolds,
    ) -> Result<(), HoldFull> {
        let (count, bytes) = sockets.get(conn);
        if count >= MAX_QUEUED_MESSAGES || bytes + payload.len() > MAX_PAYLOAD_BYTES {
            return Err(HoldFull);
        }
        sockets.add(conn, payload.len());
        self.payloads.push(payload.to_owned());
        Ok(())
    }

    /// Empties it, returning what it held in order.
    pub(super) fn take(&mut self, conn: ConnId, sockets: &mut SocketHolds) -> Vec<String> {
        for payload in &self.payloads {
            sockets.sub(conn, payload.len());
        }
        std::mem::take(&mut self.payloads)
    }
}

/// A channel a multiplexed socket subscribed to that is not (yet) on its path.
#[derive(Debug)]
pub(super) enum Gate {
    /// The host is deciding; `reply` acknowledges the subscription once granted.
    Pending { awaiting: Awaiting, reply: String },
    /// Refused: what comes on it is dropped until the client unsubscribes it.
    Denied,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::message::message_type::{CONTENT_DIFF, CONTENT_HASHES, RESPONSE};
    use std::time::Duration;

    #[test]
    fn read_only_clients_send_only_requests_and_receive_only_answers_and_content() {
        for message_type in 0..=7 {
            assert!(Access::Write.relays(message_type));
            assert!(Access::Write.receives(message_type));
            let content = [RESPONSE, CONTENT_HASHES, CONTENT_DIFF].contains(&message_type);
            assert_eq!(Access::Read.relays(message_type), !content);
            assert_eq!(Access::Read.receives(message_type), content);
        }
    }

    #[test]
    fn reads_the_type_of_a_server_message() {
        assert_eq!(server_message_type(r#"["a.b",3,[[{},"",1],[{},""],1]]"#), 3);
        assert_eq!(server_message_type(r#"[null,0,[1,2]]"#), 0);
        assert!(is_request(server_message_type("not json")));
        let fragment = Payload::from("k\nmessageId0000001\n0\n2\n[nul".to_owned());
        assert_eq!(relayed_message_type(&fragment), RESPONSE);
        let request = Payload::from(
            r#"k
["r",4,{}]"#
                .to_owned(),
        );
        assert_eq!(relayed_message_type(&request), 4);
    }

    #[test]
    fn a_bucket_allows_a_seconds_burst_then_its_rate() {
        let start = Instant::now();
        let mut limit = RateLimit::new(4.0, start);
        assert!((0..4).all(|_| limit.take(start)));
        assert!(!limit.take(start));
        assert!(limit.take(start + Duration::from_millis(250)));
        assert!(!limit.take(start + Duration::from_millis(260)));
        assert!((0..4).all(|_| limit.take(start + Duration::from_secs(10))));
        assert!(!limit.take(start + Duration::from_secs(10)));
    }
}
