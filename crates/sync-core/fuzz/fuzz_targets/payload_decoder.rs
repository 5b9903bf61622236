//! Payloads through `PayloadDecoder`s that share one `SocketBudget`, as a multiplexed socket's
//! channels do, on a fake clock.
//!
//! Input: a first step whose byte sets the fragment timeout, then steps (see the crate docs)
//! each `control payload`. The control byte's low two bits pick a decoder, the next two the
//! call (decode twice as often as expire or clear), the high four advance the clock first.
//!
//! Each decoder's share of the budget is tracked from how every call on it changed the budget,
//! so an over-refund that the budget's saturating arithmetic would hide shows as a negative
//! share, or as shares that no longer add up to the budget.

#![no_main]

use std::time::{Duration, Instant};

use libfuzzer_sys::fuzz_target;
use sync_core::protocol::fragment::{Decoded, DecodedMessage, PayloadDecoder, SocketBudget};
use sync_core::protocol::limits::{MAX_FRAGMENT_BUFFERS, MAX_PAYLOAD_BYTES};
use sync_core::protocol::message::validate;
use sync_core_fuzz::steps;

/// Decoders sharing the budget: enough for one to spend what another then hits the limit on.
const DECODERS: usize = 3;

struct Tracked {
    decoder: PayloadDecoder,
    /// The groups and bytes this decoder has charged to the budget and not refunded.
    groups: i64,
    bytes: i64,
    /// It answered `Invalid`, so it must answer `Ignored` from then on.
    invalid: bool,
}

fn signed(budget: &SocketBudget) -> (i64, i64) {
    (budget.groups as i64, budget.bytes as i64)
}

impl Tracked {
    /// Runs `call` on the decoder, charging it with what the call did to the budget.
    fn call<T>(
        &mut self,
        budget: &mut SocketBudget,
        call: impl FnOnce(&mut PayloadDecoder, &mut SocketBudget) -> T,
    ) -> T {
        let before = signed(budget);
        let result = call(&mut self.decoder, budget);
        let after = signed(budget);
        self.groups += after.0 - before.0;
        self.bytes += after.1 - before.1;
        assert!(
            self.groups >= 0 && self.bytes >= 0,
            "a decoder refunded more than it was charged: {} groups, {} bytes",
            self.groups,
            self.bytes
        );
        assert_eq!(
            self.decoder.next_deadline().is_some(),
            self.groups > 0,
            "a decoder's deadline and its charged groups disagree"
        );
        result
    }

    fn is_empty(&self) -> bool {
        self.groups == 0 && self.bytes == 0 && self.decoder.next_deadline().is_none()
    }
}

/// A decoded message is one TinyBase would relay, made of the payload's remainders.
fn check_message(payload: &str, decoded: &DecodedMessage) {
    let DecodedMessage {
        to_client_id,
        remainders,
        joined,
        message_type,
    } = decoded;
    let message = decoded.message();
    assert_eq!(validate(message), Some(*message_type), "{message:?}");
    let addressed = payload.split_once('\n').map(|(to, _)| to);
    assert_eq!(addressed, Some(to_client_id.as_ref()));
    if joined.is_none() {
        assert_eq!(remainders.len(), 1, "an unfragmented message is one remainder");
        return;
    }
    // A fragment is `messageId\nindex\ntotal\npart`: the parts in index order make the message.
    let mut parts = String::new();
    for (index, remainder) in remainders.iter().enumerate() {
        let fields: Vec<&str> = remainder.splitn(4, '\n').collect();
        let [_, at, total, part] = fields.as_slice() else {
            panic!("{remainder:?} is neither the message nor a fragment");
        };
        assert_eq!(at.parse(), Ok(index), "{remainder:?}");
        assert_eq!(total.parse(), Ok(remainders.len()), "{remainder:?}");
        parts.push_str(part);
    }
    assert_eq!(parts, message);
}

fuzz_target!(|data: &[u8]| {
    let mut steps = steps(data);
    let Some(header) = steps.next() else {
        return;
    };
    let timeout = Duration::from_millis(u64::from(header.byte(0)) * 10);
    let mut decoders: Vec<Tracked> = (0..DECODERS)
        .map(|_| Tracked {
            decoder: PayloadDecoder::new(timeout),
            groups: 0,
            bytes: 0,
            invalid: false,
        })
        .collect();
    let mut budget = SocketBudget::default();
    let mut now = Instant::now();

    for step in steps {
        let control = step.byte(0);
        now += Duration::from_millis(u64::from(control >> 4) * 100);
        let tracked = &mut decoders[usize::from(control & 3) % DECODERS];
        match (control >> 2) & 3 {
            0 | 1 => {
                let payload = step.text(1);
                let decoded = tracked.call(&mut budget, |decoder, budget| {
                    decoder.decode(&payload, budget, now)
                });
                match &decoded {
                    Decoded::Message(message) => check_message(&payload, message),
                    Decoded::Pending => assert!(tracked.groups > 0),
                    Decoded::Invalid(_) => {
                        assert!(!tracked.invalid, "an invalid decoder decoded again");
                        assert!(tracked.is_empty(), "an invalid decoder kept fragments");
                        tracked.invalid = true;
                    }
                    Decoded::Ignored => assert!(tracked.invalid, "a valid decoder ignored"),
                }
                if let Some(deadline) = tracked.decoder.next_deadline() {
                    assert!(deadline >= now);
                }
            }
            2 => {
                tracked.call(&mut budget, |decoder, budget| decoder.expire(now, budget));
                if let Some(deadline) = tracked.decoder.next_deadline() {
                    assert!(deadline > now, "a group due by now survived expiry");
                }
            }
            _ => {
                tracked.call(&mut budget, PayloadDecoder::clear);
                assert!(tracked.is_empty(), "clear kept fragments");
            }
        }
        let (groups, bytes) = signed(&budget);
        assert_eq!(groups, decoders.iter().map(|t| t.groups).sum::<i64>());
        assert_eq!(bytes, decoders.iter().map(|t| t.bytes).sum::<i64>());
        assert!(budget.groups <= MAX_FRAGMENT_BUFFERS, "{budget:?}");
        assert!(budget.bytes <= MAX_PAYLOAD_BYTES, "{budget:?}");
    }

    // Every group was received by now, so all of them have expired a timeout later.
    let later = now + timeout;
    for tracked in &mut decoders {
        tracked.call(&mut budget, |decoder, budget| decoder.expire(later, budget));
        assert!(tracked.is_empty(), "a group outlived its timeout");
    }
    assert_eq!(budget, SocketBudget::default());
});
