//! Cheap fuzzing until a cargo-fuzz harness exists: thousands of payloads, mutated from the
//! test corpora and from random noise, must go through every entry point without a panic and
//! leave the socket budget balanced.

use std::time::{Duration, Instant};

use super::fragment::{self, Decoded, PayloadDecoder, SocketBudget};
use super::multiplex::{self, Envelope};
use super::{message, payload};

/// A xorshift generator: deterministic, so a failure replays.
pub(crate) struct Rng(u64);

impl Rng {
    pub(crate) fn new(seed: u64) -> Rng {
        Rng(seed | 1)
    }

    pub(crate) fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 % n.max(1) as u64) as usize
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }

    /// A copy of `input` with a few random edits (or none, a third of the time, so that valid
    /// input keeps reaching the deeper paths), always valid UTF-8.
    pub(crate) fn mutate(&mut self, input: &str, donor: &str) -> String {
        if self.below(3) == 0 {
            return input.to_owned();
        }
        const PIECES: &[&str] = &[
            "[",
            "]",
            "{",
            "}",
            ",",
            ":",
            "\"",
            "\\",
            "\\u",
            "\\ud800",
            "\\uFFFC",
            "\u{FFFC}",
            "\n",
            "\r",
            " ",
            "0",
            "1",
            "-",
            ".",
            "e",
            "E",
            "+",
            "1e400",
            "4294967296",
            "null",
            "true",
            "\"\"",
            "[{}]",
            "-1",
            "S",
            "M",
            "/",
            "..",
            "?",
            "ü",
            "😀",
            "\u{2028}",
            "abcdefghijklmnop\n0\n2\n",
            "\n1\n2\n",
            "9999999999999999999999",
        ];
        let mut chars: Vec<char> = input.chars().collect();
        for _ in 0..1 + self.below(4) {
            let at = self.below(chars.len() + 1);
            match self.below(6) {
                0 => chars
                    .splice(at..at, self.pick(PIECES).chars())
                    .for_each(drop),
                1 => {
                    let end = (at + 1 + self.below(8)).min(chars.len());
                    chars.drain(at.min(end)..end).for_each(drop);
                }
                2 => {
                    let end = (at + 1 + self.below(16)).min(chars.len());
                    let copy: Vec<char> = chars[at.min(end)..end].to_vec();
                    let to = self.below(chars.len() + 1);
                    chars.splice(to..to, copy).for_each(drop);
                }
                3 => chars.truncate(at),
                4 => {
                    let from: Vec<char> = donor.chars().collect();
                    let start = self.below(from.len() + 1);
                    let end = (start + self.below(64)).min(from.len());
                    chars
                        .splice(at..at, from[start..end].iter().copied())
                        .for_each(drop);
                }
                _ => {
                    let noise = (0..self.below(8)).map(|_| char::from(self.below(128) as u8));
                    chars.splice(at..at, noise).for_each(drop);
                }
            }
        }
        chars.into_iter().collect()
    }
}

/// Payloads and remainders from the corpora, as seeds.
pub(crate) fn seeds() -> Vec<String> {
    let corpora = [
        include_str!("testdata/messages.jsonl"),
        include_str!("testdata/fragments.jsonl"),
        include_str!("testdata/multiplex.jsonl"),
    ];
    let mut seeds = Vec::new();
    for line in corpora.iter().flat_map(|corpus| corpus.lines()) {
        collect_strings(&serde_json::from_str(line).unwrap(), &mut seeds);
    }
    seeds.retain(|seed| seed.len() < 4_000);
    seeds
}

fn collect_strings(value: &serde_json::Value, into: &mut Vec<String>) {
    match value {
        serde_json::Value::String(s) if s.len() > 1 => into.push(s.clone()),
        serde_json::Value::Array(items) => {
            items.iter().for_each(|item| collect_strings(item, into))
        }
        _ => {}
    }
}

#[test]
fn decoders_survive_mutated_payloads_and_keep_the_budget_balanced() {
    let seeds = seeds();
    let mut rng = Rng::new(0x5eed_0001);
    let mut now = Instant::now();
    let mut budget = SocketBudget::default();
    let mut decoders: Vec<PayloadDecoder> = (0..3)
        .map(|_| PayloadDecoder::new(Duration::from_millis(50)))
        .collect();
    let mut messages = 0;
    for round in 0..12_000 {
        let seed = rng.pick(&seeds).clone();
        let donor = rng.pick(&seeds).clone();
        let mut payload = rng.mutate(&seed, &donor);
        if rng.below(2) == 0 && !payload.contains('\n') {
            payload = format!("c\n{payload}");
        }
        now += Duration::from_millis(rng.below(20) as u64);
        let at = rng.below(decoders.len());
        match decoders[at].decode(&payload, &mut budget, now) {
            Decoded::Message(decoded) => {
                messages += 1;
                assert!(!decoded.remainders.is_empty());
            }
            // A host closes the socket and its next one starts afresh.
            Decoded::Invalid(_) => decoders[at] = PayloadDecoder::new(Duration::from_millis(50)),
            Decoded::Pending => {}
            Decoded::Ignored => panic!("an invalid decoder was replaced"),
        }
        if round % 500 == 0 {
            for decoder in &mut decoders {
                decoder.clear(&mut budget);
            }
            assert_eq!(budget, SocketBudget::default());
        }
        decoders[rng.below(3)].expire(now, &mut budget);
    }
    for decoder in &mut decoders {
        decoder.clear(&mut budget);
    }
    assert_eq!(budget, SocketBudget::default());
    assert!(messages > 100, "{messages}");
}

