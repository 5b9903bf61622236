//! The `tinybase` subprotocol: `M\nchannelId\npayload` envelopes and `S\n[requestId,-1,[control,
//! body]]` controls that let one socket carry many channels.

use serde_json::Value;

use super::limits::{
    MAX_CHANNEL_ID_BYTES, MULTIPLE_CLIENT_ID, MULTIPLE_MESSAGE, MULTIPLE_VERSION, SERVER_CLIENT_ID,
    UNDEFINED_MARKER,
};
use super::payload;

/// The `[control, body]` pair of a control message as `JSON.stringify` renders what the client
/// sent. TinyBase compares controls with `==`, so `"1"`, `true` or `[1]` subscribe as `1` does,
/// and its acknowledgement echoes the client's own spelling back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Echo(String);

/// A valid control message from a multiplexing client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Control {
    /// `[requestId, -1, [0, 1]]`: negotiates the protocol version.
    Hello { request_id: String, echo: Echo },
    /// `[requestId, -1, [1, channelId]]`. The id may be too large: the caller checks.
    Subscribe {
        request_id: String,
        channel_id: String,
        echo: Echo,
    },
    /// `[null, -1, [2, channelId]]`. The id may be too large: the caller checks.
    Unsubscribe { channel_id: String },
}

impl Control {
    /// A hello as TinyBase's client spells it.
    pub fn hello(request_id: &str) -> Control {
        Control::Hello {
            request_id: request_id.to_owned(),
            echo: Echo("[0,1]".to_owned()),
        }
    }

    /// A subscription as TinyBase's client spells it.
    pub fn subscribe(request_id: &str, channel_id: &str) -> Control {
        Control::Subscribe {
            request_id: request_id.to_owned(),
            channel_id: channel_id.to_owned(),
            echo: Echo(format!("[1,{}]", json_string(channel_id))),
        }
    }
}

/// What one payload on a multiplexed socket is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Envelope<'a> {
    Control(Control),
    /// A payload for one channel, with a valid channel id.
    Channel {
        channel_id: &'a str,
        payload: &'a str,
    },
    /// A channel envelope whose id is over the size limit.
    ChannelIdTooLarge,
    /// Neither a valid control nor a valid channel envelope.
    Invalid,
}

/// Classifies one payload received on a multiplexed socket.
pub fn parse(payload: &str) -> Envelope<'_> {
    let Some((client_id, remainder)) = payload::split(payload) else {
        return Envelope::Invalid;
    };
    if client_id == SERVER_CLIENT_ID {
        return parse_control(remainder).map_or(Envelope::Invalid, Envelope::Control);
    }
    if client_id != MULTIPLE_CLIENT_ID {
        return Envelope::Invalid;
    }
    match payload::split(remainder) {
        Some((channel_id, _)) if is_channel_id_too_large(channel_id) => Envelope::ChannelIdTooLarge,
        Some((channel_id, payload)) if is_channel_id_valid(channel_id) => Envelope::Channel {
            channel_id,
            payload,
        },
        _ => Envelope::Invalid,
    }
}

/// A value as TinyBase sees it after parsing: the marker string stands for `undefined`.
fn as_string(value: &Value) -> Option<&str> {
    value.as_str().filter(|s| *s != UNDEFINED_MARKER)
}

