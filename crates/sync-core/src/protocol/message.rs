//! Validation of a message remainder, `[requestId, messageType, body]`, exactly as TinyBase's
//! server decides whether to relay it.
//!
//! TinyBase parses the remainder with `JSON.parse`, turns the `\u{FFFC}` marker into `undefined`
//! and then checks the body's shape for its message type. Here all of that happens in the pass
//! that parses the JSON: each value is parsed against the set of shapes it may still take and
//! answers with the subset it satisfies, so nothing is kept but a few bits a level (and, for an
//! object, the keys whose value failed, since a repeated key replaces its earlier value).
//!
//! serde_json refuses some things `JSON.parse` accepts: numbers that overflow to `Infinity`,
//! strings holding unpaired surrogates, and nesting past 128 levels. When it does, the message
//! is judged again reading every value raw, which serde_json only checks to be JSON: scalars
//! are then judged here, and each array or object a shape looks into is parsed again. That
//! costs a pass a level, but only for such contrived input.

use std::borrow::Cow;
use std::collections::HashMap;
use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;
use serde_json::error::Category;
use serde_json::value::RawValue;

use super::limits::{MAX_PAYLOAD_BYTES, MULTIPLE_CLIENT_ID, UNDEFINED_MARKER};
use super::payload;

/// TinyBase's message types, as numbered on the wire.
pub mod message_type {
    pub const RESPONSE: i64 = 0;
    pub const GET_CONTENT_HASHES: i64 = 1;
    pub const CONTENT_HASHES: i64 = 2;
    pub const CONTENT_DIFF: i64 = 3;
    pub const GET_TABLE_DIFF: i64 = 4;
    pub const GET_ROW_DIFF: i64 = 5;
    pub const GET_CELL_DIFF: i64 = 6;
    pub const GET_VALUE_DIFF: i64 = 7;
}

/// Deepest nesting of arrays and objects accepted, counting the message array as one.
/// TinyBase recurses once a level when it restores `undefined` values and Node runs out of stack
/// somewhere past 1,500 levels of objects (2,700 of arrays), which makes the message invalid;
/// its clients fail alike, each engine at its own depth. Below all of those, the relay never
/// passes on a message a client cannot parse, and no TinyBase client nests a tenth as deep.
pub const MAX_NESTING: usize = 1_000;

/// Returns the message type of a valid remainder, or `None` where TinyBase would reject it.
pub fn validate(remainder: &str) -> Option<i64> {
    match judge(remainder, false) {
        Ok(message_type) => Some(message_type),
        // A refusal of serde_json's own, not a rule of TinyBase's: JSON.parse may have accepted
        // what was refused, and a later repeat of its key may even have made it irrelevant.
        Err(Category::Syntax) => judge(remainder, true).ok(),
        Err(_) => None,
    }
}

fn judge(remainder: &str, all_raw: bool) -> Result<i64, Category> {
    let mut deserializer = serde_json::Deserializer::from_str(remainder);
    let message_type = deserializer
        .deserialize_seq(MessageVisitor { all_raw })
        .map_err(|error| error.classify())?;
    deserializer.end().map_err(|error| error.classify())?;
    Ok(message_type)
}

/// A set of shapes, one bit each, that a value may be asked to satisfy.
type Shapes = u32;

/// The shapes of TinyBase's message bodies, after the checks in its server.
mod shape {
    use super::Shapes;

    /// `isCellOrValueOrUndefined`: every JSON value but a non-finite number, and `undefined`.
    pub const ANY: Shapes = 1 << 0;
    /// `isHash`: an integer from 0 to 2^32 - 1.
    pub const HASH: Shapes = 1 << 1;
    /// `isHlc`: `""` or 16 characters of TinyBase's id alphabet.
    pub const HLC: Shapes = 1 << 2;
    /// Exactly `""`.
    pub const EMPTY: Shapes = 1 << 3;
    /// Exactly the number 1.
    pub const ONE: Shapes = 1 << 4;
    /// `isHashTree(_, 0..=2)`: an object of hashes, or of hash trees a level down.
    pub const HASH_TREE: [Shapes; 3] = [1 << 5, 1 << 6, 1 << 7];
    /// The object inside a stamp of depth 1..=3: each value a stamp a level down.
    pub const STAMP_MAP: [Shapes; 3] = [1 << 8, 1 << 9, 1 << 10];
    /// `isStamp(_, 0..=3)`: `[thing]` or `[thing, hlc]`, the thing a stamp map unless depth 0,
    /// where it is a cell or value.
    pub const STAMP: [Shapes; 4] = [1 << 11, 1 << 12, 1 << 13, 1 << 14];
    /// `isContentHashes`: `[hash, hash]`.
    pub const CONTENT_HASHES: Shapes = 1 << 15;
    /// `isMergeableContentOrChanges`: `[tablesStamp, valuesStamp]`, or with a third item `1`.
    pub const CHANGES: Shapes = 1 << 16;
    /// The last form of `isResponse`: `[tablesStamp, hashTree of depth 0 or 1]`.
    pub const STAMP_AND_HASHES: Shapes = 1 << 17;

