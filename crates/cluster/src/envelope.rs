//! What one node publishes on a path's Redis channel: a small binary header in front of the
//! payload exactly as the relay forwards it (`fromClientId\nremainder`), so no hop re-encodes
//! the message.
//!
//! ```text
//! magic "TBC" | version 1 | kind | origin node (16 bytes) | sent at (u64 big-endian, µs since
//! the Unix epoch, for the lag metric) | body
//! relay:     addressee length (u32, big-endian) | addressee | payload
//! server:    epoch (u64, big-endian) | addressee length | addressee | payload
//! to server: payload (a whole message)
//! resync, released: nothing
//! ```

use std::fmt;
use std::time::{SystemTime, UNIX_EPOCH};

use crate::node::NodeId;

const MAGIC: &[u8; 3] = b"TBC";
const VERSION: u8 = 1;
const KIND_RELAY: u8 = 1;
const KIND_RESYNC: u8 = 2;
const KIND_SERVER: u8 = 3;
const KIND_TO_SERVER: u8 = 4;
const KIND_RELEASED: u8 = 5;
const ORIGIN_AT: usize = MAGIC.len() + 2;
const SENT_AT: usize = ORIGIN_AT + NodeId::BYTES;
const HEADER_BYTES: usize = SENT_AT + 8;

/// One message from another node, borrowed from the bytes Redis delivered.
#[derive(Debug, PartialEq, Eq)]
pub enum Envelope<'a> {
    /// A payload a client of `origin` sent on the path: `to` is `""` for every client, else
    /// the one client it is addressed to.
    Relay {
        origin: NodeId,
        to: &'a str,
        /// `fromClientId\nremainder`.
        payload: &'a str,
        /// The sending client: the payload's first line.
        from: &'a str,
    },
    /// `origin` may have missed messages on the path: every node asks its clients to offer
    /// their content again.
    Resync { origin: NodeId },
    /// A payload the path's server client sent, on `origin`, which held the path's lease at
    /// `epoch`: dropped once a later holder has spoken.
    Server {
        origin: NodeId,
        epoch: u64,
        to: &'a str,
        payload: &'a str,
    },
    /// A whole message (`from\nmessage`) for the path's server client, from a client of
    /// `origin`: only the lease holder takes it.
    ToServer { origin: NodeId, payload: &'a str },
    /// `origin` gave up the path's lease: a node with clients on it takes over now.
    Released { origin: NodeId },
}

impl Envelope<'_> {
    pub fn origin(&self) -> NodeId {
        match self {
            Envelope::Relay { origin, .. }
            | Envelope::Resync { origin }
            | Envelope::Server { origin, .. }
            | Envelope::ToServer { origin, .. }
            | Envelope::Released { origin } => *origin,
        }
    }
}

/// Why bytes on a channel are not an envelope this version understands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Malformed {
    /// Not ours at all: another publisher shares the channel name.
    Foreign,
    /// Ours, but of a version or kind this node does not know.
    Unknown,
    Truncated,
    /// The addressee or payload is not UTF-8.
    NotText,
    /// The payload lacks the `fromClientId\n` line every relayed payload starts with.
    NoSender,
}

impl fmt::Display for Malformed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Malformed::Foreign => "not a cluster message",
            Malformed::Unknown => "a cluster message of an unknown version or kind",
            Malformed::Truncated => "a truncated cluster message",
            Malformed::NotText => "a cluster message whose text is not UTF-8",
            Malformed::NoSender => "a cluster message without a sending client",
        })
    }
}

fn header(kind: u8, origin: NodeId, capacity: usize) -> Vec<u8> {
    let mut bytes = Vec::with_capacity(HEADER_BYTES + capacity);
    bytes.extend_from_slice(MAGIC);
    bytes.push(VERSION);
    bytes.push(kind);
    bytes.extend_from_slice(origin.as_bytes());
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |since| since.as_micros() as u64);
    bytes.extend_from_slice(&now.to_be_bytes());
    bytes
}

