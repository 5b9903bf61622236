//! Reassembly of fragmented messages (`messageId\nindex\ntotal\npart`) and the splitting of
//! outbound ones, with TinyBase's limits and expiry.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use super::error::{Overflow, SyncError};
use super::limits::{MAX_FRAGMENT_BUFFERS, MAX_FRAGMENT_COUNT, MAX_PAYLOAD_BYTES};
use super::message;
use super::payload::{self, SEPARATOR};

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

/// The alphabet of TinyBase's unique ids, message ids and HLCs, indexed by 6-bit value.
const ID_ALPHABET: &[u8; 64] = b"-0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ_abcdefghijklmnopqrstuvwxyz";
/// Length of the id that groups the fragments of one message.
const MESSAGE_ID_LEN: usize = 16;

/// Which bytes are in [`ID_ALPHABET`], for the checks on every stamp's HLC.
const IS_ID_CHAR: [bool; 256] = {
    let mut table = [false; 256];
    let mut at = 0;
    while at < ID_ALPHABET.len() {
        table[ID_ALPHABET[at] as usize] = true;
        at += 1;
    }
    table
};

pub(crate) fn is_id_char(byte: u8) -> bool {
    IS_ID_CHAR[usize::from(byte)]
}

/// The `messageId\nindex\ntotal\n` head of a fragment remainder.
struct FragmentHead<'a> {
    message_id: &'a str,
    /// Saturated: any index past `MAX_FRAGMENT_COUNT` is as out of range as any other.
    index: usize,
    total: usize,
    /// Where the message part starts in the remainder.
    part_at: usize,
}

/// Reads a fragment head as TinyBase's `FRAGMENT` pattern does: a 16-character id, then two
/// runs of ASCII digits, each line ended by `\n`. Digits are read as `parseInt` reads them, with
/// leading zeros allowed.
fn fragment_head(remainder: &str) -> Option<FragmentHead<'_>> {
    let bytes = remainder.as_bytes();
    let id = bytes.get(..MESSAGE_ID_LEN)?;
    if !id.iter().copied().all(is_id_char) || bytes.get(MESSAGE_ID_LEN) != Some(&b'\n') {
        return None;
    }
    let mut at = MESSAGE_ID_LEN + 1;
    let mut number = || {
        let start = at;
        let mut value = 0usize;
        while let Some(digit) = bytes.get(at).filter(|b| b.is_ascii_digit()) {
            value = value
                .saturating_mul(10)
                .saturating_add(usize::from(digit - b'0'));
            at += 1;
        }
        (at > start && bytes.get(at) == Some(&b'\n')).then(|| {
            at += 1;
            value
        })
    };
    let index = number()?;
    let total = number()?;
    Some(FragmentHead {
        message_id: remainder.get(..MESSAGE_ID_LEN)?,
        index,
        total,
        part_at: at,
    })
}

/// Whether an oversized payload looks like a fragment, which TinyBase reports as a fragments
/// overflow rather than a socket one.
fn is_fragment_payload(payload: &str) -> bool {
    payload::split(payload).is_some_and(|(_, remainder)| fragment_head(remainder).is_some())
}

/// The fragments received so far of one message.
#[derive(Debug)]
struct Group {
    /// Each received remainder with where its part starts, by index.
    remainders: Vec<Option<(String, usize)>>,
    missing: usize,
    /// Bytes charged to the socket budget for this group.
    retained: usize,
    expires: Instant,
}

/// Decodes one sender's payloads on one path, as TinyBase's `createPayloadDecoder` does.
#[derive(Debug)]
pub struct PayloadDecoder {
    fragment_timeout: Duration,
    /// Pending groups by `clientId\nmessageId`.
    groups: HashMap<String, Group>,
    invalid: bool,
}

impl PayloadDecoder {
    /// A decoder whose pending fragment groups expire after `fragment_timeout`.
    pub fn new(fragment_timeout: Duration) -> Self {
        PayloadDecoder {
            fragment_timeout,
            groups: HashMap::new(),
            invalid: false,
        }
    }

    /// Decodes one payload received at `now`, charging retained fragments to `budget`.
    pub fn decode(&mut self, payload: &str, budget: &mut SocketBudget, now: Instant) -> Decoded {
        if self.invalid {
            return Decoded::Ignored;
        }
        // A group whose timer would have fired before this payload arrived is already gone.
        self.expire(now, budget);
        if payload.len() > MAX_PAYLOAD_BYTES {
            let overflow = if is_fragment_payload(payload) {
                Overflow::Fragments
            } else {
                Overflow::Socket
            };
            return self.fail(SyncError::Overflow(overflow), budget);
        }
        let Some((client_id, remainder)) = payload::split(payload) else {
            return self.fail(SyncError::Message, budget);
        };
        if let Some(message_type) = message::validate(remainder) {
            return Decoded::Message(DecodedMessage {
                to_client_id: client_id.to_owned(),
                remainders: vec![remainder.to_owned()],
                message: remainder.to_owned(),
                message_type,
            });
        }
        match fragment_head(remainder) {
            Some(head) => self.add_fragment(client_id, remainder, head, budget, now),
            None => self.fail(SyncError::Message, budget),
        }
    }

