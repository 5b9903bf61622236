//! What one node publishes on a path's Redis channel: a small binary header in front of the
//! payload exactly as the relay forwards it (`fromClientId\nremainder`), so no hop re-encodes
//! the message.
//!
//! ```text
//! magic "TBC" | version 1 | kind (1 relay, 2 resync) | origin node (16 bytes)
//! relay only: addressee length (u32, big-endian) | addressee | payload
//! ```

use std::fmt;

use crate::node::NodeId;

const MAGIC: &[u8; 3] = b"TBC";
const VERSION: u8 = 1;
const KIND_RELAY: u8 = 1;
const KIND_RESYNC: u8 = 2;
const HEADER_BYTES: usize = MAGIC.len() + 2 + NodeId::BYTES;

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
}

impl Envelope<'_> {
    pub fn origin(&self) -> NodeId {
        match self {
            Envelope::Relay { origin, .. } | Envelope::Resync { origin } => *origin,
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
    bytes
}

/// Encodes a relayed payload, in one allocation.
pub fn relay(origin: NodeId, to: &str, payload: &str) -> Vec<u8> {
    let mut bytes = header(KIND_RELAY, origin, 4 + to.len() + payload.len());
    // Client ids come from sec-websocket-key headers and message envelopes, both far below 4 GiB.
    bytes.extend_from_slice(&(to.len() as u32).to_be_bytes());
    bytes.extend_from_slice(to.as_bytes());
    bytes.extend_from_slice(payload.as_bytes());
    bytes
}

pub fn resync(origin: NodeId) -> Vec<u8> {
    header(KIND_RESYNC, origin, 0)
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
    let origin = NodeId::from_slice(&bytes[MAGIC.len() + 2..HEADER_BYTES]);
    let body = &bytes[HEADER_BYTES..];
    match kind {
        KIND_RESYNC if body.is_empty() => Ok(Envelope::Resync { origin }),
        KIND_RESYNC => Err(Malformed::Unknown),
        KIND_RELAY => {
            let (length, rest) = body.split_first_chunk::<4>().ok_or(Malformed::Truncated)?;
            let length = u32::from_be_bytes(*length) as usize;
            if rest.len() < length {
                return Err(Malformed::Truncated);
            }
            let (to, payload) = rest.split_at(length);
            let to = std::str::from_utf8(to).map_err(|_| Malformed::NotText)?;
            let payload = std::str::from_utf8(payload).map_err(|_| Malformed::NotText)?;
            let (from, _) = payload.split_once('\n').ok_or(Malformed::NoSender)?;
            Ok(Envelope::Relay {
                origin,
                to,
                payload,
                from,
            })
        }
        _ => Err(Malformed::Unknown),
    }
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
    fn a_resync_carries_its_origin() {
        assert_eq!(decode(&resync(NODE)), Ok(Envelope::Resync { origin: NODE }));
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