    pub const COUNT: usize = 18;

    pub const SCALARS: Shapes = ANY | HASH | HLC | EMPTY | ONE;
}

/// What the items of an array shape, or the values of an object shape, must be.
#[derive(Clone, Copy)]
struct Rule {
    /// For an array, the shapes of its items by index; for an object, `items[0]` is the shape
    /// of every value. Scalars have no items.
    items: [Shapes; 3],
    /// How many items an array may have.
    len: (usize, usize),
    /// Whether this is an object shape rather than an array one.
    object: bool,
}

const fn rules() -> [Rule; shape::COUNT] {
    use shape::*;
    const fn array(items: [Shapes; 3], min: usize, max: usize) -> Rule {
        Rule {
            items,
            len: (min, max),
            object: false,
        }
    }
    const fn object(values: Shapes) -> Rule {
        Rule {
            items: [values, 0, 0],
            len: (0, 0),
            object: true,
        }
    }
    const fn at(shape: Shapes) -> usize {
        shape.trailing_zeros() as usize
    }
    let mut rules = [array([0; 3], 0, 0); COUNT];
    rules[at(HASH_TREE[0])] = object(HASH);
    rules[at(HASH_TREE[1])] = object(HASH_TREE[0]);
    rules[at(HASH_TREE[2])] = object(HASH_TREE[1]);
    rules[at(STAMP_MAP[0])] = object(STAMP[0]);
    rules[at(STAMP_MAP[1])] = object(STAMP[1]);
    rules[at(STAMP_MAP[2])] = object(STAMP[2]);
    rules[at(STAMP[0])] = array([ANY, HLC, 0], 1, 2);
    rules[at(STAMP[1])] = array([STAMP_MAP[0], HLC, 0], 1, 2);
    rules[at(STAMP[2])] = array([STAMP_MAP[1], HLC, 0], 1, 2);
    rules[at(STAMP[3])] = array([STAMP_MAP[2], HLC, 0], 1, 2);
    rules[at(CONTENT_HASHES)] = array([HASH, HASH, 0], 2, 2);
    rules[at(CHANGES)] = array([STAMP[3], STAMP[1], ONE], 2, 3);
    rules[at(STAMP_AND_HASHES)] = array([STAMP[3], HASH_TREE[0] | HASH_TREE[1], 0], 2, 2);
    rules
}

const RULES: [Rule; shape::COUNT] = rules();

/// The shapes in `shapes` with their rules.
fn each_rule(shapes: Shapes) -> impl Iterator<Item = (Shapes, &'static Rule)> {
    let mut rest = shapes;
    std::iter::from_fn(move || {
        let bit = rest & rest.wrapping_neg();
        rest ^= bit;
        Some((bit, RULES.get(bit.trailing_zeros() as usize)?))
    })
}

/// Of `shapes`, the array shapes (`object == false`) or the object ones.
fn of_kind(shapes: Shapes, object: bool) -> Shapes {
    let mut kind = 0;
    for (bit, rule) in each_rule(shapes & !shape::SCALARS) {
        if rule.object == object {
            kind |= bit;
        }
    }
    kind
}

/// The shapes any of `shapes` asks of the item at `index`.
fn item_shapes(shapes: Shapes, index: usize) -> Shapes {
    let mut wanted = 0;
    for (_, rule) in each_rule(shapes) {
        wanted |= rule.items.get(index).copied().unwrap_or(0);
    }
    wanted
}

/// Those of `shapes` that an item at `index` satisfying `got` keeps alive.
fn kept_by_item(shapes: Shapes, index: usize, got: Shapes) -> Shapes {
    let mut kept = 0;
    for (bit, rule) in each_rule(shapes) {
        if rule
            .items
            .get(index)
            .is_some_and(|&wanted| wanted & got != 0)
        {
            kept |= bit;
        }
    }
    kept
}

