//! Reassembly of fragmented messages (`messageId\nindex\ntotal\npart`) and the splitting of
//! outbound ones, with TinyBase's limits and expiry.

use std::time::{Duration, Instant};

use super::error::SyncError;

/// What one socket holds in partly received messages, shared by all of its decoders (a
/// multiplexed socket has one decoder per channel).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct SocketBudget {
    /// Pending fragment groups.
    pub groups: usize,
    /// Bytes retained by pending fragment groups.
    pub bytes: usize,
}

/// A whole, valid message decoded from one payload or from its last missing fragment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecodedMessage {
    /// Who the sender addressed: `""` for everyone, `"S"` for the server client, or a client id.
    pub to_client_id: String,
    /// What to relay to clients, each as `fromClientId\nremainder`: the single remainder, or the
    /// fragments' remainders in index order.
    pub remainders: Vec<String>,
    /// The whole message remainder (the fragments joined), as the server client receives it.
    pub message: String,
    /// The validated message type.
    pub message_type: i64,
}

/// The outcome of decoding one payload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decoded {
    /// A complete message to route.
    Message(DecodedMessage),
    /// A fragment was stored; nothing to route yet.
    Pending,
    /// The payload broke a rule: report it and close the sender. The decoder ignores all later
    /// payloads.
    Invalid(SyncError),
    /// The decoder was already invalid; the payload is dropped.
    Ignored,
}

/// Decodes one sender's payloads on one path, as TinyBase's `createPayloadDecoder` does.
#[derive(Debug)]
pub struct PayloadDecoder {
    fragment_timeout: Duration,
}

impl PayloadDecoder {
    /// A decoder whose pending fragment groups expire after `fragment_timeout`.
    pub fn new(fragment_timeout: Duration) -> Self {
        PayloadDecoder { fragment_timeout }
    }

    /// Decodes one payload received at `now`, charging retained fragments to `budget`.
    pub fn decode(&mut self, payload: &str, budget: &mut SocketBudget, now: Instant) -> Decoded {
        let _ = (payload, budget, now, self.fragment_timeout);
        todo!("protocol::fragment::PayloadDecoder::decode")
    }

    /// Drops the fragment groups that expired by `now`, refunding `budget`.
    pub fn expire(&mut self, now: Instant, budget: &mut SocketBudget) {
        let _ = (now, budget);
        todo!("protocol::fragment::PayloadDecoder::expire")
    }

    /// When the oldest pending group expires, if any is pending.
    pub fn next_deadline(&self) -> Option<Instant> {
        todo!("protocol::fragment::PayloadDecoder::next_deadline")
    }

    /// Drops every pending group, refunding `budget`.
    pub fn clear(&mut self, budget: &mut SocketBudget) {
        let _ = budget;
        todo!("protocol::fragment::PayloadDecoder::clear")
    }
}

/// Builds the payloads that carry `remainder` to `to_client_id` (`None` for everyone), split as
/// TinyBase's `createPayloads` splits them for `fragment_size`. `message_id` is called once, only
/// when the remainder is split, and must return a 16-character id from TinyBase's alphabet.
pub fn payloads(
    to_client_id: Option<&str>,
    remainder: &str,
    fragment_size: Option<f64>,
    message_id: impl FnOnce() -> String,
) -> Vec<String> {
    let _ = (to_client_id, remainder, fragment_size, message_id);
    todo!("protocol::fragment::payloads")
}

/// Encodes 16 random bytes as a TinyBase unique id (its 64-character alphabet, 6 bits a byte).
pub fn unique_id(random: [u8; 16]) -> String {
    let _ = random;
    todo!("protocol::fragment::unique_id")
}