#[test]
fn a_verdict_taken_before_decoding_changes_nothing() {
    let seeds = seeds();
    let mut rng = Rng::new(0x5eed_0004);
    let now = Instant::now();
    let (mut judged, mut taken) = (0, 0);
    for _ in 0..12_000 {
        let seed = rng.pick(&seeds).clone();
        let donor = rng.pick(&seeds).clone();
        let mut payload = rng.mutate(&seed, &donor);
        match rng.below(3) {
            0 => payload = format!("c\n{payload}"),
            1 => payload = format!("M\nchannel\nc\n{payload}"),
            _ => {}
        }
        let verdict = message::Verdict::of_payload(&payload);
        // Decoded as a legacy socket's payload, and as a multiplexed one's channel payload.
        let channel = match multiplex::parse(&payload) {
            Envelope::Channel { payload, .. } => Some(payload),
            _ => None,
        };
        for read in std::iter::once(payload.as_str()).chain(channel) {
            let mut budget = SocketBudget::default();
            let plain = PayloadDecoder::new(Duration::from_secs(1)).decode(read, &mut budget, now);
            let mut budget_judged = SocketBudget::default();
            let with_verdict = PayloadDecoder::new(Duration::from_secs(1)).decode_judged(
                read,
                verdict,
                &mut budget_judged,
                now,
            );
            assert_eq!(plain, with_verdict, "{read:?}");
            assert_eq!(budget, budget_judged);
            judged += 1;
            if let Some((_, remainder)) = payload::split(read) {
                taken += usize::from(verdict.is_some_and(|verdict| verdict.judged(remainder)));
            }
        }
    }
    // Most payloads were decoded with the verdict taken, not judged again.
    assert!(taken * 3 > judged, "{taken} of {judged}");
}

#[test]
fn fragmented_messages_survive_reordering_and_loss() {
    let seeds = seeds();
    let mut rng = Rng::new(0x5eed_0002);
    let now = Instant::now();
    let mut decoded = 0;
    for _ in 0..1_500 {
        let remainder = rng.pick(&seeds).clone();
        let size = 1.0 + rng.below(40) as f64;
        let mut payloads = fragment::payloads(Some("c"), &remainder, Some(size), || {
            "abcdefghijklmnop".to_owned()
        });
        for _ in 0..rng.below(3) {
            let from = rng.below(payloads.len());
            let to = rng.below(payloads.len());
            payloads.swap(from, to);
        }
        if rng.below(4) == 0 {
            let at = rng.below(payloads.len());
            let donor = payloads[rng.below(payloads.len())].clone();
            payloads[at] = rng.mutate(&payloads[at], &donor);
        }
        let mut decoder = PayloadDecoder::new(Duration::from_secs(1));
        let mut budget = SocketBudget::default();
        for payload in &payloads {
            if let Decoded::Message(message) = decoder.decode(payload, &mut budget, now) {
                decoded += 1;
                assert_eq!(message.to_client_id, "c");
            }
        }
        decoder.clear(&mut budget);
        assert_eq!(budget, SocketBudget::default());
    }
    assert!(decoded > 100, "{decoded}");
}

#[test]
fn multiplex_parsing_survives_mutated_payloads_and_echoes_controls() {
    let seeds = seeds();
    let mut rng = Rng::new(0x5eed_0003);
    let mut controls = 0;
    for _ in 0..12_000 {
        let seed = rng.pick(&seeds).clone();
        let donor = rng.pick(&seeds).clone();
        let payload = rng.mutate(&seed, &donor);
        match multiplex::parse(&payload) {
            Envelope::Control(control) => {
                controls += 1;
                // An acknowledgement is itself a control the same as the one it answers.
                let reply = multiplex::reply(&control);
                assert_eq!(
                    multiplex::parse(&reply),
                    Envelope::Control(control),
                    "{payload:?}"
                );
            }
            Envelope::Channel { channel_id, .. } => {
                assert!(multiplex::is_channel_id_valid(channel_id));
                assert!(!multiplex::is_channel_id_too_large(channel_id));
            }
            Envelope::ChannelIdTooLarge | Envelope::Invalid => {}
        }
    }
    assert!(controls > 100, "{controls}");
}
