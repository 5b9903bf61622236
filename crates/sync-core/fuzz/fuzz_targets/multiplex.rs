//! `multiplex::parse` on any text, and the round trips the relay relies on: a channel envelope
//! rebuilds its payload, a control's acknowledgement is JSON that parses back to the same
//! control, and `wrap` and `reply` produce what `parse` reads back unchanged.

#![no_main]

use libfuzzer_sys::fuzz_target;
use sync_core::protocol::limits::UNDEFINED_MARKER;
use sync_core::protocol::multiplex::{
    is_channel_id_too_large, is_channel_id_valid, parse, reply, wrap, Control, Envelope,
};

/// `reply(control)` is `S\n` and a JSON message, and parses back to `control`.
fn check_reply(control: &Control) {
    let acknowledgement = reply(control);
    let json = acknowledgement
        .strip_prefix("S\n")
        .unwrap_or_else(|| panic!("{acknowledgement:?} is not addressed from the server"));
    if let Err(error) = serde_json::from_str::<serde_json::Value>(json) {
        panic!("{acknowledgement:?} is not JSON: {error}");
    }
    assert_eq!(
        parse(&acknowledgement),
        Envelope::Control(control.clone()),
        "{acknowledgement:?}"
    );
}

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    match parse(&text) {
        Envelope::Channel {
            channel_id,
            payload,
        } => {
            assert!(is_channel_id_valid(channel_id), "{channel_id:?}");
            assert!(!is_channel_id_too_large(channel_id), "{channel_id:?}");
            assert_eq!(wrap(channel_id, payload), text);
        }
        Envelope::Control(control) => check_reply(&control),
        Envelope::ChannelIdTooLarge => {
            let channel_id = text
                .strip_prefix("M\n")
                .and_then(|rest| rest.split_once('\n'));
            assert!(channel_id.is_some_and(|(id, _)| is_channel_id_too_large(id)));
        }
        Envelope::Invalid => {}
    }

    // The text's first line as a channel id or request id, the rest as a payload or channel id.
    let (first, rest) = text.split_once('\n').unwrap_or((&text, ""));
    if is_channel_id_valid(first) && !is_channel_id_too_large(first) {
        let envelope = Envelope::Channel {
            channel_id: first,
            payload: rest,
        };
        assert_eq!(parse(&wrap(first, rest)), envelope);
    }
    if is_channel_id_too_large(first) {
        assert_eq!(parse(&wrap(first, rest)), Envelope::ChannelIdTooLarge);
    }
    // The marker is `undefined` to TinyBase, so it is no id; anything else round trips.
    if first != UNDEFINED_MARKER {
        check_reply(&Control::hello(first));
    }
    let channel = is_channel_id_valid(rest) || is_channel_id_too_large(rest);
    if channel && rest != UNDEFINED_MARKER {
        check_reply(&Control::Unsubscribe {
            channel_id: rest.to_owned(),
        });
        if first != UNDEFINED_MARKER {
            check_reply(&Control::subscribe(first, rest));
        }
    }
});