/// The body shapes TinyBase's `isBodyValid` accepts for a message type.
fn body_shapes(message_type: i64) -> Shapes {
    use shape::{CHANGES, EMPTY, HASH_TREE, STAMP, STAMP_AND_HASHES};
    match message_type {
        // `isResponse` also tries `isStamp(body, 3)`, but any stamp of depth 3 is one of depth
        // 1 as well (a depth-1 stamp's innermost things are cells or values, and an object is
        // one), so that test can never decide the outcome and is left out.
        message_type::RESPONSE => shape::CONTENT_HASHES | STAMP[1] | STAMP_AND_HASHES,
        message_type::GET_CONTENT_HASHES => EMPTY,
        message_type::CONTENT_HASHES => shape::CONTENT_HASHES,
        message_type::CONTENT_DIFF => CHANGES,
        message_type::GET_TABLE_DIFF | message_type::GET_VALUE_DIFF => HASH_TREE[0],
        message_type::GET_ROW_DIFF => HASH_TREE[1],
        message_type::GET_CELL_DIFF => HASH_TREE[2],
        _ => 0,
    }
}

/// Any error of ours stops the parse: the message is invalid, whatever the reason.
fn reject<E: de::Error>() -> E {
    E::custom("invalid TinyBase message")
}

/// `[requestId, messageType, body]`, answering the message type.
struct MessageVisitor {
    all_raw: bool,
}

impl<'de> Visitor<'de> for MessageVisitor {
    type Value = i64;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a TinyBase message")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<i64, A::Error> {
        let request_id = seq.next_element::<&RawValue>()?.ok_or_else(reject)?;
        if !is_request_id(request_id.get()) {
            return Err(reject());
        }
        let message_type = seq.next_element::<&RawValue>()?.ok_or_else(reject)?;
        let message_type = known_message_type(message_type.get()).ok_or_else(reject)?;
        let wanted = body_shapes(message_type);
        let body = Expect {
            shapes: wanted,
            depth: 1,
            all_raw: self.all_raw,
        };
        let got = seq.next_element_seed(body)?.ok_or_else(reject)?;
        if got & wanted == 0 || seq.next_element::<IgnoredAny>()?.is_some() {
            return Err(reject());
        }
        Ok(message_type)
    }
}

/// `null` or a string: `undefined` (the marker) is neither.
fn is_request_id(raw: &str) -> bool {
    raw == "null" || (raw.starts_with('"') && !is_marker(raw))
}

/// A finite, integral number that TinyBase's `isBodyValid` knows as a type.
fn known_message_type(raw: &str) -> Option<i64> {
    let n = number(raw)?;
    let known = message_type::RESPONSE as f64..=message_type::GET_VALUE_DIFF as f64;
    // `-0` passes, as JS's `==` takes it for 0.
    (n.fract() == 0.0 && known.contains(&n)).then_some(n as i64)
}

/// The value of a raw JSON number as `JSON.parse` rounds it, `None` for anything else.
fn number(raw: &str) -> Option<f64> {
    match raw.as_bytes().first()? {
        b'-' | b'0'..=b'9' => raw.parse().ok(),
        _ => None,
    }
}

/// The string a raw JSON string holds, or `None` if it holds an unpaired surrogate, which no
/// Rust string can.
fn string(raw: &str) -> Option<Cow<'_, str>> {
    match raw
        .strip_prefix('"')
        .and_then(|rest| rest.strip_suffix('"'))
    {
        Some(plain) if !plain.contains('\\') => Some(Cow::Borrowed(plain)),
        _ => serde_json::from_str::<String>(raw).ok().map(Cow::Owned),
    }
}

fn is_marker(raw: &str) -> bool {
    string(raw).is_some_and(|s| s == UNDEFINED_MARKER)
}

fn is_hlc(s: &str) -> bool {
    s.len() == 16 && s.bytes().all(super::fragment::is_id_char)
}

/// Parses one value against `shapes`, answering those it satisfies.
#[derive(Clone, Copy)]
struct Expect {
    shapes: Shapes,
    /// Arrays and objects enclosing the value.
    depth: usize,
    /// Whether arrays and objects are read raw and parsed again, so that no scalar inside them
    /// goes through serde_json's decoding.
    all_raw: bool,
}

impl Expect {
    fn within(self, shapes: Shapes) -> Expect {
        Expect {
            shapes,
            depth: self.depth + 1,
            ..self
        }
    }

