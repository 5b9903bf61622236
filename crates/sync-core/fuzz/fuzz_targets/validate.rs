//! `validate` against the reference written from TinyBase's rules, on the input as text and on
//! a message generated from the input's bytes.
//!
//! The text reaches JSON's corners (escapes, numbers, whitespace, nesting) but is seldom a
//! message; the generated message is one, or nearly, and reaches the rules about each message
//! type's body. The reference parses JSON itself, so the check covers all of `validate`: the
//! serde fast path, the raw retry for what serde_json refuses (unpaired surrogates,
//! overflowing numbers, deep nesting), and the nesting limit.

#![no_main]

use libfuzzer_sys::fuzz_target;
use sync_core::protocol::message::validate;
use sync_core_fuzz::generate;
use sync_core_fuzz::reference::decode_protocol_message;

fn check(remainder: &str) {
    assert_eq!(
        validate(remainder),
        decode_protocol_message(remainder),
        "validate and TinyBase's rules disagree on {remainder:?}"
    );
}

fuzz_target!(|data: &[u8]| {
    if let Ok(remainder) = std::str::from_utf8(data) {
        check(remainder);
    }
    check(&generate::message(data));
});
