//! TinyBase's `decodeProtocolMessage` written out as it reads (tinybase 10's
//! `synchronizer-ws-server`), over values parsed as `JSON.parse` parses them, as the differential
//! reference for `sync_core::protocol::message::validate`.
//!
//! It shares nothing with the code it checks: its own JSON parser keeps what serde_json cannot
//! hold (strings as UTF-16, so unpaired surrogates survive; numbers that overflow to Infinity),
//! and each rule is a plain recursive function named after TinyBase's. The one rule not
//! TinyBase's is the nesting limit: Node gives up somewhere past 1,500 levels when its stack
//! runs out, and sync-core chose `MAX_NESTING` below that, which is mirrored here.

use sync_core::protocol::message::MAX_NESTING;

/// A JavaScript value after `JSON.parse` and TinyBase's `replaceUndefinedString`.
#[derive(Debug)]
enum Js {
    Undefined,
    Null,
    Bool,
    Number(f64),
    /// UTF-16 code units, as JavaScript strings are.
    String(Vec<u16>),
    Array(Vec<Js>),
    /// Own properties; a repeated key replaced the earlier value, as `JSON.parse` does.
    Object(Vec<(Vec<u16>, Js)>),
}

/// TinyBase's `UNDEFINED` marker, `\uFFFC`.
const UNDEFINED_MARKER: u16 = 0xFFFC;

/// The message type TinyBase's server would relay `remainder` with, or `None` if it would
/// reject it.
pub fn decode_protocol_message(remainder: &str) -> Option<i64> {
    let message = replace_undefined_string(json_parse(remainder)?);
    let Js::Array(items) = &message else {
        return None;
    };
    let [request_id, message_type, body] = items.as_slice() else {
        return None;
    };
    let Js::Number(message_type) = *message_type else {
        return None;
    };
    let valid = matches!(request_id, Js::Null | Js::String(_))
        && message_type.is_finite()
        && message_type.fract() == 0.0
        && is_body_valid(message_type, body);
    // The cast is exact: `is_body_valid` only accepts 0 to 7 (and -0, which JS's `==` takes
    // for 0 and the cast makes 0).
    valid.then_some(message_type as i64)
}

fn replace_undefined_string(value: Js) -> Js {
    match value {
        Js::String(s) if s == [UNDEFINED_MARKER] => Js::Undefined,
        Js::Array(items) => Js::Array(items.into_iter().map(replace_undefined_string).collect()),
        Js::Object(entries) => Js::Object(
            entries
                .into_iter()
                .map(|(key, value)| (key, replace_undefined_string(value)))
                .collect(),
        ),
        other => other,
    }
}

fn is_body_valid(message_type: f64, body: &Js) -> bool {
    // `message == n` in JS, on a finite integer.
    match message_type as i64 {
        0 => is_response(body),
        1 => matches!(body, Js::String(s) if s.is_empty()),
        2 => is_content_hashes(body),
        3 => is_mergeable_content_or_changes(body),
        4 | 7 => is_hash_tree(body, 0),
        5 => is_hash_tree(body, 1),
        6 => is_hash_tree(body, 2),
        _ => false,
    }
}

fn is_hash(value: &Js) -> bool {
    matches!(*value, Js::Number(n)
        if n.is_finite() && n.fract() == 0.0 && (0.0..=4_294_967_295.0).contains(&n))
}

fn is_hash_tree(tree: &Js, depth: u8) -> bool {
    let Js::Object(entries) = tree else {
        return false;
    };
    entries.iter().all(|(_, child)| match depth {
        0 => is_hash(child),
        _ => is_hash_tree(child, depth - 1),
    })
}

/// `isHlc(hlc, Infinity)`: `""`, or 16 characters of `[-0-9A-Z_a-z]` (the time bound is
/// infinite, so always met).
fn is_hlc(hlc: &[u16]) -> bool {
    hlc.is_empty()
        || (hlc.len() == 16
            && hlc.iter().all(|&unit| {
                u8::try_from(unit)
                    .is_ok_and(|byte| byte == b'-' || byte == b'_' || byte.is_ascii_alphanumeric())
            }))
}

fn is_stamp(stamp: &Js, depth: u8) -> bool {
    let Js::Array(items) = stamp else {
        return false;
    };
    let sized = match items.as_slice() {
        [_] => true,
        [_, Js::String(hlc)] => is_hlc(hlc),
        _ => false,
    };
    sized
        && match (&items[0], depth) {
            (thing, 0) => is_cell_or_value_or_undefined(thing),
            (Js::Object(entries), _) => entries.iter().all(|(_, child)| is_stamp(child, depth - 1)),
            _ => false,
        }
}