/// TinyBase's `ifMultipleControlPayloadValid`. Through serde_json, so a control holding an
/// unpaired surrogate or nested past 128 levels is refused where TinyBase might take it; no
/// Rust string could hold such a request or channel id anyway.
fn parse_control(remainder: &str) -> Option<Control> {
    let message: Value = serde_json::from_str(remainder).ok()?;
    let [request_id, message_type, control_and_body] = message.as_array()?.as_slice() else {
        return None;
    };
    let request_id = match request_id {
        Value::Null => None,
        other => Some(as_string(other)?),
    };
    if !loosely_equals(message_type, MULTIPLE_MESSAGE as f64) {
        return None;
    }
    let [control, body] = control_and_body.as_array()?.as_slice() else {
        return None;
    };
    let channel_id =
        || as_string(body).filter(|id| is_channel_id_too_large(id) || is_channel_id_valid(id));
    let echo = || {
        Some(Echo(format!(
            "[{},{}]",
            stringify(control)?,
            stringify(body)?
        )))
    };
    if loosely_equals(control, 0.0) {
        if !loosely_equals(body, MULTIPLE_VERSION as f64) {
            return None;
        }
        Some(Control::Hello {
            request_id: request_id?.to_owned(),
            echo: echo()?,
        })
    } else if loosely_equals(control, 1.0) {
        Some(Control::Subscribe {
            request_id: request_id?.to_owned(),
            channel_id: channel_id()?.to_owned(),
            echo: echo()?,
        })
    } else if loosely_equals(control, 2.0) && request_id.is_none() {
        Some(Control::Unsubscribe {
            channel_id: channel_id()?.to_owned(),
        })
    } else {
        None
    }
}

/// JS's `value == number` for a parsed JSON value. Objects (which TinyBase's parser creates
/// without a prototype, so that the comparison throws) never match.
fn loosely_equals(value: &Value, number: f64) -> bool {
    match value {
        Value::Number(n) => n.as_f64() == Some(number),
        Value::Bool(b) => f64::from(u8::from(*b)) == number,
        Value::String(s) if s != UNDEFINED_MARKER => string_to_number(s) == Some(number),
        Value::Array(items) => array_to_number(items) == Some(number),
        _ => false,
    }
}

/// `Number(String(array))`: the array joins its items with commas, so only an empty or a
/// one-item array can be numeric.
fn array_to_number(items: &[Value]) -> Option<f64> {
    match items {
        [] => Some(0.0),
        [item] => match item {
            Value::Null => Some(0.0),
            Value::String(s) if s == UNDEFINED_MARKER => Some(0.0),
            Value::String(s) => string_to_number(s),
            Value::Number(n) => n.as_f64(),
            Value::Array(items) => array_to_number(items),
            Value::Bool(_) | Value::Object(_) => None,
        },
        _ => None,
    }
}

/// JS's `StringToNumber`, or `None` for NaN.
fn string_to_number(s: &str) -> Option<f64> {
    let s = s.trim_matches(is_js_whitespace);
    if s.is_empty() {
        return Some(0.0);
    }
    let radix = match s.get(..2) {
        Some("0x" | "0X") => Some(16),
        Some("0o" | "0O") => Some(8),
        Some("0b" | "0B") => Some(2),
        _ => None,
    };
    if let Some(radix) = radix {
        let digits = s.get(2..)?;
        if digits.is_empty() {
            return None;
        }
        return digits.chars().try_fold(0.0f64, |value, digit| {
            Some(value * f64::from(radix) + f64::from(digit.to_digit(radix)?))
        });
    }
    let unsigned = s.strip_prefix(['+', '-']).unwrap_or(s);
    if unsigned == "Infinity" {
        return Some(if s.starts_with('-') {
            f64::NEG_INFINITY
        } else {
            f64::INFINITY
        });
    }
    is_decimal_literal(unsigned).then(|| s.parse().ok())?
}

/// `StrUnsignedDecimalLiteral` without `Infinity`: digits with an optional fraction (either
/// side of the point may be empty, not both) and an optional exponent.
fn is_decimal_literal(s: &str) -> bool {
    let (mantissa, exponent) = match s.split_once(['e', 'E']) {
        Some((mantissa, exponent)) => (mantissa, Some(exponent)),
        None => (s, None),
    };
    let (whole, fraction) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    let digits = |part: &str| part.bytes().all(|b| b.is_ascii_digit());
    let mantissa_ok =
        digits(whole) && digits(fraction) && !(whole.is_empty() && fraction.is_empty());
    let exponent_ok = exponent.is_none_or(|exponent| {
        let exponent = exponent.strip_prefix(['+', '-']).unwrap_or(exponent);
        !exponent.is_empty() && digits(exponent)
    });
    mantissa_ok && exponent_ok
}