    fn add_fragment(
        &mut self,
        client_id: &str,
        remainder: &str,
        head: FragmentHead<'_>,
        budget: &mut SocketBudget,
        now: Instant,
    ) -> Decoded {
        let overflow = SyncError::Overflow(Overflow::Fragments);
        if head.total > MAX_FRAGMENT_COUNT {
            return self.fail(overflow, budget);
        }
        if head.total == 0 || head.index >= head.total {
            return self.fail(SyncError::Message, budget);
        }
        let key = payload::join(client_id, head.message_id);
        let pending = self.groups.get(&key);
        if pending.is_none() && budget.groups >= MAX_FRAGMENT_BUFFERS {
            return self.fail(overflow, budget);
        }
        let fits = pending.is_none_or(|group| {
            group.remainders.len() == head.total
                && group
                    .remainders
                    .get(head.index)
                    .is_some_and(Option::is_none)
        });
        if !fits {
            return self.fail(SyncError::Message, budget);
        }
        let retained = remainder.len() + if pending.is_none() { key.len() } else { 0 };
        if budget.bytes + retained > MAX_PAYLOAD_BYTES {
            return self.fail(overflow, budget);
        }
        let expires = now + self.fragment_timeout;
        let group = self.groups.entry(key).or_insert_with(|| {
            budget.groups += 1;
            Group {
                remainders: vec![None; head.total],
                missing: head.total,
                retained: 0,
                expires,
            }
        });
        if let Some(slot) = group.remainders.get_mut(head.index) {
            *slot = Some((remainder.to_owned(), head.part_at));
        }
        group.missing -= 1;
        group.retained += retained;
        budget.bytes += retained;
        if group.missing > 0 {
            return Decoded::Pending;
        }
        let key = payload::join(client_id, head.message_id);
        let Some(group) = self.groups.remove(&key) else {
            return Decoded::Pending;
        };
        refund(budget, &group);
        let mut message = String::new();
        let mut remainders = Vec::with_capacity(group.remainders.len());
        for (remainder, part_at) in group.remainders.into_iter().flatten() {
            message.push_str(remainder.get(part_at..).unwrap_or_default());
            remainders.push(remainder);
        }
        match message::validate(&message) {
            Some(message_type) => Decoded::Message(DecodedMessage {
                to_client_id: client_id.to_owned(),
                remainders,
                message,
                message_type,
            }),
            None => self.fail(SyncError::Message, budget),
        }
    }

    /// Marks the decoder invalid, dropping what it holds, as TinyBase does before reporting.
    fn fail(&mut self, error: SyncError, budget: &mut SocketBudget) -> Decoded {
        self.invalid = true;
        self.clear(budget);
        Decoded::Invalid(error)
    }

    /// Drops the fragment groups that expired by `now`, refunding `budget`.
    pub fn expire(&mut self, now: Instant, budget: &mut SocketBudget) {
        self.groups.retain(|_, group| {
            let keep = group.expires > now;
            if !keep {
                refund(budget, group);
            }
            keep
        });
    }

    /// When the oldest pending group expires, if any is pending.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.groups.values().map(|group| group.expires).min()
    }

    /// Drops every pending group, refunding `budget`.
    pub fn clear(&mut self, budget: &mut SocketBudget) {
        for (_, group) in self.groups.drain() {
            refund(budget, &group);
        }
    }
}

fn refund(budget: &mut SocketBudget, group: &Group) {
    budget.groups = budget.groups.saturating_sub(1);
    budget.bytes = budget.bytes.saturating_sub(group.retained);
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
    let client_id = to_client_id.unwrap_or_default();
    let whole = || vec![payload::join(client_id, remainder)];
    let Some(requested) = fragment_size.map(f64::floor) else {
        return whole();
    };
    // NaN falls through TinyBase's `< 1` test but then makes every size comparison false, so
    // it too ends up as one payload.
    if requested.is_nan() || requested < 1.0 {
        return whole();
    }
    // At most MAX_FRAGMENT_COUNT fragments, with room for the multi-byte character that may
    // push a fragment over.
    let floor = (remainder.len().div_ceil(MAX_FRAGMENT_COUNT) + 3) as f64;
    let max_size = requested.max(floor);
    let fragments = split_fragments(remainder, max_size);
    if fragments.len() == 1 {
        return whole();
    }
    let message_id = message_id();
    let total = fragments.len();
    fragments
        .iter()
        .enumerate()
        .map(|(index, fragment)| {
            let mut remainder = String::with_capacity(message_id.len() + fragment.len() + 10);
            remainder.push_str(&message_id);
            for part in [index.to_string().as_str(), &total.to_string(), fragment] {
                remainder.push(SEPARATOR);
                remainder.push_str(part);
            }
            payload::join(client_id, &remainder)
        })
        .collect()
}

/// Splits on character boundaries into runs of at most `max_size` bytes, except that a run
/// always takes at least one character.
fn split_fragments(remainder: &str, max_size: f64) -> Vec<&str> {
    let mut fragments = Vec::new();
    let mut start = 0;
    for (at, char) in remainder.char_indices() {
        let size = at - start;
        if size > 0 && (size + char.len_utf8()) as f64 > max_size {
            fragments.push(remainder.get(start..at).unwrap_or_default());
            start = at;
        }
    }
    fragments.push(remainder.get(start..).unwrap_or_default());
    fragments
}

/// Encodes 16 random bytes as a TinyBase unique id (its 64-character alphabet, 6 bits a byte).
pub fn unique_id(random: [u8; 16]) -> String {
    random
        .iter()
        .map(|byte| char::from(ID_ALPHABET[usize::from(byte & 63)]))
        .collect()
}