/// Every value but a non-finite number; `undefined` too.
fn is_cell_or_value_or_undefined(value: &Js) -> bool {
    !matches!(*value, Js::Number(n) if !n.is_finite())
}

fn is_content_hashes(body: &Js) -> bool {
    matches!(body, Js::Array(items) if items.len() == 2 && is_hash(&items[0]) && is_hash(&items[1]))
}

fn is_mergeable_content_or_changes(body: &Js) -> bool {
    let Js::Array(items) = body else {
        return false;
    };
    let sized = match items.as_slice() {
        [_, _] => true,
        // `body[2] === 1`
        [_, _, Js::Number(n)] => *n == 1.0,
        _ => false,
    };
    sized && is_stamp(&items[0], 3) && is_stamp(&items[1], 1)
}

fn is_response(body: &Js) -> bool {
    is_content_hashes(body)
        || is_stamp(body, 3)
        || is_stamp(body, 1)
        || matches!(body, Js::Array(items) if items.len() == 2
            && is_stamp(&items[0], 3)
            && (is_hash_tree(&items[1], 0) || is_hash_tree(&items[1], 1)))
}

/// `JSON.parse`: the whole text is one value between optional whitespace.
fn json_parse(text: &str) -> Option<Js> {
    let mut parser = Parser { text, at: 0 };
    let value = parser.value(0)?;
    parser.whitespace();
    (parser.at == parser.text.len()).then_some(value)
}

/// A recursive descent parser for ECMA-404 JSON, which is what `JSON.parse` accepts.
struct Parser<'a> {
    text: &'a str,
    /// Always on a character boundary: the parser steps over ASCII bytes or whole characters.
    at: usize,
}