/// When the envelope `bytes` (which [`decode`] accepted) was made, on its origin's clock: µs
/// since the Unix epoch.
pub fn sent_at_micros(bytes: &[u8]) -> u64 {
    bytes
        .get(SENT_AT..HEADER_BYTES)
        .and_then(|stamp| stamp.try_into().ok())
        .map_or(0, u64::from_be_bytes)
}

fn addressed(mut bytes: Vec<u8>, to: &str, payload: &str) -> Vec<u8> {
    // Client ids come from sec-websocket-key headers and message envelopes, both far below 4 GiB.
    bytes.extend_from_slice(&(to.len() as u32).to_be_bytes());
    bytes.extend_from_slice(to.as_bytes());
    bytes.extend_from_slice(payload.as_bytes());
    bytes
}

/// Encodes a relayed payload, in one allocation.
pub fn relay(origin: NodeId, to: &str, payload: &str) -> Vec<u8> {
    let bytes = header(KIND_RELAY, origin, 4 + to.len() + payload.len());
    addressed(bytes, to, payload)
}

/// Encodes a payload of the server client, fenced by the holder's `epoch`.
pub fn server(origin: NodeId, epoch: u64, to: &str, payload: &str) -> Vec<u8> {
    let mut bytes = header(KIND_SERVER, origin, 12 + to.len() + payload.len());
    bytes.extend_from_slice(&epoch.to_be_bytes());
    addressed(bytes, to, payload)
}

pub fn to_server(origin: NodeId, payload: &str) -> Vec<u8> {
    let mut bytes = header(KIND_TO_SERVER, origin, payload.len());
    bytes.extend_from_slice(payload.as_bytes());
    bytes
}

pub fn resync(origin: NodeId) -> Vec<u8> {
    header(KIND_RESYNC, origin, 0)
}

pub fn released(origin: NodeId) -> Vec<u8> {
    header(KIND_RELEASED, origin, 0)
}

pub fn decode(bytes: &[u8]) -> Result<Envelope<'_>, Malformed> {
    if bytes.len() < MAGIC.len() || &bytes[..MAGIC.len()] != MAGIC {
        return Err(Malformed::Foreign);
    }
    if bytes.len() < HEADER_BYTES {
        return Err(Malformed::Truncated);
    }
    if bytes[MAGIC.len()] != VERSION {
        return Err(Malformed::Unknown);
    }
    let kind = bytes[MAGIC.len() + 1];
    let origin = NodeId::from_slice(&bytes[ORIGIN_AT..SENT_AT]);
    let body = &bytes[HEADER_BYTES..];
    match kind {
        KIND_RESYNC | KIND_RELEASED if !body.is_empty() => Err(Malformed::Unknown),
        KIND_RESYNC => Ok(Envelope::Resync { origin }),
        KIND_RELEASED => Ok(Envelope::Released { origin }),
        KIND_RELAY => {
            let (to, payload, from) = decode_addressed(body)?;
            Ok(Envelope::Relay {
                origin,
                to,
                payload,
                from,
            })
        }
        KIND_SERVER => {
            let (epoch, body) = body.split_first_chunk::<8>().ok_or(Malformed::Truncated)?;
            let (to, payload, _) = decode_addressed(body)?;
            Ok(Envelope::Server {
                origin,
                epoch: u64::from_be_bytes(*epoch),
                to,
                payload,
            })
        }
        KIND_TO_SERVER => {
            let payload = std::str::from_utf8(body).map_err(|_| Malformed::NotText)?;
            payload.split_once('\n').ok_or(Malformed::NoSender)?;
            Ok(Envelope::ToServer { origin, payload })
        }
        _ => Err(Malformed::Unknown),
    }
}

