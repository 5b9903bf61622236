//! Reassembly of fragmented messages (`messageId\nindex\ntotal\npart`) and the splitting of
//! outbound ones, with TinyBase's limits and expiry.

use std::borrow::Cow;
use std::time::{Duration, Instant};

use super::error::{Overflow, SyncError};
use super::limits::{MAX_FRAGMENT_BUFFERS, MAX_FRAGMENT_COUNT, MAX_PAYLOAD_BYTES};
use super::message::{self, Verdict};
use super::payload;

/// What one socket holds in partly received messages, shared by all of its decoders (a
/// multiplexed socket has one decoder per channel).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct SocketBudget {
    /// Pending fragment groups.
    pub groups: usize,
    /// Bytes retained by pending fragment groups.
    pub bytes: usize,
}

/// A whole, valid message decoded from one payload or from its last missing fragment. What it
/// can, it borrows from the payload, so a message relayed at once is copied only into what is
/// relayed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecodedMessage<'a> {
    /// Who the sender addressed: `""` for everyone, `"S"` for the server client, or a client id.
    pub to_client_id: Cow<'a, str>,
    /// What to relay to clients, each as `fromClientId\nremainder`: the single remainder, or the
    /// fragments' remainders in index order.
    pub remainders: Vec<Cow<'a, str>>,
    /// The fragments' parts joined, for a message that came in fragments. An unfragmented
    /// message is its single remainder, kept once.
    pub joined: Option<String>,
    /// The validated message type.
    pub message_type: i64,
}

impl DecodedMessage<'_> {
    /// The whole message remainder, as the server client receives it.
    pub fn message(&self) -> &str {
        match (&self.joined, self.remainders.as_slice()) {
            (Some(joined), _) => joined,
            (None, [whole]) => whole,
            (None, _) => "",
        }
    }
}

/// The outcome of decoding one payload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decoded<'a> {
    /// A complete message to route.
    Message(DecodedMessage<'a>),
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
    /// `clientId\nmessageId`, as TinyBase keys its buffer (and charges to the budget).
    key: String,
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
    /// Pending groups, oldest first; the socket budget keeps them to a hundred.
    groups: Vec<Group>,
    invalid: bool,
}

impl PayloadDecoder {
    /// A decoder whose pending fragment groups expire after `fragment_timeout`.
    pub fn new(fragment_timeout: Duration) -> Self {
        PayloadDecoder {
            fragment_timeout,
            groups: Vec::new(),
            invalid: false,
        }
    }