    /// What a whole raw value satisfies. Nesting is checked for every array or object, even one
    /// no shape looks into: TinyBase's stack runs out all the same.
    fn raw<E: de::Error>(self, raw: &str) -> Result<Shapes, E> {
        let got = match raw.as_bytes().first() {
            Some(b'[' | b'{') => {
                if self.depth + nesting(raw) > MAX_NESTING {
                    return Err(reject());
                }
                let structured = self.shapes & !shape::SCALARS;
                let looked_into = if structured == 0 {
                    0
                } else {
                    let mut deserializer = serde_json::Deserializer::from_str(raw);
                    deserializer
                        .deserialize_any(self)
                        .map_err(|_| reject::<E>())?
                };
                shape::ANY | looked_into
            }
            Some(b'"') => match string(raw) {
                Some(s) => self.string(&s),
                None => shape::ANY,
            },
            _ => match number(raw) {
                Some(n) if n.is_finite() => self.finite(n),
                Some(_) => 0,
                None => shape::ANY,
            },
        };
        Ok(got & self.shapes)
    }

    /// What a string satisfies: `undefined` (the marker) is only a cell or value.
    fn string(self, s: &str) -> Shapes {
        let got = if s == UNDEFINED_MARKER {
            shape::ANY
        } else if s.is_empty() {
            shape::ANY | shape::EMPTY | shape::HLC
        } else if is_hlc(s) {
            shape::ANY | shape::HLC
        } else {
            shape::ANY
        };
        got & self.shapes
    }

    /// What a finite number satisfies.
    fn finite(self, n: f64) -> Shapes {
        let mut got = shape::ANY;
        if n.fract() == 0.0 && (0.0..=4_294_967_295.0).contains(&n) {
            got |= shape::HASH;
        }
        if n == 1.0 {
            got |= shape::ONE;
        }
        got & self.shapes
    }
}