/// The addressee, the payload and its sender.
fn decode_addressed(body: &[u8]) -> Result<(&str, &str, &str), Malformed> {
    let (length, rest) = body.split_first_chunk::<4>().ok_or(Malformed::Truncated)?;
    let length = u32::from_be_bytes(*length) as usize;
    if rest.len() < length {
        return Err(Malformed::Truncated);
    }
    let (to, payload) = rest.split_at(length);
    let to = std::str::from_utf8(to).map_err(|_| Malformed::NotText)?;
    let payload = std::str::from_utf8(payload).map_err(|_| Malformed::NotText)?;
    let (from, _) = payload.split_once('\n').ok_or(Malformed::NoSender)?;
    Ok((to, payload, from))
}

#[cfg(test)]
mod tests {
    use super::*;

    const NODE: NodeId = NodeId::from_bytes([7; NodeId::BYTES]);

    #[test]
    fn a_relayed_payload_decodes_to_what_was_encoded() {
        let bytes = relay(NODE, "bob", "alice\n[\"t\",3,{}]");
        assert_eq!(
            decode(&bytes),
            Ok(Envelope::Relay {
                origin: NODE,
                to: "bob",
                payload: "alice\n[\"t\",3,{}]",
                from: "alice",
            })
        );
        let broadcast = relay(NODE, "", "alice\n[]");
        assert!(matches!(
            decode(&broadcast),
            Ok(Envelope::Relay { to: "", .. })
        ));
    }

    #[test]
    fn every_envelope_says_when_it_was_made() {
        let before = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
        let sent_at = sent_at_micros(&resync(NODE));
        let after = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
        assert!((before.as_micros() as u64..=after.as_micros() as u64).contains(&sent_at));
    }

    #[test]
    fn a_resync_carries_its_origin() {
        assert_eq!(decode(&resync(NODE)), Ok(Envelope::Resync { origin: NODE }));
        assert_eq!(
            decode(&released(NODE)),
            Ok(Envelope::Released { origin: NODE })
        );
    }

    #[test]
    fn the_server_clients_traffic_decodes_with_its_epoch() {
        assert_eq!(
            decode(&server(NODE, 42, "bob", "S\n[]")),
            Ok(Envelope::Server {
                origin: NODE,
                epoch: 42,
                to: "bob",
                payload: "S\n[]",
            })
        );
        assert_eq!(
            decode(&to_server(NODE, "alice\n[]")),
            Ok(Envelope::ToServer {
                origin: NODE,
                payload: "alice\n[]",
            })
        );
        assert_eq!(decode(&to_server(NODE, "[]")), Err(Malformed::NoSender));
        assert_eq!(
            decode(&server(NODE, 1, "", "S\n[]")[..HEADER_BYTES + 4]),
            Err(Malformed::Truncated)
        );
    }

    #[test]
    fn anything_else_is_refused_with_its_reason() {
        let good = relay(NODE, "bob", "alice\n[]");
        assert_eq!(decode(b"hello"), Err(Malformed::Foreign));
        assert_eq!(decode(b""), Err(Malformed::Foreign));
        assert_eq!(decode(&good[..10]), Err(Malformed::Truncated));
        assert_eq!(decode(&good[..HEADER_BYTES + 2]), Err(Malformed::Truncated));
        assert_eq!(decode(&good[..HEADER_BYTES + 5]), Err(Malformed::Truncated));

        let mut version = good.clone();
        version[3] = 9;
        assert_eq!(decode(&version), Err(Malformed::Unknown));
        let mut kind = good.clone();
        kind[4] = 9;
        assert_eq!(decode(&kind), Err(Malformed::Unknown));
        let mut resync_with_body = resync(NODE);
        resync_with_body.push(0);
        assert_eq!(decode(&resync_with_body), Err(Malformed::Unknown));

        let mut not_text = good.clone();
        let last = not_text.len() - 1;
        not_text[last] = 0xff;
        assert_eq!(decode(&not_text), Err(Malformed::NotText));
        assert_eq!(
            decode(&relay(NODE, "", "no sender line")),
            Err(Malformed::NoSender)
        );
    }
}