    /// Decodes one payload received at `now`, charging retained fragments to `budget`.
    pub fn decode<'a>(
        &mut self,
        payload: &'a str,
        budget: &mut SocketBudget,
        now: Instant,
    ) -> Decoded<'a> {
        self.decode_judged(payload, None, budget, now)
    }

    /// As [`PayloadDecoder::decode`], taking the validation of its message from `verdict` where
    /// that judged this payload's remainder.
    pub fn decode_judged<'a>(
        &mut self,
        payload: &'a str,
        verdict: Option<Verdict>,
        budget: &mut SocketBudget,
        now: Instant,
    ) -> Decoded<'a> {
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
        if let Some(message_type) = Verdict::validate(verdict, remainder) {
            return Decoded::Message(DecodedMessage {
                to_client_id: Cow::Borrowed(client_id),
                remainders: vec![Cow::Borrowed(remainder)],
                joined: None,
                message_type,
            });
        }
        match fragment_head(remainder) {
            Some(head) => self.add_fragment(client_id, remainder, head, budget, now),
            None => self.fail(SyncError::Message, budget),
        }
    }

    fn add_fragment<'a>(
        &mut self,
        client_id: &'a str,
        remainder: &str,
        head: FragmentHead<'_>,
        budget: &mut SocketBudget,
        now: Instant,
    ) -> Decoded<'a> {
        let overflow = SyncError::Overflow(Overflow::Fragments);
        if head.total > MAX_FRAGMENT_COUNT {
            return self.fail(overflow, budget);
        }
        if head.total == 0 || head.index >= head.total {
            return self.fail(SyncError::Message, budget);
        }
        let key = payload::join(client_id, head.message_id);
        let pending = self.groups.iter().position(|group| group.key == key);
        let at = match pending {
            Some(at) => at,
            None if budget.groups >= MAX_FRAGMENT_BUFFERS => return self.fail(overflow, budget),
            None => self.groups.len(),
        };
        let fits = self.groups.get(at).is_none_or(|group| {
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
        if pending.is_none() {
            budget.groups += 1;
            self.groups.push(Group {
                key,
                remainders: vec![None; head.total],
                missing: head.total,
                retained: 0,
                expires: now + self.fragment_timeout,
            });
        }
        budget.bytes += retained;
        let Some(group) = self.groups.get_mut(at) else {
            return Decoded::Pending;
        };
        if let Some(slot) = group.remainders.get_mut(head.index) {
            *slot = Some((remainder.to_owned(), head.part_at));
            group.missing -= 1;
        }
        group.retained += retained;
        if group.missing > 0 {
            return Decoded::Pending;
        }
        let group = self.groups.remove(at);
        refund(budget, &group);
        let mut message = String::new();
        let mut remainders = Vec::with_capacity(group.remainders.len());
        for (remainder, part_at) in group.remainders.into_iter().flatten() {
            message.push_str(remainder.get(part_at..).unwrap_or_default());
            remainders.push(Cow::Owned(remainder));
        }
        match message::validate(&message) {
            Some(message_type) => Decoded::Message(DecodedMessage {
                to_client_id: Cow::Borrowed(client_id),
                remainders,
                joined: Some(message),
                message_type,
            }),
            None => self.fail(SyncError::Message, budget),
        }
    }

    /// Marks the decoder invalid, dropping what it holds, as TinyBase does before reporting.
    fn fail(&mut self, error: SyncError, budget: &mut SocketBudget) -> Decoded<'static> {
        self.invalid = true;
        self.clear(budget);
        Decoded::Invalid(error)
    }

    /// Drops the fragment groups that expired by `now`, refunding `budget`.
    pub fn expire(&mut self, now: Instant, budget: &mut SocketBudget) {
        self.groups.retain(|group| {
            let keep = group.expires > now;
            if !keep {
                refund(budget, group);
            }
            keep
        });
    }

    /// When the oldest pending group expires, if any is pending.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.groups.iter().map(|group| group.expires).min()
    }

    /// Drops every pending group, refunding `budget`.
    pub fn clear(&mut self, budget: &mut SocketBudget) {
        for group in self.groups.drain(..) {
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
        .map(|(index, fragment)| format!("{client_id}\n{message_id}\n{index}\n{total}\n{fragment}"))
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

#[cfg(test)]
mod tests {
    use serde_json::Value;

    use super::*;

    /// Payload sequences run through TinyBase's own `createPayloadDecoder`, each step with its
    /// outcome and the shared buffer's `[groups, bytes]` after it: fragments captured from real
    /// clients in order, reversed, shuffled, interleaved, repeated and mutated, and hand-written
    /// cases.
    const DECODER_CORPUS: &str = include_str!("testdata/fragments.jsonl");
    /// `[toClientId, remainder, fragmentSize, payloads]` from TinyBase's `createPayloads`, the
    /// message id replaced by `FIXEDmessageID__`.
    const PAYLOADS_CORPUS: &str = include_str!("testdata/payloads.jsonl");

    fn text(value: &Value) -> String {
        value.as_str().unwrap().to_owned()
    }

    fn expected(outcome: &Value) -> Decoded<'static> {
        match outcome {
            Value::String(s) if s == "pending" => Decoded::Pending,
            Value::String(s) if s == "ignored" => Decoded::Ignored,
            Value::Object(o) if o.contains_key("invalid") => {
                let error = match o["invalid"].as_str().unwrap() {
                    "tinybase:14" => SyncError::Message,
                    "tinybase:15:fragments" => SyncError::Overflow(Overflow::Fragments),
                    "tinybase:15:socket" => SyncError::Overflow(Overflow::Socket),
                    other => panic!("unexpected error {other}"),
                };
                Decoded::Invalid(error)
            }
            Value::Object(o) => {
                let message = o["message"].as_array().unwrap();
                let remainders: Vec<Cow<str>> = message[1]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|remainder| text(remainder).into())
                    .collect();
                let whole = text(&message[3]);
                Decoded::Message(DecodedMessage {
                    to_client_id: text(&message[0]).into(),
                    // Kept apart only when it differs from a single remainder: when it came in
                    // fragments.
                    joined: (remainders != [whole.as_str()]).then_some(whole),
                    remainders,
                    message_type: message[2].as_i64().unwrap(),
                })
            }
            other => panic!("unexpected outcome {other}"),
        }
    }

    #[test]
    fn decodes_as_tinybase_does_on_the_corpus() {
        let now = Instant::now();
        let mut steps = 0;
        for line in DECODER_CORPUS.lines() {
            let sequence: Value = serde_json::from_str(line).unwrap();
            let mut decoder = PayloadDecoder::new(Duration::from_secs(1_000));
            let mut budget = SocketBudget::default();
            for step in sequence.as_array().unwrap() {
                let payload = step[0].as_str().unwrap();
                let outcome = decoder.decode(payload, &mut budget, now);
                assert_eq!(outcome, expected(&step[1]), "{payload:?} in {line}");
                let shared = (step[2][0].as_u64().unwrap(), step[2][1].as_u64().unwrap());
                assert_eq!(
                    (budget.groups as u64, budget.bytes as u64),
                    shared,
                    "{line}"
                );
                steps += 1;
            }
            decoder.clear(&mut budget);
            assert_eq!(budget, SocketBudget::default());
        }
        assert!(steps > 1_000);
    }

    fn fragment(id: &str, index: usize, total: usize, part: &str) -> String {
        format!("c\n{id}\n{index}\n{total}\n{part}")
    }

    const ID: &str = "abcdefghijklmnop";

    #[test]
    fn a_whole_message_needs_no_group() {
        let mut decoder = PayloadDecoder::new(Duration::from_secs(1));
        let mut budget = SocketBudget::default();
        let decoded = decoder.decode("S\n[null,1,\"\"]", &mut budget, Instant::now());
        let expected = DecodedMessage {
            to_client_id: "S".into(),
            remainders: vec!["[null,1,\"\"]".into()],
            joined: None,
            message_type: 1,
        };
        assert_eq!(decoded, Decoded::Message(expected));
        assert_eq!(decoder.next_deadline(), None);
    }

    #[test]
    fn fragments_join_in_index_order_and_relay_as_received() {
        let mut decoder = PayloadDecoder::new(Duration::from_secs(1));
        let mut budget = SocketBudget::default();
        let now = Instant::now();
        let parts = ["[\"ü", "\",1,", "\"\"]"];
        for index in [2, 0] {
            let payload = fragment(ID, index, 3, parts[index]);
            assert_eq!(decoder.decode(&payload, &mut budget, now), Decoded::Pending);
        }
        let retained =
            2 * (ID.len() + 5) + parts[0].len() + parts[2].len() + "c\n".len() + ID.len();
        assert_eq!(
            budget,
            SocketBudget {
                groups: 1,
                bytes: retained
            }
        );
        let last = fragment(ID, 1, 3, parts[1]);
        let Decoded::Message(decoded) = decoder.decode(&last, &mut budget, now) else {
            panic!("the last fragment completes the message");
        };
        assert_eq!(decoded.message(), "[\"ü\",1,\"\"]");
        assert_eq!(decoded.message_type, 1);
        let remainders: Vec<String> = (0..3)
            .map(|index| format!("{ID}\n{index}\n3\n{}", parts[index]))
            .collect();
        assert_eq!(decoded.remainders, remainders);
        assert_eq!(budget, SocketBudget::default());
    }

    #[test]
    fn groups_expire_after_the_timeout() {
        let timeout = Duration::from_secs(2);
        let mut decoder = PayloadDecoder::new(timeout);
        let mut budget = SocketBudget::default();
        let start = Instant::now();
        decoder.decode(&fragment(ID, 0, 2, "[null,"), &mut budget, start);
        let later = start + Duration::from_secs(1);
        decoder.decode(
            &fragment("bcdefghijklmnopq", 0, 2, "[null,"),
            &mut budget,
            later,
        );
        assert_eq!(decoder.next_deadline(), Some(start + timeout));
        decoder.expire(start + timeout - Duration::from_millis(1), &mut budget);
        assert_eq!(budget.groups, 2);
        decoder.expire(start + timeout, &mut budget);
        assert_eq!(budget.groups, 1);
        assert_eq!(decoder.next_deadline(), Some(later + timeout));
        // A fragment arriving after its group expired starts a new one.
        let last = fragment(ID, 1, 2, "1,\"\"]");
        let late = decoder.decode(&last, &mut budget, later + timeout);
        assert_eq!(late, Decoded::Pending);
        assert_eq!(budget.groups, 1);
        assert_eq!(decoder.next_deadline(), Some(later + 2 * timeout));
    }

    #[test]
    fn decoders_of_one_socket_share_its_budget() {
        let now = Instant::now();
        let mut budget = SocketBudget::default();
        let mut first = PayloadDecoder::new(Duration::from_secs(1));
        let mut second = PayloadDecoder::new(Duration::from_secs(1));
        let id = |n: usize| format!("{n:0>16}");
        for n in 0..60 {
            assert_eq!(
                first.decode(&fragment(&id(n), 0, 2, "["), &mut budget, now),
                Decoded::Pending
            );
        }
        for n in 60..MAX_FRAGMENT_BUFFERS {
            assert_eq!(
                second.decode(&fragment(&id(n), 0, 2, "["), &mut budget, now),
                Decoded::Pending
            );
        }
        let overflow = Decoded::Invalid(SyncError::Overflow(Overflow::Fragments));
        assert_eq!(
            second.decode(&fragment(&id(100), 0, 2, "["), &mut budget, now),
            overflow
        );
        assert_eq!(budget.groups, 60);
        first.clear(&mut budget);
        assert_eq!(budget, SocketBudget::default());
        assert_eq!(
            second.decode("c\n[null,1,\"\"]", &mut budget, now),
            Decoded::Ignored
        );
    }

    #[test]
    fn oversized_payloads_overflow_the_socket_or_the_fragments() {
        let now = Instant::now();
        let filler = |len: usize| "x".repeat(len);
        let cases = [
            (
                format!("c\n{}", filler(MAX_PAYLOAD_BYTES - 1)),
                Overflow::Socket,
            ),
            (
                fragment(ID, 0, 2, &filler(MAX_PAYLOAD_BYTES)),
                Overflow::Fragments,
            ),
            (
                format!("c\n{ID}\n0\n2{}", filler(MAX_PAYLOAD_BYTES)),
                Overflow::Socket,
            ),
        ];
        for (payload, overflow) in cases {
            let mut decoder = PayloadDecoder::new(Duration::from_secs(1));
            let decoded = decoder.decode(&payload, &mut SocketBudget::default(), now);
            assert_eq!(decoded, Decoded::Invalid(SyncError::Overflow(overflow)));
        }
        // At the limit itself the payload is judged on its content.
        let mut decoder = PayloadDecoder::new(Duration::from_secs(1));
        let payload = format!("c\n{}", filler(MAX_PAYLOAD_BYTES - 2));
        let decoded = decoder.decode(&payload, &mut SocketBudget::default(), now);
        assert_eq!(decoded, Decoded::Invalid(SyncError::Message));
    }

    #[test]
    fn retained_bytes_are_limited_per_socket() {
        let now = Instant::now();
        let mut decoder = PayloadDecoder::new(Duration::from_secs(1));
        let payload = fragment(ID, 0, 2, "[null,");
        let key = "c\n".len() + ID.len();
        let retained = payload.len() - "c\n".len() + key;
        let mut budget = SocketBudget {
            groups: 0,
            bytes: MAX_PAYLOAD_BYTES - retained,
        };
        assert_eq!(decoder.decode(&payload, &mut budget, now), Decoded::Pending);
        assert_eq!(budget.bytes, MAX_PAYLOAD_BYTES);
        let next = fragment("bcdefghijklmnopq", 0, 2, "[");
        let overflow = Decoded::Invalid(SyncError::Overflow(Overflow::Fragments));
        assert_eq!(decoder.decode(&next, &mut budget, now), overflow);
        assert_eq!(budget.bytes, MAX_PAYLOAD_BYTES - retained);
    }

    #[test]
    fn counts_read_as_parse_int_reads_them() {
        let now = Instant::now();
        let mut decoder = PayloadDecoder::new(Duration::from_secs(1));
        let mut budget = SocketBudget::default();
        let payload = format!("c\n{ID}\n0000\n01\n[null,1,\"\"]");
        assert!(matches!(
            decoder.decode(&payload, &mut budget, now),
            Decoded::Message(_)
        ));
        let huge = format!("c\n{ID}\n{}\n2\n[", "9".repeat(40));
        assert_eq!(
            decoder.decode(&huge, &mut budget, now),
            Decoded::Invalid(SyncError::Message)
        );
        let mut decoder = PayloadDecoder::new(Duration::from_secs(1));
        let too_many = format!("c\n{ID}\n0\n{}\n[", "9".repeat(40));
        let overflow = Decoded::Invalid(SyncError::Overflow(Overflow::Fragments));
        assert_eq!(decoder.decode(&too_many, &mut budget, now), overflow);
    }

    #[test]
    fn splits_as_tinybase_does_on_the_corpus() {
        for line in PAYLOADS_CORPUS.lines() {
            let case: Value = serde_json::from_str(line).unwrap();
            let to_client_id = case[0].as_str();
            let remainder = case[1].as_str().unwrap();
            let fragment_size = match &case[2] {
                Value::Null => None,
                Value::String(s) => Some(s.parse::<f64>().unwrap()),
                n => n.as_f64(),
            };
            let mut ids = 0;
            let built = payloads(to_client_id, remainder, fragment_size, || {
                ids += 1;
                "FIXEDmessageID__".to_owned()
            });
            let expected: Vec<String> = case[3].as_array().unwrap().iter().map(text).collect();
            assert_eq!(built, expected, "{line}");
            assert_eq!(ids, usize::from(expected.len() > 1));
        }
    }

    #[test]
    fn splits_long_remainders_into_at_most_a_thousand_fragments() {
        let remainder = format!("[\"{}{}\",1,\"\"]", "x".repeat(20_000), "😀".repeat(5_000));
        let built = payloads(None, &remainder, Some(1.0), || {
            "FIXEDmessageID__".to_owned()
        });
        assert!(built.len() <= MAX_FRAGMENT_COUNT, "{}", built.len());
        let max = remainder.len().div_ceil(MAX_FRAGMENT_COUNT) + 3;
        let mut decoder = PayloadDecoder::new(Duration::from_secs(1));
        let mut budget = SocketBudget::default();
        let mut outcome = Decoded::Pending;
        for payload in &built {
            let (_, fragment) = payload.split_once(&format!("\n{}\n", built.len())).unwrap();
            assert!(fragment.len() <= max);
            outcome = decoder.decode(payload, &mut budget, Instant::now());
        }
        let Decoded::Message(decoded) = outcome else {
            panic!("the fragments decode back");
        };
        assert_eq!(decoded.message(), remainder);
        assert_eq!(decoded.to_client_id, "");
    }

    #[test]
    fn unique_ids_use_six_bits_of_each_byte() {
        let mut random = [0u8; 16];
        for (at, byte) in random.iter_mut().enumerate() {
            *byte = (at as u8) * 17;
        }
        random[15] = 255;
        assert_eq!(unique_id(random), "-GXn3Kar7OevBSiz");
        assert_eq!(unique_id([64; 16]), "-".repeat(16));
    }
}