/// How deeply arrays and objects nest in a valid JSON value.
fn nesting(raw: &str) -> usize {
    let (mut depth, mut deepest) = (0usize, 0usize);
    let (mut in_string, mut escaped) = (false, false);
    for byte in raw.bytes() {
        if in_string {
            match byte {
                _ if escaped => escaped = false,
                b'\\' => escaped = true,
                b'"' => in_string = false,
                _ => {}
            }
            continue;
        }
        match byte {
            b'"' => in_string = true,
            b'[' | b'{' => {
                depth += 1;
                deepest = deepest.max(depth);
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    deepest
}

impl<'de> DeserializeSeed<'de> for Expect {
    type Value = Shapes;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Shapes, D::Error> {
        if self.all_raw {
            let raw = <&RawValue>::deserialize(deserializer)?;
            return self.raw(raw.get());
        }
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Expect {
    type Value = Shapes;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a TinyBase message body")
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Shapes, E> {
        Ok(self.shapes & shape::ANY)
    }

    fn visit_unit<E: de::Error>(self) -> Result<Shapes, E> {
        Ok(self.shapes & shape::ANY)
    }

    fn visit_u64<E: de::Error>(self, n: u64) -> Result<Shapes, E> {
        Ok(self.finite(n as f64))
    }

    fn visit_i64<E: de::Error>(self, n: i64) -> Result<Shapes, E> {
        Ok(self.finite(n as f64))
    }

    fn visit_f64<E: de::Error>(self, n: f64) -> Result<Shapes, E> {
        Ok(self.finite(n))
    }

    fn visit_str<E: de::Error>(self, s: &str) -> Result<Shapes, E> {
        Ok(self.string(s))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Shapes, A::Error> {
        let mut alive = of_kind(self.shapes, false);
        let mut len = 0;
        loop {
            let item = self.within(item_shapes(alive, len));
            let Some(got) = seq.next_element_seed(item)? else {
                break;
            };
            alive = kept_by_item(alive, len, got);
            len += 1;
        }
        let mut got = shape::ANY;
        for (bit, rule) in each_rule(alive) {
            if (rule.len.0..=rule.len.1).contains(&len) {
                got |= bit;
            }
        }
        Ok(got & self.shapes)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Shapes, A::Error> {
        let shapes = of_kind(self.shapes, true);
        let value = self.within(item_shapes(shapes, 0));
        // Keys whose latest value fails some of `shapes`, with the shapes it keeps: JSON.parse
        // lets a repeated key replace its earlier value, so a failure is only final at the end.
        let mut failing: Option<HashMap<Cow<'de, [u8]>, Shapes>> = None;
        let keys = KeySeed {
            checked: self.all_raw,
        };
        while let Some(key) = map.next_key_seed(keys)? {
            let got = map.next_value_seed(value)?;
            let kept = kept_by_item(shapes, 0, got);
            if kept != shapes {
                failing.get_or_insert_default().insert(key, kept);
            } else if let Some(failing) = &mut failing {
                failing.remove(&key);
            }
        }
        let got = failing
            .iter()
            .flat_map(HashMap::values)
            .fold(shapes, |got, kept| got & kept);
        Ok((got | shape::ANY) & self.shapes)
    }
}

/// Reads an object key as bytes, borrowed from the input when the key has no escapes.
#[derive(Clone, Copy)]
struct KeySeed {
    /// Whether the object was already checked as JSON by a raw read, so the key can be taken as
    /// WTF-8, which keeps unpaired surrogates (and tells apart keys that differ only in them).
    /// Otherwise serde_json must decode it as a string, the only way it refuses raw control
    /// characters in a key.
    checked: bool,
}

impl<'de> DeserializeSeed<'de> for KeySeed {
    type Value = Cow<'de, [u8]>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        if self.checked {
            deserializer.deserialize_bytes(self)
        } else {
            deserializer.deserialize_str(self)
        }
    }
}

impl<'de> Visitor<'de> for KeySeed {
    type Value = Cow<'de, [u8]>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an object key")
    }

    fn visit_borrowed_str<E: de::Error>(self, key: &'de str) -> Result<Self::Value, E> {
        Ok(Cow::Borrowed(key.as_bytes()))
    }

    fn visit_str<E: de::Error>(self, key: &str) -> Result<Self::Value, E> {
        Ok(Cow::Owned(key.as_bytes().to_vec()))
    }

    fn visit_borrowed_bytes<E: de::Error>(self, key: &'de [u8]) -> Result<Self::Value, E> {
        Ok(Cow::Borrowed(key))
    }

    fn visit_bytes<E: de::Error>(self, key: &[u8]) -> Result<Self::Value, E> {
        Ok(Cow::Owned(key.to_vec()))
    }
}

/// One remainder's validation, made before the router's lock is taken so that the messages of
/// different senders are judged in parallel. It answers only for the very slice it judged: a
/// payload the router reads another way is judged again there.
#[derive(Debug, Clone, Copy)]
pub struct Verdict<'a> {
    remainder: &'a str,
    message_type: Option<i64>,
}

impl<'a> Verdict<'a> {
    /// Validates the message a client's payload carries, reading it as the router will: the
    /// remainder of a `toClientId\nremainder` payload, or of the one inside a multiplexed
    /// socket's `M\nchannelId\npayload` envelope. `None` for a payload the router refuses
    /// before validating: one without an envelope, or over the size limit.
    pub fn of_payload(payload: &'a str) -> Option<Self> {
        if payload.len() > MAX_PAYLOAD_BYTES {
            return None;
        }
        let inner = payload::split(payload)
            .filter(|(to, _)| *to == MULTIPLE_CLIENT_ID)
            .and_then(|(_, channel)| payload::split(channel))
            .map_or(payload, |(_, inner)| inner);
        let (_, remainder) = payload::split(inner)?;
        Some(Verdict {
            remainder,
            message_type: validate(remainder),
        })
    }

    /// A verdict that says whatever a test needs, to show where verdicts are taken.
    #[cfg(test)]
    pub(crate) fn forged(remainder: &'a str, message_type: Option<i64>) -> Self {
        Verdict {
            remainder,
            message_type,
        }
    }

    /// What [`validate`] answers for `remainder`, judged now unless this verdict judged that
    /// very slice.
    pub fn validate(verdict: Option<Self>, remainder: &str) -> Option<i64> {
        match verdict {
            Some(verdict) if verdict.judged(remainder) => verdict.message_type,
            _ => validate(remainder),
        }
    }

    /// Whether `remainder` is the very slice this verdict judged, not just the same text.
    pub(crate) fn judged(&self, remainder: &str) -> bool {
        std::ptr::eq(self.remainder, remainder)
    }
}

/// The type of a message already validated, `[requestId, messageType, body]`, read from its
/// first two elements only, so a large body costs nothing; `None` where it cannot be read that
/// way (a fragment, or anything that is not such a message).
pub fn peek_type(remainder: &str) -> Option<i64> {
    let rest = remainder.trim_start().strip_prefix('[')?.trim_start();
    let after_id = if let Some(string) = rest.strip_prefix('"') {
        let mut escaped = false;
        let end = string.char_indices().find_map(|(index, char)| {
            let closes = char == '"' && !escaped;
            escaped = char == '\\' && !escaped;
            closes.then_some(index)
        })?;
        &string[end + 1..]
    } else {
        rest.strip_prefix("null")?
    };
    let rest = after_id.trim_start().strip_prefix(',')?.trim_start();
    let digits = rest.find(|char: char| !char.is_ascii_digit())?;
    rest[digits..]
        .trim_start()
        .starts_with(',')
        .then(|| rest[..digits].parse().ok())?
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Remainders with the message type TinyBase's own `decodeProtocolMessage` gave them (or
    /// `null`): messages captured from real clients, random mutations of them and hand-written
    /// edge cases.
    const CORPUS: &str = include_str!("testdata/messages.jsonl");

    #[test]
    fn agrees_with_tinybase_on_the_corpus() {
        let mut disagreements = Vec::new();
        let mut count = 0;
        for line in CORPUS.lines() {
            let (remainder, expected): (String, Option<i64>) = serde_json::from_str(line).unwrap();
            if validate(&remainder) != expected {
                disagreements.push((remainder, expected));
            }
            count += 1;
        }
        assert!(count > 3_000);
        assert!(
            disagreements.is_empty(),
            "{} of {count}: {disagreements:#?}",
            disagreements.len()
        );
    }

    fn stamped_cell(cell: &str) -> String {
        format!(r#"[null,3,[[{{"t":[{{"r":[{{"c":[{cell},""]}}]}}]}}],[{{}}]]]"#)
    }

    #[test]
    fn reads_numbers_as_json_parse_does() {
        assert_eq!(validate(r#"[null,1.0,""]"#), Some(1));
        assert_eq!(validate(r#"[null,0.1e1,""]"#), Some(1));
        assert_eq!(validate(r#"["r",-0,[1,2]]"#), Some(0));
        assert_eq!(validate(r#"[null,1e400,""]"#), None);
        assert_eq!(validate(r#"[null,2,[4294967295,4.294967295e9]]"#), Some(2));
        assert_eq!(validate(r#"[null,2,[4294967296,0]]"#), None);
        assert_eq!(validate(r#"[null,2,[-1,0]]"#), None);
        assert_eq!(validate(r#"[null,2,[0.5,0]]"#), None);
        // Rounds to 2^32 - 1 as a double, so it is an integer.
        assert_eq!(validate(r#"[null,2,[4294967295.0000001,0]]"#), Some(2));
        assert_eq!(validate(&stamped_cell("1e400")), None);
        assert_eq!(validate(&stamped_cell("1e-400")), Some(3));
        assert_eq!(validate(r#"[null,3,[[{}],[{}],1.0]]"#), Some(3));
        assert_eq!(validate(r#"[null,3,[[{}],[{}],"1"]]"#), None);
    }

    #[test]
    fn the_marker_is_undefined() {
        assert_eq!(validate(&stamped_cell(r#""\ufffc""#)), Some(3));
        assert_eq!(validate(&stamped_cell("\"\u{FFFC}\"")), Some(3));
        assert_eq!(validate("[\"\u{FFFC}\",1,\"\"]"), None);
        assert_eq!(validate(r#"[null,1,"\uFFFC"]"#), None);
        assert_eq!(validate(r#"[null,3,[[{}],[{},"\ufffc"]]]"#), None);
    }

    #[test]
    fn a_repeated_key_replaces_its_value() {
        assert_eq!(validate(r#"[null,4,{"a":"x","a":1}]"#), Some(4));
        assert_eq!(validate(r#"[null,4,{"a":1,"a":"x"}]"#), None);
        assert_eq!(validate(r#"[null,4,{"a":"x","\u0061":1}]"#), Some(4));
        assert_eq!(validate(r#"[null,4,{"a":"x","b":1,"a":2,"b":"y"}]"#), None);
        assert_eq!(validate(r#"[null,4,{"__proto__":1}]"#), Some(4));
    }

    #[test]
    fn what_serde_json_refuses_is_judged_again_raw() {
        // serde_json stops at the overflow or the surrogate; JSON.parse reads on, and the
        // repeated key makes the refused value irrelevant.
        for (remainder, message_type) in [
            (r#"[null,3,[[{"t":1e400,"t":[{}]}],[{}]]]"#, 3),
            (r#"[null,3,[[{"t":"\ud800","t":[{}]}],[{}]]]"#, 3),
            (r#"[null,5,{"t":"\udc00","t":{}}]"#, 5),
        ] {
            assert_eq!(
                judge(remainder, false),
                Err(Category::Syntax),
                "{remainder}"
            );
            assert_eq!(validate(remainder), Some(message_type), "{remainder}");
        }
        assert_eq!(validate(r#"[null,3,[[{"t":[{}],"t":1e400}],[{}]]]"#), None);
        // A raw control character in a key is still refused when read raw.
        assert_eq!(
            validate("[null,3,[[{\"t\n\":1e400,\"t\":[{}]}],[{}]]]"),
            None
        );
    }

    #[test]
    fn unpaired_surrogates_are_strings() {
        assert_eq!(validate(r#"["\ud800",1,""]"#), Some(1));
        assert_eq!(validate(&stamped_cell(r#""a\udc00""#)), Some(3));
        assert_eq!(validate(r#"[null,1,"\ud800"]"#), None);
        // Different keys, so the failing one stays.
        assert_eq!(validate(r#"[null,4,{"\ud800":"x","\udbff":1}]"#), None);
        assert_eq!(validate(r#"[null,4,{"\ud800":"x","\ud800":1}]"#), Some(4));
    }

    #[test]
    fn cells_may_nest_up_to_the_limit() {
        // The cell's stamp sits at depth 9.
        let nested = |depth: usize| stamped_cell(&("[".repeat(depth) + &"]".repeat(depth)));
        assert_eq!(validate(&nested(MAX_NESTING - 9)), Some(3));
        assert_eq!(validate(&nested(MAX_NESTING - 8)), None);
        let objects =
            |depth: usize| stamped_cell(&(r#"{"a":"#.repeat(depth) + "1" + &"}".repeat(depth)));
        assert_eq!(validate(&objects(MAX_NESTING - 9)), Some(3));
        assert_eq!(validate(&objects(MAX_NESTING - 8)), None);
        // Nesting counts even where nothing is looked into.
        let ignored = format!(
            "[null,2,[1,2,{}]]",
            "[".repeat(MAX_NESTING) + &"]".repeat(MAX_NESTING)
        );
        assert_eq!(validate(&ignored), None);
    }

    #[test]
    fn hlcs_are_empty_or_sixteen_id_characters() {
        let with_hlc = |hlc: &str| validate(&format!(r#"[null,3,[[{{}}],[{{"v":[1,{hlc}]}}]]]"#));
        assert_eq!(with_hlc(r#""""#), Some(3));
        assert_eq!(with_hlc(r#""P7LQ6dr---2xr3pO""#), Some(3));
        assert_eq!(with_hlc(r#""\u0050\u0037LQ6dr---2xr3pO""#), Some(3));
        assert_eq!(with_hlc(r#""P7LQ6dr---2xr3p""#), None);
        assert_eq!(with_hlc(r#""P7LQ6dr---2xr3pO_""#), None);
        assert_eq!(with_hlc(r#""P7LQ6dr.--2xr3pO""#), None);
        assert_eq!(with_hlc("null"), None);
        assert_eq!(validate(r#"[null,3,[[{}],[{"v":[1]}]]]"#), Some(3));
        assert_eq!(validate(r#"[null,3,[[{}],[{"v":[]}]]]"#), None);
        assert_eq!(validate(r#"[null,3,[[{}],[{"v":[1,"",""]}]]]"#), None);
    }

    #[test]
    fn responses_take_any_of_their_forms() {
        assert_eq!(validate(r#"["r",0,[1,2]]"#), Some(0));
        assert_eq!(validate(r#"["r",0,[{"v":[1,""]},""]]"#), Some(0));
        assert_eq!(
            validate(r#"["r",0,[{"t":[{"r":[{"c":[1,""]}]}]}]]"#),
            Some(0)
        );
        assert_eq!(validate(r#"["r",0,[[{}],{"t":1}]]"#), Some(0));
        assert_eq!(validate(r#"["r",0,[[{}],{"t":{"r":1}}]]"#), Some(0));
        // A hash tree is all of one depth.
        assert_eq!(validate(r#"["r",0,[[{}],{"t":1,"u":{"r":1}}]]"#), None);
        assert_eq!(validate(r#"["r",0,[[{}],{"t":{"r":{"c":1}}}]]"#), None);
        assert_eq!(validate(r#"["r",0,""]"#), None);
    }

    #[test]
    fn the_envelope_is_a_three_item_array() {
        for remainder in [
            r#"[null,1,"",1]"#,
            r#"[null,1]"#,
            r#"{"a":1}"#,
            r#"[null,1,""] x"#,
            r#"[null,"1",""]"#,
            r#"[1,1,""]"#,
            r#"[null,8,""]"#,
            "",
        ] {
            assert_eq!(validate(remainder), None, "{remainder}");
        }
        assert_eq!(validate(" [ null , 1 , \"\" ]\n"), Some(1));
    }

    #[test]
    fn the_fast_and_the_raw_reading_agree_on_mutated_messages() {
        let seeds = super::super::robustness::seeds();
        let mut rng = super::super::robustness::Rng::new(0x5eed_0004);
        let mut valid = 0;
        for _ in 0..20_000 {
            let seed = &seeds[rng.below(seeds.len())];
            let donor = &seeds[rng.below(seeds.len())];
            let remainder = rng.mutate(seed, donor);
            let raw = judge(&remainder, true);
            match judge(&remainder, false) {
                Ok(message_type) => {
                    valid += 1;
                    assert_eq!(raw, Ok(message_type), "{remainder:?}");
                }
                // The raw reading has the last word on what serde_json refused.
                Err(Category::Syntax) => {}
                Err(_) => assert!(raw.is_err(), "{remainder:?}"),
            }
        }
        assert!(valid > 1_000, "{valid}");
    }

    #[test]
    fn a_validated_messages_type_is_read_from_its_first_two_elements() {
        assert_eq!(peek_type("[\"r\",3,[[{},\"\"],[{},\"\"],1]]"), Some(3));
        assert_eq!(peek_type(" [ \"a\\\"b,3\" , 3 ,[]]"), Some(3));
        assert_eq!(peek_type("[null,3,[]]"), Some(3));
        assert_eq!(peek_type("[\"r\",30,[]]"), Some(30));
        assert_eq!(peek_type("[\"r,3,\",0,[]]"), Some(0));
        assert_eq!(peek_type("[\"r\",3]"), None);
        assert_eq!(peek_type("[\"r\",,[]]"), None);
        assert_eq!(peek_type("[\"r\",-3,[]]"), None);
        assert_eq!(peek_type("[7,3,[]]"), None);
        assert_eq!(peek_type("messageId0000001\n0\n2\n[\"r\",3,"), None);
    }

    proptest::proptest! {
        /// Whatever the request id holds (quotes, backslashes, commas, brackets, any character)
        /// and however the message is spaced, the type read from its start is the parsed one.
        #[test]
        fn a_type_read_from_the_start_is_the_parsed_one(
            request_id in proptest::option::of(".*"),
            kind in 0i64..100_000,
            body in "[\\[\\]{},:\"0-9a-z ]{0,40}",
            spaces in proptest::collection::vec(
                proptest::sample::select(vec!["", " ", "\t", "\r\n"]),
                4,
            ),
        ) {
            let id = serde_json::to_string(&request_id).unwrap();
            let remainder = format!(
                "{}[{}{id}{},{}{kind}{},{body}]",
                spaces[0], spaces[1], spaces[2], spaces[3], spaces[0]
            );
            proptest::prop_assert_eq!(peek_type(&remainder), Some(kind));
        }
    }

    #[test]
    fn a_verdict_answers_only_for_the_slice_it_judged() {
        let payload = format!("M\nchannel\nto\n{}", r#"[null,1,""]"#);
        let verdict = Verdict::of_payload(&payload).unwrap();
        let remainder = &payload[payload.len() - 11..];
        assert_eq!(Verdict::validate(Some(verdict), remainder), Some(1));
        // The same text elsewhere, or a slice that only starts where it does, is judged anew.
        let copy = String::from(remainder);
        let forged = Verdict::forged(remainder, Some(3));
        assert_eq!(Verdict::validate(Some(forged), remainder), Some(3));
        assert_eq!(Verdict::validate(Some(forged), copy.as_str()), Some(1));
        assert_eq!(Verdict::validate(Some(forged), &remainder[..10]), None);
        // A legacy payload is read after its first newline; one without any is not judged.
        let legacy = "to\n[null,1,\"\"]";
        let verdict = Verdict::of_payload(legacy);
        assert_eq!(Verdict::validate(verdict, &legacy[3..]), Some(1));
        assert!(Verdict::of_payload("no envelope").is_none());
        let oversized = format!("\n{}", " ".repeat(MAX_PAYLOAD_BYTES));
        assert!(Verdict::of_payload(&oversized).is_none());
    }
}