/// JS's `WhiteSpace` and `LineTerminator`, which `StringToNumber` trims.
fn is_js_whitespace(c: char) -> bool {
    const SINGLES: &[char] = &[
        '\t', '\n', '\u{B}', '\u{C}', '\r', ' ', '\u{A0}', '\u{1680}', '\u{2028}', '\u{2029}',
        '\u{202F}', '\u{205F}', '\u{3000}', '\u{FEFF}',
    ];
    SINGLES.contains(&c) || ('\u{2000}'..='\u{200A}').contains(&c)
}

/// `JSON.stringify` of a value that TinyBase accepted in a control, or `None` for an object
/// (which it cannot accept).
fn stringify(value: &Value) -> Option<String> {
    Some(match value {
        Value::Null => "null".to_owned(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => js_number(n.as_f64()?),
        Value::String(s) => json_string(s),
        Value::Array(items) => {
            let items: Option<Vec<String>> = items.iter().map(stringify).collect();
            format!("[{}]", items?.join(","))
        }
        Value::Object(_) => return None,
    })
}

/// JS's `Number.prototype.toString` for a finite number: the shortest round-trip digits, in
/// positional notation from 1e-7 up to 1e21 and in exponent notation outside it.
fn js_number(number: f64) -> String {
    if number == 0.0 {
        return "0".to_owned();
    }
    let scientific = format!("{:e}", number.abs());
    let (mantissa, exponent) = scientific.split_once('e').unwrap_or((&scientific, "0"));
    let exponent: i32 = exponent.parse().unwrap_or(0);
    let digits = mantissa.replace('.', "");
    let (first, rest) = digits.split_at_checked(1).unwrap_or((&digits, ""));
    let sign = if number < 0.0 { "-" } else { "" };
    // Where the decimal point falls after the digits' first, as ECMAScript's `n` counts it.
    let point = exponent + 1;
    let len = digits.len() as i32;
    let body = if len <= point && point <= 21 {
        format!("{digits}{}", "0".repeat((point - len) as usize))
    } else if 0 < point && point <= 21 {
        let (whole, fraction) = digits
            .split_at_checked(point as usize)
            .unwrap_or((&digits, ""));
        format!("{whole}.{fraction}")
    } else if -6 < point && point <= 0 {
        format!("0.{}{digits}", "0".repeat(point.unsigned_abs() as usize))
    } else {
        let fraction = if rest.is_empty() {
            String::new()
        } else {
            format!(".{rest}")
        };
        let exponent_sign = if exponent < 0 { '-' } else { '+' };
        format!(
            "{first}{fraction}e{exponent_sign}{}",
            exponent.unsigned_abs()
        )
    };
    format!("{sign}{body}")
}

fn json_string(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_default()
}

/// Wraps a payload for delivery on one channel: `M\nchannelId\npayload`.
pub fn wrap(channel_id: &str, payload: &str) -> String {
    let mut wrapped = String::with_capacity(channel_id.len() + payload.len() + 3);
    wrapped.push_str(MULTIPLE_CLIENT_ID);
    wrapped.push(payload::SEPARATOR);
    wrapped.push_str(channel_id);
    wrapped.push(payload::SEPARATOR);
    wrapped.push_str(payload);
    wrapped
}

/// The server's acknowledgement of a control: `S\n[requestId,-1,[control,body]]`, as TinyBase
/// echoes it. TinyBase acknowledges no unsubscription; one is rendered as its client spells it.
pub fn reply(control: &Control) -> String {
    let (request_id, echo) = match control {
        Control::Hello { request_id, echo }
        | Control::Subscribe {
            request_id, echo, ..
        } => (json_string(request_id), echo.0.clone()),
        Control::Unsubscribe { channel_id } => (
            "null".to_owned(),
            format!("[2,{}]", json_string(channel_id)),
        ),
    };
    payload::join(
        SERVER_CLIENT_ID,
        &format!("[{request_id},{MULTIPLE_MESSAGE},{echo}]"),
    )
}

/// Whether a channel id is over TinyBase's size limit (in UTF-8 bytes).
pub fn is_channel_id_too_large(channel_id: &str) -> bool {
    channel_id.len() > MAX_CHANNEL_ID_BYTES
}

/// Whether a channel id has TinyBase's structure: non-empty `/`-separated parts, none `.` or
/// `..`, and no `\n`, `\r`, `?` or `#`.
pub fn is_channel_id_valid(channel_id: &str) -> bool {
    !channel_id.is_empty()
        && !channel_id.contains(['\n', '\r', '?', '#'])
        && channel_id
            .split('/')
            .all(|part| !part.is_empty() && part != "." && part != "..")
}

#[cfg(test)]
mod tests {
    use serde_json::Value as Json;

    use super::*;

    /// Payloads with how TinyBase's `ifMultipleControlPayloadValid` and `ifMultiplePayloadValid`
    /// took them: controls spelled every way `==` allows (with the acknowledgement
    /// `createMultipleControlPayload` built), channel envelopes, and `"throws"` where TinyBase's
    /// comparison threw on an object.
    const CORPUS: &str = include_str!("testdata/multiplex.jsonl");

    fn text(value: &Json) -> &str {
        value.as_str().unwrap()
    }

    #[test]
    fn classifies_as_tinybase_does_on_the_corpus() {
        let mut count = 0;
        for line in CORPUS.lines() {
            let case: Json = serde_json::from_str(line).unwrap();
            let payload = text(&case[0]);
            let envelope = parse(payload);
            match &case[1] {
                Json::String(s) if s == "invalid" || s == "throws" => {
                    assert_eq!(envelope, Envelope::Invalid, "{line}");
                }
                Json::String(s) if s == "too_large" => {
                    assert_eq!(envelope, Envelope::ChannelIdTooLarge, "{line}");
                }
                Json::Object(o) if o.contains_key("channel") => {
                    let channel = Envelope::Channel {
                        channel_id: text(&o["channel"][0]),
                        payload: text(&o["channel"][1]),
                    };
                    assert_eq!(envelope, channel, "{line}");
                }
                Json::Object(o) => {
                    let [kind, request_id, channel_id, acknowledgement] =
                        o["control"].as_array().unwrap().as_slice()
                    else {
                        panic!("{line}");
                    };
                    let Envelope::Control(control) = envelope else {
                        panic!("not a control: {line}");
                    };
                    match (text(kind), &control) {
                        ("hello", Control::Hello { request_id: id, .. }) => {
                            assert_eq!(id, text(request_id), "{line}");
                        }
                        (
                            "subscribe",
                            Control::Subscribe {
                                request_id: id,
                                channel_id: channel,
                                ..
                            },
                        ) => {
                            assert_eq!(id, text(request_id), "{line}");
                            assert_eq!(channel, text(channel_id), "{line}");
                        }
                        (
                            "unsubscribe",
                            Control::Unsubscribe {
                                channel_id: channel,
                            },
                        ) => {
                            assert_eq!(channel, text(channel_id), "{line}");
                        }
                        _ => panic!("{control:?} for {line}"),
                    }
                    if let Some(acknowledgement) = acknowledgement.as_str() {
                        assert_eq!(reply(&control), acknowledgement, "{line}");
                    }
                }
                other => panic!("unexpected outcome {other}"),
            }
            count += 1;
        }
        assert!(count > 900);
    }

    #[test]
    fn numbers_print_as_javascript_prints_them() {
        let cases = [
            (1e21, "1e+21"),
            (1e20, "100000000000000000000"),
            (123456789012345680000.0, "123456789012345680000"),
            (1e-7, "1e-7"),
            (1.5e-7, "1.5e-7"),
            (0.000001, "0.000001"),
            (0.0000012345, "0.0000012345"),
            (123.456, "123.456"),
            (-1.5, "-1.5"),
            (1e300, "1e+300"),
            (5e-324, "5e-324"),
            (9007199254740994.0, "9007199254740994"),
            (100.0, "100"),
            (f64::MAX, "1.7976931348623157e+308"),
            (-0.1, "-0.1"),
            (0.1 + 0.2, "0.30000000000000004"),
            (-0.0, "0"),
            (2.0, "2"),
        ];
        for (number, printed) in cases {
            assert_eq!(js_number(number), printed);
        }
    }

    #[test]
    fn strings_convert_to_numbers_as_javascript_converts_them() {
        let cases = [
            ("", Some(0.0)),
            (" \n\u{2028}\u{FEFF}", Some(0.0)),
            (" 12 ", Some(12.0)),
            ("0x1F", Some(31.0)),
            ("0b101", Some(5.0)),
            ("0o17", Some(15.0)),
            ("-0x1", None),
            ("0x", None),
            ("1.", Some(1.0)),
            (".5e1", Some(5.0)),
            ("+.5", Some(0.5)),
            (".", None),
            ("1e", None),
            ("1_000", None),
            ("-Infinity", Some(f64::NEG_INFINITY)),
            ("infinity", None),
            ("NaN", None),
            ("inf", None),
            ("\u{200B}1", None),
        ];
        for (string, number) in cases {
            assert_eq!(string_to_number(string), number, "{string:?}");
        }
    }

    #[test]
    fn canonical_controls_reply_as_tinybase_s_client_expects() {
        assert_eq!(reply(&Control::hello("r1")), "S\n[\"r1\",-1,[0,1]]");
        assert_eq!(
            parse("S\n[\"r1\",-1,[0,1]]"),
            Envelope::Control(Control::hello("r1"))
        );
        let subscribe = Control::subscribe("r2", "a/\"b\"");
        assert_eq!(reply(&subscribe), "S\n[\"r2\",-1,[1,\"a/\\\"b\\\"\"]]");
        assert_eq!(parse(&reply(&subscribe)), Envelope::Control(subscribe));
        let unsubscribe = Control::Unsubscribe {
            channel_id: "a".to_owned(),
        };
        assert_eq!(reply(&unsubscribe), "S\n[null,-1,[2,\"a\"]]");
        assert_eq!(parse(&reply(&unsubscribe)), Envelope::Control(unsubscribe));
    }

    #[test]
    fn loosely_spelled_controls_are_echoed_as_sent() {
        let Envelope::Control(control) = parse("S\n[\"r\",-1,[[\" 1 \"],\"chan\"]]") else {
            panic!("a subscription");
        };
        assert_eq!(reply(&control), "S\n[\"r\",-1,[[\" 1 \"],\"chan\"]]");
        let Envelope::Control(control) = parse("S\n[\"r\",-1,[-0.0e1,true]]") else {
            panic!("a hello");
        };
        assert_eq!(reply(&control), "S\n[\"r\",-1,[0,true]]");
    }

    #[test]
    fn channel_envelopes_wrap_and_parse() {
        let wrapped = wrap("a/b", "c\n[null,1,\"\"]");
        assert_eq!(wrapped, "M\na/b\nc\n[null,1,\"\"]");
        let channel = Envelope::Channel {
            channel_id: "a/b",
            payload: "c\n[null,1,\"\"]",
        };
        assert_eq!(parse(&wrapped), channel);
        assert_eq!(
            parse(&wrap(&"é".repeat(513), "x")),
            Envelope::ChannelIdTooLarge
        );
        assert_eq!(parse(&wrap("a/../b", "x")), Envelope::Invalid);
    }

    #[test]
    fn channel_ids_are_limited_in_bytes_and_structure() {
        assert!(!is_channel_id_too_large(&"é".repeat(512)));
        assert!(is_channel_id_too_large(&"é".repeat(513)));
        for valid in ["a", "a/b", "...", "a b", "ü/😀", "%2e"] {
            assert!(is_channel_id_valid(valid), "{valid}");
        }
        for invalid in [
            "", "/a", "a/", "a//b", ".", "a/..", "a?b", "a#", "a\nb", "a\rb",
        ] {
            assert!(!is_channel_id_valid(invalid), "{invalid:?}");
        }
    }
}