impl Parser<'_> {
    fn peek(&self) -> Option<u8> {
        self.text.as_bytes().get(self.at).copied()
    }

    fn eat(&mut self, byte: u8) -> bool {
        let found = self.peek() == Some(byte);
        self.at += usize::from(found);
        found
    }

    fn whitespace(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.at += 1;
        }
    }

    fn literal(&mut self, word: &[u8], value: Js) -> Option<Js> {
        let found = self.text.as_bytes().get(self.at..)?.starts_with(word);
        self.at += word.len();
        found.then_some(value)
    }

    /// A value inside `depth` arrays and objects.
    fn value(&mut self, depth: usize) -> Option<Js> {
        self.whitespace();
        match self.peek()? {
            b'[' | b'{' if depth + 1 > MAX_NESTING => None,
            b'[' => self.array(depth + 1),
            b'{' => self.object(depth + 1),
            b'"' => self.string().map(Js::String),
            b't' => self.literal(b"true", Js::Bool),
            b'f' => self.literal(b"false", Js::Bool),
            b'n' => self.literal(b"null", Js::Null),
            _ => self.number(),
        }
    }

    fn array(&mut self, depth: usize) -> Option<Js> {
        self.at += 1;
        let mut items = Vec::new();
        self.whitespace();
        if self.eat(b']') {
            return Some(Js::Array(items));
        }
        loop {
            items.push(self.value(depth)?);
            self.whitespace();
            if self.eat(b']') {
                return Some(Js::Array(items));
            }
            if !self.eat(b',') {
                return None;
            }
        }
    }

    fn object(&mut self, depth: usize) -> Option<Js> {
        self.at += 1;
        let mut entries: Vec<(Vec<u16>, Js)> = Vec::new();
        self.whitespace();
        if self.eat(b'}') {
            return Some(Js::Object(entries));
        }
        loop {
            self.whitespace();
            if self.peek() != Some(b'"') {
                return None;
            }
            let key = self.string()?;
            self.whitespace();
            if !self.eat(b':') {
                return None;
            }
            let value = self.value(depth)?;
            match entries.iter_mut().find(|(seen, _)| *seen == key) {
                Some(entry) => entry.1 = value,
                None => entries.push((key, value)),
            }
            self.whitespace();
            if self.eat(b'}') {
                return Some(Js::Object(entries));
            }
            if !self.eat(b',') {
                return None;
            }
        }
    }

    /// A string, opening quote next, as UTF-16 code units.
    fn string(&mut self) -> Option<Vec<u16>> {
        self.at += 1;
        let mut units = Vec::new();
        loop {
            match self.peek()? {
                b'"' => {
                    self.at += 1;
                    return Some(units);
                }
                b'\\' => {
                    self.at += 1;
                    let escaped = self.peek()?;
                    self.at += 1;
                    let unit = match escaped {
                        b'"' | b'\\' | b'/' => u16::from(escaped),
                        b'b' => 0x08,
                        b'f' => 0x0C,
                        b'n' => 0x0A,
                        b'r' => 0x0D,
                        b't' => 0x09,
                        b'u' => {
                            let hex = self
                                .text
                                .get(self.at..self.at + 4)
                                .filter(|hex| hex.bytes().all(|b| b.is_ascii_hexdigit()))?;
                            self.at += 4;
                            u16::from_str_radix(hex, 16).ok()?
                        }
                        _ => return None,
                    };
                    units.push(unit);
                }
                0x00..=0x1F => return None,
                _ => {
                    let c = self.text.get(self.at..)?.chars().next()?;
                    let mut buffer = [0; 2];
                    units.extend_from_slice(c.encode_utf16(&mut buffer));
                    self.at += c.len_utf8();
                }
            }
        }
    }

    /// `-? (0 | [1-9][0-9]*) (. [0-9]+)? ([eE] [+-]? [0-9]+)?`, rounded to the nearest double
    /// as JS rounds it (Rust's parse rounds correctly too, and overflows to infinity alike).
    fn number(&mut self) -> Option<Js> {
        let start = self.at;
        self.eat(b'-');
        let digits = |parser: &mut Self| {
            let from = parser.at;
            while parser.peek().is_some_and(|b| b.is_ascii_digit()) {
                parser.at += 1;
            }
            parser.at - from
        };
        if self.eat(b'0') {
            // No leading zeros: "01" stops after the 0 and fails as trailing text.
        } else if digits(self) == 0 {
            return None;
        }
        if self.eat(b'.') && digits(self) == 0 {
            return None;
        }
        if self.eat(b'e') || self.eat(b'E') {
            let _sign = self.eat(b'+') || self.eat(b'-');
            if digits(self) == 0 {
                return None;
            }
        }
        self.text.get(start..self.at)?.parse().ok().map(Js::Number)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// sync-core's corpus: remainders with the message type TinyBase's own
    /// `decodeProtocolMessage` gave them in Node, so the reference is checked against TinyBase
    /// itself, not against the code it is meant to check.
    const TINYBASE_VERDICTS: &str = include_str!("../../src/protocol/testdata/messages.jsonl");

    #[test]
    fn agrees_with_tinybase_on_its_recorded_verdicts() {
        let mut count = 0;
        for line in TINYBASE_VERDICTS.lines() {
            let (remainder, expected): (String, Option<i64>) =
                serde_json::from_str(line).expect("a corpus line");
            assert_eq!(
                decode_protocol_message(&remainder),
                expected,
                "{remainder:?}"
            );
            count += 1;
        }
        assert!(count > 3_000);
    }

    #[test]
    fn parses_what_serde_json_refuses_as_json_parse_does() {
        assert_eq!(decode_protocol_message(r#"["\ud800",1,""]"#), Some(1));
        assert_eq!(decode_protocol_message(r#"[null,1e400,""]"#), None);
        let overflow_replaced = r#"[null,3,[[{"t":1e400,"t":[{}]}],[{}]]]"#;
        assert_eq!(decode_protocol_message(overflow_replaced), Some(3));
        assert_eq!(
            decode_protocol_message(r#"[null,4,{"\ud800":"x","\udbff":1}]"#),
            None
        );
    }

    #[test]
    fn keeps_to_the_json_grammar() {
        for text in [
            r#"[null,01,""]"#,
            r#"[null,1.,""]"#,
            r#"[null,+1,""]"#,
            r#"[null,1,"\x"]"#,
            "[null,1,\"\t\"]",
            r#"[null,1,""],"#,
            r#"[null,1,"",]"#,
            r#"[null 1 ""]"#,
        ] {
            assert_eq!(decode_protocol_message(text), None, "{text}");
        }
        assert_eq!(
            decode_protocol_message("\r\n[null , 1.0e0,\"\" ]\t"),
            Some(1)
        );
    }

    #[test]
    fn nests_up_to_the_limit() {
        let cell = |depth: usize| {
            let cell = "[".repeat(depth) + &"]".repeat(depth);
            format!(r#"[null,3,[[{{"t":[{{"r":[{{"c":[{cell},""]}}]}}]}}],[{{}}]]]"#)
        };
        assert_eq!(decode_protocol_message(&cell(MAX_NESTING - 9)), Some(3));
        assert_eq!(decode_protocol_message(&cell(MAX_NESTING - 8)), None);
    }
}
